//===- CombinedBatchMask.cpp - Batchwise masks over all ranks' batches ----===//
//
// A batchwise mask (Appendix A) keeps each expert's top m tokens of the
// batch. In data-parallel training the batch is every rank's: each expert
// keeps the top m R tokens of the combined batch, ties to the lower (rank,
// token), exactly as one rank of the concatenated batch would choose; the
// secondary level of a hierarchical layer does the same inside each group
// (the rows the primary level sent there from every rank). The ranking is
// a bisection over the probabilities' bits on the backend (the device on
// CUDA), with only the ranks' per-column counts all-reduced at every round
// and a few per-column numbers read to the host for the ties.
//
//===----------------------------------------------------------------------===//

#include "runtime/step/OpSupport.h"

#include "runtime/collectives/Collectives.h"

#include <algorithm>
#include <cstring>

namespace moe::rt::step {

namespace {

/// The mask [rows, n] of the combined batch's batchwise ranking of probs
/// [rows, n], both backend memory. Rows [offsets[g], offsets[g + 1])
/// (backend memory, [groups + 1]) form group g (one group of every row for
/// a flat layer); column j of group g keeps the M = m R largest
/// probabilities among group g's rows of all ranks, ties to the lower
/// (rank, row), as one rank of the concatenated batch would choose (its
/// group-major rows are the ranks' segments in rank order). Per column,
/// the M-th largest value is found by bisection on the float's bits
/// (probabilities are non-negative, so their bit patterns are ordered like
/// the values), with the ranks' counts summed at every round; then each
/// rank takes its share of the ties in rank order. Rows outside the
/// segments keep nothing.
void combinedBatchMask(Context *ctx, const float *probs, int64_t rows,
                       int64_t n, int64_t m, int64_t groups,
                       const int32_t *offsets, float *mask) {
  Backend &b = *ctx->backend;
  // One rank (a data-parallel package run alone) has no collectives.
  Collectives *ranks = ctx->ranks() > 1 ? ctx->collectives : nullptr;
  const int size = ctx->ranks(), rank = ctx->rank();
  const int64_t total = m * size, columns = groups * n;
  ScratchScope scratch(ctx);
  int64_t *lo = scratch.get<int64_t>(columns);
  int64_t *hi = scratch.get<int64_t>(columns);
  int64_t *counts = scratch.get<int64_t>(columns);
  int64_t *bound = scratch.get<int64_t>(columns);
  int64_t *everyEqual = scratch.get<int64_t>(columns * size);
  auto upload = [&](int64_t *to, const std::vector<int64_t> &from) {
    b.copyFromHost(to, from.data(), from.size() * sizeof(int64_t));
  };
  // count(>= lo) >= M > count(>= hi) for every column: lo = 0, hi = one
  // past 1.0f's bits.
  upload(lo, std::vector<int64_t>(columns, 0));
  upload(hi, std::vector<int64_t>(columns, int64_t(0x3f800001)));
  // The collectives may run on a stream of their own (NCCL): the counts
  // must be complete before they are summed.
  auto allReduce = [&](int64_t *data) {
    b.synchronize();
    ranks->allReduceSum(data, columns);
  };
  for (int round = 0; round < 31; ++round) {
    b.countAtLeastMidpoint(rows, n, groups, offsets, probs, lo, hi, counts);
    if (ranks)
      allReduce(counts);
    b.narrowBisection(columns, total, counts, lo, hi);
  }
  // lo = the M-th largest value's bits: strictly larger values all stay,
  // and of those equal to it this rank keeps what the lower ranks leave.
  std::vector<int64_t> strictly = toHost(ctx, lo, columns);
  for (int64_t &t : strictly)
    ++t;
  upload(bound, strictly);
  b.countAtLeastMidpoint(rows, n, groups, offsets, probs, bound, bound, counts);
  std::vector<int64_t> localAbove = toHost(ctx, counts, columns);
  b.countAtLeastMidpoint(rows, n, groups, offsets, probs, lo, lo, bound);
  std::vector<int64_t> equal = toHost(ctx, bound, columns);
  for (int64_t c = 0; c < columns; ++c)
    equal[c] -= localAbove[c];
  std::vector<int64_t> above = localAbove, ties = equal;
  if (ranks) {
    allReduce(counts);
    above = toHost(ctx, counts, columns);
    upload(bound, equal);
    b.synchronize();
    ranks->allGather(bound, sizeof(int64_t) * columns, everyEqual);
    ties = toHost(ctx, everyEqual, columns * size);
  }
  std::vector<int64_t> take(static_cast<size_t>(columns));
  for (int64_t c = 0; c < columns; ++c) {
    int64_t before = 0;
    for (int r = 0; r < rank; ++r)
      before += ties[r * columns + c];
    take[c] = std::clamp<int64_t>(total - above[c] - before, 0, equal[c]);
  }
  upload(bound, take);
  b.selectAboveThreshold(rows, n, groups, offsets, probs, lo, bound, mask);
}

/// The combined batch's mask of `logits` [rows, n] in the `groups` groups
/// of `offsets` (backend memory), in assignment form into `capacity`
/// slots.
void maskOverRanks(Context *ctx, const float *logits, float *mask,
                   int32_t *rowPtr, int32_t *expert, float *gate, int64_t rows,
                   int64_t n, int64_t m, int64_t capacity, int64_t groups,
                   const int32_t *offsets) {
  Backend &b = *ctx->backend;
  ScratchScope scratch(ctx);
  float *probs = scratch.get<float>(rows * n);
  b.softmaxForward(rows, n, logits, probs);
  combinedBatchMask(ctx, probs, rows, n, m, groups, offsets, mask);
  b.maskAssignmentsForward(rows, n, logits, mask, rowPtr, expert, gate,
                           capacity, nullptr);
}

} // namespace

void batchwiseMask(Context *ctx, const float *logits, float *mask,
                   int32_t *rowPtr, int32_t *expert, float *gate,
                   int64_t tokens, int64_t n, int64_t m, int64_t capacity,
                   bool combinedBatch) {
  Backend &b = *ctx->backend;
  if (!combinedBatch || ctx->ranks() == 1) {
    if (capacity < n * m)
      fail("batchwise_mask", "room for " + std::to_string(capacity) +
                                 " assignments, the mask makes " +
                                 std::to_string(n * m));
    b.batchwiseMaskForward(tokens, n, m, logits, mask, rowPtr, expert, gate);
    if (capacity > n * m) {
      // All-zero bits: expert 0, gate 0 in the slots one rank leaves free.
      b.fill(reinterpret_cast<float *>(expert + n * m), 0.0f, capacity - n * m);
      b.fill(gate + n * m, 0.0f, capacity - n * m);
    }
    return;
  }
  ScratchScope scratch(ctx);
  int32_t *offsets = scratch.get<int32_t>(2);
  const int32_t whole[2] = {0, static_cast<int32_t>(tokens)};
  b.copyFromHost(offsets, whole, sizeof(whole));
  maskOverRanks(ctx, logits, mask, rowPtr, expert, gate, tokens, n, m, capacity,
                /*groups=*/1, offsets);
}

void groupedBatchwiseMask(Context *ctx, const float *logits,
                          const int32_t *expertOffset, float *mask,
                          int32_t *rowPtr, int32_t *expert, float *gate,
                          int64_t rows, int64_t n, int64_t groups, int64_t m,
                          int64_t capacity) {
  // Checked on the host (groups + 1 numbers), used where they are.
  groupOffsets(ctx, "grouped_batchwise_mask", expertOffset, rows, groups);
  maskOverRanks(ctx, logits, mask, rowPtr, expert, gate, rows, n, m, capacity,
                groups, expertOffset);
}

} // namespace moe::rt::step
