// RUN: moe-opt %s -split-input-file -verify-diagnostics

// The ops of hierarchical layers with batchwise and threshold masks and
// Load_H: every verifier message.

// The rows of a grouped batchwise mask are the groups' equal segments.
func.func @grouped_batchwise_rows(%l: tensor<9x4xf32>) {
  // expected-error@+1 {{'moe.grouped_batchwise_mask' op expects the 9 rows of logits to form 2 equal group segments, but 9 is not a multiple of 2}}
  %m, %r, %e, %g = moe.grouped_batchwise_mask %l {groups = 2 : i64, m = 2 : i64} : (tensor<9x4xf32>) -> (tensor<9x4xf32>, tensor<10xi32>, tensor<16xi32>, tensor<16xf32>)
  return
}

// -----

// An expert keeps at most the rows of its group.
func.func @grouped_batchwise_m(%l: tensor<8x4xf32>) {
  // expected-error@+1 {{'moe.grouped_batchwise_mask' op m = 5 exceeds the 4 rows of a group}}
  %m, %r, %e, %g = moe.grouped_batchwise_mask %l {groups = 2 : i64, m = 5 : i64} : (tensor<8x4xf32>) -> (tensor<8x4xf32>, tensor<9xi32>, tensor<40xi32>, tensor<40xf32>)
  return
}

// -----

// Exactly groups * n * m rows are kept.
func.func @grouped_batchwise_count(%l: tensor<8x4xf32>) {
  // expected-error@+1 {{'moe.grouped_batchwise_mask' op expects expert of shape 16 ([groups * n * m]) but got 8}}
  %m, %r, %e, %g = moe.grouped_batchwise_mask %l {groups = 2 : i64, m = 2 : i64} : (tensor<8x4xf32>) -> (tensor<8x4xf32>, tensor<9xi32>, tensor<8xi32>, tensor<16xf32>)
  return
}

// -----

func.func @grouped_batchwise_rows_ptr(%l: tensor<8x4xf32>) {
  // expected-error@+1 {{'moe.grouped_batchwise_mask' op expects row_ptr of shape 9 ([R + 1]) but got 8}}
  %m, %r, %e, %g = moe.grouped_batchwise_mask %l {groups = 2 : i64, m = 2 : i64} : (tensor<8x4xf32>) -> (tensor<8x4xf32>, tensor<8xi32>, tensor<16xi32>, tensor<16xf32>)
  return
}

// -----

func.func @grouped_batchwise_groups(%l: tensor<8x4xf32>) {
  // expected-error@+1 {{'moe.grouped_batchwise_mask' op attribute 'groups' failed to satisfy constraint: 64-bit signless integer attribute whose value is positive}}
  %m, %r, %e, %g = moe.grouped_batchwise_mask %l {groups = 0 : i64, m = 2 : i64} : (tensor<8x4xf32>) -> (tensor<8x4xf32>, tensor<9xi32>, tensor<16xi32>, tensor<16xf32>)
  return
}

// -----

// Each group has its own row of thresholds.
func.func @grouped_threshold_thresholds(%l: tensor<16x4xf32>, %t: tensor<2x3xf32>, %off: tensor<3xi32>) {
  // expected-error@+1 {{'moe.grouped_threshold_mask' op expects thresholds of shape 2x4 ([groups, n], one row per group) but got 2x3}}
  %r, %e, %g = moe.grouped_threshold_mask %l, %t, %off : (tensor<16x4xf32>, tensor<2x3xf32>, tensor<3xi32>) -> (tensor<17xi32>, tensor<64xi32>, tensor<64xf32>)
  return
}

// -----

func.func @grouped_threshold_offsets(%l: tensor<16x4xf32>, %t: tensor<2x4xf32>, %off: tensor<4xi32>) {
  // expected-error@+1 {{'moe.grouped_threshold_mask' op expects expert_offset of shape 3 ([groups + 1]) but got 4}}
  %r, %e, %g = moe.grouped_threshold_mask %l, %t, %off : (tensor<16x4xf32>, tensor<2x4xf32>, tensor<4xi32>) -> (tensor<17xi32>, tensor<64xi32>, tensor<64xf32>)
  return
}

