//===- RoutingToEmitC.cpp - Gating, balancing losses, fused routing -------===//
//
// Lowers the routing family: noisy top-k and its load estimate, dense
// softmax, batchwise and threshold masks (Appendix A), the balancing losses
// (importance, CV^2, Eq. 5, Eq. 8), composed hierarchical routes and
// moe.fused_route, forward and backward. Most are one kernel each: their
// calls list the kernel's parameters (runtime/Kernels.def) in its order,
// sizes first.
//
//===----------------------------------------------------------------------===//

#include "codegen/MoEToEmitC.h"

#include "dialect/MoEOps.h"

using namespace mlir;
using namespace mlir::moe;

namespace {

/// Rows and columns of a [rows, n] routing tensor.
StepCall &rowsAndColumns(StepCall &c, Value tensor) {
  return c.i64(dimSize(tensor, 0)).i64(dimSize(tensor, 1));
}

/// Eq. 8 per group, forward or backward: groups, rows per group and
/// experts, then the op's operands and results in order. With the
/// segments of an expert_offset, the step function `segmented` instead:
/// operands, results, rows, groups and experts.
template <typename OpTy>
void addGroupedThresholdLoss(RewritePatternSet &patterns,
                             const TypeConverter &converter, StringRef kernel,
                             StringRef segmented) {
  addStepCall<OpTy>(patterns, converter, kernel,
                    [segmented = segmented.str()](
                        OpTy op, typename OpTy::Adaptor a, StepCall &c) {
                      int64_t groups = dimSize(op.getThresholds(), 0);
                      if (op.getExpertOffset()) {
                        c.callee(segmented)
                            .operands(a.getOperands())
                            .results()
                            .i64(dimSize(op.getLogits(), 0))
                            .i64(groups)
                            .i64(dimSize(op.getLogits(), 1));
                        return;
                      }
                      c.i64(groups)
                          .i64(dimSize(op.getLogits(), 0) / groups)
                          .i64(dimSize(op.getLogits(), 1))
                          .operands(a.getOperands())
                          .results();
                    });
}

} // namespace

