//===- Sequence.cpp - PENDING: replaced by the kernel implementation ---------===//

#include "runtime/cpu/CpuBackend.h"

#include <stdexcept>

namespace moe::rt {

void CpuBackend::embeddingForward(int64_t, int64_t, const int32_t *, const float *, float *) {
  throw std::logic_error("cpu kernel embeddingForward is not implemented yet");
}
void CpuBackend::embeddingBackward(int64_t, int64_t, const int32_t *, const float *, float *) {
  throw std::logic_error("cpu kernel embeddingBackward is not implemented yet");
}
int64_t CpuBackend::lstmWorkspaceSize(int64_t, int64_t, int64_t, int64_t, int64_t) {
  throw std::logic_error("cpu kernel lstmWorkspaceSize is not implemented yet");
}
void CpuBackend::lstmForward(int64_t, int64_t, int64_t, int64_t, int64_t, const float *, const float *, const float *, const float *, const float *, float *, float *, GemmPrecision) {
  throw std::logic_error("cpu kernel lstmForward is not implemented yet");
}
void CpuBackend::lstmBackward(int64_t, int64_t, int64_t, int64_t, int64_t, const float *, const float *, const float *, const float *, const float *, const float *, const float *, float *, float *, float *, float *, float *, GemmPrecision) {
  throw std::logic_error("cpu kernel lstmBackward is not implemented yet");
}
int64_t CpuBackend::attentionWorkspaceSize(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t) {
  throw std::logic_error("cpu kernel attentionWorkspaceSize is not implemented yet");
}
void CpuBackend::attentionForward(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, const float *, const float *, const float *, const float *, const float *, float *, float *) {
  throw std::logic_error("cpu kernel attentionForward is not implemented yet");
}
void CpuBackend::attentionBackward(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, const float *, const float *, const float *, const float *, const float *, const float *, const float *, float *, float *, float *, float *, float *) {
  throw std::logic_error("cpu kernel attentionBackward is not implemented yet");
}

} // namespace moe::rt
