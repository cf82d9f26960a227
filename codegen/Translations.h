//===- Translations.h - moe-translate's translations -------------*- C++ -*-===//

#ifndef MOE_CODEGEN_TRANSLATIONS_H
#define MOE_CODEGEN_TRANSLATIONS_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::moe {

/// Writes the package source of the planned `module` (left unchanged):
/// convert-moe-to-emitc for `target` ("cpu" or "cuda") at `gemmPrecision`
/// on a copy, then MLIR's C++ emitter.
LogicalResult emitPackageSource(ModuleOp module, llvm::raw_ostream &os,
                                StringRef target, StringRef gemmPrecision);

/// --moe-to-cpp and --moe-to-cuda: the package source of a compiled model.
void registerSourceTranslations();

} // namespace mlir::moe

#endif // MOE_CODEGEN_TRANSLATIONS_H
