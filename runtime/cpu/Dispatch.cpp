//===- Dispatch.cpp - Dispatch, combine and expert GEMMs on the CPU -------===//
//
// Thin f32 entry points over the templates in kernels/DispatchKernels.h. The
// GEMM precision only matters on CUDA: the CPU always computes in f32.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/CpuBackend.h"

#include "runtime/cpu/kernels/DispatchKernels.h"

namespace moe::rt {

void CpuBackend::buildDispatchPlan(DispatchPlan &plan) {
  cpu::buildDispatchPlan(plan);
}

void CpuBackend::dispatchForward(const DispatchPlan &plan, int64_t d,
                                 const float *x, float *buffer) {
  cpu::dispatchForward(plan, d, x, buffer);
}

void CpuBackend::dispatchBackward(const DispatchPlan &plan, int64_t d,
                                  const float *dBuffer, float *dx) {
  cpu::dispatchBackward(plan, d, dBuffer, dx);
}

void CpuBackend::combineForward(const DispatchPlan &plan, int64_t d,
                                const float *gate, const float *expertOut,
                                float *y) {
  cpu::combineForward(plan, d, gate, expertOut, y);
}

void CpuBackend::combineBackward(const DispatchPlan &plan, int64_t d,
                                 const float *gate, const float *expertOut,
                                 const float *dy, float *dExpertOut,
                                 float *dGate) {
  cpu::combineBackward(plan, d, gate, expertOut, dy, dExpertOut, dGate);
}

void CpuBackend::groupedMatmulForward(const DispatchPlan &plan, int64_t dIn,
                                      int64_t dOut, const float *in,
                                      const float *weights, float *out,
                                      GemmPrecision) {
  cpu::groupedMatmulForward(plan, dIn, dOut, in, weights, out);
}

void CpuBackend::groupedMatmulBackward(const DispatchPlan &plan, int64_t dIn,
                                       int64_t dOut, const float *in,
                                       const float *weights,
                                       const float *dOutput, float *dInput,
                                       float *dWeights, GemmPrecision) {
  cpu::groupedMatmulBackward(plan, dIn, dOut, in, weights, dOutput, dInput,
                             dWeights);
}

} // namespace moe::rt
