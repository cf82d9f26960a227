//===- ModelSummary.cpp - Parameter and computation counts of models ------===//
//
// Reports what the paper's Table 3 reports for each model: parameters and
// forward multiply-adds per word, with and without the input/output layers
// (embedding and softmax), and the share of each MoE layer. Lets users check
// a model description against the paper before training it.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "dialect/MoEDialect.h"
#include "dialect/MoEOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MODELSUMMARY
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

#define DEBUG_TYPE "moe-model-summary"

namespace {

/// Counts are doubles: sums over a model's layers can pass int64_t, and
/// counts below 2^53 print exactly.
using Count = double;

Count numElements(Value value) {
  return cast<RankedTensorType>(value.getType()).getNumElements();
}

ArrayRef<int64_t> shapeOf(Value value) {
  return cast<RankedTensorType>(value.getType()).getShape();
}

/// Multiply-adds of one expert evaluation on one token.
Count expertMultiplyAdds(ValueRange expertWeights) {
  Count total = 0;
  for (Value w : expertWeights) {
    ArrayRef<int64_t> shape = shapeOf(w);
    total += Count(shape[1]) * shape[2];
  }
  return total;
}

Count sumElements(ValueRange values) {
  Count total = 0;
  for (Value v : values)
    total += numElements(v);
  return total;
}

std::string describeExperts(ExpertAttr expert, ValueRange weights) {
  ArrayRef<int64_t> first = shapeOf(weights.front());
  ArrayRef<int64_t> last = shapeOf(weights.back());
  std::string text;
  llvm::raw_string_ostream os(text);
  if (expert.getKind() == ExpertKind::linear)
    os << "linear " << first[1] << "x" << last[2];
  else
    os << "ffn " << first[1] << "->" << expert.getHidden() << " "
       << stringifyActivation(expert.getAct()) << "->" << last[2];
  return text;
}

/// "138688512 (138.69M)".
std::string formatCount(Count count) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::format("%.0f", count);
  if (count >= 1000000000)
    os << llvm::format(" (%.2fB)", count / 1e9);
  else if (count >= 1000000)
    os << llvm::format(" (%.2fM)", count / 1e6);
  else if (count >= 1000)
    os << llvm::format(" (%.1fK)", count / 1e3);
  return text;
}

