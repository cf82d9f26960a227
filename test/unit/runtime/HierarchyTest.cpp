//===- HierarchyTest.cpp - Hierarchical routing composition ---------------===//
//
// composeRoutes against a direct reading of paper 3.3 (expert g * m + j,
// gate G_primary(x)_g * G_g(x)_j), and its backward against finite
// differences in double precision.
//
//===----------------------------------------------------------------------===//

#include "runtime/Backend.h"
#include "runtime/cpu/kernels/HierarchyKernels.h"

#include "runtime/TestUtil.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

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
