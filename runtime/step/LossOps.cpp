//===- LossOps.cpp - Output layer, cross-entropy and Adam step ops --------===//
//
// The full softmax never holds all [tokens, vocab] logits: it works through
// row blocks of at most kLogitBlockBytes, so a 793K-word vocabulary costs a
// block of scratch, not tokens x vocab floats. The op's loss is the mean
// over non-padding targets; the statistics keep the sum and the count, from
// which the driver computes perplexity over many batches. A data-parallel
// step divides by the global batch's count instead (the overloads with a
// target count), and its statistics keep this rank's own sum and count.
//
//===----------------------------------------------------------------------===//

#include "runtime/step/OpSupport.h"

#include <algorithm>

namespace moe::rt::step {

namespace {

constexpr int64_t kLogitBlockBytes = int64_t(64) << 20;
/// The largest softmax the forward op keeps for its gradient op.
constexpr int64_t kSoftmaxCacheBytes = int64_t(256) << 20;

bool cacheMatches(const Context::SoftmaxCache &cache, const Context *ctx,
                  const float *hidden, const int32_t *targets,
                  const float *weights, const float *bias) {
  return cache.valid && cache.call == ctx->call && cache.hidden == hidden &&
         cache.targets == targets && cache.weights == weights &&
         cache.bias == bias;
}

int64_t rowsPerBlock(int64_t tokens, int64_t vocab) {
  int64_t rows = kLogitBlockBytes / (4 * std::max<int64_t>(vocab, 1));
  return std::clamp<int64_t>(rows, 1, std::max<int64_t>(tokens, 1));
}

int64_t checkedTargetCount(Context *ctx, const int32_t *targets, int64_t tokens,
                           int64_t vocab) {
  // Inputs do not change during a call: the forward op's count (and its
  // check) serves the gradient op.
  Context::TargetCount &cached = ctx->targetCount;
  if (cached.valid && cached.call == ctx->call && cached.targets == targets &&
      cached.tokens == tokens && cached.vocab == vocab)
    return cached.count;
  std::vector<int32_t> host = toHost(ctx, targets, tokens);
  int64_t count = 0;
  for (int64_t t = 0; t < tokens; ++t) {
    if (host[t] == -1)
      continue;
    if (host[t] < 0 || host[t] >= vocab)
      fail("softmax_cross_entropy",
           "target " + std::to_string(host[t]) + " at position " +
               std::to_string(t) + " is outside the vocabulary [0, " +
               std::to_string(vocab) + ") (-1 marks padding)");
    ++count;
  }
  cached = {targets, tokens, vocab, count, ctx->call, true};
  return count;
}

/// logits [rows, vocab] = hidden [rows, d] W^T + b.
void outputLogits(Backend &b, const float *hidden, const float *weights,
                  const float *bias, float *logits, int64_t rows, int64_t d,
                  int64_t vocab, GemmPrecision precision) {
  b.gemm(false, true, rows, vocab, d, 1.0f, hidden, d, weights, d, 0.0f,
         logits, vocab, precision);
  b.biasAdd(rows, vocab, logits, bias, logits);
}

/// Each of `count` targets' share of a mean: the op's loss is the mean over
/// the non-padding targets (0 when there are none).
float perTarget(int64_t count) {
  return count ? static_cast<float>(1.0 / count) : 0.0f;
}

/// What the mean divides by: the global count of a data-parallel step
/// (backend memory, summed over the ranks) or this batch's own `count`.
int64_t meanDivisor(Context *ctx, const int32_t *targetCount, int64_t count) {
  if (!targetCount)
    return count;
  int32_t global = 0;
  ctx->backend->copyToHost(&global, targetCount, sizeof(global));
  if (global < count)
    fail("softmax_cross_entropy",
         "target_count " + std::to_string(global) + " is below this rank's " +
             std::to_string(count) + " non-padding targets");
  return global;
}

void writeScalar(Context *ctx, float *out, double value) {
  float v = static_cast<float>(value);
  ctx->backend->copyFromHost(out, &v, sizeof(v));
}

/// The loss of `count` targets from per-block loss sums: their sum divided
/// by `divisor`. With statistics the sums are read to the host (the driver
/// wants them there); without, they stay in memory and the division is done
/// on the backend.
class MeanLoss {
public:
  MeanLoss(Context *ctx, ScratchScope &scratch, float *loss, int64_t count,
           int64_t divisor)
      : ctx(ctx), loss(loss), count(count), divisor(divisor),
        part(ctx->collectStats ? nullptr : scratch.get<float>(1)) {}

