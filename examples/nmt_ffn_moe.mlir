// Paper 5.2: the WMT'14 En->Fr translation model, "MoE with 2048 Experts"
// of Table 4 (test perplexity 2.63, BLEU 40.56; 8.690B parameters), a GNMT
// variant with 3 encoder and 2 decoder LSTM layers and an MoE layer in each.
//
// Encoder, on the source sentence:
//   embedding 32000 x 512 -> dropout 0.4
//   -> LSTMP-2048-512 -> dropout 0.4 -> + residual
//   -> LSTMP-2048-512 -> dropout 0.4 -> + residual
//   -> MoE (between encoder layers 2 and 3) -> dropout 0.4 -> + residual
//   -> LSTMP-2048-512 -> dropout 0.4 -> + residual
// Decoder, on the target sentence shifted right (teacher forcing):
//   embedding 32000 x 512 -> dropout 0.4
//   -> LSTMP-2048-512 -> dropout 0.4 -> + residual
//   -> attention over the encoder output (Appendix B, Eq. 10) -> + residual
//   -> MoE (between decoder layers 1 and 2) -> dropout 0.4 -> + residual
//   -> LSTMP-2048-512 -> dropout 0.4 -> + residual
//   -> full softmax over the 32000 shared wordpieces
//
// Each MoE: 2048 experts, each a feed-forward network 512 -> 2048 ReLU -> 512
// (2M parameters), noisy top-k gating with k = 4, the output through a
// sigmoid; importance and load losses 0.1 each (the seed text gives no
// weights for 5.2; these are the weights of the language models). Every
// LSTM has 2048 cells and a 512-dimensional output projection (LSTMP), so
// all layers have input and output dimensionality 512.
//
// Where this departs from the paper, because moe.lstm runs a whole sequence
// and there is no concatenation op:
// - The paper's first decoder LSTM also takes the previous step's attention
//   context as input (input feeding); here it does not, and the attention
//   context is added to its output before the MoE instead of concatenated.
// - GNMT's first encoder layer is bidirectional; all layers here run forward.
// Initialisation follows GNMT (uniform in [-0.04, 0.04]), except the zeros of
// the gates, noise weights and biases and Glorot for the experts.
//
// Batch: 64 sentence pairs, source padded to 40 and target to 32 wordpieces
// (targets -1 mark padding).
//
// Parameters: 5 LSTMPs x 9,445,376 = 47,226,880; 2 MoE layers x
//   (gate 1,048,576 + noise 1,048,576 + experts 2048 x 2,097,152
//   = 4,297,064,448); attention 524,800; embeddings 2 x 16,384,000 and
//   softmax 16,416,000; total 8,691,064,576 (Table 4: 8.690B).
//
// Run: moe-opt examples/nmt_ffn_moe.mlir
//      moe-opt --moe-model-summary examples/nmt_ffn_moe.mlir

