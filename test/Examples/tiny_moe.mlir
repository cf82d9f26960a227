// The smallest example (examples/tiny_moe.mlir), used by unit and
// integration tests: vocab 50, d = 8, 4 linear experts with noisy top-2
// gating, batch 2 x 5, and no dropout so that its loss is deterministic. It
// parses, verifies, and prints in a form that parses again, both custom and
// generic, to the same text.

// RUN: moe-opt %examples/tiny_moe.mlir | moe-opt | FileCheck %s
// RUN: moe-opt %examples/tiny_moe.mlir --mlir-print-op-generic | moe-opt | FileCheck %s
// RUN: moe-opt %examples/tiny_moe.mlir -o %t.mlir && moe-opt %t.mlir | diff %t.mlir -

// CHECK-LABEL: func.func @tiny_moe(
// CHECK-SAME: %[[TOKENS:[^:]+]]: tensor<2x5xi32> {moe.input = "tokens"},
// CHECK-SAME: %[[TARGETS:[^:]+]]: tensor<2x5xi32> {moe.input = "targets"},
// CHECK-SAME: %[[EMB:[^:]+]]: tensor<50x8xf32> {moe.init = #moe.init<uniform, scale = 1.000000e-01>, moe.param = "embedding"},
// CHECK-SAME: %[[L1X:[^:]+]]: tensor<8x32xf32> {moe.init = #moe.init<glorot_uniform>, moe.param = "lstm1.input_weights"},
// CHECK-SAME: %[[L1H:[^:]+]]: tensor<8x32xf32> {moe.init = #moe.init<glorot_uniform>, moe.param = "lstm1.recurrent_weights"},
// CHECK-SAME: %[[L1B:[^:]+]]: tensor<32xf32> {moe.init = #moe.init<zeros>, moe.param = "lstm1.bias"},
// CHECK-SAME: %[[GATE:[^:]+]]: tensor<8x4xf32> {moe.init = #moe.init<zeros>, moe.param = "moe.gate_weights"},
// CHECK-SAME: %[[NOISE:[^:]+]]: tensor<8x4xf32> {moe.init = #moe.init<zeros>, moe.param = "moe.noise_weights"},
// CHECK-SAME: %[[EXPERTS:[^:]+]]: tensor<4x8x8xf32> {moe.init = #moe.init<glorot_uniform>, moe.param = "moe.expert_weights"},
// CHECK-SAME: %[[L2X:[^:]+]]: tensor<8x32xf32> {moe.init = #moe.init<glorot_uniform>, moe.param = "lstm2.input_weights"},
// CHECK-SAME: %[[L2H:[^:]+]]: tensor<8x32xf32> {moe.init = #moe.init<glorot_uniform>, moe.param = "lstm2.recurrent_weights"},
// CHECK-SAME: %[[L2B:[^:]+]]: tensor<32xf32> {moe.init = #moe.init<zeros>, moe.param = "lstm2.bias"},
// CHECK-SAME: %[[SW:[^:]+]]: tensor<50x8xf32> {moe.init = #moe.init<uniform, scale = 1.000000e-01>, moe.param = "softmax.weights"},
// CHECK-SAME: %[[SB:[^:]+]]: tensor<50xf32> {moe.init = #moe.init<zeros>, moe.param = "softmax.bias"})
// CHECK-SAME: -> tensor<f32>
// CHECK-NEXT: %[[X0:.*]] = moe.embedding %[[EMB]][%[[TOKENS]]] : (tensor<50x8xf32>, tensor<2x5xi32>) -> tensor<2x5x8xf32>
// CHECK-NEXT: %[[H1:.*]] = moe.lstm %[[X0]] weights(%[[L1X]], %[[L1H]], %[[L1B]]) : (tensor<2x5x8xf32>, tensor<8x32xf32>, tensor<8x32xf32>, tensor<32xf32>) -> tensor<2x5x8xf32>
// CHECK-NEXT: %[[X1:.*]] = moe.residual %[[X0]], %[[H1]] : tensor<2x5x8xf32>
// CHECK-NEXT: %[[M:.*]], %[[AUX:.*]] = moe.moe_layer %[[X1]] gate(%[[GATE]], noise %[[NOISE]]) experts(%[[EXPERTS]])
// CHECK-SAME: {expert = #moe.expert<linear>, gating = #moe.gating<noisy_top_k>, k = 2 : i64,
// CHECK-SAME: losses = #moe.losses<importance = 1.000000e-01, load = 1.000000e-01>, num_experts = 4 : i64}
// CHECK-SAME: : (tensor<2x5x8xf32>, tensor<8x4xf32>, tensor<8x4xf32>, tensor<4x8x8xf32>) -> (tensor<2x5x8xf32>, tensor<f32>)
// CHECK-NEXT: %[[X2:.*]] = moe.residual %[[X1]], %[[M]] : tensor<2x5x8xf32>
// CHECK-NEXT: %[[H2:.*]] = moe.lstm %[[X2]] weights(%[[L2X]], %[[L2H]], %[[L2B]])
// CHECK-NEXT: %[[X3:.*]] = moe.residual %[[X2]], %[[H2]] : tensor<2x5x8xf32>
// CHECK-NEXT: %[[CE:.*]] = moe.softmax_cross_entropy %[[X3]], %[[TARGETS]] weights(%[[SW]], %[[SB]]) : (tensor<2x5x8xf32>, tensor<2x5xi32>, tensor<50x8xf32>, tensor<50xf32>) -> tensor<f32>
// CHECK-NEXT: %[[LOSS:.*]] = moe.total_loss %[[CE]], %[[AUX]] : tensor<f32>
// CHECK-NEXT: return %[[LOSS]] : tensor<f32>
