//===- RoutingKernels.h - Gating, masks and balancing losses ----*- C++ -*-===//
//
// The router of the MoE layer on the CPU: noisy top-k gating with the smooth
// load estimator, dense softmax gating, the batchwise and threshold masks of
// Appendix A with their threshold loss (all three on the per-token softmax
// probabilities of the logits, as in the paper), and the importance / CV^2 /
// L2 balancing losses. Templates over the scalar type: the backend runs them in
// float, the gradient tests in double.
//
// Parallelism is over tokens (rows). Sums over tokens (load, importance, the
// threshold loss) are taken over fixed blocks of rows and the block partials
// added in block order, so results never depend on the thread count.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_CPU_KERNELS_ROUTINGKERNELS_H
#define MOE_RUNTIME_CPU_KERNELS_ROUTINGKERNELS_H

#include "runtime/Checks.h"
#include "runtime/Philox.h"
#include "runtime/cpu/kernels/DispatchKernels.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

namespace moe::rt::cpu {

/// Below this many row elements a routing kernel runs on the calling thread.
constexpr int64_t kRoutingParallelGrain = 1 << 14;
/// Rows per block of the deterministic column sums.
constexpr int64_t kRoutingSumBlock = 256;
/// Up to this many selected entries per row, top-(k+1) selection inserts
/// into a sorted list (one comparison per rejected entry); above it, a
/// partial sort of the row's indices.
constexpr int64_t kInsertionSelectMax = 24;

/// log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)), without overflow. The
/// log1p uses Goldberg's identity log1p(e) = e * log(u) / (u - 1), u = 1 + e,
/// accurate to a few ulps: glibc's logf is four times faster than log1pf,
/// which dominated the noisy top-k forward pass.
template <typename T> inline T stableSoftplus(T x) {
  T e = std::exp(-std::fabs(x));
  T u = T(1) + e;
  T log1pE = u == T(1) ? e : e * std::log(u) / (u - T(1));
  return std::max(x, T(0)) + log1pE;
}

/// 1 / (1 + exp(-x)), the derivative of softplus.
template <typename T> inline T logistic(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

/// Beyond this many standard deviations the normal CDF is within 1e-44 of
/// 0 or 1 and the density below 1e-42, under the smallest float: the
/// kernels return the limits instead of taking libm's slow underflow path.
constexpr double kNormalTail = 14.0;

/// Standard normal CDF through erfc, accurate in both tails.
template <typename T> inline T normalCdf(T u) {
  if (u < T(-kNormalTail))
    return T(0);
  return T(0.5) * std::erfc(-u * T(0.70710678118654752440));
}

/// Standard normal density (0 beyond kNormalTail).
template <typename T> inline T normalPdf(T u) {
  if (std::fabs(u) > T(kNormalTail))
    return T(0);
  return T(0.39894228040143267794) * std::exp(T(-0.5) * u * u);
}

/// Orders row indices by descending value, ties by lower index.
template <typename T> struct DescendingByValue {
  const T *row;
  bool operator()(int32_t a, int32_t b) const {
    return row[a] > row[b] || (row[a] == row[b] && a < b);
  }
};

/// Writes to order[0, count) the indices of the `count` largest entries of
/// row[0, n) in descending order, ties broken by lower index. `order` holds
/// n entries (all of them are used as scratch by the partial-sort path).
template <typename T>
void selectTop(const T *row, int64_t n, int64_t count, int32_t *order) {
  if (count > kInsertionSelectMax) {
    std::iota(order, order + n, 0);
    std::partial_sort(order, order + count, order + n,
                      DescendingByValue<T>{row});
    return;
  }
  // Scanning in index order and moving only past strictly smaller values
  // keeps equal values in index order.
  int64_t have = 0;
  for (int64_t i = 0; i < n; ++i) {
    T v = row[i];
    if (have == count) {
      if (!(v > row[order[count - 1]]))
        continue;
      --have;
    }
    int64_t j = have++;
    for (; j > 0 && v > row[order[j - 1]]; --j)
      order[j] = order[j - 1];
    order[j] = static_cast<int32_t>(i);
  }
}

/// out[i] = sum over rows r of the values that addRow(r, acc) adds to
/// acc[i], acc being a zeroed double[n]. Rows are summed in order within
/// fixed blocks and the blocks in block order: the result is independent of
/// the number of threads.
template <typename T, typename AddRow>
void deterministicColumnSums(int64_t rows, int64_t n, AddRow addRow, T *out) {
  int64_t numBlocks = (rows + kRoutingSumBlock - 1) / kRoutingSumBlock;
  std::vector<double> partial(static_cast<size_t>(numBlocks * n), 0.0);
#pragma omp parallel for if (rows * n > kRoutingParallelGrain) schedule(static)
  for (int64_t b = 0; b < numBlocks; ++b) {
    double *acc = partial.data() + b * n;
    int64_t end = std::min(rows, (b + 1) * kRoutingSumBlock);
    for (int64_t r = b * kRoutingSumBlock; r < end; ++r)
      addRow(r, acc);
  }
  for (int64_t i = 0; i < n; ++i) {
    double sum = 0.0;
    for (int64_t b = 0; b < numBlocks; ++b)
      sum += partial[b * n + i];
    out[i] = static_cast<T>(sum);
  }
}

//===----------------------------------------------------------------------===//
// Noisy top-k gating
//===----------------------------------------------------------------------===//

/// Noisy top-k gating (see Backend::noisyTopKForward): s = softplus(raw) +
/// noiseEps, H = clean + z * s with z = philoxNormalAt(seed, counter, t*n +
/// i) when training (H = clean otherwise, s = 0 without rawNoise); keeps the
/// top k of each row of H, gates = softmax over the kept values, and saves
/// the sorted top-(k+1) values (column k is -inf when k == n). With
/// `noisePosition`, row noisePosition[a] draws stream row a's noise.
template <typename T>
void noisyTopKForward(int64_t numTokens, int64_t n, int64_t k, const T *clean,
                      const T *rawNoise, T noiseEps, bool training,
                      uint64_t seed, uint64_t counter, T *noisy, T *noiseStd,
                      T *topValues, int32_t *expert, T *gate,
                      uint64_t elementOffset = 0,
                      const int32_t *noisePosition = nullptr) {
  checkTopK("noisyTopKForward", numTokens, n, k);
  checkElementOffset("noisyTopKForward", elementOffset);
  int64_t kept = std::min(k + 1, n);
#pragma omp parallel if (numTokens * n > kRoutingParallelGrain)
  {
    std::vector<int32_t> order(static_cast<size_t>(n));
#pragma omp for schedule(static)
    for (int64_t a = 0; a < numTokens; ++a) {
      int64_t t = noisePosition ? noisePosition[a] : a;
      const T *c = clean + t * n;
      T *h = noisy + t * n;
      T *s = noiseStd + t * n;
      if (rawNoise) {
        const T *r = rawNoise + t * n;
        for (int64_t i = 0; i < n; ++i)
          s[i] = stableSoftplus(r[i]) + noiseEps;
      } else {
        std::fill(s, s + n, T(0));
      }
      if (rawNoise && training) {
        // Element a*n + i of the normal stream; a block is generated when
        // the scan enters it, so rows need not start on a block boundary.
        uint64_t base = elementOffset + static_cast<uint64_t>(a * n);
        uint64_t block = base >> 2;
        float z[4];
        philoxNormalBlock(seed, counter, block, z);
        for (int64_t i = 0; i < n; ++i) {
          uint64_t index = base + static_cast<uint64_t>(i);
          if ((index >> 2) != block) {
            block = index >> 2;
            philoxNormalBlock(seed, counter, block, z);
          }
          h[i] = c[i] + static_cast<T>(z[index & 3]) * s[i];
        }
      } else {
        std::copy(c, c + n, h);
      }

      selectTop(h, n, kept, order.data());
      T *top = topValues + t * (k + 1);
      for (int64_t j = 0; j < kept; ++j)
        top[j] = h[order[j]];
      if (kept == k)
        top[k] = -std::numeric_limits<T>::infinity();
      // top[0] is the row maximum: the exponentials cannot overflow.
      T sum = T(0);
      for (int64_t j = 0; j < k; ++j) {
        T e = std::exp(top[j] - top[0]);
        gate[t * k + j] = e;
        sum += e;
      }
      for (int64_t j = 0; j < k; ++j) {
        gate[t * k + j] /= sum;
        expert[t * k + j] = order[j];
      }
    }
  }
}

/// Backward of the gates to dClean and dRawNoise (both written). The kept
/// gates are a softmax of H, dH = g * (dGate - <g, dGate>); dClean = dH and
/// dRaw = dH * z * sigmoid(raw). The noise z is recovered as
/// (noisy - clean) / s (zero when s = 0), so the backward needs no key.
template <typename T>
void noisyTopKBackward(int64_t numTokens, int64_t n, int64_t k, const T *noisy,
                       const T *clean, const T *rawNoise, const T *noiseStd,
                       const int32_t *expert, const T *gate, const T *dGate,
                       T *dClean, T *dRawNoise) {
  checkTopK("noisyTopKBackward", numTokens, n, k);
#pragma omp parallel for if (numTokens * n > kRoutingParallelGrain)            \
    schedule(static)
  for (int64_t t = 0; t < numTokens; ++t) {
    const T *g = gate + t * k;
    const T *dg = dGate + t * k;
    const int32_t *e = expert + t * k;
    T *dc = dClean + t * n;
    std::fill(dc, dc + n, T(0));
    T dot = T(0);
    for (int64_t j = 0; j < k; ++j)
      dot += g[j] * dg[j];
    for (int64_t j = 0; j < k; ++j)
      dc[e[j]] = g[j] * (dg[j] - dot);
    if (!rawNoise)
      continue;
    T *dr = dRawNoise + t * n;
    std::fill(dr, dr + n, T(0));
    for (int64_t j = 0; j < k; ++j) {
      int64_t i = t * n + e[j];
      T s = noiseStd[i];
      T z = s > T(0) ? (noisy[i] - clean[i]) / s : T(0);
      dr[e[j]] = dc[e[j]] * z * logistic(rawNoise[i]);
    }
  }
}

/// Smooth load estimator (Tensor2Tensor's _prob_in_top_k): with thrIn =
/// topValues[:,k] and thrOut = topValues[:,k-1], expert i of token t counts
/// as in the top k when noisy > thrIn; P = Phi((clean - thr) / s) with the
/// threshold of its side (1 / 0 when s = 0). load[i] = sum_t P (written),
/// over the tokens with assignments in rowPtr when it is non-null.
template <typename T>
void loadEstimateForward(int64_t numTokens, int64_t n, int64_t k,
                         const T *clean, const T *noisy, const T *noiseStd,
                         const T *topValues, const int32_t *rowPtr, T *load) {
  checkTopK("loadEstimateForward", numTokens, n, k);
  auto addRow = [&](int64_t t, double *acc) {
    if (rowPtr && rowPtr[t + 1] == rowPtr[t])
      return;
    const T *c = clean + t * n;
    const T *h = noisy + t * n;
    const T *s = noiseStd + t * n;
    T thrIn = topValues[t * (k + 1) + k];
    T thrOut = topValues[t * (k + 1) + k - 1];
    for (int64_t i = 0; i < n; ++i) {
      bool in = h[i] > thrIn;
      T p;
      if (s[i] > T(0))
        p = normalCdf((c[i] - (in ? thrIn : thrOut)) / s[i]);
      else
        p = in ? T(1) : T(0);
      acc[i] += p;
    }
  };
  deterministicColumnSums(numTokens, n, addRow, load);
}

/// Accumulates d(sum_i dLoad[i] * load[i]) into dClean and dRawNoise. Each P
/// depends on its own clean / raw entry and on its threshold, which is the
/// noisy value H = clean + z * s of the expert at rank k (if in) or k-1 (if
/// out); those ranks are recomputed by the same selection as the forward
/// pass, and z is recovered as (noisy - clean) / s.
template <typename T>
void loadEstimateBackward(int64_t numTokens, int64_t n, int64_t k,
                          const T *clean, const T *noisy, const T *rawNoise,
                          const T *noiseStd, const T *topValues,
                          const int32_t *rowPtr, const T *dLoad, T *dClean,
                          T *dRawNoise) {
  checkTopK("loadEstimateBackward", numTokens, n, k);
  if (!rawNoise)
    throw std::invalid_argument(
        "loadEstimateBackward: rawNoise is required (the estimator needs "
        "noise)");
  int64_t kept = std::min(k + 1, n);
#pragma omp parallel if (numTokens * n > kRoutingParallelGrain)
  {
    std::vector<int32_t> order(static_cast<size_t>(n));
#pragma omp for schedule(static)
    for (int64_t t = 0; t < numTokens; ++t) {
      if (rowPtr && rowPtr[t + 1] == rowPtr[t])
        continue;
      const T *c = clean + t * n;
      const T *h = noisy + t * n;
      const T *s = noiseStd + t * n;
      const T *r = rawNoise + t * n;
      T *dc = dClean + t * n;
      T *dr = dRawNoise + t * n;
      T thrIn = topValues[t * (k + 1) + k];
      T thrOut = topValues[t * (k + 1) + k - 1];
      // Gradients reaching the two threshold values, applied after the loop.
      T dThrIn = T(0), dThrOut = T(0);
      for (int64_t i = 0; i < n; ++i) {
        if (!(s[i] > T(0)))
          continue;
        bool in = h[i] > thrIn;
        T thr = in ? thrIn : thrOut;
        // An infinite threshold (k == n) makes P constant.
        if (!std::isfinite(thr))
          continue;
        T u = (c[i] - thr) / s[i];
        T g = dLoad[i] * normalPdf(u) / s[i];
        if (g == T(0))
          continue;
        dc[i] += g;
        dr[i] -= g * u * logistic(r[i]);
        (in ? dThrIn : dThrOut) -= g;
      }
      if (dThrIn == T(0) && dThrOut == T(0))
        continue;
      selectTop(h, n, kept, order.data());
      auto addToH = [&](int32_t j, T dH) {
        T z = s[j] > T(0) ? (h[j] - c[j]) / s[j] : T(0);
        dc[j] += dH;
        dr[j] += dH * z * logistic(r[j]);
      };
      if (dThrOut != T(0))
        addToH(order[k - 1], dThrOut);
      if (dThrIn != T(0))
        addToH(order[k], dThrIn);
    }
  }
}

//===----------------------------------------------------------------------===//
// Padding
//===----------------------------------------------------------------------===//

/// The top-k selection of B sequences of `time` tokens without the padded
/// tokens (j >= lengths[b]), in row-pointer form (see
/// Backend::dropPaddingForward).
template <typename T>
void dropPaddingForward(int64_t B, int64_t time, int64_t k,
                        const int32_t *lengths, const int32_t *expert,
                        const T *gate, int32_t *rowPtr, int32_t *keptExpert,
                        T *keptGate) {
  checkDropPaddingShape("dropPaddingForward", B, time, k);
  int64_t tokens = B * time;
  rowPtr[0] = 0;
  for (int64_t b = 0; b < B; ++b) {
    int64_t length = std::clamp<int64_t>(lengths[b], 0, time);
    for (int64_t j = 0; j < time; ++j) {
      int64_t t = b * time + j;
      int64_t at = rowPtr[t];
      rowPtr[t + 1] = static_cast<int32_t>(j < length ? at + k : at);
      if (j < length)
        for (int64_t s = 0; s < k; ++s) {
          keptExpert[at + s] = expert[t * k + s];
          keptGate[at + s] = gate[t * k + s];
        }
    }
  }
  std::fill(keptExpert + rowPtr[tokens], keptExpert + tokens * k, 0);
  std::fill(keptGate + rowPtr[tokens], keptGate + tokens * k, T(0));
}

/// dGate [T*k] (written) from the kept gates' gradient; zero for the
/// tokens rowPtr gives no assignments.
template <typename T>
void dropPaddingBackward(int64_t tokens, int64_t k, const int32_t *rowPtr,
                         const T *dKeptGate, T *dGate) {
  checkDropPaddingShape("dropPaddingBackward", tokens, 1, k);
  for (int64_t t = 0; t < tokens; ++t) {
    bool kept = rowPtr[t + 1] > rowPtr[t];
    for (int64_t s = 0; s < k; ++s)
      dGate[t * k + s] = kept ? dKeptGate[rowPtr[t] + s] : T(0);
  }
}

//===----------------------------------------------------------------------===//
// Dense softmax gating
//===----------------------------------------------------------------------===//

/// probs = softmax(logits) per row.
template <typename T>
void softmaxForward(int64_t numTokens, int64_t n, const T *logits, T *probs) {
  checkRouterShape("softmaxForward", numTokens, n);
#pragma omp parallel for if (numTokens * n > kRoutingParallelGrain)            \
    schedule(static)
  for (int64_t t = 0; t < numTokens; ++t) {
    const T *x = logits + t * n;
    T *p = probs + t * n;
    T maxValue = *std::max_element(x, x + n);
    T sum = T(0);
    for (int64_t i = 0; i < n; ++i) {
      p[i] = std::exp(x[i] - maxValue);
      sum += p[i];
    }
    T inv = T(1) / sum;
    for (int64_t i = 0; i < n; ++i)
      p[i] *= inv;
  }
}

/// dLogits = p * (dProbs - <p, dProbs>) per row (written).
template <typename T>
void softmaxBackward(int64_t numTokens, int64_t n, const T *probs,
                     const T *dProbs, T *dLogits) {
  checkRouterShape("softmaxBackward", numTokens, n);
#pragma omp parallel for if (numTokens * n > kRoutingParallelGrain)            \
    schedule(static)
  for (int64_t t = 0; t < numTokens; ++t) {
    const T *p = probs + t * n;
    const T *dp = dProbs + t * n;
    T dot = T(0);
    for (int64_t i = 0; i < n; ++i)
      dot += p[i] * dp[i];
    for (int64_t i = 0; i < n; ++i)
      dLogits[t * n + i] = p[i] * (dp[i] - dot);
  }
}

//===----------------------------------------------------------------------===//
// Batchwise and threshold masks (Appendix A)
//===----------------------------------------------------------------------===//

/// The router probabilities X = G_sigma(x) = softmax(logits) per row (Eq. 3),
/// which the batchwise mask ranks (Eq. 6), the threshold mask compares with
/// its thresholds (Eq. 7) and the threshold loss measures (Eq. 8).
template <typename T>
std::vector<T> routerProbabilities(int64_t numTokens, int64_t n,
                                   const T *logits) {
  std::vector<T> probs(static_cast<size_t>(numTokens * n));
  softmaxForward(numTokens, n, logits, probs.data());
  return probs;
}

/// The row pointers rowPtr [T+1] of a 0/1 mask [T,n]: rowPtr[T] is the
/// number of assignments.
template <typename T>
void maskRowPointers(int64_t numTokens, int64_t n, const T *mask,
                     int32_t *rowPtr) {
  // Counts per token in parallel, then their prefix sum in order.
#pragma omp parallel for if (numTokens * n > kRoutingParallelGrain)            \
    schedule(static)
  for (int64_t t = 0; t < numTokens; ++t) {
    const T *m = mask + t * n;
    int32_t count = 0;
    for (int64_t i = 0; i < n; ++i)
      count += m[i] != T(0);
    rowPtr[t + 1] = count;
  }
  rowPtr[0] = 0;
  for (int64_t t = 0; t < numTokens; ++t)
    rowPtr[t + 1] += rowPtr[t];
}

/// Given the mask's row pointers (maskRowPointers), writes the kept experts
/// of each token in increasing order at rowPtr[t] and their gates = softmax
/// of the kept logits: rowPtr[T] entries of expert and gate.
template <typename T>
void compactMask(int64_t numTokens, int64_t n, const T *logits, const T *mask,
                 const int32_t *rowPtr, int32_t *expert, T *gate) {
#pragma omp parallel for if (numTokens * n > kRoutingParallelGrain)            \
    schedule(static)
  for (int64_t t = 0; t < numTokens; ++t) {
    const T *x = logits + t * n;
    const T *m = mask + t * n;
    int32_t begin = rowPtr[t], end = rowPtr[t + 1];
    if (begin == end)
      continue;
    T maxValue = -std::numeric_limits<T>::infinity();
    for (int64_t i = 0, a = begin; i < n; ++i)
      if (m[i] != T(0)) {
        expert[a++] = static_cast<int32_t>(i);
        maxValue = std::max(maxValue, x[i]);
      }
    T sum = T(0);
    for (int32_t a = begin; a < end; ++a) {
      gate[a] = std::exp(x[expert[a]] - maxValue);
      sum += gate[a];
    }
    for (int32_t a = begin; a < end; ++a)
      gate[a] /= sum;
  }
}

/// From a 0/1 mask [T,n], writes the assignment form: rowPtr [T+1], the
/// kept experts of each token in increasing order and their gates = softmax
/// of the kept logits.
template <typename T>
void maskToAssignments(int64_t numTokens, int64_t n, const T *logits,
                       const T *mask, int32_t *rowPtr, int32_t *expert,
                       T *gate) {
  maskRowPointers(numTokens, n, mask, rowPtr);
  compactMask(numTokens, n, logits, mask, rowPtr, expert, gate);
}

/// The assignments of a threshold mask into `capacity` slots: the row
/// pointers, then, when rowPtr[T] fits (else std::runtime_error naming
/// `kernel`), the assignments; sets numAssigned (may be null).
template <typename T>
void maskToCappedAssignments(const char *kernel, int64_t numTokens, int64_t n,
                             const T *logits, const T *mask, int32_t *rowPtr,
                             int32_t *expert, T *gate, int64_t capacity,
                             int64_t *numAssigned) {
  maskRowPointers(numTokens, n, mask, rowPtr);
  checkThresholdCapacity(kernel, rowPtr[numTokens], capacity);
  compactMask(numTokens, n, logits, mask, rowPtr, expert, gate);
  // Expert 0, gate 0 in the unused slots: sums over every slot (importance)
  // count only the kept assignments.
  int64_t used = rowPtr[numTokens];
  std::fill(expert + used, expert + capacity, 0);
  std::fill(gate + used, gate + capacity, T(0));
  if (numAssigned)
    *numAssigned = used;
}

/// The assignments of a given mask into `capacity` slots (see
/// Backend::maskAssignmentsForward); unused slots hold expert 0, gate 0.
template <typename T>
void maskAssignmentsForward(int64_t numTokens, int64_t n, const T *logits,
                            const T *mask, int32_t *rowPtr, int32_t *expert,
                            T *gate, int64_t capacity, int64_t *numAssigned) {
  checkRouterShape("maskAssignmentsForward", numTokens, n);
  checkCount("maskAssignmentsForward", capacity);
  maskToCappedAssignments("maskAssignmentsForward", numTokens, n, logits, mask,
                          rowPtr, expert, gate, capacity, numAssigned);
}

/// Batchwise mask (Eq. 6): for each expert i, keep the m tokens with the
/// largest probability p[t,i] = softmax(logits[t,:])[i] in its column (ties:
/// lower token index), then the assignment form as in maskToAssignments
/// (gates = softmax of the kept logits, i.e. p renormalised over the kept
/// experts). Exactly n*m assignments.
template <typename T>
void batchwiseMaskForward(int64_t numTokens, int64_t n, int64_t m,
                          const T *logits, T *mask, int32_t *rowPtr,
                          int32_t *expert, T *gate) {
  checkRouterShape("batchwiseMaskForward", numTokens, n);
  if (m < 0 || m > numTokens)
    throw std::invalid_argument(
        "batchwiseMaskForward: m = " + std::to_string(m) +
        " is not in [0, numTokens]");
  std::fill(mask, mask + numTokens * n, T(0));
  if (m > 0) {
    std::vector<T> probs = routerProbabilities(numTokens, n, logits);
    std::vector<int32_t> chosen(static_cast<size_t>(n * m));
#pragma omp parallel if (numTokens * n > kRoutingParallelGrain)
    {
      std::vector<T> column(static_cast<size_t>(numTokens));
      std::vector<int32_t> order(static_cast<size_t>(numTokens));
#pragma omp for schedule(static)
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t t = 0; t < numTokens; ++t)
          column[t] = probs[t * n + i];
        std::iota(order.begin(), order.end(), 0);
        std::nth_element(order.begin(), order.begin() + m, order.end(),
                         DescendingByValue<T>{column.data()});
        std::copy(order.begin(), order.begin() + m, chosen.begin() + i * m);
      }
    }
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < m; ++j)
        mask[chosen[i * m + j] * n + i] = T(1);
  }
  maskToAssignments(numTokens, n, logits, mask, rowPtr, expert, gate);
}

