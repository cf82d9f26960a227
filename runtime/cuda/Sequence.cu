//===- Sequence.cu - CUDA embedding, LSTM and attention -------------------===//
//
// Embedding backward sorts the tokens by id (stable) and lets the first
// position of each id accumulate that id's rows in token order, so a row
// shared by many tokens is summed without atomics and in the CPU's order.
//
// The LSTM computes the input projection of all time steps as one GEMM,
// then per step one GEMM for the recurrent term (accumulated onto the
// pre-activations) and a fused pointwise cell kernel; with an output
// projection a second GEMM maps the cell output to h. Backward through time
// mirrors it and leaves the weight gradients to whole-sequence GEMMs.
//
// Workspace of the LSTM (floats), all batch-major [B, S, .]:
//   gates [B,S,4H] (activated i, f, g, o) | cells [B,S,H] (c_t)
//   | cellOut [B,S,H] (o * tanh(c_t)) | hidden [B,S,P] (h_t = y_t)
// Workspace of the attention: tanh(xU) [B,Sx,E] | tanh(yW) [B,Sy,E]
//   | weights [B,Sy,Sx].
//
//===----------------------------------------------------------------------===//

#include "runtime/Checks.h"
#include "runtime/cuda/Common.cuh"
#include "runtime/cuda/CudaBackend.h"
#include "runtime/cuda/Gemm.cuh"

#include <stdexcept>
#include <string>

