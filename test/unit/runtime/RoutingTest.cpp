//===- RoutingTest.cpp - Gating kernels against naive references ----------===//
//
// Forward kernels are compared with straightforward re-implementations of
// their definitions (full sorts, "k-th largest of the other experts", masks
// built column by column from the softmax probabilities); every backward is
// checked in double against central differences of sum(out * w) for random w,
// with inputs drawn away from ties so that the selection is locally constant.
//
//===----------------------------------------------------------------------===//

#include "runtime/Backend.h"
#include "runtime/Philox.h"
#include "runtime/cpu/kernels/RoutingKernels.h"

#include "runtime/TestUtil.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

using namespace moe;
using moe::test::expectAllClose;
using moe::test::numericGradient;
using moe::test::randomVector;

namespace {

constexpr uint64_t kSeed = 0x5eed1234abcdULL;
constexpr uint64_t kCounter = 77;
constexpr double kEps = 1e-2;
constexpr double kInf = std::numeric_limits<double>::infinity();

struct TopKShape {
  int64_t T, n, k;
};

/// Shapes for top-k: one token, k = 1, k = n, k = n - 1, rows that do not
/// start on a Philox block, and k + 1 on both sides of the insertion /
/// partial-sort switch.
const TopKShape kTopKShapes[] = {{1, 1, 1},   {5, 7, 1},    {5, 7, 7},
                                 {4, 9, 8},   {33, 64, 4},  {17, 30, 23},
                                 {4, 25, 24}, {9, 100, 40}, {3, 50, 50}};

double dot(const std::vector<double> &a, const std::vector<double> &b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i)
    s += a[i] * b[i];
  return s;
}

double softplusRef(double x) { return std::log(1.0 + std::exp(x)); }
double phiRef(double u) { return 0.5 * (1.0 + std::erf(u / std::sqrt(2.0))); }

/// Indices of `row` sorted by descending value, ties by lower index.
std::vector<int32_t> sortedOrder(const double *row, int64_t n) {
  std::vector<int32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return row[a] > row[b]; });
  return order;
}

/// The reference H = clean + z * (softplus(raw) + eps).
std::vector<double> referenceNoisy(int64_t T, int64_t n,
                                   const std::vector<double> &clean,
                                   const std::vector<double> &raw) {
  std::vector<double> h(T * n);
  for (int64_t idx = 0; idx < T * n; ++idx)
    h[idx] = clean[idx] + double(rt::philoxNormalAt(kSeed, kCounter, idx)) *
                              (softplusRef(raw[idx]) + kEps);
  return h;
}

/// Smallest gap between two values of the same row: the finite-difference
/// checks need it well above the step.
double minRowGap(int64_t T, int64_t n, const std::vector<double> &h) {
  double gap = kInf;
  for (int64_t t = 0; t < T; ++t) {
    std::vector<double> row(h.begin() + t * n, h.begin() + (t + 1) * n);
    std::sort(row.begin(), row.end());
    for (int64_t i = 1; i < n; ++i)
      gap = std::min(gap, row[i] - row[i - 1]);
  }
  return gap;
}

/// All outputs of one noisy top-k forward call in double.
struct TopKOutputs {
  std::vector<double> noisy, std, top, gate;
  std::vector<int32_t> expert;
};

TopKOutputs runTopK(const TopKShape &s, const std::vector<double> &clean,
                    const double *raw, bool training) {
  TopKOutputs o;
  o.noisy.resize(s.T * s.n);
  o.std.resize(s.T * s.n);
  o.top.resize(s.T * (s.k + 1));
  o.gate.resize(s.T * s.k);
  o.expert.resize(s.T * s.k);
  rt::cpu::noisyTopKForward<double>(s.T, s.n, s.k, clean.data(), raw, kEps,
                                    training, kSeed, kCounter, o.noisy.data(),
                                    o.std.data(), o.top.data(), o.expert.data(),
                                    o.gate.data());
  return o;
}

//===----------------------------------------------------------------------===//
// Noisy top-k gating
//===----------------------------------------------------------------------===//

TEST(NoisyTopK, NoiseIsThePhiloxNormalStream) {
  // n = 7: rows start in the middle of Philox blocks.
  int64_t T = 5, n = 7, k = 2;
  auto clean = randomVector<float>(T * n, 1);
  auto raw = randomVector<float>(T * n, 2, -2.0, 2.0);
  std::vector<float> noisy(T * n), std(T * n), top(T * (k + 1)), gate(T * k);
  std::vector<int32_t> expert(T * k);
  rt::cpu::noisyTopKForward<float>(
      T, n, k, clean.data(), raw.data(), 0.01f, true, kSeed, kCounter,
      noisy.data(), std.data(), top.data(), expert.data(), gate.data());
  for (int64_t idx = 0; idx < T * n; ++idx) {
    float expectedStd = float(softplusRef(raw[idx])) + 0.01f;
    EXPECT_NEAR(std[idx], expectedStd, 1e-6f) << idx;
    // Same float arithmetic as philoxNormalAt: bit-identical.
    float expected =
        clean[idx] + rt::philoxNormalAt(kSeed, kCounter, idx) * std[idx];
    EXPECT_EQ(noisy[idx], expected) << idx;
  }
}

TEST(NoisyTopK, ShardsDrawTheirPartOfTheWholeBatchsNoise) {
  // Two shards of 3 tokens (elementOffset = 3 * 4) draw what one batch of 6
  // draws for the same rows: a data-parallel run replays one rank's noise.
  int64_t T = 6, n = 4, k = 2, half = 3;
  auto clean = randomVector<float>(T * n, 3);
  auto raw = randomVector<float>(T * n, 4, -2.0, 2.0);
  auto run = [&](int64_t rows, int64_t first, uint64_t offset) {
    std::vector<float> noisy(rows * n), std(rows * n), top(rows * (k + 1)),
        gate(rows * k);
    std::vector<int32_t> expert(rows * k);
    rt::cpu::noisyTopKForward<float>(
        rows, n, k, clean.data() + first * n, raw.data() + first * n, 0.01f,
        true, kSeed, kCounter, noisy.data(), std.data(), top.data(),
        expert.data(), gate.data(), offset);
    return noisy;
  };
  std::vector<float> whole = run(T, 0, 0);
  std::vector<float> second = run(half, half, half * n);
  for (int64_t i = 0; i < half * n; ++i)
    EXPECT_EQ(second[i], whole[half * n + i]) << i;
  // Without the offset the second shard would repeat the first's noise.
  std::vector<float> unshifted = run(half, half, 0);
  bool differs = false;
  for (int64_t i = 0; i < half * n; ++i)
    differs |= unshifted[i] != whole[half * n + i];
  EXPECT_TRUE(differs);
  EXPECT_THROW(run(half, half, 6), std::invalid_argument); // not a block
}

TEST(NoisyTopK, NoisePositionDrawsAPermutedRowsStream) {
  // Row position[a] takes stream row a's noise: the result is the plain
  // kernel's on the rows in stream order, scattered back (the secondary
  // level of a hierarchical layer, whose rows are group-major).
  int64_t T = 5, n = 7, k = 2;
  std::vector<int32_t> position = {3, 0, 4, 1, 2};
  auto clean = randomVector<float>(T * n, 5);
  auto raw = randomVector<float>(T * n, 6, -2.0, 2.0);
  std::vector<float> streamClean(T * n), streamRaw(T * n);
  for (int64_t a = 0; a < T; ++a)
    for (int64_t i = 0; i < n; ++i) {
      streamClean[a * n + i] = clean[position[a] * n + i];
      streamRaw[a * n + i] = raw[position[a] * n + i];
    }
  auto run = [&](const std::vector<float> &c, const std::vector<float> &r,
                 const int32_t *pos) {
    TopKOutputs o;
    std::vector<float> noisy(T * n), std(T * n), top(T * (k + 1)), gate(T * k);
    o.expert.resize(T * k);
    rt::cpu::noisyTopKForward<float>(T, n, k, c.data(), r.data(), 0.01f, true,
                                     kSeed, kCounter, noisy.data(), std.data(),
                                     top.data(), o.expert.data(), gate.data(),
                                     /*elementOffset=*/8, pos);
    o.noisy.assign(noisy.begin(), noisy.end());
    o.top.assign(top.begin(), top.end());
    o.gate.assign(gate.begin(), gate.end());
    return o;
  };
  TopKOutputs plain = run(streamClean, streamRaw, nullptr);
  TopKOutputs permuted = run(clean, raw, position.data());
  for (int64_t a = 0; a < T; ++a) {
    int64_t t = position[a];
    for (int64_t i = 0; i < n; ++i)
      EXPECT_EQ(permuted.noisy[t * n + i], plain.noisy[a * n + i]) << a;
    for (int64_t j = 0; j < k; ++j) {
      EXPECT_EQ(permuted.expert[t * k + j], plain.expert[a * k + j]) << a;
      EXPECT_EQ(permuted.gate[t * k + j], plain.gate[a * k + j]) << a;
    }
    for (int64_t j = 0; j <= k; ++j)
      EXPECT_EQ(permuted.top[t * (k + 1) + j], plain.top[a * (k + 1) + j]);
  }
}

