// A tiny hierarchical mixture-of-experts language model with noisy top-k
// gating at both levels (paper 3.3) and the importance and hierarchical
// load losses (Load_H, Appendix B): the model of tiny_hmoe.mlir with the
// batchwise masks replaced by noisy top-k. 2 groups of 4 linear 8x8
// experts, k_primary = 1, k_secondary = 2; the secondary level's load
// estimate works per group (moe.grouped_load_estimate, whose kernel takes
// the groups before the experts per group: 2 != 4 here on purpose).
//
// Parameters: 400 (embedding) + 2 x 544 (LSTMs) + 2 x 16 (primary gate and
//   noise) + 2 x 64 (secondary gates and noise) + 512 (experts) + 450
//   (softmax) = 2,610.

func.func @tiny_hmoe_topk(
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
    %moe_pnoise: tensor<8x2xf32>
        {moe.param = "moe.primary_noise_weights", moe.init = #moe.init<uniform, scale = 0.5>},
    %moe_sgate: tensor<2x8x4xf32>
        {moe.param = "moe.secondary_gate_weights", moe.init = #moe.init<uniform, scale = 0.5>},
    %moe_snoise: tensor<2x8x4xf32>
        {moe.param = "moe.secondary_noise_weights", moe.init = #moe.init<uniform, scale = 0.5>},
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
      primary(%moe_pgate, noise %moe_pnoise)
      secondary(%moe_sgate, noise %moe_snoise)
      experts(%moe_experts) {
        num_experts = 8 : i64, groups = 2 : i64,
        k_primary = 1 : i64, k_secondary = 2 : i64,
        gating = #moe.gating<noisy_top_k>, expert = #moe.expert<linear>,
        losses = #moe.losses<importance = 0.1, load = 0.1>}
      : (tensor<4x5x8xf32>, tensor<8x2xf32>, tensor<8x2xf32>,
         tensor<2x8x4xf32>, tensor<2x8x4xf32>, tensor<8x8x8xf32>)
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
