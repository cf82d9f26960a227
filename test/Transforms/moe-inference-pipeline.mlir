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

// RUN: moe-opt %examples/lstm2x512_hmoe512.mlir --moe-inference-pipeline 2>/dev/null | FileCheck %s --check-prefix=HIER
// A batchwise hierarchy evaluates with the thresholds of both levels:
// 8192 tokens may reach all 32 groups, each row all 16 experts of its group.
// HIER-LABEL: func.func @lstm2x512_hmoe512(
// HIER-NOT: batchwise
// HIER: moe.threshold_mask %{{.*}} : (tensor<8192x32xf32>, tensor<32xf32>) -> (tensor<8193xi32>, tensor<262144xi32>, tensor<262144xf32>)
// HIER: moe.grouped_threshold_mask %{{.*}} : (tensor<262144x16xf32>, tensor<32x16xf32>, tensor<33xi32>) -> (tensor<262145xi32>, tensor<4194304xi32>, tensor<4194304xf32>)
// HIER: moe.compose_routes_csr {{.*}} -> (tensor<8193xi32>, tensor<4194304xi32>, tensor<4194304xf32>)
// HIER-NOT: _grad