TEST(NoisyTopK, MatchesSortedReference) {
  for (const TopKShape &s : kTopKShapes) {
    for (int mode = 0; mode < 3; ++mode) {
      // 0: training with noise, 1: evaluation (no noise), 2: no noise net.
      bool training = mode == 0;
      SCOPED_TRACE(testing::Message() << "T=" << s.T << " n=" << s.n
                                      << " k=" << s.k << " mode=" << mode);
      auto clean = randomVector<double>(s.T * s.n, 3, -2.0, 2.0);
      auto raw = randomVector<double>(s.T * s.n, 4);
      TopKOutputs o =
          runTopK(s, clean, mode == 2 ? nullptr : raw.data(), training);
      std::vector<double> h =
          training ? referenceNoisy(s.T, s.n, clean, raw) : clean;
      expectAllClose(o.noisy, h, 1e-14, 1e-14, "noisy");
      for (int64_t t = 0; t < s.T; ++t) {
        // Sorting the kernel's own H (just checked) keeps the comparison
        // exact: the reference softplus may differ in the last bit.
        const double *row = &o.noisy[t * s.n];
        std::vector<int32_t> order = sortedOrder(row, s.n);
        for (int64_t j = 0; j <= s.k; ++j) {
          double expected = j < s.n ? row[order[j]] : -kInf;
          EXPECT_EQ(o.top[t * (s.k + 1) + j], expected) << t << "," << j;
        }
        double sum = 0;
        for (int64_t j = 0; j < s.k; ++j)
          sum += std::exp(row[order[j]]);
        for (int64_t j = 0; j < s.k; ++j) {
          EXPECT_EQ(o.expert[t * s.k + j], order[j]) << t << "," << j;
          EXPECT_NEAR(o.gate[t * s.k + j], std::exp(row[order[j]]) / sum,
                      1e-14);
        }
        for (int64_t i = 0; i < s.n; ++i) {
          double expectedStd =
              mode == 2 ? 0.0 : softplusRef(raw[t * s.n + i]) + kEps;
          EXPECT_NEAR(o.std[t * s.n + i], expectedStd, 1e-14);
        }
      }
    }
  }
}

TEST(NoisyTopK, TiesGoToTheLowerIndex) {
  // Insertion selection (k + 1 <= 24): three experts tie at 3.
  std::vector<double> clean = {1, 3, 3, 2, 3, 1};
  EXPECT_EQ(runTopK({1, 6, 2}, clean, nullptr, false).expert,
            (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(runTopK({1, 6, 4}, clean, nullptr, false).expert,
            (std::vector<int32_t>{1, 2, 4, 3}));
  // Partial-sort selection: an all-zero row keeps experts 0..k-1.
  int64_t n = 40, k = 30;
  TopKOutputs o =
      runTopK({1, n, k}, std::vector<double>(n, 0.0), nullptr, false);
  std::vector<int32_t> expected(k);
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(o.expert, expected);
  for (int64_t j = 0; j < k; ++j)
    EXPECT_DOUBLE_EQ(o.gate[j], 1.0 / k);
}

TEST(NoisyTopK, GradientMatchesFiniteDifferences) {
  const TopKShape shapes[] = {
      {4, 6, 2}, {3, 5, 1}, {2, 4, 4}, {3, 9, 8}, {2, 33, 26}};
  for (const TopKShape &s : shapes) {
    for (bool withNoise : {true, false}) {
      SCOPED_TRACE(testing::Message() << "T=" << s.T << " n=" << s.n << " k="
                                      << s.k << " noise=" << withNoise);
      int64_t size = s.T * s.n;
      auto clean = randomVector<double>(size, 5, -2.0, 2.0);
      auto raw = randomVector<double>(size, 6);
      auto w = randomVector<double>(s.T * s.k, 7);
      ASSERT_GT(
          minRowGap(s.T, s.n,
                    withNoise ? referenceNoisy(s.T, s.n, clean, raw) : clean),
          1e-4);
      auto loss = [&](const std::vector<double> &x) {
        std::vector<double> c(x.begin(), x.begin() + size);
        std::vector<double> r(x.begin() + size, x.end());
        return dot(runTopK(s, c, withNoise ? r.data() : nullptr, true).gate, w);
      };
      std::vector<double> x = clean;
      x.insert(x.end(), raw.begin(), raw.end());
      std::vector<double> numeric = numericGradient(loss, x);

      TopKOutputs o = runTopK(s, clean, withNoise ? raw.data() : nullptr, true);
      std::vector<double> dClean(size, 123.0), dRaw(size, 123.0);
      rt::cpu::noisyTopKBackward<double>(
          s.T, s.n, s.k, o.noisy.data(), clean.data(),
          withNoise ? raw.data() : nullptr, o.std.data(), o.expert.data(),
          o.gate.data(), w.data(), dClean.data(),
          withNoise ? dRaw.data() : nullptr);
      expectAllClose(
          dClean, std::vector<double>(numeric.begin(), numeric.begin() + size),
          1e-6, 1e-8, "dClean");
      if (withNoise)
        expectAllClose(
            dRaw, std::vector<double>(numeric.begin() + size, numeric.end()),
            1e-6, 1e-8, "dRawNoise");
      else
        EXPECT_EQ(dRaw, std::vector<double>(size, 123.0));
    }
  }
}

//===----------------------------------------------------------------------===//
// Load estimator
//===----------------------------------------------------------------------===//

/// load[i] by the definition: P = Phi((clean - thr) / s) with thr the k-th
/// largest noisy value among the other experts (-inf if there are fewer
/// than k); an indicator when s = 0.
std::vector<double> referenceLoad(int64_t T, int64_t n, int64_t k,
                                  const std::vector<double> &clean,
                                  const std::vector<double> &noisy,
                                  const std::vector<double> &std) {
  std::vector<double> load(n, 0.0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < n; ++i) {
      std::vector<double> others;
      for (int64_t j = 0; j < n; ++j)
        if (j != i)
          others.push_back(noisy[t * n + j]);
      std::sort(others.rbegin(), others.rend());
      double thr = k <= int64_t(others.size()) ? others[k - 1] : -kInf;
      double s = std[t * n + i];
      load[i] += s > 0 ? phiRef((clean[t * n + i] - thr) / s)
                       : (noisy[t * n + i] > thr ? 1.0 : 0.0);
    }
  return load;
}

/// Probabilities in [0, 1) on a grid of `levels` values: many ties.
std::vector<float> gridProbabilities(int64_t count, int levels, uint64_t seed) {
  std::vector<float> p = randomVector<float>(count, seed, 0, 1);
  for (float &v : p)
    v = std::floor(v * levels) / levels;
  return p;
}

// The kernels of the combined batch's ranking (step/CombinedBatchMask.cpp),
// run as one rank runs them, keep each group column's top m rows, ties to
// the lower row: a group with fewer rows keeps them all, an empty one
// nothing, rows outside the groups nothing.
TEST(CombinedRanking, BisectionKernelsKeepTheTopMOfEachGroupColumn) {
  const int64_t rows = 80, n = 5, groups = 3, m = 4, columns = groups * n;
  const std::vector<int32_t> offsets = {0, 30, 30, 70};
  for (int levels : {4, 1000}) {
    SCOPED_TRACE(testing::Message() << levels << " levels");
    std::vector<float> probs = gridProbabilities(rows * n, levels, 90);
    std::vector<int64_t> lo(columns, 0), hi(columns, 0x3f800001),
        counts(columns);
    for (int round = 0; round < 31; ++round) {
      rt::cpu::countAtLeastMidpoint(rows, n, groups, offsets.data(),
                                    probs.data(), lo.data(), hi.data(),
                                    counts.data());
      rt::cpu::narrowBisection(columns, m, counts.data(), lo.data(), hi.data());
    }
    std::vector<int64_t> bound(lo), above(columns), atLeast(columns),
        take(columns);
    for (int64_t &b : bound)
      ++b;
    rt::cpu::countAtLeastMidpoint(rows, n, groups, offsets.data(), probs.data(),
                                  bound.data(), bound.data(), above.data());
    rt::cpu::countAtLeastMidpoint(rows, n, groups, offsets.data(), probs.data(),
                                  lo.data(), lo.data(), atLeast.data());
    for (int64_t c = 0; c < columns; ++c)
      take[c] = std::clamp<int64_t>(m - above[c], 0, atLeast[c] - above[c]);
    std::vector<float> mask(rows * n, 42.0f);
    rt::cpu::selectAboveThreshold(rows, n, groups, offsets.data(), probs.data(),
                                  lo.data(), take.data(), mask.data());

    std::vector<float> expected(rows * n, 0.0f);
    for (int64_t g = 0; g < groups; ++g)
      for (int64_t j = 0; j < n; ++j) {
        std::vector<int64_t> order;
        for (int64_t r = offsets[g]; r < offsets[g + 1]; ++r)
          order.push_back(r);
        std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
          return probs[a * n + j] > probs[b * n + j];
        });
        for (size_t i = 0; i < order.size() && i < size_t(m); ++i)
          expected[order[i] * n + j] = 1.0f;
      }
    EXPECT_EQ(mask, expected);
  }
  // The counts see only the group's rows.
  std::vector<int64_t> zero(columns, 0), counts(columns);
  std::vector<float> probs(rows * n, 0.5f);
  rt::cpu::countAtLeastMidpoint(rows, n, groups, offsets.data(), probs.data(),
                                zero.data(), zero.data(), counts.data());
  EXPECT_EQ(counts[0], 30);
  EXPECT_EQ(counts[n], 0);
  EXPECT_EQ(counts[2 * n], 40);
  EXPECT_THROW(rt::cpu::countAtLeastMidpoint(60, n, groups, offsets.data(),
                                             probs.data(), zero.data(),
                                             zero.data(), counts.data()),
               std::invalid_argument);
}

TEST(LoadEstimate, MatchesDefinition) {
  // {600, 5, 2} spans three blocks of the deterministic column sums.
  const TopKShape shapes[] = {{6, 7, 2}, {1, 5, 1},   {4, 6, 6},
                              {5, 9, 8}, {600, 5, 2}, {3, 40, 30}};
  for (const TopKShape &s : shapes) {
    for (bool withNoise : {true, false}) {
      SCOPED_TRACE(testing::Message() << "T=" << s.T << " n=" << s.n << " k="
                                      << s.k << " noise=" << withNoise);
      auto clean = randomVector<double>(s.T * s.n, 8, -2.0, 2.0);
      auto raw = randomVector<double>(s.T * s.n, 9);
      TopKOutputs o = runTopK(s, clean, withNoise ? raw.data() : nullptr, true);
      std::vector<double> load(s.n);
      rt::cpu::loadEstimateForward<double>(s.T, s.n, s.k, clean.data(),
                                           o.noisy.data(), o.std.data(),
                                           o.top.data(), nullptr, load.data());
      expectAllClose(load, referenceLoad(s.T, s.n, s.k, clean, o.noisy, o.std),
                     1e-12, 1e-12, "load");
      if (s.k == s.n)
        expectAllClose(load, std::vector<double>(s.n, double(s.T)), 0, 0,
                       "load with k == n");
    }
  }
}

