//===- DispatchTest.cpp - Dispatch plan, permutes and grouped GEMM --------===//
//
// The plan is compared with a stable sort of the assignments, dispatch /
// combine / grouped GEMM with per-token and per-expert loops, and every
// backward in double against central differences of sum(out * w). Routings
// include empty experts, tokens without experts and sizes that are not a
// multiple of anything; a small MoE layer is checked end to end.
//
//===----------------------------------------------------------------------===//

#include "runtime/Backend.h"
#include "runtime/cpu/kernels/DispatchKernels.h"
#include "runtime/cpu/kernels/RoutingKernels.h"

#include "runtime/TestUtil.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <stdexcept>
#include <utility>
#include <vector>

using namespace moe;
using moe::test::expectAllClose;
using moe::test::numericGradient;
using moe::test::randomVector;

namespace {

using rt::cpu::GroupedSchedule;

double dot(const std::vector<double> &a, const std::vector<double> &b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i)
    s += a[i] * b[i];
  return s;
}

/// A routing in assignment form and the dispatch plan arrays built from it
/// (expertOffset [n+1], positionOf [A], tokenOfPosition [A]).
struct Routing {
  int64_t T, n;
  std::vector<int32_t> rowPtr, expert, offset, positionOf, tokenOfPosition;

  Routing(int64_t T, int64_t n, std::vector<int32_t> rowPtrIn,
          std::vector<int32_t> expertIn)
      : T(T), n(n), rowPtr(std::move(rowPtrIn)), expert(std::move(expertIn)),
        offset(n + 1), positionOf(expert.size()),
        tokenOfPosition(expert.size()) {}

  int64_t numAssignments() const { return int64_t(expert.size()); }
  /// The token of assignment a.
  int32_t tokenOf(int64_t a) const {
    return int32_t(std::upper_bound(rowPtr.begin(), rowPtr.end(), a) -
                   rowPtr.begin() - 1);
  }
  /// Rows of expert e in the buffer.
  int32_t count(int64_t e) const { return offset[e + 1] - offset[e]; }
  /// Builds the plan with the cpu:: kernel.
  void build() {
    rt::cpu::buildDispatchPlan(T, n, numAssignments(), rowPtr.data(),
                               expert.data(), offset.data(), positionOf.data(),
                               tokenOfPosition.data());
  }
};

/// Each token gets between minPer and maxPer distinct experts drawn from
/// `allowed` (so experts outside it stay empty); the plan is built.
std::unique_ptr<Routing> randomRouting(int64_t T, int64_t n, int64_t minPer,
                                       int64_t maxPer,
                                       std::vector<int32_t> allowed,
                                       uint32_t seed) {
  std::mt19937 gen(seed);
  std::vector<int32_t> rowPtr = {0}, expert;
  for (int64_t t = 0; t < T; ++t) {
    int64_t per = std::uniform_int_distribution<int64_t>(minPer, maxPer)(gen);
    std::shuffle(allowed.begin(), allowed.end(), gen);
    expert.insert(expert.end(), allowed.begin(), allowed.begin() + per);
    rowPtr.push_back(int32_t(expert.size()));
  }
  auto r = std::make_unique<Routing>(T, n, rowPtr, expert);
  r->build();
  return r;
}

std::vector<int32_t> range(int32_t n) {
  std::vector<int32_t> v(n);
  std::iota(v.begin(), v.end(), 0);
  return v;
}

/// Routings for the data-movement tests: top-k with T*k = 39, variable
/// experts per token with empty tokens and empty experts, one token, and no
/// tokens at all.
std::vector<std::unique_ptr<Routing>> testRoutings() {
  std::vector<std::unique_ptr<Routing>> routings;
  routings.push_back(randomRouting(13, 5, 3, 3, range(5), 1));
  routings.push_back(randomRouting(17, 7, 0, 3, {0, 1, 3, 4, 6}, 2));
  routings.push_back(randomRouting(1, 4, 2, 2, range(4), 3));
  routings.push_back(randomRouting(0, 3, 0, 0, range(3), 4));
  return routings;
}

//===----------------------------------------------------------------------===//
// Dispatch plan
//===----------------------------------------------------------------------===//

