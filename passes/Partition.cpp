//===- Partition.cpp - Data-parallel training over a device mesh ----------===//
//
// Makes a model's forward pass compute the loss of the global batch of all
// ranks: see the pass description in Passes.td and docs/PARTITIONING.md.
//
//===----------------------------------------------------------------------===//

#include "passes/ModelFunctions.h"
#include "passes/Passes.h"

#include "dialect/MoEAttrs.h"
#include "dialect/MoEDialect.h"
#include "dialect/MoEOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Mesh/IR/MeshDialect.h"
#include "mlir/Dialect/Mesh/IR/MeshOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/SmallPtrSet.h"

namespace mlir::moe {
#define GEN_PASS_DEF_PARTITION
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

#define DEBUG_TYPE "moe-partition"

namespace {

struct PartitionPass : public mlir::moe::impl::PartitionBase<PartitionPass> {
  using PartitionBase::PartitionBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<func::FuncOp> models;
    for (auto func : module.getOps<func::FuncOp>())
      if (isModelFunction(func))
        models.push_back(func);
    if (models.empty())
      return;
    StringRef mesh = ensureMesh(module);
    for (func::FuncOp model : models) {
      if (failed(partition(model, mesh)))
        return signalPassFailure();
      if (expertParallel && failed(shardExperts(model, mesh)))
        return signalPassFailure();
    }
    // Evaluation copies score each rank's own batch (the driver sums the
    // ranks' statistics), but they share the parameters: with sharded
    // experts, they exchange tokens too.
    if (expertParallel)
      for (auto func : module.getOps<func::FuncOp>())
        if (func->hasAttr(MoEDialect::kInferenceAttrName) &&
            failed(shardExperts(func, mesh)))
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
      if (auto mask = dyn_cast<GroupedBatchwiseMaskOp>(op))
        if (!mask.getCombinedBatch())
          return op->emitOpError(
              "ranks only this rank's rows of each group; data-parallel "
              "training ranks the combined batch of all ranks (paper "
              "Appendix A at each level): lower with "
              "moe-expand-hierarchy{combined-batch}");
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
    auto sum = [&](Value value, Location loc) {
      return b.create<mesh::AllReduceOp>(loc, value, mesh,
                                         ArrayRef<mesh::MeshAxis>{0},
                                         mesh::ReductionKind::Sum);
    };
    // The task loss: the mean over the global batch's non-padding targets.
    // The ranks' counts differ where the padding does (translation
    // batches, the last batch of an epoch), so it is not the average of the
    // ranks' means: each rank divides its sum by the global count and the
    // ranks' parts are summed (whose adjoint is the identity, so each
    // rank's gradient is its targets' share of the global mean).
    func.walk([&](SoftmaxCrossEntropyOp ce) {
      if (ce.getTargetCount())
        return;
      b.setInsertionPoint(ce);
      auto local = b.create<CountTargetsOp>(
          ce.getLoc(), RankedTensorType::get({}, b.getI32Type()),
          ce.getTargets());
      ce.getTargetCountMutable().assign(sum(local, ce.getLoc()));
      b.setInsertionPointAfter(ce);
      auto global = sum(ce.getLoss(), ce.getLoc());
      ce.getLoss().replaceAllUsesExcept(global.getResult(), global);
    });
    // Eq. 8 sums over the tokens: the global batch's is the ranks' sum.
    func.walk([&](Operation *loss) {
      if (!isa<BatchwiseThresholdLossOp, GroupedBatchwiseThresholdLossOp>(loss))
        return;
      b.setInsertionPointAfter(loss);
      Value local = loss->getResult(0);
      auto global = sum(local, loss->getLoc());
      local.replaceAllUsesExcept(global.getResult(), global);
    });
    // Load_H = Load_primary[g] * Load_g[j] / |X^(g)| is not linear in the
    // batch: it takes the global batch's sums (the group sizes are the
    // plan's offsets, which add up over the ranks), so it is replicated.
    llvm::SmallPtrSet<Operation *, 4> replicated;
    func.walk([&](HierarchicalLoadOp load) {
      b.setInsertionPoint(load);
      for (OpOperand &operand : load->getOpOperands())
        operand.set(sum(operand.get(), load.getLoc()));
      replicated.insert(load);
    });
    // Balancing statistics: averaged over the ranks before the losses.
    // CV^2 does not change when its vector is scaled, and Eq. 5 divides the
    // importance by the local token count, so the average gives exactly
    // the global batch's losses.
    func.walk([&](Operation *op) {
      if (!isa<CvSquaredOp, L2BalanceOp>(op) ||
          replicated.contains(op->getOperand(0).getDefiningOp()))
        return;
      b.setInsertionPoint(op);
      op->setOperand(0, average(op->getOperand(0), op->getLoc()));
    });
    return success();
  }

  /// The expert section of one MoE layer: the grouped matmuls and
  /// activations from a moe.dispatch to a moe.combine, in program order.
  struct ExpertSection {
    Operation *plan = nullptr;
    Value offsets; ///< the plan's expert_offset
    DispatchOp dispatch;
    SmallVector<Operation *> ops;
    CombineOp combine;
  };

