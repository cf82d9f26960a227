//===- MoEAttrs.h - Enums and attributes of the moe dialect ------*- C++ -*-===//

#ifndef MOE_DIALECT_MOEATTRS_H
#define MOE_DIALECT_MOEATTRS_H

#include "mlir/IR/Attributes.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/DialectImplementation.h"
#include "mlir/IR/OpImplementation.h"

#include "dialect/MoEEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "dialect/MoEAttrs.h.inc"

namespace mlir::moe {

/// The #moe.shard encoding of `type`, or null when it is not sharded.
inline ShardAttr getShard(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  return tensor ? dyn_cast_or_null<ShardAttr>(tensor.getEncoding())
                : ShardAttr();
}

/// `type` split over the ranks of `mesh` along its first dimension.
inline RankedTensorType shardedType(RankedTensorType type,
                                    FlatSymbolRefAttr mesh) {
  return RankedTensorType::get(type.getShape(), type.getElementType(),
                               ShardAttr::get(type.getContext(), mesh));
}

} // namespace mlir::moe

#endif // MOE_DIALECT_MOEATTRS_H
