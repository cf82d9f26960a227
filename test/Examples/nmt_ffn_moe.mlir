// The paper 5.2 translation model (examples/nmt_ffn_moe.mlir): a 3-layer
// LSTMP-2048-512 encoder with an MoE between layers 2 and 3, a 2-layer
// decoder with Appendix B attention after its first layer and an MoE between
// its layers, both MoEs 2048 ffn experts (512 -> 2048 ReLU -> 512) with
// noisy top-4 gating and a sigmoid output, dropout 0.4 and residual
// connections around every LSTM and MoE, full softmax over 32000 shared
// wordpieces. It parses, verifies, and prints in a form that parses again,
// both custom and generic, to the same text. The CHECK-NEXT chain checks the
// wiring: attention reads the encoder output as source and the first decoder
// layer as target, and the loss sums the cross-entropy and both MoE losses.

// RUN: moe-opt %examples/nmt_ffn_moe.mlir | moe-opt | FileCheck %s
// RUN: moe-opt %examples/nmt_ffn_moe.mlir --mlir-print-op-generic | moe-opt | FileCheck %s
// RUN: moe-opt %examples/nmt_ffn_moe.mlir -o %t.mlir && moe-opt %t.mlir | diff %t.mlir -

// CHECK-LABEL: func.func @nmt_ffn_moe(
// CHECK-SAME: %[[SRC:[^:]+]]: tensor<64x40xi32> {moe.input = "source"},
// CHECK-SAME: %[[TOKENS:[^:]+]]: tensor<64x32xi32> {moe.input = "tokens"},
// CHECK-SAME: %[[TARGETS:[^:]+]]: tensor<64x32xi32> {moe.input = "targets"},
// CHECK-SAME: %[[EEMB:[^:]+]]: tensor<32000x512xf32> {moe.init = #moe.init<uniform, scale = 4.000000e-02>, moe.param = "encoder.embedding"},
// CHECK-SAME: %[[E1X:[^:]+]]: tensor<512x8192xf32> {moe.init = #moe.init<uniform, scale = 4.000000e-02>, moe.param = "encoder.lstm1.input_weights"},
// CHECK-SAME: %[[E1H:[^:]+]]: tensor<512x8192xf32> {moe.init = #moe.init<uniform, scale = 4.000000e-02>, moe.param = "encoder.lstm1.recurrent_weights"},
// CHECK-SAME: %[[E1B:[^:]+]]: tensor<8192xf32> {moe.init = #moe.init<zeros>, moe.param = "encoder.lstm1.bias"},
// CHECK-SAME: %[[E1P:[^:]+]]: tensor<2048x512xf32> {moe.init = #moe.init<uniform, scale = 4.000000e-02>, moe.param = "encoder.lstm1.projection"},
// CHECK-SAME: %[[E2X:[^:]+]]: tensor<512x8192xf32> {moe.init = #moe.init<uniform, scale = 4.000000e-02>, moe.param = "encoder.lstm2.input_weights"},
// CHECK-SAME: %[[E2H:[^:]+]]: tensor<512x8192xf32> {moe.init = #moe.init<uniform, scale = 4.000000e-02>, moe.param = "encoder.lstm2.recurrent_weights"},
// CHECK-SAME: %[[E2B:[^:]+]]: tensor<8192xf32> {moe.init = #moe.init<zeros>, moe.param = "encoder.lstm2.bias"},
// CHECK-SAME: %[[E2P:[^:]+]]: tensor<2048x512xf32> {moe.init = #moe.init<uniform, scale = 4.000000e-02>, moe.param = "encoder.lstm2.projection"},
// CHECK-SAME: %[[EMG:[^:]+]]: tensor<512x2048xf32> {moe.init = #moe.init<zeros>, moe.param = "encoder.moe.gate_weights"},
// CHECK-SAME: %[[EMN:[^:]+]]: tensor<512x2048xf32> {moe.init = #moe.init<zeros>, moe.param = "encoder.moe.noise_weights"},
// CHECK-SAME: %[[EMW1:[^:]+]]: tensor<2048x512x2048xf32> {moe.init = #moe.init<glorot_uniform>, moe.param = "encoder.moe.expert_weights1"},
// CHECK-SAME: %[[EMW2:[^:]+]]: tensor<2048x2048x512xf32> {moe.init = #moe.init<glorot_uniform>, moe.param = "encoder.moe.expert_weights2"},
// CHECK-SAME: %[[E3X:[^:]+]]: tensor<512x8192xf32> {moe.init = #moe.init<uniform, scale = 4.000000e-02>, moe.param = "encoder.lstm3.input_weights"},
// CHECK-SAME: %[[E3H:[^:]+]]: tensor<512x8192xf32> {moe.init = #moe.init<uniform, scale = 4.000000e-02>, moe.param = "encoder.lstm3.recurrent_weights"},
// CHECK-SAME: %[[E3B:[^:]+]]: tensor<8192xf32> {moe.init = #moe.init<zeros>, moe.param = "encoder.lstm3.bias"},
// CHECK-SAME: %[[E3P:[^:]+]]: tensor<2048x512xf32> {moe.init = #moe.init<uniform, scale = 4.000000e-02>, moe.param = "encoder.lstm3.projection"},
// CHECK-SAME: %[[DEMB:[^:]+]]: tensor<32000x512xf32> {moe.init = #moe.init<uniform, scale = 4.000000e-02>, moe.param = "decoder.embedding"},
// CHECK-SAME: %[[D1X:[^:]+]]: tensor<512x8192xf32> {moe.init = #moe.init<uniform, scale = 4.000000e-02>, moe.param = "decoder.lstm1.input_weights"},
// CHECK-SAME: %[[D1H:[^:]+]]: tensor<512x8192xf32> {moe.init = #moe.init<uniform, scale = 4.000000e-02>, moe.param = "decoder.lstm1.recurrent_weights"},
// CHECK-SAME: %[[D1B:[^:]+]]: tensor<8192xf32> {moe.init = #moe.init<zeros>, moe.param = "decoder.lstm1.bias"},
// CHECK-SAME: %[[D1P:[^:]+]]: tensor<2048x512xf32> {moe.init = #moe.init<uniform, scale = 4.000000e-02>, moe.param = "decoder.lstm1.projection"},
// CHECK-SAME: %[[AU:[^:]+]]: tensor<512x512xf32> {moe.init = #moe.init<uniform, scale = 4.000000e-02>, moe.param = "decoder.attention.source_weights"},
// CHECK-SAME: %[[AW:[^:]+]]: tensor<512x512xf32> {moe.init = #moe.init<uniform, scale = 4.000000e-02>, moe.param = "decoder.attention.target_weights"},
// CHECK-SAME: %[[AV:[^:]+]]: tensor<512xf32> {moe.init = #moe.init<uniform, scale = 4.000000e-02>, moe.param = "decoder.attention.score_weights"},
// CHECK-SAME: %[[DMG:[^:]+]]: tensor<512x2048xf32> {moe.init = #moe.init<zeros>, moe.param = "decoder.moe.gate_weights"},
// CHECK-SAME: %[[DMN:[^:]+]]: tensor<512x2048xf32> {moe.init = #moe.init<zeros>, moe.param = "decoder.moe.noise_weights"},
// CHECK-SAME: %[[DMW1:[^:]+]]: tensor<2048x512x2048xf32> {moe.init = #moe.init<glorot_uniform>, moe.param = "decoder.moe.expert_weights1"},
// CHECK-SAME: %[[DMW2:[^:]+]]: tensor<2048x2048x512xf32> {moe.init = #moe.init<glorot_uniform>, moe.param = "decoder.moe.expert_weights2"},
// CHECK-SAME: %[[D2X:[^:]+]]: tensor<512x8192xf32> {moe.init = #moe.init<uniform, scale = 4.000000e-02>, moe.param = "decoder.lstm2.input_weights"},
// CHECK-SAME: %[[D2H:[^:]+]]: tensor<512x8192xf32> {moe.init = #moe.init<uniform, scale = 4.000000e-02>, moe.param = "decoder.lstm2.recurrent_weights"},
// CHECK-SAME: %[[D2B:[^:]+]]: tensor<8192xf32> {moe.init = #moe.init<zeros>, moe.param = "decoder.lstm2.bias"},
// CHECK-SAME: %[[D2P:[^:]+]]: tensor<2048x512xf32> {moe.init = #moe.init<uniform, scale = 4.000000e-02>, moe.param = "decoder.lstm2.projection"},
// CHECK-SAME: %[[SW:[^:]+]]: tensor<32000x512xf32> {moe.init = #moe.init<uniform, scale = 4.000000e-02>, moe.param = "softmax.weights"},
// CHECK-SAME: %[[SB:[^:]+]]: tensor<32000xf32> {moe.init = #moe.init<zeros>, moe.param = "softmax.bias"})
// CHECK-SAME: -> tensor<f32>
// Encoder.
// CHECK-NEXT: %[[SE:.*]] = moe.embedding %[[EEMB]][%[[SRC]]] : (tensor<32000x512xf32>, tensor<64x40xi32>) -> tensor<64x40x512xf32>
// CHECK-NEXT: %[[E0:.*]] = moe.dropout %[[SE]] {rate = 4.000000e-01 : f32} : tensor<64x40x512xf32>
// CHECK-NEXT: %[[L1:.*]] = moe.lstm %[[E0]] weights(%[[E1X]], %[[E1H]], %[[E1B]]) projection(%[[E1P]]) : (tensor<64x40x512xf32>, tensor<512x8192xf32>, tensor<512x8192xf32>, tensor<8192xf32>, tensor<2048x512xf32>) -> tensor<64x40x512xf32>
// CHECK-NEXT: %[[L1D:.*]] = moe.dropout %[[L1]] {rate = 4.000000e-01 : f32} : tensor<64x40x512xf32>
// CHECK-NEXT: %[[EX1:.*]] = moe.residual %[[E0]], %[[L1D]] : tensor<64x40x512xf32>
// CHECK-NEXT: %[[L2:.*]] = moe.lstm %[[EX1]] weights(%[[E2X]], %[[E2H]], %[[E2B]]) projection(%[[E2P]]) : (tensor<64x40x512xf32>, tensor<512x8192xf32>, tensor<512x8192xf32>, tensor<8192xf32>, tensor<2048x512xf32>) -> tensor<64x40x512xf32>
// CHECK-NEXT: %[[L2D:.*]] = moe.dropout %[[L2]] {rate = 4.000000e-01 : f32} : tensor<64x40x512xf32>
// CHECK-NEXT: %[[EX2:.*]] = moe.residual %[[EX1]], %[[L2D]] : tensor<64x40x512xf32>
// CHECK-NEXT: %[[EM:.*]], %[[EAUX:.*]] = moe.moe_layer %[[EX2]] gate(%[[EMG]], noise %[[EMN]]) experts(%[[EMW1]], %[[EMW2]]) {expert = #moe.expert<ffn, hidden = 2048>, gating = #moe.gating<noisy_top_k>, k = 4 : i64, losses = #moe.losses<importance = 1.000000e-01, load = 1.000000e-01>, num_experts = 2048 : i64, output_act = #moe.activation<sigmoid>} : (tensor<64x40x512xf32>, tensor<512x2048xf32>, tensor<512x2048xf32>, tensor<2048x512x2048xf32>, tensor<2048x2048x512xf32>) -> (tensor<64x40x512xf32>, tensor<f32>)
// CHECK-NEXT: %[[EMD:.*]] = moe.dropout %[[EM]] {rate = 4.000000e-01 : f32} : tensor<64x40x512xf32>
// CHECK-NEXT: %[[EX3:.*]] = moe.residual %[[EX2]], %[[EMD]] : tensor<64x40x512xf32>
// CHECK-NEXT: %[[L3:.*]] = moe.lstm %[[EX3]] weights(%[[E3X]], %[[E3H]], %[[E3B]]) projection(%[[E3P]]) : (tensor<64x40x512xf32>, tensor<512x8192xf32>, tensor<512x8192xf32>, tensor<8192xf32>, tensor<2048x512xf32>) -> tensor<64x40x512xf32>
// CHECK-NEXT: %[[L3D:.*]] = moe.dropout %[[L3]] {rate = 4.000000e-01 : f32} : tensor<64x40x512xf32>
// CHECK-NEXT: %[[ENC:.*]] = moe.residual %[[EX3]], %[[L3D]] : tensor<64x40x512xf32>
// Decoder.
// CHECK-NEXT: %[[TE:.*]] = moe.embedding %[[DEMB]][%[[TOKENS]]] : (tensor<32000x512xf32>, tensor<64x32xi32>) -> tensor<64x32x512xf32>
// CHECK-NEXT: %[[D0:.*]] = moe.dropout %[[TE]] {rate = 4.000000e-01 : f32} : tensor<64x32x512xf32>
// CHECK-NEXT: %[[K1:.*]] = moe.lstm %[[D0]] weights(%[[D1X]], %[[D1H]], %[[D1B]]) projection(%[[D1P]]) : (tensor<64x32x512xf32>, tensor<512x8192xf32>, tensor<512x8192xf32>, tensor<8192xf32>, tensor<2048x512xf32>) -> tensor<64x32x512xf32>
// CHECK-NEXT: %[[K1D:.*]] = moe.dropout %[[K1]] {rate = 4.000000e-01 : f32} : tensor<64x32x512xf32>
// CHECK-NEXT: %[[DX1:.*]] = moe.residual %[[D0]], %[[K1D]] : tensor<64x32x512xf32>
// CHECK-NEXT: %[[CTX:.*]] = moe.attention %[[ENC]], %[[DX1]] weights(%[[AU]], %[[AW]], %[[AV]]) : (tensor<64x40x512xf32>, tensor<64x32x512xf32>, tensor<512x512xf32>, tensor<512x512xf32>, tensor<512xf32>) -> tensor<64x32x512xf32>
// CHECK-NEXT: %[[DX2:.*]] = moe.residual %[[DX1]], %[[CTX]] : tensor<64x32x512xf32>
// CHECK-NEXT: %[[DM:.*]], %[[DAUX:.*]] = moe.moe_layer %[[DX2]] gate(%[[DMG]], noise %[[DMN]]) experts(%[[DMW1]], %[[DMW2]]) {expert = #moe.expert<ffn, hidden = 2048>, gating = #moe.gating<noisy_top_k>, k = 4 : i64, losses = #moe.losses<importance = 1.000000e-01, load = 1.000000e-01>, num_experts = 2048 : i64, output_act = #moe.activation<sigmoid>} : (tensor<64x32x512xf32>, tensor<512x2048xf32>, tensor<512x2048xf32>, tensor<2048x512x2048xf32>, tensor<2048x2048x512xf32>) -> (tensor<64x32x512xf32>, tensor<f32>)
// CHECK-NEXT: %[[DMD:.*]] = moe.dropout %[[DM]] {rate = 4.000000e-01 : f32} : tensor<64x32x512xf32>
// CHECK-NEXT: %[[DX3:.*]] = moe.residual %[[DX2]], %[[DMD]] : tensor<64x32x512xf32>
// CHECK-NEXT: %[[K2:.*]] = moe.lstm %[[DX3]] weights(%[[D2X]], %[[D2H]], %[[D2B]]) projection(%[[D2P]]) : (tensor<64x32x512xf32>, tensor<512x8192xf32>, tensor<512x8192xf32>, tensor<8192xf32>, tensor<2048x512xf32>) -> tensor<64x32x512xf32>
// CHECK-NEXT: %[[K2D:.*]] = moe.dropout %[[K2]] {rate = 4.000000e-01 : f32} : tensor<64x32x512xf32>
// CHECK-NEXT: %[[DEC:.*]] = moe.residual %[[DX3]], %[[K2D]] : tensor<64x32x512xf32>
// CHECK-NEXT: %[[CE:.*]] = moe.softmax_cross_entropy %[[DEC]], %[[TARGETS]] weights(%[[SW]], %[[SB]]) : (tensor<64x32x512xf32>, tensor<64x32xi32>, tensor<32000x512xf32>, tensor<32000xf32>) -> tensor<f32>
// CHECK-NEXT: %[[LOSS:.*]] = moe.total_loss %[[CE]], %[[EAUX]], %[[DAUX]] : tensor<f32>
// CHECK-NEXT: return %[[LOSS]] : tensor<f32>
