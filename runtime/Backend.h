//===- Backend.h - The kernel interface of every backend --------*- C++ -*-===//
//
// One interface for the CPU (OpenBLAS + threads) and CUDA (cuBLAS + kernels)
// backends. The generated training step and moe-run call only this interface,
// so the same package runs on either backend. The kernels and their
// conventions are listed once, in runtime/Kernels.def.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_BACKEND_H
#define MOE_RUNTIME_BACKEND_H

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace moe::rt {

/// Precision of the large GEMMs (experts, LSTM, output layer). The router
/// always runs in f32 whatever this says.
enum class GemmPrecision { F32, TF32, BF16 };

/// Expert network kinds (paper 5.1: linear 512x512; 5.2: FFN with ReLU).
enum class ExpertKind { Linear, FfnRelu };

/// The kernel interface: one virtual per entry of runtime/Kernels.def,
/// where each kernel's contract is documented.
class Backend {
public:
  virtual ~Backend();
#define MOE_KERNEL(Ret, Name, Params, Args) virtual Ret Name Params = 0;
#include "runtime/Kernels.def"
};

/// The CPU backend (OpenBLAS cblas + std::thread). numThreads = 0 picks the
/// hardware concurrency.
std::unique_ptr<Backend> createCpuBackend(int numThreads = 0);

/// True when this build of the runtime includes the CUDA backend.
bool cudaBackendCompiled();
/// The CUDA backend on `device`; throws std::runtime_error when CUDA is not
/// compiled in or no device is present.
std::unique_ptr<Backend> createCudaBackend(int device = 0);
/// Number of CUDA devices visible (0 when CUDA is not compiled in).
int cudaDeviceCount();

} // namespace moe::rt

#endif // MOE_RUNTIME_BACKEND_H
