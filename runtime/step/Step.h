//===- Step.h - What generated training steps call ------------*- C++ -*-===//
//
// The ABI between the code that `moe-translate --moe-to-cpp/--moe-to-cuda`
// emits and the runtime. A compiled function is
//
//   extern "C" void <name>(moe::rt::step::Context *ctx);
//
// It finds its arguments in ctx->arguments (backend pointers, in the order
// of the MLIR function's arguments), places every tensor at the byte offset
// that moe-plan-buffers chose in ctx->arena, calls one function of this
// header per op, and stores a backend pointer for each result in
// ctx->results. An op that is one kernel calls it directly (the
// MOE_STEP_KERNEL entries of runtime/Kernels.def, with the kernel's
// parameters); the other functions here translate an op into Backend calls:
// they own the scratch memory, the RNG keys and what moves between ranks, so
// the emitted code is a flat list of calls with literal sizes, the same for
// every backend.
//
// Conventions: pointers are backend memory; sizes are element counts; an
// optional operand is nullptr. Randomness is keyed by (ctx->seed, ctx->step,
// the op's rng stream), so a step replays exactly when repeated.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_STEP_STEP_H
#define MOE_RUNTIME_STEP_STEP_H

#include "runtime/Backend.h"

#include <cstdint>
#include <utility>
#include <vector>

namespace moe::rt {
class Collectives;
} // namespace moe::rt

namespace moe::rt::step {

/// Element-wise activations, numbered as the dialect's moe::Activation.
enum class Activation : int32_t { None = 0, Relu = 1, Sigmoid = 2, Tanh = 3 };

/// What one call of a compiled function observed, on the host. Filled only
/// when Context::collectStats is set (it costs small device-to-host copies).
struct Stats {
  /// Sum of -log p(target) and number of non-padding targets over the task
  /// losses (moe.softmax_cross_entropy) of the call: the perplexity.
  double crossEntropySum = 0;
  int64_t crossEntropyTokens = 0;
  /// Tokens routed to each expert, one entry per dispatch plan in program
  /// order (the MoE layers, and both levels of a hierarchical one).
  std::vector<std::vector<int64_t>> expertTokens;
  void clear();
};

/// The assignments of one dispatch plan, on the host: which experts a call
/// routed each token to, with which gate values. Filled only when
/// Context::captureRoutes is set (it copies the assignments to the host).
struct RouteCapture {
  int64_t tokens = 0, experts = 0;
  /// Token-major: token t's assignments are [rowPtr[t], rowPtr[t + 1]).
  std::vector<int32_t> rowPtr;
  std::vector<int32_t> expert;
  /// One per assignment; empty when the plan was built without gates.
  std::vector<float> gate;
};

/// Backend memory that lives for one op call: the i-th request of a call
/// gets block i, grown when too small, so steady-state steps allocate
/// nothing.
class Scratch {
public:
  explicit Scratch(Backend *backend) : backend(backend) {}
  ~Scratch();
  Scratch(const Scratch &) = delete;
  Scratch &operator=(const Scratch &) = delete;
  void *get(size_t bytes);
  template <typename T> T *get(int64_t count) {
    return static_cast<T *>(get(sizeof(T) * static_cast<size_t>(count)));
  }
  /// The next block to hand out, and giving back every block from there on
  /// (scopes nest).
  size_t mark() const { return cursor; }
  void release(size_t mark) { cursor = mark; }

private:
  Backend *backend;
  std::vector<std::pair<void *, size_t>> blocks;
  size_t cursor = 0;
};

/// Backend memory that lives until the end of a call: the tensors whose
/// size is known only when the graph runs (the rows an expert-parallel rank
/// received, its shard of the expert gradients). A bump allocator over
/// chunks; a call that needed several leaves one chunk of their total for
/// the next, so steady-state steps allocate nothing.
class Pool {
public:
  explicit Pool(Backend *backend) : backend(backend) {}
  ~Pool();
  Pool(const Pool &) = delete;
  Pool &operator=(const Pool &) = delete;
  /// Null for 0 bytes.
  void *get(size_t bytes);
  /// Gives back everything (the start of a call).
  void reset();

private:
  struct Chunk {
    void *ptr = nullptr;
    size_t size = 0, used = 0;
  };
  Backend *backend;
  std::vector<Chunk> chunks;
};

/// A tensor of f32 rows whose number is known only when the graph runs.
struct Rows {
  float *data = nullptr;
  int64_t rows = 0;
};

/// An i32 vector of row ids whose size is known only when the graph runs.
struct RowIds {
  int32_t *data = nullptr;
  int64_t rows = 0;
};

/// What sumRowsOverRanks returns: the row ids and up to two value tensors
/// (code generation takes them apart with part<T>(sum, result index)).
struct RowSum {
  RowIds rows;
  Rows values[2];
};
template <typename T> T part(const RowSum &sum, int64_t index);
template <> inline RowIds part<RowIds>(const RowSum &sum, int64_t) {
  return sum.rows;
}
template <> inline Rows part<Rows>(const RowSum &sum, int64_t index) {
  return sum.values[index - 1];
}

/// Everything a compiled function reads and writes besides its arena.
struct Context {
  explicit Context(Backend *backend);
  ~Context();
  Context(const Context &) = delete;
  Context &operator=(const Context &) = delete;

