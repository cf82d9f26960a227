//===- RoutingToEmitC.cpp - Gating, balancing losses, fused routing -------===//
//
// Lowers the routing family: noisy top-k and its load estimate, dense
// softmax, batchwise and threshold masks (Appendix A), the balancing losses
// (importance, CV^2, Eq. 5, Eq. 8), composed hierarchical routes and
// moe.fused_route, forward and backward.
//
//===----------------------------------------------------------------------===//

#include "codegen/MoEToEmitC.h"

#include "dialect/MoEOps.h"

using namespace mlir;
using namespace mlir::moe;

void mlir::moe::populateMoERoutingToEmitCPatterns(
    const TypeConverter &converter, RewritePatternSet &patterns,
    const EmitCTarget &) {
  addStepCall<NoisyTopKOp>(
      patterns, converter, "noisyTopK",
      [](NoisyTopKOp op, NoisyTopKOp::Adaptor a, StepCall &c) {
        c.ptr(a.getCleanLogits()).ptr(a.getNoiseLogits()).results();
        c.i64(dimSize(op.getCleanLogits(), 0))
            .i64(dimSize(op.getCleanLogits(), 1))
            .i64(op.getK())
            .f32(op.getNoiseEps().convertToFloat())
            .i64(op.getRngStream());
      });
  addStepCall<NoisyTopKGradOp>(
      patterns, converter, "noisyTopKGrad",
      [](NoisyTopKGradOp op, NoisyTopKGradOp::Adaptor a, StepCall &c) {
        c.ptr(a.getCleanLogits())
            .ptr(a.getNoiseLogits())
            .ptr(a.getNoisy())
            .ptr(a.getNoiseStd())
            .ptr(a.getExpert())
            .ptr(a.getGate())
            .ptr(a.getDGate())
            .result(0);
        if (op.getDNoiseLogits())
          c.result(1);
        else
          c.ptr(Value());
        c.i64(dimSize(op.getCleanLogits(), 0))
            .i64(dimSize(op.getCleanLogits(), 1))
            .i64(dimSize(op.getGate(), 1));
      });
  addStepCall<LoadEstimateOp>(
      patterns, converter, "loadEstimate",
      [](LoadEstimateOp op, LoadEstimateOp::Adaptor a, StepCall &c) {
        c.ptr(a.getCleanLogits())
            .ptr(a.getNoiseLogits())
            .ptr(a.getNoisy())
            .ptr(a.getNoiseStd())
            .ptr(a.getTopValues())
            .results()
            .i64(dimSize(op.getCleanLogits(), 0))
            .i64(dimSize(op.getCleanLogits(), 1))
            .i64(op.getK());
      });
  addStepCall<LoadEstimateGradOp>(
      patterns, converter, "loadEstimateGrad",
      [](LoadEstimateGradOp op, LoadEstimateGradOp::Adaptor a, StepCall &c) {
        c.ptr(a.getCleanLogits())
            .ptr(a.getNoiseLogits())
            .ptr(a.getNoisy())
            .ptr(a.getNoiseStd())
            .ptr(a.getTopValues())
            .ptr(a.getDLoad())
            .results()
            .i64(dimSize(op.getCleanLogits(), 0))
            .i64(dimSize(op.getCleanLogits(), 1))
            .i64(op.getK());
      });
  addStepCall<SoftmaxOp>(patterns, converter, "softmax",
                         [](SoftmaxOp op, SoftmaxOp::Adaptor a, StepCall &c) {
                           c.ptr(a.getLogits())
                               .results()
                               .i64(dimSize(op.getLogits(), 0))
                               .i64(dimSize(op.getLogits(), 1));
                         });
  addStepCall<SoftmaxGradOp>(
      patterns, converter, "softmaxGrad",
      [](SoftmaxGradOp op, SoftmaxGradOp::Adaptor a, StepCall &c) {
        c.ptr(a.getProbs())
            .ptr(a.getDProbs())
            .results()
            .i64(dimSize(op.getProbs(), 0))
            .i64(dimSize(op.getProbs(), 1));
      });
  addStepCall<BatchwiseMaskOp>(
      patterns, converter, "batchwiseMask",
      [](BatchwiseMaskOp op, BatchwiseMaskOp::Adaptor a, StepCall &c) {
        c.ptr(a.getLogits())
            .results()
            .i64(dimSize(op.getLogits(), 0))
            .i64(dimSize(op.getLogits(), 1))
            .i64(op.getM())
            .i64(numElements(op.getExpert()))
            .flag(op.getCombinedBatch());
      });
  addStepCall<ThresholdMaskOp>(
      patterns, converter, "thresholdMask",
      [](ThresholdMaskOp op, ThresholdMaskOp::Adaptor a, StepCall &c) {
        c.ptr(a.getLogits())
            .ptr(a.getThresholds())
            .results()
            .i64(dimSize(op.getLogits(), 0))
            .i64(dimSize(op.getLogits(), 1))
            .i64(numElements(op.getExpert()));
      });
  addStepCall<MaskedGateGradOp>(
      patterns, converter, "maskedGateGrad",
      [](MaskedGateGradOp op, MaskedGateGradOp::Adaptor a, StepCall &c) {
        c.ptr(a.getRowPtr())
            .ptr(a.getExpert())
            .ptr(a.getGate())
            .ptr(a.getDGate())
            .results()
            .i64(numElements(op.getRowPtr()) - 1)
            .i64(op.getNumExperts());
      });
  addStepCall<BatchwiseThresholdLossOp>(
      patterns, converter, "batchwiseThresholdLoss",
      [](BatchwiseThresholdLossOp op, BatchwiseThresholdLossOp::Adaptor a,
         StepCall &c) {
        c.ptr(a.getLogits())
            .ptr(a.getBatchMask())
            .ptr(a.getThresholds())
            .results()
            .i64(dimSize(op.getLogits(), 0))
            .i64(dimSize(op.getLogits(), 1));
      });
  addStepCall<BatchwiseThresholdLossGradOp>(
      patterns, converter, "batchwiseThresholdLossGrad",
      [](BatchwiseThresholdLossGradOp op,
         BatchwiseThresholdLossGradOp::Adaptor a, StepCall &c) {
        c.ptr(a.getLogits())
            .ptr(a.getBatchMask())
            .ptr(a.getThresholds())
            .ptr(a.getDLoss())
            .results()
            .i64(dimSize(op.getLogits(), 0))
            .i64(dimSize(op.getLogits(), 1));
      });
  addStepCall<ImportanceOp>(
      patterns, converter, "importance",
      [](ImportanceOp op, ImportanceOp::Adaptor a, StepCall &c) {
        c.ptr(a.getExpert())
            .ptr(a.getGate())
            .results()
            .i64(numElements(op.getExpert()))
            .i64(op.getNumExperts());
      });
  addStepCall<ImportanceGradOp>(
      patterns, converter, "importanceGrad",
      [](ImportanceGradOp op, ImportanceGradOp::Adaptor a, StepCall &c) {
        c.ptr(a.getExpert())
            .ptr(a.getDImportance())
            .results()
            .i64(numElements(op.getExpert()))
            .i64(numElements(op.getDImportance()));
      });
  addStepCall<CvSquaredOp>(
      patterns, converter, "cvSquared",
      [](CvSquaredOp op, CvSquaredOp::Adaptor a, StepCall &c) {
        c.ptr(a.getValues())
            .results()
            .i64(numElements(op.getValues()))
            .f32(op.getWeight().convertToFloat());
      });
  addStepCall<CvSquaredGradOp>(
      patterns, converter, "cvSquaredGrad",
      [](CvSquaredGradOp op, CvSquaredGradOp::Adaptor a, StepCall &c) {
        c.ptr(a.getValues())
            .ptr(a.getDLoss())
            .results()
            .i64(numElements(op.getValues()))
            .f32(op.getWeight().convertToFloat());
      });
  addStepCall<L2BalanceOp>(
      patterns, converter, "l2Balance",
      [](L2BalanceOp op, L2BalanceOp::Adaptor a, StepCall &c) {
        c.ptr(a.getImportance())
            .results()
            .i64(numElements(op.getImportance()))
            .i64(op.getTokens())
            .f32(op.getWeight().convertToFloat());
      });
  addStepCall<L2BalanceGradOp>(
      patterns, converter, "l2BalanceGrad",
      [](L2BalanceGradOp op, L2BalanceGradOp::Adaptor a, StepCall &c) {
        c.ptr(a.getImportance())
            .ptr(a.getDLoss())
            .results()
            .i64(numElements(op.getImportance()))
            .i64(op.getTokens())
            .f32(op.getWeight().convertToFloat());
      });
  addStepCall<ComposeRoutesOp>(
      patterns, converter, "composeRoutes",
      [](ComposeRoutesOp op, ComposeRoutesOp::Adaptor a, StepCall &c) {
        c.ptr(a.getPrimaryExpert())
            .ptr(a.getPrimaryGate())
            .ptr(a.getPosition())
            .ptr(a.getSecondaryExpert())
            .ptr(a.getSecondaryGate())
            .results()
            .i64(numElements(op.getPrimaryExpert()))
            .i64(dimSize(op.getSecondaryExpert(), 1))
            .i64(op.getExpertsPerGroup());
      });
  addStepCall<ComposeRoutesGradOp>(
      patterns, converter, "composeRoutesGrad",
      [](ComposeRoutesGradOp op, ComposeRoutesGradOp::Adaptor a, StepCall &c) {
        c.ptr(a.getPrimaryGate())
            .ptr(a.getPosition())
            .ptr(a.getSecondaryGate())
            .ptr(a.getDGate())
            .results()
            .i64(numElements(op.getPrimaryGate()))
            .i64(dimSize(op.getSecondaryGate(), 1));
      });
  addStepCall<FusedRouteOp>(
      patterns, converter, "fusedRoute",
      [](FusedRouteOp op, FusedRouteOp::Adaptor a, StepCall &c) {
        c.ptr(a.getInput())
            .ptr(a.getGateWeights())
            .ptr(a.getNoiseWeights())
            .results()
            .i64(dimSize(op.getInput(), 0))
            .i64(dimSize(op.getInput(), 1))
            .i64(dimSize(op.getGateWeights(), 1))
            .i64(op.getK())
            .f32(op.getNoiseEps().convertToFloat())
            .i64(op.getRngStream());
      });

  // Hierarchical layers with batchwise and threshold masks, Load_H.
  addStepCall<GroupedBatchwiseMaskOp>(
      patterns, converter, "groupedBatchwiseMask",
      [](GroupedBatchwiseMaskOp op, GroupedBatchwiseMaskOp::Adaptor a,
         StepCall &c) {
        c.ptr(a.getLogits())
            .results()
            .i64(dimSize(op.getLogits(), 0))
            .i64(dimSize(op.getLogits(), 1))
            .i64(op.getGroups())
            .i64(op.getM());
      });
  addStepCall<GroupedThresholdMaskOp>(
      patterns, converter, "groupedThresholdMask",
      [](GroupedThresholdMaskOp op, GroupedThresholdMaskOp::Adaptor a,
         StepCall &c) {
        c.ptr(a.getLogits())
            .ptr(a.getThresholds())
            .ptr(a.getExpertOffset())
            .results()
            .i64(dimSize(op.getLogits(), 0))
            .i64(dimSize(op.getLogits(), 1))
            .i64(dimSize(op.getThresholds(), 0))
            .i64(numElements(op.getExpert()));
      });
  addStepCall<GroupedBatchwiseThresholdLossOp>(
      patterns, converter, "groupedBatchwiseThresholdLoss",
      [](GroupedBatchwiseThresholdLossOp op,
         GroupedBatchwiseThresholdLossOp::Adaptor a, StepCall &c) {
        c.ptr(a.getLogits())
            .ptr(a.getBatchMask())
            .ptr(a.getThresholds())
            .results()
            .i64(dimSize(op.getLogits(), 0))
            .i64(dimSize(op.getLogits(), 1))
            .i64(dimSize(op.getThresholds(), 0));
      });
  addStepCall<GroupedBatchwiseThresholdLossGradOp>(
      patterns, converter, "groupedBatchwiseThresholdLossGrad",
      [](GroupedBatchwiseThresholdLossGradOp op,
         GroupedBatchwiseThresholdLossGradOp::Adaptor a, StepCall &c) {
        c.ptr(a.getLogits())
            .ptr(a.getBatchMask())
            .ptr(a.getThresholds())
            .ptr(a.getDLoss())
            .results()
            .i64(dimSize(op.getLogits(), 0))
            .i64(dimSize(op.getLogits(), 1))
            .i64(dimSize(op.getThresholds(), 0));
      });
  addStepCall<ComposeRoutesCsrOp>(
      patterns, converter, "composeRoutesCsr",
      [](ComposeRoutesCsrOp op, ComposeRoutesCsrOp::Adaptor a, StepCall &c) {
        c.ptr(a.getPrimaryRowPtr())
            .ptr(a.getPrimaryExpert())
            .ptr(a.getPrimaryGate())
            .ptr(a.getPosition())
            .ptr(a.getSecondaryRowPtr())
            .ptr(a.getSecondaryExpert())
            .ptr(a.getSecondaryGate())
            .results()
            .i64(numElements(op.getPrimaryRowPtr()) - 1)
            .i64(numElements(op.getPrimaryExpert()))
            .i64(numElements(op.getSecondaryExpert()))
            .i64(op.getExpertsPerGroup());
      });
  addStepCall<ComposeRoutesCsrGradOp>(
      patterns, converter, "composeRoutesCsrGrad",
      [](ComposeRoutesCsrGradOp op, ComposeRoutesCsrGradOp::Adaptor a,
         StepCall &c) {
        c.ptr(a.getRowPtr())
            .ptr(a.getPrimaryRowPtr())
            .ptr(a.getPrimaryGate())
            .ptr(a.getPosition())
            .ptr(a.getSecondaryRowPtr())
            .ptr(a.getSecondaryGate())
            .ptr(a.getDGate())
            .results()
            .i64(numElements(op.getRowPtr()) - 1)
            .i64(numElements(op.getPrimaryGate()))
            .i64(numElements(op.getSecondaryGate()));
      });
  addStepCall<GroupedLoadEstimateOp>(
      patterns, converter, "groupedLoadEstimate",
      [](GroupedLoadEstimateOp op, GroupedLoadEstimateOp::Adaptor a,
         StepCall &c) {
        c.ptr(a.getCleanLogits())
            .ptr(a.getNoiseLogits())
            .ptr(a.getNoisy())
            .ptr(a.getNoiseStd())
            .ptr(a.getTopValues())
            .ptr(a.getExpertOffset())
            .results()
            .i64(dimSize(op.getCleanLogits(), 0))
            .i64(dimSize(op.getCleanLogits(), 1))
            .i64(numElements(op.getExpertOffset()) - 1)
            .i64(op.getK());
      });
  addStepCall<GroupedLoadEstimateGradOp>(
      patterns, converter, "groupedLoadEstimateGrad",
      [](GroupedLoadEstimateGradOp op, GroupedLoadEstimateGradOp::Adaptor a,
         StepCall &c) {
        c.ptr(a.getCleanLogits())
            .ptr(a.getNoiseLogits())
            .ptr(a.getNoisy())
            .ptr(a.getNoiseStd())
            .ptr(a.getTopValues())
            .ptr(a.getExpertOffset())
            .ptr(a.getDLoad())
            .results()
            .i64(dimSize(op.getCleanLogits(), 0))
            .i64(dimSize(op.getCleanLogits(), 1))
            .i64(numElements(op.getExpertOffset()) - 1)
            .i64(op.getK());
      });
  addStepCall<HierarchicalLoadOp>(
      patterns, converter, "hierarchicalLoad",
      [](HierarchicalLoadOp op, HierarchicalLoadOp::Adaptor a, StepCall &c) {
        c.ptr(a.getPrimaryLoad())
            .ptr(a.getSecondaryLoad())
            .ptr(a.getExpertOffset())
            .results()
            .i64(dimSize(op.getSecondaryLoad(), 0))
            .i64(dimSize(op.getSecondaryLoad(), 1));
      });
  addStepCall<HierarchicalLoadGradOp>(
      patterns, converter, "hierarchicalLoadGrad",
      [](HierarchicalLoadGradOp op, HierarchicalLoadGradOp::Adaptor a,
         StepCall &c) {
        c.ptr(a.getPrimaryLoad())
            .ptr(a.getSecondaryLoad())
            .ptr(a.getExpertOffset())
            .ptr(a.getDLoad())
            .results()
            .i64(dimSize(op.getSecondaryLoad(), 0))
            .i64(dimSize(op.getSecondaryLoad(), 1));
      });
}
