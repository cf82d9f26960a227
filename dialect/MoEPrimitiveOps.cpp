//===- MoEPrimitiveOps.cpp - Verifiers of the primitive ops ---------------===//
//
// The primitive ops are produced by the compiler, not written by users, but
// their verifiers still catch pass bugs early with the same kind of message.
//
//===----------------------------------------------------------------------===//

#include "dialect/MoEOps.h"
#include "dialect/VerifierUtils.h"

using namespace mlir;
using namespace mlir::moe;

/// Checks the optional row pointer of assignment-form ops: [tokens + 1]
/// when present, otherwise the A assignments must split evenly.
static LogicalResult verifyRowPointer(Operation *op, Value rowPtr,
                                      int64_t assignments, int64_t tokens) {
  if (rowPtr)
    return expectRowPointer(op, rowPtr, tokens);
  if (assignments % tokens == 0)
    return success();
  return op->emitOpError()
         << "without row_ptr every token needs the same number of "
            "assignments, but "
         << assignments << " assignments do not divide among " << tokens
         << " tokens";
}

LogicalResult MatmulOp::verify() {
  ArrayRef<int64_t> a = shapeOf(getLhs()), b = shapeOf(getRhs());
  int64_t m = getTransposeLhs() ? a[1] : a[0];
  int64_t ka = getTransposeLhs() ? a[0] : a[1];
  int64_t kb = getTransposeRhs() ? b[1] : b[0];
  int64_t n = getTransposeRhs() ? b[0] : b[1];
  if (ka != kb)
    return emitOpError() << "contracts lhs " << formatShape(a)
                         << (getTransposeLhs() ? " (transposed)" : "")
                         << " with rhs " << formatShape(b)
                         << (getTransposeRhs() ? " (transposed)" : "")
                         << ": inner dimensions " << ka << " and " << kb
                         << " differ";
  return expectShape(*this, getResult(), "result", {m, n}, "[M, N]");
}

LogicalResult BiasAddOp::verify() {
  ArrayRef<int64_t> in = shapeOf(getInput());
  if (in.empty())
    return emitOpError("expects an input of rank >= 1");
  if (failed(expectShape(*this, getBias(), "bias", {in.back()},
                         "[last input dimension]")))
    return failure();
  return expectShape(*this, getOutput(), "output", in, "the input shape");
}

LogicalResult ActivateOp::verify() {
  if (getAct() == Activation::none)
    return emitOpError("needs an activation other than none");
  return success();
}

LogicalResult NoisyTopKOp::verify() {
  ArrayRef<int64_t> clean = shapeOf(getCleanLogits());
  int64_t t = clean[0], n = clean[1], k = getK();
  if (k > n)
    return emitOpError() << "k = " << k << " exceeds the " << n << " experts";
  if (Value noise = getNoiseLogits())
    if (failed(expectShape(*this, noise, "noise logits", clean,
                           "the clean logits' shape")))
      return failure();
  if (Value position = getNoisePosition()) {
    if (!getNoiseLogits())
      return emitOpError("has a noise_position but no noise logits: "
                         "plain top-k draws no noise");
    if (failed(expectShape(*this, position, "noise_position", {t}, "[T]")))
      return failure();
  }
  if (failed(expectShape(*this, getExpert(), "expert", {t, k}, "[T, k]")) ||
      failed(expectShape(*this, getGate(), "gate", {t, k}, "[T, k]")) ||
      failed(expectShape(*this, getNoisy(), "noisy", clean, "[T, n]")) ||
      failed(expectShape(*this, getNoiseStd(), "noise_std", clean, "[T, n]")))
    return failure();
  return expectShape(*this, getTopValues(), "top_values", {t, k + 1},
                     "[T, k + 1]");
}

