// RUN: moe-opt %s --moe-add-decode-step=skip-unsupported=true | FileCheck %s

// What --moe-train-pipeline runs: a model that cannot run one position at
// a time gets no decode functions and keeps the reason, which the manifest
// carries to moe-run (test/Integration/hmoe-batchwise.mlir).

// CHECK-LABEL: func.func @self_attention(
// CHECK-SAME: attributes {moe.no_decode_step = "'moe.attention' op cannot run one position at a time in moe-add-decode-step: it attends over the decoder's own positions"}
// CHECK-NOT: func.func @self_attention_decode_step
func.func @self_attention(
    %tokens: tensor<2x3xi32> {moe.input = "tokens"},
    %targets: tensor<2x3xi32> {moe.input = "targets"},
    %table: tensor<10x4xf32> {moe.param = "embedding", moe.init = #moe.init<zeros>},
    %u: tensor<4x4xf32> {moe.param = "u", moe.init = #moe.init<zeros>},
    %w: tensor<4x4xf32> {moe.param = "w", moe.init = #moe.init<zeros>},
    %v: tensor<4xf32> {moe.param = "v", moe.init = #moe.init<zeros>},
    %sw: tensor<10x4xf32> {moe.param = "softmax.weights", moe.init = #moe.init<zeros>},
    %sb: tensor<10xf32> {moe.param = "softmax.bias", moe.init = #moe.init<zeros>})
    -> tensor<f32> {
  %e = moe.embedding %table[%tokens] : (tensor<10x4xf32>, tensor<2x3xi32>) -> tensor<2x3x4xf32>
  %c = moe.attention %e, %e weights(%u, %w, %v) : (tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<4x4xf32>, tensor<4x4xf32>, tensor<4xf32>) -> tensor<2x3x4xf32>
  %ce = moe.softmax_cross_entropy %c, %targets weights(%sw, %sb) : (tensor<2x3x4xf32>, tensor<2x3xi32>, tensor<10x4xf32>, tensor<10xf32>) -> tensor<f32>
  return %ce : tensor<f32>
}

// A model that can gets its decode step and no attribute.
// CHECK-LABEL: func.func @lm(
// CHECK-NOT: moe.no_decode_step
// CHECK: func.func @lm_decode_step(
func.func @lm(
    %tokens: tensor<2x3xi32> {moe.input = "tokens"},
    %targets: tensor<2x3xi32> {moe.input = "targets"},
    %table: tensor<10x4xf32> {moe.param = "embedding", moe.init = #moe.init<zeros>},
    %sw: tensor<10x4xf32> {moe.param = "softmax.weights", moe.init = #moe.init<zeros>},
    %sb: tensor<10xf32> {moe.param = "softmax.bias", moe.init = #moe.init<zeros>})
    -> tensor<f32> {
  %e = moe.embedding %table[%tokens] : (tensor<10x4xf32>, tensor<2x3xi32>) -> tensor<2x3x4xf32>
  %ce = moe.softmax_cross_entropy %e, %targets weights(%sw, %sb) : (tensor<2x3x4xf32>, tensor<2x3xi32>, tensor<10x4xf32>, tensor<10xf32>) -> tensor<f32>
  return %ce : tensor<f32>
}
