//===- Routing.cu - CUDA gating kernels (router math in f32) --------------===//
//
// Noisy top-k gating, the smooth load estimator, dense softmax gating, the
// batchwise and threshold masks of Appendix A with their threshold loss (on
// the per-token softmax probabilities of the logits, computed into a scratch
// buffer by the softmax kernel), and the balancing losses. The top-k
// selection and the mask helpers they share with the hierarchical layers
// (Hierarchy.cu) are in Selection.cu. No floating-point atomics anywhere:
// every sum is a fixed tree.
//
//===----------------------------------------------------------------------===//

#include "runtime/Checks.h"
#include "runtime/Philox.h"
#include "runtime/cuda/Common.cuh"
#include "runtime/cuda/CudaBackend.h"
#include "runtime/cuda/Selection.cuh"

#include <stdexcept>
#include <string>

namespace moe::rt {
namespace {

using namespace gpu;

//===----------------------------------------------------------------------===//
// Noisy top-k
//===----------------------------------------------------------------------===//

/// noisy = clean + z * s, noiseStd = s = softplus(raw) + eps (0 without
/// rawNoise). Thread g covers the four elements of Philox block g and
/// reproduces philoxNormalAt's Box-Muller pairs; with `position`, stream
/// element (a, i) of the [count / n, n] stream goes to row position[a].
__global__ void noiseKernel(int64_t count, int64_t n, const float *clean,
                            const float *rawNoise, float noiseEps,
                            bool addNoise, uint64_t seed, uint64_t counter,
                            uint64_t firstBlock, const int32_t *position,
                            float *noisy, float *noiseStd) {
  int64_t groups = (count + 3) / 4;
  MOE_GRID_STRIDE(g, groups) {
    float z[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    if (addNoise)
      philoxNormalBlock(seed, counter, firstBlock + static_cast<uint64_t>(g),
                        z);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      int64_t i = 4 * g + j;
      if (i >= count)
        break;
      if (position)
        i = static_cast<int64_t>(position[i / n]) * n + i % n;
      noisyEntry(i, z[j], clean, rawNoise, noiseEps, addNoise, noisy, noiseStd);
    }
  }
}

/// From the sorted top-K indices: topValues, the top-k experts and their
/// softmax gates. One warp per token.
__global__ void __launch_bounds__(WarpPerRow::kBlock)
    topKFinalizeKernel(int64_t T, int64_t n, int64_t k, int64_t K,
                       const float *noisy, const int32_t *cand,
                       float *topValues, int32_t *expert, float *gate) {
  int64_t t = groupRow<WarpPerRow>();
  int lane = groupLane<WarpPerRow>();
  if (t >= T)
    return;
  const float *h = noisy + t * n;
  const int32_t *c = cand + t * K;
  float *tv = topValues + t * (k + 1);
  for (int64_t r = lane; r < K; r += 32) {
    tv[r] = h[c[r]];
    if (r < k)
      expert[t * k + r] = c[r];
  }
  if (lane == 0 && K == k) // k == n: there is no (k+1)-th expert
    tv[k] = -INFINITY;
  float top = h[c[0]];
  float acc = 0.0f;
  for (int64_t r = lane; r < k; r += 32)
    acc += expf(h[c[r]] - top);
  float sum = warpSum(acc);
  for (int64_t r = lane; r < k; r += 32)
    gate[t * k + r] = expf(h[c[r]] - top) / sum;
}

/// dH of the kept experts through the softmax over the kept k, then through
/// H = clean + z * (softplus(raw) + eps). dClean/dRawNoise arrive zeroed.
__global__ void __launch_bounds__(WarpPerRow::kBlock)
    topKBackwardKernel(int64_t T, int64_t n, int64_t k, const float *noisy,
                       const float *clean, const float *rawNoise,
                       const float *noiseStd, const int32_t *expert,
                       const float *gate, const float *dGate, float *dClean,
                       float *dRawNoise) {
  int64_t t = groupRow<WarpPerRow>();
  int lane = groupLane<WarpPerRow>();
  if (t >= T)
    return;
  const float *g = gate + t * k, *dg = dGate + t * k;
  float acc = 0.0f;
  for (int64_t j = lane; j < k; j += 32)
    acc += g[j] * dg[j];
  float dot = warpSum(acc);
  for (int64_t j = lane; j < k; j += 32) {
    float dh = g[j] * (dg[j] - dot);
    int64_t idx = t * n + expert[t * k + j];
    dClean[idx] = dh;
    if (rawNoise) {
      float s = noiseStd[idx];
      float z = s > 0.0f ? (noisy[idx] - clean[idx]) / s : 0.0f;
      dRawNoise[idx] = dh * z * sigmoidf(rawNoise[idx]);
    }
  }
}

//===----------------------------------------------------------------------===//
// Softmax gating
//===----------------------------------------------------------------------===//

template <class G>
__global__ void __launch_bounds__(G::kBlock)
    softmaxBackwardKernel(int64_t T, int64_t n, const float *probs,
                          const float *dProbs, float *dLogits) {
  int64_t t = groupRow<G>();
  int lane = groupLane<G>();
  if (t >= T)
    return;
  const float *y = probs + t * n, *dy = dProbs + t * n;
  float acc = 0.0f;
  for (int64_t i = lane; i < n; i += G::kThreads)
    acc += y[i] * dy[i];
  float dot = groupSum<G>(acc);
  for (int64_t i = lane; i < n; i += G::kThreads)
    dLogits[t * n + i] = y[i] * (dy[i] - dot);
}

//===----------------------------------------------------------------------===//
// Masks in assignment form
//===----------------------------------------------------------------------===//

/// mask[t, i] = 1 for the m tokens t selected for expert i (cand [n, m]).
__global__ void scatterBatchwiseKernel(int64_t n, int64_t m,
                                       const int32_t *cand, float *mask) {
  MOE_GRID_STRIDE(q, n * m) {
    int64_t i = q / m;
    mask[static_cast<int64_t>(cand[q]) * n + i] = 1.0f;
  }
}

/// mask[t, i] = 1 when the router probability probs[t, i] > thresholds[i].
__global__ void thresholdMaskKernel(int64_t T, int64_t n, const float *probs,
                                    const float *thresholds, float *mask) {
  MOE_GRID_STRIDE(q, T * n) {
    mask[q] = probs[q] > thresholds[q % n] ? 1.0f : 0.0f;
  }
}

/// dLogits of the kept experts through each token's softmax (dLogits
/// arrives zeroed). One warp per token.
__global__ void __launch_bounds__(WarpPerRow::kBlock)
    maskedGateBackwardKernel(int64_t T, int64_t n, const int32_t *rowPtr,
                             const int32_t *expert, const float *gate,
                             const float *dGate, float *dLogits) {
  int64_t t = groupRow<WarpPerRow>();
  int lane = groupLane<WarpPerRow>();
  if (t >= T)
    return;
  int64_t begin = rowPtr[t], end = rowPtr[t + 1];
  float acc = 0.0f;
  for (int64_t a = begin + lane; a < end; a += 32)
    acc += gate[a] * dGate[a];
  float dot = warpSum(acc);
  for (int64_t a = begin + lane; a < end; a += 32)
    dLogits[t * n + expert[a]] = gate[a] * (dGate[a] - dot);
}

//===----------------------------------------------------------------------===//
// Losses and statistics
//===----------------------------------------------------------------------===//

/// (Mthr - Mbw)(x, i) * (X - T_i) of Eq. 8, element q of [T, n], with X
/// the router probabilities.
struct ThresholdLossTerm {
  const float *probs, *batchMask, *thresholds;
  int64_t n;
  __device__ float operator()(int64_t q) const {
    float x = probs[q], thr = thresholds[q % n];
    float thresholdMask = x > thr ? 1.0f : 0.0f;
    return (thresholdMask - batchMask[q]) * (x - thr);
  }
};

/// importance[e] = sum of the gates of expert e's assignments, given the
/// assignments sorted by expert (order) and the segment offsets. One block
/// per expert.
__global__ void __launch_bounds__(Block256::kBlock)
    segmentSumKernel(const int32_t *offsets, const int32_t *order,
                     const float *gate, float *importance) {
  int64_t e = blockIdx.x;
  float acc = 0.0f;
  for (int64_t p = offsets[e] + threadIdx.x; p < offsets[e + 1];
       p += Block256::kThreads)
    acc += gate[order[p]];
  acc = groupSum<Block256>(acc);
  if (threadIdx.x == 0)
    importance[e] = acc;
}

/// dGate[a] = dImportance[expert[a]]. One thread per assignment.
__global__ void importanceBackwardKernel(int64_t A, const int32_t *expert,
                                         const float *dImportance,
                                         float *dGate) {
  MOE_GRID_STRIDE(a, A) { dGate[a] = dImportance[expert[a]]; }
}

/// CV^2 = weight * var / (mean^2 + 1e-10) (population variance, two
/// passes, in double like the CPU) and, when dV is non-null, its gradient
/// for dLoss[0]. One block.
__global__ void __launch_bounds__(Block256::kBlock)
    cvSquaredKernel(int64_t n, const float *v, float weight, const float *dLoss,
                    float *loss, float *dV) {
  double count = static_cast<double>(n);
  double acc = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += Block256::kThreads)
    acc += v[i];
  double mean = groupSum<Block256>(acc) / count;
  acc = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += Block256::kThreads)
    acc += (v[i] - mean) * (v[i] - mean);
  double var = groupSum<Block256>(acc) / count;
  double denom = mean * mean + 1e-10;
  if (loss && threadIdx.x == 0)
    loss[0] = static_cast<float>(weight * var / denom);
  if (!dV)
    return;
  // d/dv_i [var / D] = 2 (v_i - mean) / (n D) - 2 var mean / (n D^2).
  double scale = static_cast<double>(dLoss[0]) * weight;
  double meanTerm = 2.0 * var * mean / (count * denom * denom);
  for (int64_t i = threadIdx.x; i < n; i += Block256::kThreads)
    dV[i] = static_cast<float>(
        scale * (2.0 * (v[i] - mean) / (count * denom) - meanTerm));
}

