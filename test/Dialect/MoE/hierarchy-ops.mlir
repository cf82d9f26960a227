// RUN: moe-opt %s | moe-opt | FileCheck %s
// RUN: moe-opt %s --mlir-print-op-generic | moe-opt | FileCheck %s

// The ops of a batchwise hierarchy (paper 3.3 with Appendix A at each
// level), chained as moe-expand-hierarchy emits them: 8 tokens, 2 groups
// of 4 experts, k_primary = 1 and k_secondary = 2, so every group gets 4
// rows and each of its experts keeps 2 of them.
// CHECK-LABEL: func.func @batchwise_hierarchy
// CHECK: %[[PM:.*]], %[[PR:.*]], %[[PE:.*]], %[[PG:.*]] = moe.batchwise_mask
// CHECK: %[[SM:.*]], %[[SR:.*]], %[[SE:.*]], %[[SG:.*]] = moe.grouped_batchwise_mask %[[L:[^ ]*]] {groups = 2 : i64, m = 2 : i64} : (tensor<8x4xf32>) -> (tensor<8x4xf32>, tensor<9xi32>, tensor<16xi32>, tensor<16xf32>)
// CHECK: moe.grouped_batchwise_threshold_loss %[[L]], %[[SM]], %{{.*}} : (tensor<8x4xf32>, tensor<8x4xf32>, tensor<2x4xf32>) -> tensor<f32>
// CHECK: %[[R:.*]], %[[E:.*]], %[[G:.*]] = moe.compose_routes_csr %[[PR]], %[[PE]], %[[PG]], %{{.*}}, %[[SR]], %[[SE]], %[[SG]] {experts_per_group = 4 : i64} : (tensor<9xi32>, tensor<8xi32>, tensor<8xf32>, tensor<8xi32>, tensor<9xi32>, tensor<16xi32>, tensor<16xf32>) -> (tensor<9xi32>, tensor<16xi32>, tensor<16xf32>)
// CHECK: moe.compose_routes_csr_grad %[[R]], %[[PR]], %[[PG]], %{{.*}}, %[[SR]], %[[SG]], %[[G]] : (tensor<9xi32>, tensor<9xi32>, tensor<8xf32>, tensor<8xi32>, tensor<9xi32>, tensor<16xf32>, tensor<16xf32>) -> (tensor<8xf32>, tensor<16xf32>)
// CHECK: moe.grouped_batchwise_threshold_loss_grad %[[L]], %[[SM]], %{{.*}}, %{{.*}} : (tensor<8x4xf32>, tensor<8x4xf32>, tensor<2x4xf32>, tensor<f32>) -> tensor<2x4xf32>
func.func @batchwise_hierarchy(%pl: tensor<8x2xf32>, %pos: tensor<8xi32>, %l: tensor<8x4xf32>, %st: tensor<2x4xf32>, %s: tensor<f32>) -> (tensor<16xf32>, tensor<f32>, tensor<8xf32>, tensor<16xf32>, tensor<2x4xf32>) {
  %pm, %pr, %pe, %pg = moe.batchwise_mask %pl {m = 4 : i64} : (tensor<8x2xf32>) -> (tensor<8x2xf32>, tensor<9xi32>, tensor<8xi32>, tensor<8xf32>)
  %sm, %sr, %se, %sg = moe.grouped_batchwise_mask %l {groups = 2 : i64, m = 2 : i64} : (tensor<8x4xf32>) -> (tensor<8x4xf32>, tensor<9xi32>, tensor<16xi32>, tensor<16xf32>)
  %loss = moe.grouped_batchwise_threshold_loss %l, %sm, %st : (tensor<8x4xf32>, tensor<8x4xf32>, tensor<2x4xf32>) -> tensor<f32>
  %r, %e, %g = moe.compose_routes_csr %pr, %pe, %pg, %pos, %sr, %se, %sg {experts_per_group = 4 : i64} : (tensor<9xi32>, tensor<8xi32>, tensor<8xf32>, tensor<8xi32>, tensor<9xi32>, tensor<16xi32>, tensor<16xf32>) -> (tensor<9xi32>, tensor<16xi32>, tensor<16xf32>)
  %dp, %ds = moe.compose_routes_csr_grad %r, %pr, %pg, %pos, %sr, %sg, %g : (tensor<9xi32>, tensor<9xi32>, tensor<8xf32>, tensor<8xi32>, tensor<9xi32>, tensor<16xf32>, tensor<16xf32>) -> (tensor<8xf32>, tensor<16xf32>)
  %dt = moe.grouped_batchwise_threshold_loss_grad %l, %sm, %st, %s : (tensor<8x4xf32>, tensor<8x4xf32>, tensor<2x4xf32>, tensor<f32>) -> tensor<2x4xf32>
  return %g, %loss, %dp, %ds, %dt : tensor<16xf32>, tensor<f32>, tensor<8xf32>, tensor<16xf32>, tensor<2x4xf32>
}

