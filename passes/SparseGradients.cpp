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
#include "mlir/Dialect/Mesh/IR/MeshOps.h"
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

/// How a gradient reaches Adam: directly, or (data parallel) through the
/// mesh.all_reduce sum moe-sync-gradients put in between.
struct AdamUse {
  AdamUpdateOp adam;
  mesh::AllReduceOp sum;
};

std::optional<AdamUse> adamUse(Value grad) {
  if (AdamUpdateOp adam = soleAdamUse(grad))
    return AdamUse{adam, {}};
  if (!grad.hasOneUse())
    return std::nullopt;
  auto sum = dyn_cast<mesh::AllReduceOp>(*grad.getUsers().begin());
  if (!sum || sum.getReduction() != mesh::ReductionKind::Sum)
    return std::nullopt;
  if (AdamUpdateOp adam = soleAdamUse(sum.getResult()))
    return AdamUse{adam, sum};
  return std::nullopt;
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

/// Under data parallelism the ranks' rows replace the dense all-reduce:
/// every rank gets the union of the rows all ranks touched, each row's
/// gradient summed over the ranks (moe-sync-gradients sums, so does this),
/// and applies the same lazy Adam update. `sum` is the all-reduce the
/// gradients went through (null on one rank: the rows go to Adam as they
/// are); returns the rows and values Adam takes.
std::pair<Value, SmallVector<Value>> sumOverRanks(OpBuilder &b, Location loc,
                                                  mesh::AllReduceOp sum,
                                                  Value rows, ValueRange values,
                                                  int64_t vocab) {
  if (!sum)
    return {rows, SmallVector<Value>(values)};
  SmallVector<Type> types = {
      RankedTensorType::get({ShapedType::kDynamic}, b.getI32Type())};
  for (Value value : values) {
    SmallVector<int64_t> shape(
        cast<RankedTensorType>(value.getType()).getShape());
    shape[0] = ShapedType::kDynamic;
    types.push_back(RankedTensorType::get(shape, b.getF32Type()));
  }
  auto summed = b.create<SumRowsOverRanksOp>(
      loc, types, rows, values, sum.getMeshAttr(), b.getI64IntegerAttr(vocab));
  return {summed.getSummedRows(), SmallVector<Value>(summed.getSummedValues())};
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
    if (ranks < 1) {
      getOperation().emitError("moe-sparse-gradients: ranks must be at "
                               "least 1, got ")
          << static_cast<int64_t>(ranks);
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
    // Under data parallelism the ranks' rows add up: the rule holds for
    // the global batch, as for one rank running it.
    return bytes >= double(kMinDenseBytes) &&
           double(rows) * double(ranks) * kMaxTouchedFraction <= double(vocab);
  }

  void rewriteEmbedding(EmbeddingGradOp grad) {
    std::optional<AdamUse> use = adamUse(grad.getDTable());
    auto table = cast<RankedTensorType>(grad.getDTable().getType());
    int64_t n =
        cast<RankedTensorType>(grad.getIds().getType()).getNumElements();
    if (!use || !worthIt(n, table))
      return;
    OpBuilder b(grad);
    auto rows = b.create<EmbeddingRowGradOp>(
        grad.getLoc(), rowsType(b, n),
        RankedTensorType::get({n, table.getDimSize(1)}, b.getF32Type()),
        grad.getIds(), grad.getDOutput(),
        b.getI64IntegerAttr(table.getDimSize(0)));
    auto [ids, values] =
        sumOverRanks(b, grad.getLoc(), use->sum, rows.getRows(),
                     {rows.getValues()}, table.getDimSize(0));
    updateRows(use->adam, ids, values[0]);
    if (use->sum)
      use->sum.erase();
    grad.erase();
  }

  void rewriteSampledSoftmax(SoftmaxCrossEntropyGradOp grad) {
    std::optional<int64_t> samples = grad.getNumSamples();
    std::optional<AdamUse> weightsUse = adamUse(grad.getDWeights());
    std::optional<AdamUse> biasUse = adamUse(grad.getDBias());
    auto weights = cast<RankedTensorType>(grad.getWeights().getType());
    // Both summed over the ranks or neither: they share the rows.
    if (!samples || !weightsUse || !biasUse || weights.getRank() != 2 ||
        !weightsUse->sum != !biasUse->sum)
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
    auto [ids, values] =
        sumOverRanks(b, grad.getLoc(), weightsUse->sum, rows.getRows(),
                     {rows.getDWeightValues(), rows.getDBiasValues()},
                     weights.getDimSize(0));
    updateRows(weightsUse->adam, ids, values[0]);
    updateRows(biasUse->adam, ids, values[1]);
    for (mesh::AllReduceOp sum : {weightsUse->sum, biasUse->sum})
      if (sum)
        sum.erase();
    grad.erase();
  }
};

} // namespace
