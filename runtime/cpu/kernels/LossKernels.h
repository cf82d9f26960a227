//===- LossKernels.h - Softmax cross-entropy CPU kernels --------*- C++ -*-===//
//
// Full softmax cross-entropy over the vocabulary and sampled softmax with a
// shared log-uniform candidate set (Jean et al. 2015; Jozefowicz et al.
// 2016, the paper's language-model setup), as templates over the scalar type.
// Rows are independent and run in parallel; every reduction across rows
// (loss sum, weight-gradient scatter) runs in a fixed order, so results do
// not depend on the thread count.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_CPU_KERNELS_LOSSKERNELS_H
#define MOE_RUNTIME_CPU_KERNELS_LOSSKERNELS_H

#include "runtime/Philox.h"
#include "runtime/cpu/kernels/Blas.h"
#include "runtime/cpu/kernels/ElementwiseKernels.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace moe::rt::cpu {

/// Throws std::invalid_argument naming `kernel` unless every target is -1
/// (padding) or a class in [0, numClasses).
inline void checkTargets(const char *kernel, int64_t rows,
                         const int32_t *targets, int64_t numClasses) {
  for (int64_t t = 0; t < rows; ++t)
    if (targets[t] < -1 || targets[t] >= numClasses)
      throw std::invalid_argument(std::string(kernel) + ": target " +
                                  std::to_string(targets[t]) + " of row " +
                                  std::to_string(t) + " is outside [-1, " +
                                  std::to_string(numClasses) + ")");
}

/// Full softmax cross-entropy: logits [rows, V], targets [rows] with -1 for
/// padding. lossSum[0] = sum over non-padding rows of logsumexp(row) -
/// row[target]. dLogits (written unless null) = (softmax - onehot) *
/// dLossSum, zero on padding rows. numTokens (unless null) receives the
/// number of non-padding rows.
template <typename T>
void softmaxCrossEntropy(int64_t rows, int64_t V, const T *logits,
                         const int32_t *targets, T dLossSum, T *lossSum,
                         T *dLogits, int64_t *numTokens) {
  if (rows < 0 || V <= 0)
    throw std::invalid_argument("softmaxCrossEntropy: need rows >= 0, V > 0");
  checkTargets("softmaxCrossEntropy", rows, targets, V);
  std::vector<double> rowLoss(rows, 0.0);
#pragma omp parallel for if (rows * V > kParallelGrain) schedule(static)
  for (int64_t t = 0; t < rows; ++t) {
    const T *z = logits + t * V;
    T *dz = dLogits ? dLogits + t * V : nullptr;
    int32_t target = targets[t];
    if (target < 0) {
      if (dz)
        std::fill(dz, dz + V, T(0));
      continue;
    }
    T maxLogit = *std::max_element(z, z + V);
    T sum = 0;
    for (int64_t c = 0; c < V; ++c)
      sum += std::exp(z[c] - maxLogit);
    // Subtracting the shifted target logit keeps the loss accurate when the
    // logits are large.
    rowLoss[t] = std::log(sum) - (z[target] - maxLogit);
    if (dz) {
      T scale = dLossSum / sum;
      for (int64_t c = 0; c < V; ++c)
        dz[c] = std::exp(z[c] - maxLogit) * scale;
      dz[target] -= dLossSum;
    }
  }
  double total = 0;
  int64_t counted = 0;
  for (int64_t t = 0; t < rows; ++t) {
    total += rowLoss[t];
    counted += targets[t] >= 0;
  }
  *lossSum = static_cast<T>(total);
  if (numTokens)
    *numTokens = counted;
}

/// log of the expected number of times class c appears among `numSamples`
/// draws with replacement from the log-uniform distribution over
/// [0, range): log(numSamples * Q(c)).
inline double logUniformLogExpectedCount(int64_t c, int64_t range,
                                         int64_t numSamples) {
  double q = std::log1p(1.0 / static_cast<double>(c + 1)) /
             std::log(static_cast<double>(range) + 1.0);
  return std::log(static_cast<double>(numSamples) * q);
}

