// RUN: moe-opt %s -split-input-file --moe-decompose --moe-expand-hierarchy --verify-diagnostics | FileCheck %s
// RUN: moe-opt %s -split-input-file --moe-decompose --moe-expand-hierarchy --moe-autodiff --verify-diagnostics | FileCheck %s --check-prefix=GRAD
// RUN: moe-opt %s -split-input-file --moe-decompose --moe-expand-hierarchy="inference=true" --verify-diagnostics | FileCheck %s --check-prefix=INFER
// RUN: moe-opt %s -split-input-file --moe-decompose --moe-expand-hierarchy="inference=true threshold-capacity=1.5" | FileCheck %s --check-prefix=CAP
// RUN: moe-opt %s -split-input-file --moe-decompose="combined-batch=true" --moe-expand-hierarchy="combined-batch=true" --verify-diagnostics | FileCheck %s --check-prefix=COMB
// RUN: not moe-opt %s -split-input-file --moe-expand-hierarchy="threshold-capacity=-2" 2>&1 | FileCheck %s --check-prefix=BAD

// BAD: error: threshold-capacity must be positive (a factor on the assignments of training), got -2

// Noisy two-level routing over [batch, time, d]: 2 of 4 groups per token,
// then 2 of each group's 4 experts; 16 experts in all. The group gates run
// as one grouped matmul over the rows dispatched to the groups, and the
// composed routes feed the experts. Importance is balanced per level.
// CHECK-LABEL: func.func @noisy_hierarchy
// CHECK-SAME: %[[PG:[^:]*]]: tensor<8x4xf32> {{{[^}]*}}}, %[[PN:[^:]*]]: tensor<8x4xf32> {{{[^}]*}}}, %[[SG:[^:]*]]: tensor<4x8x4xf32> {{{[^}]*}}}, %[[SN:[^:]*]]: tensor<4x8x4xf32> {{{[^}]*}}}, %[[WE:[^:]*]]: tensor<16x8x8xf32>
// CHECK: %[[X:.*]] = tensor.collapse_shape %{{.*}} : tensor<2x3x8xf32> into tensor<6x8xf32>
// CHECK: %[[CP:.*]] = moe.matmul %[[X]], %[[PG]] : (tensor<6x8xf32>, tensor<8x4xf32>) -> tensor<6x4xf32>
// CHECK: %[[RP:.*]] = moe.matmul %[[X]], %[[PN]]
// CHECK: %[[PE:.*]], %[[PGT:.*]], %{{.*}}, %{{.*}}, %{{.*}} = moe.noisy_top_k %[[CP]], noise %[[RP]] {k = 2 : i64, rng_stream = 1 : i64}
// CHECK: %[[PEF:.*]] = tensor.collapse_shape %[[PE]]
// CHECK: %[[PGF:.*]] = tensor.collapse_shape %[[PGT]]
// CHECK-NOT: moe.load_estimate
// CHECK: %[[GIMP:.*]] = moe.importance %[[PEF]], %[[PGF]] {num_experts = 4 : i64}
// CHECK: %[[OFF1:.*]], %[[POS1:.*]], %[[TOK1:.*]] = moe.dispatch_plan %[[PEF]] gates %[[PGF]] {num_experts = 4 : i64, tokens = 6 : i64}
// CHECK: %[[ROWS:.*]] = moe.dispatch %[[X]], %[[TOK1]] : (tensor<6x8xf32>, tensor<12xi32>) -> tensor<12x8xf32>
// CHECK: %[[CS:.*]] = moe.grouped_matmul %[[ROWS]], %[[SG]], %[[OFF1]] : (tensor<12x8xf32>, tensor<4x8x4xf32>, tensor<5xi32>) -> tensor<12x4xf32>
// CHECK: %[[RS:.*]] = moe.grouped_matmul %[[ROWS]], %[[SN]], %[[OFF1]]
// A row draws the noise of its primary assignment (the plan's position),
// not of its place in the group-major buffer, so the ranks of a
// data-parallel run draw their shards of the global batch's noise.
// CHECK: %[[SE:.*]], %[[SGT:.*]], %{{.*}}, %{{.*}}, %{{.*}} = moe.noisy_top_k %[[CS]], noise %[[RS]] noise_position %[[POS1]] {k = 2 : i64, rng_stream = 2 : i64}
// CHECK: %[[E:.*]], %[[G:.*]] = moe.compose_routes %[[PEF]], %[[PGF]], %[[POS1]], %[[SE]], %[[SGT]] {experts_per_group = 4 : i64} : {{.*}} -> (tensor<24xi32>, tensor<24xf32>)
// CHECK: moe.importance %[[E]], %[[G]] {num_experts = 16 : i64}
// CHECK: %[[OFF:.*]], %[[POS:.*]], %[[TOK:.*]] = moe.dispatch_plan %[[E]] gates %[[G]] {num_experts = 16 : i64, tokens = 6 : i64}
// CHECK: %[[BUF:.*]] = moe.dispatch %[[X]], %[[TOK]]
// CHECK: moe.grouped_matmul %[[BUF]], %[[WE]], %[[OFF]]
// CHECK: moe.combine %{{.*}}, %[[G]], %[[POS]] {tokens = 6 : i64}
// CHECK-NOT: moe.hierarchical_moe_layer

