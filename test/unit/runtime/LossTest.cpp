//===- LossTest.cpp - Full and sampled softmax cross-entropy --------------===//
//
// The backend (f32) is compared with plain loops written here; gradients
// are checked in double against central differences of the kernel's own
// loss, so the forward and backward must agree.
//
//===----------------------------------------------------------------------===//

#include "runtime/Backend.h"
#include "runtime/Philox.h"
#include "runtime/cpu/kernels/LossKernels.h"

#include "runtime/TestUtil.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

using namespace moe;
using moe::test::expectAllClose;
using moe::test::numericGradient;
using moe::test::randomVector;

namespace {

/// Targets in [0, V) with every `padEvery`-th row set to -1 (0: none).
std::vector<int32_t> randomTargets(int64_t rows, int64_t V, uint32_t seed,
                                   int64_t padEvery = 0) {
  std::vector<int32_t> t(rows);
  auto u = randomVector<double>(rows, seed, 0, 1);
  for (int64_t i = 0; i < rows; ++i)
    t[i] = padEvery && i % padEvery == padEvery - 1
               ? -1
               : std::min<int32_t>(V - 1, static_cast<int32_t>(u[i] * V));
  return t;
}

/// The sampler written from its definition: floor(exp(u log(V+1))) - 1.
int64_t referenceSample(uint64_t seed, uint64_t counter, int64_t s, int64_t V) {
  double u = rt::philoxUniformAt(seed, counter, s);
  int64_t c = static_cast<int64_t>(std::floor(std::exp(u * std::log(V + 1.0))));
  return std::min(c - 1, V - 1);
}

double referenceQ(int64_t c, int64_t V) {
  return std::log((c + 2.0) / (c + 1.0)) / std::log(V + 1.0);
}

/// The gradients of dLoss[0] = 2 are exactly twice those of 1, some of
/// which are non-zero, and a null dLoss counts as 1.
void expectLinearInDLoss(const std::vector<float> &once,
                         const std::vector<float> &twice,
                         const std::vector<float> &null) {
  ASSERT_EQ(twice.size(), once.size());
  bool nonZero = false;
  for (size_t i = 0; i < once.size(); ++i) {
    EXPECT_EQ(twice[i], 2.0f * once[i]) << i;
    nonZero |= once[i] != 0.0f;
  }
  EXPECT_TRUE(nonZero);
  EXPECT_EQ(null, once);
}

} // namespace

//===----------------------------------------------------------------------===//
// Full softmax cross-entropy
//===----------------------------------------------------------------------===//

TEST(SoftmaxCrossEntropy, MatchesNaiveWithPadding) {
  auto be = rt::createCpuBackend();
  struct Shape {
    int64_t rows, V, padEvery;
  };
  for (Shape s : {Shape{1, 1, 0}, Shape{1, 5, 0}, Shape{7, 13, 3},
                  Shape{40, 1001, 4}, Shape{3, 2, 1}}) {
    auto logits = randomVector(s.rows * s.V, 1, -3, 3);
    auto targets = randomTargets(s.rows, s.V, 2, s.padEvery);
    const float dLoss = 0.75f;
    std::vector<double> dRef(s.rows * s.V, 0.0);
    double lossRef = 0;
    int64_t countRef = 0;
    for (int64_t t = 0; t < s.rows; ++t) {
      if (targets[t] < 0)
        continue;
      ++countRef;
      double sum = 0;
      for (int64_t c = 0; c < s.V; ++c)
        sum += std::exp(double(logits[t * s.V + c]));
      lossRef += std::log(sum) - logits[t * s.V + targets[t]];
      for (int64_t c = 0; c < s.V; ++c)
        dRef[t * s.V + c] =
            dLoss *
            (std::exp(double(logits[t * s.V + c])) / sum - (c == targets[t]));
    }
    float loss = -1;
    int64_t count = -1;
    std::vector<float> dLogits(s.rows * s.V, 123.0f);
    // The factor is dLoss[0] * dLossScale: 1.5 in memory times 0.5.
    const float dLossInMemory = 1.5f;
    be->softmaxCrossEntropy(s.rows, s.V, logits.data(), targets.data(),
                            &dLossInMemory, dLoss / dLossInMemory, &loss,
                            dLogits.data(), &count);
    EXPECT_EQ(count, countRef);
    EXPECT_NEAR(loss, lossRef, 1e-5 * (1 + std::fabs(lossRef)));
    expectAllClose(dLogits, dRef, 1e-5, 1e-7, "dLogits");
  }
}

