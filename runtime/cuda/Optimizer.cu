//===- Optimizer.cu - CUDA Adam update ------------------------------------===//
//
// One fused pass per parameter tensor: moments, bias correction and the
// (decoupled) weight decay in a single read and write of param, m and v.
//
//===----------------------------------------------------------------------===//

#include "runtime/Checks.h"
#include "runtime/cuda/Common.cuh"
#include "runtime/cuda/CudaBackend.h"

#include <cmath>
#include <stdexcept>

namespace moe::rt {
namespace {

__global__ void adamKernel(int64_t count, float *param, const float *grad,
                           float *m, float *v, float lr, float beta1,
                           float beta2, float eps, float weightDecay,
                           float invCorrection1, float invCorrection2) {
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

} // namespace

void CudaBackend::adamUpdate(int64_t count, float *param, const float *grad,
                             float *m, float *v, float lr, int64_t step,
                             const AdamConfig &config) {
  checkAdam(count, step, config);
  // Inverse bias corrections 1 / (1 - beta^step), once per call in double
  // (beta2^step loses float precision long before training ends).
  double s = static_cast<double>(step);
  float invCorrection1 = static_cast<float>(
      1.0 / (1.0 - std::pow(static_cast<double>(config.beta1), s)));
  float invCorrection2 = static_cast<float>(
      1.0 / (1.0 - std::pow(static_cast<double>(config.beta2), s)));
  MOE_LAUNCH(adamKernel, dim3(gpu::gridFor(count)),
             dim3(gpu::kElementwiseThreads), 0, ctx_->stream, count, param,
             grad, m, v, lr, config.beta1, config.beta2, config.eps,
             config.weightDecay, invCorrection1, invCorrection2);
}

} // namespace moe::rt
