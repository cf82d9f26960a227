//===- TestUtil.h - Shared helpers for the runtime unit tests ---*- C++ -*-===//
//
// Random tensors, tolerant comparison and central finite differences. The
// gradient checks run the templated CPU kernels in double precision, so a
// step of 1e-6 gives errors near 1e-9 and the tolerance can stay tight.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TEST_UNIT_RUNTIME_TESTUTIL_H
#define MOE_TEST_UNIT_RUNTIME_TESTUTIL_H

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <vector>

namespace moe::test {

/// `count` values uniform in [lo, hi) from a fixed seed.
template <typename T = float>
std::vector<T> randomVector(size_t count, uint32_t seed, double lo = -1.0,
                            double hi = 1.0) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<T> v(count);
  for (auto &x : v)
    x = static_cast<T>(dist(gen));
  return v;
}

/// Expects |a - b| <= atol + rtol * |b| elementwise, reporting the first
/// mismatch with its index.
template <typename A, typename B>
void expectAllClose(const std::vector<A> &actual, const std::vector<B> &expected,
                    double rtol, double atol, const char *what = "") {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (size_t i = 0; i < actual.size(); ++i) {
    double a = actual[i], b = expected[i];
    if (!(std::fabs(a - b) <= atol + rtol * std::fabs(b))) {
      ADD_FAILURE() << what << ": mismatch at " << i << ": got " << a
                    << ", expected " << b;
      return;
    }
  }
}

/// Central finite difference of a scalar function f at x:
/// grad[i] = (f(x + h e_i) - f(x - h e_i)) / 2h.
inline std::vector<double>
numericGradient(const std::function<double(const std::vector<double> &)> &f,
                std::vector<double> x, double h = 1e-6) {
  std::vector<double> grad(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    double saved = x[i];
    x[i] = saved + h;
    double up = f(x);
    x[i] = saved - h;
    double down = f(x);
    x[i] = saved;
    grad[i] = (up - down) / (2 * h);
  }
  return grad;
}

} // namespace moe::test

#endif // MOE_TEST_UNIT_RUNTIME_TESTUTIL_H