void mlir::moe::populateMoERoutingToEmitCPatterns(
    const TypeConverter &converter, RewritePatternSet &patterns,
    const EmitCTarget &target) {
  addStepCall<NoisyTopKOp>(
      patterns, converter, "noisyTopK",
      [](NoisyTopKOp op, NoisyTopKOp::Adaptor a, StepCall &c) {
        c.ptr(a.getCleanLogits())
            .ptr(a.getNoiseLogits())
            .ptr(a.getNoisePosition())
            .results();
        rowsAndColumns(c, op.getCleanLogits())
            .i64(op.getK())
            .f32(op.getNoiseEps().convertToFloat())
            .i64(op.getRngStream());
      });
  addStepCall<NoisyTopKGradOp>(
      patterns, converter, "noisyTopKBackward",
      [](NoisyTopKGradOp op, NoisyTopKGradOp::Adaptor a, StepCall &c) {
        rowsAndColumns(c, op.getCleanLogits())
            .i64(dimSize(op.getGate(), 1))
            .ptr(a.getNoisy())
            .ptr(a.getCleanLogits())
            .ptr(a.getNoiseLogits())
            .ptr(a.getNoiseStd())
            .ptr(a.getExpert())
            .ptr(a.getGate())
            .ptr(a.getDGate())
            .result(0);
        if (op.getDNoiseLogits())
          c.result(1);
        else
          c.ptr(Value());
      });
  addStepCall<LoadEstimateOp>(
      patterns, converter, "loadEstimateForward",
      [](LoadEstimateOp op, LoadEstimateOp::Adaptor a, StepCall &c) {
        rowsAndColumns(c, op.getCleanLogits())
            .i64(op.getK())
            .ptr(a.getCleanLogits())
            .ptr(a.getNoisy())
            .ptr(a.getNoiseStd())
            .ptr(a.getTopValues())
            .ptr(a.getRowPtr())
            .results();
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
            .ptr(a.getRowPtr())
            .results();
        rowsAndColumns(c, op.getCleanLogits()).i64(op.getK());
      });
  addStepCall<DropPaddingOp>(
      patterns, converter, "dropPadding",
      [](DropPaddingOp op, DropPaddingOp::Adaptor a, StepCall &c) {
        int64_t tokens = op.getTokens();
        int64_t batch = numElements(op.getLengths());
        c.operands(a.getOperands())
            .results()
            .i64(batch)
            .i64(tokens / batch)
            .i64(numElements(op.getExpert()) / tokens);
      });
  addStepCall<DropPaddingGradOp>(
      patterns, converter, "dropPaddingBackward",
      [](DropPaddingGradOp op, DropPaddingGradOp::Adaptor a, StepCall &c) {
        int64_t tokens = numElements(op.getRowPtr()) - 1;
        c.i64(tokens)
            .i64(numElements(op.getDKeptGate()) / tokens)
            .operands(a.getOperands())
            .results();
      });
  addStepCall<SoftmaxOp>(
      patterns, converter, "softmaxForward",
      [](SoftmaxOp op, SoftmaxOp::Adaptor a, StepCall &c) {
        rowsAndColumns(c, op.getLogits()).operands(a.getOperands()).results();
      });
  addStepCall<SoftmaxGradOp>(
      patterns, converter, "softmaxBackward",
      [](SoftmaxGradOp op, SoftmaxGradOp::Adaptor a, StepCall &c) {
        rowsAndColumns(c, op.getProbs()).operands(a.getOperands()).results();
      });
  addStepCall<BatchwiseMaskOp>(
      patterns, converter, "batchwiseMask",
      [](BatchwiseMaskOp op, BatchwiseMaskOp::Adaptor a, StepCall &c) {
        c.operands(a.getOperands()).results();
        rowsAndColumns(c, op.getLogits())
            .i64(op.getM())
            .i64(numElements(op.getExpert()))
            .flag(op.getCombinedBatch());
      });
  addStepCall<ThresholdMaskOp>(
      patterns, converter, "thresholdMask",
      [](ThresholdMaskOp op, ThresholdMaskOp::Adaptor a, StepCall &c) {
        c.operands(a.getOperands()).results();
        rowsAndColumns(c, op.getLogits()).i64(numElements(op.getExpert()));
      });
  addStepCall<MaskedGateGradOp>(
      patterns, converter, "maskedGateBackward",
      [](MaskedGateGradOp op, MaskedGateGradOp::Adaptor a, StepCall &c) {
        c.i64(numElements(op.getRowPtr()) - 1)
            .i64(op.getNumExperts())
            .operands(a.getOperands())
            .results();
      });
  addStepCall<BatchwiseThresholdLossOp>(
      patterns, converter, "batchwiseThresholdLossForward",
      [](BatchwiseThresholdLossOp op, BatchwiseThresholdLossOp::Adaptor a,
         StepCall &c) {
        rowsAndColumns(c, op.getLogits()).operands(a.getOperands()).results();
      });
  addStepCall<BatchwiseThresholdLossGradOp>(
      patterns, converter, "batchwiseThresholdLossBackward",
      [](BatchwiseThresholdLossGradOp op,
         BatchwiseThresholdLossGradOp::Adaptor a, StepCall &c) {
        rowsAndColumns(c, op.getLogits()).operands(a.getOperands()).results();
      });
  addStepCall<ImportanceOp>(
      patterns, converter, "importanceForward",
      [](ImportanceOp op, ImportanceOp::Adaptor a, StepCall &c) {
        c.i64(numElements(op.getExpert()))
            .i64(op.getNumExperts())
            .operands(a.getOperands())
            .results();
      });
  addStepCall<ImportanceGradOp>(
      patterns, converter, "importanceBackward",
      [](ImportanceGradOp op, ImportanceGradOp::Adaptor a, StepCall &c) {
        c.i64(numElements(op.getExpert()))
            .i64(numElements(op.getDImportance()))
            .operands(a.getOperands())
            .results();
      });
  addStepCall<CvSquaredOp>(
      patterns, converter, "cvSquaredForward",
      [](CvSquaredOp op, CvSquaredOp::Adaptor a, StepCall &c) {
        c.i64(numElements(op.getValues()))
            .ptr(a.getValues())
            .f32(op.getWeight().convertToFloat())
            .results();
      });
  addStepCall<CvSquaredGradOp>(
      patterns, converter, "cvSquaredBackward",
      [](CvSquaredGradOp op, CvSquaredGradOp::Adaptor a, StepCall &c) {
        c.i64(numElements(op.getValues()))
            .ptr(a.getValues())
            .f32(op.getWeight().convertToFloat())
            .ptr(a.getDLoss())
            .results();
      });
  addStepCall<L2BalanceOp>(
      patterns, converter, "l2BalanceForward",
      [](L2BalanceOp op, L2BalanceOp::Adaptor a, StepCall &c) {
        c.i64(op.getTokens())
            .i64(numElements(op.getImportance()))
            .ptr(a.getImportance())
            .f32(op.getWeight().convertToFloat())
            .results();
      });
  addStepCall<L2BalanceGradOp>(
      patterns, converter, "l2BalanceBackward",
      [](L2BalanceGradOp op, L2BalanceGradOp::Adaptor a, StepCall &c) {
        c.i64(op.getTokens())
            .i64(numElements(op.getImportance()))
            .ptr(a.getImportance())
            .f32(op.getWeight().convertToFloat())
            .ptr(a.getDLoss())
            .results();
      });
  addStepCall<ComposeRoutesOp>(
      patterns, converter, "composeRoutesForward",
      [](ComposeRoutesOp op, ComposeRoutesOp::Adaptor a, StepCall &c) {
        c.i64(numElements(op.getPrimaryExpert()))
            .i64(dimSize(op.getSecondaryExpert(), 1))
            .i64(op.getExpertsPerGroup())
            .operands(a.getOperands())
            .results();
      });
  addStepCall<ComposeRoutesGradOp>(
      patterns, converter, "composeRoutesBackward",
      [](ComposeRoutesGradOp op, ComposeRoutesGradOp::Adaptor a, StepCall &c) {
        c.i64(numElements(op.getPrimaryGate()))
            .i64(dimSize(op.getSecondaryGate(), 1))
            .operands(a.getOperands())
            .results();
      });
  addStepCall<FusedRouteOp>(
      patterns, converter, "fusedRoute",
      [target](FusedRouteOp op, FusedRouteOp::Adaptor a, StepCall &c) {
        c.operands(a.getOperands())
            .results()
            .i64(dimSize(op.getInput(), 0))
            .i64(dimSize(op.getInput(), 1))
            .i64(dimSize(op.getGateWeights(), 1))
            .i64(op.getK())
            .f32(op.getNoiseEps().convertToFloat())
            .i64(op.getRngStream())
            .literal(target.routerPrecision(op.getAllowTf32()));
      });

  addStepCall<FusedRouteGradOp>(
      patterns, converter, "fusedRouteBackward",
      [](FusedRouteGradOp op, FusedRouteGradOp::Adaptor a, StepCall &c) {
        rowsAndColumns(c, op.getCleanLogits())
            .i64(dimSize(op.getGate(), 1))
            .ptr(a.getCleanLogits())
            .ptr(a.getNoiseLogits())
            .ptr(a.getNoisy())
            .ptr(a.getNoiseStd())
            .ptr(a.getTopValues())
            .ptr(a.getExpert())
            .ptr(a.getGate())
            .ptr(a.getDGate())
            .ptr(a.getDLoad())
            .ptr(a.getDImportance())
            .results();
      });

  // Hierarchical layers with batchwise and threshold masks, Load_H: the
  // secondary level's `rows` rows form `groups` segments of the primary
  // plan's groups.
  addStepCall<GroupedBatchwiseMaskOp>(
      patterns, converter, "groupedBatchwiseMaskForward",
      [](GroupedBatchwiseMaskOp op, GroupedBatchwiseMaskOp::Adaptor a,
         StepCall &c) {
        int64_t groups = op.getGroups();
        if (op.getCombinedBatch()) {
          c.callee("groupedBatchwiseMask").operands(a.getOperands()).results();
          rowsAndColumns(c, op.getLogits())
              .i64(groups)
              .i64(op.getM())
              .i64(numElements(op.getExpert()));
          return;
        }
        c.i64(groups)
            .i64(dimSize(op.getLogits(), 0) / groups)
            .i64(dimSize(op.getLogits(), 1))
            .i64(op.getM())
            .operands(a.getOperands())
            .results();
      });
  addStepCall<GroupedThresholdMaskOp>(
      patterns, converter, "groupedThresholdMask",
      [](GroupedThresholdMaskOp op, GroupedThresholdMaskOp::Adaptor a,
         StepCall &c) {
        c.operands(a.getOperands()).results();
        rowsAndColumns(c, op.getLogits())
            .i64(dimSize(op.getThresholds(), 0))
            .i64(numElements(op.getExpert()));
      });
  addGroupedThresholdLoss<GroupedBatchwiseThresholdLossOp>(
      patterns, converter, "groupedBatchwiseThresholdLossForward",
      "segmentedThresholdLoss");
  addGroupedThresholdLoss<GroupedBatchwiseThresholdLossGradOp>(
      patterns, converter, "groupedBatchwiseThresholdLossBackward",
      "segmentedThresholdLossGrad");
  addStepCall<ComposeRoutesCsrOp>(
      patterns, converter, "composeRoutesCsrForward",
      [](ComposeRoutesCsrOp op, ComposeRoutesCsrOp::Adaptor a, StepCall &c) {
        c.i64(numElements(op.getPrimaryRowPtr()) - 1)
            .i64(numElements(op.getPrimaryExpert()))
            .i64(numElements(op.getSecondaryExpert()))
            .i64(op.getExpertsPerGroup())
            .operands(a.getOperands())
            .results();
      });
  addStepCall<ComposeRoutesCsrGradOp>(
      patterns, converter, "composeRoutesCsrBackward",
      [](ComposeRoutesCsrGradOp op, ComposeRoutesCsrGradOp::Adaptor a,
         StepCall &c) {
        c.i64(numElements(op.getRowPtr()) - 1)
            .i64(numElements(op.getPrimaryGate()))
            .i64(numElements(op.getSecondaryGate()))
            .operands(a.getOperands())
            .results();
      });
  addStepCall<GroupedLoadEstimateOp>(
      patterns, converter, "groupedLoadEstimateForward",
      [](GroupedLoadEstimateOp op, GroupedLoadEstimateOp::Adaptor a,
         StepCall &c) {
        // (R, groups, n, k): the groups come before the experts per group.
        c.i64(dimSize(op.getCleanLogits(), 0))
            .i64(numElements(op.getExpertOffset()) - 1)
            .i64(dimSize(op.getCleanLogits(), 1))
            .i64(op.getK())
            .ptr(a.getExpertOffset())
            .ptr(a.getCleanLogits())
            .ptr(a.getNoisy())
            .ptr(a.getNoiseStd())
            .ptr(a.getTopValues())
            .results();
      });
  addStepCall<GroupedLoadEstimateGradOp>(
      patterns, converter, "groupedLoadEstimateGrad",
      [](GroupedLoadEstimateGradOp op, GroupedLoadEstimateGradOp::Adaptor a,
         StepCall &c) {
        c.operands(a.getOperands()).results();
        rowsAndColumns(c, op.getCleanLogits())
            .i64(numElements(op.getExpertOffset()) - 1)
            .i64(op.getK());
      });
  addStepCall<HierarchicalLoadOp>(
      patterns, converter, "hierarchicalLoadForward",
      [](HierarchicalLoadOp op, HierarchicalLoadOp::Adaptor a, StepCall &c) {
        rowsAndColumns(c, op.getSecondaryLoad())
            .ptr(a.getExpertOffset())
            .ptr(a.getPrimaryLoad())
            .ptr(a.getSecondaryLoad())
            .results();
      });
  addStepCall<HierarchicalLoadGradOp>(
      patterns, converter, "hierarchicalLoadBackward",
      [](HierarchicalLoadGradOp op, HierarchicalLoadGradOp::Adaptor a,
         StepCall &c) {
        rowsAndColumns(c, op.getSecondaryLoad())
            .ptr(a.getExpertOffset())
            .ptr(a.getPrimaryLoad())
            .ptr(a.getSecondaryLoad())
            .ptr(a.getDLoad())
            .results();
      });
}