// -----

// The compiled capacity holds at most every (row, expert) pair, R * n.
func.func @grouped_threshold_capacity(%l: tensor<16x4xf32>, %t: tensor<2x4xf32>, %off: tensor<3xi32>) {
  // expected-error@+1 {{'moe.grouped_threshold_mask' op expects expert of shape C, an assignment capacity with 1 <= C <= R * n = 64, but got 65}}
  %r, %e, %g = moe.grouped_threshold_mask %l, %t, %off : (tensor<16x4xf32>, tensor<2x4xf32>, tensor<3xi32>) -> (tensor<17xi32>, tensor<65xi32>, tensor<65xf32>)
  return
}

// -----

// Expert and gate have the same capacity.
func.func @grouped_threshold_gates(%l: tensor<16x4xf32>, %t: tensor<2x4xf32>, %off: tensor<3xi32>) {
  // expected-error@+1 {{'moe.grouped_threshold_mask' op expects gate of shape 24 (the shape of expert, one gate per assignment slot) but got 32}}
  %r, %e, %g = moe.grouped_threshold_mask %l, %t, %off : (tensor<16x4xf32>, tensor<2x4xf32>, tensor<3xi32>) -> (tensor<17xi32>, tensor<24xi32>, tensor<32xf32>)
  return
}

// -----

func.func @grouped_threshold_loss_segments(%l: tensor<9x4xf32>, %t: tensor<2x4xf32>) {
  // expected-error@+1 {{'moe.grouped_batchwise_threshold_loss' op expects the 9 rows of logits to form 2 equal group segments, but 9 is not a multiple of 2}}
  %x = moe.grouped_batchwise_threshold_loss %l, %l, %t : (tensor<9x4xf32>, tensor<9x4xf32>, tensor<2x4xf32>) -> tensor<f32>
  return
}

// -----

func.func @grouped_threshold_loss_thresholds(%l: tensor<8x4xf32>, %t: tensor<2x2xf32>) {
  // expected-error@+1 {{'moe.grouped_batchwise_threshold_loss' op expects thresholds of shape 2x4 ([groups, n]) but got 2x2}}
  %x = moe.grouped_batchwise_threshold_loss %l, %l, %t : (tensor<8x4xf32>, tensor<8x4xf32>, tensor<2x2xf32>) -> tensor<f32>
  return
}

// -----

func.func @grouped_threshold_loss_mask(%l: tensor<8x4xf32>, %m: tensor<8x2xf32>, %t: tensor<2x4xf32>) {
  // expected-error@+1 {{'moe.grouped_batchwise_threshold_loss' op expects batch mask of shape 8x4 ([R, n]) but got 8x2}}
  %x = moe.grouped_batchwise_threshold_loss %l, %m, %t : (tensor<8x4xf32>, tensor<8x2xf32>, tensor<2x4xf32>) -> tensor<f32>
  return
}

// -----

func.func @grouped_threshold_loss_grad_thresholds(%l: tensor<8x4xf32>, %t: tensor<3x4xf32>, %s: tensor<f32>) {
  // expected-error@+1 {{'moe.grouped_batchwise_threshold_loss_grad' op expects the 8 rows of logits to form 3 equal group segments, but 8 is not a multiple of 3}}
  %x = moe.grouped_batchwise_threshold_loss_grad %l, %l, %t, %s : (tensor<8x4xf32>, tensor<8x4xf32>, tensor<3x4xf32>, tensor<f32>) -> tensor<3x4xf32>
  return
}

// -----

