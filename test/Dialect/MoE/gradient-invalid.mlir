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

// The weight gradient has the weights' type.
func.func @grouped_grad_weights(%b: tensor<6x4xf32>, %w: tensor<2x4x4xf32>, %o: tensor<3xi32>) {
  // expected-error@+1 {{failed to verify that all of {weights, d_weights} have same type}}
  %0:2 = moe.grouped_matmul_grad %b, %w, %o, %b : (tensor<6x4xf32>, tensor<2x4x4xf32>, tensor<3xi32>, tensor<6x4xf32>) -> (tensor<6x4xf32>, tensor<2x4x5xf32>)
  return
}