// Over the combined batch of all ranks: the groups are the primary plan's
// segments, and a rank's share of the assignments has a capacity.
// CHECK-LABEL: func.func @combined_batch
// CHECK: %[[SM:.*]], %{{.*}}, %{{.*}}, %{{.*}} = moe.grouped_batchwise_mask %[[L:[^ ]*]] offsets %[[OFF:[^ ]*]] {combined_batch, groups = 2 : i64, m = 2 : i64} : (tensor<12x4xf32>, tensor<3xi32>) -> (tensor<12x4xf32>, tensor<13xi32>, tensor<32xi32>, tensor<32xf32>)
// CHECK: moe.grouped_batchwise_threshold_loss %[[L]], %[[SM]], %[[T:[^ ]*]] offsets %[[OFF]] : (tensor<12x4xf32>, tensor<12x4xf32>, tensor<2x4xf32>, tensor<3xi32>) -> tensor<f32>
// CHECK: moe.grouped_batchwise_threshold_loss_grad %[[L]], %[[SM]], %[[T]], %{{.*}}, %[[OFF]] : (tensor<12x4xf32>, tensor<12x4xf32>, tensor<2x4xf32>, tensor<f32>, tensor<3xi32>) -> tensor<2x4xf32>
func.func @combined_batch(%l: tensor<12x4xf32>, %off: tensor<3xi32>, %t: tensor<2x4xf32>, %s: tensor<f32>) -> (tensor<32xf32>, tensor<f32>, tensor<2x4xf32>) {
  %sm, %sr, %se, %sg = moe.grouped_batchwise_mask %l offsets %off {combined_batch, groups = 2 : i64, m = 2 : i64} : (tensor<12x4xf32>, tensor<3xi32>) -> (tensor<12x4xf32>, tensor<13xi32>, tensor<32xi32>, tensor<32xf32>)
  %loss = moe.grouped_batchwise_threshold_loss %l, %sm, %t offsets %off : (tensor<12x4xf32>, tensor<12x4xf32>, tensor<2x4xf32>, tensor<3xi32>) -> tensor<f32>
  %dt = moe.grouped_batchwise_threshold_loss_grad %l, %sm, %t, %s, %off : (tensor<12x4xf32>, tensor<12x4xf32>, tensor<2x4xf32>, tensor<f32>, tensor<3xi32>) -> tensor<2x4xf32>
  return %sg, %loss, %dt : tensor<32xf32>, tensor<f32>, tensor<2x4xf32>
}

