//===- SparseGradientTest.cpp - Row-sparse gradients and lazy Adam --------===//
//
// The row gradients of the embedding and of the sampled softmax scattered
// into zero tables equal the dense kernels' gradients bit for bit, their
// values match finite differences of the loss in each touched row, and
// lazy Adam equals dense Adam on the first step and differs afterwards only
// on rows the step did not touch.
//
//===----------------------------------------------------------------------===//

#include "runtime/Backend.h"
#include "runtime/Optimizer.h"
#include "runtime/cpu/kernels/LossKernels.h"
#include "runtime/cpu/kernels/OptimizerKernels.h"
#include "runtime/cpu/kernels/SequenceKernels.h"

#include "runtime/TestUtil.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cstdint>
#include <random>
#include <set>
#include <vector>

using namespace moe;
using moe::test::randomVector;

namespace {

/// Adds `values` [n, d] into the rows `rows` of a zero [vocab, d] table.
template <typename T>
std::vector<T> scatter(const std::vector<int32_t> &rows,
                       const std::vector<T> &values, int64_t vocab, int64_t d) {
  std::vector<T> table(vocab * d, T(0));
  for (size_t i = 0; i < rows.size(); ++i)
    if (rows[i] >= 0)
      for (int64_t j = 0; j < d; ++j)
        table[rows[i] * d + j] += values[i * d + j];
  return table;
}

/// rows: distinct, ascending, then only -1.
void expectRowList(const std::vector<int32_t> &rows) {
  size_t valid = 0;
  while (valid < rows.size() && rows[valid] >= 0)
    ++valid;
  for (size_t i = valid; i < rows.size(); ++i)
    EXPECT_EQ(rows[i], -1) << "padding at " << i;
  for (size_t i = 1; i < valid; ++i)
    EXPECT_LT(rows[i - 1], rows[i]) << "ascending and distinct at " << i;
}

/// Central differences of `loss` in the row `row` of `table` [., d].
template <typename F>
std::vector<double> rowDerivative(F loss, std::vector<double> table,
                                  int64_t row, int64_t d, double h = 1e-6) {
  std::vector<double> grad(d);
  for (int64_t j = 0; j < d; ++j) {
    double &x = table[row * d + j];
    double saved = x;
    x = saved + h;
    double up = loss(table);
    x = saved - h;
    double down = loss(table);
    x = saved;
    grad[j] = (up - down) / (2 * h);
  }
  return grad;
}

std::vector<int32_t> repeatedIds(int64_t n, int64_t vocab, uint32_t seed) {
  std::vector<int32_t> ids(n);
  std::mt19937 gen(seed);
  for (int32_t &id : ids)
    id = static_cast<int32_t>(gen() % vocab);
  return ids;
}

} // namespace

//===----------------------------------------------------------------------===//
// Embedding
//===----------------------------------------------------------------------===//

TEST(RowGradient, ScatteredEqualsEmbeddingBackward) {
  auto be = rt::createCpuBackend();
  for (int64_t vocab : {int64_t(1), int64_t(17), int64_t(5000)}) {
    const int64_t T = 300, d = 70;
    auto ids = repeatedIds(T, vocab, 1);
    auto dOut = randomVector(T * d, 2);
    std::vector<float> dense(vocab * d, 0.0f);
    be->embeddingBackward(T, d, ids.data(), dOut.data(), dense.data());
    std::vector<int32_t> rows(T, 99);
    std::vector<float> values(T * d, 42.0f);
    be->rowGradient(T, d, vocab, ids.data(), dOut.data(), rows.data(),
                    values.data());
    expectRowList(rows);
    EXPECT_EQ(std::set<int32_t>(ids.begin(), ids.end()).size(),
              static_cast<size_t>(std::count_if(
                  rows.begin(), rows.end(), [](int32_t r) { return r >= 0; })));
    for (size_t i = 0; i < rows.size(); ++i)
      if (rows[i] < 0)
        for (int64_t j = 0; j < d; ++j)
          EXPECT_EQ(values[i * d + j], 0.0f);
    // Same additions in the same order: identical bits.
    EXPECT_EQ(scatter(rows, values, vocab, d), dense) << "vocab " << vocab;
  }
}