// The secondary level has one row per dispatched primary assignment.
func.func @compose_csr_rows(%pr: tensor<9xi32>, %pe: tensor<8xi32>, %pg: tensor<8xf32>, %pos: tensor<8xi32>, %sr: tensor<8xi32>, %se: tensor<16xi32>, %sg: tensor<16xf32>) {
  // expected-error@+1 {{'moe.compose_routes_csr' op expects secondary row_ptr of shape 9 ([primary assignments + 1], one row per dispatched primary assignment) but got 8}}
  %r, %e, %g = moe.compose_routes_csr %pr, %pe, %pg, %pos, %sr, %se, %sg {experts_per_group = 4 : i64} : (tensor<9xi32>, tensor<8xi32>, tensor<8xf32>, tensor<8xi32>, tensor<8xi32>, tensor<16xi32>, tensor<16xf32>) -> (tensor<9xi32>, tensor<16xi32>, tensor<16xf32>)
  return
}

// -----

func.func @compose_csr_position(%pr: tensor<9xi32>, %pe: tensor<8xi32>, %pg: tensor<8xf32>, %pos: tensor<7xi32>, %sr: tensor<9xi32>, %se: tensor<16xi32>, %sg: tensor<16xf32>) {
  // expected-error@+1 {{'moe.compose_routes_csr' op expects position of shape 8 (one buffer row per primary assignment) but got 7}}
  %r, %e, %g = moe.compose_routes_csr %pr, %pe, %pg, %pos, %sr, %se, %sg {experts_per_group = 4 : i64} : (tensor<9xi32>, tensor<8xi32>, tensor<8xf32>, tensor<7xi32>, tensor<9xi32>, tensor<16xi32>, tensor<16xf32>) -> (tensor<9xi32>, tensor<16xi32>, tensor<16xf32>)
  return
}

// -----

// The composed routes are token-major, like the primary ones.
func.func @compose_csr_result_rows(%pr: tensor<9xi32>, %pe: tensor<8xi32>, %pg: tensor<8xf32>, %pos: tensor<8xi32>, %sr: tensor<9xi32>, %se: tensor<16xi32>, %sg: tensor<16xf32>) {
  // expected-error@+1 {{'moe.compose_routes_csr' op expects row_ptr of shape 9 ([tokens + 1], as the primary row pointers) but got 17}}
  %r, %e, %g = moe.compose_routes_csr %pr, %pe, %pg, %pos, %sr, %se, %sg {experts_per_group = 4 : i64} : (tensor<9xi32>, tensor<8xi32>, tensor<8xf32>, tensor<8xi32>, tensor<9xi32>, tensor<16xi32>, tensor<16xf32>) -> (tensor<17xi32>, tensor<16xi32>, tensor<16xf32>)
  return
}

// -----

// Each secondary assignment becomes one composed assignment.
func.func @compose_csr_count(%pr: tensor<9xi32>, %pe: tensor<8xi32>, %pg: tensor<8xf32>, %pos: tensor<8xi32>, %sr: tensor<9xi32>, %se: tensor<16xi32>, %sg: tensor<16xf32>) {
  // expected-error@+1 {{'moe.compose_routes_csr' op expects gate of shape 16 ([secondary assignments]) but got 8}}
  %r, %e, %g = moe.compose_routes_csr %pr, %pe, %pg, %pos, %sr, %se, %sg {experts_per_group = 4 : i64} : (tensor<9xi32>, tensor<8xi32>, tensor<8xf32>, tensor<8xi32>, tensor<9xi32>, tensor<16xi32>, tensor<16xf32>) -> (tensor<9xi32>, tensor<16xi32>, tensor<8xf32>)
  return
}

// -----

func.func @compose_csr_secondary_gate(%pr: tensor<9xi32>, %pe: tensor<8xi32>, %pg: tensor<8xf32>, %pos: tensor<8xi32>, %sr: tensor<9xi32>, %se: tensor<16xi32>, %sg: tensor<12xf32>) {
  // expected-error@+1 {{'moe.compose_routes_csr' op expects secondary gate of shape 16 (one gate per secondary assignment) but got 12}}
  %r, %e, %g = moe.compose_routes_csr %pr, %pe, %pg, %pos, %sr, %se, %sg {experts_per_group = 4 : i64} : (tensor<9xi32>, tensor<8xi32>, tensor<8xf32>, tensor<8xi32>, tensor<9xi32>, tensor<16xi32>, tensor<12xf32>) -> (tensor<9xi32>, tensor<16xi32>, tensor<16xf32>)
  return
}

