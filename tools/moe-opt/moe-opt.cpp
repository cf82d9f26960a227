//===- moe-opt.cpp - The moe dialect's optimizer driver -------------------===//
//
// Parses, verifies, transforms and prints moe models. Built on MlirOptMain,
// so malformed input is reported as `file:line:col: error: ...` with exit
// code 1; input nested too deep to parse is refused first.
//
//===----------------------------------------------------------------------===//

#include "tools/common/NestingGuard.h"
#include "tools/common/OptRegistration.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::moe::registerMoEOptPasses();
  mlir::DialectRegistry registry;
  mlir::moe::registerMoEOptDialects(registry);
  auto [inputFilename, outputFilename] = mlir::registerAndParseCLIOptions(
      argc, argv, "moe-opt: compiler driver for mixture-of-experts models\n",
      registry);
  if (mlir::failed(mlir::moe::checkInputNesting(inputFilename)))
    return 1;
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, inputFilename, outputFilename, registry));
}
