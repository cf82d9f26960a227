// RUN: moe-opt %s -split-input-file --moe-model-summary -o /dev/null 2>&1 | FileCheck %s

// Paper Table 3, "2 x LSTM-512, 8 Experts" at toy width: two LSTMs with a
// flat MoE between them. The embedding and the softmax are the i/o layers
// and must be left out of the "excluding i/o" counts.
// CHECK-LABEL: model @lstm_moe
// Parameters: embedding 100*8 + 2 LSTMs 2*(8*32 + 8*32 + 32) + gate 8*4 +
// noise 8*4 + experts 4*8*8 + softmax 100*8 + 100.
// CHECK-NEXT: parameters: 3108 (3.1K) total, 1408 (1.4K) excluding i/o layers
// Per word: LSTMs 2 * 4*8*(8+8) = 1024, gate + noise 64, k=2 experts 128;
// full softmax 100 * 8.
// CHECK-NEXT: multiply-adds per word (forward): 2016 (2.0K) total, 1216 (1.2K) excluding i/o layers
// CHECK-NEXT: moe_layer: 4 experts (linear 8x8), k = 2, noisy_top_k gating; 320 parameters, 192 multiply-adds per word
func.func @lstm_moe(
    %tokens: tensor<2x5xi32> {moe.input = "tokens"},
    %targets: tensor<2x5xi32> {moe.input = "targets"},
    %emb: tensor<100x8xf32> {moe.param = "embedding", moe.init = #moe.init<uniform, scale = 0.1>},
    %wx1: tensor<8x32xf32> {moe.param = "lstm1.wx", moe.init = #moe.init<glorot_uniform>},
    %wh1: tensor<8x32xf32> {moe.param = "lstm1.wh", moe.init = #moe.init<glorot_uniform>},
    %b1: tensor<32xf32> {moe.param = "lstm1.b", moe.init = #moe.init<zeros>},
    %wg: tensor<8x4xf32> {moe.param = "moe.gate", moe.init = #moe.init<zeros>},
    %wn: tensor<8x4xf32> {moe.param = "moe.noise", moe.init = #moe.init<zeros>},
    %we: tensor<4x8x8xf32> {moe.param = "moe.experts", moe.init = #moe.init<glorot_uniform>},
    %wx2: tensor<8x32xf32> {moe.param = "lstm2.wx", moe.init = #moe.init<glorot_uniform>},
    %wh2: tensor<8x32xf32> {moe.param = "lstm2.wh", moe.init = #moe.init<glorot_uniform>},
    %b2: tensor<32xf32> {moe.param = "lstm2.b", moe.init = #moe.init<zeros>},
    %wo: tensor<100x8xf32> {moe.param = "softmax.w", moe.init = #moe.init<uniform, scale = 0.1>},
    %bo: tensor<100xf32> {moe.param = "softmax.b", moe.init = #moe.init<zeros>}) -> tensor<f32> {
  %x = moe.embedding %emb[%tokens] : (tensor<100x8xf32>, tensor<2x5xi32>) -> tensor<2x5x8xf32>
  %h1 = moe.lstm %x weights(%wx1, %wh1, %b1) : (tensor<2x5x8xf32>, tensor<8x32xf32>, tensor<8x32xf32>, tensor<32xf32>) -> tensor<2x5x8xf32>
  %m, %aux = moe.moe_layer %h1 gate(%wg, noise %wn) experts(%we) {num_experts = 4 : i64, k = 2 : i64, gating = #moe.gating<noisy_top_k>, expert = #moe.expert<linear>, losses = #moe.losses<importance = 0.1, load = 0.1>} : (tensor<2x5x8xf32>, tensor<8x4xf32>, tensor<8x4xf32>, tensor<4x8x8xf32>) -> (tensor<2x5x8xf32>, tensor<f32>)
  %r = moe.residual %h1, %m : tensor<2x5x8xf32>
  %h2 = moe.lstm %r weights(%wx2, %wh2, %b2) : (tensor<2x5x8xf32>, tensor<8x32xf32>, tensor<8x32xf32>, tensor<32xf32>) -> tensor<2x5x8xf32>
  %ce = moe.softmax_cross_entropy %h2, %targets weights(%wo, %bo) : (tensor<2x5x8xf32>, tensor<2x5xi32>, tensor<100x8xf32>, tensor<100xf32>) -> tensor<f32>
  %loss = moe.total_loss %ce, %aux : tensor<f32>
  return %loss : tensor<f32>
}

// -----

// A hierarchical layer counts only the k_primary secondary gates that run.
// CHECK-LABEL: model @hierarchical
// CHECK: hierarchical_moe_layer: 8 experts in 2 groups (ffn 4->6 relu->4), k_primary = 1, k_secondary = 2, top_k gating;
// Primary gate 4*2 + 1 secondary gate 4*4 + 1*2 experts * (4*6 + 6*4).
// CHECK-SAME: 120 multiply-adds per word
func.func @hierarchical(
    %x: tensor<6x4xf32>,
    %pg: tensor<4x2xf32> {moe.param = "pg", moe.init = #moe.init<zeros>},
    %sg: tensor<2x4x4xf32> {moe.param = "sg", moe.init = #moe.init<zeros>},
    %w1: tensor<8x4x6xf32> {moe.param = "w1", moe.init = #moe.init<glorot_uniform>},
    %w2: tensor<8x6x4xf32> {moe.param = "w2", moe.init = #moe.init<glorot_uniform>}) -> tensor<6x4xf32> {
  %y, %aux = moe.hierarchical_moe_layer %x primary(%pg) secondary(%sg) experts(%w1, %w2) {num_experts = 8 : i64, groups = 2 : i64, k_primary = 1 : i64, k_secondary = 2 : i64, gating = #moe.gating<top_k>, expert = #moe.expert<ffn, hidden = 6>} : (tensor<6x4xf32>, tensor<4x2xf32>, tensor<2x4x4xf32>, tensor<8x4x6xf32>, tensor<8x6x4xf32>) -> (tensor<6x4xf32>, tensor<f32>)
  return %y : tensor<6x4xf32>
}

// -----

// Functions without parameters are not models and print nothing.
// CHECK-NOT: model @helper
func.func @helper(%x: tensor<f32>) -> tensor<f32> {
  return %x : tensor<f32>
}
