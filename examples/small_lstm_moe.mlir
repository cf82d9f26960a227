// A small paper-5.1-style language model for fast tests and the demo (the
// King James Bible corpus: about 823K words, an 8000-word vocabulary with
// <unk> and the end-of-sentence token). Trains on one CPU core in minutes.
//
//   embedding 8000 x 64
//   -> dropout 0.1 -> LSTM-64 -> dropout 0.1 -> + residual
//   -> MoE: 8 experts, each a 64x64 matrix with no non-linearity (as in 5.1),
//      noisy top-k gating with k = 2 (W_g and W_noise zero-initialised)
//   -> dropout 0.1 -> + residual
//   -> LSTM-64 -> dropout 0.1 -> + residual
//   -> full softmax over the 8000 words
//
// Balancing losses: importance and load, 0.1 each (CV^2 of the per-expert
// gate sums and of the smooth load estimate of noisy top-k gating). Dropout
// is 0.1 rather than the paper's 0.2: at d = 64 on a small corpus the model
// underfits before it overfits.
//
// Batch: 16 sentences x 20 steps = 320 words; the MoE runs once on all 320
// positions, so each expert sees about k * 320 / 8 = 80 of them.
//
// Parameters excluding i/o: 2 LSTMs x 33,024 + gate 512 + noise 512
//   + experts 8 x 4,096 = 99,840; i/o layers: embedding 512,000 + softmax
//   520,000; total 1,131,840.
//
// Run: moe-opt examples/small_lstm_moe.mlir
//      moe-opt --moe-model-summary examples/small_lstm_moe.mlir

func.func @small_lstm_moe(
    %tokens: tensor<16x20xi32> {moe.input = "tokens"},
    %targets: tensor<16x20xi32> {moe.input = "targets"},
    %embedding: tensor<8000x64xf32>
        {moe.param = "embedding", moe.init = #moe.init<uniform, scale = 0.1>},
    %lstm1_wx: tensor<64x256xf32>
        {moe.param = "lstm1.input_weights", moe.init = #moe.init<uniform, scale = 0.1>},
    %lstm1_wh: tensor<64x256xf32>
        {moe.param = "lstm1.recurrent_weights", moe.init = #moe.init<uniform, scale = 0.1>},
    %lstm1_b: tensor<256xf32>
        {moe.param = "lstm1.bias", moe.init = #moe.init<zeros>},
    %moe_gate: tensor<64x8xf32>
        {moe.param = "moe.gate_weights", moe.init = #moe.init<zeros>},
    %moe_noise: tensor<64x8xf32>
        {moe.param = "moe.noise_weights", moe.init = #moe.init<zeros>},
    %moe_experts: tensor<8x64x64xf32>
        {moe.param = "moe.expert_weights", moe.init = #moe.init<glorot_uniform>},
    %lstm2_wx: tensor<64x256xf32>
        {moe.param = "lstm2.input_weights", moe.init = #moe.init<uniform, scale = 0.1>},
    %lstm2_wh: tensor<64x256xf32>
        {moe.param = "lstm2.recurrent_weights", moe.init = #moe.init<uniform, scale = 0.1>},
    %lstm2_b: tensor<256xf32>
        {moe.param = "lstm2.bias", moe.init = #moe.init<zeros>},
    %softmax_w: tensor<8000x64xf32>
        {moe.param = "softmax.weights", moe.init = #moe.init<uniform, scale = 0.1>},
    %softmax_b: tensor<8000xf32>
        {moe.param = "softmax.bias", moe.init = #moe.init<zeros>})
    -> tensor<f32> {
  %emb = moe.embedding %embedding[%tokens]
      : (tensor<8000x64xf32>, tensor<16x20xi32>) -> tensor<16x20x64xf32>
  %x0 = moe.dropout %emb {rate = 0.1 : f32} : tensor<16x20x64xf32>

  %h1 = moe.lstm %x0 weights(%lstm1_wx, %lstm1_wh, %lstm1_b)
      : (tensor<16x20x64xf32>, tensor<64x256xf32>, tensor<64x256xf32>,
         tensor<256xf32>) -> tensor<16x20x64xf32>
  %h1d = moe.dropout %h1 {rate = 0.1 : f32} : tensor<16x20x64xf32>
  %x1 = moe.residual %x0, %h1d : tensor<16x20x64xf32>

  %m, %aux = moe.moe_layer %x1 gate(%moe_gate, noise %moe_noise)
      experts(%moe_experts) {
        num_experts = 8 : i64, k = 2 : i64,
        gating = #moe.gating<noisy_top_k>, expert = #moe.expert<linear>,
        losses = #moe.losses<importance = 0.1, load = 0.1>}
      : (tensor<16x20x64xf32>, tensor<64x8xf32>, tensor<64x8xf32>,
         tensor<8x64x64xf32>) -> (tensor<16x20x64xf32>, tensor<f32>)
  %md = moe.dropout %m {rate = 0.1 : f32} : tensor<16x20x64xf32>
  %x2 = moe.residual %x1, %md : tensor<16x20x64xf32>

  %h2 = moe.lstm %x2 weights(%lstm2_wx, %lstm2_wh, %lstm2_b)
      : (tensor<16x20x64xf32>, tensor<64x256xf32>, tensor<64x256xf32>,
         tensor<256xf32>) -> tensor<16x20x64xf32>
  %h2d = moe.dropout %h2 {rate = 0.1 : f32} : tensor<16x20x64xf32>
  %x3 = moe.residual %x2, %h2d : tensor<16x20x64xf32>

  %ce = moe.softmax_cross_entropy %x3, %targets weights(%softmax_w, %softmax_b)
      : (tensor<16x20x64xf32>, tensor<16x20xi32>, tensor<8000x64xf32>,
         tensor<8000xf32>) -> tensor<f32>
  %loss = moe.total_loss %ce, %aux : tensor<f32>
  return %loss : tensor<f32>
}
