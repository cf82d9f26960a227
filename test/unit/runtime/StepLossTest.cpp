//===- StepLossTest.cpp - The cross-entropy of a data-parallel step -------===//
//
// The step ABI's cross-entropy with a target count (moe-partition's
// data-parallel form) against the plain op on the whole batch, on the CPU:
// a batch cut into two shards with different numbers of padding targets,
// each scored with the whole batch's count, must give parts that add up to
// the whole batch's mean and gradients that add up to its gradients (the
// hidden states' rows are each shard's), whatever the padding. Also
// moe.count_targets' count and the refusal of a count below the shard's
// own.
//
//===----------------------------------------------------------------------===//

#include "runtime/Backend.h"
#include "runtime/step/Step.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <stdexcept>
#include <vector>

using namespace moe::rt;

namespace {

constexpr int64_t kTokens = 12, kWidth = 4, kVocab = 7, kShard = 6;

/// The whole batch's targets: shard 0 (rows 0-5) has one padding target,
/// shard 1 (rows 6-11) four, so the shards' means weigh their targets
/// differently from the whole batch's mean.
const std::vector<int32_t> kTargets = {3, 0, -1, 6, 2, 5, -1, 1, -1, -1, 4, -1};

/// A CPU backend, a training step context and the buffers a test
/// allocates.
class Device {
public:
  Device() : backend(createCpuBackend(1)), ctx(backend.get()) {}
  ~Device() {
    for (void *p : buffers)
      backend->release(p);
  }
  template <typename T> T *upload(const T *host, int64_t count) {
    T *ptr = alloc<T>(count);
    backend->copyFromHost(ptr, host, sizeof(T) * count);
    return ptr;
  }
  template <typename T> T *alloc(int64_t count) {
    void *p = backend->alloc(sizeof(T) * std::max<int64_t>(count, 1));
    buffers.push_back(p);
    return static_cast<T *>(p);
  }
  template <typename T> std::vector<T> download(const T *ptr, int64_t count) {
    std::vector<T> host(count);
    backend->copyToHost(host.data(), ptr, sizeof(T) * count);
    return host;
  }

