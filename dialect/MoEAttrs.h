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

#endif // MOE_DIALECT_MOEATTRS_H
