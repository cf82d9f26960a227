//===- HostDevice.h - Functions for both the host and the GPU ---*- C++ -*-===//
//
// MOE_HOST_DEVICE marks small inline functions (Philox, the learning-rate
// schedule) that the CPU kernels and the CUDA kernels share, so both
// backends compute the same bits from one definition.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_HOSTDEVICE_H
#define MOE_RUNTIME_HOSTDEVICE_H

#if defined(__CUDACC__)
#define MOE_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define MOE_HOST_DEVICE inline
#endif

#endif // MOE_RUNTIME_HOSTDEVICE_H