TEST(LoadEstimate, GradientMatchesFiniteDifferences) {
  const TopKShape shapes[] = {
      {4, 6, 2}, {3, 5, 1}, {3, 5, 4}, {2, 4, 4}, {2, 30, 25}};
  for (const TopKShape &s : shapes) {
    SCOPED_TRACE(testing::Message()
                 << "T=" << s.T << " n=" << s.n << " k=" << s.k);
    int64_t size = s.T * s.n;
    auto clean = randomVector<double>(size, 10, -2.0, 2.0);
    auto raw = randomVector<double>(size, 11);
    auto w = randomVector<double>(s.n, 12);
    ASSERT_GT(minRowGap(s.T, s.n, referenceNoisy(s.T, s.n, clean, raw)), 1e-4);
    // The forward is rerun from scratch, so the thresholds move with the
    // perturbed entries: the check covers the gradient through them.
    auto loss = [&](const std::vector<double> &x) {
      std::vector<double> c(x.begin(), x.begin() + size);
      std::vector<double> r(x.begin() + size, x.end());
      TopKOutputs o = runTopK(s, c, r.data(), true);
      std::vector<double> load(s.n);
      rt::cpu::loadEstimateForward<double>(s.T, s.n, s.k, c.data(),
                                           o.noisy.data(), o.std.data(),
                                           o.top.data(), nullptr, load.data());
      return dot(load, w);
    };
    std::vector<double> x = clean;
    x.insert(x.end(), raw.begin(), raw.end());
    std::vector<double> numeric = numericGradient(loss, x);

    TopKOutputs o = runTopK(s, clean, raw.data(), true);
    // Start from non-zero gradients: the backward accumulates.
    auto dClean = randomVector<double>(size, 13);
    auto dRaw = randomVector<double>(size, 14);
    std::vector<double> expectedClean = dClean, expectedRaw = dRaw;
    for (int64_t i = 0; i < size; ++i) {
      expectedClean[i] += numeric[i];
      expectedRaw[i] += numeric[size + i];
    }
    rt::cpu::loadEstimateBackward<double>(
        s.T, s.n, s.k, clean.data(), o.noisy.data(), raw.data(), o.std.data(),
        o.top.data(), nullptr, w.data(), dClean.data(), dRaw.data());
    expectAllClose(dClean, expectedClean, 1e-6, 1e-8, "dClean");
    expectAllClose(dRaw, expectedRaw, 1e-6, 1e-8, "dRawNoise");
  }
}

// With row pointers, tokens without assignments (padding) count in neither
// the load nor its gradient: the result equals the estimate over the valid
// tokens alone.
TEST(LoadEstimate, LeavesOutTokensWithoutAssignments) {
  TopKShape s{6, 5, 2};
  int64_t size = s.T * s.n;
  auto clean = randomVector<double>(size, 20, -2.0, 2.0);
  auto raw = randomVector<double>(size, 21);
  auto w = randomVector<double>(s.n, 22);
  TopKOutputs o = runTopK(s, clean, raw.data(), true);
  // Tokens 1, 2 and 5 are padding.
  std::vector<int32_t> rowPtr = {0, 2, 2, 2, 4, 6, 6};
  const std::vector<int64_t> valid = {0, 3, 4};
  std::vector<double> load(s.n);
  rt::cpu::loadEstimateForward<double>(
      s.T, s.n, s.k, clean.data(), o.noisy.data(), o.std.data(), o.top.data(),
      rowPtr.data(), load.data());
  auto rowsOf = [&](const std::vector<double> &v, int64_t width) {
    std::vector<double> out;
    for (int64_t t : valid)
      out.insert(out.end(), v.begin() + t * width, v.begin() + (t + 1) * width);
    return out;
  };
  int64_t rows = static_cast<int64_t>(valid.size());
  expectAllClose(load,
                 referenceLoad(rows, s.n, s.k, rowsOf(clean, s.n),
                               rowsOf(o.noisy, s.n), rowsOf(o.std, s.n)),
                 1e-12, 1e-12, "load over the valid tokens");

  std::vector<double> dClean(size, 0.0), dRaw(size, 0.0);
  rt::cpu::loadEstimateBackward<double>(
      s.T, s.n, s.k, clean.data(), o.noisy.data(), raw.data(), o.std.data(),
      o.top.data(), rowPtr.data(), w.data(), dClean.data(), dRaw.data());
  std::vector<double> dCleanValid(rows * s.n, 0.0), dRawValid(rows * s.n, 0.0);
  std::vector<double> cv = rowsOf(clean, s.n), rv = rowsOf(raw, s.n);
  rt::cpu::loadEstimateBackward<double>(
      rows, s.n, s.k, cv.data(), rowsOf(o.noisy, s.n).data(), rv.data(),
      rowsOf(o.std, s.n).data(), rowsOf(o.top, s.k + 1).data(), nullptr,
      w.data(), dCleanValid.data(), dRawValid.data());
  expectAllClose(rowsOf(dClean, s.n), dCleanValid, 0, 0, "dClean (valid)");
  expectAllClose(rowsOf(dRaw, s.n), dRawValid, 0, 0, "dRawNoise (valid)");
  for (int64_t t : {1, 2, 5})
    for (int64_t i = 0; i < s.n; ++i) {
      EXPECT_EQ(dClean[t * s.n + i], 0.0) << "padded token " << t;
      EXPECT_EQ(dRaw[t * s.n + i], 0.0) << "padded token " << t;
    }
}

//===----------------------------------------------------------------------===//
// Padding
//===----------------------------------------------------------------------===//

TEST(DropPadding, KeepsTheValidTokensInOrder) {
  // 2 sequences of 3 tokens, k = 2; lengths 2 and 3.
  const int64_t B = 2, time = 3, k = 2, T = B * time;
  std::vector<int32_t> lengths = {2, 3};
  std::vector<int32_t> expert = {1, 0, 2, 3, 9, 9, 0, 2, 3, 1, 2, 0};
  std::vector<double> gate = {.6, .4, .7, .3, .5, .5, .8, .2, .9, .1, .55, .45};
  std::vector<int32_t> rowPtr(T + 1, -7), kept(T * k, -7);
  std::vector<double> keptGate(T * k, -7.0);
  rt::cpu::dropPaddingForward<double>(B, time, k, lengths.data(), expert.data(),
                                      gate.data(), rowPtr.data(), kept.data(),
                                      keptGate.data());
  EXPECT_EQ(rowPtr, (std::vector<int32_t>{0, 2, 4, 4, 6, 8, 10}));
  EXPECT_EQ(kept, (std::vector<int32_t>{1, 0, 2, 3, 0, 2, 3, 1, 2, 0, 0, 0}));
  EXPECT_EQ(keptGate, (std::vector<double>{.6, .4, .7, .3, .8, .2, .9, .1, .55,
                                           .45, 0, 0}));

  // Backward: the kept gates' gradient back to their slots, 0 for token 2.
  std::vector<double> dKept = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  std::vector<double> dGate(T * k, -7.0);
  rt::cpu::dropPaddingBackward<double>(T, k, rowPtr.data(), dKept.data(),
                                       dGate.data());
  EXPECT_EQ(dGate, (std::vector<double>{1, 2, 3, 4, 0, 0, 5, 6, 7, 8, 9, 10}));
}

TEST(DropPadding, FullLengthsKeepEverything) {
  const int64_t B = 3, time = 4, k = 3, T = B * time;
  std::vector<int32_t> lengths(B, time), expert(T * k);
  for (int64_t i = 0; i < T * k; ++i)
    expert[i] = static_cast<int32_t>(i % 5);
  auto gate = randomVector<float>(T * k, 23, 0.0, 1.0);
  std::vector<int32_t> rowPtr(T + 1), kept(T * k);
  std::vector<float> keptGate(T * k);
  rt::cpu::dropPaddingForward<float>(B, time, k, lengths.data(), expert.data(),
                                     gate.data(), rowPtr.data(), kept.data(),
                                     keptGate.data());
  for (int64_t t = 0; t <= T; ++t)
    EXPECT_EQ(rowPtr[t], t * k);
  EXPECT_EQ(kept, expert);
  EXPECT_EQ(keptGate, gate);
  EXPECT_THROW(rt::cpu::dropPaddingForward<float>(
                   B, time, 0, lengths.data(), expert.data(), gate.data(),
                   rowPtr.data(), kept.data(), keptGate.data()),
               std::invalid_argument);
}

TEST(LoadEstimate, BackwardNeedsRawNoise) {
  std::vector<double> v(4, 0.0), top(3, 0.0), d(2, 0.0);
  EXPECT_THROW(rt::cpu::loadEstimateBackward<double>(
                   2, 2, 1, v.data(), v.data(), nullptr, v.data(), top.data(),
                   nullptr, d.data(), v.data(), v.data()),
               std::invalid_argument);
}

TEST(Routing, ResultsDoNotDependOnTheThreadCount) {
  // Large enough for the parallel paths and several column-sum blocks.
  int64_t T = 700, n = 64, k = 4;
  auto clean = randomVector<float>(T * n, 15, -2.0, 2.0);
  auto raw = randomVector<float>(T * n, 16);
  auto dLoad = randomVector<float>(n, 17);
  auto run = [&](int threads) {
    int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    std::vector<float> noisy(T * n), std(T * n), top(T * (k + 1)), gate(T * k),
        load(n), dClean(T * n, 0.0f), dRaw(T * n, 0.0f);
    std::vector<int32_t> expert(T * k);
    rt::cpu::noisyTopKForward<float>(
        T, n, k, clean.data(), raw.data(), 0.01f, true, kSeed, kCounter,
        noisy.data(), std.data(), top.data(), expert.data(), gate.data());
    rt::cpu::loadEstimateForward<float>(T, n, k, clean.data(), noisy.data(),
                                        std.data(), top.data(), nullptr,
                                        load.data());
    rt::cpu::loadEstimateBackward<float>(
        T, n, k, clean.data(), noisy.data(), raw.data(), std.data(), top.data(),
        nullptr, dLoad.data(), dClean.data(), dRaw.data());
    omp_set_num_threads(saved);
    std::vector<float> all = noisy;
    for (const auto *v : {&std, &top, &gate, &load, &dClean, &dRaw})
      all.insert(all.end(), v->begin(), v->end());
    for (int32_t e : expert)
      all.push_back(float(e));
    return all;
  };
  std::vector<float> first = run(1), again = run(1), parallel = run(3);
  ASSERT_EQ(first.size(), parallel.size());
  EXPECT_EQ(std::memcmp(first.data(), again.data(), 4 * first.size()), 0);
  EXPECT_EQ(std::memcmp(first.data(), parallel.data(), 4 * first.size()), 0);
}

