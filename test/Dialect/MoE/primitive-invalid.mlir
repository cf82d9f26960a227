// RUN: moe-opt %s -split-input-file -verify-diagnostics

// The inner dimensions of a matrix product must agree.
func.func @matmul_inner_mismatch(%a: tensor<4x8xf32>, %b: tensor<7x3xf32>) {
  // expected-error@+1 {{contracts lhs 4x8 with rhs 7x3: inner dimensions 8 and 7 differ}}
  %c = moe.matmul %a, %b : (tensor<4x8xf32>, tensor<7x3xf32>) -> tensor<4x3xf32>
  return
}

// -----

// With transpose_rhs the rhs is [N, K].
func.func @matmul_transposed_result(%a: tensor<4x8xf32>, %b: tensor<3x8xf32>) {
  // expected-error@+1 {{expects result of shape 4x3 ([M, N]) but got 4x8}}
  %c = moe.matmul %a, %b {transpose_rhs} : (tensor<4x8xf32>, tensor<3x8xf32>) -> tensor<4x8xf32>
  return
}

// -----

// The bias spans the last dimension.
func.func @bias_wrong_length(%x: tensor<4x8xf32>, %b: tensor<4xf32>) {
  // expected-error@+1 {{expects bias of shape 8 ([last input dimension]) but got 4}}
  %y = moe.bias_add %x, %b : (tensor<4x8xf32>, tensor<4xf32>) -> tensor<4x8xf32>
  return
}

// -----

