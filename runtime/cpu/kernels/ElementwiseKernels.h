//===- ElementwiseKernels.h - Pointwise CPU kernels -------------*- C++ -*-===//
//
// Residual add, accumulation, scaling, bias add, column sums, sigmoid, tanh,
// ReLU and Philox inverted dropout as templates over the scalar type (float
// in the backend, double in the gradient tests). Every element is
// independent, so the loops split across OpenMP threads without changing any
// result; sumRows splits the columns, never the rows, for the same reason.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_CPU_KERNELS_ELEMENTWISEKERNELS_H
#define MOE_RUNTIME_CPU_KERNELS_ELEMENTWISEKERNELS_H

#include "runtime/Checks.h"
#include "runtime/Philox.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace moe::rt::cpu {

/// Below this many elements a loop runs on the calling thread: waking the
/// OpenMP team costs more than the work.
constexpr int64_t kParallelGrain = 1 << 15;

/// x[i] = bound * (2 u(begin + i) - 1) (Kernels.def): one Philox block per
/// four elements of the global tensor, blocks split over the threads.
template <typename T>
void initUniform(T *x, int64_t count, double bound, uint64_t seed,
                 uint64_t stream, uint64_t begin) {
  checkCount("initUniform", count);
  if (count == 0)
    return;
  const uint64_t first = begin >> 2, last = (begin + count - 1) >> 2;
  const int64_t blocks = static_cast<int64_t>(last - first + 1);
#pragma omp parallel for if (count > kParallelGrain) schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    uint64_t block = first + static_cast<uint64_t>(b);
    PhiloxBlock bits = philox4x32(seed, block, stream);
    for (uint64_t j = 0; j < 4; ++j) {
      uint64_t index = 4 * block + j;
      if (index >= begin && index < begin + static_cast<uint64_t>(count))
        x[index - begin] =
            static_cast<T>(bound * (2.0 * philoxUniform(bits.v[j]) - 1.0));
    }
  }
}

/// y = a + b.
template <typename T> void add(const T *a, const T *b, T *y, int64_t count) {
  checkCount("add", count);
#pragma omp parallel for if (count > kParallelGrain) schedule(static)
  for (int64_t i = 0; i < count; ++i)
    y[i] = a[i] + b[i];
}

/// y += x.
template <typename T> void accumulate(const T *x, T *y, int64_t count) {
  checkCount("accumulate", count);
#pragma omp parallel for if (count > kParallelGrain) schedule(static)
  for (int64_t i = 0; i < count; ++i)
    y[i] += x[i];
}

/// y = factor * x; y may alias x.
template <typename T> void scale(const T *x, T factor, T *y, int64_t count) {
  checkCount("scale", count);
#pragma omp parallel for if (count > kParallelGrain) schedule(static)
  for (int64_t i = 0; i < count; ++i)
    y[i] = factor * x[i];
}

/// y = (factor[0] * multiplier) * x with the factor in memory (null: 1).
template <typename T>
void scaleBy(const T *x, const T *factor, T multiplier, T *y, int64_t count) {
  checkCount("scaleBy", count);
  scale(x, factor ? factor[0] * multiplier : multiplier, y, count);
}

/// y[r, :] = x[r, :] + bias for x, y [rows, d]; y may alias x.
template <typename T>
void biasAdd(int64_t rows, int64_t d, const T *x, const T *bias, T *y) {
  checkCount("biasAdd", rows);
  checkCount("biasAdd", d);
#pragma omp parallel for if (rows * d > kParallelGrain) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const T *xr = x + r * d;
    T *yr = y + r * d;
    for (int64_t j = 0; j < d; ++j)
      yr[j] = xr[j] + bias[j];
  }
}

/// y [d] (written) = sum over the rows of x [rows, d], each column summed
/// from row 0 upwards starting at zero. The threads split the columns in
/// blocks, so every column is one sequential sum whatever the thread count.
template <typename T> void sumRows(int64_t rows, int64_t d, const T *x, T *y) {
  checkCount("sumRows", rows);
  checkCount("sumRows", d);
  constexpr int64_t kColumnBlock = 64;
  int64_t numBlocks = (d + kColumnBlock - 1) / kColumnBlock;
#pragma omp parallel for if (rows * d > kParallelGrain) schedule(static)
  for (int64_t blk = 0; blk < numBlocks; ++blk) {
    int64_t begin = blk * kColumnBlock;
    int64_t end = std::min(d, begin + kColumnBlock);
    T *yb = y + begin;
    std::fill(yb, y + end, T(0));
    for (int64_t r = 0; r < rows; ++r) {
      const T *xr = x + r * d + begin;
      for (int64_t j = 0; j < end - begin; ++j)
        yb[j] += xr[j];
    }
  }
}

/// y = 1 / (1 + exp(-x)); exp overflows to inf for very negative x, which
/// still gives the correct limit 0.
template <typename T> void sigmoidForward(const T *x, T *y, int64_t count) {
  checkCount("sigmoidForward", count);
#pragma omp parallel for if (count > kParallelGrain) schedule(static)
  for (int64_t i = 0; i < count; ++i)
    y[i] = T(1) / (T(1) + std::exp(-x[i]));
}

/// dx = dy * y * (1 - y), from the saved output y.
template <typename T>
void sigmoidBackward(const T *y, const T *dy, T *dx, int64_t count) {
  checkCount("sigmoidBackward", count);
#pragma omp parallel for if (count > kParallelGrain) schedule(static)
  for (int64_t i = 0; i < count; ++i)
    dx[i] = dy[i] * y[i] * (T(1) - y[i]);
}

