// RUN: moe-opt %s | moe-opt | FileCheck %s
// RUN: moe-opt %s --mlir-print-op-generic | moe-opt | FileCheck %s

// Round trip of every moe op variant and attribute, through the custom and
// the generic form. Default-valued attribute parameters (act = relu on ffn
// experts, scale = 1.0 on #moe.init) are elided when printed.

//===----------------------------------------------------------------------===//
// moe.moe_layer: one function per gating kind and expert kind
//===----------------------------------------------------------------------===//

// Dense softmax gating (Eq. 2) takes neither k nor noise nor thresholds.
// CHECK-LABEL: func.func @moe_layer_softmax_linear(
// CHECK-SAME: %[[X:[^:]+]]: tensor<16x32xf32>, %[[WG:[^:]+]]: tensor<32x4xf32>, %[[WE:[^:]+]]: tensor<4x32x32xf32>)
// CHECK: %[[Y:.*]], %[[AUX:.*]] = moe.moe_layer %[[X]] gate(%[[WG]]) experts(%[[WE]])
// CHECK-SAME: {expert = #moe.expert<linear>, gating = #moe.gating<softmax>, num_experts = 4 : i64}
// CHECK-SAME: : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<4x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
// CHECK: return %[[Y]], %[[AUX]] : tensor<16x32xf32>, tensor<f32>
func.func @moe_layer_softmax_linear(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>,
                                    %we: tensor<4x32x32xf32>)
    -> (tensor<16x32xf32>, tensor<f32>) {
  %y, %aux = moe.moe_layer %x gate(%wg) experts(%we) {
      num_experts = 4 : i64, gating = #moe.gating<softmax>,
      expert = #moe.expert<linear>}
      : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<4x32x32xf32>)
      -> (tensor<16x32xf32>, tensor<f32>)
  return %y, %aux : tensor<16x32xf32>, tensor<f32>
}

// Top-k gating (Eq. 3-4) with ffn experts whose d_out (24) differs from d
// (32), a non-default hidden activation, and the sigmoid output of paper 5.2.
// CHECK-LABEL: func.func @moe_layer_top_k_ffn_sigmoid(
// CHECK-SAME: %[[X:[^:]+]]: tensor<16x32xf32>, %[[WG:[^:]+]]: tensor<32x4xf32>, %[[W1:[^:]+]]: tensor<4x32x64xf32>, %[[W2:[^:]+]]: tensor<4x64x24xf32>)
// CHECK: %[[Y:.*]], %[[AUX:.*]] = moe.moe_layer %[[X]] gate(%[[WG]]) experts(%[[W1]], %[[W2]])
// CHECK-SAME: {expert = #moe.expert<ffn, hidden = 64, act = tanh>, gating = #moe.gating<top_k>, k = 2 : i64, num_experts = 4 : i64, output_act = #moe.activation<sigmoid>}
// CHECK-SAME: : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<4x32x64xf32>, tensor<4x64x24xf32>) -> (tensor<16x24xf32>, tensor<f32>)
// CHECK: return %[[Y]], %[[AUX]]
func.func @moe_layer_top_k_ffn_sigmoid(%x: tensor<16x32xf32>,
                                       %wg: tensor<32x4xf32>,
                                       %w1: tensor<4x32x64xf32>,
                                       %w2: tensor<4x64x24xf32>)
    -> (tensor<16x24xf32>, tensor<f32>) {
  %y, %aux = moe.moe_layer %x gate(%wg) experts(%w1, %w2) {
      num_experts = 4 : i64, k = 2 : i64, gating = #moe.gating<top_k>,
      expert = #moe.expert<ffn, hidden = 64, act = tanh>,
      output_act = #moe.activation<sigmoid>}
      : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<4x32x64xf32>,
         tensor<4x64x24xf32>) -> (tensor<16x24xf32>, tensor<f32>)
  return %y, %aux : tensor<16x24xf32>, tensor<f32>
}

