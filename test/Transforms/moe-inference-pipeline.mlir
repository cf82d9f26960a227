// RUN: moe-opt %examples/lstm2x512_moe64.mlir --moe-inference-pipeline | FileCheck %s
// RUN: moe-opt %examples/small_lstm_moe.mlir --moe-inference-pipeline | FileCheck %s --check-prefix=NOISY

// A batchwise-trained model evaluates with its learned thresholds, without
// dropout, with the full softmax, and with no backward pass or optimizer.
// CHECK-LABEL: func.func @lstm2x512_moe64(
// CHECK-NOT: moe.dropout
// CHECK: moe.threshold_mask
// CHECK-NOT: moe.batchwise_mask
// CHECK: moe.softmax_cross_entropy
// CHECK-NOT: num_samples
// CHECK-NOT: _grad
// CHECK-NOT: moe.adam_update
// CHECK-NOT: train_step

// Noisy top-k gates drop their noise at inference.
// NOISY-LABEL: func.func @small_lstm_moe(
// NOISY: moe.noisy_top_k %{{[^,]*}} {k = 2 : i64, {{.*}}} : (tensor<320x8xf32>)
// NOISY-NOT: moe.load_estimate