TEST(RowGradient, SkipsNegativeKeysAndRejectsLargeOnes) {
  auto be = rt::createCpuBackend();
  std::vector<int32_t> keys = {3, -1, 0, 3, -7};
  std::vector<float> values = {1, 2, 3, 4, 5}, sums(5);
  std::vector<int32_t> rows(5);
  be->rowGradient(5, 1, 4, keys.data(), values.data(), rows.data(),
                  sums.data());
  EXPECT_EQ(rows, (std::vector<int32_t>{0, 3, -1, -1, -1}));
  EXPECT_EQ(sums, (std::vector<float>{3, 5, 0, 0, 0}));
  keys[0] = 4;
  EXPECT_THROW(be->rowGradient(5, 1, 4, keys.data(), values.data(), rows.data(),
                               sums.data()),
               std::invalid_argument);
}

TEST(RowGradient, DeterministicAcrossThreadCounts) {
  const int64_t vocab = 50, d = 300, T = 2000;
  auto ids = repeatedIds(T, vocab, 3);
  auto dOut = randomVector(T * d, 4);
  auto run = [&](int threads) {
    int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    std::vector<int32_t> rows(T);
    std::vector<float> values(T * d);
    rt::cpu::rowGradient<float>(T, d, vocab, ids.data(), dOut.data(),
                                rows.data(), values.data());
    omp_set_num_threads(saved);
    return values;
  };
  EXPECT_EQ(run(1), run(2));
  EXPECT_EQ(run(3), run(2));
}

// L(table) = <embedding(ids, table), w>: each touched row's value is dL/d row.
TEST(RowGradient, EmbeddingFiniteDifferences) {
  const int64_t vocab = 9, d = 4;
  std::vector<int32_t> ids = {4, 1, 4, 0, 8, 4, 1};
  const int64_t T = ids.size();
  auto table = randomVector<double>(vocab * d, 5);
  auto w = randomVector<double>(T * d, 6);
  auto loss = [&](const std::vector<double> &tab) {
    std::vector<double> out(T * d);
    rt::cpu::embeddingForward<double>(T, d, ids.data(), tab.data(), out.data());
    double sum = 0;
    for (int64_t i = 0; i < T * d; ++i)
      sum += out[i] * w[i];
    return sum;
  };
  std::vector<int32_t> rows(T);
  std::vector<double> values(T * d);
  rt::cpu::rowGradient<double>(T, d, vocab, ids.data(), w.data(), rows.data(),
                               values.data());
  int64_t touched = 0;
  for (int64_t i = 0; i < T; ++i) {
    if (rows[i] < 0)
      continue;
    ++touched;
    std::vector<double> row(values.begin() + i * d,
                            values.begin() + (i + 1) * d);
    moe::test::expectAllClose(row, rowDerivative(loss, table, rows[i], d), 1e-7,
                              1e-9, "embedding row");
  }
  EXPECT_EQ(touched, 4);
  // An untouched row has no gradient.
  for (double g : rowDerivative(loss, table, 2, d))
    EXPECT_NEAR(g, 0.0, 1e-9);
}

//===----------------------------------------------------------------------===//
// Sampled softmax
//===----------------------------------------------------------------------===//

