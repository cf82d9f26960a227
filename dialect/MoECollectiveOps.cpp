//===- MoECollectiveOps.cpp - Data-parallel ops and their gradients -------===//
//
// moe.divide_by_mesh_size, and the gradient of the upstream mesh.all_reduce
// (attached as an external model, so moe-autodiff differentiates the
// collectives moe-partition inserts like any other op).
//
//===----------------------------------------------------------------------===//

#include "dialect/MoECollectiveOps.h"

#include "dialect/MoEOps.h"
#include "dialect/VerifierUtils.h"

#include "mlir/Dialect/Mesh/IR/MeshDialect.h"
#include "mlir/Dialect/Mesh/IR/MeshOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/SymbolTable.h"

using namespace mlir;
using namespace mlir::moe;

/// Every collective of the dialect names a mesh.mesh of its module.
static LogicalResult verifyMeshSymbol(Operation *op, FlatSymbolRefAttr mesh,
                                      SymbolTableCollection &symbolTable) {
  if (!symbolTable.lookupNearestSymbolFrom<mesh::MeshOp>(op, mesh))
    return op->emitOpError("expects ")
           << mesh << " to name a mesh.mesh of the module";
  return success();
}

LogicalResult
DivideByMeshSizeOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  return verifyMeshSymbol(*this, getMeshAttr(), symbolTable);
}

//===----------------------------------------------------------------------===//
// The token exchange
//===----------------------------------------------------------------------===//

LogicalResult
ExchangeCountsOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  return verifyMeshSymbol(*this, getMeshAttr(), symbolTable);
}

LogicalResult ExchangeCountsOp::verify() {
  int64_t n = shapeOf(getExpertOffset())[0] - 1;
  if (n < 1)
    return emitOpError("expects an expert_offset of at least 2 entries");
  if (failed(expectShape(*this, getRecvCounts(), "recv_counts", {n},
                         "[num_experts]")))
    return failure();
  return expectShape(*this, getRecvOffset(), "recv_offset", {n + 1},
                     "[num_experts + 1]");
}

/// The shared checks of the two exchanges: a static [A, d] dispatch-side
/// buffer, [?, d] expert-side rows, offsets and counts of n experts.
static LogicalResult verifyExchange(Operation *op, Value tokenSide,
                                    Value expertSide, Value expertOffset,
                                    Value recvCounts) {
  ArrayRef<int64_t> tokens = shapeOf(tokenSide), experts = shapeOf(expertSide);
  if (ShapedType::isDynamic(tokens[0]) || ShapedType::isDynamic(tokens[1]))
    return op->emitOpError("expects a static dispatch buffer [A, d], got ")
           << formatShape(tokens);
  if (!ShapedType::isDynamic(experts[0]) || experts[1] != tokens[1])
    return op->emitOpError("expects expert-side rows of shape ?x")
           << tokens[1] << " (their number is known when the graph runs) "
           << "but got " << formatShape(experts);
  int64_t n = shapeOf(expertOffset)[0] - 1;
  return expectShape(op, recvCounts, "recv_counts", {n}, "[num_experts]");
}

LogicalResult
ExchangeToExpertsOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  return verifyMeshSymbol(*this, getMeshAttr(), symbolTable);
}

LogicalResult ExchangeToExpertsOp::verify() {
  return verifyExchange(*this, getBuffer(), getReceived(), getExpertOffset(),
                        getRecvCounts());
}

LogicalResult
ExchangeToExpertsOp::buildGradient(OpBuilder &b, ArrayRef<Value> grads,
                                   SmallVectorImpl<Value> &operandGrads) {
  // A permutation of rows across the ranks: its adjoint is the inverse.
  operandGrads.push_back(b.create<ExchangeToTokensOp>(
      getLoc(), getBuffer().getType(), grads[0], getExpertOffset(),
      getRecvCounts(), getMeshAttr()));
  operandGrads.append({Value(), Value()});
  return success();
}

LogicalResult
ExchangeToTokensOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  return verifyMeshSymbol(*this, getMeshAttr(), symbolTable);
}

LogicalResult ExchangeToTokensOp::verify() {
  return verifyExchange(*this, getBuffer(), getExpertRows(), getExpertOffset(),
                        getRecvCounts());
}

LogicalResult
ExchangeToTokensOp::buildGradient(OpBuilder &b, ArrayRef<Value> grads,
                                  SmallVectorImpl<Value> &operandGrads) {
  operandGrads.push_back(b.create<ExchangeToExpertsOp>(
      getLoc(), getExpertRows().getType(), grads[0], getExpertOffset(),
      getRecvCounts(), getMeshAttr()));
  operandGrads.append({Value(), Value()});
  return success();
}

//===----------------------------------------------------------------------===//
// Row-sparse gradients
//===----------------------------------------------------------------------===//

LogicalResult
SumRowsOverRanksOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  return verifyMeshSymbol(*this, getMeshAttr(), symbolTable);
}

LogicalResult SumRowsOverRanksOp::verify() {
  int64_t n = shapeOf(getRows())[0];
  if (ShapedType::isDynamic(n) || n < 1)
    return emitOpError("expects rows of a static shape N >= 1, got ")
           << formatShape(shapeOf(getRows()));
  if (failed(expectShape(*this, getSummedRows(), "summed_rows",
                         {ShapedType::kDynamic},
                         "the rows of all ranks, known when the graph runs")))
    return failure();
  size_t count = getValues().size();
  if (count < 1 || count > 2)
    return emitOpError("expects one or two value tensors (a table's rows and "
                       "its bias's), got ")
           << count;
  if (getSummedValues().size() != count)
    return emitOpError("expects one summed_values result per value tensor (")
           << count << "), got " << getSummedValues().size();
  for (auto [value, summed] : llvm::zip(getValues(), getSummedValues())) {
    ArrayRef<int64_t> shape = shapeOf(value);
    if (shape.empty() || shape[0] != n)
      return emitOpError("expects values of shape ")
             << n << "x... (a row per id), got " << formatShape(shape);
    SmallVector<int64_t> expected(shape);
    expected[0] = ShapedType::kDynamic;
    if (failed(expectShape(*this, summed, "summed_values", expected,
                           "the values' shape with the rows of all ranks")))
      return failure();
  }
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
