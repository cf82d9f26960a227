//===- HierarchyTest.cpp - Hierarchical routing composition ---------------===//
//
// composeRoutes and its CSR form against a direct reading of paper 3.3
// (expert g * m + j, gate G_primary(x)_g * G_g(x)_j); the secondary-level
// masks of batchwise hierarchies (Appendix A inside each group's rows), the
// grouped Eq. 8, the per-group load and Load_H against their definitions;
// every backward against finite differences in double precision.
//
//===----------------------------------------------------------------------===//

#include "runtime/Backend.h"
#include "runtime/cpu/kernels/HierarchyKernels.h"

#include "runtime/TestUtil.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

using namespace moe;

namespace {

/// A primary selection (groups, gates), the dispatch permutation of its
/// assignments and a secondary selection per buffer row.
struct TwoLevels {
  TwoLevels(int64_t primary, int64_t k, int64_t groups, int64_t perGroup,
            uint32_t seed)
      : primary(primary), k(k), perGroup(perGroup), group(primary),
        position(primary), local(primary * k) {
    std::mt19937 gen(seed);
    for (auto &g : group)
      g = static_cast<int32_t>(gen() % groups);
    std::iota(position.begin(), position.end(), 0);
    std::shuffle(position.begin(), position.end(), gen);
    for (auto &j : local)
      j = static_cast<int32_t>(gen() % perGroup);
    primaryGate = test::randomVector<double>(primary, seed + 1, 0.1, 1.0);
    secondaryGate = test::randomVector<double>(primary * k, seed + 2, 0.1, 1.0);
  }

  int64_t primary, k, perGroup;
  std::vector<int32_t> group, position, local;
  std::vector<double> primaryGate, secondaryGate;
};

} // namespace

TEST(ComposeRoutes, MatchesTwoLevelDefinition) {
  for (auto [primary, k] : {std::pair<int64_t, int64_t>{12, 2}, {1, 1},
                            {9, 4}, {30, 1}}) {
    TwoLevels t(primary, k, /*groups=*/5, /*perGroup=*/6, 7 + primary);
    std::vector<int32_t> expert(primary * k, -1);
    std::vector<float> gate(primary * k, -1.0f);
    std::vector<float> pg(t.primaryGate.begin(), t.primaryGate.end());
    std::vector<float> sg(t.secondaryGate.begin(), t.secondaryGate.end());
    auto backend = rt::createCpuBackend();
    backend->composeRoutesForward(primary, k, t.perGroup, t.group.data(),
                                  pg.data(), t.position.data(), t.local.data(),
                                  sg.data(), expert.data(), gate.data());
    for (int64_t a = 0; a < primary; ++a)
      for (int64_t s = 0; s < k; ++s) {
        int64_t row = t.position[a];
        EXPECT_EQ(expert[a * k + s],
                  t.group[a] * t.perGroup + t.local[row * k + s])
            << "assignment " << a << " slot " << s;
        EXPECT_FLOAT_EQ(gate[a * k + s], pg[a] * sg[row * k + s]);
      }
  }
}

TEST(ComposeRoutes, NoAssignmentsIsANoOp) {
  auto backend = rt::createCpuBackend();
  EXPECT_NO_THROW(backend->composeRoutesForward(0, 2, 4, nullptr, nullptr,
                                                nullptr, nullptr, nullptr,
                                                nullptr, nullptr));
  EXPECT_THROW(backend->composeRoutesForward(3, 0, 4, nullptr, nullptr,
                                             nullptr, nullptr, nullptr,
                                             nullptr, nullptr),
               std::invalid_argument);
}

// L = sum(gate * w): the backward must give dL/dprimary and dL/dsecondary.
TEST(ComposeRoutes, GradientMatchesFiniteDifferences) {
  TwoLevels t(/*primary=*/8, /*k=*/3, /*groups=*/4, /*perGroup=*/5, 99);
  int64_t n = t.primary * t.k;
  std::vector<double> w = test::randomVector<double>(n, 100);
  auto loss = [&](const std::vector<double> &pg,
                  const std::vector<double> &sg) {
    std::vector<int32_t> expert(n);
    std::vector<double> gate(n);
    rt::cpu::composeRoutesForward(t.primary, t.k, t.perGroup, t.group.data(),
                                  pg.data(), t.position.data(),
                                  t.local.data(), sg.data(), expert.data(),
                                  gate.data());
    double sum = 0;
    for (int64_t i = 0; i < n; ++i)
      sum += gate[i] * w[i];
    return sum;
  };
  std::vector<double> dpg(t.primary), dsg(n);
  rt::cpu::composeRoutesBackward(t.primary, t.k, t.primaryGate.data(),
                                 t.position.data(), t.secondaryGate.data(),
                                 w.data(), dpg.data(), dsg.data());
  test::expectAllClose(
      dpg,
      test::numericGradient(
          [&](const std::vector<double> &pg) {
            return loss(pg, t.secondaryGate);
          },
          t.primaryGate),
      1e-6, 1e-8, "dPrimaryGate");
  test::expectAllClose(
      dsg,
      test::numericGradient(
          [&](const std::vector<double> &sg) {
            return loss(t.primaryGate, sg);
          },
          t.secondaryGate),
      1e-6, 1e-8, "dSecondaryGate");
}

//===----------------------------------------------------------------------===//
// Batchwise hierarchies: masks inside groups, CSR composition, Load_H
//===----------------------------------------------------------------------===//

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

