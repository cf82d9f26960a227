// The demo language model at a size that fills a GPU (issue 13's GPU-size
// LM): the shape of examples/small_lstm_moe.mlir with the paper's 512-wide
// LSTMs and a flat MoE of 64 experts, for measuring training throughput on
// a GPU against PyTorch (bench/baselines/lm_step_torch.py is the same
// model). On the King James Bible (8000-word vocabulary).
//
//   embedding 8000 x 512
//   -> dropout 0.1 -> LSTM-512 -> dropout 0.1 -> + residual
//   -> MoE: 64 experts, each a 512x512 matrix with no non-linearity (5.1),
//      noisy top-k gating with k = 4 (W_g and W_noise zero-initialised)
//   -> dropout 0.1 -> + residual
//   -> LSTM-512 -> dropout 0.1 -> + residual
//   -> full softmax over the 8000 words
//
// Balancing losses: importance and load, 0.1 each.
//
// Batch: 128 sentences x 32 steps = 4096 words; each expert sees about
// k * 4096 / 64 = 256 of them.
//
// Parameters excluding i/o: 2 LSTMs x 2,099,200 + gate 32,768 + noise
//   32,768 + experts 64 x 262,144 = 21,041,152; i/o layers: embedding
//   4,096,000 + softmax 4,104,000; total 29,241,152.
//
// Run: moe-opt --moe-model-summary examples/gpu_lstm_moe.mlir
//      scripts/package.sh examples/gpu_lstm_moe.mlir pkg "lr=0.001" cuda

func.func @gpu_lstm_moe(
    %tokens: tensor<128x32xi32> {moe.input = "tokens"},
    %targets: tensor<128x32xi32> {moe.input = "targets"},
    %embedding: tensor<8000x512xf32>
        {moe.param = "embedding", moe.init = #moe.init<uniform, scale = 0.1>},
    %lstm1_wx: tensor<512x2048xf32>
        {moe.param = "lstm1.input_weights", moe.init = #moe.init<uniform, scale = 0.1>},
    %lstm1_wh: tensor<512x2048xf32>
        {moe.param = "lstm1.recurrent_weights", moe.init = #moe.init<uniform, scale = 0.1>},
    %lstm1_b: tensor<2048xf32>
        {moe.param = "lstm1.bias", moe.init = #moe.init<zeros>},
    %moe_gate: tensor<512x64xf32>
        {moe.param = "moe.gate_weights", moe.init = #moe.init<zeros>},
    %moe_noise: tensor<512x64xf32>
        {moe.param = "moe.noise_weights", moe.init = #moe.init<zeros>},
    %moe_experts: tensor<64x512x512xf32>
        {moe.param = "moe.expert_weights", moe.init = #moe.init<glorot_uniform>},
    %lstm2_wx: tensor<512x2048xf32>
        {moe.param = "lstm2.input_weights", moe.init = #moe.init<uniform, scale = 0.1>},
    %lstm2_wh: tensor<512x2048xf32>
        {moe.param = "lstm2.recurrent_weights", moe.init = #moe.init<uniform, scale = 0.1>},
    %lstm2_b: tensor<2048xf32>
        {moe.param = "lstm2.bias", moe.init = #moe.init<zeros>},
    %softmax_w: tensor<8000x512xf32>
        {moe.param = "softmax.weights", moe.init = #moe.init<uniform, scale = 0.1>},
    %softmax_b: tensor<8000xf32>
        {moe.param = "softmax.bias", moe.init = #moe.init<zeros>})
    -> tensor<f32> {
  %emb = moe.embedding %embedding[%tokens]
      : (tensor<8000x512xf32>, tensor<128x32xi32>) -> tensor<128x32x512xf32>
  %x0 = moe.dropout %emb {rate = 0.1 : f32} : tensor<128x32x512xf32>

  %h1 = moe.lstm %x0 weights(%lstm1_wx, %lstm1_wh, %lstm1_b)
      : (tensor<128x32x512xf32>, tensor<512x2048xf32>, tensor<512x2048xf32>,
         tensor<2048xf32>) -> tensor<128x32x512xf32>
  %h1d = moe.dropout %h1 {rate = 0.1 : f32} : tensor<128x32x512xf32>
  %x1 = moe.residual %x0, %h1d : tensor<128x32x512xf32>

  %m, %aux = moe.moe_layer %x1 gate(%moe_gate, noise %moe_noise)
      experts(%moe_experts) {
        num_experts = 64 : i64, k = 4 : i64,
        gating = #moe.gating<noisy_top_k>, expert = #moe.expert<linear>,
        losses = #moe.losses<importance = 0.1, load = 0.1>}
      : (tensor<128x32x512xf32>, tensor<512x64xf32>, tensor<512x64xf32>,
         tensor<64x512x512xf32>) -> (tensor<128x32x512xf32>, tensor<f32>)
  %md = moe.dropout %m {rate = 0.1 : f32} : tensor<128x32x512xf32>
  %x2 = moe.residual %x1, %md : tensor<128x32x512xf32>

  %h2 = moe.lstm %x2 weights(%lstm2_wx, %lstm2_wh, %lstm2_b)
      : (tensor<128x32x512xf32>, tensor<512x2048xf32>, tensor<512x2048xf32>,
         tensor<2048xf32>) -> tensor<128x32x512xf32>
  %h2d = moe.dropout %h2 {rate = 0.1 : f32} : tensor<128x32x512xf32>
  %x3 = moe.residual %x2, %h2d : tensor<128x32x512xf32>

  %ce = moe.softmax_cross_entropy %x3, %targets weights(%softmax_w, %softmax_b)
      : (tensor<128x32x512xf32>, tensor<128x32xi32>, tensor<8000x512xf32>,
         tensor<8000xf32>) -> tensor<f32>
  %loss = moe.total_loss %ce, %aux : tensor<f32>
  return %loss : tensor<f32>
}
