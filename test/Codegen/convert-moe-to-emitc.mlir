// RUN: moe-opt %s --split-input-file --convert-moe-to-emitc | FileCheck %s
// RUN: moe-opt %s --split-input-file --convert-moe-to-emitc="target=cuda gemm-precision=bf16" | FileCheck %s --check-prefix=CUDA

// A planned function becomes an extern "C" function of the step context:
// arguments come from argument<T>(ctx, i), every tensor from the arena at
// the planner's offset, each op is one call with its sizes as literals, and
// views are the same pointer.
// CHECK: emitc.include "runtime/step/Step.h"
// CHECK-LABEL: emitc.func @residual_and_view
// CHECK-SAME: (%[[CTX:.*]]: !emitc.ptr<!emitc.opaque<"moe::rt::step::Context">>)
// CHECK-SAME: specifiers = ["extern \22C\22"]
// CHECK: %[[X:.*]] = emitc.call_opaque "moe::rt::step::argument"(%[[CTX]]) {args = [0 : index, 0], template_args = [f32]}
// CHECK: %[[Y:.*]] = emitc.call_opaque "moe::rt::step::argument"(%[[CTX]]) {args = [0 : index, 1], template_args = [f32]}
// CHECK: %[[SUM:.*]] = emitc.call_opaque "moe::rt::step::arena"(%[[CTX]]) {args = [0 : index, 128], template_args = [f32]}
// CHECK: emitc.call_opaque "moe::rt::step::add"(%[[CTX]], %[[X]], %[[Y]], %[[SUM]]) {args = [0 : index, 1 : index, 2 : index, 3 : index, 24]}
// The collapsed view is the sum's own pointer.
// CHECK: emitc.call_opaque "moe::rt::step::result"(%[[CTX]], %[[SUM]]) {args = [0 : index, 0, 1 : index]}
// CHECK: emitc.return
func.func @residual_and_view(%x: tensor<2x3x4xf32>, %y: tensor<2x3x4xf32>)
    -> tensor<6x4xf32> attributes {moe.arena_bytes = 256} {
  %s = moe.residual %x, %y {moe.offsets = array<i64: 128>} : tensor<2x3x4xf32>
  %v = tensor.collapse_shape %s [[0, 1], [2]] : tensor<2x3x4xf32> into tensor<6x4xf32>
  return %v : tensor<6x4xf32>
}

// -----

// Optional operands pass nullptr; the noise stream and k are literals.
// CHECK-LABEL: emitc.func @top_k_without_noise
// CHECK: emitc.call_opaque "moe::rt::step::noisyTopK"
// CHECK-SAME: args = [0 : index, 1 : index, #emitc.opaque<"nullptr">, #emitc.opaque<"nullptr">, 2 : index, 3 : index, 4 : index, 5 : index, 6 : index, 16, 8, 2, 0.00999999977 : f32, 3]
func.func @top_k_without_noise(%logits: tensor<16x8xf32>)
    -> tensor<16x2xi32> attributes {moe.arena_bytes = 4096} {
  %e, %g, %h, %s, %top = moe.noisy_top_k %logits {k = 2, rng_stream = 3,
      moe.offsets = array<i64: 0, 128, 256, 768, 1280>}
      : (tensor<16x8xf32>) -> (tensor<16x2xi32>, tensor<16x2xf32>,
         tensor<16x8xf32>, tensor<16x8xf32>, tensor<16x3xf32>)
  return %e : tensor<16x2xi32>
}

// -----

// Over the combined batch, the secondary mask and the grouped Eq. 8 of a
// hierarchical layer are step functions taking the primary plan's offsets
// (operands, results, then rows, experts per group, groups and m, and the
// assignment capacity); without, the kernels on equal segments.
// CHECK-LABEL: emitc.func @grouped_combined
// CHECK: emitc.call_opaque "moe::rt::step::groupedBatchwiseMask"
// CHECK-SAME: args = [0 : index, 1 : index, 2 : index, 3 : index, 4 : index, 5 : index, 6 : index, 12, 4, 2, 2, 32]
// CHECK: emitc.call_opaque "moe::rt::step::segmentedThresholdLoss"
// CHECK-SAME: args = [0 : index, 1 : index, 2 : index, 3 : index, 4 : index, 5 : index, 12, 2, 4]
func.func @grouped_combined(%l: tensor<12x4xf32>, %off: tensor<3xi32>, %t: tensor<2x4xf32>)
    -> tensor<f32> attributes {moe.arena_bytes = 4096} {
  %m, %r, %e, %g = moe.grouped_batchwise_mask %l offsets %off {combined_batch, groups = 2 : i64, m = 2 : i64,
      moe.offsets = array<i64: 0, 256, 320, 448>}
      : (tensor<12x4xf32>, tensor<3xi32>) -> (tensor<12x4xf32>, tensor<13xi32>, tensor<32xi32>, tensor<32xf32>)
  %loss = moe.grouped_batchwise_threshold_loss %l, %m, %t offsets %off {moe.offsets = array<i64: 576>}
      : (tensor<12x4xf32>, tensor<12x4xf32>, tensor<2x4xf32>, tensor<3xi32>) -> tensor<f32>
  return %loss : tensor<f32>
}

