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