// -----

func.func @compose_csr_empty_rows(%pr: tensor<0xi32>, %pe: tensor<8xi32>, %pg: tensor<8xf32>, %pos: tensor<8xi32>, %sr: tensor<9xi32>, %se: tensor<16xi32>, %sg: tensor<16xf32>) {
  // expected-error@+1 {{'moe.compose_routes_csr' op expects primary row_ptr of shape [tokens + 1] but got an empty tensor}}
  %r, %e, %g = moe.compose_routes_csr %pr, %pe, %pg, %pos, %sr, %se, %sg {experts_per_group = 4 : i64} : (tensor<0xi32>, tensor<8xi32>, tensor<8xf32>, tensor<8xi32>, tensor<9xi32>, tensor<16xi32>, tensor<16xf32>) -> (tensor<0xi32>, tensor<16xi32>, tensor<16xf32>)
  return
}

// -----

func.func @compose_csr_grad_gate(%r: tensor<9xi32>, %pg: tensor<8xf32>, %pos: tensor<8xi32>, %sr: tensor<9xi32>, %sg: tensor<16xf32>, %dg: tensor<12xf32>) {
  // expected-error@+1 {{'moe.compose_routes_csr_grad' op expects d_gate of shape 16 (one gradient per secondary assignment) but got 12}}
  %dp, %ds = moe.compose_routes_csr_grad %r, %r, %pg, %pos, %sr, %sg, %dg : (tensor<9xi32>, tensor<9xi32>, tensor<8xf32>, tensor<8xi32>, tensor<9xi32>, tensor<16xf32>, tensor<12xf32>) -> (tensor<8xf32>, tensor<16xf32>)
  return
}

// -----

func.func @compose_csr_grad_rows(%r: tensor<9xi32>, %r2: tensor<5xi32>, %pg: tensor<8xf32>, %pos: tensor<8xi32>, %sr: tensor<9xi32>, %sg: tensor<16xf32>) {
  // expected-error@+1 {{'moe.compose_routes_csr_grad' op expects row_ptr of shape 5 (the primary row pointers' shape [tokens + 1]) but got 9}}
  %dp, %ds = moe.compose_routes_csr_grad %r, %r2, %pg, %pos, %sr, %sg, %sg : (tensor<9xi32>, tensor<5xi32>, tensor<8xf32>, tensor<8xi32>, tensor<9xi32>, tensor<16xf32>, tensor<16xf32>) -> (tensor<8xf32>, tensor<16xf32>)
  return
}

// -----

func.func @compose_csr_grad_type(%r: tensor<9xi32>, %pg: tensor<8xf32>, %pos: tensor<8xi32>, %sr: tensor<9xi32>, %sg: tensor<16xf32>) {
  // expected-error@+1 {{failed to verify that all of {primary_gate, d_primary_gate} have same type}}
  %dp, %ds = moe.compose_routes_csr_grad %r, %r, %pg, %pos, %sr, %sg, %sg : (tensor<9xi32>, tensor<9xi32>, tensor<8xf32>, tensor<8xi32>, tensor<9xi32>, tensor<16xf32>, tensor<16xf32>) -> (tensor<9xf32>, tensor<16xf32>)
  return
}

// -----

// The load of each group is over its n experts.
func.func @grouped_load_shape(%c: tensor<12x4xf32>, %top: tensor<12x3xf32>, %off: tensor<5xi32>) {
  // expected-error@+1 {{'moe.grouped_load_estimate' op expects load of shape 4x4 ([groups, n]) but got 2x8}}
  %l = moe.grouped_load_estimate %c, noise %c, %c, %c, %top, %off {k = 2 : i64} : (tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x3xf32>, tensor<5xi32>) -> tensor<2x8xf32>
  return
}