/// Sampled softmax cross-entropy. S classes are drawn with replacement by
/// philoxLogUniformAt(seed, counter, s, V) and shared by every row. Row t
/// scores its target and the samples with logit_c = hidden[t] . W[c] + b[c]
/// - log(S Q(c)); a sample equal to the row's target (an accidental hit) is
/// removed by giving it logit -inf, as TensorFlow's sampled_softmax_loss
/// does. lossSum[0] = sum over non-padding rows of the cross-entropy with
/// the target at position 0. dHidden [rows, d] is written; dWeights [V, d]
/// and dBias [V] are accumulated, sample rows first (s = 0..S-1), then
/// target rows in row order. With dHidden, dWeights and dBias all null only
/// the loss is computed (the same value); a partly null set throws unless
/// rows = 0 (nothing is written then).
/// The class gradients of a sampled softmax before they are summed by class:
/// each sample's weight and bias rows, and each target's scale of its
/// hidden row (its weight row gradient is targetGrad[t] * hidden[t]).
template <typename T> struct SampledClassGradients {
  std::vector<int32_t> sampled; ///< [S]
  std::vector<T> sampleW;       ///< [S, d] = dZ^T hidden
  std::vector<T> sampleB;       ///< [S], column sums of dZ in row order
  std::vector<T> targetGrad;    ///< [rows]
};

/// The loss, dHidden and (unless `grads` is null) the class gradients of
/// sampledSoftmaxCrossEntropy; rows > 0.
template <typename T>
void sampledSoftmaxCore(int64_t rows, int64_t d, int64_t V, int64_t S,
                        const T *hidden, const T *weights, const T *bias,
                        const int32_t *targets, uint64_t seed, uint64_t counter,
                        T dLossSum, T *lossSum, T *dHidden,
                        SampledClassGradients<T> *grads) {
  bool lossOnly = !grads;

  // The shared candidates, their bias and log expected count, and a dense
  // copy of their weight rows so that all logits are one GEMM.
  std::vector<int32_t> sampled(S);
  std::vector<T> sampleShift(S);
  std::vector<T> sampledW(S * d);
  for (int64_t s = 0; s < S; ++s) {
    int64_t c = philoxLogUniformAt(seed, counter, s, V);
    sampled[s] = static_cast<int32_t>(c);
    sampleShift[s] =
        bias[c] - static_cast<T>(logUniformLogExpectedCount(c, V, S));
  }
#pragma omp parallel for if (S * d > kParallelGrain) schedule(static)
  for (int64_t s = 0; s < S; ++s)
    std::copy(weights + sampled[s] * d, weights + (sampled[s] + 1) * d,
              sampledW.begin() + s * d);

  // z [rows, S]: sampled logits, turned in place into their gradients.
  std::vector<T> z(rows * S);
  gemm<T>(false, true, rows, S, d, T(1), hidden, d, sampledW.data(), d, T(0),
          z.data(), S);
  std::vector<T> targetGrad(rows, T(0));
  std::vector<double> rowLoss(rows, 0.0);
  const T minusInf = -std::numeric_limits<T>::infinity();
#pragma omp parallel for if (rows * (S + d) > kParallelGrain) schedule(static)
  for (int64_t t = 0; t < rows; ++t) {
    T *zr = z.data() + t * S;
    int32_t target = targets[t];
    if (target < 0) {
      std::fill(zr, zr + S, T(0));
      continue;
    }
    const T *h = hidden + t * d;
    const T *w = weights + static_cast<int64_t>(target) * d;
    T zt = 0;
    for (int64_t j = 0; j < d; ++j)
      zt += h[j] * w[j];
    zt +=
        bias[target] - static_cast<T>(logUniformLogExpectedCount(target, V, S));
    T maxLogit = zt;
    for (int64_t s = 0; s < S; ++s) {
      zr[s] = sampled[s] == target ? minusInf : zr[s] + sampleShift[s];
      maxLogit = std::max(maxLogit, zr[s]);
    }
    T targetExp = std::exp(zt - maxLogit);
    T sum = targetExp;
    for (int64_t s = 0; s < S; ++s) {
      zr[s] = std::exp(zr[s] - maxLogit);
      sum += zr[s];
    }
    rowLoss[t] = std::log(sum) - (zt - maxLogit);
    T scale = dLossSum / sum;
    for (int64_t s = 0; s < S; ++s)
      zr[s] *= scale;
    targetGrad[t] = targetExp * scale - dLossSum;
  }
  double total = 0;
  for (int64_t t = 0; t < rows; ++t)
    total += rowLoss[t];
  *lossSum = static_cast<T>(total);
  if (lossOnly)
    return;
  grads->sampled = std::move(sampled);
  grads->targetGrad = std::move(targetGrad);
  const std::vector<T> &targetGrads = grads->targetGrad;

  // dHidden = dZ * W_sampled + targetGrad * W[target].
  gemm<T>(false, false, rows, d, S, T(1), z.data(), S, sampledW.data(), d, T(0),
          dHidden, d);
#pragma omp parallel for if (rows * d > kParallelGrain) schedule(static)
  for (int64_t t = 0; t < rows; ++t) {
    if (targets[t] < 0)
      continue;
    const T *w = weights + static_cast<int64_t>(targets[t]) * d;
    T g = targetGrads[t];
    T *dh = dHidden + t * d;
    for (int64_t j = 0; j < d; ++j)
      dh[j] += g * w[j];
  }

  // dW_sampled = dZ^T * hidden, reusing the gathered-weights buffer.
  gemm<T>(true, false, S, d, rows, T(1), z.data(), S, hidden, d, T(0),
          sampledW.data(), d);
  grads->sampleW = std::move(sampledW);
  grads->sampleB.assign(S, T(0));
  for (int64_t t = 0; t < rows; ++t) {
    const T *zr = z.data() + t * S;
    for (int64_t s = 0; s < S; ++s)
      grads->sampleB[s] += zr[s];
  }
}

