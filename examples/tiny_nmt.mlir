// The smallest translation model, for tests: the encoder-decoder of paper
// 5.2 (examples/nmt_ffn_moe.mlir) at toy sizes, with padding. Batches are
// sentence pairs padded to fixed lengths: `source` [batch, S] ids with
// `source_lengths` [batch] (positions at or past a sentence's length are
// padding, whatever ids they hold), the decoder's input `tokens` [batch, T]
// (the target shifted right) and its output `targets` [batch, T] with -1
// at padded positions.
//
//   source vocab 40, target vocab 30, d = 8, batch 3, S = 6, T = 5
//   encoder: embedding -> LSTM-8 -> + residual
//            -> MoE (4 ffn experts 8 -> 8 ReLU -> 8, noisy top-2, sigmoid
//               output, padded positions excluded) -> + residual
//   decoder: embedding -> LSTM-8 -> + residual
//            -> attention over the encoder output (Appendix B, padded
//               source positions masked) -> + residual
//            -> full softmax cross-entropy (-1 targets ignored)
//
// No dropout, so the loss is a deterministic function of the parameters,
// the batch and the gating noise (finite-difference tests need that).
//
// Parameters: 320 + 240 (embeddings) + 2 x 544 (LSTMs) + 2 x 32 (gate,
//             noise) + 2 x 256 (experts) + 2 x 64 + 8 (attention)
//             + 270 (softmax) = 2,630.
//
// Run: moe-opt examples/tiny_nmt.mlir

func.func @tiny_nmt(
    %source: tensor<3x6xi32> {moe.input = "source"},
    %source_lengths: tensor<3xi32> {moe.input = "source_lengths"},
    %tokens: tensor<3x5xi32> {moe.input = "tokens"},
    %targets: tensor<3x5xi32> {moe.input = "targets"},
    // Encoder.
    %enc_embedding: tensor<40x8xf32>
        {moe.param = "encoder.embedding", moe.init = #moe.init<uniform, scale = 0.1>},
    %enc_wx: tensor<8x32xf32>
        {moe.param = "encoder.lstm.input_weights", moe.init = #moe.init<glorot_uniform>},
    %enc_wh: tensor<8x32xf32>
        {moe.param = "encoder.lstm.recurrent_weights", moe.init = #moe.init<glorot_uniform>},
    %enc_b: tensor<32xf32>
        {moe.param = "encoder.lstm.bias", moe.init = #moe.init<zeros>},
    %moe_gate: tensor<8x4xf32>
        {moe.param = "encoder.moe.gate_weights", moe.init = #moe.init<uniform, scale = 0.5>},
    %moe_noise: tensor<8x4xf32>
        {moe.param = "encoder.moe.noise_weights", moe.init = #moe.init<uniform, scale = 0.5>},
    %moe_w1: tensor<4x8x8xf32>
        {moe.param = "encoder.moe.expert_weights1", moe.init = #moe.init<glorot_uniform>},
    %moe_w2: tensor<4x8x8xf32>
        {moe.param = "encoder.moe.expert_weights2", moe.init = #moe.init<glorot_uniform>},
    // Decoder.
    %dec_embedding: tensor<30x8xf32>
        {moe.param = "decoder.embedding", moe.init = #moe.init<uniform, scale = 0.1>},
    %dec_wx: tensor<8x32xf32>
        {moe.param = "decoder.lstm.input_weights", moe.init = #moe.init<glorot_uniform>},
    %dec_wh: tensor<8x32xf32>
        {moe.param = "decoder.lstm.recurrent_weights", moe.init = #moe.init<glorot_uniform>},
    %dec_b: tensor<32xf32>
        {moe.param = "decoder.lstm.bias", moe.init = #moe.init<zeros>},
    %att_u: tensor<8x8xf32>
        {moe.param = "decoder.attention.source_weights", moe.init = #moe.init<uniform, scale = 0.5>},
    %att_w: tensor<8x8xf32>
        {moe.param = "decoder.attention.target_weights", moe.init = #moe.init<uniform, scale = 0.5>},
    %att_v: tensor<8xf32>
        {moe.param = "decoder.attention.score_weights", moe.init = #moe.init<uniform, scale = 0.5>},
    %softmax_w: tensor<30x8xf32>
        {moe.param = "softmax.weights", moe.init = #moe.init<uniform, scale = 0.1>},
    %softmax_b: tensor<30xf32>
        {moe.param = "softmax.bias", moe.init = #moe.init<zeros>})
    -> tensor<f32> {
  // Encoder.
  %src = moe.embedding %enc_embedding[%source]
      : (tensor<40x8xf32>, tensor<3x6xi32>) -> tensor<3x6x8xf32>
  %h1 = moe.lstm %src weights(%enc_wx, %enc_wh, %enc_b)
      : (tensor<3x6x8xf32>, tensor<8x32xf32>, tensor<8x32xf32>, tensor<32xf32>)
      -> tensor<3x6x8xf32>
  %e1 = moe.residual %src, %h1 : tensor<3x6x8xf32>
  %m, %aux = moe.moe_layer %e1 gate(%moe_gate, noise %moe_noise)
      lengths(%source_lengths) experts(%moe_w1, %moe_w2) {
        num_experts = 4 : i64, k = 2 : i64,
        gating = #moe.gating<noisy_top_k>,
        expert = #moe.expert<ffn, hidden = 8, act = relu>,
        output_act = #moe.activation<sigmoid>,
        losses = #moe.losses<importance = 0.1, load = 0.1>}
      : (tensor<3x6x8xf32>, tensor<8x4xf32>, tensor<8x4xf32>, tensor<3xi32>,
         tensor<4x8x8xf32>, tensor<4x8x8xf32>) -> (tensor<3x6x8xf32>, tensor<f32>)
  %enc = moe.residual %e1, %m : tensor<3x6x8xf32>

  // Decoder.
  %tgt = moe.embedding %dec_embedding[%tokens]
      : (tensor<30x8xf32>, tensor<3x5xi32>) -> tensor<3x5x8xf32>
  %k1 = moe.lstm %tgt weights(%dec_wx, %dec_wh, %dec_b)
      : (tensor<3x5x8xf32>, tensor<8x32xf32>, tensor<8x32xf32>, tensor<32xf32>)
      -> tensor<3x5x8xf32>
  %d1 = moe.residual %tgt, %k1 : tensor<3x5x8xf32>
  %ctx = moe.attention %enc, %d1 weights(%att_u, %att_w, %att_v)
      lengths(%source_lengths)
      : (tensor<3x6x8xf32>, tensor<3x5x8xf32>, tensor<8x8xf32>,
         tensor<8x8xf32>, tensor<8xf32>, tensor<3xi32>) -> tensor<3x5x8xf32>
  %d2 = moe.residual %d1, %ctx : tensor<3x5x8xf32>

  %ce = moe.softmax_cross_entropy %d2, %targets weights(%softmax_w, %softmax_b)
      : (tensor<3x5x8xf32>, tensor<3x5xi32>, tensor<30x8xf32>, tensor<30xf32>)
      -> tensor<f32>
  %loss = moe.total_loss %ce, %aux : tensor<f32>
  return %loss : tensor<f32>
}