TEST(DispatchPlan, IsAStableSortByExpert) {
  for (const auto &r : testRoutings()) {
    SCOPED_TRACE(testing::Message() << "T=" << r->T << " n=" << r->n);
    int64_t A = r->numAssignments();
    std::vector<int32_t> sorted = range(int32_t(A));
    std::stable_sort(sorted.begin(), sorted.end(), [&](int32_t a, int32_t b) {
      return r->expert[a] < r->expert[b];
    });
    for (int64_t p = 0; p < A; ++p) {
      EXPECT_EQ(r->positionOf[sorted[p]], p);
      EXPECT_EQ(r->tokenOfPosition[p], r->tokenOf(sorted[p]));
    }
    EXPECT_EQ(r->offset[0], 0);
    for (int64_t e = 0; e < r->n; ++e) {
      int64_t expected = std::count(r->expert.begin(), r->expert.end(), e);
      EXPECT_EQ(r->count(e), expected) << e;
      EXPECT_EQ(r->offset[e + 1], r->offset[e] + expected) << e;
    }
  }
  // Experts 2 and 5 of the variable routing receive nothing.
  auto r = randomRouting(17, 7, 0, 3, {0, 1, 3, 4, 6}, 2);
  EXPECT_EQ(r->count(2), 0);
  EXPECT_EQ(r->count(5), 0);
}

TEST(DispatchPlan, RejectsBadRoutings) {
  auto build = [](std::vector<int32_t> rowPtr, std::vector<int32_t> expert,
                  int64_t A) {
    Routing r(int64_t(rowPtr.size()) - 1, 3, rowPtr, expert);
    rt::cpu::buildDispatchPlan(r.T, r.n, A, r.rowPtr.data(), r.expert.data(),
                               r.offset.data(), r.positionOf.data(),
                               r.tokenOfPosition.data());
  };
  EXPECT_NO_THROW(build({0, 1, 2}, {0, 2}, 2));
  EXPECT_THROW(build({0, 1, 2}, {0, 3}, 2), std::invalid_argument);
  EXPECT_THROW(build({0, 1, 2}, {-1, 0}, 2), std::invalid_argument);
  EXPECT_THROW(build({0, 1, 2}, {0, 1}, 1), std::invalid_argument);
  EXPECT_THROW(build({0, 2, 1, 2}, {0, 1}, 2), std::invalid_argument);
}

//===----------------------------------------------------------------------===//
// Dispatch and combine
//===----------------------------------------------------------------------===//

TEST(Dispatch, CopiesRowsAndBackwardIsTheAdjoint) {
  int64_t d = 5;
  for (const auto &r : testRoutings()) {
    SCOPED_TRACE(testing::Message() << "T=" << r->T << " n=" << r->n);
    int64_t T = r->T, A = r->numAssignments();
    auto x = randomVector<double>(T * d, 5);
    std::vector<double> buffer(A * d);
    rt::cpu::dispatchForward<double>(r->numAssignments(), d,
                                     r->tokenOfPosition.data(), x.data(),
                                     buffer.data());
    for (int64_t a = 0; a < A; ++a)
      for (int64_t j = 0; j < d; ++j)
        EXPECT_EQ(buffer[r->positionOf[a] * d + j], x[r->tokenOf(a) * d + j]);

    auto w = randomVector<double>(A * d, 6);
    auto loss = [&](const std::vector<double> &xs) {
      std::vector<double> b(A * d);
      rt::cpu::dispatchForward<double>(r->numAssignments(), d,
                                       r->tokenOfPosition.data(), xs.data(),
                                       b.data());
      return dot(b, w);
    };
    std::vector<double> dx(T * d, 42.0);
    rt::cpu::dispatchBackward<double>(r->T, r->numAssignments(), d,
                                      r->rowPtr.data(), r->positionOf.data(),
                                      w.data(), dx.data());
    expectAllClose(dx, numericGradient(loss, x), 1e-7, 1e-9, "dx");
  }
}

