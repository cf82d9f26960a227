// A tiny language model without an MoE layer (examples/tiny_moe.mlir
// without its MoE): what moe-run inspect refuses.
func.func @tiny_dense(
    %tokens: tensor<2x5xi32> {moe.input = "tokens"},
    %targets: tensor<2x5xi32> {moe.input = "targets"},
    %embedding: tensor<50x8xf32>
        {moe.param = "embedding", moe.init = #moe.init<uniform, scale = 0.1>},
    %lstm_wx: tensor<8x32xf32>
        {moe.param = "lstm.input_weights", moe.init = #moe.init<glorot_uniform>},
    %lstm_wh: tensor<8x32xf32>
        {moe.param = "lstm.recurrent_weights", moe.init = #moe.init<glorot_uniform>},
    %lstm_b: tensor<32xf32>
        {moe.param = "lstm.bias", moe.init = #moe.init<zeros>},
    %softmax_w: tensor<50x8xf32>
        {moe.param = "softmax.weights", moe.init = #moe.init<uniform, scale = 0.1>},
    %softmax_b: tensor<50xf32>
        {moe.param = "softmax.bias", moe.init = #moe.init<zeros>})
    -> tensor<f32> {
  %x0 = moe.embedding %embedding[%tokens]
      : (tensor<50x8xf32>, tensor<2x5xi32>) -> tensor<2x5x8xf32>
  %h = moe.lstm %x0 weights(%lstm_wx, %lstm_wh, %lstm_b)
      : (tensor<2x5x8xf32>, tensor<8x32xf32>, tensor<8x32xf32>, tensor<32xf32>)
      -> tensor<2x5x8xf32>
  %ce = moe.softmax_cross_entropy %h, %targets weights(%softmax_w, %softmax_b)
      : (tensor<2x5x8xf32>, tensor<2x5xi32>, tensor<50x8xf32>, tensor<50xf32>)
      -> tensor<f32>
  return %ce : tensor<f32>
}
