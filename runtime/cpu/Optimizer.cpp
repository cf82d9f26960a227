//===- Optimizer.cpp - PENDING: replaced by the kernel implementation ---------===//

#include "runtime/cpu/CpuBackend.h"

#include <stdexcept>

namespace moe::rt {

void CpuBackend::adamUpdate(int64_t, float *, const float *, float *, float *, float, int64_t, const AdamConfig &) {
  throw std::logic_error("cpu kernel adamUpdate is not implemented yet");
}

} // namespace moe::rt
