// RUN: moe-opt %s -split-input-file --moe-fuse-routing | FileCheck %s
// RUN: moe-opt %s -split-input-file --moe-fuse-routing --moe-autodiff | FileCheck %s --check-prefix=GRAD

// The chain moe-decompose emits for a noisy top-k layer with importance and
// load losses: both logits, the selection, the load, the importance and the
// plan become one moe.fused_route; expert matmuls, combine and the loss
// arithmetic stay outside.
// CHECK-LABEL: func.func @noisy_chain
// CHECK-SAME: (%[[X:[^:]*]]: tensor<6x8xf32>, %[[WG:[^:]*]]: tensor<8x4xf32> {{{[^}]*}}}, %[[WN:[^:]*]]: tensor<8x4xf32>
// CHECK-NOT: moe.matmul
// CHECK: %[[C:.*]], %[[R:.*]], %[[E:.*]], %[[G:.*]], %[[H:.*]], %[[S:.*]], %[[T:.*]], %[[LOAD:.*]], %[[IMP:.*]], %[[OFF:.*]], %[[POS:.*]], %[[TOK:.*]] = moe.fused_route %[[X]], %[[WG]], %[[WN]] {k = 2 : i64, rng_stream = 3 : i64}
// CHECK-NOT: moe.noisy_top_k
// CHECK-NOT: moe.load_estimate
// CHECK-NOT: moe.importance
// CHECK-NOT: moe.dispatch_plan
// CHECK: moe.cv_squared %[[LOAD]]
// CHECK: moe.cv_squared %[[IMP]]
// CHECK: moe.dispatch %[[X]], %[[TOK]]
// CHECK: moe.grouped_matmul %{{.*}}, %{{.*}}, %[[OFF]]
// CHECK: moe.combine %{{.*}}, %{{.*}}, %[[POS]]