// -----

// The expert GEMMs are one kernel: its step entry with the kernel's
// parameters in order (rows, experts, widths, then the offsets, input,
// weights and output), and the target's precision: f32 on the CPU whatever
// was asked, the requested one on CUDA.
// CHECK-LABEL: emitc.func @experts
// CHECK-SAME: (%[[CTX:.*]]: !emitc.ptr
// CHECK: %[[BUF:.*]] = emitc.call_opaque "moe::rt::step::argument"(%[[CTX]]) {args = [0 : index, 0]
// CHECK: %[[W:.*]] = emitc.call_opaque "moe::rt::step::argument"(%[[CTX]]) {args = [0 : index, 1]
// CHECK: %[[OFF:.*]] = emitc.call_opaque "moe::rt::step::argument"(%[[CTX]]) {args = [0 : index, 2]
// CHECK: %[[OUT:.*]] = emitc.call_opaque "moe::rt::step::arena"
// CHECK: emitc.call_opaque "moe::rt::step::groupedMatmulForward"(%[[CTX]], %[[OFF]], %[[BUF]], %[[W]], %[[OUT]])
// CHECK-SAME: args = [0 : index, 32, 4, 8, 16, 1 : index, 2 : index, 3 : index, 4 : index, #emitc.opaque<"moe::rt::GemmPrecision::F32">]
// CUDA-LABEL: emitc.func @experts
// CUDA: emitc.call_opaque "moe::rt::step::groupedMatmulForward"
// CUDA-SAME: #emitc.opaque<"moe::rt::GemmPrecision::BF16">
func.func @experts(%buf: tensor<32x8xf32>, %w: tensor<4x8x16xf32>, %off: tensor<5xi32>)
    -> tensor<32x16xf32> attributes {moe.arena_bytes = 2048} {
  %y = moe.grouped_matmul %buf, %w, %off {moe.offsets = array<i64: 0>}
      : (tensor<32x8xf32>, tensor<4x8x16xf32>, tensor<5xi32>) -> tensor<32x16xf32>
  return %y : tensor<32x16xf32>
}

// -----

// Top-k routing carries no row pointers: the combine kernel gets nullptr
// (A / T = 2 assignments per token) and the plan's positions as they are;
// bias_add takes its sizes first, as its kernel does.
// CHECK-LABEL: emitc.func @combine_top_k
// CHECK: %[[OUT:.*]] = emitc.call_opaque "moe::rt::step::argument"({{.*}}) {args = [0 : index, 0]
// CHECK: %[[GATE:.*]] = emitc.call_opaque "moe::rt::step::argument"({{.*}}) {args = [0 : index, 1]
// CHECK: %[[POS:.*]] = emitc.call_opaque "moe::rt::step::argument"({{.*}}) {args = [0 : index, 2]
// CHECK: %[[B:.*]] = emitc.call_opaque "moe::rt::step::argument"({{.*}}) {args = [0 : index, 3]
// CHECK: %[[Y:.*]] = emitc.call_opaque "moe::rt::step::arena"
// CHECK: emitc.call_opaque "moe::rt::step::combineForward"({{.*}}, %[[POS]], %[[GATE]], %[[OUT]], %[[Y]])
// CHECK-SAME: args = [0 : index, 6, 12, 8, #emitc.opaque<"nullptr">, 1 : index, 2 : index, 3 : index, 4 : index]
// CHECK: emitc.call_opaque "moe::rt::step::biasAdd"(%{{.*}}, %[[Y]], %[[B]], %{{[0-9]+}}) {args = [0 : index, 6, 8, 1 : index, 2 : index, 3 : index]}
func.func @combine_top_k(%out: tensor<12x8xf32>, %g: tensor<12xf32>,
                         %pos: tensor<12xi32>, %b: tensor<8xf32>)
    -> tensor<6x8xf32> attributes {moe.arena_bytes = 1024} {
  %y = moe.combine %out, %g, %pos {tokens = 6 : i64, moe.offsets = array<i64: 0>}
      : (tensor<12x8xf32>, tensor<12xf32>, tensor<12xi32>) -> tensor<6x8xf32>
  %z = moe.bias_add %y, %b {moe.offsets = array<i64: 256>}
      : (tensor<6x8xf32>, tensor<8xf32>) -> tensor<6x8xf32>
  return %z : tensor<6x8xf32>
}