  /// Adds the sum of one block.
  void add(const float *blockSum) {
    Backend &b = *ctx->backend;
    if (ctx->collectStats) {
      float host = 0;
      b.copyToHost(&host, blockSum, sizeof(host));
      sum += host;
      return;
    }
    b.scaleBy(blockSum, nullptr, perTarget(divisor), blocks ? part : loss, 1);
    if (blocks)
      b.accumulate(part, loss, 1);
    ++blocks;
  }

  /// Writes the mean and records the statistics.
  void finish() {
    if (!ctx->collectStats) {
      if (!blocks)
        ctx->backend->fill(loss, 0.0f, 1);
      return;
    }
    ctx->stats.crossEntropySum += sum;
    ctx->stats.crossEntropyTokens += count;
    writeScalar(ctx, loss, divisor ? sum / divisor : 0.0);
  }

private:
  Context *ctx;
  float *loss;
  int64_t count, divisor;
  float *part;
  double sum = 0;
  int64_t blocks = 0;
};

void crossEntropy(Context *ctx, const float *hidden, const int32_t *targets,
                  const float *weights, const float *bias,
                  const int32_t *targetCount, float *loss, int64_t tokens,
                  int64_t d, int64_t vocab, int64_t samples, int64_t stream,
                  GemmPrecision precision) {
  Backend &b = *ctx->backend;
  ScratchScope scratch(ctx);
  int64_t count = checkedTargetCount(ctx, targets, tokens, vocab);
  int64_t divisor = meanDivisor(ctx, targetCount, count);
  float *blockLoss = scratch.get<float>(1);
  if (samples > 0 && ctx->training) {
    b.sampledSoftmaxCrossEntropy(tokens, d, vocab, samples, hidden, weights,
                                 bias, targets, ctx->seed,
                                 ctx->counterFor(stream), nullptr, 0.0f,
                                 blockLoss, nullptr, nullptr, nullptr);
    // A sampled loss is not the model's perplexity: no statistics, and the
    // mean stays on the backend.
    b.scaleBy(blockLoss, nullptr, perTarget(divisor), loss, 1);
    return;
  }
  // In training, keep softmax - onehot for the gradient op when it fits:
  // one block of all rows.
  bool cache = ctx->training && tokens > 0 &&
               tokens * vocab * 4 <= kSoftmaxCacheBytes;
  Context::SoftmaxCache &kept = ctx->softmaxCache;
  if (cache && kept.capacity < static_cast<size_t>(tokens * vocab)) {
    if (kept.dLogits)
      b.release(kept.dLogits);
    kept.capacity = static_cast<size_t>(tokens * vocab);
    kept.dLogits = static_cast<float *>(b.alloc(kept.capacity * 4));
  }
  int64_t block = cache ? tokens : rowsPerBlock(tokens, vocab);
  float *logits = scratch.get<float>(block * vocab);
  MeanLoss mean(ctx, scratch, loss, count, divisor);
  for (int64_t row = 0; row < tokens; row += block) {
    int64_t rows = std::min(block, tokens - row);
    outputLogits(b, hidden + row * d, weights, bias, logits, rows, d, vocab,
                 precision);
    for (size_t i = 0; i < ctx->captureRows.size(); ++i) {
      int64_t at = ctx->captureRows[i];
      if (at < row || at >= row + rows)
        continue;
      ctx->capturedLogits.resize(ctx->captureRows.size() * vocab);
      b.copyToHost(ctx->capturedLogits.data() + i * vocab,
                   logits + (at - row) * vocab, sizeof(float) * vocab);
    }
    b.softmaxCrossEntropy(rows, vocab, logits, targets + row, nullptr, 1.0f,
                          blockLoss, cache ? kept.dLogits : nullptr,
                          /*numTokens=*/nullptr);
    mean.add(blockLoss);
  }
  if (cache) {
    kept.hidden = hidden;
    kept.targets = targets;
    kept.weights = weights;
    kept.bias = bias;
    kept.call = ctx->call;
    kept.valid = true;
  }
  mean.finish();
}

void crossEntropyGrad(Context *ctx, const float *hidden, const int32_t *targets,
                      const float *weights, const float *bias,
                      const float *dLoss, const int32_t *targetCount,
                      float *dHidden, float *dWeights, float *dBias,
                      int64_t tokens, int64_t d, int64_t vocab, int64_t samples,
                      int64_t stream, GemmPrecision precision) {
  Backend &b = *ctx->backend;
  ScratchScope scratch(ctx);
  int64_t count = checkedTargetCount(ctx, targets, tokens, vocab);
  // The op's loss is a mean: each target's share of dLoss, which stays in
  // memory (the kernels scale by dLoss[0] * dLossScale).
  float dLossScale = perTarget(meanDivisor(ctx, targetCount, count));
  float *blockLoss = scratch.get<float>(1);
  if (samples > 0 && ctx->training) {
    // The kernel accumulates the rows of the classes it touched.
    b.fill(dWeights, 0.0f, vocab * d);
    b.fill(dBias, 0.0f, vocab);
    b.sampledSoftmaxCrossEntropy(tokens, d, vocab, samples, hidden, weights,
                                 bias, targets, ctx->seed,
                                 ctx->counterFor(stream), dLoss, dLossScale,
                                 blockLoss, dHidden, dWeights, dBias);
    return;
  }
  Context::SoftmaxCache &kept = ctx->softmaxCache;
  if (cacheMatches(kept, ctx, hidden, targets, weights, bias)) {
    // The forward op's softmax - onehot, for all rows: scale and multiply.
    kept.valid = false;
    b.scaleBy(kept.dLogits, dLoss, dLossScale, kept.dLogits, tokens * vocab);
    b.gemm(false, false, tokens, d, vocab, 1.0f, kept.dLogits, vocab,
           weights, d, 0.0f, dHidden, d, precision);
    b.gemm(true, false, vocab, d, tokens, 1.0f, kept.dLogits, vocab, hidden,
           d, 0.0f, dWeights, d, precision);
    b.sumRows(tokens, vocab, kept.dLogits, dBias);
    return;
  }
  int64_t block = rowsPerBlock(tokens, vocab);
  float *logits = scratch.get<float>(block * vocab);
  float *dLogits = scratch.get<float>(block * vocab);
  float *dBiasPart = scratch.get<float>(vocab);
  for (int64_t row = 0; row < tokens; row += block) {
    int64_t rows = std::min(block, tokens - row);
    bool first = row == 0;
    const float *h = hidden + row * d;
    outputLogits(b, h, weights, bias, logits, rows, d, vocab, precision);
    b.softmaxCrossEntropy(rows, vocab, logits, targets + row, dLoss, dLossScale,
                          blockLoss, dLogits,
                          /*numTokens=*/nullptr);
    // dHidden = dLogits W; dW (+)= dLogits^T h; db (+)= column sums.
    b.gemm(false, false, rows, d, vocab, 1.0f, dLogits, vocab, weights, d,
           0.0f, dHidden + row * d, d, precision);
    b.gemm(true, false, vocab, d, rows, 1.0f, dLogits, vocab, h, d,
           first ? 0.0f : 1.0f, dWeights, d, precision);
    if (first) {
      b.sumRows(rows, vocab, dLogits, dBias);
    } else {
      b.sumRows(rows, vocab, dLogits, dBiasPart);
      b.accumulate(dBiasPart, dBias, vocab);
    }
  }
  if (tokens == 0) {
    b.fill(dWeights, 0.0f, vocab * d);
    b.fill(dBias, 0.0f, vocab);
  }
}

void crossEntropyRowGrad(Context *ctx, const float *hidden,
                         const int32_t *targets, const float *weights,
                         const float *bias, const float *dLoss,
                         const int32_t *targetCount, float *dHidden,
                         int32_t *rows, float *dWeightRows, float *dBiasRows,
                         int64_t tokens, int64_t d, int64_t vocab,
                         int64_t samples, int64_t stream) {
  int64_t count = checkedTargetCount(ctx, targets, tokens, vocab);
  ScratchScope scratch(ctx);
  ctx->backend->sampledSoftmaxCrossEntropyRows(
      tokens, d, vocab, samples, hidden, weights, bias, targets, ctx->seed,
      ctx->counterFor(stream), dLoss,
      perTarget(meanDivisor(ctx, targetCount, count)), scratch.get<float>(1),
      dHidden, rows, dWeightRows, dBiasRows);
}

} // namespace

void countTargets(Context *ctx, const int32_t *targets, int32_t *count,
                  int64_t tokens) {
  std::vector<int32_t> host = toHost(ctx, targets, tokens);
  auto n = static_cast<int32_t>(std::count_if(
      host.begin(), host.end(), [](int32_t t) { return t != -1; }));
  ctx->backend->copyFromHost(count, &n, sizeof(n));
}

void softmaxCrossEntropy(Context *ctx, const float *hidden,
                         const int32_t *targets, const float *weights,
                         const float *bias, float *loss, int64_t tokens,
                         int64_t d, int64_t vocab, int64_t samples,
                         int64_t stream, GemmPrecision precision) {
  crossEntropy(ctx, hidden, targets, weights, bias, nullptr, loss, tokens, d,
               vocab, samples, stream, precision);
}

void softmaxCrossEntropy(Context *ctx, const float *hidden,
                         const int32_t *targets, const float *weights,
                         const float *bias, const int32_t *targetCount,
                         float *loss, int64_t tokens, int64_t d, int64_t vocab,
                         int64_t samples, int64_t stream,
                         GemmPrecision precision) {
  crossEntropy(ctx, hidden, targets, weights, bias, targetCount, loss, tokens,
               d, vocab, samples, stream, precision);
}

void softmaxCrossEntropyGrad(Context *ctx, const float *hidden,
                             const int32_t *targets, const float *weights,
                             const float *bias, const float *dLoss,
                             float *dHidden, float *dWeights, float *dBias,
                             int64_t tokens, int64_t d, int64_t vocab,
                             int64_t samples, int64_t stream,
                             GemmPrecision precision) {
  crossEntropyGrad(ctx, hidden, targets, weights, bias, dLoss, nullptr, dHidden,
                   dWeights, dBias, tokens, d, vocab, samples, stream,
                   precision);
}

void softmaxCrossEntropyGrad(Context *ctx, const float *hidden,
                             const int32_t *targets, const float *weights,
                             const float *bias, const float *dLoss,
                             const int32_t *targetCount, float *dHidden,
                             float *dWeights, float *dBias, int64_t tokens,
                             int64_t d, int64_t vocab, int64_t samples,
                             int64_t stream, GemmPrecision precision) {
  crossEntropyGrad(ctx, hidden, targets, weights, bias, dLoss, targetCount,
                   dHidden, dWeights, dBias, tokens, d, vocab, samples, stream,
                   precision);
}

void softmaxCrossEntropyRowGrad(Context *ctx, const float *hidden,
                                const int32_t *targets, const float *weights,
                                const float *bias, const float *dLoss,
                                float *dHidden, int32_t *rows,
                                float *dWeightRows, float *dBiasRows,
                                int64_t tokens, int64_t d, int64_t vocab,
                                int64_t samples, int64_t stream) {
  crossEntropyRowGrad(ctx, hidden, targets, weights, bias, dLoss, nullptr,
                      dHidden, rows, dWeightRows, dBiasRows, tokens, d, vocab,
                      samples, stream);
}

void softmaxCrossEntropyRowGrad(Context *ctx, const float *hidden,
                                const int32_t *targets, const float *weights,
                                const float *bias, const float *dLoss,
                                const int32_t *targetCount, float *dHidden,
                                int32_t *rows, float *dWeightRows,
                                float *dBiasRows, int64_t tokens, int64_t d,
                                int64_t vocab, int64_t samples,
                                int64_t stream) {
  crossEntropyRowGrad(ctx, hidden, targets, weights, bias, dLoss, targetCount,
                      dHidden, rows, dWeightRows, dBiasRows, tokens, d, vocab,
                      samples, stream);
}

} // namespace moe::rt::step
