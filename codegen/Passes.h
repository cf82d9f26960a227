//===- Passes.h - Code generation passes -------------------------*- C++ -*-===//

#ifndef MOE_CODEGEN_PASSES_H
#define MOE_CODEGEN_PASSES_H

#include "mlir/Dialect/EmitC/IR/EmitC.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir::moe {

#define GEN_PASS_DECL
#include "codegen/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "codegen/Passes.h.inc"

} // namespace mlir::moe

#endif // MOE_CODEGEN_PASSES_H
