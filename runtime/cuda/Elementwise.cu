//===- Elementwise.cu - CUDA elementwise kernels --------------------------===//
//
// Residual add, accumulate, sigmoid, ReLU and inverted dropout. Dropout masks
// come from Philox keyed by (seed, counter) with element i reading uniform i
// of the stream, so they equal the CPU backend's masks bit for bit; each
// thread draws one Philox block for four consecutive elements.
//
//===----------------------------------------------------------------------===//

#include "runtime/Checks.h"
#include "runtime/Philox.h"
#include "runtime/cuda/Common.cuh"
#include "runtime/cuda/CudaBackend.h"

#include <stdexcept>
#include <string>

namespace moe::rt {
namespace {

using gpu::gridFor;
using gpu::kElementwiseThreads;

__global__ void addKernel(const float *a, const float *b, float *y,
                          int64_t count) {
  MOE_GRID_STRIDE(i, count) { y[i] = a[i] + b[i]; }
}

__global__ void accumulateKernel(const float *x, float *y, int64_t count) {
  MOE_GRID_STRIDE(i, count) { y[i] += x[i]; }
}

__global__ void sigmoidForwardKernel(const float *x, float *y, int64_t count) {
  MOE_GRID_STRIDE(i, count) { y[i] = 1.0f / (1.0f + expf(-x[i])); }
}

__global__ void sigmoidBackwardKernel(const float *y, const float *dy,
                                      float *dx, int64_t count) {
  MOE_GRID_STRIDE(i, count) { dx[i] = dy[i] * y[i] * (1.0f - y[i]); }
}

__global__ void reluForwardKernel(const float *x, float *y, int64_t count) {
  MOE_GRID_STRIDE(i, count) { y[i] = fmaxf(x[i], 0.0f); }
}

__global__ void reluBackwardKernel(const float *y, const float *dy, float *dx,
                                   int64_t count) {
  MOE_GRID_STRIDE(i, count) { dx[i] = y[i] > 0.0f ? dy[i] : 0.0f; }
}

/// y = x * keep / (1 - rate) with keep = (uniform_i >= rate); forward and
/// backward are the same map (dx = dy * keep / (1 - rate)). Thread g covers
/// elements [4g, 4g + 4), the four uniforms of Philox block g.
__global__ void dropoutKernel(const float *x, float *y, int64_t count,
                              float rate, float scale, uint64_t seed,
                              uint64_t counter) {
  int64_t groups = (count + 3) / 4;
  MOE_GRID_STRIDE(g, groups) {
    PhiloxBlock bits = philox4x32(seed, static_cast<uint64_t>(g), counter);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      int64_t i = 4 * g + j;
      if (i < count)
        y[i] = philoxUniform(bits.v[j]) >= rate ? x[i] * scale : 0.0f;
    }
  }
}

} // namespace

void CudaBackend::add(const float *a, const float *b, float *y, int64_t count) {
  checkCount("add", count);
  MOE_LAUNCH(addKernel, dim3(gridFor(count)), dim3(kElementwiseThreads), 0,
             ctx_->stream, a, b, y, count);
}

void CudaBackend::accumulate(const float *x, float *y, int64_t count) {
  checkCount("accumulate", count);
  MOE_LAUNCH(accumulateKernel, dim3(gridFor(count)), dim3(kElementwiseThreads),
             0, ctx_->stream, x, y, count);
}

void CudaBackend::sigmoidForward(const float *x, float *y, int64_t count) {
  checkCount("sigmoidForward", count);
  MOE_LAUNCH(sigmoidForwardKernel, dim3(gridFor(count)),
             dim3(kElementwiseThreads), 0, ctx_->stream, x, y, count);
}

void CudaBackend::sigmoidBackward(const float *y, const float *dy, float *dx,
                                  int64_t count) {
  checkCount("sigmoidBackward", count);
  MOE_LAUNCH(sigmoidBackwardKernel, dim3(gridFor(count)),
             dim3(kElementwiseThreads), 0, ctx_->stream, y, dy, dx, count);
}

void CudaBackend::reluForward(const float *x, float *y, int64_t count) {
  checkCount("reluForward", count);
  MOE_LAUNCH(reluForwardKernel, dim3(gridFor(count)), dim3(kElementwiseThreads),
             0, ctx_->stream, x, y, count);
}

void CudaBackend::reluBackward(const float *y, const float *dy, float *dx,
                               int64_t count) {
  checkCount("reluBackward", count);
  MOE_LAUNCH(reluBackwardKernel, dim3(gridFor(count)),
             dim3(kElementwiseThreads), 0, ctx_->stream, y, dy, dx, count);
}

void CudaBackend::dropoutForward(const float *x, float *y, int64_t count,
                                 float rate, uint64_t seed, uint64_t counter) {
  checkCount("dropoutForward", count);
  checkDropoutRate("dropoutForward", rate);
  MOE_LAUNCH(dropoutKernel, dim3(gridFor((count + 3) / 4)),
             dim3(kElementwiseThreads), 0, ctx_->stream, x, y, count, rate,
             1.0f / (1.0f - rate), seed, counter);
}

void CudaBackend::dropoutBackward(const float *dy, float *dx, int64_t count,
                                  float rate, uint64_t seed, uint64_t counter) {
  checkCount("dropoutBackward", count);
  checkDropoutRate("dropoutBackward", rate);
  MOE_LAUNCH(dropoutKernel, dim3(gridFor((count + 3) / 4)),
             dim3(kElementwiseThreads), 0, ctx_->stream, dy, dx, count, rate,
             1.0f / (1.0f - rate), seed, counter);
}

} // namespace moe::rt
