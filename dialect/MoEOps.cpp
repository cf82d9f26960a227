//===- MoEOps.cpp - Verifiers of the moe dialect's operations -------------===//
//
// Every verifier says what is wrong and what was expected, in the terms a
// model author uses ([d, num_experts], k, groups), not in terms of operand
// numbers.
//
//===----------------------------------------------------------------------===//

#include "dialect/MoEOps.h"
#include "dialect/VerifierUtils.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace mlir::moe;

//===----------------------------------------------------------------------===//
// Custom assembly: the operands of one gating level
//===----------------------------------------------------------------------===//

/// Parses `%gate[, noise %noise][, thresholds %thresholds]`, the inside of
/// `primary(...)` and `secondary(...)` in moe.hierarchical_moe_layer.
static ParseResult
parseGateOperands(OpAsmParser &parser, OpAsmParser::UnresolvedOperand &gate,
                  std::optional<OpAsmParser::UnresolvedOperand> &noise,
                  std::optional<OpAsmParser::UnresolvedOperand> &thresholds) {
  if (parser.parseOperand(gate))
    return failure();
  if (failed(parser.parseOptionalComma()))
    return success();
  if (succeeded(parser.parseOptionalKeyword("noise"))) {
    noise.emplace();
    if (parser.parseOperand(*noise))
      return failure();
    if (failed(parser.parseOptionalComma()))
      return success();
  }
  if (failed(parser.parseOptionalKeyword("thresholds")))
    return parser.emitError(parser.getCurrentLocation())
           << "expected " << (noise ? "" : "'noise' or ")
           << "'thresholds' after ','";
  thresholds.emplace();
  return parser.parseOperand(*thresholds);
}

/// Prints the operands parsed by parseGateOperands.
static void printGateOperands(OpAsmPrinter &printer, Operation *, Value gate,
                              Value noise, Value thresholds) {
  printer << gate;
  if (noise)
    printer << ", noise " << noise;
  if (thresholds)
    printer << ", thresholds " << thresholds;
}

#define GET_OP_CLASSES
#include "dialect/MoEOps.cpp.inc"

/// A number as a person writes it in a message: "0.1", "-1", "1e-05".
static std::string formatNumber(double value) {
  std::string text;
  llvm::raw_string_ostream(text) << llvm::format("%g", value);
  return text;
}

//===----------------------------------------------------------------------===//
// Shape helpers (formatShape, shapeOf, expectShape: dialect/VerifierUtils.h)
//===----------------------------------------------------------------------===//

/// `shape` with its last dimension replaced by `last`.
static SmallVector<int64_t> withLastDim(ArrayRef<int64_t> shape, int64_t last) {
  SmallVector<int64_t> result(shape);
  result.back() = last;
  return result;
}

static int64_t numTokens(ArrayRef<int64_t> inputShape) {
  int64_t tokens = 1;
  for (int64_t dim : inputShape.drop_back())
    tokens *= dim;
  return tokens;
}

//===----------------------------------------------------------------------===//
// Shared MoE layer checks
//===----------------------------------------------------------------------===//

namespace {
/// One level of gating: the gate picks `k` of `choices` experts (or groups).
struct GatingLevel {
  StringRef level; ///< "" for flat layers, "primary " / "secondary ".
  StringRef kName; ///< Attribute holding k ("k", "k_primary", ...).
  std::optional<int64_t> k;
  int64_t choices;      ///< Experts (flat, secondary) or groups (primary).
  StringRef choiceName; ///< "num_experts", "groups", "experts per group".
  Value gate, noise, thresholds;
  SmallVector<int64_t> gateShape, thresholdShape;
  StringRef gateMeaning, thresholdMeaning;
};
} // namespace

