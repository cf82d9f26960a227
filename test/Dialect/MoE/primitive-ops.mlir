// RUN: moe-opt %s | moe-opt | FileCheck %s
// RUN: moe-opt %s --mlir-print-op-generic | moe-opt | FileCheck %s

// The primitive ops that moe-decompose produces, chained as in a flat
// noisy top-k layer, must print and parse back unchanged.
// CHECK-LABEL: func.func @routing_chain
// CHECK: %[[CLEAN:.*]] = moe.matmul %{{.*}}, %{{.*}} : (tensor<6x8xf32>, tensor<8x4xf32>) -> tensor<6x4xf32>
// CHECK: %[[E:.*]], %[[G:.*]], %[[H:.*]], %[[S:.*]], %[[TOP:.*]] = moe.noisy_top_k %[[CLEAN]], noise %{{.*}} {k = 2 : i64, noise_eps = 5.000000e-02 : f32, rng_stream = 3 : i64}
// CHECK: moe.load_estimate %[[CLEAN]], noise %[[RAW:.*]], %[[H]], %[[S]], %[[TOP]] {k = 2 : i64}
// CHECK: %[[EF:.*]] = tensor.collapse_shape %[[E]]
// CHECK: %[[GF:.*]] = tensor.collapse_shape %[[G]]
// CHECK: %[[IMP:.*]] = moe.importance %[[EF]], %[[GF]] {num_experts = 4 : i64}
// CHECK: moe.cv_squared %[[IMP]] {weight = 1.000000e-01 : f32}
// CHECK: moe.l2_balance %[[IMP]] {tokens = 6 : i64, weight = 1.000000e+00 : f32}
// CHECK: %[[OFF:.*]], %[[POS:.*]], %[[TOK:.*]] = moe.dispatch_plan %[[EF]] {num_experts = 4 : i64, tokens = 6 : i64}
// CHECK: %[[BUF:.*]] = moe.dispatch %{{.*}}, %[[TOK]]
// CHECK: %[[OUT:.*]] = moe.grouped_matmul %[[BUF]], %{{.*}}, %[[OFF]]
// CHECK: %[[Y:.*]] = moe.combine %[[OUT]], %[[GF]], %[[POS]] {tokens = 6 : i64}
// CHECK: moe.activate %[[Y]] {act = #moe.activation<sigmoid>}
func.func @routing_chain(%x: tensor<6x8xf32>, %wg: tensor<8x4xf32>, %wn: tensor<8x4xf32>, %we: tensor<4x8x8xf32>) -> tensor<6x8xf32> {
  %clean = moe.matmul %x, %wg : (tensor<6x8xf32>, tensor<8x4xf32>) -> tensor<6x4xf32>
  %raw = moe.matmul %x, %wn : (tensor<6x8xf32>, tensor<8x4xf32>) -> tensor<6x4xf32>
  %e, %g, %h, %s, %top = moe.noisy_top_k %clean, noise %raw {k = 2 : i64, noise_eps = 0.05 : f32, rng_stream = 3 : i64} : (tensor<6x4xf32>, tensor<6x4xf32>) -> (tensor<6x2xi32>, tensor<6x2xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x3xf32>)
  %load = moe.load_estimate %clean, noise %raw, %h, %s, %top {k = 2 : i64} : (tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x3xf32>) -> tensor<4xf32>
  %ef = tensor.collapse_shape %e [[0, 1]] : tensor<6x2xi32> into tensor<12xi32>
  %gf = tensor.collapse_shape %g [[0, 1]] : tensor<6x2xf32> into tensor<12xf32>
  %imp = moe.importance %ef, %gf {num_experts = 4 : i64} : (tensor<12xi32>, tensor<12xf32>) -> tensor<4xf32>
  %cv = moe.cv_squared %imp {weight = 0.1 : f32} : (tensor<4xf32>) -> tensor<f32>
  %l2 = moe.l2_balance %imp {tokens = 6 : i64, weight = 1.0 : f32} : (tensor<4xf32>) -> tensor<f32>
  %off, %pos, %tok = moe.dispatch_plan %ef {num_experts = 4 : i64, tokens = 6 : i64} : (tensor<12xi32>) -> (tensor<5xi32>, tensor<12xi32>, tensor<12xi32>)
  %buf = moe.dispatch %x, %tok : (tensor<6x8xf32>, tensor<12xi32>) -> tensor<12x8xf32>
  %out = moe.grouped_matmul %buf, %we, %off : (tensor<12x8xf32>, tensor<4x8x8xf32>, tensor<5xi32>) -> tensor<12x8xf32>
  %y = moe.combine %out, %gf, %pos {tokens = 6 : i64} : (tensor<12x8xf32>, tensor<12xf32>, tensor<12xi32>) -> tensor<6x8xf32>
  %a = moe.activate %y {act = #moe.activation<sigmoid>} : tensor<6x8xf32>
  return %a : tensor<6x8xf32>
}

// Over the combined batch of all ranks (data-parallel training) the
// assignments have a capacity.
// CHECK-LABEL: func.func @combined_batchwise
// CHECK: moe.batchwise_mask %{{.*}} {combined_batch, m = 3 : i64} : (tensor<6x4xf32>) -> (tensor<6x4xf32>, tensor<7xi32>, tensor<20xi32>, tensor<20xf32>)
func.func @combined_batchwise(%logits: tensor<6x4xf32>) -> tensor<20xf32> {
  %mask, %rows, %e, %g = moe.batchwise_mask %logits {m = 3 : i64, combined_batch} : (tensor<6x4xf32>) -> (tensor<6x4xf32>, tensor<7xi32>, tensor<20xi32>, tensor<20xf32>)
  return %g : tensor<20xf32>
}

// Batchwise routing carries a row pointer through plan and combine.
// CHECK-LABEL: func.func @batchwise_chain
// CHECK: %[[MASK:.*]], %[[ROWS:.*]], %[[E:.*]], %[[G:.*]] = moe.batchwise_mask %{{.*}} {m = 3 : i64}
// CHECK: moe.batchwise_threshold_loss %{{.*}}, %[[MASK]], %{{.*}} : (tensor<6x4xf32>, tensor<6x4xf32>, tensor<4xf32>) -> tensor<f32>
// CHECK: %[[OFF:.*]], %[[POS:.*]], %{{.*}} = moe.dispatch_plan %[[E]] rows %[[ROWS]] gates %[[G]]
// CHECK: moe.combine %{{.*}}, %[[G]], %[[POS]] rows %[[ROWS]] {tokens = 6 : i64}
// CHECK: moe.softmax %{{.*}} : tensor<6x4xf32>
// CHECK: moe.scale %{{.*}} {factor = 2.500000e-01 : f32} : tensor<f32>
// CHECK: moe.bias_add %{{.*}}, %{{.*}} : (tensor<6x8xf32>, tensor<8xf32>) -> tensor<6x8xf32>
// CHECK: moe.matmul %{{.*}}, %{{.*}} {transpose_rhs} : (tensor<6x8xf32>, tensor<4x8xf32>) -> tensor<6x4xf32>
// CHECK: moe.matmul %{{.*}}, %{{.*}} {transpose_lhs} : (tensor<6x8xf32>, tensor<6x4xf32>) -> tensor<8x4xf32>
// CHECK: moe.add %{{.*}}, %{{.*}} : tensor<6x8xf32>
// CHECK: moe.sum_rows %{{.*}} : (tensor<6x8xf32>) -> tensor<8xf32>
func.func @batchwise_chain(%logits: tensor<6x4xf32>, %t: tensor<4xf32>, %buf: tensor<12x8xf32>, %b: tensor<8xf32>, %x: tensor<6x8xf32>, %wt: tensor<4x8xf32>) -> (tensor<6x8xf32>, tensor<f32>, tensor<6x4xf32>, tensor<6x8xf32>, tensor<6x4xf32>, tensor<8x4xf32>, tensor<8xf32>) {
  %mask, %rows, %e, %g = moe.batchwise_mask %logits {m = 3 : i64} : (tensor<6x4xf32>) -> (tensor<6x4xf32>, tensor<7xi32>, tensor<12xi32>, tensor<12xf32>)
  %l = moe.batchwise_threshold_loss %logits, %mask, %t : (tensor<6x4xf32>, tensor<6x4xf32>, tensor<4xf32>) -> tensor<f32>
  %off, %pos, %tok = moe.dispatch_plan %e rows %rows gates %g {num_experts = 4 : i64, tokens = 6 : i64} : (tensor<12xi32>, tensor<7xi32>, tensor<12xf32>) -> (tensor<5xi32>, tensor<12xi32>, tensor<12xi32>)
  %y = moe.combine %buf, %g, %pos rows %rows {tokens = 6 : i64} : (tensor<12x8xf32>, tensor<12xf32>, tensor<12xi32>, tensor<7xi32>) -> tensor<6x8xf32>
  %p = moe.softmax %logits : tensor<6x4xf32>
  %s = moe.scale %l {factor = 0.25 : f32} : tensor<f32>
  %yb = moe.bias_add %y, %b : (tensor<6x8xf32>, tensor<8xf32>) -> tensor<6x8xf32>
  %mt = moe.matmul %x, %wt {transpose_rhs} : (tensor<6x8xf32>, tensor<4x8xf32>) -> tensor<6x4xf32>
  %ml = moe.matmul %x, %mt {transpose_lhs} : (tensor<6x8xf32>, tensor<6x4xf32>) -> tensor<8x4xf32>
  %sum = moe.add %y, %yb : tensor<6x8xf32>
  %col = moe.sum_rows %sum : (tensor<6x8xf32>) -> tensor<8xf32>
  return %y, %s, %p, %yb, %mt, %ml, %col : tensor<6x8xf32>, tensor<f32>, tensor<6x4xf32>, tensor<6x8xf32>, tensor<6x4xf32>, tensor<8x4xf32>, tensor<8xf32>
}

// The optimizer ops round-trip with their hyper-parameters.
// CHECK-LABEL: func.func @optimizer
// CHECK: %[[LR:.*]] = moe.lr_schedule %{{.*}} {base_lr = 1.000000e-03 : f32, constant_steps = 200 : i64, warmup_steps = 200 : i64} : (tensor<i64>) -> tensor<f32>
// CHECK: moe.adam_update %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[LR]], %{{.*}} {beta1 = 0.899999976 : f32, beta2 = 9.990000e-01 : f32, eps = 9.99999993E-9 : f32, weight_decay = 0.000000e+00 : f32}
// CHECK: moe.adam_update_rows %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[LR]], %{{.*}} {beta1 = {{.*}}} : (tensor<4x2xf32>, tensor<3xi32>, tensor<3x2xf32>, tensor<4x2xf32>, tensor<4x2xf32>, tensor<f32>, tensor<i64>)
func.func @optimizer(%p: tensor<4x2xf32>, %g: tensor<4x2xf32>, %m: tensor<4x2xf32>, %v: tensor<4x2xf32>, %s: tensor<i64>, %r: tensor<3xi32>, %g3: tensor<3x2xf32>) -> tensor<4x2xf32> {
  %lr = moe.lr_schedule %s {base_lr = 1.0e-3 : f32, warmup_steps = 200 : i64, constant_steps = 200 : i64} : (tensor<i64>) -> tensor<f32>
  %p2, %m2, %v2 = moe.adam_update %p, %g, %m, %v, %lr, %s {beta1 = 0.9 : f32, beta2 = 0.999 : f32, eps = 1.0e-8 : f32, weight_decay = 0.0 : f32} : (tensor<4x2xf32>, tensor<4x2xf32>, tensor<4x2xf32>, tensor<4x2xf32>, tensor<f32>, tensor<i64>) -> (tensor<4x2xf32>, tensor<4x2xf32>, tensor<4x2xf32>)
  %p3, %m3, %v3 = moe.adam_update_rows %p2, %r, %g3, %m2, %v2, %lr, %s {beta1 = 0.9 : f32, beta2 = 0.999 : f32, eps = 1.0e-8 : f32, weight_decay = 0.0 : f32} : (tensor<4x2xf32>, tensor<3xi32>, tensor<3x2xf32>, tensor<4x2xf32>, tensor<4x2xf32>, tensor<f32>, tensor<i64>) -> (tensor<4x2xf32>, tensor<4x2xf32>, tensor<4x2xf32>)
  return %p3 : tensor<4x2xf32>
}

// Room for every (token, expert) pair, or a smaller compiled capacity.
// CHECK-LABEL: func.func @threshold_mask
// CHECK: moe.threshold_mask %{{.*}}, %{{.*}} : (tensor<3x2xf32>, tensor<2xf32>) -> (tensor<4xi32>, tensor<6xi32>, tensor<6xf32>)
// CHECK: moe.threshold_mask %{{.*}}, %{{.*}} : (tensor<3x2xf32>, tensor<2xf32>) -> (tensor<4xi32>, tensor<4xi32>, tensor<4xf32>)
func.func @threshold_mask(%l: tensor<3x2xf32>, %t: tensor<2xf32>) -> (tensor<6xf32>, tensor<4xf32>) {
  %r, %e, %g = moe.threshold_mask %l, %t : (tensor<3x2xf32>, tensor<2xf32>) -> (tensor<4xi32>, tensor<6xi32>, tensor<6xf32>)
  %r2, %e2, %g2 = moe.threshold_mask %l, %t : (tensor<3x2xf32>, tensor<2xf32>) -> (tensor<4xi32>, tensor<4xi32>, tensor<4xf32>)
  return %g, %g2 : tensor<6xf32>, tensor<4xf32>
}

// CHECK-LABEL: func.func @fused_route
// CHECK: moe.fused_route %{{.*}}, %{{.*}}, %{{.*}} {k = 2 : i64, rng_stream = 1 : i64} : (tensor<6x8xf32>, tensor<8x4xf32>, tensor<8x4xf32>) -> (tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x2xi32>, tensor<6x2xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x3xf32>, tensor<4xf32>, tensor<4xf32>, tensor<5xi32>, tensor<12xi32>, tensor<12xi32>)
func.func @fused_route(%x: tensor<6x8xf32>, %wg: tensor<8x4xf32>, %wn: tensor<8x4xf32>) -> tensor<5xi32> {
  %r:12 = moe.fused_route %x, %wg, %wn {k = 2 : i64, rng_stream = 1 : i64} : (tensor<6x8xf32>, tensor<8x4xf32>, tensor<8x4xf32>) -> (tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x2xi32>, tensor<6x2xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x3xf32>, tensor<4xf32>, tensor<4xf32>, tensor<5xi32>, tensor<12xi32>, tensor<12xi32>)
  return %r#9 : tensor<5xi32>
}

// CHECK-LABEL: func.func @compose_routes
// CHECK: moe.compose_routes %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {experts_per_group = 4 : i64} : (tensor<6xi32>, tensor<6xf32>, tensor<6xi32>, tensor<6x2xi32>, tensor<6x2xf32>) -> (tensor<12xi32>, tensor<12xf32>)
// CHECK: moe.compose_routes_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : (tensor<6xf32>, tensor<6xi32>, tensor<6x2xf32>, tensor<12xf32>) -> (tensor<6xf32>, tensor<6x2xf32>)
func.func @compose_routes(%pe: tensor<6xi32>, %pg: tensor<6xf32>, %pos: tensor<6xi32>, %se: tensor<6x2xi32>, %sg: tensor<6x2xf32>) -> tensor<6x2xf32> {
  %e, %g = moe.compose_routes %pe, %pg, %pos, %se, %sg {experts_per_group = 4 : i64} : (tensor<6xi32>, tensor<6xf32>, tensor<6xi32>, tensor<6x2xi32>, tensor<6x2xf32>) -> (tensor<12xi32>, tensor<12xf32>)
  %dp, %ds = moe.compose_routes_grad %pg, %pos, %sg, %g : (tensor<6xf32>, tensor<6xi32>, tensor<6x2xf32>, tensor<12xf32>) -> (tensor<6xf32>, tensor<6x2xf32>)
  return %ds : tensor<6x2xf32>
}

// The secondary level of a hierarchical layer draws its noise by the
// group plan's positions.
// CHECK-LABEL: func.func @noise_position
// CHECK: moe.noisy_top_k %{{.*}}, noise %{{.*}} noise_position %{{.*}} {k = 1 : i64, rng_stream = 2 : i64} : (tensor<4x3xf32>, tensor<4x3xf32>, tensor<4xi32>)
func.func @noise_position(%c: tensor<4x3xf32>, %n: tensor<4x3xf32>, %p: tensor<4xi32>) -> tensor<4x1xi32> {
  %e, %g, %h, %s, %t = moe.noisy_top_k %c, noise %n noise_position %p {k = 1 : i64, rng_stream = 2 : i64} : (tensor<4x3xf32>, tensor<4x3xf32>, tensor<4xi32>) -> (tensor<4x1xi32>, tensor<4x1xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x2xf32>)
  return %e : tensor<4x1xi32>
}

// Padding out of a top-2 selection of 2 x 3 tokens, and the load estimate
// over the tokens that keep assignments.
// CHECK-LABEL: func.func @drop_padding
// CHECK: %[[ROWS:.*]], %{{.*}}, %{{.*}} = moe.drop_padding %{{.*}}, %{{.*}} lengths %{{.*}} : (tensor<12xi32>, tensor<12xf32>, tensor<2xi32>) -> (tensor<7xi32>, tensor<12xi32>, tensor<12xf32>)
// CHECK: moe.load_estimate %{{.*}}, noise %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} rows %[[ROWS]] {k = 2 : i64}
func.func @drop_padding(%e: tensor<12xi32>, %g: tensor<12xf32>, %len: tensor<2xi32>, %c: tensor<6x4xf32>, %top: tensor<6x3xf32>) -> tensor<4xf32> {
  %rows, %ke, %kg = moe.drop_padding %e, %g lengths %len : (tensor<12xi32>, tensor<12xf32>, tensor<2xi32>) -> (tensor<7xi32>, tensor<12xi32>, tensor<12xf32>)
  %load = moe.load_estimate %c, noise %c, %c, %c, %top rows %rows {k = 2 : i64} : (tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x3xf32>, tensor<7xi32>) -> tensor<4xf32>
  return %load : tensor<4xf32>
}
