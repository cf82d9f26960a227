//===- Hierarchy.cpp - Hierarchical MoE kernels of the CPU backend --------===//
//
// f32 entry points over the templates in kernels/HierarchyKernels.h.
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

} // namespace moe::rt