TEST(SoftmaxCrossEntropy, LargeLogitsStayFinite) {
  auto be = rt::createCpuBackend();
  std::vector<float> logits = {1000.0f, 0.0f, -1000.0f, 999.0f};
  std::vector<int32_t> targets = {3};
  float loss;
  std::vector<float> d(4);
  int64_t count;
  be->softmaxCrossEntropy(1, 4, logits.data(), targets.data(), nullptr, 1.0f,
                          &loss, d.data(), &count);
  EXPECT_NEAR(loss, std::log1p(std::exp(-1.0)) + 1.0, 1e-5);
  for (float g : d)
    EXPECT_TRUE(std::isfinite(g));
}

TEST(SoftmaxCrossEntropy, GradientCheck) {
  const int64_t rows = 4, V = 6;
  auto logits = randomVector<double>(rows * V, 3, -2, 2);
  std::vector<int32_t> targets = {2, -1, 0, 5};
  const double dLoss = 1.3;
  auto loss = [&](const std::vector<double> &z) {
    double l;
    rt::cpu::softmaxCrossEntropy<double>(rows, V, z.data(), targets.data(), 1,
                                         &l, nullptr, nullptr);
    return dLoss * l;
  };
  double l;
  std::vector<double> d(rows * V);
  rt::cpu::softmaxCrossEntropy<double>(rows, V, logits.data(), targets.data(),
                                       dLoss, &l, d.data(), nullptr);
  expectAllClose(d, numericGradient(loss, logits), 1e-6, 1e-8, "dLogits");
  for (int64_t c = 0; c < V; ++c)
    EXPECT_EQ(d[V + c], 0.0) << "padding row";
}

TEST(SoftmaxCrossEntropy, ForwardOnlyGivesTheSameLossAndTokens) {
  auto be = rt::createCpuBackend();
  struct Shape {
    int64_t rows, V, padEvery;
  };
  for (Shape s : {Shape{0, 3, 0}, Shape{1, 1, 0}, Shape{7, 13, 3},
                  Shape{40, 1001, 4}, Shape{3, 2, 1}}) {
    auto logits = randomVector(s.rows * s.V, 20, -3, 3);
    auto targets = randomTargets(s.rows, s.V, 21, s.padEvery);
    float loss = -1, lossOnly = -2;
    int64_t count = -1, countOnly = -2;
    std::vector<float> dLogits(s.rows * s.V);
    be->softmaxCrossEntropy(s.rows, s.V, logits.data(), targets.data(), nullptr,
                            0.5f, &loss, dLogits.data(), &count);
    be->softmaxCrossEntropy(s.rows, s.V, logits.data(), targets.data(), nullptr,
                            0.5f, &lossOnly, nullptr, &countOnly);
    EXPECT_EQ(lossOnly, loss) << s.rows << "x" << s.V;
    EXPECT_EQ(countOnly, count) << s.rows << "x" << s.V;
    // And the loss is the real one, not a leftover.
    double lossRef = 0;
    int64_t countRef = 0;
    for (int64_t t = 0; t < s.rows; ++t) {
      if (targets[t] < 0)
        continue;
      ++countRef;
      double sum = 0;
      for (int64_t c = 0; c < s.V; ++c)
        sum += std::exp(double(logits[t * s.V + c]));
      lossRef += std::log(sum) - logits[t * s.V + targets[t]];
    }
    EXPECT_EQ(countOnly, countRef);
    EXPECT_NEAR(lossOnly, lossRef, 1e-5 * (1 + std::fabs(lossRef)));
  }
}

