//===- FusedRoute.cu - moe.fused_route's routing in one pass --------------===//
//
// From the clean and raw-noise logits [T, n] to the top-k routing, the load
// estimate, the importance and the dispatch plan. One kernel makes the
// pass over [T, n]: each block takes a tile of tokens, each warp a run of
// kTokensPerWarp of them, one token at a time: the noise (the same Philox
// blocks and arithmetic as noisyTopKForward's noise kernel, so the noisy
// values are bit-identical to it), the top-(k+1) selection (the warp
// extracts the maximum K times, as Selection.cu's warp select), the gates
// (as its finalize kernel), and the token's load probabilities and gates
// added to the warp's rows of shared memory. At the end the block sums its
// warps' rows into per-tile partials and writes its per-expert counts.
// A one-thread-per-expert kernel then sums the tiles in order (in double)
// and turns each tile's counts into its start within the expert's segment;
// a scan of the totals gives the offsets, and a last kernel writes each
// tile's positions from those starts. No floating-point atomics and no
// host synchronization.
//
//===----------------------------------------------------------------------===//

#include "runtime/Checks.h"
#include "runtime/Philox.h"
#include "runtime/cuda/Common.cuh"
#include "runtime/cuda/CudaBackend.h"
#include "runtime/cuda/Selection.cuh"

#include <limits>
#include <stdexcept>

