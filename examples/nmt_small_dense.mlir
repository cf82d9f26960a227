// The dense baseline of examples/nmt_small_moe.mlir: the same translation
// model with the encoder's mixture of experts replaced by one dense ReLU
// feed-forward layer of the same compute per word. The MoE runs k = 4
// experts of 64 -> 128 -> 64 per word, 4 x 16,384 = 65,536 multiply-adds;
// the dense layer is 64 -> 512 ReLU -> 64, also 65,536, and like the
// experts it has no biases and its output goes through a sigmoid. It is
// written with two moe.linear ops rather than as a moe_layer over one
// expert: softmax gating over a single expert would always give it weight
// 1 (its gate weights would get no gradient, and the model summary would
// count them), and a MoE layer has no meaning with one expert. The layer
// runs on padded source positions too (attention masks them, so they never
// reach the decoder); the MoE's routing skips them.
//
// Encoder, on the source sentence:
//   embedding 8000 x 64 -> dropout 0.1
//   -> LSTM-64 -> dropout 0.1 -> + residual
//   -> dense FFN 64 -> 512 ReLU -> 64, sigmoid -> dropout 0.1 -> + residual
// Decoder: as in nmt_small_moe.mlir (2 x LSTM-64, attention, residuals,
// dropout 0.1, full softmax over the 8000 wordpieces).
//
// Batch: 32 sentence pairs, source and decoder 32 wordpieces each.
//
// Parameters: 3 LSTMs x 33,024 = 99,072; FFN 64 x 512 + 512 x 64 = 65,536;
//   attention 8,256; embeddings 2 x 512,000 and softmax 520,000; total
//   1,716,864 (nmt_small_moe's 1,915,520 less its 264,192 MoE-layer
//   parameters, plus 65,536).
//
// Run: moe-opt --moe-model-summary examples/nmt_small_dense.mlir
//      scripts/package.sh examples/nmt_small_dense.mlir pkg "lr=0.005 warmup-steps=200"
//      moe-run train pkg --data nmt --steps 2000   (nmt: scripts/nmt-corpus.py nmt)

func.func @nmt_small_dense(
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
    %ffn_w1: tensor<64x512xf32>
        {moe.param = "encoder.ffn.weights1", moe.init = #moe.init<glorot_uniform>},
    %ffn_w2: tensor<512x64xf32>
        {moe.param = "encoder.ffn.weights2", moe.init = #moe.init<glorot_uniform>},
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
  %eh = moe.linear %e1, %ffn_w1 {act = #moe.activation<relu>}
      : (tensor<32x32x64xf32>, tensor<64x512xf32>) -> tensor<32x32x512xf32>
  %em = moe.linear %eh, %ffn_w2 {act = #moe.activation<sigmoid>}
      : (tensor<32x32x512xf32>, tensor<512x64xf32>) -> tensor<32x32x64xf32>
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
  return %ce : tensor<f32>
}