  std::unique_ptr<Backend> backend;
  step::Context ctx;

private:
  std::vector<void *> buffers;
};

/// Loss, statistics and gradients of one call over `tokens` rows.
struct Scored {
  float loss = 0;
  double statsSum = 0;
  int64_t statsTokens = 0;
  std::vector<float> dHidden, dWeights, dBias;
};

std::vector<float> values(int64_t count, double salt) {
  std::vector<float> v(count);
  for (int64_t i = 0; i < count; ++i)
    v[i] = static_cast<float>(std::sin(0.7 + i * 1.3 + salt));
  return v;
}

/// Scores rows [first, first + tokens) of the batch in one call: with
/// `globalCount` >= 0 through the overloads with a target count.
Scored score(int64_t first, int64_t tokens, int64_t globalCount,
             bool collectStats) {
  Device dev;
  std::vector<float> hidden = values(kTokens * kWidth, 0.0);
  std::vector<float> weights = values(kVocab * kWidth, 2.0);
  std::vector<float> bias = values(kVocab, 5.0);
  step::Context *ctx = &dev.ctx;
  ctx->training = true;
  ctx->collectStats = collectStats;
  ctx->beginCall();
  const float *h = dev.upload(hidden.data() + first * kWidth, tokens * kWidth);
  const int32_t *t = dev.upload(kTargets.data() + first, tokens);
  const float *w = dev.upload(weights.data(), kVocab * kWidth);
  const float *b = dev.upload(bias.data(), kVocab);
  float one = 1.0f;
  const float *dLoss = dev.upload(&one, 1);
  float *loss = dev.alloc<float>(1);
  float *dH = dev.alloc<float>(tokens * kWidth);
  float *dW = dev.alloc<float>(kVocab * kWidth);
  float *dB = dev.alloc<float>(kVocab);
  if (globalCount >= 0) {
    auto count = static_cast<int32_t>(globalCount);
    const int32_t *n = dev.upload(&count, 1);
    step::softmaxCrossEntropy(ctx, h, t, w, b, n, loss, tokens, kWidth, kVocab,
                              0, 0, GemmPrecision::F32);
    step::softmaxCrossEntropyGrad(ctx, h, t, w, b, dLoss, n, dH, dW, dB, tokens,
                                  kWidth, kVocab, 0, 0, GemmPrecision::F32);
  } else {
    step::softmaxCrossEntropy(ctx, h, t, w, b, loss, tokens, kWidth, kVocab, 0,
                              0, GemmPrecision::F32);
    step::softmaxCrossEntropyGrad(ctx, h, t, w, b, dLoss, dH, dW, dB, tokens,
                                  kWidth, kVocab, 0, 0, GemmPrecision::F32);
  }
  Scored s;
  s.loss = dev.download(loss, 1)[0];
  s.statsSum = ctx->stats.crossEntropySum;
  s.statsTokens = ctx->stats.crossEntropyTokens;
  s.dHidden = dev.download(dH, tokens * kWidth);
  s.dWeights = dev.download(dW, kVocab * kWidth);
  s.dBias = dev.download(dB, kVocab);
  return s;
}

int32_t countOf(int64_t first, int64_t tokens) {
  Device dev;
  dev.ctx.beginCall();
  const int32_t *t = dev.upload(kTargets.data() + first, tokens);
  int32_t *n = dev.alloc<int32_t>(1);
  step::countTargets(&dev.ctx, t, n, tokens);
  return dev.download(n, 1)[0];
}

void expectNear(const std::vector<float> &a, const std::vector<float> &b,
                const char *what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_NEAR(a[i], b[i], 1e-6 + 1e-5 * std::fabs(b[i]))
        << what << "[" << i << "]";
}

TEST(StepCrossEntropy, CountTargetsSkipsPadding) {
  EXPECT_EQ(countOf(0, kShard), 5);
  EXPECT_EQ(countOf(kShard, kShard), 2);
  EXPECT_EQ(countOf(0, kTokens), 7);
}

TEST(StepCrossEntropy, ShardsWithTheGlobalCountAddUpToTheWholeBatch) {
  int32_t global = countOf(0, kShard) + countOf(kShard, kShard);
  for (bool stats : {true, false}) {
    SCOPED_TRACE(stats ? "with statistics" : "without statistics");
    Scored whole = score(0, kTokens, -1, stats);
    Scored first = score(0, kShard, global, stats);
    Scored second = score(kShard, kShard, global, stats);
    // The shards' own means would be far off: the second shard's two
    // targets would weigh as much as the first's five.
    EXPECT_NEAR(first.loss + second.loss, whole.loss, 1e-5 * whole.loss);
    std::vector<float> dHidden = first.dHidden;
    dHidden.insert(dHidden.end(), second.dHidden.begin(), second.dHidden.end());
    expectNear(dHidden, whole.dHidden, "dHidden");
    std::vector<float> dWeights(first.dWeights.size()),
        dBias(first.dBias.size());
    for (size_t i = 0; i < dWeights.size(); ++i)
      dWeights[i] = first.dWeights[i] + second.dWeights[i];
    for (size_t i = 0; i < dBias.size(); ++i)
      dBias[i] = first.dBias[i] + second.dBias[i];
    expectNear(dWeights, whole.dWeights, "dWeights");
    expectNear(dBias, whole.dBias, "dBias");
    if (stats) {
      // Perplexity: each shard reports its own sum and count.
      EXPECT_EQ(first.statsTokens, 5);
      EXPECT_EQ(second.statsTokens, 2);
      EXPECT_EQ(whole.statsTokens, 7);
      EXPECT_NEAR(first.statsSum + second.statsSum, whole.statsSum,
                  1e-5 * whole.statsSum);
      EXPECT_NEAR(first.statsSum / global, first.loss, 1e-6 * first.statsSum);
    }
  }
}

TEST(StepCrossEntropy, AShardWithoutTargetsAddsNothing) {
  // Rows 8 and 9 are padding: a rank whose batch is all padding (the end
  // of an epoch) scores 0 and has zero gradients.
  Scored none = score(8, 2, 7, /*collectStats=*/true);
  EXPECT_EQ(none.loss, 0.0f);
  EXPECT_EQ(none.statsTokens, 0);
  for (float v : none.dWeights)
    EXPECT_EQ(v, 0.0f);
}

TEST(StepCrossEntropy, RejectsACountBelowTheShards) {
  // The global count includes this shard's 5 targets.
  EXPECT_THROW(score(0, kShard, 4, /*collectStats=*/true), std::runtime_error);
}

} // namespace
