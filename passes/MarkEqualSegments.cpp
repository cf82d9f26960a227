//===- MarkEqualSegments.cpp - Expert segments of a known, equal size -----===//
//
// Sets `rows_per_expert` on the grouped matmuls (and their gradients) whose
// dispatch plan gives every expert the same number of rows, which a backend
// can then multiply with one strided-batched GEMM instead of reading the
// segment offsets. See the pass description in Passes.td.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "dialect/MoEOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MARKEQUALSEGMENTS
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

#define DEBUG_TYPE "moe-mark-equal-segments"

namespace {

int64_t numElements(Value value) {
  return cast<RankedTensorType>(value.getType()).getNumElements();
}

/// Rows per expert that the assignments `expert` give each of their
/// experts, when every expert gets the same number whatever the data:
/// a batchwise mask over this rank's batch keeps m tokens per expert
/// (Appendix A), and under it a secondary grouped batchwise mask keeps m
/// rows per expert of each group, so each composed expert gets m.
std::optional<int64_t> rowsPerExpertOf(Value expert) {
  if (auto mask = expert.getDefiningOp<BatchwiseMaskOp>()) {
    // Over the combined batch of all ranks a rank's share varies.
    if (mask.getCombinedBatch() || mask.getExpert() != expert)
      return std::nullopt;
    return static_cast<int64_t>(mask.getM());
  }
  if (auto composed = expert.getDefiningOp<ComposeRoutesCsrOp>()) {
    auto primary = composed.getPrimaryExpert().getDefiningOp<BatchwiseMaskOp>();
    auto secondary =
        composed.getSecondaryExpert().getDefiningOp<GroupedBatchwiseMaskOp>();
    if (composed.getExpert() != expert || !primary ||
        primary.getCombinedBatch() ||
        primary.getExpert() != composed.getPrimaryExpert() || !secondary ||
        secondary.getExpert() != composed.getSecondaryExpert())
      return std::nullopt;
    return static_cast<int64_t>(secondary.getM());
  }
  return std::nullopt;
}

/// The equal segment size of `expertOffset`'s plan, checked against the
/// plan's own sizes: n experts of m rows each make all n * m assignments.
std::optional<int64_t> equalSegmentRows(Value expertOffset) {
  auto plan = expertOffset.getDefiningOp<DispatchPlanOp>();
  if (!plan || plan.getExpertOffset() != expertOffset)
    return std::nullopt;
  std::optional<int64_t> rows = rowsPerExpertOf(plan.getExpert());
  int64_t experts = static_cast<int64_t>(plan.getNumExperts());
  if (!rows || experts * *rows != numElements(plan.getExpert()))
    return std::nullopt;
  return rows;
}

/// Marks `op` (a grouped matmul or its gradient) when its buffer is the
/// plan's n * m statically shaped rows.
template <typename GroupedOp> void mark(GroupedOp op) {
  auto buffer = cast<RankedTensorType>(op.getBuffer().getType());
  std::optional<int64_t> rows = equalSegmentRows(op.getExpertOffset());
  int64_t experts = numElements(op.getExpertOffset()) - 1;
  // Expert-parallel ranks multiply received rows ([?, d]): not marked.
  if (!rows || buffer.isDynamicDim(0) ||
      buffer.getDimSize(0) != experts * *rows)
    return;
  op.setRowsPerExpert(static_cast<uint64_t>(*rows));
}

struct MarkEqualSegmentsPass
    : public mlir::moe::impl::MarkEqualSegmentsBase<MarkEqualSegmentsPass> {
  void runOnOperation() override {
    getOperation().walk([](Operation *op) {
      if (auto matmul = dyn_cast<GroupedMatmulOp>(op))
        mark(matmul);
      else if (auto grad = dyn_cast<GroupedMatmulGradOp>(op))
        mark(grad);
    });
  }
};

} // namespace