LogicalResult LoadEstimateOp::verify() {
  ArrayRef<int64_t> clean = shapeOf(getCleanLogits());
  if (getK() > clean[1])
    return emitOpError() << "k = " << getK() << " exceeds the " << clean[1]
                         << " experts";
  if (failed(expectShape(*this, getNoiseLogits(), "noise logits", clean,
                         "the clean logits' shape")) ||
      failed(expectShape(*this, getNoisy(), "noisy", clean, "[T, n]")) ||
      failed(expectShape(*this, getNoiseStd(), "noise_std", clean, "[T, n]")) ||
      failed(expectShape(*this, getTopValues(), "top_values",
                         {clean[0], static_cast<int64_t>(getK()) + 1},
                         "[T, k + 1]")))
    return failure();
  if (Value rowPtr = getRowPtr())
    if (failed(expectRowPointer(*this, rowPtr, clean[0])))
      return failure();
  return expectShape(*this, getLoad(), "load", {clean[1]}, "[n]");
}

LogicalResult DropPaddingOp::verify() {
  int64_t a = shapeOf(getExpert())[0], tokens = getTokens();
  int64_t batch = shapeOf(getLengths())[0];
  if (failed(expectShape(*this, getGate(), "gate", {a},
                         "one gate per assignment")))
    return failure();
  if (tokens < 1 || a % tokens != 0)
    return emitOpError() << "expects row_ptr of shape [T + 1] with T dividing "
                            "the "
                         << a << " assignments (k per token), got "
                         << formatShape(shapeOf(getRowPtr()));
  if (batch < 1 || tokens % batch != 0)
    return emitOpError() << "expects lengths [batch] with batch dividing the "
                         << tokens << " tokens (batch * time), got "
                         << formatShape(shapeOf(getLengths()));
  if (failed(expectShape(*this, getKeptExpert(), "kept_expert", {a}, "[A]")))
    return failure();
  return expectShape(*this, getKeptGate(), "kept_gate", {a}, "[A]");
}

LogicalResult BatchwiseMaskOp::verify() {
  ArrayRef<int64_t> logits = shapeOf(getLogits());
  int64_t t = logits[0], n = logits[1], m = getM();
  if (m > t)
    return emitOpError() << "m = " << m << " exceeds the " << t << " tokens";
  if (failed(expectShape(*this, getMask(), "mask", logits, "[T, n]")) ||
      failed(expectShape(*this, getRowPtr(), "row_ptr", {t + 1}, "[T + 1]")))
    return failure();
  if (getCombinedBatch()) {
    // A rank's share of the combined batch's assignments: a capacity.
    int64_t capacity = shapeOf(getExpert())[0];
    if (capacity < 1 || capacity > t * n)
      return emitOpError() << "expects a capacity of 1 to " << t * n
                           << " ([T * n]) assignments, got " << capacity;
    return expectShape(*this, getGate(), "gate", {capacity},
                       "the expert's size");
  }
  if (failed(expectShape(*this, getExpert(), "expert", {n * m}, "[n * m]")))
    return failure();
  return expectShape(*this, getGate(), "gate", {n * m}, "[n * m]");
}

LogicalResult BatchwiseThresholdLossOp::verify() {
  ArrayRef<int64_t> logits = shapeOf(getLogits());
  if (failed(
          expectShape(*this, getBatchMask(), "batch mask", logits, "[T, n]")))
    return failure();
  return expectShape(*this, getThresholds(), "thresholds", {logits[1]}, "[n]");
}

LogicalResult ImportanceOp::verify() {
  if (failed(expectShape(*this, getGate(), "gate", shapeOf(getExpert()),
                         "one gate per assignment")))
    return failure();
  return expectShape(*this, getImportance(), "importance",
                     {static_cast<int64_t>(getNumExperts())}, "[num_experts]");
}

LogicalResult DispatchPlanOp::verify() {
  int64_t a = shapeOf(getExpert())[0], t = getTokens();
  if (failed(verifyRowPointer(*this, getRowPtr(), a, t)))
    return failure();
  if (getGate() &&
      failed(expectShape(*this, getGate(), "gate", {a}, "[A]")))
    return failure();
  if (failed(expectShape(*this, getExpertOffset(), "expert_offset",
                         {static_cast<int64_t>(getNumExperts()) + 1},
                         "[num_experts + 1]")) ||
      failed(expectShape(*this, getPosition(), "position", {a}, "[A]")))
    return failure();
  return expectShape(*this, getToken(), "token", {a}, "[A]");
}

