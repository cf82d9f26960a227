//===- RoutingOps.cpp - Gating, balancing losses and the fused router -----===//
//
// Routing always runs in f32. Gating noise is drawn only in training, from
// the op's rng stream at this step, so the backward pass and a resumed run
// see the same noise.
//
//===----------------------------------------------------------------------===//

#include "runtime/step/OpSupport.h"

#include "runtime/collectives/Collectives.h"

#include <algorithm>
#include <cstring>

namespace moe::rt::step {

namespace {

/// Appends the per-expert token counts of a plan to the call's statistics.
void recordExpertTokens(Context *ctx, const int32_t *expertOffset,
                        int64_t n) {
  if (!ctx->collectStats)
    return;
  std::vector<int32_t> offsets = toHost(ctx, expertOffset, n + 1);
  std::vector<int64_t> counts(static_cast<size_t>(n));
  for (int64_t e = 0; e < n; ++e)
    counts[e] = offsets[e + 1] - offsets[e];
  ctx->stats.expertTokens.push_back(std::move(counts));
}

} // namespace

/// Builds the plan of `assignments` slots; shared with DispatchOps.cpp.
void buildPlan(Context *ctx, const int32_t *rowPtr, const int32_t *expert,
               int32_t *expertOffset, int32_t *position, int32_t *token,
               int64_t assignments, int64_t n, int64_t tokens) {
  ScratchScope scratch(ctx);
  DispatchPlan plan;
  plan.numTokens = tokens;
  plan.numExperts = n;
  plan.numAssignments = assignments;
  plan.rowPtr = rowPtr;
  plan.expert = expert;
  plan.expertCount = scratch.get<int32_t>(n);
  plan.expertOffset = expertOffset;
  plan.positionOf = position;
  plan.tokenOfPosition = token;
  ctx->backend->buildDispatchPlan(plan);
  recordExpertTokens(ctx, expertOffset, n);
}

void noisyTopK(Context *ctx, const float *clean, const float *rawNoise,
               int32_t *expert, float *gate, float *noisy, float *noiseStd,
               float *topValues, int64_t tokens, int64_t n, int64_t k,
               float noiseEps, int64_t stream) {
  Context::RngPlace place = ctx->rngFor(stream, tokens * n);
  ctx->backend->noisyTopKForward(tokens, n, k, clean, rawNoise, noiseEps,
                                 ctx->training, ctx->seed, place.counter,
                                 noisy, noiseStd, topValues, expert, gate,
                                 place.elementOffset);
}

void noisyTopKGrad(Context *ctx, const float *clean, const float *rawNoise,
                   const float *noisy, const float *noiseStd,
                   const int32_t *expert, const float *gate,
                   const float *dGate, float *dClean, float *dRawNoise,
                   int64_t tokens, int64_t n, int64_t k) {
  ctx->backend->noisyTopKBackward(tokens, n, k, noisy, clean, rawNoise,
                                  noiseStd, expert, gate, dGate, dClean,
                                  rawNoise ? dRawNoise : nullptr);
}

void loadEstimate(Context *ctx, const float *clean, const float * /*rawNoise*/,
                  const float *noisy, const float *noiseStd,
                  const float *topValues, float *load, int64_t tokens,
                  int64_t n, int64_t k) {
  ctx->backend->loadEstimateForward(tokens, n, k, clean, noisy, noiseStd,
                                    topValues, load);
}

void loadEstimateGrad(Context *ctx, const float *clean, const float *rawNoise,
                      const float *noisy, const float *noiseStd,
                      const float *topValues, const float *dLoad,
                      float *dClean, float *dRawNoise, int64_t tokens,
                      int64_t n, int64_t k) {
  // The kernel accumulates; the op's results are fresh.
  ctx->backend->fill(dClean, 0.0f, tokens * n);
  ctx->backend->fill(dRawNoise, 0.0f, tokens * n);
  ctx->backend->loadEstimateBackward(tokens, n, k, clean, noisy, rawNoise,
                                     noiseStd, topValues, dLoad, dClean,
                                     dRawNoise);
}

void softmax(Context *ctx, const float *logits, float *probs, int64_t tokens,
             int64_t n) {
  ctx->backend->softmaxForward(tokens, n, logits, probs);
}

void softmaxGrad(Context *ctx, const float *probs, const float *dProbs,
                 float *dLogits, int64_t tokens, int64_t n) {
  ctx->backend->softmaxBackward(tokens, n, probs, dProbs, dLogits);
}

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
      b.fill(reinterpret_cast<float *>(expert + n * m), 0.0f,
             capacity - n * m);
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

void thresholdMask(Context *ctx, const float *logits, const float *thresholds,
                   int32_t *rowPtr, int32_t *expert, float *gate,
                   int64_t tokens, int64_t n, int64_t capacity) {
  ScratchScope scratch(ctx);
  float *mask = scratch.get<float>(tokens * n);
  int64_t assigned = 0;
  ctx->backend->thresholdMaskForward(tokens, n, logits, thresholds, mask,
                                     rowPtr, expert, gate, capacity, &assigned);
}

void maskedGateGrad(Context *ctx, const int32_t *rowPtr, const int32_t *expert,
                    const float *gate, const float *dGate, float *dLogits,
                    int64_t tokens, int64_t n) {
  ctx->backend->maskedGateBackward(tokens, n, rowPtr, expert, gate, dGate,
                                   dLogits);
}

void batchwiseThresholdLoss(Context *ctx, const float *logits,
                            const float *batchMask, const float *thresholds,
                            float *loss, int64_t tokens, int64_t n) {
  ctx->backend->batchwiseThresholdLossForward(tokens, n, logits, batchMask,
                                              thresholds, loss);
}

void batchwiseThresholdLossGrad(Context *ctx, const float *logits,
                                const float *batchMask,
                                const float *thresholds, const float *dLoss,
                                float *dThresholds, int64_t tokens,
                                int64_t n) {
  ctx->backend->batchwiseThresholdLossBackward(
      tokens, n, logits, batchMask, thresholds,
      static_cast<float>(ctx->hostScalar(dLoss)), dThresholds);
}

// Importance only sums gates by expert, so every assignment can be its own
// row of a one-per-row CSR list.
void importance(Context *ctx, const int32_t *expert, const float *gate,
                float *out, int64_t assignments, int64_t n) {
  ctx->backend->importanceForward(assignments, n,
                                  ctx->uniformRowPtr(assignments, 1), expert,
                                  gate, out);
}

void importanceGrad(Context *ctx, const int32_t *expert,
                    const float *dImportance, float *dGate,
                    int64_t assignments, int64_t n) {
  ctx->backend->importanceBackward(assignments, n,
                                   ctx->uniformRowPtr(assignments, 1), expert,
                                   dImportance, dGate);
}

void cvSquared(Context *ctx, const float *values, float *loss, int64_t n,
               float weight) {
  ctx->backend->cvSquaredForward(n, values, weight, loss);
}

void cvSquaredGrad(Context *ctx, const float *values, const float *dLoss,
                   float *dValues, int64_t n, float weight) {
  ctx->backend->cvSquaredBackward(n, values, weight,
                                  static_cast<float>(ctx->hostScalar(dLoss)),
                                  dValues);
}

void l2Balance(Context *ctx, const float *importance, float *loss, int64_t n,
               int64_t tokens, float weight) {
  ctx->backend->l2BalanceForward(tokens, n, importance, weight, loss);
}

void l2BalanceGrad(Context *ctx, const float *importance, const float *dLoss,
                   float *dImportance, int64_t n, int64_t tokens,
                   float weight) {
  ctx->backend->l2BalanceBackward(tokens, n, importance, weight,
                                  static_cast<float>(ctx->hostScalar(dLoss)),
                                  dImportance);
}

void composeRoutes(Context *ctx, const int32_t *primaryExpert,
                   const float *primaryGate, const int32_t *position,
                   const int32_t *secondaryExpert, const float *secondaryGate,
                   int32_t *expert, float *gate, int64_t primaryAssignments,
                   int64_t k, int64_t expertsPerGroup) {
  ctx->backend->composeRoutesForward(primaryAssignments, k, expertsPerGroup,
                                     primaryExpert, primaryGate, position,
                                     secondaryExpert, secondaryGate, expert,
                                     gate);
}

void composeRoutesGrad(Context *ctx, const float *primaryGate,
                       const int32_t *position, const float *secondaryGate,
                       const float *dGate, float *dPrimaryGate,
                       float *dSecondaryGate, int64_t primaryAssignments,
                       int64_t k) {
  ctx->backend->composeRoutesBackward(primaryAssignments, k, primaryGate,
                                      position, secondaryGate, dGate,
                                      dPrimaryGate, dSecondaryGate);
}

void fusedRoute(Context *ctx, const float *input, const float *gateWeights,
                const float *noiseWeights, float *clean, float *rawNoise,
                int32_t *expert, float *gate, float *noisy, float *noiseStd,
                float *topValues, float *load, float *importanceOut,
                int32_t *expertOffset, int32_t *position, int32_t *token,
                int64_t tokens, int64_t d, int64_t n, int64_t k,
                float noiseEps, int64_t stream) {
  Backend &b = *ctx->backend;
  b.gemm(false, false, tokens, n, d, 1.0f, input, d, gateWeights, n, 0.0f,
         clean, n, GemmPrecision::F32);
  b.gemm(false, false, tokens, n, d, 1.0f, input, d, noiseWeights, n, 0.0f,
         rawNoise, n, GemmPrecision::F32);
  Context::RngPlace place = ctx->rngFor(stream, tokens * n);
  b.noisyTopKForward(tokens, n, k, clean, rawNoise, noiseEps, ctx->training,
                     ctx->seed, place.counter, noisy, noiseStd, topValues,
                     expert, gate, place.elementOffset);
  b.loadEstimateForward(tokens, n, k, clean, noisy, noiseStd, topValues,
                        load);
  const int32_t *rowPtr = ctx->uniformRowPtr(tokens, k);
  b.importanceForward(tokens, n, rowPtr, expert, gate, importanceOut);
  buildPlan(ctx, rowPtr, expert, expertOffset, position, token, tokens * k, n,
            tokens);
}

//===----------------------------------------------------------------------===//
// Hierarchical layers: masks inside groups, CSR composition, Load_H
//===----------------------------------------------------------------------===//

void groupedBatchwiseMask(Context *ctx, const float *logits, float *mask,
                          int32_t *rowPtr, int32_t *expert, float *gate,
                          int64_t rows, int64_t n, int64_t groups, int64_t m) {
  ctx->backend->groupedBatchwiseMaskForward(groups, rows / groups, n, m, logits,
                                            mask, rowPtr, expert, gate);
}

void groupedThresholdMask(Context *ctx, const float *logits,
                          const float *thresholds, const int32_t *expertOffset,
                          int32_t *rowPtr, int32_t *expert, float *gate,
                          int64_t rows, int64_t n, int64_t groups,
                          int64_t capacity) {
  ScratchScope scratch(ctx);
  float *mask = scratch.get<float>(rows * n);
  int64_t assigned = 0;
  ctx->backend->groupedThresholdMaskForward(rows, groups, n, logits, thresholds,
                                            expertOffset, mask, rowPtr, expert,
                                            gate, capacity, &assigned);
}

void groupedBatchwiseThresholdLoss(Context *ctx, const float *logits,
                                   const float *batchMask,
                                   const float *thresholds, float *loss,
                                   int64_t rows, int64_t n, int64_t groups) {
  ctx->backend->groupedBatchwiseThresholdLossForward(
      groups, rows / groups, n, logits, batchMask, thresholds, loss);
}

void groupedBatchwiseThresholdLossGrad(Context *ctx, const float *logits,
                                       const float *batchMask,
                                       const float *thresholds,
                                       const float *dLoss, float *dThresholds,
                                       int64_t rows, int64_t n,
                                       int64_t groups) {
  ctx->backend->groupedBatchwiseThresholdLossBackward(
      groups, rows / groups, n, logits, batchMask, thresholds,
      static_cast<float>(ctx->hostScalar(dLoss)), dThresholds);
}

void composeRoutesCsr(Context *ctx, const int32_t *primaryRowPtr,
                      const int32_t *primaryExpert, const float *primaryGate,
                      const int32_t *position, const int32_t *secondaryRowPtr,
                      const int32_t *secondaryExpert,
                      const float *secondaryGate, int32_t *rowPtr,
                      int32_t *expert, float *gate, int64_t tokens,
                      int64_t primaryCapacity, int64_t secondaryCapacity,
                      int64_t expertsPerGroup) {
  ctx->backend->composeRoutesCsrForward(
      tokens, primaryCapacity, secondaryCapacity, expertsPerGroup,
      primaryRowPtr, primaryExpert, primaryGate, position, secondaryRowPtr,
      secondaryExpert, secondaryGate, rowPtr, expert, gate);
}

void composeRoutesCsrGrad(Context *ctx, const int32_t *rowPtr,
                          const int32_t *primaryRowPtr,
                          const float *primaryGate, const int32_t *position,
                          const int32_t *secondaryRowPtr,
                          const float *secondaryGate, const float *dGate,
                          float *dPrimaryGate, float *dSecondaryGate,
                          int64_t tokens, int64_t primaryCapacity,
                          int64_t secondaryCapacity) {
  ctx->backend->composeRoutesCsrBackward(
      tokens, primaryCapacity, secondaryCapacity, rowPtr, primaryRowPtr,
      primaryGate, position, secondaryRowPtr, secondaryGate, dGate,
      dPrimaryGate, dSecondaryGate);
}

void groupedLoadEstimate(Context *ctx, const float *clean,
                         const float * /*rawNoise*/, const float *noisy,
                         const float *noiseStd, const float *topValues,
                         const int32_t *expertOffset, float *load, int64_t rows,
                         int64_t n, int64_t groups, int64_t k) {
  ctx->backend->groupedLoadEstimateForward(rows, groups, n, k, expertOffset,
                                           clean, noisy, noiseStd, topValues,
                                           load);
}

void groupedLoadEstimateGrad(Context *ctx, const float *clean,
                             const float *rawNoise, const float *noisy,
                             const float *noiseStd, const float *topValues,
                             const int32_t *expertOffset, const float *dLoad,
                             float *dClean, float *dRawNoise, int64_t rows,
                             int64_t n, int64_t groups, int64_t k) {
  // The kernel accumulates, and rows of no group get no gradient.
  ctx->backend->fill(dClean, 0.0f, rows * n);
  ctx->backend->fill(dRawNoise, 0.0f, rows * n);
  ctx->backend->groupedLoadEstimateBackward(
      rows, groups, n, k, expertOffset, clean, noisy, rawNoise, noiseStd,
      topValues, dLoad, dClean, dRawNoise);
}

void hierarchicalLoad(Context *ctx, const float *primaryLoad,
                      const float *secondaryLoad, const int32_t *expertOffset,
                      float *load, int64_t groups, int64_t n) {
  ctx->backend->hierarchicalLoadForward(groups, n, expertOffset, primaryLoad,
                                        secondaryLoad, load);
}

void hierarchicalLoadGrad(Context *ctx, const float *primaryLoad,
                          const float *secondaryLoad,
                          const int32_t *expertOffset, const float *dLoad,
                          float *dPrimaryLoad, float *dSecondaryLoad,
                          int64_t groups, int64_t n) {
  ctx->backend->hierarchicalLoadBackward(groups, n, expertOffset, primaryLoad,
                                         secondaryLoad, dLoad, dPrimaryLoad,
                                         dSecondaryLoad);
}

} // namespace moe::rt::step