// Both levels' gates train: the composed gate gradient splits into the
// primary and secondary gates, and the group gates get their gradient
// through the grouped matmul over the dispatched rows. The input is data,
// so no gradient flows back into it.
// GRAD-LABEL: func.func @noisy_hierarchy_train_step
// GRAD: moe.compose_routes_grad
// GRAD: moe.noisy_top_k_grad
// GRAD: moe.grouped_matmul_grad %{{.*}}, %{{.*}} : (tensor<12x8xf32>, tensor<4x8x4xf32>, tensor<5xi32>, tensor<12x4xf32>)
// GRAD: moe.noisy_top_k_grad
// GRAD-NOT: moe.dispatch_grad
// GRAD: return

// Inference drops the noise at both levels and the auxiliary losses.
// INFER-LABEL: func.func @noisy_hierarchy
// INFER-NOT: moe.load_estimate
// INFER: moe.noisy_top_k %{{[^,]*}} {k = 2 : i64, rng_stream = 1 : i64} : (tensor<6x4xf32>)
// INFER-NOT: moe.importance
// INFER: moe.noisy_top_k %{{[^,]*}} {k = 2 : i64, rng_stream = 2 : i64} : (tensor<12x4xf32>)
func.func @noisy_hierarchy(%x: tensor<2x3x8xf32>,
    %pg: tensor<8x4xf32> {moe.param = "pg", moe.init = #moe.init<zeros>},
    %pn: tensor<8x4xf32> {moe.param = "pn", moe.init = #moe.init<zeros>},
    %sg: tensor<4x8x4xf32> {moe.param = "sg", moe.init = #moe.init<zeros>},
    %sn: tensor<4x8x4xf32> {moe.param = "sn", moe.init = #moe.init<zeros>},
    %we: tensor<16x8x8xf32> {moe.param = "we", moe.init = #moe.init<glorot_uniform>},
    %t: tensor<2x3xi32>, %wo: tensor<5x8xf32> {moe.param = "wo", moe.init = #moe.init<zeros>}, %bo: tensor<5xf32> {moe.param = "bo", moe.init = #moe.init<zeros>}) -> tensor<f32> {
  %d = moe.dropout %x {rate = 0.1 : f32} : tensor<2x3x8xf32>
  %y, %aux = moe.hierarchical_moe_layer %d primary(%pg, noise %pn) secondary(%sg, noise %sn) experts(%we) {num_experts = 16 : i64, groups = 4 : i64, k_primary = 2 : i64, k_secondary = 2 : i64, gating = #moe.gating<noisy_top_k>, expert = #moe.expert<linear>, losses = #moe.losses<importance = 0.1>} : (tensor<2x3x8xf32>, tensor<8x4xf32>, tensor<8x4xf32>, tensor<4x8x4xf32>, tensor<4x8x4xf32>, tensor<16x8x8xf32>) -> (tensor<2x3x8xf32>, tensor<f32>)
  %ce = moe.softmax_cross_entropy %y, %t weights(%wo, %bo) : (tensor<2x3x8xf32>, tensor<2x3xi32>, tensor<5x8xf32>, tensor<5xf32>) -> tensor<f32>
  %loss = moe.total_loss %ce, %aux : tensor<f32>
  return %loss : tensor<f32>
}

// -----

// Batchwise masks at both levels (Appendix A per level): the primary mask
// keeps m_p = 1 * 8 / 2 = 4 tokens per group, so each group sees exactly 4
// rows; inside each group's 4 rows every expert keeps m_s = 2 * 4 / 4 = 2.
// Eq. 8 trains the thresholds of each level, and the composed routes carry
// row pointers into the experts.
// CHECK-LABEL: func.func @batchwise_hierarchy
// CHECK-SAME: %[[PG:[^:]*]]: tensor<8x2xf32> {{{[^}]*}}}, %[[PT:[^:]*]]: tensor<2xf32> {{{[^}]*}}}, %[[SG:[^:]*]]: tensor<2x8x4xf32> {{{[^}]*}}}, %[[ST:[^:]*]]: tensor<2x4xf32> {{{[^}]*}}}, %[[WE:[^:]*]]: tensor<8x8x8xf32>
// CHECK: %[[X:.*]] = tensor.collapse_shape %{{.*}} : tensor<2x4x8xf32> into tensor<8x8xf32>
// CHECK: %[[CP:.*]] = moe.matmul %[[X]], %[[PG]] : (tensor<8x8xf32>, tensor<8x2xf32>) -> tensor<8x2xf32>
// CHECK: %[[PM:.*]], %[[PROWS:.*]], %[[PE:.*]], %[[PGT:.*]] = moe.batchwise_mask %[[CP]] {m = 4 : i64} : (tensor<8x2xf32>) -> (tensor<8x2xf32>, tensor<9xi32>, tensor<8xi32>, tensor<8xf32>)
// CHECK: %[[PL:.*]] = moe.batchwise_threshold_loss %[[CP]], %[[PM]], %[[PT]]
// CHECK: moe.scale %[[PL]] {factor = 0.00999999977 : f32}
// CHECK: moe.importance %[[PE]], %[[PGT]] {num_experts = 2 : i64}
// CHECK: %[[OFF1:.*]], %[[POS1:.*]], %[[TOK1:.*]] = moe.dispatch_plan %[[PE]] rows %[[PROWS]] gates %[[PGT]] {num_experts = 2 : i64, tokens = 8 : i64}
// CHECK: %[[ROWS:.*]] = moe.dispatch %[[X]], %[[TOK1]] : (tensor<8x8xf32>, tensor<8xi32>) -> tensor<8x8xf32>
// CHECK: %[[CS:.*]] = moe.grouped_matmul %[[ROWS]], %[[SG]], %[[OFF1]] : (tensor<8x8xf32>, tensor<2x8x4xf32>, tensor<3xi32>) -> tensor<8x4xf32>
// CHECK: %[[SM:.*]], %[[SROWS:.*]], %[[SE:.*]], %[[SGT:.*]] = moe.grouped_batchwise_mask %[[CS]] {groups = 2 : i64, m = 2 : i64} : (tensor<8x4xf32>) -> (tensor<8x4xf32>, tensor<9xi32>, tensor<16xi32>, tensor<16xf32>)
// CHECK: %[[SL:.*]] = moe.grouped_batchwise_threshold_loss %[[CS]], %[[SM]], %[[ST]] : (tensor<8x4xf32>, tensor<8x4xf32>, tensor<2x4xf32>) -> tensor<f32>
// CHECK: moe.scale %[[SL]] {factor = 0.00999999977 : f32}
// CHECK: %[[R:.*]], %[[E:.*]], %[[G:.*]] = moe.compose_routes_csr %[[PROWS]], %[[PE]], %[[PGT]], %[[POS1]], %[[SROWS]], %[[SE]], %[[SGT]] {experts_per_group = 4 : i64} : {{.*}} -> (tensor<9xi32>, tensor<16xi32>, tensor<16xf32>)
// CHECK: moe.importance %[[E]], %[[G]] {num_experts = 8 : i64}
// CHECK: %[[OFF:.*]], %[[POS:.*]], %[[TOK:.*]] = moe.dispatch_plan %[[E]] rows %[[R]] gates %[[G]] {num_experts = 8 : i64, tokens = 8 : i64}
// CHECK: %[[BUF:.*]] = moe.dispatch %[[X]], %[[TOK]]
// CHECK: moe.grouped_matmul %[[BUF]], %[[WE]], %[[OFF]]
// CHECK: moe.combine %{{.*}}, %[[G]], %[[POS]] rows %[[R]] {tokens = 8 : i64}
// CHECK-NOT: moe.hierarchical_moe_layer

// Over the combined batch of all ranks (data-parallel training) a rank's
// share of each level varies: the primary mask keeps m_p R tokens per
// group of all ranks into min(8 * 2, 2.0 * 8) = 16 slots, the groups'
// rows are the primary plan's segments (offsets), and each expert keeps
// m_s R of its group's rows of all ranks into min(16 * 4, 2.0 * 16) = 32
// slots. The grouped Eq. 8 takes the same segments.
// COMB-LABEL: func.func @batchwise_hierarchy
// COMB: %[[PM:.*]], %[[PROWS:.*]], %[[PE:.*]], %[[PGT:.*]] = moe.batchwise_mask %{{.*}} {combined_batch, m = 4 : i64} : (tensor<8x2xf32>) -> (tensor<8x2xf32>, tensor<9xi32>, tensor<16xi32>, tensor<16xf32>)
// COMB: %[[OFF1:.*]], %[[POS1:.*]], %[[TOK1:.*]] = moe.dispatch_plan %[[PE]] rows %[[PROWS]] gates %[[PGT]] {num_experts = 2 : i64, tokens = 8 : i64} : (tensor<16xi32>, tensor<9xi32>, tensor<16xf32>) -> (tensor<3xi32>, tensor<16xi32>, tensor<16xi32>)
// COMB: %[[CS:.*]] = moe.grouped_matmul %{{.*}}, %{{.*}}, %[[OFF1]] : (tensor<16x8xf32>, tensor<2x8x4xf32>, tensor<3xi32>) -> tensor<16x4xf32>
// COMB: %[[SM:.*]], %[[SROWS:.*]], %[[SE:.*]], %[[SGT:.*]] = moe.grouped_batchwise_mask %[[CS]] offsets %[[OFF1]] {combined_batch, groups = 2 : i64, m = 2 : i64} : (tensor<16x4xf32>, tensor<3xi32>) -> (tensor<16x4xf32>, tensor<17xi32>, tensor<32xi32>, tensor<32xf32>)
// COMB: moe.grouped_batchwise_threshold_loss %[[CS]], %[[SM]], %{{.*}} offsets %[[OFF1]] : (tensor<16x4xf32>, tensor<16x4xf32>, tensor<2x4xf32>, tensor<3xi32>) -> tensor<f32>
// COMB: moe.compose_routes_csr %[[PROWS]], %[[PE]], %[[PGT]], %[[POS1]], %[[SROWS]], %[[SE]], %[[SGT]] {experts_per_group = 4 : i64} : {{.*}} -> (tensor<9xi32>, tensor<32xi32>, tensor<32xf32>)

// The composed gates' gradient splits into both levels; each level's gates
// train through its masked softmax and each level's thresholds through
// Eq. 8.
// GRAD-LABEL: func.func @batchwise_hierarchy_train_step
// GRAD: %[[R:.*]], %[[E:.*]], %[[G:.*]] = moe.compose_routes_csr
// GRAD: %[[DP:.*]], %[[DS:.*]] = moe.compose_routes_csr_grad %[[R]], %{{.*}} : (tensor<9xi32>, tensor<9xi32>, tensor<8xf32>, tensor<8xi32>, tensor<9xi32>, tensor<16xf32>, tensor<16xf32>) -> (tensor<8xf32>, tensor<16xf32>)
// GRAD: %[[DST:.*]] = moe.grouped_batchwise_threshold_loss_grad %{{.*}} : (tensor<8x4xf32>, tensor<8x4xf32>, tensor<2x4xf32>, tensor<f32>) -> tensor<2x4xf32>
// GRAD: %[[DCS:.*]] = moe.masked_gate_grad %{{.*}}, %{{.*}}, %{{.*}}, %[[DS]] {num_experts = 4 : i64}
// GRAD: moe.grouped_matmul_grad %{{.*}}, %{{.*}}, %{{.*}}, %[[DCS]] : (tensor<8x8xf32>, tensor<2x8x4xf32>, tensor<3xi32>, tensor<8x4xf32>)
// GRAD: %[[DPT:.*]] = moe.batchwise_threshold_loss_grad
// GRAD: moe.masked_gate_grad %{{.*}} {num_experts = 2 : i64} : (tensor<9xi32>, tensor<8xi32>, tensor<8xf32>, tensor<8xf32>) -> tensor<8x2xf32>
// GRAD: return %{{[^,]*}}, %{{[^,]*}}, %[[DPT]], %{{[^,]*}}, %[[DST]],

// Inference: Eq. 7 at both levels, each with a capacity of
// threshold-capacity (2 by default) times what its batchwise mask keeps in
// training, at most every choice: the primary mask min(8 * 2, 2 * k_primary
// * 8) = 16 rows (every group for every token), the secondary min(16 * 4,
// 2 * k_secondary * 8) = 32 assignments of the 64 (row, expert) pairs; the
// row pointers say how many are used.
// INFER-LABEL: func.func @batchwise_hierarchy
// INFER-NOT: moe.batchwise_mask
// INFER: %[[CP:.*]] = moe.matmul
// INFER: %[[PROWS:.*]], %[[PE:.*]], %[[PGT:.*]] = moe.threshold_mask %[[CP]], %{{.*}} : (tensor<8x2xf32>, tensor<2xf32>) -> (tensor<9xi32>, tensor<16xi32>, tensor<16xf32>)
// INFER-NOT: moe.importance
// INFER: %[[OFF1:.*]], %[[POS1:.*]], %[[TOK1:.*]] = moe.dispatch_plan %[[PE]] rows %[[PROWS]] gates %[[PGT]] {num_experts = 2 : i64, tokens = 8 : i64}
// INFER: %[[ROWS:.*]] = moe.dispatch %{{.*}}, %[[TOK1]] : (tensor<8x8xf32>, tensor<16xi32>) -> tensor<16x8xf32>
// INFER: %[[CS:.*]] = moe.grouped_matmul %[[ROWS]], %{{.*}}, %[[OFF1]]
// INFER: %[[SROWS:.*]], %[[SE:.*]], %[[SGT:.*]] = moe.grouped_threshold_mask %[[CS]], %{{.*}}, %[[OFF1]] : (tensor<16x4xf32>, tensor<2x4xf32>, tensor<3xi32>) -> (tensor<17xi32>, tensor<32xi32>, tensor<32xf32>)
// INFER: %[[R:.*]], %[[E:.*]], %[[G:.*]] = moe.compose_routes_csr %[[PROWS]], %[[PE]], %[[PGT]], %[[POS1]], %[[SROWS]], %[[SE]], %[[SGT]] {experts_per_group = 4 : i64} : {{.*}} -> (tensor<9xi32>, tensor<32xi32>, tensor<32xf32>)
// INFER: moe.dispatch_plan %[[E]] rows %[[R]] gates %[[G]] {num_experts = 8 : i64, tokens = 8 : i64} : (tensor<32xi32>, tensor<9xi32>, tensor<32xf32>)
// INFER: moe.dispatch {{.*}} -> tensor<32x8xf32>
// INFER: moe.combine {{.*}} : (tensor<32x8xf32>, tensor<32xf32>, tensor<32xi32>, tensor<9xi32>) -> tensor<8x8xf32>
// INFER-NOT: moe.threshold_loss
// With 1.5: ceil(1.5 * 8) = 12 rows reach the groups, and ceil(1.5 * 2 *
// 8) = 24 assignments.
// CAP-LABEL: func.func @batchwise_hierarchy
// CAP: moe.threshold_mask {{.*}} -> (tensor<9xi32>, tensor<12xi32>, tensor<12xf32>)
// CAP: moe.dispatch {{.*}} : (tensor<8x8xf32>, tensor<12xi32>) -> tensor<12x8xf32>
// CAP: moe.grouped_threshold_mask {{.*}} : (tensor<12x4xf32>, tensor<2x4xf32>, tensor<3xi32>) -> (tensor<13xi32>, tensor<24xi32>, tensor<24xf32>)
// CAP: moe.compose_routes_csr {{.*}} -> (tensor<9xi32>, tensor<24xi32>, tensor<24xf32>)
// CAP: moe.combine {{.*}} : (tensor<24x8xf32>,
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

// -----

// The evaluation copy (moe.inference, from moe-add-eval) routes with the
// thresholds of both levels whatever the pass option says; threshold
// gating written by the user lowers the same way there.
// CHECK-LABEL: func.func @eval_copy
// CHECK-NOT: moe.batchwise_mask
// CHECK: moe.threshold_mask
// CHECK: moe.grouped_threshold_mask
// CHECK: moe.compose_routes_csr
// CHECK: moe.threshold_mask
// CHECK: moe.grouped_threshold_mask
// CHECK: moe.compose_routes_csr
// GRAD-LABEL: func.func @eval_copy
// GRAD-NOT: _train_step
// INFER-LABEL: func.func @eval_copy
// INFER-COUNT-2: moe.grouped_threshold_mask
// The batchwise-trained layer has its capacities from k_primary and
// k_secondary; the threshold layer written without them keeps every
// choice (16 rows, 64 assignments) whatever the factor.
// CAP-LABEL: func.func @eval_copy
// CAP: moe.grouped_threshold_mask {{.*}} -> (tensor<13xi32>, tensor<24xi32>, tensor<24xf32>)
// CAP: moe.grouped_threshold_mask {{.*}} : (tensor<16x4xf32>, tensor<2x4xf32>, tensor<3xi32>) -> (tensor<17xi32>, tensor<64xi32>, tensor<64xf32>)
func.func @eval_copy(%x: tensor<8x8xf32>, %pg: tensor<8x2xf32>, %pt: tensor<2xf32>, %sg: tensor<2x8x4xf32>, %st: tensor<2x4xf32>, %we: tensor<8x8x8xf32>) -> (tensor<8x8xf32>, tensor<8x8xf32>) attributes {moe.inference} {
  %y, %aux = moe.hierarchical_moe_layer %x primary(%pg, thresholds %pt) secondary(%sg, thresholds %st) experts(%we) {num_experts = 8 : i64, groups = 2 : i64, k_primary = 1 : i64, k_secondary = 2 : i64, gating = #moe.gating<batchwise>, expert = #moe.expert<linear>} : (tensor<8x8xf32>, tensor<8x2xf32>, tensor<2xf32>, tensor<2x8x4xf32>, tensor<2x4xf32>, tensor<8x8x8xf32>) -> (tensor<8x8xf32>, tensor<f32>)
  %z, %aux2 = moe.hierarchical_moe_layer %x primary(%pg, thresholds %pt) secondary(%sg, thresholds %st) experts(%we) {num_experts = 8 : i64, groups = 2 : i64, gating = #moe.gating<threshold>, expert = #moe.expert<linear>} : (tensor<8x8xf32>, tensor<8x2xf32>, tensor<2xf32>, tensor<2x8x4xf32>, tensor<2x4xf32>, tensor<8x8x8xf32>) -> (tensor<8x8xf32>, tensor<f32>)
  return %y, %z : tensor<8x8xf32>, tensor<8x8xf32>
}

// -----

// The hierarchical load (Load_H) with a load weight: the groups' smooth
// load from the primary noise, each group's smooth load over the rows it
// received, and Load_H[g, j] = Load_primary[g] * Load_g[j] / |X^(g)| over
// all 8 experts, balanced with CV^2 at both levels.
// CHECK-LABEL: func.func @hierarchical_load
// CHECK: %[[CP:.*]] = moe.matmul
// CHECK: %[[RP:.*]] = moe.matmul
// CHECK: %{{.*}}, %{{.*}}, %[[PH:.*]], %[[PS:.*]], %[[PTOP:.*]] = moe.noisy_top_k %[[CP]], noise %[[RP]] {k = 1 : i64}
// CHECK: %[[PLOAD:.*]] = moe.load_estimate %[[CP]], noise %[[RP]], %[[PH]], %[[PS]], %[[PTOP]] {k = 1 : i64} : {{.*}} -> tensor<2xf32>
// CHECK: moe.cv_squared %[[PLOAD]] {weight = 2.000000e-01 : f32}
// CHECK: %[[OFF1:.*]], %[[POS1:.*]], %[[TOK1:.*]] = moe.dispatch_plan
// CHECK: %[[CS:.*]] = moe.grouped_matmul %{{.*}}, %{{.*}}, %[[OFF1]]
// CHECK: %[[RS:.*]] = moe.grouped_matmul %{{.*}}, %{{.*}}, %[[OFF1]]
// CHECK: %{{.*}}, %{{.*}}, %[[SH:.*]], %[[SS:.*]], %[[STOP:.*]] = moe.noisy_top_k %[[CS]], noise %[[RS]] noise_position %[[POS1]] {k = 2 : i64, rng_stream = 1 : i64}
// CHECK: moe.compose_routes
// CHECK: %[[SLOAD:.*]] = moe.grouped_load_estimate %[[CS]], noise %[[RS]], %[[SH]], %[[SS]], %[[STOP]], %[[OFF1]] {k = 2 : i64} : (tensor<8x4xf32>, tensor<8x4xf32>, tensor<8x4xf32>, tensor<8x4xf32>, tensor<8x3xf32>, tensor<3xi32>) -> tensor<2x4xf32>
// CHECK: %[[LH:.*]] = moe.hierarchical_load %[[PLOAD]], %[[SLOAD]], %[[OFF1]] : (tensor<2xf32>, tensor<2x4xf32>, tensor<3xi32>) -> tensor<8xf32>
// CHECK: moe.cv_squared %[[LH]] {weight = 2.000000e-01 : f32}

// Load_H reaches both gates: through the secondary load to the secondary
// logits and through the primary load to the primary logits.
// GRAD-LABEL: func.func @hierarchical_load_train_step
// GRAD: %[[DLH:.*]] = moe.cv_squared_grad
// GRAD: %[[DPL:.*]], %[[DSL:.*]] = moe.hierarchical_load_grad %{{.*}}, %{{.*}}, %{{.*}}, %[[DLH]] : (tensor<2xf32>, tensor<2x4xf32>, tensor<3xi32>, tensor<8xf32>) -> (tensor<2xf32>, tensor<2x4xf32>)
// GRAD: moe.grouped_load_estimate_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[DSL]] {k = 2 : i64}
// GRAD: moe.load_estimate_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {k = 1 : i64}

// INFER-LABEL: func.func @hierarchical_load
// INFER-NOT: load_estimate
// INFER-NOT: moe.hierarchical_load
// INFER: return
func.func @hierarchical_load(%x: tensor<8x8xf32>,
    %pg: tensor<8x2xf32> {moe.param = "pg", moe.init = #moe.init<zeros>},
    %pn: tensor<8x2xf32> {moe.param = "pn", moe.init = #moe.init<zeros>},
    %sg: tensor<2x8x4xf32> {moe.param = "sg", moe.init = #moe.init<zeros>},
    %sn: tensor<2x8x4xf32> {moe.param = "sn", moe.init = #moe.init<zeros>},
    %we: tensor<8x8x8xf32> {moe.param = "we", moe.init = #moe.init<glorot_uniform>}) -> tensor<f32> {
  %y, %aux = moe.hierarchical_moe_layer %x primary(%pg, noise %pn) secondary(%sg, noise %sn) experts(%we) {num_experts = 8 : i64, groups = 2 : i64, k_primary = 1 : i64, k_secondary = 2 : i64, gating = #moe.gating<noisy_top_k>, expert = #moe.expert<linear>, losses = #moe.losses<load = 0.2>} : (tensor<8x8xf32>, tensor<8x2xf32>, tensor<8x2xf32>, tensor<2x8x4xf32>, tensor<2x8x4xf32>, tensor<8x8x8xf32>) -> (tensor<8x8xf32>, tensor<f32>)
  return %aux : tensor<f32>
}
