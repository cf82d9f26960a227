//===- Routing.cu - CUDA gating kernels (router math in f32) --------------===//
//
// Noisy top-k gating, the smooth load estimator, dense softmax gating, the
// batchwise and threshold masks of Appendix A with their threshold loss (on
// the per-token softmax probabilities of the logits, computed into a scratch
// buffer by the softmax kernel), and the balancing losses.
//
// Top-k selection orders a row by (value descending, index ascending), the
// CPU's tie rule. Values are compared through an order-preserving map to
// uint32 (-0.0 is folded onto +0.0 so that it ties with it, as in a float
// comparison). Rows of up to 256 entries are handled by one warp that holds
// the row in registers and extracts the maximum K times; longer rows (up to
// tens of thousands of experts) use a block-wide radix select that finds the
// K-th largest key in four 8-bit histogram passes, gathers the K winners in
// index order, and sorts only those with CUB's segmented sort. No
// floating-point atomics anywhere: every sum is a fixed tree.
//
//===----------------------------------------------------------------------===//

#include "runtime/Checks.h"
#include "runtime/Philox.h"
#include "runtime/cuda/Common.cuh"
#include "runtime/cuda/CudaBackend.h"

#include <cub/block/block_scan.cuh>
#include <cub/device/device_scan.cuh>
#include <cub/device/device_segmented_sort.cuh>

