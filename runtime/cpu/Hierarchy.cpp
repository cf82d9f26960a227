//===- Hierarchy.cpp - Hierarchical MoE kernels of the CPU backend --------===//
//
// f32 entry points over the templates in kernels/HierarchyKernels.h: route
// composition (top-k and CSR), the secondary-level masks and threshold loss
// of batchwise hierarchies, and the hierarchical load estimate.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/CpuBackend.h"

#include "runtime/cpu/kernels/HierarchyKernels.h"

namespace moe::rt {

void CpuBackend::composeRoutesForward(
    int64_t A1, int64_t k, int64_t expertsPerGroup,
    const int32_t *primaryExpert, const float *primaryGate,
    const int32_t *position, const int32_t *secondaryExpert,
    const float *secondaryGate, int32_t *expert, float *gate) {
  cpu::composeRoutesForward(A1, k, expertsPerGroup, primaryExpert, primaryGate,
                            position, secondaryExpert, secondaryGate, expert,
                            gate);
}

void CpuBackend::composeRoutesBackward(int64_t A1, int64_t k,
                                       const float *primaryGate,
                                       const int32_t *position,
                                       const float *secondaryGate,
                                       const float *dGate, float *dPrimaryGate,
                                       float *dSecondaryGate) {
  cpu::composeRoutesBackward(A1, k, primaryGate, position, secondaryGate, dGate,
                             dPrimaryGate, dSecondaryGate);
}

void CpuBackend::groupedBatchwiseMaskForward(int64_t groups,
                                             int64_t rowsPerGroup, int64_t n,
                                             int64_t m, const float *logits,
                                             float *mask, int32_t *rowPtr,
                                             int32_t *expert, float *gate) {
  cpu::groupedBatchwiseMaskForward(groups, rowsPerGroup, n, m, logits, mask,
                                   rowPtr, expert, gate);
}

void CpuBackend::groupedThresholdMaskForward(
    int64_t R, int64_t groups, int64_t n, const float *logits,
    const float *thresholds, const int32_t *groupOffset, float *mask,
    int32_t *rowPtr, int32_t *expert, float *gate, int64_t capacity,
    int64_t *numAssigned) {
  cpu::groupedThresholdMaskForward(R, groups, n, logits, thresholds,
                                   groupOffset, mask, rowPtr, expert, gate,
                                   capacity, numAssigned);
}

void CpuBackend::groupedBatchwiseThresholdLossForward(
    int64_t groups, int64_t rowsPerGroup, int64_t n, const float *logits,
    const float *batchMask, const float *thresholds, float *loss) {
  cpu::groupedBatchwiseThresholdLossForward(groups, rowsPerGroup, n, logits,
                                            batchMask, thresholds, loss);
}

void CpuBackend::groupedBatchwiseThresholdLossBackward(
    int64_t groups, int64_t rowsPerGroup, int64_t n, const float *logits,
    const float *batchMask, const float *thresholds, float dLoss,
    float *dThresholds) {
  cpu::groupedBatchwiseThresholdLossBackward(groups, rowsPerGroup, n, logits,
                                             batchMask, thresholds, dLoss,
                                             dThresholds);
}

void CpuBackend::composeRoutesCsrForward(
    int64_t T, int64_t A1, int64_t A2, int64_t expertsPerGroup,
    const int32_t *primaryRowPtr, const int32_t *primaryExpert,
    const float *primaryGate, const int32_t *position,
    const int32_t *secondaryRowPtr, const int32_t *secondaryExpert,
    const float *secondaryGate, int32_t *rowPtr, int32_t *expert, float *gate) {
  cpu::composeRoutesCsrForward(T, A1, A2, expertsPerGroup, primaryRowPtr,
                               primaryExpert, primaryGate, position,
                               secondaryRowPtr, secondaryExpert, secondaryGate,
                               rowPtr, expert, gate);
}

void CpuBackend::composeRoutesCsrBackward(
    int64_t T, int64_t A1, int64_t A2, const int32_t *rowPtr,
    const int32_t *primaryRowPtr, const float *primaryGate,
    const int32_t *position, const int32_t *secondaryRowPtr,
    const float *secondaryGate, const float *dGate, float *dPrimaryGate,
    float *dSecondaryGate) {
  cpu::composeRoutesCsrBackward(T, A1, A2, rowPtr, primaryRowPtr, primaryGate,
                                position, secondaryRowPtr, secondaryGate, dGate,
                                dPrimaryGate, dSecondaryGate);
}

void CpuBackend::groupedLoadEstimateForward(
    int64_t R, int64_t groups, int64_t n, int64_t k, const int32_t *groupOffset,
    const float *clean, const float *noisy, const float *noiseStd,
    const float *topValues, float *load) {
  cpu::groupedLoadEstimateForward(R, groups, n, k, groupOffset, clean, noisy,
                                  noiseStd, topValues, load);
}

void CpuBackend::groupedLoadEstimateBackward(
    int64_t R, int64_t groups, int64_t n, int64_t k, const int32_t *groupOffset,
    const float *clean, const float *noisy, const float *rawNoise,
    const float *noiseStd, const float *topValues, const float *dLoad,
    float *dClean, float *dRawNoise) {
  cpu::groupedLoadEstimateBackward(R, groups, n, k, groupOffset, clean, noisy,
                                   rawNoise, noiseStd, topValues, dLoad, dClean,
                                   dRawNoise);
}

void CpuBackend::hierarchicalLoadForward(int64_t groups, int64_t n,
                                         const int32_t *groupOffset,
                                         const float *primaryLoad,
                                         const float *secondaryLoad,
                                         float *load) {
  cpu::hierarchicalLoadForward(groups, n, groupOffset, primaryLoad,
                               secondaryLoad, load);
}

void CpuBackend::hierarchicalLoadBackward(
    int64_t groups, int64_t n, const int32_t *groupOffset,
    const float *primaryLoad, const float *secondaryLoad, const float *dLoad,
    float *dPrimaryLoad, float *dSecondaryLoad) {
  cpu::hierarchicalLoadBackward(groups, n, groupOffset, primaryLoad,
                                secondaryLoad, dLoad, dPrimaryLoad,
                                dSecondaryLoad);
}

} // namespace moe::rt
