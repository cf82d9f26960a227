// RUN: moe-opt %s -split-input-file --moe-sparse-gradients | FileCheck %s
// RUN: moe-opt %s -split-input-file --moe-sparse-gradients="mode=on" | FileCheck %s --check-prefix=ON
// RUN: moe-opt %s -split-input-file --moe-sparse-gradients="mode=off" | FileCheck %s --check-prefix=OFF
// RUN: not moe-opt %s -split-input-file --moe-sparse-gradients="mode=maybe" 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: moe-opt %s -split-input-file --moe-sparse-gradients="ranks=87381" | FileCheck %s --check-prefix=RANKS
// RUN: moe-opt %s -split-input-file --moe-sparse-gradients="ranks=87382" | FileCheck %s --check-prefix=GLOBAL
// RUN: not moe-opt %s -split-input-file --moe-sparse-gradients="ranks=0" 2>&1 | FileCheck %s --check-prefix=BADRANKS

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

// Dense stays: a gradient with another use (here returned, as a tied
// layer would read it), a full softmax, and under
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
// With data parallelism the rule holds for the global batch: R ranks touch
// up to 6 R rows, at most a quarter of 2^21 up to R = 87381.
// RANKS-LABEL: func.func @auto_large_table(
// RANKS: moe.embedding_row_grad
// GLOBAL-LABEL: func.func @auto_large_table(
// GLOBAL-NOT: _row_grad
// GLOBAL: return
func.func @auto_large_table(%ids: tensor<2x3xi32>, %dout: tensor<2x3x8xf32>, %big: tensor<2097152x8xf32>, %table: tensor<100x8xf32>, %lr: tensor<f32>, %step: tensor<i64>) -> (tensor<2097152x8xf32>, tensor<100x8xf32>) {
  %db = moe.embedding_grad %ids, %dout : (tensor<2x3xi32>, tensor<2x3x8xf32>) -> tensor<2097152x8xf32>
  %b2, %bm, %bv = moe.adam_update %big, %db, %big, %big, %lr, %step {beta1 = 0.9 : f32, beta2 = 0.999 : f32, eps = 1.0e-8 : f32, weight_decay = 0.0 : f32} : (tensor<2097152x8xf32>, tensor<2097152x8xf32>, tensor<2097152x8xf32>, tensor<2097152x8xf32>, tensor<f32>, tensor<i64>) -> (tensor<2097152x8xf32>, tensor<2097152x8xf32>, tensor<2097152x8xf32>)
  %dt = moe.embedding_grad %ids, %dout : (tensor<2x3xi32>, tensor<2x3x8xf32>) -> tensor<100x8xf32>
  %t2, %tm, %tv = moe.adam_update %table, %dt, %table, %table, %lr, %step {beta1 = 0.9 : f32, beta2 = 0.999 : f32, eps = 1.0e-8 : f32, weight_decay = 0.0 : f32} : (tensor<100x8xf32>, tensor<100x8xf32>, tensor<100x8xf32>, tensor<100x8xf32>, tensor<f32>, tensor<i64>) -> (tensor<100x8xf32>, tensor<100x8xf32>, tensor<100x8xf32>)
  return %b2, %t2 : tensor<2097152x8xf32>, tensor<100x8xf32>
}

// -----

