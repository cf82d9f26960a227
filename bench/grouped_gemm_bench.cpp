//===- grouped_gemm_bench.cpp - Expert GEMM schedules on the CPU ----------===//
//
// Measures the two schedules of the CPU grouped GEMM, one single-threaded
// GEMM per expert across OpenMP threads against one OpenBLAS-threaded GEMM
// after another, for equal segments of 16 to 4096 rows at d = 512 (forward +
// backward, 32768 rows in all). The crossover sets kMinBlasThreadedRows and
// the Auto schedule in runtime/cpu/kernels/DispatchKernels.h.
//
// Usage: grouped-gemm-bench [reps]
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/kernels/DispatchKernels.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

using namespace moe::rt;

namespace {

/// Seconds for one forward + backward grouped GEMM under `schedule`.
double timeStep(int64_t rows, int64_t n, const int32_t *expertOffset, int64_t d,
                const float *in, const float *weights, float *out, float *dIn,
                float *dW, cpu::GroupedSchedule schedule) {
  auto start = std::chrono::steady_clock::now();
  cpu::groupedMatmulForward(rows, n, d, d, expertOffset, in, weights, out,
                            schedule);
  cpu::groupedMatmulBackward(rows, n, d, d, expertOffset, in, weights, out, dIn,
                             dW, schedule);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

} // namespace

int main(int argc, char **argv) {
  int reps = argc > 1 ? std::max(1, std::atoi(argv[1])) : 3;
  const int64_t d = 512, rows = 32768;
  std::printf("rows/expert  experts  expert-parallel GFLOP/s  "
              "OpenBLAS-threaded GFLOP/s\n");
  for (int64_t segment = 16; segment <= 4096; segment *= 2) {
    int64_t n = rows / segment;
    // Token t goes to expert t mod n (one each: no row pointers): equal
    // segments.
    std::vector<int32_t> expert(rows), offset(n + 1), positionOf(rows),
        tokenOfPosition(rows);
    for (int64_t t = 0; t < rows; ++t)
      expert[t] = static_cast<int32_t>(t % n);
    cpu::buildDispatchPlan(rows, n, rows, /*rowPtr=*/nullptr, expert.data(),
                           offset.data(), positionOf.data(),
                           tokenOfPosition.data());
    std::vector<float> in(rows * d, 0.5f), out(rows * d), dIn(rows * d),
        weights(n * d * d, 0.01f), dW(n * d * d);
    double best[2] = {INFINITY, INFINITY};
    const cpu::GroupedSchedule schedules[2] = {
        cpu::GroupedSchedule::ExpertParallel,
        cpu::GroupedSchedule::BlasThreads};
    // One warm-up each, then alternate the schedules.
    for (int rep = -1; rep < reps; ++rep)
      for (int s = 0; s < 2; ++s) {
        double t =
            timeStep(rows, n, offset.data(), d, in.data(), weights.data(),
                     out.data(), dIn.data(), dW.data(), schedules[s]);
        if (rep >= 0)
          best[s] = std::min(best[s], t);
      }
    double flops = 6.0 * rows * d * d;
    std::printf("%11lld  %7lld  %23.1f  %25.1f\n", (long long)segment,
                (long long)n, flops / best[0] / 1e9, flops / best[1] / 1e9);
  }
  return 0;
}
