// RUN: moe-opt %s -split-input-file --moe-expand-hierarchy --verify-diagnostics

// Threshold gating learns nothing (its thresholds train through Eq. 8,
// which needs the batchwise mask), so training it is an error; the
// inference lowering (moe-expand-hierarchy{inference}, or a function
// marked moe.inference) takes it.
func.func @threshold_training(%x: tensor<8x4xf32>, %pg: tensor<4x2xf32>, %pt: tensor<2xf32>, %sg: tensor<2x4x2xf32>, %st: tensor<2x2xf32>, %we: tensor<4x4x4xf32>) -> tensor<8x4xf32> {
  // expected-error@+1 {{threshold gating is for inference: train with batchwise gating, whose learned thresholds the inference pipeline uses}}
  %y, %aux = moe.hierarchical_moe_layer %x primary(%pg, thresholds %pt) secondary(%sg, thresholds %st) experts(%we) {num_experts = 4 : i64, groups = 2 : i64, gating = #moe.gating<threshold>, expert = #moe.expert<linear>} : (tensor<8x4xf32>, tensor<4x2xf32>, tensor<2xf32>, tensor<2x4x2xf32>, tensor<2x2xf32>, tensor<4x4x4xf32>) -> (tensor<8x4xf32>, tensor<f32>)
  return %y : tensor<8x4xf32>
}