  /// The section that feeds `combine`, or failure (with an error) when the
  /// experts' outputs do not come from one dispatch through grouped
  /// matmuls of model parameters.
  FailureOr<ExpertSection> expertSection(CombineOp combine) {
    ExpertSection section;
    section.combine = combine;
    Value value = combine.getExpertOutput();
    Value offsets;
    while (Operation *def = value.getDefiningOp()) {
      if (auto dispatch = dyn_cast<DispatchOp>(def)) {
        section.dispatch = dispatch;
        break;
      }
      if (!value.hasOneUse())
        return def->emitOpError(
            "feeds the experts' output and another op; expert-parallel "
            "partitioning needs the expert section to be a chain");
      if (auto matmul = dyn_cast<GroupedMatmulOp>(def)) {
        auto weights = dyn_cast<BlockArgument>(matmul.getWeights());
        auto func = def->getParentOfType<func::FuncOp>();
        if (!weights ||
            !func.getArgAttr(weights.getArgNumber(),
                             MoEDialect::kParamAttrName))
          return def->emitOpError(
              "multiplies by expert weights that are not a model parameter; "
              "expert-parallel partitioning shards parameters only");
        if (offsets && offsets != matmul.getExpertOffset())
          return def->emitOpError(
              "uses another dispatch plan than the rest of its experts");
        offsets = matmul.getExpertOffset();
        value = matmul.getBuffer();
      } else if (auto act = dyn_cast<ActivateOp>(def)) {
        value = act.getInput();
      } else {
        return def->emitOpError("is in an expert section (between "
                                "moe.dispatch and moe.combine), which "
                                "expert-parallel partitioning cannot shard");
      }
      section.ops.push_back(def);
    }
    if (!section.dispatch || !offsets)
      return combine.emitOpError(
          "combines rows that no moe.dispatch and grouped matmul produced; "
          "expert-parallel partitioning cannot find its experts");
    // The plan is a moe.dispatch_plan or the moe.fused_route that made it.
    section.offsets = offsets;
    section.plan = offsets.getDefiningOp();
    if (!section.plan ||
        section.plan != section.dispatch.getToken().getDefiningOp())
      return combine.emitOpError(
          "has experts whose segments are not the plan of its dispatch");
    std::reverse(section.ops.begin(), section.ops.end());
    return section;
  }

  /// Moves every MoE layer's experts to the ranks that hold them.
  LogicalResult shardExperts(func::FuncOp func, StringRef mesh) {
    SmallVector<CombineOp> combines;
    func.walk([&](CombineOp combine) { combines.push_back(combine); });
    SmallVector<ExpertSection> sections;
    for (CombineOp combine : combines) {
      FailureOr<ExpertSection> section = expertSection(combine);
      if (failed(section))
        return failure();
      sections.push_back(*section);
    }
    auto meshRef = FlatSymbolRefAttr::get(func.getContext(), mesh);
    OpBuilder b(func.getContext());
    llvm::SmallSetVector<unsigned, 4> sharded;
    for (ExpertSection &section : sections) {
      Operation *plan = section.plan;
      Value offsets = section.offsets;
      int64_t n = cast<RankedTensorType>(offsets.getType()).getDimSize(0) - 1;
      b.setInsertionPointAfter(plan);
      auto counts = b.create<ExchangeCountsOp>(
          plan->getLoc(),
          TypeRange{RankedTensorType::get({n}, b.getI32Type()),
                    offsets.getType()},
          offsets, meshRef);

      auto dynamicRows = [](Value v) {
        auto type = cast<RankedTensorType>(v.getType());
        return RankedTensorType::get({ShapedType::kDynamic, type.getDimSize(1)},
                                     type.getElementType());
      };
      b.setInsertionPointAfter(section.dispatch);
      Value buffer = section.dispatch.getBuffer();
      auto received = b.create<ExchangeToExpertsOp>(
          section.dispatch.getLoc(), dynamicRows(buffer), buffer, offsets,
          counts.getRecvCounts(), meshRef);
      Value rows = received.getReceived();
      Type outputType = section.combine.getExpertOutput().getType();
      for (Operation *op : section.ops) {
        op->setOperand(0, rows);
        if (auto matmul = dyn_cast<GroupedMatmulOp>(op)) {
          matmul.getExpertOffsetMutable().assign(counts.getRecvOffset());
          sharded.insert(cast<BlockArgument>(matmul.getWeights())
                             .getArgNumber());
        }
        Value result = op->getResult(0);
        result.setType(dynamicRows(result));
        rows = result;
      }
      CombineOp combine = section.combine;
      b.setInsertionPoint(combine);
      auto back = b.create<ExchangeToTokensOp>(
          combine.getLoc(), outputType, rows, offsets,
          counts.getRecvCounts(), meshRef);
      combine.getExpertOutputMutable().assign(back.getBuffer());
    }
    if (sharded.empty())
      return success();
    Block &entry = func.getBody().front();
    for (unsigned index : sharded) {
      BlockArgument arg = entry.getArgument(index);
      // Only the sections rewritten above (now on [?, d] rows) may use it.
      for (Operation *user : arg.getUsers())
        if (auto matmul = dyn_cast<GroupedMatmulOp>(user);
            !matmul || !matmul.getBuffer().getType().isDynamicDim(0))
          return user->emitOpError("uses the expert weights ")
                 << func.getArgAttr(index, MoEDialect::kParamAttrName)
                 << " outside an expert section; expert-parallel "
                    "partitioning cannot shard them";
      arg.setType(
          shardedType(cast<RankedTensorType>(arg.getType()), meshRef));
    }
    func.setType(FunctionType::get(func.getContext(), entry.getArgumentTypes(),
                                   func.getResultTypes()));
    return success();
  }

  static constexpr llvm::StringLiteral kMeshName = "ranks";
};

} // namespace
