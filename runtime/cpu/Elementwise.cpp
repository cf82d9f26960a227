//===- Elementwise.cpp - Pointwise kernels of the CPU backend -------------===//
//
// Thin f32 entry points over the templates in kernels/ElementwiseKernels.h.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/CpuBackend.h"

#include "runtime/cpu/kernels/ElementwiseKernels.h"

namespace moe::rt {

void CpuBackend::add(const float *a, const float *b, float *y, int64_t count) {
  cpu::add(a, b, y, count);
}

void CpuBackend::accumulate(const float *x, float *y, int64_t count) {
  cpu::accumulate(x, y, count);
}

void CpuBackend::sigmoidForward(const float *x, float *y, int64_t count) {
  cpu::sigmoidForward(x, y, count);
}

void CpuBackend::sigmoidBackward(const float *y, const float *dy, float *dx,
                                 int64_t count) {
  cpu::sigmoidBackward(y, dy, dx, count);
}

void CpuBackend::dropoutForward(const float *x, float *y, int64_t count,
                                float rate, uint64_t seed, uint64_t counter) {
  cpu::dropoutForward(x, y, count, rate, seed, counter);
}

void CpuBackend::dropoutBackward(const float *dy, float *dx, int64_t count,
                                 float rate, uint64_t seed, uint64_t counter) {
  cpu::dropoutBackward(dy, dx, count, rate, seed, counter);
}

void CpuBackend::reluForward(const float *x, float *y, int64_t count) {
  cpu::reluForward(x, y, count);
}

void CpuBackend::reluBackward(const float *y, const float *dy, float *dx,
                              int64_t count) {
  cpu::reluBackward(y, dy, dx, count);
}

} // namespace moe::rt
