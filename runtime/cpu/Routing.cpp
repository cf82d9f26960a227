//===- Routing.cpp - Gating kernels of the CPU backend --------------------===//
//
// Thin f32 entry points over the templates in kernels/RoutingKernels.h.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/CpuBackend.h"

#include "runtime/cpu/kernels/RoutingKernels.h"

namespace moe::rt {

void CpuBackend::noisyTopKForward(int64_t T, int64_t n, int64_t k,
                                  const float *clean, const float *rawNoise,
                                  float noiseEps, bool training, uint64_t seed,
                                  uint64_t counter, float *noisy,
                                  float *noiseStd, float *topValues,
                                  int32_t *expert, float *gate,
                                  uint64_t elementOffset) {
  cpu::noisyTopKForward(T, n, k, clean, rawNoise, noiseEps, training, seed,
                        counter, noisy, noiseStd, topValues, expert, gate,
                        elementOffset);
}

void CpuBackend::noisyTopKBackward(int64_t T, int64_t n, int64_t k,
                                   const float *noisy, const float *clean,
                                   const float *rawNoise, const float *noiseStd,
                                   const int32_t *expert, const float *gate,
                                   const float *dGate, float *dClean,
                                   float *dRawNoise) {
  cpu::noisyTopKBackward(T, n, k, noisy, clean, rawNoise, noiseStd, expert,
                         gate, dGate, dClean, dRawNoise);
}

void CpuBackend::loadEstimateForward(int64_t T, int64_t n, int64_t k,
                                     const float *clean, const float *noisy,
                                     const float *noiseStd,
                                     const float *topValues, float *load) {
  cpu::loadEstimateForward(T, n, k, clean, noisy, noiseStd, topValues, load);
}

void CpuBackend::loadEstimateBackward(
    int64_t T, int64_t n, int64_t k, const float *clean, const float *noisy,
    const float *rawNoise, const float *noiseStd, const float *topValues,
    const float *dLoad, float *dClean, float *dRawNoise) {
  cpu::loadEstimateBackward(T, n, k, clean, noisy, rawNoise, noiseStd,
                            topValues, dLoad, dClean, dRawNoise);
}

void CpuBackend::softmaxForward(int64_t T, int64_t n, const float *logits,
                                float *probs) {
  cpu::softmaxForward(T, n, logits, probs);
}

void CpuBackend::softmaxBackward(int64_t T, int64_t n, const float *probs,
                                 const float *dProbs, float *dLogits) {
  cpu::softmaxBackward(T, n, probs, dProbs, dLogits);
}

void CpuBackend::batchwiseMaskForward(int64_t T, int64_t n, int64_t m,
                                      const float *logits, float *mask,
                                      int32_t *rowPtr, int32_t *expert,
                                      float *gate) {
  cpu::batchwiseMaskForward(T, n, m, logits, mask, rowPtr, expert, gate);
}

void CpuBackend::thresholdMaskForward(int64_t T, int64_t n, const float *logits,
                                      const float *thresholds, float *mask,
                                      int32_t *rowPtr, int32_t *expert,
                                      float *gate, int64_t capacity,
                                      int64_t *numAssigned) {
  cpu::thresholdMaskForward(T, n, logits, thresholds, mask, rowPtr, expert,
                            gate, capacity, numAssigned);
}

void CpuBackend::maskAssignmentsForward(int64_t T, int64_t n,
                                        const float *logits, const float *mask,
                                        int32_t *rowPtr, int32_t *expert,
                                        float *gate, int64_t capacity,
                                        int64_t *numAssigned) {
  cpu::maskAssignmentsForward(T, n, logits, mask, rowPtr, expert, gate,
                              capacity, numAssigned);
}

void CpuBackend::maskedGateBackward(int64_t T, int64_t n, const int32_t *rowPtr,
                                    const int32_t *expert, const float *gate,
                                    const float *dGate, float *dLogits) {
  cpu::maskedGateBackward(T, n, rowPtr, expert, gate, dGate, dLogits);
}

void CpuBackend::batchwiseThresholdLossForward(int64_t T, int64_t n,
                                               const float *logits,
                                               const float *batchMask,
                                               const float *thresholds,
                                               float *loss) {
  cpu::batchwiseThresholdLossForward(T, n, logits, batchMask, thresholds, loss);
}

void CpuBackend::batchwiseThresholdLossBackward(
    int64_t T, int64_t n, const float *logits, const float *batchMask,
    const float *thresholds, float dLoss, float *dThresholds) {
  cpu::batchwiseThresholdLossBackward(T, n, logits, batchMask, thresholds,
                                      dLoss, dThresholds);
}

void CpuBackend::importanceForward(int64_t T, int64_t n, const int32_t *rowPtr,
                                   const int32_t *expert, const float *gate,
                                   float *importance) {
  cpu::importanceForward(T, n, rowPtr, expert, gate, importance);
}

void CpuBackend::importanceBackward(int64_t T, int64_t n, const int32_t *rowPtr,
                                    const int32_t *expert,
                                    const float *dImportance, float *dGate) {
  cpu::importanceBackward(T, n, rowPtr, expert, dImportance, dGate);
}

void CpuBackend::cvSquaredForward(int64_t n, const float *v, float weight,
                                  float *loss) {
  cpu::cvSquaredForward(n, v, weight, loss);
}

void CpuBackend::cvSquaredBackward(int64_t n, const float *v, float weight,
                                   float dLoss, float *dV) {
  cpu::cvSquaredBackward(n, v, weight, dLoss, dV);
}

void CpuBackend::l2BalanceForward(int64_t T, int64_t n, const float *importance,
                                  float weight, float *loss) {
  cpu::l2BalanceForward(T, n, importance, weight, loss);
}

void CpuBackend::l2BalanceBackward(int64_t T, int64_t n,
                                   const float *importance, float weight,
                                   float dLoss, float *dImportance) {
  cpu::l2BalanceBackward(T, n, importance, weight, dLoss, dImportance);
}

} // namespace moe::rt
