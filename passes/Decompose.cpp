//===- Decompose.cpp - Model-level layers to primitive ops ----------------===//
//
// Lowers moe.moe_layer into gate logits, gating, balancing losses, dispatch
// plan, dispatch, grouped expert matmuls and combine, and moe.linear into
// matmul + bias + activation. See the pass description in Passes.td.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"
#include "passes/PrimitiveBuilder.h"

#include "dialect/MoEDialect.h"
#include "dialect/MoEOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/TypeSwitch.h"

namespace mlir::moe {
#define GEN_PASS_DEF_DECOMPOSE
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

#define DEBUG_TYPE "moe-decompose"

namespace {

struct DecomposePass : public mlir::moe::impl::DecomposeBase<DecomposePass> {
  using DecomposeBase::DecomposeBase;

  void runOnOperation() override {
    if (failed(checkThresholdCapacityFactor(getOperation(), thresholdCapacity)))
      return signalPassFailure();
    FailureOr<bool> tf32 = routerAllowsTf32(getOperation(), routerPrecision);
    if (failed(tf32))
      return signalPassFailure();
    routerTf32 = *tf32;
    // The evaluation copy of a model (moe-add-eval) is lowered for
    // inference whatever the option says.
    inferenceMode =
        inference || getOperation()->hasAttr(MoEDialect::kInferenceAttrName);
    nextRngStream = 0;
    layerRngStream.clear();
    SmallVector<Operation *> layers;
    getOperation().walk([&](Operation *op) {
      if (isa<MoELayerOp, LinearOp>(op))
        layers.push_back(op);
      if (auto layer = dyn_cast<MoELayerOp>(op))
        if (layer.getGating() == GatingKind::noisy_top_k)
          layerRngStream[op] = nextRngStream++;
      // Ops that stay as they are but draw random numbers get their own
      // stream, in program order.
      if (auto dropout = dyn_cast<DropoutOp>(op)) {
        if (inferenceMode)
          layers.push_back(op);
        else
          dropout.setRngStream(nextRngStream++);
      }
      if (auto ce = dyn_cast<SoftmaxCrossEntropyOp>(op)) {
        // Evaluation reports the exact perplexity: full softmax.
        if (inferenceMode)
          ce.removeNumSamplesAttr();
        else if (ce.getNumSamples())
          ce.setRngStream(nextRngStream++);
      }
    });
    for (Operation *op : layers) {
      LogicalResult result =
          TypeSwitch<Operation *, LogicalResult>(op)
              .Case([&](MoELayerOp layer) { return decompose(layer); })
              .Case([&](LinearOp linear) { return decompose(linear); })
              .Case([&](DropoutOp dropout) {
                dropout.getOutput().replaceAllUsesWith(dropout.getInput());
                dropout.erase();
                return success();
              });
      if (failed(result))
        return signalPassFailure();
    }
  }

  LogicalResult decompose(LinearOp op) {
    PrimitiveBuilder pb(op);
    auto resultType = cast<RankedTensorType>(op.getOutput().getType());
    Value y = pb.matmul(pb.collapseToRows(op.getInput()), op.getWeights());
    if (Value bias = op.getBias())
      y = pb.b.create<BiasAddOp>(pb.loc, y.getType(), y, bias);
    y = pb.activate(y, op.getAct());
    op.getOutput().replaceAllUsesWith(pb.expandRows(y, resultType));
    op.erase();
    return success();
  }