LogicalResult DispatchOp::verify() {
  return expectShape(*this, getBuffer(), "buffer",
                     {shapeOf(getToken())[0], shapeOf(getInput())[1]},
                     "[A, d]");
}

LogicalResult GroupedMatmulOp::verify() {
  ArrayRef<int64_t> buf = shapeOf(getBuffer()), w = shapeOf(getWeights());
  int64_t experts = shapeOf(getExpertOffset())[0] - 1;
  if (w.size() != 3 || w[0] != experts || w[1] != buf[1])
    return emitOpError() << "expects weights of shape " << experts << "x"
                         << buf[1] << "xN ([experts, d_in, d_out]) but got "
                         << formatShape(w);
  if (failed(expectRowsPerExpert(*this, getBuffer(), getExpertOffset(),
                                 getRowsPerExpert())))
    return failure();
  return expectShape(*this, getOutput(), "output", {buf[0], w[2]},
                     "[A, d_out]");
}

LogicalResult CombineOp::verify() {
  ArrayRef<int64_t> out = shapeOf(getExpertOutput());
  int64_t a = out[0], t = getTokens();
  if (failed(expectShape(*this, getGate(), "gate", {a}, "[A]")) ||
      failed(expectShape(*this, getPosition(), "position", {a}, "[A]")))
    return failure();
  if (failed(verifyRowPointer(*this, getRowPtr(), a, t)))
    return failure();
  return expectShape(*this, getOutput(), "output", {t, out[1]}, "[tokens, d]");
}

LogicalResult SumRowsOp::verify() {
  ArrayRef<int64_t> in = shapeOf(getInput());
  if (in.empty())
    return emitOpError("expects an input of rank >= 1");
  return expectShape(*this, getOutput(), "output", {in.back()},
                     "[last input dimension]");
}

LogicalResult LrScheduleOp::verify() {
  if (!(getBaseLr().convertToFloat() > 0.0f))
    return emitOpError("expects a positive base_lr");
  if (getWarmupStepsAttr().getInt() < 0 || getConstantStepsAttr().getInt() < 0)
    return emitOpError("expects non-negative warmup_steps and constant_steps");
  return success();
}

/// The hyperparameters moe.adam_update and moe.adam_update_rows share.
template <typename AdamOp> static LogicalResult verifyAdamConfig(AdamOp op) {
  auto inUnit = [](APFloat value) {
    float f = value.convertToFloat();
    return f >= 0.0f && f < 1.0f;
  };
  if (!inUnit(op.getBeta1()) || !inUnit(op.getBeta2()))
    return op.emitOpError("expects beta1 and beta2 in [0, 1)");
  if (!(op.getEps().convertToFloat() > 0.0f))
    return op.emitOpError("expects a positive eps");
  if (op.getWeightDecay().convertToFloat() < 0.0f)
    return op.emitOpError("expects a non-negative weight_decay");
  return success();
}

LogicalResult AdamUpdateOp::verify() { return verifyAdamConfig(*this); }

LogicalResult AdamUpdateRowsOp::verify() {
  ArrayRef<int64_t> param = shapeOf(getParam());
  if (param.empty())
    return emitOpError("expects a parameter of rank >= 1 (rows first)");
  if (failed(expectIdRows(*this, param[0], "param")))
    return failure();
  SmallVector<int64_t> values = {shapeOf(getRows())[0]};
  values.append(param.begin() + 1, param.end());
  if (failed(expectShape(*this, getValues(), "values", values,
                         "[rows, param's row shape]")))
    return failure();
  return verifyAdamConfig(*this);
}

/// The assignment buffers of a threshold mask over `rows` rows of `n`
/// choices: `expert` and `gate` of one capacity C with 1 <= C <= rows * n
/// (the compiled capacity; the kernel fails when more pass).
static LogicalResult verifyThresholdCapacity(Operation *op, Value expert,
                                             Value gate, int64_t rows,
                                             int64_t n, StringRef bound) {
  int64_t capacity = shapeOf(expert)[0];
  if (capacity < 1 || capacity > rows * n)
    return op->emitOpError()
           << "expects expert of shape C, an assignment capacity with 1 <= "
              "C <= "
           << bound << " = " << rows * n << ", but got "
           << formatShape(shapeOf(expert));
  return expectShape(op, gate, "gate", {capacity},
                     "the shape of expert, one gate per assignment slot");
}

