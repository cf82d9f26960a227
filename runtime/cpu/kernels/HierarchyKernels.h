//===- HierarchyKernels.h - Two-level routing composition ------*- C++ -*-===//
//
// Templates over the scalar type (float in the backend, double in the
// gradient tests) for hierarchical MoE: composing the primary (group) and
// secondary (expert within group) selections into one assignment list.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_CPU_KERNELS_HIERARCHYKERNELS_H
#define MOE_RUNTIME_CPU_KERNELS_HIERARCHYKERNELS_H

#include "runtime/Checks.h"

#include <cstdint>

namespace moe::rt::cpu {

/// expert[a*k+s] = primaryExpert[a] * expertsPerGroup + local id,
/// gate[a*k+s] = primaryGate[a] * secondaryGate[position[a], s].
template <typename T>
void composeRoutesForward(int64_t assignments, int64_t k,
                          int64_t expertsPerGroup, const int32_t *primaryExpert,
                          const T *primaryGate, const int32_t *position,
                          const int32_t *secondaryExpert,
                          const T *secondaryGate, int32_t *expert, T *gate) {
  checkComposeShape("composeRoutesForward", assignments, k);
#pragma omp parallel for schedule(static) if (assignments * k > (1 << 15))
  for (int64_t a = 0; a < assignments; ++a) {
    int64_t row = position[a];
    int32_t base = static_cast<int32_t>(primaryExpert[a] * expertsPerGroup);
    for (int64_t s = 0; s < k; ++s) {
      expert[a * k + s] = base + secondaryExpert[row * k + s];
      gate[a * k + s] = primaryGate[a] * secondaryGate[row * k + s];
    }
  }
}

/// The product rule over each composed gate; position is a permutation,
/// so every secondary row is written by exactly one primary assignment.
template <typename T>
void composeRoutesBackward(int64_t assignments, int64_t k, const T *primaryGate,
                           const int32_t *position, const T *secondaryGate,
                           const T *dGate, T *dPrimaryGate, T *dSecondaryGate) {
  checkComposeShape("composeRoutesBackward", assignments, k);
#pragma omp parallel for schedule(static) if (assignments * k > (1 << 15))
  for (int64_t a = 0; a < assignments; ++a) {
    int64_t row = position[a];
    T sum = 0;
    for (int64_t s = 0; s < k; ++s) {
      sum += dGate[a * k + s] * secondaryGate[row * k + s];
      dSecondaryGate[row * k + s] = dGate[a * k + s] * primaryGate[a];
    }
    dPrimaryGate[a] = sum;
  }
}

} // namespace moe::rt::cpu

#endif // MOE_RUNTIME_CPU_KERNELS_HIERARCHYKERNELS_H
