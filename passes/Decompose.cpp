//===- Decompose.cpp - Model-level layers to primitive ops ----------------===//
//
// Lowers moe.moe_layer into gate logits, gating, balancing losses, dispatch
// plan, dispatch, grouped expert matmuls and combine, and moe.linear into
// matmul + bias + activation. See the pass description in Passes.td.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

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

/// Builds primitive ops at one insertion point, with shape helpers.
class PrimitiveBuilder {
public:
  PrimitiveBuilder(Operation *op) : b(op), loc(op->getLoc()) {}

  RankedTensorType f32(ArrayRef<int64_t> shape) {
    return RankedTensorType::get(shape, b.getF32Type());
  }
  RankedTensorType i32(ArrayRef<int64_t> shape) {
    return RankedTensorType::get(shape, b.getI32Type());
  }

  /// [d0, ..., dk, d] -> [d0 * ... * dk, d]; rank-2 values pass through.
  Value collapseToRows(Value value) {
    auto type = cast<RankedTensorType>(value.getType());
    if (type.getRank() == 2)
      return value;
    ReassociationIndices leading;
    for (int64_t i = 0; i + 1 < type.getRank(); ++i)
      leading.push_back(i);
    int64_t rows = 1;
    for (int64_t dim : type.getShape().drop_back())
      rows *= dim;
    SmallVector<ReassociationIndices> groups = {leading, {type.getRank() - 1}};
    return b.create<tensor::CollapseShapeOp>(
        loc, f32({rows, type.getShape().back()}), value, groups);
  }

  /// Inverse of collapseToRows for a result of type `type`.
  Value expandRows(Value rows, RankedTensorType type) {
    if (type.getRank() == 2)
      return rows;
    ReassociationIndices leading;
    for (int64_t i = 0; i + 1 < type.getRank(); ++i)
      leading.push_back(i);
    SmallVector<ReassociationIndices> groups = {leading, {type.getRank() - 1}};
    return b.create<tensor::ExpandShapeOp>(loc, type, rows, groups);
  }

  /// [T, k] -> [T * k] (assignment form).
  Value flatten(Value matrix) {
    auto type = cast<RankedTensorType>(matrix.getType());
    auto flat =
        RankedTensorType::get({type.getNumElements()}, type.getElementType());
    SmallVector<ReassociationIndices> groups = {{0, 1}};
    return b.create<tensor::CollapseShapeOp>(loc, flat, matrix, groups);
  }

  Value matmul(Value lhs, Value rhs) {
    int64_t rows = cast<RankedTensorType>(lhs.getType()).getDimSize(0);
    int64_t cols = cast<RankedTensorType>(rhs.getType()).getDimSize(1);
    return b.create<MatmulOp>(loc, f32({rows, cols}), lhs, rhs,
                              /*transpose_rhs=*/false);
  }

  Value activate(Value value, std::optional<Activation> act) {
    if (!act || *act == Activation::none)
      return value;
    return b.create<ActivateOp>(loc, value, *act);
  }

  Value scalarZero() {
    auto type = f32({});
    return b.create<arith::ConstantOp>(
        loc, type, DenseElementsAttr::get(type, b.getF32FloatAttr(0.0f)));
  }

  /// The sum of the auxiliary loss terms (zero when there are none).
  Value sumLosses(ArrayRef<Value> terms) {
    if (terms.empty())
      return scalarZero();
    if (terms.size() == 1)
      return terms.front();
    return b.create<TotalLossOp>(loc, f32({}), terms);
  }

  OpBuilder b;
  Location loc;
};

/// Weight of one balancing loss, 0 when the layer has no losses attribute.
double lossWeight(std::optional<LossesAttr> losses,
                  APFloat (LossesAttr::*get)() const) {
  return losses ? ((*losses).*get)().convertToDouble() : 0.0;
}

struct DecomposePass : public mlir::moe::impl::DecomposeBase<DecomposePass> {
  using DecomposeBase::DecomposeBase;