// -----

// The plan gets its assignments' gates (read only when the runtime
// captures routes) after the row pointer; an absent operand is nullptr.
// CHECK-LABEL: emitc.func @plan_gates
// CHECK: %[[E:.*]] = emitc.call_opaque "moe::rt::step::argument"({{.*}}) {args = [0 : index, 0]
// CHECK: %[[R:.*]] = emitc.call_opaque "moe::rt::step::argument"({{.*}}) {args = [0 : index, 1]
// CHECK: %[[G:.*]] = emitc.call_opaque "moe::rt::step::argument"({{.*}}) {args = [0 : index, 2]
// CHECK: emitc.call_opaque "moe::rt::step::dispatchPlan"(%{{[a-z0-9]+}}, %[[E]], %[[R]], %[[G]], %{{[0-9]+}}, %{{[0-9]+}}, %{{[0-9]+}})
// CHECK-SAME: args = [0 : index, 1 : index, 2 : index, 3 : index, 4 : index, 5 : index, 6 : index, 12, 4, 6]
// CHECK: emitc.call_opaque "moe::rt::step::dispatchPlan"(%{{[a-z0-9]+}}, %[[E]], %{{[0-9]+}}, %{{[0-9]+}}, %{{[0-9]+}})
// CHECK-SAME: args = [0 : index, 1 : index, #emitc.opaque<"nullptr">, #emitc.opaque<"nullptr">, 2 : index, 3 : index, 4 : index, 12, 4, 6]
func.func @plan_gates(%e: tensor<12xi32>, %r: tensor<7xi32>, %g: tensor<12xf32>)
    -> (tensor<12xi32>, tensor<12xi32>) attributes {moe.arena_bytes = 1024} {
  %o, %p, %t = moe.dispatch_plan %e rows %r gates %g
      {num_experts = 4 : i64, tokens = 6 : i64, moe.offsets = array<i64: 0, 64, 128>}
      : (tensor<12xi32>, tensor<7xi32>, tensor<12xf32>) -> (tensor<5xi32>, tensor<12xi32>, tensor<12xi32>)
  %o2, %p2, %t2 = moe.dispatch_plan %e
      {num_experts = 4 : i64, tokens = 6 : i64, moe.offsets = array<i64: 192, 256, 320>}
      : (tensor<12xi32>) -> (tensor<5xi32>, tensor<12xi32>, tensor<12xi32>)
  return %p, %p2 : tensor<12xi32>, tensor<12xi32>
}

// -----

// The router's products are f32 unless they allow TF32, which only a GPU
// target honours.
// CHECK-LABEL: emitc.func @router_products
// CHECK: emitc.call_opaque "moe::rt::step::matmul"
// CHECK-SAME: #emitc.opaque<"false">, #emitc.opaque<"false">, #emitc.opaque<"moe::rt::GemmPrecision::F32">]
// CHECK: emitc.call_opaque "moe::rt::step::matmul"
// CHECK-SAME: #emitc.opaque<"false">, #emitc.opaque<"false">, #emitc.opaque<"moe::rt::GemmPrecision::F32">]
// CUDA-LABEL: emitc.func @router_products
// CUDA: emitc.call_opaque "moe::rt::step::matmul"
// CUDA-SAME: #emitc.opaque<"moe::rt::GemmPrecision::TF32">]
// CUDA: emitc.call_opaque "moe::rt::step::matmul"
// CUDA-SAME: #emitc.opaque<"moe::rt::GemmPrecision::F32">]
func.func @router_products(%x: tensor<16x8xf32>, %w: tensor<8x4xf32>)
    -> (tensor<16x4xf32>, tensor<16x4xf32>) attributes {moe.arena_bytes = 1024} {
  %a = moe.matmul %x, %w {allow_tf32, moe.offsets = array<i64: 0>}
      : (tensor<16x8xf32>, tensor<8x4xf32>) -> tensor<16x4xf32>
  %b = moe.matmul %x, %w {moe.offsets = array<i64: 256>}
      : (tensor<16x8xf32>, tensor<8x4xf32>) -> tensor<16x4xf32>
  return %a, %b : tensor<16x4xf32>, tensor<16x4xf32>
}

