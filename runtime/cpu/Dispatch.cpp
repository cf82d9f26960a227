//===- Dispatch.cpp - PENDING: replaced by the kernel implementation ---------===//

#include "runtime/cpu/CpuBackend.h"

#include <stdexcept>

namespace moe::rt {

void CpuBackend::buildDispatchPlan(DispatchPlan &) {
  throw std::logic_error("cpu kernel buildDispatchPlan is not implemented yet");
}
void CpuBackend::dispatchForward(const DispatchPlan &, int64_t, const float *, float *) {
  throw std::logic_error("cpu kernel dispatchForward is not implemented yet");
}
void CpuBackend::dispatchBackward(const DispatchPlan &, int64_t, const float *, float *) {
  throw std::logic_error("cpu kernel dispatchBackward is not implemented yet");
}
void CpuBackend::combineForward(const DispatchPlan &, int64_t, const float *, const float *, float *) {
  throw std::logic_error("cpu kernel combineForward is not implemented yet");
}
void CpuBackend::combineBackward(const DispatchPlan &, int64_t, const float *, const float *, const float *, float *, float *) {
  throw std::logic_error("cpu kernel combineBackward is not implemented yet");
}
void CpuBackend::groupedMatmulForward(const DispatchPlan &, int64_t, int64_t, const float *, const float *, float *, GemmPrecision) {
  throw std::logic_error("cpu kernel groupedMatmulForward is not implemented yet");
}
void CpuBackend::groupedMatmulBackward(const DispatchPlan &, int64_t, int64_t, const float *, const float *, const float *, float *, float *, GemmPrecision) {
  throw std::logic_error("cpu kernel groupedMatmulBackward is not implemented yet");
}

} // namespace moe::rt