static LogicalResult verifyGatingLevel(Operation *op, GatingKind gating,
                                       const GatingLevel &g, int64_t tokens) {
  StringRef kind = stringifyGatingKind(gating);
  if (failed(expectShape(op, g.gate, (g.level + "gate weights").str(),
                         g.gateShape, g.gateMeaning)))
    return failure();

  if (gating == GatingKind::noisy_top_k) {
    if (!g.noise)
      return op->emitOpError()
             << "noisy_top_k gating needs " << g.level
             << "noise weights: write (%w_gate, noise %w_noise)";
    if (failed(expectShape(op, g.noise, (g.level + "noise weights").str(),
                           g.gateShape, g.gateMeaning)))
      return failure();
  } else if (g.noise) {
    return op->emitOpError() << g.level
                             << "noise weights are only used by noisy_top_k "
                                "gating, not by "
                             << kind;
  }

  bool needsThresholds =
      gating == GatingKind::batchwise || gating == GatingKind::threshold;
  if (needsThresholds) {
    if (!g.thresholds)
      return op->emitOpError()
             << kind << " gating needs " << g.level << "thresholds of shape "
             << formatShape(g.thresholdShape) << " (" << g.thresholdMeaning
             << ")";
    if (failed(expectShape(op, g.thresholds, (g.level + "thresholds").str(),
                           g.thresholdShape, g.thresholdMeaning)))
      return failure();
  } else if (g.thresholds) {
    return op->emitOpError() << g.level
                             << "thresholds are only used by batchwise and "
                                "threshold gating, not by "
                             << kind;
  }

  bool needsK = gating == GatingKind::top_k ||
                gating == GatingKind::noisy_top_k ||
                gating == GatingKind::batchwise;
  if (needsK && !g.k)
    return op->emitOpError() << kind << " gating needs '" << g.kName
                             << "', the number of experts per token";
  if (!needsK && g.k)
    return op->emitOpError() << "'" << g.kName << "' is not used by " << kind
                             << " gating; remove it";
  if (g.k && *g.k > g.choices)
    return op->emitOpError() << g.kName << " = " << *g.k << " exceeds "
                             << g.choiceName << " = " << g.choices;
  // Appendix A: each expert keeps m = k |X| / n tokens of the batch.
  if (gating == GatingKind::batchwise && (*g.k * tokens) % g.choices != 0)
    return op->emitOpError()
           << "batchwise gating keeps " << g.kName << " * tokens / "
           << g.choiceName << " = " << *g.k << " * " << tokens << " / "
           << g.choices << " tokens per expert, which must be a whole number";
  return success();
}

/// Checks the expert weights against the expert kind and returns d_out.
static FailureOr<int64_t> verifyExperts(Operation *op, ExpertAttr expert,
                                        ValueRange weights, int64_t numExperts,
                                        int64_t d) {
  size_t expected = expert.getKind() == ExpertKind::linear ? 1 : 2;
  if (weights.size() != expected)
    return op->emitOpError()
           << stringifyExpertKind(expert.getKind()) << " experts take "
           << expected << " weight tensor" << (expected == 1 ? "" : "s")
           << " but got " << weights.size();
  for (Value w : weights)
    if (shapeOf(w).size() != 3)
      return op->emitOpError()
             << "expects expert weights of rank 3 ([num_experts, in, out]) "
                "but got shape "
             << formatShape(shapeOf(w));
  int64_t dOut = shapeOf(weights.back())[2];
  if (expert.getKind() == ExpertKind::linear) {
    if (failed(expectShape(op, weights[0], "expert weights",
                           {numExperts, d, dOut}, "[num_experts, d, d_out]")))
      return failure();
    return dOut;
  }
  int64_t hidden = expert.getHidden();
  if (failed(expectShape(op, weights[0], "first expert weights",
                         {numExperts, d, hidden},
                         "[num_experts, d, hidden]")) ||
      failed(expectShape(op, weights[1], "second expert weights",
                         {numExperts, hidden, dOut},
                         "[num_experts, hidden, d_out]")))
    return failure();
  return dOut;
}

/// Checks input rank, the output shape and the loss weights shared by flat
/// and hierarchical layers.
static LogicalResult verifyLayerIO(Operation *op, Value input, Value output,
                                   int64_t dOut, GatingKind gating,
                                   std::optional<LossesAttr> losses) {
  ArrayRef<int64_t> in = shapeOf(input);
  SmallVector<int64_t> expectedOut = withLastDim(in, dOut);
  if (failed(expectShape(op, output, "output", expectedOut,
                         "input shape with the last dimension d_out")))
    return failure();
  if (!losses)
    return success();
  if (losses->getLoad().convertToDouble() > 0 &&
      gating != GatingKind::noisy_top_k)
    return op->emitOpError()
           << "the load loss needs noisy_top_k gating (it estimates load "
              "from the gating noise)";
  if (losses->getBatchwiseThreshold().convertToDouble() > 0 &&
      gating != GatingKind::batchwise)
    return op->emitOpError() << "the batchwise_threshold loss (Eq. 8) needs "
                                "batchwise gating";
  return success();
}

