//===- CombinedBatchMask.cpp - Batchwise masks over all ranks' batches ----===//
//
// A batchwise mask (Appendix A) keeps each expert's top m tokens of the
// batch. In data-parallel training the batch is every rank's: each expert
// keeps the top m R tokens of the combined batch, ties to the lower (rank,
// token), exactly as one rank of the concatenated batch would choose; the
// secondary level of a hierarchical layer does the same inside each group
// (the rows the primary level sent there from every rank). The
// ranking runs on the host: a bisection over the probabilities' bits with
// the ranks' counts all-reduced at every round (a copy of [T, n] per call;
// moving it to the device is issue 15's work).
//
//===----------------------------------------------------------------------===//

#include "runtime/step/OpSupport.h"

#include "runtime/collectives/Collectives.h"

#include <algorithm>
#include <cstring>

namespace moe::rt::step {

namespace {

/// The mask [rows, n] of the combined batch's batchwise ranking, on the
/// host. Rows [offsets[g], offsets[g + 1]) form group g (one group of
/// every row for a flat layer); column j of group g keeps the M = m R
/// largest probabilities among group g's rows of all ranks, ties to the
/// lower (rank, row), as one rank of the concatenated batch would choose
/// (its group-major rows are the ranks' segments in rank order). Per
/// column, the M-th largest value is found by bisection on the float's
/// bits (probabilities are non-negative, so their bit patterns are ordered
/// like the values), with the ranks' counts summed at every round; then
/// each rank takes its share of the ties in rank order. Rows outside the
/// segments keep nothing.
std::vector<float> combinedBatchMask(Context *ctx,
                                     const std::vector<float> &probs, int64_t n,
                                     int64_t m,
                                     const std::vector<int64_t> &offsets) {
  // One rank (a data-parallel package run alone) has no collectives.
  Collectives *ranks = ctx->ranks() > 1 ? ctx->collectives : nullptr;
  int size = ctx->ranks(), rank = ctx->rank();
  int64_t total = m * size;
  int64_t columns = static_cast<int64_t>(offsets.size() - 1) * n;
  std::vector<uint32_t> bits(probs.size());
  for (size_t i = 0; i < probs.size(); ++i)
    std::memcpy(&bits[i], &probs[i], sizeof(uint32_t));
  // Calls visit(column, element) for each column's rows in order.
  auto forEach = [&](auto &&visit) {
    for (size_t g = 0; g + 1 < offsets.size(); ++g)
      for (int64_t r = offsets[g]; r < offsets[g + 1]; ++r)
        for (int64_t j = 0; j < n; ++j)
          visit(static_cast<int64_t>(g) * n + j, r * n + j);
  };
  // count(>= lo) >= M > count(>= hi) for every column.
  std::vector<int64_t> lo(static_cast<size_t>(columns), 0),
      hi(static_cast<size_t>(columns), int64_t(0x3f800001));
  std::vector<int64_t> counts(static_cast<size_t>(columns));
  auto countAtLeast = [&](const std::vector<int64_t> &bound) {
    std::fill(counts.begin(), counts.end(), 0);
    forEach([&](int64_t c, int64_t e) {
      counts[c] += bits[e] >= static_cast<uint64_t>(bound[c]);
    });
    if (ranks)
      ranks->allReduceSum(counts.data(), columns);
  };
  std::vector<int64_t> mid(static_cast<size_t>(columns));
  for (int round = 0; round < 31; ++round) {
    for (int64_t c = 0; c < columns; ++c)
      mid[c] = (lo[c] + hi[c]) / 2;
    countAtLeast(mid);
    for (int64_t c = 0; c < columns; ++c)
      (counts[c] >= total ? lo[c] : hi[c]) = mid[c];
  }
  // lo = the M-th largest value's bits; strictly larger values all stay.
  std::vector<int64_t> above(static_cast<size_t>(columns));
  for (int64_t c = 0; c < columns; ++c)
    above[c] = lo[c] + 1;
  countAtLeast(above);
  std::vector<int64_t> equal(static_cast<size_t>(columns), 0);
  forEach([&](int64_t c, int64_t e) {
    equal[c] += bits[e] == static_cast<uint64_t>(lo[c]);
  });
  std::vector<int64_t> everyEqual = equal;
  if (ranks) {
    everyEqual.resize(static_cast<size_t>(columns * size));
    ranks->allGather(equal.data(), sizeof(int64_t) * columns,
                     everyEqual.data());
  }
  std::vector<int64_t> take(static_cast<size_t>(columns));
  for (int64_t c = 0; c < columns; ++c) {
    int64_t ties = total - counts[c], before = 0;
    for (int r = 0; r < rank; ++r)
      before += everyEqual[r * columns + c];
    take[c] = std::clamp<int64_t>(ties - before, 0, equal[c]);
  }
  std::vector<float> mask(probs.size(), 0.0f);
  forEach([&](int64_t c, int64_t e) {
    uint64_t b = bits[e];
    if (b > static_cast<uint64_t>(lo[c]))
      mask[e] = 1.0f;
    else if (b == static_cast<uint64_t>(lo[c]) && take[c] > 0) {
      mask[e] = 1.0f;
      --take[c];
    }
  });
  return mask;
}

/// The combined batch's mask of `logits` [rows, n] in the groups of
/// `offsets`, in assignment form into `capacity` slots.
void maskOverRanks(Context *ctx, const float *logits, float *mask,
                   int32_t *rowPtr, int32_t *expert, float *gate, int64_t rows,
                   int64_t n, int64_t m, int64_t capacity,
                   const std::vector<int64_t> &offsets) {
  Backend &b = *ctx->backend;
  ScratchScope scratch(ctx);
  float *probs = scratch.get<float>(rows * n);
  b.softmaxForward(rows, n, logits, probs);
  std::vector<float> hostMask =
      combinedBatchMask(ctx, toHost(ctx, probs, rows * n), n, m, offsets);
  b.copyFromHost(mask, hostMask.data(), hostMask.size() * sizeof(float));
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
  maskOverRanks(ctx, logits, mask, rowPtr, expert, gate, tokens, n, m, capacity,
                {0, tokens});
}

void groupedBatchwiseMask(Context *ctx, const float *logits,
                          const int32_t *expertOffset, float *mask,
                          int32_t *rowPtr, int32_t *expert, float *gate,
                          int64_t rows, int64_t n, int64_t groups, int64_t m,
                          int64_t capacity) {
  std::vector<int32_t> offsets = groupOffsets(ctx, "grouped_batchwise_mask",
                                              expertOffset, rows, groups);
  maskOverRanks(ctx, logits, mask, rowPtr, expert, gate, rows, n, m, capacity,
                std::vector<int64_t>(offsets.begin(), offsets.end()));
}

} // namespace moe::rt::step