TEST(Routing, RejectsBadArguments) {
  std::vector<double> v(64, 0.0);
  std::vector<int32_t> idx(64, 0);
  for (int64_t k : {0, 5})
    EXPECT_THROW(rt::cpu::noisyTopKForward<double>(
                     2, 4, k, v.data(), nullptr, 0.0, false, 0, 0, v.data(),
                     v.data(), v.data(), idx.data(), v.data()),
                 std::invalid_argument);
  EXPECT_THROW(rt::cpu::loadEstimateForward<double>(2, 4, 5, v.data(), v.data(),
                                                    v.data(), v.data(), nullptr,
                                                    v.data()),
               std::invalid_argument);
  EXPECT_THROW(rt::cpu::batchwiseMaskForward<double>(3, 2, 4, v.data(),
                                                     v.data(), idx.data(),
                                                     idx.data(), v.data()),
               std::invalid_argument);
  EXPECT_THROW(rt::cpu::softmaxForward<double>(2, 0, v.data(), v.data()),
               std::invalid_argument);
  EXPECT_THROW(rt::cpu::cvSquaredForward<double>(0, v.data(), 1.0, v.data()),
               std::invalid_argument);
  EXPECT_THROW(rt::cpu::l2BalanceForward<double>(0, 4, v.data(), 1.0, v.data()),
               std::invalid_argument);
  std::vector<int32_t> badExpert = {7};
  EXPECT_THROW(rt::cpu::importanceForward<double>(1, 4, badExpert.data(),
                                                  v.data(), v.data()),
               std::invalid_argument);
}

//===----------------------------------------------------------------------===//
// Dense softmax gating
//===----------------------------------------------------------------------===//

TEST(Softmax, ForwardMatchesReference) {
  for (auto [T, n] : {std::pair<int64_t, int64_t>{1, 1}, {3, 5}, {40, 513}}) {
    auto logits = randomVector<double>(T * n, 18, -30.0, 30.0);
    std::vector<double> probs(T * n), expected(T * n);
    rt::cpu::softmaxForward<double>(T, n, logits.data(), probs.data());
    for (int64_t t = 0; t < T; ++t) {
      double maxValue = -kInf, sum = 0;
      for (int64_t i = 0; i < n; ++i)
        maxValue = std::max(maxValue, logits[t * n + i]);
      for (int64_t i = 0; i < n; ++i)
        sum += std::exp(logits[t * n + i] - maxValue);
      for (int64_t i = 0; i < n; ++i)
        expected[t * n + i] = std::exp(logits[t * n + i] - maxValue) / sum;
    }
    expectAllClose(probs, expected, 1e-13, 1e-300, "probs");
  }
}

TEST(Softmax, GradientMatchesFiniteDifferences) {
  int64_t T = 3, n = 6;
  auto logits = randomVector<double>(T * n, 19, -2.0, 2.0);
  auto w = randomVector<double>(T * n, 20);
  auto loss = [&](const std::vector<double> &x) {
    std::vector<double> p(T * n);
    rt::cpu::softmaxForward<double>(T, n, x.data(), p.data());
    return dot(p, w);
  };
  std::vector<double> p(T * n), dLogits(T * n);
  rt::cpu::softmaxForward<double>(T, n, logits.data(), p.data());
  rt::cpu::softmaxBackward<double>(T, n, p.data(), w.data(), dLogits.data());
  expectAllClose(dLogits, numericGradient(loss, logits), 1e-6, 1e-9, "dLogits");
}

//===----------------------------------------------------------------------===//
// Batchwise and threshold masks
//===----------------------------------------------------------------------===//

/// The router probabilities X = G_sigma(x) of Eq. 3 by the definition:
/// softmax(logits[t,:]) per token, which the masks (Eq. 6, 7) and the
/// threshold loss (Eq. 8) work on.
std::vector<double> referenceProbabilities(int64_t T, int64_t n,
                                           const std::vector<double> &logits) {
  std::vector<double> p(T * n);
  for (int64_t t = 0; t < T; ++t) {
    double maxValue = -kInf, sum = 0;
    for (int64_t i = 0; i < n; ++i)
      maxValue = std::max(maxValue, logits[t * n + i]);
    for (int64_t i = 0; i < n; ++i)
      sum += std::exp(logits[t * n + i] - maxValue);
    for (int64_t i = 0; i < n; ++i)
      p[t * n + i] = std::exp(logits[t * n + i] - maxValue) / sum;
  }
  return p;
}

/// The batchwise mask of Eq. 6 by the definition: column i keeps the first
/// m tokens of a full sort of p[:,i] (descending, ties by lower index).
std::vector<double> referenceBatchwiseMask(int64_t T, int64_t n, int64_t m,
                                           const std::vector<double> &logits) {
  std::vector<double> p = referenceProbabilities(T, n, logits);
  std::vector<double> mask(T * n, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    std::vector<double> column(T);
    for (int64_t t = 0; t < T; ++t)
      column[t] = p[t * n + i];
    std::vector<int32_t> order = sortedOrder(column.data(), T);
    for (int64_t j = 0; j < m; ++j)
      mask[order[j] * n + i] = 1.0;
  }
  return mask;
}

/// Checks rowPtr / expert / gate against a 0/1 mask: the kept experts of
/// each token in increasing order, gates = softmax of their logits (Eq. 3:
/// the probabilities renormalised over the kept experts).
void expectAssignmentsMatchMask(int64_t T, int64_t n,
                                const std::vector<double> &logits,
                                const std::vector<double> &mask,
                                const std::vector<int32_t> &rowPtr,
                                const std::vector<int32_t> &expert,
                                const std::vector<double> &gate) {
  ASSERT_EQ(rowPtr[0], 0);
  for (int64_t t = 0; t < T; ++t) {
    std::vector<int32_t> kept;
    double sum = 0;
    for (int64_t i = 0; i < n; ++i)
      if (mask[t * n + i] == 1.0) {
        kept.push_back(i);
        sum += std::exp(logits[t * n + i]);
      }
    ASSERT_EQ(rowPtr[t + 1] - rowPtr[t], int32_t(kept.size())) << t;
    for (size_t j = 0; j < kept.size(); ++j) {
      EXPECT_EQ(expert[rowPtr[t] + j], kept[j]) << t;
      EXPECT_NEAR(gate[rowPtr[t] + j], std::exp(logits[t * n + kept[j]]) / sum,
                  1e-13)
          << t;
    }
  }
}

TEST(BatchwiseMask, KeepsTheTopMProbabilitiesOfEveryExpert) {
  struct Case {
    int64_t T, n, m;
    bool ties;
  };
  const Case cases[] = {{37, 5, 7, false},  {37, 5, 0, false},
                        {37, 5, 37, false}, {1, 3, 1, false},
                        {50, 4, 9, true},   {300, 70, 5, false}};
  for (const Case &c : cases) {
    SCOPED_TRACE(testing::Message() << "T=" << c.T << " n=" << c.n
                                    << " m=" << c.m << " ties=" << c.ties);
    auto logits = randomVector<double>(c.T * c.n, 21, -3.0, 3.0);
    if (c.ties) {
      // Tokens repeat six distinct rows: equal rows have bit-identical
      // probabilities, so every column has groups of exact ties.
      std::vector<double> pool(logits.begin(), logits.begin() + 6 * c.n);
      auto pick = randomVector<double>(c.T, 34, 0.0, 6.0);
      for (int64_t t = 0; t < c.T; ++t)
        std::copy_n(pool.begin() + int64_t(pick[t]) * c.n, c.n,
                    logits.begin() + t * c.n);
    }
    std::vector<double> mask(c.T * c.n, -1.0), gate(c.n * c.m);
    std::vector<int32_t> rowPtr(c.T + 1), expert(c.n * c.m);
    rt::cpu::batchwiseMaskForward<double>(c.T, c.n, c.m, logits.data(),
                                          mask.data(), rowPtr.data(),
                                          expert.data(), gate.data());
    for (int64_t i = 0; i < c.n; ++i) {
      int64_t kept = 0;
      for (int64_t t = 0; t < c.T; ++t)
        kept += mask[t * c.n + i] == 1.0;
      EXPECT_EQ(kept, c.m) << "expert " << i;
    }
    EXPECT_EQ(mask, referenceBatchwiseMask(c.T, c.n, c.m, logits));
    EXPECT_EQ(rowPtr[c.T], c.n * c.m);
    expectAssignmentsMatchMask(c.T, c.n, logits, mask, rowPtr, expert, gate);
  }
}

