// RUN: moe-opt %examples/tiny_moe.mlir --moe-train-pipeline 2>/dev/null | moe-translate --moe-to-manifest | FileCheck %s
// RUN: not moe-translate --moe-to-manifest %s 2>&1 | FileCheck %s --check-prefix=NOSTEP

// The manifest of the tiny LM's training step: the data inputs, every
// parameter with its initializer, the step counter and Adam moments, and the
// role of every result, so a runtime without MLIR can call the step.
// CHECK: "eval": {
// CHECK-NEXT: "arena_bytes": {{[1-9][0-9]*}},
// CHECK-NEXT: "function": "tiny_moe"
// CHECK: "format": "moe-package/1",
// CHECK-NEXT: "model": "tiny_moe",
// CHECK-NEXT: "train_step": {
// CHECK-NEXT: "arena_bytes": {{[1-9][0-9]*}},
// CHECK-NEXT: "function": "tiny_moe_train_step",
// CHECK-NEXT: "inputs": [
// CHECK: "name": "tokens",
// CHECK: "name": "targets",
// CHECK: "parameters": [
// CHECK: "index": 2,
// CHECK-NEXT: "init": {
// CHECK-NEXT: "kind": "uniform",
// CHECK-NEXT: "scale": 0.1
// CHECK: "name": "embedding",
// CHECK-NEXT: "shape": [
// CHECK-NEXT: 50,
// CHECK-NEXT: 8
// CHECK: "kind": "zeros",
// CHECK: "name": "moe.gate_weights",
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
// CHECK: "state": [
// CHECK: "dtype": "i64",
// CHECK-NEXT: "index": 14,
// CHECK-NEXT: "name": "step",
// CHECK-NEXT: "shape": []
// CHECK: "name": "embedding.adam_v",

// A model that was not compiled has no training step to describe.
// NOSTEP: error: no training step: run --moe-train-pipeline before --moe-to-manifest
func.func @m(%w: tensor<4xf32> {moe.param = "w", moe.init = #moe.init<zeros>}) -> tensor<f32> {
  %l = moe.cv_squared %w {weight = 1.0 : f32} : (tensor<4xf32>) -> tensor<f32>
  return %l : tensor<f32>
}
