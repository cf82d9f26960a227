// The GPU-size demo model (examples/gpu_lstm_moe.mlir): 2 x LSTM-512 with a
// flat MoE of 64 linear 512x512 experts between them, noisy top-4 gating with
// importance and load losses of 0.1 each, dropout 0.1 and residual
// connections, and a full softmax over 8000 words (no num_samples). It
// parses, verifies, and prints in a form that parses again, both custom and
// generic, to the same text.

// RUN: moe-opt %examples/gpu_lstm_moe.mlir | moe-opt | FileCheck %s
// RUN: moe-opt %examples/gpu_lstm_moe.mlir --mlir-print-op-generic | moe-opt | FileCheck %s
// RUN: moe-opt %examples/gpu_lstm_moe.mlir -o %t.mlir && moe-opt %t.mlir | diff %t.mlir -

// CHECK-LABEL: func.func @gpu_lstm_moe(
// CHECK-SAME: %[[TOKENS:[^:]+]]: tensor<128x32xi32> {moe.input = "tokens"},
// CHECK-SAME: %[[TARGETS:[^:]+]]: tensor<128x32xi32> {moe.input = "targets"},
// CHECK-SAME: %[[EMB:[^:]+]]: tensor<8000x512xf32> {moe.init = #moe.init<uniform, scale = 1.000000e-01>, moe.param = "embedding"},
// CHECK-SAME: %[[L1X:[^:]+]]: tensor<512x2048xf32> {moe.init = #moe.init<uniform, scale = 1.000000e-01>, moe.param = "lstm1.input_weights"},
// CHECK-SAME: %[[L1H:[^:]+]]: tensor<512x2048xf32> {moe.init = #moe.init<uniform, scale = 1.000000e-01>, moe.param = "lstm1.recurrent_weights"},
// CHECK-SAME: %[[L1B:[^:]+]]: tensor<2048xf32> {moe.init = #moe.init<zeros>, moe.param = "lstm1.bias"},
// CHECK-SAME: %[[GATE:[^:]+]]: tensor<512x64xf32> {moe.init = #moe.init<zeros>, moe.param = "moe.gate_weights"},
// CHECK-SAME: %[[NOISE:[^:]+]]: tensor<512x64xf32> {moe.init = #moe.init<zeros>, moe.param = "moe.noise_weights"},
// CHECK-SAME: %[[EXPERTS:[^:]+]]: tensor<64x512x512xf32> {moe.init = #moe.init<glorot_uniform>, moe.param = "moe.expert_weights"},
// CHECK-SAME: %[[L2X:[^:]+]]: tensor<512x2048xf32> {moe.init = #moe.init<uniform, scale = 1.000000e-01>, moe.param = "lstm2.input_weights"},
// CHECK-SAME: %[[L2H:[^:]+]]: tensor<512x2048xf32> {moe.init = #moe.init<uniform, scale = 1.000000e-01>, moe.param = "lstm2.recurrent_weights"},
// CHECK-SAME: %[[L2B:[^:]+]]: tensor<2048xf32> {moe.init = #moe.init<zeros>, moe.param = "lstm2.bias"},
// CHECK-SAME: %[[SW:[^:]+]]: tensor<8000x512xf32> {moe.init = #moe.init<uniform, scale = 1.000000e-01>, moe.param = "softmax.weights"},
// CHECK-SAME: %[[SB:[^:]+]]: tensor<8000xf32> {moe.init = #moe.init<zeros>, moe.param = "softmax.bias"})
// CHECK-SAME: -> tensor<f32>
// CHECK-NEXT: %[[E:.*]] = moe.embedding %[[EMB]][%[[TOKENS]]] : (tensor<8000x512xf32>, tensor<128x32xi32>) -> tensor<128x32x512xf32>
// CHECK-NEXT: %[[X0:.*]] = moe.dropout %[[E]] {rate = 1.000000e-01 : f32} : tensor<128x32x512xf32>
// CHECK-NEXT: %[[H1:.*]] = moe.lstm %[[X0]] weights(%[[L1X]], %[[L1H]], %[[L1B]]) : (tensor<128x32x512xf32>, tensor<512x2048xf32>, tensor<512x2048xf32>, tensor<2048xf32>) -> tensor<128x32x512xf32>
// CHECK-NEXT: %[[H1D:.*]] = moe.dropout %[[H1]] {rate = 1.000000e-01 : f32}
// CHECK-NEXT: %[[X1:.*]] = moe.residual %[[X0]], %[[H1D]] : tensor<128x32x512xf32>
// CHECK-NEXT: %[[M:.*]], %[[AUX:.*]] = moe.moe_layer %[[X1]] gate(%[[GATE]], noise %[[NOISE]]) experts(%[[EXPERTS]])
// CHECK-SAME: {expert = #moe.expert<linear>, gating = #moe.gating<noisy_top_k>, k = 4 : i64,
// CHECK-SAME: losses = #moe.losses<importance = 1.000000e-01, load = 1.000000e-01>, num_experts = 64 : i64}
// CHECK-SAME: : (tensor<128x32x512xf32>, tensor<512x64xf32>, tensor<512x64xf32>, tensor<64x512x512xf32>) -> (tensor<128x32x512xf32>, tensor<f32>)
// CHECK-NEXT: %[[MD:.*]] = moe.dropout %[[M]] {rate = 1.000000e-01 : f32}
// CHECK-NEXT: %[[X2:.*]] = moe.residual %[[X1]], %[[MD]]
// CHECK-NEXT: %[[H2:.*]] = moe.lstm %[[X2]] weights(%[[L2X]], %[[L2H]], %[[L2B]])
// CHECK-NEXT: %[[H2D:.*]] = moe.dropout %[[H2]] {rate = 1.000000e-01 : f32}
// CHECK-NEXT: %[[X3:.*]] = moe.residual %[[X2]], %[[H2D]]
// Full softmax: no num_samples attribute.
// CHECK-NEXT: %[[CE:.*]] = moe.softmax_cross_entropy %[[X3]], %[[TARGETS]] weights(%[[SW]], %[[SB]]) : (tensor<128x32x512xf32>, tensor<128x32xi32>, tensor<8000x512xf32>, tensor<8000xf32>) -> tensor<f32>
// CHECK-NEXT: %[[LOSS:.*]] = moe.total_loss %[[CE]], %[[AUX]] : tensor<f32>
// CHECK-NEXT: return %[[LOSS]] : tensor<f32>