TEST(BatchwiseMask, RanksTokensByProbabilityAsInAppendixA) {
  // Token A has logits [2, 0] (p = .88 / .12), token B [3, 3] (p = .5 / .5).
  // Ranked by logits, B would take both experts; by the probabilities
  // X = G_sigma(x) of Eq. 6, expert 0 takes A and expert 1 takes B.
  int64_t T = 2, n = 2, m = 1;
  for (double shiftB : {0.0, 100.0}) {
    // A constant added to a token's logits changes neither its
    // probabilities nor its gates.
    SCOPED_TRACE(testing::Message() << "shiftB=" << shiftB);
    std::vector<double> logits = {2.0, 0.0, 3.0 + shiftB, 3.0 + shiftB};
    std::vector<double> mask(T * n), gate(n * m);
    std::vector<int32_t> rowPtr(T + 1), expert(n * m);
    rt::cpu::batchwiseMaskForward<double>(T, n, m, logits.data(), mask.data(),
                                          rowPtr.data(), expert.data(),
                                          gate.data());
    EXPECT_EQ(mask, (std::vector<double>{1, 0, 0, 1}));
    EXPECT_EQ(rowPtr, (std::vector<int32_t>{0, 1, 2}));
    EXPECT_EQ(expert, (std::vector<int32_t>{0, 1}));
    EXPECT_EQ(gate, (std::vector<double>{1.0, 1.0}));

    // Eq. 7 on the same probabilities: at 0.6 only A's expert 0 passes; at
    // 0.3 B keeps both experts with gates .5 / .5.
    std::vector<double> thrMask(T * n), thrGate(T * n);
    std::vector<int32_t> thrRowPtr(T + 1), thrExpert(T * n);
    int64_t numAssigned = -1;
    std::vector<double> high = {0.6, 0.6}, low = {0.3, 0.3};
    rt::cpu::thresholdMaskForward<double>(
        T, n, logits.data(), high.data(), thrMask.data(), thrRowPtr.data(),
        thrExpert.data(), thrGate.data(), T * n, &numAssigned);
    EXPECT_EQ(thrMask, (std::vector<double>{1, 0, 0, 0}));
    EXPECT_EQ(numAssigned, 1);
    EXPECT_EQ(thrRowPtr, (std::vector<int32_t>{0, 1, 1}));
    rt::cpu::thresholdMaskForward<double>(
        T, n, logits.data(), low.data(), thrMask.data(), thrRowPtr.data(),
        thrExpert.data(), thrGate.data(), T * n, &numAssigned);
    EXPECT_EQ(thrMask, (std::vector<double>{1, 0, 1, 1}));
    EXPECT_EQ(numAssigned, 3);
    EXPECT_EQ(std::vector<int32_t>(thrExpert.begin(), thrExpert.begin() + 3),
              (std::vector<int32_t>{0, 0, 1}));
    EXPECT_EQ(thrGate[0], 1.0);
    EXPECT_EQ(thrGate[1], 0.5);
    EXPECT_EQ(thrGate[2], 0.5);

    // Eq. 8 with the batchwise mask above and thresholds 0.6: the masks
    // differ only at (B, 1), where X = .5: L = -(.5 - .6) = .1 and
    // dL/dT_1 = -sum_t (Mthr - Mbw) = 1.
    double loss = -1;
    rt::cpu::batchwiseThresholdLossForward<double>(
        T, n, logits.data(), mask.data(), high.data(), &loss);
    EXPECT_NEAR(loss, 0.1, 1e-15);
    std::vector<double> dThresholds(n, 7.0);
    rt::cpu::batchwiseThresholdLossBackward<double>(
        T, n, logits.data(), mask.data(), high.data(), 2.0, dThresholds.data());
    EXPECT_EQ(dThresholds, (std::vector<double>{0.0, 2.0}));
  }
}

TEST(MaskAssignments, GivenMaskIntoCapacityWithEmptySlotsZeroed) {
  // The assignment form of a mask chosen elsewhere (the combined batch of
  // several ranks): kept experts in order, softmax of the kept logits, and
  // expert 0 / gate 0 in the slots left over.
  int64_t T = 5, n = 4;
  auto logits = randomVector<float>(T * n, 21);
  std::vector<float> mask = {1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1,
                             1, 1, 1, 1, 0, 0, 0, 1};
  int64_t kept = 0;
  for (float v : mask)
    kept += v != 0;
  int64_t capacity = kept + 3;
  std::vector<int32_t> rowPtr(T + 1), expert(capacity, -7);
  std::vector<float> gate(capacity, -7.0f);
  int64_t assigned = -1;
  rt::cpu::maskAssignmentsForward<float>(T, n, logits.data(), mask.data(),
                                         rowPtr.data(), expert.data(),
                                         gate.data(), capacity, &assigned);
  EXPECT_EQ(assigned, kept);
  int64_t a = 0;
  for (int64_t t = 0; t < T; ++t) {
    EXPECT_EQ(rowPtr[t], a) << t;
    double sum = 0;
    for (int64_t i = 0; i < n; ++i)
      if (mask[t * n + i] != 0)
        sum += std::exp(double(logits[t * n + i]));
    for (int64_t i = 0; i < n; ++i) {
      if (mask[t * n + i] == 0)
        continue;
      EXPECT_EQ(expert[a], i) << t;
      EXPECT_NEAR(gate[a], std::exp(double(logits[t * n + i])) / sum, 1e-6);
      ++a;
    }
  }
  EXPECT_EQ(rowPtr[T], kept);
  for (int64_t slot = kept; slot < capacity; ++slot) {
    EXPECT_EQ(expert[slot], 0) << slot;
    EXPECT_EQ(gate[slot], 0.0f) << slot;
  }
  EXPECT_THROW(rt::cpu::maskAssignmentsForward<float>(
                   T, n, logits.data(), mask.data(), rowPtr.data(),
                   expert.data(), gate.data(), kept - 1, nullptr),
               std::runtime_error);
}

TEST(ThresholdMask, KeepsProbabilitiesAboveTheThresholds) {
  for (auto [T, n] : {std::pair<int64_t, int64_t>{1, 1}, {23, 6}, {400, 50}}) {
    SCOPED_TRACE(testing::Message() << "T=" << T << " n=" << n);
    auto logits = randomVector<double>(T * n, 22, -2.0, 2.0);
    // On the probability scale, around the uniform 1 / n.
    auto thresholds = randomVector<double>(n, 23, 0.3 / n, 2.0 / n);
    std::vector<double> mask(T * n), gate(T * n);
    std::vector<int32_t> rowPtr(T + 1), expert(T * n);
    int64_t numAssigned = -1;
    rt::cpu::thresholdMaskForward<double>(
        T, n, logits.data(), thresholds.data(), mask.data(), rowPtr.data(),
        expert.data(), gate.data(), T * n, &numAssigned);
    std::vector<double> p = referenceProbabilities(T, n, logits);
    int64_t expectedCount = 0;
    for (int64_t t = 0; t < T; ++t)
      for (int64_t i = 0; i < n; ++i) {
        bool keep = p[t * n + i] > thresholds[i];
        EXPECT_EQ(mask[t * n + i], keep ? 1.0 : 0.0) << t << "," << i;
        expectedCount += keep;
      }
    EXPECT_EQ(numAssigned, expectedCount);
    if (n > 1) { // Some entries pass, some do not.
      EXPECT_GT(expectedCount, 0);
      EXPECT_LT(expectedCount, T * n);
    }
    expectAssignmentsMatchMask(T, n, logits, mask, rowPtr, expert, gate);
  }
}

/// The message a threshold mask throws when `assigned` assignments do not
/// fit in `capacity`.
std::string overflowMessage(const char *kernel, int64_t assigned,
                            int64_t capacity) {
  return std::string(kernel) + ": " + std::to_string(assigned) +
         " assignments pass the thresholds but the compiled capacity is " +
         std::to_string(capacity) +
         " (recompile with a larger "
         "--moe-inference-pipeline=\"threshold-capacity=...\" or "
         "--moe-train-pipeline=\"threshold-capacity=...\")";
}

TEST(ThresholdMask, CompiledCapacityHoldsExactlyWhatFits) {
  int64_t T = 37, n = 9;
  auto logits = randomVector<double>(T * n, 27, -2.0, 2.0);
  auto thresholds = randomVector<double>(n, 28, 0.3 / n, 2.0 / n);
  // Uncapped: room for every (token, expert) pair.
  std::vector<double> mask(T * n), gate(T * n);
  std::vector<int32_t> rowPtr(T + 1), expert(T * n);
  int64_t A = -1;
  rt::cpu::thresholdMaskForward<double>(T, n, logits.data(), thresholds.data(),
                                        mask.data(), rowPtr.data(),
                                        expert.data(), gate.data(), T * n, &A);
  ASSERT_GT(A, 1);
  ASSERT_LT(A, T * n);

  // Exactly A slots, followed by guards that must stay as they are: the
  // same results, and nothing written past the capacity.
  const int64_t guard = 16;
  const int32_t guardId = -7;
  const double guardGate = -3.5;
  std::vector<double> capMask(T * n), capGate(A + guard, guardGate);
  std::vector<int32_t> capRowPtr(T + 1), capExpert(A + guard, guardId);
  int64_t capA = -1;
  rt::cpu::thresholdMaskForward<double>(
      T, n, logits.data(), thresholds.data(), capMask.data(), capRowPtr.data(),
      capExpert.data(), capGate.data(), A, &capA);
  EXPECT_EQ(capA, A);
  EXPECT_EQ(capMask, mask);
  EXPECT_EQ(capRowPtr, rowPtr);
  EXPECT_EQ(std::vector<int32_t>(capExpert.begin(), capExpert.begin() + A),
            std::vector<int32_t>(expert.begin(), expert.begin() + A));
  EXPECT_EQ(std::vector<double>(capGate.begin(), capGate.begin() + A),
            std::vector<double>(gate.begin(), gate.begin() + A));
  for (int64_t a = A; a < A + guard; ++a) {
    EXPECT_EQ(capExpert[a], guardId) << a;
    EXPECT_EQ(capGate[a], guardGate) << a;
  }

  // One slot less: a runtime error that says what to recompile, and no
  // assignment written at all.
  std::vector<double> lessGate(A + guard, guardGate);
  std::vector<int32_t> lessExpert(A + guard, guardId);
  int64_t lessA = -1;
  try {
    rt::cpu::thresholdMaskForward<double>(
        T, n, logits.data(), thresholds.data(), capMask.data(),
        capRowPtr.data(), lessExpert.data(), lessGate.data(), A - 1, &lessA);
    ADD_FAILURE() << "no error with a capacity of A - 1";
  } catch (const std::runtime_error &e) {
    EXPECT_EQ(std::string(e.what()),
              overflowMessage("thresholdMaskForward", A, A - 1));
  }
  EXPECT_EQ(lessA, -1);
  EXPECT_EQ(lessExpert, std::vector<int32_t>(A + guard, guardId));
  EXPECT_EQ(lessGate, std::vector<double>(A + guard, guardGate));

  // A capacity is a count.
  EXPECT_THROW(rt::cpu::thresholdMaskForward<double>(
                   T, n, logits.data(), thresholds.data(), capMask.data(),
                   capRowPtr.data(), capExpert.data(), capGate.data(), -1,
                   nullptr),
               std::invalid_argument);
}