#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace moe::rt {
namespace {

using namespace gpu;

constexpr float kInvSqrt2Pi = 0.3989422804014327f;

__device__ __forceinline__ float sigmoidf(float x) {
  return 1.0f / (1.0f + expf(-x));
}

/// softplus(x) = log(1 + e^x), without overflow for large x.
__device__ __forceinline__ float softplusf(float x) {
  return x > 0.0f ? x + log1pf(expf(-x)) : log1pf(expf(x));
}

//===----------------------------------------------------------------------===//
// Top-K selection
//===----------------------------------------------------------------------===//

/// Order-preserving map float -> uint32 (larger float, larger key).
__device__ __forceinline__ uint32_t orderedKey(float v) {
  uint32_t bits = __float_as_uint(v);
  if (bits == 0x80000000u) // -0.0 ties with +0.0
    bits = 0;
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

/// (key, index) packed so that the larger pack is the earlier element in
/// (value descending, index ascending) order; 0 is below every element.
__device__ __forceinline__ uint64_t packKeyIndex(uint32_t key, int64_t i) {
  return (static_cast<uint64_t>(key) << 32) |
         (0xffffffffu - static_cast<uint32_t>(i));
}

__device__ __forceinline__ int32_t unpackIndex(uint64_t packed) {
  return static_cast<int32_t>(0xffffffffu - static_cast<uint32_t>(packed));
}

/// One warp per row of length <= 32 * J: lane l holds entries l, l + 32, ...
/// and the warp extracts the maximum K times. Writes the K winners in order
/// to cand [rows, K].
template <int J>
__global__ void __launch_bounds__(WarpPerRow::kBlock)
    warpSelectKernel(int64_t rows, int64_t len, int64_t K, const float *src,
                     int32_t *cand) {
  int64_t row = groupRow<WarpPerRow>();
  int lane = groupLane<WarpPerRow>();
  if (row >= rows)
    return;
  const float *x = src + row * len;
  uint64_t item[J];
#pragma unroll
  for (int j = 0; j < J; ++j) {
    int64_t i = j * 32 + lane;
    item[j] = i < len ? packKeyIndex(orderedKey(x[i]), i) : 0;
  }
  for (int64_t r = 0; r < K; ++r) {
    uint64_t best = 0;
#pragma unroll
    for (int j = 0; j < J; ++j)
      best = item[j] > best ? item[j] : best;
    for (int offset = 16; offset > 0; offset >>= 1) {
      uint64_t other = __shfl_xor_sync(kFullMask, best, offset);
      best = other > best ? other : best;
    }
#pragma unroll
    for (int j = 0; j < J; ++j)
      if (item[j] == best)
        item[j] = 0;
    if (lane == (r & 31))
      cand[row * K + r] = unpackIndex(best);
  }
}

constexpr int kSelectThreads = 256;

/// One block per row: radix select of the K-th largest key, then the K
/// winners (keys > K-th, then the lowest-index ties) in index order to
/// candKeys/candIdx [rows, K].
__global__ void __launch_bounds__(kSelectThreads)
    radixSelectKernel(int64_t len, int64_t K, const float *src,
                      uint32_t *candKeys, int32_t *candIdx) {
  using Scan = cub::BlockScan<uint32_t, kSelectThreads>;
  __shared__ typename Scan::TempStorage scanStorage;
  __shared__ uint32_t hist[256];
  __shared__ uint32_t sharedPrefix, sharedRemaining;

  const int tid = threadIdx.x, lane = tid % 32;
  const int64_t row = blockIdx.x;
  const float *x = src + row * len;

  // Invariant: the wanted key has rank `remaining` (1-based, descending)
  // among the keys that match `prefix` on the bits of `prefixMask`.
  uint32_t prefix = 0, prefixMask = 0;
  uint32_t remaining = static_cast<uint32_t>(K);
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int b = tid; b < 256; b += kSelectThreads)
      hist[b] = 0;
    __syncthreads();
    for (int64_t i = tid; i < len; i += kSelectThreads) {
      uint32_t key = orderedKey(x[i]);
      if ((key & prefixMask) == prefix)
        atomicAdd(&hist[(key >> shift) & 0xffu], 1u);
    }
    __syncthreads();
    if (tid < 32) {
      // Lane l owns digits 255 - 8l down to 248 - 8l; an inclusive scan
      // over lanes counts the keys at or above each lane's digits.
      uint32_t counts[8], sum = 0;
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        counts[j] = hist[255 - 8 * lane - j];
        sum += counts[j];
      }
      uint32_t inclusive = sum;
      for (int offset = 1; offset < 32; offset <<= 1) {
        uint32_t up = __shfl_up_sync(kFullMask, inclusive, offset);
        if (lane >= offset)
          inclusive += up;
      }
      uint32_t above = inclusive - sum;
      if (above < remaining && remaining <= inclusive) {
        for (int j = 0; j < 8; ++j) {
          if (above + counts[j] >= remaining) {
            uint32_t digit = 255 - 8 * lane - j;
            sharedPrefix = prefix | (digit << shift);
            sharedRemaining = remaining - above;
            break;
          }
          above += counts[j];
        }
      }
    }
    __syncthreads();
    prefix = sharedPrefix;
    remaining = sharedRemaining;
    prefixMask |= 0xffu << shift;
  }

  // `prefix` is the K-th largest key; take every larger key and the first
  // `remaining` equal ones. Tiles are scanned in index order; the packed
  // flags count larger keys in the high and equal keys in the low half.
  const uint32_t numGreater = static_cast<uint32_t>(K) - remaining;
  uint32_t *outKeys = candKeys + row * K;
  int32_t *outIdx = candIdx + row * K;
  uint32_t seenGreater = 0, seenEqual = 0;
  for (int64_t base = 0; base < len; base += kSelectThreads) {
    int64_t i = base + tid;
    uint32_t key = i < len ? orderedKey(x[i]) : 0;
    bool greater = i < len && key > prefix;
    bool equal = i < len && key == prefix;
    uint32_t flags = (greater ? 1u << 16 : 0u) | (equal ? 1u : 0u);
    uint32_t before, total;
    Scan(scanStorage).ExclusiveSum(flags, before, total);
    if (greater) {
      uint32_t slot = seenGreater + (before >> 16);
      outKeys[slot] = key;
      outIdx[slot] = static_cast<int32_t>(i);
    } else if (equal) {
      uint32_t rank = seenEqual + (before & 0xffffu);
      if (rank < remaining) {
        outKeys[numGreater + rank] = key;
        outIdx[numGreater + rank] = static_cast<int32_t>(i);
      }
    }
    seenGreater += total >> 16;
    seenEqual += total & 0xffffu;
    __syncthreads(); // scanStorage is reused by the next tile
  }
}

__global__ void segmentStartsKernel(int64_t rows, int64_t K, int32_t *offsets) {
  MOE_GRID_STRIDE(r, rows + 1) { offsets[r] = static_cast<int32_t>(r * K); }
}

