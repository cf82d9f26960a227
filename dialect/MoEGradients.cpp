//===- MoEGradients.cpp - Vector-Jacobian products of the moe ops ---------===//
//
// GradientOpInterface implementations, one per differentiable op (the
// backward ops they create are verified in MoEGradientOps.cpp). moe-autodiff
// calls these in reverse program order.
//
//===----------------------------------------------------------------------===//

#include "dialect/MoEOps.h"
#include "dialect/VerifierUtils.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"

using namespace mlir;
using namespace mlir::moe;

#include "dialect/MoEInterfaces.cpp.inc"

namespace {

/// Fails on a gradient that reaches a result the op does not differentiate
/// (values saved for the backward pass, masks).
LogicalResult expectNoGradient(Operation *op, ArrayRef<Value> resultGrads,
                               ArrayRef<unsigned> results) {
  for (unsigned index : results)
    if (resultGrads[index])
      return op->emitOpError()
             << "cannot differentiate through result #" << index
             << ", which the op computes for its own backward pass";
  return success();
}

} // namespace

/// The gradient of a mask's gates (flat or grouped, batchwise or threshold)
/// to its [rows, n] logits, zero where masked: the gates are a softmax over
/// each row's kept logits.
template <typename MaskOp>
static Value buildMaskedGateGrad(OpBuilder &b, MaskOp mask, Value dGate) {
  Value logits = mask.getLogits();
  return b.create<MaskedGateGradOp>(mask.getLoc(), logits.getType(),
                                    mask.getRowPtr(), mask.getExpert(),
                                    mask.getGate(), dGate, shapeOf(logits)[1]);
}

//===----------------------------------------------------------------------===//
// Dense algebra
//===----------------------------------------------------------------------===//

LogicalResult MatmulOp::buildGradient(OpBuilder &b, ArrayRef<Value> grads,
                                      SmallVectorImpl<Value> &operandGrads) {
  Value dc = grads[0], lhs = getLhs(), rhs = getRhs();
  Location loc = getLoc();
  // The gradient products run at the forward product's precision.
  auto product = [&](Value l, Value r, bool tl, bool tr, Type type) -> Value {
    return b.create<MatmulOp>(loc, type, l, r, tl, tr, getAllowTf32());
  };
  bool ta = getTransposeLhs(), tb = getTransposeRhs();
  // C = op(A) op(B): each case reads the operands transposed as needed so
  // that no explicit transpose is materialised.
  Value da = !ta ? (tb ? product(dc, rhs, false, false, lhs.getType())
                       : product(dc, rhs, false, true, lhs.getType()))
                 : (tb ? product(rhs, dc, true, true, lhs.getType())
                       : product(rhs, dc, false, true, lhs.getType()));
  Value db = !tb ? (ta ? product(lhs, dc, false, false, rhs.getType())
                       : product(lhs, dc, true, false, rhs.getType()))
                 : (ta ? product(dc, lhs, true, true, rhs.getType())
                       : product(dc, lhs, true, false, rhs.getType()));
  operandGrads.assign({da, db});
  return success();
}

LogicalResult AddOp::buildGradient(OpBuilder &, ArrayRef<Value> grads,
                                   SmallVectorImpl<Value> &operandGrads) {
  operandGrads.assign({grads[0], grads[0]});
  return success();
}

LogicalResult BiasAddOp::buildGradient(OpBuilder &b, ArrayRef<Value> grads,
                                       SmallVectorImpl<Value> &operandGrads) {
  Value dBias = b.create<SumRowsOp>(getLoc(), getBias().getType(), grads[0]);
  operandGrads.assign({grads[0], dBias});
  return success();
}

LogicalResult ActivateOp::buildGradient(OpBuilder &b, ArrayRef<Value> grads,
                                        SmallVectorImpl<Value> &operandGrads) {
  operandGrads.push_back(b.create<ActivateGradOp>(
      getLoc(), getType(), getOutput(), grads[0], getActAttr()));
  return success();
}

LogicalResult ScaleOp::buildGradient(OpBuilder &b, ArrayRef<Value> grads,
                                     SmallVectorImpl<Value> &operandGrads) {
  operandGrads.push_back(
      b.create<ScaleOp>(getLoc(), grads[0], getFactorAttr()));
  return success();
}

//===----------------------------------------------------------------------===//
// Gating
//===----------------------------------------------------------------------===//

