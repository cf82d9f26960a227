// RUN: moe-opt %examples/tiny_moe.mlir --moe-train-pipeline="lr=0.01 warmup-steps=5 constant-steps=5" | FileCheck %s
// RUN: moe-opt %examples/lstm2x512_moe512.mlir --moe-train-pipeline | FileCheck %s --check-prefix=BATCHWISE
// RUN: not moe-opt %examples/tiny_moe.mlir --moe-train-pipeline="lr=0" 2>&1 | FileCheck %s --check-prefix=BADLR
// RUN: not moe-opt %examples/tiny_moe.mlir --moe-train-pipeline="learning-rate=1" 2>&1 | FileCheck %s --check-prefix=BADOPT
// RUN: moe-opt %examples/tiny_moe.mlir --moe-train-pipeline="optimizer=none eval=false" 2>/dev/null | FileCheck %s --check-prefix=GRADS
// RUN: moe-opt %examples/tiny_moe.mlir --moe-train-pipeline="sparse-gradients=off" 2>/dev/null | FileCheck %s --check-prefix=DENSE
// RUN: moe-opt %examples/tiny_moe.mlir --moe-train-pipeline="sparse-gradients=on" 2>/dev/null | FileCheck %s --check-prefix=SPARSE
// RUN: moe-opt %examples/tiny_moe.mlir --moe-train-pipeline="sparse-gradients=on data-parallel=true" 2>/dev/null | FileCheck %s --check-prefix=DPSPARSE
// RUN: not moe-opt %examples/tiny_moe.mlir --moe-train-pipeline="optimizer=sgd" 2>&1 | FileCheck %s --check-prefix=BADOPTIMIZER
// RUN: moe-opt %examples/tiny_moe.mlir --moe-train-pipeline="router-precision=tf32" 2>/dev/null | FileCheck %s --check-prefix=TF32
// RUN: not moe-opt %examples/tiny_moe.mlir --moe-train-pipeline="router-precision=bf16" 2>&1 | FileCheck %s --check-prefix=BADROUTER

// router-precision=tf32: the fused router of the training step and the
// gate product of the (noise-free) evaluation copy allow TF32.
// TF32: moe.fused_route {{.*}}allow_tf32
// TF32-LABEL: func.func @tiny_moe_eval
// TF32: moe.matmul {{.*}}allow_tf32
// BADROUTER: Cannot find option named 'bf16'

// The tiny LM becomes a full training step: the model function stays (in
// primitive form) beside @tiny_moe_train_step, which holds the forward pass,
// its backward pass, and one Adam update for each of the 12 parameters.
// CHECK-LABEL: func.func @tiny_moe(
// CHECK-NOT: moe.moe_layer
// CHECK: moe.fused_route
// CHECK-NOT: _grad
// CHECK-LABEL: func.func @tiny_moe_train_step(
// CHECK-SAME: {moe.state = "step"}
// CHECK-SAME: -> (tensor<f32> {moe.output = "loss"}, tensor<f32> {moe.output = "lr"}
// CHECK-NOT: moe.moe_layer
// CHECK: moe.fused_route
// CHECK: moe.grouped_matmul
// CHECK: moe.combine
// CHECK: moe.softmax_cross_entropy_grad
// CHECK: moe.combine_grad
// CHECK: moe.grouped_matmul_grad
// CHECK: moe.fused_route_grad {{.*}} d_gate {{.*}} d_load {{.*}} d_importance
// The embedding (50 rows of 8) keeps exact Adam: sparse-gradients=auto
// leaves tables under 64 MiB dense.
// CHECK-NOT: _row_grad
// CHECK: moe.embedding_grad
// CHECK: moe.lr_schedule %{{.*}} {base_lr = 0.00999999977 : f32, constant_steps = 5 : i64, {{.*}}warmup_steps = 5 : i64}
// CHECK-COUNT-12: moe.adam_update %
// CHECK-NOT: moe.adam_update
// CHECK: return
// The evaluation copy (moe-add-eval): inference mode, no noise so no fused
// router, no backward pass.
// CHECK-LABEL: func.func @tiny_moe_eval(
// CHECK-SAME: attributes {moe.arena_bytes = {{[0-9]+}} : i64, moe.inference}
// CHECK-NOT: moe.fused_route
// CHECK: moe.noisy_top_k
// CHECK-NOT: _grad
// CHECK: return

