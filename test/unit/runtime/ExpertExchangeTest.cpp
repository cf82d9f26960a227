//===- ExpertExchangeTest.cpp - The token exchange of expert parallelism --===//
//
// Runs on every rank of an mpirun job (1, 2 and 4 ranks) and checks the step
// ABI's expert-parallel ops (runtime/step/ExpertParallelOps.cpp) against one
// rank computing with all the experts:
//  * the rows each rank receives, and their order (expert-major, source
//    rank inside an expert), including experts and ranks without tokens;
//  * the round trip to the experts and back is the identity, bit for bit;
//  * the exchange's adjoint is the reverse exchange (its gradient);
//  * the grouped matmul on the received rows with a rank's shard of the
//    weights, sent back, equals the grouped matmul with all the weights on
//    the rank's own rows, and its weight gradient is the shard of the
//    global gradient (the sum over every rank's rows).
//
//===----------------------------------------------------------------------===//

#include "runtime/Backend.h"
#include "runtime/collectives/Collectives.h"
#include "runtime/step/Step.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <numeric>
#include <vector>

using namespace moe::rt;

namespace {

Collectives *ranks() {
  static std::unique_ptr<Collectives> collectives = createCollectives("auto");
  return collectives.get();
}

constexpr int64_t kExperts = 8, kWidth = 3, kOut = 2;

/// Rows rank r routes to expert e in round `round`: 0-4, with empty experts,
/// and in round 1 rank 1 routes nothing at all.
int32_t rowsFor(int r, int64_t e, int round) {
  if (round == 1 && r == 1)
    return 0;
  return static_cast<int32_t>((r * 7 + e * 5 + round * 3) % 5);
}

float valueAt(int r, int64_t row, int64_t col) {
  return std::sin(1.0f + r * 131.0f + row * 17.0f + col * 3.0f);
}

float weightAt(int64_t e, int64_t i, int64_t j) {
  return std::cos(0.5f + e * 7.0f + i * 3.0f + j);
}

/// One rank's dispatch plan and buffer, in backend memory.
struct Rank {
  std::unique_ptr<Backend> backend = createCpuBackend(1);
  std::unique_ptr<step::Context> ctx;
  std::vector<int32_t> offsets;
  std::vector<float> rows; ///< [A, kWidth], expert-major
  int64_t planned = 0, capacity = 0;

