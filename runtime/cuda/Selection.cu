//===- Selection.cu - Top-k selection and masks of the CUDA backend -------===//
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
#include "runtime/cuda/Selection.cuh"

#include <cub/block/block_scan.cuh>
#include <cub/device/device_scan.cuh>
#include <cub/device/device_segmented_sort.cuh>

#include <limits>
#include <stdexcept>

namespace moe::rt::gpu {
namespace {

//===----------------------------------------------------------------------===//
// Top-K selection
//===----------------------------------------------------------------------===//

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

} // namespace

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

void exclusiveScan(const Context &ctx, const int32_t *in, int32_t *out,
                   int64_t count) {
  size_t bytes = 0;
  MOE_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(nullptr, bytes, in, out, count,
                                               ctx.stream));
  DeviceBuffer<unsigned char> temp(ctx.stream, bytes);
  MOE_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(temp.get(), bytes, in, out,
                                               count, ctx.stream));
}

void clearUnusedSlots(const Context &ctx, int32_t *expert, float *gate,
                      int64_t used, int64_t capacity) {
  if (capacity <= used)
    return;
  MOE_CUDA_CHECK(cudaMemsetAsync(
      expert + used, 0, (capacity - used) * sizeof(int32_t), ctx.stream));
  MOE_CUDA_CHECK(cudaMemsetAsync(
      gate + used, 0, (capacity - used) * sizeof(float), ctx.stream));
}

bool noRowsToAssign(const Context &ctx, int64_t rows, int32_t *rowPtr,
                    int64_t *numAssigned) {
  if (rows != 0)
    return false;
  MOE_LAUNCH(setIntKernel, dim3(1), dim3(1), 0, ctx.stream, rowPtr, 0);
  if (numAssigned)
    *numAssigned = 0;
  return true;
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
                          const char *kernel, int64_t capacity) {
  DeviceBuffer<int32_t> counts(ctx.stream, T + 1);
  MOE_CUDA_CHECK(
      cudaMemsetAsync(counts.get() + T, 0, sizeof(int32_t), ctx.stream));
  MOE_LAUNCH(countMaskKernel, dim3(rowGrid<WarpPerRow>(T)),
             dim3(WarpPerRow::kBlock), 0, ctx.stream, T, n, mask, counts.get());
  exclusiveScan(ctx, counts.get(), rowPtr, T + 1);
  int64_t total = -1;
  if (kernel) {
    total = readInt(ctx, rowPtr + T);
    checkThresholdCapacity(kernel, total, capacity);
  }
  MOE_LAUNCH(compactMaskKernel, dim3(rowGrid<WarpPerRow>(T)),
             dim3(WarpPerRow::kBlock), 0, ctx.stream, T, n, logits, mask,
             rowPtr, expert, gate);
  if (kernel)
    clearUnusedSlots(ctx, expert, gate, total, capacity);
  return total;
}

/// Accumulates dLoad through P(x, i) into dClean/dRawNoise, including the
/// thresholds: thrIn = topValues[:, k] is H of the expert at sorted
/// position k, thrOut = topValues[:, k-1] that at position k-1. Entries with
/// s = 0 (P constant) contribute nothing. One warp per token; k < n.
__global__ void __launch_bounds__(WarpPerRow::kBlock)
    loadBackwardKernel(int64_t T, int64_t n, int64_t k, const float *clean,
                       const float *noisy, const float *rawNoise,
                       const float *noiseStd, const float *topValues,
                       const int32_t *rowPtr, const float *dLoad, float *dClean,
                       float *dRawNoise) {
  int64_t t = groupRow<WarpPerRow>();
  if (t >= T || (rowPtr && rowPtr[t + 1] == rowPtr[t]))
    return;
  loadBackwardRow(t, groupLane<WarpPerRow>(), n, k, clean, noisy, rawNoise,
                  noiseStd, topValues, dLoad, dClean, dRawNoise);
}

} // namespace moe::rt::gpu