namespace moe::rt {
namespace {

using namespace gpu;

/// Tokens each warp routes, consecutively.
constexpr int64_t kTokensPerWarp = 16;
constexpr int64_t kMaxWarps = 8;
/// Shared memory a block may use without opting in.
constexpr int64_t kSharedBytes = 48 * 1024;

/// Warps per block for n experts: each warp has a load and an importance
/// row of n floats and the block n counts in shared memory. 0 when not
/// even one warp fits (n > 4096): then the separate kernels run instead.
int64_t warpsFor(int64_t n) {
  int64_t perWarp = 2 * n * static_cast<int64_t>(sizeof(float));
  int64_t counts = n * static_cast<int64_t>(sizeof(int32_t));
  if (counts + perWarp > kSharedBytes)
    return 0;
  return std::min(kMaxWarps, (kSharedBytes - counts) / perWarp);
}

/// The first token and the end of warp `warp`'s run in tile `tile`.
__device__ __forceinline__ void warpTokens(int64_t T, int64_t warps,
                                           int64_t warp, int64_t *first,
                                           int64_t *end) {
  *first = (static_cast<int64_t>(blockIdx.x) * warps + warp) * kTokensPerWarp;
  *end = min(*first + kTokensPerWarp, T);
}

/// Rows of up to 32 * J entries stay in registers through the K rounds of
/// the selection; longer rows read the rest from memory in each round.
template <int J>
__global__ void __launch_bounds__(kMaxWarps * 32)
    fusedRouteKernel(int64_t T, int64_t n, int64_t k, const float *clean,
                     const float *rawNoise, float noiseEps, bool addNoise,
                     uint64_t seed, uint64_t counter, uint64_t firstBlock,
                     float *noisy, float *noiseStd, float *topValues,
                     int32_t *expert, float *gate, float *loadPartial,
                     float *importancePartial, int32_t *countPartial) {
  extern __shared__ float shared[];
  const int64_t warps = blockDim.x / 32, warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  float *warpLoad = shared + warp * n;
  float *warpImportance = shared + (warps + warp) * n;
  int32_t *count = reinterpret_cast<int32_t *>(shared + 2 * warps * n);
  for (int64_t q = threadIdx.x; q < 2 * warps * n; q += blockDim.x)
    shared[q] = 0.0f;
  for (int64_t q = threadIdx.x; q < n; q += blockDim.x)
    count[q] = 0;
  __syncthreads();

  const int64_t K = min(k + 1, n);
  const LoadProbability probability{clean, noisy, noiseStd, topValues,
                                    n,     k,     nullptr};
  int64_t first, end;
  warpTokens(T, warps, warp, &first, &end);
  for (int64_t t = first; t < end; ++t) {
    // Noise: lane l takes the Philox blocks l, l + 32, ... that overlap
    // the row; element q of [T, n] is value q of the stream.
    const int64_t row = t * n;
    for (int64_t b = row / 4 + lane; b <= (row + n - 1) / 4; b += 32) {
      float z[4] = {0.0f, 0.0f, 0.0f, 0.0f};
      if (addNoise)
        philoxNormalBlock(seed, counter, firstBlock + static_cast<uint64_t>(b),
                          z);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        int64_t q = 4 * b + j;
        if (q >= row && q < row + n)
          noisyEntry(q, z[j], clean, rawNoise, noiseEps, addNoise, noisy,
                     noiseStd);
      }
    }
    __syncwarp(); // the row of noisy values is visible to the warp

    // Top-(k+1): round r takes the largest (value, index) pack below the
    // previous round's, in (value descending, index ascending) order.
    const float *h = noisy + row;
    float *top = topValues + t * (k + 1);
    uint64_t item[J];
#pragma unroll
    for (int j = 0; j < J; ++j) {
      int64_t i = j * 32 + lane;
      item[j] = i < n ? packKeyIndex(orderedKey(h[i]), i) : 0;
    }
    uint64_t previous = 0;
    for (int64_t r = 0; r < K; ++r) {
      uint64_t best = 0;
#pragma unroll
      for (int j = 0; j < J; ++j)
        if ((r == 0 || item[j] < previous) && item[j] > best)
          best = item[j];
      for (int64_t i = 32 * J + lane; i < n; i += 32) {
        uint64_t p = packKeyIndex(orderedKey(h[i]), i);
        if ((r == 0 || p < previous) && p > best)
          best = p;
      }
      for (int offset = 16; offset > 0; offset >>= 1) {
        uint64_t other = __shfl_xor_sync(kFullMask, best, offset);
        best = other > best ? other : best;
      }
      previous = best;
      if (lane == (r & 31)) {
        int32_t i = unpackIndex(best);
        top[r] = h[i];
        if (r < k)
          expert[t * k + r] = i;
      }
    }
    if (lane == 0 && K == k) // k == n: there is no (k+1)-th expert
      top[k] = -INFINITY;
    __syncwarp(); // topValues are visible to the warp

    // Gates: softmax over the kept k, summed as the finalize kernel does.
    // Lane l wrote the experts and values of ranks l, l + 32, ... itself.
    float acc = 0.0f;
    for (int64_t r = lane; r < k; r += 32)
      acc += expf(top[r] - top[0]);
    float sum = warpSum(acc);
    for (int64_t r = lane; r < k; r += 32) {
      float g = expf(top[r] - top[0]) / sum;
      int32_t e = expert[t * k + r];
      gate[t * k + r] = g;
      warpImportance[e] += g; // a token's experts differ: no two lanes meet
      atomicAdd(&count[e], 1);
    }
    for (int64_t i = lane; i < n; i += 32)
      warpLoad[i] += probability(t, i);
    __syncwarp(); // the next token's lanes see this one's shared sums
  }
  __syncthreads();

  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    float load = 0.0f, importance = 0.0f;
    for (int64_t w = 0; w < warps; ++w) {
      load += shared[w * n + i];
      importance += shared[(warps + w) * n + i];
    }
    int64_t at = static_cast<int64_t>(blockIdx.x) * n + i;
    loadPartial[at] = load;
    importancePartial[at] = importance;
    countPartial[at] = count[i];
  }
}

/// One thread per expert: load and importance = the tiles' partials summed
/// in tile order, counts[e] = its assignments (counts[n] = 0, so that an
/// exclusive scan of n + 1 entries gives the offsets), and each tile's
/// count replaced by the assignments of the earlier tiles.
__global__ void fusedRouteTotalsKernel(int64_t tiles, int64_t n,
                                       const float *loadPartial,
                                       const float *importancePartial,
                                       int32_t *countPartial, float *load,
                                       float *importance, int32_t *counts) {
  MOE_GRID_STRIDE(e, n + 1) {
    if (e == n) {
      counts[n] = 0;
      continue;
    }
    double loadSum = 0.0, importanceSum = 0.0;
    int32_t before = 0;
    for (int64_t tile = 0; tile < tiles; ++tile) {
      int64_t at = tile * n + e;
      loadSum += loadPartial[at];
      importanceSum += importancePartial[at];
      int32_t here = countPartial[at];
      countPartial[at] = before;
      before += here;
    }
    load[e] = static_cast<float>(loadSum);
    importance[e] = static_cast<float>(importanceSum);
    counts[e] = before;
  }
}

