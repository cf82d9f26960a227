// RUN: moe-opt %s -split-input-file --moe-decompose --verify-diagnostics | FileCheck %s
// RUN: moe-opt %s -split-input-file --moe-decompose="inference=true" | FileCheck %s --check-prefix=INFER
// RUN: moe-opt %s -split-input-file --moe-decompose="inference=true threshold-capacity=1.5" | FileCheck %s --check-prefix=CAP
// RUN: moe-opt %s -split-input-file --moe-decompose="inference=true threshold-capacity=1.1" | FileCheck %s --check-prefix=CAP11
// RUN: not moe-opt %s -split-input-file --moe-decompose="threshold-capacity=0" 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: moe-opt %s -split-input-file --moe-decompose="combined-batch=true threshold-capacity=1.5" --verify-diagnostics | FileCheck %s --check-prefix=COMBINED
// RUN: moe-opt %s -split-input-file --moe-decompose="router-precision=tf32" --verify-diagnostics | FileCheck %s --check-prefix=TF32
// RUN: not moe-opt %s -split-input-file --moe-decompose="router-precision=bf16" 2>&1 | FileCheck %s --check-prefix=BADPRECISION

// BAD: error: threshold-capacity must be positive (a factor on the assignments of training), got 0
// BADPRECISION: error: router-precision must be f32 or tf32, got 'bf16'

