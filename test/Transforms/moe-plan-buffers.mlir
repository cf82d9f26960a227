// RUN: moe-opt %s -split-input-file --moe-plan-buffers --verify-diagnostics | FileCheck %s
// RUN: moe-opt %examples/lstm2x512_moe512.mlir --moe-train-pipeline --moe-plan-buffers -o /dev/null 2>&1 | FileCheck %s --check-prefix=PAPER

// A chain of 64-byte tensors: each dies at its only use, so the third
// reuses the first one's space and the arena holds two buffers, not four.
// CHECK-LABEL: func.func @chain
// CHECK-SAME: attributes {moe.arena_bytes = 128 : i64}
// CHECK: moe.scale %{{.*}} {factor = 2.000000e+00 : f32, moe.offsets = array<i64: 0>}
// CHECK: moe.scale %{{.*}} {factor = 3.000000e+00 : f32, moe.offsets = array<i64: 64>}
// CHECK: moe.scale %{{.*}} {factor = 4.000000e+00 : f32, moe.offsets = array<i64: 0>}
// CHECK: moe.cv_squared %{{.*}} {moe.offsets = array<i64: 64>, weight = 1.000000e+00 : f32}
// expected-remark@+1 {{moe-plan-buffers: @chain: 4 buffers, 0.2 KiB without reuse, arena 0.1 KiB (peak live 0.1 KiB)}}
func.func @chain(%x: tensor<16xf32>) -> tensor<f32> {
  %a = moe.scale %x {factor = 2.0 : f32} : tensor<16xf32>
  %b = moe.scale %a {factor = 3.0 : f32} : tensor<16xf32>
  %c = moe.scale %b {factor = 4.0 : f32} : tensor<16xf32>
  %l = moe.cv_squared %c {weight = 1.0 : f32} : (tensor<16xf32>) -> tensor<f32>
  return %l : tensor<f32>
}

// -----

// A reshape is a view: it takes no buffer and keeps its source alive until
// the view's last use, so %b cannot take %a's place.
// CHECK-LABEL: func.func @view_extends_life
// CHECK: moe.scale %{{.*}} {factor = 2.000000e+00 : f32, moe.offsets = array<i64: 0>}
// CHECK: tensor.collapse_shape
// CHECK-NOT: moe.offsets
// CHECK: moe.scale %{{.*}} {factor = 3.000000e+00 : f32, moe.offsets = array<i64: 64>}
// CHECK: moe.add {{.*}} {moe.offsets = array<i64: 128>}
// expected-remark@+1 {{moe-plan-buffers: @view_extends_life: 3 buffers, 0.2 KiB without reuse, arena 0.2 KiB (peak live 0.2 KiB)}}
func.func @view_extends_life(%x: tensor<4x4xf32>, %y: tensor<16xf32>) -> tensor<16xf32> {
  %a = moe.scale %x {factor = 2.0 : f32} : tensor<4x4xf32>
  %v = tensor.collapse_shape %a [[0, 1]] : tensor<4x4xf32> into tensor<16xf32>
  %b = moe.scale %y {factor = 3.0 : f32} : tensor<16xf32>
  %s = moe.add %v, %b : tensor<16xf32>
  return %s : tensor<16xf32>
}

// -----

// Adam writes parameters and moments in place: no buffers for its results.
// CHECK-LABEL: func.func @adam_in_place
// CHECK: moe.lr_schedule {{.*}}moe.offsets = array<i64: 0>
// CHECK: moe.adam_update
// CHECK-NOT: moe.offsets
// CHECK-SAME: -> (
// expected-remark@+1 {{moe-plan-buffers: @adam_in_place: 1 buffers, 0.1 KiB without reuse, arena 0.1 KiB (peak live 0.1 KiB)}}
func.func @adam_in_place(%p: tensor<8xf32>, %g: tensor<8xf32>, %m: tensor<8xf32>, %v: tensor<8xf32>, %s: tensor<i64>) -> (tensor<8xf32>, tensor<8xf32>, tensor<8xf32>) {
  %lr = moe.lr_schedule %s {base_lr = 1.0e-3 : f32, warmup_steps = 2 : i64, constant_steps = 2 : i64} : (tensor<i64>) -> tensor<f32>
  %p2, %m2, %v2 = moe.adam_update %p, %g, %m, %v, %lr, %s {beta1 = 0.9 : f32, beta2 = 0.999 : f32, eps = 1.0e-8 : f32, weight_decay = 0.0 : f32} : (tensor<8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<f32>, tensor<i64>) -> (tensor<8xf32>, tensor<8xf32>, tensor<8xf32>)
  return %p2, %m2, %v2 : tensor<8xf32>, tensor<8xf32>, tensor<8xf32>
}