double dot(const std::vector<double> &a, const std::vector<double> &b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i)
    s += a[i] * b[i];
  return s;
}

/// softmax of each row by the definition (the gate probabilities).
std::vector<double> probabilities(int64_t rows, int64_t n,
                                  const std::vector<double> &logits) {
  std::vector<double> p(rows * n);
  for (int64_t r = 0; r < rows; ++r) {
    double maxValue = -kInf, sum = 0;
    for (int64_t i = 0; i < n; ++i)
      maxValue = std::max(maxValue, logits[r * n + i]);
    for (int64_t i = 0; i < n; ++i)
      sum += std::exp(logits[r * n + i] - maxValue);
    for (int64_t i = 0; i < n; ++i)
      p[r * n + i] = std::exp(logits[r * n + i] - maxValue) / sum;
  }
  return p;
}

/// Appendix A inside each group by the definition: in segment g, column i
/// keeps the first m rows of a full stable sort by descending probability.
std::vector<double> referenceGroupedMask(int64_t groups, int64_t rowsPerGroup,
                                         int64_t n, int64_t m,
                                         const std::vector<double> &logits) {
  std::vector<double> p = probabilities(groups * rowsPerGroup, n, logits);
  std::vector<double> mask(groups * rowsPerGroup * n, 0.0);
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t i = 0; i < n; ++i) {
      std::vector<int32_t> order(rowsPerGroup);
      std::iota(order.begin(), order.end(), 0);
      auto prob = [&](int32_t r) { return p[(g * rowsPerGroup + r) * n + i]; };
      std::stable_sort(order.begin(), order.end(),
                       [&](int32_t a, int32_t b) { return prob(a) > prob(b); });
      for (int64_t j = 0; j < m; ++j)
        mask[(g * rowsPerGroup + order[j]) * n + i] = 1.0;
    }
  return mask;
}

/// rowPtr / expert / gate against a 0/1 mask: each row's kept experts in
/// increasing order, gates the softmax over their logits.
void expectAssignmentsOfMask(int64_t rows, int64_t n,
                             const std::vector<double> &logits,
                             const std::vector<double> &mask,
                             const std::vector<int32_t> &rowPtr,
                             const std::vector<int32_t> &expert,
                             const std::vector<double> &gate) {
  ASSERT_EQ(rowPtr[0], 0);
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<int32_t> kept;
    double sum = 0;
    for (int64_t i = 0; i < n; ++i)
      if (mask[r * n + i] == 1.0) {
        kept.push_back(static_cast<int32_t>(i));
        sum += std::exp(logits[r * n + i]);
      }
    ASSERT_EQ(rowPtr[r + 1] - rowPtr[r], int32_t(kept.size())) << "row " << r;
    for (size_t j = 0; j < kept.size(); ++j) {
      EXPECT_EQ(expert[rowPtr[r] + j], kept[j]) << "row " << r;
      EXPECT_NEAR(gate[rowPtr[r] + j], std::exp(logits[r * n + kept[j]]) / sum,
                  1e-13)
          << "row " << r;
    }
  }
}

/// The smallest gap, over every (group, expert) column, between the
/// probabilities at ranks m - 1 and m: finite differences must not reorder
/// them.
double rankGap(int64_t groups, int64_t rowsPerGroup, int64_t n, int64_t m,
               const std::vector<double> &logits) {
  std::vector<double> p = probabilities(groups * rowsPerGroup, n, logits);
  double gap = kInf;
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t i = 0; i < n; ++i) {
      std::vector<double> column;
      for (int64_t r = 0; r < rowsPerGroup; ++r)
        column.push_back(p[(g * rowsPerGroup + r) * n + i]);
      std::sort(column.rbegin(), column.rend());
      if (m > 0 && m < rowsPerGroup)
        gap = std::min(gap, column[m - 1] - column[m]);
    }
  return gap;
}

} // namespace

TEST(GroupedBatchwiseMask, KeepsTheTopMRowsOfEveryExpertInEachGroup) {
  struct Case {
    int64_t groups, rowsPerGroup, n, m;
    bool ties;
  };
  const Case cases[] = {{3, 10, 4, 3, false}, {2, 8, 4, 2, true},
                        {1, 12, 5, 4, false}, {4, 5, 3, 5, false},
                        {2, 6, 3, 0, false},  {5, 40, 30, 7, false}};
  for (const Case &c : cases) {
    SCOPED_TRACE(testing::Message()
                 << "groups=" << c.groups << " rows=" << c.rowsPerGroup
                 << " n=" << c.n << " m=" << c.m << " ties=" << c.ties);
    int64_t rows = c.groups * c.rowsPerGroup, kept = c.groups * c.n * c.m;
    auto logits = test::randomVector<double>(rows * c.n, 51, -3.0, 3.0);
    if (c.ties) {
      // Rows repeat five distinct ones inside and across the groups.
      std::vector<double> pool(logits.begin(), logits.begin() + 5 * c.n);
      auto pick = test::randomVector<double>(rows, 52, 0.0, 5.0);
      for (int64_t r = 0; r < rows; ++r)
        std::copy_n(pool.begin() + int64_t(pick[r]) * c.n, c.n,
                    logits.begin() + r * c.n);
    }
    std::vector<double> mask(rows * c.n, -1.0), gate(kept);
    std::vector<int32_t> rowPtr(rows + 1), expert(kept);
    rt::cpu::groupedBatchwiseMaskForward<double>(
        c.groups, c.rowsPerGroup, c.n, c.m, logits.data(), mask.data(),
        rowPtr.data(), expert.data(), gate.data());
    // Every expert of every group keeps exactly m of the group's rows.
    for (int64_t g = 0; g < c.groups; ++g)
      for (int64_t i = 0; i < c.n; ++i) {
        int64_t count = 0;
        for (int64_t r = 0; r < c.rowsPerGroup; ++r)
          count += mask[(g * c.rowsPerGroup + r) * c.n + i] == 1.0;
        EXPECT_EQ(count, c.m) << "group " << g << " expert " << i;
      }
    EXPECT_EQ(mask,
              referenceGroupedMask(c.groups, c.rowsPerGroup, c.n, c.m, logits));
    EXPECT_EQ(rowPtr[rows], kept);
    expectAssignmentsOfMask(rows, c.n, logits, mask, rowPtr, expert, gate);
  }
}

