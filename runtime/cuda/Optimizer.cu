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

/// One block's Adam scalars. The inverse bias corrections 1 / (1 -
/// beta^step) are computed in double (beta2^step loses float precision long
/// before training ends), once per block. A step below 1 counts as 1: the
/// device cannot throw, and the CPU backend, which does, is where tests
/// catch it.
struct AdamScalars {
  float lr, invCorrection1, invCorrection2;
};

__device__ AdamScalars adamScalars(const float *lrPtr, const int64_t *step,
                                   float beta1, float beta2) {
  __shared__ AdamScalars scalars;
  if (threadIdx.x == 0) {
    double s = static_cast<double>(step[0] < 1 ? 1 : step[0]);
    scalars.lr = lrPtr[0];
    scalars.invCorrection1 =
        static_cast<float>(1.0 / (1.0 - pow(static_cast<double>(beta1), s)));
    scalars.invCorrection2 =
        static_cast<float>(1.0 / (1.0 - pow(static_cast<double>(beta2), s)));
  }
  __syncthreads();
  return scalars;
}

__device__ void adamElement(const AdamScalars &a, float &param, float g,
                            float &m, float &v, float beta1, float beta2,
                            float eps, float weightDecay) {
  float mi = beta1 * m + (1.0f - beta1) * g;
  float vi = beta2 * v + (1.0f - beta2) * g * g;
  m = mi;
  v = vi;
  float update = (mi * a.invCorrection1) / (sqrtf(vi * a.invCorrection2) + eps);
  float p = param;
  param = p - a.lr * (update + weightDecay * p);
}

__global__ void adamKernel(int64_t count, float *param, const float *grad,
                           float *m, float *v, const float *lrPtr,
                           const int64_t *step, float beta1, float beta2,
                           float eps, float weightDecay) {
  AdamScalars a = adamScalars(lrPtr, step, beta1, beta2);
  MOE_GRID_STRIDE(i, count) {
    adamElement(a, param[i], grad[i], m[i], v[i], beta1, beta2, eps,
                weightDecay);
  }
}

/// Lazy Adam over the listed rows; rows are distinct, -1 rows skipped.
__global__ void adamRowsKernel(int64_t n, int64_t d, float *param,
                               const int32_t *rows, const float *values,
                               float *m, float *v, const float *lrPtr,
                               const int64_t *step, float beta1, float beta2,
                               float eps, float weightDecay) {
  AdamScalars a = adamScalars(lrPtr, step, beta1, beta2);
  MOE_GRID_STRIDE(q, n * d) {
    int32_t row = rows[q / d];
    if (row >= 0) {
      int64_t i = static_cast<int64_t>(row) * d + q % d;
      adamElement(a, param[i], values[q], m[i], v[i], beta1, beta2, eps,
                  weightDecay);
    }
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

void CudaBackend::adamUpdateRows(int64_t n, int64_t d, float *param,
                                 const int32_t *rows, const float *values,
                                 float *m, float *v, const float *lr,
                                 const int64_t *step, float beta1, float beta2,
                                 float eps, float weightDecay) {
  checkAdam(n * d, AdamConfig{beta1, beta2, eps, weightDecay});
  if (n * d == 0)
    return;
  MOE_LAUNCH(adamRowsKernel, dim3(gpu::gridFor(n * d)),
             dim3(gpu::kElementwiseThreads), 0, ctx_->stream, n, d, param, rows,
             values, m, v, lr, step, beta1, beta2, eps, weightDecay);
}

} // namespace moe::rt