TEST(SampledSoftmaxRows, ScatteredEqualsDense) {
  auto be = rt::createCpuBackend();
  struct Case {
    int64_t T, d, V, S;
  };
  for (Case c : {Case{1, 3, 4, 3}, Case{9, 5, 7, 6}, Case{33, 70, 500, 40},
                 Case{200, 130, 2000, 64}}) {
    auto hidden = randomVector(c.T * c.d, 7);
    auto W = randomVector(c.V * c.d, 8);
    auto b = randomVector(c.V, 9);
    std::vector<int32_t> targets = repeatedIds(c.T, c.V, 10);
    if (c.T > 4)
      targets[3] = -1; // padding
    const float dLoss = 2.0f;
    float lossDense, lossRows;
    std::vector<float> dHDense(c.T * c.d), dW(c.V * c.d, 0.0f), dB(c.V, 0.0f);
    be->sampledSoftmaxCrossEntropy(
        c.T, c.d, c.V, c.S, hidden.data(), W.data(), b.data(), targets.data(),
        5, 6, &dLoss, 0.25f, &lossDense, dHDense.data(), dW.data(), dB.data());
    const int64_t n = c.S + c.T;
    std::vector<float> dHRows(c.T * c.d), wValues(n * c.d), bValues(n);
    std::vector<int32_t> rows(n);
    be->sampledSoftmaxCrossEntropyRows(
        c.T, c.d, c.V, c.S, hidden.data(), W.data(), b.data(), targets.data(),
        5, 6, &dLoss, 0.25f, &lossRows, dHRows.data(), rows.data(),
        wValues.data(), bValues.data());
    expectRowList(rows);
    EXPECT_EQ(lossRows, lossDense);
    EXPECT_EQ(dHRows, dHDense);
    EXPECT_EQ(scatter(rows, wValues, c.V, c.d), dW) << "V " << c.V;
    EXPECT_EQ(scatter(rows, bValues, c.V, 1), dB) << "V " << c.V;
  }
}

// Each touched class's weight and bias row against central differences of
// the sampled loss; an untouched class has none.
TEST(SampledSoftmaxRows, FiniteDifferences) {
  const int64_t T = 4, d = 3, V = 12, S = 5;
  const uint64_t seed = 11, counter = 2;
  auto hidden = randomVector<double>(T * d, 12);
  auto W = randomVector<double>(V * d, 13);
  auto b = randomVector<double>(V, 14);
  std::vector<int32_t> targets = {0, 3, -1, 1};
  const double dLoss = 0.8;
  auto loss = [&](const std::vector<double> &w, const std::vector<double> &bb) {
    double l;
    rt::cpu::sampledSoftmaxCrossEntropy<double>(
        T, d, V, S, hidden.data(), w.data(), bb.data(), targets.data(), seed,
        counter, dLoss, &l, nullptr, nullptr, nullptr);
    return dLoss * l;
  };
  const int64_t n = S + T;
  double l;
  std::vector<double> dH(T * d), wValues(n * d), bValues(n);
  std::vector<int32_t> rows(n);
  rt::cpu::sampledSoftmaxCrossEntropyRows<double>(
      T, d, V, S, hidden.data(), W.data(), b.data(), targets.data(), seed,
      counter, dLoss, &l, dH.data(), rows.data(), wValues.data(),
      bValues.data());
  std::set<int32_t> touched;
  for (int64_t i = 0; i < n; ++i) {
    if (rows[i] < 0)
      continue;
    touched.insert(rows[i]);
    std::vector<double> row(wValues.begin() + i * d,
                            wValues.begin() + (i + 1) * d);
    moe::test::expectAllClose(
        row,
        rowDerivative([&](const std::vector<double> &w) { return loss(w, b); },
                      W, rows[i], d),
        1e-6, 1e-8, "weight row");
    std::vector<double> bias = {bValues[i]};
    moe::test::expectAllClose(
        bias,
        rowDerivative(
            [&](const std::vector<double> &bb) { return loss(W, bb); }, b,
            rows[i], 1),
        1e-6, 1e-8, "bias row");
  }
  for (int32_t target : targets)
    if (target >= 0)
      EXPECT_TRUE(touched.count(target)) << "target " << target;
  for (int64_t c = 0; c < V; ++c)
    if (!touched.count(c))
      for (double g : rowDerivative(
               [&](const std::vector<double> &w) { return loss(w, b); }, W, c,
               d))
        EXPECT_NEAR(g, 0.0, 1e-9) << "untouched class " << c;
}

//===----------------------------------------------------------------------===//
// Lazy Adam
//===----------------------------------------------------------------------===//

namespace {

struct AdamState {
  std::vector<float> p, m, v;
};

void denseStep(rt::Backend &be, AdamState &s, const std::vector<float> &g,
               float lr, int64_t step, const rt::AdamConfig &c) {
  be.adamUpdate(s.p.size(), s.p.data(), g.data(), s.m.data(), s.v.data(), &lr,
                &step, c.beta1, c.beta2, c.eps, c.weightDecay);
}

void lazyStep(rt::Backend &be, AdamState &s, const std::vector<int32_t> &rows,
              const std::vector<float> &values, int64_t d, float lr,
              int64_t step, const rt::AdamConfig &c) {
  be.adamUpdateRows(rows.size(), d, s.p.data(), rows.data(), values.data(),
                    s.m.data(), s.v.data(), &lr, &step, c.beta1, c.beta2, c.eps,
                    c.weightDecay);
}

} // namespace