TEST(GroupedBatchwiseMask, OneGroupIsTheBatchwiseMask) {
  int64_t T = 23, n = 6, m = 5;
  auto logits = test::randomVector<double>(T * n, 53, -2.0, 2.0);
  std::vector<double> mask(T * n), flatMask(T * n), gate(n * m),
      flatGate(n * m);
  std::vector<int32_t> rowPtr(T + 1), flatRowPtr(T + 1), expert(n * m),
      flatExpert(n * m);
  rt::cpu::groupedBatchwiseMaskForward<double>(1, T, n, m, logits.data(),
                                               mask.data(), rowPtr.data(),
                                               expert.data(), gate.data());
  rt::cpu::batchwiseMaskForward<double>(T, n, m, logits.data(), flatMask.data(),
                                        flatRowPtr.data(), flatExpert.data(),
                                        flatGate.data());
  EXPECT_EQ(mask, flatMask);
  EXPECT_EQ(rowPtr, flatRowPtr);
  EXPECT_EQ(expert, flatExpert);
  EXPECT_EQ(gate, flatGate);
  // Two groups of the same rows rank each half on its own: the masks differ.
  std::vector<double> halves(22 * n);
  std::vector<int32_t> halvesRowPtr(23), halvesExpert(2 * n * 2);
  std::vector<double> halvesGate(2 * n * 2);
  rt::cpu::groupedBatchwiseMaskForward<double>(
      2, 11, n, 2, logits.data(), halves.data(), halvesRowPtr.data(),
      halvesExpert.data(), halvesGate.data());
  std::vector<double> whole(22 * n);
  std::vector<int32_t> wholeRowPtr(23), wholeExpert(n * 4);
  std::vector<double> wholeGate(n * 4);
  rt::cpu::batchwiseMaskForward<double>(22, n, 4, logits.data(), whole.data(),
                                        wholeRowPtr.data(), wholeExpert.data(),
                                        wholeGate.data());
  EXPECT_NE(halves, whole);
}

TEST(GroupedBatchwiseMask, GatesBackwardMatchesFiniteDifferences) {
  int64_t groups = 2, rowsPerGroup = 6, n = 3, m = 2;
  int64_t rows = groups * rowsPerGroup, kept = groups * n * m;
  auto logits = test::randomVector<double>(rows * n, 54, -2.0, 2.0);
  ASSERT_GT(rankGap(groups, rowsPerGroup, n, m, logits), 1e-4);
  auto w = test::randomVector<double>(kept, 55);
  std::vector<double> mask(rows * n), gate(kept);
  std::vector<int32_t> rowPtr(rows + 1), expert(kept);
  auto forward = [&](const std::vector<double> &x) {
    rt::cpu::groupedBatchwiseMaskForward<double>(
        groups, rowsPerGroup, n, m, x.data(), mask.data(), rowPtr.data(),
        expert.data(), gate.data());
    return dot(gate, w);
  };
  std::vector<double> numeric = test::numericGradient(forward, logits);
  forward(logits);
  std::vector<double> dLogits(rows * n, 99.0);
  rt::cpu::maskedGateBackward<double>(rows, n, rowPtr.data(), expert.data(),
                                      gate.data(), w.data(), dLogits.data());
  test::expectAllClose(dLogits, numeric, 1e-6, 1e-9, "dLogits");
}

