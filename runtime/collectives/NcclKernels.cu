//===- NcclKernels.cu - Device kernels of NcclCollectives -----------------===//

#include "runtime/collectives/NcclKernels.h"

#include <algorithm>

namespace moe::rt::detail {

namespace {

/// One thread per element, slices added in rank order. __fadd_rn keeps the
/// additions exactly the host's IEEE ones (nothing may be contracted), so
/// the sum matches MpiCollectives bit for bit.
__global__ void rankOrderSumKernel(const float *in, int ranks, int64_t count,
                                   float *out) {
  int64_t stride = int64_t(blockDim.x) * gridDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += stride) {
    float sum = in[i];
    for (int r = 1; r < ranks; ++r)
      sum = __fadd_rn(sum, in[int64_t(r) * count + i]);
    out[i] = sum;
  }
}

} // namespace

cudaError_t launchRankOrderSum(const float *in, int ranks, int64_t count,
                               float *out, cudaStream_t stream) {
  if (count == 0)
    return cudaSuccess;
  constexpr int kThreads = 256;
  int64_t blocks = std::min<int64_t>((count + kThreads - 1) / kThreads, 65535);
  rankOrderSumKernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      in, ranks, count, out);
  return cudaGetLastError();
}

} // namespace moe::rt::detail
