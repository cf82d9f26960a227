//===- moe-opt.cpp - The moe dialect's optimizer driver -------------------===//
//
// Parses, verifies, transforms and prints moe models. Built on MlirOptMain,
// so malformed input is reported as `file:line:col: error: ...` with exit
// code 1; input nested too deep to parse is refused first.
//
//===----------------------------------------------------------------------===//

#include "codegen/Passes.h"
#include "dialect/MoECollectiveOps.h"
#include "dialect/MoEDialect.h"
#include "passes/Passes.h"
#include "tools/common/NestingGuard.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/EmitC/IR/EmitC.h"
#include "mlir/Dialect/Func/Extensions/AllExtensions.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Mesh/IR/MeshDialect.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

int main(int argc, char **argv) {
  mlir::moe::registerMoEPasses();
  mlir::moe::registerMoEPipelines();
  mlir::moe::registerMoECodegenPasses();
  mlir::registerCSEPass();
  mlir::registerCanonicalizerPass();
  mlir::DialectRegistry registry;
  registry.insert<mlir::moe::MoEDialect, mlir::arith::ArithDialect,
                  mlir::emitc::EmitCDialect,
                  mlir::func::FuncDialect, mlir::mesh::MeshDialect,
                  mlir::tensor::TensorDialect>();
  mlir::func::registerAllExtensions(registry);
  mlir::moe::registerMeshGradientModels(registry);
  auto [inputFilename, outputFilename] = mlir::registerAndParseCLIOptions(
      argc, argv, "moe-opt: compiler driver for mixture-of-experts models\n",
      registry);
  if (mlir::failed(mlir::moe::checkInputNesting(inputFilename)))
    return 1;
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, inputFilename, outputFilename, registry));
}