// Noisy top-k over a [batch, time, d] input: the layer runs once on all
// batch * time tokens, the load loss goes through the smooth load estimate
// and the importance loss through the per-expert gate sums.
// CHECK-LABEL: func.func @noisy_top_k_rank3
// CHECK-SAME: (%[[X:.*]]: tensor<2x5x8xf32>, %[[WG:.*]]: tensor<8x4xf32>, %[[WN:.*]]: tensor<8x4xf32>, %[[WE:.*]]: tensor<4x8x8xf32>)
// CHECK: %[[ROWS:.*]] = tensor.collapse_shape %[[X]] {{\[}}[0, 1], [2]] : tensor<2x5x8xf32> into tensor<10x8xf32>
// CHECK: %[[CLEAN:.*]] = moe.matmul %[[ROWS]], %[[WG]] :
// CHECK: %[[RAW:.*]] = moe.matmul %[[ROWS]], %[[WN]] :
// With router-precision=tf32 both gate products allow TF32; the experts'
// GEMMs keep the target's precision and the routing stays as it is.
// TF32-LABEL: func.func @noisy_top_k_rank3
// TF32: moe.matmul %{{.*}}, %{{.*}} {allow_tf32}
// TF32: moe.matmul %{{.*}}, %{{.*}} {allow_tf32}
// TF32: moe.noisy_top_k
// CHECK: %[[E:.*]], %[[G:.*]], %[[H:.*]], %[[STD:.*]], %[[TOP:.*]] = moe.noisy_top_k %[[CLEAN]], noise %[[RAW]] {k = 2 : i64}
// CHECK-SAME: -> (tensor<10x2xi32>, tensor<10x2xf32>, tensor<10x4xf32>, tensor<10x4xf32>, tensor<10x3xf32>)
// CHECK: %[[EF:.*]] = tensor.collapse_shape %[[E]] {{\[}}[0, 1]] : tensor<10x2xi32> into tensor<20xi32>
// CHECK: %[[GF:.*]] = tensor.collapse_shape %[[G]] {{\[}}[0, 1]] : tensor<10x2xf32> into tensor<20xf32>
// CHECK: %[[LOAD:.*]] = moe.load_estimate %[[CLEAN]], noise %[[RAW]], %[[H]], %[[STD]], %[[TOP]] {k = 2 : i64}
// CHECK: %[[LOADLOSS:.*]] = moe.cv_squared %[[LOAD]] {weight = 2.000000e-01 : f32}
// CHECK: %[[IMP:.*]] = moe.importance %[[EF]], %[[GF]] {num_experts = 4 : i64}
// CHECK: %[[IMPLOSS:.*]] = moe.cv_squared %[[IMP]] {weight = 1.000000e-01 : f32}
// CHECK: %[[OFF:.*]], %[[POS:.*]], %[[TOK:.*]] = moe.dispatch_plan %[[EF]] gates %[[GF]] {num_experts = 4 : i64, tokens = 10 : i64}
// CHECK: %[[BUF:.*]] = moe.dispatch %[[ROWS]], %[[TOK]] : (tensor<10x8xf32>, tensor<20xi32>) -> tensor<20x8xf32>
// CHECK: %[[OUT:.*]] = moe.grouped_matmul %[[BUF]], %[[WE]], %[[OFF]]
// CHECK: %[[Y:.*]] = moe.combine %[[OUT]], %[[GF]], %[[POS]] {tokens = 10 : i64}
// CHECK: %[[YR:.*]] = tensor.expand_shape %[[Y]] {{\[}}[0, 1], [2]] output_shape [2, 5, 8]
// CHECK: %[[AUX:.*]] = moe.total_loss %[[LOADLOSS]], %[[IMPLOSS]] : tensor<f32>
// CHECK: return %[[YR]], %[[AUX]]
// CHECK-NOT: moe.moe_layer
func.func @noisy_top_k_rank3(%x: tensor<2x5x8xf32>, %wg: tensor<8x4xf32>, %wn: tensor<8x4xf32>, %we: tensor<4x8x8xf32>) -> (tensor<2x5x8xf32>, tensor<f32>) {
  %y, %aux = moe.moe_layer %x gate(%wg, noise %wn) experts(%we) {num_experts = 4 : i64, k = 2 : i64, gating = #moe.gating<noisy_top_k>, expert = #moe.expert<linear>, losses = #moe.losses<importance = 0.1, load = 0.2>} : (tensor<2x5x8xf32>, tensor<8x4xf32>, tensor<8x4xf32>, tensor<4x8x8xf32>) -> (tensor<2x5x8xf32>, tensor<f32>)
  return %y, %aux : tensor<2x5x8xf32>, tensor<f32>
}

// -----

// Two noisy layers draw from different RNG streams, or their noise would
// be identical.
// CHECK-LABEL: func.func @two_noisy_layers
// CHECK: moe.noisy_top_k {{.*}} {k = 1 : i64}
// CHECK: moe.noisy_top_k {{.*}} {k = 1 : i64, rng_stream = 1 : i64}
func.func @two_noisy_layers(%x: tensor<4x8xf32>, %wg: tensor<8x2xf32>, %wn: tensor<8x2xf32>, %we: tensor<2x8x8xf32>) -> tensor<4x8xf32> {
  %y, %a = moe.moe_layer %x gate(%wg, noise %wn) experts(%we) {num_experts = 2 : i64, k = 1 : i64, gating = #moe.gating<noisy_top_k>, expert = #moe.expert<linear>} : (tensor<4x8xf32>, tensor<8x2xf32>, tensor<8x2xf32>, tensor<2x8x8xf32>) -> (tensor<4x8xf32>, tensor<f32>)
  %z, %b = moe.moe_layer %y gate(%wg, noise %wn) experts(%we) {num_experts = 2 : i64, k = 1 : i64, gating = #moe.gating<noisy_top_k>, expert = #moe.expert<linear>} : (tensor<4x8xf32>, tensor<8x2xf32>, tensor<8x2xf32>, tensor<2x8x8xf32>) -> (tensor<4x8xf32>, tensor<f32>)
  return %z : tensor<4x8xf32>
}

// -----

// Softmax gating is top-k with k = num_experts and no noise; without
// losses the auxiliary loss is a zero constant.
// CHECK-LABEL: func.func @softmax_gating
// CHECK: %[[CLEAN:.*]] = moe.matmul
// CHECK-NOT: moe.matmul
// CHECK: moe.noisy_top_k %[[CLEAN]] {k = 4 : i64} : (tensor<6x4xf32>) -> (tensor<6x4xi32>
// CHECK-NOT: moe.importance
// CHECK: %[[ZERO:.*]] = arith.constant dense<0.000000e+00> : tensor<f32>
// CHECK: return %{{.*}}, %[[ZERO]]
func.func @softmax_gating(%x: tensor<6x8xf32>, %wg: tensor<8x4xf32>, %we: tensor<4x8x8xf32>) -> (tensor<6x8xf32>, tensor<f32>) {
  %y, %aux = moe.moe_layer %x gate(%wg) experts(%we) {num_experts = 4 : i64, gating = #moe.gating<softmax>, expert = #moe.expert<linear>} : (tensor<6x8xf32>, tensor<8x4xf32>, tensor<4x8x8xf32>) -> (tensor<6x8xf32>, tensor<f32>)
  return %y, %aux : tensor<6x8xf32>, tensor<f32>
}

// -----

// Batchwise gating (Appendix A): m = k * tokens / n = 2 * 8 / 4 = 4 tokens
// per expert; assignments carry a row pointer because tokens get a varying
// number of experts; Eq. 8 trains the thresholds; FFN experts apply their
// activation between the two grouped matmuls and the sigmoid comes last.
// CHECK-LABEL: func.func @batchwise_ffn_sigmoid
// CHECK-SAME: %[[T:[^:]*]]: tensor<4xf32>, %[[W1:[^:]*]]: tensor<4x8x16xf32>, %[[W2:[^:]*]]: tensor<4x16x8xf32>
// CHECK: %[[CLEAN:.*]] = moe.matmul
// CHECK: %[[MASK:.*]], %[[ROWS:.*]], %[[E:.*]], %[[G:.*]] = moe.batchwise_mask %[[CLEAN]] {m = 4 : i64} : (tensor<8x4xf32>) -> (tensor<8x4xf32>, tensor<9xi32>, tensor<16xi32>, tensor<16xf32>)
// CHECK: %[[THR:.*]] = moe.batchwise_threshold_loss %[[CLEAN]], %[[MASK]], %[[T]]
// CHECK: moe.scale %[[THR]] {factor = 5.000000e-01 : f32}
// CHECK: %[[IMP:.*]] = moe.importance %[[E]], %[[G]]
// CHECK: moe.l2_balance %[[IMP]] {tokens = 8 : i64, weight = 1.000000e+00 : f32}
// CHECK: %[[OFF:.*]], %[[POS:.*]], %[[TOK:.*]] = moe.dispatch_plan %[[E]] rows %[[ROWS]] gates %[[G]]
// CHECK: %[[BUF:.*]] = moe.dispatch
// CHECK: %[[HID:.*]] = moe.grouped_matmul %[[BUF]], %[[W1]], %[[OFF]] {{.*}} -> tensor<16x16xf32>
// CHECK: %[[ACT:.*]] = moe.activate %[[HID]] {act = #moe.activation<relu>}
// CHECK: %[[OUT:.*]] = moe.grouped_matmul %[[ACT]], %[[W2]], %[[OFF]] {{.*}} -> tensor<16x8xf32>
// CHECK: %[[Y:.*]] = moe.combine %[[OUT]], %[[G]], %[[POS]] rows %[[ROWS]]
// CHECK: %[[S:.*]] = moe.activate %[[Y]] {act = #moe.activation<sigmoid>}
// CHECK: return %[[S]]
// Data-parallel training ranks the combined batch of all ranks; a rank's
// share of the n * m = 16 assignments varies: 1.5 x 16 = 24 slots.
// COMBINED-LABEL: func.func @batchwise_ffn_sigmoid
// COMBINED: moe.batchwise_mask %{{.*}} {combined_batch, m = 4 : i64} : (tensor<8x4xf32>) -> (tensor<8x4xf32>, tensor<9xi32>, tensor<24xi32>, tensor<24xf32>)
// COMBINED: moe.dispatch_plan %{{.*}} rows %{{.*}} gates %{{.*}} : (tensor<24xi32>, tensor<9xi32>, tensor<24xf32>)
func.func @batchwise_ffn_sigmoid(%x: tensor<8x8xf32>, %wg: tensor<8x4xf32>, %t: tensor<4xf32>, %w1: tensor<4x8x16xf32>, %w2: tensor<4x16x8xf32>) -> (tensor<8x8xf32>, tensor<f32>) {
  %y, %aux = moe.moe_layer %x gate(%wg) thresholds(%t) experts(%w1, %w2) {num_experts = 4 : i64, k = 2 : i64, gating = #moe.gating<batchwise>, expert = #moe.expert<ffn, hidden = 16, act = relu>, output_act = #moe.activation<sigmoid>, losses = #moe.losses<l2_balance = 1.0, batchwise_threshold = 0.5>} : (tensor<8x8xf32>, tensor<8x4xf32>, tensor<4xf32>, tensor<4x8x16xf32>, tensor<4x16x8xf32>) -> (tensor<8x8xf32>, tensor<f32>)
  return %y, %aux : tensor<8x8xf32>, tensor<f32>
}

// -----

// moe.linear becomes matmul + bias + activation on rows.
// CHECK-LABEL: func.func @linear_relu
// CHECK: %[[ROWS:.*]] = tensor.collapse_shape
// CHECK: %[[MM:.*]] = moe.matmul %[[ROWS]], %{{.*}} : (tensor<6x4xf32>, tensor<4x3xf32>) -> tensor<6x3xf32>
// CHECK: %[[B:.*]] = moe.bias_add %[[MM]], %{{.*}}
// CHECK: %[[A:.*]] = moe.activate %[[B]] {act = #moe.activation<relu>}
// CHECK: tensor.expand_shape %[[A]]
func.func @linear_relu(%x: tensor<2x3x4xf32>, %w: tensor<4x3xf32>, %b: tensor<3xf32>) -> tensor<2x3x3xf32> {
  %y = moe.linear %x, %w, %b {act = #moe.activation<relu>} : (tensor<2x3x4xf32>, tensor<4x3xf32>, tensor<3xf32>) -> tensor<2x3x3xf32>
  return %y : tensor<2x3x3xf32>
}

// -----

// Hierarchical layers belong to moe-expand-hierarchy and are left alone.
// CHECK-LABEL: func.func @hierarchical_untouched
// CHECK: moe.hierarchical_moe_layer
func.func @hierarchical_untouched(%x: tensor<6x4xf32>, %pg: tensor<4x2xf32>, %sg: tensor<2x4x4xf32>, %we: tensor<8x4x4xf32>) -> tensor<6x4xf32> {
  %y, %aux = moe.hierarchical_moe_layer %x primary(%pg) secondary(%sg) experts(%we) {num_experts = 8 : i64, groups = 2 : i64, k_primary = 1 : i64, k_secondary = 2 : i64, gating = #moe.gating<top_k>, expert = #moe.expert<linear>} : (tensor<6x4xf32>, tensor<4x2xf32>, tensor<2x4x4xf32>, tensor<8x4x4xf32>) -> (tensor<6x4xf32>, tensor<f32>)
  return %y : tensor<6x4xf32>
}

// -----

// Threshold gating (Eq. 7) is for evaluation: its thresholds are trained by
// Eq. 8 under batchwise gating. At inference each token keeps the experts
// whose logits pass their thresholds: a data-dependent count, so the
// assignments get room for every (token, expert) pair and a row pointer
// says how many are used.
// INFER-LABEL: func.func @threshold_gating
// INFER: %[[CLEAN:.*]] = moe.matmul
// INFER: %[[ROWS:.*]], %[[E:.*]], %[[G:.*]] = moe.threshold_mask %[[CLEAN]], %{{.*}} : (tensor<4x2xf32>, tensor<2xf32>) -> (tensor<5xi32>, tensor<8xi32>, tensor<8xf32>)
// INFER: moe.dispatch_plan %[[E]] rows %[[ROWS]] gates %[[G]] {num_experts = 2 : i64, tokens = 4 : i64}
// INFER: moe.combine %{{.*}}, %[[G]], %{{.*}} rows %[[ROWS]]
// Written without k there is no count of training to size it by: every
// pair whatever the factor.
// CAP-LABEL: func.func @threshold_gating
// CAP: moe.threshold_mask {{.*}} -> (tensor<5xi32>, tensor<8xi32>, tensor<8xf32>)
func.func @threshold_gating(%x: tensor<4x8xf32>, %wg: tensor<8x2xf32>, %t: tensor<2xf32>, %we: tensor<2x8x8xf32>) -> tensor<4x8xf32> {
  // expected-error@+1 {{threshold gating is for inference: train with batchwise gating, whose learned thresholds the inference pipeline uses}}
  %y, %aux = moe.moe_layer %x gate(%wg) thresholds(%t) experts(%we) {num_experts = 2 : i64, gating = #moe.gating<threshold>, expert = #moe.expert<linear>} : (tensor<4x8xf32>, tensor<8x2xf32>, tensor<2xf32>, tensor<2x8x8xf32>) -> (tensor<4x8xf32>, tensor<f32>)
  return %y : tensor<4x8xf32>
}

// -----

// A batchwise layer evaluates with threshold masks whose capacity is
// threshold-capacity times the k * tokens = 16 assignments of training (2
// by default: 32 of the 64 pairs), and everything downstream has that
// size: the plan, the dispatch buffer, the expert outputs, the combine.
// INFER-LABEL: func.func @batchwise_capacity
// INFER: %[[ROWS:.*]], %[[E:.*]], %[[G:.*]] = moe.threshold_mask %{{.*}} : (tensor<16x4xf32>, tensor<4xf32>) -> (tensor<17xi32>, tensor<32xi32>, tensor<32xf32>)
// INFER: %[[OFF:.*]], %[[POS:.*]], %[[TOK:.*]] = moe.dispatch_plan %[[E]] rows %[[ROWS]] gates %[[G]] {{.*}} : (tensor<32xi32>, tensor<17xi32>, tensor<32xf32>) -> (tensor<5xi32>, tensor<32xi32>, tensor<32xi32>)
// INFER: %[[BUF:.*]] = moe.dispatch %{{.*}}, %[[TOK]] : (tensor<16x8xf32>, tensor<32xi32>) -> tensor<32x8xf32>
// INFER: %[[OUT:.*]] = moe.grouped_matmul %[[BUF]], %{{.*}}, %[[OFF]] : (tensor<32x8xf32>, tensor<4x8x8xf32>, tensor<5xi32>) -> tensor<32x8xf32>
// INFER: moe.combine %[[OUT]], %[[G]], %[[POS]] rows %[[ROWS]] {tokens = 16 : i64} : (tensor<32x8xf32>, tensor<32xf32>, tensor<32xi32>, tensor<17xi32>) -> tensor<16x8xf32>
// 1.5 * 16 = 24 slots; 1.1 * 16 = 17.6 rounds up to 18.
// CAP-LABEL: func.func @batchwise_capacity
// CAP: moe.threshold_mask {{.*}} -> (tensor<17xi32>, tensor<24xi32>, tensor<24xf32>)
// CAP: moe.dispatch {{.*}} -> tensor<24x8xf32>
// CAP: moe.combine {{.*}} : (tensor<24x8xf32>, tensor<24xf32>, tensor<24xi32>, tensor<17xi32>) -> tensor<16x8xf32>
// CAP11-LABEL: func.func @batchwise_capacity
// CAP11: moe.threshold_mask {{.*}} -> (tensor<17xi32>, tensor<18xi32>, tensor<18xf32>)
// CAP11: moe.combine {{.*}} : (tensor<18x8xf32>,
func.func @batchwise_capacity(%x: tensor<16x8xf32>, %wg: tensor<8x4xf32>, %t: tensor<4xf32>, %we: tensor<4x8x8xf32>) -> tensor<16x8xf32> attributes {moe.inference} {
  %y, %aux = moe.moe_layer %x gate(%wg) thresholds(%t) experts(%we) {num_experts = 4 : i64, k = 1 : i64, gating = #moe.gating<batchwise>, expert = #moe.expert<linear>} : (tensor<16x8xf32>, tensor<8x4xf32>, tensor<4xf32>, tensor<4x8x8xf32>) -> (tensor<16x8xf32>, tensor<f32>)
  return %y : tensor<16x8xf32>
}

// -----

// Dropout and the sampled softmax keep their form but draw from their own
// RNG streams, numbered after the noisy gate in program order; a full
// softmax draws nothing and keeps the default stream.
// CHECK-LABEL: func.func @rng_streams
// CHECK: moe.noisy_top_k {{.*}} {k = 1 : i64}
// CHECK: moe.dropout %{{.*}} {rate = 1.000000e-01 : f32, rng_stream = 1 : i64}
// CHECK: moe.softmax_cross_entropy {{.*}} {num_samples = 2 : i64, rng_stream = 2 : i64}
// CHECK: moe.softmax_cross_entropy
// CHECK-NOT: rng_stream
// CHECK-SAME: -> tensor<f32>
func.func @rng_streams(%x: tensor<4x8xf32>, %wg: tensor<8x2xf32>, %wn: tensor<8x2xf32>, %we: tensor<2x8x8xf32>, %t: tensor<4xi32>, %wo: tensor<5x8xf32>, %bo: tensor<5xf32>) -> (tensor<f32>, tensor<f32>) {
  %y, %a = moe.moe_layer %x gate(%wg, noise %wn) experts(%we) {num_experts = 2 : i64, k = 1 : i64, gating = #moe.gating<noisy_top_k>, expert = #moe.expert<linear>} : (tensor<4x8xf32>, tensor<8x2xf32>, tensor<8x2xf32>, tensor<2x8x8xf32>) -> (tensor<4x8xf32>, tensor<f32>)
  %d = moe.dropout %y {rate = 0.1 : f32} : tensor<4x8xf32>
  %l1 = moe.softmax_cross_entropy %d, %t weights(%wo, %bo) {num_samples = 2 : i64} : (tensor<4x8xf32>, tensor<4xi32>, tensor<5x8xf32>, tensor<5xf32>) -> tensor<f32>
  %l2 = moe.softmax_cross_entropy %d, %t weights(%wo, %bo) : (tensor<4x8xf32>, tensor<4xi32>, tensor<5x8xf32>, tensor<5xf32>) -> tensor<f32>
  return %l1, %l2 : tensor<f32>, tensor<f32>
}

// -----

// For evaluation: no gating noise and no load estimate, batchwise layers
// route by their learned thresholds, dropout disappears, the softmax is
// full, and the auxiliary loss is zero.
// INFER-LABEL: func.func @inference
// INFER: %[[CLEAN:.*]] = moe.matmul
// INFER-NEXT: moe.noisy_top_k %[[CLEAN]] {k = 1 : i64} : (tensor<4x2xf32>)
// INFER-NOT: moe.load_estimate
// INFER: %[[ZERO:.*]] = arith.constant dense<0.000000e+00> : tensor<f32>
// INFER-NOT: moe.batchwise_mask
// INFER: moe.threshold_mask
// INFER-NOT: moe.dropout
// INFER: moe.softmax_cross_entropy
// INFER-NOT: num_samples
// INFER-SAME: -> tensor<f32>
// INFER: return %{{.*}}, %[[ZERO]]
func.func @inference(%x: tensor<4x8xf32>, %wg: tensor<8x2xf32>, %wn: tensor<8x2xf32>, %we: tensor<2x8x8xf32>, %t: tensor<2xf32>, %tg: tensor<4xi32>, %wo: tensor<5x8xf32>, %bo: tensor<5xf32>) -> (tensor<f32>, tensor<f32>) {
  %y, %a = moe.moe_layer %x gate(%wg, noise %wn) experts(%we) {num_experts = 2 : i64, k = 1 : i64, gating = #moe.gating<noisy_top_k>, expert = #moe.expert<linear>, losses = #moe.losses<importance = 0.1, load = 0.1>} : (tensor<4x8xf32>, tensor<8x2xf32>, tensor<8x2xf32>, tensor<2x8x8xf32>) -> (tensor<4x8xf32>, tensor<f32>)
  %z, %b = moe.moe_layer %y gate(%wg) thresholds(%t) experts(%we) {num_experts = 2 : i64, k = 1 : i64, gating = #moe.gating<batchwise>, expert = #moe.expert<linear>} : (tensor<4x8xf32>, tensor<8x2xf32>, tensor<2xf32>, tensor<2x8x8xf32>) -> (tensor<4x8xf32>, tensor<f32>)
  %d = moe.dropout %z {rate = 0.3 : f32} : tensor<4x8xf32>
  %l = moe.softmax_cross_entropy %d, %tg weights(%wo, %bo) {num_samples = 2 : i64} : (tensor<4x8xf32>, tensor<4xi32>, tensor<5x8xf32>, tensor<5xf32>) -> tensor<f32>
  return %l, %a : tensor<f32>, tensor<f32>
}

// -----

// Padded sequences: lengths [batch] drop the padded tokens' assignments
// after the selection (row pointers with empty rows, as a threshold mask
// gives), and the load estimate, importance, dispatch plan and combine all
// read the kept assignments, so padding gets no expert, no share of the
// balancing losses and no gate gradient. The same in the evaluation copy.
// CHECK-LABEL: func.func @noisy_top_k_lengths
// CHECK-SAME: (%[[X:.*]]: tensor<2x3x8xf32>, %[[WG:.*]]: tensor<8x4xf32>, %[[WN:.*]]: tensor<8x4xf32>, %[[LEN:.*]]: tensor<2xi32>, %[[WE:.*]]: tensor<4x8x8xf32>)
// CHECK: %[[E:.*]], %[[G:.*]], %[[H:.*]], %[[STD:.*]], %[[TOP:.*]] = moe.noisy_top_k
// CHECK: %[[EF:.*]] = tensor.collapse_shape %[[E]]
// CHECK: %[[GF:.*]] = tensor.collapse_shape %[[G]]
// CHECK: %[[ROWPTR:.*]], %[[KE:.*]], %[[KG:.*]] = moe.drop_padding %[[EF]], %[[GF]] lengths %[[LEN]] : (tensor<12xi32>, tensor<12xf32>, tensor<2xi32>) -> (tensor<7xi32>, tensor<12xi32>, tensor<12xf32>)
// CHECK: moe.load_estimate %{{.*}}, noise %{{.*}}, %[[H]], %[[STD]], %[[TOP]] rows %[[ROWPTR]] {k = 2 : i64}
// CHECK: moe.importance %[[KE]], %[[KG]] {num_experts = 4 : i64}
// CHECK: %[[OFF:.*]], %[[POS:.*]], %[[TOK:.*]] = moe.dispatch_plan %[[KE]] rows %[[ROWPTR]] gates %[[KG]] {num_experts = 4 : i64, tokens = 6 : i64}
// CHECK: moe.grouped_matmul %{{.*}}, %[[WE]], %[[OFF]]
// CHECK: moe.combine %{{.*}}, %[[KG]], %[[POS]] rows %[[ROWPTR]] {tokens = 6 : i64}
// INFER-LABEL: func.func @noisy_top_k_lengths
// INFER: moe.drop_padding
// INFER: moe.dispatch_plan %{{.*}} rows
// INFER: moe.combine %{{.*}} rows
func.func @noisy_top_k_lengths(%x: tensor<2x3x8xf32>, %wg: tensor<8x4xf32>,
                               %wn: tensor<8x4xf32>, %len: tensor<2xi32>,
                               %we: tensor<4x8x8xf32>)
    -> (tensor<2x3x8xf32>, tensor<f32>) {
  %y, %aux = moe.moe_layer %x gate(%wg, noise %wn) lengths(%len) experts(%we) {
      num_experts = 4 : i64, k = 2 : i64, gating = #moe.gating<noisy_top_k>,
      expert = #moe.expert<linear>,
      losses = #moe.losses<importance = 0.1, load = 0.1>}
      : (tensor<2x3x8xf32>, tensor<8x4xf32>, tensor<8x4xf32>, tensor<2xi32>,
         tensor<4x8x8xf32>) -> (tensor<2x3x8xf32>, tensor<f32>)
  return %y, %aux : tensor<2x3x8xf32>, tensor<f32>
}

// -----

// Dense softmax gating with lengths: every expert for a valid token (k = n
// assignments), none for padding.
// CHECK-LABEL: func.func @softmax_lengths
// CHECK: moe.noisy_top_k %{{.*}} {k = 4 : i64}
// CHECK: %[[ROWPTR:.*]], %[[KE:.*]], %[[KG:.*]] = moe.drop_padding %{{.*}}, %{{.*}} lengths %{{.*}} : (tensor<24xi32>, tensor<24xf32>, tensor<2xi32>) -> (tensor<7xi32>, tensor<24xi32>, tensor<24xf32>)
// CHECK: moe.dispatch_plan %[[KE]] rows %[[ROWPTR]]
// CHECK: moe.combine %{{.*}}, %[[KG]], %{{.*}} rows %[[ROWPTR]]
func.func @softmax_lengths(%x: tensor<2x3x8xf32>, %wg: tensor<8x4xf32>,
                           %len: tensor<2xi32>, %we: tensor<4x8x8xf32>)
    -> (tensor<2x3x8xf32>, tensor<f32>) {
  %y, %aux = moe.moe_layer %x gate(%wg) lengths(%len) experts(%we) {
      num_experts = 4 : i64, gating = #moe.gating<softmax>,
      expert = #moe.expert<linear>}
      : (tensor<2x3x8xf32>, tensor<8x4xf32>, tensor<2xi32>, tensor<4x8x8xf32>)
      -> (tensor<2x3x8xf32>, tensor<f32>)
  return %y, %aux : tensor<2x3x8xf32>, tensor<f32>
}