/// Eq. 5: weight / 2 * sum_i (importance_i / T - 1/n)^2, in double. One
/// block.
__global__ void __launch_bounds__(Block256::kBlock)
    l2BalanceKernel(int64_t T, int64_t n, const float *importance, float weight,
                    float *loss) {
  double acc = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += Block256::kThreads) {
    double diff = static_cast<double>(importance[i]) / T - 1.0 / n;
    acc += diff * diff;
  }
  acc = groupSum<Block256>(acc);
  if (threadIdx.x == 0)
    loss[0] = static_cast<float>(0.5 * weight * acc);
}

/// dImportance[i] = scale * (importance_i / T - 1/n), scale = dLoss[0] *
/// weight / T.
__global__ void l2BalanceBackwardKernel(int64_t T, int64_t n,
                                        const float *importance, float weight,
                                        const float *dLoss,
                                        float *dImportance) {
  double scale =
      static_cast<double>(dLoss[0]) * weight / static_cast<double>(T);
  MOE_GRID_STRIDE(i, n) {
    dImportance[i] = static_cast<float>(
        scale * (static_cast<double>(importance[i]) / T - 1.0 / n));
  }
}

//===----------------------------------------------------------------------===//
// The combined batch's batchwise ranking (step/CombinedBatchMask.cpp)
//===----------------------------------------------------------------------===//