/// The plan's positions, in token order within each expert (as the
/// CPU's stable counting sort): each warp recounts its own run's experts
/// in shared memory, so that it starts where the earlier warps of the tile
/// end, from the tile's start in each segment.
__global__ void __launch_bounds__(kMaxWarps * 32)
    fusedRoutePlanKernel(int64_t T, int64_t n, int64_t k, const int32_t *expert,
                         const int32_t *expertOffset, const int32_t *tileStart,
                         int32_t *positionOf, int32_t *tokenOfPosition) {
  extern __shared__ int32_t cursor[]; // [warps, n]
  const int64_t warps = blockDim.x / 32, warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  for (int64_t q = threadIdx.x; q < warps * n; q += blockDim.x)
    cursor[q] = 0;
  __syncthreads();
  int64_t first, end;
  warpTokens(T, warps, warp, &first, &end);
  int32_t *own = cursor + warp * n;
  for (int64_t t = first; t < end; ++t) {
    for (int64_t r = lane; r < k; r += 32)
      ++own[expert[t * k + r]];
    __syncwarp();
  }
  __syncthreads();
  for (int64_t e = threadIdx.x; e < n; e += blockDim.x) {
    int32_t at = expertOffset[e] + tileStart[blockIdx.x * n + e];
    for (int64_t w = 0; w < warps; ++w) {
      int32_t c = cursor[w * n + e];
      cursor[w * n + e] = at;
      at += c;
    }
  }
  __syncthreads();
  for (int64_t t = first; t < end; ++t) {
    for (int64_t r = lane; r < k; r += 32) {
      int32_t p = own[expert[t * k + r]]++;
      positionOf[t * k + r] = p;
      tokenOfPosition[p] = static_cast<int32_t>(t);
    }
    __syncwarp();
  }
}

/// The backward of one token per warp: dLoad through the load
/// probabilities from zero (loadBackwardRow, as loadEstimateBackward), then
/// the gates' gradient (dGate plus dImportance of each expert, either
/// nullable) through the softmax and the noise, added to it (as
/// noisyTopKBackward and moe-autodiff's sum of the two, unfused: __fadd_rn
/// keeps the compiler from merging that sum into a multiply-add).
__global__ void __launch_bounds__(WarpPerRow::kBlock)
    fusedRouteBackwardKernel(int64_t T, int64_t n, int64_t k,
                             const float *clean, const float *rawNoise,
                             const float *noisy, const float *noiseStd,
                             const float *topValues, const int32_t *expert,
                             const float *gate, const float *dGate,
                             const float *dLoad, const float *dImportance,
                             float *dClean, float *dRawNoise) {
  int64_t t = groupRow<WarpPerRow>();
  int lane = groupLane<WarpPerRow>();
  if (t >= T)
    return;
  const int64_t row = t * n;
  for (int64_t i = lane; i < n; i += 32) {
    dClean[row + i] = 0.0f;
    dRawNoise[row + i] = 0.0f;
  }
  __syncwarp();
  bool load = dLoad && k < n; // k == n: every threshold is -inf
  if (load)
    loadBackwardRow(t, lane, n, k, clean, noisy, rawNoise, noiseStd, topValues,
                    dLoad, dClean, dRawNoise);
  __syncwarp(); // lane 0's threshold updates are visible to the warp
  if (!dGate && !dImportance)
    return;
  const float *g = gate + t * k;
  const int32_t *e = expert + t * k;
  auto gateGrad = [&](int64_t j) {
    if (!dImportance)
      return dGate[t * k + j];
    float fromImportance = dImportance[e[j]];
    return dGate ? dGate[t * k + j] + fromImportance : fromImportance;
  };
  float acc = 0.0f;
  for (int64_t j = lane; j < k; j += 32)
    acc += g[j] * gateGrad(j);
  float dot = warpSum(acc);
  for (int64_t j = lane; j < k; j += 32) {
    float dh = g[j] * (gateGrad(j) - dot);
    int64_t idx = row + e[j];
    float s = noiseStd[idx];
    float z = s > 0.0f ? (noisy[idx] - clean[idx]) / s : 0.0f;
    float dRaw = dh * z * sigmoidf(rawNoise[idx]);
    dClean[idx] = dLoad ? __fadd_rn(dh, dClean[idx]) : dh;
    dRawNoise[idx] = dLoad ? __fadd_rn(dRaw, dRawNoise[idx]) : dRaw;
  }
}

} // namespace