// sparse-gradients=on gives it the row-sparse gradient and lazy Adam;
// off keeps the dense gradient and Adam.
// SPARSE-LABEL: func.func @tiny_moe_train_step(
// SPARSE: moe.embedding_row_grad
// SPARSE: moe.adam_update_rows
// SPARSE-COUNT-11: moe.adam_update %
// SPARSE-NOT: moe.adam_update
// SPARSE-LABEL: func.func @tiny_moe_eval(

// Data parallel: the embedding's rows are summed over the ranks instead of
// its dense gradient (the full softmax's [50, 8] weights stay all-reduced).
// DPSPARSE-LABEL: func.func @tiny_moe_train_step(
// DPSPARSE: %[[ROWS:[^,]*]], %[[VALS:[^ ]*]] = moe.embedding_row_grad
// DPSPARSE: %[[IDS:[^,]*]], %[[SUM:[^ ]*]] = moe.sum_rows_over_ranks %[[ROWS]], %[[VALS]] on @ranks {{.*}} -> (tensor<?xi32>, tensor<?x8xf32>)
// DPSPARSE-COUNT-1: mesh.all_reduce {{.*}} : tensor<50x8xf32> -> tensor<50x8xf32>
// DPSPARSE-NOT: mesh.all_reduce {{.*}} : tensor<50x8xf32> -> tensor<50x8xf32>
// DPSPARSE: moe.adam_update_rows %arg2, %[[IDS]], %[[SUM]],
// DENSE-LABEL: func.func @tiny_moe_train_step(
// DENSE-NOT: _row
// DENSE: moe.embedding_grad
// DENSE-COUNT-12: moe.adam_update %
// DENSE-NOT: _row
// DENSE-LABEL: func.func @tiny_moe_eval(

// optimizer=none leaves the gradients as the step's results, for gradient
// checks; eval=false adds no evaluation copy.
// GRADS-LABEL: func.func @tiny_moe_train_step(
// GRADS-SAME: {moe.grad = "embedding"}
// GRADS-NOT: moe.adam_update
// GRADS-NOT: func.func @tiny_moe_eval

// The paper's 512-expert batchwise model: batchwise routing with a row
// pointer, the Eq. 8 threshold loss and its gradient, sampled softmax.
// BATCHWISE-LABEL: func.func @lstm2x512_moe512_train_step(
// BATCHWISE: moe.batchwise_mask %{{.*}} {m = 128 : i64, {{.*}}} : (tensor<8192x512xf32>)
// BATCHWISE: moe.batchwise_threshold_loss
// BATCHWISE: moe.grouped_matmul %{{.*}} {{{.*}}} : (tensor<65536x512xf32>, tensor<512x512x512xf32>, tensor<513xi32>) -> tensor<65536x512xf32>
// The 793,471-word layers get row-sparse gradients: 8192 samples + 8192
// targets for the output layer, 8192 ids for the embedding.
// BATCHWISE: moe.softmax_cross_entropy_row_grad {{.*}}num_samples = 8192{{.*}} -> (tensor<256x32x512xf32>, tensor<16384xi32>, tensor<16384x512xf32>, tensor<16384xf32>)
// BATCHWISE: moe.batchwise_threshold_loss_grad
// BATCHWISE: moe.masked_gate_grad
// BATCHWISE: moe.embedding_row_grad {{.*}}vocab = 793471 : i64} : {{.*}} -> (tensor<8192xi32>, tensor<8192x512xf32>)
// BATCHWISE-COUNT-3: moe.adam_update_rows

// BADLR: error: moe-optimizer: lr must be positive, got 0
// BADOPT: no such option learning-rate
// BADOPTIMIZER: for the --optimizer option: Cannot find option named 'sgd'!