/// Rows one block of countAtLeastKernel counts: grid.y covers the rows.
constexpr int64_t kCountRowsPerBlock = 256;

/// counts[c] += column c's rows of this block's chunk with bits >= the
/// midpoint; threads take consecutive columns, so each row's reads are
/// coalesced. Integer atomics: the sums do not depend on the order.
__global__ void countAtLeastKernel(int64_t n, int64_t groups,
                                   const int32_t *offsets, const float *probs,
                                   const int64_t *lo, const int64_t *hi,
                                   unsigned long long *counts) {
  int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= groups * n)
    return;
  int64_t g = c / n, j = c % n;
  int64_t begin = offsets[g] + int64_t(blockIdx.y) * kCountRowsPerBlock;
  int64_t end = min(begin + kCountRowsPerBlock, int64_t(offsets[g + 1]));
  uint64_t bound = static_cast<uint64_t>((lo[c] + hi[c]) / 2);
  unsigned long long count = 0;
  for (int64_t r = begin; r < end; ++r)
    count += __float_as_uint(probs[r * n + j]) >= bound;
  if (count)
    atomicAdd(&counts[c], count);
}

__global__ void narrowBisectionKernel(int64_t columns, int64_t total,
                                      const int64_t *counts, int64_t *lo,
                                      int64_t *hi) {
  int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= columns)
    return;
  int64_t mid = (lo[c] + hi[c]) / 2;
  (counts[c] >= total ? lo[c] : hi[c]) = mid;
}

