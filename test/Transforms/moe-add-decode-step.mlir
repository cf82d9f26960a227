// RUN: moe-opt %s -split-input-file --moe-add-decode-step --verify-diagnostics | FileCheck %s

// An encoder-decoder: @m_encode returns the encoder output the attention
// reads; @m_decode_step re-types the decoder to one position, gives the
// LSTM its state, drops the dropout and returns the logits instead of the
// loss. The model itself is unchanged.
// CHECK-LABEL: func.func @nmt(
// CHECK: moe.softmax_cross_entropy

// CHECK-LABEL: func.func @nmt_encode(
// CHECK-SAME: %[[SRC:[^:]+]]: tensor<2x5xi32> {moe.input = "source"}
// CHECK-SAME: %[[TABLE:[^:]+]]: tensor<20x4xf32> {moe.init = #moe.init<zeros>, moe.param = "encoder.embedding"}
// CHECK-SAME: -> (tensor<2x5x4xf32> {moe.state = "encoder_output"})
// CHECK-SAME: attributes {moe.inference}
// CHECK: %[[E:.*]] = moe.embedding %[[TABLE]][%[[SRC]]]
// CHECK: %[[H:.*]] = moe.lstm %[[E]]
// CHECK-NOT: state(
// CHECK: %[[ENC:.*]] = moe.residual %[[E]], %[[H]]
// CHECK: return %[[ENC]]

