//===- Elementwise.cpp - PENDING: replaced by the kernel implementation ---------===//

#include "runtime/cpu/CpuBackend.h"

#include <stdexcept>

namespace moe::rt {

void CpuBackend::add(const float *, const float *, float *, int64_t) {
  throw std::logic_error("cpu kernel add is not implemented yet");
}
void CpuBackend::accumulate(const float *, float *, int64_t) {
  throw std::logic_error("cpu kernel accumulate is not implemented yet");
}
void CpuBackend::sigmoidForward(const float *, float *, int64_t) {
  throw std::logic_error("cpu kernel sigmoidForward is not implemented yet");
}
void CpuBackend::sigmoidBackward(const float *, const float *, float *, int64_t) {
  throw std::logic_error("cpu kernel sigmoidBackward is not implemented yet");
}
void CpuBackend::dropoutForward(const float *, float *, int64_t, float, uint64_t, uint64_t) {
  throw std::logic_error("cpu kernel dropoutForward is not implemented yet");
}
void CpuBackend::dropoutBackward(const float *, float *, int64_t, float, uint64_t, uint64_t) {
  throw std::logic_error("cpu kernel dropoutBackward is not implemented yet");
}
void CpuBackend::reluForward(const float *, float *, int64_t) {
  throw std::logic_error("cpu kernel reluForward is not implemented yet");
}
void CpuBackend::reluBackward(const float *, const float *, float *, int64_t) {
  throw std::logic_error("cpu kernel reluBackward is not implemented yet");
}

} // namespace moe::rt