  explicit Rank(int round) {
    ctx = std::make_unique<step::Context>(backend.get());
    ctx->collectives = ranks();
    ctx->beginCall();
    int r = ctx->rank();
    offsets.assign(kExperts + 1, 0);
    for (int64_t e = 0; e < kExperts; ++e)
      offsets[e + 1] = offsets[e] + rowsFor(r, e, round);
    planned = offsets[kExperts];
    capacity = planned + 2; // unused tail rows, as under threshold masks
    rows.resize(capacity * kWidth);
    for (int64_t p = 0; p < capacity; ++p)
      for (int64_t c = 0; c < kWidth; ++c)
        rows[p * kWidth + c] = valueAt(r, p, c);
  }
  template <typename T> T *device(const std::vector<T> &host) {
    auto *ptr = static_cast<T *>(backend->alloc(host.size() * sizeof(T) + 1));
    backend->copyFromHost(ptr, host.data(), host.size() * sizeof(T));
    owned.push_back(ptr);
    return ptr;
  }
  template <typename T> T *zeros(int64_t count) {
    return device(std::vector<T>(static_cast<size_t>(count), T(0)));
  }
  template <typename T> std::vector<T> host(const T *ptr, int64_t count) {
    std::vector<T> out(static_cast<size_t>(count));
    if (count)
      backend->copyToHost(out.data(), ptr, out.size() * sizeof(T));
    return out;
  }
  ~Rank() {
    ctx.reset();
    for (void *ptr : owned)
      backend->release(ptr);
  }
  std::vector<void *> owned;
};

class ExpertExchange : public ::testing::TestWithParam<int> {};

TEST_P(ExpertExchange, ReceivesEachExpertsRowsInSourceOrder) {
  Rank me(GetParam());
  const int R = ranks()->size(), r = ranks()->rank();
  const int64_t L = kExperts / R, first = r * L;
  int32_t *off = me.device(me.offsets);
  int32_t *counts = me.zeros<int32_t>(kExperts);
  int32_t *roff = me.zeros<int32_t>(kExperts + 1);
  step::exchangeCounts(me.ctx.get(), off, counts, roff, kExperts);
  step::Rows recv =
      step::exchangeToExperts(me.ctx.get(), me.device(me.rows), off, counts,
                              me.capacity, kExperts, kWidth);

  // What every rank routes is known here: build the expected rows.
  std::vector<float> expected;
  std::vector<int32_t> segments(kExperts + 1, 0);
  for (int64_t e = 0; e < kExperts; ++e) {
    int32_t here = 0;
    if (e >= first && e < first + L)
      for (int s = 0; s < R; ++s) {
        int32_t start = 0;
        for (int64_t e2 = 0; e2 < e; ++e2)
          start += rowsFor(s, e2, GetParam());
        for (int32_t i = 0; i < rowsFor(s, e, GetParam()); ++i)
          for (int64_t c = 0; c < kWidth; ++c)
            expected.push_back(valueAt(s, start + i, c));
        here += rowsFor(s, e, GetParam());
      }
    segments[e + 1] = segments[e] + here;
  }
  EXPECT_EQ(me.host(roff, kExperts + 1), segments);
  ASSERT_EQ(recv.rows * kWidth, static_cast<int64_t>(expected.size()));
  EXPECT_EQ(me.host(recv.data, recv.rows * kWidth), expected);

  // And back: the dispatch buffer's planned rows, bit for bit.
  float *back = me.zeros<float>(me.capacity * kWidth);
  step::exchangeToTokens(me.ctx.get(), recv, off, counts, back, me.capacity,
                         kExperts, kWidth);
  std::vector<float> home = me.host(back, me.planned * kWidth);
  EXPECT_EQ(home, std::vector<float>(me.rows.begin(),
                                     me.rows.begin() + me.planned * kWidth));
}

TEST_P(ExpertExchange, AdjointIsTheReverseExchange) {
  // <E x, y> = <x, E^T y> summed over the ranks, E^T = exchangeToTokens.
  Rank me(GetParam());
  int32_t *off = me.device(me.offsets);
  int32_t *counts = me.zeros<int32_t>(kExperts);
  int32_t *roff = me.zeros<int32_t>(kExperts + 1);
  step::exchangeCounts(me.ctx.get(), off, counts, roff, kExperts);
  step::Rows ex = step::exchangeToExperts(me.ctx.get(), me.device(me.rows),
                                          off, counts, me.capacity, kExperts,
                                          kWidth);
  std::vector<float> y(ex.rows * kWidth);
  for (size_t i = 0; i < y.size(); ++i)
    y[i] = std::cos(3.0f * i + ranks()->rank());
  step::Rows yRows{me.device(y), ex.rows};
  float *ety = me.zeros<float>(me.capacity * kWidth);
  step::exchangeToTokens(me.ctx.get(), yRows, off, counts, ety, me.capacity,
                         kExperts, kWidth);
  std::vector<float> exHost = me.host(ex.data, ex.rows * kWidth);
  std::vector<float> etyHost = me.host(ety, me.planned * kWidth);
  double sums[2] = {0, 0};
  for (size_t i = 0; i < y.size(); ++i)
    sums[0] += double(exHost[i]) * y[i];
  for (int64_t i = 0; i < me.planned * kWidth; ++i)
    sums[1] += double(me.rows[i]) * etyHost[i];
  std::vector<float> total = {static_cast<float>(sums[0]),
                              static_cast<float>(sums[1])};
  ranks()->allReduceSum(total.data(), 2);
  EXPECT_NEAR(total[0], total[1], 1e-4 * (1 + std::fabs(total[0])));
}

TEST_P(ExpertExchange, ShardedExpertsEqualAllExpertsOnOneRank) {
  Rank me(GetParam());
  const int R = ranks()->size(), r = ranks()->rank();
  const int64_t L = kExperts / R;
  std::vector<float> w(kExperts * kWidth * kOut);
  for (int64_t e = 0; e < kExperts; ++e)
    for (int64_t i = 0; i < kWidth; ++i)
      for (int64_t j = 0; j < kOut; ++j)
        w[(e * kWidth + i) * kOut + j] = weightAt(e, i, j);
  std::vector<float> shard(w.begin() + r * L * kWidth * kOut,
                           w.begin() + (r + 1) * L * kWidth * kOut);
  step::Context *ctx = me.ctx.get();
  int32_t *off = me.device(me.offsets);
  float *buffer = me.device(me.rows);
  std::vector<float> dOut(me.capacity * kOut);
  for (size_t i = 0; i < dOut.size(); ++i)
    dOut[i] = std::sin(0.3f * i + r);
  float *dOutDevice = me.device(dOut);

  // One rank with every expert, on its own rows.
  float *refOut = me.zeros<float>(me.capacity * kOut);
  step::groupedMatmulForward(ctx, me.planned, kExperts, kWidth, kOut, off,
                             buffer, me.device(w), refOut, GemmPrecision::F32);
  float *refDBuf = me.zeros<float>(me.capacity * kWidth);
  float *refDW = me.zeros<float>(w.size());
  step::groupedMatmulBackward(ctx, me.planned, kExperts, kWidth, kOut, off,
                              buffer, me.device(w), dOutDevice, refDBuf, refDW,
                              GemmPrecision::F32);
  std::vector<float> globalDW = me.host(refDW, w.size());
  ranks()->allReduceSum(globalDW.data(), globalDW.size());

  // The expert-parallel section.
  int32_t *counts = me.zeros<int32_t>(kExperts);
  int32_t *roff = me.zeros<int32_t>(kExperts + 1);
  step::exchangeCounts(ctx, off, counts, roff, kExperts);
  step::Rows recv = step::exchangeToExperts(ctx, buffer, off, counts,
                                            me.capacity, kExperts, kWidth);
  float *wShard = me.device(shard);
  step::Rows y = step::groupedMatmulRows(ctx, recv, wShard, roff, kExperts,
                                         kWidth, kOut, GemmPrecision::F32);
  float *out = me.zeros<float>(me.capacity * kOut);
  step::exchangeToTokens(ctx, y, off, counts, out, me.capacity, kExperts,
                         kOut);
  EXPECT_EQ(me.host(out, me.planned * kOut),
            me.host(refOut, me.planned * kOut));

  step::Rows dY = step::exchangeToExperts(ctx, dOutDevice, off, counts,
                                          me.capacity, kExperts, kOut);
  float *dW = step::poolShard<float>(ctx, kExperts * kWidth * kOut);
  step::Rows dRecv = step::groupedMatmulGradRows(
      ctx, recv, wShard, roff, dY, dW, kExperts, kWidth, kOut,
      GemmPrecision::F32);
  float *dBuf = me.zeros<float>(me.capacity * kWidth);
  step::exchangeToTokens(ctx, dRecv, off, counts, dBuf, me.capacity,
                         kExperts, kWidth);
  EXPECT_EQ(me.host(dBuf, me.planned * kWidth),
            me.host(refDBuf, me.planned * kWidth));
  std::vector<float> dWHost = me.host(dW, L * kWidth * kOut);
  for (int64_t i = 0; i < L * kWidth * kOut; ++i)
    EXPECT_NEAR(dWHost[i], globalDW[r * L * kWidth * kOut + i], 1e-5)
        << "element " << i << " of rank " << r << "'s shard";
}

TEST(ExpertExchangeErrors, RankCountMustDivideTheExperts) {
  if (ranks()->size() == 1)
    GTEST_SKIP() << "every expert count splits over one rank";
  Rank me(0);
  const int64_t n = ranks()->size() + 1; // never a multiple, for R >= 2
  std::vector<int32_t> offsets(n + 1, 0);
  int32_t *off = me.device(offsets);
  int32_t *counts = me.zeros<int32_t>(n);
  int32_t *roff = me.zeros<int32_t>(n + 1);
  EXPECT_THROW(step::exchangeCounts(me.ctx.get(), off, counts, roff, n),
               std::runtime_error);
  EXPECT_THROW(step::shardCount(me.ctx.get(), n), std::runtime_error);
}

INSTANTIATE_TEST_SUITE_P(Rounds, ExpertExchange, ::testing::Values(0, 1));

} // namespace
