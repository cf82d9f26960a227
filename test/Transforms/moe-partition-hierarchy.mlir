// RUN: moe-opt %s --split-input-file --moe-partition --verify-diagnostics | FileCheck %s
// RUN: moe-opt %S/../Integration/Inputs/tiny_hmoe.mlir --moe-train-pipeline="expert-parallel=true" 2>/dev/null | FileCheck %s --check-prefix=BATCHWISE
// RUN: moe-opt %S/../Integration/Inputs/tiny_hmoe_topk.mlir --moe-train-pipeline="expert-parallel=true" 2>/dev/null | FileCheck %s --check-prefix=TOPK

// Hierarchical layers across ranks (paper 3.3 and section 4).

// Load_H = Load_primary[g] * Load_g[j] / |X^(g)| is not linear in the
// batch: it takes the ranks' sums of both loads and of the group offsets
// (which add up to the global batch's), so its CV^2 is the global batch's
// on every rank and is not averaged again.
// CHECK-LABEL: func.func @hierarchical_load(
// CHECK-SAME: %[[PL:[^:]*]]: tensor<2xf32> {{{[^}]*}}}, %[[SL:[^:]*]]: tensor<2x4xf32> {{{[^}]*}}}, %[[OFF:[^:]*]]: tensor<3xi32>
// CHECK: %[[PL_ALL:.*]] = mesh.all_reduce %[[PL]] on @ranks mesh_axes = [0] : tensor<2xf32> -> tensor<2xf32>
// CHECK: %[[SL_ALL:.*]] = mesh.all_reduce %[[SL]] on @ranks mesh_axes = [0] : tensor<2x4xf32> -> tensor<2x4xf32>
// CHECK: %[[OFF_ALL:.*]] = mesh.all_reduce %[[OFF]] on @ranks mesh_axes = [0] : tensor<3xi32> -> tensor<3xi32>
// CHECK: %[[LH:.*]] = moe.hierarchical_load %[[PL_ALL]], %[[SL_ALL]], %[[OFF_ALL]]
// CHECK-NEXT: moe.cv_squared %[[LH]]
// The primary load's own CV^2 averages it as a flat layer's does.
// CHECK: %[[PL_AVG:.*]] = mesh.all_reduce %[[PL]] on @ranks mesh_axes = [0] reduction = <average>
// CHECK: moe.cv_squared %[[PL_AVG]]
func.func @hierarchical_load(
    %pl: tensor<2xf32> {moe.param = "pl", moe.init = #moe.init<zeros>},
    %sl: tensor<2x4xf32> {moe.param = "sl", moe.init = #moe.init<zeros>},
    %off: tensor<3xi32> {moe.input = "offsets"}) -> tensor<f32> {
  %lh = moe.hierarchical_load %pl, %sl, %off : (tensor<2xf32>, tensor<2x4xf32>, tensor<3xi32>) -> tensor<8xf32>
  %cv = moe.cv_squared %lh {weight = 0.1 : f32} : (tensor<8xf32>) -> tensor<f32>
  %cvp = moe.cv_squared %pl {weight = 0.1 : f32} : (tensor<2xf32>) -> tensor<f32>
  %l = moe.total_loss %cv, %cvp : tensor<f32>
  return %l : tensor<f32>
}

// -----

// A secondary batchwise mask over the combined batch (segments of the
// primary plan) is what moe-partition expects; its Eq. 8 loss, a sum over
// the rows, is summed over the ranks.
// CHECK-LABEL: func.func @grouped_combined(
// CHECK: moe.grouped_batchwise_mask %{{.*}} offsets %{{.*}} {combined_batch, groups = 2 : i64, m = 2 : i64}
// CHECK: %[[L8:.*]] = moe.grouped_batchwise_threshold_loss
// CHECK: %[[L8_ALL:.*]] = mesh.all_reduce %[[L8]] on @ranks mesh_axes = [0] : tensor<f32> -> tensor<f32>
// CHECK: return %[[L8_ALL]]
func.func @grouped_combined(
    %l: tensor<16x4xf32> {moe.param = "l", moe.init = #moe.init<zeros>},
    %off: tensor<3xi32> {moe.input = "offsets"},
    %t: tensor<2x4xf32> {moe.param = "t", moe.init = #moe.init<zeros>}) -> tensor<f32> {
  %m, %r, %e, %g = moe.grouped_batchwise_mask %l offsets %off {combined_batch, groups = 2 : i64, m = 2 : i64}
      : (tensor<16x4xf32>, tensor<3xi32>) -> (tensor<16x4xf32>, tensor<17xi32>, tensor<32xi32>, tensor<32xf32>)
  %loss = moe.grouped_batchwise_threshold_loss %l, %m, %t offsets %off
      : (tensor<16x4xf32>, tensor<16x4xf32>, tensor<2x4xf32>, tensor<3xi32>) -> tensor<f32>
  return %loss : tensor<f32>
}

// -----

// One ranking only this rank's rows of each group is refused.
func.func @grouped_local(%l: tensor<8x4xf32> {moe.param = "l", moe.init = #moe.init<zeros>}) -> tensor<f32> {
  // expected-error@+1 {{ranks only this rank's rows of each group; data-parallel training ranks the combined batch of all ranks (paper Appendix A at each level): lower with moe-expand-hierarchy{combined-batch}}}
  %m, %r, %e, %g = moe.grouped_batchwise_mask %l {groups = 2 : i64, m = 2 : i64}
      : (tensor<8x4xf32>) -> (tensor<8x4xf32>, tensor<9xi32>, tensor<16xi32>, tensor<16xf32>)
  %c = moe.cv_squared %g {weight = 1.0 : f32} : (tensor<16xf32>) -> tensor<f32>
  return %c : tensor<f32>
}

// The batchwise hierarchy (Inputs/tiny_hmoe.mlir) through the training
// pipeline with expert-parallel: both masks rank the combined batch, the
// grouped Eq. 8 is summed over the ranks, the experts are sharded and
// their rows exchanged. The evaluation copy routes with threshold masks at
// both levels (Eq. 7) and exchanges its rows too.
// BATCHWISE-LABEL: func.func @tiny_hmoe(
// BATCHWISE: moe.batchwise_mask %{{.*}} {combined_batch, m = 10 : i64{{.*}}} : (tensor<20x2xf32>) -> (tensor<20x2xf32>, tensor<21xi32>, tensor<40xi32>, tensor<40xf32>)
// BATCHWISE: %[[OFF:.*]], %{{.*}}, %{{.*}} = moe.dispatch_plan
// BATCHWISE: %[[SM:.*]], %{{.*}}, %{{.*}}, %{{.*}} = moe.grouped_batchwise_mask %{{.*}} offsets %[[OFF]] {combined_batch, groups = 2 : i64, m = 5 : i64{{.*}}} : (tensor<40x4xf32>, tensor<3xi32>) -> (tensor<40x4xf32>, tensor<41xi32>, tensor<80xi32>, tensor<80xf32>)
// BATCHWISE: %[[L8:.*]] = moe.grouped_batchwise_threshold_loss %{{.*}}, %[[SM]], %{{.*}} offsets %[[OFF]]
// BATCHWISE: mesh.all_reduce %[[L8]] on @ranks mesh_axes = [0] {{.*}}: tensor<f32> -> tensor<f32>
// BATCHWISE: moe.exchange_to_experts
// BATCHWISE: moe.grouped_matmul %{{.*}} : (tensor<?x8xf32>, tensor<8x8x8xf32, #moe.shard<@ranks>>, tensor<9xi32>) -> tensor<?x8xf32>
// BATCHWISE: moe.exchange_to_tokens
// BATCHWISE-LABEL: func.func @tiny_hmoe_train_step(
// BATCHWISE: moe.grouped_batchwise_threshold_loss_grad {{.*}} : (tensor<40x4xf32>, tensor<40x4xf32>, tensor<2x4xf32>, tensor<f32>, tensor<3xi32>) -> tensor<2x4xf32>
// BATCHWISE-LABEL: func.func @tiny_hmoe_eval(
// BATCHWISE: moe.threshold_mask
// BATCHWISE: moe.grouped_threshold_mask
// BATCHWISE: moe.exchange_to_experts
// BATCHWISE: moe.grouped_matmul %{{.*}} : (tensor<?x8xf32>, tensor<8x8x8xf32, #moe.shard<@ranks>>, tensor<9xi32>) -> tensor<?x8xf32>
// BATCHWISE: moe.exchange_to_tokens

// The noisy top-k hierarchy (Inputs/tiny_hmoe_topk.mlir): the secondary
// noise is drawn by the group plan's positions, Load_H takes the ranks'
// sums, and the experts are sharded.
// TOPK-LABEL: func.func @tiny_hmoe_topk(
// TOPK: %{{.*}}, %[[POS:.*]], %{{.*}} = moe.dispatch_plan
// TOPK: moe.noisy_top_k %{{.*}}, noise %{{.*}} noise_position %[[POS]]
// TOPK: moe.grouped_load_estimate
// TOPK: mesh.all_reduce %{{.*}} on @ranks mesh_axes = [0] {{.*}}: tensor<3xi32> -> tensor<3xi32>
// TOPK: moe.hierarchical_load
// TOPK: moe.exchange_to_experts
// TOPK: moe.grouped_matmul %{{.*}} : (tensor<?x8xf32>, tensor<8x8x8xf32, #moe.shard<@ranks>>, tensor<9xi32>) -> tensor<?x8xf32>
// TOPK: moe.exchange_to_tokens
// TOPK-LABEL: func.func @tiny_hmoe_topk_eval(
// TOPK: moe.exchange_to_experts