// The fused op's backward is one op, as its forward: here the load's and
// the importance's gradients (the gates reach no loss) into both logits,
// then both logits into x and the two weights.
// GRAD-LABEL: func.func @noisy_chain_train_step
// GRAD: %[[C:.*]], %[[R:.*]], %[[E:.*]], %[[G:.*]], %[[H:.*]], %[[S:.*]], %[[T:.*]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} = moe.fused_route
// GRAD-NOT: moe.importance_grad
// GRAD-NOT: moe.noisy_top_k_grad
// GRAD-NOT: moe.load_estimate_grad
// GRAD: moe.fused_route_grad %[[C]], %[[R]], %[[H]], %[[S]], %[[T]], %[[E]], %[[G]] d_load %{{.*}} d_importance %{{.*}} :
// GRAD-NOT: moe.noisy_top_k_grad
// GRAD-DAG: moe.matmul %{{.*}}, %{{.*}} {transpose_lhs} : (tensor<6x8xf32>, tensor<6x4xf32>) -> tensor<8x4xf32>
func.func @noisy_chain(%x: tensor<6x8xf32>, %wg: tensor<8x4xf32> {moe.param = "g", moe.init = #moe.init<zeros>}, %wn: tensor<8x4xf32> {moe.param = "n", moe.init = #moe.init<zeros>}, %we: tensor<4x8x8xf32> {moe.param = "e", moe.init = #moe.init<glorot_uniform>}) -> (tensor<f32>, tensor<6x8xf32>) {
  %clean = moe.matmul %x, %wg : (tensor<6x8xf32>, tensor<8x4xf32>) -> tensor<6x4xf32>
  %raw = moe.matmul %x, %wn : (tensor<6x8xf32>, tensor<8x4xf32>) -> tensor<6x4xf32>
  %e, %g, %h, %s, %top = moe.noisy_top_k %clean, noise %raw {k = 2 : i64, rng_stream = 3 : i64} : (tensor<6x4xf32>, tensor<6x4xf32>) -> (tensor<6x2xi32>, tensor<6x2xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x3xf32>)
  %ef = tensor.collapse_shape %e [[0, 1]] : tensor<6x2xi32> into tensor<12xi32>
  %gf = tensor.collapse_shape %g [[0, 1]] : tensor<6x2xf32> into tensor<12xf32>
  %load = moe.load_estimate %clean, noise %raw, %h, %s, %top {k = 2 : i64} : (tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x3xf32>) -> tensor<4xf32>
  %l1 = moe.cv_squared %load {weight = 0.1 : f32} : (tensor<4xf32>) -> tensor<f32>
  %imp = moe.importance %ef, %gf {num_experts = 4 : i64} : (tensor<12xi32>, tensor<12xf32>) -> tensor<4xf32>
  %l2 = moe.cv_squared %imp {weight = 0.1 : f32} : (tensor<4xf32>) -> tensor<f32>
  %off, %pos, %tok = moe.dispatch_plan %ef {num_experts = 4 : i64, tokens = 6 : i64} : (tensor<12xi32>) -> (tensor<5xi32>, tensor<12xi32>, tensor<12xi32>)
  %buf = moe.dispatch %x, %tok : (tensor<6x8xf32>, tensor<12xi32>) -> tensor<12x8xf32>
  %out = moe.grouped_matmul %buf, %we, %off : (tensor<12x8xf32>, tensor<4x8x8xf32>, tensor<5xi32>) -> tensor<12x8xf32>
  %y = moe.combine %out, %gf, %pos {tokens = 6 : i64} : (tensor<12x8xf32>, tensor<12xf32>, tensor<12xi32>) -> tensor<6x8xf32>
  %aux = moe.add %l1, %l2 : tensor<f32>
  %loss = moe.add %aux, %aux : tensor<f32>
  return %loss, %y : tensor<f32>, tensor<6x8xf32>
}

// -----

// Top-k without noise has no noise matmul: nothing to fuse.
// CHECK-LABEL: func.func @plain_top_k
// CHECK: moe.noisy_top_k
// CHECK-NOT: moe.fused_route
func.func @plain_top_k(%x: tensor<6x8xf32>, %wg: tensor<8x4xf32>) -> tensor<5xi32> {
  %clean = moe.matmul %x, %wg : (tensor<6x8xf32>, tensor<8x4xf32>) -> tensor<6x4xf32>
  %e, %g, %h, %s, %top = moe.noisy_top_k %clean {k = 2 : i64} : (tensor<6x4xf32>) -> (tensor<6x2xi32>, tensor<6x2xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x3xf32>)
  %ef = tensor.collapse_shape %e [[0, 1]] : tensor<6x2xi32> into tensor<12xi32>
  %off, %pos, %tok = moe.dispatch_plan %ef {num_experts = 4 : i64, tokens = 6 : i64} : (tensor<12xi32>) -> (tensor<5xi32>, tensor<12xi32>, tensor<12xi32>)
  return %off : tensor<5xi32>
}

// -----

// Batchwise masks rank columns over the whole batch: not a row-wise router.
// CHECK-LABEL: func.func @batchwise
// CHECK: moe.batchwise_mask
// CHECK-NOT: moe.fused_route
func.func @batchwise(%x: tensor<8x8xf32>, %wg: tensor<8x4xf32>) -> tensor<5xi32> {
  %clean = moe.matmul %x, %wg : (tensor<8x8xf32>, tensor<8x4xf32>) -> tensor<8x4xf32>
  %mask, %rows, %e, %g = moe.batchwise_mask %clean {m = 4 : i64} : (tensor<8x4xf32>) -> (tensor<8x4xf32>, tensor<9xi32>, tensor<16xi32>, tensor<16xf32>)
  %off, %pos, %tok = moe.dispatch_plan %e rows %rows {num_experts = 4 : i64, tokens = 8 : i64} : (tensor<16xi32>, tensor<9xi32>) -> (tensor<5xi32>, tensor<16xi32>, tensor<16xi32>)
  return %off : tensor<5xi32>
}

// -----

// Logits read outside the routing chain would have to be recomputed or
// exposed: the chain is left alone.
// CHECK-LABEL: func.func @logits_escape
// CHECK: moe.noisy_top_k
// CHECK-NOT: moe.fused_route
func.func @logits_escape(%x: tensor<6x8xf32>, %wg: tensor<8x4xf32>, %wn: tensor<8x4xf32>) -> (tensor<5xi32>, tensor<6x4xf32>) {
  %clean = moe.matmul %x, %wg : (tensor<6x8xf32>, tensor<8x4xf32>) -> tensor<6x4xf32>
  %raw = moe.matmul %x, %wn : (tensor<6x8xf32>, tensor<8x4xf32>) -> tensor<6x4xf32>
  %e, %g, %h, %s, %top = moe.noisy_top_k %clean, noise %raw {k = 2 : i64} : (tensor<6x4xf32>, tensor<6x4xf32>) -> (tensor<6x2xi32>, tensor<6x2xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x3xf32>)
  %ef = tensor.collapse_shape %e [[0, 1]] : tensor<6x2xi32> into tensor<12xi32>
  %off, %pos, %tok = moe.dispatch_plan %ef {num_experts = 4 : i64, tokens = 6 : i64} : (tensor<12xi32>) -> (tensor<5xi32>, tensor<12xi32>, tensor<12xi32>)
  %p = moe.softmax %clean : tensor<6x4xf32>
  return %off, %p : tensor<5xi32>, tensor<6x4xf32>
}

// -----

// One product feeding both the clean and the noise logits (the same weights
// for both, merged by CSE) is not the pattern: left alone, not fused twice.
// CHECK-LABEL: func.func @shared_product
// CHECK: moe.noisy_top_k
// CHECK-NOT: moe.fused_route
func.func @shared_product(%x: tensor<6x8xf32>, %wg: tensor<8x4xf32>) -> tensor<5xi32> {
  %clean = moe.matmul %x, %wg : (tensor<6x8xf32>, tensor<8x4xf32>) -> tensor<6x4xf32>
  %e, %g, %h, %s, %top = moe.noisy_top_k %clean, noise %clean {k = 2 : i64} : (tensor<6x4xf32>, tensor<6x4xf32>) -> (tensor<6x2xi32>, tensor<6x2xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x3xf32>)
  %ef = tensor.collapse_shape %e [[0, 1]] : tensor<6x2xi32> into tensor<12xi32>
  %off, %pos, %tok = moe.dispatch_plan %ef {num_experts = 4 : i64, tokens = 6 : i64} : (tensor<12xi32>) -> (tensor<5xi32>, tensor<12xi32>, tensor<12xi32>)
  return %off : tensor<5xi32>
}

// -----

// Gate products that allow TF32 (router-precision=tf32) give a fused op
// that does, and its gradient products keep it.
// CHECK-LABEL: func.func @tf32_chain
// CHECK: moe.fused_route %{{.*}}, %{{.*}}, %{{.*}} {allow_tf32, k = 2 : i64
// GRAD-LABEL: func.func @tf32_chain_train_step
// GRAD: moe.fused_route %{{.*}}, %{{.*}}, %{{.*}} {allow_tf32, k = 2 : i64
// GRAD: moe.matmul %{{.*}}, %{{.*}} {allow_tf32, transpose_lhs} : (tensor<6x8xf32>, tensor<6x4xf32>) -> tensor<8x4xf32>
// GRAD: moe.matmul %{{.*}}, %{{.*}} {allow_tf32, transpose_lhs} : (tensor<6x8xf32>, tensor<6x4xf32>) -> tensor<8x4xf32>
func.func @tf32_chain(%x: tensor<6x8xf32>, %wg: tensor<8x4xf32> {moe.param = "g", moe.init = #moe.init<zeros>}, %wn: tensor<8x4xf32> {moe.param = "n", moe.init = #moe.init<zeros>}) -> (tensor<f32>, tensor<5xi32>) {
  %clean = moe.matmul %x, %wg {allow_tf32} : (tensor<6x8xf32>, tensor<8x4xf32>) -> tensor<6x4xf32>
  %raw = moe.matmul %x, %wn {allow_tf32} : (tensor<6x8xf32>, tensor<8x4xf32>) -> tensor<6x4xf32>
  %e, %g, %h, %s, %top = moe.noisy_top_k %clean, noise %raw {k = 2 : i64} : (tensor<6x4xf32>, tensor<6x4xf32>) -> (tensor<6x2xi32>, tensor<6x2xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x3xf32>)
  %ef = tensor.collapse_shape %e [[0, 1]] : tensor<6x2xi32> into tensor<12xi32>
  %gf = tensor.collapse_shape %g [[0, 1]] : tensor<6x2xf32> into tensor<12xf32>
  %load = moe.load_estimate %clean, noise %raw, %h, %s, %top {k = 2 : i64} : (tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x3xf32>) -> tensor<4xf32>
  %l1 = moe.cv_squared %load {weight = 0.1 : f32} : (tensor<4xf32>) -> tensor<f32>
  %off, %pos, %tok = moe.dispatch_plan %ef {num_experts = 4 : i64, tokens = 6 : i64} : (tensor<12xi32>) -> (tensor<5xi32>, tensor<12xi32>, tensor<12xi32>)
  return %l1, %off : tensor<f32>, tensor<5xi32>
}

// -----

// A padded layer (moe.drop_padding between the selection and the plan,
// row pointers on the load estimate) stays unfused: the fused op has no
// lengths. Its gradient runs through drop_padding_grad and the load
// estimate's backward over the same row pointers.
// CHECK-LABEL: func.func @padded_chain
// CHECK-NOT: moe.fused_route
// CHECK: moe.noisy_top_k
// CHECK: moe.drop_padding
// GRAD-LABEL: func.func @padded_chain_train_step
// GRAD: %[[ROWS:.*]], %{{.*}}, %{{.*}} = moe.drop_padding
// GRAD: moe.load_estimate %{{.*}} rows %[[ROWS]]
// GRAD: moe.load_estimate_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[ROWS]] {k = 2 : i64}
// GRAD: %[[DG:.*]] = moe.drop_padding_grad %[[ROWS]], %{{.*}} : (tensor<7xi32>, tensor<12xf32>) -> tensor<12xf32>
// GRAD: tensor.expand_shape %[[DG]]
// GRAD: moe.noisy_top_k_grad
func.func @padded_chain(%x: tensor<6x8xf32>, %len: tensor<2xi32>, %wg: tensor<8x4xf32> {moe.param = "g", moe.init = #moe.init<zeros>}, %wn: tensor<8x4xf32> {moe.param = "n", moe.init = #moe.init<zeros>}) -> (tensor<f32>, tensor<5xi32>) {
  %clean = moe.matmul %x, %wg : (tensor<6x8xf32>, tensor<8x4xf32>) -> tensor<6x4xf32>
  %raw = moe.matmul %x, %wn : (tensor<6x8xf32>, tensor<8x4xf32>) -> tensor<6x4xf32>
  %e, %g, %h, %s, %top = moe.noisy_top_k %clean, noise %raw {k = 2 : i64} : (tensor<6x4xf32>, tensor<6x4xf32>) -> (tensor<6x2xi32>, tensor<6x2xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x3xf32>)
  %ef = tensor.collapse_shape %e [[0, 1]] : tensor<6x2xi32> into tensor<12xi32>
  %gf = tensor.collapse_shape %g [[0, 1]] : tensor<6x2xf32> into tensor<12xf32>
  %rows, %ke, %kg = moe.drop_padding %ef, %gf lengths %len : (tensor<12xi32>, tensor<12xf32>, tensor<2xi32>) -> (tensor<7xi32>, tensor<12xi32>, tensor<12xf32>)
  %load = moe.load_estimate %clean, noise %raw, %h, %s, %top rows %rows {k = 2 : i64} : (tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x3xf32>, tensor<7xi32>) -> tensor<4xf32>
  %l1 = moe.cv_squared %load {weight = 0.1 : f32} : (tensor<4xf32>) -> tensor<f32>
  %imp = moe.importance %ke, %kg {num_experts = 4 : i64} : (tensor<12xi32>, tensor<12xf32>) -> tensor<4xf32>
  %l2 = moe.cv_squared %imp {weight = 0.1 : f32} : (tensor<4xf32>) -> tensor<f32>
  %loss = moe.total_loss %l1, %l2 : tensor<f32>
  %off, %pos, %tok = moe.dispatch_plan %ke rows %rows {num_experts = 4 : i64, tokens = 6 : i64} : (tensor<12xi32>, tensor<7xi32>) -> (tensor<5xi32>, tensor<12xi32>, tensor<12xi32>)
  return %loss, %off : tensor<f32>, tensor<5xi32>
}
