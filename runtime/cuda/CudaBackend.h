//===- CudaBackend.h - The CUDA implementation of Backend ------*- C++ -*-===//
//
// Every override of moe::rt::Backend for the cuda backend, from the kernel
// list (runtime/Kernels.def). The definitions are split by kernel family
// across the .cu files of this folder (one family per file).
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_CUDA_CUDABACKEND_H
#define MOE_RUNTIME_CUDA_CUDABACKEND_H

#include "runtime/Backend.h"

namespace moe::rt {

namespace gpu {
struct Context;
} // namespace gpu

class CudaBackend final : public Backend {
public:
  /// Binds the backend to `device`: creates its stream (all work of the
  /// backend is ordered on it) and its cuBLAS handle.
  explicit CudaBackend(int device);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend &) = delete;
  CudaBackend &operator=(const CudaBackend &) = delete;

#define MOE_KERNEL(Ret, Name, Params, Args) Ret Name Params override;
#include "runtime/Kernels.def"

private:
  /// Device, stream and cuBLAS handle (runtime/cuda/Common.cuh).
  std::unique_ptr<gpu::Context> ctx_;
};

} // namespace moe::rt

#endif // MOE_RUNTIME_CUDA_CUDABACKEND_H
