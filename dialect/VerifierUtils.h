//===- VerifierUtils.h - Shape checks shared by the op verifiers -*- C++ -*-===//

#ifndef MOE_DIALECT_VERIFIERUTILS_H
#define MOE_DIALECT_VERIFIERUTILS_H

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Operation.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/raw_ostream.h"

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

} // namespace mlir::moe

#endif // MOE_DIALECT_VERIFIERUTILS_H