TEST(SoftmaxCrossEntropy, RejectsBadTargets) {
  auto be = rt::createCpuBackend();
  std::vector<float> logits(6), d(6);
  std::vector<int32_t> targets = {0, 3};
  float loss;
  int64_t count;
  EXPECT_THROW(be->softmaxCrossEntropy(2, 3, logits.data(), targets.data(),
                                       nullptr, 1, &loss, d.data(), &count),
               std::invalid_argument);
  targets[1] = -2;
  EXPECT_THROW(be->softmaxCrossEntropy(2, 3, logits.data(), targets.data(),
                                       nullptr, 1, &loss, d.data(), &count),
               std::invalid_argument);
}

TEST(SoftmaxCrossEntropy, GradientFactorIsReadFromMemory) {
  // dLogits scale with dLoss[0] * dLossScale: dLoss[0] = 2 gives exactly
  // twice the gradient of dLoss[0] = 1 (a power of two scales without
  // rounding), a null dLoss counts as 1, and the loss and token count do
  // not depend on the factor.
  auto be = rt::createCpuBackend();
  const int64_t rows = 9, V = 17;
  auto logits = randomVector(rows * V, 30, -3, 3);
  auto targets = randomTargets(rows, V, 31, 4);
  auto run = [&](const float *dLoss, float scale, float &loss, int64_t &count) {
    std::vector<float> d(rows * V, 123.0f);
    be->softmaxCrossEntropy(rows, V, logits.data(), targets.data(), dLoss,
                            scale, &loss, d.data(), &count);
    return d;
  };
  for (float scale : {1.0f, 0.3f}) {
    SCOPED_TRACE(scale);
    float *dLoss = static_cast<float *>(be->alloc(sizeof(float)));
    float one = 1.0f, two = 2.0f, loss1, loss2, lossNull;
    int64_t count1, count2, countNull;
    be->copyFromHost(dLoss, &one, sizeof(float));
    auto d1 = run(dLoss, scale, loss1, count1);
    be->copyFromHost(dLoss, &two, sizeof(float));
    auto d2 = run(dLoss, scale, loss2, count2);
    auto dNull = run(nullptr, scale, lossNull, countNull);
    be->release(dLoss);
    expectLinearInDLoss(d1, d2, dNull);
    EXPECT_EQ(loss2, loss1);
    EXPECT_EQ(lossNull, loss1);
    EXPECT_EQ(count2, count1);
    EXPECT_EQ(countNull, count1);
  }
}

//===----------------------------------------------------------------------===//
// Log-uniform sampler
//===----------------------------------------------------------------------===//

TEST(LogUniformSampler, FrequenciesFollowZipf) {
  const int64_t V = 20, draws = 200000;
  std::vector<int64_t> hist(V, 0);
  for (int64_t i = 0; i < draws; ++i) {
    int64_t c = rt::philoxLogUniformAt(8, 1, i, V);
    ASSERT_GE(c, 0);
    ASSERT_LT(c, V);
    ASSERT_EQ(c, referenceSample(8, 1, i, V));
    ++hist[c];
  }
  double totalQ = 0;
  for (int64_t c = 0; c < V; ++c) {
    double q = referenceQ(c, V);
    totalQ += q;
    // Five standard errors of a binomial proportion.
    double tol = 5 * std::sqrt(q * (1 - q) / draws);
    EXPECT_NEAR(double(hist[c]) / draws, q, tol) << c;
  }
  EXPECT_NEAR(totalQ, 1.0, 1e-12);
  for (int64_t i = 0; i < 100; ++i)
    EXPECT_EQ(rt::philoxLogUniformAt(8, 1, i, 1), 0);
}

//===----------------------------------------------------------------------===//
// Sampled softmax
//===----------------------------------------------------------------------===//

