// RUN: moe-opt %s --split-input-file --moe-sync-gradients | FileCheck %s

// In a partitioned module every returned gradient is summed over the
// ranks; the loss and other results are left alone.
// CHECK-LABEL: func.func @m_train_step(
// CHECK: %[[SUM:.*]] = mesh.all_reduce %arg0 on @ranks mesh_axes = [0] : tensor<4xf32> -> tensor<4xf32>
// CHECK: return %arg1, %[[SUM]] : tensor<f32>, tensor<4xf32>
mesh.mesh @ranks(shape = ?)
func.func @m_train_step(%g: tensor<4xf32>, %l: tensor<f32>)
    -> (tensor<f32> {moe.output = "loss"}, tensor<4xf32> {moe.grad = "w"}) {
  return %l, %g : tensor<f32>, tensor<4xf32>
}

// -----

// Without a mesh the module runs on one rank: nothing to sum.
// CHECK-LABEL: func.func @single_train_step(
// CHECK-NOT: mesh.all_reduce
// CHECK: return %arg1, %arg0
func.func @single_train_step(%g: tensor<4xf32>, %l: tensor<f32>)
    -> (tensor<f32> {moe.output = "loss"}, tensor<4xf32> {moe.grad = "w"}) {
  return %l, %g : tensor<f32>, tensor<4xf32>
}

// -----

// An expert shard's gradient stays on its rank: each rank's experts saw the
// tokens of every rank already (the exchange). Replicated ones are summed.
// CHECK-LABEL: func.func @sharded_train_step(
// CHECK: %[[SUM:.*]] = mesh.all_reduce %arg1 on @ranks
// CHECK-NOT: mesh.all_reduce
// CHECK: return %arg2, %arg0, %[[SUM]]
mesh.mesh @ranks(shape = ?)
func.func @sharded_train_step(%ge: tensor<4x2x2xf32, #moe.shard<@ranks>>,
                              %g: tensor<4xf32>, %l: tensor<f32>)
    -> (tensor<f32> {moe.output = "loss"},
        tensor<4x2x2xf32, #moe.shard<@ranks>> {moe.grad = "experts"},
        tensor<4xf32> {moe.grad = "w"}) {
  return %l, %ge, %g : tensor<f32>, tensor<4x2x2xf32, #moe.shard<@ranks>>, tensor<4xf32>
}
