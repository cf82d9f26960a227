// RUN: moe-opt %s --split-input-file --convert-moe-to-emitc --verify-diagnostics
// RUN: not moe-opt %s --convert-moe-to-emitc=target=tpu 2>&1 | FileCheck %s --check-prefix=TARGET
// RUN: not moe-opt %s --convert-moe-to-emitc=gemm-precision=fp8 2>&1 | FileCheck %s --check-prefix=PRECISION

// TARGET: error: unknown target 'tpu' (expected cpu or cuda)
// PRECISION: error: unknown gemm-precision 'fp8' (expected f32, tf32 or bf16)

// Code generation places tensors where moe-plan-buffers said: a function
// that was never planned is refused.
// expected-error@+1 {{has no buffer plan: run moe-plan-buffers}}
func.func @not_planned(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = moe.add %x, %x : tensor<4xf32>
  return %y : tensor<4xf32>
}

// -----

// An op that lost its offsets (a transform after the planner).
func.func @missing_offsets(%x: tensor<4xf32>) -> tensor<4xf32>
    attributes {moe.arena_bytes = 64 : i64} {
  // expected-error@+1 {{has no arena offsets for its results}}
  %y = moe.add %x, %x : tensor<4xf32>
  return %y : tensor<4xf32>
}

// -----

// Model-level layers must be decomposed first: no runtime call runs them.
func.func @not_decomposed(%x: tensor<8x4xf32>, %w: tensor<4x4xf32>)
    -> tensor<8x4xf32> attributes {moe.arena_bytes = 256 : i64} {
  // expected-error@+1 {{has no lowering to the runtime step ABI}}
  %y = moe.linear %x, %w {moe.offsets = array<i64: 0>}
      : (tensor<8x4xf32>, tensor<4x4xf32>) -> tensor<8x4xf32>
  return %y : tensor<8x4xf32>
}

// -----

// Only splat constants have a runtime form.
func.func @dense_constant() -> tensor<2xf32> attributes {moe.arena_bytes = 64 : i64} {
  // expected-error@+1 {{only splat f32 tensor constants are supported}}
  %c = arith.constant {moe.offsets = array<i64: 0>} dense<[1.0, 2.0]> : tensor<2xf32>
  return %c : tensor<2xf32>
}

// -----

// Dynamic shapes have no arena size.
// expected-error@+1 {{argument #0 has type 'tensor<?xf32>', which code generation does not support}}
func.func @dynamic(%x: tensor<?xf32>) -> tensor<?xf32> attributes {moe.arena_bytes = 64 : i64} {
  return %x : tensor<?xf32>
}

// -----

// The LSTM's backward pass reads the state its forward op saved after its
// output, so `output` must be that op's result.
func.func @lstm_grad_without_forward(%x: tensor<2x5x8xf32>, %wx: tensor<8x32xf32>,
    %wh: tensor<8x32xf32>, %b: tensor<32xf32>, %y: tensor<2x5x8xf32>,
    %dy: tensor<2x5x8xf32>) -> tensor<2x5x8xf32> attributes {moe.arena_bytes = 8192 : i64} {
  // expected-error@+1 {{'output' must be the result of the moe.lstm it differentiates}}
  %dx, %dwx, %dwh, %db = moe.lstm_grad %x weights(%wx, %wh, %b) output %y, %dy
      {moe.offsets = array<i64: 0, 512, 1536, 2560>}
      : (tensor<2x5x8xf32>, tensor<8x32xf32>, tensor<8x32xf32>, tensor<32xf32>,
         tensor<2x5x8xf32>, tensor<2x5x8xf32>)
      -> (tensor<2x5x8xf32>, tensor<8x32xf32>, tensor<8x32xf32>, tensor<32xf32>)
  return %dx : tensor<2x5x8xf32>
}

// -----

// A hand-edited plan is checked before the step writes to the arena: every
// buffer lies inside it, at an offset the planner could have chosen, and
// the results of one op are apart.
// expected-error@+1 {{has moe.arena_bytes = -64 : i64, expected a non-negative i64}}
func.func @negative_arena(%x: tensor<4xf32>) -> tensor<4xf32> attributes {moe.arena_bytes = -64 : i64} {
  %y = moe.add %x, %x {moe.offsets = array<i64: 0>} : tensor<4xf32>
  return %y : tensor<4xf32>
}

// -----

func.func @negative_offset(%x: tensor<4xf32>) -> tensor<4xf32> attributes {moe.arena_bytes = 128 : i64} {
  // expected-error@+1 {{'moe.add' op result #0 at arena offset -128 is negative (-1 alone marks a pool-allocated result)}}
  %y = moe.add %x, %x {moe.offsets = array<i64: -128>} : tensor<4xf32>
  return %y : tensor<4xf32>
}

// -----

