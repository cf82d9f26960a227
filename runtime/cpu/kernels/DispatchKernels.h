//===- DispatchKernels.h - Dispatch, combine and grouped GEMM ---*- C++ -*-===//
//
// Moves tokens between the token-major assignment form and the expert-major
// buffer that the experts consume: the dispatch plan (a stable counting sort
// of the assignments by expert), dispatch / combine and their adjoints, and
// the grouped GEMM over the experts' segments. Templates over the scalar
// type: the backend runs them in float, the gradient tests in double.
//
// Every output row is written by one thread from its inputs in a fixed
// order (the token's assignments in assignment order), so results do not
// depend on the thread count.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_CPU_KERNELS_DISPATCHKERNELS_H
#define MOE_RUNTIME_CPU_KERNELS_DISPATCHKERNELS_H

#include "runtime/cpu/kernels/Blas.h"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace moe::rt::cpu {

/// Below this many elements a dispatch kernel runs on the calling thread.
constexpr int64_t kDispatchParallelGrain = 1 << 14;

/// How groupedMatmul spreads its GEMMs over the cores.
enum class GroupedSchedule {
  /// Segments larger than a fair share of the rows (one thread's worth) run
  /// one after another with OpenBLAS threading; all others run as
  /// ExpertParallel. Balanced routing thus gets one GEMM per core, and a
  /// dominant expert still gets every core.
  Auto,
  /// One single-threaded GEMM per expert, experts spread over OpenMP
  /// threads: best for many small segments.
  ExpertParallel,
  /// Experts one after another, each GEMM threaded by OpenBLAS.
  BlasThreads,
};

/// Below this many rows a segment never gets OpenBLAS threading in Auto.
/// On the 2-core EPYC machines at d = 512 (bench/grouped_gemm_bench.cpp,
/// best of six runs), one GEMM per core against OpenBLAS threading gave 105
/// vs 82 GFLOP/s for 16-row segments, 158 vs 131 for 64, 174 vs 145 for 128,
/// 181-189 vs 159-182 from 256 to 2048 rows and 172 vs 177 for 4096:
/// threading only pays for a segment too large to share the cores.
constexpr int64_t kMinBlasThreadedRows = 256;

/// Throws std::invalid_argument naming `kernel` unless the sizes are sane.
inline void checkPlanSizes(const char *kernel, int64_t numTokens, int64_t n,
                           int64_t numAssignments) {
  if (numTokens < 0 || n < 1 || numAssignments < 0)
    throw std::invalid_argument(std::string(kernel) +
                                ": need T >= 0, n >= 1, A >= 0");
  if (numTokens == 0 && numAssignments != 0)
    throw std::invalid_argument(std::string(kernel) +
                                ": assignments without tokens");
}

/// The row pointers of a plan: given, or A / T per token when null.
class RowPointers {
public:
  RowPointers(const char *kernel, const int32_t *rowPtr, int64_t numTokens,
              int64_t numAssignments)
      : rowPtr(rowPtr),
        perToken(numTokens > 0 ? numAssignments / numTokens : 0) {
    if (!rowPtr && numTokens > 0 && numAssignments % numTokens != 0)
      throw std::invalid_argument(
          std::string(kernel) + ": " + std::to_string(numAssignments) +
          " assignments do not split evenly over " + std::to_string(numTokens) +
          " tokens (no row pointers)");
  }
  int64_t begin(int64_t t) const { return rowPtr ? rowPtr[t] : t * perToken; }
  int64_t end(int64_t t) const { return begin(t + 1); }

private:
  const int32_t *rowPtr;
  int64_t perToken;
};

