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

void CpuBackend::scale(const float *x, float factor, float *y, int64_t count) {
  cpu::scale(x, factor, y, count);
}

void CpuBackend::biasAdd(int64_t rows, int64_t d, const float *x,
                         const float *bias, float *y) {
  cpu::biasAdd(rows, d, x, bias, y);
}

void CpuBackend::sumRows(int64_t rows, int64_t d, const float *x, float *y) {
  cpu::sumRows(rows, d, x, y);
}

void CpuBackend::sigmoidForward(const float *x, float *y, int64_t count) {
  cpu::sigmoidForward(x, y, count);
}

void CpuBackend::sigmoidBackward(const float *y, const float *dy, float *dx,
                                 int64_t count) {
  cpu::sigmoidBackward(y, dy, dx, count);
}

void CpuBackend::tanhForward(const float *x, float *y, int64_t count) {
  cpu::tanhForward(x, y, count);
}

void CpuBackend::tanhBackward(const float *y, const float *dy, float *dx,
                              int64_t count) {
  cpu::tanhBackward(y, dy, dx, count);
}

void CpuBackend::dropoutForward(const float *x, float *y, int64_t count,
                                float rate, uint64_t seed, uint64_t counter,
                                uint64_t elementOffset) {
  cpu::dropoutForward(x, y, count, rate, seed, counter, elementOffset);
}

void CpuBackend::dropoutBackward(const float *dy, float *dx, int64_t count,
                                 float rate, uint64_t seed, uint64_t counter,
                                 uint64_t elementOffset) {
  cpu::dropoutBackward(dy, dx, count, rate, seed, counter, elementOffset);
}

void CpuBackend::reluForward(const float *x, float *y, int64_t count) {
  cpu::reluForward(x, y, count);
}

void CpuBackend::reluBackward(const float *y, const float *dy, float *dx,
                              int64_t count) {
  cpu::reluBackward(y, dy, dx, count);
}

} // namespace moe::rt
