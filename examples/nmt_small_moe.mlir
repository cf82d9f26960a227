// A demo-size translation model in the shape of the paper's section 5.2
// model (examples/nmt_ffn_moe.mlir), small enough to train on a CPU in
// minutes on the English-French corpus of scripts/nmt-corpus.py (about
// 54K training pairs of gettext messages, 8000 shared wordpieces).
//
// Encoder, on the source sentence:
//   embedding 8000 x 64 -> dropout 0.1
//   -> LSTM-64 -> dropout 0.1 -> + residual
//   -> MoE: 16 experts, each 64 -> 128 ReLU -> 64, noisy top-k gating with
//      k = 4, the output through a sigmoid -> dropout 0.1 -> + residual
// Decoder, on the target shifted right (BOS first; teacher forcing):
//   embedding 8000 x 64 -> dropout 0.1
//   -> LSTM-64 -> dropout 0.1 -> + residual
//   -> attention over the encoder output (Appendix B) -> + residual
//   -> LSTM-64 -> dropout 0.1 -> + residual
//   -> full softmax over the 8000 wordpieces
//
// Balancing losses: importance and load, 0.1 each. `source_lengths` masks
// the padded source positions: they get no attention weight and no experts
// (nor a share of the balancing losses).
//
// Batch: 32 sentence pairs, source and decoder 32 wordpieces each (longer
// training pairs are left out; targets -1 mark padding).
//
// Parameters: 3 LSTMs x 33,024 = 99,072; gate and noise 2 x 1,024; experts
//   16 x 16,384 = 262,144; attention 8,256; embeddings 2 x 512,000 and
//   softmax 520,000; total 1,915,520.
//
// Run: moe-opt --moe-model-summary examples/nmt_small_moe.mlir
//      scripts/package.sh examples/nmt_small_moe.mlir pkg "lr=0.005 warmup-steps=200"
//      moe-run train pkg --data nmt --steps 2000   (nmt: scripts/nmt-corpus.py nmt)