/// Stable counting sort of the assignments by expert (see
/// Backend::buildDispatchPlan). Checks that rowPtr is a valid CSR offset
/// array ending at A and that every expert index is in range.
inline void buildDispatchPlan(int64_t numTokens, int64_t n, int64_t A,
                              const int32_t *rowPtr, const int32_t *expert,
                              int32_t *expertOffset, int32_t *positionOf,
                              int32_t *tokenOfPosition) {
  checkPlanSizes("buildDispatchPlan", numTokens, n, A);
  RowPointers rows("buildDispatchPlan", rowPtr, numTokens, A);
  if (rows.begin(0) != 0 || rows.begin(numTokens) != A)
    throw std::invalid_argument(
        "buildDispatchPlan: rowPtr must start at 0 and end at "
        "numAssignments = " +
        std::to_string(A));
  std::vector<int32_t> count(static_cast<size_t>(n), 0);
  for (int64_t t = 0; t < numTokens; ++t) {
    if (rows.end(t) < rows.begin(t))
      throw std::invalid_argument("buildDispatchPlan: rowPtr decreases at "
                                  "token " +
                                  std::to_string(t));
    for (int64_t a = rows.begin(t); a < rows.end(t); ++a) {
      int32_t e = expert[a];
      if (e < 0 || e >= n)
        throw std::invalid_argument("buildDispatchPlan: expert index " +
                                    std::to_string(e) + " of assignment " +
                                    std::to_string(a) + " is not in [0, " +
                                    std::to_string(n) + ")");
      ++count[e];
    }
  }
  expertOffset[0] = 0;
  for (int64_t e = 0; e < n; ++e)
    expertOffset[e + 1] = expertOffset[e] + count[e];
  std::vector<int32_t> cursor(expertOffset, expertOffset + n);
  for (int64_t t = 0; t < numTokens; ++t)
    for (int64_t a = rows.begin(t); a < rows.end(t); ++a) {
      int32_t p = cursor[expert[a]]++;
      positionOf[a] = p;
      tokenOfPosition[p] = static_cast<int32_t>(t);
    }
}

/// buffer [A,d]: row p = x[tokenOfPosition[p]].
template <typename T>
void dispatchForward(int64_t A, int64_t d, const int32_t *tokenOfPosition,
                     const T *x, T *buffer) {
  checkPlanSizes("dispatchForward", A, 1, A);
#pragma omp parallel for if (A * d > kDispatchParallelGrain) schedule(static)
  for (int64_t p = 0; p < A; ++p)
    std::memcpy(buffer + p * d, x + tokenOfPosition[p] * d, sizeof(T) * d);
}

/// dx [T,d] (written) = sum over the token's assignments, in assignment
/// order, of dBuffer[positionOf[a]].
template <typename T>
void dispatchBackward(int64_t numTokens, int64_t A, int64_t d,
                      const int32_t *rowPtr, const int32_t *positionOf,
                      const T *dBuffer, T *dx) {
  checkPlanSizes("dispatchBackward", numTokens, 1, A);
  RowPointers rows("dispatchBackward", rowPtr, numTokens, A);
#pragma omp parallel for if (A * d > kDispatchParallelGrain) schedule(static)
  for (int64_t t = 0; t < numTokens; ++t) {
    T *out = dx + t * d;
    int64_t begin = rows.begin(t), end = rows.end(t);
    if (begin == end) {
      std::fill(out, out + d, T(0));
      continue;
    }
    std::memcpy(out, dBuffer + positionOf[begin] * d, sizeof(T) * d);
    for (int64_t a = begin + 1; a < end; ++a) {
      const T *row = dBuffer + positionOf[a] * d;
      for (int64_t j = 0; j < d; ++j)
        out[j] += row[j];
    }
  }
}

/// y [T,d] (written) = sum_a gate[a] * expertOut[positionOf[a]], in
/// assignment order.
template <typename T>
void combineForward(int64_t numTokens, int64_t A, int64_t d,
                    const int32_t *rowPtr, const int32_t *positionOf,
                    const T *gate, const T *expertOut, T *y) {
  checkPlanSizes("combineForward", numTokens, 1, A);
  RowPointers rows("combineForward", rowPtr, numTokens, A);
#pragma omp parallel for if (A * d > kDispatchParallelGrain) schedule(static)
  for (int64_t t = 0; t < numTokens; ++t) {
    T *out = y + t * d;
    int64_t begin = rows.begin(t), end = rows.end(t);
    if (begin == end) {
      std::fill(out, out + d, T(0));
      continue;
    }
    const T *first = expertOut + positionOf[begin] * d;
    T g = gate[begin];
    for (int64_t j = 0; j < d; ++j)
      out[j] = g * first[j];
    for (int64_t a = begin + 1; a < end; ++a) {
      const T *row = expertOut + positionOf[a] * d;
      g = gate[a];
      for (int64_t j = 0; j < d; ++j)
        out[j] += g * row[j];
    }
  }
}

