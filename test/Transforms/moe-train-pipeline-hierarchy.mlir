// RUN: moe-opt %examples/lstm2x512_hmoe32768.mlir --moe-train-pipeline 2>/dev/null | FileCheck %s
// RUN: moe-opt %examples/lstm2x512_hmoe512.mlir --moe-train-pipeline="optimizer=none eval=false" 2>/dev/null | FileCheck %s --check-prefix=GRADS
// RUN: moe-opt %examples/lstm2x512_hmoe512.mlir --moe-train-pipeline="threshold-capacity=1.5" 2>/dev/null | FileCheck %s --check-prefix=CAP
// RUN: not moe-opt %examples/lstm2x512_hmoe512.mlir --moe-train-pipeline="threshold-capacity=0" 2>&1 | FileCheck %s --check-prefix=BAD

// The paper's 32768-expert hierarchical model (32 groups of 1024, batchwise
// at both levels): each group takes 2 * 8192 / 32 = 512 tokens, each expert
// 4 * 512 / 1024 = 2 of its group's rows; the training step differentiates
// both masks, the composition and both levels' Eq. 8, Adam updates the 14
// parameters, and the evaluation copy routes with the thresholds of both
// levels, with room for twice the rows (2 * 16384) and assignments (2 *
// 65536) of training (threshold-capacity = 2 by default) rather than for
// every choice (262144 rows, 268M assignments).
// CHECK-LABEL: func.func @lstm2x512_hmoe32768_train_step(
// CHECK: moe.batchwise_mask %{{.*}} {m = 512 : i64, {{.*}}} : (tensor<8192x32xf32>)
// CHECK: moe.batchwise_threshold_loss
// CHECK: moe.grouped_batchwise_mask %{{.*}} {groups = 32 : i64, m = 2 : i64, {{.*}}} : (tensor<16384x1024xf32>) -> (tensor<16384x1024xf32>, tensor<16385xi32>, tensor<65536xi32>, tensor<65536xf32>)
// CHECK: moe.grouped_batchwise_threshold_loss %{{.*}} : (tensor<16384x1024xf32>, tensor<16384x1024xf32>, tensor<32x1024xf32>)
// CHECK: moe.compose_routes_csr {{.*}}experts_per_group = 1024 : i64{{.*}} -> (tensor<8193xi32>, tensor<65536xi32>, tensor<65536xf32>)
// CHECK: moe.compose_routes_csr_grad
// CHECK: moe.grouped_batchwise_threshold_loss_grad
// CHECK: moe.batchwise_threshold_loss_grad
// CHECK-COUNT-14: moe.adam_update
// CHECK-NOT: moe.adam_update
// CHECK-LABEL: func.func @lstm2x512_hmoe32768_eval(
// CHECK-NOT: batchwise
// CHECK: moe.threshold_mask %{{.*}} : (tensor<8192x32xf32>, tensor<32xf32>) -> (tensor<8193xi32>, tensor<32768xi32>, tensor<32768xf32>)
// CHECK: moe.grouped_threshold_mask %{{.*}} : (tensor<32768x1024xf32>, tensor<32x1024xf32>, tensor<33xi32>) -> (tensor<32769xi32>, tensor<131072xi32>, tensor<131072xf32>)
// CHECK: moe.compose_routes_csr
// CHECK-NOT: _grad
// CHECK: return

// Every parameter of the 512-expert hierarchy gets a gradient, both levels'
// thresholds through Eq. 8.
// GRADS-LABEL: func.func @lstm2x512_hmoe512_train_step(
// GRADS-SAME: {moe.grad = "moe.primary_gate_weights"}
// GRADS-SAME: {moe.grad = "moe.primary_thresholds"}
// GRADS-SAME: {moe.grad = "moe.secondary_gate_weights"}
// GRADS-SAME: {moe.grad = "moe.secondary_thresholds"}
// GRADS-NOT: func.func @lstm2x512_hmoe512_eval

// The pipeline passes threshold-capacity to the evaluation copy's
// lowering: 1.5 times the 16384 rows and 65536 assignments of training;
// the training step keeps its batchwise masks. A factor that is not
// positive is one error, before any pass runs.
// CAP-LABEL: func.func @lstm2x512_hmoe512_train_step(
// CAP: moe.grouped_batchwise_mask %{{.*}} : (tensor<16384x16xf32>) -> (tensor<16384x16xf32>, tensor<16385xi32>, tensor<65536xi32>, tensor<65536xf32>)
// CAP-LABEL: func.func @lstm2x512_hmoe512_eval(
// CAP: moe.threshold_mask %{{.*}} -> (tensor<8193xi32>, tensor<24576xi32>, tensor<24576xf32>)
// CAP: moe.grouped_threshold_mask %{{.*}} : (tensor<24576x16xf32>, tensor<32x16xf32>, tensor<33xi32>) -> (tensor<24577xi32>, tensor<98304xi32>, tensor<98304xf32>)
// BAD: error: threshold-capacity must be positive (a factor on the assignments of training), got 0
// BAD-NOT: error