/// The checks both sampled-softmax kernels share; true when there is a
/// gradient to compute.
inline bool checkSampledSoftmax(int64_t rows, int64_t d, int64_t V, int64_t S,
                                const int32_t *targets, bool lossOnly,
                                bool allOutputs) {
  if (rows < 0 || d <= 0 || V <= 0 || S <= 0)
    throw std::invalid_argument(
        "sampledSoftmaxCrossEntropy: need rows >= 0 and d, V, S > 0");
  if (rows > 0 && !lossOnly && !allOutputs)
    throw std::invalid_argument(
        "sampledSoftmaxCrossEntropy: dHidden, dWeights and dBias must be all "
        "null (loss only) or all non-null");
  checkTargets("sampledSoftmaxCrossEntropy", rows, targets, V);
  return rows > 0;
}

template <typename T>
void sampledSoftmaxCrossEntropy(int64_t rows, int64_t d, int64_t V, int64_t S,
                                const T *hidden, const T *weights,
                                const T *bias, const int32_t *targets,
                                uint64_t seed, uint64_t counter, T dLossSum,
                                T *lossSum, T *dHidden, T *dWeights, T *dBias) {
  bool lossOnly = !dHidden && !dWeights && !dBias;
  *lossSum = T(0);
  if (!checkSampledSoftmax(rows, d, V, S, targets, lossOnly,
                           dHidden && dWeights && dBias))
    return;
  SampledClassGradients<T> g;
  sampledSoftmaxCore(rows, d, V, S, hidden, weights, bias, targets, seed,
                     counter, dLossSum, lossSum, dHidden,
                     lossOnly ? nullptr : &g);
  if (lossOnly)
    return;
  // The scatter splits the columns across threads; within a column every
  // update lands in the documented order, whatever the thread count.
  constexpr int64_t kColumnBlock = 64;
  int64_t numBlocks = (d + kColumnBlock - 1) / kColumnBlock;
#pragma omp parallel for if ((S + rows) * d > kParallelGrain) schedule(static)
  for (int64_t blk = 0; blk < numBlocks; ++blk) {
    int64_t begin = blk * kColumnBlock;
    int64_t end = std::min(d, begin + kColumnBlock);
    for (int64_t s = 0; s < S; ++s) {
      T *dw = dWeights + static_cast<int64_t>(g.sampled[s]) * d;
      const T *gs = g.sampleW.data() + s * d;
      for (int64_t j = begin; j < end; ++j)
        dw[j] += gs[j];
    }
    for (int64_t t = 0; t < rows; ++t) {
      if (targets[t] < 0)
        continue;
      T *dw = dWeights + static_cast<int64_t>(targets[t]) * d;
      const T *h = hidden + t * d;
      T gt = g.targetGrad[t];
      for (int64_t j = begin; j < end; ++j)
        dw[j] += gt * h[j];
    }
  }
  for (int64_t s = 0; s < S; ++s)
    dBias[g.sampled[s]] += g.sampleB[s];
  for (int64_t t = 0; t < rows; ++t)
    if (targets[t] >= 0)
      dBias[targets[t]] += g.targetGrad[t];
}