TEST(Combine, WeightsExpertRowsAndGradientMatches) {
  int64_t d = 6;
  for (const auto &r : testRoutings()) {
    SCOPED_TRACE(testing::Message() << "T=" << r->T << " n=" << r->n);
    int64_t T = r->T, A = r->numAssignments();
    auto gate = randomVector<double>(A, 7, 0.0, 1.0);
    auto out = randomVector<double>(A * d, 8);
    std::vector<double> y(T * d, 42.0), expected(T * d, 0.0);
    rt::cpu::combineForward<double>(r->T, r->numAssignments(), d,
                                    r->rowPtr.data(), r->positionOf.data(),
                                    gate.data(), out.data(), y.data());
    for (int64_t a = 0; a < A; ++a)
      for (int64_t j = 0; j < d; ++j)
        expected[r->tokenOf(a) * d + j] +=
            gate[a] * out[r->positionOf[a] * d + j];
    expectAllClose(y, expected, 1e-14, 1e-15, "y");

    auto w = randomVector<double>(T * d, 9);
    auto loss = [&](const std::vector<double> &params) {
      std::vector<double> ys(T * d);
      rt::cpu::combineForward<double>(
          r->T, r->numAssignments(), d, r->rowPtr.data(), r->positionOf.data(),
          params.data(), params.data() + A, ys.data());
      return dot(ys, w);
    };
    std::vector<double> params = gate;
    params.insert(params.end(), out.begin(), out.end());
    std::vector<double> numeric = numericGradient(loss, params);
    std::vector<double> dOut(A * d, 42.0), dGate(A, 42.0);
    rt::cpu::combineBackward<double>(
        r->T, r->numAssignments(), d, r->rowPtr.data(), r->positionOf.data(),
        gate.data(), out.data(), w.data(), dOut.data(), dGate.data());
    expectAllClose(dGate,
                   std::vector<double>(numeric.begin(), numeric.begin() + A),
                   1e-7, 1e-9, "dGate");
    expectAllClose(dOut,
                   std::vector<double>(numeric.begin() + A, numeric.end()),
                   1e-7, 1e-9, "dExpertOut");
  }
}

TEST(Combine, DotProductCoversEveryLength) {
  // dGate uses an 8-way split dot product: check lengths around 8.
  for (int64_t d : {1, 7, 8, 9, 17, 64}) {
    auto r = randomRouting(3, 2, 1, 2, range(2), 10);
    int64_t A = r->numAssignments();
    auto gate = randomVector<double>(A, 11);
    auto out = randomVector<double>(A * d, 12);
    auto dy = randomVector<double>(3 * d, 13);
    std::vector<double> dOut(A * d), dGate(A), expected(A, 0.0);
    rt::cpu::combineBackward<double>(
        r->T, r->numAssignments(), d, r->rowPtr.data(), r->positionOf.data(),
        gate.data(), out.data(), dy.data(), dOut.data(), dGate.data());
    for (int64_t a = 0; a < A; ++a)
      for (int64_t j = 0; j < d; ++j)
        expected[a] +=
            dy[r->tokenOf(a) * d + j] * out[r->positionOf[a] * d + j];
    expectAllClose(dGate, expected, 1e-13, 1e-14, "dGate");
  }
}

//===----------------------------------------------------------------------===//
// Implicit row pointers (top-k: a null rowPtr means A / T per token)
//===----------------------------------------------------------------------===//

namespace {

struct TopKCase {
  int64_t T, n, k;
};

/// One token, k = 1, k = n, and no tokens at all.
const TopKCase kTopKCases[] = {
    {13, 5, 3}, {1, 4, 2}, {9, 6, 1}, {5, 4, 4}, {0, 3, 2}};

/// Top-k routing with explicit row pointers [0, k, 2k, ...].
std::unique_ptr<Routing> topKRouting(const TopKCase &c, uint32_t seed) {
  auto r = randomRouting(c.T, c.n, c.k, c.k, range(int32_t(c.n)), seed);
  for (int64_t t = 0; t <= c.T; ++t)
    EXPECT_EQ(r->rowPtr[t], t * c.k);
  return r;
}

} // namespace

TEST(ImplicitRowPointers, PlanEqualsExplicitRowPointers) {
  for (const TopKCase &c : kTopKCases) {
    SCOPED_TRACE(testing::Message()
                 << "T=" << c.T << " n=" << c.n << " k=" << c.k);
    auto r = topKRouting(c, 40);
    int64_t A = r->numAssignments();
    std::vector<int32_t> offset(c.n + 1, -7), positionOf(A, -7),
        tokenOfPosition(A, -7);
    rt::cpu::buildDispatchPlan(c.T, c.n, A, nullptr, r->expert.data(),
                               offset.data(), positionOf.data(),
                               tokenOfPosition.data());
    EXPECT_EQ(offset, r->offset);
    EXPECT_EQ(positionOf, r->positionOf);
    EXPECT_EQ(tokenOfPosition, r->tokenOfPosition);
  }
  // A must split evenly over the tokens.
  std::vector<int32_t> expert = {0, 1, 2}, offset(4), positionOf(3),
                       tokenOfPosition(3);
  EXPECT_THROW(rt::cpu::buildDispatchPlan(2, 3, 3, nullptr, expert.data(),
                                          offset.data(), positionOf.data(),
                                          tokenOfPosition.data()),
               std::invalid_argument);
  std::vector<double> rows(3 * 2), dx(2 * 2);
  EXPECT_THROW(rt::cpu::dispatchBackward<double>(
                   2, 3, 2, nullptr, positionOf.data(), rows.data(), dx.data()),
               std::invalid_argument);
}