LogicalResult NoisyTopKOp::buildGradient(OpBuilder &b, ArrayRef<Value> grads,
                                         SmallVectorImpl<Value> &operandGrads) {
  // noisy, noise_std and top_values feed the load estimate, whose backward
  // differentiates through them itself.
  if (failed(expectNoGradient(*this, grads, {2, 3, 4})))
    return failure();
  Value dGate = grads[1];
  SmallVector<Type> types = {getCleanLogits().getType()};
  SmallVector<Value> operands = {getCleanLogits()};
  if (Value noise = getNoiseLogits()) {
    types.push_back(noise.getType());
    operands.push_back(noise);
  }
  operands.append({getNoisy(), getNoiseStd(), getExpert(), getGate(), dGate});
  auto grad = b.create<NoisyTopKGradOp>(getLoc(), types, operands);
  operandGrads.push_back(grad.getDCleanLogits());
  if (getNoiseLogits())
    operandGrads.push_back(grad.getDNoiseLogits());
  if (getNoisePosition())
    operandGrads.push_back(Value());
  return success();
}

LogicalResult
LoadEstimateOp::buildGradient(OpBuilder &b, ArrayRef<Value> grads,
                              SmallVectorImpl<Value> &operandGrads) {
  auto grad = b.create<LoadEstimateGradOp>(
      getLoc(), getCleanLogits().getType(), getNoiseLogits().getType(),
      getCleanLogits(), getNoiseLogits(), getNoisy(), getNoiseStd(),
      getTopValues(), grads[0], getRowPtr(), getKAttr());
  operandGrads.assign({grad.getDCleanLogits(), grad.getDNoiseLogits(), Value(),
                       Value(), Value()});
  if (getRowPtr())
    operandGrads.push_back(Value());
  return success();
}

LogicalResult
DropPaddingOp::buildGradient(OpBuilder &b, ArrayRef<Value> grads,
                             SmallVectorImpl<Value> &operandGrads) {
  // The row pointers and the kept experts are integers; only the gates
  // carry gradient, back to the slots of the valid tokens.
  operandGrads.assign({Value(), Value(), Value()});
  if (Value dKept = grads[2])
    operandGrads[1] = b.create<DropPaddingGradOp>(getLoc(), getGate().getType(),
                                                  getRowPtr(), dKept);
  return success();
}

LogicalResult SoftmaxOp::buildGradient(OpBuilder &b, ArrayRef<Value> grads,
                                       SmallVectorImpl<Value> &operandGrads) {
  operandGrads.push_back(
      b.create<SoftmaxGradOp>(getLoc(), getType(), getProbs(), grads[0]));
  return success();
}

LogicalResult
BatchwiseMaskOp::buildGradient(OpBuilder &b, ArrayRef<Value> grads,
                               SmallVectorImpl<Value> &operandGrads) {
  // The mask is a step function of the logits: only the gates carry
  // gradient.
  if (failed(expectNoGradient(*this, grads, {0})))
    return failure();
  operandGrads.push_back(buildMaskedGateGrad(b, *this, grads[3]));
  return success();
}

LogicalResult
ThresholdMaskOp::buildGradient(OpBuilder &b, ArrayRef<Value> grads,
                               SmallVectorImpl<Value> &operandGrads) {
  // As for the batchwise mask, only the gates carry gradient; the
  // thresholds are trained by Eq. 8 alone.
  operandGrads.assign({buildMaskedGateGrad(b, *this, grads[2]), Value()});
  return success();
}

LogicalResult
BatchwiseThresholdLossOp::buildGradient(OpBuilder &b, ArrayRef<Value> grads,
                                        SmallVectorImpl<Value> &operandGrads) {
  // Eq. 8 trains the thresholds; logits and mask are constants here.
  Value dThresholds = b.create<BatchwiseThresholdLossGradOp>(
      getLoc(), getThresholds().getType(), getLogits(), getBatchMask(),
      getThresholds(), grads[0]);
  operandGrads.assign({Value(), Value(), dThresholds});
  return success();
}

LogicalResult
ImportanceOp::buildGradient(OpBuilder &b, ArrayRef<Value> grads,
                            SmallVectorImpl<Value> &operandGrads) {
  Value dGate = b.create<ImportanceGradOp>(getLoc(), getGate().getType(),
                                           getExpert(), grads[0]);
  operandGrads.assign({Value(), dGate});
  return success();
}

