//===- PlanBuffers.cpp - Liveness-based buffer reuse ----------------------===//
//
// Places every tensor of a straight-line function at an offset of one arena
// so that tensors with disjoint lifetimes share memory. See the pass
// description in Passes.td.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "dialect/MoEOps.h"
#include "passes/BufferPlan.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/Support/CheckedArithmetic.h"
#include "llvm/Support/Format.h"

#include <map>

namespace mlir::moe {
#define GEN_PASS_DEF_PLANBUFFERS
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

#define DEBUG_TYPE "moe-plan-buffers"

namespace {

std::string formatBytes(int64_t bytes) {
  std::string text;
  llvm::raw_string_ostream os(text);
  if (bytes >= (int64_t(1) << 30))
    os << llvm::format("%.1f GiB", bytes / double(int64_t(1) << 30));
  else if (bytes >= (1 << 20))
    os << llvm::format("%.1f MiB", bytes / double(1 << 20));
  else
    os << llvm::format("%.1f KiB", bytes / 1024.0);
  return text;
}

/// First-fit allocation of intervals of one arena.
class Arena {
public:
  /// std::nullopt when the arena would outgrow int64_t.
  std::optional<int64_t> allocate(int64_t bytes) {
    for (auto it = free.begin(); it != free.end(); ++it) {
      if (it->second < bytes)
        continue;
      int64_t offset = it->first, size = it->second;
      free.erase(it);
      if (size > bytes)
        free[offset + bytes] = size - bytes;
      return offset;
    }
    // Grow: reuse a free block that ends at the top.
    int64_t offset = top;
    if (!free.empty()) {
      auto last = std::prev(free.end());
      if (last->first + last->second == top) {
        offset = last->first;
        free.erase(last);
      }
    }
    std::optional<int64_t> newTop = llvm::checkedAdd(offset, bytes);
    if (!newTop)
      return std::nullopt;
    top = *newTop;
    return offset;
  }

  void release(int64_t offset, int64_t bytes) {
    auto [it, inserted] = free.emplace(offset, bytes);
    (void)inserted;
    // Merge with the neighbours so large buffers can reuse the space.
    auto next = std::next(it);
    if (next != free.end() && it->first + it->second == next->first) {
      it->second += next->second;
      free.erase(next);
    }
    if (it != free.begin()) {
      auto prev = std::prev(it);
      if (prev->first + prev->second == it->first) {
        prev->second += it->second;
        free.erase(it);
      }
    }
  }

  int64_t size() const { return top; }

private:
  std::map<int64_t, int64_t> free; ///< offset -> size
  int64_t top = 0;
};

struct PlanBuffersPass
    : public mlir::moe::impl::PlanBuffersBase<PlanBuffersPass> {
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (!func.getBody().hasOneBlock())
      return;
    Block &body = func.getBody().front();

    BufferLiveness liveness(body);

    // Buffers die after their last use; allocate in definition order.
    std::multimap<int64_t, std::pair<int64_t, int64_t>> deaths;
    Arena arena;
    int64_t buffers = 0, unshared = 0, live = 0, peak = 0;
    Builder b(&getContext());
    for (Operation &op : body) {
      int64_t here = liveness.index.lookup(&op);
      for (auto it = deaths.begin(); it != deaths.end() && it->first < here;
           it = deaths.erase(it)) {
        arena.release(it->second.first, it->second.second);
        live -= it->second.second;
      }
      if (!BufferLiveness::allocates(op))
        continue;
      SmallVector<int64_t> offsets;
      for (auto [i, result] : llvm::enumerate(op.getResults())) {
        // Sizes known only when the graph runs (rows received from other
        // ranks, a rank's shard of the experts) live in the call's pool.
        if (isPoolAllocated(result.getType())) {
          offsets.push_back(kPoolOffset);
          continue;
        }
        std::optional<int64_t> bytes = plannedBufferBytes(result);
        std::optional<int64_t> offset =
            bytes ? arena.allocate(*bytes) : std::nullopt;
        if (!offset) {
          op.emitOpError("result #")
              << i << " of type " << result.getType()
              << " does not fit in an arena of @" << func.getSymName()
              << ": its size or the arena's reaches 2^63 bytes";
          return signalPassFailure();
        }
        offsets.push_back(*offset);
        ++buffers;
        // Only the remark reads the total without reuse: saturate it.
        unshared = llvm::checkedAdd(unshared, *bytes).value_or(INT64_MAX);
        live += *bytes; // <= the arena's size: live buffers are disjoint
        peak = std::max(peak, live);
        // Unused results die at once; returned ones at the terminator.
        deaths.emplace(liveness.death(result), std::make_pair(*offset, *bytes));
      }
      op.setAttr("moe.offsets", b.getDenseI64ArrayAttr(offsets));
    }
    func->setAttr("moe.arena_bytes", b.getI64IntegerAttr(arena.size()));
    // A located remark, not an op remark: the summary without an IR dump.
    emitRemark(func.getLoc())
        << "moe-plan-buffers: @" << func.getSymName() << ": " << buffers
        << " buffers, "
        << formatBytes(unshared) << " without reuse, arena "
        << formatBytes(arena.size()) << " (peak live " << formatBytes(peak)
        << ")";
  }
};

} // namespace
