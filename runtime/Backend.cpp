//===- Backend.cpp - Backend-independent parts of the runtime -------------===//
//
// The CUDA entry points for builds without CUDA.
//
//===----------------------------------------------------------------------===//

#include "runtime/Backend.h"

#include <stdexcept>

namespace moe::rt {

Backend::~Backend() = default;

#ifndef MOE_RUNTIME_HAS_CUDA
bool cudaBackendCompiled() { return false; }
int cudaDeviceCount() { return 0; }
std::unique_ptr<Backend> createCudaBackend(int) {
  throw std::runtime_error(
      "this runtime was built without CUDA (configure with MOE_ENABLE_CUDA=ON)");
}
#endif

} // namespace moe::rt
