// RUN: moe-opt %s | moe-opt | FileCheck %s
// RUN: moe-opt %s --mlir-print-op-generic | moe-opt | FileCheck %s

// Every backward op that moe-autodiff builds prints and parses back.
// CHECK-LABEL: func.func @routing_grads
// CHECK: moe.activate_grad %{{.*}}, %{{.*}} {act = #moe.activation<relu>} : (tensor<6x4xf32>, tensor<6x4xf32>) -> tensor<6x4xf32>
// CHECK: %{{.*}}, %{{.*}} = moe.noisy_top_k_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, noise %{{.*}} :
// CHECK: moe.noisy_top_k_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : {{.*}} -> tensor<6x4xf32>
// CHECK: moe.load_estimate_grad {{.*}} {k = 2 : i64}
// CHECK: moe.softmax_grad
// CHECK: moe.masked_gate_grad {{.*}} {num_experts = 4 : i64} : {{.*}} -> tensor<6x4xf32>
// CHECK: moe.batchwise_threshold_loss_grad
// CHECK: moe.importance_grad
// CHECK: moe.cv_squared_grad {{.*}} {weight = 1.000000e-01 : f32}
// CHECK: moe.l2_balance_grad {{.*}} {tokens = 6 : i64, weight = 1.000000e+00 : f32}
// CHECK: moe.fused_route_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} d_gate %{{.*}} d_load %{{.*}} d_importance %{{.*}} :
// CHECK: moe.fused_route_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} d_load %{{.*}} :
func.func @routing_grads(%y: tensor<6x4xf32>, %dy: tensor<6x4xf32>, %e: tensor<6x2xi32>, %g: tensor<6x2xf32>, %top: tensor<6x3xf32>, %dl: tensor<4xf32>, %rows: tensor<7xi32>, %ef: tensor<12xi32>, %gf: tensor<12xf32>, %t: tensor<4xf32>, %s: tensor<f32>) {
  %0 = moe.activate_grad %y, %dy {act = #moe.activation<relu>} : (tensor<6x4xf32>, tensor<6x4xf32>) -> tensor<6x4xf32>
  %1:2 = moe.noisy_top_k_grad %y, %y, %y, %e, %g, %g, noise %y : (tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x2xi32>, tensor<6x2xf32>, tensor<6x2xf32>) -> (tensor<6x4xf32>, tensor<6x4xf32>)
  %2 = moe.noisy_top_k_grad %y, %y, %y, %e, %g, %g : (tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x2xi32>, tensor<6x2xf32>, tensor<6x2xf32>) -> tensor<6x4xf32>
  %3:2 = moe.load_estimate_grad %y, %y, %y, %y, %top, %dl {k = 2 : i64} : (tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x3xf32>, tensor<4xf32>) -> (tensor<6x4xf32>, tensor<6x4xf32>)
  %4 = moe.softmax_grad %y, %dy : (tensor<6x4xf32>, tensor<6x4xf32>) -> tensor<6x4xf32>
  %5 = moe.masked_gate_grad %rows, %ef, %gf, %gf {num_experts = 4 : i64} : (tensor<7xi32>, tensor<12xi32>, tensor<12xf32>, tensor<12xf32>) -> tensor<6x4xf32>
  %6 = moe.batchwise_threshold_loss_grad %y, %y, %t, %s : (tensor<6x4xf32>, tensor<6x4xf32>, tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  %7 = moe.importance_grad %ef, %dl : (tensor<12xi32>, tensor<4xf32>) -> tensor<12xf32>
  %8 = moe.cv_squared_grad %dl, %s {weight = 0.1 : f32} : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  %9 = moe.l2_balance_grad %dl, %s {tokens = 6 : i64, weight = 1.0 : f32} : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  %10:2 = moe.fused_route_grad %y, %y, %y, %y, %top, %e, %g d_gate %g d_load %dl d_importance %dl : (tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x3xf32>, tensor<6x2xi32>, tensor<6x2xf32>, tensor<6x2xf32>, tensor<4xf32>, tensor<4xf32>) -> (tensor<6x4xf32>, tensor<6x4xf32>)
  %11:2 = moe.fused_route_grad %y, %y, %y, %y, %top, %e, %g d_load %dl : (tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x3xf32>, tensor<6x2xi32>, tensor<6x2xf32>, tensor<4xf32>) -> (tensor<6x4xf32>, tensor<6x4xf32>)
  return
}

// CHECK-LABEL: func.func @layer_grads
// CHECK: moe.dispatch_grad %{{.*}}, %{{.*}} {tokens = 6 : i64} : (tensor<12x8xf32>, tensor<12xi32>) -> tensor<6x8xf32>
// CHECK: moe.dispatch_grad %{{.*}}, %{{.*}} rows %{{.*}} {tokens = 6 : i64}
// CHECK: moe.grouped_matmul_grad {{.*}} -> (tensor<12x8xf32>, tensor<4x8x8xf32>)
// CHECK: moe.combine_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {tokens = 6 : i64}
// CHECK: moe.combine_grad %{{.*}}, %{{.*}}, %{{.*}} rows %{{.*}}, %{{.*}} {tokens = 6 : i64}
// CHECK: moe.embedding_grad {{.*}} -> tensor<10x8xf32>
// CHECK: moe.lstm_grad %{{.*}} weights(%{{.*}}, %{{.*}}, %{{.*}}) output %{{.*}}, %{{.*}} :
// CHECK: moe.lstm_grad %{{.*}} weights(%{{.*}}, %{{.*}}, %{{.*}}) projection(%{{.*}}) output %{{.*}}, %{{.*}} :
// CHECK: moe.attention_grad
// CHECK: moe.softmax_cross_entropy_grad {{.*}} {num_samples = 3 : i64, rng_stream = 7 : i64}
// CHECK: moe.embedding_row_grad {{.*}} {vocab = 10 : i64} : (tensor<2x3xi32>, tensor<2x3x8xf32>) -> (tensor<6xi32>, tensor<6x8xf32>)
// CHECK: moe.softmax_cross_entropy_row_grad {{.*}} {num_samples = 3 : i64, rng_stream = 7 : i64} : {{.*}} -> (tensor<2x3x8xf32>, tensor<9xi32>, tensor<9x8xf32>, tensor<9xf32>)
// CHECK: moe.softmax_cross_entropy_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} target_count(%{{.*}}) : {{.*}}, tensor<f32>, tensor<i32>) -> (tensor<2x3x8xf32>, tensor<10x8xf32>, tensor<10xf32>)
// CHECK: moe.softmax_cross_entropy_row_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} target_count(%{{.*}}) {num_samples = 3 : i64, rng_stream = 7 : i64} : {{.*}}, tensor<f32>, tensor<i32>) -> (tensor<2x3x8xf32>, tensor<9xi32>, tensor<9x8xf32>, tensor<9xf32>)
func.func @layer_grads(%buf: tensor<12x8xf32>, %pos: tensor<12xi32>, %rows: tensor<7xi32>, %w: tensor<4x8x8xf32>, %off: tensor<5xi32>, %g: tensor<12xf32>, %dy: tensor<6x8xf32>, %ids: tensor<2x3xi32>, %dx: tensor<2x3x8xf32>, %wx: tensor<8x16xf32>, %wh: tensor<4x16xf32>, %b: tensor<16xf32>, %p: tensor<4x4xf32>, %y4: tensor<2x3x4xf32>, %wh8: tensor<8x16xf32>, %u: tensor<8x5xf32>, %v: tensor<5xf32>, %tgt: tensor<2x3xi32>, %wo: tensor<10x8xf32>, %bo: tensor<10xf32>, %s: tensor<f32>, %n: tensor<i32>) {
  %0 = moe.dispatch_grad %buf, %pos {tokens = 6 : i64} : (tensor<12x8xf32>, tensor<12xi32>) -> tensor<6x8xf32>
  %1 = moe.dispatch_grad %buf, %pos rows %rows {tokens = 6 : i64} : (tensor<12x8xf32>, tensor<12xi32>, tensor<7xi32>) -> tensor<6x8xf32>
  %2:2 = moe.grouped_matmul_grad %buf, %w, %off, %buf : (tensor<12x8xf32>, tensor<4x8x8xf32>, tensor<5xi32>, tensor<12x8xf32>) -> (tensor<12x8xf32>, tensor<4x8x8xf32>)
  %3:2 = moe.combine_grad %buf, %g, %pos, %dy {tokens = 6 : i64} : (tensor<12x8xf32>, tensor<12xf32>, tensor<12xi32>, tensor<6x8xf32>) -> (tensor<12x8xf32>, tensor<12xf32>)
  %4:2 = moe.combine_grad %buf, %g, %pos rows %rows, %dy {tokens = 6 : i64} : (tensor<12x8xf32>, tensor<12xf32>, tensor<12xi32>, tensor<7xi32>, tensor<6x8xf32>) -> (tensor<12x8xf32>, tensor<12xf32>)
  %5 = moe.embedding_grad %ids, %dx : (tensor<2x3xi32>, tensor<2x3x8xf32>) -> tensor<10x8xf32>
  %6:4 = moe.lstm_grad %dx weights(%wx, %wh8, %b) output %dx, %dx : (tensor<2x3x8xf32>, tensor<8x16xf32>, tensor<8x16xf32>, tensor<16xf32>, tensor<2x3x8xf32>, tensor<2x3x8xf32>) -> (tensor<2x3x8xf32>, tensor<8x16xf32>, tensor<8x16xf32>, tensor<16xf32>)
  %7:5 = moe.lstm_grad %dx weights(%wx, %wh, %b) projection(%p) output %y4, %y4 : (tensor<2x3x8xf32>, tensor<8x16xf32>, tensor<4x16xf32>, tensor<16xf32>, tensor<4x4xf32>, tensor<2x3x4xf32>, tensor<2x3x4xf32>) -> (tensor<2x3x8xf32>, tensor<8x16xf32>, tensor<4x16xf32>, tensor<16xf32>, tensor<4x4xf32>)
  %8:5 = moe.attention_grad %dx, %dx, %u, %u, %v, %dx, %dx : (tensor<2x3x8xf32>, tensor<2x3x8xf32>, tensor<8x5xf32>, tensor<8x5xf32>, tensor<5xf32>, tensor<2x3x8xf32>, tensor<2x3x8xf32>) -> (tensor<2x3x8xf32>, tensor<2x3x8xf32>, tensor<8x5xf32>, tensor<8x5xf32>, tensor<5xf32>)
  %9:3 = moe.softmax_cross_entropy_grad %dx, %tgt, %wo, %bo, %s {num_samples = 3 : i64, rng_stream = 7 : i64} : (tensor<2x3x8xf32>, tensor<2x3xi32>, tensor<10x8xf32>, tensor<10xf32>, tensor<f32>) -> (tensor<2x3x8xf32>, tensor<10x8xf32>, tensor<10xf32>)
  %10:2 = moe.embedding_row_grad %ids, %dx {vocab = 10 : i64} : (tensor<2x3xi32>, tensor<2x3x8xf32>) -> (tensor<6xi32>, tensor<6x8xf32>)
  %11:4 = moe.softmax_cross_entropy_row_grad %dx, %tgt, %wo, %bo, %s {num_samples = 3 : i64, rng_stream = 7 : i64} : (tensor<2x3x8xf32>, tensor<2x3xi32>, tensor<10x8xf32>, tensor<10xf32>, tensor<f32>) -> (tensor<2x3x8xf32>, tensor<9xi32>, tensor<9x8xf32>, tensor<9xf32>)
  %12:3 = moe.softmax_cross_entropy_grad %dx, %tgt, %wo, %bo, %s target_count(%n) : (tensor<2x3x8xf32>, tensor<2x3xi32>, tensor<10x8xf32>, tensor<10xf32>, tensor<f32>, tensor<i32>) -> (tensor<2x3x8xf32>, tensor<10x8xf32>, tensor<10xf32>)
  %13:4 = moe.softmax_cross_entropy_row_grad %dx, %tgt, %wo, %bo, %s target_count(%n) {num_samples = 3 : i64, rng_stream = 7 : i64} : (tensor<2x3x8xf32>, tensor<2x3xi32>, tensor<10x8xf32>, tensor<10xf32>, tensor<f32>, tensor<i32>) -> (tensor<2x3x8xf32>, tensor<9xi32>, tensor<9x8xf32>, tensor<9xf32>)
  return
}

// CHECK-LABEL: func.func @padding_grads
// CHECK: moe.drop_padding_grad %{{.*}}, %{{.*}} : (tensor<7xi32>, tensor<12xf32>) -> tensor<12xf32>
// CHECK: moe.load_estimate_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {k = 2 : i64} : ({{.*}}, tensor<4xf32>, tensor<7xi32>) -> (tensor<6x4xf32>, tensor<6x4xf32>)
func.func @padding_grads(%rows: tensor<7xi32>, %dg: tensor<12xf32>, %y: tensor<6x4xf32>, %top: tensor<6x3xf32>, %dl: tensor<4xf32>) {
  %0 = moe.drop_padding_grad %rows, %dg : (tensor<7xi32>, tensor<12xf32>) -> tensor<12xf32>
  %1:2 = moe.load_estimate_grad %y, %y, %y, %y, %top, %dl, %rows {k = 2 : i64} : (tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x3xf32>, tensor<4xf32>, tensor<7xi32>) -> (tensor<6x4xf32>, tensor<6x4xf32>)
  return
}