TEST(ImplicitRowPointers, DispatchAndCombineEqualExplicitRowPointers) {
  // Same loops in the same order: the bits of the explicit call.
  int64_t d = 7;
  for (const TopKCase &c : kTopKCases) {
    SCOPED_TRACE(testing::Message()
                 << "T=" << c.T << " n=" << c.n << " k=" << c.k);
    auto r = topKRouting(c, 41);
    int64_t T = c.T, A = r->numAssignments();
    const int32_t *rowPtr = r->rowPtr.data(), *pos = r->positionOf.data();
    auto dBuffer = randomVector<double>(A * d, 42);
    auto gate = randomVector<double>(A, 43, 0.0, 1.0);
    auto out = randomVector<double>(A * d, 44);
    auto dy = randomVector<double>(T * d, 45);

    std::vector<double> dx(T * d, 1.0), dxNull(T * d, 2.0);
    rt::cpu::dispatchBackward<double>(T, A, d, rowPtr, pos, dBuffer.data(),
                                      dx.data());
    rt::cpu::dispatchBackward<double>(T, A, d, nullptr, pos, dBuffer.data(),
                                      dxNull.data());
    EXPECT_EQ(dxNull, dx);

    std::vector<double> y(T * d, 1.0), yNull(T * d, 2.0);
    rt::cpu::combineForward<double>(T, A, d, rowPtr, pos, gate.data(),
                                    out.data(), y.data());
    rt::cpu::combineForward<double>(T, A, d, nullptr, pos, gate.data(),
                                    out.data(), yNull.data());
    EXPECT_EQ(yNull, y);

    std::vector<double> dOut(A * d, 1.0), dOutNull(A * d, 2.0), dGate(A, 1.0),
        dGateNull(A, 2.0);
    rt::cpu::combineBackward<double>(T, A, d, rowPtr, pos, gate.data(),
                                     out.data(), dy.data(), dOut.data(),
                                     dGate.data());
    rt::cpu::combineBackward<double>(T, A, d, nullptr, pos, gate.data(),
                                     out.data(), dy.data(), dOutNull.data(),
                                     dGateNull.data());
    EXPECT_EQ(dOutNull, dOut);
    EXPECT_EQ(dGateNull, dGate);
  }
}

TEST(ImplicitRowPointers, CpuBackendEqualsExplicitRowPointers) {
  // The f32 entry points, top-k routing through the whole layer.
  auto backend = rt::createCpuBackend();
  int64_t d = 9;
  for (const TopKCase &c : kTopKCases) {
    SCOPED_TRACE(testing::Message()
                 << "T=" << c.T << " n=" << c.n << " k=" << c.k);
    auto r = topKRouting(c, 46);
    int64_t T = c.T, n = c.n, A = r->numAssignments();
    std::vector<int32_t> offset(n + 1, -7), positionOf(A, -7),
        tokenOfPosition(A, -7);
    backend->buildDispatchPlan(T, n, A, nullptr, r->expert.data(),
                               offset.data(), positionOf.data(),
                               tokenOfPosition.data());
    EXPECT_EQ(offset, r->offset);
    EXPECT_EQ(positionOf, r->positionOf);
    EXPECT_EQ(tokenOfPosition, r->tokenOfPosition);

    const int32_t *rowPtr = r->rowPtr.data(), *pos = r->positionOf.data();
    auto dBuffer = randomVector<float>(A * d, 47);
    auto gate = randomVector<float>(A, 48, 0.0, 1.0);
    auto out = randomVector<float>(A * d, 49);
    auto dy = randomVector<float>(T * d, 50);
    auto run = [&](const int32_t *rows) {
      std::vector<float> dx(T * d, 42.0f), y(T * d, 42.0f), dOut(A * d, 42.0f),
          dGate(A, 42.0f);
      backend->dispatchBackward(T, A, d, rows, pos, dBuffer.data(), dx.data());
      backend->combineForward(T, A, d, rows, pos, gate.data(), out.data(),
                              y.data());
      backend->combineBackward(T, A, d, rows, pos, gate.data(), out.data(),
                               dy.data(), dOut.data(), dGate.data());
      for (const auto *v : {&y, &dOut, &dGate})
        dx.insert(dx.end(), v->begin(), v->end());
      return dx;
    };
    EXPECT_EQ(run(nullptr), run(rowPtr));
  }
}

