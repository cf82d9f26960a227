//===- FuseRouting.cpp - Fuse the noisy top-k routing chain ---------------===//
//
// Pattern-matches gate/noise logits, noisy top-k, load estimate, importance
// and dispatch plan, and replaces them with moe.fused_route. See the pass
// description in Passes.td.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "dialect/MoEOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::moe {
#define GEN_PASS_DEF_FUSEROUTING
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

#define DEBUG_TYPE "moe-fuse-routing"

namespace {

/// `value` is a plain x * W product (no transposes); returns the matmul.
MatmulOp plainProduct(Value value) {
  auto matmul = value.getDefiningOp<MatmulOp>();
  if (!matmul || matmul.getTransposeLhs() || matmul.getTransposeRhs())
    return nullptr;
  return matmul;
}

struct FuseNoisyRouting : public OpRewritePattern<NoisyTopKOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(NoisyTopKOp topK,
                                PatternRewriter &rewriter) const override {
    Value noise = topK.getNoiseLogits();
    if (!noise)
      return rewriter.notifyMatchFailure(topK, "no noise: nothing to fuse");
    if (topK.getNoisePosition())
      return rewriter.notifyMatchFailure(topK, "noise drawn by position");
    MatmulOp gateProduct = plainProduct(topK.getCleanLogits());
    MatmulOp noiseProduct = plainProduct(noise);
    // One product feeding both logits (gate and noise weights the same
    // value, merged by CSE) would be replaced twice.
    if (!gateProduct || !noiseProduct || gateProduct == noiseProduct ||
        gateProduct.getLhs() != noiseProduct.getLhs())
      return rewriter.notifyMatchFailure(
          topK, "logits are not x * W_gate and x * W_noise of one x");
    // One op has one precision for both products.
    if (gateProduct.getAllowTf32() != noiseProduct.getAllowTf32())
      return rewriter.notifyMatchFailure(
          topK, "the gate products differ in precision");

    // The selection must feed exactly one dispatch plan through a
    // flattening reshape, and optionally the importance.
    if (!topK.getExpert().hasOneUse())
      return rewriter.notifyMatchFailure(topK, "expert ids used elsewhere");
    auto flatIds =
        dyn_cast<tensor::CollapseShapeOp>(*topK.getExpert().user_begin());
    if (!flatIds)
      return rewriter.notifyMatchFailure(topK, "expert ids not flattened");
    DispatchPlanOp plan;
    ImportanceOp importance;
    for (Operation *user : flatIds->getUsers()) {
      if (auto p = dyn_cast<DispatchPlanOp>(user); p && !p.getRowPtr() && !plan)
        plan = p;
      else if (auto i = dyn_cast<ImportanceOp>(user); i && !importance)
        importance = i;
      else
        return rewriter.notifyMatchFailure(topK, "selection used elsewhere");
    }
    if (!plan)
      return rewriter.notifyMatchFailure(topK, "no dispatch plan");

    // The logits and saved values may feed only the chain itself.
    LoadEstimateOp load;
    auto onlyChain = [&](Value v) {
      for (Operation *user : v.getUsers()) {
        if (user == topK.getOperation())
          continue;
        auto l = dyn_cast<LoadEstimateOp>(user);
        // The fused op's load counts every token: no row pointers.
        if (!l || l.getK() != topK.getK() || l.getRowPtr() ||
            l.getCleanLogits() != topK.getCleanLogits() ||
            l.getNoiseLogits() != noise || (load && l != load))
          return false;
        load = l;
      }
      return true;
    };
    if (!onlyChain(topK.getCleanLogits()) || !onlyChain(noise) ||
        !onlyChain(topK.getNoisy()) || !onlyChain(topK.getNoiseStd()) ||
        !onlyChain(topK.getTopValues()))
      return rewriter.notifyMatchFailure(topK, "logits used outside routing");

    Location loc = topK.getLoc();
    int64_t n = topK.getCleanLogits().getType().getDimSize(1);
    SmallVector<Type> types = {
        topK.getCleanLogits().getType(),
        noise.getType(),
        topK.getExpert().getType(),
        topK.getGate().getType(),
        topK.getNoisy().getType(),
        topK.getNoiseStd().getType(),
        topK.getTopValues().getType(),
        RankedTensorType::get({n}, rewriter.getF32Type()),
        RankedTensorType::get({n}, rewriter.getF32Type())};
    types.append(plan->getResultTypes().begin(), plan->getResultTypes().end());
    rewriter.setInsertionPoint(topK);
    // The top-k's attributes but its operand segments.
    SmallVector<NamedAttribute> attrs = llvm::to_vector(
        llvm::make_filter_range(topK->getAttrs(), [&](NamedAttribute attr) {
          return attr.getName() != topK.getOperandSegmentSizesAttrName();
        }));
    auto fused = rewriter.create<FusedRouteOp>(
        loc, types,
        ValueRange{gateProduct.getLhs(), gateProduct.getRhs(),
                   noiseProduct.getRhs()},
        attrs);
    fused.setAllowTf32(gateProduct.getAllowTf32());

    // Rewire every consumer of the chain to the fused results.
    rewriter.replaceOp(
        plan, {fused.getExpertOffset(), fused.getPosition(), fused.getToken()});
    if (importance)
      rewriter.replaceOp(importance, fused.getImportance());
    if (load)
      rewriter.replaceOp(load, fused.getLoad());
    rewriter.replaceOp(topK,
                       {fused.getExpert(), fused.getGate(), fused.getNoisy(),
                        fused.getNoiseStd(), fused.getTopValues()});
    rewriter.replaceOp(gateProduct, fused.getCleanLogits());
    rewriter.replaceOp(noiseProduct, fused.getNoiseLogits());
    return success();
  }
};

struct FuseRoutingPass
    : public mlir::moe::impl::FuseRoutingBase<FuseRoutingPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseNoisyRouting>(&getContext());
    if (failed(
            applyPatternsAndFoldGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();
  }
};

} // namespace
