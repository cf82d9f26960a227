//===- moe-translate.cpp - From training graphs to package files ----------===//
//
// Translations out of MLIR: --moe-to-manifest writes the manifest.json of a
// training step. (C++ and CUDA emission through EmitC come next.)
//
//===----------------------------------------------------------------------===//

#include "codegen/Manifest.h"

#include "mlir/Tools/mlir-translate/MlirTranslateMain.h"

int main(int argc, char **argv) {
  mlir::moe::registerManifestTranslation();
  return mlir::failed(mlir::mlirTranslateMain(
      argc, argv, "moe-translate: package files from a compiled model\n"));
}