// -----

// The per-group load estimate's sizes in the kernel's order (R rows, groups,
// experts per group, k): 12 rows of 2 groups over 4 experts, k = 2.
// CHECK-LABEL: emitc.func @grouped_load
// CHECK: emitc.call_opaque "moe::rt::step::groupedLoadEstimateForward"
// CHECK-SAME: args = [0 : index, 12, 2, 4, 2, 1 : index, 2 : index, 3 : index, 4 : index, 5 : index, 6 : index]
func.func @grouped_load(%c: tensor<12x4xf32>, %top: tensor<12x3xf32>, %off: tensor<3xi32>)
    -> tensor<2x4xf32> attributes {moe.arena_bytes = 256} {
  %l = moe.grouped_load_estimate %c, noise %c, %c, %c, %top, %off {k = 2 : i64, moe.offsets = array<i64: 0>}
      : (tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x3xf32>, tensor<3xi32>) -> tensor<2x4xf32>
  return %l : tensor<2x4xf32>
}

// -----

// Adam updates in place: its results are the parameter's and moments'
// own pointers, so the returned parameter is the argument. The step and
// the learning rate are pointers the runtime reads.
// CHECK-LABEL: emitc.func @adam
// CHECK: %[[P:.*]] = emitc.call_opaque "moe::rt::step::argument"({{.*}}) {args = [0 : index, 0], template_args = [f32]}
// CHECK: %[[STEP:.*]] = emitc.call_opaque "moe::rt::step::argument"({{.*}}) {args = [0 : index, 4], template_args = [i64]}
// CHECK: %[[LR:.*]] = emitc.call_opaque "moe::rt::step::arena"
// CHECK: emitc.call_opaque "moe::rt::step::lrSchedule"({{.*}}, %[[STEP]], %[[LR]]) {args = [0 : index, 1 : index, 2 : index, 0.00999999977 : f32, 10, 20]}
// CHECK: emitc.call_opaque "moe::rt::step::adamUpdate"({{.*}}, %[[P]], {{.*}}, %[[LR]], %[[STEP]])
// CHECK-SAME: args = [0 : index, 12, 1 : index, 2 : index, 3 : index, 4 : index, 5 : index, 6 : index, 0.899999976 : f32, 9.990000e-01 : f32
// CHECK: emitc.call_opaque "moe::rt::step::result"({{.*}}, %[[P]]) {args = [0 : index, 0, 1 : index]}
func.func @adam(%p: tensor<3x4xf32>, %g: tensor<3x4xf32>, %m: tensor<3x4xf32>,
                %v: tensor<3x4xf32>, %step: tensor<i64>) -> tensor<3x4xf32>
    attributes {moe.arena_bytes = 64} {
  %lr = moe.lr_schedule %step {base_lr = 1.0e-02 : f32, warmup_steps = 10,
      constant_steps = 20, moe.offsets = array<i64: 0>} : (tensor<i64>) -> tensor<f32>
  %p2, %m2, %v2 = moe.adam_update %p, %g, %m, %v, %lr, %step {beta1 = 0.9 : f32,
      beta2 = 0.999 : f32, eps = 1.0e-08 : f32, weight_decay = 0.0 : f32}
      : (tensor<3x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>,
         tensor<f32>, tensor<i64>) -> (tensor<3x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>)
  return %p2 : tensor<3x4xf32>
}

// -----