/// One thread per column walks its group's rows in order, so the ties it
/// keeps are the first take[c] (the zeroed mask holds the rest).
__global__ void selectAboveThresholdKernel(int64_t n, int64_t groups,
                                           const int32_t *offsets,
                                           const float *probs,
                                           const int64_t *lo,
                                           const int64_t *take, float *mask) {
  int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= groups * n)
    return;
  int64_t g = c / n, j = c % n;
  uint64_t threshold = static_cast<uint64_t>(lo[c]);
  int64_t ties = take[c];
  for (int64_t r = offsets[g]; r < offsets[g + 1]; ++r) {
    uint64_t bits = __float_as_uint(probs[r * n + j]);
    if (bits > threshold || (bits == threshold && ties-- > 0))
      mask[r * n + j] = 1.0f;
  }
}

/// start[b] = k * the valid positions of the sequences before b (b <= B),
/// and rowPtr[B * time] = start[B]: a serial scan over the B lengths (one
/// per sentence, so short), each clamped to [0, time] as on the CPU.
__global__ void paddingStartKernel(int64_t B, int64_t time, int64_t k,
                                   const int32_t *lengths, int32_t *start,
                                   int32_t *rowPtr) {
  if (blockIdx.x != 0 || threadIdx.x != 0)
    return;
  int64_t sum = 0;
  for (int64_t b = 0; b < B; ++b) {
    start[b] = static_cast<int32_t>(sum);
    sum += k * min(max(static_cast<int64_t>(lengths[b]), int64_t(0)), time);
  }
  start[B] = static_cast<int32_t>(sum);
  rowPtr[B * time] = static_cast<int32_t>(sum);
}

/// One thread per top-k slot q = t * k + s: the row pointer of token t
/// (s = 0) and, for a valid token, its kept assignment; slots past the
/// total get expert 0 and gate 0.
__global__ void dropPaddingKernel(int64_t B, int64_t time, int64_t k,
                                  const int32_t *lengths, const int32_t *start,
                                  const int32_t *expert, const float *gate,
                                  int32_t *rowPtr, int32_t *keptExpert,
                                  float *keptGate) {
  MOE_GRID_STRIDE(q, B * time * k) {
    int64_t t = q / k, s = q % k, b = t / time, j = t % time;
    int64_t length =
        min(max(static_cast<int64_t>(lengths[b]), int64_t(0)), time);
    int64_t at = start[b] + k * min(j, length);
    if (s == 0)
      rowPtr[t] = static_cast<int32_t>(at);
    if (j < length) {
      keptExpert[at + s] = expert[q];
      keptGate[at + s] = gate[q];
    }
    if (q >= start[B]) {
      keptExpert[q] = 0;
      keptGate[q] = 0.0f;
    }
  }
}

__global__ void dropPaddingBackwardKernel(int64_t T, int64_t k,
                                          const int32_t *rowPtr,
                                          const float *dKeptGate,
                                          float *dGate) {
  MOE_GRID_STRIDE(q, T * k) {
    int64_t t = q / k;
    dGate[q] = rowPtr[t + 1] > rowPtr[t] ? dKeptGate[rowPtr[t] + q % k] : 0.0f;
  }
}

} // namespace

//===----------------------------------------------------------------------===//
// Backend methods
//===----------------------------------------------------------------------===//