/// Threshold mask (Eq. 7): keep expert i of token t when p[t,i] =
/// softmax(logits[t,:])[i] > thr[i] (thresholds on the probability scale);
/// writes the assignment form (gates = softmax of the kept logits) into
/// `capacity` slots and the number of assignments. Throws
/// std::runtime_error, writing no assignment, when more than `capacity`
/// pass.
template <typename T>
void thresholdMaskForward(int64_t numTokens, int64_t n, const T *logits,
                          const T *thresholds, T *mask, int32_t *rowPtr,
                          int32_t *expert, T *gate, int64_t capacity,
                          int64_t *numAssigned) {
  checkRouterShape("thresholdMaskForward", numTokens, n);
  checkCount("thresholdMaskForward", capacity);
  std::vector<T> probs = routerProbabilities(numTokens, n, logits);
#pragma omp parallel for if (numTokens * n > kRoutingParallelGrain)            \
    schedule(static)
  for (int64_t t = 0; t < numTokens; ++t)
    for (int64_t i = 0; i < n; ++i)
      mask[t * n + i] = probs[t * n + i] > thresholds[i] ? T(1) : T(0);
  maskToCappedAssignments("thresholdMaskForward", numTokens, n, logits, mask,
                          rowPtr, expert, gate, capacity, numAssigned);
}

