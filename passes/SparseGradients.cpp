//===- SparseGradients.cpp - Row-sparse vocabulary gradients --------------===//
//
// After moe-optimizer: the embedding's and the sampled softmax's [vocab, d]
// gradients, when they only feed Adam, become the rows the step touched
// and a lazy Adam update of those rows. See the pass description in
// Passes.td.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "dialect/MoEDialect.h"
#include "dialect/MoEOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

namespace mlir::moe {
#define GEN_PASS_DEF_SPARSEGRADIENTS
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

#define DEBUG_TYPE "moe-sparse-gradients"

namespace {

/// `auto` takes the sparse path where the dense one costs real time and
/// memory: a table of at least kMinDenseBytes (its gradient and the full
/// Adam sweep over it, every step) of which a step touches at most a
/// quarter of the rows (there the row gradient and lazy Adam beat the dense
/// path by 5x at d = 64 and 13x at d = 512 on the CPU; bench/RESULTS.md).
/// Smaller tables keep exact Adam: lazy Adam changes the optimizer (the
/// untouched rows' moments do not decay), which cost the demo model 1.6% of
/// test perplexity (57.97 against 57.04) to save about 1.7 ms of a 36 ms step.
constexpr int64_t kMaxTouchedFraction = 4;
constexpr int64_t kMinDenseBytes = int64_t(64) << 20;

/// The moe.adam_update that is `grad`'s only use, as its gradient.
AdamUpdateOp soleAdamUse(Value grad) {
  if (!grad.hasOneUse())
    return {};
  auto adam = dyn_cast<AdamUpdateOp>(*grad.getUsers().begin());
  return adam && adam.getGrad() == grad ? adam : AdamUpdateOp();
}

/// Replaces `adam` by moe.adam_update_rows of (rows, values).
void updateRows(AdamUpdateOp adam, Value rows, Value values) {
  OpBuilder b(adam);
  auto lazy = b.create<AdamUpdateRowsOp>(
      adam.getLoc(), adam.getResultTypes(), adam.getParam(), rows, values,
      adam.getM(), adam.getV(), adam.getLr(), adam.getStep(),
      adam.getBeta1Attr(), adam.getBeta2Attr(), adam.getEpsAttr(),
      adam.getWeightDecayAttr());
  adam.replaceAllUsesWith(lazy.getResults());
  adam.erase();
}

RankedTensorType rowsType(OpBuilder &b, int64_t n) {
  return RankedTensorType::get({n}, b.getI32Type());
}

struct SparseGradientsPass
    : public mlir::moe::impl::SparseGradientsBase<SparseGradientsPass> {
  using SparseGradientsBase::SparseGradientsBase;

  void runOnOperation() override {
    if (mode != "auto" && mode != "on" && mode != "off") {
      getOperation().emitError("moe-sparse-gradients: mode must be auto, on "
                               "or off, got '")
          << mode << "'";
      return signalPassFailure();
    }
    if (mode == "off")
      return;
    SmallVector<EmbeddingGradOp> embeddings;
    SmallVector<SoftmaxCrossEntropyGradOp> losses;
    getOperation().walk([&](Operation *op) {
      if (auto grad = dyn_cast<EmbeddingGradOp>(op))
        embeddings.push_back(grad);
      if (auto grad = dyn_cast<SoftmaxCrossEntropyGradOp>(op))
        losses.push_back(grad);
    });
    for (EmbeddingGradOp grad : embeddings)
      rewriteEmbedding(grad);
    for (SoftmaxCrossEntropyGradOp grad : losses)
      rewriteSampledSoftmax(grad);
  }

  bool worthIt(int64_t rows, RankedTensorType table) const {
    if (mode == "on")
      return true;
    int64_t vocab = table.getDimSize(0);
    double bytes = double(vocab) * table.getDimSize(1) * sizeof(float);
    return bytes >= double(kMinDenseBytes) &&
           rows * kMaxTouchedFraction <= vocab;
  }

  void rewriteEmbedding(EmbeddingGradOp grad) {
    AdamUpdateOp adam = soleAdamUse(grad.getDTable());
    auto table = cast<RankedTensorType>(grad.getDTable().getType());
    int64_t n =
        cast<RankedTensorType>(grad.getIds().getType()).getNumElements();
    if (!adam || !worthIt(n, table))
      return;
    OpBuilder b(grad);
    auto rows = b.create<EmbeddingRowGradOp>(
        grad.getLoc(), rowsType(b, n),
        RankedTensorType::get({n, table.getDimSize(1)}, b.getF32Type()),
        grad.getIds(), grad.getDOutput(),
        b.getI64IntegerAttr(table.getDimSize(0)));
    updateRows(adam, rows.getRows(), rows.getValues());
    grad.erase();
  }

  void rewriteSampledSoftmax(SoftmaxCrossEntropyGradOp grad) {
    std::optional<int64_t> samples = grad.getNumSamples();
    AdamUpdateOp weightsAdam = soleAdamUse(grad.getDWeights());
    AdamUpdateOp biasAdam = soleAdamUse(grad.getDBias());
    auto weights = cast<RankedTensorType>(grad.getWeights().getType());
    if (!samples || !weightsAdam || !biasAdam || weights.getRank() != 2)
      return;
    int64_t tokens =
        cast<RankedTensorType>(grad.getTargets().getType()).getNumElements();
    int64_t n = *samples + tokens;
    if (!worthIt(n, weights))
      return;
    OpBuilder b(grad);
    auto rows = b.create<SoftmaxCrossEntropyRowGradOp>(
        grad.getLoc(), grad.getDHidden().getType(), rowsType(b, n),
        RankedTensorType::get({n, weights.getDimSize(1)}, b.getF32Type()),
        RankedTensorType::get({n}, b.getF32Type()), grad.getHidden(),
        grad.getTargets(), grad.getWeights(), grad.getBias(), grad.getDLoss(),
        grad.getTargetCount(), b.getI64IntegerAttr(*samples),
        grad.getRngStreamAttr());
    grad.getDHidden().replaceAllUsesWith(rows.getDHidden());
    updateRows(weightsAdam, rows.getRows(), rows.getDWeightValues());
    updateRows(biasAdam, rows.getRows(), rows.getDBiasValues());
    grad.erase();
  }
};

} // namespace