  Backend *backend;
  /// At least the function's moe.arena_bytes of backend memory.
  char *arena = nullptr;
  /// One backend pointer per function argument.
  std::vector<void *> arguments;
  /// Written by the call: one backend pointer per function result.
  std::vector<const void *> results;
  /// RNG key and the 1-based step: gating noise, dropout masks and softmax
  /// samples are drawn from Philox(seed, counterFor(stream)).
  uint64_t seed = 0;
  int64_t step = 1;
  /// Training draws gating noise and dropout masks; evaluation does not.
  bool training = true;
  bool collectStats = false;
  Stats stats;
  /// When set, every dispatch plan of a call appends its assignments to
  /// `routes`, in program order (what moe-run inspect reads); off in
  /// training, where it would cost device-to-host copies.
  bool captureRoutes = false;
  std::vector<RouteCapture> routes;
  /// The ranks of a data-parallel run (runtime/collectives); null: one rank.
  Collectives *collectives = nullptr;
  /// The full softmax copies the logits of these token rows (of the
  /// flattened [tokens, vocab]) to capturedLogits, the i-th at i * vocab:
  /// text generation and beam search.
  std::vector<int64_t> captureRows;
  std::vector<float> capturedLogits;

  /// The Philox counter of rng stream `stream` at this step.
  uint64_t counterFor(int64_t stream) const;
  /// This rank and the number of ranks (0 and 1 without collectives).
  int rank() const;
  int ranks() const;
  /// Where a rank's draws for a tensor of `count` elements per rank start:
  /// the ranks' tensors are the shards, in rank order, of the one tensor a
  /// single rank of the global batch would draw for, so a data-parallel run
  /// draws the same noise and masks. (When rank * count is not a multiple
  /// of Philox's block of 4, each rank takes its own counter instead.)
  struct RngPlace {
    uint64_t counter = 0;
    uint64_t elementOffset = 0;
  };
  RngPlace rngFor(int64_t stream, int64_t count) const;
  /// Forgets per-call state (results, statistics) before a call.
  void beginCall();

  /// The training step runs the full softmax twice, for the loss and for
  /// its gradient, on the same operands. The forward op leaves
  /// softmax - onehot here when it fits (small vocabularies), and the
  /// gradient op takes it instead of recomputing the logits.
  struct SoftmaxCache {
    const void *hidden = nullptr, *targets = nullptr, *weights = nullptr,
               *bias = nullptr;
    uint64_t call = 0;
    float *dLogits = nullptr; ///< [tokens, vocab], for dLossSum = 1
    size_t capacity = 0;
    bool valid = false;
  } softmaxCache;
  /// The non-padding targets the cross-entropy counted in this call, so
  /// that its gradient op does not read the targets to the host again.
  struct TargetCount {
    const void *targets = nullptr;
    int64_t tokens = 0, vocab = 0, count = 0;
    uint64_t call = 0;
    bool valid = false;
  } targetCount;
  /// Counts calls (beginCall), so cached values never outlive their call.
  uint64_t call = 0;