// Data parallel: moe-sync-gradients summed each gradient over the mesh
// before Adam. The dense all-reduces go; each layer's rows are summed over
// the ranks instead (the union of the ids of all ranks, R N rows known when
// the graph runs; the softmax's weights and bias share one exchange) and
// feed lazy Adam. `auto` keeps these small tables dense and all-reduced.
// CHECK-LABEL: func.func @data_parallel(
// CHECK-NOT: sum_rows_over_ranks
// CHECK-COUNT-3: mesh.all_reduce
// CHECK-NOT: sum_rows_over_ranks
// CHECK: return
// ON-LABEL: func.func @data_parallel(
// ON-NOT: mesh.all_reduce
// ON: %[[ROWS:[^,]*]], %[[VALS:[^ ]*]] = moe.embedding_row_grad
// ON: %[[IDS:[^,]*]], %[[SUM:[^ ]*]] = moe.sum_rows_over_ranks %[[ROWS]], %[[VALS]] on @ranks {vocab = 100 : i64} : (tensor<6xi32>, tensor<6x8xf32>) -> (tensor<?xi32>, tensor<?x8xf32>)
// ON: %{{[^,]*}}, %[[SROWS:[^,]*]], %[[DW:[^,]*]], %[[DB:[^ ]*]] = moe.softmax_cross_entropy_row_grad
// ON: %[[SIDS:[^,]*]], %[[SV:[^:]*]]:2 = moe.sum_rows_over_ranks %[[SROWS]], %[[DW]], %[[DB]] on @ranks {vocab = 100 : i64} : (tensor<9xi32>, tensor<9x8xf32>, tensor<9xf32>) -> (tensor<?xi32>, tensor<?x8xf32>, tensor<?xf32>)
// ON: moe.adam_update_rows %{{[^,]*}}, %[[IDS]], %[[SUM]], {{.*}} : (tensor<100x8xf32>, tensor<?xi32>, tensor<?x8xf32>,
// ON: moe.adam_update_rows %{{[^,]*}}, %[[SIDS]], %[[SV]]#0,
// ON: moe.adam_update_rows %{{[^,]*}}, %[[SIDS]], %[[SV]]#1, {{.*}} : (tensor<100xf32>, tensor<?xi32>, tensor<?xf32>,
// ON-NOT: mesh.all_reduce
// ON-NOT: moe.adam_update %
// OFF-LABEL: func.func @data_parallel(
// OFF-NOT: sum_rows_over_ranks
// OFF-COUNT-3: mesh.all_reduce
// OFF-NOT: sum_rows_over_ranks
mesh.mesh @ranks(shape = ?)
func.func @data_parallel(%ids: tensor<2x3xi32>, %dout: tensor<2x3x8xf32>, %table: tensor<100x8xf32>, %h: tensor<2x3x8xf32>, %t: tensor<2x3xi32>, %w: tensor<100x8xf32>, %b: tensor<100xf32>, %dl: tensor<f32>, %lr: tensor<f32>, %step: tensor<i64>) -> (tensor<100x8xf32>, tensor<100x8xf32>, tensor<100xf32>, tensor<2x3x8xf32>) {
  %dt = moe.embedding_grad %ids, %dout : (tensor<2x3xi32>, tensor<2x3x8xf32>) -> tensor<100x8xf32>
  %g:3 = moe.softmax_cross_entropy_grad %h, %t, %w, %b, %dl {num_samples = 3 : i64, rng_stream = 7 : i64} : (tensor<2x3x8xf32>, tensor<2x3xi32>, tensor<100x8xf32>, tensor<100xf32>, tensor<f32>) -> (tensor<2x3x8xf32>, tensor<100x8xf32>, tensor<100xf32>)
  %st = mesh.all_reduce %dt on @ranks mesh_axes = [0] reduction = <sum> : tensor<100x8xf32> -> tensor<100x8xf32>
  %sw = mesh.all_reduce %g#1 on @ranks mesh_axes = [0] reduction = <sum> : tensor<100x8xf32> -> tensor<100x8xf32>
  %sb = mesh.all_reduce %g#2 on @ranks mesh_axes = [0] reduction = <sum> : tensor<100xf32> -> tensor<100xf32>
  %t2, %tm, %tv = moe.adam_update %table, %st, %table, %table, %lr, %step {beta1 = 0.9 : f32, beta2 = 0.999 : f32, eps = 1.0e-8 : f32, weight_decay = 0.0 : f32} : (tensor<100x8xf32>, tensor<100x8xf32>, tensor<100x8xf32>, tensor<100x8xf32>, tensor<f32>, tensor<i64>) -> (tensor<100x8xf32>, tensor<100x8xf32>, tensor<100x8xf32>)
  %w2, %wm, %wv = moe.adam_update %w, %sw, %w, %w, %lr, %step {beta1 = 0.9 : f32, beta2 = 0.999 : f32, eps = 1.0e-8 : f32, weight_decay = 0.0 : f32} : (tensor<100x8xf32>, tensor<100x8xf32>, tensor<100x8xf32>, tensor<100x8xf32>, tensor<f32>, tensor<i64>) -> (tensor<100x8xf32>, tensor<100x8xf32>, tensor<100x8xf32>)
  %b2, %bm, %bv = moe.adam_update %b, %sb, %b, %b, %lr, %step {beta1 = 0.9 : f32, beta2 = 0.999 : f32, eps = 1.0e-8 : f32, weight_decay = 0.0 : f32} : (tensor<100xf32>, tensor<100xf32>, tensor<100xf32>, tensor<100xf32>, tensor<f32>, tensor<i64>) -> (tensor<100xf32>, tensor<100xf32>, tensor<100xf32>)
  return %t2, %w2, %b2, %g#0 : tensor<100x8xf32>, tensor<100x8xf32>, tensor<100xf32>, tensor<2x3x8xf32>
}

// -----

// An average over the ranks (not what moe-sync-gradients makes) stays.
// ON-LABEL: func.func @average_stays(
// ON-NOT: sum_rows_over_ranks
// ON: mesh.all_reduce
// ON-NOT: sum_rows_over_ranks
mesh.mesh @ranks(shape = ?)
func.func @average_stays(%ids: tensor<2x3xi32>, %dout: tensor<2x3x8xf32>, %table: tensor<100x8xf32>, %lr: tensor<f32>, %step: tensor<i64>) -> tensor<100x8xf32> {
  %dt = moe.embedding_grad %ids, %dout : (tensor<2x3xi32>, tensor<2x3x8xf32>) -> tensor<100x8xf32>
  %st = mesh.all_reduce %dt on @ranks mesh_axes = [0] reduction = <average> : tensor<100x8xf32> -> tensor<100x8xf32>
  %t2, %tm, %tv = moe.adam_update %table, %st, %table, %table, %lr, %step {beta1 = 0.9 : f32, beta2 = 0.999 : f32, eps = 1.0e-8 : f32, weight_decay = 0.0 : f32} : (tensor<100x8xf32>, tensor<100x8xf32>, tensor<100x8xf32>, tensor<100x8xf32>, tensor<f32>, tensor<i64>) -> (tensor<100x8xf32>, tensor<100x8xf32>, tensor<100x8xf32>)
  return %t2 : tensor<100x8xf32>
}

// BAD: moe-sparse-gradients: mode must be auto, on or off, got 'maybe'
// BADRANKS: moe-sparse-gradients: ranks must be at least 1, got 0
