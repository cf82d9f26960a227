// A toy encoder-decoder for moe-run's translation tests (nmt-run.mlir):
// the paper 5.2 model's layer kinds at toy sizes, so that training a few
// dozen steps and decoding with beam search run in a second on a CPU.
//
//   shared wordpieces 64, d = 16, batch 4 pairs, source 18, decoder 18
//   encoder: embedding -> LSTM-16 -> + residual
//            -> MoE (4 ffn experts 16 -> 16 ReLU -> 16, noisy top-2,
//               sigmoid output) -> + residual
//   decoder: embedding -> LSTM-16 -> + residual
//            -> attention over the encoder output -> + residual
//            -> full softmax cross-entropy (targets -1 are padding)
//
// The inputs are what moe-run recognises as a translation model: source
// ids `source` [B, S] with `source_lengths` [B] (padded source positions get
// no attention weight and no experts), decoder inputs `tokens` [B, T] and
// decoder targets `targets` [B, T].

func.func @nmt_run_tiny(
    %source: tensor<4x18xi32> {moe.input = "source"},
    %source_lengths: tensor<4xi32> {moe.input = "source_lengths"},
    %tokens: tensor<4x18xi32> {moe.input = "tokens"},
    %targets: tensor<4x18xi32> {moe.input = "targets"},
    %enc_embedding: tensor<64x16xf32>
        {moe.param = "encoder.embedding", moe.init = #moe.init<uniform, scale = 0.1>},
    %enc_wx: tensor<16x64xf32>
        {moe.param = "encoder.lstm.input_weights", moe.init = #moe.init<glorot_uniform>},
    %enc_wh: tensor<16x64xf32>
        {moe.param = "encoder.lstm.recurrent_weights", moe.init = #moe.init<glorot_uniform>},
    %enc_b: tensor<64xf32>
        {moe.param = "encoder.lstm.bias", moe.init = #moe.init<zeros>},
    %moe_gate: tensor<16x4xf32>
        {moe.param = "encoder.moe.gate_weights", moe.init = #moe.init<zeros>},
    %moe_noise: tensor<16x4xf32>
        {moe.param = "encoder.moe.noise_weights", moe.init = #moe.init<zeros>},
    %moe_w1: tensor<4x16x16xf32>
        {moe.param = "encoder.moe.expert_weights1", moe.init = #moe.init<glorot_uniform>},
    %moe_w2: tensor<4x16x16xf32>
        {moe.param = "encoder.moe.expert_weights2", moe.init = #moe.init<glorot_uniform>},
    %dec_embedding: tensor<64x16xf32>
        {moe.param = "decoder.embedding", moe.init = #moe.init<uniform, scale = 0.1>},
    %dec_wx: tensor<16x64xf32>
        {moe.param = "decoder.lstm.input_weights", moe.init = #moe.init<glorot_uniform>},
    %dec_wh: tensor<16x64xf32>
        {moe.param = "decoder.lstm.recurrent_weights", moe.init = #moe.init<glorot_uniform>},
    %dec_b: tensor<64xf32>
        {moe.param = "decoder.lstm.bias", moe.init = #moe.init<zeros>},
    %att_u: tensor<16x16xf32>
        {moe.param = "decoder.attention.source_weights", moe.init = #moe.init<uniform, scale = 0.3>},
    %att_w: tensor<16x16xf32>
        {moe.param = "decoder.attention.target_weights", moe.init = #moe.init<uniform, scale = 0.3>},
    %att_v: tensor<16xf32>
        {moe.param = "decoder.attention.score_weights", moe.init = #moe.init<uniform, scale = 0.3>},
    %softmax_w: tensor<64x16xf32>
        {moe.param = "softmax.weights", moe.init = #moe.init<uniform, scale = 0.1>},
    %softmax_b: tensor<64xf32>
        {moe.param = "softmax.bias", moe.init = #moe.init<zeros>})
    -> tensor<f32> {
  // Encoder.
  %src = moe.embedding %enc_embedding[%source]
      : (tensor<64x16xf32>, tensor<4x18xi32>) -> tensor<4x18x16xf32>
  %eh = moe.lstm %src weights(%enc_wx, %enc_wh, %enc_b)
      : (tensor<4x18x16xf32>, tensor<16x64xf32>, tensor<16x64xf32>,
         tensor<64xf32>) -> tensor<4x18x16xf32>
  %e1 = moe.residual %src, %eh : tensor<4x18x16xf32>
  %em, %aux = moe.moe_layer %e1 gate(%moe_gate, noise %moe_noise)
      lengths(%source_lengths) experts(%moe_w1, %moe_w2) {
        num_experts = 4 : i64, k = 2 : i64,
        gating = #moe.gating<noisy_top_k>,
        expert = #moe.expert<ffn, hidden = 16, act = relu>,
        output_act = #moe.activation<sigmoid>,
        losses = #moe.losses<importance = 0.1, load = 0.1>}
      : (tensor<4x18x16xf32>, tensor<16x4xf32>, tensor<16x4xf32>, tensor<4xi32>,
         tensor<4x16x16xf32>, tensor<4x16x16xf32>)
      -> (tensor<4x18x16xf32>, tensor<f32>)
  %enc = moe.residual %e1, %em : tensor<4x18x16xf32>

  // Decoder.
  %tgt = moe.embedding %dec_embedding[%tokens]
      : (tensor<64x16xf32>, tensor<4x18xi32>) -> tensor<4x18x16xf32>
  %dh = moe.lstm %tgt weights(%dec_wx, %dec_wh, %dec_b)
      : (tensor<4x18x16xf32>, tensor<16x64xf32>, tensor<16x64xf32>,
         tensor<64xf32>) -> tensor<4x18x16xf32>
  %d1 = moe.residual %tgt, %dh : tensor<4x18x16xf32>
  %ctx = moe.attention %enc, %d1 weights(%att_u, %att_w, %att_v)
      lengths(%source_lengths)
      : (tensor<4x18x16xf32>, tensor<4x18x16xf32>, tensor<16x16xf32>,
         tensor<16x16xf32>, tensor<16xf32>, tensor<4xi32>) -> tensor<4x18x16xf32>
  %dec = moe.residual %d1, %ctx : tensor<4x18x16xf32>

  %ce = moe.softmax_cross_entropy %dec, %targets weights(%softmax_w, %softmax_b)
      : (tensor<4x18x16xf32>, tensor<4x18xi32>, tensor<64x16xf32>,
         tensor<64xf32>) -> tensor<f32>
  %loss = moe.total_loss %ce, %aux : tensor<f32>
  return %loss : tensor<f32>
}