/// Backward of per-token softmax gates in assignment form: dLogits [T,n]
/// (written) = g * (dGate - <g, dGate>) at the token's experts, else 0.
template <typename T>
void maskedGateBackward(int64_t numTokens, int64_t n, const int32_t *rowPtr,
                        const int32_t *expert, const T *gate, const T *dGate,
                        T *dLogits) {
  checkRouterShape("maskedGateBackward", numTokens, n);
#pragma omp parallel for if (numTokens * n > kRoutingParallelGrain)            \
    schedule(static)
  for (int64_t t = 0; t < numTokens; ++t) {
    T *dl = dLogits + t * n;
    std::fill(dl, dl + n, T(0));
    T dot = T(0);
    for (int32_t a = rowPtr[t]; a < rowPtr[t + 1]; ++a)
      dot += gate[a] * dGate[a];
    for (int32_t a = rowPtr[t]; a < rowPtr[t + 1]; ++a)
      dl[expert[a]] = gate[a] * (dGate[a] - dot);
  }
}

/// Eq. 8: loss[0] = sum_t sum_i (Mthr - Mbw) * (X - thr_i) with X = p[t,i]
/// = softmax(logits[t,:])[i] and Mthr = [X > thr_i].
template <typename T>
void batchwiseThresholdLossForward(int64_t numTokens, int64_t n,
                                   const T *logits, const T *batchMask,
                                   const T *thresholds, T *loss) {
  checkRouterShape("batchwiseThresholdLossForward", numTokens, n);
  std::vector<T> probs = routerProbabilities(numTokens, n, logits);
  std::vector<T> perExpert(static_cast<size_t>(n));
  auto addRow = [&](int64_t t, double *acc) {
    for (int64_t i = 0; i < n; ++i) {
      T x = probs[t * n + i];
      T diff = (x > thresholds[i] ? T(1) : T(0)) - batchMask[t * n + i];
      acc[i] += diff * (x - thresholds[i]);
    }
  };
  deterministicColumnSums(numTokens, n, addRow, perExpert.data());
  double sum = 0.0;
  for (T v : perExpert)
    sum += v;
  loss[0] = static_cast<T>(sum);
}

