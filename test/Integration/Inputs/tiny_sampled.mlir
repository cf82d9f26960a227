// The tiny LM of examples/tiny_moe.mlir with a sampled softmax (8 classes
// drawn per batch from the 50 words, as the paper's 793K-word models do),
// for the sparse-gradient tests: both vocabulary layers (embedding and
// output weights) can take row-sparse gradients and lazy Adam.
//
func.func @tiny_moe(
    %tokens: tensor<2x5xi32> {moe.input = "tokens"},
    %targets: tensor<2x5xi32> {moe.input = "targets"},
    %embedding: tensor<50x8xf32>
        {moe.param = "embedding", moe.init = #moe.init<uniform, scale = 0.1>},
    %lstm1_wx: tensor<8x32xf32>
        {moe.param = "lstm1.input_weights", moe.init = #moe.init<glorot_uniform>},
    %lstm1_wh: tensor<8x32xf32>
        {moe.param = "lstm1.recurrent_weights", moe.init = #moe.init<glorot_uniform>},
    %lstm1_b: tensor<32xf32>
        {moe.param = "lstm1.bias", moe.init = #moe.init<zeros>},
    %moe_gate: tensor<8x4xf32>
        {moe.param = "moe.gate_weights", moe.init = #moe.init<zeros>},
    %moe_noise: tensor<8x4xf32>
        {moe.param = "moe.noise_weights", moe.init = #moe.init<zeros>},
    %moe_experts: tensor<4x8x8xf32>
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
      : (tensor<50x8xf32>, tensor<2x5xi32>) -> tensor<2x5x8xf32>

  %h1 = moe.lstm %x0 weights(%lstm1_wx, %lstm1_wh, %lstm1_b)
      : (tensor<2x5x8xf32>, tensor<8x32xf32>, tensor<8x32xf32>, tensor<32xf32>)
      -> tensor<2x5x8xf32>
  %x1 = moe.residual %x0, %h1 : tensor<2x5x8xf32>

  %m, %aux = moe.moe_layer %x1 gate(%moe_gate, noise %moe_noise)
      experts(%moe_experts) {
        num_experts = 4 : i64, k = 2 : i64,
        gating = #moe.gating<noisy_top_k>, expert = #moe.expert<linear>,
        losses = #moe.losses<importance = 0.1, load = 0.1>}
      : (tensor<2x5x8xf32>, tensor<8x4xf32>, tensor<8x4xf32>,
         tensor<4x8x8xf32>) -> (tensor<2x5x8xf32>, tensor<f32>)
  %x2 = moe.residual %x1, %m : tensor<2x5x8xf32>

  %h2 = moe.lstm %x2 weights(%lstm2_wx, %lstm2_wh, %lstm2_b)
      : (tensor<2x5x8xf32>, tensor<8x32xf32>, tensor<8x32xf32>, tensor<32xf32>)
      -> tensor<2x5x8xf32>
  %x3 = moe.residual %x2, %h2 : tensor<2x5x8xf32>

  %ce = moe.softmax_cross_entropy %x3, %targets weights(%softmax_w, %softmax_b)
      {num_samples = 8 : i64}
      : (tensor<2x5x8xf32>, tensor<2x5xi32>, tensor<50x8xf32>, tensor<50xf32>)
      -> tensor<f32>
  %loss = moe.total_loss %ce, %aux : tensor<f32>
  return %loss : tensor<f32>
}
