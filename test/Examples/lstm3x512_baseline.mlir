// The computation-matched baseline of paper 5.1.1
// (examples/lstm3x512_baseline.mlir): three LSTM-512 layers, each with
// dropout 0.2 and a residual connection, no MoE layer, so the training loss
// is the sampled-softmax cross-entropy alone. It parses, verifies, and prints
// in a form that parses again, both custom and generic, to the same text.

// RUN: moe-opt %examples/lstm3x512_baseline.mlir | moe-opt | FileCheck %s
// RUN: moe-opt %examples/lstm3x512_baseline.mlir --mlir-print-op-generic | moe-opt | FileCheck %s
// RUN: moe-opt %examples/lstm3x512_baseline.mlir -o %t.mlir && moe-opt %t.mlir | diff %t.mlir -

// CHECK-LABEL: func.func @lstm3x512_baseline(
// CHECK-SAME: %[[TOKENS:[^:]+]]: tensor<256x32xi32> {moe.input = "tokens"},
// CHECK-SAME: %[[TARGETS:[^:]+]]: tensor<256x32xi32> {moe.input = "targets"},
// CHECK-SAME: %[[EMB:[^:]+]]: tensor<793471x512xf32> {moe.init = #moe.init<uniform, scale = 5.000000e-02>, moe.param = "embedding"},
// CHECK-SAME: %[[L1X:[^:]+]]: tensor<512x2048xf32> {moe.init = #moe.init<uniform, scale = 5.000000e-02>, moe.param = "lstm1.input_weights"},
// CHECK-SAME: %[[L1H:[^:]+]]: tensor<512x2048xf32> {moe.init = #moe.init<uniform, scale = 5.000000e-02>, moe.param = "lstm1.recurrent_weights"},
// CHECK-SAME: %[[L1B:[^:]+]]: tensor<2048xf32> {moe.init = #moe.init<zeros>, moe.param = "lstm1.bias"},
// CHECK-SAME: %[[L2X:[^:]+]]: tensor<512x2048xf32> {moe.init = #moe.init<uniform, scale = 5.000000e-02>, moe.param = "lstm2.input_weights"},
// CHECK-SAME: %[[L2H:[^:]+]]: tensor<512x2048xf32> {moe.init = #moe.init<uniform, scale = 5.000000e-02>, moe.param = "lstm2.recurrent_weights"},
// CHECK-SAME: %[[L2B:[^:]+]]: tensor<2048xf32> {moe.init = #moe.init<zeros>, moe.param = "lstm2.bias"},
// CHECK-SAME: %[[L3X:[^:]+]]: tensor<512x2048xf32> {moe.init = #moe.init<uniform, scale = 5.000000e-02>, moe.param = "lstm3.input_weights"},
// CHECK-SAME: %[[L3H:[^:]+]]: tensor<512x2048xf32> {moe.init = #moe.init<uniform, scale = 5.000000e-02>, moe.param = "lstm3.recurrent_weights"},
// CHECK-SAME: %[[L3B:[^:]+]]: tensor<2048xf32> {moe.init = #moe.init<zeros>, moe.param = "lstm3.bias"},
// CHECK-SAME: %[[SW:[^:]+]]: tensor<793471x512xf32> {moe.init = #moe.init<uniform, scale = 5.000000e-02>, moe.param = "softmax.weights"},
// CHECK-SAME: %[[SB:[^:]+]]: tensor<793471xf32> {moe.init = #moe.init<zeros>, moe.param = "softmax.bias"})
// CHECK-SAME: -> tensor<f32>
// CHECK-NEXT: %[[E:.*]] = moe.embedding %[[EMB]][%[[TOKENS]]] : (tensor<793471x512xf32>, tensor<256x32xi32>) -> tensor<256x32x512xf32>
// CHECK-NEXT: %[[X0:.*]] = moe.dropout %[[E]] {rate = 2.000000e-01 : f32} : tensor<256x32x512xf32>
// CHECK-NEXT: %[[H1:.*]] = moe.lstm %[[X0]] weights(%[[L1X]], %[[L1H]], %[[L1B]]) : (tensor<256x32x512xf32>, tensor<512x2048xf32>, tensor<512x2048xf32>, tensor<2048xf32>) -> tensor<256x32x512xf32>
// CHECK-NEXT: %[[H1D:.*]] = moe.dropout %[[H1]] {rate = 2.000000e-01 : f32}
// CHECK-NEXT: %[[X1:.*]] = moe.residual %[[X0]], %[[H1D]] : tensor<256x32x512xf32>
// CHECK-NEXT: %[[H2:.*]] = moe.lstm %[[X1]] weights(%[[L2X]], %[[L2H]], %[[L2B]])
// CHECK-NEXT: %[[H2D:.*]] = moe.dropout %[[H2]] {rate = 2.000000e-01 : f32}
// CHECK-NEXT: %[[X2:.*]] = moe.residual %[[X1]], %[[H2D]]
// CHECK-NEXT: %[[H3:.*]] = moe.lstm %[[X2]] weights(%[[L3X]], %[[L3H]], %[[L3B]])
// CHECK-NEXT: %[[H3D:.*]] = moe.dropout %[[H3]] {rate = 2.000000e-01 : f32}
// CHECK-NEXT: %[[X3:.*]] = moe.residual %[[X2]], %[[H3D]]
// CHECK-NEXT: %[[CE:.*]] = moe.softmax_cross_entropy %[[X3]], %[[TARGETS]] weights(%[[SW]], %[[SB]]) {num_samples = 8192 : i64} : (tensor<256x32x512xf32>, tensor<256x32xi32>, tensor<793471x512xf32>, tensor<793471xf32>) -> tensor<f32>
// CHECK-NEXT: %[[LOSS:.*]] = moe.total_loss %[[CE]] : tensor<f32>
// CHECK-NEXT: return %[[LOSS]] : tensor<f32>
