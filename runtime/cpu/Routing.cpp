//===- Routing.cpp - PENDING: replaced by the kernel implementation ---------===//

#include "runtime/cpu/CpuBackend.h"

#include <stdexcept>

namespace moe::rt {

void CpuBackend::noisyTopKForward(int64_t, int64_t, int64_t, const float *, const float *, float, bool, uint64_t, uint64_t, float *, float *, float *, int32_t *, float *) {
  throw std::logic_error("cpu kernel noisyTopKForward is not implemented yet");
}
void CpuBackend::noisyTopKBackward(int64_t, int64_t, int64_t, const float *, const float *, const float *, const float *, const int32_t *, const float *, const float *, float *, float *) {
  throw std::logic_error("cpu kernel noisyTopKBackward is not implemented yet");
}
void CpuBackend::loadEstimateForward(int64_t, int64_t, int64_t, const float *, const float *, const float *, const float *, float *) {
  throw std::logic_error("cpu kernel loadEstimateForward is not implemented yet");
}
void CpuBackend::loadEstimateBackward(int64_t, int64_t, int64_t, const float *, const float *, const float *, const float *, const float *, const float *, float *, float *) {
  throw std::logic_error("cpu kernel loadEstimateBackward is not implemented yet");
}
void CpuBackend::softmaxForward(int64_t, int64_t, const float *, float *) {
  throw std::logic_error("cpu kernel softmaxForward is not implemented yet");
}
void CpuBackend::softmaxBackward(int64_t, int64_t, const float *, const float *, float *) {
  throw std::logic_error("cpu kernel softmaxBackward is not implemented yet");
}
void CpuBackend::batchwiseMaskForward(int64_t, int64_t, int64_t, const float *, float *, int32_t *, int32_t *, float *) {
  throw std::logic_error("cpu kernel batchwiseMaskForward is not implemented yet");
}
void CpuBackend::thresholdMaskForward(int64_t, int64_t, const float *, const float *, float *, int32_t *, int32_t *, float *, int64_t *) {
  throw std::logic_error("cpu kernel thresholdMaskForward is not implemented yet");
}
void CpuBackend::maskedGateBackward(int64_t, int64_t, const int32_t *, const int32_t *, const float *, const float *, float *) {
  throw std::logic_error("cpu kernel maskedGateBackward is not implemented yet");
}
void CpuBackend::batchwiseThresholdLossForward(int64_t, int64_t, const float *, const float *, const float *, float *) {
  throw std::logic_error("cpu kernel batchwiseThresholdLossForward is not implemented yet");
}
void CpuBackend::batchwiseThresholdLossBackward(int64_t, int64_t, const float *, const float *, const float *, float, float *) {
  throw std::logic_error("cpu kernel batchwiseThresholdLossBackward is not implemented yet");
}
void CpuBackend::importanceForward(int64_t, int64_t, const int32_t *, const int32_t *, const float *, float *) {
  throw std::logic_error("cpu kernel importanceForward is not implemented yet");
}
void CpuBackend::importanceBackward(int64_t, int64_t, const int32_t *, const int32_t *, const float *, float *) {
  throw std::logic_error("cpu kernel importanceBackward is not implemented yet");
}
void CpuBackend::cvSquaredForward(int64_t, const float *, float, float *) {
  throw std::logic_error("cpu kernel cvSquaredForward is not implemented yet");
}
void CpuBackend::cvSquaredBackward(int64_t, const float *, float, float, float *) {
  throw std::logic_error("cpu kernel cvSquaredBackward is not implemented yet");
}
void CpuBackend::l2BalanceForward(int64_t, int64_t, const float *, float, float *) {
  throw std::logic_error("cpu kernel l2BalanceForward is not implemented yet");
}
void CpuBackend::l2BalanceBackward(int64_t, int64_t, const float *, float, float, float *) {
  throw std::logic_error("cpu kernel l2BalanceBackward is not implemented yet");
}

} // namespace moe::rt
