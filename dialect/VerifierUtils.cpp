//===- VerifierUtils.cpp - Checks shared by forward and backward ops ------===//
//
// A backward op reads the operands of its forward op, so it repeats the
// forward op's shape checks; both call these so that the two agree and say
// the same thing.
//
//===----------------------------------------------------------------------===//

#include "dialect/VerifierUtils.h"

#include "llvm/Support/CheckedArithmetic.h"

using namespace mlir;
using namespace mlir::moe;

std::optional<int64_t> mlir::moe::checkedNumElements(ShapedType type) {
  std::optional<int64_t> count = 1;
  for (int64_t dim : type.getShape())
    if (!(count = llvm::checkedMul<int64_t>(*count, dim)))
      return std::nullopt;
  return count;
}

std::optional<int64_t> mlir::moe::checkedTensorBytes(ShapedType type) {
  std::optional<int64_t> count = checkedNumElements(type);
  if (!count)
    return std::nullopt;
  std::optional<int64_t> bits =
      llvm::checkedMul<int64_t>(*count, type.getElementTypeBitWidth());
  if (!bits)
    return std::nullopt;
  return llvm::divideCeil(*bits, 8);
}

/// Checks one tensor of `op`, named "<kind> #<index>" in the error.
static LogicalResult verifyTensorSizeFits(Operation *op, Type type,
                                          StringRef kind, unsigned index) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (!tensor || !tensor.hasStaticShape())
    return success();
  auto error = [&]() {
    return op->emitOpError()
           << kind << " #" << index << " of type " << type << " has ";
  };
  if (!checkedNumElements(tensor))
    return error() << "2^63 or more elements";
  if (tensor.getElementType().isIntOrFloat() && !checkedTensorBytes(tensor))
    return error() << "2^60 or more bytes";
  return success();
}

LogicalResult mlir::moe::verifyTensorSizesFit(Operation *op) {
  for (auto [i, type] : llvm::enumerate(op->getOperandTypes()))
    if (failed(verifyTensorSizeFits(op, type, "operand", i)))
      return failure();
  for (auto [i, type] : llvm::enumerate(op->getResultTypes()))
    if (failed(verifyTensorSizeFits(op, type, "result", i)))
      return failure();
  return success();
}

LogicalResult mlir::moe::verifyKnownAttributes(Operation *op,
                                               ArrayRef<StringRef> known) {
  for (NamedAttribute attr : op->getDiscardableAttrs()) {
    StringRef name = attr.getName().getValue();
    // moe.offsets and other dialects' annotations are named dialect.name.
    if (name.contains('.'))
      continue;
    InFlightDiagnostic diag = op->emitOpError()
                              << "has unknown attribute '" << name << "' (";
    auto own = llvm::make_filter_range(
        known, [](StringRef n) { return !n.ends_with("SegmentSizes"); });
    if (own.empty())
      diag << "it has none";
    else
      llvm::interleaveComma(own, diag << "known: ");
    return diag << "; other dialects' attributes are named dialect.name)";
  }
  return success();
}

LogicalResult mlir::moe::expectIdRows(Operation *op, int64_t rows,
                                      StringRef what) {
  if (rows < 1)
    return op->emitOpError() << "expects " << what
                             << " with at least one row (a vocabulary of at "
                                "least one word) but got 0";
  constexpr int64_t kMaxIdRows = int64_t(1) << 31;
  if (rows > kMaxIdRows)
    return op->emitOpError()
           << "expects " << what << " of at most 2^31 rows, as many as i32 "
           << "ids can index, but got " << rows;
  return success();
}

LogicalResult mlir::moe::expectRowPointer(Operation *op, Value rowPtr,
                                          int64_t tokens) {
  return expectShape(op, rowPtr, "row_ptr", {tokens + 1}, "[tokens + 1]");
}

LogicalResult mlir::moe::expectEmbeddingRows(Operation *op, Value value,
                                             StringRef what, Value ids,
                                             int64_t d) {
  SmallVector<int64_t> expected(shapeOf(ids));
  expected.push_back(d);
  return expectShape(op, value, what, expected, "ids shape followed by d");
}

LogicalResult mlir::moe::verifyPrimaryAssignments(Operation *op,
                                                  Value primaryGate,
                                                  Value position,
                                                  int64_t assignments) {
  if (failed(expectShape(op, primaryGate, "primary gate", {assignments},
                         "one gate per primary assignment")))
    return failure();
  return expectShape(op, position, "position", {assignments},
                     "one buffer row per primary assignment");
}

LogicalResult mlir::moe::expectComposedAssignments(Operation *op, Value value,
                                                   StringRef what,
                                                   int64_t assignments,
                                                   int64_t k) {
  return expectShape(op, value, what, {assignments * k},
                     "[primary assignments * k]");
}

LogicalResult mlir::moe::verifyGroupedThresholdLoss(Operation *op, Value logits,
                                                    Value batchMask,
                                                    Value thresholds,
                                                    Value expertOffset) {
  ArrayRef<int64_t> shape = shapeOf(logits);
  int64_t groups = shapeOf(thresholds)[0];
  if (failed(expectShape(op, batchMask, "batch mask", shape, "[R, n]")) ||
      failed(expectShape(op, thresholds, "thresholds", {groups, shape[1]},
                         "[groups, n]")))
    return failure();
  // Segments from the offsets (a mask over the combined batch) or equal.
  if (expertOffset)
    return expectShape(op, expertOffset, "expert_offset", {groups + 1},
                       "[groups + 1], one segment per row of thresholds");
  return expectEqualSegments(op, shape[0], groups, "logits");
}

LogicalResult mlir::moe::verifyGroupedLoadEstimate(
    Operation *op, int64_t k, Value cleanLogits, Value noiseLogits, Value noisy,
    Value noiseStd, Value topValues, Value expertOffset, Value load,
    StringRef loadName) {
  ArrayRef<int64_t> clean = shapeOf(cleanLogits);
  int64_t groups = shapeOf(expertOffset)[0] - 1;
  if (k > clean[1])
    return op->emitOpError() << "k = " << k << " exceeds the " << clean[1]
                             << " experts of a group";
  if (groups < 1)
    return op->emitOpError("expects expert_offset of shape [groups + 1] with "
                           "at least one group");
  if (failed(expectShape(op, noiseLogits, "noise logits", clean,
                         "the clean logits' shape")) ||
      failed(expectShape(op, noisy, "noisy", clean, "[R, n]")) ||
      failed(expectShape(op, noiseStd, "noise_std", clean, "[R, n]")) ||
      failed(expectShape(op, topValues, "top_values", {clean[0], k + 1},
                         "[R, k + 1]")))
    return failure();
  return expectShape(op, load, loadName, {groups, clean[1]}, "[groups, n]");
}

LogicalResult mlir::moe::verifyHierarchicalLoad(Operation *op,
                                                Value primaryLoad,
                                                Value secondaryLoad,
                                                Value expertOffset, Value load,
                                                StringRef loadName) {
  int64_t groups = shapeOf(primaryLoad)[0];
  int64_t n = shapeOf(secondaryLoad)[1];
  if (failed(expectShape(op, secondaryLoad, "secondary load", {groups, n},
                         "[groups, n], one row per group")) ||
      failed(expectShape(op, expertOffset, "expert_offset", {groups + 1},
                         "[groups + 1]")))
    return failure();
  return expectShape(op, load, loadName, {groups * n}, "[groups * n]");
}
