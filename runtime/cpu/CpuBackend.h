//===- CpuBackend.h - The CPU implementation of Backend ------*- C++ -*-===//
//
// Every override of moe::rt::Backend for the cpu backend, from the kernel
// list (runtime/Kernels.def). The memory members are defined in
// CpuBackend.cpp; every kernel forwards to its cpu:: template
// (CpuKernels.cpp).
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_CPU_CPUBACKEND_H
#define MOE_RUNTIME_CPU_CPUBACKEND_H

#include "runtime/Backend.h"

namespace moe::rt {

class CpuBackend final : public Backend {
public:
#define MOE_KERNEL(Ret, Name, Params, Args) Ret Name Params override;
#include "runtime/Kernels.def"
};

} // namespace moe::rt

#endif // MOE_RUNTIME_CPU_CPUBACKEND_H