struct ModelSummaryPass
    : public mlir::moe::impl::ModelSummaryBase<ModelSummaryPass> {
  void runOnOperation() override {
    for (auto func : getOperation().getOps<func::FuncOp>())
      if (isModel(func))
        summarize(func, llvm::errs());
  }

  static bool isModel(func::FuncOp func) {
    // A declaration has no layers to count (nor block arguments to read).
    if (func.isExternal())
      return false;
    for (unsigned i = 0, e = func.getNumArguments(); i < e; ++i)
      if (func.getArgAttr(i, MoEDialect::kParamAttrName))
        return true;
    return false;
  }

  void summarize(func::FuncOp func, raw_ostream &os) {
    Count params = 0;
    for (unsigned i = 0, e = func.getNumArguments(); i < e; ++i)
      if (func.getArgAttr(i, MoEDialect::kParamAttrName))
        params += numElements(func.getArgument(i));

    // Input/output layers: embedding tables and softmax weights.
    llvm::DenseSet<Value> ioParams;
    Count ioMultiplyAdds = 0, coreMultiplyAdds = 0;
    SmallVector<std::string> layerLines, notes;
    func.walk([&](Operation *op) {
      if (auto emb = dyn_cast<EmbeddingOp>(op)) {
        ioParams.insert(emb.getTable());
      } else if (auto ce = dyn_cast<SoftmaxCrossEntropyOp>(op)) {
        ioParams.insert(ce.getWeights());
        ioParams.insert(ce.getBias());
        ArrayRef<int64_t> w = shapeOf(ce.getWeights());
        int64_t classes = ce.getNumSamples() ? *ce.getNumSamples() + 1 : w[0];
        ioMultiplyAdds += Count(classes) * w[1];
      } else if (auto lstm = dyn_cast<LSTMOp>(op)) {
        ArrayRef<int64_t> wx = shapeOf(lstm.getInputWeights());
        int64_t hidden = wx[1] / 4, out = shapeOf(lstm.getOutput()).back();
        coreMultiplyAdds += 4 * Count(hidden) * (wx[0] + out);
        if (lstm.getProjection())
          coreMultiplyAdds += Count(hidden) * out;
      } else if (auto linear = dyn_cast<LinearOp>(op)) {
        coreMultiplyAdds += numElements(linear.getWeights());
      } else if (auto moe = dyn_cast<MoELayerOp>(op)) {
        coreMultiplyAdds += summarizeFlat(moe, layerLines);
      } else if (auto moe = dyn_cast<HierarchicalMoELayerOp>(op)) {
        coreMultiplyAdds += summarizeHierarchical(moe, layerLines);
      } else if (auto attn = dyn_cast<AttentionOp>(op)) {
        ArrayRef<int64_t> src = shapeOf(attn.getSource());
        ArrayRef<int64_t> tgt = shapeOf(attn.getTarget());
        int64_t e = shapeOf(attn.getScoreWeights())[0];
        // Projections are per token; scores and context per (i, j) pair.
        coreMultiplyAdds += Count(src[2] + tgt[2]) * e;
        notes.push_back(("attention: plus " + llvm::Twine(e + src[2]) +
                         " multiply-adds per (source, target) pair")
                            .str());
      }
    });
    Count ioParamCount = 0;
    for (Value v : ioParams)
      ioParamCount += numElements(v);

    os << "model @" << func.getSymName() << "\n";
    os << "  parameters: " << formatCount(params) << " total, "
       << formatCount(params - ioParamCount) << " excluding i/o layers\n";
    os << "  multiply-adds per word (forward): "
       << formatCount(coreMultiplyAdds + ioMultiplyAdds) << " total, "
       << formatCount(coreMultiplyAdds) << " excluding i/o layers\n";
    for (const std::string &line : layerLines)
      os << "  " << line << "\n";
    for (const std::string &line : notes)
      os << "  " << line << "\n";
  }

  static Count gateMultiplyAdds(Value gate, Value noise) {
    return numElements(gate) + (noise ? numElements(noise) : 0);
  }

  Count summarizeFlat(MoELayerOp moe, SmallVectorImpl<std::string> &lines) {
    int64_t n = moe.getNumExperts();
    GatingKind gating = moe.getGating();
    Count perExpert = expertMultiplyAdds(moe.getExpertWeights());
    // Softmax gating evaluates every expert; threshold gating a
    // data-dependent number, reported as zero expert evaluations.
    int64_t k = moe.getK()                      ? *moe.getK()
                : gating == GatingKind::softmax ? n
                                                : 0;
    Count multiplyAdds =
        gateMultiplyAdds(moe.getGateWeights(), moe.getNoiseWeights()) +
        k * perExpert;
    Count params =
        sumElements(moe.getExpertWeights()) +
        gateMultiplyAdds(moe.getGateWeights(), moe.getNoiseWeights()) +
        (moe.getThresholds() ? numElements(moe.getThresholds()) : 0);
    std::string line;
    llvm::raw_string_ostream os(line);
    os << "moe_layer: " << n << " experts ("
       << describeExperts(moe.getExpert(), moe.getExpertWeights())
       << "), k = " << (moe.getK() ? std::to_string(k) : "-") << ", "
       << stringifyGatingKind(gating) << " gating; " << formatCount(params)
       << " parameters, " << formatCount(multiplyAdds)
       << " multiply-adds per word";
    lines.push_back(line);
    return multiplyAdds;
  }

  Count summarizeHierarchical(HierarchicalMoELayerOp moe,
                              SmallVectorImpl<std::string> &lines) {
    int64_t kPrimary = moe.getKPrimary().value_or(0);
    int64_t kSecondary = moe.getKSecondary().value_or(0);
    Count perExpert = expertMultiplyAdds(moe.getExpertWeights());
    // Only the k_primary chosen groups run their secondary gates.
    Count secondaryGate = gateMultiplyAdds(moe.getSecondaryGateWeights(),
                                           moe.getSecondaryNoiseWeights()) /
                          moe.getGroups();
    Count multiplyAdds = gateMultiplyAdds(moe.getPrimaryGateWeights(),
                                          moe.getPrimaryNoiseWeights()) +
                         kPrimary * secondaryGate +
                         kPrimary * kSecondary * perExpert;
    Count params = sumElements(moe->getOperands().drop_front());
    std::string line;
    llvm::raw_string_ostream os(line);
    os << "hierarchical_moe_layer: " << moe.getNumExperts() << " experts in "
       << moe.getGroups() << " groups ("
       << describeExperts(moe.getExpert(), moe.getExpertWeights())
       << "), k_primary = " << kPrimary << ", k_secondary = " << kSecondary
       << ", " << stringifyGatingKind(moe.getGating()) << " gating; "
       << formatCount(params) << " parameters, " << formatCount(multiplyAdds)
       << " multiply-adds per word";
    lines.push_back(line);
    return multiplyAdds;
  }
};

} // namespace