LogicalResult ThresholdMaskOp::verify() {
  ArrayRef<int64_t> logits = shapeOf(getLogits());
  int64_t t = logits[0], n = logits[1];
  if (failed(expectShape(*this, getThresholds(), "thresholds", {n}, "[n]")) ||
      failed(expectShape(*this, getRowPtr(), "row_ptr", {t + 1}, "[T + 1]")))
    return failure();
  return verifyThresholdCapacity(*this, getExpert(), getGate(), t, n, "T * n");
}

LogicalResult FusedRouteOp::verify() {
  ArrayRef<int64_t> x = shapeOf(getInput());
  ArrayRef<int64_t> w = shapeOf(getGateWeights());
  int64_t t = x[0], n = w[1], k = getK();
  if (w[0] != x[1])
    return emitOpError() << "expects gate weights of shape " << x[1]
                         << "xN ([d, num_experts]) but got " << formatShape(w);
  if (k > n)
    return emitOpError() << "k = " << k << " exceeds the " << n << " experts";
  SmallVector<int64_t> logits = {t, n};
  if (failed(expectShape(*this, getNoiseWeights(), "noise weights", w,
                         "the gate weights' shape")) ||
      failed(expectShape(*this, getCleanLogits(), "clean logits", logits,
                         "[T, n]")) ||
      failed(expectShape(*this, getNoiseLogits(), "noise logits", logits,
                         "[T, n]")) ||
      failed(expectShape(*this, getExpert(), "expert", {t, k}, "[T, k]")) ||
      failed(expectShape(*this, getGate(), "gate", {t, k}, "[T, k]")) ||
      failed(expectShape(*this, getNoisy(), "noisy", logits, "[T, n]")) ||
      failed(
          expectShape(*this, getNoiseStd(), "noise_std", logits, "[T, n]")) ||
      failed(expectShape(*this, getTopValues(), "top_values", {t, k + 1},
                         "[T, k + 1]")) ||
      failed(expectShape(*this, getLoad(), "load", {n}, "[n]")) ||
      failed(expectShape(*this, getImportance(), "importance", {n}, "[n]")) ||
      failed(expectShape(*this, getExpertOffset(), "expert_offset", {n + 1},
                         "[n + 1]")) ||
      failed(expectShape(*this, getPosition(), "position", {t * k}, "[T * k]")))
    return failure();
  return expectShape(*this, getToken(), "token", {t * k}, "[T * k]");
}

LogicalResult ComposeRoutesOp::verify() {
  int64_t a = shapeOf(getPrimaryExpert())[0];
  ArrayRef<int64_t> secondary = shapeOf(getSecondaryExpert());
  if (failed(verifyPrimaryAssignments(*this, getPrimaryGate(), getPosition(),
                                      a)) ||
      failed(expectShape(*this, getSecondaryExpert(), "secondary expert",
                         {a, secondary[1]}, "[primary assignments, k]")) ||
      failed(expectShape(*this, getSecondaryGate(), "secondary gate", secondary,
                         "the secondary experts' shape")) ||
      failed(expectComposedAssignments(*this, getExpert(), "expert", a,
                                       secondary[1])))
    return failure();
  return expectComposedAssignments(*this, getGate(), "gate", a, secondary[1]);
}

//===----------------------------------------------------------------------===//
// Hierarchical routing with batchwise and threshold masks, Load_H
//===----------------------------------------------------------------------===//