  LogicalResult decompose(MoELayerOp op) {
    PrimitiveBuilder pb(op);
    OpBuilder &b = pb.b;
    Location loc = pb.loc;
    Value x = pb.collapseToRows(op.getInput());
    auto xType = cast<RankedTensorType>(x.getType());
    int64_t tokens = xType.getDimSize(0), d = xType.getDimSize(1);
    int64_t n = op.getNumExperts();
    GatingKind gating = op.getGating();
    std::optional<LossesAttr> losses = op.getLosses();
    SmallVector<Value> auxTerms;

    Value clean = pb.matmul(x, op.getGateWeights(), routerTf32);
    Value expert, gate, rowPtr;
    // A batch of one has nothing to rank: batchwise-trained layers route
    // with their learned thresholds at inference.
    if (inferenceMode && gating == GatingKind::batchwise)
      gating = GatingKind::threshold;
    if (inferenceMode)
      losses = std::nullopt;
    switch (gating) {
    case GatingKind::softmax:
    case GatingKind::top_k:
    case GatingKind::noisy_top_k: {
      // Dense softmax gating is top-k with k = n: the same gates, and the
      // same dispatch path for the experts.
      int64_t k = gating == GatingKind::softmax ? n : *op.getK();
      Value noise;
      if (gating == GatingKind::noisy_top_k && !inferenceMode)
        noise = pb.matmul(x, op.getNoiseWeights(), routerTf32);
      NoisyTopKOp topK =
          pb.topK(clean, noise, k, layerRngStream.lookup(op), kNoiseEps);
      expert = pb.flatten(topK.getExpert());
      gate = pb.flatten(topK.getGate());
      // Padded positions leave the selection here, as a threshold mask's
      // unkept experts do: row pointers with empty rows for them, which
      // the load estimate, dispatch plan and combine below all read.
      if (Value lengths = op.getLengths()) {
        auto kept = b.create<DropPaddingOp>(
            loc,
            TypeRange{pb.i32({tokens + 1}), expert.getType(), gate.getType()},
            expert, gate, lengths);
        rowPtr = kept.getRowPtr();
        expert = kept.getKeptExpert();
        gate = kept.getKeptGate();
      }
      // The verifier allows the load loss with noisy_top_k only.
      pb.loadLoss(topK, k, lossWeight(losses, &LossesAttr::getLoad), auxTerms,
                  rowPtr);
      break;
    }
    case GatingKind::batchwise: {
      // Appendix A: every expert takes m = k |X| / n tokens of the batch.
      int64_t m = *op.getK() * tokens / n;
      // Over the combined batch of all ranks a rank's share varies: room
      // for `threshold-capacity` times the n * m of one batch.
      int64_t slots = combinedBatch
                          ? thresholdMaskCapacity(tokens, n, n * m,
                                                  thresholdCapacity)
                          : n * m;
      auto mask = b.create<BatchwiseMaskOp>(
          loc,
          TypeRange{pb.f32({tokens, n}), pb.i32({tokens + 1}), pb.i32({slots}),
                    pb.f32({slots})},
          clean, m, combinedBatch);
      expert = mask.getExpert();
      gate = mask.getGate();
      rowPtr = mask.getRowPtr();
      double thresholdWeight =
          lossWeight(losses, &LossesAttr::getBatchwiseThreshold);
      if (thresholdWeight > 0) {
        Value loss = b.create<BatchwiseThresholdLossOp>(
            loc, pb.f32({}), clean, mask.getMask(), op.getThresholds());
        auxTerms.push_back(
            b.create<ScaleOp>(loc, loss, b.getF32FloatAttr(thresholdWeight)));
      }
      break;
    }
    case GatingKind::threshold: {
      // The thresholds learn through Eq. 8, which needs the batchwise mask.
      if (!inferenceMode)
        return op.emitOpError("threshold gating is for inference: train with "
                              "batchwise gating, whose learned thresholds "
                              "the inference pipeline uses");
      // Room for `threshold-capacity` times the k * tokens assignments of
      // the batchwise mask the layer was trained with (n * m, m = k *
      // tokens / n); the kernel fails when more pass.
      std::optional<int64_t> expected;
      if (std::optional<uint64_t> k = op.getK())
        expected = static_cast<int64_t>(*k) * tokens;
      int64_t capacity =
          thresholdMaskCapacity(tokens, n, expected, thresholdCapacity);
      auto mask = b.create<ThresholdMaskOp>(loc,
                                            TypeRange{pb.i32({tokens + 1}),
                                                      pb.i32({capacity}),
                                                      pb.f32({capacity})},
                                            clean, op.getThresholds());
      expert = mask.getExpert();
      gate = mask.getGate();
      rowPtr = mask.getRowPtr();
      break;
    }
    }

    pb.balanceLosses(expert, gate, n, tokens,
                     lossWeight(losses, &LossesAttr::getImportance),
                     lossWeight(losses, &LossesAttr::getL2Balance), auxTerms);
    Value y = pb.experts(x, expert, gate, rowPtr, n, op.getExpertWeights(),
                         op.getExpert().getAct());
    y = pb.activate(y, op.getOutputAct());

    pb.replaceLayer(op, y, auxTerms);
    return success();
  }

  bool inferenceMode = false;
  bool routerTf32 = false;
  int64_t nextRngStream = 0;
  /// The stream of each noisy layer, reserved in program order.
  DenseMap<Operation *, int64_t> layerRngStream;
};

} // namespace