//===----------------------------------------------------------------------===//
// Grouped GEMM
//===----------------------------------------------------------------------===//

/// out[p] = in[p] * W[e] for the expert e owning buffer row p.
std::vector<double> naiveGrouped(const Routing &r, int64_t dIn, int64_t dOut,
                                 const std::vector<double> &in,
                                 const std::vector<double> &W) {
  std::vector<double> out(r.numAssignments() * dOut, 0.0);
  for (int64_t e = 0; e < r.n; ++e)
    for (int64_t p = r.offset[e]; p < r.offset[e + 1]; ++p)
      for (int64_t j = 0; j < dOut; ++j)
        for (int64_t i = 0; i < dIn; ++i)
          out[p * dOut + j] += in[p * dIn + i] * W[(e * dIn + i) * dOut + j];
  return out;
}

const GroupedSchedule kSchedules[] = {GroupedSchedule::Auto,
                                      GroupedSchedule::ExpertParallel,
                                      GroupedSchedule::BlasThreads};

TEST(GroupedMatmul, ForwardMatchesNaiveLoops) {
  int64_t dIn = 7, dOut = 5;
  for (const auto &r : testRoutings())
    for (GroupedSchedule schedule : kSchedules) {
      SCOPED_TRACE(testing::Message() << "T=" << r->T << " n=" << r->n
                                      << " schedule=" << int(schedule));
      int64_t A = r->numAssignments();
      auto in = randomVector<double>(A * dIn, 14);
      auto W = randomVector<double>(r->n * dIn * dOut, 15);
      std::vector<double> out(A * dOut, 42.0);
      rt::cpu::groupedMatmulForward<double>(r->numAssignments(), r->n, dIn,
                                            dOut, r->offset.data(), in.data(),
                                            W.data(), out.data(), schedule);
      expectAllClose(out, naiveGrouped(*r, dIn, dOut, in, W), 1e-13, 1e-14,
                     "out");
    }
}

TEST(GroupedMatmul, GradientMatchesFiniteDifferences) {
  int64_t dIn = 4, dOut = 3;
  for (const auto &r : testRoutings())
    for (GroupedSchedule schedule : kSchedules) {
      SCOPED_TRACE(testing::Message() << "T=" << r->T << " n=" << r->n
                                      << " schedule=" << int(schedule));
      int64_t A = r->numAssignments(), wSize = r->n * dIn * dOut;
      auto in = randomVector<double>(A * dIn, 16);
      auto W = randomVector<double>(wSize, 17);
      auto w = randomVector<double>(A * dOut, 18);
      auto loss = [&](const std::vector<double> &params) {
        std::vector<double> out(A * dOut);
        rt::cpu::groupedMatmulForward<double>(
            r->numAssignments(), r->n, dIn, dOut, r->offset.data(),
            params.data(), params.data() + A * dIn, out.data(), schedule);
        return dot(out, w);
      };
      std::vector<double> params = in;
      params.insert(params.end(), W.begin(), W.end());
      std::vector<double> numeric = numericGradient(loss, params);
      // Garbage first: both gradients are written, empty experts included.
      std::vector<double> dInput(A * dIn, 42.0), dW(wSize, 42.0);
      rt::cpu::groupedMatmulBackward<double>(
          r->numAssignments(), r->n, dIn, dOut, r->offset.data(), in.data(),
          W.data(), w.data(), dInput.data(), dW.data(), schedule);
      expectAllClose(
          dInput,
          std::vector<double>(numeric.begin(), numeric.begin() + A * dIn), 1e-7,
          1e-9, "dInput");
      expectAllClose(
          dW, std::vector<double>(numeric.begin() + A * dIn, numeric.end()),
          1e-7, 1e-9, "dWeights");
    }
}

/// n equal segments of `rows` rows: what a batchwise mask's plan gives.
std::vector<int32_t> equalOffsets(int64_t n, int64_t rows) {
  std::vector<int32_t> offsets(n + 1);
  for (int64_t e = 0; e <= n; ++e)
    offsets[e] = static_cast<int32_t>(e * rows);
  return offsets;
}

