// RUN: moe-opt %s -split-input-file --moe-sparse-gradients | FileCheck %s
// RUN: moe-opt %s -split-input-file --moe-sparse-gradients="mode=on" | FileCheck %s --check-prefix=ON
// RUN: moe-opt %s -split-input-file --moe-sparse-gradients="mode=off" | FileCheck %s --check-prefix=OFF
// RUN: not moe-opt %s -split-input-file --moe-sparse-gradients="mode=maybe" 2>&1 | FileCheck %s --check-prefix=BAD

// The embedding's and the sampled softmax's gradients feed only Adam: they
// become the touched rows (6 ids; 3 samples + 6 targets) and lazy Adam
// (mode=on; `auto` leaves tables this small to exact Adam).
// CHECK-LABEL: func.func @vocabulary_layers(
// CHECK-NOT: _row_grad
// CHECK: return
// ON-LABEL: func.func @vocabulary_layers(
// ON-SAME: %[[IDS:[^:]*]]: tensor<2x3xi32>, %[[DOUT:[^:]*]]: tensor<2x3x8xf32>, %[[TABLE:[^:]*]]: tensor<100x8xf32>
// ON-NOT: moe.embedding_grad
// ON-NOT: moe.softmax_cross_entropy_grad
// ON: %[[ROWS:[^,]*]], %[[VALS:[^ ]*]] = moe.embedding_row_grad %[[IDS]], %[[DOUT]] {vocab = 100 : i64} : (tensor<2x3xi32>, tensor<2x3x8xf32>) -> (tensor<6xi32>, tensor<6x8xf32>)
// ON: %[[DH:[^,]*]], %[[SROWS:[^,]*]], %[[DW:[^,]*]], %[[DB:[^ ]*]] = moe.softmax_cross_entropy_row_grad {{.*}} {num_samples = 3 : i64, rng_stream = 7 : i64} : {{.*}} -> (tensor<2x3x8xf32>, tensor<9xi32>, tensor<9x8xf32>, tensor<9xf32>)
// ON: moe.add %[[DH]]
// ON: moe.adam_update_rows %[[TABLE]], %[[ROWS]], %[[VALS]], {{.*}} {beta1 = {{.*}}, weight_decay = 0.00999999977 : f32}
// ON: moe.adam_update_rows %{{.*}}, %[[SROWS]], %[[DW]],
// ON: moe.adam_update_rows %{{.*}}, %[[SROWS]], %[[DB]],
// ON-NOT: moe.adam_update %
// OFF-LABEL: func.func @vocabulary_layers(
// OFF-NOT: _row
// OFF: return
func.func @vocabulary_layers(%ids: tensor<2x3xi32>, %dout: tensor<2x3x8xf32>, %table: tensor<100x8xf32>, %h: tensor<2x3x8xf32>, %t: tensor<2x3xi32>, %w: tensor<100x8xf32>, %b: tensor<100xf32>, %dl: tensor<f32>, %lr: tensor<f32>, %step: tensor<i64>) -> (tensor<100x8xf32>, tensor<100x8xf32>, tensor<100xf32>, tensor<2x3x8xf32>) {
  %dt = moe.embedding_grad %ids, %dout : (tensor<2x3xi32>, tensor<2x3x8xf32>) -> tensor<100x8xf32>
  %g:3 = moe.softmax_cross_entropy_grad %h, %t, %w, %b, %dl {num_samples = 3 : i64, rng_stream = 7 : i64} : (tensor<2x3x8xf32>, tensor<2x3xi32>, tensor<100x8xf32>, tensor<100xf32>, tensor<f32>) -> (tensor<2x3x8xf32>, tensor<100x8xf32>, tensor<100xf32>)
  %dh = moe.add %g#0, %h : tensor<2x3x8xf32>
  %t2, %tm, %tv = moe.adam_update %table, %dt, %table, %table, %lr, %step {beta1 = 0.9 : f32, beta2 = 0.999 : f32, eps = 1.0e-8 : f32, weight_decay = 0.01 : f32} : (tensor<100x8xf32>, tensor<100x8xf32>, tensor<100x8xf32>, tensor<100x8xf32>, tensor<f32>, tensor<i64>) -> (tensor<100x8xf32>, tensor<100x8xf32>, tensor<100x8xf32>)
  %w2, %wm, %wv = moe.adam_update %w, %g#1, %w, %w, %lr, %step {beta1 = 0.9 : f32, beta2 = 0.999 : f32, eps = 1.0e-8 : f32, weight_decay = 0.0 : f32} : (tensor<100x8xf32>, tensor<100x8xf32>, tensor<100x8xf32>, tensor<100x8xf32>, tensor<f32>, tensor<i64>) -> (tensor<100x8xf32>, tensor<100x8xf32>, tensor<100x8xf32>)
  %b2, %bm, %bv = moe.adam_update %b, %g#2, %b, %b, %lr, %step {beta1 = 0.9 : f32, beta2 = 0.999 : f32, eps = 1.0e-8 : f32, weight_decay = 0.0 : f32} : (tensor<100xf32>, tensor<100xf32>, tensor<100xf32>, tensor<100xf32>, tensor<f32>, tensor<i64>) -> (tensor<100xf32>, tensor<100xf32>, tensor<100xf32>)
  return %t2, %w2, %b2, %dh : tensor<100x8xf32>, tensor<100x8xf32>, tensor<100xf32>, tensor<2x3x8xf32>
}

