//===- Optimizer.cpp - Adam on the CPU backend ----------------------------===//
//
// Thin f32 entry point over the template in kernels/OptimizerKernels.h.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/CpuBackend.h"

#include "runtime/cpu/kernels/OptimizerKernels.h"

namespace moe::rt {

void CpuBackend::adamUpdate(int64_t count, float *param, const float *grad,
                            float *m, float *v, float lr, int64_t step,
                            const AdamConfig &config) {
  cpu::adamUpdate(count, param, grad, m, v, lr, step, config);
}

} // namespace moe::rt
