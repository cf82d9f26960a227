//===- MoEOps.h - Operations of the moe dialect ------------------*- C++ -*-===//

#ifndef MOE_DIALECT_MOEOPS_H
#define MOE_DIALECT_MOEOPS_H

#include "dialect/MoEAttrs.h"
#include "dialect/MoEDialect.h"
#include "dialect/VerifierUtils.h"

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dialect/MoEInterfaces.h.inc"

namespace mlir::moe {
/// Trait of every moe op: its tensors' sizes fit in int64_t.
template <typename ConcreteType>
class TensorSizesFit : public OpTrait::TraitBase<ConcreteType, TensorSizesFit> {
public:
  static LogicalResult verifyTrait(Operation *op) {
    return verifyTensorSizesFit(op);
  }
};

/// Trait of every moe op: no attribute it does not define, save
/// dialect-prefixed ones.
template <typename ConcreteType>
class KnownAttributes
    : public OpTrait::TraitBase<ConcreteType, KnownAttributes> {
public:
  static LogicalResult verifyTrait(Operation *op) {
    return verifyKnownAttributes(op, ConcreteType::getAttributeNames());
  }
};
} // namespace mlir::moe

#define GET_OP_CLASSES
#include "dialect/MoEOps.h.inc"

#endif // MOE_DIALECT_MOEOPS_H