/// dThresholds[i] = -dLoss * sum_t (Mthr - Mbw) (written), Mthr = [p[t,i] >
/// thr_i] as in the forward pass; X = p is constant.
template <typename T>
void batchwiseThresholdLossBackward(int64_t numTokens, int64_t n,
                                    const T *logits, const T *batchMask,
                                    const T *thresholds, T dLoss,
                                    T *dThresholds) {
  checkRouterShape("batchwiseThresholdLossBackward", numTokens, n);
  std::vector<T> probs = routerProbabilities(numTokens, n, logits);
  auto addRow = [&](int64_t t, double *acc) {
    for (int64_t i = 0; i < n; ++i)
      acc[i] += (probs[t * n + i] > thresholds[i] ? 1.0 : 0.0) -
                static_cast<double>(batchMask[t * n + i]);
  };
  deterministicColumnSums(numTokens, n, addRow, dThresholds);
  for (int64_t i = 0; i < n; ++i)
    dThresholds[i] *= -dLoss;
}

//===----------------------------------------------------------------------===//
// Balancing losses
//===----------------------------------------------------------------------===//

/// importance[e] = sum of the gates routed to e, in assignment order.
template <typename T>
void importanceForward(int64_t A, int64_t n, const int32_t *expert,
                       const T *gate, T *importance) {
  checkRouterShape("importanceForward", A, n);
  std::vector<double> sum(static_cast<size_t>(n), 0.0);
  for (int64_t a = 0; a < A; ++a) {
    if (expert[a] < 0 || expert[a] >= n)
      throw std::invalid_argument("importanceForward: expert index " +
                                  std::to_string(expert[a]) + " out of range");
    sum[expert[a]] += gate[a];
  }
  for (int64_t i = 0; i < n; ++i)
    importance[i] = static_cast<T>(sum[i]);
}

