//===- OptimizerKernels.h - Adam update on the CPU --------------*- C++ -*-===//
//
// Adam (Kingma & Ba) with bias correction and decoupled weight decay
// (Loshchilov & Hutter), one fused pass over parameter, gradient and both
// moments. Elements are independent, so the loop is split across threads.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_CPU_KERNELS_OPTIMIZERKERNELS_H
#define MOE_RUNTIME_CPU_KERNELS_OPTIMIZERKERNELS_H

#include "runtime/Checks.h"
#include "runtime/Optimizer.h"
#include "runtime/cpu/kernels/ElementwiseKernels.h"

#include <cmath>
#include <cstdint>
#include <stdexcept>

namespace moe::rt::cpu {

/// The bias corrections 1 / (1 - beta^step), in double: b2^step underflows
/// float precision long before training ends, and they are computed once per
/// call.
template <typename T> struct AdamStep {
  AdamStep(T lr, int64_t step, const AdamConfig &config)
      : lr(lr), b1(config.beta1), b2(config.beta2), eps(config.eps),
        wd(config.weightDecay) {
    double s = static_cast<double>(step);
    invCorr1 = static_cast<T>(1.0 / (1.0 - std::pow(double(config.beta1), s)));
    invCorr2 = static_cast<T>(1.0 / (1.0 - std::pow(double(config.beta2), s)));
  }

  /// One element: moments, bias correction, decoupled decay.
  void operator()(T &param, T g, T &m, T &v) const {
    T mi = b1 * m + (T(1) - b1) * g;
    T vi = b2 * v + (T(1) - b2) * g * g;
    m = mi;
    v = vi;
    T update = (mi * invCorr1) / (std::sqrt(vi * invCorr2) + eps);
    param -= lr * (update + wd * param);
  }

  T lr, b1, b2, eps, wd, invCorr1, invCorr2;
};

/// One Adam step at 1-based `step`: m = b1 m + (1 - b1) g; v = b2 v +
/// (1 - b2) g^2; p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p) with
/// mhat = m / (1 - b1^step), vhat = v / (1 - b2^step). The decay term uses
/// the parameter before this step's update.
template <typename T>
void adamUpdate(int64_t count, T *param, const T *grad, T *m, T *v, T lr,
                int64_t step, const AdamConfig &config) {
  checkAdam(count, step, config);
  AdamStep<T> adam(lr, step, config);
#pragma omp parallel for if (count > kParallelGrain) schedule(static)
  for (int64_t i = 0; i < count; ++i)
    adam(param[i], grad[i], m[i], v[i]);
}

/// Lazy Adam (Kernels.def: adamUpdateRows): the step above on the rows
/// listed in `rows` only; -1 rows are skipped. Rows are distinct, so they
/// are split across threads.
template <typename T>
void adamUpdateRows(int64_t n, int64_t d, T *param, const int32_t *rows,
                    const T *values, T *m, T *v, T lr, int64_t step,
                    const AdamConfig &config) {
  checkAdam(n * d, step, config);
  AdamStep<T> adam(lr, step, config);
#pragma omp parallel for if (n * d > kParallelGrain) schedule(static)
  for (int64_t r = 0; r < n; ++r) {
    if (rows[r] < 0)
      continue;
    int64_t base = static_cast<int64_t>(rows[r]) * d;
    const T *g = values + r * d;
    for (int64_t c = 0; c < d; ++c)
      adam(param[base + c], g[c], m[base + c], v[base + c]);
  }
}

} // namespace moe::rt::cpu

#endif // MOE_RUNTIME_CPU_KERNELS_OPTIMIZERKERNELS_H