TEST(LazyAdam, FirstStepEqualsDenseLaterStepsDifferOnlyOnUntouchedRows) {
  auto be = rt::createCpuBackend();
  const int64_t vocab = 40, d = 6, T = 25;
  rt::AdamConfig config; // weight decay 0
  auto init = randomVector(vocab * d, 20);
  AdamState dense{init, std::vector<float>(vocab * d, 0.0f),
                  std::vector<float>(vocab * d, 0.0f)};
  AdamState lazy = dense;
  std::set<int32_t> touchedBefore;
  for (int64_t step = 1; step <= 3; ++step) {
    auto ids = repeatedIds(T, vocab / 2 + step * 5, 21 + step);
    auto dOut = randomVector(T * d, 30 + step);
    std::vector<int32_t> rows(T);
    std::vector<float> values(T * d);
    be->rowGradient(T, d, vocab, ids.data(), dOut.data(), rows.data(),
                    values.data());
    denseStep(*be, dense, scatter(rows, values, vocab, d), 1e-2f, step, config);
    lazyStep(*be, lazy, rows, values, d, 1e-2f, step, config);
    std::set<int32_t> touched(ids.begin(), ids.end());
    for (int64_t r = 0; r < vocab; ++r) {
      bool same = true;
      for (int64_t j = 0; j < d; ++j)
        same &= dense.p[r * d + j] == lazy.p[r * d + j] &&
                dense.m[r * d + j] == lazy.m[r * d + j] &&
                dense.v[r * d + j] == lazy.v[r * d + j];
      if (step == 1 || !touchedBefore.count(r))
        // Moments were zero (or equal) wherever the rows differ.
        EXPECT_TRUE(same) << "step " << step << " row " << r;
      else if (!touched.count(r))
        // Dense Adam keeps moving a row by its decaying moments.
        EXPECT_FALSE(same) << "step " << step << " row " << r;
    }
    // The rows touched at step 1 and at step 2 (same moments before) agree.
    touchedBefore.insert(touched.begin(), touched.end());
  }
}

TEST(LazyAdam, UntouchedRowsKeepEverythingEvenWithDecay) {
  auto be = rt::createCpuBackend();
  const int64_t vocab = 10, d = 3;
  rt::AdamConfig config;
  config.weightDecay = 0.1f;
  AdamState s{randomVector(vocab * d, 40), randomVector(vocab * d, 41),
              randomVector(vocab * d, 42, 0.0, 1.0)};
  AdamState before = s;
  std::vector<int32_t> rows = {2, 7, -1};
  auto values = randomVector(rows.size() * d, 43);
  lazyStep(*be, s, rows, values, d, 1e-2f, 5, config);
  // The touched rows take exactly dense Adam's step of their own row.
  for (int64_t i = 0; i < 2; ++i) {
    AdamState row;
    for (auto [from, to] :
         {std::pair{&before.p, &row.p}, std::pair{&before.m, &row.m},
          std::pair{&before.v, &row.v}})
      to->assign(from->begin() + rows[i] * d,
                 from->begin() + (rows[i] + 1) * d);
    denseStep(*be, row,
              std::vector<float>(values.begin() + i * d,
                                 values.begin() + (i + 1) * d),
              1e-2f, 5, config);
    for (int64_t j = 0; j < d; ++j)
      EXPECT_EQ(s.p[rows[i] * d + j], row.p[j]);
  }
  for (int64_t r = 0; r < vocab; ++r) {
    if (r == 2 || r == 7)
      continue;
    for (int64_t j = 0; j < d; ++j) {
      EXPECT_EQ(s.p[r * d + j], before.p[r * d + j]);
      EXPECT_EQ(s.m[r * d + j], before.m[r * d + j]);
      EXPECT_EQ(s.v[r * d + j], before.v[r * d + j]);
    }
  }
}
