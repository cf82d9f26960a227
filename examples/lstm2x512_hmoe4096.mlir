// Paper 5.1.1, Table 3: "2 x LSTM-512, 4096 Experts" on the 1 Billion Word
// benchmark (test perplexity 37.5; 1080.0M parameters and 6.4M multiply-adds
// per word excluding the i/o layers; 1.9B in total).
//
//   embedding 793471 x 512
//   -> dropout 0.2 -> LSTM-512 -> dropout 0.2 -> + residual
//   -> hierarchical MoE (paper 3.3): a primary gate picks k_primary = 2 of
//      32 groups, each group a secondary MoE of 128 experts whose own gate
//      picks k_secondary = 4 of them (2 x 4 = 8 experts per word on
//      average, as in the flat models); 4096 experts in all, each a 512x512
//      matrix with no non-linearity; batchwise masks (Appendix A) with learned
//      thresholds (Eq. 7, 8) at both levels
//   -> dropout 0.2 -> + residual
//   -> LSTM-512 -> dropout 0.2 -> + residual
//   -> sampled softmax over the 793471-word vocabulary (8192 samples)
//
// Balancing losses, at both levels: w_importance = 0.1 on CV^2 of the gate
// sums (the paper's Eq. 5 loss up to the scale 2n, so one weight fits the
// 32 groups and the 128 experts of a group alike) and Eq. 8 (weight 0.01) for
// the thresholds. The load loss needs noisy top-k gating and is not used.
//
// Batch: 256 sentences x 32 steps = 8192 words (the paper's 220,000-word
// batches were split over 32 GPUs). The primary batchwise mask gives each
// group exactly m = 2 * 8192 / 32 = 512 positions, and each expert of a group
// then takes 4 * 512 / 128 = 16 of them. Both are whole numbers because
// the batch is a multiple of 512 words.
//
// Parameters excluding i/o: 2 LSTMs x 2,099,200 + primary gate 16,384
//   + primary thresholds 32 + secondary gates 32 x 512 x 128 = 2,097,152
//   + secondary thresholds 4,096 + experts 4096 x 262,144 = 1,073,741,824
//   = 1,080,057,888 (Table 3: 1080.0M);
// i/o layers: embedding 406,257,152 + softmax 407,050,623; total 1,893,365,663.
//
// Run: moe-opt examples/lstm2x512_hmoe4096.mlir
//      moe-opt --moe-model-summary examples/lstm2x512_hmoe4096.mlir

