//===- moe-translate.cpp - From training graphs to package files ----------===//
//
// Translations out of MLIR into the files of a package: --moe-to-cpp and
// --moe-to-cuda emit the source of the compiled functions (EmitC and MLIR's
// C++ emitter), --moe-to-manifest its manifest.json.
//
//===----------------------------------------------------------------------===//

#include "codegen/Manifest.h"
#include "codegen/Translations.h"

#include "mlir/Tools/mlir-translate/MlirTranslateMain.h"

int main(int argc, char **argv) {
  mlir::moe::registerManifestTranslation();
  mlir::moe::registerSourceTranslations();
  return mlir::failed(mlir::mlirTranslateMain(
      argc, argv, "moe-translate: package files from a compiled model\n"));
}
