// A tiny hierarchical mixture-of-experts language model with batchwise
// gating at both levels (paper 3.3 with Appendix A per level), for the
// gradient check and a short training run of the hierarchical lowering:
// the model of examples/tiny_moe.mlir with the flat MoE replaced by a
// hierarchical one.
//
//   vocab 50, d = 8, batch 4 sentences x 5 time steps (20 tokens)
//   embedding -> LSTM-8 -> hierarchical MoE -> LSTM-8 -> softmax
//   hierarchical MoE: 2 groups of 4 linear 8x8 experts (8 in all); the
//     primary batchwise mask gives each group k_primary * 20 / 2 = 10 of
//     the tokens, and inside a group each expert keeps k_secondary * 10 / 4
//     = 5 of its rows (2 experts per token on average); learned thresholds
//     [2] and [2, 4] trained with Eq. 8, used by the evaluation copy
//     (threshold masks at both levels, Eq. 7).
//
// With 2 groups and k_primary = 1 the primary mask splits the batch into
// complementary halves (group 1 takes the tokens least likely for group
// 0), so every token has one group, whose gate renormalises to 1 (Eq. 3):
// the primary gate weights get no gradient here, while both levels still
// rank the batch. (k_primary = 2 would keep every token in both groups.)
//
// Residual connections around every layer, no dropout (the loss is a
// deterministic function of the parameters and the batch). The gates start
// from small random weights rather than zeros: with zero gates every token
// ties and the masks pick the lowest token indices, which finite
// differences of a gate weight would reorder. The Eq. 8 weight is small:
// the threshold loss treats the gate probabilities as constants (it trains
// only the thresholds), so finite differences of the gate weights see a
// dependence the compiled gradient leaves out on purpose; Adam's threshold
// updates do not depend on the scale of their gradient.
//
// Parameters: 400 (embedding) + 2 x 544 (LSTMs) + 16 + 2 (primary gate,
//   thresholds) + 64 + 8 (secondary gates, thresholds) + 512 (experts)
//   + 450 (softmax) = 2,540.

func.func @tiny_hmoe(
    %tokens: tensor<4x5xi32> {moe.input = "tokens"},
    %targets: tensor<4x5xi32> {moe.input = "targets"},
    %embedding: tensor<50x8xf32>
        {moe.param = "embedding", moe.init = #moe.init<uniform, scale = 0.1>},
    %lstm1_wx: tensor<8x32xf32>
        {moe.param = "lstm1.input_weights", moe.init = #moe.init<glorot_uniform>},
    %lstm1_wh: tensor<8x32xf32>
        {moe.param = "lstm1.recurrent_weights", moe.init = #moe.init<glorot_uniform>},
    %lstm1_b: tensor<32xf32>
        {moe.param = "lstm1.bias", moe.init = #moe.init<zeros>},
    %moe_pgate: tensor<8x2xf32>
        {moe.param = "moe.primary_gate_weights", moe.init = #moe.init<uniform, scale = 0.5>},
    %moe_pthresholds: tensor<2xf32>
        {moe.param = "moe.primary_thresholds", moe.init = #moe.init<zeros>},
    %moe_sgate: tensor<2x8x4xf32>
        {moe.param = "moe.secondary_gate_weights", moe.init = #moe.init<uniform, scale = 0.5>},
    %moe_sthresholds: tensor<2x4xf32>
        {moe.param = "moe.secondary_thresholds", moe.init = #moe.init<zeros>},
    %moe_experts: tensor<8x8x8xf32>
        {moe.param = "moe.expert_weights", moe.init = #moe.init<glorot_uniform>},
    %lstm2_wx: tensor<8x32xf32>
        {moe.param = "lstm2.input_weights", moe.init = #moe.init<glorot_uniform>},
    %lstm2_wh: tensor<8x32xf32>
        {moe.param = "lstm2.recurrent_weights", moe.init = #moe.init<glorot_uniform>},
    %lstm2_b: tensor<32xf32>
        {moe.param = "lstm2.bias", moe.init = #moe.init<zeros>},
    %softmax_w: tensor<50x8xf32>
        {moe.param = "softmax.weights", moe.init = #moe.init<uniform, scale = 0.1>},
    %softmax_b: tensor<50xf32>
        {moe.param = "softmax.bias", moe.init = #moe.init<zeros>})
    -> tensor<f32> {
  %x0 = moe.embedding %embedding[%tokens]
      : (tensor<50x8xf32>, tensor<4x5xi32>) -> tensor<4x5x8xf32>

  %h1 = moe.lstm %x0 weights(%lstm1_wx, %lstm1_wh, %lstm1_b)
      : (tensor<4x5x8xf32>, tensor<8x32xf32>, tensor<8x32xf32>, tensor<32xf32>)
      -> tensor<4x5x8xf32>
  %x1 = moe.residual %x0, %h1 : tensor<4x5x8xf32>

  %m, %aux = moe.hierarchical_moe_layer %x1
      primary(%moe_pgate, thresholds %moe_pthresholds)
      secondary(%moe_sgate, thresholds %moe_sthresholds)
      experts(%moe_experts) {
        num_experts = 8 : i64, groups = 2 : i64,
        k_primary = 1 : i64, k_secondary = 2 : i64,
        gating = #moe.gating<batchwise>, expert = #moe.expert<linear>,
        losses = #moe.losses<importance = 0.1, batchwise_threshold = 1.0e-4>}
      : (tensor<4x5x8xf32>, tensor<8x2xf32>, tensor<2xf32>,
         tensor<2x8x4xf32>, tensor<2x4xf32>, tensor<8x8x8xf32>)
      -> (tensor<4x5x8xf32>, tensor<f32>)
  %x2 = moe.residual %x1, %m : tensor<4x5x8xf32>

  %h2 = moe.lstm %x2 weights(%lstm2_wx, %lstm2_wh, %lstm2_b)
      : (tensor<4x5x8xf32>, tensor<8x32xf32>, tensor<8x32xf32>, tensor<32xf32>)
      -> tensor<4x5x8xf32>
  %x3 = moe.residual %x2, %h2 : tensor<4x5x8xf32>

  %ce = moe.softmax_cross_entropy %x3, %targets weights(%softmax_w, %softmax_b)
      : (tensor<4x5x8xf32>, tensor<4x5xi32>, tensor<50x8xf32>, tensor<50xf32>)
      -> tensor<f32>
  %loss = moe.total_loss %ce, %aux : tensor<f32>
  return %loss : tensor<f32>
}
