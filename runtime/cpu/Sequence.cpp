//===- Sequence.cpp - Embedding, LSTM and attention on the CPU backend ----===//
//
// Thin f32 entry points over the templates in kernels/SequenceKernels.h.
// GEMM precision is a tensor-core choice, so the CPU ignores it.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/CpuBackend.h"

#include "runtime/cpu/kernels/SequenceKernels.h"

namespace moe::rt {

void CpuBackend::embeddingForward(int64_t T, int64_t d, const int32_t *ids,
                                  const float *table, float *out) {
  cpu::embeddingForward(T, d, ids, table, out);
}

void CpuBackend::embeddingBackward(int64_t T, int64_t d, const int32_t *ids,
                                   const float *dOut, float *dTable) {
  cpu::embeddingBackward(T, d, ids, dOut, dTable);
}

int64_t CpuBackend::lstmWorkspaceSize(int64_t B, int64_t S, int64_t, int64_t H,
                                      int64_t P) {
  return cpu::lstmWorkspaceSize(B, S, H, P);
}

void CpuBackend::lstmForward(int64_t B, int64_t S, int64_t dIn, int64_t H,
                             int64_t P, const float *x, const float *Wx,
                             const float *Wh, const float *bias,
                             const float *proj, float *y, float *workspace,
                             GemmPrecision) {
  cpu::lstmForward(B, S, dIn, H, P, x, Wx, Wh, bias, proj, y, workspace);
}

void CpuBackend::lstmBackward(int64_t B, int64_t S, int64_t dIn, int64_t H,
                              int64_t P, const float *x, const float *Wx,
                              const float *Wh, const float *, const float *proj,
                              const float *workspace, const float *dy,
                              float *dx, float *dWx, float *dWh, float *dBias,
                              float *dProj, GemmPrecision) {
  // The bias only enters through the saved gate activations.
  cpu::lstmBackward(B, S, dIn, H, P, x, Wx, Wh, proj, workspace, dy, dx, dWx,
                    dWh, dBias, dProj);
}

int64_t CpuBackend::attentionWorkspaceSize(int64_t B, int64_t Sx, int64_t Sy,
                                           int64_t, int64_t, int64_t E) {
  return cpu::attentionWorkspaceSize(B, Sx, Sy, E);
}

void CpuBackend::attentionForward(int64_t B, int64_t Sx, int64_t Sy, int64_t dX,
                                  int64_t dY, int64_t E, const float *x,
                                  const float *y, const float *U,
                                  const float *W, const float *V,
                                  float *context, float *workspace) {
  cpu::attentionForward(B, Sx, Sy, dX, dY, E, x, y, U, W, V, context,
                        workspace);
}

void CpuBackend::attentionBackward(int64_t B, int64_t Sx, int64_t Sy,
                                   int64_t dX, int64_t dY, int64_t E,
                                   const float *x, const float *y,
                                   const float *U, const float *W,
                                   const float *V, const float *workspace,
                                   const float *dContext, float *dx, float *dy,
                                   float *dU, float *dW, float *dV) {
  cpu::attentionBackward(B, Sx, Sy, dX, dY, E, x, y, U, W, V, workspace,
                         dContext, dx, dy, dU, dW, dV);
}

} // namespace moe::rt
