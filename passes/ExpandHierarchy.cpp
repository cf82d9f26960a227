//===- ExpandHierarchy.cpp - Two-level routing for hierarchical MoE -------===//
//
// Lowers moe.hierarchical_moe_layer: primary routing to groups, secondary
// routing inside each group (top-k, batchwise or threshold masks), composed
// into one assignment list, then the experts; balancing losses per level
// and the hierarchical load Load_H. See the pass description in Passes.td.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"
#include "passes/PrimitiveBuilder.h"

#include "dialect/MoEDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace mlir::moe {
#define GEN_PASS_DEF_EXPANDHIERARCHY
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

#define DEBUG_TYPE "moe-expand-hierarchy"

namespace {

/// One past the highest RNG stream already used in `func`.
int64_t firstFreeRngStream(func::FuncOp func) {
  int64_t next = 0;
  func.walk([&](Operation *op) {
    if (auto stream = op->getAttrOfType<IntegerAttr>("rng_stream"))
      next = std::max(next, stream.getInt() + 1);
  });
  return next;
}

/// The composed routing of a layer: token-major assignments over all
/// experts; `rowPtr` is null when every token has the same number.
struct Routes {
  Value expert, gate, rowPtr;
};

/// What the routing of one hierarchical layer needs.
struct LayerContext {
  HierarchicalMoELayerOp op;
  PrimitiveBuilder &pb;
  Value x;
  int64_t tokens, d, groups, perGroup, n;
  double importanceWeight, l2Weight, loadWeight, thresholdWeight;
  SmallVector<Value> auxTerms;