// The row-sparse vocabulary gradients (moe-sparse-gradients): the sampled
// softmax's classes (3 samples + 6 targets) and the embedding's ids go to
// their kernels with sizes first; lazy Adam writes in place like Adam. The
// sampled gradient runs its GEMMs in f32 on either target (no precision).
// CHECK-LABEL: emitc.func @sparse_rows
// CHECK: %[[P:.*]] = emitc.call_opaque "moe::rt::step::argument"({{.*}}) {args = [0 : index, 2], template_args = [f32]}
// CHECK: emitc.call_opaque "moe::rt::step::softmaxCrossEntropyRowGrad"
// CHECK-SAME: args = [0 : index, 1 : index, 2 : index, 3 : index, 4 : index, 5 : index, 6 : index, 7 : index, 8 : index, 9 : index, 6, 8, 100, 3, 7]}
// CHECK: emitc.call_opaque "moe::rt::step::rowGradient"
// CHECK-SAME: args = [0 : index, 6, 8, 100, 1 : index, 2 : index, 3 : index, 4 : index]}
// CHECK: emitc.call_opaque "moe::rt::step::adamUpdateRows"
// CHECK-SAME: args = [0 : index, 6, 8, 1 : index, 2 : index, 3 : index, 4 : index, 5 : index, 6 : index, 7 : index, 0.899999976 : f32
// CHECK: emitc.call_opaque "moe::rt::step::result"({{.*}}, %[[P]]) {args = [0 : index, 0, 1 : index]}
// CUDA-LABEL: emitc.func @sparse_rows
// CUDA: emitc.call_opaque "moe::rt::step::softmaxCrossEntropyRowGrad"
// CUDA-SAME: 6, 8, 100, 3, 7]}
func.func @sparse_rows(%ids: tensor<2x3xi32>, %dout: tensor<2x3x8xf32>, %table: tensor<100x8xf32>, %h: tensor<2x3x8xf32>, %w: tensor<100x8xf32>, %b: tensor<100xf32>, %dl: tensor<f32>, %lr: tensor<f32>, %step: tensor<i64>) -> (tensor<100x8xf32>, tensor<2x3x8xf32>, tensor<9xi32>, tensor<9x8xf32>, tensor<9xf32>)
    attributes {moe.arena_bytes = 1024} {
  %dh, %srows, %dw, %db = moe.softmax_cross_entropy_row_grad %h, %ids, %w, %b, %dl {num_samples = 3 : i64, rng_stream = 7 : i64, moe.offsets = array<i64: 0, 192, 256, 576>} : (tensor<2x3x8xf32>, tensor<2x3xi32>, tensor<100x8xf32>, tensor<100xf32>, tensor<f32>) -> (tensor<2x3x8xf32>, tensor<9xi32>, tensor<9x8xf32>, tensor<9xf32>)
  %rows, %vals = moe.embedding_row_grad %ids, %dout {vocab = 100 : i64, moe.offsets = array<i64: 640, 704>} : (tensor<2x3xi32>, tensor<2x3x8xf32>) -> (tensor<6xi32>, tensor<6x8xf32>)
  %t2, %m2, %v2 = moe.adam_update_rows %table, %rows, %vals, %table, %table, %lr, %step {beta1 = 0.9 : f32, beta2 = 0.999 : f32, eps = 1.0e-08 : f32, weight_decay = 0.0 : f32} : (tensor<100x8xf32>, tensor<6xi32>, tensor<6x8xf32>, tensor<100x8xf32>, tensor<100x8xf32>, tensor<f32>, tensor<i64>) -> (tensor<100x8xf32>, tensor<100x8xf32>, tensor<100x8xf32>)
  return %t2, %dh, %srows, %dw, %db : tensor<100x8xf32>, tensor<2x3x8xf32>, tensor<9xi32>, tensor<9x8xf32>, tensor<9xf32>
}

// -----

// The LSTM's saved state follows its output; the planned size is passed on
// for the runtime to check against its kernels. Splat constants are fills.
// CHECK-LABEL: emitc.func @lstm_and_constant
// CHECK: emitc.call_opaque "moe::rt::step::lstm"
// CHECK-SAME: #emitc.opaque<"nullptr">
// CHECK-SAME: 2, 5, 8, 8, 8, 2240, #emitc.opaque<"moe::rt::GemmPrecision::F32">
// CHECK: emitc.call_opaque "moe::rt::step::fill"
// CHECK-SAME: 1, 1.000000e+00 : f32
func.func @lstm_and_constant(%x: tensor<2x5x8xf32>, %wx: tensor<8x32xf32>,
                             %wh: tensor<8x32xf32>, %b: tensor<32xf32>)
    -> (tensor<2x5x8xf32>, tensor<f32>) attributes {moe.arena_bytes = 4096} {
  %h = moe.lstm %x weights(%wx, %wh, %b) {moe.offsets = array<i64: 0>}
      : (tensor<2x5x8xf32>, tensor<8x32xf32>, tensor<8x32xf32>, tensor<32xf32>) -> tensor<2x5x8xf32>
  %one = arith.constant {moe.offsets = array<i64: 2624>} dense<1.0> : tensor<f32>
  return %h, %one : tensor<2x5x8xf32>, tensor<f32>
}