/// cand [rows, K] = indices of the K largest entries of each row of src
/// [rows, len], in (value descending, index ascending) order when `sorted`,
/// otherwise in an unspecified (but deterministic) order.
void selectTopK(const Context &ctx, int64_t rows, int64_t len, int64_t K,
                const float *src, bool sorted, int32_t *cand) {
  if (rows == 0 || K == 0)
    return;
  if (rows * K > std::numeric_limits<int32_t>::max())
    throw std::invalid_argument("top-k selection: rows * k exceeds 2^31-1");
  if (len <= 32) {
    MOE_LAUNCH(warpSelectKernel<1>, dim3(rowGrid<WarpPerRow>(rows)),
               dim3(WarpPerRow::kBlock), 0, ctx.stream, rows, len, K, src,
               cand);
    return;
  }
  if (len <= 256) {
    MOE_LAUNCH(warpSelectKernel<8>, dim3(rowGrid<WarpPerRow>(rows)),
               dim3(WarpPerRow::kBlock), 0, ctx.stream, rows, len, K, src,
               cand);
    return;
  }
  DeviceBuffer<uint32_t> keys(ctx.stream, rows * K);
  if (!sorted) {
    MOE_LAUNCH(radixSelectKernel, dim3(static_cast<unsigned>(rows)),
               dim3(kSelectThreads), 0, ctx.stream, len, K, src, keys.get(),
               cand);
    return;
  }
  DeviceBuffer<int32_t> unsortedIdx(ctx.stream, rows * K);
  DeviceBuffer<uint32_t> sortedKeys(ctx.stream, rows * K);
  DeviceBuffer<int32_t> offsets(ctx.stream, rows + 1);
  MOE_LAUNCH(radixSelectKernel, dim3(static_cast<unsigned>(rows)),
             dim3(kSelectThreads), 0, ctx.stream, len, K, src, keys.get(),
             unsortedIdx.get());
  MOE_LAUNCH(segmentStartsKernel, dim3(gridFor(rows + 1)),
             dim3(kElementwiseThreads), 0, ctx.stream, rows, K, offsets.get());
  // Stable descending sort by key: equal keys keep index order, because the
  // candidates of one key were written in index order.
  size_t bytes = 0;
  MOE_CUDA_CHECK(cub::DeviceSegmentedSort::StableSortPairsDescending(
      nullptr, bytes, keys.get(), sortedKeys.get(), unsortedIdx.get(), cand,
      rows * K, rows, offsets.get(), offsets.get() + 1, ctx.stream));
  DeviceBuffer<unsigned char> temp(ctx.stream, bytes);
  MOE_CUDA_CHECK(cub::DeviceSegmentedSort::StableSortPairsDescending(
      temp.get(), bytes, keys.get(), sortedKeys.get(), unsortedIdx.get(), cand,
      rows * K, rows, offsets.get(), offsets.get() + 1, ctx.stream));
}

//===----------------------------------------------------------------------===//
// Noisy top-k
//===----------------------------------------------------------------------===//

