// RUN: moe-opt %s --split-input-file --moe-partition --verify-diagnostics | FileCheck %s
// RUN: moe-opt %examples/tiny_moe.mlir --moe-train-pipeline="data-parallel=true" 2>/dev/null | FileCheck %s --check-prefix=PIPELINE

// The task loss becomes the global batch's: the ranks' batches may hold
// different numbers of non-padding targets, so each rank divides its sum
// by the global count (this rank's moe.count_targets summed over the
// ranks) and the ranks' parts are summed. The balancing statistics are
// averaged before their losses. One 1-D mesh of a size known only at run
// time.
// CHECK: mesh.mesh @ranks(shape = ?)
// CHECK-LABEL: func.func @lm(
// CHECK-SAME: %[[T:[^:]*]]: tensor<8xi32> {moe.input = "targets"}
// CHECK: %[[IMP:.*]] = moe.importance
// CHECK: %[[IMP_ALL:.*]] = mesh.all_reduce %[[IMP]] on @ranks mesh_axes = [0] reduction = <average>
// CHECK: moe.cv_squared %[[IMP_ALL]]
// CHECK: %[[BAL:.*]] = mesh.all_reduce %{{.*}} on @ranks mesh_axes = [0] reduction = <average>
// CHECK: moe.l2_balance %[[BAL]]
// CHECK: %[[N:.*]] = moe.count_targets %[[T]] : (tensor<8xi32>) -> tensor<i32>
// CHECK: %[[N_ALL:.*]] = mesh.all_reduce %[[N]] on @ranks mesh_axes = [0] : tensor<i32> -> tensor<i32>
// CHECK: %[[CE:.*]] = moe.softmax_cross_entropy %{{.*}}, %[[T]] weights(%{{.*}}, %{{.*}}) target_count(%[[N_ALL]])
// CHECK: %[[CE_ALL:.*]] = mesh.all_reduce %[[CE]] on @ranks mesh_axes = [0] : tensor<f32> -> tensor<f32>
// CHECK: moe.total_loss %[[CE_ALL]]
// The evaluation copy runs on one rank's batch: untouched.
// CHECK-LABEL: func.func @lm_eval(
// CHECK-NOT: mesh.all_reduce
// CHECK-NOT: moe.count_targets
// CHECK: moe.softmax_cross_entropy %{{.*}}, %{{.*}} weights(%{{.*}}, %{{.*}}) :
// CHECK-NOT: mesh.all_reduce
// CHECK: return
func.func @lm(%e: tensor<16xi32> {moe.input = "experts"},
              %h: tensor<8x4xf32> {moe.param = "hidden", moe.init = #moe.init<zeros>},
              %t: tensor<8xi32> {moe.input = "targets"},
              %g: tensor<16xf32> {moe.param = "gates", moe.init = #moe.init<zeros>},
              %w: tensor<10x4xf32> {moe.param = "w", moe.init = #moe.init<zeros>},
              %b: tensor<10xf32> {moe.param = "b", moe.init = #moe.init<zeros>}) -> tensor<f32> {
  %imp = moe.importance %e, %g {num_experts = 4 : i64} : (tensor<16xi32>, tensor<16xf32>) -> tensor<4xf32>
  %cv = moe.cv_squared %imp {weight = 0.1 : f32} : (tensor<4xf32>) -> tensor<f32>
  %l2 = moe.l2_balance %imp {tokens = 8 : i64, weight = 1.0 : f32} : (tensor<4xf32>) -> tensor<f32>
  %ce = moe.softmax_cross_entropy %h, %t weights(%w, %b) : (tensor<8x4xf32>, tensor<8xi32>, tensor<10x4xf32>, tensor<10xf32>) -> tensor<f32>
  %l = moe.total_loss %ce, %cv, %l2 : tensor<f32>
  return %l : tensor<f32>
}
func.func @lm_eval(%h: tensor<8x4xf32> {moe.param = "hidden", moe.init = #moe.init<zeros>},
                   %t: tensor<8xi32> {moe.input = "targets"},
                   %w: tensor<10x4xf32> {moe.param = "w", moe.init = #moe.init<zeros>},
                   %b: tensor<10xf32> {moe.param = "b", moe.init = #moe.init<zeros>}) -> tensor<f32>
    attributes {moe.inference} {
  %ce = moe.softmax_cross_entropy %h, %t weights(%w, %b) : (tensor<8x4xf32>, tensor<8xi32>, tensor<10x4xf32>, tensor<10xf32>) -> tensor<f32>
  return %ce : tensor<f32>
}

// -----

// A batchwise mask must rank the combined batch of all ranks, as
// moe-decompose{combined-batch} lowers it; one ranking only this rank's
// batch is refused.
func.func @batchwise_local(%x: tensor<8x4xf32> {moe.param = "x", moe.init = #moe.init<zeros>}) -> tensor<f32> {
  // expected-error@+1 {{ranks only this rank's batch; data-parallel training ranks the combined batch}}
  %mask, %rows, %e, %g = moe.batchwise_mask %x {m = 2 : i64}
      : (tensor<8x4xf32>) -> (tensor<8x4xf32>, tensor<9xi32>, tensor<8xi32>, tensor<8xf32>)
  %l = moe.cv_squared %g {weight = 1.0 : f32} : (tensor<8xf32>) -> tensor<f32>
  return %l : tensor<f32>
}

// -----

// Eq. 8 sums over the tokens: the global batch's loss is the ranks' sum.
// CHECK-LABEL: func.func @batchwise_combined(
// CHECK: moe.batchwise_mask %{{.*}} {combined_batch, m = 2 : i64}
// CHECK: %[[L8:.*]] = moe.batchwise_threshold_loss
// CHECK: %[[L8_ALL:.*]] = mesh.all_reduce %[[L8]] on @ranks mesh_axes = [0] : tensor<f32> -> tensor<f32>
// CHECK: return %[[L8_ALL]]
func.func @batchwise_combined(%x: tensor<8x4xf32> {moe.param = "x", moe.init = #moe.init<zeros>},
                              %t: tensor<4xf32> {moe.param = "t", moe.init = #moe.init<zeros>}) -> tensor<f32> {
  %mask, %rows, %e, %g = moe.batchwise_mask %x {m = 2 : i64, combined_batch}
      : (tensor<8x4xf32>) -> (tensor<8x4xf32>, tensor<9xi32>, tensor<16xi32>, tensor<16xf32>)
  %l = moe.batchwise_threshold_loss %x, %mask, %t
      : (tensor<8x4xf32>, tensor<8x4xf32>, tensor<4xf32>) -> tensor<f32>
  return %l : tensor<f32>
}

// The training pipeline with data-parallel: the forward collectives, their
// adjoints and a sum over the ranks of every gradient before Adam. The
// ranks' cross-entropy parts are summed, whose adjoint is the identity:
// the gradient op takes the loss's seed and scales by 1 / global count,
// with no division by the mesh size; the balancing statistics' average's
// adjoint divides by it.
// PIPELINE-LABEL: func.func @tiny_moe_train_step(
// PIPELINE: mesh.all_reduce {{.*}} reduction = <average>
// PIPELINE: %[[N:.*]] = moe.count_targets
// PIPELINE: %[[N_ALL:.*]] = mesh.all_reduce %[[N]] on @ranks mesh_axes = [0] {{.*}}: tensor<i32> -> tensor<i32>
// PIPELINE: %[[ONE:.*]] = arith.constant {{.*}}dense<1.000000e+00> : tensor<f32>
// PIPELINE: moe.softmax_cross_entropy_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[ONE]] target_count(%[[N_ALL]])
// PIPELINE: moe.divide_by_mesh_size
// PIPELINE: %[[SUM:.*]] = mesh.all_reduce %{{.*}} on @ranks mesh_axes = [0] {{.*}}: tensor<50x8xf32> -> tensor<50x8xf32>
// PIPELINE: moe.adam_update %{{.*}}, %[[SUM]],