// Inference: the secondary threshold mask reads the group offsets of the
// primary plan; buffers have a compiled capacity of at most every row and
// expert (32 of the 64 here).
// CHECK-LABEL: func.func @threshold_hierarchy
// CHECK: %[[R:.*]], %[[E:.*]], %[[G:.*]] = moe.grouped_threshold_mask %{{.*}}, %{{.*}}, %{{.*}} : (tensor<16x4xf32>, tensor<2x4xf32>, tensor<3xi32>) -> (tensor<17xi32>, tensor<32xi32>, tensor<32xf32>)
// CHECK: moe.compose_routes_csr %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[R]], %[[E]], %[[G]] {experts_per_group = 4 : i64} : {{.*}} -> (tensor<9xi32>, tensor<32xi32>, tensor<32xf32>)
func.func @threshold_hierarchy(%l: tensor<16x4xf32>, %t: tensor<2x4xf32>, %off: tensor<3xi32>, %pr: tensor<9xi32>, %pe: tensor<16xi32>, %pg: tensor<16xf32>, %pos: tensor<16xi32>) -> tensor<32xf32> {
  %r, %e, %g = moe.grouped_threshold_mask %l, %t, %off : (tensor<16x4xf32>, tensor<2x4xf32>, tensor<3xi32>) -> (tensor<17xi32>, tensor<32xi32>, tensor<32xf32>)
  %cr, %ce, %cg = moe.compose_routes_csr %pr, %pe, %pg, %pos, %r, %e, %g {experts_per_group = 4 : i64} : (tensor<9xi32>, tensor<16xi32>, tensor<16xf32>, tensor<16xi32>, tensor<17xi32>, tensor<32xi32>, tensor<32xf32>) -> (tensor<9xi32>, tensor<32xi32>, tensor<32xf32>)
  return %cg : tensor<32xf32>
}

// The hierarchical load estimate and its backward.
// CHECK-LABEL: func.func @hierarchical_load
// CHECK: %[[SL:.*]] = moe.grouped_load_estimate %{{.*}}, noise %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[OFF:[^ ]*]] {k = 2 : i64} : (tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x3xf32>, tensor<5xi32>) -> tensor<4x4xf32>
// CHECK: %[[LH:.*]] = moe.hierarchical_load %{{.*}}, %[[SL]], %[[OFF]] : (tensor<4xf32>, tensor<4x4xf32>, tensor<5xi32>) -> tensor<16xf32>
// CHECK: %[[DP:.*]], %[[DS:.*]] = moe.hierarchical_load_grad %{{.*}}, %[[SL]], %[[OFF]], %[[LH]] : (tensor<4xf32>, tensor<4x4xf32>, tensor<5xi32>, tensor<16xf32>) -> (tensor<4xf32>, tensor<4x4xf32>)
// CHECK: moe.grouped_load_estimate_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[OFF]], %[[DS]] {k = 2 : i64} : (tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x3xf32>, tensor<5xi32>, tensor<4x4xf32>) -> (tensor<12x4xf32>, tensor<12x4xf32>)
func.func @hierarchical_load(%c: tensor<12x4xf32>, %top: tensor<12x3xf32>, %off: tensor<5xi32>, %pl: tensor<4xf32>) -> (tensor<4xf32>, tensor<12x4xf32>) {
  %sl = moe.grouped_load_estimate %c, noise %c, %c, %c, %top, %off {k = 2 : i64} : (tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x3xf32>, tensor<5xi32>) -> tensor<4x4xf32>
  %lh = moe.hierarchical_load %pl, %sl, %off : (tensor<4xf32>, tensor<4x4xf32>, tensor<5xi32>) -> tensor<16xf32>
  %dp, %ds = moe.hierarchical_load_grad %pl, %sl, %off, %lh : (tensor<4xf32>, tensor<4x4xf32>, tensor<5xi32>, tensor<16xf32>) -> (tensor<4xf32>, tensor<4x4xf32>)
  %dc, %dr = moe.grouped_load_estimate_grad %c, %c, %c, %c, %top, %off, %ds {k = 2 : i64} : (tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x3xf32>, tensor<5xi32>, tensor<4x4xf32>) -> (tensor<12x4xf32>, tensor<12x4xf32>)
  return %dp, %dr : tensor<4xf32>, tensor<12x4xf32>
}