// -----

func.func @grouped_load_k(%c: tensor<12x4xf32>, %top: tensor<12x6xf32>, %off: tensor<5xi32>) {
  // expected-error@+1 {{'moe.grouped_load_estimate' op k = 5 exceeds the 4 experts of a group}}
  %l = moe.grouped_load_estimate %c, noise %c, %c, %c, %top, %off {k = 5 : i64} : (tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x6xf32>, tensor<5xi32>) -> tensor<4x4xf32>
  return
}

// -----

func.func @grouped_load_top(%c: tensor<12x4xf32>, %top: tensor<12x2xf32>, %off: tensor<5xi32>) {
  // expected-error@+1 {{'moe.grouped_load_estimate' op expects top_values of shape 12x3 ([R, k + 1]) but got 12x2}}
  %l = moe.grouped_load_estimate %c, noise %c, %c, %c, %top, %off {k = 2 : i64} : (tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x2xf32>, tensor<5xi32>) -> tensor<4x4xf32>
  return
}

// -----

func.func @grouped_load_no_group(%c: tensor<12x4xf32>, %top: tensor<12x3xf32>, %off: tensor<1xi32>) {
  // expected-error@+1 {{'moe.grouped_load_estimate' op expects expert_offset of shape [groups + 1] with at least one group}}
  %l = moe.grouped_load_estimate %c, noise %c, %c, %c, %top, %off {k = 2 : i64} : (tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x3xf32>, tensor<1xi32>) -> tensor<0x4xf32>
  return
}

// -----

func.func @grouped_load_grad_dload(%c: tensor<12x4xf32>, %top: tensor<12x3xf32>, %off: tensor<5xi32>, %dl: tensor<2x4xf32>) {
  // expected-error@+1 {{'moe.grouped_load_estimate_grad' op expects d_load of shape 4x4 ([groups, n]) but got 2x4}}
  %dc, %dr = moe.grouped_load_estimate_grad %c, %c, %c, %c, %top, %off, %dl {k = 2 : i64} : (tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x3xf32>, tensor<5xi32>, tensor<2x4xf32>) -> (tensor<12x4xf32>, tensor<12x4xf32>)
  return
}

// -----

func.func @grouped_load_grad_top(%c: tensor<12x4xf32>, %top: tensor<12x4xf32>, %off: tensor<5xi32>, %dl: tensor<4x4xf32>) {
  // expected-error@+1 {{'moe.grouped_load_estimate_grad' op expects top_values of shape 12x3 ([R, k + 1]) but got 12x4}}
  %dc, %dr = moe.grouped_load_estimate_grad %c, %c, %c, %c, %top, %off, %dl {k = 2 : i64} : (tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x4xf32>, tensor<5xi32>, tensor<4x4xf32>) -> (tensor<12x4xf32>, tensor<12x4xf32>)
  return
}

// -----

// Load_H has one primary load per group and one row of secondary loads.
func.func @hierarchical_load_groups(%pl: tensor<3xf32>, %sl: tensor<4x4xf32>, %off: tensor<5xi32>) {
  // expected-error@+1 {{'moe.hierarchical_load' op expects secondary load of shape 3x4 ([groups, n], one row per group) but got 4x4}}
  %lh = moe.hierarchical_load %pl, %sl, %off : (tensor<3xf32>, tensor<4x4xf32>, tensor<5xi32>) -> tensor<16xf32>
  return
}

// -----

func.func @hierarchical_load_offsets(%pl: tensor<4xf32>, %sl: tensor<4x4xf32>, %off: tensor<4xi32>) {
  // expected-error@+1 {{'moe.hierarchical_load' op expects expert_offset of shape 5 ([groups + 1]) but got 4}}
  %lh = moe.hierarchical_load %pl, %sl, %off : (tensor<4xf32>, tensor<4x4xf32>, tensor<4xi32>) -> tensor<16xf32>
  return
}