void CudaBackend::fusedRouteForward(
    int64_t T, int64_t n, int64_t k, const float *clean, const float *rawNoise,
    float noiseEps, bool training, uint64_t seed, uint64_t counter,
    uint64_t elementOffset, float *noisy, float *noiseStd, float *topValues,
    int32_t *expert, float *gate, float *load, float *importance,
    int32_t *expertOffset, int32_t *positionOf, int32_t *tokenOfPosition) {
  checkTopK("fusedRouteForward", T, n, k);
  checkElementOffset("fusedRouteForward", elementOffset);
  if (T * k > std::numeric_limits<int32_t>::max())
    throw std::invalid_argument(
        "fusedRouteForward: T * k assignments exceed 2^31-1");
  int64_t warps = warpsFor(n);
  if (warps == 0) {
    noisyTopKForward(T, n, k, clean, rawNoise, noiseEps, training, seed,
                     counter, noisy, noiseStd, topValues, expert, gate,
                     elementOffset, /*noisePosition=*/nullptr);
    loadEstimateForward(T, n, k, clean, noisy, noiseStd, topValues,
                        /*rowPtr=*/nullptr, load);
    importanceForward(T * k, n, expert, gate, importance);
    buildDispatchPlan(T, n, T * k, /*rowPtr=*/nullptr, expert, expertOffset,
                      positionOf, tokenOfPosition);
    return;
  }
  const Context &ctx = *ctx_;
  int64_t tileTokens = warps * kTokensPerWarp;
  int64_t tiles = (T + tileTokens - 1) / tileTokens;
  DeviceBuffer<float> loadPartial(ctx.stream, std::max<int64_t>(tiles, 1) * n);
  DeviceBuffer<float> importancePartial(ctx.stream,
                                        std::max<int64_t>(tiles, 1) * n);
  DeviceBuffer<int32_t> tileCounts(ctx.stream, std::max<int64_t>(tiles, 1) * n);
  DeviceBuffer<int32_t> counts(ctx.stream, n + 1);
  dim3 grid(static_cast<unsigned>(tiles)),
      block(static_cast<unsigned>(32 * warps));
  size_t routeShared = static_cast<size_t>((2 * warps + 1) * n) * sizeof(float);
  bool addNoise = training && rawNoise != nullptr;
  auto route = [&](auto kernel) {
    MOE_LAUNCH(kernel, grid, block, routeShared, ctx.stream, T, n, k, clean,
               rawNoise, noiseEps, addNoise, seed, counter, elementOffset / 4,
               noisy, noiseStd, topValues, expert, gate, loadPartial.get(),
               importancePartial.get(), tileCounts.get());
  };
  if (tiles > 0) {
    if (n <= 32)
      route(fusedRouteKernel<1>);
    else
      route(fusedRouteKernel<8>);
  }
  MOE_LAUNCH(fusedRouteTotalsKernel, dim3(gridFor(n + 1)),
             dim3(kElementwiseThreads), 0, ctx.stream, tiles, n,
             loadPartial.get(), importancePartial.get(), tileCounts.get(), load,
             importance, counts.get());
  exclusiveScan(ctx, counts.get(), expertOffset, n + 1);
  if (tiles > 0)
    MOE_LAUNCH(fusedRoutePlanKernel, grid, block,
               static_cast<size_t>(warps * n) * sizeof(int32_t), ctx.stream, T,
               n, k, expert, expertOffset, tileCounts.get(), positionOf,
               tokenOfPosition);
}

void CudaBackend::fusedRouteBackward(int64_t T, int64_t n, int64_t k,
                                     const float *clean, const float *rawNoise,
                                     const float *noisy, const float *noiseStd,
                                     const float *topValues,
                                     const int32_t *expert, const float *gate,
                                     const float *dGate, const float *dLoad,
                                     const float *dImportance, float *dClean,
                                     float *dRawNoise) {
  checkTopK("fusedRouteBackward", T, n, k);
  if (!rawNoise)
    throw std::invalid_argument("fusedRouteBackward: rawNoise is required");
  if (!dGate && !dLoad && !dImportance)
    throw std::invalid_argument(
        "fusedRouteBackward: needs dGate, dLoad or dImportance");
  MOE_LAUNCH(fusedRouteBackwardKernel, dim3(rowGrid<WarpPerRow>(T)),
             dim3(WarpPerRow::kBlock), 0, ctx_->stream, T, n, k, clean,
             rawNoise, noisy, noiseStd, topValues, expert, gate, dGate, dLoad,
             dImportance, dClean, dRawNoise);
}

} // namespace moe::rt
