// The paper 5.1.1 flat-MoE language models (examples/lstm2x512_moe8.mlir,
// lstm2x512_moe64.mlir, lstm2x512_moe512.mlir) parse, verify, and print in a
// form that parses again, both custom and generic, to the same text. CHECK
// lines hold for all three; MOE8, MOE64 and MOE512 lines check what differs:
// the gate, threshold and stacked expert shapes (the MoE layer's parameters)
// and num_experts. The CHECK-NEXT chain checks the data flow of 5.1: LSTM,
// MoE, LSTM, each with dropout 0.2 and a residual connection.

// RUN: moe-opt %examples/lstm2x512_moe8.mlir | moe-opt | FileCheck %s --check-prefixes=CHECK,MOE8
// RUN: moe-opt %examples/lstm2x512_moe8.mlir --mlir-print-op-generic | moe-opt | FileCheck %s --check-prefixes=CHECK,MOE8
// RUN: moe-opt %examples/lstm2x512_moe8.mlir -o %t.8.mlir && moe-opt %t.8.mlir | diff %t.8.mlir -

// RUN: moe-opt %examples/lstm2x512_moe64.mlir | moe-opt | FileCheck %s --check-prefixes=CHECK,MOE64
// RUN: moe-opt %examples/lstm2x512_moe64.mlir --mlir-print-op-generic | moe-opt | FileCheck %s --check-prefixes=CHECK,MOE64
// RUN: moe-opt %examples/lstm2x512_moe64.mlir -o %t.64.mlir && moe-opt %t.64.mlir | diff %t.64.mlir -

// RUN: moe-opt %examples/lstm2x512_moe512.mlir | moe-opt | FileCheck %s --check-prefixes=CHECK,MOE512
// RUN: moe-opt %examples/lstm2x512_moe512.mlir --mlir-print-op-generic | moe-opt | FileCheck %s --check-prefixes=CHECK,MOE512
// RUN: moe-opt %examples/lstm2x512_moe512.mlir -o %t.512.mlir && moe-opt %t.512.mlir | diff %t.512.mlir -

