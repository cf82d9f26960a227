// RUN: moe-translate --moe-to-manifest -split-input-file %s | FileCheck %s

// FLOPs of the cross-entropy gradient, as the runtime does the work
// (runtime/step/LossOps.cpp): 6 tokens x 8 features x 10 classes = 480
// multiply-adds. The forward op's softmax fits the runtime's cache and is
// reused, so the gradient is the two products, 4 x 480 FLOPs.
// CHECK: "flops": 1920,
func.func @full_train_step(%h: tensor<2x3x8xf32> {moe.state = "h"}, %t: tensor<2x3xi32> {moe.input = "targets"}, %w: tensor<10x8xf32> {moe.param = "w", moe.init = #moe.init<zeros>}, %b: tensor<10xf32> {moe.param = "b", moe.init = #moe.init<zeros>}, %s: tensor<f32> {moe.state = "s"}) -> tensor<2x3x8xf32> attributes {moe.arena_bytes = 1024 : i64} {
  %dx, %dw, %db = moe.softmax_cross_entropy_grad %h, %t, %w, %b, %s {moe.offsets = array<i64: 0, 256, 640>} : (tensor<2x3x8xf32>, tensor<2x3xi32>, tensor<10x8xf32>, tensor<10xf32>, tensor<f32>) -> (tensor<2x3x8xf32>, tensor<10x8xf32>, tensor<10xf32>)
  return %dx : tensor<2x3x8xf32>
}

// -----

// A sampled softmax draws its classes again: the logits of 3 samples and
// the target (6 x 8 x 4 = 192 multiply-adds) plus the two products, 6 x 192.
// CHECK: "flops": 1152,
func.func @sampled_train_step(%h: tensor<2x3x8xf32> {moe.state = "h"}, %t: tensor<2x3xi32> {moe.input = "targets"}, %w: tensor<10x8xf32> {moe.param = "w", moe.init = #moe.init<zeros>}, %b: tensor<10xf32> {moe.param = "b", moe.init = #moe.init<zeros>}, %s: tensor<f32> {moe.state = "s"}) -> tensor<2x3x8xf32> attributes {moe.arena_bytes = 1024 : i64} {
  %dx, %dw, %db = moe.softmax_cross_entropy_grad %h, %t, %w, %b, %s {num_samples = 3 : i64, moe.offsets = array<i64: 0, 256, 640>} : (tensor<2x3x8xf32>, tensor<2x3xi32>, tensor<10x8xf32>, tensor<10xf32>, tensor<f32>) -> (tensor<2x3x8xf32>, tensor<10x8xf32>, tensor<10xf32>)
  return %dx : tensor<2x3x8xf32>
}

// -----

// 1024 tokens x 65537 classes of floats exceed the 256 MiB cache by one
// class: the runtime recomputes the logits, 6 x 1024 x 8 x 65537 FLOPs.
// CHECK: "flops": 3221274624,
func.func @uncached_train_step(%h: tensor<1024x8xf32> {moe.state = "h"}, %t: tensor<1024xi32> {moe.input = "targets"}, %w: tensor<65537x8xf32> {moe.param = "w", moe.init = #moe.init<zeros>}, %b: tensor<65537xf32> {moe.param = "b", moe.init = #moe.init<zeros>}, %s: tensor<f32> {moe.state = "s"}) -> tensor<1024x8xf32> attributes {moe.arena_bytes = 2686976 : i64} {
  %dx, %dw, %db = moe.softmax_cross_entropy_grad %h, %t, %w, %b, %s {moe.offsets = array<i64: 0, 32768, 2129984>} : (tensor<1024x8xf32>, tensor<1024xi32>, tensor<65537x8xf32>, tensor<65537xf32>, tensor<f32>) -> (tensor<1024x8xf32>, tensor<65537x8xf32>, tensor<65537xf32>)
  return %dx : tensor<1024x8xf32>
}

// -----

// Attention over 2^31 source and target steps: its [S_y, S_x] weights alone
// are 2^62 multiply-adds per unit of E + d_x, past int64_t. Counted in
// double: 2 x (2^32 + 2^32 + 3 x 2^62), not a wrapped negative count.
// CHECK: "flops": 2.7670116127744197e+19,
func.func @wide_train_step(%src: tensor<1x2147483648x1xf32> {moe.state = "src"}, %tgt: tensor<1x2147483648x1xf32> {moe.state = "tgt"}, %u: tensor<1x2xf32> {moe.param = "u", moe.init = #moe.init<zeros>}, %w: tensor<1x2xf32> {moe.param = "w", moe.init = #moe.init<zeros>}, %v: tensor<2xf32> {moe.param = "v", moe.init = #moe.init<zeros>}) -> tensor<1x2147483648x1xf32> attributes {moe.arena_bytes = 8589934592 : i64} {
  %ctx = moe.attention %src, %tgt weights(%u, %w, %v) {moe.offsets = array<i64: 0>} : (tensor<1x2147483648x1xf32>, tensor<1x2147483648x1xf32>, tensor<1x2xf32>, tensor<1x2xf32>, tensor<2xf32>) -> tensor<1x2147483648x1xf32>
  return %ctx : tensor<1x2147483648x1xf32>
}
