//===- Partition.cpp - Data-parallel training over a device mesh ----------===//
//
// Makes a model's forward pass compute the loss of the global batch of all
// ranks: see the pass description in Passes.td and docs/PARTITIONING.md.
//
//===----------------------------------------------------------------------===//

#include "passes/ModelFunctions.h"
#include "passes/Passes.h"

#include "dialect/MoEDialect.h"
#include "dialect/MoEOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Mesh/IR/MeshDialect.h"
#include "mlir/Dialect/Mesh/IR/MeshOps.h"
#include "mlir/IR/Builders.h"

namespace mlir::moe {
#define GEN_PASS_DEF_PARTITION
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

#define DEBUG_TYPE "moe-partition"

namespace {

struct PartitionPass : public mlir::moe::impl::PartitionBase<PartitionPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<func::FuncOp> models;
    for (auto func : module.getOps<func::FuncOp>())
      if (isModelFunction(func))
        models.push_back(func);
    if (models.empty())
      return;
    StringRef mesh = ensureMesh(module);
    for (func::FuncOp model : models)
      if (failed(partition(model, mesh)))
        return signalPassFailure();
  }

  /// The 1-D mesh of all ranks, of a size known only when the graph runs.
  StringRef ensureMesh(ModuleOp module) {
    for (auto existing : module.getOps<mesh::MeshOp>())
      if (existing.getSymName() == kMeshName)
        return existing.getSymName();
    OpBuilder b = OpBuilder::atBlockBegin(module.getBody());
    auto created = b.create<mesh::MeshOp>(
        module.getLoc(), kMeshName,
        b.getDenseI64ArrayAttr({ShapedType::kDynamic}));
    return created.getSymName();
  }

  LogicalResult partition(func::FuncOp func, StringRef mesh) {
    // Ranking over the batch needs every rank's tokens (Appendix A): the
    // mask must have been lowered for the combined batch.
    WalkResult unsupported = func.walk([&](Operation *op) -> WalkResult {
      if (auto mask = dyn_cast<BatchwiseMaskOp>(op))
        if (!mask.getCombinedBatch())
          return op->emitOpError(
              "ranks only this rank's batch; data-parallel training ranks "
              "the combined batch of all ranks (paper Appendix A): lower "
              "with moe-decompose{combined-batch}");
      if (isa<GroupedBatchwiseMaskOp>(op))
        return op->emitOpError(
            "ranks the tokens of the combined batch of all ranks inside "
            "each group, which moe-partition does not lower yet; train "
            "hierarchical batchwise models on one rank");
      return WalkResult::advance();
    });
    if (unsupported.wasInterrupted())
      return failure();

    OpBuilder b(func.getContext());
    auto average = [&](Value value, Location loc) {
      return b.create<mesh::AllReduceOp>(loc, value, mesh,
                                         ArrayRef<mesh::MeshAxis>{0},
                                         mesh::ReductionKind::Average);
    };
    // The task loss: the mean over the global batch is the average of the
    // ranks' means (equal batches).
    func.walk([&](SoftmaxCrossEntropyOp ce) {
      b.setInsertionPointAfter(ce);
      auto global = average(ce.getLoss(), ce.getLoc());
      ce.getLoss().replaceAllUsesExcept(global.getResult(), global);
    });
    // Eq. 8 sums over the tokens: the global batch's is the ranks' sum.
    func.walk([&](BatchwiseThresholdLossOp loss) {
      b.setInsertionPointAfter(loss);
      auto global = b.create<mesh::AllReduceOp>(
          loss.getLoc(), loss.getLoss(), mesh, ArrayRef<mesh::MeshAxis>{0},
          mesh::ReductionKind::Sum);
      loss.getLoss().replaceAllUsesExcept(global.getResult(), global);
    });
    // Balancing statistics: averaged over the ranks before the losses.
    // CV^2 does not change when its vector is scaled, and Eq. 5 divides the
    // importance by the local token count, so the average gives exactly
    // the global batch's losses.
    func.walk([&](Operation *op) {
      if (!isa<CvSquaredOp, L2BalanceOp>(op))
        return;
      b.setInsertionPoint(op);
      op->setOperand(0, average(op->getOperand(0), op->getLoc()));
    });
    return success();
  }

  static constexpr llvm::StringLiteral kMeshName = "ranks";
};

} // namespace