namespace moe::rt {
namespace {

using namespace gpu;

//===----------------------------------------------------------------------===//
// LSTM
//===----------------------------------------------------------------------===//

__device__ __forceinline__ float sigmoidf(float x) {
  return 1.0f / (1.0f + expf(-x));
}

/// One step of the cell for all (b, j): pre-activations gates[b, t] (+bias)
/// become activations in place; c_t and o * tanh(c_t) are saved; without a
/// projection the latter is also y_t. c_{-1} is c0 [B,H], or zero when null.
__global__ void lstmCellForwardKernel(int64_t B, int64_t S, int64_t H,
                                      int64_t t, const float *bias,
                                      const float *c0, float *gates,
                                      float *cells, float *cellOut, float *y) {
  MOE_GRID_STRIDE(q, B * H) {
    int64_t b = q / H, j = q % H;
    int64_t row = b * S + t;
    float *gate = gates + row * 4 * H;
    float i = sigmoidf(gate[j] + bias[j]);
    float f = sigmoidf(gate[H + j] + bias[H + j]);
    float g = tanhf(gate[2 * H + j] + bias[2 * H + j]);
    float o = sigmoidf(gate[3 * H + j] + bias[3 * H + j]);
    gate[j] = i;
    gate[H + j] = f;
    gate[2 * H + j] = g;
    gate[3 * H + j] = o;
    float cPrev = t > 0 ? cells[(row - 1) * H + j] : c0 ? c0[q] : 0.0f;
    float c = f * cPrev + i * g;
    float m = o * tanhf(c);
    cells[row * H + j] = c;
    cellOut[row * H + j] = m;
    if (y)
      y[row * H + j] = m;
  }
}

/// Backward of one step: from dm (gradient of o * tanh(c_t), row stride
/// ldm) and the carried dc_{t+1} * f_{t+1}, writes the pre-activation
/// gradients dGates[b, t] and the new carry dc_t * f_t.
__global__ void lstmCellBackwardKernel(int64_t B, int64_t S, int64_t H,
                                       int64_t t, const float *gates,
                                       const float *cells, const float *dm,
                                       int64_t ldm, float *carry,
                                       float *dGates) {
  MOE_GRID_STRIDE(q, B * H) {
    int64_t b = q / H, j = q % H;
    int64_t row = b * S + t;
    const float *gate = gates + row * 4 * H;
    float i = gate[j], f = gate[H + j], g = gate[2 * H + j],
          o = gate[3 * H + j];
    float c = cells[row * H + j];
    float cPrev = t > 0 ? cells[(row - 1) * H + j] : 0.0f;
    float tc = tanhf(c);
    float dmv = dm[b * ldm + j];
    float dc = dmv * o * (1.0f - tc * tc) + carry[q];
    float *dGate = dGates + row * 4 * H;
    dGate[j] = dc * g * i * (1.0f - i);
    dGate[H + j] = dc * cPrev * f * (1.0f - f);
    dGate[2 * H + j] = dc * i * (1.0f - g * g);
    dGate[3 * H + j] = dmv * tc * o * (1.0f - o);
    carry[q] = dc * f;
  }
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

__global__ void tanhInPlaceKernel(float *x, int64_t count) {
  MOE_GRID_STRIDE(i, count) { x[i] = tanhf(x[i]); }
}

/// out[r, e] = in[r, e] * V[e].
__global__ void scaleColumnsKernel(int64_t rows, int64_t E, const float *in,
                                   const float *V, float *out) {
  MOE_GRID_STRIDE(q, rows * E) { out[q] = in[q] * V[q % E]; }
}

/// grad = grad * (V[e] when V is non-null) * (1 - act^2): through the tanh
/// (and the V scaling) back to the pre-activation.
__global__ void tanhBackwardKernel(int64_t rows, int64_t E, const float *act,
                                   const float *V, float *grad) {
  MOE_GRID_STRIDE(q, rows * E) {
    float a = act[q];
    float g = V ? grad[q] * V[q % E] : grad[q];
    grad[q] = g * (1.0f - a * a);
  }
}

/// scores[b, j, i] = -inf for the padded source positions i >= lengths[b]
/// (lengths clamped to [1, Sx]), so the softmax gives them weight 0.
__global__ void maskPaddedScoresKernel(int64_t B, int64_t Sy, int64_t Sx,
                                       const int32_t *lengths, float *scores) {
  MOE_GRID_STRIDE(q, B * Sy * Sx) {
    int64_t b = q / (Sy * Sx), i = q % Sx;
    if (i >= max(min(static_cast<int64_t>(lengths[b]), Sx), int64_t(1)))
      scores[q] = -INFINITY;
  }
}

/// a[r, c] * b[r, c]: the column sums give dV.
struct ProductElement {
  const float *a, *b;
  int64_t ld;
  __device__ float operator()(int64_t r, int64_t c) const {
    return a[r * ld + c] * b[r * ld + c];
  }
};

/// kept[i] = keys[i], or `skip` for a negative key.
__global__ void skipNegativeKernel(int64_t n, int32_t skip, const int32_t *keys,
                                   int32_t *kept) {
  MOE_GRID_STRIDE(i, n) { kept[i] = keys[i] < 0 ? skip : keys[i]; }
}

} // namespace

//===----------------------------------------------------------------------===//
// Backend methods
//===----------------------------------------------------------------------===//

void CudaBackend::embeddingForward(int64_t T, int64_t d, const int32_t *ids,
                                   const float *table, float *out) {
  if (T < 0 || d < 0)
    throw std::invalid_argument("embeddingForward: negative size");
  gatherRows(*ctx_, T, d, ids, table, out);
}

void CudaBackend::embeddingBackward(int64_t T, int64_t d, const int32_t *ids,
                                    const float *dOut, float *dTable) {
  if (T < 0 || d < 0)
    throw std::invalid_argument("embeddingBackward: negative size");
  // Ids are non-negative, so no key is skipped.
  accumulateRowsByKey(*ctx_, T, d, ids, int64_t(1) << 31, dOut, -1, dTable);
}

void CudaBackend::rowGradient(int64_t n, int64_t d, int64_t vocab,
                              const int32_t *keys, const float *contributions,
                              int32_t *rows, float *values) {
  if (n < 0 || d < 0 || vocab < 0 || vocab >= (int64_t(1) << 31) - 1)
    throw std::invalid_argument("rowGradient: bad shape");
  if (n == 0)
    return;
  // Negative keys become `vocab`, the largest key, which is skipped.
  DeviceBuffer<int32_t> kept(ctx_->stream, n);
  MOE_LAUNCH(skipNegativeKernel, dim3(gpu::gridFor(n)),
             dim3(gpu::kElementwiseThreads), 0, ctx_->stream, n,
             static_cast<int32_t>(vocab), keys, kept.get());
  gpu::compactRowsByKey(*ctx_, n, d, kept.get(), vocab + 1, contributions,
                        static_cast<int32_t>(vocab), rows, values);
}

int64_t CudaBackend::lstmWorkspaceSize(int64_t B, int64_t S, int64_t, int64_t H,
                                       int64_t P) {
  return B * S * (6 * H + P);
}

void CudaBackend::lstmForward(int64_t B, int64_t S, int64_t dIn, int64_t H,
                              int64_t P, const float *x, const float *Wx,
                              const float *Wh, const float *bias,
                              const float *proj, const float *h0,
                              const float *c0, float *y, float *hT, float *cT,
                              float *workspace, GemmPrecision precision) {
  checkLstmShape("lstmForward", B, S, dIn, H, P, proj != nullptr);
  checkLstmState("lstmForward", h0, c0, hT, cT);
  const Context &ctx = *ctx_;
  if (B == 0)
    return;
  if (S == 0) {
    // No step: the final state is the initial one.
    if (hT) {
      if (h0) {
        MOE_CUDA_CHECK(cudaMemcpyAsync(hT, h0, B * P * sizeof(float),
                                       cudaMemcpyDeviceToDevice, ctx.stream));
        MOE_CUDA_CHECK(cudaMemcpyAsync(cT, c0, B * H * sizeof(float),
                                       cudaMemcpyDeviceToDevice, ctx.stream));
      } else {
        MOE_CUDA_CHECK(
            cudaMemsetAsync(hT, 0, B * P * sizeof(float), ctx.stream));
        MOE_CUDA_CHECK(
            cudaMemsetAsync(cT, 0, B * H * sizeof(float), ctx.stream));
      }
    }
    return;
  }
  const int64_t rows = B * S, G4 = 4 * H;
  float *gates = workspace;
  float *cells = gates + rows * G4;
  float *cellOut = cells + rows * H;
  float *hidden = cellOut + rows * H;

  // Input projection of every step at once.
  gpu::gemm(ctx, false, false, rows, G4, dIn, 1.0f, x, dIn, Wx, G4, 0.0f, gates,
            G4, precision);
  GemmOperand recurrent(ctx, Wh, P, G4, G4, precision);
  GemmOperand projection(ctx, proj, proj ? H : 0, P, P, precision);
  for (int64_t t = 0; t < S; ++t) {
    if (t > 0 || h0) {
      // gates[:, t] += h_{t-1} Wh, reading h_{t-1} from y [B, S, P] (or
      // h0 [B, P]).
      GemmOperand hPrev(ctx, t > 0 ? y + (t - 1) * P : h0, B, P,
                        t > 0 ? S * P : P, precision);
      gpu::gemm(ctx, false, false, B, G4, P, 1.0f, hPrev, recurrent, 1.0f,
                gates + t * G4, S * G4, precision);
    }
    MOE_LAUNCH(lstmCellForwardKernel, dim3(gridFor(B * H)),
               dim3(kElementwiseThreads), 0, ctx.stream, B, S, H, t, bias, c0,
               gates, cells, cellOut, proj ? nullptr : y);
    if (proj) {
      GemmOperand m(ctx, cellOut + t * H, B, H, S * H, precision);
      gpu::gemm(ctx, false, false, B, P, H, 1.0f, m, projection, 0.0f,
                y + t * P, S * P, precision);
    }
  }
  // Backward needs h but does not receive y.
  MOE_CUDA_CHECK(cudaMemcpyAsync(hidden, y, rows * P * sizeof(float),
                                 cudaMemcpyDeviceToDevice, ctx.stream));
  if (hT) {
    // The last step of every sequence: rows b * S + S - 1.
    MOE_CUDA_CHECK(cudaMemcpy2DAsync(hT, P * sizeof(float), y + (S - 1) * P,
                                     S * P * sizeof(float), P * sizeof(float),
                                     B, cudaMemcpyDeviceToDevice, ctx.stream));
    MOE_CUDA_CHECK(cudaMemcpy2DAsync(cT, H * sizeof(float), cells + (S - 1) * H,
                                     S * H * sizeof(float), H * sizeof(float),
                                     B, cudaMemcpyDeviceToDevice, ctx.stream));
  }
}

void CudaBackend::lstmBackward(int64_t B, int64_t S, int64_t dIn, int64_t H,
                               int64_t P, const float *x, const float *Wx,
                               const float *Wh, const float *,
                               const float *proj, const float *workspace,
                               const float *dy, float *dx, float *dWx,
                               float *dWh, float *dBias, float *dProj,
                               GemmPrecision precision) {
  checkLstmShape("lstmBackward", B, S, dIn, H, P, proj != nullptr);
  const Context &ctx = *ctx_;
  const int64_t rows = B * S, G4 = 4 * H;
  if (rows == 0) {
    // No steps: every weight gradient is zero.
    fill(dWx, 0.0f, dIn * G4);
    fill(dWh, 0.0f, P * G4);
    fill(dBias, 0.0f, G4);
    if (proj)
      fill(dProj, 0.0f, H * P);
    return;
  }
  const float *gates = workspace;
  const float *cells = gates + rows * G4;
  const float *cellOut = cells + rows * H;
  const float *hidden = cellOut + rows * H;

  DeviceBuffer<float> dGates(ctx.stream, rows * G4);
  DeviceBuffer<float> dH(ctx.stream, rows * P); // dL/dh_t, all steps
  DeviceBuffer<float> dm(ctx.stream, proj ? B * H : 0);
  DeviceBuffer<float> carry(ctx.stream, B * H);
  MOE_CUDA_CHECK(cudaMemcpyAsync(dH.get(), dy, rows * P * sizeof(float),
                                 cudaMemcpyDeviceToDevice, ctx.stream));
  MOE_CUDA_CHECK(
      cudaMemsetAsync(carry.get(), 0, B * H * sizeof(float), ctx.stream));
  GemmOperand recurrent(ctx, Wh, P, G4, G4, precision);
  GemmOperand projection(ctx, proj, proj ? H : 0, P, P, precision);
  for (int64_t t = S - 1; t >= 0; --t) {
    float *dHt = dH.get() + t * P;
    if (t + 1 < S) {
      // dh_t += dGates_{t+1} Wh^T.
      GemmOperand dNext(ctx, dGates.get() + (t + 1) * G4, B, G4, S * G4,
                        precision);
      gpu::gemm(ctx, false, true, B, P, G4, 1.0f, dNext, recurrent, 1.0f, dHt,
                S * P, precision);
    }
    const float *dmt = dHt;
    int64_t ldm = S * P;
    if (proj) {
      GemmOperand dHOp(ctx, dHt, B, P, S * P, precision);
      gpu::gemm(ctx, false, true, B, H, P, 1.0f, dHOp, projection, 0.0f,
                dm.get(), H, precision);
      dmt = dm.get();
      ldm = H;
    }
    MOE_LAUNCH(lstmCellBackwardKernel, dim3(gridFor(B * H)),
               dim3(kElementwiseThreads), 0, ctx.stream, B, S, H, t, gates,
               cells, dmt, ldm, carry.get(), dGates.get());
  }

  // Whole-sequence GEMMs for the input and weight gradients.
  gpu::gemm(ctx, false, true, rows, dIn, G4, 1.0f, dGates.get(), G4, Wx, G4,
            0.0f, dx, dIn, precision);
  gpu::gemm(ctx, true, false, dIn, G4, rows, 1.0f, x, dIn, dGates.get(), G4,
            0.0f, dWx, G4, precision);
  // h_{t-1} for every step (zero at t = 0), so dWh is one GEMM.
  const float *h = proj ? hidden : cellOut;
  DeviceBuffer<float> hPrev(ctx.stream, rows * P);
  MOE_CUDA_CHECK(
      cudaMemsetAsync(hPrev.get(), 0, rows * P * sizeof(float), ctx.stream));
  if (S > 1)
    MOE_CUDA_CHECK(cudaMemcpy2DAsync(
        hPrev.get() + P, S * P * sizeof(float), h, S * P * sizeof(float),
        (S - 1) * P * sizeof(float), B, cudaMemcpyDeviceToDevice, ctx.stream));
  gpu::gemm(ctx, true, false, P, G4, rows, 1.0f, hPrev.get(), P, dGates.get(),
            G4, 0.0f, dWh, G4, precision);
  columnSum(ctx, rows, G4, MatrixElement{dGates.get(), G4}, 1.0f,
            /*accumulate=*/false, dBias);
  if (proj)
    gpu::gemm(ctx, true, false, H, P, rows, 1.0f, cellOut, H, dH.get(), P, 0.0f,
              dProj, P, precision);
}

int64_t CudaBackend::attentionWorkspaceSize(int64_t B, int64_t Sx, int64_t Sy,
                                            int64_t, int64_t, int64_t E) {
  return B * (Sx * E + Sy * E + Sy * Sx);
}

void CudaBackend::attentionForward(int64_t B, int64_t Sx, int64_t Sy,
                                   int64_t dX, int64_t dY, int64_t E,
                                   const float *x, const float *y,
                                   const float *U, const float *W,
                                   const float *V, const int32_t *lengths,
                                   float *context, float *workspace) {
  checkAttentionShape("attentionForward", B, Sx, Sy, dX, dY, E);
  const Context &ctx = *ctx_;
  constexpr GemmPrecision f32 = GemmPrecision::F32;
  float *xu = workspace;
  float *yw = xu + B * Sx * E;
  float *weights = yw + B * Sy * E;
  gpu::gemm(ctx, false, false, B * Sx, E, dX, 1.0f, x, dX, U, E, 0.0f, xu, E,
            f32);
  MOE_LAUNCH(tanhInPlaceKernel, dim3(gridFor(B * Sx * E)),
             dim3(kElementwiseThreads), 0, ctx.stream, xu, B * Sx * E);
  gpu::gemm(ctx, false, false, B * Sy, E, dY, 1.0f, y, dY, W, E, 0.0f, yw, E,
            f32);
  MOE_LAUNCH(tanhInPlaceKernel, dim3(gridFor(B * Sy * E)),
             dim3(kElementwiseThreads), 0, ctx.stream, yw, B * Sy * E);
  // scores[b] = (tanh(yW) * V) tanh(xU)^T, then softmax over source i.
  DeviceBuffer<float> ywv(ctx.stream, B * Sy * E);
  MOE_LAUNCH(scaleColumnsKernel, dim3(gridFor(B * Sy * E)),
             dim3(kElementwiseThreads), 0, ctx.stream, B * Sy, E, yw, V,
             ywv.get());
  gemmStridedBatched(ctx, false, true, Sy, Sx, E, 1.0f, ywv.get(), E, Sy * E,
                     xu, E, Sx * E, 0.0f, weights, Sx, Sy * Sx, B);
  if (lengths && B * Sy > 0)
    MOE_LAUNCH(maskPaddedScoresKernel, dim3(gridFor(B * Sy * Sx)),
               dim3(kElementwiseThreads), 0, ctx.stream, B, Sy, Sx, lengths,
               weights);
  softmaxForward(B * Sy, Sx, weights, weights);
  gemmStridedBatched(ctx, false, false, Sy, dX, Sx, 1.0f, weights, Sx, Sy * Sx,
                     x, dX, Sx * dX, 0.0f, context, dX, Sy * dX, B);
}

void CudaBackend::attentionBackward(int64_t B, int64_t Sx, int64_t Sy,
                                    int64_t dX, int64_t dY, int64_t E,
                                    const float *x, const float *y,
                                    const float *U, const float *W,
                                    const float *V, const float *workspace,
                                    const float *dContext, float *dx, float *dy,
                                    float *dU, float *dW, float *dV) {
  checkAttentionShape("attentionBackward", B, Sx, Sy, dX, dY, E);
  const Context &ctx = *ctx_;
  constexpr GemmPrecision f32 = GemmPrecision::F32;
  const float *xu = workspace;
  const float *yw = xu + B * Sx * E;
  const float *weights = yw + B * Sy * E;

  // Through context = weights x: dWeights and the direct part of dx.
  DeviceBuffer<float> dScores(ctx.stream, B * Sy * Sx);
  gemmStridedBatched(ctx, false, true, Sy, Sx, dX, 1.0f, dContext, dX, Sy * dX,
                     x, dX, Sx * dX, 0.0f, dScores.get(), Sx, Sy * Sx, B);
  gemmStridedBatched(ctx, true, false, Sx, dX, Sy, 1.0f, weights, Sx, Sy * Sx,
                     dContext, dX, Sy * dX, 0.0f, dx, dX, Sx * dX, B);
  softmaxBackward(B * Sy, Sx, weights, dScores.get(), dScores.get());

  // Through scores = (tanh(yW) * V) tanh(xU)^T.
  DeviceBuffer<float> ywv(ctx.stream, B * Sy * E);
  DeviceBuffer<float> dYwv(ctx.stream, B * Sy * E), dXu(ctx.stream, B * Sx * E);
  MOE_LAUNCH(scaleColumnsKernel, dim3(gridFor(B * Sy * E)),
             dim3(kElementwiseThreads), 0, ctx.stream, B * Sy, E, yw, V,
             ywv.get());
  gemmStridedBatched(ctx, false, false, Sy, E, Sx, 1.0f, dScores.get(), Sx,
                     Sy * Sx, xu, E, Sx * E, 0.0f, dYwv.get(), E, Sy * E, B);
  gemmStridedBatched(ctx, true, false, Sx, E, Sy, 1.0f, dScores.get(), Sx,
                     Sy * Sx, ywv.get(), E, Sy * E, 0.0f, dXu.get(), E, Sx * E,
                     B);
  columnSum(ctx, B * Sy, E, ProductElement{dYwv.get(), yw, E}, 1.0f,
            /*accumulate=*/false, dV);

  // Through the tanh layers to U, W, x and y.
  MOE_LAUNCH(tanhBackwardKernel, dim3(gridFor(B * Sy * E)),
             dim3(kElementwiseThreads), 0, ctx.stream, B * Sy, E, yw, V,
             dYwv.get());
  MOE_LAUNCH(tanhBackwardKernel, dim3(gridFor(B * Sx * E)),
             dim3(kElementwiseThreads), 0, ctx.stream, B * Sx, E, xu,
             static_cast<const float *>(nullptr), dXu.get());
  gpu::gemm(ctx, true, false, dY, E, B * Sy, 1.0f, y, dY, dYwv.get(), E, 0.0f,
            dW, E, f32);
  gpu::gemm(ctx, true, false, dX, E, B * Sx, 1.0f, x, dX, dXu.get(), E, 0.0f,
            dU, E, f32);
  gpu::gemm(ctx, false, true, B * Sy, dY, E, 1.0f, dYwv.get(), E, W, E, 0.0f,
            dy, dY, f32);
  gpu::gemm(ctx, false, true, B * Sx, dX, E, 1.0f, dXu.get(), E, U, E, 1.0f, dx,
            dX, f32);
}

} // namespace moe::rt