// -----

// Dense stays: a gradient with another use (here returned, as an
// all-reduce or a tied layer would read it), a full softmax, and under
// `auto` small tables (here also smaller than the touched-row bound: 6
// ids, 5 rows); `on` rewrites the last.
// CHECK-LABEL: func.func @stays_dense(
// CHECK-NOT: _row_grad
// CHECK-NOT: adam_update_rows
// CHECK: return
// ON-LABEL: func.func @stays_dense(
// ON-COUNT-1: moe.embedding_row_grad
// ON-NOT: _row_grad
// ON-COUNT-1: moe.adam_update_rows
// ON-NOT: adam_update_rows
// ON: return
func.func @stays_dense(%ids: tensor<2x3xi32>, %dout: tensor<2x3x8xf32>, %table: tensor<100x8xf32>, %small: tensor<5x8xf32>, %h: tensor<2x3x8xf32>, %t: tensor<2x3xi32>, %w: tensor<100x8xf32>, %b: tensor<100xf32>, %dl: tensor<f32>, %lr: tensor<f32>, %step: tensor<i64>) -> (tensor<100x8xf32>, tensor<100x8xf32>, tensor<5x8xf32>, tensor<100x8xf32>, tensor<100xf32>) {
  %dt = moe.embedding_grad %ids, %dout : (tensor<2x3xi32>, tensor<2x3x8xf32>) -> tensor<100x8xf32>
  %t2, %tm, %tv = moe.adam_update %table, %dt, %table, %table, %lr, %step {beta1 = 0.9 : f32, beta2 = 0.999 : f32, eps = 1.0e-8 : f32, weight_decay = 0.0 : f32} : (tensor<100x8xf32>, tensor<100x8xf32>, tensor<100x8xf32>, tensor<100x8xf32>, tensor<f32>, tensor<i64>) -> (tensor<100x8xf32>, tensor<100x8xf32>, tensor<100x8xf32>)
  %ds = moe.embedding_grad %ids, %dout : (tensor<2x3xi32>, tensor<2x3x8xf32>) -> tensor<5x8xf32>
  %s2, %sm, %sv = moe.adam_update %small, %ds, %small, %small, %lr, %step {beta1 = 0.9 : f32, beta2 = 0.999 : f32, eps = 1.0e-8 : f32, weight_decay = 0.0 : f32} : (tensor<5x8xf32>, tensor<5x8xf32>, tensor<5x8xf32>, tensor<5x8xf32>, tensor<f32>, tensor<i64>) -> (tensor<5x8xf32>, tensor<5x8xf32>, tensor<5x8xf32>)
  %g:3 = moe.softmax_cross_entropy_grad %h, %t, %w, %b, %dl : (tensor<2x3x8xf32>, tensor<2x3xi32>, tensor<100x8xf32>, tensor<100xf32>, tensor<f32>) -> (tensor<2x3x8xf32>, tensor<100x8xf32>, tensor<100xf32>)
  %w2, %wm, %wv = moe.adam_update %w, %g#1, %w, %w, %lr, %step {beta1 = 0.9 : f32, beta2 = 0.999 : f32, eps = 1.0e-8 : f32, weight_decay = 0.0 : f32} : (tensor<100x8xf32>, tensor<100x8xf32>, tensor<100x8xf32>, tensor<100x8xf32>, tensor<f32>, tensor<i64>) -> (tensor<100x8xf32>, tensor<100x8xf32>, tensor<100x8xf32>)
  %b2, %bm, %bv = moe.adam_update %b, %g#2, %b, %b, %lr, %step {beta1 = 0.9 : f32, beta2 = 0.999 : f32, eps = 1.0e-8 : f32, weight_decay = 0.0 : f32} : (tensor<100xf32>, tensor<100xf32>, tensor<100xf32>, tensor<100xf32>, tensor<f32>, tensor<i64>) -> (tensor<100xf32>, tensor<100xf32>, tensor<100xf32>)
  return %t2, %dt, %s2, %w2, %b2 : tensor<100x8xf32>, tensor<100x8xf32>, tensor<5x8xf32>, tensor<100x8xf32>, tensor<100xf32>
}

