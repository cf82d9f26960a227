//===- MoECollectiveOps.cpp - Data-parallel ops and their gradients -------===//
//
// moe.divide_by_mesh_size, and the gradient of the upstream mesh.all_reduce
// (attached as an external model, so moe-autodiff differentiates the
// collectives moe-partition inserts like any other op).
//
//===----------------------------------------------------------------------===//

#include "dialect/MoECollectiveOps.h"

#include "dialect/MoEOps.h"

#include "mlir/Dialect/Mesh/IR/MeshDialect.h"
#include "mlir/Dialect/Mesh/IR/MeshOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/SymbolTable.h"

using namespace mlir;
using namespace mlir::moe;

LogicalResult
DivideByMeshSizeOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  if (!symbolTable.lookupNearestSymbolFrom<mesh::MeshOp>(*this,
                                                         getMeshAttr()))
    return emitOpError("expects @")
           << getMesh() << " to name a mesh.mesh of the module";
  return success();
}

LogicalResult
DivideByMeshSizeOp::buildGradient(OpBuilder &b, ArrayRef<Value> grads,
                                  SmallVectorImpl<Value> &operandGrads) {
  operandGrads.push_back(
      b.create<DivideByMeshSizeOp>(getLoc(), grads[0], getMeshAttr()));
  return success();
}

namespace {

/// The gradient of an all-reduce whose result every rank uses in the same
/// replicated computation of the loss (counted once): the sum depends on
/// each rank's value with weight 1, the average with weight 1 / R.
struct AllReduceGradient
    : public GradientOpInterface::ExternalModel<AllReduceGradient,
                                                mesh::AllReduceOp> {
  LogicalResult buildGradient(Operation *op, OpBuilder &b,
                              ArrayRef<Value> grads,
                              SmallVectorImpl<Value> &operandGrads) const {
    auto reduce = cast<mesh::AllReduceOp>(op);
    switch (reduce.getReduction()) {
    case mesh::ReductionKind::Sum:
      operandGrads.push_back(grads[0]);
      return success();
    case mesh::ReductionKind::Average:
      operandGrads.push_back(b.create<DivideByMeshSizeOp>(
          op->getLoc(), grads[0], reduce.getMeshAttr()));
      return success();
    default:
      return op->emitOpError("has no gradient for reduction ")
             << mesh::stringifyReductionKind(reduce.getReduction())
             << " (only sum and average)";
    }
  }
};

} // namespace

void mlir::moe::registerMeshGradientModels(DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *context, mesh::MeshDialect *) {
    mesh::AllReduceOp::attachInterface<AllReduceGradient>(*context);
  });
}
