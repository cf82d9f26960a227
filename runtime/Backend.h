//===- Backend.h - The kernel interface every backend implements -*- C++ -*-===//
//
// One interface for the CPU (OpenBLAS + threads) and CUDA (cuBLAS + kernels)
// backends. The generated training step and moe-run call only this interface,
// so the same package runs on either backend.
//
// Conventions:
//  * Tensors are dense, row-major, f32 unless stated; index tensors are int32.
//  * Pointers are backend memory (host memory for CPU, device memory for
//    CUDA); allocate with alloc() and move data with copyFromHost/copyToHost.
//  * `T` is the number of tokens (rows: batch * time), `n` the number of
//    experts, `d` the model width. Backward functions write gradients
//    (overwrite, never accumulate) unless their comment says "accumulates".
//  * Routing is carried in "assignment" form: a token-major CSR list
//    rowPtr[T+1], expert[A], gate[A]; assignment a of token t is in
//    [rowPtr[t], rowPtr[t+1]). Top-k gating gives rowPtr[t] = t*k; batchwise
//    and threshold gating give a variable number of experts per token. The
//    dispatch plan sorts assignments into expert-major segments.
//  * Every kernel is deterministic: same inputs give bit-identical outputs.
//  * Index inputs (token ids, targets, expert ids, row pointers) are checked
//    by the CPU backend, which throws; the CUDA backend trusts them, so the
//    caller validates data (ids < vocab) before it reaches a GPU.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_BACKEND_H
#define MOE_RUNTIME_BACKEND_H

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace moe::rt {

/// Precision of the large GEMMs (experts, LSTM, output layer). The router
/// always runs in f32 whatever this says.
enum class GemmPrecision { F32, TF32, BF16 };

/// Expert network kinds (paper 5.1: linear 512x512; 5.2: FFN with ReLU).
enum class ExpertKind { Linear, FfnRelu };

/// Where the expert-major dispatch buffer is described. All arrays live in
/// backend memory and are produced by buildDispatchPlan.
struct DispatchPlan {
  int64_t numTokens = 0;      ///< T
  int64_t numExperts = 0;     ///< n
  int64_t numAssignments = 0; ///< A
  const int32_t *rowPtr = nullptr;      ///< [T+1] token-major CSR offsets
  const int32_t *expert = nullptr;      ///< [A] expert of assignment a
  int32_t *expertCount = nullptr;       ///< [n] tokens routed to expert e
  int32_t *expertOffset = nullptr;      ///< [n+1] segment start of expert e
  int32_t *positionOf = nullptr;        ///< [A] buffer row of assignment a
  int32_t *tokenOfPosition = nullptr;   ///< [A] token feeding buffer row p
};

/// The paper's learning-rate schedule: linear warm-up for `warmupSteps`,
/// constant for `constantSteps`, then proportional to 1/sqrt(step).
struct LrSchedule {
  float baseLr = 1e-3f;
  int64_t warmupSteps = 200;
  int64_t constantSteps = 200;
  /// Learning rate at 1-based step `step`.
  float at(int64_t step) const;
};

struct AdamConfig {
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weightDecay = 0.0f; ///< decoupled (AdamW style); 0 disables
};

class Backend {
public:
  virtual ~Backend();
  virtual std::string name() const = 0;

  //===--------------------------------------------------------------------===//
  // Memory
  //===--------------------------------------------------------------------===//
  virtual void *alloc(size_t bytes) = 0;
  virtual void release(void *ptr) = 0;
  virtual void copyFromHost(void *dst, const void *src, size_t bytes) = 0;
  virtual void copyToHost(void *dst, const void *src, size_t bytes) = 0;
  virtual void copyDevice(void *dst, const void *src, size_t bytes) = 0;
  virtual void fill(float *x, float value, int64_t count) = 0;
  virtual void synchronize() = 0;

  //===--------------------------------------------------------------------===//
  // Dense algebra
  //===--------------------------------------------------------------------===//
  /// C = alpha * op(A) * op(B) + beta * C, row-major; op(A) is m x k, op(B)
  /// is k x n. `precision` only matters on CUDA.
  virtual void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
                    float alpha, const float *A, int64_t lda, const float *B,
                    int64_t ldb, float beta, float *C, int64_t ldc,
                    GemmPrecision precision = GemmPrecision::F32) = 0;
  /// y = a + b (residual connection).
  virtual void add(const float *a, const float *b, float *y, int64_t count) = 0;
  /// y += x (accumulates).
  virtual void accumulate(const float *x, float *y, int64_t count) = 0;
  /// y = factor * x (y may alias x).
  virtual void scale(const float *x, float factor, float *y, int64_t count) = 0;
  /// y[r, :] = x[r, :] + bias for rows x d (y may alias x).
  virtual void biasAdd(int64_t rows, int64_t d, const float *x,
                       const float *bias, float *y) = 0;
  /// y [d] (written) = sum over the rows of x [rows, d], rows summed in
  /// order (deterministic; the gradient of a bias). rows = 0 gives zeros.
  virtual void sumRows(int64_t rows, int64_t d, const float *x, float *y) = 0;
  /// y = sigmoid(x); backward: dx = dy * y * (1 - y).
  virtual void sigmoidForward(const float *x, float *y, int64_t count) = 0;
  virtual void sigmoidBackward(const float *y, const float *dy, float *dx,
                               int64_t count) = 0;
  /// y = tanh(x); backward: dx = dy * (1 - y^2).
  virtual void tanhForward(const float *x, float *y, int64_t count) = 0;
  virtual void tanhBackward(const float *y, const float *dy, float *dx,
                            int64_t count) = 0;
  /// Inverted dropout with a Philox mask keyed by (seed, counter): y = x *
  /// keep / (1 - rate). The same (seed, counter) gives the same mask on every
  /// backend. Backward recomputes the mask from the same key. Element i
  /// draws value elementOffset + i of the stream (elementOffset a multiple
  /// of 4), so the shards of a tensor draw what the whole tensor would.
  virtual void dropoutForward(const float *x, float *y, int64_t count,
                              float rate, uint64_t seed, uint64_t counter,
                              uint64_t elementOffset = 0) = 0;
  virtual void dropoutBackward(const float *dy, float *dx, int64_t count,
                               float rate, uint64_t seed, uint64_t counter,
                               uint64_t elementOffset = 0) = 0;

  //===--------------------------------------------------------------------===//
  // Gating (router: always f32)
  //===--------------------------------------------------------------------===//
  /// Noisy top-k gating (paper 3.1, final version): noise std
  /// s = softplus(rawNoise) + eps, H = clean + z * s with z ~ N(0,1) from
  /// Philox(seed, counter) when `training`, else H = clean. Selects the top
  /// k+1 entries of each row of H (ties broken by lower index), writes the
  /// top-k expert indices (descending H) to `expert` [T,k], their softmax
  /// (over the kept k) to `gate` [T,k], and the sorted top-(k+1) values to
  /// `topValues` [T,k+1] (k+1 <= n; when k == n, column k is -inf). `noisy`
  /// [T,n] and `noiseStd` [T,n] are saved for the backward pass. `rawNoise`
  /// may be null: then s = 0 and H = clean (plain top-k gating). Element
  /// (t, i) draws value elementOffset + t*n + i of the normal stream
  /// (elementOffset a multiple of 4), as for dropout.
  virtual void noisyTopKForward(int64_t T, int64_t n, int64_t k,
                                const float *clean, const float *rawNoise,
                                float noiseEps, bool training, uint64_t seed,
                                uint64_t counter, float *noisy, float *noiseStd,
                                float *topValues, int32_t *expert, float *gate,
                                uint64_t elementOffset = 0) = 0;
  /// Backward of the gates: from dGate [T,k] to dClean [T,n] (written) and,
  /// when rawNoise is non-null, dRawNoise [T,n] (written), through
  /// H = clean + z * (softplus(raw) + eps).
  virtual void noisyTopKBackward(int64_t T, int64_t n, int64_t k,
                                 const float *noisy, const float *clean,
                                 const float *rawNoise, const float *noiseStd,
                                 const int32_t *expert, const float *gate,
                                 const float *dGate, float *dClean,
                                 float *dRawNoise) = 0;
  /// Smooth load estimator: P(x,i) = Phi((clean_i - thr_i) / s_i) where thr_i
  /// is the k-th largest noisy value excluding i (topValues[:,k] when i is in
  /// the top k, else topValues[:,k-1]); load[i] = sum_x P(x,i) (written).
  virtual void loadEstimateForward(int64_t T, int64_t n, int64_t k,
                                   const float *clean, const float *noisy,
                                   const float *noiseStd,
                                   const float *topValues, float *load) = 0;
  /// Accumulates the gradient of load (dLoad [n]) into dClean and dRawNoise
  /// [T,n], including the path through the thresholds (which are entries
  /// of H). rawNoise must be non-null.
  virtual void loadEstimateBackward(int64_t T, int64_t n, int64_t k,
                                    const float *clean, const float *noisy,
                                    const float *rawNoise,
                                    const float *noiseStd,
                                    const float *topValues, const float *dLoad,
                                    float *dClean, float *dRawNoise) = 0;
  /// Dense softmax gating (Eq. 2): probs [T,n] = softmax(logits) per row.
  virtual void softmaxForward(int64_t T, int64_t n, const float *logits,
                              float *probs) = 0;
  virtual void softmaxBackward(int64_t T, int64_t n, const float *probs,
                               const float *dProbs, float *dLogits) = 0;
  /// Batchwise mask (Appendix A, Eq. 6): for each expert i keep the top m
  /// tokens of column i of the router probabilities p [T,n] = softmax of
  /// each row of `logits` [T,n] (X = G_sigma(x) of Eq. 3; ties: lower token
  /// index). Writes mask [T,n] (0/1) and the assignment form: rowPtr [T+1],
  /// expert [n*m] (sorted by expert within a token) and gate [n*m] = softmax
  /// of the kept logits of the token, i.e. p renormalised over the kept
  /// experts (tokens with no expert get an empty row).
  virtual void batchwiseMaskForward(int64_t T, int64_t n, int64_t m,
                                    const float *logits, float *mask,
                                    int32_t *rowPtr, int32_t *expert,
                                    float *gate) = 0;
  /// Threshold mask (Eq. 7) for inference: keep expert i of token x when
  /// p[x,i] = softmax(logits[x,:])[i] > thresholds[i] (thresholds on the
  /// probability scale). Writes mask [T,n], rowPtr [T+1] and the A
  /// assignments (expert/gate as in batchwiseMaskForward) into `capacity`
  /// slots (the compiled size of expert and gate, at most T*n); returns A
  /// through numAssigned (host pointer, may be null). Nothing is written
  /// past `capacity`: when A > capacity it throws std::runtime_error after
  /// writing mask and rowPtr (expert and gate are then unspecified). The
  /// row pointers come first, so A is known before any assignment is.
  virtual void thresholdMaskForward(int64_t T, int64_t n, const float *logits,
                                    const float *thresholds, float *mask,
                                    int32_t *rowPtr, int32_t *expert,
                                    float *gate, int64_t capacity,
                                    int64_t *numAssigned) = 0;
  /// The assignment form of a given 0/1 mask [T,n] (a batchwise mask
  /// chosen over the combined batch of several ranks): rowPtr [T+1], each
  /// token's kept experts in increasing order and gates = softmax of its
  /// kept logits, into `capacity` slots (std::runtime_error when more are
  /// kept, as thresholdMaskForward). Unused slots get expert 0 and gate 0,
  /// so sums over every slot (importance) count only the kept ones. Returns
  /// the number kept through numAssigned (host pointer, may be null).
  virtual void maskAssignmentsForward(int64_t T, int64_t n,
                                      const float *logits, const float *mask,
                                      int32_t *rowPtr, int32_t *expert,
                                      float *gate, int64_t capacity,
                                      int64_t *numAssigned) = 0;
  /// Backward of the masked softmax gates in assignment form: dGate [A] to
  /// dLogits [T,n] (written; zero where not selected).
  virtual void maskedGateBackward(int64_t T, int64_t n, const int32_t *rowPtr,
                                  const int32_t *expert, const float *gate,
                                  const float *dGate, float *dLogits) = 0;
  /// Eq. 8: L = sum_x sum_i (Mthr(x,T)_i - Mbw_x,i) (X_x,i - T_i), written
  /// to loss[0], with X = softmax of each row of `logits` (the router
  /// probabilities, as in the masks) and Mthr = [X > T_i]. Backward:
  /// dThresholds [n] = -dLoss * sum_x (Mthr - Mbw) (written). X is treated
  /// as a constant: the loss trains the thresholds.
  virtual void batchwiseThresholdLossForward(int64_t T, int64_t n,
                                             const float *logits,
                                             const float *batchMask,
                                             const float *thresholds,
                                             float *loss) = 0;
  virtual void batchwiseThresholdLossBackward(int64_t T, int64_t n,
                                              const float *logits,
                                              const float *batchMask,
                                              const float *thresholds,
                                              float dLoss,
                                              float *dThresholds) = 0;
  /// importance [n] = sum over tokens of the gates (assignment form).
  virtual void importanceForward(int64_t T, int64_t n, const int32_t *rowPtr,
                                 const int32_t *expert, const float *gate,
                                 float *importance) = 0;
  /// dGate[a] = dImportance[expert[a]] (written).
  virtual void importanceBackward(int64_t T, int64_t n, const int32_t *rowPtr,
                                  const int32_t *expert,
                                  const float *dImportance, float *dGate) = 0;
  /// CV^2 = var(v) / (mean(v)^2 + 1e-10) with population variance, times
  /// `weight`, written to loss[0]; backward writes dV [n].
  virtual void cvSquaredForward(int64_t n, const float *v, float weight,
                                float *loss) = 0;
  virtual void cvSquaredBackward(int64_t n, const float *v, float weight,
                                 float dLoss, float *dV) = 0;
  /// Eq. 5: L = weight/2 * sum_i (importance_i / T - 1/n)^2; backward
  /// writes dImportance [n].
  virtual void l2BalanceForward(int64_t T, int64_t n, const float *importance,
                                float weight, float *loss) = 0;
  virtual void l2BalanceBackward(int64_t T, int64_t n, const float *importance,
                                 float weight, float dLoss,
                                 float *dImportance) = 0;

  /// Hierarchical MoE (paper 3.3): composes A1 primary assignments (group
  /// primaryExpert[a], gate primaryGate[a], token-major) with the secondary
  /// top-k of dispatch-buffer row position[a] (secondaryExpert /
  /// secondaryGate [A1, k], expert ids local to the group) into A1 * k
  /// assignments: expert[a*k+s] = group * expertsPerGroup + local,
  /// gate[a*k+s] = primaryGate[a] * secondaryGate[position[a], s].
  virtual void composeRoutesForward(int64_t A1, int64_t k,
                                    int64_t expertsPerGroup,
                                    const int32_t *primaryExpert,
                                    const float *primaryGate,
                                    const int32_t *position,
                                    const int32_t *secondaryExpert,
                                    const float *secondaryGate,
                                    int32_t *expert, float *gate) = 0;
  /// dPrimaryGate[a] = sum_s dGate[a*k+s] * secondaryGate[position[a], s];
  /// dSecondaryGate[position[a], s] = dGate[a*k+s] * primaryGate[a] (both
  /// written; position is a permutation of [0, A1)).
  virtual void composeRoutesBackward(int64_t A1, int64_t k,
                                     const float *primaryGate,
                                     const int32_t *position,
                                     const float *secondaryGate,
                                     const float *dGate, float *dPrimaryGate,
                                     float *dSecondaryGate) = 0;

  /// Hierarchical MoE with batchwise and threshold masks (paper 3.3 with
  /// Appendix A at each level). The secondary level works on the R rows
  /// the primary level dispatched to the groups, in group-major order.
  ///
  /// Batchwise mask per group: the rows of logits [groups * rowsPerGroup,
  /// n] form `groups` segments of rowsPerGroup rows; within each segment
  /// every expert keeps the m rows of largest probability p = softmax of
  /// the row (exactly batchwiseMaskForward on the segment alone). Writes
  /// mask [R, n] and the row-major assignments rowPtr [R+1], expert
  /// [groups*n*m] (ids local to the group), gate [groups*n*m].
  virtual void groupedBatchwiseMaskForward(int64_t groups, int64_t rowsPerGroup,
                                           int64_t n, int64_t m,
                                           const float *logits, float *mask,
                                           int32_t *rowPtr, int32_t *expert,
                                           float *gate) = 0;
  /// Threshold mask per group (Eq. 7, inference): row r of logits [R, n]
  /// belongs to group g when groupOffset[g] <= r < groupOffset[g+1]
  /// (groupOffset [groups+1] in backend memory: the primary dispatch
  /// plan's offsets) and keeps expert j when p[r,j] > thresholds[g*n+j];
  /// rows outside [groupOffset[0], groupOffset[groups]) keep nothing (their
  /// logits are never read). Writes mask [R, n], rowPtr [R+1] and the
  /// assignments into `capacity` slots (at most R*n); numAssigned (host,
  /// may be null) = rowPtr[R]. As thresholdMaskForward, it throws
  /// std::runtime_error rather than write past `capacity`.
  virtual void
  groupedThresholdMaskForward(int64_t R, int64_t groups, int64_t n,
                              const float *logits, const float *thresholds,
                              const int32_t *groupOffset, float *mask,
                              int32_t *rowPtr, int32_t *expert, float *gate,
                              int64_t capacity, int64_t *numAssigned) = 0;
  /// Eq. 8 per group: segment g (rowsPerGroup rows of logits / batchMask
  /// [groups * rowsPerGroup, n]) against thresholds [g, :] of thresholds
  /// [groups, n]; loss[0] = the sum over all segments. Backward writes
  /// dThresholds [groups, n] = -dLoss * sum over segment g of (Mthr - Mbw).
  virtual void groupedBatchwiseThresholdLossForward(
      int64_t groups, int64_t rowsPerGroup, int64_t n, const float *logits,
      const float *batchMask, const float *thresholds, float *loss) = 0;
  virtual void groupedBatchwiseThresholdLossBackward(
      int64_t groups, int64_t rowsPerGroup, int64_t n, const float *logits,
      const float *batchMask, const float *thresholds, float dLoss,
      float *dThresholds) = 0;
  /// Composition when both levels give a variable number of choices: the
  /// primary assignments (primaryRowPtr [T+1], groups primaryExpert [A1],
  /// primaryGate [A1]; capacity A1, of which primaryRowPtr[T] are used),
  /// the buffer row position[a] of each, and the secondary assignments of
  /// the A1 buffer rows (secondaryRowPtr [A1+1], local secondaryExpert and
  /// secondaryGate, capacity A2). For each token in order, each primary
  /// assignment a in order expands into the secondary assignments b of row
  /// position[a]: expert = group * expertsPerGroup + local, gate =
  /// primaryGate[a] * secondaryGate[b]. Writes rowPtr [T+1] and expert /
  /// gate (capacity A2; rowPtr[T] used).
  virtual void composeRoutesCsrForward(
      int64_t T, int64_t A1, int64_t A2, int64_t expertsPerGroup,
      const int32_t *primaryRowPtr, const int32_t *primaryExpert,
      const float *primaryGate, const int32_t *position,
      const int32_t *secondaryRowPtr, const int32_t *secondaryExpert,
      const float *secondaryGate, int32_t *rowPtr, int32_t *expert,
      float *gate) = 0;
  /// With o the composed assignment of (a, b) (rowPtr is the forward's):
  /// dPrimaryGate[a] = sum_b dGate[o] * secondaryGate[b] (b in order),
  /// dSecondaryGate[b] = dGate[o] * primaryGate[a]; both written, zero for
  /// the slots no composed assignment uses.
  virtual void
  composeRoutesCsrBackward(int64_t T, int64_t A1, int64_t A2,
                           const int32_t *rowPtr, const int32_t *primaryRowPtr,
                           const float *primaryGate, const int32_t *position,
                           const int32_t *secondaryRowPtr,
                           const float *secondaryGate, const float *dGate,
                           float *dPrimaryGate, float *dSecondaryGate) = 0;
  /// The smooth load of each group's rows: load [groups, n] (written),
  /// load[g, j] = loadEstimateForward's sum over the rows r of group g
  /// (groupOffset[g] <= r < groupOffset[g+1], groupOffset [groups+1] in
  /// backend memory) of the R x n clean / noisy / noiseStd and R x (k+1)
  /// topValues. Backward accumulates dLoad [groups, n] into dClean and
  /// dRawNoise [R, n] of those rows, as loadEstimateBackward.
  virtual void
  groupedLoadEstimateForward(int64_t R, int64_t groups, int64_t n, int64_t k,
                             const int32_t *groupOffset, const float *clean,
                             const float *noisy, const float *noiseStd,
                             const float *topValues, float *load) = 0;
  virtual void groupedLoadEstimateBackward(
      int64_t R, int64_t groups, int64_t n, int64_t k,
      const int32_t *groupOffset, const float *clean, const float *noisy,
      const float *rawNoise, const float *noiseStd, const float *topValues,
      const float *dLoad, float *dClean, float *dRawNoise) = 0;
  /// Load_H (paper, final version, Appendix B): load[g*n+j] (written) =
  /// primaryLoad[g] * secondaryLoad[g*n+j] / max(c_g, 1) with c_g =
  /// groupOffset[g+1] - groupOffset[g] the rows sent to group g. Backward
  /// writes dPrimaryLoad[g] = sum_j dLoad[g*n+j] * secondaryLoad[g*n+j] /
  /// max(c_g, 1) (j in order) and dSecondaryLoad[g*n+j] = dLoad[g*n+j] *
  /// primaryLoad[g] / max(c_g, 1).
  virtual void hierarchicalLoadForward(int64_t groups, int64_t n,
                                       const int32_t *groupOffset,
                                       const float *primaryLoad,
                                       const float *secondaryLoad,
                                       float *load) = 0;
  virtual void hierarchicalLoadBackward(int64_t groups, int64_t n,
                                        const int32_t *groupOffset,
                                        const float *primaryLoad,
                                        const float *secondaryLoad,
                                        const float *dLoad, float *dPrimaryLoad,
                                        float *dSecondaryLoad) = 0;

  //===--------------------------------------------------------------------===//
  // Dispatch / experts / combine
  //===--------------------------------------------------------------------===//
  /// Stable counting sort of the assignments by expert: fills the plan's
  /// expertCount, expertOffset, positionOf and tokenOfPosition. Experts that
  /// receive no token get an empty segment.
  virtual void buildDispatchPlan(DispatchPlan &plan) = 0;
  /// buffer [A,d]: row p = x[tokenOfPosition[p]].
  virtual void dispatchForward(const DispatchPlan &plan, int64_t d,
                               const float *x, float *buffer) = 0;
  /// dx [T,d] (written) = sum over the token's assignments of
  /// dBuffer[positionOf[a]], summed in assignment order (deterministic).
  virtual void dispatchBackward(const DispatchPlan &plan, int64_t d,
                                const float *dBuffer, float *dx) = 0;
  /// y [T,d] (written) = sum_a gate[a] * expertOut[positionOf[a]].
  virtual void combineForward(const DispatchPlan &plan, int64_t d,
                              const float *gate, const float *expertOut,
                              float *y) = 0;
  /// dExpertOut[positionOf[a]] = gate[a] * dy[t]; dGate[a] = <dy[t],
  /// expertOut[positionOf[a]]> (both written).
  virtual void combineBackward(const DispatchPlan &plan, int64_t d,
                               const float *gate, const float *expertOut,
                               const float *dy, float *dExpertOut,
                               float *dGate) = 0;
  /// Grouped GEMM over the plan's segments: out[seg e] = in[seg e] * W[e],
  /// W is [n, dIn, dOut]. Zero-row segments are skipped.
  virtual void groupedMatmulForward(const DispatchPlan &plan, int64_t dIn,
                                    int64_t dOut, const float *in,
                                    const float *weights, float *out,
                                    GemmPrecision precision) = 0;
  /// dIn (written) = dOut * W[e]^T; dWeights[e] (written, zero for empty
  /// experts) = in[seg e]^T * dOut[seg e].
  virtual void groupedMatmulBackward(const DispatchPlan &plan, int64_t dIn,
                                     int64_t dOut, const float *in,
                                     const float *weights, const float *dOutput,
                                     float *dInput, float *dWeights,
                                     GemmPrecision precision) = 0;
  /// y = max(x, 0); backward dx = dy where y > 0.
  virtual void reluForward(const float *x, float *y, int64_t count) = 0;
  virtual void reluBackward(const float *y, const float *dy, float *dx,
                            int64_t count) = 0;

  //===--------------------------------------------------------------------===//
  // Sequence layers
  //===--------------------------------------------------------------------===//
  /// Embedding lookup: out [T,d] = table[ids[t]]. ids outside [0, vocab)
  /// are an error reported by the caller before the call.
  virtual void embeddingForward(int64_t T, int64_t d, const int32_t *ids,
                                const float *table, float *out) = 0;
  /// Accumulates dOut rows into dTable rows (deterministic, token order).
  virtual void embeddingBackward(int64_t T, int64_t d, const int32_t *ids,
                                 const float *dOut, float *dTable) = 0;
  /// LSTM over a sequence, input x [B,S,dIn] (batch-major), fused gate
  /// weights Wx [dIn, 4H], Wh [P, 4H] (P = projection size, or H when
  /// proj is null), bias [4H], gate order (i, f, g, o), forget-gate bias
  /// as given. Optional projection proj [H, P]: h_t = (o * tanh(c_t)) proj.
  /// Initial state zero. Outputs y [B,S,P]; saves `workspace` for backward
  /// (lstmWorkspaceSize floats, not bytes).
  virtual int64_t lstmWorkspaceSize(int64_t B, int64_t S, int64_t dIn,
                                    int64_t H, int64_t P) = 0;
  virtual void lstmForward(int64_t B, int64_t S, int64_t dIn, int64_t H,
                           int64_t P, const float *x, const float *Wx,
                           const float *Wh, const float *bias,
                           const float *proj, float *y, float *workspace,
                           GemmPrecision precision) = 0;
  /// Backward through time; writes dx, dWx, dWh, dBias, dProj.
  virtual void lstmBackward(int64_t B, int64_t S, int64_t dIn, int64_t H,
                            int64_t P, const float *x, const float *Wx,
                            const float *Wh, const float *bias,
                            const float *proj, const float *workspace,
                            const float *dy, float *dx, float *dWx,
                            float *dWh, float *dBias, float *dProj,
                            GemmPrecision precision) = 0;
  /// Appendix B attention: scores[b,j,i] = sum_e V_e tanh(x_i U)_e
  /// tanh(y_j W)_e for source x [B,Sx,dX] and target y [B,Sy,dY], U [dX,E],
  /// W [dY,E], V [E]; weights = softmax over i; context [B,Sy,dX] =
  /// weights * x. The workspace holds attentionWorkspaceSize floats.
  virtual int64_t attentionWorkspaceSize(int64_t B, int64_t Sx, int64_t Sy,
                                         int64_t dX, int64_t dY,
                                         int64_t E) = 0;
  virtual void attentionForward(int64_t B, int64_t Sx, int64_t Sy, int64_t dX,
                                int64_t dY, int64_t E, const float *x,
                                const float *y, const float *U, const float *W,
                                const float *V, float *context,
                                float *workspace) = 0;
  virtual void attentionBackward(int64_t B, int64_t Sx, int64_t Sy, int64_t dX,
                                 int64_t dY, int64_t E, const float *x,
                                 const float *y, const float *U, const float *W,
                                 const float *V, const float *workspace,
                                 const float *dContext, float *dx, float *dy,
                                 float *dU, float *dW, float *dV) = 0;

  //===--------------------------------------------------------------------===//
  // Losses
  //===--------------------------------------------------------------------===//
  /// Full softmax cross-entropy: logits [T,V], targets [T] (-1 = padding,
  /// ignored). lossSum[0] = sum of -log p(target) over non-padding tokens;
  /// dLogits (written) = (softmax - onehot) * dLossSum for non-padding rows,
  /// zero for padding rows. numTokens (host) = count of non-padding rows.
  /// dLogits may be null (forward only, for evaluation): then only lossSum
  /// and numTokens are computed, with the same values as with dLogits.
  virtual void softmaxCrossEntropy(int64_t T, int64_t V, const float *logits,
                                   const int32_t *targets, float dLossSum,
                                   float *lossSum, float *dLogits,
                                   int64_t *numTokens) = 0;
  /// Sampled softmax (importance sampling, Jean et al. / Jozefowicz et al.):
  /// S classes are drawn from the log-uniform (Zipf) distribution over
  /// [0, V) with Philox(seed, counter), shared by all tokens; logits are
  /// computed for the target and the samples only, corrected by -log Q.
  /// hidden [T,d], weights [V,d], bias [V]. Writes lossSum[0], dHidden [T,d]
  /// and accumulates dWeights/dBias rows of the touched classes. dHidden,
  /// dWeights and dBias may all be null (loss only, for evaluation; the same
  /// lossSum as with gradients); some null and others not is an error
  /// when T > 0.
  virtual void sampledSoftmaxCrossEntropy(
      int64_t T, int64_t d, int64_t V, int64_t S, const float *hidden,
      const float *weights, const float *bias, const int32_t *targets,
      uint64_t seed, uint64_t counter, float dLossSum, float *lossSum,
      float *dHidden, float *dWeights, float *dBias) = 0;

  //===--------------------------------------------------------------------===//
  // Optimizer
  //===--------------------------------------------------------------------===//
  /// One Adam step at 1-based `step` with learning rate `lr`:
  /// m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
  /// p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p).
  virtual void adamUpdate(int64_t count, float *param, const float *grad,
                          float *m, float *v, float lr, int64_t step,
                          const AdamConfig &config) = 0;
};

/// The CPU backend (OpenBLAS cblas + std::thread). numThreads = 0 picks the
/// hardware concurrency.
std::unique_ptr<Backend> createCpuBackend(int numThreads = 0);

/// True when this build of the runtime includes the CUDA backend.
bool cudaBackendCompiled();
/// The CUDA backend on `device`; throws std::runtime_error when CUDA is not
/// compiled in or no device is present.
std::unique_ptr<Backend> createCudaBackend(int device = 0);
/// Number of CUDA devices visible (0 when CUDA is not compiled in).
int cudaDeviceCount();

} // namespace moe::rt

#endif // MOE_RUNTIME_BACKEND_H
