// RUN: moe-opt %s --split-input-file --moe-add-eval --verify-diagnostics | FileCheck %s
// The last split is an error case, hence `not`.
// RUN: not moe-opt %s --split-input-file --moe-add-eval --moe-decompose 2>/dev/null | FileCheck %s --check-prefix=LOWERED

// Every model (a function with parameters) gets an evaluation copy marked
// moe.inference right after it; functions without parameters do not.
// CHECK-LABEL: func.func @model(
// CHECK-NOT: moe.inference
// CHECK: moe.dropout
// CHECK-LABEL: func.func @model_eval(
// CHECK-SAME: moe.param = "w"
// CHECK-SAME: attributes {moe.inference}
// CHECK: moe.dropout
// CHECK-LABEL: func.func @helper(
// CHECK-NOT: func.func @helper_eval

// moe-decompose lowers the copy for evaluation: no dropout there, dropout
// in the model.
// LOWERED-LABEL: func.func @model(
// LOWERED: moe.dropout
// LOWERED-LABEL: func.func @model_eval(
// LOWERED-NOT: moe.dropout
// LOWERED: return
func.func @model(%x: tensor<4x8xi32> {moe.input = "x"},
                 %w: tensor<8xf32> {moe.param = "w", moe.init = #moe.init<zeros>})
    -> tensor<f32> {
  %d = moe.dropout %w {rate = 0.5 : f32} : tensor<8xf32>
  %l = moe.cv_squared %d {weight = 1.0 : f32} : (tensor<8xf32>) -> tensor<f32>
  return %l : tensor<f32>
}
func.func @helper(%x: tensor<8xf32>) -> tensor<8xf32> {
  return %x : tensor<8xf32>
}

// -----

// The copy's name must be free.
// expected-error@+1 {{already has a function named @m_eval; rename one of them}}
func.func @m(%w: tensor<8xf32> {moe.param = "w", moe.init = #moe.init<zeros>}) -> tensor<f32> {
  %l = moe.cv_squared %w {weight = 1.0 : f32} : (tensor<8xf32>) -> tensor<f32>
  return %l : tensor<f32>
}
func.func @m_eval(%x: tensor<8xf32>) -> tensor<8xf32> {
  return %x : tensor<8xf32>
}
