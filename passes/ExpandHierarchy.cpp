//===- ExpandHierarchy.cpp - Two-level routing for hierarchical MoE -------===//
//
// Lowers moe.hierarchical_moe_layer: primary routing to groups, secondary
// routing inside each group, composed into one assignment list, then the
// experts. See the pass description in Passes.td.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"
#include "passes/PrimitiveBuilder.h"

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

struct ExpandHierarchyPass
    : public mlir::moe::impl::ExpandHierarchyBase<ExpandHierarchyPass> {
  using ExpandHierarchyBase::ExpandHierarchyBase;

  void runOnOperation() override {
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
    if (gating != GatingKind::top_k && gating != GatingKind::noisy_top_k)
      return op.emitOpError()
             << stringifyGatingKind(gating)
             << " gating in hierarchical layers ranks examples per group "
                "and is not lowered yet; use top_k or noisy_top_k";
    if (op.getLosses() && op.getLosses()->getLoad().convertToDouble() > 0)
      return op.emitOpError("the hierarchical load estimate (the paper's "
                            "Load_H) is not lowered yet; balance with the "
                            "importance loss");
    bool noisy = gating == GatingKind::noisy_top_k && !inference;
    std::optional<LossesAttr> losses = op.getLosses();
    if (inference)
      losses = std::nullopt;

    PrimitiveBuilder pb(op);
    OpBuilder &b = pb.b;
    Location loc = pb.loc;
    Value x = pb.collapseToRows(op.getInput());
    int64_t tokens = cast<RankedTensorType>(x.getType()).getDimSize(0);
    int64_t d = cast<RankedTensorType>(x.getType()).getDimSize(1);
    int64_t groups = op.getGroups(), perGroup = op.getExpertsPerGroup();
    int64_t kPrimary = *op.getKPrimary(), kSecondary = *op.getKSecondary();
    double importanceWeight = lossWeight(losses, &LossesAttr::getImportance);
    double l2Weight = lossWeight(losses, &LossesAttr::getL2Balance);
    SmallVector<Value> auxTerms;

    // Primary level: route tokens to groups.
    Value primaryClean = pb.matmul(x, op.getPrimaryGateWeights());
    Value primaryNoise =
        noisy ? pb.matmul(x, op.getPrimaryNoiseWeights()) : Value();
    NoisyTopKOp primary = pb.topK(primaryClean, primaryNoise, kPrimary,
                                  nextRngStream++, kNoiseEps);
    Value groupIds = pb.flatten(primary.getExpert());
    Value groupGates = pb.flatten(primary.getGate());
    pb.balanceLosses(groupIds, groupGates, groups, tokens, importanceWeight,
                     l2Weight, auxTerms);

    // Secondary level: each group's gate scores the rows sent to it.
    int64_t rows = tokens * kPrimary;
    auto groupPlan = b.create<DispatchPlanOp>(
        loc, TypeRange{pb.i32({groups + 1}), pb.i32({rows}), pb.i32({rows})},
        groupIds, Value(), groups, tokens);
    Value groupRows =
        b.create<DispatchOp>(loc, pb.f32({rows, d}), x, groupPlan.getToken());
    auto groupProduct = [&](Value weights) -> Value {
      return b.create<GroupedMatmulOp>(loc, pb.f32({rows, perGroup}), groupRows,
                                       weights, groupPlan.getExpertOffset());
    };
    Value secondaryClean = groupProduct(op.getSecondaryGateWeights());
    Value secondaryNoise =
        noisy ? groupProduct(op.getSecondaryNoiseWeights()) : Value();
    NoisyTopKOp secondary = pb.topK(secondaryClean, secondaryNoise, kSecondary,
                                    nextRngStream++, kNoiseEps);

    // Compose: expert g * perGroup + j, gate primary * secondary.
    int64_t assignments = rows * kSecondary;
    auto composed = b.create<ComposeRoutesOp>(
        loc, TypeRange{pb.i32({assignments}), pb.f32({assignments})}, groupIds,
        groupGates, groupPlan.getPosition(), secondary.getExpert(),
        secondary.getGate(), b.getI64IntegerAttr(perGroup));
    int64_t n = op.getNumExperts();
    pb.balanceLosses(composed.getExpert(), composed.getGate(), n, tokens,
                     importanceWeight, l2Weight, auxTerms);

    Value y = pb.experts(x, composed.getExpert(), composed.getGate(), Value(),
                         n, op.getExpertWeights(), op.getExpert().getAct());
    y = pb.activate(y, op.getOutputAct());
    pb.replaceLayer(op, y, auxTerms);
    return success();
  }

  int64_t nextRngStream = 0;
};

} // namespace