// -----

// `auto`: a table of 64 MiB (2^21 rows of 8 floats) of which 6 ids touch
// at most 6 rows goes sparse; the 100-row table next to it stays dense.
// CHECK-LABEL: func.func @auto_large_table(
// CHECK: moe.embedding_row_grad %{{.*}} {vocab = 2097152 : i64} : (tensor<2x3xi32>, tensor<2x3x8xf32>) -> (tensor<6xi32>, tensor<6x8xf32>)
// CHECK-COUNT-1: moe.adam_update_rows
// CHECK-NOT: _row_grad
// CHECK: moe.adam_update %{{.*}} : (tensor<100x8xf32>
func.func @auto_large_table(%ids: tensor<2x3xi32>, %dout: tensor<2x3x8xf32>, %big: tensor<2097152x8xf32>, %table: tensor<100x8xf32>, %lr: tensor<f32>, %step: tensor<i64>) -> (tensor<2097152x8xf32>, tensor<100x8xf32>) {
  %db = moe.embedding_grad %ids, %dout : (tensor<2x3xi32>, tensor<2x3x8xf32>) -> tensor<2097152x8xf32>
  %b2, %bm, %bv = moe.adam_update %big, %db, %big, %big, %lr, %step {beta1 = 0.9 : f32, beta2 = 0.999 : f32, eps = 1.0e-8 : f32, weight_decay = 0.0 : f32} : (tensor<2097152x8xf32>, tensor<2097152x8xf32>, tensor<2097152x8xf32>, tensor<2097152x8xf32>, tensor<f32>, tensor<i64>) -> (tensor<2097152x8xf32>, tensor<2097152x8xf32>, tensor<2097152x8xf32>)
  %dt = moe.embedding_grad %ids, %dout : (tensor<2x3xi32>, tensor<2x3x8xf32>) -> tensor<100x8xf32>
  %t2, %tm, %tv = moe.adam_update %table, %dt, %table, %table, %lr, %step {beta1 = 0.9 : f32, beta2 = 0.999 : f32, eps = 1.0e-8 : f32, weight_decay = 0.0 : f32} : (tensor<100x8xf32>, tensor<100x8xf32>, tensor<100x8xf32>, tensor<100x8xf32>, tensor<f32>, tensor<i64>) -> (tensor<100x8xf32>, tensor<100x8xf32>, tensor<100x8xf32>)
  return %b2, %t2 : tensor<2097152x8xf32>, tensor<100x8xf32>
}

// BAD: moe-sparse-gradients: mode must be auto, on or off, got 'maybe'
