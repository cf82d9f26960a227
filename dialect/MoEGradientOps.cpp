//===- MoEGradientOps.cpp - Verifiers of the backward ops -----------------===//
//
// The backward ops (MoEGradientOps.td) are built by moe-autodiff, never
// written by users; their verifiers catch autodiff bugs early. Where a
// backward op reads its forward op's operands, it checks them with the
// forward op's own helpers (VerifierUtils.h).
//
//===----------------------------------------------------------------------===//

#include "dialect/MoEOps.h"
#include "dialect/VerifierUtils.h"

using namespace mlir;
using namespace mlir::moe;

//===----------------------------------------------------------------------===//
// Flat routing
//===----------------------------------------------------------------------===//

LogicalResult NoisyTopKGradOp::verify() {
  if (bool(getNoiseLogits()) != bool(getDNoiseLogits()))
    return emitOpError("has a noise-logits gradient exactly when it has "
                       "noise logits");
  if (Value noise = getNoiseLogits())
    if (failed(expectShape(*this, noise, "noise logits",
                           shapeOf(getCleanLogits()), "[T, n]")))
      return failure();
  return expectShape(*this, getExpert(), "expert", shapeOf(getGate()),
                     "the gates' shape [T, k]");
}

LogicalResult MaskedGateGradOp::verify() {
  int64_t tokens = shapeOf(getRowPtr())[0] - 1;
  if (failed(expectShape(*this, getExpert(), "expert", shapeOf(getGate()),
                         "one expert per gate")))
    return failure();
  return expectShape(*this, getDLogits(), "d_logits",
                     {tokens, static_cast<int64_t>(getNumExperts())},
                     "[T, num_experts]");
}

LogicalResult LoadEstimateGradOp::verify() {
  ArrayRef<int64_t> clean = shapeOf(getCleanLogits());
  if (failed(expectShape(*this, getDLoad(), "d_load", {clean[1]}, "[n]")))
    return failure();
  if (Value rowPtr = getRowPtr())
    return expectRowPointer(*this, rowPtr, clean[0]);
  return success();
}

LogicalResult FusedRouteGradOp::verify() {
  if (!getDGate() && !getDLoad() && !getDImportance())
    return emitOpError("needs at least one of d_gate, d_load and "
                       "d_importance");
  ArrayRef<int64_t> logits = shapeOf(getCleanLogits());
  ArrayRef<int64_t> gates = shapeOf(getGate());
  int64_t tokens = logits[0], experts = logits[1], k = gates[1];
  if (gates[0] != tokens || k > experts)
    return emitOpError() << "expects gates of shape [T, k] with T = " << tokens
                         << " and k <= n = " << experts << ", got "
                         << formatShape(gates);
  if (failed(expectShape(*this, getExpert(), "expert", gates,
                         "the gates' shape [T, k]")) ||
      failed(expectShape(*this, getTopValues(), "top values", {tokens, k + 1},
                         "[T, k + 1]")))
    return failure();
  if (Value dGate = getDGate())
    if (failed(expectShape(*this, dGate, "d_gate", gates, "[T, k]")))
      return failure();
  for (auto [value, what] : {std::pair(getDLoad(), "d_load"),
                             std::pair(getDImportance(), "d_importance")})
    if (value && failed(expectShape(*this, value, what, {experts}, "[n]")))
      return failure();
  return success();
}

LogicalResult DropPaddingGradOp::verify() {
  int64_t tokens = shapeOf(getRowPtr())[0] - 1;
  int64_t a = shapeOf(getDKeptGate())[0];
  if (tokens < 1 || a % tokens != 0)
    return emitOpError() << "expects row_ptr of shape [T + 1] with T dividing "
                            "the "
                         << a << " assignments, got "
                         << formatShape(shapeOf(getRowPtr()));
  return expectShape(*this, getDGate(), "d_gate", {a}, "[A]");
}

LogicalResult ImportanceGradOp::verify() {
  return expectShape(*this, getDGate(), "d_gate", shapeOf(getExpert()),
                     "one gradient per assignment");
}

LogicalResult DispatchGradOp::verify() {
  int64_t assignments = shapeOf(getPosition())[0];
  if (failed(expectShape(*this, getDBuffer(), "d_buffer",
                         {assignments, shapeOf(getDBuffer())[1]}, "[A, d]")))
    return failure();
  if (Value rows = getRowPtr())
    if (failed(expectRowPointer(*this, rows, getTokens())))
      return failure();
  return expectShape(
      *this, getDInput(), "d_input",
      {static_cast<int64_t>(getTokens()), shapeOf(getDBuffer())[1]},
      "[tokens, d]");
}

LogicalResult GroupedMatmulGradOp::verify() {
  return expectRowsPerExpert(*this, getBuffer(), getExpertOffset(),
                             getRowsPerExpert());
}

