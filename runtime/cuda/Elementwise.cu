//===- Elementwise.cu - CUDA elementwise kernels --------------------------===//
//
// Residual add, accumulate, scale, bias add, column sums, sigmoid, tanh, ReLU
// and inverted dropout. Dropout masks come from Philox keyed by (seed,
// counter) with element i reading uniform i of the stream, so they equal the
// CPU backend's masks bit for bit; each thread draws one Philox block for
// four consecutive elements. sumRows gives each column one thread that adds
// the rows in order, the CPU's summation order, so the sums match it exactly.
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

__global__ void scaleKernel(const float *x, float factor, float *y,
                            int64_t count) {
  MOE_GRID_STRIDE(i, count) { y[i] = factor * x[i]; }
}

/// y = (factor[0] * multiplier) * x; factor null counts as 1.
__global__ void scaleByKernel(const float *x, const float *factor,
                              float multiplier, float *y, int64_t count) {
  float scale = factor ? factor[0] * multiplier : multiplier;
  MOE_GRID_STRIDE(i, count) { y[i] = scale * x[i]; }
}

__global__ void biasAddKernel(int64_t d, const float *x, const float *bias,
                              float *y, int64_t count) {
  MOE_GRID_STRIDE(i, count) { y[i] = x[i] + bias[i % d]; }
}

/// y[c] = sum of x[r, c] over r = 0, 1, ..., rows - 1 in that order.
/// Neighbouring threads read neighbouring columns, so each row's loads
/// coalesce.
__global__ void sumRowsKernel(int64_t rows, int64_t d, const float *x,
                              float *y) {
  MOE_GRID_STRIDE(c, d) {
    float acc = 0.0f;
    for (int64_t r = 0; r < rows; ++r)
      acc += x[r * d + c];
    y[c] = acc;
  }
}

__global__ void tanhForwardKernel(const float *x, float *y, int64_t count) {
  MOE_GRID_STRIDE(i, count) { y[i] = tanhf(x[i]); }
}

__global__ void tanhBackwardKernel(const float *y, const float *dy, float *dx,
                                   int64_t count) {
  MOE_GRID_STRIDE(i, count) { dx[i] = dy[i] * (1.0f - y[i] * y[i]); }
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
                              uint64_t counter, uint64_t firstBlock) {
  int64_t groups = (count + 3) / 4;
  MOE_GRID_STRIDE(g, groups) {
    PhiloxBlock bits =
        philox4x32(seed, firstBlock + static_cast<uint64_t>(g), counter);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      int64_t i = 4 * g + j;
      if (i < count)
        y[i] = philoxUniform(bits.v[j]) >= rate ? x[i] * scale : 0.0f;
    }
  }
}

/// One thread per Philox block of the global tensor, as the CPU.
__global__ void initUniformKernel(float *x, int64_t count, double bound,
                                  uint64_t seed, uint64_t stream,
                                  uint64_t begin, uint64_t firstBlock,
                                  int64_t blocks) {
  MOE_GRID_STRIDE(b, blocks) {
    uint64_t block = firstBlock + static_cast<uint64_t>(b);
    PhiloxBlock bits = philox4x32(seed, block, stream);
#pragma unroll
    for (uint64_t j = 0; j < 4; ++j) {
      uint64_t index = 4 * block + j;
      if (index >= begin && index < begin + static_cast<uint64_t>(count))
        // __dmul_rn: no contraction, the CPU's two roundings exactly.
        x[index - begin] = static_cast<float>(__dmul_rn(
            bound, 2.0 * static_cast<double>(philoxUniform(bits.v[j])) - 1.0));
    }
  }
}

} // namespace

void CudaBackend::initUniform(float *x, int64_t count, double bound,
                              uint64_t seed, uint64_t stream, uint64_t begin) {
  checkCount("initUniform", count);
  if (count == 0)
    return;
  uint64_t first = begin >> 2, last = (begin + count - 1) >> 2;
  int64_t blocks = static_cast<int64_t>(last - first + 1);
  MOE_LAUNCH(initUniformKernel, dim3(gridFor(blocks)),
             dim3(kElementwiseThreads), 0, ctx_->stream, x, count, bound, seed,
             stream, begin, first, blocks);
}

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

void CudaBackend::scale(const float *x, float factor, float *y, int64_t count) {
  checkCount("scale", count);
  MOE_LAUNCH(scaleKernel, dim3(gridFor(count)), dim3(kElementwiseThreads), 0,
             ctx_->stream, x, factor, y, count);
}

void CudaBackend::scaleBy(const float *x, const float *factor, float multiplier,
                          float *y, int64_t count) {
  checkCount("scaleBy", count);
  MOE_LAUNCH(scaleByKernel, dim3(gridFor(count)), dim3(kElementwiseThreads), 0,
             ctx_->stream, x, factor, multiplier, y, count);
}

void CudaBackend::biasAdd(int64_t rows, int64_t d, const float *x,
                          const float *bias, float *y) {
  checkCount("biasAdd", rows);
  checkCount("biasAdd", d);
  int64_t count = rows * d;
  MOE_LAUNCH(biasAddKernel, dim3(gridFor(count)), dim3(kElementwiseThreads), 0,
             ctx_->stream, d, x, bias, y, count);
}

void CudaBackend::sumRows(int64_t rows, int64_t d, const float *x, float *y) {
  checkCount("sumRows", rows);
  checkCount("sumRows", d);
  MOE_LAUNCH(sumRowsKernel, dim3(gridFor(d)), dim3(kElementwiseThreads), 0,
             ctx_->stream, rows, d, x, y);
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

void CudaBackend::tanhForward(const float *x, float *y, int64_t count) {
  checkCount("tanhForward", count);
  MOE_LAUNCH(tanhForwardKernel, dim3(gridFor(count)), dim3(kElementwiseThreads),
             0, ctx_->stream, x, y, count);
}

void CudaBackend::tanhBackward(const float *y, const float *dy, float *dx,
                               int64_t count) {
  checkCount("tanhBackward", count);
  MOE_LAUNCH(tanhBackwardKernel, dim3(gridFor(count)),
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
                                 float rate, uint64_t seed, uint64_t counter,
                                 uint64_t elementOffset) {
  checkCount("dropoutForward", count);
  checkDropoutRate("dropoutForward", rate);
  checkElementOffset("dropoutForward", elementOffset);
  MOE_LAUNCH(dropoutKernel, dim3(gridFor((count + 3) / 4)),
             dim3(kElementwiseThreads), 0, ctx_->stream, x, y, count, rate,
             1.0f / (1.0f - rate), seed, counter, elementOffset / 4);
}

void CudaBackend::dropoutBackward(const float *dy, float *dx, int64_t count,
                                  float rate, uint64_t seed, uint64_t counter,
                                  uint64_t elementOffset) {
  checkCount("dropoutBackward", count);
  checkDropoutRate("dropoutBackward", rate);
  checkElementOffset("dropoutBackward", elementOffset);
  MOE_LAUNCH(dropoutKernel, dim3(gridFor((count + 3) / 4)),
             dim3(kElementwiseThreads), 0, ctx_->stream, dy, dx, count, rate,
             1.0f / (1.0f - rate), seed, counter, elementOffset / 4);
}

} // namespace moe::rt
