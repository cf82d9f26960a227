// RUN: moe-opt %s -split-input-file -verify-diagnostics

// A gradient has the type of the value it differentiates.
func.func @activate_grad_type(%y: tensor<4xf32>, %dy: tensor<5xf32>) {
  // expected-error@+1 {{failed to verify that all of {output, d_output, d_input} have same type}}
  %0 = moe.activate_grad %y, %dy {act = #moe.activation<relu>} : (tensor<4xf32>, tensor<5xf32>) -> tensor<4xf32>
  return
}

// -----

// The noise-logit gradient exists exactly when there are noise logits.
func.func @noisy_grad_missing_noise_result(%c: tensor<4x3xf32>, %e: tensor<4x2xi32>, %g: tensor<4x2xf32>) {
  // expected-error@+1 {{has a noise-logits gradient exactly when it has noise logits}}
  %0 = moe.noisy_top_k_grad %c, %c, %c, %e, %g, %g, noise %c : (tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x2xi32>, tensor<4x2xf32>, tensor<4x2xf32>) -> tensor<4x3xf32>
  return
}

// -----

// Expert ids and gates describe the same [T, k] selection.
func.func @noisy_grad_expert_shape(%c: tensor<4x3xf32>, %e: tensor<4x1xi32>, %g: tensor<4x2xf32>) {
  // expected-error@+1 {{expects expert of shape 4x2 (the gates' shape [T, k]) but got 4x1}}
  %0 = moe.noisy_top_k_grad %c, %c, %c, %e, %g, %g : (tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x1xi32>, tensor<4x2xf32>, tensor<4x2xf32>) -> tensor<4x3xf32>
  return
}

// -----

// Masked-gate gradients land on the [T, n] logits.
func.func @masked_gate_grad_shape(%r: tensor<5xi32>, %e: tensor<6xi32>, %g: tensor<6xf32>) {
  // expected-error@+1 {{expects d_logits of shape 4x3 ([T, num_experts]) but got 4x2}}
  %0 = moe.masked_gate_grad %r, %e, %g, %g {num_experts = 3 : i64} : (tensor<5xi32>, tensor<6xi32>, tensor<6xf32>, tensor<6xf32>) -> tensor<4x2xf32>
  return
}

// -----

// One expert id per gate.
func.func @masked_gate_grad_ids(%r: tensor<5xi32>, %e: tensor<5xi32>, %g: tensor<6xf32>) {
  // expected-error@+1 {{expects expert of shape 6 (one expert per gate) but got 5}}
  %0 = moe.masked_gate_grad %r, %e, %g, %g {num_experts = 3 : i64} : (tensor<5xi32>, tensor<5xi32>, tensor<6xf32>, tensor<6xf32>) -> tensor<4x3xf32>
  return
}

// -----

// Importance gradients are per assignment.
func.func @importance_grad_shape(%e: tensor<6xi32>, %d: tensor<3xf32>) {
  // expected-error@+1 {{expects d_gate of shape 6 (one gradient per assignment) but got 3}}
  %0 = moe.importance_grad %e, %d : (tensor<6xi32>, tensor<3xf32>) -> tensor<3xf32>
  return
}

// -----

// The dispatch gradient has one row per token.
func.func @dispatch_grad_rows(%b: tensor<6x4xf32>, %p: tensor<6xi32>) {
  // expected-error@+1 {{expects d_input of shape 3x4 ([tokens, d]) but got 6x4}}
  %0 = moe.dispatch_grad %b, %p {tokens = 3 : i64} : (tensor<6x4xf32>, tensor<6xi32>) -> tensor<6x4xf32>
  return
}

// -----

// The buffer gradient has one row per assignment.
func.func @dispatch_grad_buffer(%b: tensor<5x4xf32>, %p: tensor<6xi32>) {
  // expected-error@+1 {{expects d_buffer of shape 6x4 ([A, d]) but got 5x4}}
  %0 = moe.dispatch_grad %b, %p {tokens = 3 : i64} : (tensor<5x4xf32>, tensor<6xi32>) -> tensor<3x4xf32>
  return
}

// -----

// The row pointer has tokens + 1 entries.
func.func @dispatch_grad_row_ptr(%b: tensor<6x4xf32>, %p: tensor<6xi32>, %r: tensor<3xi32>) {
  // expected-error@+1 {{expects row_ptr of shape 4 ([tokens + 1]) but got 3}}
  %0 = moe.dispatch_grad %b, %p rows %r {tokens = 3 : i64} : (tensor<6x4xf32>, tensor<6xi32>, tensor<3xi32>) -> tensor<3x4xf32>
  return
}

// -----

// The output gradient matches the embedding's output shape.
func.func @embedding_grad_shape(%ids: tensor<2x3xi32>, %d: tensor<2x3x4xf32>) {
  // expected-error@+1 {{expects d_output of shape 2x3x8 (ids shape followed by d) but got 2x3x4}}
  %0 = moe.embedding_grad %ids, %d : (tensor<2x3xi32>, tensor<2x3x4xf32>) -> tensor<10x8xf32>
  return
}

// -----

// A projection gradient needs a projection.
func.func @lstm_grad_projection(%x: tensor<2x3x8xf32>, %wx: tensor<8x16xf32>, %wh: tensor<4x16xf32>, %b: tensor<16xf32>, %p: tensor<4x4xf32>, %y: tensor<2x3x4xf32>) {
  // expected-error@+1 {{has a projection gradient exactly when it has a projection}}
  %0:4 = moe.lstm_grad %x weights(%wx, %wh, %b) projection(%p) output %y, %y : (tensor<2x3x8xf32>, tensor<8x16xf32>, tensor<4x16xf32>, tensor<16xf32>, tensor<4x4xf32>, tensor<2x3x4xf32>, tensor<2x3x4xf32>) -> (tensor<2x3x8xf32>, tensor<8x16xf32>, tensor<4x16xf32>, tensor<16xf32>)
  return
}

// -----

// The projection gradient has the projection's type.
func.func @lstm_grad_projection_type(%x: tensor<2x3x8xf32>, %wx: tensor<8x16xf32>, %wh: tensor<4x16xf32>, %b: tensor<16xf32>, %p: tensor<4x4xf32>, %y: tensor<2x3x4xf32>) {
  // expected-error@+1 {{expects the projection gradient to have the projection's type}}
  %0:5 = moe.lstm_grad %x weights(%wx, %wh, %b) projection(%p) output %y, %y : (tensor<2x3x8xf32>, tensor<8x16xf32>, tensor<4x16xf32>, tensor<16xf32>, tensor<4x4xf32>, tensor<2x3x4xf32>, tensor<2x3x4xf32>) -> (tensor<2x3x8xf32>, tensor<8x16xf32>, tensor<4x16xf32>, tensor<16xf32>, tensor<4x5xf32>)
  return
}

// -----

// The weight gradient has the weights' type.
func.func @grouped_grad_weights(%b: tensor<6x4xf32>, %w: tensor<2x4x4xf32>, %o: tensor<3xi32>) {
  // expected-error@+1 {{failed to verify that all of {weights, d_weights} have same type}}
  %0:2 = moe.grouped_matmul_grad %b, %w, %o, %b : (tensor<6x4xf32>, tensor<2x4x4xf32>, tensor<3xi32>, tensor<6x4xf32>) -> (tensor<6x4xf32>, tensor<2x4x5xf32>)
  return
}

// -----

// The softmax backward needs the forward probabilities of the same shape.
func.func @softmax_grad_type(%p: tensor<4x3xf32>, %dp: tensor<4x2xf32>) {
  // expected-error@+1 {{failed to verify that all of {probs, d_probs, d_logits} have same type}}
  %d = moe.softmax_grad %p, %dp : (tensor<4x3xf32>, tensor<4x2xf32>) -> tensor<4x3xf32>
  return
}

// -----

// Load gradients land on the clean and raw noise logits, both [T, n].
func.func @load_estimate_grad_type(%c: tensor<4x3xf32>, %r: tensor<4x2xf32>, %t: tensor<4x3xf32>, %d: tensor<3xf32>) {
  // expected-error@+1 {{failed to verify that all of {clean_logits, noise_logits, d_clean_logits, d_noise_logits} have same type}}
  %a:2 = moe.load_estimate_grad %c, %r, %c, %c, %t, %d {k = 2 : i64} : (tensor<4x3xf32>, tensor<4x2xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<3xf32>) -> (tensor<4x3xf32>, tensor<4x2xf32>)
  return
}

// -----

// Eq. 8 trains one threshold per expert.
func.func @threshold_loss_grad_type(%l: tensor<4x3xf32>, %t: tensor<3xf32>, %s: tensor<f32>) {
  // expected-error@+1 {{failed to verify that all of {thresholds, d_thresholds} have same type}}
  %d = moe.batchwise_threshold_loss_grad %l, %l, %t, %s : (tensor<4x3xf32>, tensor<4x3xf32>, tensor<3xf32>, tensor<f32>) -> tensor<4xf32>
  return
}

// -----

// CV^2 and Eq. 5 gradients have the shape of their vector.
func.func @cv_squared_grad_type(%v: tensor<3xf32>, %s: tensor<f32>) {
  // expected-error@+1 {{failed to verify that all of {values, d_values} have same type}}
  %d = moe.cv_squared_grad %v, %s {weight = 1.0 : f32} : (tensor<3xf32>, tensor<f32>) -> tensor<4xf32>
  return
}

// -----

func.func @l2_balance_grad_type(%v: tensor<3xf32>, %s: tensor<f32>) {
  // expected-error@+1 {{failed to verify that all of {importance, d_importance} have same type}}
  %d = moe.l2_balance_grad %v, %s {tokens = 4 : i64, weight = 1.0 : f32} : (tensor<3xf32>, tensor<f32>) -> tensor<4xf32>
  return
}

// -----

// The gate gradient of combine is per assignment, like the gates.
func.func @combine_grad_type(%y: tensor<6x4xf32>, %g: tensor<6xf32>, %p: tensor<6xi32>, %dy: tensor<3x4xf32>) {
  // expected-error@+1 {{failed to verify that all of {gate, d_gate} have same type}}
  %a:2 = moe.combine_grad %y, %g, %p, %dy {tokens = 3 : i64} : (tensor<6x4xf32>, tensor<6xf32>, tensor<6xi32>, tensor<3x4xf32>) -> (tensor<6x4xf32>, tensor<3xf32>)
  return
}

// -----

// Attention gradients have the types of the values they differentiate.
func.func @attention_grad_type(%x: tensor<1x2x4xf32>, %u: tensor<4x3xf32>, %v: tensor<3xf32>) {
  // expected-error@+1 {{failed to verify that all of {score_weights, d_score_weights} have same type}}
  %a:5 = moe.attention_grad %x, %x, %u, %u, %v, %x, %x : (tensor<1x2x4xf32>, tensor<1x2x4xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<3xf32>, tensor<1x2x4xf32>, tensor<1x2x4xf32>) -> (tensor<1x2x4xf32>, tensor<1x2x4xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4xf32>)
  return
}

// -----

// The output layer's gradients match its weights and bias.
func.func @softmax_ce_grad_type(%h: tensor<2x4xf32>, %t: tensor<2xi32>, %w: tensor<5x4xf32>, %b: tensor<5xf32>, %s: tensor<f32>) {
  // expected-error@+1 {{failed to verify that all of {bias, d_bias} have same type}}
  %a:3 = moe.softmax_cross_entropy_grad %h, %t, %w, %b, %s : (tensor<2x4xf32>, tensor<2xi32>, tensor<5x4xf32>, tensor<5xf32>, tensor<f32>) -> (tensor<2x4xf32>, tensor<5x4xf32>, tensor<4xf32>)
  return
}

// -----

// The gradient divides by the forward op's integer count.
func.func @softmax_ce_grad_target_count_vector(%h: tensor<2x4xf32>, %t: tensor<2xi32>, %w: tensor<5x4xf32>, %b: tensor<5xf32>, %s: tensor<f32>, %n: tensor<2xi32>) {
  // expected-error@+1 {{'moe.softmax_cross_entropy_grad' op operand #5 must be 0D tensor of 32-bit signless integer values, but got 'tensor<2xi32>'}}
  %a:3 = moe.softmax_cross_entropy_grad %h, %t, %w, %b, %s target_count(%n) : (tensor<2x4xf32>, tensor<2xi32>, tensor<5x4xf32>, tensor<5xf32>, tensor<f32>, tensor<2xi32>) -> (tensor<2x4xf32>, tensor<5x4xf32>, tensor<5xf32>)
  return
}

// -----

// Noise logits have the clean logits' [T, n] shape.
func.func @noisy_grad_noise_shape(%c: tensor<4x3xf32>, %r: tensor<4x2xf32>, %e: tensor<4x2xi32>, %g: tensor<4x2xf32>) {
  // expected-error@+1 {{expects noise logits of shape 4x3 ([T, n]) but got 4x2}}
  %0:2 = moe.noisy_top_k_grad %c, %c, %c, %e, %g, %g, noise %r : (tensor<4x3xf32>, tensor<4x2xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x2xi32>, tensor<4x2xf32>, tensor<4x2xf32>) -> (tensor<4x3xf32>, tensor<4x2xf32>)
  return
}

// -----

func.func @grouped_threshold_loss_grad_offsets(%l: tensor<9x4xf32>, %t: tensor<2x4xf32>, %s: tensor<f32>, %off: tensor<2xi32>) {
  // expected-error@+1 {{'moe.grouped_batchwise_threshold_loss_grad' op expects expert_offset of shape 3 ([groups + 1], one segment per row of thresholds) but got 2}}
  %dt = moe.grouped_batchwise_threshold_loss_grad %l, %l, %t, %s, %off : (tensor<9x4xf32>, tensor<9x4xf32>, tensor<2x4xf32>, tensor<f32>, tensor<2xi32>) -> tensor<2x4xf32>
  return
}

// -----

// One row slot per id: the ids may all differ.
func.func @embedding_row_grad_rows(%ids: tensor<2x3xi32>, %d: tensor<2x3x4xf32>) {
  // expected-error@+1 {{expects rows of shape 6 ([number of ids]) but got 5}}
  %0:2 = moe.embedding_row_grad %ids, %d {vocab = 10 : i64} : (tensor<2x3xi32>, tensor<2x3x4xf32>) -> (tensor<5xi32>, tensor<6x4xf32>)
  return
}

// -----

func.func @embedding_row_grad_width(%ids: tensor<2x3xi32>, %d: tensor<2x3x4xf32>) {
  // expected-error@+1 {{expects d_output of shape}}
  %0:2 = moe.embedding_row_grad %ids, %d {vocab = 10 : i64} : (tensor<2x3xi32>, tensor<2x3x4xf32>) -> (tensor<6xi32>, tensor<6x8xf32>)
  return
}

// -----

// The touched classes: the samples and every token's target.
func.func @sampled_row_grad_rows(%h: tensor<2x4xf32>, %t: tensor<2xi32>, %w: tensor<5x4xf32>, %b: tensor<5xf32>, %s: tensor<f32>) {
  // expected-error@+1 {{expects rows of shape 5 ([num_samples + tokens]) but got 4}}
  %a:4 = moe.softmax_cross_entropy_row_grad %h, %t, %w, %b, %s {num_samples = 3 : i64} : (tensor<2x4xf32>, tensor<2xi32>, tensor<5x4xf32>, tensor<5xf32>, tensor<f32>) -> (tensor<2x4xf32>, tensor<4xi32>, tensor<4x4xf32>, tensor<4xf32>)
  return
}

// -----

func.func @sampled_row_grad_samples(%h: tensor<2x4xf32>, %t: tensor<2xi32>, %w: tensor<5x4xf32>, %b: tensor<5xf32>, %s: tensor<f32>) {
  // expected-error@+1 {{num_samples = 5 must be smaller than the vocabulary (5)}}
  %a:4 = moe.softmax_cross_entropy_row_grad %h, %t, %w, %b, %s {num_samples = 5 : i64} : (tensor<2x4xf32>, tensor<2xi32>, tensor<5x4xf32>, tensor<5xf32>, tensor<f32>) -> (tensor<2x4xf32>, tensor<7xi32>, tensor<7x4xf32>, tensor<7xf32>)
  return
}

// -----

func.func @sampled_row_grad_values(%h: tensor<2x4xf32>, %t: tensor<2xi32>, %w: tensor<5x4xf32>, %b: tensor<5xf32>, %s: tensor<f32>) {
  // expected-error@+1 {{expects d_weight_values of shape 5x4 ([num_samples + tokens, d]) but got 5x3}}
  %a:4 = moe.softmax_cross_entropy_row_grad %h, %t, %w, %b, %s {num_samples = 3 : i64} : (tensor<2x4xf32>, tensor<2xi32>, tensor<5x4xf32>, tensor<5xf32>, tensor<f32>) -> (tensor<2x4xf32>, tensor<5xi32>, tensor<5x3xf32>, tensor<5xf32>)
  return
}

// -----

// The gradient of a grouped matmul keeps its forward op's equal segments.
func.func @grouped_matmul_grad_rows_per_expert(%b: tensor<12x8xf32>, %w: tensor<4x8x8xf32>, %o: tensor<5xi32>) {
  // expected-error@+1 {{has rows_per_expert = 4 for 4 experts, but its buffer has 12 rows}}
  %0:2 = moe.grouped_matmul_grad %b, %w, %o, %b {rows_per_expert = 4 : i64} : (tensor<12x8xf32>, tensor<4x8x8xf32>, tensor<5xi32>, tensor<12x8xf32>) -> (tensor<12x8xf32>, tensor<4x8x8xf32>)
  return
}

// -----

func.func @drop_padding_grad_shape(%rows: tensor<7xi32>, %dk: tensor<12xf32>) {
  // expected-error@+1 {{'moe.drop_padding_grad' op expects d_gate of shape 12 ([A]) but got 10}}
  %dg = moe.drop_padding_grad %rows, %dk : (tensor<7xi32>, tensor<12xf32>) -> tensor<10xf32>
  return
}

// -----

func.func @drop_padding_grad_rows(%rows: tensor<6xi32>, %dk: tensor<12xf32>) {
  // expected-error@+1 {{'moe.drop_padding_grad' op expects row_ptr of shape [T + 1] with T dividing the 12 assignments, got 6}}
  %dg = moe.drop_padding_grad %rows, %dk : (tensor<6xi32>, tensor<12xf32>) -> tensor<12xf32>
  return
}

// -----

func.func @load_estimate_grad_rows(%y: tensor<6x4xf32>, %top: tensor<6x3xf32>, %dl: tensor<4xf32>, %rows: tensor<5xi32>) {
  // expected-error@+1 {{'moe.load_estimate_grad' op expects row_ptr of shape 7}}
  %0:2 = moe.load_estimate_grad %y, %y, %y, %y, %top, %dl, %rows {k = 2 : i64} : (tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x3xf32>, tensor<4xf32>, tensor<5xi32>) -> (tensor<6x4xf32>, tensor<6x4xf32>)
  return
}

// -----

func.func @load_estimate_grad_d_load(%y: tensor<6x4xf32>, %top: tensor<6x3xf32>, %dl: tensor<3xf32>) {
  // expected-error@+1 {{'moe.load_estimate_grad' op expects d_load of shape 4 ([n]) but got 3}}
  %0:2 = moe.load_estimate_grad %y, %y, %y, %y, %top, %dl {k = 2 : i64} : (tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x3xf32>, tensor<3xf32>) -> (tensor<6x4xf32>, tensor<6x4xf32>)
  return
}

// -----

// The fused router's backward needs a gradient to propagate.
func.func @fused_route_grad_nothing(%c: tensor<4x3xf32>, %t: tensor<4x3xf32>, %e: tensor<4x2xi32>, %g: tensor<4x2xf32>) {
  // expected-error@+1 {{needs at least one of d_gate, d_load and d_importance}}
  %a:2 = moe.fused_route_grad %c, %c, %c, %c, %t, %e, %g : (tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x2xi32>, tensor<4x2xf32>) -> (tensor<4x3xf32>, tensor<4x3xf32>)
  return
}

// -----

// Its load gradient has one entry per expert.
func.func @fused_route_grad_load_shape(%c: tensor<4x3xf32>, %t: tensor<4x3xf32>, %e: tensor<4x2xi32>, %g: tensor<4x2xf32>, %d: tensor<4xf32>) {
  // expected-error@+1 {{expects d_load of shape 3 ([n]) but got 4}}
  %a:2 = moe.fused_route_grad %c, %c, %c, %c, %t, %e, %g d_load %d : (tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x2xi32>, tensor<4x2xf32>, tensor<4xf32>) -> (tensor<4x3xf32>, tensor<4x3xf32>)
  return
}

// -----

// The saved top values are the top k + 1 of each token.
func.func @fused_route_grad_top_values(%c: tensor<4x3xf32>, %t: tensor<4x2xf32>, %e: tensor<4x2xi32>, %g: tensor<4x2xf32>) {
  // expected-error@+1 {{expects top values of shape 4x3 ([T, k + 1]) but got 4x2}}
  %a:2 = moe.fused_route_grad %c, %c, %c, %c, %t, %e, %g d_gate %g : (tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x2xf32>, tensor<4x2xi32>, tensor<4x2xf32>, tensor<4x2xf32>) -> (tensor<4x3xf32>, tensor<4x3xf32>)
  return
}

// -----

// Gates are [T, k] with k <= n.
func.func @fused_route_grad_gates(%c: tensor<4x3xf32>, %t: tensor<4x5xf32>, %e: tensor<4x4xi32>, %g: tensor<4x4xf32>) {
  // expected-error@+1 {{expects gates of shape [T, k] with T = 4 and k <= n = 3, got 4x4}}
  %a:2 = moe.fused_route_grad %c, %c, %c, %c, %t, %e, %g d_gate %g : (tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x5xf32>, tensor<4x4xi32>, tensor<4x4xf32>, tensor<4x4xf32>) -> (tensor<4x3xf32>, tensor<4x3xf32>)
  return
}

// -----

// Both logits and their gradients are [T, n].
func.func @fused_route_grad_types(%c: tensor<4x3xf32>, %r: tensor<4x2xf32>, %t: tensor<4x3xf32>, %e: tensor<4x2xi32>, %g: tensor<4x2xf32>) {
  // expected-error@+1 {{failed to verify that all of {clean_logits, noise_logits, noisy, noise_std, d_clean_logits, d_noise_logits} have same type}}
  %a:2 = moe.fused_route_grad %c, %r, %c, %c, %t, %e, %g d_gate %g : (tensor<4x3xf32>, tensor<4x2xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x2xi32>, tensor<4x2xf32>, tensor<4x2xf32>) -> (tensor<4x3xf32>, tensor<4x3xf32>)
  return
}
