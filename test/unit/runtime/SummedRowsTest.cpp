//===- SummedRowsTest.cpp - Row-sparse gradients over data-parallel ranks -===//
//
// Runs on every rank of an mpirun job (1, 2 and 4 ranks) and checks the step
// ABI's moe.sum_rows_over_ranks (runtime/step/CollectiveOps.cpp) against a
// host reference: every rank gets the union of all ranks' row ids,
// ascending, then -1 up to R N rows, and each id's values summed over the
// ranks in rank order (bit for bit), for a table and its bias at once; lazy
// Adam then takes those rows.
//
//===----------------------------------------------------------------------===//

#include "runtime/Backend.h"
#include "runtime/collectives/Collectives.h"
#include "runtime/step/Step.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <vector>

using namespace moe::rt;

namespace {

Collectives *ranks() {
  static std::unique_ptr<Collectives> collectives = createCollectives("auto");
  return collectives.get();
}

constexpr int64_t kRows = 5, kWidth = 3, kVocab = 20;

/// Rank r's distinct ids, ascending, then -1: id 4 on every rank, others on
/// some, and rank 1 touches a single row.
std::vector<int32_t> idsOf(int r) {
  if (r == 1)
    return {4, -1, -1, -1, -1};
  std::vector<int32_t> ids = {int32_t(r % 3), 4, int32_t(6 + r), 19, -1};
  return ids;
}

float valueAt(int r, int64_t row, int64_t col) {
  return std::sin(1.0f + r * 131.0f + row * 17.0f + col * 3.0f);
}

TEST(SummedRows, UnionOfAllRanksSummedInRankOrder) {
  std::unique_ptr<Backend> backend = createCpuBackend(1);
  step::Context ctx(backend.get());
  ctx.collectives = ranks();
  ctx.beginCall();
  const int r = ctx.rank(), R = ctx.ranks();
  std::vector<int32_t> ids = idsOf(r);
  std::vector<float> values(kRows * kWidth), bias(kRows);
  for (int64_t i = 0; i < kRows; ++i) {
    for (int64_t c = 0; c < kWidth; ++c)
      values[i * kWidth + c] = ids[i] < 0 ? 0.0f : valueAt(r, i, c);
    bias[i] = ids[i] < 0 ? 0.0f : valueAt(r, i, 7);
  }
  step::RowSum sum = step::sumRowsOverRanks(
      &ctx, ids.data(), values.data(), bias.data(), kRows, kWidth, 1, kVocab);

  // The reference: each id's rows added from zero in rank order.
  std::map<int32_t, std::vector<float>> expected;
  for (int s = 0; s < R; ++s) {
    std::vector<int32_t> theirs = idsOf(s);
    for (int64_t i = 0; i < kRows; ++i) {
      if (theirs[i] < 0)
        continue;
      std::vector<float> &row = expected[theirs[i]];
      row.resize(kWidth + 1, 0.0f);
      for (int64_t c = 0; c < kWidth; ++c)
        row[c] += valueAt(s, i, c);
      row[kWidth] += valueAt(s, i, 7);
    }
  }
  ASSERT_EQ(sum.rows.rows, R * kRows);
  ASSERT_EQ(sum.values[0].rows, R * kRows);
  ASSERT_EQ(sum.values[1].rows, R * kRows);
  int64_t p = 0;
  for (const auto &[id, row] : expected) {
    ASSERT_EQ(sum.rows.data[p], id) << "row " << p;
    for (int64_t c = 0; c < kWidth; ++c)
      EXPECT_EQ(sum.values[0].data[p * kWidth + c], row[c]) << "id " << id;
    EXPECT_EQ(sum.values[1].data[p], row[kWidth]) << "id " << id;
    ++p;
  }
  for (; p < R * kRows; ++p) {
    EXPECT_EQ(sum.rows.data[p], -1);
    EXPECT_EQ(sum.values[1].data[p], 0.0f);
    for (int64_t c = 0; c < kWidth; ++c)
      EXPECT_EQ(sum.values[0].data[p * kWidth + c], 0.0f);
  }

  // Lazy Adam on the summed rows moves exactly the union's rows, the same
  // on every rank.
  std::vector<float> param(kVocab * kWidth, 1.0f), m(param.size(), 0.0f),
      v(param.size(), 0.0f);
  float lr = 0.1f;
  int64_t stepCount = 1;
  step::adamUpdateSummedRows(&ctx, kWidth, param.data(), sum.rows,
                             sum.values[0], m.data(), v.data(), &lr, &stepCount,
                             0.9f, 0.999f, 1e-8f, 0.0f);
  for (int64_t id = 0; id < kVocab; ++id) {
    bool touched = expected.count(static_cast<int32_t>(id)) != 0;
    for (int64_t c = 0; c < kWidth; ++c)
      EXPECT_EQ(param[id * kWidth + c] != 1.0f, touched && expected[id][c] != 0)
          << "id " << id;
  }
}

TEST(SummedRows, LazyAdamNeedsAValueRowPerId) {
  std::unique_ptr<Backend> backend = createCpuBackend(1);
  step::Context ctx(backend.get());
  std::vector<int32_t> ids = {1, 2};
  std::vector<float> values(kWidth), param(kVocab * kWidth), m(param.size()),
      v(param.size());
  float lr = 0.1f;
  int64_t stepCount = 1;
  EXPECT_THROW(step::adamUpdateSummedRows(
                   &ctx, kWidth, param.data(), step::RowIds{ids.data(), 2},
                   step::Rows{values.data(), 1}, m.data(), v.data(), &lr,
                   &stepCount, 0.9f, 0.999f, 1e-8f, 0.0f),
               std::runtime_error);
}

} // namespace