void CudaBackend::noisyTopKForward(
    int64_t T, int64_t n, int64_t k, const float *clean, const float *rawNoise,
    float noiseEps, bool training, uint64_t seed, uint64_t counter,
    float *noisy, float *noiseStd, float *topValues, int32_t *expert,
    float *gate, uint64_t elementOffset, const int32_t *noisePosition) {
  checkTopK("noisyTopKForward", T, n, k);
  checkElementOffset("noisyTopKForward", elementOffset);
  if (T == 0)
    return;
  const Context &ctx = *ctx_;
  bool addNoise = training && rawNoise != nullptr;
  MOE_LAUNCH(noiseKernel, dim3(gridFor((T * n + 3) / 4)),
             dim3(kElementwiseThreads), 0, ctx.stream, T * n, n, clean,
             rawNoise, noiseEps, addNoise, seed, counter, elementOffset / 4,
             noisePosition, noisy, noiseStd);
  int64_t K = std::min(k + 1, n);
  DeviceBuffer<int32_t> cand(ctx.stream, T * K);
  selectTopK(ctx, T, n, K, noisy, /*sorted=*/true, cand.get());
  MOE_LAUNCH(topKFinalizeKernel, dim3(rowGrid<WarpPerRow>(T)),
             dim3(WarpPerRow::kBlock), 0, ctx.stream, T, n, k, K, noisy,
             cand.get(), topValues, expert, gate);
}

void CudaBackend::noisyTopKBackward(
    int64_t T, int64_t n, int64_t k, const float *noisy, const float *clean,
    const float *rawNoise, const float *noiseStd, const int32_t *expert,
    const float *gate, const float *dGate, float *dClean, float *dRawNoise) {
  checkTopK("noisyTopKBackward", T, n, k);
  if (T == 0)
    return;
  const Context &ctx = *ctx_;
  size_t bytes = static_cast<size_t>(T * n) * sizeof(float);
  MOE_CUDA_CHECK(cudaMemsetAsync(dClean, 0, bytes, ctx.stream));
  if (rawNoise)
    MOE_CUDA_CHECK(cudaMemsetAsync(dRawNoise, 0, bytes, ctx.stream));
  MOE_LAUNCH(topKBackwardKernel, dim3(rowGrid<WarpPerRow>(T)),
             dim3(WarpPerRow::kBlock), 0, ctx.stream, T, n, k, noisy, clean,
             rawNoise, noiseStd, expert, gate, dGate, dClean, dRawNoise);
}

void CudaBackend::loadEstimateForward(int64_t T, int64_t n, int64_t k,
                                      const float *clean, const float *noisy,
                                      const float *noiseStd,
                                      const float *topValues,
                                      const int32_t *rowPtr, float *load) {
  checkTopK("loadEstimateForward", T, n, k);
  columnSum(*ctx_, T, n,
            LoadProbability{clean, noisy, noiseStd, topValues, n, k, rowPtr},
            1.0f, /*accumulate=*/false, load);
}

void CudaBackend::loadEstimateBackward(
    int64_t T, int64_t n, int64_t k, const float *clean, const float *noisy,
    const float *rawNoise, const float *noiseStd, const float *topValues,
    const int32_t *rowPtr, const float *dLoad, float *dClean,
    float *dRawNoise) {
  checkTopK("loadEstimateBackward", T, n, k);
  if (!rawNoise)
    throw std::invalid_argument("loadEstimateBackward: rawNoise is required");
  if (k == n) // every threshold is -inf: P = 1 has no gradient
    return;
  MOE_LAUNCH(loadBackwardKernel, dim3(rowGrid<WarpPerRow>(T)),
             dim3(WarpPerRow::kBlock), 0, ctx_->stream, T, n, k, clean, noisy,
             rawNoise, noiseStd, topValues, rowPtr, dLoad, dClean, dRawNoise);
}

void CudaBackend::dropPaddingForward(int64_t B, int64_t time, int64_t k,
                                     const int32_t *lengths,
                                     const int32_t *expert, const float *gate,
                                     int32_t *rowPtr, int32_t *keptExpert,
                                     float *keptGate) {
  checkDropPaddingShape("dropPaddingForward", B, time, k);
  const Context &ctx = *ctx_;
  DeviceBuffer<int32_t> start(ctx.stream, B + 1);
  MOE_LAUNCH(paddingStartKernel, dim3(1), dim3(1), 0, ctx.stream, B, time, k,
             lengths, start.get(), rowPtr);
  if (B * time == 0)
    return;
  MOE_LAUNCH(dropPaddingKernel, dim3(gridFor(B * time * k)),
             dim3(kElementwiseThreads), 0, ctx.stream, B, time, k, lengths,
             start.get(), expert, gate, rowPtr, keptExpert, keptGate);
}