  Scratch scratch;
  Pool pool;
};

/// The signature of every compiled function.
using CompiledFunction = void (*)(Context *);

//===----------------------------------------------------------------------===//
// Memory
//===----------------------------------------------------------------------===//

template <typename T> T *argument(Context *ctx, int64_t index) {
  return static_cast<T *>(ctx->arguments.at(static_cast<size_t>(index)));
}
template <typename T> T *arena(Context *ctx, int64_t byteOffset) {
  return reinterpret_cast<T *>(ctx->arena + byteOffset);
}
void result(Context *ctx, int64_t index, const void *ptr);
/// A splat constant.
void fill(Context *ctx, float *out, int64_t count, float value);

//===----------------------------------------------------------------------===//
// Kernels called directly: moe::rt::step::K(ctx, ...) is ctx->backend->K(...)
// with the same parameters, for every MOE_STEP_KERNEL of runtime/Kernels.def
// (the ops that are one kernel call, operands in the kernel's order).
//===----------------------------------------------------------------------===//

#define MOE_STEP_PARAMS(...) __VA_ARGS__
#define MOE_KERNEL(Ret, Name, Params, Args)
#define MOE_STEP_KERNEL(Ret, Name, Params, Args)                               \
  inline Ret Name(Context *ctx, MOE_STEP_PARAMS Params) {                      \
    return ctx->backend->Name Args;                                            \
  }
#include "runtime/Kernels.def"
#undef MOE_STEP_PARAMS

//===----------------------------------------------------------------------===//
// Algebra and element-wise ops
//===----------------------------------------------------------------------===//

/// out = op(lhs) * op(rhs) for lhs [lhsRows, lhsCols], rhs [rhsRows,
/// rhsCols]: the router's products, F32 unless the op allows TF32.
void matmul(Context *ctx, const float *lhs, const float *rhs, float *out,
            int64_t lhsRows, int64_t lhsCols, int64_t rhsRows, int64_t rhsCols,
            bool transposeLhs, bool transposeRhs, GemmPrecision precision);
void activate(Context *ctx, const float *input, float *out, int64_t count,
              Activation act);
void activateGrad(Context *ctx, const float *output, const float *dOutput,
                  float *dInput, int64_t count, Activation act);
/// Inverted dropout in training (the backward pass is the same call with
/// the same stream), the identity otherwise.
void dropout(Context *ctx, const float *input, float *out, int64_t count,
             float rate, int64_t stream);
/// Sum of scalar loss terms.
template <typename... Terms>
void totalLoss(Context *ctx, float *out, const Terms *...terms);
void totalLossOf(Context *ctx, float *out, const float *const *terms,
                 int64_t count);

//===----------------------------------------------------------------------===//
// Routing
//===----------------------------------------------------------------------===//

/// `noisePosition` (nullable): row noisePosition[a] draws stream row a.
void noisyTopK(Context *ctx, const float *clean, const float *rawNoise,
               const int32_t *noisePosition, int32_t *expert, float *gate,
               float *noisy, float *noiseStd, float *topValues, int64_t tokens,
               int64_t n, int64_t k, float noiseEps, int64_t stream);
/// `rowPtr` (nullable): tokens without assignments take no gradient.
void loadEstimateGrad(Context *ctx, const float *clean, const float *rawNoise,
                      const float *noisy, const float *noiseStd,
                      const float *topValues, const float *dLoad,
                      const int32_t *rowPtr, float *dClean, float *dRawNoise,
                      int64_t tokens, int64_t n, int64_t k);
/// The top-k assignments of `batch` sequences of `time` tokens without the
/// padded ones; the lengths are checked on the host ([1, time]).
void dropPadding(Context *ctx, const int32_t *expert, const float *gate,
                 const int32_t *lengths, int32_t *rowPtr, int32_t *keptExpert,
                 float *keptGate, int64_t batch, int64_t time, int64_t k);
/// `capacity` assignment slots; with `combinedBatch` each expert keeps the
/// top m * ranks tokens of all ranks' batches (data-parallel training).
void batchwiseMask(Context *ctx, const float *logits, float *mask,
                   int32_t *rowPtr, int32_t *expert, float *gate,
                   int64_t tokens, int64_t n, int64_t m, int64_t capacity,
                   bool combinedBatch);
/// The secondary mask of a hierarchical layer over the combined batch:
/// rows [expertOffset[g], expertOffset[g + 1]) are group g's; each expert
/// of group g keeps the top m * ranks rows of group g of all ranks.
void groupedBatchwiseMask(Context *ctx, const float *logits,
                          const int32_t *expertOffset, float *mask,
                          int32_t *rowPtr, int32_t *expert, float *gate,
                          int64_t rows, int64_t n, int64_t groups, int64_t m,
                          int64_t capacity);
/// Eq. 8 per group with the groups' rows from `expertOffset` [groups + 1]
/// (rows past the last group count nothing), forward and backward.
void segmentedThresholdLoss(Context *ctx, const float *logits,
                            const float *batchMask, const float *thresholds,
                            const int32_t *expertOffset, float *loss,
                            int64_t rows, int64_t groups, int64_t n);
void segmentedThresholdLossGrad(Context *ctx, const float *logits,
                                const float *batchMask, const float *thresholds,
                                const float *dLoss, const int32_t *expertOffset,
                                float *dThresholds, int64_t rows,
                                int64_t groups, int64_t n);
/// `capacity`: the slots of expert and gate (the compiled capacity); more
/// assignments passing the thresholds throw std::runtime_error.
void thresholdMask(Context *ctx, const float *logits, const float *thresholds,
                   int32_t *rowPtr, int32_t *expert, float *gate,
                   int64_t tokens, int64_t n, int64_t capacity);
/// moe.fused_route: both gate GEMMs (at `precision`), noisy top-k, load,
/// importance and the dispatch plan of x [tokens, d] over n experts.
void fusedRoute(Context *ctx, const float *input, const float *gateWeights,
                const float *noiseWeights, float *clean, float *rawNoise,
                int32_t *expert, float *gate, float *noisy, float *noiseStd,
                float *topValues, float *load, float *importanceOut,
                int32_t *expertOffset, int32_t *position, int32_t *token,
                int64_t tokens, int64_t d, int64_t n, int64_t k, float noiseEps,
                int64_t stream, GemmPrecision precision);
/// `capacity` as for thresholdMask.
void groupedThresholdMask(Context *ctx, const float *logits,
                          const float *thresholds, const int32_t *expertOffset,
                          int32_t *rowPtr, int32_t *expert, float *gate,
                          int64_t rows, int64_t n, int64_t groups,
                          int64_t capacity);
void groupedLoadEstimateGrad(Context *ctx, const float *clean,
                             const float *rawNoise, const float *noisy,
                             const float *noiseStd, const float *topValues,
                             const int32_t *expertOffset, const float *dLoad,
                             float *dClean, float *dRawNoise, int64_t rows,
                             int64_t n, int64_t groups, int64_t k);

//===----------------------------------------------------------------------===//
// Dispatch, experts, combine
//===----------------------------------------------------------------------===//

/// The plan of `capacity` assignment slots; with rowPtr (tokens + 1) the
/// slots in use are rowPtr[tokens] (threshold masks), otherwise all, with
/// capacity / tokens per token. `gate` (nullable) is read only when the
/// context captures routes.
void dispatchPlan(Context *ctx, const int32_t *expert, const int32_t *rowPtr,
                  const float *gate, int32_t *expertOffset, int32_t *position,
                  int32_t *token, int64_t capacity, int64_t n, int64_t tokens);

//===----------------------------------------------------------------------===//
// Sequence layers
//===----------------------------------------------------------------------===//

void embedding(Context *ctx, const float *table, const int32_t *ids,
               float *out, int64_t tokens, int64_t d, int64_t vocab);
void embeddingGrad(Context *ctx, const int32_t *ids, const float *dOut,
                   float *dTable, int64_t tokens, int64_t d, int64_t vocab);
/// The LSTM's saved state lives in the `savedBytes` after its output (the
/// buffer plan reserves them), so lstmGrad finds it from the output.
void lstm(Context *ctx, const float *input, const float *inputWeights,
          const float *recurrentWeights, const float *bias,
          const float *projection, float *out, int64_t batch, int64_t time,
          int64_t dIn, int64_t hidden, int64_t projected, int64_t savedBytes,
          GemmPrecision precision);
/// The inference-only form of lstm (a decode step): starts from the state
/// (initialHidden [batch, projected], initialCell [batch, hidden]) and
/// writes the state after the last step to finalHidden, finalCell.
void lstmWithState(Context *ctx, const float *input, const float *inputWeights,
                   const float *recurrentWeights, const float *bias,
                   const float *projection, const float *initialHidden,
                   const float *initialCell, float *out, float *finalHidden,
                   float *finalCell, int64_t batch, int64_t time, int64_t dIn,
                   int64_t hidden, int64_t projected, int64_t savedBytes,
                   GemmPrecision precision);
void lstmGrad(Context *ctx, const float *input, const float *inputWeights,
              const float *recurrentWeights, const float *bias,
              const float *projection, const float *output,
              const float *dOutput, float *dInput, float *dInputWeights,
              float *dRecurrentWeights, float *dBias, float *dProjection,
              int64_t batch, int64_t time, int64_t dIn, int64_t hidden,
              int64_t projected, int64_t savedBytes, GemmPrecision precision);
/// `lengths` (nullable) are checked on the host ([1, sourceLen]).
void attention(Context *ctx, const float *source, const float *target,
               const float *sourceWeights, const float *targetWeights,
               const float *scoreWeights, const int32_t *lengths,
               float *context, int64_t batch, int64_t sourceLen,
               int64_t targetLen, int64_t sourceWidth, int64_t targetWidth,
               int64_t scoreWidth, int64_t savedBytes);
void attentionGrad(Context *ctx, const float *source, const float *target,
                   const float *sourceWeights, const float *targetWeights,
                   const float *scoreWeights, const float *context,
                   const float *dContext, float *dSource, float *dTarget,
                   float *dSourceWeights, float *dTargetWeights,
                   float *dScoreWeights, int64_t batch, int64_t sourceLen,
                   int64_t targetLen, int64_t sourceWidth, int64_t targetWidth,
                   int64_t scoreWidth, int64_t savedBytes);

//===----------------------------------------------------------------------===//
// Losses and the optimizer
//===----------------------------------------------------------------------===//

/// count (one int32) = the number of `tokens` targets that are not -1.
void countTargets(Context *ctx, const int32_t *targets, int32_t *count,
                  int64_t tokens);
/// Mean cross-entropy of softmax(hidden W^T + b) over non-padding targets;
/// `samples` > 0 is the sampled softmax (training only).
void softmaxCrossEntropy(Context *ctx, const float *hidden,
                         const int32_t *targets, const float *weights,
                         const float *bias, float *loss, int64_t tokens,
                         int64_t d, int64_t vocab, int64_t samples,
                         int64_t stream, GemmPrecision precision);
void softmaxCrossEntropyGrad(Context *ctx, const float *hidden,
                             const int32_t *targets, const float *weights,
                             const float *bias, const float *dLoss,
                             float *dHidden, float *dWeights, float *dBias,
                             int64_t tokens, int64_t d, int64_t vocab,
                             int64_t samples, int64_t stream,
                             GemmPrecision precision);
/// The sampled softmax's gradient with row-sparse class gradients (the
/// kernel sampledSoftmaxCrossEntropyRows): rows [samples + tokens],
/// dWeightRows [samples + tokens, d], dBiasRows [samples + tokens].
void softmaxCrossEntropyRowGrad(Context *ctx, const float *hidden,
                                const int32_t *targets, const float *weights,
                                const float *bias, const float *dLoss,
                                float *dHidden, int32_t *rows,
                                float *dWeightRows, float *dBiasRows,
                                int64_t tokens, int64_t d, int64_t vocab,
                                int64_t samples, int64_t stream);
/// The same three with the op's `target_count` (one int32, at least this
/// batch's non-padding targets): the sum over this batch's targets divided
/// by it, the global batch's count of a data-parallel step. The statistics
/// keep this batch's sum and count.
void softmaxCrossEntropy(Context *ctx, const float *hidden,
                         const int32_t *targets, const float *weights,
                         const float *bias, const int32_t *targetCount,
                         float *loss, int64_t tokens, int64_t d, int64_t vocab,
                         int64_t samples, int64_t stream,
                         GemmPrecision precision);
void softmaxCrossEntropyGrad(Context *ctx, const float *hidden,
                             const int32_t *targets, const float *weights,
                             const float *bias, const float *dLoss,
                             const int32_t *targetCount, float *dHidden,
                             float *dWeights, float *dBias, int64_t tokens,
                             int64_t d, int64_t vocab, int64_t samples,
                             int64_t stream, GemmPrecision precision);
void softmaxCrossEntropyRowGrad(Context *ctx, const float *hidden,
                                const int32_t *targets, const float *weights,
                                const float *bias, const float *dLoss,
                                const int32_t *targetCount, float *dHidden,
                                int32_t *rows, float *dWeightRows,
                                float *dBiasRows, int64_t tokens, int64_t d,
                                int64_t vocab, int64_t samples, int64_t stream);

//===----------------------------------------------------------------------===//
// Collectives (graphs partitioned by moe-partition)
//===----------------------------------------------------------------------===//

/// out = the sum (or the average) of `in` over the ranks, the same bits on
/// every rank; a copy on one rank.
void allReduce(Context *ctx, const float *in, float *out, int64_t count,
               bool average);
/// Integer sums (a hierarchical layer's group offsets); no average.
void allReduce(Context *ctx, const int32_t *in, int32_t *out, int64_t count,
               bool average);
/// out = in / number of ranks.
void divideByRanks(Context *ctx, const float *in, float *out, int64_t count);
/// moe.sum_rows_over_ranks: gathers every rank's rows [n] (distinct ids in
/// [0, vocab), then -1) and values0 [n, width0] (and values1 [n, width1]
/// unless null), and returns the R n rows every rank gets: the distinct ids
/// of all ranks ascending, then -1, with each id's values summed over the
/// ranks in rank order (rowGradient of the gathered rows).
RowSum sumRowsOverRanks(Context *ctx, const int32_t *rows, const float *values0,
                        const float *values1, int64_t n, int64_t width0,
                        int64_t width1, int64_t vocab);
/// adamUpdateRows of param [vocab, d] on the rows of sumRowsOverRanks.
void adamUpdateSummedRows(Context *ctx, int64_t d, float *param, RowIds rows,
                          Rows values, float *m, float *v, const float *lr,
                          const int64_t *step, float beta1, float beta2,
                          float eps, float weightDecay);

//===----------------------------------------------------------------------===//
// Expert parallelism (moe-partition{expert-parallel})
//===----------------------------------------------------------------------===//
//
// Rank r of R holds experts [r n / R, (r + 1) n / R) (a #moe.shard tensor
// is that slice of its first dimension). Counts and offsets are backend
// int32 arrays like the dispatch plan's.

/// The elements of this rank's shard of a tensor of `globalCount`; fails
/// unless the ranks divide it.
int64_t shardCount(Context *ctx, int64_t globalCount);
/// Pool memory for this rank's shard of a tensor of `globalCount` elements.
template <typename T> T *poolShard(Context *ctx, int64_t globalCount) {
  return static_cast<T *>(ctx->pool.get(
      sizeof(T) * static_cast<size_t>(shardCount(ctx, globalCount))));
}
/// recvCounts [n]: the [R, n / R] rows every rank sends to each expert of
/// this one; recvOffset [n + 1]: the received buffer's segments by global
/// expert (empty for other ranks' experts). `expertOffset` [n + 1] is this
/// rank's dispatch plan.
void exchangeCounts(Context *ctx, const int32_t *expertOffset,
                    int32_t *recvCounts, int32_t *recvOffset, int64_t n);
/// Sends each expert's segment of `buffer` [rows, d] to the expert's rank;
/// returns the received rows, expert-major and by source rank inside an
/// expert (as one rank of the global batch orders them).
Rows exchangeToExperts(Context *ctx, const float *buffer,
                       const int32_t *expertOffset, const int32_t *recvCounts,
                       int64_t rows, int64_t n, int64_t d);
/// The inverse: every row of `expertRows` back to the rank and buffer row
/// it came from; out [rows, d] is laid out like the dispatch buffer.
void exchangeToTokens(Context *ctx, Rows expertRows,
                      const int32_t *expertOffset, const int32_t *recvCounts,
                      float *out, int64_t rows, int64_t n, int64_t d);
/// groupedMatmul over received rows with this rank's shard of the weights
/// (`recvOffset` [n + 1] by global expert).
Rows groupedMatmulRows(Context *ctx, Rows buffer, const float *weights,
                       const int32_t *recvOffset, int64_t n, int64_t dIn,
                       int64_t dOut, GemmPrecision precision);
/// Its backward pass: returns d_buffer; dWeights is this rank's shard.
Rows groupedMatmulGradRows(Context *ctx, Rows buffer, const float *weights,
                           const int32_t *recvOffset, Rows dOut,
                           float *dWeights, int64_t n, int64_t dIn,
                           int64_t dOutWidth, GemmPrecision precision);
Rows activateRows(Context *ctx, Rows input, int64_t width, Activation act);
Rows activateGradRows(Context *ctx, Rows output, Rows dOutput, int64_t width,
                      Activation act);

//===----------------------------------------------------------------------===//
// Templates
//===----------------------------------------------------------------------===//

template <typename... Terms>
void totalLoss(Context *ctx, float *out, const Terms *...terms) {
  const float *list[] = {terms...};
  totalLossOf(ctx, out, list, static_cast<int64_t>(sizeof...(terms)));
}

} // namespace moe::rt::step

#endif // MOE_RUNTIME_STEP_STEP_H