LogicalResult CvSquaredOp::buildGradient(OpBuilder &b, ArrayRef<Value> grads,
                                         SmallVectorImpl<Value> &operandGrads) {
  operandGrads.push_back(b.create<CvSquaredGradOp>(
      getLoc(), getValues().getType(), getValues(), grads[0], getWeightAttr()));
  return success();
}

LogicalResult L2BalanceOp::buildGradient(OpBuilder &b, ArrayRef<Value> grads,
                                         SmallVectorImpl<Value> &operandGrads) {
  operandGrads.push_back(b.create<L2BalanceGradOp>(
      getLoc(), getImportance().getType(), getImportance(), grads[0],
      getTokensAttr(), getWeightAttr()));
  return success();
}

//===----------------------------------------------------------------------===//
// Dispatch, experts, combine
//===----------------------------------------------------------------------===//

LogicalResult DispatchOp::buildGradient(OpBuilder &b, ArrayRef<Value> grads,
                                        SmallVectorImpl<Value> &operandGrads) {
  // The backward sums rows per token, which needs the plan's positions and
  // row pointer, not just the gather indices.
  Value position, rowPtr;
  if (auto plan = getToken().getDefiningOp<DispatchPlanOp>()) {
    position = plan.getPosition();
    rowPtr = plan.getRowPtr();
  } else if (auto fused = getToken().getDefiningOp<FusedRouteOp>()) {
    position = fused.getPosition();
  } else {
    return emitOpError("can only be differentiated when its token indices "
                       "come from moe.dispatch_plan or moe.fused_route");
  }
  int64_t tokens = shapeOf(getInput())[0];
  operandGrads.push_back(
      b.create<DispatchGradOp>(getLoc(), getInput().getType(), grads[0],
                               position, rowPtr, b.getI64IntegerAttr(tokens)));
  operandGrads.push_back(Value());
  return success();
}

LogicalResult
GroupedMatmulOp::buildGradient(OpBuilder &b, ArrayRef<Value> grads,
                               SmallVectorImpl<Value> &operandGrads) {
  auto grad = b.create<GroupedMatmulGradOp>(
      getLoc(), getBuffer().getType(), getWeights().getType(), getBuffer(),
      getWeights(), getExpertOffset(), grads[0], getRowsPerExpertAttr());
  operandGrads.assign({grad.getDBuffer(), grad.getDWeights(), Value()});
  return success();
}

LogicalResult CombineOp::buildGradient(OpBuilder &b, ArrayRef<Value> grads,
                                       SmallVectorImpl<Value> &operandGrads) {
  auto grad = b.create<CombineGradOp>(getLoc(), getExpertOutput().getType(),
                                      getGate().getType(), getExpertOutput(),
                                      getGate(), getPosition(), getRowPtr(),
                                      grads[0], getTokensAttr());
  // Positions and the optional row pointer take no gradient.
  operandGrads.assign({grad.getDExpertOutput(), grad.getDGate()});
  operandGrads.resize(getNumOperands());
  return success();
}

//===----------------------------------------------------------------------===//
// Model-level ops that are also primitives (each maps to one kernel)
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingOp::buildGradient(OpBuilder &b, ArrayRef<Value> grads,
                                         SmallVectorImpl<Value> &operandGrads) {
  Value dTable = b.create<EmbeddingGradOp>(getLoc(), getTable().getType(),
                                           getIds(), grads[0]);
  operandGrads.assign({dTable, Value()});
  return success();
}

LogicalResult LSTMOp::buildGradient(OpBuilder &b, ArrayRef<Value> grads,
                                    SmallVectorImpl<Value> &operandGrads) {
  if (hasState())
    return emitOpError("with state(h_0, c_0) is inference-only (a decode "
                       "step): moe-autodiff cannot differentiate it");
  SmallVector<Type> types = {getInput().getType(), getInputWeights().getType(),
                             getRecurrentWeights().getType(),
                             getBias().getType()};
  SmallVector<Value> operands = {getInput(), getInputWeights(),
                                 getRecurrentWeights(), getBias()};
  if (Value proj = getProjection()) {
    types.push_back(proj.getType());
    operands.push_back(proj);
  }
  operands.append({getOutput(), grads[0]});
  auto grad = b.create<LSTMGradOp>(getLoc(), types, operands);
  operandGrads.assign({grad.getDInput(), grad.getDInputWeights(),
                       grad.getDRecurrentWeights(), grad.getDBias()});
  if (getProjection())
    operandGrads.push_back(grad.getDProjection());
  return success();
}