// The paper's 512-expert model at 8192 tokens per step: the summary shows
// what reuse saves for the forward model and for the training step.
// PAPER: remark: moe-plan-buffers: @lstm2x512_moe512: {{[0-9]+}} buffers, {{.*}} MiB without reuse, arena {{.*}} MiB
// PAPER: remark: moe-plan-buffers: @lstm2x512_moe512_train_step: {{[0-9]+}} buffers, {{.*}} GiB without reuse, arena {{.*}} GiB
// PAPER: remark: moe-plan-buffers: @lstm2x512_moe512_eval: {{[0-9]+}} buffers, {{.*}}iB without reuse, arena {{.*}}iB

// -----

// Attention keeps tanh(xU), tanh(yW), the queries and the weights for its
// backward pass: B * (Sx*E + 2*Sy*E + Sy*Sx) = 1 * (2*4 + 2*3*4 + 3*2) = 38
// floats (152 B, 192 aligned) on top of the 3x8 context (96 B, 128
// aligned): 320 bytes.
// CHECK-LABEL: func.func @attention_state
// CHECK-SAME: attributes {moe.arena_bytes = 320 : i64}
// CHECK: moe.attention {{.*}}moe.offsets = array<i64: 0>
// expected-remark@+1 {{moe-plan-buffers: @attention_state: 1 buffers, 0.3 KiB without reuse, arena 0.3 KiB (peak live 0.3 KiB)}}
func.func @attention_state(%src: tensor<1x2x8xf32>, %tgt: tensor<1x3x8xf32>, %u: tensor<8x4xf32>, %w: tensor<8x4xf32>, %v: tensor<4xf32>) -> tensor<1x3x8xf32> {
  %c = moe.attention %src, %tgt weights(%u, %w, %v) : (tensor<1x2x8xf32>, tensor<1x3x8xf32>, tensor<8x4xf32>, tensor<8x4xf32>, tensor<4xf32>) -> tensor<1x3x8xf32>
  return %c : tensor<1x3x8xf32>
}

// -----

// Rows an expert-parallel rank receives and its shard of the expert
// gradients have sizes known only when the graph runs: they live in the
// call's pool (offset -1) and take no arena space.
// CHECK-LABEL: func.func @expert_section
// CHECK-SAME: moe.arena_bytes = 448
// CHECK: moe.exchange_counts {{.*}} {moe.offsets = array<i64: 0, 64>}
// CHECK: moe.exchange_to_experts {{.*}} {moe.offsets = array<i64: -1>}
// CHECK: moe.grouped_matmul_grad {{.*}} {moe.offsets = array<i64: -1, -1>}
// CHECK: moe.exchange_to_tokens {{.*}} {moe.offsets = array<i64: 64>}
mesh.mesh @ranks(shape = ?)
// expected-remark@+1 {{moe-plan-buffers: @expert_section: 3 buffers, 0.5 KiB without reuse, arena 0.4 KiB (peak live 0.4 KiB)}}
func.func @expert_section(%buf: tensor<12x8xf32>, %off: tensor<5xi32>,
                          %w: tensor<4x8x8xf32, #moe.shard<@ranks>>)
    -> (tensor<12x8xf32>, tensor<4x8x8xf32, #moe.shard<@ranks>>) {
  %counts, %roff = moe.exchange_counts %off on @ranks : (tensor<5xi32>) -> (tensor<4xi32>, tensor<5xi32>)
  %recv = moe.exchange_to_experts %buf, %off, %counts on @ranks
      : (tensor<12x8xf32>, tensor<5xi32>, tensor<4xi32>) -> tensor<?x8xf32>
  %db, %dw = moe.grouped_matmul_grad %recv, %w, %roff, %recv
      : (tensor<?x8xf32>, tensor<4x8x8xf32, #moe.shard<@ranks>>, tensor<5xi32>, tensor<?x8xf32>)
      -> (tensor<?x8xf32>, tensor<4x8x8xf32, #moe.shard<@ranks>>)
  %back = moe.exchange_to_tokens %db, %off, %counts on @ranks
      : (tensor<?x8xf32>, tensor<5xi32>, tensor<4xi32>) -> tensor<12x8xf32>
  return %back, %dw : tensor<12x8xf32>, tensor<4x8x8xf32, #moe.shard<@ranks>>
}