LogicalResult GroupedBatchwiseMaskOp::verify() {
  ArrayRef<int64_t> logits = shapeOf(getLogits());
  int64_t rows = logits[0], n = logits[1], groups = getGroups(), m = getM();
  if (getCombinedBatch()) {
    // The groups' segments and a rank's share of the combined batch's
    // assignments are known when the graph runs.
    if (!getExpertOffset())
      return emitOpError("ranks the combined batch inside the groups of the "
                         "primary plan: expects its expert_offset");
    if (failed(expectShape(*this, getExpertOffset(), "expert_offset",
                           {groups + 1}, "[groups + 1]")) ||
        failed(expectShape(*this, getMask(), "mask", logits, "[R, n]")) ||
        failed(
            expectShape(*this, getRowPtr(), "row_ptr", {rows + 1}, "[R + 1]")))
      return failure();
    return verifyThresholdCapacity(*this, getExpert(), getGate(), rows, n,
                                   "R * n");
  }
  if (getExpertOffset())
    return emitOpError("has an expert_offset but ranks equal segments; "
                       "offsets are for combined_batch");
  if (failed(expectEqualSegments(*this, rows, groups, "logits")))
    return failure();
  if (m > rows / groups)
    return emitOpError() << "m = " << m << " exceeds the " << rows / groups
                         << " rows of a group";
  int64_t kept = groups * n * m;
  if (failed(expectShape(*this, getMask(), "mask", logits, "[R, n]")) ||
      failed(
          expectShape(*this, getRowPtr(), "row_ptr", {rows + 1}, "[R + 1]")) ||
      failed(expectShape(*this, getExpert(), "expert", {kept},
                         "[groups * n * m]")))
    return failure();
  return expectShape(*this, getGate(), "gate", {kept}, "[groups * n * m]");
}

LogicalResult GroupedThresholdMaskOp::verify() {
  ArrayRef<int64_t> logits = shapeOf(getLogits());
  int64_t rows = logits[0], n = logits[1];
  int64_t groups = shapeOf(getThresholds())[0];
  if (failed(expectShape(*this, getThresholds(), "thresholds", {groups, n},
                         "[groups, n], one row per group")) ||
      failed(expectShape(*this, getExpertOffset(), "expert_offset",
                         {groups + 1}, "[groups + 1]")) ||
      failed(expectShape(*this, getRowPtr(), "row_ptr", {rows + 1}, "[R + 1]")))
    return failure();
  return verifyThresholdCapacity(*this, getExpert(), getGate(), rows, n,
                                 "R * n");
}

LogicalResult GroupedBatchwiseThresholdLossOp::verify() {
  return verifyGroupedThresholdLoss(*this, getLogits(), getBatchMask(),
                                    getThresholds(), getExpertOffset());
}

LogicalResult ComposeRoutesCsrOp::verify() {
  int64_t tokens = shapeOf(getPrimaryRowPtr())[0] - 1;
  if (tokens < 0)
    return emitOpError("expects primary row_ptr of shape [tokens + 1] but "
                       "got an empty tensor");
  int64_t primary = shapeOf(getPrimaryExpert())[0];
  int64_t secondary = shapeOf(getSecondaryExpert())[0];
  if (failed(verifyPrimaryAssignments(*this, getPrimaryGate(), getPosition(),
                                      primary)) ||
      failed(expectShape(*this, getSecondaryRowPtr(), "secondary row_ptr",
                         {primary + 1},
                         "[primary assignments + 1], one row per "
                         "dispatched primary assignment")) ||
      failed(expectShape(*this, getSecondaryGate(), "secondary gate",
                         {secondary}, "one gate per secondary assignment")) ||
      failed(expectShape(*this, getRowPtr(), "row_ptr", {tokens + 1},
                         "[tokens + 1], as the primary row pointers")) ||
      failed(expectShape(*this, getExpert(), "expert", {secondary},
                         "[secondary assignments]")))
    return failure();
  return expectShape(*this, getGate(), "gate", {secondary},
                     "[secondary assignments]");
}

LogicalResult GroupedLoadEstimateOp::verify() {
  return verifyGroupedLoadEstimate(
      *this, getK(), getCleanLogits(), getNoiseLogits(), getNoisy(),
      getNoiseStd(), getTopValues(), getExpertOffset(), getLoad(), "load");
}

LogicalResult HierarchicalLoadOp::verify() {
  return verifyHierarchicalLoad(*this, getPrimaryLoad(), getSecondaryLoad(),
                                getExpertOffset(), getLoad(), "load");
}
