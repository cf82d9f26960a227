//===- Loss.cpp - PENDING: replaced by the kernel implementation ---------===//

#include "runtime/cpu/CpuBackend.h"

#include <stdexcept>

namespace moe::rt {

void CpuBackend::softmaxCrossEntropy(int64_t, int64_t, const float *, const int32_t *, float, float *, float *, int64_t *) {
  throw std::logic_error("cpu kernel softmaxCrossEntropy is not implemented yet");
}
void CpuBackend::sampledSoftmaxCrossEntropy(int64_t, int64_t, int64_t, int64_t, const float *, const float *, const float *, const int32_t *, uint64_t, uint64_t, float, float *, float *, float *, float *) {
  throw std::logic_error("cpu kernel sampledSoftmaxCrossEntropy is not implemented yet");
}

} // namespace moe::rt