// ffn experts with the default activation: `act = relu` is elided.
// CHECK-LABEL: func.func @moe_layer_ffn_default_act(
// CHECK: moe.moe_layer
// CHECK-SAME: expert = #moe.expert<ffn, hidden = 48>,
// CHECK-SAME: -> (tensor<16x32xf32>, tensor<f32>)
func.func @moe_layer_ffn_default_act(%x: tensor<16x32xf32>,
                                     %wg: tensor<32x4xf32>,
                                     %w1: tensor<4x32x48xf32>,
                                     %w2: tensor<4x48x32xf32>)
    -> (tensor<16x32xf32>, tensor<f32>) {
  %y, %aux = moe.moe_layer %x gate(%wg) experts(%w1, %w2) {
      num_experts = 4 : i64, k = 1 : i64, gating = #moe.gating<top_k>,
      expert = #moe.expert<ffn, hidden = 48, act = relu>}
      : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<4x32x48xf32>,
         tensor<4x48x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return %y, %aux : tensor<16x32xf32>, tensor<f32>
}

// Noisy top-k gating on a rank-3 [batch, time, d] input, with the importance
// and load losses (the load loss needs the gating noise).
// CHECK-LABEL: func.func @moe_layer_noisy_top_k_rank3(
// CHECK-SAME: %[[X:[^:]+]]: tensor<4x5x32xf32>, %[[WG:[^:]+]]: tensor<32x8xf32>, %[[WN:[^:]+]]: tensor<32x8xf32>, %[[WE:[^:]+]]: tensor<8x32x32xf32>)
// CHECK: %[[Y:.*]], %[[AUX:.*]] = moe.moe_layer %[[X]] gate(%[[WG]], noise %[[WN]]) experts(%[[WE]])
// CHECK-SAME: {expert = #moe.expert<linear>, gating = #moe.gating<noisy_top_k>, k = 2 : i64, losses = #moe.losses<importance = 1.000000e-01, load = 1.000000e-01>, num_experts = 8 : i64}
// CHECK-SAME: : (tensor<4x5x32xf32>, tensor<32x8xf32>, tensor<32x8xf32>, tensor<8x32x32xf32>) -> (tensor<4x5x32xf32>, tensor<f32>)
// CHECK: return %[[Y]], %[[AUX]]
func.func @moe_layer_noisy_top_k_rank3(%x: tensor<4x5x32xf32>,
                                       %wg: tensor<32x8xf32>,
                                       %wn: tensor<32x8xf32>,
                                       %we: tensor<8x32x32xf32>)
    -> (tensor<4x5x32xf32>, tensor<f32>) {
  %y, %aux = moe.moe_layer %x gate(%wg, noise %wn) experts(%we) {
      num_experts = 8 : i64, k = 2 : i64,
      gating = #moe.gating<noisy_top_k>, expert = #moe.expert<linear>,
      losses = #moe.losses<importance = 0.1, load = 0.1>}
      : (tensor<4x5x32xf32>, tensor<32x8xf32>, tensor<32x8xf32>,
         tensor<8x32x32xf32>) -> (tensor<4x5x32xf32>, tensor<f32>)
  return %y, %aux : tensor<4x5x32xf32>, tensor<f32>
}

// Batchwise gating (Appendix A): m = k * tokens / n = 2 * 16 / 8 = 4 tokens
// per expert, learned thresholds, and the Eq. 8 threshold loss.
// CHECK-LABEL: func.func @moe_layer_batchwise_thresholds(
// CHECK-SAME: %[[X:[^:]+]]: tensor<16x32xf32>, %[[WG:[^:]+]]: tensor<32x8xf32>, %[[T:[^:]+]]: tensor<8xf32>, %[[WE:[^:]+]]: tensor<8x32x32xf32>)
// CHECK: %[[Y:.*]], %[[AUX:.*]] = moe.moe_layer %[[X]] gate(%[[WG]]) thresholds(%[[T]]) experts(%[[WE]])
// CHECK-SAME: {expert = #moe.expert<linear>, gating = #moe.gating<batchwise>, k = 2 : i64, losses = #moe.losses<importance = 1.000000e-01, batchwise_threshold = 1.000000e-02>, num_experts = 8 : i64}
// CHECK-SAME: : (tensor<16x32xf32>, tensor<32x8xf32>, tensor<8xf32>, tensor<8x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
// CHECK: return %[[Y]], %[[AUX]]
func.func @moe_layer_batchwise_thresholds(%x: tensor<16x32xf32>,
                                          %wg: tensor<32x8xf32>,
                                          %t: tensor<8xf32>,
                                          %we: tensor<8x32x32xf32>)
    -> (tensor<16x32xf32>, tensor<f32>) {
  %y, %aux = moe.moe_layer %x gate(%wg) thresholds(%t) experts(%we) {
      num_experts = 8 : i64, k = 2 : i64, gating = #moe.gating<batchwise>,
      expert = #moe.expert<linear>,
      losses = #moe.losses<importance = 0.1, batchwise_threshold = 0.01>}
      : (tensor<16x32xf32>, tensor<32x8xf32>, tensor<8xf32>,
         tensor<8x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return %y, %aux : tensor<16x32xf32>, tensor<f32>
}

// Threshold gating (Eq. 7) takes thresholds but no k; the Eq. 5 L2 balance
// loss applies to any gating.
// CHECK-LABEL: func.func @moe_layer_threshold(
// CHECK-SAME: %[[X:[^:]+]]: tensor<4x5x32xf32>, %[[WG:[^:]+]]: tensor<32x4xf32>, %[[T:[^:]+]]: tensor<4xf32>, %[[WE:[^:]+]]: tensor<4x32x16xf32>)
// CHECK: %[[Y:.*]], %[[AUX:.*]] = moe.moe_layer %[[X]] gate(%[[WG]]) thresholds(%[[T]]) experts(%[[WE]])
// CHECK-SAME: {expert = #moe.expert<linear>, gating = #moe.gating<threshold>, losses = #moe.losses<l2_balance = 5.000000e-01>, num_experts = 4 : i64}
// CHECK-SAME: -> (tensor<4x5x16xf32>, tensor<f32>)
// CHECK: return %[[Y]], %[[AUX]]
func.func @moe_layer_threshold(%x: tensor<4x5x32xf32>, %wg: tensor<32x4xf32>,
                               %t: tensor<4xf32>, %we: tensor<4x32x16xf32>)
    -> (tensor<4x5x16xf32>, tensor<f32>) {
  %y, %aux = moe.moe_layer %x gate(%wg) thresholds(%t) experts(%we) {
      num_experts = 4 : i64, gating = #moe.gating<threshold>,
      expert = #moe.expert<linear>, losses = #moe.losses<l2_balance = 0.5>}
      : (tensor<4x5x32xf32>, tensor<32x4xf32>, tensor<4xf32>,
         tensor<4x32x16xf32>) -> (tensor<4x5x16xf32>, tensor<f32>)
  return %y, %aux : tensor<4x5x16xf32>, tensor<f32>
}

//===----------------------------------------------------------------------===//
// moe.hierarchical_moe_layer
//===----------------------------------------------------------------------===//

// Noisy top-k at both levels: 8 experts in 4 groups of 2; the primary gate
// is [d, groups], the secondary gates [groups, d, experts per group].
// CHECK-LABEL: func.func @hierarchical_noisy_top_k(
// CHECK-SAME: %[[X:[^:]+]]: tensor<16x32xf32>, %[[PG:[^:]+]]: tensor<32x4xf32>, %[[PN:[^:]+]]: tensor<32x4xf32>, %[[SG:[^:]+]]: tensor<4x32x2xf32>, %[[SN:[^:]+]]: tensor<4x32x2xf32>, %[[WE:[^:]+]]: tensor<8x32x32xf32>)
// CHECK: %[[Y:.*]], %[[AUX:.*]] = moe.hierarchical_moe_layer %[[X]] primary(%[[PG]], noise %[[PN]]) secondary(%[[SG]], noise %[[SN]]) experts(%[[WE]])
// CHECK-SAME: {expert = #moe.expert<linear>, gating = #moe.gating<noisy_top_k>, groups = 4 : i64, k_primary = 2 : i64, k_secondary = 1 : i64, losses = #moe.losses<importance = 1.000000e-01, load = 1.000000e-01>, num_experts = 8 : i64}
// CHECK-SAME: : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<32x4xf32>, tensor<4x32x2xf32>, tensor<4x32x2xf32>, tensor<8x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
// CHECK: return %[[Y]], %[[AUX]]
func.func @hierarchical_noisy_top_k(%x: tensor<16x32xf32>,
                                    %pg: tensor<32x4xf32>,
                                    %pn: tensor<32x4xf32>,
                                    %sg: tensor<4x32x2xf32>,
                                    %sn: tensor<4x32x2xf32>,
                                    %we: tensor<8x32x32xf32>)
    -> (tensor<16x32xf32>, tensor<f32>) {
  %y, %aux = moe.hierarchical_moe_layer %x
      primary(%pg, noise %pn) secondary(%sg, noise %sn) experts(%we) {
      num_experts = 8 : i64, groups = 4 : i64,
      k_primary = 2 : i64, k_secondary = 1 : i64,
      gating = #moe.gating<noisy_top_k>, expert = #moe.expert<linear>,
      losses = #moe.losses<importance = 0.1, load = 0.1>}
      : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<32x4xf32>,
         tensor<4x32x2xf32>, tensor<4x32x2xf32>, tensor<8x32x32xf32>)
      -> (tensor<16x32xf32>, tensor<f32>)
  return %y, %aux : tensor<16x32xf32>, tensor<f32>
}

// Batchwise at both levels, with thresholds [groups] and
// [groups, experts per group]; a rank-3 input with ffn experts.
// CHECK-LABEL: func.func @hierarchical_batchwise(
// CHECK-SAME: %[[X:[^:]+]]: tensor<2x8x32xf32>, %[[PG:[^:]+]]: tensor<32x4xf32>, %[[PT:[^:]+]]: tensor<4xf32>, %[[SG:[^:]+]]: tensor<4x32x2xf32>, %[[ST:[^:]+]]: tensor<4x2xf32>, %[[W1:[^:]+]]: tensor<8x32x64xf32>, %[[W2:[^:]+]]: tensor<8x64x32xf32>)
// CHECK: %[[Y:.*]], %[[AUX:.*]] = moe.hierarchical_moe_layer %[[X]] primary(%[[PG]], thresholds %[[PT]]) secondary(%[[SG]], thresholds %[[ST]]) experts(%[[W1]], %[[W2]])
// CHECK-SAME: {expert = #moe.expert<ffn, hidden = 64>, gating = #moe.gating<batchwise>, groups = 4 : i64, k_primary = 2 : i64, k_secondary = 2 : i64, losses = #moe.losses<batchwise_threshold = 1.000000e+00>, num_experts = 8 : i64, output_act = #moe.activation<sigmoid>}
// CHECK-SAME: -> (tensor<2x8x32xf32>, tensor<f32>)
// CHECK: return %[[Y]], %[[AUX]]
func.func @hierarchical_batchwise(%x: tensor<2x8x32xf32>,
                                  %pg: tensor<32x4xf32>, %pt: tensor<4xf32>,
                                  %sg: tensor<4x32x2xf32>, %st: tensor<4x2xf32>,
                                  %w1: tensor<8x32x64xf32>,
                                  %w2: tensor<8x64x32xf32>)
    -> (tensor<2x8x32xf32>, tensor<f32>) {
  %y, %aux = moe.hierarchical_moe_layer %x
      primary(%pg, thresholds %pt) secondary(%sg, thresholds %st)
      experts(%w1, %w2) {
      num_experts = 8 : i64, groups = 4 : i64,
      k_primary = 2 : i64, k_secondary = 2 : i64,
      gating = #moe.gating<batchwise>,
      expert = #moe.expert<ffn, hidden = 64>,
      output_act = #moe.activation<sigmoid>,
      losses = #moe.losses<batchwise_threshold = 1.0>}
      : (tensor<2x8x32xf32>, tensor<32x4xf32>, tensor<4xf32>,
         tensor<4x32x2xf32>, tensor<4x2xf32>, tensor<8x32x64xf32>,
         tensor<8x64x32xf32>) -> (tensor<2x8x32xf32>, tensor<f32>)
  return %y, %aux : tensor<2x8x32xf32>, tensor<f32>
}

//===----------------------------------------------------------------------===//
// Sequence layers
//===----------------------------------------------------------------------===//

// Plain LSTM: hidden = 32 / 4 = 8, output [batch, time, hidden].
// CHECK-LABEL: func.func @lstm(
// CHECK-SAME: %[[X:[^:]+]]: tensor<4x5x16xf32>, %[[WX:[^:]+]]: tensor<16x32xf32>, %[[WH:[^:]+]]: tensor<8x32xf32>, %[[B:[^:]+]]: tensor<32xf32>)
// CHECK: %[[H:.*]] = moe.lstm %[[X]] weights(%[[WX]], %[[WH]], %[[B]]) : (tensor<4x5x16xf32>, tensor<16x32xf32>, tensor<8x32xf32>, tensor<32xf32>) -> tensor<4x5x8xf32>
// CHECK: return %[[H]]
func.func @lstm(%x: tensor<4x5x16xf32>, %wx: tensor<16x32xf32>,
                %wh: tensor<8x32xf32>, %b: tensor<32xf32>)
    -> tensor<4x5x8xf32> {
  %h = moe.lstm %x weights(%wx, %wh, %b)
      : (tensor<4x5x16xf32>, tensor<16x32xf32>, tensor<8x32xf32>,
         tensor<32xf32>) -> tensor<4x5x8xf32>
  return %h : tensor<4x5x8xf32>
}

// LSTMP: the 8-wide state is projected to 6, so the recurrent weights are
// [6, 32] and the output [batch, time, 6].
// CHECK-LABEL: func.func @lstm_projection(
// CHECK-SAME: %[[X:[^:]+]]: tensor<4x5x16xf32>, %[[WX:[^:]+]]: tensor<16x32xf32>, %[[WH:[^:]+]]: tensor<6x32xf32>, %[[B:[^:]+]]: tensor<32xf32>, %[[WP:[^:]+]]: tensor<8x6xf32>)
// CHECK: %[[H:.*]] = moe.lstm %[[X]] weights(%[[WX]], %[[WH]], %[[B]]) projection(%[[WP]]) : (tensor<4x5x16xf32>, tensor<16x32xf32>, tensor<6x32xf32>, tensor<32xf32>, tensor<8x6xf32>) -> tensor<4x5x6xf32>
// CHECK: return %[[H]]
func.func @lstm_projection(%x: tensor<4x5x16xf32>, %wx: tensor<16x32xf32>,
                           %wh: tensor<6x32xf32>, %b: tensor<32xf32>,
                           %wp: tensor<8x6xf32>) -> tensor<4x5x6xf32> {
  %h = moe.lstm %x weights(%wx, %wh, %b) projection(%wp)
      : (tensor<4x5x16xf32>, tensor<16x32xf32>, tensor<6x32xf32>,
         tensor<32xf32>, tensor<8x6xf32>) -> tensor<4x5x6xf32>
  return %h : tensor<4x5x6xf32>
}

// A decode step: the LSTMP starts from h_0 [batch, 6], c_0 [batch, 8] and
// also returns the final state.
// CHECK-LABEL: func.func @lstm_state(
// CHECK: %[[Y:.*]], %[[S:.*]]:2 = moe.lstm %{{.*}} weights(%{{.*}}, %{{.*}}, %{{.*}}) projection(%{{.*}}) state(%{{.*}}, %{{.*}}) : (tensor<4x1x16xf32>, tensor<16x32xf32>, tensor<6x32xf32>, tensor<32xf32>, tensor<8x6xf32>, tensor<4x6xf32>, tensor<4x8xf32>) -> (tensor<4x1x6xf32>, tensor<4x6xf32>, tensor<4x8xf32>)
// CHECK: return %[[Y]], %[[S]]#0, %[[S]]#1
func.func @lstm_state(%x: tensor<4x1x16xf32>, %wx: tensor<16x32xf32>,
                      %wh: tensor<6x32xf32>, %b: tensor<32xf32>,
                      %wp: tensor<8x6xf32>, %h0: tensor<4x6xf32>,
                      %c0: tensor<4x8xf32>)
    -> (tensor<4x1x6xf32>, tensor<4x6xf32>, tensor<4x8xf32>) {
  %y, %h, %c = moe.lstm %x weights(%wx, %wh, %b) projection(%wp)
      state(%h0, %c0)
      : (tensor<4x1x16xf32>, tensor<16x32xf32>, tensor<6x32xf32>,
         tensor<32xf32>, tensor<8x6xf32>, tensor<4x6xf32>, tensor<4x8xf32>)
      -> (tensor<4x1x6xf32>, tensor<4x6xf32>, tensor<4x8xf32>)
  return %y, %h, %c : tensor<4x1x6xf32>, tensor<4x6xf32>, tensor<4x8xf32>
}

// CHECK-LABEL: func.func @embedding(
// CHECK-SAME: %[[TABLE:[^:]+]]: tensor<100x16xf32>, %[[IDS:[^:]+]]: tensor<4x5xi32>)
// CHECK: %[[E:.*]] = moe.embedding %[[TABLE]][%[[IDS]]] : (tensor<100x16xf32>, tensor<4x5xi32>) -> tensor<4x5x16xf32>
// CHECK: return %[[E]]
func.func @embedding(%table: tensor<100x16xf32>, %ids: tensor<4x5xi32>)
    -> tensor<4x5x16xf32> {
  %e = moe.embedding %table[%ids]
      : (tensor<100x16xf32>, tensor<4x5xi32>) -> tensor<4x5x16xf32>
  return %e : tensor<4x5x16xf32>
}

// Linear with bias and activation on a rank-3 input.
// CHECK-LABEL: func.func @linear_bias_relu(
// CHECK-SAME: %[[X:[^:]+]]: tensor<4x5x16xf32>, %[[W:[^:]+]]: tensor<16x8xf32>, %[[B:[^:]+]]: tensor<8xf32>)
// CHECK: %[[Y:.*]] = moe.linear %[[X]], %[[W]], %[[B]] {act = #moe.activation<relu>} : (tensor<4x5x16xf32>, tensor<16x8xf32>, tensor<8xf32>) -> tensor<4x5x8xf32>
// CHECK: return %[[Y]]
func.func @linear_bias_relu(%x: tensor<4x5x16xf32>, %w: tensor<16x8xf32>,
                            %b: tensor<8xf32>) -> tensor<4x5x8xf32> {
  %y = moe.linear %x, %w, %b {act = #moe.activation<relu>}
      : (tensor<4x5x16xf32>, tensor<16x8xf32>, tensor<8xf32>)
      -> tensor<4x5x8xf32>
  return %y : tensor<4x5x8xf32>
}

// Linear without bias or activation.
// CHECK-LABEL: func.func @linear_no_bias(
// CHECK-SAME: %[[X:[^:]+]]: tensor<16x32xf32>, %[[W:[^:]+]]: tensor<32x10xf32>)
// CHECK: %[[Y:.*]] = moe.linear %[[X]], %[[W]] : (tensor<16x32xf32>, tensor<32x10xf32>) -> tensor<16x10xf32>
// CHECK: return %[[Y]]
func.func @linear_no_bias(%x: tensor<16x32xf32>, %w: tensor<32x10xf32>)
    -> tensor<16x10xf32> {
  %y = moe.linear %x, %w
      : (tensor<16x32xf32>, tensor<32x10xf32>) -> tensor<16x10xf32>
  return %y : tensor<16x10xf32>
}

// An explicit `none` activation is kept (it is an attribute, not a default).
// CHECK-LABEL: func.func @linear_act_none(
// CHECK: moe.linear %{{.*}}, %{{.*}} {act = #moe.activation<none>} : (tensor<16x32xf32>, tensor<32x10xf32>) -> tensor<16x10xf32>
func.func @linear_act_none(%x: tensor<16x32xf32>, %w: tensor<32x10xf32>)
    -> tensor<16x10xf32> {
  %y = moe.linear %x, %w {act = #moe.activation<none>}
      : (tensor<16x32xf32>, tensor<32x10xf32>) -> tensor<16x10xf32>
  return %y : tensor<16x10xf32>
}

// CHECK-LABEL: func.func @dropout(
// CHECK-SAME: %[[X:[^:]+]]: tensor<4x5x16xf32>)
// CHECK: %[[Y:.*]] = moe.dropout %[[X]] {rate = 2.000000e-01 : f32} : tensor<4x5x16xf32>
// CHECK: return %[[Y]]
func.func @dropout(%x: tensor<4x5x16xf32>) -> tensor<4x5x16xf32> {
  %y = moe.dropout %x {rate = 0.2 : f32} : tensor<4x5x16xf32>
  return %y : tensor<4x5x16xf32>
}

// CHECK-LABEL: func.func @residual(
// CHECK-SAME: %[[X:[^:]+]]: tensor<4x5x16xf32>, %[[L:[^:]+]]: tensor<4x5x16xf32>)
// CHECK: %[[Y:.*]] = moe.residual %[[X]], %[[L]] : tensor<4x5x16xf32>
// CHECK: return %[[Y]]
func.func @residual(%x: tensor<4x5x16xf32>, %l: tensor<4x5x16xf32>)
    -> tensor<4x5x16xf32> {
  %y = moe.residual %x, %l : tensor<4x5x16xf32>
  return %y : tensor<4x5x16xf32>
}

// Appendix B attention: source [2, 6, 16], target [2, 5, 12], E = 8; the
// context is [batch, S_y, d_x].
// CHECK-LABEL: func.func @attention(
// CHECK-SAME: %[[SRC:[^:]+]]: tensor<2x6x16xf32>, %[[TGT:[^:]+]]: tensor<2x5x12xf32>, %[[U:[^:]+]]: tensor<16x8xf32>, %[[W:[^:]+]]: tensor<12x8xf32>, %[[V:[^:]+]]: tensor<8xf32>)
// CHECK: %[[CTX:.*]] = moe.attention %[[SRC]], %[[TGT]] weights(%[[U]], %[[W]], %[[V]]) : (tensor<2x6x16xf32>, tensor<2x5x12xf32>, tensor<16x8xf32>, tensor<12x8xf32>, tensor<8xf32>) -> tensor<2x5x16xf32>
// CHECK: return %[[CTX]]
func.func @attention(%src: tensor<2x6x16xf32>, %tgt: tensor<2x5x12xf32>,
                     %u: tensor<16x8xf32>, %w: tensor<12x8xf32>,
                     %v: tensor<8xf32>) -> tensor<2x5x16xf32> {
  %ctx = moe.attention %src, %tgt weights(%u, %w, %v)
      : (tensor<2x6x16xf32>, tensor<2x5x12xf32>, tensor<16x8xf32>,
         tensor<12x8xf32>, tensor<8xf32>) -> tensor<2x5x16xf32>
  return %ctx : tensor<2x5x16xf32>
}

// With source lengths [batch]: padded source positions get no weight.
// CHECK-LABEL: func.func @attention_lengths(
// CHECK: moe.attention %{{.*}}, %{{.*}} weights(%{{.*}}, %{{.*}}, %{{.*}}) lengths(%{{.*}}) : (tensor<2x6x16xf32>, tensor<2x5x12xf32>, tensor<16x8xf32>, tensor<12x8xf32>, tensor<8xf32>, tensor<2xi32>) -> tensor<2x5x16xf32>
func.func @attention_lengths(%src: tensor<2x6x16xf32>, %tgt: tensor<2x5x12xf32>,
                             %u: tensor<16x8xf32>, %w: tensor<12x8xf32>,
                             %v: tensor<8xf32>, %len: tensor<2xi32>)
    -> tensor<2x5x16xf32> {
  %ctx = moe.attention %src, %tgt weights(%u, %w, %v) lengths(%len)
      : (tensor<2x6x16xf32>, tensor<2x5x12xf32>, tensor<16x8xf32>,
         tensor<12x8xf32>, tensor<8xf32>, tensor<2xi32>) -> tensor<2x5x16xf32>
  return %ctx : tensor<2x5x16xf32>
}

// A noisy top-k layer over padded sequences: lengths [batch].
// CHECK-LABEL: func.func @moe_layer_lengths(
// CHECK: moe.moe_layer %{{[^ ]*}} gate(%{{[^,]*}}, noise %{{[^)]*}}) lengths(%{{[^)]*}}) experts(%{{[^)]*}})
// CHECK-SAME: : (tensor<2x3x8xf32>, tensor<8x4xf32>, tensor<8x4xf32>, tensor<2xi32>, tensor<4x8x8xf32>) -> (tensor<2x3x8xf32>, tensor<f32>)
func.func @moe_layer_lengths(%x: tensor<2x3x8xf32>, %wg: tensor<8x4xf32>,
                             %wn: tensor<8x4xf32>, %len: tensor<2xi32>,
                             %we: tensor<4x8x8xf32>) -> tensor<2x3x8xf32> {
  %y, %aux = moe.moe_layer %x gate(%wg, noise %wn) lengths(%len) experts(%we) {
      num_experts = 4 : i64, k = 2 : i64, gating = #moe.gating<noisy_top_k>,
      expert = #moe.expert<linear>}
      : (tensor<2x3x8xf32>, tensor<8x4xf32>, tensor<8x4xf32>, tensor<2xi32>,
         tensor<4x8x8xf32>) -> (tensor<2x3x8xf32>, tensor<f32>)
  return %y : tensor<2x3x8xf32>
}

//===----------------------------------------------------------------------===//
// Losses
//===----------------------------------------------------------------------===//

// Full softmax: no num_samples.
// CHECK-LABEL: func.func @softmax_cross_entropy_full(
// CHECK-SAME: %[[H:[^:]+]]: tensor<4x5x16xf32>, %[[T:[^:]+]]: tensor<4x5xi32>, %[[W:[^:]+]]: tensor<100x16xf32>, %[[B:[^:]+]]: tensor<100xf32>)
// CHECK: %[[L:.*]] = moe.softmax_cross_entropy %[[H]], %[[T]] weights(%[[W]], %[[B]]) : (tensor<4x5x16xf32>, tensor<4x5xi32>, tensor<100x16xf32>, tensor<100xf32>) -> tensor<f32>
// CHECK: return %[[L]]
func.func @softmax_cross_entropy_full(%h: tensor<4x5x16xf32>,
                                      %t: tensor<4x5xi32>,
                                      %w: tensor<100x16xf32>,
                                      %b: tensor<100xf32>) -> tensor<f32> {
  %l = moe.softmax_cross_entropy %h, %t weights(%w, %b)
      : (tensor<4x5x16xf32>, tensor<4x5xi32>, tensor<100x16xf32>,
         tensor<100xf32>) -> tensor<f32>
  return %l : tensor<f32>
}

// Sampled softmax over 20 of the 100 classes, on rank-2 hidden states.
// CHECK-LABEL: func.func @softmax_cross_entropy_sampled(
// CHECK-SAME: %[[H:[^:]+]]: tensor<20x16xf32>, %[[T:[^:]+]]: tensor<20xi32>, %[[W:[^:]+]]: tensor<100x16xf32>, %[[B:[^:]+]]: tensor<100xf32>)
// CHECK: %[[L:.*]] = moe.softmax_cross_entropy %[[H]], %[[T]] weights(%[[W]], %[[B]]) {num_samples = 20 : i64} : (tensor<20x16xf32>, tensor<20xi32>, tensor<100x16xf32>, tensor<100xf32>) -> tensor<f32>
// CHECK: return %[[L]]
func.func @softmax_cross_entropy_sampled(%h: tensor<20x16xf32>,
                                         %t: tensor<20xi32>,
                                         %w: tensor<100x16xf32>,
                                         %b: tensor<100xf32>) -> tensor<f32> {
  %l = moe.softmax_cross_entropy %h, %t weights(%w, %b) {num_samples = 20 : i64}
      : (tensor<20x16xf32>, tensor<20xi32>, tensor<100x16xf32>,
         tensor<100xf32>) -> tensor<f32>
  return %l : tensor<f32>
}

// A data-parallel rank's part of the global batch's mean: its targets
// counted, the count summed over the ranks, the sum over its own targets
// divided by the global count.
// CHECK-LABEL: func.func @softmax_cross_entropy_target_count(
// CHECK-SAME: %[[H:[^:]+]]: tensor<4x5x16xf32>, %[[T:[^:]+]]: tensor<4x5xi32>, %[[W:[^:]+]]: tensor<100x16xf32>, %[[B:[^:]+]]: tensor<100xf32>, %[[N:[^:]+]]: tensor<i32>)
// CHECK: %[[C:.*]] = moe.count_targets %[[T]] : (tensor<4x5xi32>) -> tensor<i32>
// CHECK: %[[L:.*]] = moe.softmax_cross_entropy %[[H]], %[[T]] weights(%[[W]], %[[B]]) target_count(%[[N]]) {num_samples = 20 : i64} : (tensor<4x5x16xf32>, tensor<4x5xi32>, tensor<100x16xf32>, tensor<100xf32>, tensor<i32>) -> tensor<f32>
// CHECK: return %[[C]], %[[L]]
func.func @softmax_cross_entropy_target_count(%h: tensor<4x5x16xf32>,
                                              %t: tensor<4x5xi32>,
                                              %w: tensor<100x16xf32>,
                                              %b: tensor<100xf32>,
                                              %n: tensor<i32>)
    -> (tensor<i32>, tensor<f32>) {
  %c = moe.count_targets %t : (tensor<4x5xi32>) -> tensor<i32>
  %l = moe.softmax_cross_entropy %h, %t weights(%w, %b) target_count(%n)
      {num_samples = 20 : i64}
      : (tensor<4x5x16xf32>, tensor<4x5xi32>, tensor<100x16xf32>,
         tensor<100xf32>, tensor<i32>) -> tensor<f32>
  return %c, %l : tensor<i32>, tensor<f32>
}

// CHECK-LABEL: func.func @total_loss(
// CHECK-SAME: %[[CE:[^:]+]]: tensor<f32>, %[[A1:[^:]+]]: tensor<f32>, %[[A2:[^:]+]]: tensor<f32>)
// CHECK: %[[L:.*]] = moe.total_loss %[[CE]], %[[A1]], %[[A2]] : tensor<f32>
// CHECK: return %[[L]]
func.func @total_loss(%ce: tensor<f32>, %a1: tensor<f32>, %a2: tensor<f32>)
    -> tensor<f32> {
  %l = moe.total_loss %ce, %a1, %a2 : tensor<f32>
  return %l : tensor<f32>
}

// A single term is a valid sum.
// CHECK-LABEL: func.func @total_loss_single(
// CHECK-SAME: %[[CE:[^:]+]]: tensor<f32>)
// CHECK: %[[L:.*]] = moe.total_loss %[[CE]] : tensor<f32>
func.func @total_loss_single(%ce: tensor<f32>) -> tensor<f32> {
  %l = moe.total_loss %ce : tensor<f32>
  return %l : tensor<f32>
}

//===----------------------------------------------------------------------===//
// Attributes
//===----------------------------------------------------------------------===//

// Every #moe.init kind; scale = 1.0 is the default and is elided, so
// glorot_uniform with and without an explicit 1.0 print alike.
// CHECK-LABEL: func.func private @init_attrs()
// CHECK-SAME: inits = [#moe.init<zeros>, #moe.init<constant, scale = 5.000000e-01>, #moe.init<normal, scale = 2.000000e-02>, #moe.init<uniform, scale = 5.000000e-02>, #moe.init<glorot_uniform>, #moe.init<glorot_uniform>, #moe.init<glorot_uniform, scale = 2.000000e+00>, #moe.init<constant, scale = -1.000000e+00>]
func.func private @init_attrs() attributes {inits = [
    #moe.init<zeros>, #moe.init<constant, scale = 0.5>,
    #moe.init<normal, scale = 0.02>, #moe.init<uniform, scale = 0.05>,
    #moe.init<glorot_uniform>, #moe.init<glorot_uniform, scale = 1.0>,
    #moe.init<glorot_uniform, scale = 2.0>,
    #moe.init<constant, scale = -1.0>]}

// CHECK-LABEL: func.func private @expert_attrs()
// CHECK-SAME: experts = [#moe.expert<linear>, #moe.expert<ffn, hidden = 2048>, #moe.expert<ffn, hidden = 16, act = sigmoid>, #moe.expert<ffn, hidden = 16, act = none>]
func.func private @expert_attrs() attributes {experts = [
    #moe.expert<linear>, #moe.expert<ffn, hidden = 2048, act = relu>,
    #moe.expert<ffn, hidden = 16, act = sigmoid>,
    #moe.expert<ffn, hidden = 16, act = none>]}

// All-zero weights (every loss off) print as an empty list; parameters may
// be given in any order and print in declaration order; a weight that six
// digits cannot hold prints with every digit needed to read it back exactly.
// CHECK-LABEL: func.func private @losses_attrs()
// CHECK-SAME: losses = [#moe.losses<>, #moe.losses<importance = 1.000000e-01, load = 2.000000e-01, l2_balance = 3.000000e-01, batchwise_threshold = 4.000000e-01>, #moe.losses<importance = 1.000000e-01, load = 5.000000e-02>, #moe.losses<importance = 0.12345678910000001>]
func.func private @losses_attrs() attributes {losses = [
    #moe.losses<>,
    #moe.losses<importance = 0.1, load = 0.2, l2_balance = 0.3,
                batchwise_threshold = 0.4>,
    #moe.losses<load = 0.05, importance = 0.1>,
    #moe.losses<importance = 0.1234567891>]}

// CHECK-LABEL: func.func private @gating_attrs()
// CHECK-SAME: gatings = [#moe.gating<softmax>, #moe.gating<top_k>, #moe.gating<noisy_top_k>, #moe.gating<batchwise>, #moe.gating<threshold>]
func.func private @gating_attrs() attributes {gatings = [
    #moe.gating<softmax>, #moe.gating<top_k>, #moe.gating<noisy_top_k>,
    #moe.gating<batchwise>, #moe.gating<threshold>]}

// CHECK-LABEL: func.func private @activation_attrs()
// CHECK-SAME: acts = [#moe.activation<none>, #moe.activation<relu>, #moe.activation<sigmoid>, #moe.activation<tanh>]
func.func private @activation_attrs() attributes {acts = [
    #moe.activation<none>, #moe.activation<relu>, #moe.activation<sigmoid>,
    #moe.activation<tanh>]}

//===----------------------------------------------------------------------===//
// A whole model: parameters and data inputs as tagged arguments
//===----------------------------------------------------------------------===//

// Embedding -> noisy top-k MoE -> softmax cross-entropy, returning the
// training loss. Argument attributes print sorted by name.
// CHECK-LABEL: func.func @model(
// CHECK-SAME: %[[IDS:[^:]+]]: tensor<4x5xi32> {moe.input = "tokens"},
// CHECK-SAME: %[[TGT:[^:]+]]: tensor<4x5xi32> {moe.input = "targets"},
// CHECK-SAME: %[[EMB:[^:]+]]: tensor<100x16xf32> {moe.init = #moe.init<uniform, scale = 5.000000e-02>, moe.param = "embedding"},
// CHECK-SAME: %[[WG:[^:]+]]: tensor<16x4xf32> {moe.init = #moe.init<zeros>, moe.param = "moe/gate"},
// CHECK-SAME: %[[WN:[^:]+]]: tensor<16x4xf32> {moe.init = #moe.init<zeros>, moe.param = "moe/noise"},
// CHECK-SAME: %[[WE:[^:]+]]: tensor<4x16x16xf32> {moe.init = #moe.init<glorot_uniform>, moe.param = "moe/experts"},
// CHECK-SAME: %[[WO:[^:]+]]: tensor<100x16xf32> {moe.init = #moe.init<normal, scale = 1.000000e-01>, moe.param = "softmax/weights"},
// CHECK-SAME: %[[BO:[^:]+]]: tensor<100xf32> {moe.init = #moe.init<zeros>, moe.param = "softmax/bias"})
// CHECK-SAME: -> tensor<f32>
// CHECK: %[[E:.*]] = moe.embedding %[[EMB]][%[[IDS]]]
// CHECK: %[[Y:.*]], %[[AUX:.*]] = moe.moe_layer %[[E]] gate(%[[WG]], noise %[[WN]]) experts(%[[WE]])
// CHECK: %[[CE:.*]] = moe.softmax_cross_entropy %[[Y]], %[[TGT]] weights(%[[WO]], %[[BO]])
// CHECK: %[[LOSS:.*]] = moe.total_loss %[[CE]], %[[AUX]] : tensor<f32>
// CHECK: return %[[LOSS]] : tensor<f32>
func.func @model(
    %ids: tensor<4x5xi32> {moe.input = "tokens"},
    %targets: tensor<4x5xi32> {moe.input = "targets"},
    %emb: tensor<100x16xf32> {moe.param = "embedding",
                              moe.init = #moe.init<uniform, scale = 0.05>},
    %wg: tensor<16x4xf32> {moe.param = "moe/gate", moe.init = #moe.init<zeros>},
    %wn: tensor<16x4xf32> {moe.param = "moe/noise", moe.init = #moe.init<zeros>},
    %we: tensor<4x16x16xf32> {moe.param = "moe/experts",
                              moe.init = #moe.init<glorot_uniform>},
    %wo: tensor<100x16xf32> {moe.param = "softmax/weights",
                             moe.init = #moe.init<normal, scale = 0.1>},
    %bo: tensor<100xf32> {moe.param = "softmax/bias",
                          moe.init = #moe.init<zeros>}) -> tensor<f32> {
  %e = moe.embedding %emb[%ids]
      : (tensor<100x16xf32>, tensor<4x5xi32>) -> tensor<4x5x16xf32>
  %y, %aux = moe.moe_layer %e gate(%wg, noise %wn) experts(%we) {
      num_experts = 4 : i64, k = 2 : i64,
      gating = #moe.gating<noisy_top_k>, expert = #moe.expert<linear>,
      losses = #moe.losses<importance = 0.1, load = 0.1>}
      : (tensor<4x5x16xf32>, tensor<16x4xf32>, tensor<16x4xf32>,
         tensor<4x16x16xf32>) -> (tensor<4x5x16xf32>, tensor<f32>)
  %ce = moe.softmax_cross_entropy %y, %targets weights(%wo, %bo)
      {num_samples = 50 : i64}
      : (tensor<4x5x16xf32>, tensor<4x5xi32>, tensor<100x16xf32>,
         tensor<100xf32>) -> tensor<f32>
  %loss = moe.total_loss %ce, %aux : tensor<f32>
  return %loss : tensor<f32>
}