/// y = tanh(x).
template <typename T> void tanhForward(const T *x, T *y, int64_t count) {
  checkCount("tanhForward", count);
#pragma omp parallel for if (count > kParallelGrain) schedule(static)
  for (int64_t i = 0; i < count; ++i)
    y[i] = std::tanh(x[i]);
}

/// dx = dy * (1 - y^2), from the saved output y.
template <typename T>
void tanhBackward(const T *y, const T *dy, T *dx, int64_t count) {
  checkCount("tanhBackward", count);
#pragma omp parallel for if (count > kParallelGrain) schedule(static)
  for (int64_t i = 0; i < count; ++i)
    dx[i] = dy[i] * (T(1) - y[i] * y[i]);
}

/// y = max(x, 0).
template <typename T> void reluForward(const T *x, T *y, int64_t count) {
  checkCount("reluForward", count);
#pragma omp parallel for if (count > kParallelGrain) schedule(static)
  for (int64_t i = 0; i < count; ++i)
    y[i] = x[i] > T(0) ? x[i] : T(0);
}

/// dx = dy where the saved output y is positive, else 0.
template <typename T>
void reluBackward(const T *y, const T *dy, T *dx, int64_t count) {
  checkCount("reluBackward", count);
#pragma omp parallel for if (count > kParallelGrain) schedule(static)
  for (int64_t i = 0; i < count; ++i)
    dx[i] = y[i] > T(0) ? dy[i] : T(0);
}

/// out = in * keep_i / (1 - rate) with keep_i = (philoxUniformAt(seed,
/// counter, i) >= rate). Forward and backward are the same masked scaling,
/// so backward recomputes the mask instead of storing it. One Philox block
/// feeds four consecutive elements, exactly as philoxUniformAt indexes them.
template <typename T>
void dropoutApply(const T *in, T *out, int64_t count, float rate, uint64_t seed,
                  uint64_t counter, uint64_t elementOffset = 0) {
  T scale = T(1) / (T(1) - T(rate));
  int64_t numBlocks = (count + 3) / 4;
  uint64_t firstBlock = elementOffset / 4;
#pragma omp parallel for if (count > kParallelGrain) schedule(static)
  for (int64_t blk = 0; blk < numBlocks; ++blk) {
    PhiloxBlock bits =
        philox4x32(seed, firstBlock + static_cast<uint64_t>(blk), counter);
    int64_t begin = blk * 4;
    int64_t end = begin + 4 < count ? begin + 4 : count;
    for (int64_t i = begin; i < end; ++i)
      out[i] = philoxUniform(bits.v[i - begin]) >= rate ? in[i] * scale : T(0);
  }
}

/// Inverted dropout: y = x * keep / (1 - rate).
template <typename T>
void dropoutForward(const T *x, T *y, int64_t count, float rate, uint64_t seed,
                    uint64_t counter, uint64_t elementOffset = 0) {
  checkCount("dropoutForward", count);
  checkDropoutRate("dropoutForward", rate);
  checkElementOffset("dropoutForward", elementOffset);
  dropoutApply(x, y, count, rate, seed, counter, elementOffset);
}

/// dx = dy * keep / (1 - rate), with the mask recomputed from (seed,
/// counter).
template <typename T>
void dropoutBackward(const T *dy, T *dx, int64_t count, float rate,
                     uint64_t seed, uint64_t counter,
                     uint64_t elementOffset = 0) {
  checkCount("dropoutBackward", count);
  checkDropoutRate("dropoutBackward", rate);
  checkElementOffset("dropoutBackward", elementOffset);
  dropoutApply(dy, dx, count, rate, seed, counter, elementOffset);
}

/// Row-sparse sums by key (Kernels.def: rowGradient). A stable sort of the
/// positions by key makes each key's run list its contributions in index
/// order; runs are independent, so they are split across threads.
template <typename T>
void rowGradient(int64_t n, int64_t d, int64_t vocab, const int32_t *keys,
                 const T *contributions, int32_t *rows, T *values) {
  if (n < 0 || d < 0)
    throw std::invalid_argument("rowGradient: negative shape");
  std::vector<int64_t> order;
  order.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    if (keys[i] >= vocab)
      throw std::invalid_argument("rowGradient: key " +
                                  std::to_string(keys[i]) +
                                  " outside the vocabulary");
    if (keys[i] >= 0)
      order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return keys[a] < keys[b]; });
  std::vector<int64_t> runStart;
  for (size_t p = 0; p < order.size(); ++p)
    if (p == 0 || keys[order[p]] != keys[order[p - 1]])
      runStart.push_back(static_cast<int64_t>(p));
  int64_t runs = static_cast<int64_t>(runStart.size());
  runStart.push_back(static_cast<int64_t>(order.size()));
  std::fill(rows + runs, rows + n, -1);
  std::fill(values + runs * d, values + n * d, T(0));
#pragma omp parallel for if (static_cast <int64_t>(order.size()) * d >         \
                             kParallelGrain) schedule(static)
  for (int64_t r = 0; r < runs; ++r) {
    rows[r] = keys[order[runStart[r]]];
    T *dst = values + r * d;
    std::fill(dst, dst + d, T(0));
    for (int64_t p = runStart[r]; p < runStart[r + 1]; ++p) {
      const T *src = contributions + order[p] * d;
      for (int64_t c = 0; c < d; ++c)
        dst[c] += src[c];
    }
  }
}

} // namespace moe::rt::cpu

#endif // MOE_RUNTIME_CPU_KERNELS_ELEMENTWISEKERNELS_H
