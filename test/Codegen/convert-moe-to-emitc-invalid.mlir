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