/// dGate[a] = dImportance[expert[a]] (written).
template <typename T>
void importanceBackward(int64_t A, int64_t n, const int32_t *expert,
                        const T *dImportance, T *dGate) {
  checkRouterShape("importanceBackward", A, n);
#pragma omp parallel for if (A > kRoutingParallelGrain) schedule(static)
  for (int64_t a = 0; a < A; ++a)
    dGate[a] = dImportance[expert[a]];
}

//===----------------------------------------------------------------------===//
// The fused router
//===----------------------------------------------------------------------===//

/// moe.fused_route after its gate GEMMs (see Backend::fusedRouteForward):
/// the separate kernels in order, so the CPU's results are exactly theirs.
template <typename T>
void fusedRouteForward(int64_t numTokens, int64_t n, int64_t k, const T *clean,
                       const T *rawNoise, T noiseEps, bool training,
                       uint64_t seed, uint64_t counter, uint64_t elementOffset,
                       T *noisy, T *noiseStd, T *topValues, int32_t *expert,
                       T *gate, T *load, T *importance, int32_t *expertOffset,
                       int32_t *positionOf, int32_t *tokenOfPosition) {
  noisyTopKForward(numTokens, n, k, clean, rawNoise, noiseEps, training, seed,
                   counter, noisy, noiseStd, topValues, expert, gate,
                   elementOffset);
  loadEstimateForward(numTokens, n, k, clean, noisy, noiseStd, topValues,
                      /*rowPtr=*/nullptr, load);
  importanceForward(numTokens * k, n, expert, gate, importance);
  buildDispatchPlan(numTokens, n, numTokens * k, /*rowPtr=*/nullptr, expert,
                    expertOffset, positionOf, tokenOfPosition);
}

