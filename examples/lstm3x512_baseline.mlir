// Paper 5.1.1, Table 3: "3 x LSTM-512", the computation-matched baseline of
// the 1 Billion Word models (test perplexity 50.5; 6.3M parameters and 6.3M
// multiply-adds per word excluding the i/o layers; 0.8B in total). It is
// lstm2x512_moe*.mlir with the MoE layer replaced by a third LSTM.
//
//   embedding 793471 x 512
//   -> dropout 0.2 -> LSTM-512 -> dropout 0.2 -> + residual
//   -> LSTM-512 -> dropout 0.2 -> + residual
//   -> LSTM-512 -> dropout 0.2 -> + residual
//   -> sampled softmax over the 793471-word vocabulary (8192 samples)
//
// Batch: 256 sentences x 32 steps = 8192 words, as in the MoE models.
//
// Parameters excluding i/o: 3 LSTMs x 2,099,200 = 6,297,600 (Table 3: 6.3M);
// i/o layers: embedding 406,257,152 + softmax 407,050,623; total 819,605,375.
//
// Run: moe-opt examples/lstm3x512_baseline.mlir
//      moe-opt --moe-model-summary examples/lstm3x512_baseline.mlir

func.func @lstm3x512_baseline(
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
    %lstm2_wx: tensor<512x2048xf32>
        {moe.param = "lstm2.input_weights", moe.init = #moe.init<uniform, scale = 0.05>},
    %lstm2_wh: tensor<512x2048xf32>
        {moe.param = "lstm2.recurrent_weights", moe.init = #moe.init<uniform, scale = 0.05>},
    %lstm2_b: tensor<2048xf32>
        {moe.param = "lstm2.bias", moe.init = #moe.init<zeros>},
    %lstm3_wx: tensor<512x2048xf32>
        {moe.param = "lstm3.input_weights", moe.init = #moe.init<uniform, scale = 0.05>},
    %lstm3_wh: tensor<512x2048xf32>
        {moe.param = "lstm3.recurrent_weights", moe.init = #moe.init<uniform, scale = 0.05>},
    %lstm3_b: tensor<2048xf32>
        {moe.param = "lstm3.bias", moe.init = #moe.init<zeros>},
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

  %h2 = moe.lstm %x1 weights(%lstm2_wx, %lstm2_wh, %lstm2_b)
      : (tensor<256x32x512xf32>, tensor<512x2048xf32>, tensor<512x2048xf32>,
         tensor<2048xf32>) -> tensor<256x32x512xf32>
  %h2d = moe.dropout %h2 {rate = 0.2 : f32} : tensor<256x32x512xf32>
  %x2 = moe.residual %x1, %h2d : tensor<256x32x512xf32>

  %h3 = moe.lstm %x2 weights(%lstm3_wx, %lstm3_wh, %lstm3_b)
      : (tensor<256x32x512xf32>, tensor<512x2048xf32>, tensor<512x2048xf32>,
         tensor<2048xf32>) -> tensor<256x32x512xf32>
  %h3d = moe.dropout %h3 {rate = 0.2 : f32} : tensor<256x32x512xf32>
  %x3 = moe.residual %x2, %h3d : tensor<256x32x512xf32>

  %ce = moe.softmax_cross_entropy %x3, %targets weights(%softmax_w, %softmax_b)
      {num_samples = 8192 : i64}
      : (tensor<256x32x512xf32>, tensor<256x32xi32>, tensor<793471x512xf32>,
         tensor<793471xf32>) -> tensor<f32>
  %loss = moe.total_loss %ce : tensor<f32>
  return %loss : tensor<f32>
}
