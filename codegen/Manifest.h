//===- Manifest.h - The package manifest of a compiled model ----*- C++ -*-===//
//
// The manifest tells the runtime driver, which has no MLIR, how to call a
// compiled training step: which arguments are data, parameters (with their
// initializers) and optimizer state, and what each result is.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_CODEGEN_MANIFEST_H
#define MOE_CODEGEN_MANIFEST_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::moe {

/// Writes manifest.json for the module's training step (the function made
/// by --moe-train-pipeline) and its model (evaluation) function. Fails with
/// a diagnostic when the module holds no training step, or several.
LogicalResult writeManifest(ModuleOp module, llvm::raw_ostream &os);

/// Registers the `--moe-to-manifest` translation.
void registerManifestTranslation();

} // namespace mlir::moe

#endif // MOE_CODEGEN_MANIFEST_H
