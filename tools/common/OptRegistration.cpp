//===- OptRegistration.cpp - What moe-opt registers -----------------------===//

#include "tools/common/OptRegistration.h"

#include "codegen/Passes.h"
#include "dialect/MoECollectiveOps.h"
#include "dialect/MoEDialect.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/EmitC/IR/EmitC.h"
#include "mlir/Dialect/Func/Extensions/AllExtensions.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Mesh/IR/MeshDialect.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Transforms/Passes.h"

void mlir::moe::registerMoEOptDialects(DialectRegistry &registry) {
  registry
      .insert<MoEDialect, arith::ArithDialect, emitc::EmitCDialect,
              func::FuncDialect, mesh::MeshDialect, tensor::TensorDialect>();
  func::registerAllExtensions(registry);
  registerMeshGradientModels(registry);
}

void mlir::moe::registerMoEOptPasses() {
  registerMoEPasses();
  registerMoEPipelines();
  registerMoECodegenPasses();
  registerCSEPass();
  registerCanonicalizerPass();
}