TEST(BatchedMatmul, GradientMatchesFiniteDifferences) {
  const int64_t n = 3, rows = 4, dIn = 3, dOut = 2, A = n * rows;
  std::vector<int32_t> offsets = equalOffsets(n, rows);
  auto in = randomVector<double>(A * dIn, 61);
  auto W = randomVector<double>(n * dIn * dOut, 62);
  auto w = randomVector<double>(A * dOut, 63);
  auto loss = [&](const std::vector<double> &params) {
    std::vector<double> out(A * dOut);
    rt::cpu::batchedMatmulForward<double>(n, rows, dIn, dOut, offsets.data(),
                                          params.data(),
                                          params.data() + A * dIn, out.data());
    return dot(out, w);
  };
  std::vector<double> params = in;
  params.insert(params.end(), W.begin(), W.end());
  std::vector<double> numeric = numericGradient(loss, params);
  std::vector<double> dInput(A * dIn, 42.0), dW(W.size(), 42.0);
  rt::cpu::batchedMatmulBackward<double>(n, rows, dIn, dOut, offsets.data(),
                                         in.data(), W.data(), w.data(),
                                         dInput.data(), dW.data());
  expectAllClose(
      dInput, std::vector<double>(numeric.begin(), numeric.begin() + A * dIn),
      1e-7, 1e-9, "dInput");
  expectAllClose(dW,
                 std::vector<double>(numeric.begin() + A * dIn, numeric.end()),
                 1e-7, 1e-9, "dWeights");

  // The same products as the grouped matmul over the same offsets.
  Routing equal(A, n, {}, std::vector<int32_t>(A, 0));
  equal.offset = offsets;
  std::vector<double> out(A * dOut);
  rt::cpu::batchedMatmulForward<double>(n, rows, dIn, dOut, offsets.data(),
                                        in.data(), W.data(), out.data());
  expectAllClose(out, naiveGrouped(equal, dIn, dOut, in, W), 1e-13, 1e-14,
                 "out");
}

TEST(BatchedMatmul, RejectsOffsetsThatAreNotEqualSegments) {
  const int64_t n = 3, rows = 2;
  std::vector<int32_t> offsets = {0, 2, 3, 6};
  std::vector<double> in(n * rows), W(n), out(n * rows);
  try {
    rt::cpu::batchedMatmulForward<double>(n, rows, 1, 1, offsets.data(),
                                          in.data(), W.data(), out.data());
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument &e) {
    EXPECT_STREQ(e.what(), "batchedMatmulForward: expert 2 starts at row 3, "
                           "not at 4 as the compiled graph's rows_per_expert "
                           "= 2 promised");
  }
}

TEST(GroupedMatmul, AutoHandlesADominantExpert) {
  // Expert 1 takes 500 of 620 rows: more than a thread's fair share, so Auto
  // runs it with OpenBLAS threading and the others one per thread.
  int64_t T = 620, n = 9, dIn = 6, dOut = 4;
  std::vector<int32_t> rowPtr = range(int32_t(T) + 1), expert(T);
  for (int64_t t = 0; t < T; ++t)
    expert[t] = t < 500 ? 1 : int32_t(t % n);
  Routing r(T, n, rowPtr, expert);
  r.build();
  auto in = randomVector<double>(T * dIn, 19);
  auto W = randomVector<double>(n * dIn * dOut, 20);
  auto dOutput = randomVector<double>(T * dOut, 21);
  std::vector<double> out(T * dOut), dInput(T * dIn), dW(n * dIn * dOut);
  rt::cpu::groupedMatmulForward<double>(r.numAssignments(), r.n, dIn, dOut,
                                        r.offset.data(), in.data(), W.data(),
                                        out.data());
  expectAllClose(out, naiveGrouped(r, dIn, dOut, in, W), 1e-13, 1e-14, "out");
  std::vector<double> expectedIn(T * dIn), expectedW(n * dIn * dOut);
  rt::cpu::groupedMatmulBackward<double>(
      r.numAssignments(), r.n, dIn, dOut, r.offset.data(), in.data(), W.data(),
      dOutput.data(), expectedIn.data(), expectedW.data(),
      GroupedSchedule::BlasThreads);
  rt::cpu::groupedMatmulBackward<double>(
      r.numAssignments(), r.n, dIn, dOut, r.offset.data(), in.data(), W.data(),
      dOutput.data(), dInput.data(), dW.data());
  expectAllClose(dInput, expectedIn, 1e-13, 1e-14, "dInput");
  expectAllClose(dW, expectedW, 1e-13, 1e-14, "dWeights");
}

//===----------------------------------------------------------------------===//
// The layer end to end, determinism, the f32 entry points
//===----------------------------------------------------------------------===//