LogicalResult AttentionOp::buildGradient(OpBuilder &b, ArrayRef<Value> grads,
                                         SmallVectorImpl<Value> &operandGrads) {
  auto grad = b.create<AttentionGradOp>(
      getLoc(), getSource().getType(), getTarget().getType(),
      getSourceWeights().getType(), getTargetWeights().getType(),
      getScoreWeights().getType(), getSource(), getTarget(), getSourceWeights(),
      getTargetWeights(), getScoreWeights(), getContext(), grads[0]);
  // The lengths take no gradient: the saved weights are exactly zero at
  // padded positions, so the backward needs nothing else.
  operandGrads.append(grad->result_begin(), grad->result_end());
  if (getLengths())
    operandGrads.push_back(Value());
  return success();
}

LogicalResult DropoutOp::buildGradient(OpBuilder &b, ArrayRef<Value> grads,
                                       SmallVectorImpl<Value> &operandGrads) {
  // Inverted dropout is linear with a 0 / (1 / (1 - rate)) diagonal: the
  // same mask, redrawn from the same RNG stream, applies to the gradient.
  operandGrads.push_back(b.create<DropoutOp>(getLoc(), grads[0], getRateAttr(),
                                             getRngStreamAttr()));
  return success();
}

LogicalResult ResidualOp::buildGradient(OpBuilder &, ArrayRef<Value> grads,
                                        SmallVectorImpl<Value> &operandGrads) {
  operandGrads.assign({grads[0], grads[0]});
  return success();
}

LogicalResult
SoftmaxCrossEntropyOp::buildGradient(OpBuilder &b, ArrayRef<Value> grads,
                                     SmallVectorImpl<Value> &operandGrads) {
  auto grad = b.create<SoftmaxCrossEntropyGradOp>(
      getLoc(), getHidden().getType(), getWeights().getType(),
      getBias().getType(), getHidden(), getTargets(), getWeights(), getBias(),
      grads[0], getTargetCount(), getNumSamplesAttr(), getRngStreamAttr());
  operandGrads.assign(
      {grad.getDHidden(), Value(), grad.getDWeights(), grad.getDBias()});
  // The count is an integer: no gradient.
  if (getTargetCount())
    operandGrads.push_back(Value());
  return success();
}

LogicalResult TotalLossOp::buildGradient(OpBuilder &, ArrayRef<Value> grads,
                                         SmallVectorImpl<Value> &operandGrads) {
  operandGrads.assign(getTerms().size(), grads[0]);
  return success();
}

//===----------------------------------------------------------------------===//
// Fused routing
//===----------------------------------------------------------------------===//

LogicalResult
FusedRouteOp::buildGradient(OpBuilder &b, ArrayRef<Value> grads,
                            SmallVectorImpl<Value> &operandGrads) {
  // Gradients enter through the gates, the load and the importance; the
  // other results are saved values and integer plans. One op takes all
  // three to the two logits (one kernel, as the forward).
  if (failed(expectNoGradient(*this, grads, {0, 1, 4, 5, 6})))
    return failure();
  Location loc = getLoc();
  Value clean = getCleanLogits(), raw = getNoiseLogits();
  auto add = [&](Value a, Value c) -> Value {
    if (!a)
      return c;
    return c ? b.create<AddOp>(loc, a, c).getResult() : a;
  };
  Value dClean, dRaw;
  if (grads[3] || grads[7] || grads[8]) {
    auto grad = b.create<FusedRouteGradOp>(
        loc, TypeRange{clean.getType(), raw.getType()}, clean, raw, getNoisy(),
        getNoiseStd(), getTopValues(), getExpert(), getGate(), grads[3],
        grads[7], grads[8]);
    dClean = grad.getDCleanLogits();
    dRaw = grad.getDNoiseLogits();
  }
  // Both logits are x times a weight matrix; their gradients run at the
  // gate products' precision.
  Value x = getInput();
  auto product = [&](Value l, Value r, bool tl, bool tr, Type type) -> Value {
    return b.create<MatmulOp>(loc, type, l, r, tl, tr, getAllowTf32());
  };
  Value dx = add(product(dClean, getGateWeights(), false, true, x.getType()),
                 product(dRaw, getNoiseWeights(), false, true, x.getType()));
  operandGrads.assign(
      {dx, product(x, dClean, true, false, getGateWeights().getType()),
       product(x, dRaw, true, false, getNoiseWeights().getType())});
  return success();
}

