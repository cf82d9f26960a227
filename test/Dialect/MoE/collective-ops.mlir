// RUN: moe-opt %s | moe-opt | FileCheck %s
// RUN: moe-opt %s --mlir-print-op-generic | moe-opt | FileCheck %s

// The expert section of an expert-parallel layer: counts first, rows to the
// experts' ranks ([?, d]: how many arrive is known when the graph runs), the
// rank's shard of the expert weights, and back. Prints and parses back.
// CHECK: mesh.mesh @ranks(shape = ?)
// CHECK-LABEL: func.func @expert_section
// CHECK: %[[C:.*]], %[[RO:.*]] = moe.exchange_counts %arg1 on @ranks : (tensor<5xi32>) -> (tensor<4xi32>, tensor<5xi32>)
// CHECK: %[[R:.*]] = moe.exchange_to_experts %arg0, %arg1, %[[C]] on @ranks : (tensor<12x8xf32>, tensor<5xi32>, tensor<4xi32>) -> tensor<?x8xf32>
// CHECK: %[[Y:.*]] = moe.grouped_matmul %[[R]], %arg2, %[[RO]] : (tensor<?x8xf32>, tensor<4x8x6xf32, #moe.shard<@ranks>>, tensor<5xi32>) -> tensor<?x6xf32>
// CHECK: %[[A:.*]] = moe.activate %[[Y]] {act = #moe.activation<relu>} : tensor<?x6xf32>
// CHECK: moe.exchange_to_tokens %[[A]], %arg1, %[[C]] on @ranks : (tensor<?x6xf32>, tensor<5xi32>, tensor<4xi32>) -> tensor<12x6xf32>
mesh.mesh @ranks(shape = ?)
func.func @expert_section(%buf: tensor<12x8xf32>, %off: tensor<5xi32>,
                          %w: tensor<4x8x6xf32, #moe.shard<@ranks>>) -> tensor<12x6xf32> {
  %counts, %roff = moe.exchange_counts %off on @ranks : (tensor<5xi32>) -> (tensor<4xi32>, tensor<5xi32>)
  %recv = moe.exchange_to_experts %buf, %off, %counts on @ranks
      : (tensor<12x8xf32>, tensor<5xi32>, tensor<4xi32>) -> tensor<?x8xf32>
  %y = moe.grouped_matmul %recv, %w, %roff
      : (tensor<?x8xf32>, tensor<4x8x6xf32, #moe.shard<@ranks>>, tensor<5xi32>) -> tensor<?x6xf32>
  %a = moe.activate %y {act = #moe.activation<relu>} : tensor<?x6xf32>
  %back = moe.exchange_to_tokens %a, %off, %counts on @ranks
      : (tensor<?x6xf32>, tensor<5xi32>, tensor<4xi32>) -> tensor<12x6xf32>
  return %back : tensor<12x6xf32>
}

// The row-sparse gradients of all data-parallel ranks ([?]: R N rows),
// which lazy Adam takes.
// CHECK-LABEL: func.func @summed_rows
// CHECK: %[[IDS:.*]], %[[VALS:.*]]:2 = moe.sum_rows_over_ranks %arg0, %arg1, %arg2 on @ranks {vocab = 50 : i64} : (tensor<18xi32>, tensor<18x8xf32>, tensor<18xf32>) -> (tensor<?xi32>, tensor<?x8xf32>, tensor<?xf32>)
// CHECK: moe.adam_update_rows %arg3, %[[IDS]], %[[VALS]]#0, {{.*}} : (tensor<50x8xf32>, tensor<?xi32>, tensor<?x8xf32>, tensor<50x8xf32>, tensor<50x8xf32>, tensor<f32>, tensor<i64>)
func.func @summed_rows(%rows: tensor<18xi32>, %dw: tensor<18x8xf32>, %db: tensor<18xf32>,
                       %w: tensor<50x8xf32>, %lr: tensor<f32>, %s: tensor<i64>) -> tensor<50x8xf32> {
  %ids, %sw, %sb = moe.sum_rows_over_ranks %rows, %dw, %db on @ranks {vocab = 50 : i64}
      : (tensor<18xi32>, tensor<18x8xf32>, tensor<18xf32>) -> (tensor<?xi32>, tensor<?x8xf32>, tensor<?xf32>)
  %w2, %m2, %v2 = moe.adam_update_rows %w, %ids, %sw, %w, %w, %lr, %s {beta1 = 0.9 : f32, beta2 = 0.999 : f32, eps = 1.0e-8 : f32, weight_decay = 0.0 : f32} : (tensor<50x8xf32>, tensor<?xi32>, tensor<?x8xf32>, tensor<50x8xf32>, tensor<50x8xf32>, tensor<f32>, tensor<i64>) -> (tensor<50x8xf32>, tensor<50x8xf32>, tensor<50x8xf32>)
  return %w2 : tensor<50x8xf32>
}