TEST(GroupedThresholdMask, KeepsProbabilitiesAboveTheirGroupsThresholds) {
  // 20 rows: group 0 owns rows 0-6, group 1 none, group 2 rows 7-14; rows
  // 15-19 are unused slots of a data-dependent primary mask and hold NaN,
  // which must never be read.
  int64_t rows = 20, groups = 3, n = 4;
  std::vector<int32_t> offsets = {0, 7, 7, 15};
  auto logits = test::randomVector<double>(rows * n, 56, -2.0, 2.0);
  for (int64_t q = 15 * n; q < rows * n; ++q)
    logits[q] = std::numeric_limits<double>::quiet_NaN();
  auto thresholds = test::randomVector<double>(groups * n, 57, 0.1, 0.4);
  std::vector<double> mask(rows * n, -1.0), gate(rows * n, -1.0);
  std::vector<int32_t> rowPtr(rows + 1, -1), expert(rows * n, -1);
  int64_t numAssigned = -1;
  rt::cpu::groupedThresholdMaskForward<double>(
      rows, groups, n, logits.data(), thresholds.data(), offsets.data(),
      mask.data(), rowPtr.data(), expert.data(), gate.data(), rows * n,
      &numAssigned);
  std::vector<double> p = probabilities(rows, n, logits);
  std::vector<double> expected(rows * n, 0.0);
  for (int64_t r = 0; r < 15; ++r) {
    int64_t g = r < 7 ? 0 : 2;
    for (int64_t i = 0; i < n; ++i)
      expected[r * n + i] = p[r * n + i] > thresholds[g * n + i] ? 1.0 : 0.0;
  }
  EXPECT_EQ(mask, expected);
  int64_t count = std::count(expected.begin(), expected.end(), 1.0);
  EXPECT_EQ(numAssigned, count);
  EXPECT_GT(count, 0);
  EXPECT_LT(count, 15 * n);
  expectAssignmentsOfMask(rows, n, logits, mask, rowPtr, expert, gate);
  for (int64_t a = 0; a < count; ++a)
    EXPECT_TRUE(std::isfinite(gate[a])) << a;
  // The thresholds of another group would keep other experts.
  std::vector<double> swapped = thresholds;
  std::swap_ranges(swapped.begin(), swapped.begin() + n,
                   swapped.begin() + 2 * n);
  std::vector<double> swappedMask(rows * n);
  rt::cpu::groupedThresholdMaskForward<double>(
      rows, groups, n, logits.data(), swapped.data(), offsets.data(),
      swappedMask.data(), rowPtr.data(), expert.data(), gate.data(), rows * n,
      nullptr);
  EXPECT_NE(swappedMask, mask);
}

TEST(GroupedThresholdMask, CompiledCapacityHoldsExactlyWhatFits) {
  // As above: group 1 empty, rows 15-19 unused slots (NaN, never read).
  int64_t rows = 20, groups = 3, n = 4;
  std::vector<int32_t> offsets = {0, 7, 7, 15};
  auto logits = test::randomVector<double>(rows * n, 59, -2.0, 2.0);
  for (int64_t q = 15 * n; q < rows * n; ++q)
    logits[q] = std::numeric_limits<double>::quiet_NaN();
  auto thresholds = test::randomVector<double>(groups * n, 60, 0.1, 0.4);
  std::vector<double> mask(rows * n), gate(rows * n);
  std::vector<int32_t> rowPtr(rows + 1), expert(rows * n);
  int64_t A = -1;
  rt::cpu::groupedThresholdMaskForward<double>(
      rows, groups, n, logits.data(), thresholds.data(), offsets.data(),
      mask.data(), rowPtr.data(), expert.data(), gate.data(), rows * n, &A);
  ASSERT_GT(A, 1);
  ASSERT_LT(A, 15 * n);

  // Exactly A slots and guards behind them: the uncapped results, nothing
  // written past the capacity.
  const int64_t guard = 16;
  std::vector<double> capMask(rows * n), capGate(A + guard, -3.5);
  std::vector<int32_t> capRowPtr(rows + 1), capExpert(A + guard, -7);
  int64_t capA = -1;
  rt::cpu::groupedThresholdMaskForward<double>(
      rows, groups, n, logits.data(), thresholds.data(), offsets.data(),
      capMask.data(), capRowPtr.data(), capExpert.data(), capGate.data(), A,
      &capA);
  EXPECT_EQ(capA, A);
  EXPECT_EQ(capMask, mask);
  EXPECT_EQ(capRowPtr, rowPtr);
  EXPECT_EQ(std::vector<int32_t>(capExpert.begin(), capExpert.begin() + A),
            std::vector<int32_t>(expert.begin(), expert.begin() + A));
  EXPECT_EQ(std::vector<double>(capGate.begin(), capGate.begin() + A),
            std::vector<double>(gate.begin(), gate.begin() + A));
  EXPECT_EQ(std::vector<int32_t>(capExpert.begin() + A, capExpert.end()),
            std::vector<int32_t>(guard, -7));
  EXPECT_EQ(std::vector<double>(capGate.begin() + A, capGate.end()),
            std::vector<double>(guard, -3.5));

  // One less: a runtime error naming the option, no assignment written.
  std::vector<double> lessGate(A + guard, -3.5);
  std::vector<int32_t> lessExpert(A + guard, -7);
  try {
    rt::cpu::groupedThresholdMaskForward<double>(
        rows, groups, n, logits.data(), thresholds.data(), offsets.data(),
        capMask.data(), capRowPtr.data(), lessExpert.data(), lessGate.data(),
        A - 1, nullptr);
    ADD_FAILURE() << "no error with a capacity of A - 1";
  } catch (const std::runtime_error &e) {
    EXPECT_EQ(std::string(e.what()),
              "groupedThresholdMaskForward: " + std::to_string(A) +
                  " assignments pass the thresholds but the compiled "
                  "capacity is " +
                  std::to_string(A - 1) +
                  " (recompile with a larger "
                  "--moe-inference-pipeline=\"threshold-capacity=...\" or "
                  "--moe-train-pipeline=\"threshold-capacity=...\")");
  }
  EXPECT_EQ(lessExpert, std::vector<int32_t>(A + guard, -7));
  EXPECT_EQ(lessGate, std::vector<double>(A + guard, -3.5));
}