/// Kernels.def: sampledSoftmaxCrossEntropyRows. The contributions are listed
/// as the dense kernel adds them (samples, then targets in row order), so
/// rowGradient sums them in the same order.
template <typename T>
void sampledSoftmaxCrossEntropyRows(int64_t rows, int64_t d, int64_t V,
                                    int64_t S, const T *hidden,
                                    const T *weights, const T *bias,
                                    const int32_t *targets, uint64_t seed,
                                    uint64_t counter, T dLossSum, T *lossSum,
                                    T *dHidden, int32_t *rowIds, T *dWeightRows,
                                    T *dBiasRows) {
  *lossSum = T(0);
  int64_t n = S + std::max<int64_t>(rows, 0);
  if (!checkSampledSoftmax(rows, d, V, S, targets, false,
                           dHidden && rowIds && dWeightRows && dBiasRows)) {
    std::fill(rowIds, rowIds + n, -1);
    std::fill(dWeightRows, dWeightRows + n * d, T(0));
    std::fill(dBiasRows, dBiasRows + n, T(0));
    return;
  }
  SampledClassGradients<T> g;
  sampledSoftmaxCore(rows, d, V, S, hidden, weights, bias, targets, seed,
                     counter, dLossSum, lossSum, dHidden, &g);
  std::vector<int32_t> keys(g.sampled);
  keys.insert(keys.end(), targets, targets + rows);
  std::vector<T> weightParts(n * d), biasParts(g.sampleB);
  std::copy(g.sampleW.begin(), g.sampleW.end(), weightParts.begin());
#pragma omp parallel for if (rows * d > kParallelGrain) schedule(static)
  for (int64_t t = 0; t < rows; ++t) {
    const T *h = hidden + t * d;
    T *dst = weightParts.data() + (S + t) * d;
    for (int64_t j = 0; j < d; ++j)
      dst[j] = g.targetGrad[t] * h[j];
  }
  biasParts.insert(biasParts.end(), g.targetGrad.begin(), g.targetGrad.end());
  rowGradient<T>(n, d, V, keys.data(), weightParts.data(), rowIds, dWeightRows);
  std::vector<int32_t> biasIds(n);
  rowGradient<T>(n, 1, V, keys.data(), biasParts.data(), biasIds.data(),
                 dBiasRows);
}

} // namespace moe::rt::cpu

#endif // MOE_RUNTIME_CPU_KERNELS_LOSSKERNELS_H