func.func @nmt_small_moe(
    %source: tensor<32x32xi32> {moe.input = "source"},
    %source_lengths: tensor<32xi32> {moe.input = "source_lengths"},
    %tokens: tensor<32x32xi32> {moe.input = "tokens"},
    %targets: tensor<32x32xi32> {moe.input = "targets"},
    // Encoder.
    %enc_embedding: tensor<8000x64xf32>
        {moe.param = "encoder.embedding", moe.init = #moe.init<uniform, scale = 0.1>},
    %enc_wx: tensor<64x256xf32>
        {moe.param = "encoder.lstm.input_weights", moe.init = #moe.init<uniform, scale = 0.1>},
    %enc_wh: tensor<64x256xf32>
        {moe.param = "encoder.lstm.recurrent_weights", moe.init = #moe.init<uniform, scale = 0.1>},
    %enc_b: tensor<256xf32>
        {moe.param = "encoder.lstm.bias", moe.init = #moe.init<zeros>},
    %moe_gate: tensor<64x16xf32>
        {moe.param = "encoder.moe.gate_weights", moe.init = #moe.init<zeros>},
    %moe_noise: tensor<64x16xf32>
        {moe.param = "encoder.moe.noise_weights", moe.init = #moe.init<zeros>},
    %moe_w1: tensor<16x64x128xf32>
        {moe.param = "encoder.moe.expert_weights1", moe.init = #moe.init<glorot_uniform>},
    %moe_w2: tensor<16x128x64xf32>
        {moe.param = "encoder.moe.expert_weights2", moe.init = #moe.init<glorot_uniform>},
    // Decoder.
    %dec_embedding: tensor<8000x64xf32>
        {moe.param = "decoder.embedding", moe.init = #moe.init<uniform, scale = 0.1>},
    %dec1_wx: tensor<64x256xf32>
        {moe.param = "decoder.lstm1.input_weights", moe.init = #moe.init<uniform, scale = 0.1>},
    %dec1_wh: tensor<64x256xf32>
        {moe.param = "decoder.lstm1.recurrent_weights", moe.init = #moe.init<uniform, scale = 0.1>},
    %dec1_b: tensor<256xf32>
        {moe.param = "decoder.lstm1.bias", moe.init = #moe.init<zeros>},
    %att_u: tensor<64x64xf32>
        {moe.param = "decoder.attention.source_weights", moe.init = #moe.init<uniform, scale = 0.1>},
    %att_w: tensor<64x64xf32>
        {moe.param = "decoder.attention.target_weights", moe.init = #moe.init<uniform, scale = 0.1>},
    %att_v: tensor<64xf32>
        {moe.param = "decoder.attention.score_weights", moe.init = #moe.init<uniform, scale = 0.1>},
    %dec2_wx: tensor<64x256xf32>
        {moe.param = "decoder.lstm2.input_weights", moe.init = #moe.init<uniform, scale = 0.1>},
    %dec2_wh: tensor<64x256xf32>
        {moe.param = "decoder.lstm2.recurrent_weights", moe.init = #moe.init<uniform, scale = 0.1>},
    %dec2_b: tensor<256xf32>
        {moe.param = "decoder.lstm2.bias", moe.init = #moe.init<zeros>},
    %softmax_w: tensor<8000x64xf32>
        {moe.param = "softmax.weights", moe.init = #moe.init<uniform, scale = 0.1>},
    %softmax_b: tensor<8000xf32>
        {moe.param = "softmax.bias", moe.init = #moe.init<zeros>})
    -> tensor<f32> {
  //===--------------------------------------------------------------------===//
  // Encoder
  //===--------------------------------------------------------------------===//
  %src = moe.embedding %enc_embedding[%source]
      : (tensor<8000x64xf32>, tensor<32x32xi32>) -> tensor<32x32x64xf32>
  %e0 = moe.dropout %src {rate = 0.1 : f32} : tensor<32x32x64xf32>
  %el = moe.lstm %e0 weights(%enc_wx, %enc_wh, %enc_b)
      : (tensor<32x32x64xf32>, tensor<64x256xf32>, tensor<64x256xf32>,
         tensor<256xf32>) -> tensor<32x32x64xf32>
  %eld = moe.dropout %el {rate = 0.1 : f32} : tensor<32x32x64xf32>
  %e1 = moe.residual %e0, %eld : tensor<32x32x64xf32>
  %em, %aux = moe.moe_layer %e1 gate(%moe_gate, noise %moe_noise)
      lengths(%source_lengths) experts(%moe_w1, %moe_w2) {
        num_experts = 16 : i64, k = 4 : i64,
        gating = #moe.gating<noisy_top_k>,
        expert = #moe.expert<ffn, hidden = 128, act = relu>,
        output_act = #moe.activation<sigmoid>,
        losses = #moe.losses<importance = 0.1, load = 0.1>}
      : (tensor<32x32x64xf32>, tensor<64x16xf32>, tensor<64x16xf32>,
         tensor<32xi32>, tensor<16x64x128xf32>, tensor<16x128x64xf32>)
      -> (tensor<32x32x64xf32>, tensor<f32>)
  %emd = moe.dropout %em {rate = 0.1 : f32} : tensor<32x32x64xf32>
  %enc = moe.residual %e1, %emd : tensor<32x32x64xf32>

  //===--------------------------------------------------------------------===//
  // Decoder
  //===--------------------------------------------------------------------===//
  %tgt = moe.embedding %dec_embedding[%tokens]
      : (tensor<8000x64xf32>, tensor<32x32xi32>) -> tensor<32x32x64xf32>
  %d0 = moe.dropout %tgt {rate = 0.1 : f32} : tensor<32x32x64xf32>
  %k1 = moe.lstm %d0 weights(%dec1_wx, %dec1_wh, %dec1_b)
      : (tensor<32x32x64xf32>, tensor<64x256xf32>, tensor<64x256xf32>,
         tensor<256xf32>) -> tensor<32x32x64xf32>
  %k1d = moe.dropout %k1 {rate = 0.1 : f32} : tensor<32x32x64xf32>
  %d1 = moe.residual %d0, %k1d : tensor<32x32x64xf32>
  %ctx = moe.attention %enc, %d1 weights(%att_u, %att_w, %att_v)
      lengths(%source_lengths)
      : (tensor<32x32x64xf32>, tensor<32x32x64xf32>, tensor<64x64xf32>,
         tensor<64x64xf32>, tensor<64xf32>, tensor<32xi32>) -> tensor<32x32x64xf32>
  %d2 = moe.residual %d1, %ctx : tensor<32x32x64xf32>
  %k2 = moe.lstm %d2 weights(%dec2_wx, %dec2_wh, %dec2_b)
      : (tensor<32x32x64xf32>, tensor<64x256xf32>, tensor<64x256xf32>,
         tensor<256xf32>) -> tensor<32x32x64xf32>
  %k2d = moe.dropout %k2 {rate = 0.1 : f32} : tensor<32x32x64xf32>
  %dec = moe.residual %d2, %k2d : tensor<32x32x64xf32>

  %ce = moe.softmax_cross_entropy %dec, %targets weights(%softmax_w, %softmax_b)
      : (tensor<32x32x64xf32>, tensor<32x32xi32>, tensor<8000x64xf32>,
         tensor<8000xf32>) -> tensor<f32>
  %loss = moe.total_loss %ce, %aux : tensor<f32>
  return %loss : tensor<f32>
}