TEST(GroupedThresholdMask, RejectsBadGroupOffsets) {
  std::vector<double> logits(6 * 2, 0.0), thresholds(2 * 2, 0.5), mask(12),
      gate(12);
  std::vector<int32_t> rowPtr(7), expert(12);
  for (std::vector<int32_t> offsets :
       {std::vector<int32_t>{0, 4, 3}, std::vector<int32_t>{0, 3, 7},
        std::vector<int32_t>{-1, 3, 6}})
    EXPECT_THROW(rt::cpu::groupedThresholdMaskForward<double>(
                     6, 2, 2, logits.data(), thresholds.data(), offsets.data(),
                     mask.data(), rowPtr.data(), expert.data(), gate.data(), 12,
                     nullptr),
                 std::invalid_argument);
}

TEST(GroupedBatchwiseThresholdLoss, MatchesEquation8PerGroupAndItsGradient) {
  int64_t groups = 3, rowsPerGroup = 12, n = 4, m = 3;
  int64_t rows = groups * rowsPerGroup;
  auto logits = test::randomVector<double>(rows * n, 58, -2.0, 2.0);
  std::vector<double> p = probabilities(rows, n, logits);
  // Each group's thresholds between two of its sorted probabilities, away
  // from every kink of the loss.
  std::vector<double> thresholds(groups * n);
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t i = 0; i < n; ++i) {
      std::vector<double> column;
      for (int64_t r = 0; r < rowsPerGroup; ++r)
        column.push_back(p[(g * rowsPerGroup + r) * n + i]);
      std::sort(column.begin(), column.end());
      int64_t at = 4 + (g + i) % 5;
      ASSERT_GT(column[at + 1] - column[at], 1e-4) << g << "," << i;
      thresholds[g * n + i] = 0.5 * (column[at] + column[at + 1]);
    }
  std::vector<double> mask(rows * n), gate(groups * n * m);
  std::vector<int32_t> rowPtr(rows + 1), expert(groups * n * m);
  rt::cpu::groupedBatchwiseMaskForward<double>(
      groups, rowsPerGroup, n, m, logits.data(), mask.data(), rowPtr.data(),
      expert.data(), gate.data());
  auto loss = [&](const std::vector<double> &thr) {
    double l = 0;
    rt::cpu::groupedBatchwiseThresholdLossForward<double>(
        groups, rowsPerGroup, n, logits.data(), mask.data(), thr.data(), &l);
    return l;
  };
  auto reference = [&](const std::vector<double> &thr, bool ownGroup) {
    double sum = 0;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = 0; i < n; ++i) {
        double t = thr[(ownGroup ? r / rowsPerGroup : 0) * n + i];
        double x = p[r * n + i];
        sum += ((x > t ? 1.0 : 0.0) - mask[r * n + i]) * (x - t);
      }
    return sum;
  };
  double expected = reference(thresholds, true);
  EXPECT_NEAR(loss(thresholds), expected, 1e-12);
  EXPECT_GT(expected, 0.0);
  // Group 0's thresholds everywhere would measure something else.
  EXPECT_GT(std::fabs(expected - reference(thresholds, false)), 1e-6);

  double dLoss = 0.7;
  std::vector<double> dThresholds(groups * n, 5.0);
  rt::cpu::groupedBatchwiseThresholdLossBackward<double>(
      groups, rowsPerGroup, n, logits.data(), mask.data(), thresholds.data(),
      dLoss, dThresholds.data());
  std::vector<double> numeric = test::numericGradient(loss, thresholds);
  for (double &g : numeric)
    g *= dLoss;
  test::expectAllClose(dThresholds, numeric, 1e-6, 1e-8, "dThresholds");
}

namespace {

/// Two CSR levels with unused slots: T tokens with 0-3 groups each (the
/// primary capacity has spare slots), a permutation of the used primary
/// assignments onto buffer rows, and 0-3 local experts per used row.
struct CsrLevels {
  CsrLevels(int64_t tokens, int64_t groups, int64_t perGroup, uint32_t seed)
      : tokens(tokens), perGroup(perGroup) {
    std::mt19937 gen(seed);
    primaryRowPtr.push_back(0);
    for (int64_t t = 0; t < tokens; ++t) {
      int64_t count = gen() % 4;
      for (int64_t j = 0; j < count; ++j)
        group.push_back(static_cast<int32_t>(gen() % groups));
      primaryRowPtr.push_back(static_cast<int32_t>(group.size()));
    }
    int64_t used = group.size();
    primaryCapacity = used + 3;
    group.resize(primaryCapacity, 0);
    position.resize(primaryCapacity, 0);
    std::iota(position.begin(), position.begin() + used, 0);
    std::shuffle(position.begin(), position.begin() + used, gen);
    secondaryRowPtr.push_back(0);
    for (int64_t r = 0; r < primaryCapacity; ++r) {
      int64_t count = r < used ? gen() % 4 : 0;
      for (int64_t j = 0; j < count; ++j)
        local.push_back(static_cast<int32_t>(gen() % perGroup));
      secondaryRowPtr.push_back(static_cast<int32_t>(local.size()));
    }
    secondaryCapacity = local.size() + 5;
    local.resize(secondaryCapacity, 0);
    primaryGate = test::randomVector<double>(primaryCapacity, seed + 1, 0.1, 1);
    secondaryGate =
        test::randomVector<double>(secondaryCapacity, seed + 2, 0.1, 1);
  }

