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
  return expectShape(*this, getDLogits(), "d_logits", {tokens, getNumExperts()},
                     "[T, num_experts]");
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
  return expectShape(*this, getDInput(), "d_input",
                     {getTokens(), shapeOf(getDBuffer())[1]}, "[tokens, d]");
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
