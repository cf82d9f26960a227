//===- Hierarchy.cu - Hierarchical MoE kernels of the CUDA backend --------===//
//
// Composition of the primary and secondary routing selections (top-k: one
// thread per primary assignment; CSR: one thread per token) and the
// hierarchical load estimate, matching kernels/HierarchyKernels.h exactly
// (every sum runs in the CPU's order). The masks and the load estimate of
// the secondary level live in Routing.cu beside the helpers they reuse.
//
//===----------------------------------------------------------------------===//

#include "runtime/Checks.h"
#include "runtime/cuda/Common.cuh"
#include "runtime/cuda/CudaBackend.h"

#include <cub/device/device_scan.cuh>

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

//===----------------------------------------------------------------------===//
// CSR composition and Load_H
//===----------------------------------------------------------------------===//

namespace {

using gpu::Context;
using gpu::DeviceBuffer;

/// counts[t] = the secondary assignments of token t's primary assignments.
__global__ void composeCountKernel(int64_t tokens, const int32_t *primaryRowPtr,
                                   const int32_t *position,
                                   const int32_t *secondaryRowPtr,
                                   int32_t *counts) {
  MOE_GRID_STRIDE(t, tokens) {
    int32_t count = 0;
    for (int32_t a = primaryRowPtr[t]; a < primaryRowPtr[t + 1]; ++a) {
      int32_t row = position[a];
      count += secondaryRowPtr[row + 1] - secondaryRowPtr[row];
    }
    counts[t] = count;
  }
}

/// Token t writes its composed assignments from rowPtr[t] on, in the
/// CPU's order.
__global__ void composeCsrForwardKernel(
    int64_t tokens, int64_t expertsPerGroup, const int32_t *primaryRowPtr,
    const int32_t *primaryExpert, const float *primaryGate,
    const int32_t *position, const int32_t *secondaryRowPtr,
    const int32_t *secondaryExpert, const float *secondaryGate,
    const int32_t *rowPtr, int32_t *expert, float *gate) {
  MOE_GRID_STRIDE(t, tokens) {
    int64_t out = rowPtr[t];
    for (int32_t a = primaryRowPtr[t]; a < primaryRowPtr[t + 1]; ++a) {
      int32_t row = position[a];
      int64_t base = static_cast<int64_t>(primaryExpert[a]) * expertsPerGroup;
      for (int32_t b = secondaryRowPtr[row]; b < secondaryRowPtr[row + 1];
           ++b, ++out) {
        expert[out] = static_cast<int32_t>(base + secondaryExpert[b]);
        gate[out] = primaryGate[a] * secondaryGate[b];
      }
    }
  }
}

/// The product rule, one thread per token (the gradients arrive zeroed).
__global__ void composeCsrBackwardKernel(
    int64_t tokens, const int32_t *rowPtr, const int32_t *primaryRowPtr,
    const float *primaryGate, const int32_t *position,
    const int32_t *secondaryRowPtr, const float *secondaryGate,
    const float *dGate, float *dPrimaryGate, float *dSecondaryGate) {
  MOE_GRID_STRIDE(t, tokens) {
    int64_t out = rowPtr[t];
    for (int32_t a = primaryRowPtr[t]; a < primaryRowPtr[t + 1]; ++a) {
      int32_t row = position[a];
      float sum = 0.0f;
      for (int32_t b = secondaryRowPtr[row]; b < secondaryRowPtr[row + 1];
           ++b, ++out) {
        sum += dGate[out] * secondaryGate[b];
        dSecondaryGate[b] = dGate[out] * primaryGate[a];
      }
      dPrimaryGate[a] = sum;
    }
  }
}

/// Rows of group g, at least 1.
__device__ __forceinline__ float groupRowsOf(const int32_t *offsets,
                                             int64_t g) {
  return static_cast<float>(max(offsets[g + 1] - offsets[g], 1));
}

__global__ void hierarchicalLoadKernel(int64_t groups, int64_t n,
                                       const int32_t *offsets,
                                       const float *primaryLoad,
                                       const float *secondaryLoad,
                                       float *load) {
  MOE_GRID_STRIDE(q, groups * n) {
    int64_t g = q / n;
    float scale = primaryLoad[g] / groupRowsOf(offsets, g);
    load[q] = scale * secondaryLoad[q];
  }
}

__global__ void hierarchicalLoadSecondaryGradKernel(int64_t groups, int64_t n,
                                                    const int32_t *offsets,
                                                    const float *primaryLoad,
                                                    const float *dLoad,
                                                    float *dSecondaryLoad) {
  MOE_GRID_STRIDE(q, groups * n) {
    int64_t g = q / n;
    float inv = 1.0f / groupRowsOf(offsets, g);
    dSecondaryLoad[q] = dLoad[q] * primaryLoad[g] * inv;
  }
}

/// dPrimaryLoad[g] = sum_j dLoad * secondaryLoad / c_g, j in order.
__global__ void hierarchicalLoadPrimaryGradKernel(int64_t groups, int64_t n,
                                                  const int32_t *offsets,
                                                  const float *secondaryLoad,
                                                  const float *dLoad,
                                                  float *dPrimaryLoad) {
  MOE_GRID_STRIDE(g, groups) {
    float inv = 1.0f / groupRowsOf(offsets, g);
    float sum = 0.0f;
    for (int64_t j = 0; j < n; ++j)
      sum += dLoad[g * n + j] * secondaryLoad[g * n + j];
    dPrimaryLoad[g] = sum * inv;
  }
}

} // namespace