/// noisy = clean + z * s, noiseStd = s = softplus(raw) + eps (0 without
/// rawNoise). Thread g covers the four elements of Philox block g and
/// reproduces philoxNormalAt's Box-Muller pairs.
__global__ void noiseKernel(int64_t count, const float *clean,
                            const float *rawNoise, float noiseEps,
                            bool addNoise, uint64_t seed, uint64_t counter,
                            uint64_t firstBlock, float *noisy,
                            float *noiseStd) {
  int64_t groups = (count + 3) / 4;
  MOE_GRID_STRIDE(g, groups) {
    float z[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    if (addNoise) {
      PhiloxBlock bits =
          philox4x32(seed, firstBlock + static_cast<uint64_t>(g), counter);
#pragma unroll
      for (int pair = 0; pair < 2; ++pair) {
        float u1 = philoxUniform(bits.v[2 * pair]);
        float u2 = philoxUniform(bits.v[2 * pair + 1]);
        float radius = sqrtf(-2.0f * logf(u1));
        float angle = 6.283185307179586f * u2;
        z[2 * pair] = radius * cosf(angle);
        z[2 * pair + 1] = radius * sinf(angle);
      }
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      int64_t i = 4 * g + j;
      if (i >= count)
        break;
      float s = rawNoise ? softplusf(rawNoise[i]) + noiseEps : 0.0f;
      noiseStd[i] = s;
      noisy[i] = addNoise ? clean[i] + z[j] * s : clean[i];
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
// Load estimator
//===----------------------------------------------------------------------===//

/// P(x, i) = Phi((clean - thr) / s) with thr the k-th largest noisy value
/// excluding i: thrIn = topValues[:, k] when i is in the top k (noisy >
/// thrIn), else thrOut = topValues[:, k-1]; 1 or 0 by that test when s = 0,
/// as on the CPU. A threshold of -inf (k == n) gives Phi(inf) = 1.
struct LoadProbability {
  const float *clean, *noisy, *noiseStd, *topValues;
  int64_t n, k;
  __device__ float operator()(int64_t t, int64_t i) const {
    const float *tv = topValues + t * (k + 1);
    int64_t idx = t * n + i;
    bool in = noisy[idx] > tv[k];
    float s = noiseStd[idx];
    if (!(s > 0.0f))
      return in ? 1.0f : 0.0f;
    return normcdff((clean[idx] - (in ? tv[k] : tv[k - 1])) / s);
  }
};

/// Index of the entry at sorted position p (value descending, index
/// ascending) of row h, whose value is v: the (p - #greater)-th entry equal
/// to v in index order. Warp-uniform; every lane returns the same index.
__device__ int64_t positionIndex(const float *h, int64_t n, float v, int64_t p,
                                 int lane) {
  int greater = 0;
  for (int64_t i = lane; i < n; i += 32)
    greater += h[i] > v ? 1 : 0;
  int64_t need = p - warpSum(greater);
  for (int64_t base = 0; base < n; base += 32) {
    int64_t i = base + lane;
    unsigned equal = __ballot_sync(kFullMask, i < n && h[i] == v);
    int64_t count = __popc(equal);
    if (need < count) {
      for (int64_t q = 0; q < need; ++q)
        equal &= equal - 1; // drop the lowest set bits
      return base + __ffs(static_cast<int>(equal)) - 1;
    }
    need -= count;
  }
  return -1;
}

/// Accumulates dLoad through P(x, i) into dClean/dRawNoise, including the
/// thresholds: thrIn = topValues[:, k] is H of the expert at sorted
/// position k, thrOut = topValues[:, k-1] that at position k-1. Entries with
/// s = 0 (P constant) contribute nothing. One warp per token; k < n.
__global__ void __launch_bounds__(WarpPerRow::kBlock)
    loadBackwardKernel(int64_t T, int64_t n, int64_t k, const float *clean,
                       const float *noisy, const float *rawNoise,
                       const float *noiseStd, const float *topValues,
                       const float *dLoad, float *dClean, float *dRawNoise) {
  int64_t t = groupRow<WarpPerRow>();
  int lane = groupLane<WarpPerRow>();
  if (t >= T)
    return;
  int64_t off = t * n;
  const float *tv = topValues + t * (k + 1);
  float vIn = tv[k], vOut = tv[k - 1];
  int64_t jOut = positionIndex(noisy + off, n, vOut, k - 1, lane);
  int64_t jIn = positionIndex(noisy + off, n, vIn, k, lane);
  float gIn = 0.0f, gOut = 0.0f;
  for (int64_t i = lane; i < n; i += 32) {
    int64_t idx = off + i;
    float s = noiseStd[idx];
    if (!(s > 0.0f))
      continue;
    bool inTop = noisy[idx] > vIn;
    float thr = inTop ? vIn : vOut;
    // As on the CPU: no gradient past an infinite threshold (k = n), and
    // none where the density underflows (avoids inf * 0).
    if (!isfinite(thr))
      continue;
    float u = (clean[idx] - thr) / s;
    float g = dLoad[i] * kInvSqrt2Pi * expf(-0.5f * u * u) / s;
    if (g == 0.0f)
      continue;
    dClean[idx] += g;
    dRawNoise[idx] -= g * u * sigmoidf(rawNoise[idx]);
    if (inTop)
      gIn -= g;
    else
      gOut -= g;
  }
  gIn = warpSum(gIn);
  gOut = warpSum(gOut);
  __syncwarp(); // the per-expert updates above are visible to lane 0
  if (lane != 0)
    return;
  // The thresholds are H = clean + z * s of experts jIn and jOut.
  const int64_t owners[2] = {jIn, jOut};
  const float grads[2] = {gIn, gOut};
  for (int q = 0; q < 2; ++q) {
    if (owners[q] < 0)
      continue;
    int64_t idx = off + owners[q];
    float s = noiseStd[idx];
    float z = s > 0.0f ? (noisy[idx] - clean[idx]) / s : 0.0f;
    dClean[idx] += grads[q];
    dRawNoise[idx] += grads[q] * z * sigmoidf(rawNoise[idx]);
  }
}

//===----------------------------------------------------------------------===//
// Softmax gating
//===----------------------------------------------------------------------===//

template <class G>
__global__ void __launch_bounds__(G::kBlock)
    softmaxForwardKernel(int64_t T, int64_t n, const float *logits,
                         float *probs) {
  int64_t t = groupRow<G>();
  int lane = groupLane<G>();
  if (t >= T)
    return;
  const float *x = logits + t * n;
  float *y = probs + t * n;
  float mx = -INFINITY;
  for (int64_t i = lane; i < n; i += G::kThreads)
    mx = fmaxf(mx, x[i]);
  mx = groupMax<G>(mx);
  float acc = 0.0f;
  for (int64_t i = lane; i < n; i += G::kThreads)
    acc += expf(x[i] - mx);
  float inv = 1.0f / groupSum<G>(acc);
  for (int64_t i = lane; i < n; i += G::kThreads)
    y[i] = expf(x[i] - mx) * inv;
}

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

/// The router probabilities X = G_sigma(x) [T, n] = softmax of each row of
/// logits (Eq. 3), which the batchwise mask ranks (Eq. 6), the threshold
/// mask compares with its thresholds (Eq. 7) and the threshold loss
/// measures (Eq. 8). Same kernel as softmaxForward.
DeviceBuffer<float> routerProbabilities(const Context &ctx, int64_t T,
                                        int64_t n, const float *logits) {
  DeviceBuffer<float> probs(ctx.stream, T * n);
  forRowLength(n, [&](auto group) {
    using G = decltype(group);
    MOE_LAUNCH(softmaxForwardKernel<G>, dim3(rowGrid<G>(T)), dim3(G::kBlock), 0,
               ctx.stream, T, n, logits, probs.get());
  });
  return probs;
}

//===----------------------------------------------------------------------===//
// Masks in assignment form
//===----------------------------------------------------------------------===//

/// out [cols, rows] = in [rows, cols]^T through a shared 32x32 tile.
__global__ void transposeKernel(int64_t rows, int64_t cols, const float *in,
                                float *out) {
  __shared__ float tile[32][33];
  int64_t r0 = static_cast<int64_t>(blockIdx.x) * 32;
  int64_t c0 = static_cast<int64_t>(blockIdx.y) * 32;
  for (int j = threadIdx.y; j < 32; j += blockDim.y) {
    int64_t r = r0 + j, c = c0 + threadIdx.x;
    if (r < rows && c < cols)
      tile[j][threadIdx.x] = in[r * cols + c];
  }
  __syncthreads();
  for (int j = threadIdx.y; j < 32; j += blockDim.y) {
    int64_t c = c0 + j, r = r0 + threadIdx.x;
    if (c < cols && r < rows)
      out[c * rows + r] = tile[threadIdx.x][j];
  }
}

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

/// counts[t] = number of kept experts of token t. One warp per token.
__global__ void __launch_bounds__(WarpPerRow::kBlock)
    countMaskKernel(int64_t T, int64_t n, const float *mask, int32_t *counts) {
  int64_t t = groupRow<WarpPerRow>();
  int lane = groupLane<WarpPerRow>();
  if (t >= T)
    return;
  int count = 0;
  for (int64_t i = lane; i < n; i += 32)
    count += mask[t * n + i] != 0.0f ? 1 : 0;
  count = warpSum(count);
  if (lane == 0)
    counts[t] = count;
}

/// Writes token t's kept experts in increasing order at rowPtr[t] with the
/// softmax of their logits. One warp per token; ballots keep the order.
__global__ void __launch_bounds__(WarpPerRow::kBlock)
    compactMaskKernel(int64_t T, int64_t n, const float *logits,
                      const float *mask, const int32_t *rowPtr, int32_t *expert,
                      float *gate) {
  int64_t t = groupRow<WarpPerRow>();
  int lane = groupLane<WarpPerRow>();
  if (t >= T)
    return;
  const float *x = logits + t * n, *keep = mask + t * n;
  float mx = -INFINITY;
  for (int64_t i = lane; i < n; i += 32)
    if (keep[i] != 0.0f)
      mx = fmaxf(mx, x[i]);
  mx = warpMax(mx);
  const int64_t begin = rowPtr[t];
  int64_t out = begin;
  float acc = 0.0f;
  for (int64_t base = 0; base < n; base += 32) {
    int64_t i = base + lane;
    bool kept = i < n && keep[i] != 0.0f;
    unsigned ballot = __ballot_sync(kFullMask, kept);
    if (kept) {
      int64_t pos = out + __popc(ballot & ((1u << lane) - 1u));
      float e = expf(x[i] - mx);
      expert[pos] = static_cast<int32_t>(i);
      gate[pos] = e;
      acc += e;
    }
    out += __popc(ballot);
  }
  float sum = warpSum(acc);
  __syncwarp(); // the unnormalized gates written above are visible
  for (int64_t p = begin + lane; p < out; p += 32)
    gate[p] /= sum;
}

int32_t readInt(const Context &ctx, const int32_t *devicePtr) {
  int32_t value = 0;
  MOE_CUDA_CHECK(cudaMemcpyAsync(&value, devicePtr, sizeof(int32_t),
                                 cudaMemcpyDeviceToHost, ctx.stream));
  MOE_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  return value;
}

/// From a 0/1 mask [T, n]: rowPtr [T+1] and the token-major assignments
/// with softmax gates over each token's kept logits. With a `kernel` name
/// (threshold masks) the assignments must fit in `capacity` slots: the
/// row pointers are scanned first and their total read to the host, which
/// throws std::runtime_error (as the CPU does) before any assignment is
/// written; returns the total then, else -1 (no synchronisation).
int64_t maskToAssignments(const Context &ctx, int64_t T, int64_t n,
                          const float *logits, const float *mask,
                          int32_t *rowPtr, int32_t *expert, float *gate,
                          const char *kernel = nullptr, int64_t capacity = 0) {
  DeviceBuffer<int32_t> counts(ctx.stream, T + 1);
  MOE_CUDA_CHECK(
      cudaMemsetAsync(counts.get() + T, 0, sizeof(int32_t), ctx.stream));
  MOE_LAUNCH(countMaskKernel, dim3(rowGrid<WarpPerRow>(T)),
             dim3(WarpPerRow::kBlock), 0, ctx.stream, T, n, mask, counts.get());
  size_t bytes = 0;
  MOE_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(nullptr, bytes, counts.get(),
                                               rowPtr, T + 1, ctx.stream));
  DeviceBuffer<unsigned char> temp(ctx.stream, bytes);
  MOE_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(temp.get(), bytes, counts.get(),
                                               rowPtr, T + 1, ctx.stream));
  int64_t total = -1;
  if (kernel) {
    total = readInt(ctx, rowPtr + T);
    checkThresholdCapacity(kernel, total, capacity);
  }
  MOE_LAUNCH(compactMaskKernel, dim3(rowGrid<WarpPerRow>(T)),
             dim3(WarpPerRow::kBlock), 0, ctx.stream, T, n, logits, mask,
             rowPtr, expert, gate);
  return total;
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

/// Mthr - Mbw at (t, i), Mthr from the router probabilities.
struct MaskDifference {
  const float *probs, *batchMask, *thresholds;
  int64_t n;
  __device__ float operator()(int64_t t, int64_t i) const {
    int64_t q = t * n + i;
    return (probs[q] > thresholds[i] ? 1.0f : 0.0f) - batchMask[q];
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

/// dGate[a] = dImportance[expert[a]]. One thread per token.
__global__ void importanceBackwardKernel(int64_t T, const int32_t *rowPtr,
                                         const int32_t *expert,
                                         const float *dImportance,
                                         float *dGate) {
  MOE_GRID_STRIDE(t, T) {
    for (int64_t a = rowPtr[t]; a < rowPtr[t + 1]; ++a)
      dGate[a] = dImportance[expert[a]];
  }
}

/// CV^2 = weight * var / (mean^2 + 1e-10) (population variance, two
/// passes, in double like the CPU) and, when dV is non-null, its gradient.
/// One block.
__global__ void __launch_bounds__(Block256::kBlock)
    cvSquaredKernel(int64_t n, const float *v, float weight, float dLoss,
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
  double scale = static_cast<double>(dLoss) * weight;
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

/// dImportance[i] = scale * (importance_i / T - 1/n), scale = dLoss *
/// weight / T.
__global__ void l2BalanceBackwardKernel(int64_t T, int64_t n,
                                        const float *importance, double scale,
                                        float *dImportance) {
  MOE_GRID_STRIDE(i, n) {
    dImportance[i] = static_cast<float>(
        scale * (static_cast<double>(importance[i]) / T - 1.0 / n));
  }
}

} // namespace

//===----------------------------------------------------------------------===//
// Backend methods
//===----------------------------------------------------------------------===//

void CudaBackend::noisyTopKForward(int64_t T, int64_t n, int64_t k,
                                   const float *clean, const float *rawNoise,
                                   float noiseEps, bool training, uint64_t seed,
                                   uint64_t counter, float *noisy,
                                   float *noiseStd, float *topValues,
                                   int32_t *expert, float *gate,
                                   uint64_t elementOffset) {
  checkTopK("noisyTopKForward", T, n, k);
  checkElementOffset("noisyTopKForward", elementOffset);
  if (T == 0)
    return;
  const Context &ctx = *ctx_;
  bool addNoise = training && rawNoise != nullptr;
  MOE_LAUNCH(noiseKernel, dim3(gridFor((T * n + 3) / 4)),
             dim3(kElementwiseThreads), 0, ctx.stream, T * n, clean, rawNoise,
             noiseEps, addNoise, seed, counter, elementOffset / 4, noisy,
             noiseStd);
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
                                      const float *topValues, float *load) {
  checkTopK("loadEstimateForward", T, n, k);
  columnSum(*ctx_, T, n,
            LoadProbability{clean, noisy, noiseStd, topValues, n, k}, 1.0f,
            /*accumulate=*/false, load);
}

void CudaBackend::loadEstimateBackward(
    int64_t T, int64_t n, int64_t k, const float *clean, const float *noisy,
    const float *rawNoise, const float *noiseStd, const float *topValues,
    const float *dLoad, float *dClean, float *dRawNoise) {
  checkTopK("loadEstimateBackward", T, n, k);
  if (!rawNoise)
    throw std::invalid_argument("loadEstimateBackward: rawNoise is required");
  if (k == n) // every threshold is -inf: P = 1 has no gradient
    return;
  MOE_LAUNCH(loadBackwardKernel, dim3(rowGrid<WarpPerRow>(T)),
             dim3(WarpPerRow::kBlock), 0, ctx_->stream, T, n, k, clean, noisy,
             rawNoise, noiseStd, topValues, dLoad, dClean, dRawNoise);
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
  if (T == 0) {
    MOE_LAUNCH(setIntKernel, dim3(1), dim3(1), 0, ctx.stream, rowPtr, 0);
    return;
  }
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
  if (T == 0) {
    MOE_LAUNCH(setIntKernel, dim3(1), dim3(1), 0, ctx.stream, rowPtr, 0);
    if (numAssigned)
      *numAssigned = 0;
    return;
  }
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
  int64_t used = 0;
  if (T == 0) {
    MOE_LAUNCH(setIntKernel, dim3(1), dim3(1), 0, ctx.stream, rowPtr, 0);
  } else {
    used = maskToAssignments(ctx, T, n, logits, mask, rowPtr, expert, gate,
                             "maskAssignmentsForward", capacity);
  }
  // All-zero bits: expert 0 and gate 0.0f in the unused slots.
  if (capacity > used) {
    MOE_CUDA_CHECK(cudaMemsetAsync(expert + used, 0,
                                   (capacity - used) * sizeof(int32_t),
                                   ctx.stream));
    MOE_CUDA_CHECK(cudaMemsetAsync(gate + used, 0,
                                   (capacity - used) * sizeof(float),
                                   ctx.stream));
  }
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
    const float *thresholds, float dLoss, float *dThresholds) {
  checkRouterShape("batchwiseThresholdLossBackward", T, n);
  const Context &ctx = *ctx_;
  DeviceBuffer<float> probs = routerProbabilities(ctx, T, n, logits);
  columnSum(ctx, T, n, MaskDifference{probs.get(), batchMask, thresholds, n},
            -dLoss, /*accumulate=*/false, dThresholds);
}

void CudaBackend::importanceForward(int64_t T, int64_t n, const int32_t *rowPtr,
                                    const int32_t *expert, const float *gate,
                                    float *importance) {
  checkRouterShape("importanceForward", T, n);
  const Context &ctx = *ctx_;
  int64_t A = T > 0 ? readInt(ctx, rowPtr + T) : 0;
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

void CudaBackend::importanceBackward(int64_t T, int64_t n,
                                     const int32_t *rowPtr,
                                     const int32_t *expert,
                                     const float *dImportance, float *dGate) {
  checkRouterShape("importanceBackward", T, n);
  MOE_LAUNCH(importanceBackwardKernel, dim3(gridFor(T)),
             dim3(kElementwiseThreads), 0, ctx_->stream, T, rowPtr, expert,
             dImportance, dGate);
}

void CudaBackend::cvSquaredForward(int64_t n, const float *v, float weight,
                                   float *loss) {
  if (n < 1)
    throw std::invalid_argument("cvSquaredForward: need n >= 1");
  MOE_LAUNCH(cvSquaredKernel, dim3(1), dim3(Block256::kBlock), 0, ctx_->stream,
             n, v, weight, 0.0f, loss, nullptr);
}

void CudaBackend::cvSquaredBackward(int64_t n, const float *v, float weight,
                                    float dLoss, float *dV) {
  if (n < 1)
    throw std::invalid_argument("cvSquaredBackward: need n >= 1");
  MOE_LAUNCH(cvSquaredKernel, dim3(1), dim3(Block256::kBlock), 0, ctx_->stream,
             n, v, weight, dLoss, nullptr, dV);
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
                                    float dLoss, float *dImportance) {
  if (T < 1 || n < 1)
    throw std::invalid_argument("l2BalanceBackward: need T >= 1 and n >= 1");
  MOE_LAUNCH(l2BalanceBackwardKernel, dim3(gridFor(n)),
             dim3(kElementwiseThreads), 0, ctx_->stream, T, n, importance,
             static_cast<double>(dLoss) * weight / static_cast<double>(T),
             dImportance);
}

//===----------------------------------------------------------------------===//
// The secondary level of batchwise hierarchies (masks inside groups) and
// the per-group load estimate; they reuse the selection and mask helpers
// above.
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
  if (rows == 0) {
    MOE_LAUNCH(setIntKernel, dim3(1), dim3(1), 0, ctx.stream, rowPtr, 0);
    return;
  }
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
  if (R == 0) {
    MOE_LAUNCH(setIntKernel, dim3(1), dim3(1), 0, ctx.stream, rowPtr, 0);
    if (numAssigned)
      *numAssigned = 0;
    return;
  }
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
    const float *batchMask, const float *thresholds, float dLoss,
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
        -dLoss, /*accumulate=*/false, dThresholds + g * n);
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
               topValues + first * (k + 1), dLoad + g * n, dClean + at,
               dRawNoise + at);
  }
}

} // namespace moe::rt