TEST(MoeLayer, SparseLayerEqualsDenseSumOverSelectedExperts) {
  // y[t] = sum_j gate[t,j] * x[t] W[expert[t,j]], computed both ways.
  int64_t T = 23, n = 6, k = 2, d = 5;
  auto x = randomVector<double>(T * d, 22);
  auto logits = randomVector<double>(T * n, 23, -2.0, 2.0);
  auto W = randomVector<double>(n * d * d, 24);
  std::vector<double> noisy(T * n), std(T * n), top(T * (k + 1)), gate(T * k);
  std::vector<int32_t> expert(T * k), rowPtr(T + 1);
  rt::cpu::noisyTopKForward<double>(T, n, k, logits.data(), nullptr, 0.0, false,
                                    0, 0, noisy.data(), std.data(), top.data(),
                                    expert.data(), gate.data());
  for (int64_t t = 0; t <= T; ++t)
    rowPtr[t] = int32_t(t * k);
  Routing r(T, n, rowPtr, expert);
  r.build();
  std::vector<double> buffer(T * k * d), expertOut(T * k * d), y(T * d);
  rt::cpu::dispatchForward<double>(
      r.numAssignments(), d, r.tokenOfPosition.data(), x.data(), buffer.data());
  rt::cpu::groupedMatmulForward<double>(r.numAssignments(), r.n, d, d,
                                        r.offset.data(), buffer.data(),
                                        W.data(), expertOut.data());
  rt::cpu::combineForward<double>(r.T, r.numAssignments(), d, r.rowPtr.data(),
                                  r.positionOf.data(), gate.data(),
                                  expertOut.data(), y.data());
  std::vector<double> expected(T * d, 0.0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < k; ++j) {
      int64_t e = expert[t * k + j];
      for (int64_t o = 0; o < d; ++o)
        for (int64_t i = 0; i < d; ++i)
          expected[t * d + o] +=
              gate[t * k + j] * x[t * d + i] * W[(e * d + i) * d + o];
    }
  expectAllClose(y, expected, 1e-13, 1e-14, "y");
}

TEST(MoeLayer, RepeatedRunsAreBitIdentical) {
  // Big enough for the parallel paths: 2000 tokens x 4 experts x 64.
  int64_t T = 2000, n = 16, d = 64;
  auto r = randomRouting(T, n, 4, 4, range(int32_t(n)), 25);
  int64_t A = r->numAssignments();
  auto x = randomVector<float>(T * d, 26);
  auto gate = randomVector<float>(A, 27);
  auto W = randomVector<float>(n * d * d, 28);
  auto dy = randomVector<float>(T * d, 29);
  auto run = [&](int threads) {
    int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    std::vector<float> buffer(A * d), out(A * d), y(T * d), dOut(A * d),
        dGate(A), dBuffer(A * d), dW(n * d * d), dx(T * d);
    rt::cpu::dispatchForward<float>(r->numAssignments(), d,
                                    r->tokenOfPosition.data(), x.data(),
                                    buffer.data());
    rt::cpu::groupedMatmulForward<float>(r->numAssignments(), r->n, d, d,
                                         r->offset.data(), buffer.data(),
                                         W.data(), out.data());
    rt::cpu::combineForward<float>(r->T, r->numAssignments(), d,
                                   r->rowPtr.data(), r->positionOf.data(),
                                   gate.data(), out.data(), y.data());
    rt::cpu::combineBackward<float>(
        r->T, r->numAssignments(), d, r->rowPtr.data(), r->positionOf.data(),
        gate.data(), out.data(), dy.data(), dOut.data(), dGate.data());
    rt::cpu::groupedMatmulBackward<float>(
        r->numAssignments(), r->n, d, d, r->offset.data(), buffer.data(),
        W.data(), dOut.data(), dBuffer.data(), dW.data());
    rt::cpu::dispatchBackward<float>(r->T, r->numAssignments(), d,
                                     r->rowPtr.data(), r->positionOf.data(),
                                     dBuffer.data(), dx.data());
    omp_set_num_threads(saved);
    std::vector<float> all = y;
    for (const auto *v : {&dGate, &dW, &dx})
      all.insert(all.end(), v->begin(), v->end());
    return all;
  };
  std::vector<float> first = run(2), again = run(2);
  ASSERT_EQ(first.size(), again.size());
  EXPECT_EQ(std::memcmp(first.data(), again.data(), 4 * first.size()), 0);
}

