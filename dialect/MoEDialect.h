//===- MoEDialect.h - The moe dialect ----------------------------*- C++ -*-===//

#ifndef MOE_DIALECT_MOEDIALECT_H
#define MOE_DIALECT_MOEDIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/Dialect.h"

#include "dialect/MoEDialect.h.inc"

#endif // MOE_DIALECT_MOEDIALECT_H
