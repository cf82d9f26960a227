//===- Passes.h - Passes of moe-compiler -------------------------*- C++
//-*-===//

#ifndef MOE_PASSES_PASSES_H
#define MOE_PASSES_PASSES_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir::moe {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

/// Registers --moe-train-pipeline and --moe-inference-pipeline.
void registerMoEPipelines();

} // namespace mlir::moe

#endif // MOE_PASSES_PASSES_H
