//===- CpuBackend.cpp - PENDING: replaced by the kernel implementation ---------===//

#include "runtime/cpu/CpuBackend.h"

#include <stdexcept>

namespace moe::rt {

std::string CpuBackend::name() const {
  throw std::logic_error("cpu kernel name is not implemented yet");
}
void *CpuBackend::alloc(size_t) {
  throw std::logic_error("cpu kernel alloc is not implemented yet");
}
void CpuBackend::release(void *) {
  throw std::logic_error("cpu kernel release is not implemented yet");
}
void CpuBackend::copyFromHost(void *, const void *, size_t) {
  throw std::logic_error("cpu kernel copyFromHost is not implemented yet");
}
void CpuBackend::copyToHost(void *, const void *, size_t) {
  throw std::logic_error("cpu kernel copyToHost is not implemented yet");
}
void CpuBackend::copyDevice(void *, const void *, size_t) {
  throw std::logic_error("cpu kernel copyDevice is not implemented yet");
}
void CpuBackend::fill(float *, float, int64_t) {
  throw std::logic_error("cpu kernel fill is not implemented yet");
}
void CpuBackend::synchronize() {
  throw std::logic_error("cpu kernel synchronize is not implemented yet");
}
void CpuBackend::gemm(bool, bool, int64_t, int64_t, int64_t, float, const float *, int64_t, const float *, int64_t, float, float *, int64_t, GemmPrecision) {
  throw std::logic_error("cpu kernel gemm is not implemented yet");
}
std::unique_ptr<Backend> createCpuBackend(int) { return std::make_unique<CpuBackend>(); }

} // namespace moe::rt