void CudaBackend::dropPaddingBackward(int64_t T, int64_t k,
                                      const int32_t *rowPtr,
                                      const float *dKeptGate, float *dGate) {
  checkDropPaddingShape("dropPaddingBackward", T, 1, k);
  if (T == 0)
    return;
  MOE_LAUNCH(dropPaddingBackwardKernel, dim3(gridFor(T * k)),
             dim3(kElementwiseThreads), 0, ctx_->stream, T, k, rowPtr,
             dKeptGate, dGate);
}

void CudaBackend::softmaxForward(int64_t T, int64_t n, const float *logits,
                                 float *probs) {
  checkRouterShape("softmaxForward", T, n);
  forRowLength(n, [&](auto group) {
    using G = decltype(group);
    MOE_LAUNCH(softmaxForwardKernel<G>, dim3(rowGrid<G>(T)), dim3(G::kBlock), 0,
               ctx_->stream, T, n, logits, probs);
  });
}

void CudaBackend::softmaxBackward(int64_t T, int64_t n, const float *probs,
                                  const float *dProbs, float *dLogits) {
  checkRouterShape("softmaxBackward", T, n);
  forRowLength(n, [&](auto group) {
    using G = decltype(group);
    MOE_LAUNCH(softmaxBackwardKernel<G>, dim3(rowGrid<G>(T)), dim3(G::kBlock),
               0, ctx_->stream, T, n, probs, dProbs, dLogits);
  });
}

void CudaBackend::batchwiseMaskForward(int64_t T, int64_t n, int64_t m,
                                       const float *logits, float *mask,
                                       int32_t *rowPtr, int32_t *expert,
                                       float *gate) {
  checkRouterShape("batchwiseMaskForward", T, n);
  if (m < 0 || m > T)
    throw std::invalid_argument(
        "batchwiseMaskForward: m = " + std::to_string(m) + " is not in [0, T]");
  const Context &ctx = *ctx_;
  if (noRowsToAssign(ctx, T, rowPtr, /*numAssigned=*/nullptr))
    return;
  MOE_CUDA_CHECK(cudaMemsetAsync(
      mask, 0, static_cast<size_t>(T * n) * sizeof(float), ctx.stream));
  if (m > 0) {
    // Tokens are ranked by their probabilities; the columns of those become
    // rows so that the selection reads contiguous memory.
    DeviceBuffer<float> probs = routerProbabilities(ctx, T, n, logits);
    DeviceBuffer<float> columns(ctx.stream, n * T);
    MOE_LAUNCH(transposeKernel, dim3(ceilDiv(T, 32), ceilDiv(n, 32)),
               dim3(32, 8), 0, ctx.stream, T, n, probs.get(), columns.get());
    DeviceBuffer<int32_t> cand(ctx.stream, n * m);
    selectTopK(ctx, n, T, m, columns.get(), /*sorted=*/false, cand.get());
    MOE_LAUNCH(scatterBatchwiseKernel, dim3(gridFor(n * m)),
               dim3(kElementwiseThreads), 0, ctx.stream, n, m, cand.get(),
               mask);
  }
  maskToAssignments(ctx, T, n, logits, mask, rowPtr, expert, gate);
}

void CudaBackend::thresholdMaskForward(int64_t T, int64_t n,
                                       const float *logits,
                                       const float *thresholds, float *mask,
                                       int32_t *rowPtr, int32_t *expert,
                                       float *gate, int64_t capacity,
                                       int64_t *numAssigned) {
  checkRouterShape("thresholdMaskForward", T, n);
  checkCount("thresholdMaskForward", capacity);
  const Context &ctx = *ctx_;
  if (noRowsToAssign(ctx, T, rowPtr, numAssigned))
    return;
  DeviceBuffer<float> probs = routerProbabilities(ctx, T, n, logits);
  MOE_LAUNCH(thresholdMaskKernel, dim3(gridFor(T * n)),
             dim3(kElementwiseThreads), 0, ctx.stream, T, n, probs.get(),
             thresholds, mask);
  int64_t assigned = maskToAssignments(ctx, T, n, logits, mask, rowPtr, expert,
                                       gate, "thresholdMaskForward", capacity);
  if (numAssigned)
    *numAssigned = assigned;
}

