//===- RoutingOps.cpp - Gating and the fused router -----------------------===//
//
// The routing ops that are more than one kernel call (the others are direct
// kernels, runtime/Kernels.def; the batchwise mask is in
// CombinedBatchMask.cpp). Routing always runs in f32. Gating noise is drawn
// only in training, from the op's rng stream at this step, so the backward pass
// and a resumed run see the same noise.
//
//===----------------------------------------------------------------------===//

#include "runtime/step/OpSupport.h"

#include <algorithm>

namespace moe::rt::step {

void noisyTopK(Context *ctx, const float *clean, const float *rawNoise,
               const int32_t *noisePosition, int32_t *expert, float *gate,
               float *noisy, float *noiseStd, float *topValues, int64_t tokens,
               int64_t n, int64_t k, float noiseEps, int64_t stream) {
  Context::RngPlace place = ctx->rngFor(stream, tokens * n);
  ctx->backend->noisyTopKForward(tokens, n, k, clean, rawNoise, noiseEps,
                                 ctx->training, ctx->seed, place.counter, noisy,
                                 noiseStd, topValues, expert, gate,
                                 place.elementOffset, noisePosition);
}

void loadEstimateGrad(Context *ctx, const float *clean, const float *rawNoise,
                      const float *noisy, const float *noiseStd,
                      const float *topValues, const float *dLoad,
                      const int32_t *rowPtr, float *dClean, float *dRawNoise,
                      int64_t tokens, int64_t n, int64_t k) {
  // The kernel accumulates; the op's results are fresh.
  ctx->backend->fill(dClean, 0.0f, tokens * n);
  ctx->backend->fill(dRawNoise, 0.0f, tokens * n);
  ctx->backend->loadEstimateBackward(tokens, n, k, clean, noisy, rawNoise,
                                     noiseStd, topValues, rowPtr, dLoad, dClean,
                                     dRawNoise);
}

void dropPadding(Context *ctx, const int32_t *expert, const float *gate,
                 const int32_t *lengths, int32_t *rowPtr, int32_t *keptExpert,
                 float *keptGate, int64_t batch, int64_t time, int64_t k) {
  checkLengths(ctx, "drop_padding", lengths, batch, time);
  ctx->backend->dropPaddingForward(batch, time, k, lengths, expert, gate,
                                   rowPtr, keptExpert, keptGate);
}

void thresholdMask(Context *ctx, const float *logits, const float *thresholds,
                   int32_t *rowPtr, int32_t *expert, float *gate,
                   int64_t tokens, int64_t n, int64_t capacity) {
  ScratchScope scratch(ctx);
  float *mask = scratch.get<float>(tokens * n);
  ctx->backend->thresholdMaskForward(tokens, n, logits, thresholds, mask,
                                     rowPtr, expert, gate, capacity,
                                     /*numAssigned=*/nullptr);
}

void fusedRoute(Context *ctx, const float *input, const float *gateWeights,
                const float *noiseWeights, float *clean, float *rawNoise,
                int32_t *expert, float *gate, float *noisy, float *noiseStd,
                float *topValues, float *load, float *importanceOut,
                int32_t *expertOffset, int32_t *position, int32_t *token,
                int64_t tokens, int64_t d, int64_t n, int64_t k, float noiseEps,
                int64_t stream, GemmPrecision precision) {
  Backend &b = *ctx->backend;
  b.gemm(false, false, tokens, n, d, 1.0f, input, d, gateWeights, n, 0.0f,
         clean, n, precision);
  b.gemm(false, false, tokens, n, d, 1.0f, input, d, noiseWeights, n, 0.0f,
         rawNoise, n, precision);
  // One kernel from the logits to the plan, drawing noisyTopK's noise.
  Context::RngPlace place = ctx->rngFor(stream, tokens * n);
  b.fusedRouteForward(tokens, n, k, clean, rawNoise, noiseEps, ctx->training,
                      ctx->seed, place.counter, place.elementOffset, noisy,
                      noiseStd, topValues, expert, gate, load, importanceOut,
                      expertOffset, position, token);
  recordPlan(ctx, /*rowPtr=*/nullptr, expert, gate, expertOffset, tokens * k, n,
             tokens);
}

//===----------------------------------------------------------------------===//
// Hierarchical layers: masks inside groups, CSR composition, Load_H
//===----------------------------------------------------------------------===//

void groupedThresholdMask(Context *ctx, const float *logits,
                          const float *thresholds, const int32_t *expertOffset,
                          int32_t *rowPtr, int32_t *expert, float *gate,
                          int64_t rows, int64_t n, int64_t groups,
                          int64_t capacity) {
  ScratchScope scratch(ctx);
  float *mask = scratch.get<float>(rows * n);
  ctx->backend->groupedThresholdMaskForward(rows, groups, n, logits, thresholds,
                                            expertOffset, mask, rowPtr, expert,
                                            gate, capacity,
                                            /*numAssigned=*/nullptr);
}

std::vector<int32_t> groupOffsets(Context *ctx, const char *op,
                                  const int32_t *expertOffset, int64_t rows,
                                  int64_t groups) {
  std::vector<int32_t> offsets = toHost(ctx, expertOffset, groups + 1);
  if (offsets[0] != 0 || offsets[groups] > rows ||
      !std::is_sorted(offsets.begin(), offsets.end()))
    fail(op, "the group offsets are not increasing from 0 to at most " +
                 std::to_string(rows));
  return offsets;
}

void segmentedThresholdLoss(Context *ctx, const float *logits,
                            const float *batchMask, const float *thresholds,
                            const int32_t *expertOffset, float *loss,
                            int64_t rows, int64_t groups, int64_t n) {
  Backend &b = *ctx->backend;
  std::vector<int32_t> offsets = groupOffsets(
      ctx, "grouped_batchwise_threshold_loss", expertOffset, rows, groups);
  ScratchScope scratch(ctx);
  float *parts = scratch.get<float>(groups);
  for (int64_t g = 0; g < groups; ++g) {
    int64_t first = offsets[g] * n;
    b.batchwiseThresholdLossForward(offsets[g + 1] - offsets[g], n,
                                    logits + first, batchMask + first,
                                    thresholds + g * n, parts + g);
  }
  b.sumRows(groups, 1, parts, loss);
}

void segmentedThresholdLossGrad(Context *ctx, const float *logits,
                                const float *batchMask, const float *thresholds,
                                const float *dLoss, const int32_t *expertOffset,
                                float *dThresholds, int64_t rows,
                                int64_t groups, int64_t n) {
  Backend &b = *ctx->backend;
  std::vector<int32_t> offsets =
      groupOffsets(ctx, "grouped_batchwise_threshold_loss_grad", expertOffset,
                   rows, groups);
  for (int64_t g = 0; g < groups; ++g) {
    int64_t first = offsets[g] * n;
    b.batchwiseThresholdLossBackward(
        offsets[g + 1] - offsets[g], n, logits + first, batchMask + first,
        thresholds + g * n, dLoss, dThresholds + g * n);
  }
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

} // namespace moe::rt::step