namespace {

struct SampledCase {
  int64_t rows, d, V, S;
  uint64_t seed, counter;
};

/// Plain evaluation of the sampled loss, its gradients and the
/// accumulation into dWeights/dBias.
void referenceSampled(const SampledCase &c, const std::vector<float> &hidden,
                      const std::vector<float> &W, const std::vector<float> &b,
                      const std::vector<int32_t> &targets, double dLoss,
                      double &loss, std::vector<double> &dHidden,
                      std::vector<double> &dW, std::vector<double> &dB) {
  std::vector<int64_t> cls(c.S);
  for (int64_t s = 0; s < c.S; ++s)
    cls[s] = referenceSample(c.seed, c.counter, s, c.V);
  auto logit = [&](int64_t t, int64_t k) {
    double z = b[k] - std::log(c.S * referenceQ(k, c.V));
    for (int64_t j = 0; j < c.d; ++j)
      z += double(hidden[t * c.d + j]) * W[k * c.d + j];
    return z;
  };
  loss = 0;
  dHidden.assign(c.rows * c.d, 0.0);
  for (int64_t t = 0; t < c.rows; ++t) {
    int64_t tgt = targets[t];
    if (tgt < 0)
      continue;
    // Candidate list: the target, then the samples that are not the target.
    std::vector<int64_t> cand = {tgt};
    for (int64_t k : cls)
      if (k != tgt)
        cand.push_back(k);
    std::vector<double> z(cand.size());
    double mx = -1e300, sum = 0;
    for (size_t j = 0; j < cand.size(); ++j)
      mx = std::max(mx, z[j] = logit(t, cand[j]));
    for (double v : z)
      sum += std::exp(v - mx);
    loss += std::log(sum) + mx - z[0];
    for (size_t j = 0; j < cand.size(); ++j) {
      double g = dLoss * (std::exp(z[j] - mx) / sum - (j == 0));
      for (int64_t i = 0; i < c.d; ++i) {
        dHidden[t * c.d + i] += g * W[cand[j] * c.d + i];
        dW[cand[j] * c.d + i] += g * hidden[t * c.d + i];
      }
      dB[cand[j]] += g;
    }
  }
}

} // namespace

TEST(SampledSoftmax, MatchesNaiveReference) {
  auto be = rt::createCpuBackend();
  // Small V makes accidental hits and repeated samples certain; one token;
  // d not a multiple of the scatter's column block; padding rows.
  for (SampledCase c :
       {SampledCase{1, 3, 4, 3, 1, 0}, SampledCase{9, 5, 7, 6, 2, 3},
        SampledCase{33, 70, 500, 40, 3, 9}}) {
    auto hidden = randomVector(c.rows * c.d, 4);
    auto W = randomVector(c.V * c.d, 5);
    auto b = randomVector(c.V, 6);
    auto targets = randomTargets(c.rows, c.V, 7, c.rows > 1 ? 4 : 0);
    // Accumulation: start the weight gradients from non-zero values.
    auto dW = randomVector(c.V * c.d, 8);
    auto dB = randomVector(c.V, 9);
    std::vector<double> dWRef(dW.begin(), dW.end()),
        dBRef(dB.begin(), dB.end());
    double lossRef;
    std::vector<double> dHRef;
    referenceSampled(c, hidden, W, b, targets, 0.5, lossRef, dHRef, dWRef,
                     dBRef);
    float loss;
    std::vector<float> dH(c.rows * c.d, 42.0f);
    // The factor is dLoss[0] * dLossScale = 2 * 0.25.
    const float dLoss = 2.0f;
    be->sampledSoftmaxCrossEntropy(c.rows, c.d, c.V, c.S, hidden.data(),
                                   W.data(), b.data(), targets.data(), c.seed,
                                   c.counter, &dLoss, 0.25f, &loss, dH.data(),
                                   dW.data(), dB.data());
    EXPECT_NEAR(loss, lossRef, 1e-5 * (1 + std::fabs(lossRef)));
    expectAllClose(dH, dHRef, 1e-4, 1e-6, "dHidden");
    expectAllClose(dW, dWRef, 1e-4, 1e-6, "dWeights");
    expectAllClose(dB, dBRef, 1e-4, 1e-6, "dBias");
  }
}