// MOE8-LABEL: func.func @lstm2x512_moe8(
// MOE64-LABEL: func.func @lstm2x512_moe64(
// MOE512-LABEL: func.func @lstm2x512_moe512(
// CHECK-SAME: %[[TOKENS:[^:]+]]: tensor<256x32xi32> {moe.input = "tokens"},
// CHECK-SAME: %[[TARGETS:[^:]+]]: tensor<256x32xi32> {moe.input = "targets"},
// CHECK-SAME: %[[EMB:[^:]+]]: tensor<793471x512xf32> {moe.init = #moe.init<uniform, scale = 5.000000e-02>, moe.param = "embedding"},
// CHECK-SAME: %[[L1X:[^:]+]]: tensor<512x2048xf32> {moe.init = #moe.init<uniform, scale = 5.000000e-02>, moe.param = "lstm1.input_weights"},
// CHECK-SAME: %[[L1H:[^:]+]]: tensor<512x2048xf32> {moe.init = #moe.init<uniform, scale = 5.000000e-02>, moe.param = "lstm1.recurrent_weights"},
// CHECK-SAME: %[[L1B:[^:]+]]: tensor<2048xf32> {moe.init = #moe.init<zeros>, moe.param = "lstm1.bias"},
// MOE8-SAME: %[[GATE:[^:]+]]: tensor<512x8xf32> {moe.init = #moe.init<zeros>, moe.param = "moe.gate_weights"},
// MOE8-SAME: %[[THR:[^:]+]]: tensor<8xf32> {moe.init = #moe.init<constant, scale = 1.250000e-01>, moe.param = "moe.thresholds"},
// MOE8-SAME: %[[EXPERTS:[^:]+]]: tensor<8x512x512xf32> {moe.init = #moe.init<glorot_uniform>, moe.param = "moe.expert_weights"},
// MOE64-SAME: %[[GATE:[^:]+]]: tensor<512x64xf32> {moe.init = #moe.init<zeros>, moe.param = "moe.gate_weights"},
// MOE64-SAME: %[[THR:[^:]+]]: tensor<64xf32> {moe.init = #moe.init<constant, scale = 1.562500e-02>, moe.param = "moe.thresholds"},
// MOE64-SAME: %[[EXPERTS:[^:]+]]: tensor<64x512x512xf32> {moe.init = #moe.init<glorot_uniform>, moe.param = "moe.expert_weights"},
// MOE512-SAME: %[[GATE:[^:]+]]: tensor<512x512xf32> {moe.init = #moe.init<zeros>, moe.param = "moe.gate_weights"},
// MOE512-SAME: %[[THR:[^:]+]]: tensor<512xf32> {moe.init = #moe.init<constant, scale = 0.001953125>, moe.param = "moe.thresholds"},
// MOE512-SAME: %[[EXPERTS:[^:]+]]: tensor<512x512x512xf32> {moe.init = #moe.init<glorot_uniform>, moe.param = "moe.expert_weights"},
// CHECK-SAME: %[[L2X:[^:]+]]: tensor<512x2048xf32> {moe.init = #moe.init<uniform, scale = 5.000000e-02>, moe.param = "lstm2.input_weights"},
// CHECK-SAME: %[[L2H:[^:]+]]: tensor<512x2048xf32> {moe.init = #moe.init<uniform, scale = 5.000000e-02>, moe.param = "lstm2.recurrent_weights"},
// CHECK-SAME: %[[L2B:[^:]+]]: tensor<2048xf32> {moe.init = #moe.init<zeros>, moe.param = "lstm2.bias"},
// CHECK-SAME: %[[SW:[^:]+]]: tensor<793471x512xf32> {moe.init = #moe.init<uniform, scale = 5.000000e-02>, moe.param = "softmax.weights"},
// CHECK-SAME: %[[SB:[^:]+]]: tensor<793471xf32> {moe.init = #moe.init<zeros>, moe.param = "softmax.bias"})
// CHECK-SAME: -> tensor<f32>
// CHECK-NEXT: %[[E:.*]] = moe.embedding %[[EMB]][%[[TOKENS]]] : (tensor<793471x512xf32>, tensor<256x32xi32>) -> tensor<256x32x512xf32>
// CHECK-NEXT: %[[X0:.*]] = moe.dropout %[[E]] {rate = 2.000000e-01 : f32} : tensor<256x32x512xf32>
// CHECK-NEXT: %[[H1:.*]] = moe.lstm %[[X0]] weights(%[[L1X]], %[[L1H]], %[[L1B]]) : (tensor<256x32x512xf32>, tensor<512x2048xf32>, tensor<512x2048xf32>, tensor<2048xf32>) -> tensor<256x32x512xf32>
// CHECK-NEXT: %[[H1D:.*]] = moe.dropout %[[H1]] {rate = 2.000000e-01 : f32}
// CHECK-NEXT: %[[X1:.*]] = moe.residual %[[X0]], %[[H1D]] : tensor<256x32x512xf32>
// CHECK-NEXT: %[[M:.*]], %[[AUX:.*]] = moe.moe_layer %[[X1]] gate(%[[GATE]]) thresholds(%[[THR]]) experts(%[[EXPERTS]])
// CHECK-SAME: {expert = #moe.expert<linear>, gating = #moe.gating<batchwise>, k = 8 : i64,
// CHECK-SAME: losses = #moe.losses<importance = 1.000000e-01, batchwise_threshold = 1.000000e-02>,
// MOE8-SAME: num_experts = 8 : i64}
// MOE64-SAME: num_experts = 64 : i64}
// MOE512-SAME: num_experts = 512 : i64}
// CHECK-SAME: -> (tensor<256x32x512xf32>, tensor<f32>)
// CHECK-NEXT: %[[MD:.*]] = moe.dropout %[[M]] {rate = 2.000000e-01 : f32}
// CHECK-NEXT: %[[X2:.*]] = moe.residual %[[X1]], %[[MD]]
// CHECK-NEXT: %[[H2:.*]] = moe.lstm %[[X2]] weights(%[[L2X]], %[[L2H]], %[[L2B]])
// CHECK-NEXT: %[[H2D:.*]] = moe.dropout %[[H2]] {rate = 2.000000e-01 : f32}
// CHECK-NEXT: %[[X3:.*]] = moe.residual %[[X2]], %[[H2D]]
// CHECK-NEXT: %[[CE:.*]] = moe.softmax_cross_entropy %[[X3]], %[[TARGETS]] weights(%[[SW]], %[[SB]]) {num_samples = 8192 : i64} : (tensor<256x32x512xf32>, tensor<256x32xi32>, tensor<793471x512xf32>, tensor<793471xf32>) -> tensor<f32>
// CHECK-NEXT: %[[LOSS:.*]] = moe.total_loss %[[CE]], %[[AUX]] : tensor<f32>
// CHECK-NEXT: return %[[LOSS]] : tensor<f32>
