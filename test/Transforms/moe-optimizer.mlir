// RUN: moe-opt %s -split-input-file --moe-optimizer="lr=0.5 warmup-steps=10 constant-steps=20 weight-decay=0.01" | FileCheck %s
// RUN: not moe-opt %s --moe-optimizer="lr=-1" 2>&1 | FileCheck %s --check-prefix=BADLR
// RUN: not moe-opt %s --moe-optimizer="beta1=1.5" 2>&1 | FileCheck %s --check-prefix=BADBETA

// A train step from moe-autodiff: the step counter and both Adam moments of
// each parameter become arguments; the updated parameters and moments
// replace the gradients among the results, named so a runtime can feed
// them back.
// CHECK-LABEL: func.func @m_train_step(
// CHECK-SAME: %[[W:[^:]*]]: tensor<4x2xf32> {moe.init = #moe.init<zeros>, moe.param = "w"}
// CHECK-SAME: %[[B:[^:]*]]: tensor<2xf32> {moe.init = #moe.init<zeros>, moe.param = "b"}
// CHECK-SAME: %[[STEP:[^:]*]]: tensor<i64> {moe.state = "step"}
// CHECK-SAME: %[[WM:[^:]*]]: tensor<4x2xf32> {moe.state = "w.adam_m"}, %[[WV:[^:]*]]: tensor<4x2xf32> {moe.state = "w.adam_v"}
// CHECK-SAME: %[[BM:[^:]*]]: tensor<2xf32> {moe.state = "b.adam_m"}, %[[BV:[^:]*]]: tensor<2xf32> {moe.state = "b.adam_v"}
// CHECK-SAME: -> (tensor<f32> {moe.output = "loss"}, tensor<f32> {moe.output = "lr"}, tensor<4x2xf32> {moe.param = "w"}, tensor<2xf32> {moe.param = "b"}, tensor<4x2xf32> {moe.state = "w.adam_m"}, tensor<4x2xf32> {moe.state = "w.adam_v"}, tensor<2xf32> {moe.state = "b.adam_m"}, tensor<2xf32> {moe.state = "b.adam_v"})
// CHECK: %[[LR:.*]] = moe.lr_schedule %[[STEP]] {base_lr = 5.000000e-01 : f32, constant_steps = 20 : i64, warmup_steps = 10 : i64}
// CHECK: %[[NW:.*]], %[[NWM:.*]], %[[NWV:.*]] = moe.adam_update %[[W]], %[[DW:[^,]*]], %[[WM]], %[[WV]], %[[LR]], %[[STEP]] {{{.*}}weight_decay = 0.00999999977 : f32}
// CHECK: %[[NB:.*]], %[[NBM:.*]], %[[NBV:.*]] = moe.adam_update %[[B]], %{{.*}}, %[[BM]], %[[BV]], %[[LR]], %[[STEP]]
// CHECK: return %{{.*}}, %[[LR]], %[[NW]], %[[NB]], %[[NWM]], %[[NWV]], %[[NBM]], %[[NBV]]
func.func @m_train_step(%w: tensor<4x2xf32> {moe.param = "w", moe.init = #moe.init<zeros>}, %b: tensor<2xf32> {moe.param = "b", moe.init = #moe.init<zeros>}, %dw: tensor<4x2xf32>, %db: tensor<2xf32>, %loss: tensor<f32>) -> (tensor<f32> {moe.output = "loss"}, tensor<4x2xf32> {moe.grad = "w"}, tensor<2xf32> {moe.grad = "b"}) {
  return %loss, %dw, %db : tensor<f32>, tensor<4x2xf32>, tensor<2xf32>
}

// -----

// Functions without gradient results (the model itself) are left alone.
// CHECK-LABEL: func.func @m(
// CHECK-NOT: moe.adam_update
// CHECK: return
func.func @m(%w: tensor<4x2xf32> {moe.param = "w", moe.init = #moe.init<zeros>}, %loss: tensor<f32>) -> tensor<f32> {
  return %loss : tensor<f32>
}

// BADLR: error: moe-optimizer: lr must be positive, got -1
// BADBETA: error: moe-optimizer: beta1 and beta2 must be in [0, 1)

