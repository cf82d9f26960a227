//===- Loss.cpp - Cross-entropy kernels of the CPU backend ----------------===//
//
// Thin f32 entry points over the templates in kernels/LossKernels.h.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/CpuBackend.h"

#include "runtime/cpu/kernels/LossKernels.h"

namespace moe::rt {

void CpuBackend::softmaxCrossEntropy(int64_t T, int64_t V, const float *logits,
                                     const int32_t *targets, float dLossSum,
                                     float *lossSum, float *dLogits,
                                     int64_t *numTokens) {
  cpu::softmaxCrossEntropy(T, V, logits, targets, dLossSum, lossSum, dLogits,
                           numTokens);
}

void CpuBackend::sampledSoftmaxCrossEntropy(
    int64_t T, int64_t d, int64_t V, int64_t S, const float *hidden,
    const float *weights, const float *bias, const int32_t *targets,
    uint64_t seed, uint64_t counter, float dLossSum, float *lossSum,
    float *dHidden, float *dWeights, float *dBias) {
  cpu::sampledSoftmaxCrossEntropy(T, d, V, S, hidden, weights, bias, targets,
                                  seed, counter, dLossSum, lossSum, dHidden,
                                  dWeights, dBias);
}

} // namespace moe::rt
