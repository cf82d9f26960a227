//===- Loss.cu - CUDA softmax cross-entropy, full and sampled -------------===//
//
// Full softmax: one row group per token computes the log-partition and the
// gradient in the same pass over the logits. Sampled softmax: S classes are
// drawn once for the batch with the CPU's Philox sampler, their weight rows
// gathered, and the logits of all tokens computed by one GEMM; gradients go
// back through two more GEMMs, and the per-class weight updates (sampled
// rows plus each token's target row) are summed by key without atomics.
// Given null gradient outputs (evaluation), both stop after the loss, which
// they compute exactly as in training.
//
//===----------------------------------------------------------------------===//

#include "runtime/Philox.h"
#include "runtime/cuda/Common.cuh"
#include "runtime/cuda/CudaBackend.h"
#include "runtime/cuda/Gemm.cuh"

#include <cub/device/device_reduce.cuh>

#include <stdexcept>

namespace moe::rt {
namespace {

using namespace gpu;

/// Per token: rowLoss = -log softmax(x)[target], dLogits = (softmax -
/// onehot) * dLossSum with dLossSum = dLoss[0] * dLossScale (dLoss null:
/// dLossScale), valid = 1; padding rows (target < 0) get zeros.
/// dLogits may be null (forward only): the loss is computed the same way.
template <class G>
__global__ void __launch_bounds__(G::kBlock)
    crossEntropyKernel(int64_t T, int64_t V, const float *logits,
                       const int32_t *targets, const float *dLoss,
                       float dLossScale, float *rowLoss, float *dLogits,
                       int32_t *valid) {
  int64_t t = groupRow<G>();
  int lane = groupLane<G>();
  if (t >= T)
    return;
  const float *x = logits + t * V;
  float *dx = dLogits ? dLogits + t * V : nullptr;
  int64_t target = targets[t];
  if (target < 0) {
    if (dx)
      for (int64_t i = lane; i < V; i += G::kThreads)
        dx[i] = 0.0f;
    if (lane == 0) {
      rowLoss[t] = 0.0f;
      valid[t] = 0;
    }
    return;
  }
  float mx = -INFINITY;
  for (int64_t i = lane; i < V; i += G::kThreads)
    mx = fmaxf(mx, x[i]);
  mx = groupMax<G>(mx);
  float acc = 0.0f;
  for (int64_t i = lane; i < V; i += G::kThreads)
    acc += expf(x[i] - mx);
  float sum = groupSum<G>(acc);
  if (dx) {
    float dLossSum = dLoss ? dLoss[0] * dLossScale : dLossScale;
    float scale = dLossSum / sum;
    for (int64_t i = lane; i < V; i += G::kThreads)
      dx[i] = expf(x[i] - mx) * scale - (i == target ? dLossSum : 0.0f);
  }
  if (lane == 0) {
    // The shifted target logit keeps the loss accurate for large logits.
    rowLoss[t] = logf(sum) - (x[target] - mx);
    valid[t] = 1;
  }
}

/// log of the expected count of class c among S draws with replacement
/// from the log-uniform distribution over [0, V): log(S * Q(c)), Q(c) =
/// log((c + 2) / (c + 1)) / log(V + 1). The logit correction of the CPU
/// backend, in double as there.
__device__ __forceinline__ float logExpectedCount(int64_t c, int64_t V,
                                                  int64_t S) {
  double q = log1p(1.0 / static_cast<double>(c + 1)) /
             log(static_cast<double>(V) + 1.0);
  return static_cast<float>(log(static_cast<double>(S) * q));
}

/// The shared candidates (philoxLogUniformAt, as on the CPU) and their
/// logit shift bias[c] - log(S Q(c)).
__global__ void drawSamplesKernel(int64_t S, int64_t V, uint64_t seed,
                                  uint64_t counter, const float *bias,
                                  int32_t *samples, float *sampleShift) {
  MOE_GRID_STRIDE(j, S) {
    int64_t c = philoxLogUniformAt(seed, counter, static_cast<uint64_t>(j), V);
    samples[j] = static_cast<int32_t>(c);
    sampleShift[j] = bias[c] - logExpectedCount(c, V, S);
  }
}

/// Per token: logits z_0 = h.w_target + b_target - log(S Q(target)) and
/// z_j = scores[t, j] + sampleShift[j] (-inf where sample j is the target,
/// an accidental hit). Writes rowLoss = logsumexp(z) - z_0, dTrue = (p_0 -
/// 1) dLossSum and overwrites scores with dZ = p_j dLossSum, dLossSum =
/// dLoss[0] * dLossScale (dLoss null: dLossScale). Padding rows get zeros.
template <class G>
__global__ void __launch_bounds__(G::kBlock)
    sampledLogitsKernel(int64_t T, int64_t d, int64_t V, int64_t S,
                        const float *hidden, const float *weights,
                        const float *bias, const int32_t *targets,
                        const int32_t *samples, const float *sampleShift,
                        const float *dLoss, float dLossScale, float *scores,
                        float *dTrue, float *rowLoss) {
  int64_t t = groupRow<G>();
  int lane = groupLane<G>();
  if (t >= T)
    return;
  float dLossSum = dLoss ? dLoss[0] * dLossScale : dLossScale;
  float *z = scores + t * S;
  int64_t target = targets[t];
  if (target < 0) {
    for (int64_t j = lane; j < S; j += G::kThreads)
      z[j] = 0.0f;
    if (lane == 0) {
      dTrue[t] = 0.0f;
      rowLoss[t] = 0.0f;
    }
    return;
  }
  const float *h = hidden + t * d, *w = weights + target * d;
  float acc = 0.0f;
  for (int64_t c = lane; c < d; c += G::kThreads)
    acc += h[c] * w[c];
  float trueLogit =
      groupSum<G>(acc) + (bias[target] - logExpectedCount(target, V, S));
  float mx = trueLogit;
  for (int64_t j = lane; j < S; j += G::kThreads) {
    float zj = samples[j] == target ? -INFINITY : z[j] + sampleShift[j];
    z[j] = zj;
    mx = fmaxf(mx, zj);
  }
  mx = groupMax<G>(mx);
  acc = 0.0f;
  for (int64_t j = lane; j < S; j += G::kThreads)
    acc += expf(z[j] - mx);
  float trueExp = expf(trueLogit - mx);
  float sum = groupSum<G>(acc) + trueExp;
  float scale = dLossSum / sum;
  for (int64_t j = lane; j < S; j += G::kThreads)
    z[j] = expf(z[j] - mx) * scale;
  if (lane == 0) {
    dTrue[t] = trueExp * scale - dLossSum;
    rowLoss[t] = logf(sum) - (trueLogit - mx);
  }
}

/// Rows S.. of the weight-gradient contributions: dTrue[t] * hidden[t], and
/// the keys: sampled classes first, then targets (padding -> V, skipped).
__global__ void targetContributionsKernel(int64_t T, int64_t d, int64_t V,
                                          int64_t S, const float *hidden,
                                          const int32_t *targets,
                                          const float *dTrue, float *rows,
                                          int32_t *keys) {
  MOE_GRID_STRIDE(q, T * d) {
    int64_t t = q / d;
    rows[(S + t) * d + q % d] = dTrue[t] * hidden[q];
  }
  MOE_GRID_STRIDE(t, T) {
    keys[S + t] = targets[t] < 0 ? static_cast<int32_t>(V) : targets[t];
  }
}

/// dHidden[t] += dTrue[t] * weights[target_t] for non-padding tokens.
__global__ void addTargetRowsKernel(int64_t T, int64_t d,
                                    const int32_t *targets,
                                    const float *weights, const float *dTrue,
                                    float *dHidden) {
  MOE_GRID_STRIDE(q, T * d) {
    int64_t t = q / d;
    int64_t target = targets[t];
    if (target >= 0)
      dHidden[q] += dTrue[t] * weights[target * d + q % d];
  }
}

} // namespace

void CudaBackend::softmaxCrossEntropy(int64_t T, int64_t V, const float *logits,
                                      const int32_t *targets,
                                      const float *dLoss, float dLossScale,
                                      float *lossSum, float *dLogits,
                                      int64_t *numTokens) {
  if (T < 0 || V < 1)
    throw std::invalid_argument("softmaxCrossEntropy: need T >= 0, V >= 1");
  const Context &ctx = *ctx_;
  DeviceBuffer<float> rowLoss(ctx.stream, T);
  DeviceBuffer<int32_t> valid(ctx.stream, T);
  forRowLength(V, [&](auto group) {
    using G = decltype(group);
    MOE_LAUNCH(crossEntropyKernel<G>, dim3(rowGrid<G>(T)), dim3(G::kBlock), 0,
               ctx.stream, T, V, logits, targets, dLoss, dLossScale,
               rowLoss.get(), dLogits, valid.get());
  });
  deterministicSum(ctx, T, VectorElement{rowLoss.get()}, 1.0f, lossSum);
  if (!numTokens)
    return;
  if (T == 0) {
    *numTokens = 0;
    return;
  }
  DeviceBuffer<int32_t> count(ctx.stream, 1);
  size_t bytes = 0;
  MOE_CUDA_CHECK(cub::DeviceReduce::Sum(nullptr, bytes, valid.get(),
                                        count.get(), T, ctx.stream));
  DeviceBuffer<unsigned char> temp(ctx.stream, bytes);
  MOE_CUDA_CHECK(cub::DeviceReduce::Sum(temp.get(), bytes, valid.get(),
                                        count.get(), T, ctx.stream));
  int32_t host = 0;
  MOE_CUDA_CHECK(cudaMemcpyAsync(&host, count.get(), sizeof(int32_t),
                                 cudaMemcpyDeviceToHost, ctx.stream));
  MOE_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  *numTokens = host;
}

namespace {

/// The sampled softmax of both kernels up to the per-class contributions:
/// the loss, dHidden, then `sum(keys, rows, biasRows)` with keys [S + T]
/// (samples, then targets; padding -> V), rows [S + T, d] and biasRows
/// [S + T]. Returns without calling it when there is no gradient.
template <class Sum>
void sampledSoftmax(const Context &ctx, int64_t T, int64_t d, int64_t V,
                    int64_t S, const float *hidden, const float *weights,
                    const float *bias, const int32_t *targets, uint64_t seed,
                    uint64_t counter, const float *dLoss, float dLossScale,
                    float *lossSum, float *dHidden, bool lossOnly, Sum sum) {
  if (T < 0 || d < 1 || V < 1 || S < 1)
    throw std::invalid_argument(
        "sampledSoftmaxCrossEntropy: need T >= 0 and d, V, S >= 1");
  constexpr GemmPrecision f32 = GemmPrecision::F32;
  DeviceBuffer<int32_t> keys(ctx.stream, S + T); // samples, then targets
  DeviceBuffer<float> sampleShift(ctx.stream, S);
  int32_t *samples = keys.get();
  MOE_LAUNCH(drawSamplesKernel, dim3(gridFor(S)), dim3(kElementwiseThreads), 0,
             ctx.stream, S, V, seed, counter, bias, samples, sampleShift.get());
  DeviceBuffer<float> sampleWeights(ctx.stream, S * d);
  gatherRows(ctx, S, d, samples, weights, sampleWeights.get());

  // scores [T, S] = hidden Ws^T, then the losses and dZ in place.
  DeviceBuffer<float> scores(ctx.stream, T * S);
  DeviceBuffer<float> dTrue(ctx.stream, T), rowLoss(ctx.stream, T);
  gpu::gemm(ctx, false, true, T, S, d, 1.0f, hidden, d, sampleWeights.get(), d,
            0.0f, scores.get(), S, f32);
  forRowLength(std::max(d, S), [&](auto group) {
    using G = decltype(group);
    MOE_LAUNCH(sampledLogitsKernel<G>, dim3(rowGrid<G>(T)), dim3(G::kBlock), 0,
               ctx.stream, T, d, V, S, hidden, weights, bias, targets, samples,
               sampleShift.get(), dLoss, dLossScale, scores.get(), dTrue.get(),
               rowLoss.get());
  });
  deterministicSum(ctx, T, VectorElement{rowLoss.get()}, 1.0f, lossSum);
  // Without tokens there is nothing to accumulate (as on the CPU).
  if (lossOnly || T == 0)
    return;

  // dHidden = dZ Ws + dTrue * w_target.
  gpu::gemm(ctx, false, false, T, d, S, 1.0f, scores.get(), S,
            sampleWeights.get(), d, 0.0f, dHidden, d, f32);
  MOE_LAUNCH(addTargetRowsKernel, dim3(gridFor(T * d)),
             dim3(kElementwiseThreads), 0, ctx.stream, T, d, targets, weights,
             dTrue.get(), dHidden);

  // Per-class contributions: rows [0, S) = dZ^T hidden (one per sample),
  // rows [S, S + T) = dTrue[t] * hidden[t]; same split for the bias.
  DeviceBuffer<float> rows(ctx.stream, (S + T) * d);
  gpu::gemm(ctx, true, false, S, d, T, 1.0f, scores.get(), S, hidden, d, 0.0f,
            rows.get(), d, f32);
  MOE_LAUNCH(targetContributionsKernel, dim3(gridFor(T * d + T)),
             dim3(kElementwiseThreads), 0, ctx.stream, T, d, V, S, hidden,
             targets, dTrue.get(), rows.get(), keys.get());
  DeviceBuffer<float> biasRows(ctx.stream, S + T);
  columnSum(ctx, T, S, MatrixElement{scores.get(), S}, 1.0f,
            /*accumulate=*/false, biasRows.get());
  MOE_CUDA_CHECK(cudaMemcpyAsync(biasRows.get() + S, dTrue.get(),
                                 T * sizeof(float), cudaMemcpyDeviceToDevice,
                                 ctx.stream));
  sum(keys.get(), rows.get(), biasRows.get());
}

void checkAllOrNone(int64_t T, bool lossOnly, bool all) {
  if (T > 0 && !lossOnly && !all)
    throw std::invalid_argument(
        "sampledSoftmaxCrossEntropy: dHidden, dWeights and dBias must be all "
        "null (loss only) or all non-null");
}

} // namespace

void CudaBackend::sampledSoftmaxCrossEntropy(
    int64_t T, int64_t d, int64_t V, int64_t S, const float *hidden,
    const float *weights, const float *bias, const int32_t *targets,
    uint64_t seed, uint64_t counter, const float *dLoss, float dLossScale,
    float *lossSum, float *dHidden, float *dWeights, float *dBias) {
  bool lossOnly = !dHidden && !dWeights && !dBias;
  checkAllOrNone(T, lossOnly, dHidden && dWeights && dBias);
  const Context &ctx = *ctx_;
  int32_t padding = static_cast<int32_t>(V);
  sampledSoftmax(
      ctx, T, d, V, S, hidden, weights, bias, targets, seed, counter, dLoss,
      dLossScale, lossSum, dHidden, lossOnly,
      [&](const int32_t *keys, const float *rows, const float *biasRows) {
        accumulateRowsByKey(ctx, S + T, d, keys, V + 1, rows, padding,
                            dWeights);
        accumulateRowsByKey(ctx, S + T, 1, keys, V + 1, biasRows, padding,
                            dBias);
      });
}

void CudaBackend::sampledSoftmaxCrossEntropyRows(
    int64_t T, int64_t d, int64_t V, int64_t S, const float *hidden,
    const float *weights, const float *bias, const int32_t *targets,
    uint64_t seed, uint64_t counter, const float *dLoss, float dLossScale,
    float *lossSum, float *dHidden, int32_t *rows, float *dWeightRows,
    float *dBiasRows) {
  checkAllOrNone(T, false, dHidden && rows && dWeightRows && dBiasRows);
  const Context &ctx = *ctx_;
  int64_t n = S + std::max<int64_t>(T, 0);
  // Without tokens: no touched rows (as the dense kernel writes nothing).
  if (T == 0) {
    MOE_CUDA_CHECK(
        cudaMemsetAsync(rows, 0xff, n * sizeof(int32_t), ctx.stream));
    fill(dWeightRows, 0.0f, n * d);
    fill(dBiasRows, 0.0f, n);
  }
  int32_t padding = static_cast<int32_t>(V);
  sampledSoftmax(ctx, T, d, V, S, hidden, weights, bias, targets, seed, counter,
                 dLoss, dLossScale, lossSum, dHidden, false,
                 [&](const int32_t *keys, const float *contributions,
                     const float *biasContributions) {
                   compactRowsByKey(ctx, n, d, keys, V + 1, contributions,
                                    padding, rows, dWeightRows);
                   DeviceBuffer<int32_t> biasKeys(ctx.stream, n);
                   compactRowsByKey(ctx, n, 1, keys, V + 1, biasContributions,
                                    padding, biasKeys.get(), dBiasRows);
                 });
}

} // namespace moe::rt