static LogicalResult verifyInputRank(Operation *op, Value input) {
  size_t rank = shapeOf(input).size();
  if (rank != 2 && rank != 3)
    return op->emitOpError() << "expects input of rank 2 ([tokens, d]) or 3 "
                                "([batch, time, d]) but got rank "
                             << rank;
  if (llvm::is_contained(shapeOf(input), 0))
    return op->emitOpError("expects at least one token of width > 0");
  return success();
}

/// The experts' weights, then the output shape and loss settings that
/// depend on them (shared by flat and hierarchical layers).
static LogicalResult
verifyExpertsAndOutput(Operation *op, ExpertAttr expert, ValueRange weights,
                       int64_t numExperts, int64_t d, Value input, Value output,
                       GatingKind gating, std::optional<LossesAttr> losses) {
  FailureOr<int64_t> dOut = verifyExperts(op, expert, weights, numExperts, d);
  if (failed(dOut))
    return failure();
  return verifyLayerIO(op, input, output, *dOut, gating, losses);
}

/// `lengths`, when present, has one entry per sequence of `batch`.
static LogicalResult verifyLengths(Operation *op, Value lengths, int64_t batch,
                                   StringRef meaning) {
  if (!lengths)
    return success();
  return expectShape(op, lengths, "lengths", {batch}, meaning);
}

/// Padding-aware routing: a rank-3 input, gating that gives every valid
/// token the same number of experts, no loss that counts tokens.
static LogicalResult verifyLayerLengths(Operation *op, Value input,
                                        Value lengths, GatingKind gating,
                                        std::optional<LossesAttr> losses) {
  if (!lengths)
    return success();
  ArrayRef<int64_t> in = shapeOf(input);
  if (in.size() != 3)
    return op->emitOpError()
           << "lengths need an input of rank 3 ([batch, time, d]) to say "
              "which positions are padding, got shape "
           << formatShape(in);
  if (gating == GatingKind::batchwise || gating == GatingKind::threshold)
    return op->emitOpError()
           << "lengths work with softmax, top_k and noisy_top_k gating, not "
           << stringifyGatingKind(gating)
           << ": its masks keep a fixed number of tokens per expert, which "
              "padding would make data-dependent";
  if (losses && losses->getL2Balance().convertToDouble() > 0)
    return op->emitOpError("the l2_balance loss (Eq. 5) divides by the number "
                           "of tokens, which lengths make data-dependent; use "
                           "the importance loss");
  return verifyLengths(op, lengths, in[0], "[batch]");
}

//===----------------------------------------------------------------------===//
// MoELayerOp
//===----------------------------------------------------------------------===//

LogicalResult MoELayerOp::verify() {
  if (failed(verifyInputRank(*this, getInput())))
    return failure();
  ArrayRef<int64_t> in = shapeOf(getInput());
  int64_t d = in.back(), n = getNumExperts();
  GatingKind gating = getGating();

  GatingLevel level{"",
                    "k",
                    getK(),
                    n,
                    "num_experts",
                    getGateWeights(),
                    getNoiseWeights(),
                    getThresholds(),
                    {d, n},
                    {n},
                    "[d, num_experts]",
                    "[num_experts]"};
  if (failed(verifyGatingLevel(*this, gating, level, numTokens(in))) ||
      failed(verifyLayerLengths(*this, getInput(), getLengths(), gating,
                                getLosses())))
    return failure();
  return verifyExpertsAndOutput(*this, getExpert(), getExpertWeights(), n, d,
                                getInput(), getOutput(), gating, getLosses());
}

//===----------------------------------------------------------------------===//
// HierarchicalMoELayerOp
//===----------------------------------------------------------------------===//