TEST(ThresholdMask, BackendChecksTheCapacity) {
  std::unique_ptr<rt::Backend> backend = rt::createCpuBackend(1);
  int64_t T = 20, n = 4;
  auto logits = randomVector<float>(T * n, 29, -2.0, 2.0);
  // Every probability exceeds 0: every pair passes.
  std::vector<float> thresholds(n, 0.0f), mask(T * n), gate(T * n);
  std::vector<int32_t> rowPtr(T + 1), expert(T * n);
  int64_t A = -1;
  backend->thresholdMaskForward(T, n, logits.data(), thresholds.data(),
                                mask.data(), rowPtr.data(), expert.data(),
                                gate.data(), T * n, &A);
  EXPECT_EQ(A, T * n);
  try {
    backend->thresholdMaskForward(T, n, logits.data(), thresholds.data(),
                                  mask.data(), rowPtr.data(), expert.data(),
                                  gate.data(), 2 * T, &A);
    ADD_FAILURE() << "no error with a capacity of 2 * T";
  } catch (const std::runtime_error &e) {
    EXPECT_EQ(std::string(e.what()),
              overflowMessage("thresholdMaskForward", T * n, 2 * T));
  }
}

TEST(MaskedGateBackward, GradientMatchesFiniteDifferences) {
  // Batchwise routing with m = 3 over four experts. Tokens 2-5 put p ~ .9
  // on one expert, tokens 1 and 6-8 p ~ .5 on two; each expert is the
  // favourite of one single and two double tokens, which are its top three.
  // Token 0 (p ~ .25 everywhere) is nobody's choice: tokens with zero, one
  // and two experts, every column with a wide gap at rank m.
  int64_t T = 9, n = 4, m = 3;
  const int32_t favourites[9][2] = {{-1, -1}, {0, 1}, {0, -1}, {1, -1}, {2, -1},
                                    {3, -1},  {2, 3}, {0, 2},  {1, 3}};
  auto logits = randomVector<double>(T * n, 24, -0.2, 0.2);
  for (int64_t t = 0; t < T; ++t)
    for (int32_t e : favourites[t])
      if (e >= 0)
        logits[t * n + e] += favourites[t][1] >= 0 ? 4.0 : 3.0;
  auto w = randomVector<double>(n * m, 25);
  std::vector<double> mask(T * n), gate(n * m);
  std::vector<int32_t> rowPtr(T + 1), expert(n * m);
  auto forward = [&](const std::vector<double> &x) {
    rt::cpu::batchwiseMaskForward<double>(T, n, m, x.data(), mask.data(),
                                          rowPtr.data(), expert.data(),
                                          gate.data());
    return dot(gate, w);
  };
  std::vector<double> numeric = numericGradient(forward, logits);
  forward(logits);
  std::vector<int32_t> expectedRowPtr = {0, 0, 2, 3, 4, 5, 6, 8, 10, 12};
  ASSERT_EQ(rowPtr, expectedRowPtr);
  std::vector<double> dLogits(T * n, 99.0);
  rt::cpu::maskedGateBackward<double>(T, n, rowPtr.data(), expert.data(),
                                      gate.data(), w.data(), dLogits.data());
  expectAllClose(dLogits, numeric, 1e-6, 1e-9, "dLogits");
}

TEST(BatchwiseThresholdLoss, MatchesEquation8AndItsGradient) {
  int64_t T = 31, n = 5, m = 6;
  auto logits = randomVector<double>(T * n, 26, -2.0, 2.0);
  std::vector<double> p = referenceProbabilities(T, n, logits);
  // Thresholds at midpoints between sorted probabilities stay clear of
  // every kink.
  std::vector<double> thresholds(n);
  for (int64_t i = 0; i < n; ++i) {
    std::vector<double> column;
    for (int64_t t = 0; t < T; ++t)
      column.push_back(p[t * n + i]);
    std::sort(column.begin(), column.end());
    int64_t r = 10 + 3 * i;
    ASSERT_GT(column[r + 1] - column[r], 1e-4) << i;
    thresholds[i] = 0.5 * (column[r] + column[r + 1]);
  }
  std::vector<double> mask(T * n), gate(n * m);
  std::vector<int32_t> rowPtr(T + 1), expert(n * m);
  rt::cpu::batchwiseMaskForward<double>(T, n, m, logits.data(), mask.data(),
                                        rowPtr.data(), expert.data(),
                                        gate.data());
  auto loss = [&](const std::vector<double> &thr) {
    double l = 0;
    rt::cpu::batchwiseThresholdLossForward<double>(T, n, logits.data(),
                                                   mask.data(), thr.data(), &l);
    return l;
  };
  // X = p (Eq. 8); the logits would give another value.
  double expected = 0, onLogits = 0;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < n; ++i) {
      double x = p[t * n + i], thr = thresholds[i], mbw = mask[t * n + i];
      expected += ((x > thr ? 1.0 : 0.0) - mbw) * (x - thr);
      double l = logits[t * n + i];
      onLogits += ((l > thr ? 1.0 : 0.0) - mbw) * (l - thr);
    }
  EXPECT_NEAR(loss(thresholds), expected, 1e-12);
  EXPECT_GT(expected, 0.0); // The masks disagree: the loss is not trivial.
  EXPECT_GT(std::fabs(expected - onLogits), 1e-3);

  double dLoss = 1.7;
  std::vector<double> dThresholds(n, 5.0);
  rt::cpu::batchwiseThresholdLossBackward<double>(
      T, n, logits.data(), mask.data(), thresholds.data(), dLoss,
      dThresholds.data());
  std::vector<double> numeric = numericGradient(loss, thresholds);
  for (double &g : numeric)
    g *= dLoss;
  expectAllClose(dThresholds, numeric, 1e-6, 1e-8, "dThresholds");
}

TEST(BatchwiseMask, ResultsDoNotDependOnTheThreadCount) {
  // Large enough for the parallel paths and several column-sum blocks.
  int64_t T = 700, n = 64, m = 20;
  auto logits = randomVector<float>(T * n, 35, -3.0, 3.0);
  auto thresholds = randomVector<float>(n, 36, 0.005, 0.03);
  auto run = [&](int threads) {
    int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    std::vector<float> mask(T * n), gate(n * m), thrMask(T * n), thrGate(T * n),
        loss(1), dThresholds(n);
    std::vector<int32_t> rowPtr(T + 1), expert(n * m), thrRowPtr(T + 1),
        thrExpert(T * n);
    int64_t numAssigned = 0;
    rt::cpu::batchwiseMaskForward<float>(T, n, m, logits.data(), mask.data(),
                                         rowPtr.data(), expert.data(),
                                         gate.data());
    rt::cpu::thresholdMaskForward<float>(T, n, logits.data(), thresholds.data(),
                                         thrMask.data(), thrRowPtr.data(),
                                         thrExpert.data(), thrGate.data(),
                                         T * n, &numAssigned);
    rt::cpu::batchwiseThresholdLossForward<float>(
        T, n, logits.data(), mask.data(), thresholds.data(), loss.data());
    rt::cpu::batchwiseThresholdLossBackward<float>(
        T, n, logits.data(), mask.data(), thresholds.data(), 0.5f,
        dThresholds.data());
    omp_set_num_threads(saved);
    std::vector<float> all = mask;
    thrGate.resize(numAssigned);
    for (const auto *v : {&gate, &thrMask, &thrGate, &loss, &dThresholds})
      all.insert(all.end(), v->begin(), v->end());
    for (const auto *v : {&rowPtr, &expert, &thrRowPtr})
      for (int32_t x : *v)
        all.push_back(float(x));
    for (int64_t a = 0; a < numAssigned; ++a)
      all.push_back(float(thrExpert[a]));
    return all;
  };
  std::vector<float> first = run(1), again = run(1), parallel = run(3);
  ASSERT_EQ(first.size(), parallel.size());
  EXPECT_EQ(std::memcmp(first.data(), again.data(), 4 * first.size()), 0);
  EXPECT_EQ(std::memcmp(first.data(), parallel.data(), 4 * first.size()), 0);
}

//===----------------------------------------------------------------------===//
// Balancing losses
//===----------------------------------------------------------------------===//

TEST(Importance, SumsGatesPerExpert) {
  int64_t n = 5;
  // The assignments of a routing with variable experts per token, an empty
  // token and an unused expert (4): only their number A matters.
  std::vector<int32_t> expert = {0, 3, 1, 2, 3, 0, 1, 3, 2};
  int64_t A = int64_t(expert.size());
  auto gate = randomVector<double>(A, 27, 0.0, 1.0);
  std::vector<double> importance(n, 42.0), expected(n, 0.0);
  for (int64_t a = 0; a < A; ++a)
    expected[expert[a]] += gate[a];
  rt::cpu::importanceForward<double>(A, n, expert.data(), gate.data(),
                                     importance.data());
  expectAllClose(importance, expected, 1e-15, 0, "importance");

  auto w = randomVector<double>(n, 28);
  auto loss = [&](const std::vector<double> &g) {
    std::vector<double> imp(n);
    rt::cpu::importanceForward<double>(A, n, expert.data(), g.data(),
                                       imp.data());
    return dot(imp, w);
  };
  std::vector<double> dGate(A, 42.0);
  rt::cpu::importanceBackward<double>(A, n, expert.data(), w.data(),
                                      dGate.data());
  expectAllClose(dGate, numericGradient(loss, gate), 1e-7, 1e-9, "dGate");

  // The first A' assignments only: the rest are not read.
  std::vector<double> prefix(n, 0.0);
  for (int64_t a = 0; a < 5; ++a)
    prefix[expert[a]] += gate[a];
  rt::cpu::importanceForward<double>(5, n, expert.data(), gate.data(),
                                     importance.data());
  expectAllClose(importance, prefix, 1e-15, 0, "importance of 5");
}

