// The smallest sensible mixture-of-experts language model, for unit and
// integration tests: every layer kind of the paper 5.1 models at toy sizes,
// so that a few dozen training steps run in well under a second on a CPU and
// gradients can be checked against finite differences.
//
//   vocab 50, d = 8, batch 2 sentences x 5 time steps (10 tokens)
//   embedding -> LSTM-8 -> MoE (4 linear 8x8 experts, noisy top-2)
//             -> LSTM-8 -> full softmax cross-entropy
//
// Residual connections around every layer as in paper 5.1. There is no
// dropout, so the loss is a deterministic function of the parameters, the
// batch and the gating noise (finite-difference tests need that).
//
// Parameters: 400 (embedding) + 2 x 544 (LSTMs) + 2 x 32 (gate, noise)
//             + 256 (experts) + 450 (softmax) = 2,258.
//
// Run: moe-opt examples/tiny_moe.mlir

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
      : (tensor<2x5x8xf32>, tensor<2x5xi32>, tensor<50x8xf32>, tensor<50xf32>)
      -> tensor<f32>
  %loss = moe.total_loss %ce, %aux : tensor<f32>
  return %loss : tensor<f32>
}