LogicalResult HierarchicalMoELayerOp::verify() {
  if (failed(verifyInputRank(*this, getInput())))
    return failure();
  ArrayRef<int64_t> in = shapeOf(getInput());
  int64_t d = in.back(), n = getNumExperts(), groups = getGroups();
  if (n % groups != 0)
    return emitOpError() << "num_experts = " << n
                         << " is not divisible by groups = " << groups;
  int64_t perGroup = n / groups;
  GatingKind gating = getGating();
  if (gating == GatingKind::softmax)
    return emitOpError("hierarchical layers need sparse gating (top_k, "
                       "noisy_top_k, batchwise or threshold), not softmax");
  if (getLengths())
    return emitOpError("lengths (padding) are supported by flat layers only: "
                       "use moe.moe_layer, or leave the padding in");

  GatingLevel primary{"primary ",
                      "k_primary",
                      getKPrimary(),
                      groups,
                      "groups",
                      getPrimaryGateWeights(),
                      getPrimaryNoiseWeights(),
                      getPrimaryThresholds(),
                      {d, groups},
                      {groups},
                      "[d, groups]",
                      "[groups]"};
  if (failed(verifyGatingLevel(*this, gating, primary, numTokens(in))))
    return failure();
  // The batchwise divisibility rule of the first level is about tokens;
  // the second level's (about the rows each group sees) follows below, so
  // the secondary level is checked with a token count of 0 here.
  GatingLevel secondary{"secondary ",
                        "k_secondary",
                        getKSecondary(),
                        perGroup,
                        "experts per group",
                        getSecondaryGateWeights(),
                        getSecondaryNoiseWeights(),
                        getSecondaryThresholds(),
                        {groups, d, perGroup},
                        {groups, perGroup},
                        "[groups, d, num_experts / groups]",
                        "[groups, num_experts / groups]"};
  if (failed(verifyGatingLevel(*this, gating, secondary, /*tokens=*/0)))
    return failure();
  // Appendix A at each level: the primary mask gives every group exactly
  // k_primary * tokens / groups rows, of which each expert of the group
  // keeps k_secondary * rows / experts per group.
  if (gating == GatingKind::batchwise) {
    int64_t rows = *getKPrimary() * numTokens(in) / groups;
    int64_t kSecondary = *getKSecondary();
    if ((kSecondary * rows) % perGroup != 0)
      return emitOpError()
             << "batchwise gating gives each group k_primary * tokens / "
                "groups = "
             << rows << " rows, and k_secondary * rows / experts per group = "
             << kSecondary << " * " << rows << " / " << perGroup
             << " rows per expert must be a whole number";
  }
  return verifyExpertsAndOutput(*this, getExpert(), getExpertWeights(), n, d,
                                getInput(), getOutput(), gating, getLosses());
}

//===----------------------------------------------------------------------===//
// Sequence layers
//===----------------------------------------------------------------------===//

LogicalResult LSTMOp::verify() {
  ArrayRef<int64_t> in = shapeOf(getInput());
  if (in.size() != 3)
    return emitOpError() << "expects input of rank 3 ([batch, time, d_in]) "
                            "but got shape "
                         << formatShape(in);
  ArrayRef<int64_t> wx = shapeOf(getInputWeights());
  if (wx.size() != 2 || wx[0] != in[2] || wx[1] % 4 != 0)
    return emitOpError() << "expects input weights of shape " << in[2]
                         << "x(4*hidden) ([d_in, 4 * hidden], gates i, f, "
                            "g, o) but got "
                         << formatShape(wx);
  int64_t hidden = wx[1] / 4;
  int64_t out = hidden;
  if (Value proj = getProjection()) {
    ArrayRef<int64_t> p = shapeOf(proj);
    if (p.size() != 2 || p[0] != hidden)
      return emitOpError() << "expects projection of shape " << hidden
                           << "xP ([hidden, projection]) but got "
                           << formatShape(p);
    out = p[1];
  }
  if (failed(expectShape(*this, getRecurrentWeights(), "recurrent weights",
                         {out, 4 * hidden}, "[output size, 4 * hidden]")) ||
      failed(
          expectShape(*this, getBias(), "bias", {4 * hidden}, "[4 * hidden]")))
    return failure();
  if (failed(expectShape(*this, getOutput(), "output", {in[0], in[1], out},
                         "[batch, time, output size]")))
    return failure();
  if (getInitialState().size() != getFinalState().size() ||
      (getInitialState().size() != 0 && getInitialState().size() != 2))
    return emitOpError() << "expects either no state or state(h_0, c_0) with "
                            "the two final states as extra results, but got "
                         << getInitialState().size() << " state operand(s) and "
                         << getFinalState().size() << " extra result(s)";
  if (!hasState())
    return success();
  if (failed(expectShape(*this, getInitialHidden(), "initial hidden state",
                         {in[0], out}, "[batch, output size]")) ||
      failed(expectShape(*this, getInitialCell(), "initial cell state",
                         {in[0], hidden}, "[batch, hidden]")) ||
      failed(expectShape(*this, getFinalHidden(), "final hidden state",
                         {in[0], out}, "[batch, output size]")))
    return failure();
  return expectShape(*this, getFinalCell(), "final cell state", {in[0], hidden},
                     "[batch, hidden]");
}