// CHECK-LABEL: func.func @nmt_decode_step(
// CHECK-SAME: %[[LEN:[^:]+]]: tensor<2xi32> {moe.input = "source_lengths"}
// CHECK-SAME: %[[TOK:[^:]+]]: tensor<2x1xi32> {moe.input = "tokens"}
// CHECK-SAME: %[[DT:[^:]+]]: tensor<10x4xf32> {moe.init = #moe.init<zeros>, moe.param = "decoder.embedding"}
// CHECK-SAME: %[[WX:[^:]+]]: tensor<4x24xf32> {moe.init = #moe.init<zeros>, moe.param = "decoder.lstm.input_weights"}
// CHECK-SAME: %[[WP:[^:]+]]: tensor<6x4xf32> {moe.init = #moe.init<zeros>, moe.param = "decoder.lstm.projection"}
// CHECK-SAME: %[[SW:[^:]+]]: tensor<10x4xf32> {moe.init = #moe.init<zeros>, moe.param = "softmax.weights"}
// CHECK-SAME: %[[SB:[^:]+]]: tensor<10xf32> {moe.init = #moe.init<zeros>, moe.param = "softmax.bias"}
// CHECK-SAME: %[[ENCIN:[^:]+]]: tensor<2x5x4xf32> {moe.state = "encoder_output"}
// CHECK-SAME: %[[H0:[^:]+]]: tensor<2x4xf32> {moe.state = "decoder.lstm.hidden"}
// CHECK-SAME: %[[C0:[^:]+]]: tensor<2x6xf32> {moe.state = "decoder.lstm.cell"}
// CHECK-SAME: -> (tensor<2x10xf32> {moe.output = "logits"}, tensor<2x4xf32> {moe.state = "decoder.lstm.hidden"}, tensor<2x6xf32> {moe.state = "decoder.lstm.cell"})
// CHECK-SAME: attributes {moe.inference}
// CHECK-NOT: moe.dropout
// CHECK: %[[X:.*]] = moe.embedding %[[DT]][%[[TOK]]] : (tensor<10x4xf32>, tensor<2x1xi32>) -> tensor<2x1x4xf32>
// CHECK: %[[Y:.*]], %[[S:.*]]:2 = moe.lstm %[[X]] weights(%[[WX]], %{{.*}}, %{{.*}}) projection(%[[WP]]) state(%[[H0]], %[[C0]]) : {{.*}} -> (tensor<2x1x4xf32>, tensor<2x4xf32>, tensor<2x6xf32>)
// CHECK: %[[R:.*]] = moe.residual %[[X]], %[[Y]] : tensor<2x1x4xf32>
// CHECK: %[[CTX:.*]] = moe.attention %[[ENCIN]], %[[R]] weights({{.*}}) lengths(%[[LEN]]) : {{.*}} -> tensor<2x1x4xf32>
// CHECK: %[[D:.*]] = moe.residual %[[R]], %[[CTX]] : tensor<2x1x4xf32>
// CHECK: %[[ROWS:.*]] = tensor.collapse_shape %[[D]] {{\[}}[0, 1], [2]] : tensor<2x1x4xf32> into tensor<2x4xf32>
// CHECK: %[[L:.*]] = moe.matmul %[[ROWS]], %[[SW]] {transpose_rhs} : (tensor<2x4xf32>, tensor<10x4xf32>) -> tensor<2x10xf32>
// CHECK: %[[LOGITS:.*]] = moe.bias_add %[[L]], %[[SB]]
// CHECK-NOT: moe.softmax_cross_entropy
// CHECK: return %[[LOGITS]], %[[S]]#0, %[[S]]#1
func.func @nmt(
    %source: tensor<2x5xi32> {moe.input = "source"},
    %source_lengths: tensor<2xi32> {moe.input = "source_lengths"},
    %tokens: tensor<2x3xi32> {moe.input = "tokens"},
    %targets: tensor<2x3xi32> {moe.input = "targets"},
    %enc_table: tensor<20x4xf32> {moe.param = "encoder.embedding", moe.init = #moe.init<zeros>},
    %enc_wx: tensor<4x16xf32> {moe.param = "encoder.lstm.input_weights", moe.init = #moe.init<zeros>},
    %enc_wh: tensor<4x16xf32> {moe.param = "encoder.lstm.recurrent_weights", moe.init = #moe.init<zeros>},
    %enc_b: tensor<16xf32> {moe.param = "encoder.lstm.bias", moe.init = #moe.init<zeros>},
    %dec_table: tensor<10x4xf32> {moe.param = "decoder.embedding", moe.init = #moe.init<zeros>},
    %dec_wx: tensor<4x24xf32> {moe.param = "decoder.lstm.input_weights", moe.init = #moe.init<zeros>},
    %dec_wh: tensor<4x24xf32> {moe.param = "decoder.lstm.recurrent_weights", moe.init = #moe.init<zeros>},
    %dec_b: tensor<24xf32> {moe.param = "decoder.lstm.bias", moe.init = #moe.init<zeros>},
    %dec_wp: tensor<6x4xf32> {moe.param = "decoder.lstm.projection", moe.init = #moe.init<zeros>},
    %att_u: tensor<4x4xf32> {moe.param = "attention.u", moe.init = #moe.init<zeros>},
    %att_w: tensor<4x4xf32> {moe.param = "attention.w", moe.init = #moe.init<zeros>},
    %att_v: tensor<4xf32> {moe.param = "attention.v", moe.init = #moe.init<zeros>},
    %sw: tensor<10x4xf32> {moe.param = "softmax.weights", moe.init = #moe.init<zeros>},
    %sb: tensor<10xf32> {moe.param = "softmax.bias", moe.init = #moe.init<zeros>})
    -> tensor<f32> {
  %src = moe.embedding %enc_table[%source] : (tensor<20x4xf32>, tensor<2x5xi32>) -> tensor<2x5x4xf32>
  %h = moe.lstm %src weights(%enc_wx, %enc_wh, %enc_b) : (tensor<2x5x4xf32>, tensor<4x16xf32>, tensor<4x16xf32>, tensor<16xf32>) -> tensor<2x5x4xf32>
  %enc = moe.residual %src, %h : tensor<2x5x4xf32>
  %tgt = moe.embedding %dec_table[%tokens] : (tensor<10x4xf32>, tensor<2x3xi32>) -> tensor<2x3x4xf32>
  %tgtd = moe.dropout %tgt {rate = 0.1 : f32} : tensor<2x3x4xf32>
  %k = moe.lstm %tgtd weights(%dec_wx, %dec_wh, %dec_b) projection(%dec_wp) : (tensor<2x3x4xf32>, tensor<4x24xf32>, tensor<4x24xf32>, tensor<24xf32>, tensor<6x4xf32>) -> tensor<2x3x4xf32>
  %d1 = moe.residual %tgtd, %k : tensor<2x3x4xf32>
  %ctx = moe.attention %enc, %d1 weights(%att_u, %att_w, %att_v) lengths(%source_lengths) : (tensor<2x5x4xf32>, tensor<2x3x4xf32>, tensor<4x4xf32>, tensor<4x4xf32>, tensor<4xf32>, tensor<2xi32>) -> tensor<2x3x4xf32>
  %d2 = moe.residual %d1, %ctx : tensor<2x3x4xf32>
  %ce = moe.softmax_cross_entropy %d2, %targets weights(%sw, %sb) : (tensor<2x3x4xf32>, tensor<2x3xi32>, tensor<10x4xf32>, tensor<10xf32>) -> tensor<f32>
  return %ce : tensor<f32>
}

// -----

// A language model has no encoder: only @lm_decode_step, whose MoE layer
// runs on [batch, 1, d].
// CHECK-LABEL: func.func @lm(
// CHECK-NOT: func.func @lm_encode
// CHECK-LABEL: func.func @lm_decode_step(
// CHECK-SAME: tensor<4x1xi32> {moe.input = "tokens"}
// CHECK-SAME: -> (tensor<4x12xf32> {moe.output = "logits"}, tensor<4x8xf32> {moe.state = "lstm.hidden"}, tensor<4x8xf32> {moe.state = "lstm.cell"})
// CHECK: moe.lstm {{.*}} state(
// CHECK: moe.moe_layer {{.*}} -> (tensor<4x1x8xf32>, tensor<f32>)
// CHECK-NOT: moe.total_loss
// CHECK: return
func.func @lm(
    %tokens: tensor<4x6xi32> {moe.input = "tokens"},
    %targets: tensor<4x6xi32> {moe.input = "targets"},
    %table: tensor<12x8xf32> {moe.param = "embedding", moe.init = #moe.init<zeros>},
    %wx: tensor<8x32xf32> {moe.param = "lstm.input_weights", moe.init = #moe.init<zeros>},
    %wh: tensor<8x32xf32> {moe.param = "lstm.recurrent_weights", moe.init = #moe.init<zeros>},
    %b: tensor<32xf32> {moe.param = "lstm.bias", moe.init = #moe.init<zeros>},
    %wg: tensor<8x2xf32> {moe.param = "moe.gate_weights", moe.init = #moe.init<zeros>},
    %we: tensor<2x8x8xf32> {moe.param = "moe.expert_weights", moe.init = #moe.init<zeros>},
    %sw: tensor<12x8xf32> {moe.param = "softmax.weights", moe.init = #moe.init<zeros>},
    %sb: tensor<12xf32> {moe.param = "softmax.bias", moe.init = #moe.init<zeros>})
    -> tensor<f32> {
  %e = moe.embedding %table[%tokens] : (tensor<12x8xf32>, tensor<4x6xi32>) -> tensor<4x6x8xf32>
  %h = moe.lstm %e weights(%wx, %wh, %b) : (tensor<4x6x8xf32>, tensor<8x32xf32>, tensor<8x32xf32>, tensor<32xf32>) -> tensor<4x6x8xf32>
  %m, %aux = moe.moe_layer %h gate(%wg) experts(%we) {num_experts = 2 : i64, k = 1 : i64, gating = #moe.gating<top_k>, expert = #moe.expert<linear>, losses = #moe.losses<importance = 0.1>} : (tensor<4x6x8xf32>, tensor<8x2xf32>, tensor<2x8x8xf32>) -> (tensor<4x6x8xf32>, tensor<f32>)
  %ce = moe.softmax_cross_entropy %m, %targets weights(%sw, %sb) : (tensor<4x6x8xf32>, tensor<4x6xi32>, tensor<12x8xf32>, tensor<12xf32>) -> tensor<f32>
  %loss = moe.total_loss %ce, %aux : tensor<f32>
  return %loss : tensor<f32>
}

// -----

// Attention over the decoder's own positions needs all of them.
func.func @self_attention(
    %tokens: tensor<2x3xi32> {moe.input = "tokens"},
    %targets: tensor<2x3xi32> {moe.input = "targets"},
    %table: tensor<10x4xf32> {moe.param = "embedding", moe.init = #moe.init<zeros>},
    %u: tensor<4x4xf32> {moe.param = "u", moe.init = #moe.init<zeros>},
    %w: tensor<4x4xf32> {moe.param = "w", moe.init = #moe.init<zeros>},
    %v: tensor<4xf32> {moe.param = "v", moe.init = #moe.init<zeros>},
    %sw: tensor<10x4xf32> {moe.param = "softmax.weights", moe.init = #moe.init<zeros>},
    %sb: tensor<10xf32> {moe.param = "softmax.bias", moe.init = #moe.init<zeros>})
    -> tensor<f32> {
  %e = moe.embedding %table[%tokens] : (tensor<10x4xf32>, tensor<2x3xi32>) -> tensor<2x3x4xf32>
  // expected-error@+1 {{'moe.attention' op cannot run one position at a time in moe-add-decode-step: it attends over the decoder's own positions}}
  %c = moe.attention %e, %e weights(%u, %w, %v) : (tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<4x4xf32>, tensor<4x4xf32>, tensor<4xf32>) -> tensor<2x3x4xf32>
  %ce = moe.softmax_cross_entropy %c, %targets weights(%sw, %sb) : (tensor<2x3x4xf32>, tensor<2x3xi32>, tensor<10x4xf32>, tensor<10xf32>) -> tensor<f32>
  return %ce : tensor<f32>
}

// -----

// An op without a rule for one position is named.
func.func @foreign_op(
    %tokens: tensor<2x3xi32> {moe.input = "tokens"},
    %targets: tensor<2x3xi32> {moe.input = "targets"},
    %table: tensor<10x4xf32> {moe.param = "embedding", moe.init = #moe.init<zeros>},
    %sw: tensor<10x4xf32> {moe.param = "softmax.weights", moe.init = #moe.init<zeros>},
    %sb: tensor<10xf32> {moe.param = "softmax.bias", moe.init = #moe.init<zeros>})
    -> tensor<f32> {
  %e = moe.embedding %table[%tokens] : (tensor<10x4xf32>, tensor<2x3xi32>) -> tensor<2x3x4xf32>
  // expected-error@+1 {{'arith.addf' op cannot run one position at a time in moe-add-decode-step: no rule re-types it to one position}}
  %s = arith.addf %e, %e : tensor<2x3x4xf32>
  %ce = moe.softmax_cross_entropy %s, %targets weights(%sw, %sb) : (tensor<2x3x4xf32>, tensor<2x3xi32>, tensor<10x4xf32>, tensor<10xf32>) -> tensor<f32>
  return %ce : tensor<f32>
}

// -----

// A model without the decoder's inputs.
// expected-error@+1 {{'func.func' op has no 'tokens' and 'targets' inputs: moe-add-decode-step derives the decoder from them}}
func.func @no_tokens(%x: tensor<4xf32> {moe.param = "x", moe.init = #moe.init<zeros>}) -> tensor<f32> {
  %l = moe.cv_squared %x {weight = 1.0 : f32} : (tensor<4xf32>) -> tensor<f32>
  return %l : tensor<f32>
}