void CudaBackend::maskAssignmentsForward(int64_t T, int64_t n,
                                         const float *logits,
                                         const float *mask, int32_t *rowPtr,
                                         int32_t *expert, float *gate,
                                         int64_t capacity,
                                         int64_t *numAssigned) {
  checkRouterShape("maskAssignmentsForward", T, n);
  checkCount("maskAssignmentsForward", capacity);
  const Context &ctx = *ctx_;
  if (noRowsToAssign(ctx, T, rowPtr, numAssigned)) {
    clearUnusedSlots(ctx, expert, gate, 0, capacity);
    return;
  }
  // maskToAssignments clears the unused slots.
  int64_t used = maskToAssignments(ctx, T, n, logits, mask, rowPtr, expert,
                                   gate, "maskAssignmentsForward", capacity);
  if (numAssigned)
    *numAssigned = used;
}

void CudaBackend::maskedGateBackward(int64_t T, int64_t n,
                                     const int32_t *rowPtr,
                                     const int32_t *expert, const float *gate,
                                     const float *dGate, float *dLogits) {
  checkRouterShape("maskedGateBackward", T, n);
  const Context &ctx = *ctx_;
  if (T == 0)
    return;
  MOE_CUDA_CHECK(cudaMemsetAsync(
      dLogits, 0, static_cast<size_t>(T * n) * sizeof(float), ctx.stream));
  MOE_LAUNCH(maskedGateBackwardKernel, dim3(rowGrid<WarpPerRow>(T)),
             dim3(WarpPerRow::kBlock), 0, ctx.stream, T, n, rowPtr, expert,
             gate, dGate, dLogits);
}

void CudaBackend::batchwiseThresholdLossForward(int64_t T, int64_t n,
                                                const float *logits,
                                                const float *batchMask,
                                                const float *thresholds,
                                                float *loss) {
  checkRouterShape("batchwiseThresholdLossForward", T, n);
  const Context &ctx = *ctx_;
  DeviceBuffer<float> probs = routerProbabilities(ctx, T, n, logits);
  deterministicSum(ctx, T * n,
                   ThresholdLossTerm{probs.get(), batchMask, thresholds, n},
                   1.0f, loss);
}

void CudaBackend::batchwiseThresholdLossBackward(
    int64_t T, int64_t n, const float *logits, const float *batchMask,
    const float *thresholds, const float *dLoss, float *dThresholds) {
  checkRouterShape("batchwiseThresholdLossBackward", T, n);
  const Context &ctx = *ctx_;
  DeviceBuffer<float> probs = routerProbabilities(ctx, T, n, logits);
  columnSum(ctx, T, n, MaskDifference{probs.get(), batchMask, thresholds, n},
            -1.0f, /*accumulate=*/false, dThresholds, dLoss);
}

void CudaBackend::importanceForward(int64_t A, int64_t n, const int32_t *expert,
                                    const float *gate, float *importance) {
  checkRouterShape("importanceForward", A, n);
  const Context &ctx = *ctx_;
  if (A == 0) {
    MOE_LAUNCH(fillKernel, dim3(gridFor(n)), dim3(kElementwiseThreads), 0,
               ctx.stream, importance, 0.0f, n);
    return;
  }
  // Sort the assignments by expert (stable, so token order within an
  // expert) and sum each segment: deterministic without atomics.
  DeviceBuffer<int32_t> sortedExperts(ctx.stream, A), order(ctx.stream, A);
  DeviceBuffer<int32_t> offsets(ctx.stream, n + 1);
  stableSortByKey(ctx, A, n, expert, sortedExperts.get(), order.get());
  segmentOffsets(ctx, A, n, sortedExperts.get(), offsets.get());
  MOE_LAUNCH(segmentSumKernel, dim3(static_cast<unsigned>(n)),
             dim3(Block256::kBlock), 0, ctx.stream, offsets.get(), order.get(),
             gate, importance);
}

void CudaBackend::importanceBackward(int64_t A, int64_t n,
                                     const int32_t *expert,
                                     const float *dImportance, float *dGate) {
  checkRouterShape("importanceBackward", A, n);
  MOE_LAUNCH(importanceBackwardKernel, dim3(gridFor(A)),
             dim3(kElementwiseThreads), 0, ctx_->stream, A, expert, dImportance,
             dGate);
}

