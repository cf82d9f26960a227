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