// -----

func.func @hierarchical_load_result(%pl: tensor<4xf32>, %sl: tensor<4x4xf32>, %off: tensor<5xi32>) {
  // expected-error@+1 {{'moe.hierarchical_load' op expects load of shape 16 ([groups * n]) but got 4}}
  %lh = moe.hierarchical_load %pl, %sl, %off : (tensor<4xf32>, tensor<4x4xf32>, tensor<5xi32>) -> tensor<4xf32>
  return
}

// -----

func.func @hierarchical_load_grad_dload(%pl: tensor<4xf32>, %sl: tensor<4x4xf32>, %off: tensor<5xi32>, %dl: tensor<4xf32>) {
  // expected-error@+1 {{'moe.hierarchical_load_grad' op expects d_load of shape 16 ([groups * n]) but got 4}}
  %dp, %ds = moe.hierarchical_load_grad %pl, %sl, %off, %dl : (tensor<4xf32>, tensor<4x4xf32>, tensor<5xi32>, tensor<4xf32>) -> (tensor<4xf32>, tensor<4x4xf32>)
  return
}

// -----

func.func @hierarchical_load_grad_type(%pl: tensor<4xf32>, %sl: tensor<4x4xf32>, %off: tensor<5xi32>, %dl: tensor<16xf32>) {
  // expected-error@+1 {{failed to verify that all of {secondary_load, d_secondary_load} have same type}}
  %dp, %ds = moe.hierarchical_load_grad %pl, %sl, %off, %dl : (tensor<4xf32>, tensor<4x4xf32>, tensor<5xi32>, tensor<16xf32>) -> (tensor<4xf32>, tensor<2x8xf32>)
  return
}

// -----

// The grouped mask is [R, n] like the logits.
func.func @grouped_mask_mask(%l: tensor<8x4xf32>) {
  // expected-error@+1 {{expects mask of shape 8x4 ([R, n]) but got 8x3}}
  %m, %r, %e, %g = moe.grouped_batchwise_mask %l {groups = 2 : i64, m = 2 : i64} : (tensor<8x4xf32>) -> (tensor<8x3xf32>, tensor<9xi32>, tensor<16xi32>, tensor<16xf32>)
  return
}

// -----

// Each expert of each group keeps m rows, each with a gate.
func.func @grouped_mask_gate(%l: tensor<8x4xf32>) {
  // expected-error@+1 {{expects gate of shape 16 ([groups * n * m]) but got 8}}
  %m, %r, %e, %g = moe.grouped_batchwise_mask %l {groups = 2 : i64, m = 2 : i64} : (tensor<8x4xf32>) -> (tensor<8x4xf32>, tensor<9xi32>, tensor<16xi32>, tensor<8xf32>)
  return
}

// -----

// The composed experts are the secondary assignments.
func.func @compose_routes_csr_expert(%pr: tensor<9xi32>, %pe: tensor<8xi32>, %pg: tensor<8xf32>, %pos: tensor<8xi32>, %sr: tensor<9xi32>, %se: tensor<16xi32>, %sg: tensor<16xf32>) {
  // expected-error@+1 {{expects expert of shape 16 ([secondary assignments]) but got 8}}
  %r, %e, %g = moe.compose_routes_csr %pr, %pe, %pg, %pos, %sr, %se, %sg {experts_per_group = 4 : i64} : (tensor<9xi32>, tensor<8xi32>, tensor<8xf32>, tensor<8xi32>, tensor<9xi32>, tensor<16xi32>, tensor<16xf32>) -> (tensor<9xi32>, tensor<8xi32>, tensor<16xf32>)
  return
}

// -----