//===----------------------------------------------------------------------===//
// Model-level ops that are also primitives
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingGradOp::verify() {
  return expectEmbeddingRows(*this, getDOutput(), "d_output", getIds(),
                             shapeOf(getDTable())[1]);
}

LogicalResult EmbeddingRowGradOp::verify() {
  int64_t n = cast<ShapedType>(getIds().getType()).getNumElements();
  int64_t d = shapeOf(getValues())[1];
  if (failed(
          expectEmbeddingRows(*this, getDOutput(), "d_output", getIds(), d)) ||
      failed(expectIdRows(*this, getVocab(), "vocab")) ||
      failed(expectShape(*this, getRows(), "rows", {n}, "[number of ids]")))
    return failure();
  return expectShape(*this, getValues(), "values", {n, d},
                     "[number of ids, d]");
}

LogicalResult SoftmaxCrossEntropyRowGradOp::verify() {
  ArrayRef<int64_t> hidden = shapeOf(getHidden());
  ArrayRef<int64_t> w = shapeOf(getWeights());
  if (hidden.size() < 2 || w[1] != hidden.back())
    return emitOpError() << "expects hidden states [..., d] with d = " << w[1]
                         << " (the output weights' width) but got "
                         << formatShape(hidden);
  if (failed(expectShape(*this, getTargets(), "targets", hidden.drop_back(),
                         "hidden states' shape without d")) ||
      failed(expectShape(*this, getBias(), "bias", {w[0]}, "[vocab]")) ||
      failed(expectIdRows(*this, w[0], "output weights")))
    return failure();
  if (getNumSamples() >= w[0])
    return emitOpError() << "num_samples = " << getNumSamples()
                         << " must be smaller than the vocabulary (" << w[0]
                         << ")";
  int64_t n = getNumSamples() + ShapedType::getNumElements(hidden.drop_back());
  return failure(
      failed(expectShape(*this, getRows(), "rows", {n},
                         "[num_samples + tokens]")) ||
      failed(expectShape(*this, getDWeightValues(), "d_weight_values",
                         {n, w[1]}, "[num_samples + tokens, d]")) ||
      failed(expectShape(*this, getDBiasValues(), "d_bias_values", {n},
                         "[num_samples + tokens]")));
}

LogicalResult LSTMGradOp::verify() {
  if (bool(getProjection()) != bool(getDProjection()))
    return emitOpError("has a projection gradient exactly when it has a "
                       "projection");
  if (Value proj = getProjection())
    if (proj.getType() != getDProjection().getType())
      return emitOpError("expects the projection gradient to have the "
                         "projection's type");
  return success();
}

//===----------------------------------------------------------------------===//
// Hierarchical routing, Load_H
//===----------------------------------------------------------------------===//

LogicalResult ComposeRoutesGradOp::verify() {
  int64_t a = shapeOf(getPrimaryGate())[0];
  int64_t k = shapeOf(getSecondaryGate())[1];
  if (failed(
          verifyPrimaryAssignments(*this, getPrimaryGate(), getPosition(), a)))
    return failure();
  return expectComposedAssignments(*this, getDGate(), "d_gate", a, k);
}

LogicalResult GroupedBatchwiseThresholdLossGradOp::verify() {
  return verifyGroupedThresholdLoss(*this, getLogits(), getBatchMask(),
                                    getThresholds(), getExpertOffset());
}

LogicalResult ComposeRoutesCsrGradOp::verify() {
  int64_t primary = shapeOf(getPrimaryGate())[0];
  int64_t secondary = shapeOf(getSecondaryGate())[0];
  if (failed(expectShape(*this, getRowPtr(), "row_ptr",
                         shapeOf(getPrimaryRowPtr()),
                         "the primary row pointers' shape [tokens + 1]")) ||
      failed(verifyPrimaryAssignments(*this, getPrimaryGate(), getPosition(),
                                      primary)) ||
      failed(expectShape(*this, getSecondaryRowPtr(), "secondary row_ptr",
                         {primary + 1}, "[primary assignments + 1]")))
    return failure();
  return expectShape(*this, getDGate(), "d_gate", {secondary},
                     "one gradient per secondary assignment");
}

LogicalResult GroupedLoadEstimateGradOp::verify() {
  return verifyGroupedLoadEstimate(
      *this, getK(), getCleanLogits(), getNoiseLogits(), getNoisy(),
      getNoiseStd(), getTopValues(), getExpertOffset(), getDLoad(), "d_load");
}

LogicalResult HierarchicalLoadGradOp::verify() {
  return verifyHierarchicalLoad(*this, getPrimaryLoad(), getSecondaryLoad(),
                                getExpertOffset(), getDLoad(), "d_load");
}