// An activation of kind none is an identity and must not be emitted.
func.func @activate_none(%x: tensor<4xf32>) {
  // expected-error@+1 {{needs an activation other than none}}
  %y = moe.activate %x {act = #moe.activation<none>} : tensor<4xf32>
  return
}

// -----

// The transposed lhs contributes its rows as the inner dimension.
func.func @matmul_transposed_lhs(%a: tensor<8x4xf32>, %b: tensor<7x3xf32>) {
  // expected-error@+1 {{contracts lhs 8x4 (transposed) with rhs 7x3: inner dimensions 8 and 7 differ}}
  %c = moe.matmul %a, %b {transpose_lhs} : (tensor<8x4xf32>, tensor<7x3xf32>) -> tensor<4x3xf32>
  return
}

// -----

// A bias gradient sums rows down to the last dimension.
func.func @sum_rows_shape(%x: tensor<4x8xf32>) {
  // expected-error@+1 {{expects output of shape 8 ([last input dimension]) but got 4}}
  %y = moe.sum_rows %x : (tensor<4x8xf32>) -> tensor<4xf32>
  return
}

// -----

// Cannot keep more experts than exist.
func.func @top_k_exceeds(%c: tensor<4x3xf32>) {
  // expected-error@+1 {{k = 4 exceeds the 3 experts}}
  %e, %g, %h, %s, %t = moe.noisy_top_k %c {k = 4 : i64} : (tensor<4x3xf32>) -> (tensor<4x4xi32>, tensor<4x4xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x5xf32>)
  return
}

// -----

// top_values holds k + 1 values per token for the load estimate.
func.func @top_values_width(%c: tensor<4x3xf32>) {
  // expected-error@+1 {{expects top_values of shape 4x3 ([T, k + 1]) but got 4x2}}
  %e, %g, %h, %s, %t = moe.noisy_top_k %c {k = 2 : i64} : (tensor<4x3xf32>) -> (tensor<4x2xi32>, tensor<4x2xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x2xf32>)
  return
}

// -----

// Noise logits are per (token, expert) like the clean logits.
func.func @noise_shape(%c: tensor<4x3xf32>, %n: tensor<4x2xf32>) {
  // expected-error@+1 {{expects noise logits of shape 4x3 (the clean logits' shape) but got 4x2}}
  %e, %g, %h, %s, %t = moe.noisy_top_k %c, noise %n {k = 1 : i64} : (tensor<4x3xf32>, tensor<4x2xf32>) -> (tensor<4x1xi32>, tensor<4x1xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x2xf32>)
  return
}

// -----

// Noise drawn by position needs noise, and one position per row.
func.func @noise_position_without_noise(%c: tensor<4x3xf32>, %p: tensor<4xi32>) {
  // expected-error@+1 {{has a noise_position but no noise logits: plain top-k draws no noise}}
  %e, %g, %h, %s, %t = moe.noisy_top_k %c noise_position %p {k = 1 : i64} : (tensor<4x3xf32>, tensor<4xi32>) -> (tensor<4x1xi32>, tensor<4x1xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x2xf32>)
  return
}

// -----

func.func @noise_position_shape(%c: tensor<4x3xf32>, %p: tensor<5xi32>) {
  // expected-error@+1 {{expects noise_position of shape 4 ([T]) but got 5}}
  %e, %g, %h, %s, %t = moe.noisy_top_k %c, noise %c noise_position %p {k = 1 : i64} : (tensor<4x3xf32>, tensor<4x3xf32>, tensor<5xi32>) -> (tensor<4x1xi32>, tensor<4x1xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x2xf32>)
  return
}

// -----

// The load has one entry per expert.
func.func @load_shape(%c: tensor<4x3xf32>, %t: tensor<4x3xf32>) {
  // expected-error@+1 {{expects load of shape 3 ([n]) but got 4}}
  %l = moe.load_estimate %c, noise %c, %c, %c, %t {k = 2 : i64} : (tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>) -> tensor<4xf32>
  return
}

// -----

// A batchwise mask cannot keep more tokens per expert than the batch has.
func.func @batchwise_m_exceeds(%l: tensor<4x2xf32>) {
  // expected-error@+1 {{m = 5 exceeds the 4 tokens}}
  %m, %r, %e, %g = moe.batchwise_mask %l {m = 5 : i64} : (tensor<4x2xf32>) -> (tensor<4x2xf32>, tensor<5xi32>, tensor<10xi32>, tensor<10xf32>)
  return
}

// -----

// Batchwise routing makes exactly n * m assignments.
func.func @batchwise_assignments(%l: tensor<4x2xf32>) {
  // expected-error@+1 {{expects expert of shape 4 ([n * m]) but got 3}}
  %m, %r, %e, %g = moe.batchwise_mask %l {m = 2 : i64} : (tensor<4x2xf32>) -> (tensor<4x2xf32>, tensor<5xi32>, tensor<3xi32>, tensor<4xf32>)
  return
}

// -----

// Thresholds are per expert.
func.func @threshold_loss_shape(%l: tensor<4x2xf32>, %t: tensor<4xf32>) {
  // expected-error@+1 {{expects thresholds of shape 2 ([n]) but got 4}}
  %x = moe.batchwise_threshold_loss %l, %l, %t : (tensor<4x2xf32>, tensor<4x2xf32>, tensor<4xf32>) -> tensor<f32>
  return
}

// -----

// One gate per assignment.
func.func @importance_gate_count(%e: tensor<6xi32>, %g: tensor<5xf32>) {
  // expected-error@+1 {{expects gate of shape 6 (one gate per assignment) but got 5}}
  %i = moe.importance %e, %g {num_experts = 3 : i64} : (tensor<6xi32>, tensor<5xf32>) -> tensor<3xf32>
  return
}

// -----

// Without a row pointer the assignments must split evenly among tokens.
func.func @plan_uneven(%e: tensor<7xi32>) {
  // expected-error@+1 {{without row_ptr every token needs the same number of assignments, but 7 assignments do not divide among 3 tokens}}
  %o, %p, %t = moe.dispatch_plan %e {num_experts = 2 : i64, tokens = 3 : i64} : (tensor<7xi32>) -> (tensor<3xi32>, tensor<7xi32>, tensor<7xi32>)
  return
}

// -----

// Segment offsets have one entry per expert plus the end.
func.func @plan_offsets(%e: tensor<6xi32>) {
  // expected-error@+1 {{expects expert_offset of shape 3 ([num_experts + 1]) but got 2}}
  %o, %p, %t = moe.dispatch_plan %e {num_experts = 2 : i64, tokens = 3 : i64} : (tensor<6xi32>) -> (tensor<2xi32>, tensor<6xi32>, tensor<6xi32>)
  return
}

// -----

// The row pointer has tokens + 1 entries.
func.func @plan_row_ptr(%e: tensor<6xi32>, %r: tensor<3xi32>) {
  // expected-error@+1 {{expects row_ptr of shape 4 ([tokens + 1]) but got 3}}
  %o, %p, %t = moe.dispatch_plan %e rows %r {num_experts = 2 : i64, tokens = 3 : i64} : (tensor<6xi32>, tensor<3xi32>) -> (tensor<3xi32>, tensor<6xi32>, tensor<6xi32>)
  return
}

// -----

// The gates, when given, are one per assignment.
func.func @plan_gates(%e: tensor<6xi32>, %g: tensor<5xf32>) {
  // expected-error@+1 {{expects gate of shape 6 ([A]) but got 5}}
  %o, %p, %t = moe.dispatch_plan %e gates %g {num_experts = 2 : i64, tokens = 3 : i64} : (tensor<6xi32>, tensor<5xf32>) -> (tensor<3xi32>, tensor<6xi32>, tensor<6xi32>)
  return
}

// -----

// The dispatch buffer has one row per assignment.
func.func @dispatch_rows(%x: tensor<3x4xf32>, %t: tensor<6xi32>) {
  // expected-error@+1 {{expects buffer of shape 6x4 ([A, d]) but got 3x4}}
  %b = moe.dispatch %x, %t : (tensor<3x4xf32>, tensor<6xi32>) -> tensor<3x4xf32>
  return
}

// -----

// One weight matrix per expert segment.
func.func @grouped_weights(%b: tensor<6x4xf32>, %w: tensor<3x4x4xf32>, %o: tensor<3xi32>) {
  // expected-error@+1 {{expects weights of shape 2x4xN ([experts, d_in, d_out]) but got 3x4x4}}
  %y = moe.grouped_matmul %b, %w, %o : (tensor<6x4xf32>, tensor<3x4x4xf32>, tensor<3xi32>) -> tensor<6x4xf32>
  return
}

// -----

// The output keeps the buffer rows and takes d_out columns.
func.func @grouped_output(%b: tensor<6x4xf32>, %w: tensor<2x4x5xf32>, %o: tensor<3xi32>) {
  // expected-error@+1 {{expects output of shape 6x5 ([A, d_out]) but got 6x4}}
  %y = moe.grouped_matmul %b, %w, %o : (tensor<6x4xf32>, tensor<2x4x5xf32>, tensor<3xi32>) -> tensor<6x4xf32>
  return
}

// -----

// Equal segments must tile the buffer: 4 experts of 2 rows are 8 rows.
func.func @grouped_rows_per_expert(%b: tensor<6x4xf32>, %w: tensor<4x4x4xf32>, %o: tensor<5xi32>) {
  // expected-error@+1 {{has rows_per_expert = 2 for 4 experts, but its buffer has 6 rows (expected rows_per_expert * experts)}}
  %y = moe.grouped_matmul %b, %w, %o {rows_per_expert = 2 : i64} : (tensor<6x4xf32>, tensor<4x4x4xf32>, tensor<5xi32>) -> tensor<6x4xf32>
  return
}

// -----

// A segment of no rows is not an equal-segment promise.
func.func @grouped_rows_per_expert_zero(%b: tensor<8x4xf32>, %w: tensor<4x4x4xf32>, %o: tensor<5xi32>) {
  // expected-error@+1 {{attribute 'rows_per_expert' failed to satisfy constraint}}
  %y = moe.grouped_matmul %b, %w, %o {rows_per_expert = 0 : i64} : (tensor<8x4xf32>, tensor<4x4x4xf32>, tensor<5xi32>) -> tensor<8x4xf32>
  return
}

// -----

// Gates and positions are per assignment.
func.func @combine_gates(%y: tensor<6x4xf32>, %g: tensor<5xf32>, %p: tensor<6xi32>) {
  // expected-error@+1 {{expects gate of shape 6 ([A]) but got 5}}
  %o = moe.combine %y, %g, %p {tokens = 3 : i64} : (tensor<6x4xf32>, tensor<5xf32>, tensor<6xi32>) -> tensor<3x4xf32>
  return
}

// -----

// Combine produces one row per token.
func.func @combine_output(%y: tensor<6x4xf32>, %g: tensor<6xf32>, %p: tensor<6xi32>) {
  // expected-error@+1 {{expects output of shape 3x4 ([tokens, d]) but got 6x4}}
  %o = moe.combine %y, %g, %p {tokens = 3 : i64} : (tensor<6x4xf32>, tensor<6xf32>, tensor<6xi32>) -> tensor<6x4xf32>
  return
}

// -----

// Same rule as the plan: without row_ptr assignments split evenly.
func.func @combine_uneven(%y: tensor<7x4xf32>, %g: tensor<7xf32>, %p: tensor<7xi32>) {
  // expected-error@+1 {{without row_ptr every token needs the same number of assignments, but 7 assignments do not divide among 3 tokens}}
  %o = moe.combine %y, %g, %p {tokens = 3 : i64} : (tensor<7x4xf32>, tensor<7xf32>, tensor<7xi32>) -> tensor<3x4xf32>
  return
}

// -----

// A learning rate schedule needs a positive peak rate.
func.func @lr_schedule_zero(%s: tensor<i64>) {
  // expected-error@+1 {{expects a positive base_lr}}
  %lr = moe.lr_schedule %s {base_lr = 0.0 : f32, warmup_steps = 1 : i64, constant_steps = 1 : i64} : (tensor<i64>) -> tensor<f32>
  return
}

// -----

// Warm-up and plateau lengths are step counts.
func.func @lr_schedule_negative(%s: tensor<i64>) {
  // expected-error@+1 {{expects non-negative warmup_steps and constant_steps}}
  %lr = moe.lr_schedule %s {base_lr = 1.0 : f32, warmup_steps = -1 : i64, constant_steps = 1 : i64} : (tensor<i64>) -> tensor<f32>
  return
}

// -----

// Adam's decay rates are in [0, 1).
func.func @adam_beta(%p: tensor<4xf32>, %lr: tensor<f32>, %s: tensor<i64>) {
  // expected-error@+1 {{expects beta1 and beta2 in [0, 1)}}
  %a:3 = moe.adam_update %p, %p, %p, %p, %lr, %s {beta1 = 1.0 : f32, beta2 = 0.999 : f32, eps = 1.0e-8 : f32, weight_decay = 0.0 : f32} : (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<f32>, tensor<i64>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>)
  return
}

// -----

// eps keeps the denominator away from zero.
func.func @adam_eps(%p: tensor<4xf32>, %lr: tensor<f32>, %s: tensor<i64>) {
  // expected-error@+1 {{expects a positive eps}}
  %a:3 = moe.adam_update %p, %p, %p, %p, %lr, %s {beta1 = 0.9 : f32, beta2 = 0.999 : f32, eps = 0.0 : f32, weight_decay = 0.0 : f32} : (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<f32>, tensor<i64>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>)
  return
}

// -----

// Weight decay shrinks weights; a negative one would grow them.
func.func @adam_decay(%p: tensor<4xf32>, %lr: tensor<f32>, %s: tensor<i64>) {
  // expected-error@+1 {{expects a non-negative weight_decay}}
  %a:3 = moe.adam_update %p, %p, %p, %p, %lr, %s {beta1 = 0.9 : f32, beta2 = 0.999 : f32, eps = 1.0e-8 : f32, weight_decay = -0.1 : f32} : (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<f32>, tensor<i64>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>)
  return
}

// -----

// The optimizer state has the parameter's type.
func.func @adam_state_type(%p: tensor<4xf32>, %m: tensor<3xf32>, %lr: tensor<f32>, %s: tensor<i64>) {
  // expected-error@+1 {{failed to verify that all of {param, grad, m, v, new_param, new_m, new_v} have same type}}
  %a:3 = moe.adam_update %p, %p, %m, %p, %lr, %s {beta1 = 0.9 : f32, beta2 = 0.999 : f32, eps = 1.0e-8 : f32, weight_decay = 0.0 : f32} : (tensor<4xf32>, tensor<4xf32>, tensor<3xf32>, tensor<4xf32>, tensor<f32>, tensor<i64>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>)
  return
}

// -----

// Threshold routing has a compiled capacity of at most every (token,
// expert) pair...
func.func @threshold_mask_capacity(%l: tensor<3x2xf32>, %t: tensor<2xf32>) {
  // expected-error@+1 {{expects expert of shape C, an assignment capacity with 1 <= C <= T * n = 6, but got 7}}
  %r, %e, %g = moe.threshold_mask %l, %t : (tensor<3x2xf32>, tensor<2xf32>) -> (tensor<4xi32>, tensor<7xi32>, tensor<7xf32>)
  return
}

// -----

// ... and at least one slot...
func.func @threshold_mask_no_capacity(%l: tensor<3x2xf32>, %t: tensor<2xf32>) {
  // expected-error@+1 {{expects expert of shape C, an assignment capacity with 1 <= C <= T * n = 6, but got 0}}
  %r, %e, %g = moe.threshold_mask %l, %t : (tensor<3x2xf32>, tensor<2xf32>) -> (tensor<4xi32>, tensor<0xi32>, tensor<0xf32>)
  return
}

// -----

// ... with a gate for every slot.
func.func @threshold_mask_gates(%l: tensor<3x2xf32>, %t: tensor<2xf32>) {
  // expected-error@+1 {{expects gate of shape 3 (the shape of expert, one gate per assignment slot) but got 6}}
  %r, %e, %g = moe.threshold_mask %l, %t : (tensor<3x2xf32>, tensor<2xf32>) -> (tensor<4xi32>, tensor<3xi32>, tensor<6xf32>)
  return
}

// -----

// One threshold per expert.
func.func @threshold_mask_thresholds(%l: tensor<3x2xf32>, %t: tensor<3xf32>) {
  // expected-error@+1 {{expects thresholds of shape 2 ([n]) but got 3}}
  %r, %e, %g = moe.threshold_mask %l, %t : (tensor<3x2xf32>, tensor<3xf32>) -> (tensor<4xi32>, tensor<6xi32>, tensor<6xf32>)
  return
}

// -----

// The fused router makes k assignments per token; its plan must hold them.
func.func @fused_route_plan(%x: tensor<6x8xf32>, %wg: tensor<8x4xf32>, %wn: tensor<8x4xf32>) {
  // expected-error@+1 {{expects position of shape 12 ([T * k]) but got 6}}
  %r:12 = moe.fused_route %x, %wg, %wn {k = 2 : i64} : (tensor<6x8xf32>, tensor<8x4xf32>, tensor<8x4xf32>) -> (tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x2xi32>, tensor<6x2xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x3xf32>, tensor<4xf32>, tensor<4xf32>, tensor<5xi32>, tensor<6xi32>, tensor<12xi32>)
  return
}

// -----

// Gate weights map the token width d to the experts.
func.func @fused_route_gate(%x: tensor<6x8xf32>, %wg: tensor<7x4xf32>, %wn: tensor<7x4xf32>) {
  // expected-error@+1 {{expects gate weights of shape 8xN ([d, num_experts]) but got 7x4}}
  %r:12 = moe.fused_route %x, %wg, %wn {k = 2 : i64} : (tensor<6x8xf32>, tensor<7x4xf32>, tensor<7x4xf32>) -> (tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x2xi32>, tensor<6x2xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x3xf32>, tensor<4xf32>, tensor<4xf32>, tensor<5xi32>, tensor<12xi32>, tensor<12xi32>)
  return
}

// -----

// Fusion cannot select more experts than exist.
func.func @fused_route_k(%x: tensor<6x8xf32>, %wg: tensor<8x4xf32>, %wn: tensor<8x4xf32>) {
  // expected-error@+1 {{k = 5 exceeds the 4 experts}}
  %r:12 = moe.fused_route %x, %wg, %wn {k = 5 : i64} : (tensor<6x8xf32>, tensor<8x4xf32>, tensor<8x4xf32>) -> (tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x5xi32>, tensor<6x5xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x6xf32>, tensor<4xf32>, tensor<4xf32>, tensor<5xi32>, tensor<30xi32>, tensor<30xi32>)
  return
}

// -----

// Each primary assignment expands into k secondary ones.
func.func @compose_routes_count(%pe: tensor<6xi32>, %pg: tensor<6xf32>, %pos: tensor<6xi32>, %se: tensor<6x2xi32>, %sg: tensor<6x2xf32>) {
  // expected-error@+1 {{expects expert of shape 12 ([primary assignments * k]) but got 6}}
  %e, %g = moe.compose_routes %pe, %pg, %pos, %se, %sg {experts_per_group = 4 : i64} : (tensor<6xi32>, tensor<6xf32>, tensor<6xi32>, tensor<6x2xi32>, tensor<6x2xf32>) -> (tensor<6xi32>, tensor<12xf32>)
  return
}

// -----

// The secondary selection has one row per primary assignment.
func.func @compose_routes_rows(%pe: tensor<6xi32>, %pg: tensor<6xf32>, %pos: tensor<6xi32>, %se: tensor<5x2xi32>, %sg: tensor<5x2xf32>) {
  // expected-error@+1 {{expects secondary expert of shape 6x2 ([primary assignments, k]) but got 5x2}}
  %e, %g = moe.compose_routes %pe, %pg, %pos, %se, %sg {experts_per_group = 4 : i64} : (tensor<6xi32>, tensor<6xf32>, tensor<6xi32>, tensor<5x2xi32>, tensor<5x2xf32>) -> (tensor<10xi32>, tensor<10xf32>)
  return
}

// -----

// The incoming gradient has one entry per composed assignment.
func.func @compose_routes_grad_count(%pg: tensor<6xf32>, %pos: tensor<6xi32>, %sg: tensor<6x2xf32>, %dg: tensor<6xf32>) {
  // expected-error@+1 {{expects d_gate of shape 12 ([primary assignments * k]) but got 6}}
  %dp, %ds = moe.compose_routes_grad %pg, %pos, %sg, %dg : (tensor<6xf32>, tensor<6xi32>, tensor<6x2xf32>, tensor<6xf32>) -> (tensor<6xf32>, tensor<6x2xf32>)
  return
}

// -----

// The raw noise logits are per (token, expert), like the clean ones.
func.func @load_noise_shape(%c: tensor<4x3xf32>, %n: tensor<2x2xf32>, %t: tensor<4x3xf32>) {
  // expected-error@+1 {{expects noise logits of shape 4x3 (the clean logits' shape) but got 2x2}}
  %l = moe.load_estimate %c, noise %n, %c, %c, %t {k = 2 : i64} : (tensor<4x3xf32>, tensor<2x2xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>) -> tensor<3xf32>
  return
}

// -----

// Row softmax keeps the logits' shape.
func.func @softmax_shape(%l: tensor<4x3xf32>) {
  // expected-error@+1 {{'moe.softmax' op requires the same type for all operands and results}}
  %p = "moe.softmax"(%l) : (tensor<4x3xf32>) -> tensor<4x4xf32>
  return
}

// -----

// CV^2 summarises a vector (importance or load) into a scalar loss.
func.func @cv_squared_matrix(%v: tensor<4x3xf32>) {
  // expected-error@+1 {{'moe.cv_squared' op operand #0 must be 1D tensor of 32-bit float values}}
  %l = moe.cv_squared %v {weight = 1.0 : f32} : (tensor<4x3xf32>) -> tensor<f32>
  return
}

// -----

// Eq. 5 needs the batch size to turn importance into mean gates.
func.func @l2_balance_no_tokens(%v: tensor<4xf32>) {
  // expected-error@+1 {{'moe.l2_balance' op attribute 'tokens' failed to satisfy constraint: 64-bit signless integer attribute whose value is positive}}
  %l = moe.l2_balance %v {tokens = 0 : i64, weight = 1.0 : f32} : (tensor<4xf32>) -> tensor<f32>
  return
}

// -----

// Scaling keeps the type.
func.func @scale_type(%x: tensor<4xf32>) {
  // expected-error@+1 {{'moe.scale' op requires the same type for all operands and results}}
  %y = "moe.scale"(%x) {factor = 2.0 : f32} : (tensor<4xf32>) -> tensor<5xf32>
  return
}

// -----

// Gradient accumulation adds values of one type.
func.func @add_mismatch(%a: tensor<4xf32>, %b: tensor<5xf32>) {
  // expected-error@+1 {{'moe.add' op requires the same type for all operands and results}}
  %c = "moe.add"(%a, %b) : (tensor<4xf32>, tensor<5xf32>) -> tensor<4xf32>
  return
}

// -----

// Over the combined batch of all ranks a rank's assignments need a
// capacity between 1 and T * n.
func.func @combined_batchwise_capacity_too_large(%l: tensor<4x2xf32>) {
  // expected-error@+1 {{expects a capacity of 1 to 8 ([T * n]) assignments, got 9}}
  %mask, %rows, %e, %g = moe.batchwise_mask %l {m = 2 : i64, combined_batch}
      : (tensor<4x2xf32>) -> (tensor<4x2xf32>, tensor<5xi32>, tensor<9xi32>, tensor<9xf32>)
  return
}

// -----

// A bias is added along the last dimension, which a scalar does not have.
func.func @bias_add_scalar(%x: tensor<f32>, %b: tensor<1xf32>) {
  // expected-error@+1 {{expects an input of rank >= 1}}
  %y = moe.bias_add %x, %b : (tensor<f32>, tensor<1xf32>) -> tensor<f32>
  return
}

// -----

// Rows are summed into a vector over the last dimension.
func.func @sum_rows_scalar(%x: tensor<f32>) {
  // expected-error@+1 {{expects an input of rank >= 1}}
  %y = moe.sum_rows %x : (tensor<f32>) -> tensor<1xf32>
  return
}

// -----

// The load estimate ranks each token's logits against its k-th best.
func.func @load_estimate_k_too_large(%c: tensor<6x4xf32>, %t: tensor<6x6xf32>) {
  // expected-error@+1 {{k = 5 exceeds the 4 experts}}
  %load = moe.load_estimate %c, noise %c, %c, %c, %t {k = 5 : i64} : (tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x6xf32>) -> tensor<4xf32>
  return
}

// -----

// bias_add keeps the input's shape.
func.func @bias_add_output(%x: tensor<4x8xf32>, %b: tensor<8xf32>) {
  // expected-error@+1 {{expects output of shape 4x8 (the input shape) but got 4x7}}
  %y = moe.bias_add %x, %b : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x7xf32>
  return
}

// -----

// noisy_top_k picks k experts per token.
func.func @noisy_top_k_expert(%c: tensor<6x4xf32>) {
  // expected-error@+1 {{expects expert of shape 6x2 ([T, k]) but got 6x3}}
  %e, %g, %h, %s, %top = moe.noisy_top_k %c, noise %c {k = 2 : i64} : (tensor<6x4xf32>, tensor<6x4xf32>) -> (tensor<6x3xi32>, tensor<6x2xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x3xf32>)
  return
}

// -----

// One gate per picked expert.
func.func @noisy_top_k_gate(%c: tensor<6x4xf32>) {
  // expected-error@+1 {{expects gate of shape 6x2 ([T, k]) but got 6x3}}
  %e, %g, %h, %s, %top = moe.noisy_top_k %c, noise %c {k = 2 : i64} : (tensor<6x4xf32>, tensor<6x4xf32>) -> (tensor<6x2xi32>, tensor<6x3xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x3xf32>)
  return
}

// -----

// The noisy logits saved for the load estimate are [T, n].
func.func @noisy_top_k_noisy(%c: tensor<6x4xf32>) {
  // expected-error@+1 {{expects noisy of shape 6x4 ([T, n]) but got 6x5}}
  %e, %g, %h, %s, %top = moe.noisy_top_k %c, noise %c {k = 2 : i64} : (tensor<6x4xf32>, tensor<6x4xf32>) -> (tensor<6x2xi32>, tensor<6x2xf32>, tensor<6x5xf32>, tensor<6x4xf32>, tensor<6x3xf32>)
  return
}

// -----

// So is the noise's standard deviation.
func.func @noisy_top_k_noise_std(%c: tensor<6x4xf32>) {
  // expected-error@+1 {{expects noise_std of shape 6x4 ([T, n]) but got 6x5}}
  %e, %g, %h, %s, %top = moe.noisy_top_k %c, noise %c {k = 2 : i64} : (tensor<6x4xf32>, tensor<6x4xf32>) -> (tensor<6x2xi32>, tensor<6x2xf32>, tensor<6x4xf32>, tensor<6x5xf32>, tensor<6x3xf32>)
  return
}

// -----

// The load estimate reads noisy_top_k's saved [T, n] values.
func.func @load_estimate_noisy(%c: tensor<6x4xf32>, %b: tensor<6x5xf32>, %t: tensor<6x3xf32>) {
  // expected-error@+1 {{expects noisy of shape 6x4 ([T, n]) but got 6x5}}
  %load = moe.load_estimate %c, noise %c, %b, %c, %t {k = 2 : i64} : (tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x5xf32>, tensor<6x4xf32>, tensor<6x3xf32>) -> tensor<4xf32>
  return
}

// -----

// The load estimate reads the noise's standard deviation per logit.
func.func @load_estimate_noise_std(%c: tensor<6x4xf32>, %b: tensor<6x5xf32>, %t: tensor<6x3xf32>) {
  // expected-error@+1 {{expects noise_std of shape 6x4 ([T, n]) but got 6x5}}
  %load = moe.load_estimate %c, noise %c, %c, %b, %t {k = 2 : i64} : (tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x5xf32>, tensor<6x3xf32>) -> tensor<4xf32>
  return
}

// -----

// The batchwise mask is [T, n] like the logits.
func.func @batchwise_mask_mask(%l: tensor<4x2xf32>) {
  // expected-error@+1 {{expects mask of shape 4x2 ([T, n]) but got 4x3}}
  %m, %r, %e, %g = moe.batchwise_mask %l {m = 2 : i64} : (tensor<4x2xf32>) -> (tensor<4x3xf32>, tensor<5xi32>, tensor<4xi32>, tensor<4xf32>)
  return
}

// -----

// Its row pointers have T + 1 entries.
func.func @batchwise_mask_row_ptr(%l: tensor<4x2xf32>) {
  // expected-error@+1 {{expects row_ptr of shape 5 ([T + 1]) but got 4}}
  %m, %r, %e, %g = moe.batchwise_mask %l {m = 2 : i64} : (tensor<4x2xf32>) -> (tensor<4x2xf32>, tensor<4xi32>, tensor<4xi32>, tensor<4xf32>)
  return
}

// -----

// Each of the n experts keeps m tokens, each with a gate.
func.func @batchwise_mask_gate(%l: tensor<4x2xf32>) {
  // expected-error@+1 {{expects gate of shape 4 ([n * m]) but got 3}}
  %m, %r, %e, %g = moe.batchwise_mask %l {m = 2 : i64} : (tensor<4x2xf32>) -> (tensor<4x2xf32>, tensor<5xi32>, tensor<4xi32>, tensor<3xf32>)
  return
}

// -----

// Over the combined batch, one gate per assignment slot of the capacity.
func.func @batchwise_mask_combined_gate(%l: tensor<4x2xf32>) {
  // expected-error@+1 {{expects gate of shape 5 (the expert's size) but got 4}}
  %m, %r, %e, %g = moe.batchwise_mask %l {m = 2 : i64, combined_batch} : (tensor<4x2xf32>) -> (tensor<4x2xf32>, tensor<5xi32>, tensor<5xi32>, tensor<4xf32>)
  return
}

// -----

// Eq. 8 compares the batchwise mask with the logits' threshold mask.
func.func @threshold_loss_batch_mask(%l: tensor<4x2xf32>, %b: tensor<4x3xf32>, %t: tensor<2xf32>) {
  // expected-error@+1 {{expects batch mask of shape 4x2 ([T, n]) but got 4x3}}
  %x = moe.batchwise_threshold_loss %l, %b, %t : (tensor<4x2xf32>, tensor<4x3xf32>, tensor<2xf32>) -> tensor<f32>
  return
}

// -----

// Importance has one entry per expert.
func.func @importance_result(%e: tensor<12xi32>, %g: tensor<12xf32>) {
  // expected-error@+1 {{expects importance of shape 4 ([num_experts]) but got 5}}
  %i = moe.importance %e, %g {num_experts = 4 : i64} : (tensor<12xi32>, tensor<12xf32>) -> tensor<5xf32>
  return
}

// -----

// The plan gives every assignment a buffer row.
func.func @dispatch_plan_position(%e: tensor<6xi32>) {
  // expected-error@+1 {{expects position of shape 6 ([A]) but got 5}}
  %o, %p, %t = moe.dispatch_plan %e {num_experts = 2 : i64, tokens = 3 : i64} : (tensor<6xi32>) -> (tensor<3xi32>, tensor<5xi32>, tensor<6xi32>)
  return
}

// -----

// The plan gives every buffer row its token.
func.func @dispatch_plan_token(%e: tensor<6xi32>) {
  // expected-error@+1 {{expects token of shape 6 ([A]) but got 5}}
  %o, %p, %t = moe.dispatch_plan %e {num_experts = 2 : i64, tokens = 3 : i64} : (tensor<6xi32>) -> (tensor<3xi32>, tensor<6xi32>, tensor<5xi32>)
  return
}

// -----

// combine reads one buffer row per assignment.
func.func @combine_position(%y: tensor<6x4xf32>, %g: tensor<6xf32>, %p: tensor<5xi32>) {
  // expected-error@+1 {{expects position of shape 6 ([A]) but got 5}}
  %o = moe.combine %y, %g, %p {tokens = 3 : i64} : (tensor<6x4xf32>, tensor<6xf32>, tensor<5xi32>) -> tensor<3x4xf32>
  return
}

// -----

// Threshold masks give every token a row pointer.
func.func @threshold_mask_row_ptr(%l: tensor<4x2xf32>, %t: tensor<2xf32>) {
  // expected-error@+1 {{expects row_ptr of shape 5 ([T + 1]) but got 4}}
  %r, %e, %g = moe.threshold_mask %l, %t : (tensor<4x2xf32>, tensor<2xf32>) -> (tensor<4xi32>, tensor<8xi32>, tensor<8xf32>)
  return
}

// -----

// The noise weights have the gate weights' shape.
func.func @fused_route_noise_weights(%x: tensor<6x8xf32>, %wg: tensor<8x4xf32>, %wn: tensor<8x5xf32>) {
  // expected-error@+1 {{expects noise weights of shape 8x4 (the gate weights' shape) but got 8x5}}
  %r:12 = moe.fused_route %x, %wg, %wn {k = 2 : i64} : (tensor<6x8xf32>, tensor<8x4xf32>, tensor<8x5xf32>) -> (tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x2xi32>, tensor<6x2xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x3xf32>, tensor<4xf32>, tensor<4xf32>, tensor<5xi32>, tensor<12xi32>, tensor<12xi32>)
  return
}

// -----

// Each result of fused_route has the shape of the value it replaces in
// the unfused chain.
func.func @fused_route_clean_logits(%x: tensor<6x8xf32>, %wg: tensor<8x4xf32>) {
  // expected-error@+1 {{expects clean logits of shape 6x4 ([T, n]) but got 6x5}}
  %r:12 = moe.fused_route %x, %wg, %wg {k = 2 : i64} : (tensor<6x8xf32>, tensor<8x4xf32>, tensor<8x4xf32>) -> (tensor<6x5xf32>, tensor<6x4xf32>, tensor<6x2xi32>, tensor<6x2xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x3xf32>, tensor<4xf32>, tensor<4xf32>, tensor<5xi32>, tensor<12xi32>, tensor<12xi32>)
  return
}

// -----

func.func @fused_route_noise_logits(%x: tensor<6x8xf32>, %wg: tensor<8x4xf32>) {
  // expected-error@+1 {{expects noise logits of shape 6x4 ([T, n]) but got 6x5}}
  %r:12 = moe.fused_route %x, %wg, %wg {k = 2 : i64} : (tensor<6x8xf32>, tensor<8x4xf32>, tensor<8x4xf32>) -> (tensor<6x4xf32>, tensor<6x5xf32>, tensor<6x2xi32>, tensor<6x2xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x3xf32>, tensor<4xf32>, tensor<4xf32>, tensor<5xi32>, tensor<12xi32>, tensor<12xi32>)
  return
}

// -----

func.func @fused_route_expert(%x: tensor<6x8xf32>, %wg: tensor<8x4xf32>) {
  // expected-error@+1 {{expects expert of shape 6x2 ([T, k]) but got 6x3}}
  %r:12 = moe.fused_route %x, %wg, %wg {k = 2 : i64} : (tensor<6x8xf32>, tensor<8x4xf32>, tensor<8x4xf32>) -> (tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x3xi32>, tensor<6x2xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x3xf32>, tensor<4xf32>, tensor<4xf32>, tensor<5xi32>, tensor<12xi32>, tensor<12xi32>)
  return
}

// -----

func.func @fused_route_gate(%x: tensor<6x8xf32>, %wg: tensor<8x4xf32>) {
  // expected-error@+1 {{expects gate of shape 6x2 ([T, k]) but got 6x3}}
  %r:12 = moe.fused_route %x, %wg, %wg {k = 2 : i64} : (tensor<6x8xf32>, tensor<8x4xf32>, tensor<8x4xf32>) -> (tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x2xi32>, tensor<6x3xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x3xf32>, tensor<4xf32>, tensor<4xf32>, tensor<5xi32>, tensor<12xi32>, tensor<12xi32>)
  return
}

// -----

func.func @fused_route_noisy(%x: tensor<6x8xf32>, %wg: tensor<8x4xf32>) {
  // expected-error@+1 {{expects noisy of shape 6x4 ([T, n]) but got 6x5}}
  %r:12 = moe.fused_route %x, %wg, %wg {k = 2 : i64} : (tensor<6x8xf32>, tensor<8x4xf32>, tensor<8x4xf32>) -> (tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x2xi32>, tensor<6x2xf32>, tensor<6x5xf32>, tensor<6x4xf32>, tensor<6x3xf32>, tensor<4xf32>, tensor<4xf32>, tensor<5xi32>, tensor<12xi32>, tensor<12xi32>)
  return
}

// -----

func.func @fused_route_noise_std(%x: tensor<6x8xf32>, %wg: tensor<8x4xf32>) {
  // expected-error@+1 {{expects noise_std of shape 6x4 ([T, n]) but got 6x5}}
  %r:12 = moe.fused_route %x, %wg, %wg {k = 2 : i64} : (tensor<6x8xf32>, tensor<8x4xf32>, tensor<8x4xf32>) -> (tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x2xi32>, tensor<6x2xf32>, tensor<6x4xf32>, tensor<6x5xf32>, tensor<6x3xf32>, tensor<4xf32>, tensor<4xf32>, tensor<5xi32>, tensor<12xi32>, tensor<12xi32>)
  return
}

// -----

func.func @fused_route_importance(%x: tensor<6x8xf32>, %wg: tensor<8x4xf32>) {
  // expected-error@+1 {{expects importance of shape 4 ([n]) but got 5}}
  %r:12 = moe.fused_route %x, %wg, %wg {k = 2 : i64} : (tensor<6x8xf32>, tensor<8x4xf32>, tensor<8x4xf32>) -> (tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x2xi32>, tensor<6x2xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x3xf32>, tensor<4xf32>, tensor<5xf32>, tensor<5xi32>, tensor<12xi32>, tensor<12xi32>)
  return
}

// -----

func.func @fused_route_expert_offset(%x: tensor<6x8xf32>, %wg: tensor<8x4xf32>) {
  // expected-error@+1 {{expects expert_offset of shape 5 ([n + 1]) but got 6}}
  %r:12 = moe.fused_route %x, %wg, %wg {k = 2 : i64} : (tensor<6x8xf32>, tensor<8x4xf32>, tensor<8x4xf32>) -> (tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x2xi32>, tensor<6x2xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x3xf32>, tensor<4xf32>, tensor<4xf32>, tensor<6xi32>, tensor<12xi32>, tensor<12xi32>)
  return
}

// -----

func.func @fused_route_token(%x: tensor<6x8xf32>, %wg: tensor<8x4xf32>) {
  // expected-error@+1 {{expects token of shape 12 ([T * k]) but got 6}}
  %r:12 = moe.fused_route %x, %wg, %wg {k = 2 : i64} : (tensor<6x8xf32>, tensor<8x4xf32>, tensor<8x4xf32>) -> (tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x2xi32>, tensor<6x2xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x3xf32>, tensor<4xf32>, tensor<4xf32>, tensor<5xi32>, tensor<12xi32>, tensor<6xi32>)
  return
}

// -----

// Each primary assignment has one gate.
func.func @compose_routes_primary_gate(%pe: tensor<6xi32>, %pg: tensor<5xf32>, %pos: tensor<6xi32>, %se: tensor<6x2xi32>, %sg: tensor<6x2xf32>) {
  // expected-error@+1 {{expects primary gate of shape 6 (one gate per primary assignment) but got 5}}
  %e, %g = moe.compose_routes %pe, %pg, %pos, %se, %sg {experts_per_group = 4 : i64} : (tensor<6xi32>, tensor<5xf32>, tensor<6xi32>, tensor<6x2xi32>, tensor<6x2xf32>) -> (tensor<12xi32>, tensor<12xf32>)
  return
}

// -----

// The secondary gates match the secondary experts.
func.func @compose_routes_secondary_gate(%pe: tensor<6xi32>, %pg: tensor<6xf32>, %pos: tensor<6xi32>, %se: tensor<6x2xi32>, %sg: tensor<6x3xf32>) {
  // expected-error@+1 {{expects secondary gate of shape 6x2 (the secondary experts' shape) but got 6x3}}
  %e, %g = moe.compose_routes %pe, %pg, %pos, %se, %sg {experts_per_group = 4 : i64} : (tensor<6xi32>, tensor<6xf32>, tensor<6xi32>, tensor<6x2xi32>, tensor<6x3xf32>) -> (tensor<12xi32>, tensor<12xf32>)
  return
}

// -----

// Lazy Adam's values hold one parameter row per listed row.
func.func @adam_rows_values(%p: tensor<10x4xf32>, %r: tensor<3xi32>, %g: tensor<3x5xf32>, %lr: tensor<f32>, %s: tensor<i64>) {
  // expected-error@+1 {{expects values of shape 3x4 ([rows, param's row shape]) but got 3x5}}
  %a:3 = moe.adam_update_rows %p, %r, %g, %p, %p, %lr, %s {beta1 = 0.9 : f32, beta2 = 0.999 : f32, eps = 1.0e-8 : f32, weight_decay = 0.0 : f32} : (tensor<10x4xf32>, tensor<3xi32>, tensor<3x5xf32>, tensor<10x4xf32>, tensor<10x4xf32>, tensor<f32>, tensor<i64>) -> (tensor<10x4xf32>, tensor<10x4xf32>, tensor<10x4xf32>)
  return
}

// -----

// The rows of all data-parallel ranks ([?]) come with as many values.
func.func @adam_rows_dynamic(%p: tensor<10x4xf32>, %r: tensor<?xi32>, %g: tensor<3x4xf32>, %lr: tensor<f32>, %s: tensor<i64>) {
  // expected-error@+1 {{expects values of shape ?x4 ([rows, param's row shape]) but got 3x4}}
  %a:3 = moe.adam_update_rows %p, %r, %g, %p, %p, %lr, %s {beta1 = 0.9 : f32, beta2 = 0.999 : f32, eps = 1.0e-8 : f32, weight_decay = 0.0 : f32} : (tensor<10x4xf32>, tensor<?xi32>, tensor<3x4xf32>, tensor<10x4xf32>, tensor<10x4xf32>, tensor<f32>, tensor<i64>) -> (tensor<10x4xf32>, tensor<10x4xf32>, tensor<10x4xf32>)
  return
}

// -----

// A row needs a first dimension to index.
func.func @adam_rows_scalar(%p: tensor<f32>, %r: tensor<3xi32>, %g: tensor<3xf32>, %lr: tensor<f32>, %s: tensor<i64>) {
  // expected-error@+1 {{expects a parameter of rank >= 1 (rows first)}}
  %a:3 = moe.adam_update_rows %p, %r, %g, %p, %p, %lr, %s {beta1 = 0.9 : f32, beta2 = 0.999 : f32, eps = 1.0e-8 : f32, weight_decay = 0.0 : f32} : (tensor<f32>, tensor<3xi32>, tensor<3xf32>, tensor<f32>, tensor<f32>, tensor<f32>, tensor<i64>) -> (tensor<f32>, tensor<f32>, tensor<f32>)
  return
}

// -----

// The hyperparameters are checked as for moe.adam_update.
func.func @adam_rows_beta(%p: tensor<10x4xf32>, %r: tensor<3xi32>, %g: tensor<3x4xf32>, %lr: tensor<f32>, %s: tensor<i64>) {
  // expected-error@+1 {{expects beta1 and beta2 in [0, 1)}}
  %a:3 = moe.adam_update_rows %p, %r, %g, %p, %p, %lr, %s {beta1 = 1.0 : f32, beta2 = 0.999 : f32, eps = 1.0e-8 : f32, weight_decay = 0.0 : f32} : (tensor<10x4xf32>, tensor<3xi32>, tensor<3x4xf32>, tensor<10x4xf32>, tensor<10x4xf32>, tensor<f32>, tensor<i64>) -> (tensor<10x4xf32>, tensor<10x4xf32>, tensor<10x4xf32>)
  return
}

// -----

// The row pointers cover T tokens of k assignments each.
func.func @drop_padding_tokens(%e: tensor<12xi32>, %g: tensor<12xf32>, %len: tensor<2xi32>) {
  // expected-error@+1 {{'moe.drop_padding' op expects row_ptr of shape [T + 1] with T dividing the 12 assignments (k per token), got 6}}
  %rows, %ke, %kg = moe.drop_padding %e, %g lengths %len : (tensor<12xi32>, tensor<12xf32>, tensor<2xi32>) -> (tensor<6xi32>, tensor<12xi32>, tensor<12xf32>)
  return
}

// -----

// The tokens are batch x time.
func.func @drop_padding_batch(%e: tensor<12xi32>, %g: tensor<12xf32>, %len: tensor<4xi32>) {
  // expected-error@+1 {{'moe.drop_padding' op expects lengths [batch] with batch dividing the 6 tokens (batch * time), got 4}}
  %rows, %ke, %kg = moe.drop_padding %e, %g lengths %len : (tensor<12xi32>, tensor<12xf32>, tensor<4xi32>) -> (tensor<7xi32>, tensor<12xi32>, tensor<12xf32>)
  return
}

// -----

func.func @drop_padding_gate(%e: tensor<12xi32>, %g: tensor<10xf32>, %len: tensor<2xi32>) {
  // expected-error@+1 {{'moe.drop_padding' op expects gate of shape 12 (one gate per assignment) but got 10}}
  %rows, %ke, %kg = moe.drop_padding %e, %g lengths %len : (tensor<12xi32>, tensor<10xf32>, tensor<2xi32>) -> (tensor<7xi32>, tensor<12xi32>, tensor<12xf32>)
  return
}

// -----

func.func @drop_padding_kept(%e: tensor<12xi32>, %g: tensor<12xf32>, %len: tensor<2xi32>) {
  // expected-error@+1 {{'moe.drop_padding' op expects kept_gate of shape 12 ([A]) but got 6}}
  %rows, %ke, %kg = moe.drop_padding %e, %g lengths %len : (tensor<12xi32>, tensor<12xf32>, tensor<2xi32>) -> (tensor<7xi32>, tensor<12xi32>, tensor<6xf32>)
  return
}

// -----

func.func @load_estimate_rows(%c: tensor<6x4xf32>, %top: tensor<6x3xf32>, %rows: tensor<6xi32>) {
  // expected-error@+1 {{'moe.load_estimate' op expects row_ptr of shape 7}}
  %load = moe.load_estimate %c, noise %c, %c, %c, %top rows %rows {k = 2 : i64} : (tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x3xf32>, tensor<6xi32>) -> tensor<4xf32>
  return
}