TEST(CpuBackendDispatch, EntryPointsRunTheKernels) {
  std::unique_ptr<rt::Backend> backend = rt::createCpuBackend();
  int64_t T = 40, n = 5, d = 9;
  auto r = randomRouting(T, n, 0, 3, {0, 2, 3, 4}, 30);
  int64_t A = r->numAssignments();
  // The backend builds its own plan from the same routing.
  Routing mine(T, n, r->rowPtr, r->expert);
  backend->buildDispatchPlan(T, n, A, mine.rowPtr.data(), mine.expert.data(),
                             mine.offset.data(), mine.positionOf.data(),
                             mine.tokenOfPosition.data());
  EXPECT_EQ(mine.positionOf, r->positionOf);
  EXPECT_EQ(mine.tokenOfPosition, r->tokenOfPosition);
  EXPECT_EQ(mine.offset, r->offset);

  auto x = randomVector<float>(T * d, 31);
  auto gate = randomVector<float>(A, 32);
  auto W = randomVector<float>(n * d * d, 33);
  auto dy = randomVector<float>(T * d, 34);
  std::vector<float> buffer(A * d), out(A * d), y(T * d), dOut(A * d), dGate(A),
      dBuffer(A * d), dW(n * d * d), dx(T * d);
  backend->dispatchForward(mine.numAssignments(), d,
                           mine.tokenOfPosition.data(), x.data(),
                           buffer.data());
  backend->groupedMatmulForward(mine.numAssignments(), mine.n, d, d,
                                mine.offset.data(), buffer.data(), W.data(),
                                out.data(), rt::GemmPrecision::F32);
  backend->combineForward(mine.T, mine.numAssignments(), d, mine.rowPtr.data(),
                          mine.positionOf.data(), gate.data(), out.data(),
                          y.data());
  backend->combineBackward(mine.T, mine.numAssignments(), d, mine.rowPtr.data(),
                           mine.positionOf.data(), gate.data(), out.data(),
                           dy.data(), dOut.data(), dGate.data());
  backend->groupedMatmulBackward(
      mine.numAssignments(), mine.n, d, d, mine.offset.data(), buffer.data(),
      W.data(), dOut.data(), dBuffer.data(), dW.data(), rt::GemmPrecision::F32);
  backend->dispatchBackward(mine.T, mine.numAssignments(), d,
                            mine.rowPtr.data(), mine.positionOf.data(),
                            dBuffer.data(), dx.data());

  // Same pipeline in double through the templates.
  auto toDouble = [](const std::vector<float> &v) {
    return std::vector<double>(v.begin(), v.end());
  };
  auto xD = toDouble(x), gateD = toDouble(gate), WD = toDouble(W),
       dyD = toDouble(dy);
  std::vector<double> bufferD(A * d), outD(A * d), yD(T * d), dOutD(A * d),
      dGateD(A), dBufferD(A * d), dWD(n * d * d), dxD(T * d);
  rt::cpu::dispatchForward<double>(r->numAssignments(), d,
                                   r->tokenOfPosition.data(), xD.data(),
                                   bufferD.data());
  rt::cpu::groupedMatmulForward<double>(r->numAssignments(), r->n, d, d,
                                        r->offset.data(), bufferD.data(),
                                        WD.data(), outD.data());
  rt::cpu::combineForward<double>(r->T, r->numAssignments(), d,
                                  r->rowPtr.data(), r->positionOf.data(),
                                  gateD.data(), outD.data(), yD.data());
  rt::cpu::combineBackward<double>(
      r->T, r->numAssignments(), d, r->rowPtr.data(), r->positionOf.data(),
      gateD.data(), outD.data(), dyD.data(), dOutD.data(), dGateD.data());
  rt::cpu::groupedMatmulBackward<double>(
      r->numAssignments(), r->n, d, d, r->offset.data(), bufferD.data(),
      WD.data(), dOutD.data(), dBufferD.data(), dWD.data());
  rt::cpu::dispatchBackward<double>(r->T, r->numAssignments(), d,
                                    r->rowPtr.data(), r->positionOf.data(),
                                    dBufferD.data(), dxD.data());
  expectAllClose(y, yD, 1e-4, 1e-5, "y");
  expectAllClose(dGate, dGateD, 1e-4, 1e-5, "dGate");
  expectAllClose(dW, dWD, 1e-4, 1e-5, "dWeights");
  expectAllClose(dx, dxD, 1e-4, 1e-5, "dx");
}

} // namespace