void CudaBackend::cvSquaredForward(int64_t n, const float *v, float weight,
                                   float *loss) {
  if (n < 1)
    throw std::invalid_argument("cvSquaredForward: need n >= 1");
  MOE_LAUNCH(cvSquaredKernel, dim3(1), dim3(Block256::kBlock), 0, ctx_->stream,
             n, v, weight, static_cast<const float *>(nullptr), loss,
             static_cast<float *>(nullptr));
}

void CudaBackend::cvSquaredBackward(int64_t n, const float *v, float weight,
                                    const float *dLoss, float *dV) {
  if (n < 1)
    throw std::invalid_argument("cvSquaredBackward: need n >= 1");
  MOE_LAUNCH(cvSquaredKernel, dim3(1), dim3(Block256::kBlock), 0, ctx_->stream,
             n, v, weight, dLoss, static_cast<float *>(nullptr), dV);
}

void CudaBackend::l2BalanceForward(int64_t T, int64_t n,
                                   const float *importance, float weight,
                                   float *loss) {
  if (T < 1 || n < 1)
    throw std::invalid_argument("l2BalanceForward: need T >= 1 and n >= 1");
  MOE_LAUNCH(l2BalanceKernel, dim3(1), dim3(Block256::kBlock), 0, ctx_->stream,
             T, n, importance, weight, loss);
}

void CudaBackend::l2BalanceBackward(int64_t T, int64_t n,
                                    const float *importance, float weight,
                                    const float *dLoss, float *dImportance) {
  if (T < 1 || n < 1)
    throw std::invalid_argument("l2BalanceBackward: need T >= 1 and n >= 1");
  MOE_LAUNCH(l2BalanceBackwardKernel, dim3(gridFor(n)),
             dim3(kElementwiseThreads), 0, ctx_->stream, T, n, importance,
             weight, dLoss, dImportance);
}

void CudaBackend::countAtLeastMidpoint(int64_t rows, int64_t n, int64_t groups,
                                       const int32_t *groupOffsets,
                                       const float *probs, const int64_t *lo,
                                       const int64_t *hi, int64_t *counts) {
  const Context &ctx = *ctx_;
  int64_t columns = groups * n;
  if (rows < 0 || columns < 0)
    throw std::invalid_argument("countAtLeastMidpoint: negative sizes");
  if (columns == 0)
    return;
  MOE_CUDA_CHECK(
      cudaMemsetAsync(counts, 0, columns * sizeof(int64_t), ctx.stream));
  int64_t chunks = (rows + kCountRowsPerBlock - 1) / kCountRowsPerBlock;
  if (chunks == 0)
    return;
  if (chunks > 65535)
    throw std::invalid_argument(
        "countAtLeastMidpoint: " + std::to_string(rows) + " rows is too many");
  MOE_LAUNCH(countAtLeastKernel,
             dim3(gridFor(columns), static_cast<unsigned>(chunks)),
             dim3(kElementwiseThreads), 0, ctx.stream, n, groups, groupOffsets,
             probs, lo, hi, reinterpret_cast<unsigned long long *>(counts));
}

void CudaBackend::narrowBisection(int64_t columns, int64_t total,
                                  const int64_t *counts, int64_t *lo,
                                  int64_t *hi) {
  if (columns <= 0)
    return;
  MOE_LAUNCH(narrowBisectionKernel, dim3(gridFor(columns)),
             dim3(kElementwiseThreads), 0, ctx_->stream, columns, total, counts,
             lo, hi);
}

void CudaBackend::selectAboveThreshold(int64_t rows, int64_t n, int64_t groups,
                                       const int32_t *groupOffsets,
                                       const float *probs, const int64_t *lo,
                                       const int64_t *take, float *mask) {
  const Context &ctx = *ctx_;
  if (rows * n > 0)
    MOE_CUDA_CHECK(
        cudaMemsetAsync(mask, 0, rows * n * sizeof(float), ctx.stream));
  if (groups * n <= 0)
    return;
  MOE_LAUNCH(selectAboveThresholdKernel, dim3(gridFor(groups * n)),
             dim3(kElementwiseThreads), 0, ctx.stream, n, groups, groupOffsets,
             probs, lo, take, mask);
}

} // namespace moe::rt