/// <a, b> over d entries with eight interleaved partial sums, a fixed order
/// that the compiler can vectorise (a single running sum cannot be).
template <typename T> inline T dotRow(const T *a, const T *b, int64_t d) {
  T partial[8] = {};
  int64_t j = 0;
  for (; j + 8 <= d; j += 8)
    for (int l = 0; l < 8; ++l)
      partial[l] += a[j + l] * b[j + l];
  T sum = T(0);
  for (int l = 0; l < 8; ++l)
    sum += partial[l];
  for (; j < d; ++j)
    sum += a[j] * b[j];
  return sum;
}

/// dExpertOut[positionOf[a]] = gate[a] * dy[t] and dGate[a] = <dy[t],
/// expertOut[positionOf[a]]> (both written).
template <typename T>
void combineBackward(int64_t numTokens, int64_t A, int64_t d,
                     const int32_t *rowPtr, const int32_t *positionOf,
                     const T *gate, const T *expertOut, const T *dy,
                     T *dExpertOut, T *dGate) {
  checkPlanSizes("combineBackward", numTokens, 1, A);
  RowPointers rows("combineBackward", rowPtr, numTokens, A);
#pragma omp parallel for if (A * d > kDispatchParallelGrain) schedule(static)
  for (int64_t t = 0; t < numTokens; ++t) {
    const T *grad = dy + t * d;
    for (int64_t a = rows.begin(t); a < rows.end(t); ++a) {
      int64_t p = positionOf[a];
      T g = gate[a];
      T *out = dExpertOut + p * d;
      for (int64_t j = 0; j < d; ++j)
        out[j] = g * grad[j];
      dGate[a] = dotRow(grad, expertOut + p * d, d);
    }
  }
}

/// Holds OpenBLAS to one thread while alive, so that GEMMs issued from
/// several OpenMP threads do not each try to use every core.
class SingleThreadedBlasScope {
public:
  SingleThreadedBlasScope() : saved(openblas_get_num_threads()) {
    openblas_set_num_threads(1);
  }
  ~SingleThreadedBlasScope() { openblas_set_num_threads(saved); }
  SingleThreadedBlasScope(const SingleThreadedBlasScope &) = delete;
  SingleThreadedBlasScope &operator=(const SingleThreadedBlasScope &) = delete;

private:
  int saved;
};

/// Calls body(e, rowBegin, rows) once for every expert e (also the empty
/// ones) of the segments expertOffset [n+1] of an A-row buffer, scheduled
/// as `schedule` says.
template <typename Body>
void forEachExpert(int64_t A, int64_t n, const int32_t *expertOffset,
                   GroupedSchedule schedule, Body body) {
  if (expertOffset[0] < 0 || expertOffset[n] > A)
    throw std::invalid_argument(
        "grouped matmul: expert segments [" + std::to_string(expertOffset[0]) +
        ", " + std::to_string(expertOffset[n]) + ") outside the buffer of " +
        std::to_string(A) + " rows");
  for (int64_t e = 0; e < n; ++e)
    if (expertOffset[e + 1] < expertOffset[e])
      throw std::invalid_argument("grouped matmul: expert offsets decrease "
                                  "at expert " +
                                  std::to_string(e));
  auto rowsOf = [&](int64_t e) {
    return expertOffset[e + 1] - expertOffset[e];
  };
  int threads = omp_get_max_threads();
  if (schedule == GroupedSchedule::BlasThreads || threads < 2) {
    for (int64_t e = 0; e < n; ++e)
      body(e, expertOffset[e], rowsOf(e));
    return;
  }
  int64_t fairShare = (A + threads - 1) / threads;
  int64_t bigRows = schedule == GroupedSchedule::Auto
                        ? std::max(kMinBlasThreadedRows, fairShare)
                        : std::numeric_limits<int64_t>::max();
  for (int64_t e = 0; e < n; ++e)
    if (rowsOf(e) >= bigRows)
      body(e, expertOffset[e], rowsOf(e));
  SingleThreadedBlasScope singleThreaded;
  // Dynamic: segment sizes differ when the routing is unbalanced.
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t e = 0; e < n; ++e)
    if (rowsOf(e) < bigRows)
      body(e, expertOffset[e], rowsOf(e));
}

