// RUN: moe-opt %s -split-input-file -verify-diagnostics

// One case per distinct verifier message of the moe dialect's ops
// (MoEOps.cpp), attributes (MoEAttrs.cpp) and argument attributes
// (MoEDialect.cpp), plus the ODS type and attribute constraints.

//===----------------------------------------------------------------------===//
// moe.moe_layer: gating
//===----------------------------------------------------------------------===//

// A gate cannot pick more experts per token than there are.
func.func @k_exceeds_num_experts(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %we: tensor<4x32x32xf32>) {
  // expected-error@+1 {{'moe.moe_layer' op k = 5 exceeds num_experts = 4}}
  %y, %aux = moe.moe_layer %x gate(%wg) experts(%we) {num_experts = 4 : i64, k = 5 : i64, gating = #moe.gating<top_k>, expert = #moe.expert<linear>} : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<4x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

// -----

// The gate maps d = 32 features to num_experts = 4 logits, not 8.
func.func @gate_weights_wrong_shape(%x: tensor<16x32xf32>, %wg: tensor<32x8xf32>, %we: tensor<4x32x32xf32>) {
  // expected-error@+1 {{'moe.moe_layer' op expects gate weights of shape 32x4 ([d, num_experts]) but got 32x8}}
  %y, %aux = moe.moe_layer %x gate(%wg) experts(%we) {num_experts = 4 : i64, k = 2 : i64, gating = #moe.gating<top_k>, expert = #moe.expert<linear>} : (tensor<16x32xf32>, tensor<32x8xf32>, tensor<4x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

// -----

// Noisy top-k draws its noise scale from x W_noise, so W_noise is required.
func.func @noisy_top_k_without_noise_weights(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %we: tensor<4x32x32xf32>) {
  // expected-error@+1 {{'moe.moe_layer' op noisy_top_k gating needs noise weights: write (%w_gate, noise %w_noise)}}
  %y, %aux = moe.moe_layer %x gate(%wg) experts(%we) {num_experts = 4 : i64, k = 2 : i64, gating = #moe.gating<noisy_top_k>, expert = #moe.expert<linear>} : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<4x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

// -----

// Noise weights have the gate's shape [d, num_experts].
func.func @noise_weights_wrong_shape(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %wn: tensor<4x32xf32>, %we: tensor<4x32x32xf32>) {
  // expected-error@+1 {{'moe.moe_layer' op expects noise weights of shape 32x4 ([d, num_experts]) but got 4x32}}
  %y, %aux = moe.moe_layer %x gate(%wg, noise %wn) experts(%we) {num_experts = 4 : i64, k = 2 : i64, gating = #moe.gating<noisy_top_k>, expert = #moe.expert<linear>} : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<4x32xf32>, tensor<4x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

// -----

// Plain top-k has no noise; unused weights are a mistake, not ignored.
func.func @noise_weights_with_top_k(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %wn: tensor<32x4xf32>, %we: tensor<4x32x32xf32>) {
  // expected-error@+1 {{'moe.moe_layer' op noise weights are only used by noisy_top_k gating, not by top_k}}
  %y, %aux = moe.moe_layer %x gate(%wg, noise %wn) experts(%we) {num_experts = 4 : i64, k = 2 : i64, gating = #moe.gating<top_k>, expert = #moe.expert<linear>} : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<32x4xf32>, tensor<4x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

// -----

// Batchwise gating learns thresholds for inference (Appendix A).
func.func @batchwise_without_thresholds(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %we: tensor<4x32x32xf32>) {
  // expected-error@+1 {{'moe.moe_layer' op batchwise gating needs thresholds of shape 4 ([num_experts])}}
  %y, %aux = moe.moe_layer %x gate(%wg) experts(%we) {num_experts = 4 : i64, k = 2 : i64, gating = #moe.gating<batchwise>, expert = #moe.expert<linear>} : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<4x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

// -----

// Threshold gating (Eq. 7) compares each logit with its T_i.
func.func @threshold_without_thresholds(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %we: tensor<4x32x32xf32>) {
  // expected-error@+1 {{'moe.moe_layer' op threshold gating needs thresholds of shape 4 ([num_experts])}}
  %y, %aux = moe.moe_layer %x gate(%wg) experts(%we) {num_experts = 4 : i64, gating = #moe.gating<threshold>, expert = #moe.expert<linear>} : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<4x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

// -----

// One threshold per expert.
func.func @thresholds_wrong_shape(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %t: tensor<8xf32>, %we: tensor<4x32x32xf32>) {
  // expected-error@+1 {{'moe.moe_layer' op expects thresholds of shape 4 ([num_experts]) but got 8}}
  %y, %aux = moe.moe_layer %x gate(%wg) thresholds(%t) experts(%we) {num_experts = 4 : i64, gating = #moe.gating<threshold>, expert = #moe.expert<linear>} : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<8xf32>, tensor<4x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

// -----

// Top-k gating has no thresholds.
func.func @thresholds_with_top_k(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %t: tensor<4xf32>, %we: tensor<4x32x32xf32>) {
  // expected-error@+1 {{'moe.moe_layer' op thresholds are only used by batchwise and threshold gating, not by top_k}}
  %y, %aux = moe.moe_layer %x gate(%wg) thresholds(%t) experts(%we) {num_experts = 4 : i64, k = 2 : i64, gating = #moe.gating<top_k>, expert = #moe.expert<linear>} : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<4xf32>, tensor<4x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

// -----

// Top-k gating must be told k.
func.func @top_k_without_k(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %we: tensor<4x32x32xf32>) {
  // expected-error@+1 {{'moe.moe_layer' op top_k gating needs 'k', the number of experts per token}}
  %y, %aux = moe.moe_layer %x gate(%wg) experts(%we) {num_experts = 4 : i64, gating = #moe.gating<top_k>, expert = #moe.expert<linear>} : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<4x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

// -----

// Dense softmax gating uses every expert; a k would be silently ignored.
func.func @k_with_softmax(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %we: tensor<4x32x32xf32>) {
  // expected-error@+1 {{'moe.moe_layer' op 'k' is not used by softmax gating; remove it}}
  %y, %aux = moe.moe_layer %x gate(%wg) experts(%we) {num_experts = 4 : i64, k = 2 : i64, gating = #moe.gating<softmax>, expert = #moe.expert<linear>} : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<4x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

// -----

// Batchwise gating keeps m = k * tokens / n = 2 * 15 / 4 = 7.5 tokens per
// expert: not a whole number.
func.func @batchwise_m_not_whole(%x: tensor<15x32xf32>, %wg: tensor<32x4xf32>, %t: tensor<4xf32>, %we: tensor<4x32x32xf32>) {
  // expected-error@+1 {{'moe.moe_layer' op batchwise gating keeps k * tokens / num_experts = 2 * 15 / 4 tokens per expert, which must be a whole number}}
  %y, %aux = moe.moe_layer %x gate(%wg) thresholds(%t) experts(%we) {num_experts = 4 : i64, k = 2 : i64, gating = #moe.gating<batchwise>, expert = #moe.expert<linear>} : (tensor<15x32xf32>, tensor<32x4xf32>, tensor<4xf32>, tensor<4x32x32xf32>) -> (tensor<15x32xf32>, tensor<f32>)
  return
}

// -----

// num_experts must be positive (ODS attribute constraint).
func.func @num_experts_zero(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %we: tensor<4x32x32xf32>) {
  // expected-error@+1 {{'moe.moe_layer' op attribute 'num_experts' failed to satisfy constraint: 64-bit signless integer attribute whose value is positive}}
  %y, %aux = moe.moe_layer %x gate(%wg) experts(%we) {num_experts = 0 : i64, gating = #moe.gating<softmax>, expert = #moe.expert<linear>} : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<4x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

// -----

// The expert kind has no default: it decides how many weights follow.
func.func @missing_expert_attr(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %we: tensor<4x32x32xf32>) {
  // expected-error@+1 {{'moe.moe_layer' op requires attribute 'expert'}}
  %y, %aux = moe.moe_layer %x gate(%wg) experts(%we) {num_experts = 4 : i64, gating = #moe.gating<softmax>} : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<4x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

//===----------------------------------------------------------------------===//
// moe.moe_layer: input, experts, output and losses
//===----------------------------------------------------------------------===//

// -----

// Inputs are [tokens, d] or [batch, time, d].
func.func @input_rank_4(%x: tensor<2x4x4x32xf32>, %wg: tensor<32x4xf32>, %we: tensor<4x32x32xf32>) {
  // expected-error@+1 {{'moe.moe_layer' op expects input of rank 2 ([tokens, d]) or 3 ([batch, time, d]) but got rank 4}}
  %y, %aux = moe.moe_layer %x gate(%wg) experts(%we) {num_experts = 4 : i64, gating = #moe.gating<softmax>, expert = #moe.expert<linear>} : (tensor<2x4x4x32xf32>, tensor<32x4xf32>, tensor<4x32x32xf32>) -> (tensor<2x4x4x32xf32>, tensor<f32>)
  return
}

// -----

// A linear expert is one matrix; a second tensor has nowhere to go.
func.func @linear_expert_two_weights(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %w1: tensor<4x32x32xf32>, %w2: tensor<4x32x32xf32>) {
  // expected-error@+1 {{'moe.moe_layer' op linear experts take 1 weight tensor but got 2}}
  %y, %aux = moe.moe_layer %x gate(%wg) experts(%w1, %w2) {num_experts = 4 : i64, gating = #moe.gating<softmax>, expert = #moe.expert<linear>} : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<4x32x32xf32>, tensor<4x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

// -----

// An ffn expert has an input and an output matrix.
func.func @ffn_expert_one_weight(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %w1: tensor<4x32x64xf32>) {
  // expected-error@+1 {{'moe.moe_layer' op ffn experts take 2 weight tensors but got 1}}
  %y, %aux = moe.moe_layer %x gate(%wg) experts(%w1) {num_experts = 4 : i64, gating = #moe.gating<softmax>, expert = #moe.expert<ffn, hidden = 64>} : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<4x32x64xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

// -----

// Expert weights stack one matrix per expert: rank 3.
func.func @expert_weights_rank_2(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %we: tensor<32x32xf32>) {
  // expected-error@+1 {{'moe.moe_layer' op expects expert weights of rank 3 ([num_experts, in, out]) but got shape 32x32}}
  %y, %aux = moe.moe_layer %x gate(%wg) experts(%we) {num_experts = 4 : i64, gating = #moe.gating<softmax>, expert = #moe.expert<linear>} : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

// -----

// One expert matrix per expert: 4, not 8.
func.func @linear_expert_weights_wrong_count(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %we: tensor<8x32x32xf32>) {
  // expected-error@+1 {{'moe.moe_layer' op expects expert weights of shape 4x32x32 ([num_experts, d, d_out]) but got 8x32x32}}
  %y, %aux = moe.moe_layer %x gate(%wg) experts(%we) {num_experts = 4 : i64, gating = #moe.gating<softmax>, expert = #moe.expert<linear>} : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<8x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

// -----

// The first ffn matrix is [n, d, hidden] with hidden from #moe.expert.
func.func @ffn_hidden_mismatch(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %w1: tensor<4x32x48xf32>, %w2: tensor<4x48x32xf32>) {
  // expected-error@+1 {{'moe.moe_layer' op expects first expert weights of shape 4x32x64 ([num_experts, d, hidden]) but got 4x32x48}}
  %y, %aux = moe.moe_layer %x gate(%wg) experts(%w1, %w2) {num_experts = 4 : i64, gating = #moe.gating<softmax>, expert = #moe.expert<ffn, hidden = 64>} : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<4x32x48xf32>, tensor<4x48x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

// -----

// The second ffn matrix must start where the first ends (hidden = 64).
func.func @ffn_second_weights_mismatch(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %w1: tensor<4x32x64xf32>, %w2: tensor<4x48x32xf32>) {
  // expected-error@+1 {{'moe.moe_layer' op expects second expert weights of shape 4x64x32 ([num_experts, hidden, d_out]) but got 4x48x32}}
  %y, %aux = moe.moe_layer %x gate(%wg) experts(%w1, %w2) {num_experts = 4 : i64, gating = #moe.gating<softmax>, expert = #moe.expert<ffn, hidden = 64>} : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<4x32x64xf32>, tensor<4x48x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

// -----

// The experts map 32 -> 16 features, so the output is 16x16.
func.func @output_wrong_shape(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %we: tensor<4x32x16xf32>) {
  // expected-error@+1 {{'moe.moe_layer' op expects output of shape 16x16 (input shape with the last dimension d_out) but got 16x32}}
  %y, %aux = moe.moe_layer %x gate(%wg) experts(%we) {num_experts = 4 : i64, gating = #moe.gating<softmax>, expert = #moe.expert<linear>} : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<4x32x16xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

// -----

// The smooth load estimate needs the gating noise.
func.func @load_loss_without_noisy_top_k(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %we: tensor<4x32x32xf32>) {
  // expected-error@+1 {{'moe.moe_layer' op the load loss needs noisy_top_k gating (it estimates load from the gating noise)}}
  %y, %aux = moe.moe_layer %x gate(%wg) experts(%we) {num_experts = 4 : i64, k = 2 : i64, gating = #moe.gating<top_k>, expert = #moe.expert<linear>, losses = #moe.losses<load = 0.1>} : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<4x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

// -----

// Eq. 8 trains the thresholds of batchwise gating; threshold gating has no
// batchwise top-m to match.
func.func @batchwise_threshold_loss_without_batchwise(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %t: tensor<4xf32>, %we: tensor<4x32x32xf32>) {
  // expected-error@+1 {{'moe.moe_layer' op the batchwise_threshold loss (Eq. 8) needs batchwise gating}}
  %y, %aux = moe.moe_layer %x gate(%wg) thresholds(%t) experts(%we) {num_experts = 4 : i64, gating = #moe.gating<threshold>, expert = #moe.expert<linear>, losses = #moe.losses<batchwise_threshold = 0.1>} : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<4xf32>, tensor<4x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

// -----

// Only f32 tensors are supported (ODS type constraint).
func.func @f16_input(%x: tensor<16x32xf16>, %wg: tensor<32x4xf32>, %we: tensor<4x32x32xf32>) {
  // expected-error@+1 {{'moe.moe_layer' op operand #0 must be statically shaped tensor of 32-bit float values, but got 'tensor<16x32xf16>'}}
  %y, %aux = moe.moe_layer %x gate(%wg) experts(%we) {num_experts = 4 : i64, gating = #moe.gating<softmax>, expert = #moe.expert<linear>} : (tensor<16x32xf16>, tensor<32x4xf32>, tensor<4x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

// -----

// Shapes are static: the batch size decides batchwise m and buffer sizes.
func.func @dynamic_shape_input(%x: tensor<?x32xf32>, %wg: tensor<32x4xf32>, %we: tensor<4x32x32xf32>) {
  // expected-error@+1 {{'moe.moe_layer' op operand #0 must be statically shaped tensor of 32-bit float values, but got 'tensor<?x32xf32>'}}
  %y, %aux = moe.moe_layer %x gate(%wg) experts(%we) {num_experts = 4 : i64, gating = #moe.gating<softmax>, expert = #moe.expert<linear>} : (tensor<?x32xf32>, tensor<32x4xf32>, tensor<4x32x32xf32>) -> (tensor<?x32xf32>, tensor<f32>)
  return
}

// -----

// The auxiliary loss is a scalar.
func.func @aux_loss_not_scalar(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %we: tensor<4x32x32xf32>) {
  // expected-error@+1 {{'moe.moe_layer' op result #1 must be 0D tensor of 32-bit float values, but got 'tensor<1xf32>'}}
  %y, %aux = moe.moe_layer %x gate(%wg) experts(%we) {num_experts = 4 : i64, gating = #moe.gating<softmax>, expert = #moe.expert<linear>} : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<4x32x32xf32>) -> (tensor<16x32xf32>, tensor<1xf32>)
  return
}

//===----------------------------------------------------------------------===//
// moe.hierarchical_moe_layer
//===----------------------------------------------------------------------===//

// -----

// Groups split the experts evenly: 8 experts do not form 3 groups.
func.func @groups_not_dividing_num_experts(%x: tensor<16x32xf32>, %pg: tensor<32x3xf32>, %sg: tensor<3x32x2xf32>, %we: tensor<8x32x32xf32>) {
  // expected-error@+1 {{'moe.hierarchical_moe_layer' op num_experts = 8 is not divisible by groups = 3}}
  %y, %aux = moe.hierarchical_moe_layer %x primary(%pg) secondary(%sg) experts(%we) {num_experts = 8 : i64, groups = 3 : i64, k_primary = 1 : i64, k_secondary = 1 : i64, gating = #moe.gating<top_k>, expert = #moe.expert<linear>} : (tensor<16x32xf32>, tensor<32x3xf32>, tensor<3x32x2xf32>, tensor<8x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

// -----

// Dense softmax at both levels would evaluate every expert.
func.func @hierarchical_softmax(%x: tensor<16x32xf32>, %pg: tensor<32x4xf32>, %sg: tensor<4x32x2xf32>, %we: tensor<8x32x32xf32>) {
  // expected-error@+1 {{'moe.hierarchical_moe_layer' op hierarchical layers need sparse gating (top_k, noisy_top_k, batchwise or threshold), not softmax}}
  %y, %aux = moe.hierarchical_moe_layer %x primary(%pg) secondary(%sg) experts(%we) {num_experts = 8 : i64, groups = 4 : i64, gating = #moe.gating<softmax>, expert = #moe.expert<linear>} : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<4x32x2xf32>, tensor<8x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

// -----

// The primary gate picks groups: k_primary <= groups.
func.func @k_primary_exceeds_groups(%x: tensor<16x32xf32>, %pg: tensor<32x4xf32>, %sg: tensor<4x32x2xf32>, %we: tensor<8x32x32xf32>) {
  // expected-error@+1 {{'moe.hierarchical_moe_layer' op k_primary = 5 exceeds groups = 4}}
  %y, %aux = moe.hierarchical_moe_layer %x primary(%pg) secondary(%sg) experts(%we) {num_experts = 8 : i64, groups = 4 : i64, k_primary = 5 : i64, k_secondary = 1 : i64, gating = #moe.gating<top_k>, expert = #moe.expert<linear>} : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<4x32x2xf32>, tensor<8x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

// -----

// Each group holds 8 / 4 = 2 experts: k_secondary <= 2.
func.func @k_secondary_exceeds_experts_per_group(%x: tensor<16x32xf32>, %pg: tensor<32x4xf32>, %sg: tensor<4x32x2xf32>, %we: tensor<8x32x32xf32>) {
  // expected-error@+1 {{'moe.hierarchical_moe_layer' op k_secondary = 3 exceeds experts per group = 2}}
  %y, %aux = moe.hierarchical_moe_layer %x primary(%pg) secondary(%sg) experts(%we) {num_experts = 8 : i64, groups = 4 : i64, k_primary = 2 : i64, k_secondary = 3 : i64, gating = #moe.gating<top_k>, expert = #moe.expert<linear>} : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<4x32x2xf32>, tensor<8x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

// -----

// Both levels need their k.
func.func @hierarchical_without_k_secondary(%x: tensor<16x32xf32>, %pg: tensor<32x4xf32>, %sg: tensor<4x32x2xf32>, %we: tensor<8x32x32xf32>) {
  // expected-error@+1 {{'moe.hierarchical_moe_layer' op top_k gating needs 'k_secondary', the number of experts per token}}
  %y, %aux = moe.hierarchical_moe_layer %x primary(%pg) secondary(%sg) experts(%we) {num_experts = 8 : i64, groups = 4 : i64, k_primary = 2 : i64, gating = #moe.gating<top_k>, expert = #moe.expert<linear>} : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<4x32x2xf32>, tensor<8x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

// -----

// The primary gate maps d to groups (4), not to num_experts (8).
func.func @primary_gate_wrong_shape(%x: tensor<16x32xf32>, %pg: tensor<32x8xf32>, %sg: tensor<4x32x2xf32>, %we: tensor<8x32x32xf32>) {
  // expected-error@+1 {{'moe.hierarchical_moe_layer' op expects primary gate weights of shape 32x4 ([d, groups]) but got 32x8}}
  %y, %aux = moe.hierarchical_moe_layer %x primary(%pg) secondary(%sg) experts(%we) {num_experts = 8 : i64, groups = 4 : i64, k_primary = 2 : i64, k_secondary = 1 : i64, gating = #moe.gating<top_k>, expert = #moe.expert<linear>} : (tensor<16x32xf32>, tensor<32x8xf32>, tensor<4x32x2xf32>, tensor<8x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

// -----

// Each group has its own secondary gate: [groups, d, experts per group].
func.func @secondary_gate_wrong_shape(%x: tensor<16x32xf32>, %pg: tensor<32x4xf32>, %sg: tensor<32x8xf32>, %we: tensor<8x32x32xf32>) {
  // expected-error@+1 {{'moe.hierarchical_moe_layer' op expects secondary gate weights of shape 4x32x2 ([groups, d, num_experts / groups]) but got 32x8}}
  %y, %aux = moe.hierarchical_moe_layer %x primary(%pg) secondary(%sg) experts(%we) {num_experts = 8 : i64, groups = 4 : i64, k_primary = 2 : i64, k_secondary = 1 : i64, gating = #moe.gating<top_k>, expert = #moe.expert<linear>} : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<32x8xf32>, tensor<8x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

// -----

// Noisy top-k needs noise at the secondary level too.
func.func @secondary_noise_missing(%x: tensor<16x32xf32>, %pg: tensor<32x4xf32>, %pn: tensor<32x4xf32>, %sg: tensor<4x32x2xf32>, %we: tensor<8x32x32xf32>) {
  // expected-error@+1 {{'moe.hierarchical_moe_layer' op noisy_top_k gating needs secondary noise weights: write (%w_gate, noise %w_noise)}}
  %y, %aux = moe.hierarchical_moe_layer %x primary(%pg, noise %pn) secondary(%sg) experts(%we) {num_experts = 8 : i64, groups = 4 : i64, k_primary = 2 : i64, k_secondary = 1 : i64, gating = #moe.gating<noisy_top_k>, expert = #moe.expert<linear>} : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<32x4xf32>, tensor<4x32x2xf32>, tensor<8x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

// -----

// Secondary thresholds are per group and per expert: [groups, m].
func.func @secondary_thresholds_wrong_shape(%x: tensor<16x32xf32>, %pg: tensor<32x4xf32>, %pt: tensor<4xf32>, %sg: tensor<4x32x2xf32>, %st: tensor<8xf32>, %we: tensor<8x32x32xf32>) {
  // expected-error@+1 {{'moe.hierarchical_moe_layer' op expects secondary thresholds of shape 4x2 ([groups, num_experts / groups]) but got 8}}
  %y, %aux = moe.hierarchical_moe_layer %x primary(%pg, thresholds %pt) secondary(%sg, thresholds %st) experts(%we) {num_experts = 8 : i64, groups = 4 : i64, gating = #moe.gating<threshold>, expert = #moe.expert<linear>} : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<4xf32>, tensor<4x32x2xf32>, tensor<8xf32>, tensor<8x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

// -----

// Batchwise at the primary level: k_primary * tokens / groups = 3 * 6 / 4
// is not whole.
func.func @hierarchical_batchwise_m_not_whole(%x: tensor<6x32xf32>, %pg: tensor<32x4xf32>, %pt: tensor<4xf32>, %sg: tensor<4x32x2xf32>, %st: tensor<4x2xf32>, %we: tensor<8x32x32xf32>) {
  // expected-error@+1 {{'moe.hierarchical_moe_layer' op batchwise gating keeps k_primary * tokens / groups = 3 * 6 / 4 tokens per expert, which must be a whole number}}
  %y, %aux = moe.hierarchical_moe_layer %x primary(%pg, thresholds %pt) secondary(%sg, thresholds %st) experts(%we) {num_experts = 8 : i64, groups = 4 : i64, k_primary = 3 : i64, k_secondary = 1 : i64, gating = #moe.gating<batchwise>, expert = #moe.expert<linear>} : (tensor<6x32xf32>, tensor<32x4xf32>, tensor<4xf32>, tensor<4x32x2xf32>, tensor<4x2xf32>, tensor<8x32x32xf32>) -> (tensor<6x32xf32>, tensor<f32>)
  return
}

// -----

// Batchwise at the secondary level: each group sees 1 * 8 / 2 = 4 rows,
// and 2 * 4 / 3 rows per expert of a group is not whole.
func.func @hierarchical_batchwise_secondary_m_not_whole(%x: tensor<8x32xf32>, %pg: tensor<32x2xf32>, %pt: tensor<2xf32>, %sg: tensor<2x32x3xf32>, %st: tensor<2x3xf32>, %we: tensor<6x32x32xf32>) {
  // expected-error@+1 {{'moe.hierarchical_moe_layer' op batchwise gating gives each group k_primary * tokens / groups = 4 rows, and k_secondary * rows / experts per group = 2 * 4 / 3 rows per expert must be a whole number}}
  %y, %aux = moe.hierarchical_moe_layer %x primary(%pg, thresholds %pt) secondary(%sg, thresholds %st) experts(%we) {num_experts = 6 : i64, groups = 2 : i64, k_primary = 1 : i64, k_secondary = 2 : i64, gating = #moe.gating<batchwise>, expert = #moe.expert<linear>} : (tensor<8x32xf32>, tensor<32x2xf32>, tensor<2xf32>, tensor<2x32x3xf32>, tensor<2x3xf32>, tensor<6x32x32xf32>) -> (tensor<8x32xf32>, tensor<f32>)
  return
}

// -----

// The load loss needs noisy top-k in hierarchical layers too.
func.func @hierarchical_load_loss_without_noise(%x: tensor<16x32xf32>, %pg: tensor<32x4xf32>, %sg: tensor<4x32x2xf32>, %we: tensor<8x32x32xf32>) {
  // expected-error@+1 {{'moe.hierarchical_moe_layer' op the load loss needs noisy_top_k gating (it estimates load from the gating noise)}}
  %y, %aux = moe.hierarchical_moe_layer %x primary(%pg) secondary(%sg) experts(%we) {num_experts = 8 : i64, groups = 4 : i64, k_primary = 2 : i64, k_secondary = 1 : i64, gating = #moe.gating<top_k>, expert = #moe.expert<linear>, losses = #moe.losses<load = 1.0>} : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<4x32x2xf32>, tensor<8x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

//===----------------------------------------------------------------------===//
// moe.lstm
//===----------------------------------------------------------------------===//

// -----

// An LSTM runs over [batch, time, d_in].
func.func @lstm_input_rank_2(%x: tensor<4x16xf32>, %wx: tensor<16x32xf32>, %wh: tensor<8x32xf32>, %b: tensor<32xf32>) {
  // expected-error@+1 {{'moe.lstm' op expects input of rank 3 ([batch, time, d_in]) but got shape 4x16}}
  %h = moe.lstm %x weights(%wx, %wh, %b) : (tensor<4x16xf32>, tensor<16x32xf32>, tensor<8x32xf32>, tensor<32xf32>) -> tensor<4x8xf32>
  return
}

// -----

// The four gates are fused column-wise: 30 columns is not 4 * hidden.
func.func @lstm_gate_columns_not_multiple_of_4(%x: tensor<4x5x16xf32>, %wx: tensor<16x30xf32>, %wh: tensor<8x32xf32>, %b: tensor<32xf32>) {
  // expected-error@+1 {{'moe.lstm' op expects input weights of shape 16x(4*hidden) ([d_in, 4 * hidden], gates i, f, g, o) but got 16x30}}
  %h = moe.lstm %x weights(%wx, %wh, %b) : (tensor<4x5x16xf32>, tensor<16x30xf32>, tensor<8x32xf32>, tensor<32xf32>) -> tensor<4x5x8xf32>
  return
}

// -----

// Input weights take d_in = 16 rows.
func.func @lstm_input_weights_wrong_rows(%x: tensor<4x5x16xf32>, %wx: tensor<12x32xf32>, %wh: tensor<8x32xf32>, %b: tensor<32xf32>) {
  // expected-error@+1 {{'moe.lstm' op expects input weights of shape 16x(4*hidden) ([d_in, 4 * hidden], gates i, f, g, o) but got 12x32}}
  %h = moe.lstm %x weights(%wx, %wh, %b) : (tensor<4x5x16xf32>, tensor<12x32xf32>, tensor<8x32xf32>, tensor<32xf32>) -> tensor<4x5x8xf32>
  return
}

// -----

// Without projection the recurrent input is the hidden state (8 wide).
func.func @lstm_recurrent_wrong_shape(%x: tensor<4x5x16xf32>, %wx: tensor<16x32xf32>, %wh: tensor<16x32xf32>, %b: tensor<32xf32>) {
  // expected-error@+1 {{'moe.lstm' op expects recurrent weights of shape 8x32 ([output size, 4 * hidden]) but got 16x32}}
  %h = moe.lstm %x weights(%wx, %wh, %b) : (tensor<4x5x16xf32>, tensor<16x32xf32>, tensor<16x32xf32>, tensor<32xf32>) -> tensor<4x5x8xf32>
  return
}

// -----

// One bias per gate column.
func.func @lstm_bias_wrong_shape(%x: tensor<4x5x16xf32>, %wx: tensor<16x32xf32>, %wh: tensor<8x32xf32>, %b: tensor<8xf32>) {
  // expected-error@+1 {{'moe.lstm' op expects bias of shape 32 ([4 * hidden]) but got 8}}
  %h = moe.lstm %x weights(%wx, %wh, %b) : (tensor<4x5x16xf32>, tensor<16x32xf32>, tensor<8x32xf32>, tensor<8xf32>) -> tensor<4x5x8xf32>
  return
}

// -----

// The projection maps the hidden state (8 wide) to P.
func.func @lstm_projection_wrong_shape(%x: tensor<4x5x16xf32>, %wx: tensor<16x32xf32>, %wh: tensor<6x32xf32>, %b: tensor<32xf32>, %wp: tensor<6x6xf32>) {
  // expected-error@+1 {{'moe.lstm' op expects projection of shape 8xP ([hidden, projection]) but got 6x6}}
  %h = moe.lstm %x weights(%wx, %wh, %b) projection(%wp) : (tensor<4x5x16xf32>, tensor<16x32xf32>, tensor<6x32xf32>, tensor<32xf32>, tensor<6x6xf32>) -> tensor<4x5x6xf32>
  return
}

// -----

// With a projection to 6 the output is [batch, time, 6].
func.func @lstm_output_wrong_shape(%x: tensor<4x5x16xf32>, %wx: tensor<16x32xf32>, %wh: tensor<6x32xf32>, %b: tensor<32xf32>, %wp: tensor<8x6xf32>) {
  // expected-error@+1 {{'moe.lstm' op expects output of shape 4x5x6 ([batch, time, output size]) but got 4x5x8}}
  %h = moe.lstm %x weights(%wx, %wh, %b) projection(%wp) : (tensor<4x5x16xf32>, tensor<16x32xf32>, tensor<6x32xf32>, tensor<32xf32>, tensor<8x6xf32>) -> tensor<4x5x8xf32>
  return
}

// -----

// A given state comes with the final state as two extra results.
func.func @lstm_state_without_final_state(%x: tensor<4x1x16xf32>, %wx: tensor<16x32xf32>, %wh: tensor<8x32xf32>, %b: tensor<32xf32>, %h0: tensor<4x8xf32>, %c0: tensor<4x8xf32>) {
  // expected-error@+1 {{'moe.lstm' op expects either no state or state(h_0, c_0) with the two final states as extra results, but got 2 state operand(s) and 0 extra result(s)}}
  %y = moe.lstm %x weights(%wx, %wh, %b) state(%h0, %c0) : (tensor<4x1x16xf32>, tensor<16x32xf32>, tensor<8x32xf32>, tensor<32xf32>, tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x1x8xf32>
  return
}

// -----

// The state is h and c: one tensor is not a state.
func.func @lstm_state_one_operand(%x: tensor<4x1x16xf32>, %wx: tensor<16x32xf32>, %wh: tensor<8x32xf32>, %b: tensor<32xf32>, %h0: tensor<4x8xf32>) {
  // expected-error@+1 {{'moe.lstm' op expects either no state or state(h_0, c_0) with the two final states as extra results, but got 1 state operand(s) and 1 extra result(s)}}
  %y, %h = moe.lstm %x weights(%wx, %wh, %b) state(%h0) : (tensor<4x1x16xf32>, tensor<16x32xf32>, tensor<8x32xf32>, tensor<32xf32>, tensor<4x8xf32>) -> (tensor<4x1x8xf32>, tensor<4x8xf32>)
  return
}

// -----

// With a projection to 6, h_0 is [batch, 6], not [batch, hidden].
func.func @lstm_initial_hidden_wrong_shape(%x: tensor<4x1x16xf32>, %wx: tensor<16x32xf32>, %wh: tensor<6x32xf32>, %b: tensor<32xf32>, %wp: tensor<8x6xf32>, %h0: tensor<4x8xf32>, %c0: tensor<4x8xf32>) {
  // expected-error@+1 {{'moe.lstm' op expects initial hidden state of shape 4x6 ([batch, output size]) but got 4x8}}
  %y, %h, %c = moe.lstm %x weights(%wx, %wh, %b) projection(%wp) state(%h0, %c0) : (tensor<4x1x16xf32>, tensor<16x32xf32>, tensor<6x32xf32>, tensor<32xf32>, tensor<8x6xf32>, tensor<4x8xf32>, tensor<4x8xf32>) -> (tensor<4x1x6xf32>, tensor<4x6xf32>, tensor<4x8xf32>)
  return
}

// -----

// c_0 is the cell state [batch, hidden].
func.func @lstm_initial_cell_wrong_shape(%x: tensor<4x1x16xf32>, %wx: tensor<16x32xf32>, %wh: tensor<6x32xf32>, %b: tensor<32xf32>, %wp: tensor<8x6xf32>, %h0: tensor<4x6xf32>, %c0: tensor<4x6xf32>) {
  // expected-error@+1 {{'moe.lstm' op expects initial cell state of shape 4x8 ([batch, hidden]) but got 4x6}}
  %y, %h, %c = moe.lstm %x weights(%wx, %wh, %b) projection(%wp) state(%h0, %c0) : (tensor<4x1x16xf32>, tensor<16x32xf32>, tensor<6x32xf32>, tensor<32xf32>, tensor<8x6xf32>, tensor<4x6xf32>, tensor<4x6xf32>) -> (tensor<4x1x6xf32>, tensor<4x6xf32>, tensor<4x8xf32>)
  return
}

// -----

// The final cell state has the cell's shape.
func.func @lstm_final_cell_wrong_shape(%x: tensor<4x1x16xf32>, %wx: tensor<16x32xf32>, %wh: tensor<6x32xf32>, %b: tensor<32xf32>, %wp: tensor<8x6xf32>, %h0: tensor<4x6xf32>, %c0: tensor<4x8xf32>) {
  // expected-error@+1 {{'moe.lstm' op expects final cell state of shape 4x8 ([batch, hidden]) but got 4x6}}
  %y, %h, %c = moe.lstm %x weights(%wx, %wh, %b) projection(%wp) state(%h0, %c0) : (tensor<4x1x16xf32>, tensor<16x32xf32>, tensor<6x32xf32>, tensor<32xf32>, tensor<8x6xf32>, tensor<4x6xf32>, tensor<4x8xf32>) -> (tensor<4x1x6xf32>, tensor<4x6xf32>, tensor<4x6xf32>)
  return
}

//===----------------------------------------------------------------------===//
// moe.embedding, moe.linear, moe.dropout, moe.residual, moe.attention
//===----------------------------------------------------------------------===//

// -----

// An embedding table is [vocab, d].
func.func @embedding_table_rank_3(%table: tensor<10x100x16xf32>, %ids: tensor<4x5xi32>) {
  // expected-error@+1 {{'moe.embedding' op expects a table of rank 2 ([vocab, d]) but got shape 10x100x16}}
  %e = moe.embedding %table[%ids] : (tensor<10x100x16xf32>, tensor<4x5xi32>) -> tensor<4x5x16xf32>
  return
}

// -----

// Looking up 4x5 ids in a 16-wide table gives 4x5x16.
func.func @embedding_output_wrong_shape(%table: tensor<100x16xf32>, %ids: tensor<4x5xi32>) {
  // expected-error@+1 {{'moe.embedding' op expects output of shape 4x5x16 (ids shape followed by d) but got 4x16}}
  %e = moe.embedding %table[%ids] : (tensor<100x16xf32>, tensor<4x5xi32>) -> tensor<4x16xf32>
  return
}

// -----

// Ids are i32 (ODS type constraint).
func.func @embedding_i64_ids(%table: tensor<100x16xf32>, %ids: tensor<4x5xi64>) {
  // expected-error@+1 {{'moe.embedding' op operand #1 must be statically shaped tensor of 32-bit signless integer values, but got 'tensor<4x5xi64>'}}
  %e = moe.embedding %table[%ids] : (tensor<100x16xf32>, tensor<4x5xi64>) -> tensor<4x5x16xf32>
  return
}

// -----

// A scalar has no feature dimension to map.
func.func @linear_scalar_input(%x: tensor<f32>, %w: tensor<1x4xf32>) {
  // expected-error@+1 {{'moe.linear' op expects an input of rank >= 2 ([..., d_in])}}
  %y = moe.linear %x, %w : (tensor<f32>, tensor<1x4xf32>) -> tensor<4xf32>
  return
}

// -----

// A single vector is not a batch of rows: write it as [1, d_in].
func.func @linear_vector_input(%x: tensor<8xf32>, %w: tensor<8x4xf32>) {
  // expected-error@+1 {{'moe.linear' op expects an input of rank >= 2 ([..., d_in])}}
  %y = moe.linear %x, %w : (tensor<8xf32>, tensor<8x4xf32>) -> tensor<4xf32>
  return
}

// -----

// An empty batch has nothing to route (and no expert batch to form).
func.func @moe_layer_no_tokens(%x: tensor<0x8xf32>, %wg: tensor<8x2xf32>, %we: tensor<2x8x8xf32>) {
  // expected-error@+1 {{expects at least one token of width > 0}}
  %y, %aux = moe.moe_layer %x gate(%wg) experts(%we) {num_experts = 2 : i64, k = 1 : i64, gating = #moe.gating<top_k>, expert = #moe.expert<linear>} : (tensor<0x8xf32>, tensor<8x2xf32>, tensor<2x8x8xf32>) -> (tensor<0x8xf32>, tensor<f32>)
  return
}

// -----

// The weights' rows must match the input's last dimension (32).
func.func @linear_weights_wrong_shape(%x: tensor<16x32xf32>, %w: tensor<16x10xf32>) {
  // expected-error@+1 {{'moe.linear' op expects weights of shape 32xN ([d_in, d_out]) but got 16x10}}
  %y = moe.linear %x, %w : (tensor<16x32xf32>, tensor<16x10xf32>) -> tensor<16x10xf32>
  return
}

// -----

// One bias per output feature.
func.func @linear_bias_wrong_shape(%x: tensor<16x32xf32>, %w: tensor<32x10xf32>, %b: tensor<32xf32>) {
  // expected-error@+1 {{'moe.linear' op expects bias of shape 10 ([d_out]) but got 32}}
  %y = moe.linear %x, %w, %b : (tensor<16x32xf32>, tensor<32x10xf32>, tensor<32xf32>) -> tensor<16x10xf32>
  return
}

// -----

// [16, 32] x [32, 10] is [16, 10].
func.func @linear_output_wrong_shape(%x: tensor<16x32xf32>, %w: tensor<32x10xf32>) {
  // expected-error@+1 {{'moe.linear' op expects output of shape 16x10 (input shape with the last dimension d_out) but got 16x32}}
  %y = moe.linear %x, %w : (tensor<16x32xf32>, tensor<32x10xf32>) -> tensor<16x32xf32>
  return
}

// -----

// A rate of 1 would drop everything and divide by zero when rescaling.
func.func @dropout_rate_one(%x: tensor<4x16xf32>) {
  // expected-error@+1 {{'moe.dropout' op expects a dropout rate in [0, 1) but got 1}}
  %y = moe.dropout %x {rate = 1.0 : f32} : tensor<4x16xf32>
  return
}

// -----

// Negative rates are meaningless.
func.func @dropout_rate_negative(%x: tensor<4x16xf32>) {
  // expected-error@+1 {{'moe.dropout' op expects a dropout rate in [0, 1) but got -0.1}}
  %y = moe.dropout %x {rate = -0.1 : f32} : tensor<4x16xf32>
  return
}

// -----

// The residual sum needs equal shapes (ODS SameOperandsAndResultType).
func.func @residual_shape_mismatch(%x: tensor<4x16xf32>, %l: tensor<4x8xf32>) {
  // expected-error@+1 {{'moe.residual' op requires the same type for all operands and results}}
  %y = "moe.residual"(%x, %l) : (tensor<4x16xf32>, tensor<4x8xf32>) -> tensor<4x16xf32>
  return
}

// -----

// Source and target sequences come from the same batch.
func.func @attention_batch_mismatch(%src: tensor<2x6x16xf32>, %tgt: tensor<3x5x12xf32>, %u: tensor<16x8xf32>, %w: tensor<12x8xf32>, %v: tensor<8xf32>) {
  // expected-error@+1 {{'moe.attention' op expects source [batch, S_x, d_x] and target [batch, S_y, d_y] with the same batch, got 2x6x16 and 3x5x12}}
  %ctx = moe.attention %src, %tgt weights(%u, %w, %v) : (tensor<2x6x16xf32>, tensor<3x5x12xf32>, tensor<16x8xf32>, tensor<12x8xf32>, tensor<8xf32>) -> tensor<3x5x16xf32>
  return
}

// -----

// The score weights V are a vector over the E attention features.
func.func @attention_score_weights_rank_2(%src: tensor<2x6x16xf32>, %tgt: tensor<2x5x12xf32>, %u: tensor<16x8xf32>, %w: tensor<12x8xf32>, %v: tensor<8x1xf32>) {
  // expected-error@+1 {{'moe.attention' op expects score weights of shape [E] but got 8x1}}
  %ctx = moe.attention %src, %tgt weights(%u, %w, %v) : (tensor<2x6x16xf32>, tensor<2x5x12xf32>, tensor<16x8xf32>, tensor<12x8xf32>, tensor<8x1xf32>) -> tensor<2x5x16xf32>
  return
}

// -----

// Source lengths: one per sequence of the batch.
func.func @attention_lengths_wrong_shape(%src: tensor<2x6x16xf32>, %tgt: tensor<2x5x12xf32>, %u: tensor<16x8xf32>, %w: tensor<12x8xf32>, %v: tensor<8xf32>, %len: tensor<3xi32>) {
  // expected-error@+1 {{'moe.attention' op expects lengths of shape 2 ([batch]) but got 3}}
  %ctx = moe.attention %src, %tgt weights(%u, %w, %v) lengths(%len) : (tensor<2x6x16xf32>, tensor<2x5x12xf32>, tensor<16x8xf32>, tensor<12x8xf32>, tensor<8xf32>, tensor<3xi32>) -> tensor<2x5x16xf32>
  return
}

// -----

// Lengths are integers.
func.func @attention_lengths_float(%src: tensor<2x6x16xf32>, %tgt: tensor<2x5x12xf32>, %u: tensor<16x8xf32>, %w: tensor<12x8xf32>, %v: tensor<8xf32>, %len: tensor<2xf32>) {
  // expected-error@+1 {{'moe.attention' op operand #5 must be statically shaped tensor of 32-bit signless integer values}}
  %ctx = moe.attention %src, %tgt weights(%u, %w, %v) lengths(%len) : (tensor<2x6x16xf32>, tensor<2x5x12xf32>, tensor<16x8xf32>, tensor<12x8xf32>, tensor<8xf32>, tensor<2xf32>) -> tensor<2x5x16xf32>
  return
}

// -----

// U maps the source features (16) to E = 8.
func.func @attention_source_weights_wrong_shape(%src: tensor<2x6x16xf32>, %tgt: tensor<2x5x12xf32>, %u: tensor<12x8xf32>, %w: tensor<12x8xf32>, %v: tensor<8xf32>) {
  // expected-error@+1 {{'moe.attention' op expects source weights of shape 16x8 ([d_x, E]) but got 12x8}}
  %ctx = moe.attention %src, %tgt weights(%u, %w, %v) : (tensor<2x6x16xf32>, tensor<2x5x12xf32>, tensor<12x8xf32>, tensor<12x8xf32>, tensor<8xf32>) -> tensor<2x5x16xf32>
  return
}

// -----

// W maps the target features (12) to E = 8.
func.func @attention_target_weights_wrong_shape(%src: tensor<2x6x16xf32>, %tgt: tensor<2x5x12xf32>, %u: tensor<16x8xf32>, %w: tensor<12x4xf32>, %v: tensor<8xf32>) {
  // expected-error@+1 {{'moe.attention' op expects target weights of shape 12x8 ([d_y, E]) but got 12x4}}
  %ctx = moe.attention %src, %tgt weights(%u, %w, %v) : (tensor<2x6x16xf32>, tensor<2x5x12xf32>, tensor<16x8xf32>, tensor<12x4xf32>, tensor<8xf32>) -> tensor<2x5x16xf32>
  return
}

// -----

// The context is one source-sized vector per target position.
func.func @attention_context_wrong_shape(%src: tensor<2x6x16xf32>, %tgt: tensor<2x5x12xf32>, %u: tensor<16x8xf32>, %w: tensor<12x8xf32>, %v: tensor<8xf32>) {
  // expected-error@+1 {{'moe.attention' op expects context of shape 2x5x16 ([batch, S_y, d_x]) but got 2x6x16}}
  %ctx = moe.attention %src, %tgt weights(%u, %w, %v) : (tensor<2x6x16xf32>, tensor<2x5x12xf32>, tensor<16x8xf32>, tensor<12x8xf32>, tensor<8xf32>) -> tensor<2x6x16xf32>
  return
}

//===----------------------------------------------------------------------===//
// moe.softmax_cross_entropy, moe.total_loss
//===----------------------------------------------------------------------===//

// -----

// Hidden states are [..., d] with at least one token dimension.
func.func @softmax_ce_hidden_rank_1(%h: tensor<16xf32>, %t: tensor<i32>, %w: tensor<100x16xf32>, %b: tensor<100xf32>) {
  // expected-error@+1 {{'moe.softmax_cross_entropy' op expects hidden states of rank >= 2 ([..., d]) but got shape 16}}
  %l = moe.softmax_cross_entropy %h, %t weights(%w, %b) : (tensor<16xf32>, tensor<i32>, tensor<100x16xf32>, tensor<100xf32>) -> tensor<f32>
  return
}

// -----

// One target per token: [4, 5] for hidden states [4, 5, 16].
func.func @softmax_ce_targets_wrong_shape(%h: tensor<4x5x16xf32>, %t: tensor<20xi32>, %w: tensor<100x16xf32>, %b: tensor<100xf32>) {
  // expected-error@+1 {{'moe.softmax_cross_entropy' op expects targets of shape 4x5 (hidden states' shape without d) but got 20}}
  %l = moe.softmax_cross_entropy %h, %t weights(%w, %b) : (tensor<4x5x16xf32>, tensor<20xi32>, tensor<100x16xf32>, tensor<100xf32>) -> tensor<f32>
  return
}

// -----

// Output weights are [vocab, d], the transpose of a linear layer's.
func.func @softmax_ce_weights_transposed(%h: tensor<4x5x16xf32>, %t: tensor<4x5xi32>, %w: tensor<16x100xf32>, %b: tensor<100xf32>) {
  // expected-error@+1 {{'moe.softmax_cross_entropy' op expects output weights of shape Vx16 ([vocab, d]) but got 16x100}}
  %l = moe.softmax_cross_entropy %h, %t weights(%w, %b) : (tensor<4x5x16xf32>, tensor<4x5xi32>, tensor<16x100xf32>, tensor<100xf32>) -> tensor<f32>
  return
}

// -----

// One bias per vocabulary entry.
func.func @softmax_ce_bias_wrong_shape(%h: tensor<4x5x16xf32>, %t: tensor<4x5xi32>, %w: tensor<100x16xf32>, %b: tensor<16xf32>) {
  // expected-error@+1 {{'moe.softmax_cross_entropy' op expects bias of shape 100 ([vocab]) but got 16}}
  %l = moe.softmax_cross_entropy %h, %t weights(%w, %b) : (tensor<4x5x16xf32>, tensor<4x5xi32>, tensor<100x16xf32>, tensor<16xf32>) -> tensor<f32>
  return
}

// -----

// Sampling the whole vocabulary is the full softmax; drop num_samples.
func.func @softmax_ce_num_samples_vocab(%h: tensor<4x5x16xf32>, %t: tensor<4x5xi32>, %w: tensor<100x16xf32>, %b: tensor<100xf32>) {
  // expected-error@+1 {{'moe.softmax_cross_entropy' op num_samples = 100 must be smaller than the vocabulary (100)}}
  %l = moe.softmax_cross_entropy %h, %t weights(%w, %b) {num_samples = 100 : i64} : (tensor<4x5x16xf32>, tensor<4x5xi32>, tensor<100x16xf32>, tensor<100xf32>) -> tensor<f32>
  return
}

// -----

// The divisor of a data-parallel rank's part is one integer count.
func.func @softmax_ce_target_count_float(%h: tensor<4x5x16xf32>, %t: tensor<4x5xi32>, %w: tensor<100x16xf32>, %b: tensor<100xf32>, %n: tensor<f32>) {
  // expected-error@+1 {{'moe.softmax_cross_entropy' op operand #4 must be 0D tensor of 32-bit signless integer values, but got 'tensor<f32>'}}
  %l = moe.softmax_cross_entropy %h, %t weights(%w, %b) target_count(%n) : (tensor<4x5x16xf32>, tensor<4x5xi32>, tensor<100x16xf32>, tensor<100xf32>, tensor<f32>) -> tensor<f32>
  return
}

// -----

// Targets are integer ids (-1 for padding), not probabilities.
func.func @count_targets_float(%t: tensor<4x5xf32>) {
  // expected-error@+1 {{'moe.count_targets' op operand #0 must be statically shaped tensor of 32-bit signless integer values, but got 'tensor<4x5xf32>'}}
  %n = moe.count_targets %t : (tensor<4x5xf32>) -> tensor<i32>
  return
}

// -----

// A count is one number.
func.func @count_targets_per_row(%t: tensor<4x5xi32>) {
  // expected-error@+1 {{'moe.count_targets' op result #0 must be 0D tensor of 32-bit signless integer values, but got 'tensor<4xi32>'}}
  %n = moe.count_targets %t : (tensor<4x5xi32>) -> tensor<4xi32>
  return
}

// -----

// A sum of nothing is not a training loss.
func.func @total_loss_no_terms() {
  // expected-error@+1 {{'moe.total_loss' op expected 1 or more operands, but found 0}}
  %l = moe.total_loss : tensor<f32>
  return
}

// -----

// Loss terms are scalars.
func.func @total_loss_vector_term(%a: tensor<4xf32>) {
  // expected-error@+1 {{'moe.total_loss' op operand #0 must be variadic of 0D tensor of 32-bit float values, but got 'tensor<4xf32>'}}
  %l = moe.total_loss %a : tensor<4xf32>
  return
}

//===----------------------------------------------------------------------===//
// Attributes
//===----------------------------------------------------------------------===//

// -----

// An ffn expert needs its hidden width.
func.func private @ffn_expert_without_hidden() attributes {
  // expected-error@+1 {{ffn experts need a positive hidden width, e.g. #moe.expert<ffn, hidden = 2048>}}
  e = #moe.expert<ffn>}

// -----

// A linear expert is a single matrix: no hidden layer.
func.func private @linear_expert_with_hidden() attributes {
  // expected-error@+1 {{linear experts have no hidden layer; remove 'hidden = 64'}}
  e = #moe.expert<linear, hidden = 64>}

// -----

// A linear expert has no non-linearity (paper 5.1).
func.func private @linear_expert_with_act() attributes {
  // expected-error@+1 {{linear experts have no activation; remove 'act'}}
  e = #moe.expert<linear, act = tanh>}

// -----

// Loss weights scale a penalty; a negative one would reward imbalance.
func.func private @negative_loss_weight() attributes {
  // expected-error@+1 {{loss weight 'load' must be non-negative, got -0.1}}
  l = #moe.losses<importance = 0.1, load = -0.1>}

// -----

// Normal, uniform and glorot initializers scale random values.
func.func private @init_non_positive_scale() attributes {
  // expected-error@+1 {{uniform initialization needs a positive scale, got 0}}
  i = #moe.init<uniform, scale = 0.0>}

// -----

// A negative glorot gain is as wrong as a zero one.
func.func private @glorot_negative_scale() attributes {
  // expected-error@+1 {{glorot_uniform initialization needs a positive scale, got -1}}
  i = #moe.init<glorot_uniform, scale = -1.0>}

//===----------------------------------------------------------------------===//
// Argument attributes: moe.param, moe.init, moe.input
//===----------------------------------------------------------------------===//

// -----

// Parameters are trained in f32.
// expected-error@+1 {{argument #0: parameter 'w' must be a statically shaped f32 tensor, got 'tensor<4xf16>'}}
func.func private @param_not_f32(%w: tensor<4xf16> {moe.param = "w", moe.init = #moe.init<zeros>})

// -----

// Parameters need a static shape to be allocated and checkpointed.
// expected-error@+1 {{argument #0: parameter 'w' must be a statically shaped f32 tensor, got 'tensor<?xf32>'}}
func.func private @param_dynamic_shape(%w: tensor<?xf32> {moe.param = "w", moe.init = #moe.init<zeros>})

// -----

// A parameter name is a non-empty string.
// expected-error@+1 {{argument #0: 'moe.param' must be a non-empty string naming the parameter}}
func.func private @param_empty_name(%w: tensor<4xf32> {moe.param = "", moe.init = #moe.init<zeros>})

// -----

// Every parameter says how it is initialised.
// expected-error@+1 {{argument #0: parameter 'w' has no initializer: add moe.init = #moe.init<...>}}
func.func private @param_without_init(%w: tensor<4xf32> {moe.param = "w"})

// -----

// An initializer without a parameter name initialises nothing.
// expected-error@+1 {{argument #0: 'moe.init' given without 'moe.param' naming the parameter}}
func.func private @init_without_param(%w: tensor<4xf32> {moe.init = #moe.init<zeros>})

// -----

// moe.init holds an #moe.init attribute, not a word.
// expected-error@+1 {{argument #0: 'moe.init' must be an #moe.init<...> attribute}}
func.func private @init_not_init_attr(%w: tensor<4xf32> {moe.param = "w", moe.init = "zeros"})

// -----

// Parameter names key checkpoints, so they are unique.
// expected-error@+1 {{argument #1: parameter name 'w' is already used by argument #0}}
func.func private @duplicate_param_name(%a: tensor<4xf32> {moe.param = "w", moe.init = #moe.init<zeros>}, %b: tensor<4xf32> {moe.param = "w", moe.init = #moe.init<zeros>})

// -----

// An argument is fed either by the optimizer or by the data pipeline.
// expected-error@+1 {{argument #0: an argument is either a parameter or a data input, not both}}
func.func private @input_on_param(%w: tensor<4xf32> {moe.param = "w", moe.init = #moe.init<zeros>, moe.input = "tokens"})

// -----

// A data input is named.
// expected-error@+1 {{argument #0: 'moe.input' must be a non-empty string naming the data input}}
func.func private @input_not_string(%ids: tensor<4xi32> {moe.input = 1 : i32})

// -----

// Misspelt moe.* attributes are errors, not silently ignored.
// expected-error@+1 {{argument #0: unknown argument attribute 'moe.params'; expected moe.param, moe.init, moe.input or moe.state}}
func.func private @unknown_moe_arg_attr(%w: tensor<4xf32> {moe.params = "w"})

// -----

// Data inputs are token ids or targets, which are i32.
// expected-error@+1 {{argument #0: data input 'tokens' must be a statically shaped i32 tensor of ids, got 'tensor<4x5xf32>'}}
func.func private @input_not_i32(%ids: tensor<4x5xf32> {moe.input = "tokens"})

// -----

// Training state is named, like parameters, so checkpoints can store it.
// expected-error@+1 {{argument #0: 'moe.state' must be a non-empty string naming the training state}}
func.func @state_without_name(%m: tensor<4xf32> {moe.state = ""}) {
  return
}

// -----

//===----------------------------------------------------------------------===//
// Tensor sizes: every size the compiler and the runtime multiply fits int64
//===----------------------------------------------------------------------===//

// 2^62 x 5 elements wrap int64: the planner would compute a tiny arena.
func.func @elements_overflow(%x: tensor<4611686018427387904x5xf32>) {
  // expected-error@+1 {{'moe.scale' op operand #0 of type 'tensor<4611686018427387904x5xf32>' has 2^63 or more elements}}
  %y = moe.scale %x {factor = 2.0 : f32} : tensor<4611686018427387904x5xf32>
  return
}

// -----

// 2^61 f32 elements fit, their 2^66 bits do not.
func.func @bytes_overflow(%x: tensor<2305843009213693952xf32>) {
  // expected-error@+1 {{'moe.add' op operand #0 of type 'tensor<2305843009213693952xf32>' has 2^60 or more bytes}}
  %y = moe.add %x, %x : tensor<2305843009213693952xf32>
  return
}

// -----

// Parameters are sized by the runtime even when no op reads them: a 2^62-word
// vocabulary is refused at its argument.
// expected-error@+1 {{argument #0: parameter 'embedding' of type 'tensor<4611686018427387904x64xf32>' has 2^60 or more bytes}}
func.func private @huge_vocabulary(%table: tensor<4611686018427387904x64xf32> {moe.param = "embedding", moe.init = #moe.init<zeros>})

// -----

// expected-error@+1 {{argument #0: data input 'tokens' of type 'tensor<4611686018427387904x4xi32>' has 2^60 or more bytes}}
func.func private @huge_input(%ids: tensor<4611686018427387904x4xi32> {moe.input = "tokens"})

// -----

//===----------------------------------------------------------------------===//
// Vocabularies and data inputs
//===----------------------------------------------------------------------===//

// An embedding of no words has nothing to look up.
func.func @embedding_no_rows(%table: tensor<0x16xf32>, %ids: tensor<4x5xi32>) {
  // expected-error@+1 {{'moe.embedding' op expects a table with at least one row (a vocabulary of at least one word) but got 0}}
  %e = moe.embedding %table[%ids] : (tensor<0x16xf32>, tensor<4x5xi32>) -> tensor<4x5x16xf32>
  return
}

// -----

// i32 ids reach row 2^31 - 1 at most.
func.func @embedding_vocabulary_beyond_i32(%table: tensor<2147483649x1xf32>, %ids: tensor<4x5xi32>) {
  // expected-error@+1 {{'moe.embedding' op expects a table of at most 2^31 rows, as many as i32 ids can index, but got 2147483649}}
  %e = moe.embedding %table[%ids] : (tensor<2147483649x1xf32>, tensor<4x5xi32>) -> tensor<4x5x1xf32>
  return
}

// -----

func.func @softmax_vocabulary_beyond_i32(%h: tensor<4x5x1xf32>, %t: tensor<4x5xi32>, %w: tensor<2147483649x1xf32>, %b: tensor<2147483649xf32>) {
  // expected-error@+1 {{'moe.softmax_cross_entropy' op expects output weights of at most 2^31 rows, as many as i32 ids can index, but got 2147483649}}
  %l = moe.softmax_cross_entropy %h, %t weights(%w, %b) : (tensor<4x5x1xf32>, tensor<4x5xi32>, tensor<2147483649x1xf32>, tensor<2147483649xf32>) -> tensor<f32>
  return
}

// -----

func.func @softmax_no_classes(%h: tensor<4x5x8xf32>, %t: tensor<4x5xi32>, %w: tensor<0x8xf32>, %b: tensor<0xf32>) {
  // expected-error@+1 {{'moe.softmax_cross_entropy' op expects output weights with at least one row (a vocabulary of at least one word) but got 0}}
  %l = moe.softmax_cross_entropy %h, %t weights(%w, %b) : (tensor<4x5x8xf32>, tensor<4x5xi32>, tensor<0x8xf32>, tensor<0xf32>) -> tensor<f32>
  return
}

// -----

// The driver feeds data inputs by name: two with one name are ambiguous.
// expected-error@+1 {{argument #1: data input name 'tokens' is already used by argument #0}}
func.func private @duplicate_input(%a: tensor<4x5xi32> {moe.input = "tokens"}, %b: tensor<4x5xi32> {moe.input = "tokens"})

// -----

// A misspelt or made-up attribute is an error, not silently ignored.
func.func @unknown_layer_attribute(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %we: tensor<4x32x32xf32>) {
  // expected-error@+1 {{'moe.moe_layer' op has unknown attribute 'bogus' (known: expert, gating, k, losses, num_experts, output_act; other dialects' attributes are named dialect.name)}}
  %y, %aux = moe.moe_layer %x gate(%wg) experts(%we) {num_experts = 4 : i64, k = 2 : i64, gating = #moe.gating<top_k>, expert = #moe.expert<linear>, bogus = 1} : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<4x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

// -----

// Dialect-prefixed annotations (moe.offsets, other dialects') are kept.
func.func @unknown_attribute_without_any(%x: tensor<4xf32>) {
  // expected-error@+1 {{'moe.add' op has unknown attribute 'factor' (it has none;}}
  %y = moe.add %x, %x {factor = 2.0 : f32, moe.offsets = array<i64: 0>, test.note = 1} : tensor<4xf32>
  return
}

// -----

// Lengths say which positions of [batch, time, d] are padding: a rank-2
// input has no time.
func.func @moe_lengths_rank_2(%x: tensor<6x8xf32>, %wg: tensor<8x4xf32>, %wn: tensor<8x4xf32>, %len: tensor<2xi32>, %we: tensor<4x8x8xf32>) {
  // expected-error@+1 {{'moe.moe_layer' op lengths need an input of rank 3 ([batch, time, d]) to say which positions are padding, got shape 6x8}}
  %y, %aux = moe.moe_layer %x gate(%wg, noise %wn) lengths(%len) experts(%we) {num_experts = 4 : i64, k = 2 : i64, gating = #moe.gating<noisy_top_k>, expert = #moe.expert<linear>} : (tensor<6x8xf32>, tensor<8x4xf32>, tensor<8x4xf32>, tensor<2xi32>, tensor<4x8x8xf32>) -> (tensor<6x8xf32>, tensor<f32>)
  return
}

// -----

func.func @moe_lengths_wrong_shape(%x: tensor<2x3x8xf32>, %wg: tensor<8x4xf32>, %wn: tensor<8x4xf32>, %len: tensor<3xi32>, %we: tensor<4x8x8xf32>) {
  // expected-error@+1 {{'moe.moe_layer' op expects lengths of shape 2 ([batch]) but got 3}}
  %y, %aux = moe.moe_layer %x gate(%wg, noise %wn) lengths(%len) experts(%we) {num_experts = 4 : i64, k = 2 : i64, gating = #moe.gating<noisy_top_k>, expert = #moe.expert<linear>} : (tensor<2x3x8xf32>, tensor<8x4xf32>, tensor<8x4xf32>, tensor<3xi32>, tensor<4x8x8xf32>) -> (tensor<2x3x8xf32>, tensor<f32>)
  return
}

// -----

// A batchwise mask keeps m tokens per expert whatever the padding.
func.func @moe_lengths_batchwise(%x: tensor<2x4x8xf32>, %wg: tensor<8x4xf32>, %t: tensor<4xf32>, %len: tensor<2xi32>, %we: tensor<4x8x8xf32>) {
  // expected-error@+1 {{'moe.moe_layer' op lengths work with softmax, top_k and noisy_top_k gating, not batchwise: its masks keep a fixed number of tokens per expert, which padding would make data-dependent}}
  %y, %aux = moe.moe_layer %x gate(%wg) thresholds(%t) lengths(%len) experts(%we) {num_experts = 4 : i64, k = 2 : i64, gating = #moe.gating<batchwise>, expert = #moe.expert<linear>} : (tensor<2x4x8xf32>, tensor<8x4xf32>, tensor<4xf32>, tensor<2xi32>, tensor<4x8x8xf32>) -> (tensor<2x4x8xf32>, tensor<f32>)
  return
}

// -----

func.func @moe_lengths_threshold(%x: tensor<2x4x8xf32>, %wg: tensor<8x4xf32>, %t: tensor<4xf32>, %len: tensor<2xi32>, %we: tensor<4x8x8xf32>) {
  // expected-error@+1 {{'moe.moe_layer' op lengths work with softmax, top_k and noisy_top_k gating, not threshold}}
  %y, %aux = moe.moe_layer %x gate(%wg) thresholds(%t) lengths(%len) experts(%we) {num_experts = 4 : i64, gating = #moe.gating<threshold>, expert = #moe.expert<linear>} : (tensor<2x4x8xf32>, tensor<8x4xf32>, tensor<4xf32>, tensor<2xi32>, tensor<4x8x8xf32>) -> (tensor<2x4x8xf32>, tensor<f32>)
  return
}

// -----

// Eq. 5 divides by the number of tokens, which padding makes data-dependent.
func.func @moe_lengths_l2_balance(%x: tensor<2x3x8xf32>, %wg: tensor<8x4xf32>, %len: tensor<2xi32>, %we: tensor<4x8x8xf32>) {
  // expected-error@+1 {{'moe.moe_layer' op the l2_balance loss (Eq. 5) divides by the number of tokens, which lengths make data-dependent; use the importance loss}}
  %y, %aux = moe.moe_layer %x gate(%wg) lengths(%len) experts(%we) {num_experts = 4 : i64, k = 2 : i64, gating = #moe.gating<top_k>, expert = #moe.expert<linear>, losses = #moe.losses<l2_balance = 0.1>} : (tensor<2x3x8xf32>, tensor<8x4xf32>, tensor<2xi32>, tensor<4x8x8xf32>) -> (tensor<2x3x8xf32>, tensor<f32>)
  return
}
