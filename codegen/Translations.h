//===- Translations.h - moe-translate's translations -------------*- C++ -*-===//

#ifndef MOE_CODEGEN_TRANSLATIONS_H
#define MOE_CODEGEN_TRANSLATIONS_H

namespace mlir::moe {

/// --moe-to-cpp and --moe-to-cuda: the package source of a compiled model.
void registerSourceTranslations();

} // namespace mlir::moe

#endif // MOE_CODEGEN_TRANSLATIONS_H