TEST(SampledSoftmax, GradientFactorIsReadFromMemory) {
  // As for the full softmax: dLoss[0] = 2 gives exactly twice the gradients
  // (accumulated into zeroed dWeights/dBias) of dLoss[0] = 1, a null dLoss
  // counts as 1, and the loss does not depend on the factor.
  auto be = rt::createCpuBackend();
  const SampledCase c{9, 5, 7, 6, 2, 3};
  auto hidden = randomVector(c.rows * c.d, 32);
  auto W = randomVector(c.V * c.d, 33);
  auto b = randomVector(c.V, 34);
  auto targets = randomTargets(c.rows, c.V, 35, 4);
  auto run = [&](const float *dLoss, float scale, float &loss) {
    std::vector<float> dH(c.rows * c.d, 42.0f), dW(c.V * c.d, 0.0f),
        dB(c.V, 0.0f);
    be->sampledSoftmaxCrossEntropy(c.rows, c.d, c.V, c.S, hidden.data(),
                                   W.data(), b.data(), targets.data(), c.seed,
                                   c.counter, dLoss, scale, &loss, dH.data(),
                                   dW.data(), dB.data());
    dH.insert(dH.end(), dW.begin(), dW.end());
    dH.insert(dH.end(), dB.begin(), dB.end());
    return dH;
  };
  float one = 1.0f, two = 2.0f, loss1, loss2, lossNull;
  auto g1 = run(&one, 0.7f, loss1);
  auto g2 = run(&two, 0.7f, loss2);
  auto gNull = run(nullptr, 0.7f, lossNull);
  expectLinearInDLoss(g1, g2, gNull);
  EXPECT_EQ(loss2, loss1);
  EXPECT_EQ(lossNull, loss1);
}

TEST(SampledSoftmax, GradientCheck) {
  // V = 6 with S = 5 gives accidental hits for some rows.
  const SampledCase c{4, 3, 6, 5, 11, 2};
  auto hidden = randomVector<double>(c.rows * c.d, 10);
  auto W = randomVector<double>(c.V * c.d, 11);
  auto b = randomVector<double>(c.V, 12);
  std::vector<int32_t> targets = {0, 3, -1, 1};
  const double dLoss = 0.8;
  auto run = [&](const std::vector<double> &h, const std::vector<double> &w,
                 const std::vector<double> &bb, std::vector<double> &dH,
                 std::vector<double> &dW, std::vector<double> &dB) {
    double loss;
    dH.assign(c.rows * c.d, 0);
    dW.assign(c.V * c.d, 0);
    dB.assign(c.V, 0);
    rt::cpu::sampledSoftmaxCrossEntropy<double>(
        c.rows, c.d, c.V, c.S, h.data(), w.data(), bb.data(), targets.data(),
        c.seed, c.counter, dLoss, &loss, dH.data(), dW.data(), dB.data());
    return dLoss * loss;
  };
  std::vector<double> dH, dW, dB, s1, s2, s3;
  run(hidden, W, b, dH, dW, dB);
  auto lossH = [&](const std::vector<double> &h) {
    return run(h, W, b, s1, s2, s3);
  };
  auto lossW = [&](const std::vector<double> &w) {
    return run(hidden, w, b, s1, s2, s3);
  };
  auto lossB = [&](const std::vector<double> &bb) {
    return run(hidden, W, bb, s1, s2, s3);
  };
  expectAllClose(dH, numericGradient(lossH, hidden), 1e-6, 1e-8, "dHidden");
  expectAllClose(dW, numericGradient(lossW, W), 1e-6, 1e-8, "dWeights");
  expectAllClose(dB, numericGradient(lossB, b), 1e-6, 1e-8, "dBias");
  for (int64_t j = 0; j < c.d; ++j)
    EXPECT_EQ(dH[2 * c.d + j], 0.0) << "padding row";
  // The case must exercise accidental-hit removal.
  bool hit = false;
  for (int64_t s = 0; s < c.S; ++s)
    for (int32_t t : targets)
      hit |= rt::philoxLogUniformAt(c.seed, c.counter, s, c.V) == t;
  EXPECT_TRUE(hit);
}

TEST(SampledSoftmax, DeterministicAcrossRunsAndThreadCounts) {
  const SampledCase c{300, 130, 2000, 64, 5, 6};
  auto hidden = randomVector(c.rows * c.d, 13);
  auto W = randomVector(c.V * c.d, 14);
  auto b = randomVector(c.V, 15);
  auto targets = randomTargets(c.rows, c.V, 16, 7);
  auto run = [&](int threads) {
    int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    float loss;
    std::vector<float> dH(c.rows * c.d), dW(c.V * c.d, 0.0f), dB(c.V, 0.0f);
    rt::cpu::sampledSoftmaxCrossEntropy<float>(
        c.rows, c.d, c.V, c.S, hidden.data(), W.data(), b.data(),
        targets.data(), c.seed, c.counter, 1.0f, &loss, dH.data(), dW.data(),
        dB.data());
    omp_set_num_threads(saved);
    dH.push_back(loss);
    dH.insert(dH.end(), dW.begin(), dW.end());
    dH.insert(dH.end(), dB.begin(), dB.end());
    return dH;
  };
  auto first = run(2);
  EXPECT_EQ(first, run(2));
  EXPECT_EQ(first, run(1));
  EXPECT_EQ(first, run(3));
}

