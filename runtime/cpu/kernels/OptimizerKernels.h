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

/// One Adam step at 1-based `step`: m = b1 m + (1 - b1) g; v = b2 v +
/// (1 - b2) g^2; p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p) with
/// mhat = m / (1 - b1^step), vhat = v / (1 - b2^step). The decay term uses
/// the parameter before this step's update.
template <typename T>
void adamUpdate(int64_t count, T *param, const T *grad, T *m, T *v, T lr,
                int64_t step, const AdamConfig &config) {
  checkAdam(count, step, config);
  // Bias corrections in double: b2^step underflows float precision long
  // before training ends, and they are computed once per call.
  double s = static_cast<double>(step);
  T invCorr1 = static_cast<T>(1.0 / (1.0 - std::pow(double(config.beta1), s)));
  T invCorr2 = static_cast<T>(1.0 / (1.0 - std::pow(double(config.beta2), s)));
  T b1 = config.beta1, b2 = config.beta2, eps = config.eps;
  T wd = config.weightDecay;
#pragma omp parallel for if (count > kParallelGrain) schedule(static)
  for (int64_t i = 0; i < count; ++i) {
    T g = grad[i];
    T mi = b1 * m[i] + (T(1) - b1) * g;
    T vi = b2 * v[i] + (T(1) - b2) * g * g;
    m[i] = mi;
    v[i] = vi;
    T update = (mi * invCorr1) / (std::sqrt(vi * invCorr2) + eps);
    param[i] -= lr * (update + wd * param[i]);
  }
}

} // namespace moe::rt::cpu

#endif // MOE_RUNTIME_CPU_KERNELS_OPTIMIZERKERNELS_H
