//===- Optimizer.cu - CUDA Adam update ------------------------------------===//
//
// One fused pass per parameter tensor: moments, bias correction and the
// (decoupled) weight decay in a single read and write of param, m and v.
// The step counter and the learning rate stay in device memory: each block
// turns them into the pass's three scalars once.
//
//===----------------------------------------------------------------------===//

#include "runtime/Checks.h"
#include "runtime/Optimizer.h"
#include "runtime/cuda/Common.cuh"
#include "runtime/cuda/CudaBackend.h"

#include <cmath>
#include <stdexcept>

namespace moe::rt {
namespace {

/// The inverse bias corrections 1 / (1 - beta^step) are computed in double
/// (beta2^step loses float precision long before training ends), once per
/// block. A step below 1 counts as 1: the device cannot throw, and the CPU
/// backend, which does, is where tests catch it.
__global__ void adamKernel(int64_t count, float *param, const float *grad,
                           float *m, float *v, const float *lrPtr,
                           const int64_t *step, float beta1, float beta2,
                           float eps, float weightDecay) {
  __shared__ float scalars[3];
  if (threadIdx.x == 0) {
    double s = static_cast<double>(step[0] < 1 ? 1 : step[0]);
    scalars[0] = lrPtr[0];
    scalars[1] =
        static_cast<float>(1.0 / (1.0 - pow(static_cast<double>(beta1), s)));
    scalars[2] =
        static_cast<float>(1.0 / (1.0 - pow(static_cast<double>(beta2), s)));
  }
  __syncthreads();
  float lr = scalars[0], invCorrection1 = scalars[1],
        invCorrection2 = scalars[2];
  MOE_GRID_STRIDE(i, count) {
    float g = grad[i];
    float mi = beta1 * m[i] + (1.0f - beta1) * g;
    float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    float update = (mi * invCorrection1) / (sqrtf(vi * invCorrection2) + eps);
    float p = param[i];
    param[i] = p - lr * (update + weightDecay * p);
  }
}

__global__ void lrScheduleKernel(const int64_t *step, float *lr,
                                 LrSchedule schedule) {
  lr[0] = schedule.at(step[0]);
}

} // namespace

void CudaBackend::lrSchedule(const int64_t *step, float *lr, float baseLr,
                             int64_t warmupSteps, int64_t constantSteps) {
  MOE_LAUNCH(lrScheduleKernel, dim3(1), dim3(1), 0, ctx_->stream, step, lr,
             LrSchedule{baseLr, warmupSteps, constantSteps});
}

void CudaBackend::adamUpdate(int64_t count, float *param, const float *grad,
                             float *m, float *v, const float *lr,
                             const int64_t *step, float beta1, float beta2,
                             float eps, float weightDecay) {
  checkAdam(count, AdamConfig{beta1, beta2, eps, weightDecay});
  if (count == 0)
    return;
  MOE_LAUNCH(adamKernel, dim3(gpu::gridFor(count)),
             dim3(gpu::kElementwiseThreads), 0, ctx_->stream, count, param,
             grad, m, v, lr, step, beta1, beta2, eps, weightDecay);
}

} // namespace moe::rt