  void runOnOperation() override {
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
        if (inference)
          layers.push_back(op);
        else
          dropout.setRngStream(nextRngStream++);
      }
      if (auto ce = dyn_cast<SoftmaxCrossEntropyOp>(op)) {
        // Evaluation reports the exact perplexity: full softmax.
        if (inference)
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

    Value clean = pb.matmul(x, op.getGateWeights());
    Value expert, gate, rowPtr;
    // A batch of one has nothing to rank: batchwise-trained layers route
    // with their learned thresholds at inference.
    if (inference && gating == GatingKind::batchwise)
      gating = GatingKind::threshold;
    if (inference)
      losses = std::nullopt;
    switch (gating) {
    case GatingKind::softmax:
    case GatingKind::top_k:
    case GatingKind::noisy_top_k: {
      // Dense softmax gating is top-k with k = n: the same gates, and the
      // same dispatch path for the experts.
      int64_t k = gating == GatingKind::softmax ? n : *op.getK();
      Value noise;
      if (gating == GatingKind::noisy_top_k && !inference)
        noise = pb.matmul(x, op.getNoiseWeights());
      auto topK = b.create<NoisyTopKOp>(
          loc,
          TypeRange{pb.i32({tokens, k}), pb.f32({tokens, k}),
                    pb.f32({tokens, n}), pb.f32({tokens, n}),
                    pb.f32({tokens, k + 1})},
          clean, noise, b.getI64IntegerAttr(k), b.getF32FloatAttr(kNoiseEps),
          b.getI64IntegerAttr(layerRngStream.lookup(op)));
      expert = pb.flatten(topK.getExpert());
      gate = pb.flatten(topK.getGate());
      double loadWeight = lossWeight(losses, &LossesAttr::getLoad);
      if (loadWeight > 0) {
        // The verifier allows the load loss with noisy_top_k only.
        Value load = b.create<LoadEstimateOp>(
            loc, pb.f32({n}), clean, noise, topK.getNoisy(), topK.getNoiseStd(),
            topK.getTopValues(), b.getI64IntegerAttr(k));
        auxTerms.push_back(b.create<CvSquaredOp>(
            loc, pb.f32({}), load, b.getF32FloatAttr(loadWeight)));
      }
      break;
    }
    case GatingKind::batchwise: {
      // Appendix A: every expert takes m = k |X| / n tokens of the batch.
      int64_t m = *op.getK() * tokens / n;
      auto mask = b.create<BatchwiseMaskOp>(
          loc,
          TypeRange{pb.f32({tokens, n}), pb.i32({tokens + 1}), pb.i32({n * m}),
                    pb.f32({n * m})},
          clean, m);
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
      auto mask = b.create<ThresholdMaskOp>(loc,
                                            TypeRange{pb.i32({tokens + 1}),
                                                      pb.i32({tokens * n}),
                                                      pb.f32({tokens * n})},
                                            clean, op.getThresholds());
      expert = mask.getExpert();
      gate = mask.getGate();
      rowPtr = mask.getRowPtr();
      break;
    }
    }

    double importanceWeight = lossWeight(losses, &LossesAttr::getImportance);
    double l2Weight = lossWeight(losses, &LossesAttr::getL2Balance);
    if (importanceWeight > 0 || l2Weight > 0) {
      Value importance =
          b.create<ImportanceOp>(loc, pb.f32({n}), expert, gate, n);
      if (importanceWeight > 0)
        auxTerms.push_back(b.create<CvSquaredOp>(
            loc, pb.f32({}), importance, b.getF32FloatAttr(importanceWeight)));
      if (l2Weight > 0)
        auxTerms.push_back(b.create<L2BalanceOp>(loc, pb.f32({}), importance,
                                                 b.getI64IntegerAttr(tokens),
                                                 b.getF32FloatAttr(l2Weight)));
    }

    int64_t assignments =
        cast<RankedTensorType>(expert.getType()).getDimSize(0);
    auto plan = b.create<DispatchPlanOp>(loc,
                                         TypeRange{pb.i32({n + 1}),
                                                   pb.i32({assignments}),
                                                   pb.i32({assignments})},
                                         expert, rowPtr, n, tokens);
    Value buffer =
        b.create<DispatchOp>(loc, pb.f32({assignments, d}), x, plan.getToken());
    ValueRange weights = op.getExpertWeights();
    Value out = buffer;
    for (auto [index, w] : llvm::enumerate(weights)) {
      int64_t width = cast<RankedTensorType>(w.getType()).getDimSize(2);
      out = b.create<GroupedMatmulOp>(loc, pb.f32({assignments, width}), out, w,
                                      plan.getExpertOffset());
      // The hidden layer of an ffn expert takes the expert's activation.
      if (index + 1 < weights.size())
        out = pb.activate(out, op.getExpert().getAct());
    }
    int64_t dOut = cast<RankedTensorType>(out.getType()).getDimSize(1);
    Value y = b.create<CombineOp>(loc, pb.f32({tokens, dOut}), out, gate,
                                  plan.getPosition(), rowPtr, tokens);
    y = pb.activate(y, op.getOutputAct());

    op.getOutput().replaceAllUsesWith(
        pb.expandRows(y, cast<RankedTensorType>(op.getOutput().getType())));
    op.getAuxLoss().replaceAllUsesWith(pb.sumLosses(auxTerms));
    op.erase();
    return success();
  }

  /// Tensor2Tensor's noise_epsilon: keeps the noise std positive.
  static constexpr float kNoiseEps = 1e-2f;
  int64_t nextRngStream = 0;
  /// The stream of each noisy layer, reserved in program order.
  DenseMap<Operation *, int64_t> layerRngStream;
};

} // namespace