// -----

// The stateful LSTM (a decode step) calls lstmWithState: h_0 and c_0 after
// the weights, h_T and c_T after the output.
// CHECK-LABEL: emitc.func @lstm_with_state
// CHECK: %[[H0:.*]] = emitc.call_opaque "moe::rt::step::argument"({{.*}}) {args = [0 : index, 4], template_args = [f32]}
// CHECK: %[[C0:.*]] = emitc.call_opaque "moe::rt::step::argument"({{.*}}) {args = [0 : index, 5], template_args = [f32]}
// CHECK: %[[Y:.*]] = emitc.call_opaque "moe::rt::step::arena"({{.*}}) {args = [0 : index, 0], template_args = [f32]}
// CHECK: %[[HT:.*]] = emitc.call_opaque "moe::rt::step::arena"({{.*}}) {args = [0 : index, 512], template_args = [f32]}
// CHECK: %[[CT:.*]] = emitc.call_opaque "moe::rt::step::arena"({{.*}}) {args = [0 : index, 576], template_args = [f32]}
// CHECK: emitc.call_opaque "moe::rt::step::lstmWithState"(%{{[^,]*}}, %{{[^,]*}}, %{{[^,]*}}, %{{[^,]*}}, %{{[^,]*}}, %[[H0]], %[[C0]], %[[Y]], %[[HT]], %[[CT]])
// CHECK-SAME: {args = [0 : index, 1 : index, 2 : index, 3 : index, 4 : index, #emitc.opaque<"nullptr">, 5 : index, 6 : index, 7 : index, 8 : index, 9 : index, 2, 1, 8, 8, 8, 448, #emitc.opaque<"moe::rt::GemmPrecision::F32">]}
func.func @lstm_with_state(%x: tensor<2x1x8xf32>, %wx: tensor<8x32xf32>,
                           %wh: tensor<8x32xf32>, %b: tensor<32xf32>,
                           %h0: tensor<2x8xf32>, %c0: tensor<2x8xf32>)
    -> (tensor<2x1x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>)
    attributes {moe.arena_bytes = 1024} {
  %y, %h, %c = moe.lstm %x weights(%wx, %wh, %b) state(%h0, %c0)
      {moe.offsets = array<i64: 0, 512, 576>}
      : (tensor<2x1x8xf32>, tensor<8x32xf32>, tensor<8x32xf32>, tensor<32xf32>,
         tensor<2x8xf32>, tensor<2x8xf32>)
      -> (tensor<2x1x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>)
  return %y, %h, %c : tensor<2x1x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>
}

// -----

// Collectives call the runtime's; the mesh is only a symbol.
// CHECK-LABEL: emitc.func @collectives
// CHECK-NOT: mesh.mesh
// CHECK: emitc.call_opaque "moe::rt::step::allReduce"({{.*}}) {args = [0 : index, 1 : index, 2 : index, 4, #emitc.opaque<"true">]}
// CHECK: emitc.call_opaque "moe::rt::step::allReduce"({{.*}}) {args = [0 : index, 1 : index, 2 : index, 4, #emitc.opaque<"false">]}
// CHECK: emitc.call_opaque "moe::rt::step::divideByRanks"({{.*}}) {args = [0 : index, 1 : index, 2 : index, 4]}
mesh.mesh @ranks(shape = ?)
func.func @collectives(%x: tensor<4xf32>) -> tensor<4xf32> attributes {moe.arena_bytes = 256 : i64} {
  %a = mesh.all_reduce %x on @ranks mesh_axes = [0] reduction = <average> {moe.offsets = array<i64: 0>} : tensor<4xf32> -> tensor<4xf32>
  %s = mesh.all_reduce %a on @ranks mesh_axes = [0] {moe.offsets = array<i64: 64>} : tensor<4xf32> -> tensor<4xf32>
  %d = moe.divide_by_mesh_size %s on @ranks {moe.offsets = array<i64: 128>} : tensor<4xf32>
  return %d : tensor<4xf32>
}