/// out[seg e] = in[seg e] * W[e] with W [n, dIn, dOut]; empty segments are
/// skipped.
template <typename T>
void groupedMatmulForward(int64_t A, int64_t n, int64_t dIn, int64_t dOut,
                          const int32_t *expertOffset, const T *in,
                          const T *weights, T *out,
                          GroupedSchedule schedule = GroupedSchedule::Auto) {
  checkPlanSizes("groupedMatmulForward", A, n, A);
  forEachExpert(A, n, expertOffset, schedule,
                [&](int64_t e, int64_t begin, int64_t rows) {
                  gemm<T>(false, false, rows, dOut, dIn, T(1), in + begin * dIn,
                          dIn, weights + e * dIn * dOut, dOut, T(0),
                          out + begin * dOut, dOut);
                });
}

/// dInput[seg e] = dOutput[seg e] * W[e]^T and dWeights[e] = in[seg e]^T *
/// dOutput[seg e] (both written; dWeights[e] = 0 for an empty expert).
template <typename T>
void groupedMatmulBackward(int64_t A, int64_t n, int64_t dIn, int64_t dOut,
                           const int32_t *expertOffset, const T *in,
                           const T *weights, const T *dOutput, T *dInput,
                           T *dWeights,
                           GroupedSchedule schedule = GroupedSchedule::Auto) {
  checkPlanSizes("groupedMatmulBackward", A, n, A);
  forEachExpert(A, n, expertOffset, schedule,
                [&](int64_t e, int64_t begin, int64_t rows) {
                  T *dW = dWeights + e * dIn * dOut;
                  if (rows == 0) {
                    std::fill(dW, dW + dIn * dOut, T(0));
                    return;
                  }
                  const T *W = weights + e * dIn * dOut;
                  gemm<T>(false, true, rows, dIn, dOut, T(1),
                          dOutput + begin * dOut, dOut, W, dOut, T(0),
                          dInput + begin * dIn, dIn);
                  gemm<T>(true, false, dIn, dOut, rows, T(1), in + begin * dIn,
                          dIn, dOutput + begin * dOut, dOut, T(0), dW, dOut);
                });
}

/// Throws std::invalid_argument unless expertOffset [n+1] is e * rows: the
/// equal segments the compiler promised (moe.grouped_matmul's
/// rows_per_expert), checked here where the offsets are at hand.
inline void checkEqualSegments(const char *kernel, int64_t n, int64_t rows,
                               const int32_t *expertOffset) {
  if (n < 1 || rows < 0)
    throw std::invalid_argument(std::string(kernel) +
                                ": invalid expert count or rows per expert");
  for (int64_t e = 0; e <= n; ++e)
    if (expertOffset[e] != e * rows)
      throw std::invalid_argument(
          std::string(kernel) + ": expert " + std::to_string(e) +
          " starts at row " + std::to_string(expertOffset[e]) + ", not at " +
          std::to_string(e * rows) +
          " as the compiled graph's rows_per_expert = " + std::to_string(rows) +
          " promised");
}

/// groupedMatmulForward over n segments of `rows` rows each.
template <typename T>
void batchedMatmulForward(int64_t n, int64_t rows, int64_t dIn, int64_t dOut,
                          const int32_t *expertOffset, const T *in,
                          const T *weights, T *out) {
  checkEqualSegments("batchedMatmulForward", n, rows, expertOffset);
  groupedMatmulForward<T>(n * rows, n, dIn, dOut, expertOffset, in, weights,
                          out);
}

/// groupedMatmulBackward over n segments of `rows` rows each.
template <typename T>
void batchedMatmulBackward(int64_t n, int64_t rows, int64_t dIn, int64_t dOut,
                           const int32_t *expertOffset, const T *in,
                           const T *weights, const T *dOutput, T *dInput,
                           T *dWeights) {
  checkEqualSegments("batchedMatmulBackward", n, rows, expertOffset);
  groupedMatmulBackward<T>(n * rows, n, dIn, dOut, expertOffset, in, weights,
                           dOutput, dInput, dWeights);
}

} // namespace moe::rt::cpu

#endif // MOE_RUNTIME_CPU_KERNELS_DISPATCHKERNELS_H