// The grouped load estimate reads the [R, n] values noisy top-k saved.
func.func @grouped_load_noisy(%c: tensor<12x4xf32>, %b: tensor<12x5xf32>, %top: tensor<12x3xf32>, %off: tensor<5xi32>) {
  // expected-error@+1 {{expects noisy of shape 12x4 ([R, n]) but got 12x5}}
  %l = moe.grouped_load_estimate %c, noise %c, %b, %c, %top, %off {k = 2 : i64} : (tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x5xf32>, tensor<12x4xf32>, tensor<12x3xf32>, tensor<5xi32>) -> tensor<4x4xf32>
  return
}

// -----

func.func @grouped_load_noise_std(%c: tensor<12x4xf32>, %b: tensor<12x5xf32>, %top: tensor<12x3xf32>, %off: tensor<5xi32>) {
  // expected-error@+1 {{expects noise_std of shape 12x4 ([R, n]) but got 12x5}}
  %l = moe.grouped_load_estimate %c, noise %c, %c, %b, %top, %off {k = 2 : i64} : (tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x5xf32>, tensor<12x3xf32>, tensor<5xi32>) -> tensor<4x4xf32>
  return
}

// -----

// So does its gradient.
func.func @grouped_load_grad_noisy(%c: tensor<12x4xf32>, %b: tensor<12x5xf32>, %top: tensor<12x3xf32>, %off: tensor<5xi32>, %d: tensor<4x4xf32>) {
  // expected-error@+1 {{expects noisy of shape 12x4 ([R, n]) but got 12x5}}
  %dc, %dr = moe.grouped_load_estimate_grad %c, %c, %b, %c, %top, %off, %d {k = 2 : i64} : (tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x5xf32>, tensor<12x4xf32>, tensor<12x3xf32>, tensor<5xi32>, tensor<4x4xf32>) -> (tensor<12x4xf32>, tensor<12x4xf32>)
  return
}

// -----

func.func @grouped_load_grad_noise_std(%c: tensor<12x4xf32>, %b: tensor<12x5xf32>, %top: tensor<12x3xf32>, %off: tensor<5xi32>, %d: tensor<4x4xf32>) {
  // expected-error@+1 {{expects noise_std of shape 12x4 ([R, n]) but got 12x5}}
  %dc, %dr = moe.grouped_load_estimate_grad %c, %c, %c, %b, %top, %off, %d {k = 2 : i64} : (tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x5xf32>, tensor<12x3xf32>, tensor<5xi32>, tensor<4x4xf32>) -> (tensor<12x4xf32>, tensor<12x4xf32>)
  return
}

// -----

// The gradient reads one secondary row per primary assignment.
func.func @compose_routes_csr_grad_secondary_rows(%r: tensor<9xi32>, %pg: tensor<8xf32>, %pos: tensor<8xi32>, %sr: tensor<8xi32>, %sg: tensor<16xf32>) {
  // expected-error@+1 {{expects secondary row_ptr of shape 9 ([primary assignments + 1]) but got 8}}
  %dp, %ds = moe.compose_routes_csr_grad %r, %r, %pg, %pos, %sr, %sg, %sg : (tensor<9xi32>, tensor<9xi32>, tensor<8xf32>, tensor<8xi32>, tensor<8xi32>, tensor<16xf32>, tensor<16xf32>) -> (tensor<8xf32>, tensor<16xf32>)
  return
}

// -----

// Over the combined batch the groups are the primary plan's segments.
func.func @grouped_combined_no_offsets(%l: tensor<12x4xf32>) {
  // expected-error@+1 {{'moe.grouped_batchwise_mask' op ranks the combined batch inside the groups of the primary plan: expects its expert_offset}}
  %m, %r, %e, %g = moe.grouped_batchwise_mask %l {combined_batch, groups = 2 : i64, m = 2 : i64} : (tensor<12x4xf32>) -> (tensor<12x4xf32>, tensor<13xi32>, tensor<32xi32>, tensor<32xf32>)
  return
}

// -----