func.func @nmt_ffn_moe(
    %source: tensor<64x40xi32> {moe.input = "source"},
    %tokens: tensor<64x32xi32> {moe.input = "tokens"},
    %targets: tensor<64x32xi32> {moe.input = "targets"},
    // Encoder.
    %enc_embedding: tensor<32000x512xf32>
        {moe.param = "encoder.embedding", moe.init = #moe.init<uniform, scale = 0.04>},
    %enc1_wx: tensor<512x8192xf32>
        {moe.param = "encoder.lstm1.input_weights", moe.init = #moe.init<uniform, scale = 0.04>},
    %enc1_wh: tensor<512x8192xf32>
        {moe.param = "encoder.lstm1.recurrent_weights", moe.init = #moe.init<uniform, scale = 0.04>},
    %enc1_b: tensor<8192xf32>
        {moe.param = "encoder.lstm1.bias", moe.init = #moe.init<zeros>},
    %enc1_p: tensor<2048x512xf32>
        {moe.param = "encoder.lstm1.projection", moe.init = #moe.init<uniform, scale = 0.04>},
    %enc2_wx: tensor<512x8192xf32>
        {moe.param = "encoder.lstm2.input_weights", moe.init = #moe.init<uniform, scale = 0.04>},
    %enc2_wh: tensor<512x8192xf32>
        {moe.param = "encoder.lstm2.recurrent_weights", moe.init = #moe.init<uniform, scale = 0.04>},
    %enc2_b: tensor<8192xf32>
        {moe.param = "encoder.lstm2.bias", moe.init = #moe.init<zeros>},
    %enc2_p: tensor<2048x512xf32>
        {moe.param = "encoder.lstm2.projection", moe.init = #moe.init<uniform, scale = 0.04>},
    %enc_moe_gate: tensor<512x2048xf32>
        {moe.param = "encoder.moe.gate_weights", moe.init = #moe.init<zeros>},
    %enc_moe_noise: tensor<512x2048xf32>
        {moe.param = "encoder.moe.noise_weights", moe.init = #moe.init<zeros>},
    %enc_moe_w1: tensor<2048x512x2048xf32>
        {moe.param = "encoder.moe.expert_weights1", moe.init = #moe.init<glorot_uniform>},
    %enc_moe_w2: tensor<2048x2048x512xf32>
        {moe.param = "encoder.moe.expert_weights2", moe.init = #moe.init<glorot_uniform>},
    %enc3_wx: tensor<512x8192xf32>
        {moe.param = "encoder.lstm3.input_weights", moe.init = #moe.init<uniform, scale = 0.04>},
    %enc3_wh: tensor<512x8192xf32>
        {moe.param = "encoder.lstm3.recurrent_weights", moe.init = #moe.init<uniform, scale = 0.04>},
    %enc3_b: tensor<8192xf32>
        {moe.param = "encoder.lstm3.bias", moe.init = #moe.init<zeros>},
    %enc3_p: tensor<2048x512xf32>
        {moe.param = "encoder.lstm3.projection", moe.init = #moe.init<uniform, scale = 0.04>},
    // Decoder.
    %dec_embedding: tensor<32000x512xf32>
        {moe.param = "decoder.embedding", moe.init = #moe.init<uniform, scale = 0.04>},
    %dec1_wx: tensor<512x8192xf32>
        {moe.param = "decoder.lstm1.input_weights", moe.init = #moe.init<uniform, scale = 0.04>},
    %dec1_wh: tensor<512x8192xf32>
        {moe.param = "decoder.lstm1.recurrent_weights", moe.init = #moe.init<uniform, scale = 0.04>},
    %dec1_b: tensor<8192xf32>
        {moe.param = "decoder.lstm1.bias", moe.init = #moe.init<zeros>},
    %dec1_p: tensor<2048x512xf32>
        {moe.param = "decoder.lstm1.projection", moe.init = #moe.init<uniform, scale = 0.04>},
    %att_u: tensor<512x512xf32>
        {moe.param = "decoder.attention.source_weights", moe.init = #moe.init<uniform, scale = 0.04>},
    %att_w: tensor<512x512xf32>
        {moe.param = "decoder.attention.target_weights", moe.init = #moe.init<uniform, scale = 0.04>},
    %att_v: tensor<512xf32>
        {moe.param = "decoder.attention.score_weights", moe.init = #moe.init<uniform, scale = 0.04>},
    %dec_moe_gate: tensor<512x2048xf32>
        {moe.param = "decoder.moe.gate_weights", moe.init = #moe.init<zeros>},
    %dec_moe_noise: tensor<512x2048xf32>
        {moe.param = "decoder.moe.noise_weights", moe.init = #moe.init<zeros>},
    %dec_moe_w1: tensor<2048x512x2048xf32>
        {moe.param = "decoder.moe.expert_weights1", moe.init = #moe.init<glorot_uniform>},
    %dec_moe_w2: tensor<2048x2048x512xf32>
        {moe.param = "decoder.moe.expert_weights2", moe.init = #moe.init<glorot_uniform>},
    %dec2_wx: tensor<512x8192xf32>
        {moe.param = "decoder.lstm2.input_weights", moe.init = #moe.init<uniform, scale = 0.04>},
    %dec2_wh: tensor<512x8192xf32>
        {moe.param = "decoder.lstm2.recurrent_weights", moe.init = #moe.init<uniform, scale = 0.04>},
    %dec2_b: tensor<8192xf32>
        {moe.param = "decoder.lstm2.bias", moe.init = #moe.init<zeros>},
    %dec2_p: tensor<2048x512xf32>
        {moe.param = "decoder.lstm2.projection", moe.init = #moe.init<uniform, scale = 0.04>},
    %softmax_w: tensor<32000x512xf32>
        {moe.param = "softmax.weights", moe.init = #moe.init<uniform, scale = 0.04>},
    %softmax_b: tensor<32000xf32>
        {moe.param = "softmax.bias", moe.init = #moe.init<zeros>})
    -> tensor<f32> {
  //===--------------------------------------------------------------------===//
  // Encoder
  //===--------------------------------------------------------------------===//
  %src = moe.embedding %enc_embedding[%source]
      : (tensor<32000x512xf32>, tensor<64x40xi32>) -> tensor<64x40x512xf32>
  %e0 = moe.dropout %src {rate = 0.4 : f32} : tensor<64x40x512xf32>

  %l1 = moe.lstm %e0 weights(%enc1_wx, %enc1_wh, %enc1_b) projection(%enc1_p)
      : (tensor<64x40x512xf32>, tensor<512x8192xf32>, tensor<512x8192xf32>,
         tensor<8192xf32>, tensor<2048x512xf32>) -> tensor<64x40x512xf32>
  %l1d = moe.dropout %l1 {rate = 0.4 : f32} : tensor<64x40x512xf32>
  %e1 = moe.residual %e0, %l1d : tensor<64x40x512xf32>

  %l2 = moe.lstm %e1 weights(%enc2_wx, %enc2_wh, %enc2_b) projection(%enc2_p)
      : (tensor<64x40x512xf32>, tensor<512x8192xf32>, tensor<512x8192xf32>,
         tensor<8192xf32>, tensor<2048x512xf32>) -> tensor<64x40x512xf32>
  %l2d = moe.dropout %l2 {rate = 0.4 : f32} : tensor<64x40x512xf32>
  %e2 = moe.residual %e1, %l2d : tensor<64x40x512xf32>

  %em, %enc_aux = moe.moe_layer %e2 gate(%enc_moe_gate, noise %enc_moe_noise)
      experts(%enc_moe_w1, %enc_moe_w2) {
        num_experts = 2048 : i64, k = 4 : i64,
        gating = #moe.gating<noisy_top_k>,
        expert = #moe.expert<ffn, hidden = 2048, act = relu>,
        output_act = #moe.activation<sigmoid>,
        losses = #moe.losses<importance = 0.1, load = 0.1>}
      : (tensor<64x40x512xf32>, tensor<512x2048xf32>, tensor<512x2048xf32>,
         tensor<2048x512x2048xf32>, tensor<2048x2048x512xf32>)
      -> (tensor<64x40x512xf32>, tensor<f32>)
  %emd = moe.dropout %em {rate = 0.4 : f32} : tensor<64x40x512xf32>
  %e3 = moe.residual %e2, %emd : tensor<64x40x512xf32>

  %l3 = moe.lstm %e3 weights(%enc3_wx, %enc3_wh, %enc3_b) projection(%enc3_p)
      : (tensor<64x40x512xf32>, tensor<512x8192xf32>, tensor<512x8192xf32>,
         tensor<8192xf32>, tensor<2048x512xf32>) -> tensor<64x40x512xf32>
  %l3d = moe.dropout %l3 {rate = 0.4 : f32} : tensor<64x40x512xf32>
  %enc = moe.residual %e3, %l3d : tensor<64x40x512xf32>

  //===--------------------------------------------------------------------===//
  // Decoder
  //===--------------------------------------------------------------------===//
  %tgt = moe.embedding %dec_embedding[%tokens]
      : (tensor<32000x512xf32>, tensor<64x32xi32>) -> tensor<64x32x512xf32>
  %d0 = moe.dropout %tgt {rate = 0.4 : f32} : tensor<64x32x512xf32>

  %k1 = moe.lstm %d0 weights(%dec1_wx, %dec1_wh, %dec1_b) projection(%dec1_p)
      : (tensor<64x32x512xf32>, tensor<512x8192xf32>, tensor<512x8192xf32>,
         tensor<8192xf32>, tensor<2048x512xf32>) -> tensor<64x32x512xf32>
  %k1d = moe.dropout %k1 {rate = 0.4 : f32} : tensor<64x32x512xf32>
  %d1 = moe.residual %d0, %k1d : tensor<64x32x512xf32>

  // Appendix B: A(x_i, y_j) = sum_e V_e tanh((x_i U)_e) tanh((y_j W)_e) over
  // the 40 source positions for each of the 32 target positions.
  %ctx = moe.attention %enc, %d1 weights(%att_u, %att_w, %att_v)
      : (tensor<64x40x512xf32>, tensor<64x32x512xf32>, tensor<512x512xf32>,
         tensor<512x512xf32>, tensor<512xf32>) -> tensor<64x32x512xf32>
  %d2 = moe.residual %d1, %ctx : tensor<64x32x512xf32>

  %dm, %dec_aux = moe.moe_layer %d2 gate(%dec_moe_gate, noise %dec_moe_noise)
      experts(%dec_moe_w1, %dec_moe_w2) {
        num_experts = 2048 : i64, k = 4 : i64,
        gating = #moe.gating<noisy_top_k>,
        expert = #moe.expert<ffn, hidden = 2048, act = relu>,
        output_act = #moe.activation<sigmoid>,
        losses = #moe.losses<importance = 0.1, load = 0.1>}
      : (tensor<64x32x512xf32>, tensor<512x2048xf32>, tensor<512x2048xf32>,
         tensor<2048x512x2048xf32>, tensor<2048x2048x512xf32>)
      -> (tensor<64x32x512xf32>, tensor<f32>)
  %dmd = moe.dropout %dm {rate = 0.4 : f32} : tensor<64x32x512xf32>
  %d3 = moe.residual %d2, %dmd : tensor<64x32x512xf32>

  %k2 = moe.lstm %d3 weights(%dec2_wx, %dec2_wh, %dec2_b) projection(%dec2_p)
      : (tensor<64x32x512xf32>, tensor<512x8192xf32>, tensor<512x8192xf32>,
         tensor<8192xf32>, tensor<2048x512xf32>) -> tensor<64x32x512xf32>
  %k2d = moe.dropout %k2 {rate = 0.4 : f32} : tensor<64x32x512xf32>
  %dec = moe.residual %d3, %k2d : tensor<64x32x512xf32>

  %ce = moe.softmax_cross_entropy %dec, %targets weights(%softmax_w, %softmax_b)
      : (tensor<64x32x512xf32>, tensor<64x32xi32>, tensor<32000x512xf32>,
         tensor<32000xf32>) -> tensor<f32>
  %loss = moe.total_loss %ce, %enc_aux, %dec_aux : tensor<f32>
  return %loss : tensor<f32>
}
