// RUN: moe-opt %s -split-input-file --moe-optimizer -verify-diagnostics

// Optimizer state is named like parameters in checkpoints: a parameter may
// not take a state's name.
// expected-error@+1 {{parameter 'step' has a name the optimizer state uses}}
func.func @clash_train_step(%w: tensor<4xf32> {moe.param = "step", moe.init = #moe.init<zeros>})
    -> (tensor<f32>, tensor<4xf32> {moe.grad = "step"}) {
  %l = moe.cv_squared %w {weight = 1.0 : f32} : (tensor<4xf32>) -> tensor<f32>
  return %l, %w : tensor<f32>, tensor<4xf32>
}
