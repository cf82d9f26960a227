// RUN: moe-opt %examples/lstm2x512_moe64.mlir --moe-inference-pipeline | FileCheck %s
// RUN: moe-opt %examples/lstm2x512_moe64.mlir --moe-inference-pipeline="threshold-capacity=8" | FileCheck %s --check-prefix=FULL
// RUN: not moe-opt %examples/lstm2x512_moe64.mlir --moe-inference-pipeline="threshold-capacity=-1" 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: moe-opt %examples/small_lstm_moe.mlir --moe-inference-pipeline | FileCheck %s --check-prefix=NOISY

// A batchwise-trained model evaluates with its learned thresholds, without
// dropout, with the full softmax, and with no backward pass or optimizer.
// The threshold mask holds threshold-capacity (2 by default) times the k *
// tokens = 8 * 8192 assignments of training, 131072 of the 64 * 8192
// pairs, and so does everything downstream.
// CHECK-LABEL: func.func @lstm2x512_moe64(
// CHECK-NOT: moe.dropout
// CHECK: moe.threshold_mask %{{.*}} : (tensor<8192x64xf32>, tensor<64xf32>) -> (tensor<8193xi32>, tensor<131072xi32>, tensor<131072xf32>)
// CHECK: moe.dispatch_plan {{.*}} -> (tensor<65xi32>, tensor<131072xi32>, tensor<131072xi32>)
// CHECK: moe.dispatch {{.*}} -> tensor<131072x512xf32>
// CHECK: moe.grouped_matmul {{.*}} -> tensor<131072x512xf32>
// CHECK: moe.combine {{.*}} : (tensor<131072x512xf32>, tensor<131072xf32>, tensor<131072xi32>, tensor<8193xi32>) -> tensor<8192x512xf32>
// CHECK-NOT: moe.batchwise_mask
// CHECK: moe.softmax_cross_entropy
// CHECK-NOT: num_samples
// CHECK-NOT: _grad
// CHECK-NOT: moe.adam_update
// CHECK-NOT: train_step

// A factor of n / k = 8 is room for every (token, expert) pair.
// FULL: moe.threshold_mask %{{.*}} -> (tensor<8193xi32>, tensor<524288xi32>, tensor<524288xf32>)
// FULL: moe.dispatch {{.*}} -> tensor<524288x512xf32>

// BAD: error: threshold-capacity must be positive (a factor on the assignments of training), got -1

// Noisy top-k gates drop their noise at inference.
// NOISY-LABEL: func.func @small_lstm_moe(
// NOISY: moe.noisy_top_k %{{[^,]*}} {k = 2 : i64, {{.*}}} : (tensor<320x8xf32>)
// NOISY-NOT: moe.load_estimate

// RUN: moe-opt %examples/lstm2x512_hmoe512.mlir --moe-inference-pipeline 2>/dev/null | FileCheck %s --check-prefix=HIER
// RUN: moe-opt %examples/lstm2x512_hmoe512.mlir --moe-inference-pipeline="threshold-capacity=1.5" 2>/dev/null | FileCheck %s --check-prefix=HIER15
// RUN: moe-opt %examples/lstm2x512_hmoe512.mlir --moe-inference-pipeline="threshold-capacity=100" 2>/dev/null | FileCheck %s --check-prefix=HIERFULL
// A batchwise hierarchy evaluates with the thresholds of both levels, each
// with room for twice what it keeps in training: k_primary * 8192 = 16384
// rows reach the groups in training, 32768 here; k_secondary * 16384 =
// 65536 assignments, 131072 here.
// HIER-LABEL: func.func @lstm2x512_hmoe512(
// HIER-NOT: batchwise
// HIER: moe.threshold_mask %{{.*}} : (tensor<8192x32xf32>, tensor<32xf32>) -> (tensor<8193xi32>, tensor<32768xi32>, tensor<32768xf32>)
// HIER: moe.dispatch {{.*}} -> tensor<32768x512xf32>
// HIER: moe.grouped_threshold_mask %{{.*}} : (tensor<32768x16xf32>, tensor<32x16xf32>, tensor<33xi32>) -> (tensor<32769xi32>, tensor<131072xi32>, tensor<131072xf32>)
// HIER: moe.compose_routes_csr {{.*}} -> (tensor<8193xi32>, tensor<131072xi32>, tensor<131072xf32>)
// HIER: moe.dispatch_plan {{.*}} -> (tensor<513xi32>, tensor<131072xi32>, tensor<131072xi32>)
// HIER: moe.dispatch {{.*}} -> tensor<131072x512xf32>
// HIER: moe.grouped_matmul {{.*}} -> tensor<131072x512xf32>
// HIER: moe.combine {{.*}} : (tensor<131072x512xf32>, tensor<131072xf32>, tensor<131072xi32>, tensor<8193xi32>)
// HIER-NOT: _grad

// 1.5 times: ceil(1.5 * 16384) = 24576 rows and ceil(1.5 * 65536) = 98304
// assignments.
// HIER15: moe.threshold_mask %{{.*}} -> (tensor<8193xi32>, tensor<24576xi32>, tensor<24576xf32>)
// HIER15: moe.grouped_threshold_mask %{{.*}} : (tensor<24576x16xf32>, tensor<32x16xf32>, tensor<33xi32>) -> (tensor<24577xi32>, tensor<98304xi32>, tensor<98304xf32>)
// HIER15: moe.combine {{.*}} : (tensor<98304x512xf32>,

// A large factor holds every choice: all 32 groups for each of the 8192
// tokens, all 16 experts of its group for each of those rows.
// HIERFULL: moe.threshold_mask %{{.*}} -> (tensor<8193xi32>, tensor<262144xi32>, tensor<262144xf32>)
// HIERFULL: moe.grouped_threshold_mask %{{.*}} : (tensor<262144x16xf32>, tensor<32x16xf32>, tensor<33xi32>) -> (tensor<262145xi32>, tensor<4194304xi32>, tensor<4194304xf32>)
// HIERFULL: moe.compose_routes_csr {{.*}} -> (tensor<8193xi32>, tensor<4194304xi32>, tensor<4194304xf32>)