TEST(SampledSoftmax, LossOnlyGivesTheSameLoss) {
  auto be = rt::createCpuBackend();
  for (SampledCase c :
       {SampledCase{0, 3, 4, 3, 1, 0}, SampledCase{1, 3, 4, 3, 1, 0},
        SampledCase{9, 5, 7, 6, 2, 3}, SampledCase{33, 70, 500, 40, 3, 9}}) {
    auto hidden = randomVector(c.rows * c.d, 22);
    auto W = randomVector(c.V * c.d, 23);
    auto b = randomVector(c.V, 24);
    auto targets = randomTargets(c.rows, c.V, 25, c.rows > 1 ? 4 : 0);
    std::vector<float> dH(c.rows * c.d), dW(c.V * c.d, 0.0f), dB(c.V, 0.0f);
    float loss = -1, lossOnly = -2;
    be->sampledSoftmaxCrossEntropy(c.rows, c.d, c.V, c.S, hidden.data(),
                                   W.data(), b.data(), targets.data(), c.seed,
                                   c.counter, nullptr, 0.5f, &loss, dH.data(),
                                   dW.data(), dB.data());
    be->sampledSoftmaxCrossEntropy(c.rows, c.d, c.V, c.S, hidden.data(),
                                   W.data(), b.data(), targets.data(), c.seed,
                                   c.counter, nullptr, 0.5f, &lossOnly, nullptr,
                                   nullptr, nullptr);
    EXPECT_EQ(lossOnly, loss) << c.rows;
    double lossRef;
    std::vector<double> dHRef, dWRef(c.V * c.d, 0.0), dBRef(c.V, 0.0);
    referenceSampled(c, hidden, W, b, targets, 0.5, lossRef, dHRef, dWRef,
                     dBRef);
    EXPECT_NEAR(lossOnly, lossRef, 1e-5 * (1 + std::fabs(lossRef))) << c.rows;
  }
  // Either all gradients or none.
  std::vector<float> h(4), W(8), b(4), dH(4), dW(8), dB(4);
  std::vector<int32_t> targets = {1, 0};
  float loss;
  EXPECT_THROW(be->sampledSoftmaxCrossEntropy(
                   2, 2, 4, 3, h.data(), W.data(), b.data(), targets.data(), 0,
                   0, nullptr, 1, &loss, dH.data(), nullptr, dB.data()),
               std::invalid_argument);
  EXPECT_THROW(be->sampledSoftmaxCrossEntropy(
                   2, 2, 4, 3, h.data(), W.data(), b.data(), targets.data(), 0,
                   0, nullptr, 1, &loss, nullptr, dW.data(), nullptr),
               std::invalid_argument);
}

TEST(SampledSoftmax, RejectsBadArguments) {
  auto be = rt::createCpuBackend();
  std::vector<float> h(4), W(8), b(4), dH(4), dW(8), dB(4);
  std::vector<int32_t> targets = {4, 0};
  float loss;
  EXPECT_THROW(be->sampledSoftmaxCrossEntropy(
                   2, 2, 4, 3, h.data(), W.data(), b.data(), targets.data(), 0,
                   0, nullptr, 1, &loss, dH.data(), dW.data(), dB.data()),
               std::invalid_argument);
  targets[0] = 1;
  EXPECT_THROW(be->sampledSoftmaxCrossEntropy(
                   2, 2, 4, 0, h.data(), W.data(), b.data(), targets.data(), 0,
                   0, nullptr, 1, &loss, dH.data(), dW.data(), dB.data()),
               std::invalid_argument);
}
