// RUN: moe-opt %s -split-input-file -verify-diagnostics

// Parse errors in moe attributes and op syntax: each must point at the
// offending token and say what was expected.

// Gating kinds are a closed set of words.
func.func private @unknown_gating_kind() attributes {
  // expected-error@+2 {{to be one of: softmax, top_k, noisy_top_k, batchwise, threshold}}
  // expected-error@+1 {{failed to parse MoE_GatingAttr parameter 'value'}}
  g = #moe.gating<sparse>}

// -----

// Expert kinds are linear or ffn.
func.func private @unknown_expert_kind() attributes {
  // expected-error@+2 {{to be one of: linear, ffn}}
  // expected-error@+1 {{failed to parse MoE_ExpertAttr parameter 'kind'}}
  e = #moe.expert<conv>}

// -----

// Expert parameters follow the kind after a comma.
func.func private @expert_missing_comma() attributes {
  // expected-error@+1 {{expected '>'}}
  e = #moe.expert<ffn hidden = 64>}

// -----

// The hidden width is an integer.
func.func private @expert_fractional_hidden() attributes {
  // expected-error@+2 {{expected integer value}}
  // expected-error@+1 {{failed to parse MoE_ExpertAttr parameter 'hidden'}}
  e = #moe.expert<ffn, hidden = 6.5>}

// -----

// Only hidden and act are expert parameters.
func.func private @expert_unknown_parameter() attributes {
  // expected-error@+1 {{duplicate or unknown struct parameter name: width}}
  e = #moe.expert<ffn, width = 64>}

// -----

// The hidden activation is one of the moe activations.
func.func private @expert_unknown_act() attributes {
  // expected-error@+2 {{invalid element-wise activation specification: gelu}}
  // expected-error@+1 {{failed to parse MoE_ExpertAttr parameter 'act'}}
  e = #moe.expert<ffn, hidden = 64, act = gelu>}

// -----

// #moe.activation takes the same words.
func.func private @unknown_activation() attributes {
  // expected-error@+2 {{to be one of: none, relu, sigmoid, tanh}}
  // expected-error@+1 {{failed to parse MoE_ActivationAttr parameter 'value'}}
  a = #moe.activation<gelu>}

// -----

// Loss weights are named importance, load, l2_balance, batchwise_threshold.
func.func private @unknown_loss_name() attributes {
  // expected-error@+1 {{duplicate or unknown struct parameter name: balance}}
  l = #moe.losses<balance = 0.1>}

// -----

// Each loss weight is given once.
func.func private @duplicate_loss_weight() attributes {
  // expected-error@+1 {{duplicate or unknown struct parameter name: load}}
  l = #moe.losses<load = 0.1, load = 0.2>}

// -----

// Initializer kinds are a closed set of words.
func.func private @unknown_init_kind() attributes {
  // expected-error@+2 {{to be one of: zeros, constant, normal, uniform, glorot_uniform}}
  // expected-error@+1 {{failed to parse MoE_InitAttr parameter 'kind'}}
  i = #moe.init<xavier>}

// -----

// Scales are floating-point literals.
func.func private @init_integer_scale() attributes {
  // expected-error@+3 {{unexpected decimal integer literal for a floating point value}}
  // expected-note@+2 {{add a trailing dot to make the literal a float}}
  // expected-error@+1 {{failed to parse MoE_InitAttr parameter 'scale'}}
  i = #moe.init<normal, scale = 1>}

// -----

// The dialect has no attribute named foo.
func.func private @unknown_moe_attribute() attributes {
  // expected-error@+1 {{unknown attribute `foo` in dialect `moe`}}
  f = #moe.foo<1>}

// -----

// Inside primary(...) and secondary(...) only `noise` and `thresholds` may
// follow the gate weights.
func.func @hierarchical_unknown_gate_operand(%x: tensor<16x32xf32>, %pg: tensor<32x4xf32>, %pn: tensor<32x4xf32>, %sg: tensor<4x32x2xf32>, %we: tensor<8x32x32xf32>) {
  // expected-error@+1 {{expected 'noise' or 'thresholds' after ','}}
  %y, %aux = moe.hierarchical_moe_layer %x primary(%pg, bias %pn) secondary(%sg) experts(%we) {num_experts = 8 : i64, groups = 4 : i64, k_primary = 2 : i64, k_secondary = 1 : i64, gating = #moe.gating<top_k>, expert = #moe.expert<linear>} : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<32x4xf32>, tensor<4x32x2xf32>, tensor<8x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

// -----

// After the noise weights only thresholds may follow.
func.func @hierarchical_noise_twice(%x: tensor<16x32xf32>, %pg: tensor<32x4xf32>, %pn: tensor<32x4xf32>, %sg: tensor<4x32x2xf32>, %we: tensor<8x32x32xf32>) {
  // expected-error@+1 {{expected 'thresholds' after ','}}
  %y, %aux = moe.hierarchical_moe_layer %x primary(%pg, noise %pn, noise %pn) secondary(%sg) experts(%we) {num_experts = 8 : i64, groups = 4 : i64, k_primary = 2 : i64, k_secondary = 1 : i64, gating = #moe.gating<noisy_top_k>, expert = #moe.expert<linear>} : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<32x4xf32>, tensor<32x4xf32>, tensor<4x32x2xf32>, tensor<8x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

// -----

// The canonical order is noise, then thresholds.
func.func @hierarchical_thresholds_before_noise(%x: tensor<16x32xf32>, %pg: tensor<32x4xf32>, %pn: tensor<32x4xf32>, %pt: tensor<4xf32>, %sg: tensor<4x32x2xf32>, %we: tensor<8x32x32xf32>) {
  // expected-error@+1 {{expected ')'}}
  %y, %aux = moe.hierarchical_moe_layer %x primary(%pg, thresholds %pt, noise %pn) secondary(%sg) experts(%we) {num_experts = 8 : i64, groups = 4 : i64, gating = #moe.gating<threshold>, expert = #moe.expert<linear>} : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<4xf32>, tensor<32x4xf32>, tensor<4x32x2xf32>, tensor<8x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

// -----

// In the flat layer thresholds get their own group, thresholds(%t), after
// gate(...); inside gate(...) only noise may follow the gate weights.
func.func @flat_thresholds_inside_gate(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %t: tensor<4xf32>, %we: tensor<4x32x32xf32>) {
  // expected-error@+1 {{expected 'noise'}}
  %y, %aux = moe.moe_layer %x gate(%wg, thresholds %t) experts(%we) {num_experts = 4 : i64, gating = #moe.gating<threshold>, expert = #moe.expert<linear>} : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<4xf32>, tensor<4x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

// -----

// Every layer lists its expert weights.
func.func @flat_missing_experts(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>) {
  // expected-error@+1 {{expected 'experts'}}
  %y, %aux = moe.moe_layer %x gate(%wg) {num_experts = 4 : i64, gating = #moe.gating<softmax>, expert = #moe.expert<linear>} : (tensor<16x32xf32>, tensor<32x4xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}

// -----

// The gating attribute is an #moe.gating, not its integer value.
func.func @gating_as_integer(%x: tensor<16x32xf32>, %wg: tensor<32x4xf32>, %we: tensor<4x32x32xf32>) {
  // expected-error@+1 {{attribute 'gating' failed to satisfy constraint: how the gate picks experts}}
  %y, %aux = moe.moe_layer %x gate(%wg) experts(%we) {num_experts = 4 : i64, gating = 0 : i32, expert = #moe.expert<linear>} : (tensor<16x32xf32>, tensor<32x4xf32>, tensor<4x32x32xf32>) -> (tensor<16x32xf32>, tensor<f32>)
  return
}