TEST(CvSquared, MatchesDefinitionAndGradient) {
  for (int64_t n : {1, 2, 7, 64}) {
    SCOPED_TRACE(testing::Message() << "n=" << n);
    auto v = randomVector<double>(n, 29, 0.0, 10.0);
    double weight = 0.3;
    double sum = 0, sumSq = 0;
    for (double x : v) {
      sum += x;
      sumSq += x * x;
    }
    double mean = sum / n, var = sumSq / n - mean * mean;
    double loss = -1;
    rt::cpu::cvSquaredForward<double>(n, v.data(), weight, &loss);
    EXPECT_NEAR(loss, weight * var / (mean * mean + 1e-10), 1e-10);

    auto f = [&](const std::vector<double> &x) {
      double l;
      rt::cpu::cvSquaredForward<double>(n, x.data(), weight, &l);
      return l;
    };
    std::vector<double> dV(n);
    rt::cpu::cvSquaredBackward<double>(n, v.data(), weight, 2.5, dV.data());
    std::vector<double> numeric = numericGradient(f, v);
    for (double &g : numeric)
      g *= 2.5;
    expectAllClose(dV, numeric, 1e-6, 1e-9, "dV");
  }
  // Perfect balance: no loss, no gradient.
  std::vector<double> flat(8, 3.0), dFlat(8);
  double loss = -1;
  rt::cpu::cvSquaredForward<double>(8, flat.data(), 1.0, &loss);
  rt::cpu::cvSquaredBackward<double>(8, flat.data(), 1.0, 1.0, dFlat.data());
  EXPECT_EQ(loss, 0.0);
  EXPECT_EQ(dFlat, std::vector<double>(8, 0.0));
}

TEST(L2Balance, MatchesEquation5AndGradient) {
  int64_t T = 13, n = 6;
  auto importance = randomVector<double>(n, 30, 0.0, 5.0);
  double weight = 0.7, loss = -1;
  rt::cpu::l2BalanceForward<double>(T, n, importance.data(), weight, &loss);
  double expected = 0;
  for (double imp : importance)
    expected += (imp / T - 1.0 / n) * (imp / T - 1.0 / n);
  EXPECT_NEAR(loss, weight / 2 * expected, 1e-14);

  auto f = [&](const std::vector<double> &x) {
    double l;
    rt::cpu::l2BalanceForward<double>(T, n, x.data(), weight, &l);
    return l;
  };
  std::vector<double> dImportance(n);
  rt::cpu::l2BalanceBackward<double>(T, n, importance.data(), weight, 0.5,
                                     dImportance.data());
  std::vector<double> numeric = numericGradient(f, importance);
  for (double &g : numeric)
    g *= 0.5;
  expectAllClose(dImportance, numeric, 1e-6, 1e-10, "dImportance");
}

TEST(BalanceLosses, BackendReadsTheLossGradientFromMemory) {
  // cvSquaredBackward, l2BalanceBackward and batchwiseThresholdLossBackward
  // take dLoss in backend memory: the float template's bits for that value,
  // and dLoss[0] = 2 gives exactly twice the gradient of dLoss[0] = 1.
  auto be = rt::createCpuBackend();
  int64_t T = 13, n = 6;
  auto v = randomVector<float>(n, 40, 0.0, 10.0);
  auto logits = randomVector<float>(T * n, 41, -3.0, 3.0);
  auto thresholds = randomVector<float>(n, 42, 0.05, 0.3);
  std::vector<float> mask(T * n), gate(n * 3);
  std::vector<int32_t> rowPtr(T + 1), expert(n * 3);
  rt::cpu::batchwiseMaskForward<float>(T, n, 3, logits.data(), mask.data(),
                                       rowPtr.data(), expert.data(),
                                       gate.data());
  float *dLoss = static_cast<float *>(be->alloc(sizeof(float)));
  // Each kernel on the backend with dLoss[0] = value, and the template.
  auto cv = [&](float value, bool backend) {
    std::vector<float> dV(n, 42.0f);
    be->copyFromHost(dLoss, &value, sizeof(float));
    if (backend)
      be->cvSquaredBackward(n, v.data(), 0.3f, dLoss, dV.data());
    else
      rt::cpu::cvSquaredBackward<float>(n, v.data(), 0.3f, value, dV.data());
    return dV;
  };
  auto l2 = [&](float value, bool backend) {
    std::vector<float> dImportance(n, 42.0f);
    be->copyFromHost(dLoss, &value, sizeof(float));
    if (backend)
      be->l2BalanceBackward(T, n, v.data(), 0.7f, dLoss, dImportance.data());
    else
      rt::cpu::l2BalanceBackward<float>(T, n, v.data(), 0.7f, value,
                                        dImportance.data());
    return dImportance;
  };
  auto thr = [&](float value, bool backend) {
    std::vector<float> dThresholds(n, 42.0f);
    be->copyFromHost(dLoss, &value, sizeof(float));
    if (backend)
      be->batchwiseThresholdLossBackward(T, n, logits.data(), mask.data(),
                                         thresholds.data(), dLoss,
                                         dThresholds.data());
    else
      rt::cpu::batchwiseThresholdLossBackward<float>(
          T, n, logits.data(), mask.data(), thresholds.data(), value,
          dThresholds.data());
    return dThresholds;
  };
  auto check = [&](const char *what, auto kernel) {
    SCOPED_TRACE(what);
    std::vector<float> one = kernel(1.0f, true), two = kernel(2.0f, true);
    EXPECT_EQ(one, kernel(1.0f, false));
    EXPECT_EQ(two, kernel(2.0f, false));
    bool nonZero = false;
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_EQ(two[i], 2.0f * one[i]) << i;
      nonZero |= one[i] != 0.0f;
    }
    EXPECT_TRUE(nonZero);
    std::vector<float> third = kernel(1.0f / 3.0f, true);
    EXPECT_NE(third, one);
  };
  check("cvSquaredBackward", cv);
  check("l2BalanceBackward", l2);
  check("batchwiseThresholdLossBackward", thr);
  be->release(dLoss);
}

//===----------------------------------------------------------------------===//
// The f32 backend entry points
//===----------------------------------------------------------------------===//

TEST(CpuBackendRouting, EntryPointsRunTheKernels) {
  std::unique_ptr<rt::Backend> backendPtr = rt::createCpuBackend();
  rt::Backend &backend = *backendPtr;
  int64_t T = 50, n = 16, k = 3;
  auto clean = randomVector<float>(T * n, 31);
  auto raw = randomVector<float>(T * n, 32);
  auto dLoad = randomVector<float>(n, 33);
  std::vector<float> noisy(T * n), std(T * n), top(T * (k + 1)), gate(T * k),
      load(n), dClean(T * n, 0.0f), dRaw(T * n, 0.0f);
  std::vector<int32_t> expert(T * k);
  backend.noisyTopKForward(T, n, k, clean.data(), raw.data(), 0.01f, true,
                           kSeed, kCounter, noisy.data(), std.data(),
                           top.data(), expert.data(), gate.data(), 0, nullptr);
  backend.loadEstimateForward(T, n, k, clean.data(), noisy.data(), std.data(),
                              top.data(), nullptr, load.data());
  backend.loadEstimateBackward(T, n, k, clean.data(), noisy.data(), raw.data(),
                               std.data(), top.data(), nullptr, dLoad.data(),
                               dClean.data(), dRaw.data());

  // The same computation in double agrees to float precision.
  std::vector<double> cleanD(clean.begin(), clean.end());
  std::vector<double> rawD(raw.begin(), raw.end());
  std::vector<double> dLoadD(dLoad.begin(), dLoad.end());
  TopKOutputs o = runTopK({T, n, k}, cleanD, rawD.data(), true);
  std::vector<double> loadD(n), dCleanD(T * n, 0.0), dRawD(T * n, 0.0);
  rt::cpu::loadEstimateForward<double>(T, n, k, cleanD.data(), o.noisy.data(),
                                       o.std.data(), o.top.data(), nullptr,
                                       loadD.data());
  rt::cpu::loadEstimateBackward<double>(
      T, n, k, cleanD.data(), o.noisy.data(), rawD.data(), o.std.data(),
      o.top.data(), nullptr, dLoadD.data(), dCleanD.data(), dRawD.data());
  EXPECT_EQ(expert, o.expert);
  expectAllClose(gate, o.gate, 1e-5, 1e-6, "gate");
  expectAllClose(load, loadD, 1e-5, 1e-5, "load");
  expectAllClose(dClean, dCleanD, 1e-4, 1e-5, "dClean");
  expectAllClose(dRaw, dRawD, 1e-4, 1e-5, "dRawNoise");

  float cv = -1;
  backend.cvSquaredForward(n, load.data(), 0.1f, &cv);
  double cvD = -1;
  rt::cpu::cvSquaredForward<double>(n, loadD.data(), 0.1, &cvD);
  EXPECT_NEAR(cv, cvD, 1e-5 * std::fabs(cvD) + 1e-7);
}

/// The fused router's outputs: what the separate kernels write.
struct FusedRouteOutputs {
  std::vector<float> noisy, std, top, gate, load, importance;
  std::vector<int32_t> expert, offset, position, token;

  FusedRouteOutputs(int64_t T, int64_t n, int64_t k)
      : noisy(T * n, -7.0f), std(T * n, -7.0f), top(T * (k + 1), -7.0f),
        gate(T * k, -7.0f), load(n, -7.0f), importance(n, -7.0f),
        expert(T * k, -7), offset(n + 1, -7), position(T * k, -7),
        token(T * k, -7) {}
};

