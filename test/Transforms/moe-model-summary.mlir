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

// -----

// A declaration has no layers to count; it printed nothing rather than
// crashing on its missing block.
// CHECK-NOT: model @declared
func.func private @declared(%w: tensor<4xf32> {moe.param = "w", moe.init = #moe.init<zeros>})

// -----

// 64 parameters of 2^57 floats: the total, 2^63, does not fit in int64_t
// and must not wrap negative.
// CHECK-LABEL: model @huge
// CHECK-NEXT: parameters: 9223372036854775808 (9223372036.85B) total, 9223372036854775808 (9223372036.85B) excluding i/o layers
func.func @huge(
    %w0: tensor<268435456x536870912xf32> {moe.param = "w0", moe.init = #moe.init<zeros>},
    %w1: tensor<268435456x536870912xf32> {moe.param = "w1", moe.init = #moe.init<zeros>},
    %w2: tensor<268435456x536870912xf32> {moe.param = "w2", moe.init = #moe.init<zeros>},
    %w3: tensor<268435456x536870912xf32> {moe.param = "w3", moe.init = #moe.init<zeros>},
    %w4: tensor<268435456x536870912xf32> {moe.param = "w4", moe.init = #moe.init<zeros>},
    %w5: tensor<268435456x536870912xf32> {moe.param = "w5", moe.init = #moe.init<zeros>},
    %w6: tensor<268435456x536870912xf32> {moe.param = "w6", moe.init = #moe.init<zeros>},
    %w7: tensor<268435456x536870912xf32> {moe.param = "w7", moe.init = #moe.init<zeros>},
    %w8: tensor<268435456x536870912xf32> {moe.param = "w8", moe.init = #moe.init<zeros>},
    %w9: tensor<268435456x536870912xf32> {moe.param = "w9", moe.init = #moe.init<zeros>},
    %w10: tensor<268435456x536870912xf32> {moe.param = "w10", moe.init = #moe.init<zeros>},
    %w11: tensor<268435456x536870912xf32> {moe.param = "w11", moe.init = #moe.init<zeros>},
    %w12: tensor<268435456x536870912xf32> {moe.param = "w12", moe.init = #moe.init<zeros>},
    %w13: tensor<268435456x536870912xf32> {moe.param = "w13", moe.init = #moe.init<zeros>},
    %w14: tensor<268435456x536870912xf32> {moe.param = "w14", moe.init = #moe.init<zeros>},
    %w15: tensor<268435456x536870912xf32> {moe.param = "w15", moe.init = #moe.init<zeros>},
    %w16: tensor<268435456x536870912xf32> {moe.param = "w16", moe.init = #moe.init<zeros>},
    %w17: tensor<268435456x536870912xf32> {moe.param = "w17", moe.init = #moe.init<zeros>},
    %w18: tensor<268435456x536870912xf32> {moe.param = "w18", moe.init = #moe.init<zeros>},
    %w19: tensor<268435456x536870912xf32> {moe.param = "w19", moe.init = #moe.init<zeros>},
    %w20: tensor<268435456x536870912xf32> {moe.param = "w20", moe.init = #moe.init<zeros>},
    %w21: tensor<268435456x536870912xf32> {moe.param = "w21", moe.init = #moe.init<zeros>},
    %w22: tensor<268435456x536870912xf32> {moe.param = "w22", moe.init = #moe.init<zeros>},
    %w23: tensor<268435456x536870912xf32> {moe.param = "w23", moe.init = #moe.init<zeros>},
    %w24: tensor<268435456x536870912xf32> {moe.param = "w24", moe.init = #moe.init<zeros>},
    %w25: tensor<268435456x536870912xf32> {moe.param = "w25", moe.init = #moe.init<zeros>},
    %w26: tensor<268435456x536870912xf32> {moe.param = "w26", moe.init = #moe.init<zeros>},
    %w27: tensor<268435456x536870912xf32> {moe.param = "w27", moe.init = #moe.init<zeros>},
    %w28: tensor<268435456x536870912xf32> {moe.param = "w28", moe.init = #moe.init<zeros>},
    %w29: tensor<268435456x536870912xf32> {moe.param = "w29", moe.init = #moe.init<zeros>},
    %w30: tensor<268435456x536870912xf32> {moe.param = "w30", moe.init = #moe.init<zeros>},
    %w31: tensor<268435456x536870912xf32> {moe.param = "w31", moe.init = #moe.init<zeros>},
    %w32: tensor<268435456x536870912xf32> {moe.param = "w32", moe.init = #moe.init<zeros>},
    %w33: tensor<268435456x536870912xf32> {moe.param = "w33", moe.init = #moe.init<zeros>},
    %w34: tensor<268435456x536870912xf32> {moe.param = "w34", moe.init = #moe.init<zeros>},
    %w35: tensor<268435456x536870912xf32> {moe.param = "w35", moe.init = #moe.init<zeros>},
    %w36: tensor<268435456x536870912xf32> {moe.param = "w36", moe.init = #moe.init<zeros>},
    %w37: tensor<268435456x536870912xf32> {moe.param = "w37", moe.init = #moe.init<zeros>},
    %w38: tensor<268435456x536870912xf32> {moe.param = "w38", moe.init = #moe.init<zeros>},
    %w39: tensor<268435456x536870912xf32> {moe.param = "w39", moe.init = #moe.init<zeros>},
    %w40: tensor<268435456x536870912xf32> {moe.param = "w40", moe.init = #moe.init<zeros>},
    %w41: tensor<268435456x536870912xf32> {moe.param = "w41", moe.init = #moe.init<zeros>},
    %w42: tensor<268435456x536870912xf32> {moe.param = "w42", moe.init = #moe.init<zeros>},
    %w43: tensor<268435456x536870912xf32> {moe.param = "w43", moe.init = #moe.init<zeros>},
    %w44: tensor<268435456x536870912xf32> {moe.param = "w44", moe.init = #moe.init<zeros>},
    %w45: tensor<268435456x536870912xf32> {moe.param = "w45", moe.init = #moe.init<zeros>},
    %w46: tensor<268435456x536870912xf32> {moe.param = "w46", moe.init = #moe.init<zeros>},
    %w47: tensor<268435456x536870912xf32> {moe.param = "w47", moe.init = #moe.init<zeros>},
    %w48: tensor<268435456x536870912xf32> {moe.param = "w48", moe.init = #moe.init<zeros>},
    %w49: tensor<268435456x536870912xf32> {moe.param = "w49", moe.init = #moe.init<zeros>},
    %w50: tensor<268435456x536870912xf32> {moe.param = "w50", moe.init = #moe.init<zeros>},
    %w51: tensor<268435456x536870912xf32> {moe.param = "w51", moe.init = #moe.init<zeros>},
    %w52: tensor<268435456x536870912xf32> {moe.param = "w52", moe.init = #moe.init<zeros>},
    %w53: tensor<268435456x536870912xf32> {moe.param = "w53", moe.init = #moe.init<zeros>},
    %w54: tensor<268435456x536870912xf32> {moe.param = "w54", moe.init = #moe.init<zeros>},
    %w55: tensor<268435456x536870912xf32> {moe.param = "w55", moe.init = #moe.init<zeros>},
    %w56: tensor<268435456x536870912xf32> {moe.param = "w56", moe.init = #moe.init<zeros>},
    %w57: tensor<268435456x536870912xf32> {moe.param = "w57", moe.init = #moe.init<zeros>},
    %w58: tensor<268435456x536870912xf32> {moe.param = "w58", moe.init = #moe.init<zeros>},
    %w59: tensor<268435456x536870912xf32> {moe.param = "w59", moe.init = #moe.init<zeros>},
    %w60: tensor<268435456x536870912xf32> {moe.param = "w60", moe.init = #moe.init<zeros>},
    %w61: tensor<268435456x536870912xf32> {moe.param = "w61", moe.init = #moe.init<zeros>},
    %w62: tensor<268435456x536870912xf32> {moe.param = "w62", moe.init = #moe.init<zeros>},
    %w63: tensor<268435456x536870912xf32> {moe.param = "w63", moe.init = #moe.init<zeros>}) {
  return
}