/// moe.fused_route's backward (see Backend::fusedRouteBackward): the
/// separate kernels and the sums moe-autodiff would build from them.
template <typename T>
void fusedRouteBackward(int64_t numTokens, int64_t n, int64_t k, const T *clean,
                        const T *rawNoise, const T *noisy, const T *noiseStd,
                        const T *topValues, const int32_t *expert,
                        const T *gate, const T *dGate, const T *dLoad,
                        const T *dImportance, T *dClean, T *dRawNoise) {
  checkTopK("fusedRouteBackward", numTokens, n, k);
  if (!rawNoise)
    throw std::invalid_argument("fusedRouteBackward: rawNoise is required");
  if (!dGate && !dLoad && !dImportance)
    throw std::invalid_argument(
        "fusedRouteBackward: needs dGate, dLoad or dImportance");
  int64_t A = numTokens * k, count = numTokens * n;
  std::vector<T> gateSum;
  if (dImportance) {
    gateSum.resize(static_cast<size_t>(A));
    importanceBackward(A, n, expert, dImportance, gateSum.data());
    if (dGate)
      for (int64_t a = 0; a < A; ++a)
        gateSum[a] = dGate[a] + gateSum[a];
    dGate = gateSum.data();
  }
  if (dGate)
    noisyTopKBackward(numTokens, n, k, noisy, clean, rawNoise, noiseStd, expert,
                      gate, dGate, dClean, dRawNoise);
  if (!dLoad)
    return;
  std::vector<T> loadClean(static_cast<size_t>(count), T(0)),
      loadRaw(static_cast<size_t>(count), T(0));
  loadEstimateBackward(numTokens, n, k, clean, noisy, rawNoise, noiseStd,
                       topValues, /*rowPtr=*/nullptr, dLoad, loadClean.data(),
                       loadRaw.data());
  for (int64_t i = 0; i < count; ++i) {
    dClean[i] = dGate ? dClean[i] + loadClean[i] : loadClean[i];
    dRawNoise[i] = dGate ? dRawNoise[i] + loadRaw[i] : loadRaw[i];
  }
}

