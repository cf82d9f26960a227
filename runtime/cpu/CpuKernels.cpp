//===- CpuKernels.cpp - The CPU backend's kernels, from the kernel list ---===//
//
// Every kernel of runtime/Kernels.def forwards to the cpu:: template of the
// same name in kernels/, instantiated for float. Where the Backend's
// parameters differ from the template's (a GEMM precision the CPU ignores,
// a scalar the step keeps in memory), an overload below adapts them; the
// templates keep plain values so the gradient tests run them in double.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/CpuBackend.h"

#include "runtime/Checks.h"
#include "runtime/Optimizer.h"
#include "runtime/cpu/kernels/DispatchKernels.h"
#include "runtime/cpu/kernels/ElementwiseKernels.h"
#include "runtime/cpu/kernels/HierarchyKernels.h"
#include "runtime/cpu/kernels/LossKernels.h"
#include "runtime/cpu/kernels/OptimizerKernels.h"
#include "runtime/cpu/kernels/RoutingKernels.h"
#include "runtime/cpu/kernels/SequenceKernels.h"

namespace moe::rt {
namespace cpu {

/// Precision is a GPU tensor-core choice; the CPU always computes in f32.
static void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
                 float alpha, const float *A, int64_t lda, const float *B,
                 int64_t ldb, float beta, float *C, int64_t ldc,
                 GemmPrecision) {
  checkGemmShape(transA, transB, m, n, k, lda, ldb, ldc);
  gemm<float>(transA, transB, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

static void groupedMatmulForward(int64_t A, int64_t n, int64_t dIn,
                                 int64_t dOut, const int32_t *expertOffset,
                                 const float *in, const float *weights,
                                 float *out, GemmPrecision) {
  groupedMatmulForward<float>(A, n, dIn, dOut, expertOffset, in, weights, out);
}

static void groupedMatmulBackward(int64_t A, int64_t n, int64_t dIn,
                                  int64_t dOut, const int32_t *expertOffset,
                                  const float *in, const float *weights,
                                  const float *dOutput, float *dInput,
                                  float *dWeights, GemmPrecision) {
  groupedMatmulBackward<float>(A, n, dIn, dOut, expertOffset, in, weights,
                               dOutput, dInput, dWeights);
}

static void batchedMatmulForward(int64_t n, int64_t rows, int64_t dIn,
                                 int64_t dOut, const int32_t *expertOffset,
                                 const float *in, const float *weights,
                                 float *out, GemmPrecision) {
  batchedMatmulForward<float>(n, rows, dIn, dOut, expertOffset, in, weights,
                              out);
}

static void batchedMatmulBackward(int64_t n, int64_t rows, int64_t dIn,
                                  int64_t dOut, const int32_t *expertOffset,
                                  const float *in, const float *weights,
                                  const float *dOutput, float *dInput,
                                  float *dWeights, GemmPrecision) {
  batchedMatmulBackward<float>(n, rows, dIn, dOut, expertOffset, in, weights,
                               dOutput, dInput, dWeights);
}

//===--- Gradients of a loss, read from memory ----------------------------===//

static void
batchwiseThresholdLossBackward(int64_t T, int64_t n, const float *logits,
                               const float *batchMask, const float *thresholds,
                               const float *dLoss, float *dThresholds) {
  batchwiseThresholdLossBackward<float>(T, n, logits, batchMask, thresholds,
                                        *dLoss, dThresholds);
}

static void cvSquaredBackward(int64_t n, const float *v, float weight,
                              const float *dLoss, float *dV) {
  cvSquaredBackward<float>(n, v, weight, *dLoss, dV);
}

static void l2BalanceBackward(int64_t T, int64_t n, const float *importance,
                              float weight, const float *dLoss,
                              float *dImportance) {
  l2BalanceBackward<float>(T, n, importance, weight, *dLoss, dImportance);
}

static void groupedBatchwiseThresholdLossBackward(
    int64_t groups, int64_t rowsPerGroup, int64_t n, const float *logits,
    const float *batchMask, const float *thresholds, const float *dLoss,
    float *dThresholds) {
  groupedBatchwiseThresholdLossBackward<float>(groups, rowsPerGroup, n, logits,
                                               batchMask, thresholds, *dLoss,
                                               dThresholds);
}

static float lossGradient(const float *dLoss, float dLossScale) {
  return dLoss ? *dLoss * dLossScale : dLossScale;
}

static void softmaxCrossEntropy(int64_t T, int64_t V, const float *logits,
                                const int32_t *targets, const float *dLoss,
                                float dLossScale, float *lossSum,
                                float *dLogits, int64_t *numTokens) {
  softmaxCrossEntropy<float>(T, V, logits, targets,
                             lossGradient(dLoss, dLossScale), lossSum, dLogits,
                             numTokens);
}

static void sampledSoftmaxCrossEntropy(
    int64_t T, int64_t d, int64_t V, int64_t S, const float *hidden,
    const float *weights, const float *bias, const int32_t *targets,
    uint64_t seed, uint64_t counter, const float *dLoss, float dLossScale,
    float *lossSum, float *dHidden, float *dWeights, float *dBias) {
  sampledSoftmaxCrossEntropy<float>(
      T, d, V, S, hidden, weights, bias, targets, seed, counter,
      lossGradient(dLoss, dLossScale), lossSum, dHidden, dWeights, dBias);
}

static void sampledSoftmaxCrossEntropyRows(
    int64_t T, int64_t d, int64_t V, int64_t S, const float *hidden,
    const float *weights, const float *bias, const int32_t *targets,
    uint64_t seed, uint64_t counter, const float *dLoss, float dLossScale,
    float *lossSum, float *dHidden, int32_t *rows, float *dWeightRows,
    float *dBiasRows) {
  sampledSoftmaxCrossEntropyRows<float>(
      T, d, V, S, hidden, weights, bias, targets, seed, counter,
      lossGradient(dLoss, dLossScale), lossSum, dHidden, rows, dWeightRows,
      dBiasRows);
}

//===--- Sequence layers: sizes the CPU layout does not depend on ---------===//

static int64_t lstmWorkspaceSize(int64_t B, int64_t S, int64_t, int64_t H,
                                 int64_t P) {
  return lstmWorkspaceSize(B, S, H, P);
}

static void lstmForward(int64_t B, int64_t S, int64_t dIn, int64_t H, int64_t P,
                        const float *x, const float *Wx, const float *Wh,
                        const float *bias, const float *proj, const float *h0,
                        const float *c0, float *y, float *hT, float *cT,
                        float *workspace, GemmPrecision) {
  lstmForward<float>(B, S, dIn, H, P, x, Wx, Wh, bias, proj, y, workspace, h0,
                     c0, hT, cT);
}

static void lstmBackward(int64_t B, int64_t S, int64_t dIn, int64_t H,
                         int64_t P, const float *x, const float *Wx,
                         const float *Wh, const float *, const float *proj,
                         const float *workspace, const float *dy, float *dx,
                         float *dWx, float *dWh, float *dBias, float *dProj,
                         GemmPrecision) {
  // The bias only enters through the saved gate activations.
  lstmBackward<float>(B, S, dIn, H, P, x, Wx, Wh, proj, workspace, dy, dx, dWx,
                      dWh, dBias, dProj);
}

static int64_t attentionWorkspaceSize(int64_t B, int64_t Sx, int64_t Sy,
                                      int64_t, int64_t, int64_t E) {
  return attentionWorkspaceSize(B, Sx, Sy, E);
}

//===--- Optimizer: the step's scalars live in memory ---------------------===//

static void lrSchedule(const int64_t *step, float *lr, float baseLr,
                       int64_t warmupSteps, int64_t constantSteps) {
  *lr = LrSchedule{baseLr, warmupSteps, constantSteps}.at(*step);
}

static void adamUpdate(int64_t count, float *param, const float *grad, float *m,
                       float *v, const float *lr, const int64_t *step,
                       float beta1, float beta2, float eps, float weightDecay) {
  adamUpdate<float>(count, param, grad, m, v, *lr, *step,
                    AdamConfig{beta1, beta2, eps, weightDecay});
}

static void adamUpdateRows(int64_t n, int64_t d, float *param,
                           const int32_t *rows, const float *values, float *m,
                           float *v, const float *lr, const int64_t *step,
                           float beta1, float beta2, float eps,
                           float weightDecay) {
  adamUpdateRows<float>(n, d, param, rows, values, m, v, *lr, *step,
                        AdamConfig{beta1, beta2, eps, weightDecay});
}

} // namespace cpu

#define MOE_BACKEND_MEMBER(Ret, Name, Params, Args)
#define MOE_KERNEL(Ret, Name, Params, Args)                                    \
  Ret CpuBackend::Name Params { return cpu::Name Args; }
#include "runtime/Kernels.def"

} // namespace moe::rt