func.func @misaligned_offset(%x: tensor<4xf32>) -> tensor<4xf32> attributes {moe.arena_bytes = 128 : i64} {
  // expected-error@+1 {{'moe.add' op result #0 at arena offset 32 is not a multiple of 64 bytes}}
  %y = moe.add %x, %x {moe.offsets = array<i64: 32>} : tensor<4xf32>
  return %y : tensor<4xf32>
}

// -----

// 16x8 floats take 512 bytes: at 64 they end at 576, past the arena.
func.func @past_the_arena(%x: tensor<16x8xf32>) -> tensor<16x8xf32> attributes {moe.arena_bytes = 512 : i64} {
  // expected-error@+1 {{'moe.add' op result #0 at arena offset 64 with 512 bytes ends past moe.arena_bytes = 512}}
  %y = moe.add %x, %x {moe.offsets = array<i64: 64>} : tensor<16x8xf32>
  return %y : tensor<16x8xf32>
}

// -----

// An offset near 2^63 must not wrap to a small end.
func.func @offset_wraps(%x: tensor<16x8xf32>) -> tensor<16x8xf32> attributes {moe.arena_bytes = 512 : i64} {
  // expected-error@+1 {{'moe.add' op result #0 at arena offset 9223372036854775744 with 512 bytes ends past moe.arena_bytes = 512}}
  %y = moe.add %x, %x {moe.offsets = array<i64: 9223372036854775744>} : tensor<16x8xf32>
  return %y : tensor<16x8xf32>
}

// -----

// The gates (128 bytes at 128) overlap the expert ids (128 bytes at 64).
func.func @overlapping_results(%logits: tensor<16x8xf32>) -> tensor<16x2xi32> attributes {moe.arena_bytes = 4096 : i64} {
  // expected-error@+1 {{'moe.noisy_top_k' op result #1 at arena offset 128 overlaps result #0 at arena offset 64}}
  %e, %g, %h, %s, %top = moe.noisy_top_k %logits {k = 2, rng_stream = 3,
      moe.offsets = array<i64: 64, 128, 256, 768, 1280>}
      : (tensor<16x8xf32>) -> (tensor<16x2xi32>, tensor<16x2xf32>,
         tensor<16x8xf32>, tensor<16x8xf32>, tensor<16x3xf32>)
  return %e : tensor<16x2xi32>
}

// -----

// Buffers of different ops must be apart while both are live: %b (512
// bytes at 256) overlaps %a (at 0), which the last add still reads.
func.func @live_buffers_overlap(%x: tensor<16x8xf32>) -> tensor<16x8xf32> attributes {moe.arena_bytes = 2048 : i64} {
  %a = moe.add %x, %x {moe.offsets = array<i64: 0>} : tensor<16x8xf32>
  // expected-error@+1 {{'moe.add' op result #0 at arena offset 256 overlaps result #0 of moe.add at arena offset 0, which is still live}}
  %b = moe.add %x, %x {moe.offsets = array<i64: 256>} : tensor<16x8xf32>
  %c = moe.add %a, %b {moe.offsets = array<i64: 1024>} : tensor<16x8xf32>
  return %c : tensor<16x8xf32>
}

// -----

// Once its last reader has run, a buffer's place is free (no error): %c
// takes %a's, and the view %v keeps %b alive until the return reads it.
func.func @reuse_after_last_read(%x: tensor<16x8xf32>) -> tensor<128xf32> attributes {moe.arena_bytes = 1536 : i64} {
  %a = moe.add %x, %x {moe.offsets = array<i64: 0>} : tensor<16x8xf32>
  %b = moe.add %a, %a {moe.offsets = array<i64: 512>} : tensor<16x8xf32>
  %c = moe.add %b, %b {moe.offsets = array<i64: 0>} : tensor<16x8xf32>
  %v = tensor.collapse_shape %b [[0, 1]] : tensor<16x8xf32> into tensor<128xf32>
  %d = moe.add %c, %c {moe.offsets = array<i64: 1024>} : tensor<16x8xf32>
  return %v : tensor<128xf32>
}

// -----

// A view keeps its source's buffer live: %c overlaps %b, which the return
// still reads through %v.
func.func @view_keeps_buffer_live(%x: tensor<16x8xf32>) -> tensor<128xf32> attributes {moe.arena_bytes = 1536 : i64} {
  %a = moe.add %x, %x {moe.offsets = array<i64: 0>} : tensor<16x8xf32>
  %b = moe.add %a, %a {moe.offsets = array<i64: 512>} : tensor<16x8xf32>
  %v = tensor.collapse_shape %b [[0, 1]] : tensor<16x8xf32> into tensor<128xf32>
  // expected-error@+1 {{'moe.add' op result #0 at arena offset 512 overlaps result #0 of moe.add at arena offset 512, which is still live}}
  %c = moe.add %a, %a {moe.offsets = array<i64: 512>} : tensor<16x8xf32>
  return %v : tensor<128xf32>
}