/// Epsilon of the CV^2 denominator, as in the paper's implementation.
constexpr double kCvSquaredEps = 1e-10;

/// loss[0] = weight * var(v) / (mean(v)^2 + 1e-10), population variance.
template <typename T>
void cvSquaredForward(int64_t n, const T *v, T weight, T *loss) {
  checkRouterShape("cvSquaredForward", 0, n);
  double mean = 0.0;
  for (int64_t i = 0; i < n; ++i)
    mean += v[i];
  mean /= static_cast<double>(n);
  double var = 0.0;
  for (int64_t i = 0; i < n; ++i)
    var += (v[i] - mean) * (v[i] - mean);
  var /= static_cast<double>(n);
  loss[0] = static_cast<T>(weight * var / (mean * mean + kCvSquaredEps));
}

/// dV[i] = dLoss * weight * (2 (v_i - mean) / (n D) - 2 var mean / (n D^2))
/// with D = mean^2 + 1e-10 (written).
template <typename T>
void cvSquaredBackward(int64_t n, const T *v, T weight, T dLoss, T *dV) {
  checkRouterShape("cvSquaredBackward", 0, n);
  double count = static_cast<double>(n);
  double mean = 0.0;
  for (int64_t i = 0; i < n; ++i)
    mean += v[i];
  mean /= count;
  double var = 0.0;
  for (int64_t i = 0; i < n; ++i)
    var += (v[i] - mean) * (v[i] - mean);
  var /= count;
  double denom = mean * mean + kCvSquaredEps;
  double scale = static_cast<double>(dLoss) * weight;
  double meanTerm = 2.0 * var * mean / (count * denom * denom);
  for (int64_t i = 0; i < n; ++i)
    dV[i] = static_cast<T>(scale *
                           (2.0 * (v[i] - mean) / (count * denom) - meanTerm));
}