  int64_t tokens, perGroup, primaryCapacity, secondaryCapacity;
  std::vector<int32_t> primaryRowPtr, group, position, secondaryRowPtr, local;
  std::vector<double> primaryGate, secondaryGate;
};

} // namespace

TEST(ComposeRoutesCsr, MatchesTwoLevelDefinition) {
  CsrLevels c(/*tokens=*/9, /*groups=*/4, /*perGroup=*/5, 61);
  std::vector<int32_t> rowPtr(c.tokens + 1, -1),
      expert(c.secondaryCapacity, -1);
  std::vector<double> gate(c.secondaryCapacity, -1.0);
  rt::cpu::composeRoutesCsrForward<double>(
      c.tokens, c.primaryCapacity, c.secondaryCapacity, c.perGroup,
      c.primaryRowPtr.data(), c.group.data(), c.primaryGate.data(),
      c.position.data(), c.secondaryRowPtr.data(), c.local.data(),
      c.secondaryGate.data(), rowPtr.data(), expert.data(), gate.data());
  // Paper 3.3, token by token: expert g * m + j, gate p_g * s_j.
  std::vector<int32_t> expectedRowPtr = {0}, expectedExpert;
  std::vector<double> expectedGate;
  for (int64_t t = 0; t < c.tokens; ++t) {
    for (int32_t a = c.primaryRowPtr[t]; a < c.primaryRowPtr[t + 1]; ++a) {
      int32_t row = c.position[a];
      for (int32_t b = c.secondaryRowPtr[row]; b < c.secondaryRowPtr[row + 1];
           ++b) {
        expectedExpert.push_back(c.group[a] * c.perGroup + c.local[b]);
        expectedGate.push_back(c.primaryGate[a] * c.secondaryGate[b]);
      }
    }
    expectedRowPtr.push_back(static_cast<int32_t>(expectedExpert.size()));
  }
  ASSERT_GT(expectedExpert.size(), 0u);
  EXPECT_EQ(rowPtr, expectedRowPtr);
  int64_t used = expectedExpert.size();
  EXPECT_EQ(std::vector<int32_t>(expert.begin(), expert.begin() + used),
            expectedExpert);
  test::expectAllClose(std::vector<double>(gate.begin(), gate.begin() + used),
                       expectedGate, 1e-15, 0, "gate");
  // Free slots count nothing in sums over every slot (the importance).
  for (int64_t a = used; a < c.secondaryCapacity; ++a) {
    EXPECT_EQ(expert[a], 0) << a;
    EXPECT_EQ(gate[a], 0.0) << a;
  }
}

TEST(ComposeRoutesCsr, GradientMatchesFiniteDifferences) {
  CsrLevels c(/*tokens=*/7, /*groups=*/3, /*perGroup=*/4, 62);
  std::vector<int32_t> rowPtr(c.tokens + 1), expert(c.secondaryCapacity);
  std::vector<double> gate(c.secondaryCapacity);
  auto w = test::randomVector<double>(c.secondaryCapacity, 63);
  auto forward = [&](const std::vector<double> &pg,
                     const std::vector<double> &sg) {
    rt::cpu::composeRoutesCsrForward<double>(
        c.tokens, c.primaryCapacity, c.secondaryCapacity, c.perGroup,
        c.primaryRowPtr.data(), c.group.data(), pg.data(), c.position.data(),
        c.secondaryRowPtr.data(), c.local.data(), sg.data(), rowPtr.data(),
        expert.data(), gate.data());
    // Only the used slots are composed routes.
    double sum = 0;
    for (int32_t o = 0; o < rowPtr[c.tokens]; ++o)
      sum += gate[o] * w[o];
    return sum;
  };
  forward(c.primaryGate, c.secondaryGate);
  std::vector<double> dpg(c.primaryCapacity, 9.0),
      dsg(c.secondaryCapacity, 9.0);
  std::vector<double> dGate(w);
  std::fill(dGate.begin() + rowPtr[c.tokens], dGate.end(), 0.0);
  rt::cpu::composeRoutesCsrBackward<double>(
      c.tokens, c.primaryCapacity, c.secondaryCapacity, rowPtr.data(),
      c.primaryRowPtr.data(), c.primaryGate.data(), c.position.data(),
      c.secondaryRowPtr.data(), c.secondaryGate.data(), dGate.data(),
      dpg.data(), dsg.data());
  test::expectAllClose(dpg,
                       test::numericGradient(
                           [&](const std::vector<double> &pg) {
                             return forward(pg, c.secondaryGate);
                           },
                           c.primaryGate),
                       1e-6, 1e-8, "dPrimaryGate");
  test::expectAllClose(dsg,
                       test::numericGradient(
                           [&](const std::vector<double> &sg) {
                             return forward(c.primaryGate, sg);
                           },
                           c.secondaryGate),
                       1e-6, 1e-8, "dSecondaryGate");
}