TEST(FusedRoute, EqualsTheSeparateKernels) {
  std::unique_ptr<rt::Backend> backend = rt::createCpuBackend();
  // T around and past a CUDA tile (128 tokens), k = 1 and k = n, ties.
  struct Case {
    int64_t T, n, k;
    bool ties;
  };
  const Case cases[] = {{0, 8, 2, false},   {1, 4, 1, false},
                        {37, 8, 2, false},  {130, 16, 1, false},
                        {129, 6, 6, false}, {300, 40, 4, true},
                        {5, 300, 7, false}, {64, 5, 5, true}};
  for (const Case &c : cases) {
    for (bool training : {true, false}) {
      int64_t T = c.T, n = c.n, k = c.k;
      std::string what = "T=" + std::to_string(T) + " n=" + std::to_string(n) +
                         " k=" + std::to_string(k) +
                         (training ? " training" : " eval") +
                         (c.ties ? " ties" : "");
      std::vector<float> clean = randomVector<float>(T * n, 41, -2.0, 2.0);
      if (c.ties)
        for (float &x : clean)
          x = std::round(x * 2.0f) / 2.0f;
      std::vector<float> raw = randomVector<float>(T * n, 42, -3.0, 1.0);
      uint64_t offset = 8; // a shard's element offset
      FusedRouteOutputs fused(T, n, k), ref(T, n, k);
      backend->fusedRouteForward(
          T, n, k, clean.data(), raw.data(), 0.01f, training, kSeed, kCounter,
          offset, fused.noisy.data(), fused.std.data(), fused.top.data(),
          fused.expert.data(), fused.gate.data(), fused.load.data(),
          fused.importance.data(), fused.offset.data(), fused.position.data(),
          fused.token.data());
      rt::cpu::noisyTopKForward<float>(
          T, n, k, clean.data(), raw.data(), 0.01f, training, kSeed, kCounter,
          ref.noisy.data(), ref.std.data(), ref.top.data(), ref.expert.data(),
          ref.gate.data(), offset);
      rt::cpu::loadEstimateForward<float>(
          T, n, k, clean.data(), ref.noisy.data(), ref.std.data(),
          ref.top.data(), nullptr, ref.load.data());
      rt::cpu::importanceForward<float>(T * k, n, ref.expert.data(),
                                        ref.gate.data(), ref.importance.data());
      rt::cpu::buildDispatchPlan(T, n, T * k, nullptr, ref.expert.data(),
                                 ref.offset.data(), ref.position.data(),
                                 ref.token.data());
      // The CPU composes the same kernels: every output is bit-identical.
      EXPECT_EQ(fused.expert, ref.expert) << what;
      EXPECT_EQ(0, std::memcmp(fused.gate.data(), ref.gate.data(),
                               fused.gate.size() * sizeof(float)))
          << what << " gate";
      EXPECT_EQ(fused.noisy, ref.noisy) << what;
      EXPECT_EQ(fused.std, ref.std) << what;
      EXPECT_EQ(fused.top, ref.top) << what;
      EXPECT_EQ(fused.load, ref.load) << what;
      EXPECT_EQ(fused.importance, ref.importance) << what;
      EXPECT_EQ(fused.offset, ref.offset) << what;
      EXPECT_EQ(fused.position, ref.position) << what;
      EXPECT_EQ(fused.token, ref.token) << what;
      // Eval draws no noise; the plan counts every assignment.
      if (!training)
        EXPECT_EQ(fused.noisy, clean) << what;
      EXPECT_EQ(fused.offset[n], T * k) << what;
      if (c.ties && !training)
        for (int64_t t = 0; t < T; ++t)
          for (int64_t j = 1; j < k; ++j) {
            float a = clean[t * n + fused.expert[t * k + j - 1]];
            float b = clean[t * n + fused.expert[t * k + j]];
            if (a == b)
              EXPECT_LT(fused.expert[t * k + j - 1], fused.expert[t * k + j])
                  << what << ": a tie goes to the lower index";
          }
    }
  }
}

// The fused backward equals importanceBackward added to dGate, then
// noisyTopKBackward plus loadEstimateBackward from zero, for every subset of
// the three incoming gradients.
TEST(FusedRoute, BackwardEqualsTheSeparateKernels) {
  std::unique_ptr<rt::Backend> backend = rt::createCpuBackend();
  const TopKShape shapes[] = {
      {1, 4, 1}, {37, 8, 2}, {130, 16, 1}, {20, 6, 6}, {9, 40, 5}};
  for (const TopKShape &s : shapes) {
    int64_t T = s.T, n = s.n, k = s.k, size = T * n;
    std::vector<float> clean = randomVector<float>(size, 51, -2.0, 2.0);
    std::vector<float> raw = randomVector<float>(size, 52, -3.0, 1.0);
    std::vector<float> noisy(size), std(size), top(T * (k + 1)), gate(T * k);
    std::vector<int32_t> expert(T * k);
    rt::cpu::noisyTopKForward<float>(
        T, n, k, clean.data(), raw.data(), 0.01f, true, kSeed, kCounter,
        noisy.data(), std.data(), top.data(), expert.data(), gate.data());
    std::vector<float> dGate = randomVector<float>(T * k, 53);
    std::vector<float> dLoad = randomVector<float>(n, 54);
    std::vector<float> dImportance = randomVector<float>(n, 55);
    for (int mask = 1; mask < 8; ++mask) {
      const float *dg = mask & 1 ? dGate.data() : nullptr;
      const float *dl = mask & 2 ? dLoad.data() : nullptr;
      const float *di = mask & 4 ? dImportance.data() : nullptr;
      std::string what = "T=" + std::to_string(T) + " n=" + std::to_string(n) +
                         " k=" + std::to_string(k) + (dg ? " dGate" : "") +
                         (dl ? " dLoad" : "") + (di ? " dImportance" : "");
      std::vector<float> dClean(size, -7.0f), dRaw(size, -7.0f);
      backend->fusedRouteBackward(T, n, k, clean.data(), raw.data(),
                                  noisy.data(), std.data(), top.data(),
                                  expert.data(), gate.data(), dg, dl, di,
                                  dClean.data(), dRaw.data());
      // The separate kernels and the sums moe-autodiff builds from them.
      std::vector<float> gateSum(T * k), refClean(size, 0.0f),
          refRaw(size, 0.0f), loadClean(size, 0.0f), loadRaw(size, 0.0f);
      const float *gateGrad = dg;
      if (di) {
        rt::cpu::importanceBackward<float>(T * k, n, expert.data(), di,
                                           gateSum.data());
        for (int64_t a = 0; dg && a < T * k; ++a)
          gateSum[a] = dg[a] + gateSum[a];
        gateGrad = gateSum.data();
      }
      if (gateGrad)
        rt::cpu::noisyTopKBackward<float>(T, n, k, noisy.data(), clean.data(),
                                          raw.data(), std.data(), expert.data(),
                                          gate.data(), gateGrad,
                                          refClean.data(), refRaw.data());
      if (dl) {
        rt::cpu::loadEstimateBackward<float>(
            T, n, k, clean.data(), noisy.data(), raw.data(), std.data(),
            top.data(), nullptr, dl, loadClean.data(), loadRaw.data());
        for (int64_t i = 0; i < size; ++i) {
          refClean[i] = gateGrad ? refClean[i] + loadClean[i] : loadClean[i];
          refRaw[i] = gateGrad ? refRaw[i] + loadRaw[i] : loadRaw[i];
        }
      }
      EXPECT_EQ(
          0, std::memcmp(dClean.data(), refClean.data(), size * sizeof(float)))
          << what << " dClean";
      EXPECT_EQ(0,
                std::memcmp(dRaw.data(), refRaw.data(), size * sizeof(float)))
          << what << " dRawNoise";
    }
  }
  std::vector<float> x(4, 0.5f), out(4), top(2), g(1);
  std::vector<int32_t> e(1, 0);
  EXPECT_THROW(backend->fusedRouteBackward(1, 4, 1, x.data(), x.data(),
                                           x.data(), x.data(), top.data(),
                                           e.data(), g.data(), nullptr, nullptr,
                                           nullptr, out.data(), out.data()),
               std::invalid_argument);
}

// d/d(clean, raw) of sum(wg * gate) + sum(wl * load) + sum(wi * importance)
// through the whole fused forward (thresholds and selection included), in
// double, against central differences.
TEST(FusedRoute, BackwardMatchesFiniteDifferences) {
  const TopKShape shapes[] = {{4, 6, 2}, {3, 5, 1}, {3, 5, 5}, {2, 30, 4}};
  for (const TopKShape &s : shapes) {
    SCOPED_TRACE(testing::Message()
                 << "T=" << s.T << " n=" << s.n << " k=" << s.k);
    int64_t T = s.T, n = s.n, k = s.k, size = T * n;
    auto clean = randomVector<double>(size, 60, -2.0, 2.0);
    auto raw = randomVector<double>(size, 61);
    auto wg = randomVector<double>(T * k, 62);
    auto wl = randomVector<double>(n, 63);
    auto wi = randomVector<double>(n, 64);
    ASSERT_GT(minRowGap(T, n, referenceNoisy(T, n, clean, raw)), 1e-4);
    struct Forward {
      std::vector<double> noisy, std, top, gate, load, importance;
      std::vector<int32_t> expert, offset, position, token;
    };
    auto forward = [&](const std::vector<double> &c, const double *r) {
      Forward f{std::vector<double>(size),        std::vector<double>(size),
                std::vector<double>(T * (k + 1)), std::vector<double>(T * k),
                std::vector<double>(n),           std::vector<double>(n),
                std::vector<int32_t>(T * k),      std::vector<int32_t>(n + 1),
                std::vector<int32_t>(T * k),      std::vector<int32_t>(T * k)};
      rt::cpu::fusedRouteForward<double>(
          T, n, k, c.data(), r, kEps, true, kSeed, kCounter, 0, f.noisy.data(),
          f.std.data(), f.top.data(), f.expert.data(), f.gate.data(),
          f.load.data(), f.importance.data(), f.offset.data(),
          f.position.data(), f.token.data());
      return f;
    };
    auto loss = [&](const std::vector<double> &x) {
      std::vector<double> c(x.begin(), x.begin() + size);
      Forward f = forward(c, x.data() + size);
      return dot(f.gate, wg) + dot(f.load, wl) + dot(f.importance, wi);
    };
    std::vector<double> x = clean;
    x.insert(x.end(), raw.begin(), raw.end());
    std::vector<double> numeric = numericGradient(loss, x);

    Forward f = forward(clean, raw.data());
    std::vector<double> dClean(size), dRaw(size);
    rt::cpu::fusedRouteBackward<double>(
        T, n, k, clean.data(), raw.data(), f.noisy.data(), f.std.data(),
        f.top.data(), f.expert.data(), f.gate.data(), wg.data(), wl.data(),
        wi.data(), dClean.data(), dRaw.data());
    std::vector<double> expectedClean(numeric.begin(), numeric.begin() + size);
    std::vector<double> expectedRaw(numeric.begin() + size, numeric.end());
    expectAllClose(dClean, expectedClean, 1e-6, 1e-8, "dClean");
    expectAllClose(dRaw, expectedRaw, 1e-6, 1e-8, "dRawNoise");
  }
}

} // namespace