/// Eq. 5: loss[0] = weight / 2 * sum_i (importance_i / T - 1 / n)^2.
template <typename T>
void l2BalanceForward(int64_t numTokens, int64_t n, const T *importance,
                      T weight, T *loss) {
  checkRouterShape("l2BalanceForward", numTokens, n);
  if (numTokens == 0)
    throw std::invalid_argument("l2BalanceForward: numTokens must be > 0");
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    double diff = static_cast<double>(importance[i]) / numTokens - 1.0 / n;
    sum += diff * diff;
  }
  loss[0] = static_cast<T>(0.5 * weight * sum);
}

/// dImportance[i] = dLoss * weight * (importance_i / T - 1 / n) / T.
template <typename T>
void l2BalanceBackward(int64_t numTokens, int64_t n, const T *importance,
                       T weight, T dLoss, T *dImportance) {
  checkRouterShape("l2BalanceBackward", numTokens, n);
  if (numTokens == 0)
    throw std::invalid_argument("l2BalanceBackward: numTokens must be > 0");
  double scale = static_cast<double>(dLoss) * weight / numTokens;
  for (int64_t i = 0; i < n; ++i)
    dImportance[i] = static_cast<T>(
        scale * (static_cast<double>(importance[i]) / numTokens - 1.0 / n));
}

//===--- The combined batch's batchwise ranking ---------------------------===//
// step/CombinedBatchMask.cpp ranks every rank's rows by bisection on the
// probabilities' bit patterns (non-negative floats order like their bits).
// Column c = g n + j is expert j of group g, whose rows are
// [groupOffsets[g], groupOffsets[g + 1]) of probs [rows, n].

inline uint32_t probabilityBits(float p) {
  uint32_t bits;
  std::memcpy(&bits, &p, sizeof(bits));
  return bits;
}

/// counts[c] = the rows of column c's group whose bits are >= the midpoint
/// (lo[c] + hi[c]) / 2 (lo = hi counts at exactly that bound).
inline void countAtLeastMidpoint(int64_t rows, int64_t n, int64_t groups,
                                 const int32_t *groupOffsets,
                                 const float *probs, const int64_t *lo,
                                 const int64_t *hi, int64_t *counts) {
  if (groups > 0 && (groupOffsets[0] < 0 || groupOffsets[groups] > rows))
    throw std::invalid_argument("countAtLeastMidpoint: group rows outside "
                                "the " +
                                std::to_string(rows) + " rows");
#pragma omp parallel for schedule(static) if (groups * n > 64)
  for (int64_t c = 0; c < groups * n; ++c) {
    const int64_t g = c / n, j = c % n;
    const uint64_t bound = static_cast<uint64_t>((lo[c] + hi[c]) / 2);
    int64_t count = 0;
    for (int64_t r = groupOffsets[g]; r < groupOffsets[g + 1]; ++r)
      count += probabilityBits(probs[r * n + j]) >= bound;
    counts[c] = count;
  }
}

/// One bisection step per column: the midpoint (lo + hi) / 2 becomes lo
/// when counts[c] (over every rank) reaches `total`, else hi, so that
/// count(>= lo) >= total > count(>= hi) holds throughout.
inline void narrowBisection(int64_t columns, int64_t total,
                            const int64_t *counts, int64_t *lo, int64_t *hi) {
  for (int64_t c = 0; c < columns; ++c) {
    const int64_t mid = (lo[c] + hi[c]) / 2;
    (counts[c] >= total ? lo[c] : hi[c]) = mid;
  }
}

/// mask [rows, n] (written whole): 1 where the bits exceed lo[c]; of the
/// rows whose bits equal lo[c], the first take[c] in row order; 0 elsewhere
/// and in rows outside every group.
inline void selectAboveThreshold(int64_t rows, int64_t n, int64_t groups,
                                 const int32_t *groupOffsets,
                                 const float *probs, const int64_t *lo,
                                 const int64_t *take, float *mask) {
  std::fill(mask, mask + rows * n, 0.0f);
#pragma omp parallel for schedule(static) if (groups * n > 64)
  for (int64_t c = 0; c < groups * n; ++c) {
    const int64_t g = c / n, j = c % n;
    const uint64_t threshold = static_cast<uint64_t>(lo[c]);
    int64_t ties = take[c];
    for (int64_t r = groupOffsets[g]; r < groupOffsets[g + 1]; ++r) {
      const uint64_t bits = probabilityBits(probs[r * n + j]);
      if (bits > threshold || (bits == threshold && ties-- > 0))
        mask[r * n + j] = 1.0f;
    }
  }
}

} // namespace moe::rt::cpu

#endif // MOE_RUNTIME_CPU_KERNELS_ROUTINGKERNELS_H