void CudaBackend::composeRoutesCsrForward(
    int64_t T, int64_t A1, int64_t A2, int64_t expertsPerGroup,
    const int32_t *primaryRowPtr, const int32_t *primaryExpert,
    const float *primaryGate, const int32_t *position,
    const int32_t *secondaryRowPtr, const int32_t *secondaryExpert,
    const float *secondaryGate, int32_t *rowPtr, int32_t *expert, float *gate) {
  checkComposeCsrShape("composeRoutesCsrForward", T, A1, A2);
  if (expertsPerGroup < 1)
    throw std::invalid_argument("composeRoutesCsrForward: expertsPerGroup "
                                "must be >= 1");
  const Context &ctx = *ctx_;
  if (T == 0) {
    MOE_LAUNCH(gpu::setIntKernel, dim3(1), dim3(1), 0, ctx.stream, rowPtr, 0);
    return;
  }
  DeviceBuffer<int32_t> counts(ctx.stream, T + 1);
  MOE_CUDA_CHECK(
      cudaMemsetAsync(counts.get() + T, 0, sizeof(int32_t), ctx.stream));
  MOE_LAUNCH(composeCountKernel, dim3(gridFor(T)), dim3(kElementwiseThreads), 0,
             ctx.stream, T, primaryRowPtr, position, secondaryRowPtr,
             counts.get());
  size_t bytes = 0;
  MOE_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(nullptr, bytes, counts.get(),
                                               rowPtr, T + 1, ctx.stream));
  DeviceBuffer<unsigned char> temp(ctx.stream, bytes);
  MOE_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(temp.get(), bytes, counts.get(),
                                               rowPtr, T + 1, ctx.stream));
  MOE_LAUNCH(composeCsrForwardKernel, dim3(gridFor(T)),
             dim3(kElementwiseThreads), 0, ctx.stream, T, expertsPerGroup,
             primaryRowPtr, primaryExpert, primaryGate, position,
             secondaryRowPtr, secondaryExpert, secondaryGate, rowPtr, expert,
             gate);
}

void CudaBackend::composeRoutesCsrBackward(
    int64_t T, int64_t A1, int64_t A2, const int32_t *rowPtr,
    const int32_t *primaryRowPtr, const float *primaryGate,
    const int32_t *position, const int32_t *secondaryRowPtr,
    const float *secondaryGate, const float *dGate, float *dPrimaryGate,
    float *dSecondaryGate) {
  checkComposeCsrShape("composeRoutesCsrBackward", T, A1, A2);
  const Context &ctx = *ctx_;
  if (A1 > 0)
    MOE_CUDA_CHECK(cudaMemsetAsync(
        dPrimaryGate, 0, static_cast<size_t>(A1) * sizeof(float), ctx.stream));
  if (A2 > 0)
    MOE_CUDA_CHECK(cudaMemsetAsync(dSecondaryGate, 0,
                                   static_cast<size_t>(A2) * sizeof(float),
                                   ctx.stream));
  MOE_LAUNCH(composeCsrBackwardKernel, dim3(gridFor(T)),
             dim3(kElementwiseThreads), 0, ctx.stream, T, rowPtr, primaryRowPtr,
             primaryGate, position, secondaryRowPtr, secondaryGate, dGate,
             dPrimaryGate, dSecondaryGate);
}

void CudaBackend::hierarchicalLoadForward(int64_t groups, int64_t n,
                                          const int32_t *groupOffset,
                                          const float *primaryLoad,
                                          const float *secondaryLoad,
                                          float *load) {
  checkGroupedShape("hierarchicalLoadForward", groups, 0, n);
  MOE_LAUNCH(hierarchicalLoadKernel, dim3(gridFor(groups * n)),
             dim3(kElementwiseThreads), 0, ctx_->stream, groups, n, groupOffset,
             primaryLoad, secondaryLoad, load);
}

void CudaBackend::hierarchicalLoadBackward(
    int64_t groups, int64_t n, const int32_t *groupOffset,
    const float *primaryLoad, const float *secondaryLoad, const float *dLoad,
    float *dPrimaryLoad, float *dSecondaryLoad) {
  checkGroupedShape("hierarchicalLoadBackward", groups, 0, n);
  MOE_LAUNCH(hierarchicalLoadSecondaryGradKernel, dim3(gridFor(groups * n)),
             dim3(kElementwiseThreads), 0, ctx_->stream, groups, n, groupOffset,
             primaryLoad, dLoad, dSecondaryLoad);
  MOE_LAUNCH(hierarchicalLoadPrimaryGradKernel, dim3(gridFor(groups)),
             dim3(kElementwiseThreads), 0, ctx_->stream, groups, n, groupOffset,
             secondaryLoad, dLoad, dPrimaryLoad);
}

} // namespace moe::rt