TEST(ComposeRoutesCsr, RejectsBadRouting) {
  CsrLevels c(/*tokens=*/5, /*groups=*/2, /*perGroup=*/3, 64);
  std::vector<int32_t> rowPtr(c.tokens + 1), expert(c.secondaryCapacity);
  std::vector<double> gate(c.secondaryCapacity);
  auto run = [&](const CsrLevels &l, int64_t secondaryCapacity) {
    rt::cpu::composeRoutesCsrForward<double>(
        l.tokens, l.primaryCapacity, secondaryCapacity, l.perGroup,
        l.primaryRowPtr.data(), l.group.data(), l.primaryGate.data(),
        l.position.data(), l.secondaryRowPtr.data(), l.local.data(),
        l.secondaryGate.data(), rowPtr.data(), expert.data(), gate.data());
  };
  EXPECT_NO_THROW(run(c, c.secondaryCapacity));
  ASSERT_GT(c.primaryRowPtr[c.tokens], 0);
  CsrLevels badPosition = c;
  badPosition.position[0] = static_cast<int32_t>(c.primaryCapacity);
  EXPECT_THROW(run(badPosition, c.secondaryCapacity), std::invalid_argument);
  CsrLevels badLocal = c;
  ASSERT_GT(c.secondaryRowPtr.back(), 0);
  badLocal.local[0] = static_cast<int32_t>(c.perGroup);
  EXPECT_THROW(run(badLocal, c.secondaryCapacity), std::invalid_argument);
  // Fewer secondary slots than the secondary row pointers use.
  EXPECT_THROW(run(c, c.secondaryRowPtr.back() - 1), std::invalid_argument);
}

namespace {

constexpr uint64_t kNoiseSeed = 0x1eafc0de5eedULL;
constexpr uint64_t kNoiseCounter = 5;
constexpr double kNoiseEps = 1e-2;

/// Noisy top-k of every dispatched row, as the secondary level computes it.
struct RowTopK {
  std::vector<double> noisy, std, top, gate;
  std::vector<int32_t> expert;
};

RowTopK rowTopK(int64_t rows, int64_t n, int64_t k,
                const std::vector<double> &clean,
                const std::vector<double> &raw) {
  RowTopK o;
  o.noisy.resize(rows * n);
  o.std.resize(rows * n);
  o.top.resize(rows * (k + 1));
  o.gate.resize(rows * k);
  o.expert.resize(rows * k);
  rt::cpu::noisyTopKForward<double>(
      rows, n, k, clean.data(), raw.data(), kNoiseEps, /*training=*/true,
      kNoiseSeed, kNoiseCounter, o.noisy.data(), o.std.data(), o.top.data(),
      o.expert.data(), o.gate.data());
  return o;
}

double phi(double u) { return 0.5 * (1.0 + std::erf(u / std::sqrt(2.0))); }

} // namespace

TEST(GroupedLoadEstimate, SumsTheSmoothLoadOfEachGroupsRows) {
  // Group 1 has no rows; rows 11-13 belong to no group.
  int64_t rows = 14, groups = 3, n = 5, k = 2;
  std::vector<int32_t> offsets = {0, 6, 6, 11};
  auto clean = test::randomVector<double>(rows * n, 65, -2.0, 2.0);
  auto raw = test::randomVector<double>(rows * n, 66);
  RowTopK o = rowTopK(rows, n, k, clean, raw);
  std::vector<double> load(groups * n, -1.0);
  rt::cpu::groupedLoadEstimateForward<double>(
      rows, groups, n, k, offsets.data(), clean.data(), o.noisy.data(),
      o.std.data(), o.top.data(), load.data());
  // P(r, j) = Phi((clean - thr) / std), thr the k-th largest noisy value of
  // the row without j, summed over each group's rows.
  std::vector<double> expected(groups * n, 0.0);
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t r = offsets[g]; r < offsets[g + 1]; ++r)
      for (int64_t j = 0; j < n; ++j) {
        std::vector<double> others;
        for (int64_t i = 0; i < n; ++i)
          if (i != j)
            others.push_back(o.noisy[r * n + i]);
        std::sort(others.rbegin(), others.rend());
        expected[g * n + j] +=
            phi((clean[r * n + j] - others[k - 1]) / o.std[r * n + j]);
      }
  test::expectAllClose(load, expected, 1e-12, 1e-12, "load");
  for (int64_t j = 0; j < n; ++j)
    EXPECT_EQ(load[n + j], 0.0) << "the empty group";
}

TEST(GroupedLoadEstimate, GradientMatchesFiniteDifferences) {
  int64_t rows = 9, groups = 2, n = 4, k = 2;
  std::vector<int32_t> offsets = {0, 3, 7};
  int64_t size = rows * n;
  auto clean = test::randomVector<double>(size, 67, -2.0, 2.0);
  auto raw = test::randomVector<double>(size, 68);
  auto w = test::randomVector<double>(groups * n, 69);
  {
    // The selection must be locally constant under the step.
    RowTopK o = rowTopK(rows, n, k, clean, raw);
    for (int64_t r = 0; r < rows; ++r) {
      std::vector<double> row(o.noisy.begin() + r * n,
                              o.noisy.begin() + (r + 1) * n);
      std::sort(row.begin(), row.end());
      for (int64_t i = 1; i < n; ++i)
        ASSERT_GT(row[i] - row[i - 1], 1e-4) << "row " << r;
    }
  }
  auto loss = [&](const std::vector<double> &x) {
    std::vector<double> c(x.begin(), x.begin() + size);
    std::vector<double> r(x.begin() + size, x.end());
    RowTopK o = rowTopK(rows, n, k, c, r);
    std::vector<double> load(groups * n);
    rt::cpu::groupedLoadEstimateForward<double>(
        rows, groups, n, k, offsets.data(), c.data(), o.noisy.data(),
        o.std.data(), o.top.data(), load.data());
    return dot(load, w);
  };
  std::vector<double> x = clean;
  x.insert(x.end(), raw.begin(), raw.end());
  std::vector<double> numeric = test::numericGradient(loss, x);
  RowTopK o = rowTopK(rows, n, k, clean, raw);
  std::vector<double> dClean(size, 0.0), dRaw(size, 0.0);
  rt::cpu::groupedLoadEstimateBackward<double>(
      rows, groups, n, k, offsets.data(), clean.data(), o.noisy.data(),
      raw.data(), o.std.data(), o.top.data(), w.data(), dClean.data(),
      dRaw.data());
  test::expectAllClose(
      dClean, std::vector<double>(numeric.begin(), numeric.begin() + size),
      1e-6, 1e-8, "dClean");
  test::expectAllClose(
      dRaw, std::vector<double>(numeric.begin() + size, numeric.end()), 1e-6,
      1e-8, "dRawNoise");
  // Rows 7 and 8 belong to no group: no gradient.
  for (int64_t q = 7 * n; q < size; ++q)
    EXPECT_EQ(dClean[q], 0.0) << q;
}