func.func @lstm2x512_hmoe4096(
    %tokens: tensor<256x32xi32> {moe.input = "tokens"},
    %targets: tensor<256x32xi32> {moe.input = "targets"},
    %embedding: tensor<793471x512xf32>
        {moe.param = "embedding", moe.init = #moe.init<uniform, scale = 0.05>},
    %lstm1_wx: tensor<512x2048xf32>
        {moe.param = "lstm1.input_weights", moe.init = #moe.init<uniform, scale = 0.05>},
    %lstm1_wh: tensor<512x2048xf32>
        {moe.param = "lstm1.recurrent_weights", moe.init = #moe.init<uniform, scale = 0.05>},
    %lstm1_b: tensor<2048xf32>
        {moe.param = "lstm1.bias", moe.init = #moe.init<zeros>},
    %moe_pgate: tensor<512x32xf32>
        {moe.param = "moe.primary_gate_weights", moe.init = #moe.init<zeros>},
    // Thresholds start at the uniform gate probability 1/n (per level): at
    // initialisation (zero gate weights, every probability 1/n) no expert
    // passes Eq. 7, instead of all of them overflowing the compiled
    // threshold capacity; Eq. 8 then trains them.
    %moe_pthresholds: tensor<32xf32>
        {moe.param = "moe.primary_thresholds", moe.init = #moe.init<constant, scale = 0.03125>},
    %moe_sgate: tensor<32x512x128xf32>
        {moe.param = "moe.secondary_gate_weights", moe.init = #moe.init<zeros>},
    %moe_sthresholds: tensor<32x128xf32>
        {moe.param = "moe.secondary_thresholds", moe.init = #moe.init<constant, scale = 0.0078125>},
    %moe_experts: tensor<4096x512x512xf32>
        {moe.param = "moe.expert_weights", moe.init = #moe.init<glorot_uniform>},
    %lstm2_wx: tensor<512x2048xf32>
        {moe.param = "lstm2.input_weights", moe.init = #moe.init<uniform, scale = 0.05>},
    %lstm2_wh: tensor<512x2048xf32>
        {moe.param = "lstm2.recurrent_weights", moe.init = #moe.init<uniform, scale = 0.05>},
    %lstm2_b: tensor<2048xf32>
        {moe.param = "lstm2.bias", moe.init = #moe.init<zeros>},
    %softmax_w: tensor<793471x512xf32>
        {moe.param = "softmax.weights", moe.init = #moe.init<uniform, scale = 0.05>},
    %softmax_b: tensor<793471xf32>
        {moe.param = "softmax.bias", moe.init = #moe.init<zeros>})
    -> tensor<f32> {
  %emb = moe.embedding %embedding[%tokens]
      : (tensor<793471x512xf32>, tensor<256x32xi32>) -> tensor<256x32x512xf32>
  %x0 = moe.dropout %emb {rate = 0.2 : f32} : tensor<256x32x512xf32>

  %h1 = moe.lstm %x0 weights(%lstm1_wx, %lstm1_wh, %lstm1_b)
      : (tensor<256x32x512xf32>, tensor<512x2048xf32>, tensor<512x2048xf32>,
         tensor<2048xf32>) -> tensor<256x32x512xf32>
  %h1d = moe.dropout %h1 {rate = 0.2 : f32} : tensor<256x32x512xf32>
  %x1 = moe.residual %x0, %h1d : tensor<256x32x512xf32>

  %m, %aux = moe.hierarchical_moe_layer %x1
      primary(%moe_pgate, thresholds %moe_pthresholds)
      secondary(%moe_sgate, thresholds %moe_sthresholds)
      experts(%moe_experts) {
        num_experts = 4096 : i64, groups = 32 : i64,
        k_primary = 2 : i64, k_secondary = 4 : i64,
        gating = #moe.gating<batchwise>, expert = #moe.expert<linear>,
        losses = #moe.losses<importance = 0.1, batchwise_threshold = 0.01>}
      : (tensor<256x32x512xf32>, tensor<512x32xf32>, tensor<32xf32>,
         tensor<32x512x128xf32>, tensor<32x128xf32>, tensor<4096x512x512xf32>)
      -> (tensor<256x32x512xf32>, tensor<f32>)
  %md = moe.dropout %m {rate = 0.2 : f32} : tensor<256x32x512xf32>
  %x2 = moe.residual %x1, %md : tensor<256x32x512xf32>

  %h2 = moe.lstm %x2 weights(%lstm2_wx, %lstm2_wh, %lstm2_b)
      : (tensor<256x32x512xf32>, tensor<512x2048xf32>, tensor<512x2048xf32>,
         tensor<2048xf32>) -> tensor<256x32x512xf32>
  %h2d = moe.dropout %h2 {rate = 0.2 : f32} : tensor<256x32x512xf32>
  %x3 = moe.residual %x2, %h2d : tensor<256x32x512xf32>

  %ce = moe.softmax_cross_entropy %x3, %targets weights(%softmax_w, %softmax_b)
      {num_samples = 8192 : i64}
      : (tensor<256x32x512xf32>, tensor<256x32xi32>, tensor<793471x512xf32>,
         tensor<793471xf32>) -> tensor<f32>
  %loss = moe.total_loss %ce, %aux : tensor<f32>
  return %loss : tensor<f32>
}