func.func @grouped_offsets_not_combined(%l: tensor<8x4xf32>, %off: tensor<3xi32>) {
  // expected-error@+1 {{'moe.grouped_batchwise_mask' op has an expert_offset but ranks equal segments; offsets are for combined_batch}}
  %m, %r, %e, %g = moe.grouped_batchwise_mask %l offsets %off {groups = 2 : i64, m = 2 : i64} : (tensor<8x4xf32>, tensor<3xi32>) -> (tensor<8x4xf32>, tensor<9xi32>, tensor<16xi32>, tensor<16xf32>)
  return
}

// -----

func.func @grouped_combined_offsets_shape(%l: tensor<12x4xf32>, %off: tensor<4xi32>) {
  // expected-error@+1 {{'moe.grouped_batchwise_mask' op expects expert_offset of shape 3 ([groups + 1]) but got 4}}
  %m, %r, %e, %g = moe.grouped_batchwise_mask %l offsets %off {combined_batch, groups = 2 : i64, m = 2 : i64} : (tensor<12x4xf32>, tensor<4xi32>) -> (tensor<12x4xf32>, tensor<13xi32>, tensor<32xi32>, tensor<32xf32>)
  return
}

// -----

func.func @grouped_combined_capacity(%l: tensor<12x4xf32>, %off: tensor<3xi32>) {
  // expected-error@+1 {{'moe.grouped_batchwise_mask' op expects expert of shape C, an assignment capacity with 1 <= C <= R * n = 48, but got 49}}
  %m, %r, %e, %g = moe.grouped_batchwise_mask %l offsets %off {combined_batch, groups = 2 : i64, m = 2 : i64} : (tensor<12x4xf32>, tensor<3xi32>) -> (tensor<12x4xf32>, tensor<13xi32>, tensor<49xi32>, tensor<49xf32>)
  return
}

// -----

func.func @grouped_combined_row_ptr(%l: tensor<12x4xf32>, %off: tensor<3xi32>) {
  // expected-error@+1 {{'moe.grouped_batchwise_mask' op expects row_ptr of shape 13 ([R + 1]) but got 12}}
  %m, %r, %e, %g = moe.grouped_batchwise_mask %l offsets %off {combined_batch, groups = 2 : i64, m = 2 : i64} : (tensor<12x4xf32>, tensor<3xi32>) -> (tensor<12x4xf32>, tensor<12xi32>, tensor<32xi32>, tensor<32xf32>)
  return
}

// -----

// With offsets the rows need not form equal segments, but the offsets
// need one segment per group of thresholds.
func.func @grouped_threshold_loss_offsets(%l: tensor<9x4xf32>, %t: tensor<2x4xf32>, %off: tensor<4xi32>) {
  // expected-error@+1 {{'moe.grouped_batchwise_threshold_loss' op expects expert_offset of shape 3 ([groups + 1], one segment per row of thresholds) but got 4}}
  %x = moe.grouped_batchwise_threshold_loss %l, %l, %t offsets %off : (tensor<9x4xf32>, tensor<9x4xf32>, tensor<2x4xf32>, tensor<4xi32>) -> tensor<f32>
  return
}

// -----

// Padding-aware routing is for flat layers only.
func.func @hierarchical_lengths(%x: tensor<2x4x16xf32>, %pg: tensor<16x2xf32>, %sg: tensor<2x16x2xf32>, %len: tensor<2xi32>, %we: tensor<4x16x16xf32>) {
  // expected-error@+1 {{'moe.hierarchical_moe_layer' op lengths (padding) are supported by flat layers only: use moe.moe_layer, or leave the padding in}}
  %y, %aux = moe.hierarchical_moe_layer %x primary(%pg) secondary(%sg) lengths(%len) experts(%we) {num_experts = 4 : i64, groups = 2 : i64, k_primary = 1 : i64, k_secondary = 1 : i64, gating = #moe.gating<top_k>, expert = #moe.expert<linear>} : (tensor<2x4x16xf32>, tensor<16x2xf32>, tensor<2x16x2xf32>, tensor<2xi32>, tensor<4x16x16xf32>) -> (tensor<2x4x16xf32>, tensor<f32>)
  return
}