LogicalResult
ComposeRoutesOp::buildGradient(OpBuilder &b, ArrayRef<Value> grads,
                               SmallVectorImpl<Value> &operandGrads) {
  auto grad = b.create<ComposeRoutesGradOp>(
      getLoc(), getPrimaryGate().getType(), getSecondaryGate().getType(),
      getPrimaryGate(), getPosition(), getSecondaryGate(), grads[1]);
  operandGrads.assign({Value(), grad.getDPrimaryGate(), Value(), Value(),
                       grad.getDSecondaryGate()});
  return success();
}

//===----------------------------------------------------------------------===//
// Hierarchical routing with batchwise and threshold masks, Load_H
//===----------------------------------------------------------------------===//

LogicalResult
GroupedBatchwiseMaskOp::buildGradient(OpBuilder &b, ArrayRef<Value> grads,
                                      SmallVectorImpl<Value> &operandGrads) {
  // As for the flat mask: the mask is a step function of the logits, the
  // gates (a softmax over each row's kept logits) carry the gradient.
  if (failed(expectNoGradient(*this, grads, {0})))
    return failure();
  operandGrads.push_back(buildMaskedGateGrad(b, *this, grads[3]));
  if (getExpertOffset())
    operandGrads.push_back(Value());
  return success();
}

LogicalResult
GroupedThresholdMaskOp::buildGradient(OpBuilder &b, ArrayRef<Value> grads,
                                      SmallVectorImpl<Value> &operandGrads) {
  // Thresholds learn through Eq. 8 only; the offsets are integers.
  operandGrads.assign(
      {buildMaskedGateGrad(b, *this, grads[2]), Value(), Value()});
  return success();
}

LogicalResult GroupedBatchwiseThresholdLossOp::buildGradient(
    OpBuilder &b, ArrayRef<Value> grads, SmallVectorImpl<Value> &operandGrads) {
  Value dThresholds = b.create<GroupedBatchwiseThresholdLossGradOp>(
      getLoc(), getThresholds().getType(), getLogits(), getBatchMask(),
      getThresholds(), grads[0], getExpertOffset());
  operandGrads.assign({Value(), Value(), dThresholds});
  if (getExpertOffset())
    operandGrads.push_back(Value());
  return success();
}

LogicalResult
ComposeRoutesCsrOp::buildGradient(OpBuilder &b, ArrayRef<Value> grads,
                                  SmallVectorImpl<Value> &operandGrads) {
  if (!grads[2])
    return emitOpError("expects a gradient of the composed gates");
  auto grad = b.create<ComposeRoutesCsrGradOp>(
      getLoc(), getPrimaryGate().getType(), getSecondaryGate().getType(),
      getRowPtr(), getPrimaryRowPtr(), getPrimaryGate(), getPosition(),
      getSecondaryRowPtr(), getSecondaryGate(), grads[2]);
  operandGrads.assign({Value(), Value(), grad.getDPrimaryGate(), Value(),
                       Value(), Value(), grad.getDSecondaryGate()});
  return success();
}

LogicalResult
GroupedLoadEstimateOp::buildGradient(OpBuilder &b, ArrayRef<Value> grads,
                                     SmallVectorImpl<Value> &operandGrads) {
  auto grad = b.create<GroupedLoadEstimateGradOp>(
      getLoc(), getCleanLogits().getType(), getNoiseLogits().getType(),
      getCleanLogits(), getNoiseLogits(), getNoisy(), getNoiseStd(),
      getTopValues(), getExpertOffset(), grads[0], getKAttr());
  operandGrads.assign({grad.getDCleanLogits(), grad.getDNoiseLogits(), Value(),
                       Value(), Value(), Value()});
  return success();
}

LogicalResult
HierarchicalLoadOp::buildGradient(OpBuilder &b, ArrayRef<Value> grads,
                                  SmallVectorImpl<Value> &operandGrads) {
  auto grad = b.create<HierarchicalLoadGradOp>(
      getLoc(), getPrimaryLoad().getType(), getSecondaryLoad().getType(),
      getPrimaryLoad(), getSecondaryLoad(), getExpertOffset(), grads[0]);
  operandGrads.assign(
      {grad.getDPrimaryLoad(), grad.getDSecondaryLoad(), Value()});
  return success();
}
