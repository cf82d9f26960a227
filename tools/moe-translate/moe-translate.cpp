//===- moe-translate.cpp - From training graphs to package files ----------===//
//
// Translations out of MLIR into the files of a package: --moe-to-cpp and
// --moe-to-cuda emit the source of the compiled functions (EmitC and MLIR's
// C++ emitter), --moe-to-manifest its manifest.json.
//
//===----------------------------------------------------------------------===//

#include "codegen/Manifest.h"
#include "codegen/Translations.h"
#include "tools/common/NestingGuard.h"

#include "mlir/Tools/mlir-translate/MlirTranslateMain.h"

int main(int argc, char **argv) {
  mlir::moe::registerManifestTranslation();
  mlir::moe::registerSourceTranslations();
  // mlirTranslateMain parses the command line itself: find its input here.
  if (mlir::failed(mlir::moe::checkInputNesting(
          mlir::moe::findInputFilename(argc, argv))))
    return 1;
  return mlir::failed(mlir::mlirTranslateMain(
      argc, argv, "moe-translate: package files from a compiled model\n"));
}
