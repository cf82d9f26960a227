//===- NcclKernels.h - Device kernels of NcclCollectives -------*- C++ -*-===//
//
// The one computation NCCL does not do for us: the rank-order sum of the
// reduce-scatter slices. Compiled by nvcc (NcclKernels.cu), called from the
// host code of NcclCollectives.cpp. Private to runtime/collectives.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_COLLECTIVES_NCCLKERNELS_H
#define MOE_RUNTIME_COLLECTIVES_NCCLKERNELS_H

#include <cuda_runtime.h>

#include <cstdint>

namespace moe::rt::detail {

/// out[i] = ((in[i] + in[count + i]) + in[2 * count + i]) + ... over `ranks`
/// slices of `count` floats, on `stream`. Returns the launch error.
cudaError_t launchRankOrderSum(const float *in, int ranks, int64_t count,
                               float *out, cudaStream_t stream);

} // namespace moe::rt::detail

#endif // MOE_RUNTIME_COLLECTIVES_NCCLKERNELS_H