  /// weight * term, for the Eq. 8 losses.
  void addScaled(Value term, double weight) {
    auxTerms.push_back(
        pb.b.create<ScaleOp>(pb.loc, term, pb.b.getF32FloatAttr(weight)));
  }
  /// weight * CV^2 of `values`.
  void addCvSquared(Value values, double weight) {
    auxTerms.push_back(pb.b.create<CvSquaredOp>(pb.loc, pb.f32({}), values,
                                                pb.b.getF32FloatAttr(weight)));
  }
  /// The dispatch plan of the primary assignments over the groups (with
  /// `rowPtr` when tokens have a variable number of groups); the primary
  /// gates go along for routing captures (Table 7's view).
  DispatchPlanOp planGroups(Value groupIds, Value groupGates, Value rowPtr) {
    int64_t rows = cast<RankedTensorType>(groupIds.getType()).getDimSize(0);
    return pb.b.create<DispatchPlanOp>(
        pb.loc, TypeRange{pb.i32({groups + 1}), pb.i32({rows}), pb.i32({rows})},
        groupIds, rowPtr, groupGates, groups, tokens);
  }
  /// The token rows the plan sends to the groups, group-major.
  Value groupRows(DispatchPlanOp plan) {
    int64_t rows = plan.getToken().getType().getDimSize(0);
    return pb.b.create<DispatchOp>(pb.loc, pb.f32({rows, d}), x,
                                   plan.getToken());
  }
  /// Each group's rows times that group's weights [groups, d, perGroup]:
  /// one grouped matmul for all groups' secondary gates.
  Value groupProduct(Value rows, Value weights, DispatchPlanOp plan) {
    int64_t count = cast<RankedTensorType>(rows.getType()).getDimSize(0);
    return pb.b.create<GroupedMatmulOp>(pb.loc, pb.f32({count, perGroup}), rows,
                                        weights, plan.getExpertOffset());
  }
};

struct ExpandHierarchyPass
    : public mlir::moe::impl::ExpandHierarchyBase<ExpandHierarchyPass> {
  using ExpandHierarchyBase::ExpandHierarchyBase;

  void runOnOperation() override {
    if (failed(checkThresholdCapacityFactor(getOperation(), thresholdCapacity)))
      return signalPassFailure();
    FailureOr<bool> tf32 = routerAllowsTf32(getOperation(), routerPrecision);
    if (failed(tf32))
      return signalPassFailure();
    routerTf32 = *tf32;
    inferenceMode =
        inference || getOperation()->hasAttr(MoEDialect::kInferenceAttrName);
    nextRngStream = firstFreeRngStream(getOperation());
    SmallVector<HierarchicalMoELayerOp> layers;
    getOperation().walk(
        [&](HierarchicalMoELayerOp op) { layers.push_back(op); });
    for (HierarchicalMoELayerOp op : layers)
      if (failed(expand(op)))
        return signalPassFailure();
  }

  LogicalResult expand(HierarchicalMoELayerOp op) {
    GatingKind gating = op.getGating();
    // As in moe-decompose: a batch of one has nothing to rank, so
    // batchwise-trained layers route with their learned thresholds at
    // inference, at both levels.
    if (inferenceMode && gating == GatingKind::batchwise)
      gating = GatingKind::threshold;
    if (gating == GatingKind::threshold && !inferenceMode)
      return op.emitOpError("threshold gating is for inference: train with "
                            "batchwise gating, whose learned thresholds the "
                            "inference pipeline uses");
    std::optional<LossesAttr> losses = op.getLosses();
    if (inferenceMode)
      losses = std::nullopt;

    PrimitiveBuilder pb(op);
    Value x = pb.collapseToRows(op.getInput());
    auto xType = cast<RankedTensorType>(x.getType());
    LayerContext c{op,
                   pb,
                   x,
                   xType.getDimSize(0),
                   xType.getDimSize(1),
                   static_cast<int64_t>(op.getGroups()),
                   op.getExpertsPerGroup(),
                   static_cast<int64_t>(op.getNumExperts()),
                   lossWeight(losses, &LossesAttr::getImportance),
                   lossWeight(losses, &LossesAttr::getL2Balance),
                   lossWeight(losses, &LossesAttr::getLoad),
                   lossWeight(losses, &LossesAttr::getBatchwiseThreshold),
                   {}};

    Routes routes;
    switch (gating) {
    case GatingKind::top_k:
    case GatingKind::noisy_top_k:
      routes =
          routeTopK(c, gating == GatingKind::noisy_top_k && !inferenceMode);
      break;
    case GatingKind::batchwise:
      routes = routeBatchwise(c);
      break;
    case GatingKind::threshold:
      routes = routeThreshold(c);
      break;
    case GatingKind::softmax:
      return op.emitOpError("hierarchical layers need sparse gating");
    }

    Value y = pb.experts(x, routes.expert, routes.gate, routes.rowPtr, c.n,
                         op.getExpertWeights(), op.getExpert().getAct());
    y = pb.activate(y, op.getOutputAct());
    pb.replaceLayer(op, y, c.auxTerms);
    return success();
  }

  /// Top-k at both levels: k_primary groups per token, k_secondary experts
  /// per dispatched row, composed into k_primary * k_secondary assignments
  /// per token. With noise and a load weight, the load is balanced per
  /// level: the groups' load and Load_H over all experts.
  Routes routeTopK(LayerContext &c, bool noisy) {
    PrimitiveBuilder &pb = c.pb;
    HierarchicalMoELayerOp op = c.op;
    int64_t kPrimary = *op.getKPrimary(), kSecondary = *op.getKSecondary();

    // Primary level: route tokens to groups.
    Value primaryClean = pb.matmul(c.x, op.getPrimaryGateWeights(), routerTf32);
    Value primaryNoise =
        noisy ? pb.matmul(c.x, op.getPrimaryNoiseWeights(), routerTf32)
              : Value();
    NoisyTopKOp primary = pb.topK(primaryClean, primaryNoise, kPrimary,
                                  nextRngStream++, kNoiseEps);
    Value groupIds = pb.flatten(primary.getExpert());
    Value groupGates = pb.flatten(primary.getGate());
    pb.balanceLosses(groupIds, groupGates, c.groups, c.tokens,
                     c.importanceWeight, c.l2Weight, c.auxTerms);
    bool balanceLoad = noisy && c.loadWeight > 0;
    Value primaryLoad;
    if (balanceLoad) {
      primaryLoad = pb.b.create<LoadEstimateOp>(
          pb.loc, pb.f32({c.groups}), primaryClean, primaryNoise,
          primary.getNoisy(), primary.getNoiseStd(), primary.getTopValues(),
          /*row_ptr=*/Value(), pb.b.getI64IntegerAttr(kPrimary));
      c.addCvSquared(primaryLoad, c.loadWeight);
    }

    // Secondary level: each group's gate scores the rows sent to it.
    DispatchPlanOp groupPlan = c.planGroups(groupIds, groupGates, Value());
    Value rows = c.groupRows(groupPlan);
    Value secondaryClean =
        c.groupProduct(rows, op.getSecondaryGateWeights(), groupPlan);
    Value secondaryNoise =
        noisy ? c.groupProduct(rows, op.getSecondaryNoiseWeights(), groupPlan)
              : Value();
    // A row draws the noise of its primary assignment (token-major), not
    // of its place in this rank's group-major buffer: R ranks then draw
    // their shards of what one rank of the global batch draws.
    NoisyTopKOp secondary =
        pb.topK(secondaryClean, secondaryNoise, kSecondary, nextRngStream++,
                kNoiseEps, noisy ? groupPlan.getPosition() : Value());

    // Compose: expert g * perGroup + j, gate primary * secondary.
    int64_t assignments = c.tokens * kPrimary * kSecondary;
    auto composed = pb.b.create<ComposeRoutesOp>(
        pb.loc, TypeRange{pb.i32({assignments}), pb.f32({assignments})},
        groupIds, groupGates, groupPlan.getPosition(), secondary.getExpert(),
        secondary.getGate(), pb.b.getI64IntegerAttr(c.perGroup));

    // Load_H[g, j] = Load_primary[g] * Load_g(X^(g))[j] / |X^(g)|.
    if (balanceLoad) {
      Value secondaryLoad = pb.b.create<GroupedLoadEstimateOp>(
          pb.loc, pb.f32({c.groups, c.perGroup}), secondaryClean,
          secondaryNoise, secondary.getNoisy(), secondary.getNoiseStd(),
          secondary.getTopValues(), groupPlan.getExpertOffset(),
          pb.b.getI64IntegerAttr(kSecondary));
      Value load = pb.b.create<HierarchicalLoadOp>(pb.loc, pb.f32({c.n}),
                                                   primaryLoad, secondaryLoad,
                                                   groupPlan.getExpertOffset());
      c.addCvSquared(load, c.loadWeight);
    }
    pb.balanceLosses(composed.getExpert(), composed.getGate(), c.n, c.tokens,
                     c.importanceWeight, c.l2Weight, c.auxTerms);
    return {composed.getExpert(), composed.getGate(), Value()};
  }

  /// Appendix A at each level (training): each group keeps the m_p =
  /// k_primary * T / groups tokens of highest primary probability, so each
  /// group sees exactly m_p rows; inside a group's rows each of its experts
  /// keeps m_s = k_secondary * m_p / experts_per_group of them. Eq. 8
  /// trains the thresholds of each level. Over the combined batch of R
  /// ranks (m_p R and m_s R of all ranks' tokens and rows) a rank's share
  /// varies: both levels get `threshold-capacity` times one batch's slots,
  /// and the secondary level's groups are the primary plan's segments.
  Routes routeBatchwise(LayerContext &c) {
    PrimitiveBuilder &pb = c.pb;
    OpBuilder &b = pb.b;
    HierarchicalMoELayerOp op = c.op;
    int64_t mPrimary = *op.getKPrimary() * c.tokens / c.groups;
    int64_t rows = c.groups * mPrimary;
    int64_t mSecondary = *op.getKSecondary() * mPrimary / c.perGroup;
    int64_t assignments = c.n * mSecondary;
    if (combinedBatch) {
      rows = thresholdMaskCapacity(c.tokens, c.groups, rows, thresholdCapacity);
      assignments = thresholdMaskCapacity(rows, c.perGroup, assignments,
                                          thresholdCapacity);
    }

    Value primaryLogits =
        pb.matmul(c.x, op.getPrimaryGateWeights(), routerTf32);
    auto primary = b.create<BatchwiseMaskOp>(
        pb.loc,
        TypeRange{pb.f32({c.tokens, c.groups}), pb.i32({c.tokens + 1}),
                  pb.i32({rows}), pb.f32({rows})},
        primaryLogits, mPrimary, combinedBatch);
    if (c.thresholdWeight > 0)
      c.addScaled(b.create<BatchwiseThresholdLossOp>(
                      pb.loc, pb.f32({}), primaryLogits, primary.getMask(),
                      op.getPrimaryThresholds()),
                  c.thresholdWeight);
    pb.balanceLosses(primary.getExpert(), primary.getGate(), c.groups, c.tokens,
                     c.importanceWeight, c.l2Weight, c.auxTerms);

    DispatchPlanOp groupPlan =
        c.planGroups(primary.getExpert(), primary.getGate(),
                      primary.getRowPtr());
    Value secondaryLogits = c.groupProduct(
        c.groupRows(groupPlan), op.getSecondaryGateWeights(), groupPlan);
    Value segments = combinedBatch ? groupPlan.getExpertOffset() : Value();
    auto secondary = b.create<GroupedBatchwiseMaskOp>(
        pb.loc,
        TypeRange{pb.f32({rows, c.perGroup}), pb.i32({rows + 1}),
                  pb.i32({assignments}), pb.f32({assignments})},
        secondaryLogits, segments, c.groups, mSecondary, combinedBatch);
    if (c.thresholdWeight > 0)
      c.addScaled(b.create<GroupedBatchwiseThresholdLossOp>(
                      pb.loc, pb.f32({}), secondaryLogits, secondary.getMask(),
                      op.getSecondaryThresholds(), segments),
                  c.thresholdWeight);

    auto composed = b.create<ComposeRoutesCsrOp>(
        pb.loc,
        TypeRange{pb.i32({c.tokens + 1}), pb.i32({assignments}),
                  pb.f32({assignments})},
        primary.getRowPtr(), primary.getExpert(), primary.getGate(),
        groupPlan.getPosition(), secondary.getRowPtr(), secondary.getExpert(),
        secondary.getGate(), b.getI64IntegerAttr(c.perGroup));
    pb.balanceLosses(composed.getExpert(), composed.getGate(), c.n, c.tokens,
                     c.importanceWeight, c.l2Weight, c.auxTerms);
    return {composed.getExpert(), composed.getGate(), composed.getRowPtr()};
  }

  /// Eq. 7 at each level (inference): a token goes to every group whose
  /// primary threshold its probability exceeds, and inside a group to
  /// every expert whose secondary threshold it exceeds. The numbers of
  /// assignments depend on the data; each level's buffers hold
  /// `threshold-capacity` times what its batchwise mask keeps in training
  /// (k_primary * tokens rows; k_secondary of them per row), at most every
  /// choice, and the row pointers say how many are used.
  Routes routeThreshold(LayerContext &c) {
    PrimitiveBuilder &pb = c.pb;
    OpBuilder &b = pb.b;
    HierarchicalMoELayerOp op = c.op;
    std::optional<int64_t> primaryExpected, secondaryExpected;
    if (std::optional<uint64_t> kPrimary = op.getKPrimary()) {
      primaryExpected = static_cast<int64_t>(*kPrimary) * c.tokens;
      if (std::optional<uint64_t> kSecondary = op.getKSecondary())
        secondaryExpected =
            static_cast<int64_t>(*kSecondary) * *primaryExpected;
    }
    int64_t rows = thresholdMaskCapacity(c.tokens, c.groups, primaryExpected,
                                         thresholdCapacity);
    int64_t assignments = thresholdMaskCapacity(
        rows, c.perGroup, secondaryExpected, thresholdCapacity);

    Value primaryLogits =
        pb.matmul(c.x, op.getPrimaryGateWeights(), routerTf32);
    auto primary = b.create<ThresholdMaskOp>(
        pb.loc,
        TypeRange{pb.i32({c.tokens + 1}), pb.i32({rows}), pb.f32({rows})},
        primaryLogits, op.getPrimaryThresholds());
    DispatchPlanOp groupPlan =
        c.planGroups(primary.getExpert(), primary.getGate(),
                      primary.getRowPtr());
    Value secondaryLogits = c.groupProduct(
        c.groupRows(groupPlan), op.getSecondaryGateWeights(), groupPlan);
    auto secondary = b.create<GroupedThresholdMaskOp>(
        pb.loc,
        TypeRange{pb.i32({rows + 1}), pb.i32({assignments}),
                  pb.f32({assignments})},
        secondaryLogits, op.getSecondaryThresholds(),
        groupPlan.getExpertOffset());
    auto composed = b.create<ComposeRoutesCsrOp>(
        pb.loc,
        TypeRange{pb.i32({c.tokens + 1}), pb.i32({assignments}),
                  pb.f32({assignments})},
        primary.getRowPtr(), primary.getExpert(), primary.getGate(),
        groupPlan.getPosition(), secondary.getRowPtr(), secondary.getExpert(),
        secondary.getGate(), b.getI64IntegerAttr(c.perGroup));
    return {composed.getExpert(), composed.getGate(), composed.getRowPtr()};
  }

  bool inferenceMode = false;
  bool routerTf32 = false;
  int64_t nextRngStream = 0;
};

} // namespace
