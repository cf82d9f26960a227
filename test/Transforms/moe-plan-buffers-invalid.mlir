// RUN: moe-opt %s -split-input-file --moe-plan-buffers -verify-diagnostics

// Sizes the planner adds up must not wrap: each tensor fits in int64, but
// the arena holding them all at once, or an LSTM's saved state, does not.

// Sixteen live buffers of 2^59 bytes need a 2^63-byte arena.
func.func @arena_overflow(%x: tensor<144115188075855872xf32>) -> (tensor<144115188075855872xf32>, tensor<144115188075855872xf32>, tensor<144115188075855872xf32>, tensor<144115188075855872xf32>, tensor<144115188075855872xf32>, tensor<144115188075855872xf32>, tensor<144115188075855872xf32>, tensor<144115188075855872xf32>, tensor<144115188075855872xf32>, tensor<144115188075855872xf32>, tensor<144115188075855872xf32>, tensor<144115188075855872xf32>, tensor<144115188075855872xf32>, tensor<144115188075855872xf32>, tensor<144115188075855872xf32>, tensor<144115188075855872xf32>) {
  %y0 = moe.scale %x {factor = 2.0 : f32} : tensor<144115188075855872xf32>
  %y1 = moe.scale %x {factor = 2.0 : f32} : tensor<144115188075855872xf32>
  %y2 = moe.scale %x {factor = 2.0 : f32} : tensor<144115188075855872xf32>
  %y3 = moe.scale %x {factor = 2.0 : f32} : tensor<144115188075855872xf32>
  %y4 = moe.scale %x {factor = 2.0 : f32} : tensor<144115188075855872xf32>
  %y5 = moe.scale %x {factor = 2.0 : f32} : tensor<144115188075855872xf32>
  %y6 = moe.scale %x {factor = 2.0 : f32} : tensor<144115188075855872xf32>
  %y7 = moe.scale %x {factor = 2.0 : f32} : tensor<144115188075855872xf32>
  %y8 = moe.scale %x {factor = 2.0 : f32} : tensor<144115188075855872xf32>
  %y9 = moe.scale %x {factor = 2.0 : f32} : tensor<144115188075855872xf32>
  %y10 = moe.scale %x {factor = 2.0 : f32} : tensor<144115188075855872xf32>
  %y11 = moe.scale %x {factor = 2.0 : f32} : tensor<144115188075855872xf32>
  %y12 = moe.scale %x {factor = 2.0 : f32} : tensor<144115188075855872xf32>
  %y13 = moe.scale %x {factor = 2.0 : f32} : tensor<144115188075855872xf32>
  %y14 = moe.scale %x {factor = 2.0 : f32} : tensor<144115188075855872xf32>
  // expected-error@+1 {{'moe.scale' op result #0 of type 'tensor<144115188075855872xf32>' does not fit in an arena of @arena_overflow: its size or the arena's reaches 2^63 bytes}}
  %y15 = moe.scale %x {factor = 2.0 : f32} : tensor<144115188075855872xf32>
  return %y0, %y1, %y2, %y3, %y4, %y5, %y6, %y7, %y8, %y9, %y10, %y11, %y12, %y13, %y14, %y15 : tensor<144115188075855872xf32>, tensor<144115188075855872xf32>, tensor<144115188075855872xf32>, tensor<144115188075855872xf32>, tensor<144115188075855872xf32>, tensor<144115188075855872xf32>, tensor<144115188075855872xf32>, tensor<144115188075855872xf32>, tensor<144115188075855872xf32>, tensor<144115188075855872xf32>, tensor<144115188075855872xf32>, tensor<144115188075855872xf32>, tensor<144115188075855872xf32>, tensor<144115188075855872xf32>, tensor<144115188075855872xf32>, tensor<144115188075855872xf32>
}

// -----

// A projected LSTM's output [2^20, 2^20, 1] fits; its saved state of
// 6 * 2^21 + 1 floats per step does not.
func.func @lstm_state_overflow(%x: tensor<1048576x1048576x1xf32>, %wx: tensor<1x8388608xf32>, %wh: tensor<1x8388608xf32>, %b: tensor<8388608xf32>, %wp: tensor<2097152x1xf32>) -> tensor<1048576x1048576x1xf32> {
  // expected-error@+1 {{'moe.lstm' op result #0 of type 'tensor<1048576x1048576x1xf32>' does not fit in an arena of @lstm_state_overflow}}
  %h = moe.lstm %x weights(%wx, %wh, %b) projection(%wp) : (tensor<1048576x1048576x1xf32>, tensor<1x8388608xf32>, tensor<1x8388608xf32>, tensor<8388608xf32>, tensor<2097152x1xf32>) -> tensor<1048576x1048576x1xf32>
  return %h : tensor<1048576x1048576x1xf32>
}
