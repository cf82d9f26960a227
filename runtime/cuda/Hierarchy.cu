//===- Hierarchy.cu - Hierarchical MoE kernels of the CUDA backend --------===//
//
// Composition of the primary and secondary routing selections; one thread
// per primary assignment, matching kernels/HierarchyKernels.h exactly (the
// backward sums a row's k products in the same order).
//
//===----------------------------------------------------------------------===//

#include "runtime/Checks.h"
#include "runtime/cuda/Common.cuh"
#include "runtime/cuda/CudaBackend.h"

#include <stdexcept>

namespace moe::rt {
namespace {

using gpu::gridFor;
using gpu::kElementwiseThreads;

__global__ void composeRoutesForwardKernel(
    int64_t assignments, int64_t k, int64_t expertsPerGroup,
    const int32_t *primaryExpert, const float *primaryGate,
    const int32_t *position, const int32_t *secondaryExpert,
    const float *secondaryGate, int32_t *expert, float *gate) {
  MOE_GRID_STRIDE(a, assignments) {
    int64_t row = position[a];
    int32_t base = static_cast<int32_t>(primaryExpert[a] * expertsPerGroup);
    for (int64_t s = 0; s < k; ++s) {
      expert[a * k + s] = base + secondaryExpert[row * k + s];
      gate[a * k + s] = primaryGate[a] * secondaryGate[row * k + s];
    }
  }
}

__global__ void
composeRoutesBackwardKernel(int64_t assignments, int64_t k,
                            const float *primaryGate, const int32_t *position,
                            const float *secondaryGate, const float *dGate,
                            float *dPrimaryGate, float *dSecondaryGate) {
  MOE_GRID_STRIDE(a, assignments) {
    int64_t row = position[a];
    float sum = 0.0f;
    for (int64_t s = 0; s < k; ++s) {
      sum += dGate[a * k + s] * secondaryGate[row * k + s];
      dSecondaryGate[row * k + s] = dGate[a * k + s] * primaryGate[a];
    }
    dPrimaryGate[a] = sum;
  }
}

} // namespace

void CudaBackend::composeRoutesForward(
    int64_t A1, int64_t k, int64_t expertsPerGroup,
    const int32_t *primaryExpert, const float *primaryGate,
    const int32_t *position, const int32_t *secondaryExpert,
    const float *secondaryGate, int32_t *expert, float *gate) {
  checkComposeShape("composeRoutesForward", A1, k);
  MOE_LAUNCH(composeRoutesForwardKernel, dim3(gridFor(A1)),
             dim3(kElementwiseThreads), 0, ctx_->stream, A1, k, expertsPerGroup,
             primaryExpert, primaryGate, position, secondaryExpert,
             secondaryGate, expert, gate);
}

void CudaBackend::composeRoutesBackward(int64_t A1, int64_t k,
                                        const float *primaryGate,
                                        const int32_t *position,
                                        const float *secondaryGate,
                                        const float *dGate, float *dPrimaryGate,
                                        float *dSecondaryGate) {
  checkComposeShape("composeRoutesBackward", A1, k);
  MOE_LAUNCH(composeRoutesBackwardKernel, dim3(gridFor(A1)),
             dim3(kElementwiseThreads), 0, ctx_->stream, A1, k, primaryGate,
             position, secondaryGate, dGate, dPrimaryGate, dSecondaryGate);
}

} // namespace moe::rt
