//===- CudaBackend.h - The CUDA implementation of Backend ------*- C++ -*-===//
//
// Declares every override of moe::rt::Backend for the cuda backend. The
// definitions are split by kernel family across the .cpp/.cu files of this
// folder (one family per file).
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_CUDA_CUDABACKEND_H
#define MOE_RUNTIME_CUDA_CUDABACKEND_H

#include "runtime/Backend.h"

namespace moe::rt {

namespace gpu {
struct Context;
} // namespace gpu

class CudaBackend final : public Backend {
public:
  /// Binds the backend to `device`: creates its stream (all work of the
  /// backend is ordered on it) and its cuBLAS handle.
  explicit CudaBackend(int device);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend &) = delete;
  CudaBackend &operator=(const CudaBackend &) = delete;

  std::string name() const override;
  void *alloc(size_t bytes) override;
  void release(void *ptr) override;
  void copyFromHost(void *dst, const void *src, size_t bytes) override;
  void copyToHost(void *dst, const void *src, size_t bytes) override;
  void copyDevice(void *dst, const void *src, size_t bytes) override;
  void fill(float *x, float value, int64_t count) override;
  void synchronize() override;
  void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k, float
      alpha, const float *A, int64_t lda, const float *B, int64_t ldb, float
      beta, float *C, int64_t ldc, GemmPrecision precision) override;
  void add(const float *a, const float *b, float *y, int64_t count) override;
  void accumulate(const float *x, float *y, int64_t count) override;
  void scale(const float *x, float factor, float *y, int64_t count) override;
  void biasAdd(int64_t rows, int64_t d, const float *x, const float *bias,
      float *y) override;
  void sumRows(int64_t rows, int64_t d, const float *x, float *y) override;
  void sigmoidForward(const float *x, float *y, int64_t count) override;
  void sigmoidBackward(const float *y, const float *dy, float *dx, int64_t
      count) override;
  void tanhForward(const float *x, float *y, int64_t count) override;
  void tanhBackward(const float *y, const float *dy, float *dx, int64_t count)
      override;
  void dropoutForward(const float *x, float *y, int64_t count, float rate,
      uint64_t seed, uint64_t counter, uint64_t elementOffset) override;
  void dropoutBackward(const float *dy, float *dx, int64_t count, float rate,
      uint64_t seed, uint64_t counter, uint64_t elementOffset) override;
  void noisyTopKForward(int64_t T, int64_t n, int64_t k, const float *clean,
      const float *rawNoise, float noiseEps, bool training, uint64_t seed,
      uint64_t counter, float *noisy, float *noiseStd, float *topValues,
      int32_t *expert, float *gate, uint64_t elementOffset) override;
  void noisyTopKBackward(int64_t T, int64_t n, int64_t k, const float *noisy,
      const float *clean, const float *rawNoise, const float *noiseStd, const
      int32_t *expert, const float *gate, const float *dGate, float *dClean,
      float *dRawNoise) override;
  void loadEstimateForward(int64_t T, int64_t n, int64_t k, const float
      *clean, const float *noisy, const float *noiseStd, const float
      *topValues, float *load) override;
  void loadEstimateBackward(int64_t T, int64_t n, int64_t k, const float
      *clean, const float *noisy, const float *rawNoise, const float
      *noiseStd, const float *topValues, const float *dLoad, float *dClean,
      float *dRawNoise) override;
  void softmaxForward(int64_t T, int64_t n, const float *logits, float *probs)
      override;
  void softmaxBackward(int64_t T, int64_t n, const float *probs, const float
      *dProbs, float *dLogits) override;
  void batchwiseMaskForward(int64_t T, int64_t n, int64_t m, const float
      *logits, float *mask, int32_t *rowPtr, int32_t *expert, float *gate)
      override;
  void thresholdMaskForward(int64_t T, int64_t n, const float *logits, const
      float *thresholds, float *mask, int32_t *rowPtr, int32_t *expert, float
      *gate, int64_t capacity, int64_t *numAssigned) override;
  void maskAssignmentsForward(int64_t T, int64_t n, const float *logits,
      const float *mask, int32_t *rowPtr, int32_t *expert, float *gate,
      int64_t capacity, int64_t *numAssigned) override;
  void maskedGateBackward(int64_t T, int64_t n, const int32_t *rowPtr, const
      int32_t *expert, const float *gate, const float *dGate, float *dLogits)
      override;
  void batchwiseThresholdLossForward(int64_t T, int64_t n, const float
      *logits, const float *batchMask, const float *thresholds, float *loss)
      override;
  void batchwiseThresholdLossBackward(int64_t T, int64_t n, const float
      *logits, const float *batchMask, const float *thresholds, float dLoss,
      float *dThresholds) override;
  void importanceForward(int64_t T, int64_t n, const int32_t *rowPtr, const
      int32_t *expert, const float *gate, float *importance) override;
  void importanceBackward(int64_t T, int64_t n, const int32_t *rowPtr, const
      int32_t *expert, const float *dImportance, float *dGate) override;
  void cvSquaredForward(int64_t n, const float *v, float weight, float *loss)
      override;
  void cvSquaredBackward(int64_t n, const float *v, float weight, float dLoss,
      float *dV) override;
  void l2BalanceForward(int64_t T, int64_t n, const float *importance, float
      weight, float *loss) override;
  void l2BalanceBackward(int64_t T, int64_t n, const float *importance, float
      weight, float dLoss, float *dImportance) override;
  void composeRoutesForward(int64_t A1, int64_t k, int64_t expertsPerGroup,
                            const int32_t *primaryExpert,
                            const float *primaryGate, const int32_t *position,
                            const int32_t *secondaryExpert,
                            const float *secondaryGate, int32_t *expert,
                            float *gate) override;
  void composeRoutesBackward(int64_t A1, int64_t k, const float *primaryGate,
                             const int32_t *position,
                             const float *secondaryGate, const float *dGate,
                             float *dPrimaryGate,
                             float *dSecondaryGate) override;
  void groupedBatchwiseMaskForward(int64_t groups, int64_t rowsPerGroup,
                                   int64_t n, int64_t m, const float *logits,
                                   float *mask, int32_t *rowPtr,
                                   int32_t *expert, float *gate) override;
  void groupedThresholdMaskForward(int64_t R, int64_t groups, int64_t n,
                                   const float *logits, const float *thresholds,
                                   const int32_t *groupOffset, float *mask,
                                   int32_t *rowPtr, int32_t *expert,
                                   float *gate, int64_t capacity,
                                   int64_t *numAssigned) override;
  void groupedBatchwiseThresholdLossForward(
      int64_t groups, int64_t rowsPerGroup, int64_t n, const float *logits,
      const float *batchMask, const float *thresholds, float *loss) override;
  void groupedBatchwiseThresholdLossBackward(
      int64_t groups, int64_t rowsPerGroup, int64_t n, const float *logits,
      const float *batchMask, const float *thresholds, float dLoss,
      float *dThresholds) override;
  void composeRoutesCsrForward(
      int64_t T, int64_t A1, int64_t A2, int64_t expertsPerGroup,
      const int32_t *primaryRowPtr, const int32_t *primaryExpert,
      const float *primaryGate, const int32_t *position,
      const int32_t *secondaryRowPtr, const int32_t *secondaryExpert,
      const float *secondaryGate, int32_t *rowPtr, int32_t *expert,
      float *gate) override;
  void
  composeRoutesCsrBackward(int64_t T, int64_t A1, int64_t A2,
                           const int32_t *rowPtr, const int32_t *primaryRowPtr,
                           const float *primaryGate, const int32_t *position,
                           const int32_t *secondaryRowPtr,
                           const float *secondaryGate, const float *dGate,
                           float *dPrimaryGate, float *dSecondaryGate) override;
  void groupedLoadEstimateForward(int64_t R, int64_t groups, int64_t n,
                                  int64_t k, const int32_t *groupOffset,
                                  const float *clean, const float *noisy,
                                  const float *noiseStd, const float *topValues,
                                  float *load) override;
  void groupedLoadEstimateBackward(int64_t R, int64_t groups, int64_t n,
                                   int64_t k, const int32_t *groupOffset,
                                   const float *clean, const float *noisy,
                                   const float *rawNoise, const float *noiseStd,
                                   const float *topValues, const float *dLoad,
                                   float *dClean, float *dRawNoise) override;
  void hierarchicalLoadForward(int64_t groups, int64_t n,
                               const int32_t *groupOffset,
                               const float *primaryLoad,
                               const float *secondaryLoad,
                               float *load) override;
  void hierarchicalLoadBackward(int64_t groups, int64_t n,
                                const int32_t *groupOffset,
                                const float *primaryLoad,
                                const float *secondaryLoad, const float *dLoad,
                                float *dPrimaryLoad,
                                float *dSecondaryLoad) override;
  void buildDispatchPlan(DispatchPlan &plan) override;
  void dispatchForward(const DispatchPlan &plan, int64_t d, const float *x,
      float *buffer) override;
  void dispatchBackward(const DispatchPlan &plan, int64_t d, const float
      *dBuffer, float *dx) override;
  void combineForward(const DispatchPlan &plan, int64_t d, const float *gate,
      const float *expertOut, float *y) override;
  void combineBackward(const DispatchPlan &plan, int64_t d, const float *gate,
      const float *expertOut, const float *dy, float *dExpertOut, float
      *dGate) override;
  void groupedMatmulForward(const DispatchPlan &plan, int64_t dIn, int64_t
      dOut, const float *in, const float *weights, float *out, GemmPrecision
      precision) override;
  void groupedMatmulBackward(const DispatchPlan &plan, int64_t dIn, int64_t
      dOut, const float *in, const float *weights, const float *dOutput, float
      *dInput, float *dWeights, GemmPrecision precision) override;
  void reluForward(const float *x, float *y, int64_t count) override;
  void reluBackward(const float *y, const float *dy, float *dx, int64_t count)
      override;
  void embeddingForward(int64_t T, int64_t d, const int32_t *ids, const float
      *table, float *out) override;
  void embeddingBackward(int64_t T, int64_t d, const int32_t *ids, const float
      *dOut, float *dTable) override;
  int64_t lstmWorkspaceSize(int64_t B, int64_t S, int64_t dIn, int64_t H,
      int64_t P) override;
  void lstmForward(int64_t B, int64_t S, int64_t dIn, int64_t H, int64_t P,
      const float *x, const float *Wx, const float *Wh, const float *bias,
      const float *proj, float *y, float *workspace, GemmPrecision precision)
      override;
  void lstmBackward(int64_t B, int64_t S, int64_t dIn, int64_t H, int64_t P,
      const float *x, const float *Wx, const float *Wh, const float *bias,
      const float *proj, const float *workspace, const float *dy, float *dx,
      float *dWx, float *dWh, float *dBias, float *dProj, GemmPrecision
      precision) override;
  int64_t attentionWorkspaceSize(int64_t B, int64_t Sx, int64_t Sy, int64_t
      dX, int64_t dY, int64_t E) override;
  void attentionForward(int64_t B, int64_t Sx, int64_t Sy, int64_t dX, int64_t
      dY, int64_t E, const float *x, const float *y, const float *U, const
      float *W, const float *V, float *context, float *workspace) override;
  void attentionBackward(int64_t B, int64_t Sx, int64_t Sy, int64_t dX,
      int64_t dY, int64_t E, const float *x, const float *y, const float *U,
      const float *W, const float *V, const float *workspace, const float
      *dContext, float *dx, float *dy, float *dU, float *dW, float *dV)
      override;
  void softmaxCrossEntropy(int64_t T, int64_t V, const float *logits, const
      int32_t *targets, float dLossSum, float *lossSum, float *dLogits,
      int64_t *numTokens) override;
  void sampledSoftmaxCrossEntropy( int64_t T, int64_t d, int64_t V, int64_t S,
      const float *hidden, const float *weights, const float *bias, const
      int32_t *targets, uint64_t seed, uint64_t counter, float dLossSum, float
      *lossSum, float *dHidden, float *dWeights, float *dBias) override;
  void adamUpdate(int64_t count, float *param, const float *grad, float *m,
      float *v, float lr, int64_t step, const AdamConfig &config) override;

private:
  /// Device, stream and cuBLAS handle (runtime/cuda/Common.cuh).
  std::unique_ptr<gpu::Context> ctx_;
};

} // namespace moe::rt

#endif // MOE_RUNTIME_CUDA_CUDABACKEND_H
