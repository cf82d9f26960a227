//===- CombinedBatchMask.cpp - Batchwise masks over all ranks' batches ----===//
//
// A batchwise mask (Appendix A) keeps each expert's top m tokens of the
// batch. In data-parallel training the batch is every rank's: each expert
// keeps the top m R tokens of the combined batch, ties to the lower (rank,
// token), exactly as one rank of the concatenated batch would choose. The
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

/// The mask [T, n] of the combined batch's batchwise ranking, on the host:
/// expert i keeps the M = m R largest probabilities over all ranks, ties
/// to the lower (rank, token), as one rank of the concatenated batch would
/// choose. Per expert, the M-th largest value is found by bisection on the
/// float's bits (probabilities are non-negative, so their bit patterns are
/// ordered like the values), with the ranks' counts summed at every
/// round; then each rank takes its share of the ties in rank order.
std::vector<float> combinedBatchMask(Context *ctx,
                                     const std::vector<float> &probs,
                                     int64_t tokens, int64_t n, int64_t m) {
  Collectives &ranks = *ctx->collectives;
  int64_t total = m * ranks.size();
  std::vector<uint32_t> bits(probs.size());
  for (size_t i = 0; i < probs.size(); ++i)
    std::memcpy(&bits[i], &probs[i], sizeof(uint32_t));
  // count(>= lo) >= M > count(>= hi) for every expert.
  std::vector<int64_t> lo(static_cast<size_t>(n), 0),
      hi(static_cast<size_t>(n), int64_t(0x3f800001));
  std::vector<int64_t> counts(static_cast<size_t>(n));
  auto countAtLeast = [&](const std::vector<int64_t> &bound) {
    std::fill(counts.begin(), counts.end(), 0);
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t i = 0; i < n; ++i)
        counts[i] += bits[t * n + i] >= static_cast<uint64_t>(bound[i]);
    ranks.allReduceSum(counts.data(), n);
  };
  std::vector<int64_t> mid(static_cast<size_t>(n));
  for (int round = 0; round < 31; ++round) {
    for (int64_t i = 0; i < n; ++i)
      mid[i] = (lo[i] + hi[i]) / 2;
    countAtLeast(mid);
    for (int64_t i = 0; i < n; ++i)
      (counts[i] >= total ? lo[i] : hi[i]) = mid[i];
  }
  // lo = the M-th largest value's bits; strictly larger values all stay.
  std::vector<int64_t> above(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    above[i] = lo[i] + 1;
  countAtLeast(above);
  std::vector<int64_t> equal(static_cast<size_t>(n), 0);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t i = 0; i < n; ++i)
      equal[i] += bits[t * n + i] == static_cast<uint64_t>(lo[i]);
  std::vector<int64_t> everyEqual(static_cast<size_t>(n * ranks.size()));
  ranks.allGather(equal.data(), sizeof(int64_t) * n, everyEqual.data());
  std::vector<int64_t> take(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    int64_t ties = total - counts[i], before = 0;
    for (int r = 0; r < ranks.rank(); ++r)
      before += everyEqual[r * n + i];
    take[i] = std::clamp<int64_t>(ties - before, 0, equal[i]);
  }
  std::vector<float> mask(probs.size(), 0.0f);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t i = 0; i < n; ++i) {
      uint64_t b = bits[t * n + i];
      if (b > static_cast<uint64_t>(lo[i]))
        mask[t * n + i] = 1.0f;
      else if (b == static_cast<uint64_t>(lo[i]) && take[i] > 0) {
        mask[t * n + i] = 1.0f;
        --take[i];
      }
    }
  return mask;
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
  float *probs = scratch.get<float>(tokens * n);
  b.softmaxForward(tokens, n, logits, probs);
  std::vector<float> hostMask =
      combinedBatchMask(ctx, toHost(ctx, probs, tokens * n), tokens, n, m);
  b.copyFromHost(mask, hostMask.data(), hostMask.size() * sizeof(float));
  b.maskAssignmentsForward(tokens, n, logits, mask, rowPtr, expert, gate,
                           capacity, nullptr);
}

} // namespace moe::rt::step
