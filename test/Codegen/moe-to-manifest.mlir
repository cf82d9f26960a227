// RUN: moe-opt %examples/tiny_moe.mlir --moe-train-pipeline 2>/dev/null | moe-translate --moe-to-manifest | FileCheck %s
// RUN: moe-opt %examples/tiny_moe.mlir --moe-train-pipeline=optimizer=none 2>/dev/null | moe-translate --moe-to-manifest | FileCheck %s --check-prefix=GRAD
// RUN: not moe-translate --moe-to-manifest %s 2>&1 | FileCheck %s --check-prefix=NOSTEP
// RUN: moe-opt %S/../Integration/Inputs/tiny_hmoe.mlir --moe-train-pipeline 2>/dev/null | moe-translate --moe-to-manifest | FileCheck %s --check-prefix=HIER
// RUN: moe-opt %examples/tiny_moe.mlir --moe-train-pipeline=data-parallel=true 2>/dev/null | moe-translate --moe-to-manifest | FileCheck %s --check-prefix=DP

// The manifest of the tiny LM: its four functions (the decode step of
// incremental generation, the evaluation copy, the training-mode model and
// the training step) with their C symbols,
// arena sizes and FLOPs; every argument's role (inputs with the id range
// they index and whether -1 padding is allowed, parameters with their
// initializers, the step counter and Adam moments), every result's role and
// the dispatch plans whose per-expert loads the driver reports. Keys are
// printed in alphabetical order.
// CHECK: "format": "moe-package/2",
// CHECK-NEXT: "functions": {
// CHECK-NEXT: "decode_step": {
// CHECK: "name": "tokens",
// CHECK-NEXT: "padding": false,
// CHECK-NEXT: "role": "input",
// CHECK-NEXT: "shape": [
// CHECK-NEXT: 2,
// CHECK-NEXT: 1
// CHECK: "name": "lstm1.hidden",
// CHECK-NEXT: "role": "state",
// CHECK: "name": "lstm2.cell",
// CHECK-NEXT: "role": "state",
// CHECK: "results": [
// CHECK-NEXT: {
// CHECK-NEXT: "index": 0,
// CHECK-NEXT: "kind": "logits"
// CHECK: "kind": "state",
// CHECK-NEXT: "name": "lstm1.hidden"
// CHECK: "symbol": "tiny_moe_decode_step"
// CHECK-NEXT: },
// CHECK-NEXT: "eval": {
// CHECK-NEXT: "arena_bytes": {{[1-9][0-9]*}},
// CHECK-NEXT: "arguments": [
// CHECK: "id_bound": 50,
// CHECK-NEXT: "index": 0,
// CHECK-NEXT: "name": "tokens",
// CHECK-NEXT: "padding": false,
// CHECK-NEXT: "role": "input",
// CHECK: "id_bound": 50,
// CHECK-NEXT: "index": 1,
// CHECK-NEXT: "name": "targets",
// CHECK-NEXT: "padding": true,
// CHECK: "index": 2,
// CHECK-NEXT: "init": {
// CHECK-NEXT: "kind": "uniform",
// CHECK-NEXT: "scale": 0.1
// CHECK: "name": "embedding",
// CHECK-NEXT: "role": "param",
// CHECK-NEXT: "shape": [
// CHECK-NEXT: 50,
// CHECK-NEXT: 8
// CHECK: "kind": "zeros",
// CHECK: "name": "moe.gate_weights",
// The evaluation copy routes without noise: a plain dispatch plan.
// CHECK: "dispatch_plans": [
// CHECK-NEXT: {
// CHECK-NEXT: "experts": 4,
// CHECK-NEXT: "level": "experts",
// CHECK-NEXT: "op": "dispatch_plan"
// CHECK: "flops": {{[1-9][0-9]*}},
// CHECK-NEXT: "results": [
// CHECK-NEXT: {
// CHECK-NEXT: "index": 0,
// CHECK-NEXT: "kind": "loss"
// CHECK: "symbol": "tiny_moe_eval"
// CHECK: "model": {
// CHECK: "op": "fused_route"
// CHECK: "symbol": "tiny_moe"
// CHECK: "train_step": {
// CHECK: "index": 14,
// CHECK-NEXT: "name": "step",
// CHECK-NEXT: "role": "state",
// CHECK-NEXT: "shape": []
// CHECK: "name": "embedding.adam_m",
// CHECK-NEXT: "role": "state",
// CHECK: "op": "fused_route"
// CHECK: "results": [
// CHECK: "index": 0,
// CHECK-NEXT: "kind": "loss"
// CHECK: "index": 1,
// CHECK-NEXT: "kind": "lr"
// CHECK: "index": 2,
// CHECK-NEXT: "kind": "param",
// CHECK-NEXT: "name": "embedding"
// CHECK: "kind": "state",
// CHECK-NEXT: "name": "embedding.adam_m"
// CHECK: "symbol": "tiny_moe_train_step"
// CHECK: "model": "tiny_moe",
// CHECK-NEXT: "optimizer": "adam"

// Without the optimizer the step returns gradients, for gradient checks.
// GRAD: "train_step": {
// GRAD: "results": [
// GRAD: "index": 1,
// GRAD-NEXT: "kind": "grad",
// GRAD-NEXT: "name": "embedding"
// GRAD: "optimizer": "none"

// A model that was not compiled has no training step to describe.
// NOSTEP: error: no training step: run --moe-train-pipeline before --moe-to-manifest
func.func @m(%w: tensor<4xf32> {moe.param = "w", moe.init = #moe.init<zeros>}) -> tensor<f32> {
  %l = moe.cv_squared %w {weight = 1.0 : f32} : (tensor<4xf32>) -> tensor<f32>
  return %l : tensor<f32>
}

// A hierarchical layer has two plans: the primary level's over its groups
// (whose positions feed the composed routes) and the composed routes' over
// all experts, so a routing capture can tell groups from experts.
// HIER: "eval": {
// HIER: "dispatch_plans": [
// HIER-NEXT: {
// HIER-NEXT: "experts": 2,
// HIER-NEXT: "level": "groups",
// HIER-NEXT: "op": "dispatch_plan"
// HIER-NEXT: },
// HIER-NEXT: {
// HIER-NEXT: "experts": 8,
// HIER-NEXT: "level": "experts",
// HIER-NEXT: "op": "dispatch_plan"
// HIER-NEXT: }
// HIER-NEXT: ],

// A data-parallel step also counts its targets (moe.count_targets, for the
// global batch's mean): they still allow padding.
// DP: "model": {
// DP: "name": "targets",
// DP-NEXT: "padding": true,
// DP: "train_step": {
// DP: "name": "targets",
// DP-NEXT: "padding": true,
