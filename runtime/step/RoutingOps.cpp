//===- RoutingOps.cpp - Gating, balancing losses and the fused router -----===//
//
// Routing always runs in f32. Gating noise is drawn only in training, from
// the op's rng stream at this step, so the backward pass and a resumed run
// see the same noise.
//
//===----------------------------------------------------------------------===//

#include "runtime/step/OpSupport.h"

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

void batchwiseMask(Context *ctx, const float *logits, float *mask,
                   int32_t *rowPtr, int32_t *expert, float *gate,
                   int64_t tokens, int64_t n, int64_t m) {
  ctx->backend->batchwiseMaskForward(tokens, n, m, logits, mask, rowPtr,
                                     expert, gate);
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
