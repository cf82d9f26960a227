// Paper 5.1.1, Table 3: "2 x LSTM-512, 64 Experts" on the 1 Billion Word
// benchmark (test perplexity 48.4; 21.0M parameters and 6.3M multiply-adds
// per word excluding the i/o layers; 0.8B in total).
//
//   embedding 793471 x 512
//   -> dropout 0.2 -> LSTM-512 -> dropout 0.2 -> + residual
//   -> MoE: 64 experts, each a 512x512 matrix with no non-linearity,
//      batchwise mask (Appendix A) with k = 8 experts per word on average
//      and learned per-expert thresholds for inference (Eq. 7, 8)
//   -> dropout 0.2 -> + residual
//   -> LSTM-512 -> dropout 0.2 -> + residual
//   -> sampled softmax over the 793471-word vocabulary (8192 samples)
//
// Balancing loss: w_importance = 0.1 on CV^2 of the per-expert gate sums.
// That is the paper's Eq. 5 loss up to scale (CV^2(Importance) = 2n L_balance
// for n experts), written so that one weight fits every expert count (the
// l2_balance weight of Eq. 5 would have to grow with n). The load loss needs
// noisy top-k gating, so batchwise models do not use it; the batchwise mask
// balances the load exactly anyway. Eq. 8 (weight 0.01) trains the
// thresholds: it is a sum over the batch whose gradient reaches only the
// thresholds, which Adam rescales, so the small weight only keeps the
// reported total loss close to the cross-entropy.
//
// Batch: 256 sentences x 32 steps = 8192 words (the paper's 220,000-word
// batches were split over 32 GPUs, about 6,900 words each). The MoE runs once
// on all 8192 positions; each expert takes m = k * 8192 / 64 = 1024 of them.
//
// Parameters excluding i/o: 2 LSTMs x 2,099,200 + gate 32,768
//   + thresholds 64 + experts 64 x 262,144 = 21,008,448 (Table 3: 21.0M);
// i/o layers: embedding 406,257,152 + softmax 407,050,623; total 834,316,223.
//
// Run: moe-opt examples/lstm2x512_moe64.mlir
//      moe-opt --moe-model-summary examples/lstm2x512_moe64.mlir

func.func @lstm2x512_moe64(
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
    %moe_gate: tensor<512x64xf32>
        {moe.param = "moe.gate_weights", moe.init = #moe.init<zeros>},
    // Thresholds start at the uniform gate probability 1/n (per level): at
    // initialisation (zero gate weights, every probability 1/n) no expert
    // passes Eq. 7, instead of all of them overflowing the compiled
    // threshold capacity; Eq. 8 then trains them.
    %moe_thresholds: tensor<64xf32>
        {moe.param = "moe.thresholds", moe.init = #moe.init<constant, scale = 0.015625>},
    %moe_experts: tensor<64x512x512xf32>
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

  %m, %aux = moe.moe_layer %x1 gate(%moe_gate) thresholds(%moe_thresholds)
      experts(%moe_experts) {
        num_experts = 64 : i64, k = 8 : i64,
        gating = #moe.gating<batchwise>, expert = #moe.expert<linear>,
        losses = #moe.losses<importance = 0.1, batchwise_threshold = 0.01>}
      : (tensor<256x32x512xf32>, tensor<512x64xf32>, tensor<64xf32>,
         tensor<64x512x512xf32>) -> (tensor<256x32x512xf32>, tensor<f32>)
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
