// RUN: moe-opt %s -split-input-file --moe-decompose --moe-expand-hierarchy --moe-autodiff --moe-mark-equal-segments --verify-diagnostics | FileCheck %s
// RUN: moe-opt %s -split-input-file --moe-decompose="combined-batch=true threshold-capacity=1.5" --moe-mark-equal-segments | FileCheck %s --check-prefix=COMBINED

// A batchwise mask over this rank's batch gives each of the 4 experts
// m = k * tokens / n = 2 * 8 / 4 = 4 rows: both grouped matmuls of the
// ffn experts state it.
// CHECK-LABEL: func.func @batchwise_ffn
// CHECK: moe.batchwise_mask %{{.*}} {m = 4 : i64}
// CHECK: moe.grouped_matmul %{{.*}} {rows_per_expert = 4 : i64} : (tensor<16x8xf32>, tensor<4x8x16xf32>, tensor<5xi32>)
// CHECK: moe.grouped_matmul %{{.*}} {rows_per_expert = 4 : i64} : (tensor<16x16xf32>, tensor<4x16x8xf32>, tensor<5xi32>)
// Over the combined batch of all ranks a rank's share varies: not marked.
// COMBINED-LABEL: func.func @batchwise_ffn
// COMBINED: moe.batchwise_mask %{{.*}} {combined_batch, m = 4 : i64}
// COMBINED: moe.grouped_matmul
// COMBINED-NOT: rows_per_expert
// COMBINED: return
func.func @batchwise_ffn(%x: tensor<8x8xf32>, %wg: tensor<8x4xf32>, %t: tensor<4xf32>, %w1: tensor<4x8x16xf32>, %w2: tensor<4x16x8xf32>) -> (tensor<8x8xf32>, tensor<f32>) {
  %y, %aux = moe.moe_layer %x gate(%wg) thresholds(%t) experts(%w1, %w2) {num_experts = 4 : i64, k = 2 : i64, gating = #moe.gating<batchwise>, expert = #moe.expert<ffn, hidden = 16, act = relu>} : (tensor<8x8xf32>, tensor<8x4xf32>, tensor<4xf32>, tensor<4x8x16xf32>, tensor<4x16x8xf32>) -> (tensor<8x8xf32>, tensor<f32>)
  return %y, %aux : tensor<8x8xf32>, tensor<f32>
}

// -----

// Top-k segments depend on the data: not marked.
// CHECK-LABEL: func.func @noisy_top_k
// CHECK: moe.grouped_matmul
// CHECK-NOT: rows_per_expert
// CHECK: return
func.func @noisy_top_k(%x: tensor<10x8xf32>, %wg: tensor<8x4xf32>, %wn: tensor<8x4xf32>, %we: tensor<4x8x8xf32>) -> (tensor<10x8xf32>, tensor<f32>) {
  %y, %aux = moe.moe_layer %x gate(%wg, noise %wn) experts(%we) {num_experts = 4 : i64, k = 2 : i64, gating = #moe.gating<noisy_top_k>, expert = #moe.expert<linear>, losses = #moe.losses<importance = 0.1, load = 0.2>} : (tensor<10x8xf32>, tensor<8x4xf32>, tensor<8x4xf32>, tensor<4x8x8xf32>) -> (tensor<10x8xf32>, tensor<f32>)
  return %y, %aux : tensor<10x8xf32>, tensor<f32>
}

// -----

// Hierarchical batchwise gating: the primary mask gives each of the 2
// groups 1 * 8 / 2 = 4 tokens (the secondary gates' grouped matmul), and
// inside a group each of the 4 experts keeps 2 * 4 / 4 = 2 rows, so each
// of the 8 composed experts gets 2. The gradients keep the segments.
// CHECK-LABEL: func.func @batchwise_hierarchy
// CHECK: moe.grouped_matmul %{{.*}} {rows_per_expert = 4 : i64} : (tensor<8x8xf32>, tensor<2x8x4xf32>, tensor<3xi32>)
// CHECK: moe.grouped_matmul %{{.*}} {rows_per_expert = 2 : i64} : (tensor<16x8xf32>, tensor<8x8x8xf32>, tensor<9xi32>)
// CHECK-LABEL: func.func @batchwise_hierarchy_train_step
// CHECK: moe.grouped_matmul_grad %{{.*}} {rows_per_expert = 2 : i64} : (tensor<16x8xf32>, tensor<8x8x8xf32>
// CHECK: moe.grouped_matmul_grad %{{.*}} {rows_per_expert = 4 : i64} : (tensor<8x8xf32>, tensor<2x8x4xf32>
func.func @batchwise_hierarchy(%x: tensor<2x4x8xf32>,
    %pg: tensor<8x2xf32> {moe.param = "pg", moe.init = #moe.init<zeros>},
    %pt: tensor<2xf32> {moe.param = "pt", moe.init = #moe.init<zeros>},
    %sg: tensor<2x8x4xf32> {moe.param = "sg", moe.init = #moe.init<zeros>},
    %st: tensor<2x4xf32> {moe.param = "st", moe.init = #moe.init<zeros>},
    %we: tensor<8x8x8xf32> {moe.param = "we", moe.init = #moe.init<glorot_uniform>},
    %t: tensor<2x4xi32>, %wo: tensor<5x8xf32> {moe.param = "wo", moe.init = #moe.init<zeros>}, %bo: tensor<5xf32> {moe.param = "bo", moe.init = #moe.init<zeros>}) -> tensor<f32> {
  %y, %aux = moe.hierarchical_moe_layer %x primary(%pg, thresholds %pt) secondary(%sg, thresholds %st) experts(%we) {num_experts = 8 : i64, groups = 2 : i64, k_primary = 1 : i64, k_secondary = 2 : i64, gating = #moe.gating<batchwise>, expert = #moe.expert<linear>, losses = #moe.losses<importance = 0.1, batchwise_threshold = 0.01>} : (tensor<2x4x8xf32>, tensor<8x2xf32>, tensor<2xf32>, tensor<2x8x4xf32>, tensor<2x4xf32>, tensor<8x8x8xf32>) -> (tensor<2x4x8xf32>, tensor<f32>)
  %ce = moe.softmax_cross_entropy %y, %t weights(%wo, %bo) : (tensor<2x4x8xf32>, tensor<2x4xi32>, tensor<5x8xf32>, tensor<5xf32>) -> tensor<f32>
  %loss = moe.total_loss %ce, %aux : tensor<f32>
  return %loss : tensor<f32>
}
