// RUN: not moe-opt %s 2>&1 | FileCheck %s

// A model with a mistake: moe-opt exits non-zero and reports the error on
// stderr as file:line:col, pointing at the op, in the form editors and CI
// logs recognise; no IR is printed.

// CHECK: {{.*}}cli-errors.mlir:[[# @LINE + 4]]:8: error: 'moe.linear' op expects weights of shape 32xN ([d_in, d_out]) but got 16x10
// CHECK-NEXT: %y = moe.linear %x, %w
// CHECK-NOT: module
func.func @wrong_weights(%x: tensor<16x32xf32>, %w: tensor<16x10xf32>) -> tensor<16x10xf32> {
  %y = moe.linear %x, %w : (tensor<16x32xf32>, tensor<16x10xf32>) -> tensor<16x10xf32>
  return %y : tensor<16x10xf32>
}
