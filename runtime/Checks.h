//===- Checks.h - Argument checks shared by every backend -------*- C++ -*-===//
//
// The cheap shape and argument checks of the kernels, written once so that
// the CPU and CUDA backends reject the same calls with the same message.
// Each throws std::invalid_argument naming the kernel.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_CHECKS_H
#define MOE_RUNTIME_CHECKS_H

#include "runtime/Backend.h"
#include "runtime/Optimizer.h"

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace moe::rt {

inline void checkCount(const char *kernel, int64_t count) {
  if (count < 0)
    throw std::invalid_argument(std::string(kernel) + ": negative count");
}

/// 0 <= rate < 1.
/// Sharded Philox streams start on a block of four values.
inline void checkElementOffset(const char *kernel, uint64_t elementOffset) {
  if (elementOffset % 4 != 0)
    throw std::invalid_argument(std::string(kernel) +
                                ": elementOffset must be a multiple of 4");
}

inline void checkDropoutRate(const char *kernel, float rate) {
  if (!(rate >= 0.0f && rate < 1.0f))
    throw std::invalid_argument(std::string(kernel) +
                                ": dropout rate must be in [0, 1)");
}

/// Row-major C = op(A) op(B): non-negative sizes, leading dimensions at
/// least the row widths.
inline void checkGemmShape(bool transA, bool transB, int64_t m, int64_t n,
                           int64_t k, int64_t lda, int64_t ldb, int64_t ldc) {
  if (m < 0 || n < 0 || k < 0)
    throw std::invalid_argument("gemm: negative dimension");
  if (ldc < std::max<int64_t>(n, 1) ||
      lda < std::max<int64_t>(transA ? m : k, 1) ||
      ldb < std::max<int64_t>(transB ? k : n, 1))
    throw std::invalid_argument("gemm: leading dimension too small");
}

inline void checkRouterShape(const char *kernel, int64_t numTokens, int64_t n) {
  if (numTokens < 0 || n < 1)
    throw std::invalid_argument(std::string(kernel) +
                                ": need numTokens >= 0 and n >= 1");
}

/// Threshold masks (Eq. 7) write at most their compiled `capacity` of
/// assignments. More passing the thresholds depends on the data, not on
/// the call, so it throws std::runtime_error (not invalid_argument), with
/// what to change.
inline void checkThresholdCapacity(const char *kernel, int64_t assigned,
                                   int64_t capacity) {
  if (assigned <= capacity)
    return;
  throw std::runtime_error(
      std::string(kernel) + ": " + std::to_string(assigned) +
      " assignments pass the thresholds but the compiled capacity is " +
      std::to_string(capacity) +
      " (recompile with a larger "
      "--moe-inference-pipeline=\"threshold-capacity=...\" or "
      "--moe-train-pipeline=\"threshold-capacity=...\")");
}

/// 1 <= k <= n.
inline void checkTopK(const char *kernel, int64_t numTokens, int64_t n,
                      int64_t k) {
  checkRouterShape(kernel, numTokens, n);
  if (k < 1 || k > n)
    throw std::invalid_argument(
        std::string(kernel) + ": k = " + std::to_string(k) +
        " is not in [1, n = " + std::to_string(n) + "]");
}

inline void checkComposeShape(const char *kernel, int64_t assignments,
                              int64_t k) {
  if (assignments < 0 || k < 1)
    throw std::invalid_argument(std::string(kernel) +
                                ": needs A1 >= 0 and k >= 1");
}

/// The secondary level of a hierarchical layer: groups >= 1 segments of
/// rows >= 0 rows each (or rows in all), n >= 1 experts per group.
inline void checkGroupedShape(const char *kernel, int64_t groups, int64_t rows,
                              int64_t n) {
  if (groups < 1 || rows < 0 || n < 1)
    throw std::invalid_argument(std::string(kernel) +
                                ": need groups >= 1, rows >= 0 and n >= 1");
}

/// T tokens, capacities A1 (primary) and A2 (secondary) >= 0.
inline void checkComposeCsrShape(const char *kernel, int64_t T, int64_t A1,
                                 int64_t A2) {
  if (T < 0 || A1 < 0 || A2 < 0)
    throw std::invalid_argument(std::string(kernel) +
                                ": needs T, A1 and A2 >= 0");
}

inline void checkLstmShape(const char *kernel, int64_t B, int64_t S,
                           int64_t dIn, int64_t H, int64_t P,
                           bool hasProjection) {
  if (B < 0 || S < 0 || dIn <= 0 || H <= 0 || P <= 0)
    throw std::invalid_argument(std::string(kernel) +
                                ": need B, S >= 0 and dIn, H, P > 0");
  if (!hasProjection && P != H)
    throw std::invalid_argument(std::string(kernel) +
                                ": P must equal H without a projection");
}

/// An LSTM's initial state (h0, c0) and final state (hT, cT) each come as
/// both pointers or neither.
inline void checkLstmState(const char *kernel, const void *h0, const void *c0,
                           const void *hT, const void *cT) {
  if ((h0 == nullptr) != (c0 == nullptr) || (hT == nullptr) != (cT == nullptr))
    throw std::invalid_argument(std::string(kernel) +
                                ": needs both of h0, c0 (and of hT, cT) or "
                                "neither");
}

/// B sequences of `time` positions, k >= 1 assignments per position.
inline void checkDropPaddingShape(const char *kernel, int64_t B, int64_t time,
                                  int64_t k) {
  if (B < 0 || time < 0 || k < 1)
    throw std::invalid_argument(std::string(kernel) +
                                ": needs B, time >= 0 and k >= 1");
}

inline void checkAttentionShape(const char *kernel, int64_t B, int64_t Sx,
                                int64_t Sy, int64_t dX, int64_t dY, int64_t E) {
  if (B < 0 || Sy < 0 || Sx <= 0 || dX <= 0 || dY <= 0 || E <= 0)
    throw std::invalid_argument(std::string(kernel) +
                                ": need B, Sy >= 0 and Sx, dX, dY, E > 0");
}

/// A 1-based step and decay rates in [0, 1).
/// The step counter is checked where it is on the host: a backend that
/// keeps it in device memory checks only the count and the betas.
inline void checkAdam(int64_t count, const AdamConfig &config) {
  checkCount("adamUpdate", count);
  if (!(config.beta1 >= 0 && config.beta1 < 1 && config.beta2 >= 0 &&
        config.beta2 < 1))
    throw std::invalid_argument("adamUpdate: betas must be in [0, 1)");
}

inline void checkAdam(int64_t count, int64_t step, const AdamConfig &config) {
  checkAdam(count, config);
  if (step < 1)
    throw std::invalid_argument("adamUpdate: step is 1-based");
}

} // namespace moe::rt

#endif // MOE_RUNTIME_CHECKS_H