LogicalResult EmbeddingOp::verify() {
  ArrayRef<int64_t> table = shapeOf(getTable());
  if (table.size() != 2)
    return emitOpError() << "expects a table of rank 2 ([vocab, d]) but got "
                            "shape "
                         << formatShape(table);
  if (failed(expectIdRows(*this, table[0], "a table")))
    return failure();
  return expectEmbeddingRows(*this, getOutput(), "output", getIds(), table[1]);
}

LogicalResult LinearOp::verify() {
  ArrayRef<int64_t> in = shapeOf(getInput());
  ArrayRef<int64_t> w = shapeOf(getWeights());
  if (in.size() < 2)
    return emitOpError("expects an input of rank >= 2 ([..., d_in])");
  if (w.size() != 2 || w[0] != in.back())
    return emitOpError() << "expects weights of shape " << in.back()
                         << "xN ([d_in, d_out]) but got " << formatShape(w);
  if (Value bias = getBias())
    if (failed(expectShape(*this, bias, "bias", {w[1]}, "[d_out]")))
      return failure();
  return expectShape(*this, getOutput(), "output", withLastDim(in, w[1]),
                     "input shape with the last dimension d_out");
}

LogicalResult DropoutOp::verify() {
  float rate = getRate().convertToFloat();
  if (!(rate >= 0.0f && rate < 1.0f))
    return emitOpError() << "expects a dropout rate in [0, 1) but got "
                         << formatNumber(rate);
  return success();
}

LogicalResult AttentionOp::verify() {
  ArrayRef<int64_t> src = shapeOf(getSource()), tgt = shapeOf(getTarget());
  if (src.size() != 3 || tgt.size() != 3 || src[0] != tgt[0])
    return emitOpError() << "expects source [batch, S_x, d_x] and target "
                            "[batch, S_y, d_y] with the same batch, got "
                         << formatShape(src) << " and " << formatShape(tgt);
  ArrayRef<int64_t> v = shapeOf(getScoreWeights());
  if (v.size() != 1)
    return emitOpError() << "expects score weights of shape [E] but got "
                         << formatShape(v);
  int64_t e = v[0];
  if (failed(expectShape(*this, getSourceWeights(), "source weights",
                         {src[2], e}, "[d_x, E]")) ||
      failed(expectShape(*this, getTargetWeights(), "target weights",
                         {tgt[2], e}, "[d_y, E]")))
    return failure();
  if (failed(verifyLengths(*this, getLengths(), src[0], "[batch]")))
    return failure();
  return expectShape(*this, getContext(), "context", {src[0], tgt[1], src[2]},
                     "[batch, S_y, d_x]");
}

//===----------------------------------------------------------------------===//
// Losses
//===----------------------------------------------------------------------===//

LogicalResult SoftmaxCrossEntropyOp::verify() {
  ArrayRef<int64_t> hidden = shapeOf(getHidden());
  if (hidden.size() < 2)
    return emitOpError() << "expects hidden states of rank >= 2 ([..., d]) "
                            "but got shape "
                         << formatShape(hidden);
  if (failed(expectShape(*this, getTargets(), "targets", hidden.drop_back(),
                         "hidden states' shape without d")))
    return failure();
  ArrayRef<int64_t> w = shapeOf(getWeights());
  if (w.size() != 2 || w[1] != hidden.back())
    return emitOpError() << "expects output weights of shape Vx"
                         << hidden.back() << " ([vocab, d]) but got "
                         << formatShape(w);
  if (failed(expectShape(*this, getBias(), "bias", {w[0]}, "[vocab]")) ||
      failed(expectIdRows(*this, w[0], "output weights")))
    return failure();
  if (std::optional<int64_t> samples = getNumSamples())
    if (*samples >= w[0])
      return emitOpError() << "num_samples = " << *samples
                           << " must be smaller than the vocabulary (" << w[0]
                           << ")";
  return success();
}
