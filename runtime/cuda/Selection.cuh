//===- Selection.cuh - Routing helpers shared by the CUDA routing files -*-===//
//
// Top-k selection, the router probabilities, masks in assignment form and
// the smooth load estimator's per-entry probability and backward: shared by
// Routing.cu (flat routing) and Hierarchy.cu (the secondary level of
// hierarchical layers), as cpu/kernels/RoutingKernels.h is by
// HierarchyKernels.h. Definitions in Selection.cu.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_CUDA_SELECTION_CUH
#define MOE_RUNTIME_CUDA_SELECTION_CUH

#include "runtime/cuda/Common.cuh"

namespace moe::rt::gpu {

inline constexpr float kInvSqrt2Pi = 0.3989422804014327f;

__device__ __forceinline__ float sigmoidf(float x) {
  return 1.0f / (1.0f + expf(-x));
}

/// softplus(x) = log(1 + e^x), without overflow for large x.
__device__ __forceinline__ float softplusf(float x) {
  return x > 0.0f ? x + log1pf(expf(-x)) : log1pf(expf(x));
}

/// One entry of noisy top-k's noise: noiseStd[q] = s = softplus(raw) + eps
/// (0 without rawNoise) and noisy[q] = clean + z * s (clean without noise).
__device__ __forceinline__ void
noisyEntry(int64_t q, float z, const float *clean, const float *rawNoise,
           float noiseEps, bool addNoise, float *noisy, float *noiseStd) {
  float s = rawNoise ? softplusf(rawNoise[q]) + noiseEps : 0.0f;
  noiseStd[q] = s;
  noisy[q] = addNoise ? clean[q] + z * s : clean[q];
}

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

/// The router probabilities X = G_sigma(x) [T, n] = softmax of each row of
/// logits (Eq. 3), which the batchwise mask ranks (Eq. 6), the threshold
/// mask compares with its thresholds (Eq. 7) and the threshold loss
/// measures (Eq. 8). Same kernel as softmaxForward.
DeviceBuffer<float> routerProbabilities(const Context &ctx, int64_t T,
                                        int64_t n, const float *logits);

/// cand [rows, K] = indices of the K largest entries of each row of src
/// [rows, len], in (value descending, index ascending) order when `sorted`,
/// otherwise in an unspecified (but deterministic) order.
void selectTopK(const Context &ctx, int64_t rows, int64_t len, int64_t K,
                const float *src, bool sorted, int32_t *cand);

/// out [cols, rows] = in [rows, cols]^T through a shared 32x32 tile.
__global__ void transposeKernel(int64_t rows, int64_t cols, const float *in,
                                float *out);

/// out [count] = the exclusive prefix sums of in [count] (CUB's device
/// scan): row pointers from per-row counts.
void exclusiveScan(const Context &ctx, const int32_t *in, int32_t *out,
                   int64_t count);

/// For masks over no rows: rowPtr[0] = 0 and *numAssigned (when non-null)
/// = 0; returns whether rows == 0, i.e. whether the caller is done.
bool noRowsToAssign(const Context &ctx, int64_t rows, int32_t *rowPtr,
                    int64_t *numAssigned);

/// expert 0 and gate 0 (all-zero bits) in the slots [used, capacity), so
/// that sums over every slot (importance) count only the kept assignments.
void clearUnusedSlots(const Context &ctx, int32_t *expert, float *gate,
                      int64_t used, int64_t capacity);

/// One int32 of device memory on the host (synchronizes the stream).
int32_t readInt(const Context &ctx, const int32_t *devicePtr);

/// From a 0/1 mask [T, n]: rowPtr [T+1] and the token-major assignments
/// with softmax gates over each token's kept logits. With a `kernel` name
/// (threshold masks) the assignments must fit in `capacity` slots: the
/// row pointers are scanned first and their total read to the host, which
/// throws std::runtime_error (as the CPU does) before any assignment is
/// written; returns the total then, else -1 (no synchronisation).
int64_t maskToAssignments(const Context &ctx, int64_t T, int64_t n,
                          const float *logits, const float *mask,
                          int32_t *rowPtr, int32_t *expert, float *gate,
                          const char *kernel = nullptr, int64_t capacity = 0);

/// P(x, i) = Phi((clean - thr) / s) with thr the k-th largest noisy value
/// excluding i: thrIn = topValues[:, k] when i is in the top k (noisy >
/// thrIn), else thrOut = topValues[:, k-1]; 1 or 0 by that test when s = 0,
/// as on the CPU. A threshold of -inf (k == n) gives Phi(inf) = 1.
struct LoadProbability {
  const float *clean, *noisy, *noiseStd, *topValues;
  int64_t n, k;
  /// Tokens without assignments here (padding) count 0; null: none.
  const int32_t *rowPtr = nullptr;
  __device__ float operator()(int64_t t, int64_t i) const {
    if (rowPtr && rowPtr[t + 1] == rowPtr[t])
      return 0.0f;
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
__device__ __forceinline__ int64_t positionIndex(const float *h, int64_t n,
                                                 float v, int64_t p, int lane) {
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

/// loadBackwardKernel's work on token t, by the lanes of one warp:
/// accumulates dLoad through the load probabilities of row t into dClean and
/// dRawNoise (k < n). Shared with the fused router's backward, so that both
/// run the same float operations.
__device__ __forceinline__ void
loadBackwardRow(int64_t t, int lane, int64_t n, int64_t k, const float *clean,
                const float *noisy, const float *rawNoise,
                const float *noiseStd, const float *topValues,
                const float *dLoad, float *dClean, float *dRawNoise) {
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

/// Accumulates dLoad into dClean/dRawNoise through the load probabilities
/// (Selection.cu). One warp per token; k < n. Tokens rowPtr (nullable)
/// gives no assignments are skipped.
__global__ void __launch_bounds__(WarpPerRow::kBlock)
    loadBackwardKernel(int64_t T, int64_t n, int64_t k, const float *clean,
                       const float *noisy, const float *rawNoise,
                       const float *noiseStd, const float *topValues,
                       const int32_t *rowPtr, const float *dLoad, float *dClean,
                       float *dRawNoise);

/// Mthr - Mbw at (t, i), Mthr from the router probabilities.
struct MaskDifference {
  const float *probs, *batchMask, *thresholds;
  int64_t n;
  __device__ float operator()(int64_t t, int64_t i) const {
    int64_t q = t * n + i;
    return (probs[q] > thresholds[i] ? 1.0f : 0.0f) - batchMask[q];
  }
};

} // namespace moe::rt::gpu

#endif // MOE_RUNTIME_CUDA_SELECTION_CUH
