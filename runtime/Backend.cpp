//===- Backend.cpp - Backend-independent parts of the runtime -------------===//
//
// The LR schedule and the CUDA entry points for builds without CUDA.
//
//===----------------------------------------------------------------------===//

#include "runtime/Backend.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace moe::rt {

Backend::~Backend() = default;

float LrSchedule::at(int64_t step) const {
  step = std::max<int64_t>(step, 1);
  if (warmupSteps > 0 && step <= warmupSteps)
    return baseLr * static_cast<float>(step) / static_cast<float>(warmupSteps);
  int64_t plateauEnd = warmupSteps + constantSteps;
  if (step <= plateauEnd)
    return baseLr;
  // Continuous at the end of the plateau, then proportional to 1/sqrt(step).
  return baseLr * std::sqrt(static_cast<float>(std::max<int64_t>(plateauEnd, 1)) /
                            static_cast<float>(step));
}

#ifndef MOE_RUNTIME_HAS_CUDA
bool cudaBackendCompiled() { return false; }
int cudaDeviceCount() { return 0; }
std::unique_ptr<Backend> createCudaBackend(int) {
  throw std::runtime_error(
      "this runtime was built without CUDA (configure with MOE_ENABLE_CUDA=ON)");
}
#endif

} // namespace moe::rt
