//===- sparse_gradient_bench.cpp - Dense vs row-sparse vocabulary update --===//
//
// Times one optimizer step of a [V, d] embedding table whose batch touched
// N ids, both ways moe-sparse-gradients chooses between:
//   dense:  zero-fill + embeddingBackward (a [V, d] gradient) + adamUpdate
//   sparse: rowGradient (N rows) + adamUpdateRows
// and prints one markdown row per (V, d, N) with the ratio dense / sparse,
// from which the pass's `auto` rule (N <= V) was chosen.
//
// Usage: sparse-gradient-bench [reps]
//
//===----------------------------------------------------------------------===//

#include "bench/BenchSupport.h"
#include "runtime/Backend.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

using namespace moe;

namespace {

double seconds() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// The best of `reps` timings of `f`, in milliseconds.
template <typename F> double bestMs(int reps, F f) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    double start = seconds();
    f();
    best = std::min(best, seconds() - start);
  }
  return best * 1e3;
}

} // namespace

int main(int argc, char **argv) {
  int reps = argc > 1 ? std::atoi(argv[1]) : 5;
  auto be = rt::createCpuBackend();
  struct Case {
    int64_t V, d, N;
  };
  const Case cases[] = {
      {8000, 64, 320},       {8000, 64, 2000},    {8000, 64, 8000},
      {8000, 64, 32000},     {100000, 512, 8192}, {100000, 512, 25000},
      {100000, 512, 100000},
  };
  std::printf("| date | device | V | d | N | dense ms | sparse ms | "
              "dense/sparse |\n|---|---|---|---|---|---|---|---|\n");
  for (const Case &c : cases) {
    std::vector<float> param(c.V * c.d, 0.5f), m(c.V * c.d, 0.0f),
        v(c.V * c.d, 0.0f), grad(c.V * c.d);
    std::vector<int32_t> ids(c.N), rows(c.N);
    std::vector<float> dOut(c.N * c.d, 0.01f), values(c.N * c.d);
    // Zipf-like ids, as words are: a few frequent, a long tail.
    std::mt19937 gen(1);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    for (int32_t &id : ids)
      id = static_cast<int32_t>(std::min<double>(
          c.V - 1, std::exp(u(gen) * std::log(c.V + 1.0)) - 1));
    float lr = 1e-3f;
    int64_t step = 1;
    double dense = bestMs(reps, [&] {
      be->fill(grad.data(), 0.0f, c.V * c.d);
      be->embeddingBackward(c.N, c.d, ids.data(), dOut.data(), grad.data());
      be->adamUpdate(c.V * c.d, param.data(), grad.data(), m.data(), v.data(),
                     &lr, &step, 0.9f, 0.999f, 1e-8f, 0.0f);
    });
    double sparse = bestMs(reps, [&] {
      be->rowGradient(c.N, c.d, c.V, ids.data(), dOut.data(), rows.data(),
                      values.data());
      be->adamUpdateRows(c.N, c.d, param.data(), rows.data(), values.data(),
                         m.data(), v.data(), &lr, &step, 0.9f, 0.999f, 1e-8f,
                         0.0f);
    });
    std::printf("| %s | %s, %d threads | %lld | %lld | %lld | %.2f | %.2f | "
                "%.1f |\n",
                bench::today().c_str(), bench::cpuModel().c_str(),
                omp_get_max_threads(), static_cast<long long>(c.V),
                static_cast<long long>(c.d), static_cast<long long>(c.N), dense,
                sparse, dense / sparse);
    std::fflush(stdout);
  }
  return 0;
}
