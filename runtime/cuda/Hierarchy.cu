//===- Hierarchy.cu - Hierarchical MoE kernels of the CUDA backend --------===//
//
// Composition of the primary and secondary routing selections (top-k: one
// thread per primary assignment; CSR: one thread per token) and the
// hierarchical load estimate, matching kernels/HierarchyKernels.h exactly
// (every sum runs in the CPU's order); the secondary level's masks, its
// threshold loss and per-group load estimate, on the selection helpers of
// Selection.cuh.
//
//===----------------------------------------------------------------------===//

#include "runtime/Checks.h"
#include "runtime/cuda/Common.cuh"
#include "runtime/cuda/CudaBackend.h"
#include "runtime/cuda/Selection.cuh"

#include <stdexcept>
#include <string>
#include <vector>

namespace moe::rt {
namespace {

using namespace gpu;

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

/// Slots past the used ones (*used of `capacity`) get expert 0, gate 0.
__global__ void clearFreeSlotsKernel(int64_t capacity, const int32_t *used,
                                     int32_t *expert, float *gate) {
  MOE_GRID_STRIDE(i, capacity) {
    if (i >= *used) {
      expert[i] = 0;
      gate[i] = 0.0f;
    }
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
  if (noRowsToAssign(ctx, T, rowPtr, /*numAssigned=*/nullptr)) {
    // No rows: every slot is free (expert 0, gate 0), as on the CPU.
    clearUnusedSlots(ctx, expert, gate, 0, A2);
    return;
  }
  DeviceBuffer<int32_t> counts(ctx.stream, T + 1);
  MOE_CUDA_CHECK(
      cudaMemsetAsync(counts.get() + T, 0, sizeof(int32_t), ctx.stream));
  MOE_LAUNCH(composeCountKernel, dim3(gridFor(T)), dim3(kElementwiseThreads), 0,
             ctx.stream, T, primaryRowPtr, position, secondaryRowPtr,
             counts.get());
  exclusiveScan(ctx, counts.get(), rowPtr, T + 1);
  MOE_LAUNCH(composeCsrForwardKernel, dim3(gridFor(T)),
             dim3(kElementwiseThreads), 0, ctx.stream, T, expertsPerGroup,
             primaryRowPtr, primaryExpert, primaryGate, position,
             secondaryRowPtr, secondaryExpert, secondaryGate, rowPtr, expert,
             gate);
  if (A2 > 0)
    MOE_LAUNCH(clearFreeSlotsKernel, dim3(gridFor(A2)),
               dim3(kElementwiseThreads), 0, ctx.stream, A2, rowPtr + T, expert,
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

//===----------------------------------------------------------------------===//
// The secondary level of batchwise hierarchies (masks inside groups) and
// the per-group load estimate
//===----------------------------------------------------------------------===//

namespace {

/// mask[(g * rowsPerGroup + cand[q]) * n + i] = 1 for candidate q of column
/// i of group g (cand [groups * n, m], rows local to the group).
__global__ void scatterGroupedBatchwiseKernel(int64_t groups,
                                              int64_t rowsPerGroup, int64_t n,
                                              int64_t m, const int32_t *cand,
                                              float *mask) {
  MOE_GRID_STRIDE(q, groups * n * m) {
    int64_t column = q / m;
    int64_t g = column / n, i = column % n;
    mask[(g * rowsPerGroup + static_cast<int64_t>(cand[q])) * n + i] = 1.0f;
  }
}

/// The group of row r: the last g < groups with offsets[g] <= r, for
/// offsets[0] <= r < offsets[groups] (as upper_bound - 1 on the CPU).
__device__ int64_t groupOfRow(const int32_t *offsets, int64_t groups,
                              int64_t r) {
  int64_t lo = 0, hi = groups - 1;
  while (lo < hi) {
    int64_t mid = (lo + hi + 1) / 2;
    if (offsets[mid] <= r)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

/// mask[r, i] = p[r, i] > thresholds[g, i] for rows r of a group g, 0 for
/// the rows of no group.
__global__ void groupedThresholdMaskKernel(int64_t rows, int64_t groups,
                                           int64_t n, const float *probs,
                                           const float *thresholds,
                                           const int32_t *offsets,
                                           float *mask) {
  MOE_GRID_STRIDE(q, rows * n) {
    int64_t r = q / n, i = q % n;
    float keep = 0.0f;
    if (r >= offsets[0] && r < offsets[groups]) {
      int64_t g = groupOfRow(offsets, groups, r);
      keep = probs[q] > thresholds[g * n + i] ? 1.0f : 0.0f;
    }
    mask[q] = keep;
  }
}

/// (Mthr - Mbw)(r, i) * (X - T_g,i) of Eq. 8 inside groups, element q of
/// [groups * rowsPerGroup, n]; `segment` = rowsPerGroup * n.
struct GroupedThresholdLossTerm {
  const float *probs, *batchMask, *thresholds;
  int64_t n, segment;
  __device__ float operator()(int64_t q) const {
    float x = probs[q], thr = thresholds[(q / segment) * n + q % n];
    float thresholdMask = x > thr ? 1.0f : 0.0f;
    return (thresholdMask - batchMask[q]) * (x - thr);
  }
};

/// `count` int32 values of device memory on the host.
std::vector<int32_t> readInts(const Context &ctx, const int32_t *devicePtr,
                              int64_t count) {
  std::vector<int32_t> values(static_cast<size_t>(count));
  if (count == 0)
    return values;
  MOE_CUDA_CHECK(cudaMemcpyAsync(values.data(), devicePtr,
                                 values.size() * sizeof(int32_t),
                                 cudaMemcpyDeviceToHost, ctx.stream));
  MOE_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  return values;
}

} // namespace

void CudaBackend::groupedBatchwiseMaskForward(int64_t groups,
                                              int64_t rowsPerGroup, int64_t n,
                                              int64_t m, const float *logits,
                                              float *mask, int32_t *rowPtr,
                                              int32_t *expert, float *gate) {
  checkGroupedShape("groupedBatchwiseMaskForward", groups, rowsPerGroup, n);
  if (m < 0 || m > rowsPerGroup)
    throw std::invalid_argument(
        "groupedBatchwiseMaskForward: m = " + std::to_string(m) +
        " is not in [0, rowsPerGroup]");
  const Context &ctx = *ctx_;
  int64_t rows = groups * rowsPerGroup;
  if (noRowsToAssign(ctx, rows, rowPtr, /*numAssigned=*/nullptr))
    return;
  MOE_CUDA_CHECK(cudaMemsetAsync(
      mask, 0, static_cast<size_t>(rows * n) * sizeof(float), ctx.stream));
  if (m > 0) {
    // Each group's columns become rows [groups * n, rowsPerGroup], so that
    // one selection ranks every (group, expert) column of the segments.
    DeviceBuffer<float> probs = routerProbabilities(ctx, rows, n, logits);
    DeviceBuffer<float> columns(ctx.stream, rows * n);
    for (int64_t g = 0; g < groups; ++g)
      MOE_LAUNCH(transposeKernel,
                 dim3(ceilDiv(rowsPerGroup, 32), ceilDiv(n, 32)), dim3(32, 8),
                 0, ctx.stream, rowsPerGroup, n,
                 probs.get() + g * rowsPerGroup * n,
                 columns.get() + g * n * rowsPerGroup);
    DeviceBuffer<int32_t> cand(ctx.stream, groups * n * m);
    selectTopK(ctx, groups * n, rowsPerGroup, m, columns.get(),
               /*sorted=*/false, cand.get());
    MOE_LAUNCH(scatterGroupedBatchwiseKernel, dim3(gridFor(groups * n * m)),
               dim3(kElementwiseThreads), 0, ctx.stream, groups, rowsPerGroup,
               n, m, cand.get(), mask);
  }
  maskToAssignments(ctx, rows, n, logits, mask, rowPtr, expert, gate);
}

void CudaBackend::groupedThresholdMaskForward(
    int64_t R, int64_t groups, int64_t n, const float *logits,
    const float *thresholds, const int32_t *groupOffset, float *mask,
    int32_t *rowPtr, int32_t *expert, float *gate, int64_t capacity,
    int64_t *numAssigned) {
  checkGroupedShape("groupedThresholdMaskForward", groups, R, n);
  checkCount("groupedThresholdMaskForward", capacity);
  const Context &ctx = *ctx_;
  if (noRowsToAssign(ctx, R, rowPtr, numAssigned))
    return;
  // Rows of no group may hold anything: their probabilities are computed
  // but never compared.
  DeviceBuffer<float> probs = routerProbabilities(ctx, R, n, logits);
  MOE_LAUNCH(groupedThresholdMaskKernel, dim3(gridFor(R * n)),
             dim3(kElementwiseThreads), 0, ctx.stream, R, groups, n,
             probs.get(), thresholds, groupOffset, mask);
  int64_t assigned =
      maskToAssignments(ctx, R, n, logits, mask, rowPtr, expert, gate,
                        "groupedThresholdMaskForward", capacity);
  if (numAssigned)
    *numAssigned = assigned;
}

void CudaBackend::groupedBatchwiseThresholdLossForward(
    int64_t groups, int64_t rowsPerGroup, int64_t n, const float *logits,
    const float *batchMask, const float *thresholds, float *loss) {
  checkGroupedShape("groupedBatchwiseThresholdLossForward", groups,
                    rowsPerGroup, n);
  const Context &ctx = *ctx_;
  int64_t rows = groups * rowsPerGroup;
  DeviceBuffer<float> probs = routerProbabilities(ctx, rows, n, logits);
  deterministicSum(ctx, rows * n,
                   GroupedThresholdLossTerm{probs.get(), batchMask, thresholds,
                                            n, rowsPerGroup * n},
                   1.0f, loss);
}

void CudaBackend::groupedBatchwiseThresholdLossBackward(
    int64_t groups, int64_t rowsPerGroup, int64_t n, const float *logits,
    const float *batchMask, const float *thresholds, const float *dLoss,
    float *dThresholds) {
  checkGroupedShape("groupedBatchwiseThresholdLossBackward", groups,
                    rowsPerGroup, n);
  const Context &ctx = *ctx_;
  int64_t rows = groups * rowsPerGroup;
  DeviceBuffer<float> probs = routerProbabilities(ctx, rows, n, logits);
  for (int64_t g = 0; g < groups; ++g) {
    int64_t at = g * rowsPerGroup * n;
    columnSum(
        ctx, rowsPerGroup, n,
        MaskDifference{probs.get() + at, batchMask + at, thresholds + g * n, n},
        -1.0f, /*accumulate=*/false, dThresholds + g * n, dLoss);
  }
}

void CudaBackend::groupedLoadEstimateForward(
    int64_t R, int64_t groups, int64_t n, int64_t k, const int32_t *groupOffset,
    const float *clean, const float *noisy, const float *noiseStd,
    const float *topValues, float *load) {
  checkGroupedShape("groupedLoadEstimateForward", groups, R, n);
  checkTopK("groupedLoadEstimateForward", R, n, k);
  const Context &ctx = *ctx_;
  std::vector<int32_t> offsets = readInts(ctx, groupOffset, groups + 1);
  for (int64_t g = 0; g < groups; ++g) {
    int64_t first = offsets[g], at = first * n;
    columnSum(ctx, offsets[g + 1] - first, n,
              LoadProbability{clean + at, noisy + at, noiseStd + at,
                              topValues + first * (k + 1), n, k},
              1.0f, /*accumulate=*/false, load + g * n);
  }
}

void CudaBackend::groupedLoadEstimateBackward(
    int64_t R, int64_t groups, int64_t n, int64_t k, const int32_t *groupOffset,
    const float *clean, const float *noisy, const float *rawNoise,
    const float *noiseStd, const float *topValues, const float *dLoad,
    float *dClean, float *dRawNoise) {
  checkGroupedShape("groupedLoadEstimateBackward", groups, R, n);
  checkTopK("groupedLoadEstimateBackward", R, n, k);
  if (!rawNoise)
    throw std::invalid_argument(
        "groupedLoadEstimateBackward: rawNoise is required");
  if (k == n) // every threshold is -inf: P = 1 has no gradient
    return;
  const Context &ctx = *ctx_;
  std::vector<int32_t> offsets = readInts(ctx, groupOffset, groups + 1);
  for (int64_t g = 0; g < groups; ++g) {
    int64_t first = offsets[g], rows = offsets[g + 1] - first, at = first * n;
    MOE_LAUNCH(loadBackwardKernel, dim3(rowGrid<WarpPerRow>(rows)),
               dim3(WarpPerRow::kBlock), 0, ctx.stream, rows, n, k, clean + at,
               noisy + at, rawNoise + at, noiseStd + at,
               topValues + first * (k + 1), /*rowPtr=*/nullptr, dLoad + g * n,
               dClean + at, dRawNoise + at);
  }
}

} // namespace moe::rt
