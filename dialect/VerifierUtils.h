//===- VerifierUtils.h - Shape checks shared by the op verifiers -*- C++ -*-===//

#ifndef MOE_DIALECT_VERIFIERUTILS_H
#define MOE_DIALECT_VERIFIERUTILS_H

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Operation.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/raw_ostream.h"

#include <optional>
#include <string>

namespace mlir::moe {

/// "512x8" for a shape, "scalar" for rank 0.
inline std::string formatShape(ArrayRef<int64_t> shape) {
  if (shape.empty())
    return "scalar";
  std::string text;
  llvm::raw_string_ostream os(text);
  llvm::interleave(
      shape, os,
      [&](int64_t d) {
        if (ShapedType::isDynamic(d))
          os << "?";
        else
          os << d;
      },
      "x");
  return text;
}

inline ArrayRef<int64_t> shapeOf(Value value) {
  return cast<ShapedType>(value.getType()).getShape();
}

/// Emits "expects <what> of shape <expected> (<meaning>) but got <actual>"
/// unless `value` has the expected shape.
inline LogicalResult expectShape(Operation *op, Value value, StringRef what,
                                 ArrayRef<int64_t> expected,
                                 StringRef meaning) {
  ArrayRef<int64_t> actual = shapeOf(value);
  if (actual == expected)
    return success();
  return op->emitOpError() << "expects " << what << " of shape "
                           << formatShape(expected) << " (" << meaning
                           << ") but got " << formatShape(actual);
}

/// Emits "expects the <rows> rows of <what> to form <groups> equal group
/// segments" unless `groups` divides `rows` (the secondary level of a
/// hierarchical layer under a primary batchwise mask).
inline LogicalResult expectEqualSegments(Operation *op, int64_t rows,
                                         int64_t groups, StringRef what) {
  if (groups > 0 && rows % groups == 0)
    return success();
  return op->emitOpError() << "expects the " << rows << " rows of " << what
                           << " to form " << groups
                           << " equal group segments, but " << rows
                           << " is not a multiple of " << groups;
}

/// Emits "expects <rows> buffer rows (rows_per_expert m times n experts)"
/// unless a grouped matmul's stated equal segments tile its buffer exactly.
inline LogicalResult
expectRowsPerExpert(Operation *op, Value buffer, Value expertOffset,
                    std::optional<uint64_t> rowsPerExpert) {
  if (!rowsPerExpert)
    return success();
  int64_t rows = shapeOf(buffer)[0];
  int64_t experts = shapeOf(expertOffset)[0] - 1;
  if (!ShapedType::isDynamic(rows) && experts > 0 &&
      rows / experts == static_cast<int64_t>(*rowsPerExpert) &&
      rows % experts == 0)
    return success();
  return op->emitOpError() << "has rows_per_expert = " << *rowsPerExpert
                           << " for " << experts
                           << " experts, but its buffer has "
                           << formatShape({rows})
                           << " rows (expected rows_per_expert * experts)";
}

/// The element count of a statically shaped `type`, or std::nullopt when it
/// does not fit in int64_t.
std::optional<int64_t> checkedNumElements(ShapedType type);

/// The size in bytes of a statically shaped `type` with int or float
/// elements, or std::nullopt when its size in bits does not fit in int64_t.
std::optional<int64_t> checkedTensorBytes(ShapedType type);

/// Fails with "<operand|result> #i of type T has 2^63 or more elements"
/// (or "2^60 or more bytes") for any tensor of `op` whose size does not fit
/// in int64_t: the trait every moe op carries.
LogicalResult verifyTensorSizesFit(Operation *op);

/// Fails with "has unknown attribute 'x' (known: ...)" for a discardable
/// attribute of `op` whose name has no dialect prefix; `known` are the
/// op's own attribute names.
LogicalResult verifyKnownAttributes(Operation *op, ArrayRef<StringRef> known);

//===----------------------------------------------------------------------===//
// Checks shared by a forward op and its backward op (VerifierUtils.cpp)
//===----------------------------------------------------------------------===//

/// `rows`, the vocabulary of `what` (an embedding table, output weights),
/// is at least one row and no more than i32 ids can index (2^31).
LogicalResult expectIdRows(Operation *op, int64_t rows, StringRef what);

/// Token-major row pointers: `rowPtr` has tokens + 1 entries.
LogicalResult expectRowPointer(Operation *op, Value rowPtr, int64_t tokens);

/// `value` (an embedding's output or its gradient) has the shape of `ids`
/// followed by the embedding width `d`.
LogicalResult expectEmbeddingRows(Operation *op, Value value, StringRef what,
                                  Value ids, int64_t d);

/// The primary level of two-level routing: `primaryGate` and `position`
/// hold one entry per primary assignment, `assignments` of them.
LogicalResult verifyPrimaryAssignments(Operation *op, Value primaryGate,
                                       Value position, int64_t assignments);

/// `value` holds the `k` secondary choices of each of `assignments`
/// primary assignments, flattened.
LogicalResult expectComposedAssignments(Operation *op, Value value,
                                        StringRef what, int64_t assignments,
                                        int64_t k);

/// The operands of the grouped Eq. 8: a [R, n] batch mask like the logits,
/// [groups, n] thresholds, and R rows forming `groups` equal segments.
LogicalResult verifyGroupedThresholdLoss(Operation *op, Value logits,
                                         Value batchMask, Value thresholds);

/// The operands of the grouped load estimate and `load` (its result, or the
/// gradient reaching it): k of a group's experts, at least one group in
/// `expertOffset`, the noisy top-k values saved for the [R, n] logits, and
/// a [groups, n] load.
LogicalResult verifyGroupedLoadEstimate(Operation *op, int64_t k,
                                        Value cleanLogits, Value noiseLogits,
                                        Value noisy, Value noiseStd,
                                        Value topValues, Value expertOffset,
                                        Value load, StringRef loadName);

/// The operands of Load_H and `load` (its result, or the gradient reaching
/// it): a [groups, n] secondary load per group of the primary load, a
/// [groups + 1] expert_offset and a flat [groups * n] load.
LogicalResult verifyHierarchicalLoad(Operation *op, Value primaryLoad,
                                     Value secondaryLoad, Value expertOffset,
                                     Value load, StringRef loadName);

} // namespace mlir::moe

#endif // MOE_DIALECT_VERIFIERUTILS_H
