//===- PrimitiveBuilder.h - Building blocks of the layer lowerings -*- C++
//-*-===//
//
// Shared by moe-decompose and moe-expand-hierarchy: shape helpers and the
// pieces of an MoE layer (top-k selection, balancing losses, experts) in
// primitive ops.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_PASSES_PRIMITIVEBUILDER_H
#define MOE_PASSES_PRIMITIVEBUILDER_H

#include "dialect/MoEOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/Diagnostics.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>

namespace mlir::moe {

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

  /// lhs * rhs; `allowTf32` for the router's products under
  /// router-precision=tf32.
  Value matmul(Value lhs, Value rhs, bool allowTf32 = false) {
    int64_t rows = cast<RankedTensorType>(lhs.getType()).getDimSize(0);
    int64_t cols = cast<RankedTensorType>(rhs.getType()).getDimSize(1);
    return b.create<MatmulOp>(loc, f32({rows, cols}), lhs, rhs,
                              /*transpose_lhs=*/false, /*transpose_rhs=*/false,
                              allowTf32);
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

  /// Noisy top-k over the rows of `clean` (plain top-k without `noise`).
  NoisyTopKOp topK(Value clean, Value noise, int64_t k, int64_t rngStream,
                   float noiseEps, Value noisePosition = Value()) {
    auto type = cast<RankedTensorType>(clean.getType());
    int64_t rows = type.getDimSize(0), n = type.getDimSize(1);
    return b.create<NoisyTopKOp>(
        loc,
        TypeRange{i32({rows, k}), f32({rows, k}), f32({rows, n}),
                  f32({rows, n}), f32({rows, k + 1})},
        clean, noise, noisePosition, b.getI64IntegerAttr(k),
        b.getF32FloatAttr(noiseEps), b.getI64IntegerAttr(rngStream));
  }

  /// weight * CV^2 of the smooth load estimate of `topK` (noisy only),
  /// over the tokens with assignments in `rowPtr` when there is one.
  void loadLoss(NoisyTopKOp topK, int64_t k, double weight,
                SmallVectorImpl<Value> &auxTerms, Value rowPtr = Value()) {
    if (weight <= 0 || !topK.getNoiseLogits())
      return;
    int64_t n = topK.getCleanLogits().getType().getDimSize(1);
    Value load = b.create<LoadEstimateOp>(
        loc, f32({n}), topK.getCleanLogits(), topK.getNoiseLogits(),
        topK.getNoisy(), topK.getNoiseStd(), topK.getTopValues(), rowPtr,
        b.getI64IntegerAttr(k));
    auxTerms.push_back(
        b.create<CvSquaredOp>(loc, f32({}), load, b.getF32FloatAttr(weight)));
  }

  /// The importance losses over `n` experts: weight * CV^2 (importance)
  /// and Eq. 5 (l2), each only when its weight is positive.
  void balanceLosses(Value expert, Value gate, int64_t n, int64_t tokens,
                     double importanceWeight, double l2Weight,
                     SmallVectorImpl<Value> &auxTerms) {
    if (importanceWeight <= 0 && l2Weight <= 0)
      return;
    Value importance = b.create<ImportanceOp>(loc, f32({n}), expert, gate, n);
    if (importanceWeight > 0)
      auxTerms.push_back(b.create<CvSquaredOp>(
          loc, f32({}), importance, b.getF32FloatAttr(importanceWeight)));
    if (l2Weight > 0)
      auxTerms.push_back(b.create<L2BalanceOp>(loc, f32({}), importance,
                                               b.getI64IntegerAttr(tokens),
                                               b.getF32FloatAttr(l2Weight)));
  }

  /// Eq. 1 over assignments: dispatch the rows of `x` [T, d] into expert
  /// segments, run the experts (one grouped matmul per weight, `act`
  /// between them) and combine the outputs weighted by `gate`.
  Value experts(Value x, Value expert, Value gate, Value rowPtr, int64_t n,
                ValueRange weights, Activation act) {
    int64_t tokens = cast<RankedTensorType>(x.getType()).getDimSize(0);
    int64_t d = cast<RankedTensorType>(x.getType()).getDimSize(1);
    int64_t assignments =
        cast<RankedTensorType>(expert.getType()).getDimSize(0);
    auto plan = b.create<DispatchPlanOp>(
        loc, TypeRange{i32({n + 1}), i32({assignments}), i32({assignments})},
        expert, rowPtr, gate, n, tokens);
    Value out =
        b.create<DispatchOp>(loc, f32({assignments, d}), x, plan.getToken());
    for (auto [index, w] : llvm::enumerate(weights)) {
      int64_t width = cast<RankedTensorType>(w.getType()).getDimSize(2);
      out = b.create<GroupedMatmulOp>(loc, f32({assignments, width}), out, w,
                                      plan.getExpertOffset());
      // The hidden layer of an ffn expert takes the expert's activation.
      if (index + 1 < weights.size())
        out = activate(out, act);
    }
    int64_t dOut = cast<RankedTensorType>(out.getType()).getDimSize(1);
    return b.create<CombineOp>(loc, f32({tokens, dOut}), out, gate,
                               plan.getPosition(), rowPtr, tokens);
  }

  /// Replaces a layer's two results, its output (from rows `y` [T, d_out])
  /// and its auxiliary loss (the sum of `auxTerms`), and erases the layer.
  void replaceLayer(Operation *layer, Value y, ArrayRef<Value> auxTerms) {
    auto type = cast<RankedTensorType>(layer->getResult(0).getType());
    layer->getResult(0).replaceAllUsesWith(expandRows(y, type));
    layer->getResult(1).replaceAllUsesWith(sumLosses(auxTerms));
    layer->erase();
  }

  OpBuilder b;
  Location loc;
};

/// Weight of one balancing loss, 0 when the layer has no losses attribute.
inline double lossWeight(std::optional<LossesAttr> losses,
                         APFloat (LossesAttr::*get)() const) {
  return losses ? ((*losses).*get)().convertToDouble() : 0.0;
}

/// The assignment slots of a threshold mask over `rows` rows of `choices`
/// choices each: min(rows * choices, ceil(factor * expected)), where
/// `expected` is the number of assignments the batchwise mask of the same
/// layer makes in training; every (row, choice) pair without one
/// (threshold gating written by the user has no k). `factor` > 0.
inline int64_t thresholdMaskCapacity(int64_t rows, int64_t choices,
                                     std::optional<int64_t> expected,
                                     double factor) {
  int64_t all = rows * choices;
  if (!expected)
    return all;
  // Less a few ulps, so that 1.1 * 10 slots are 11, not the 12 that the
  // binary 1.1 would round up to.
  double wanted =
      std::ceil(factor * static_cast<double>(*expected) * (1.0 - 1e-15));
  if (!(wanted < static_cast<double>(all)))
    return all;
  return std::max<int64_t>(1, static_cast<int64_t>(wanted));
}

/// The error message for a threshold-capacity factor, empty when it is
/// valid (positive).
inline std::string thresholdCapacityFactorError(double factor) {
  if (factor > 0)
    return {};
  std::string message;
  llvm::raw_string_ostream os(message);
  os << "threshold-capacity must be positive (a factor on the assignments "
        "of training), got "
     << llvm::format("%g", factor);
  return message;
}

/// Fails with an error at `op` unless the threshold-capacity factor is
/// positive.
inline LogicalResult checkThresholdCapacityFactor(Operation *op,
                                                  double factor) {
  std::string error = thresholdCapacityFactorError(factor);
  if (error.empty())
    return success();
  return emitError(op->getLoc(), error);
}

/// The `router-precision` option of the lowering passes: whether the
/// router's gate products may use TF32 ("tf32") or stay f32 ("f32").
inline FailureOr<bool> routerAllowsTf32(Operation *op, StringRef precision) {
  if (precision == "f32" || precision == "tf32")
    return precision == "tf32";
  return emitError(op->getLoc(), "router-precision must be f32 or tf32, got '")
         << precision << "'";
}

/// Tensor2Tensor's noise_epsilon: keeps the noise std positive.
constexpr float kNoiseEps = 1e-2f;

} // namespace mlir::moe

#endif // MOE_PASSES_PRIMITIVEBUILDER_H