TEST(HierarchicalLoad, MatchesLoadHAndItsGradient) {
  // Groups of 5, 0 and 7 rows.
  int64_t groups = 3, n = 4;
  std::vector<int32_t> offsets = {0, 5, 5, 12};
  auto primaryLoad = test::randomVector<double>(groups, 70, 0.5, 6.0);
  auto secondaryLoad = test::randomVector<double>(groups * n, 71, 0.1, 3.0);
  for (int64_t j = 0; j < n; ++j)
    secondaryLoad[n + j] = 0.0; // a group without rows has no load
  auto forward = [&](const std::vector<double> &pl,
                     const std::vector<double> &sl) {
    std::vector<double> load(groups * n);
    rt::cpu::hierarchicalLoadForward<double>(groups, n, offsets.data(),
                                             pl.data(), sl.data(), load.data());
    return load;
  };
  std::vector<double> load = forward(primaryLoad, secondaryLoad);
  std::vector<double> expected(groups * n);
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t j = 0; j < n; ++j) {
      double rowsOfGroup = std::max(offsets[g + 1] - offsets[g], 1);
      expected[g * n + j] =
          primaryLoad[g] * secondaryLoad[g * n + j] / rowsOfGroup;
    }
  test::expectAllClose(load, expected, 1e-14, 0, "Load_H");

  auto w = test::randomVector<double>(groups * n, 72);
  std::vector<double> dpl(groups, 9.0), dsl(groups * n, 9.0);
  rt::cpu::hierarchicalLoadBackward<double>(
      groups, n, offsets.data(), primaryLoad.data(), secondaryLoad.data(),
      w.data(), dpl.data(), dsl.data());
  test::expectAllClose(dpl,
                       test::numericGradient(
                           [&](const std::vector<double> &pl) {
                             return dot(forward(pl, secondaryLoad), w);
                           },
                           primaryLoad),
                       1e-7, 1e-9, "dPrimaryLoad");
  test::expectAllClose(dsl,
                       test::numericGradient(
                           [&](const std::vector<double> &sl) {
                             return dot(forward(primaryLoad, sl), w);
                           },
                           secondaryLoad),
                       1e-7, 1e-9, "dSecondaryLoad");
}

TEST(CpuBackendHierarchy, EntryPointsRunTheKernels) {
  // The f32 entry points forward to the templates: one call each on a
  // small batchwise hierarchy (2 groups of 2 experts, 4 rows per group).
  auto backend = rt::createCpuBackend(1);
  int64_t groups = 2, rowsPerGroup = 4, n = 2, m = 2, rows = 8;
  std::vector<float> logits = test::randomVector<float>(rows * n, 73);
  std::vector<float> mask(rows * n), gate(groups * n * m);
  std::vector<int32_t> rowPtr(rows + 1), expert(groups * n * m);
  backend->groupedBatchwiseMaskForward(
      groups, rowsPerGroup, n, m, logits.data(), mask.data(), rowPtr.data(),
      expert.data(), gate.data());
  EXPECT_EQ(rowPtr[rows], groups * n * m);
  std::vector<float> thresholds(groups * n, 0.4f);
  float loss = -1.0f;
  backend->groupedBatchwiseThresholdLossForward(groups, rowsPerGroup, n,
                                                logits.data(), mask.data(),
                                                thresholds.data(), &loss);
  EXPECT_GE(loss, 0.0f);
  std::vector<int32_t> offsets = {0, 4, 8};
  int64_t assigned = -1;
  std::vector<int32_t> thrRowPtr(rows + 1), thrExpert(rows * n);
  std::vector<float> thrGate(rows * n);
  backend->groupedThresholdMaskForward(
      rows, groups, n, logits.data(), thresholds.data(), offsets.data(),
      mask.data(), thrRowPtr.data(), thrExpert.data(), thrGate.data(), rows * n,
      &assigned);
  EXPECT_EQ(assigned, thrRowPtr[rows]);
  std::vector<float> pl = {2.0f, 4.0f}, sl = {1.0f, 3.0f, 2.0f, 2.0f};
  std::vector<float> lh(groups * n);
  backend->hierarchicalLoadForward(groups, n, offsets.data(), pl.data(),
                                   sl.data(), lh.data());
  EXPECT_EQ(lh, (std::vector<float>{0.5f, 1.5f, 2.0f, 2.0f}));
}
