//===- StepLossTest.cpp - The cross-entropy of a data-parallel step -------===//
//
// The step ABI's cross-entropy with a target count (moe-partition's
// data-parallel form) against the plain op on the whole batch, on the CPU
// backend (whose memory is host memory):
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

/// A training step's context on the CPU backend, whose memory is host
/// memory: the tests pass their vectors' pointers.
struct Fixture {
  std::unique_ptr<Backend> backend = createCpuBackend(1);
  std::unique_ptr<step::Context> ctx =
      std::make_unique<step::Context>(backend.get());
  explicit Fixture(bool collectStats) {
    ctx->training = true;
    ctx->collectStats = collectStats;
    ctx->beginCall();
  }
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
  Fixture f(collectStats);
  step::Context *ctx = f.ctx.get();
  std::vector<float> hidden = values(kTokens * kWidth, 0.0);
  std::vector<float> w = values(kVocab * kWidth, 2.0);
  std::vector<float> b = values(kVocab, 5.0);
  const float *h = hidden.data() + first * kWidth;
  const int32_t *t = kTargets.data() + first;
  float dLoss = 1.0f, loss = 0.0f;
  Scored s;
  s.dHidden.resize(tokens * kWidth);
  s.dWeights.resize(kVocab * kWidth);
  s.dBias.resize(kVocab);
  if (globalCount >= 0) {
    auto n = static_cast<int32_t>(globalCount);
    step::softmaxCrossEntropy(ctx, h, t, w.data(), b.data(), &n, &loss, tokens,
                              kWidth, kVocab, 0, 0, GemmPrecision::F32);
    step::softmaxCrossEntropyGrad(ctx, h, t, w.data(), b.data(), &dLoss, &n,
                                  s.dHidden.data(), s.dWeights.data(),
                                  s.dBias.data(), tokens, kWidth, kVocab, 0, 0,
                                  GemmPrecision::F32);
  } else {
    step::softmaxCrossEntropy(ctx, h, t, w.data(), b.data(), &loss, tokens,
                              kWidth, kVocab, 0, 0, GemmPrecision::F32);
    step::softmaxCrossEntropyGrad(ctx, h, t, w.data(), b.data(), &dLoss,
                                  s.dHidden.data(), s.dWeights.data(),
                                  s.dBias.data(), tokens, kWidth, kVocab, 0, 0,
                                  GemmPrecision::F32);
  }
  s.loss = loss;
  s.statsSum = ctx->stats.crossEntropySum;
  s.statsTokens = ctx->stats.crossEntropyTokens;
  return s;
}

int32_t countOf(int64_t first, int64_t tokens) {
  Fixture f(/*collectStats=*/false);
  int32_t n = -1;
  step::countTargets(f.ctx.get(), kTargets.data() + first, &n, tokens);
  return n;
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
