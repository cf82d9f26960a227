//===- ExpertParallelOps.cpp - The token exchange of expert parallelism ---===//
//
// Rank r of R holds experts [r L, (r + 1) L), L = n / R. A rank's dispatch
// buffer is expert-major, hence already grouped by destination rank, so its
// send segments are the plan's own. allToAllV delivers the rows grouped by
// source rank; the expert GEMMs want them expert-major, and ordered by
// source rank inside an expert, which is the order one rank computing the
// concatenated global batch would see. One gather does that permutation,
// and its inverse undoes it on the way back.
//
//===----------------------------------------------------------------------===//

#include "runtime/step/OpSupport.h"

#include "runtime/collectives/Collectives.h"

namespace moe::rt::step {

namespace {

/// Where the rows of one exchange go, on the host.
struct ExchangeLayout {
  int ranks = 1, rank = 0;
  int64_t local = 0, first = 0; ///< experts per rank, this rank's first
  std::vector<int64_t> sendCounts, recvTotals; ///< rows per rank [R]
  int64_t received = 0;
  /// received (expert-major) row p = arrival (source-major) row order[p].
  std::vector<int32_t> order;
};

int64_t expertsPerRank(Context *ctx, const char *op, int64_t n) {
  int ranks = ctx->ranks();
  if (n % ranks != 0)
    fail(op, std::to_string(n) + " experts cannot be split over " +
                 std::to_string(ranks) +
                 " ranks; run on a number of ranks that divides " +
                 std::to_string(n));
  return n / ranks;
}

/// The layout of an exchange between this rank's dispatch buffer of
/// `bufferRows` rows and the experts' ranks.
ExchangeLayout exchangeLayout(Context *ctx, const char *op,
                              const int32_t *expertOffset,
                              const int32_t *recvCounts, int64_t n,
                              int64_t bufferRows) {
  ExchangeLayout layout;
  layout.ranks = ctx->ranks();
  layout.rank = ctx->rank();
  layout.local = expertsPerRank(ctx, op, n);
  layout.first = layout.rank * layout.local;
  std::vector<int32_t> offsets = toHost(ctx, expertOffset, n + 1);
  std::vector<int32_t> counts = toHost(ctx, recvCounts, n);
  const int R = layout.ranks;
  const int64_t L = layout.local;
  if (offsets[n] > bufferRows)
    fail(op, "the plan covers " + std::to_string(offsets[n]) +
                 " rows of a buffer of " + std::to_string(bufferRows));
  layout.sendCounts.resize(R);
  layout.recvTotals.assign(R, 0);
  for (int d = 0; d < R; ++d)
    layout.sendCounts[d] = offsets[(d + 1) * L] - offsets[d * L];
  std::vector<int64_t> sourceBase(R + 1, 0);
  for (int s = 0; s < R; ++s) {
    for (int64_t j = 0; j < L; ++j)
      layout.recvTotals[s] += counts[s * L + j];
    sourceBase[s + 1] = sourceBase[s] + layout.recvTotals[s];
  }
  layout.received = sourceBase[R];
  // Inside source s's segment, its rows for local expert j follow those
  // for experts < j.
  std::vector<int64_t> cursor(sourceBase.begin(), sourceBase.end() - 1);
  std::vector<std::vector<int64_t>> start(L, std::vector<int64_t>(R));
  for (int s = 0; s < R; ++s)
    for (int64_t j = 0; j < L; ++j) {
      start[j][s] = cursor[s];
      cursor[s] += counts[s * L + j];
    }
  layout.order.reserve(static_cast<size_t>(layout.received));
  for (int64_t j = 0; j < L; ++j)
    for (int s = 0; s < R; ++s)
      for (int64_t i = 0; i < counts[s * L + j]; ++i)
        layout.order.push_back(static_cast<int32_t>(start[j][s] + i));
  return layout;
}

/// out[p] = in[index[p]] for `rows` rows of d floats (index on the host).
void gatherRows(Context *ctx, ScratchScope &scratch, const float *in,
                const std::vector<int32_t> &index, float *out, int64_t d) {
  if (index.empty())
    return;
  auto rows = static_cast<int64_t>(index.size());
  int32_t *device = scratch.get<int32_t>(rows);
  ctx->backend->copyFromHost(device, index.data(), index.size() * 4);
  // The same gather as moe.dispatch: row p of out is row index[p] of in.
  dispatchForward(ctx, rows, d, device, in, out);
}

Rows poolRows(Context *ctx, int64_t rows, int64_t width) {
  Rows r;
  r.rows = rows;
  r.data = static_cast<float *>(
      ctx->pool.get(sizeof(float) * static_cast<size_t>(rows * width)));
  return r;
}

void expectRows(const char *op, Rows rows, int64_t expected) {
  if (rows.rows != expected)
    fail(op, "got " + std::to_string(rows.rows) + " expert rows, the plan "
                 "says " + std::to_string(expected));
}

} // namespace

int64_t shardCount(Context *ctx, int64_t globalCount) {
  int ranks = ctx->ranks();
  if (globalCount % ranks != 0)
    fail("shard", std::to_string(globalCount) +
                      " elements cannot be split over " +
                      std::to_string(ranks) + " ranks");
  return globalCount / ranks;
}

void exchangeCounts(Context *ctx, const int32_t *expertOffset,
                    int32_t *recvCounts, int32_t *recvOffset, int64_t n) {
  const int64_t L = expertsPerRank(ctx, "exchange_counts", n);
  const int R = ctx->ranks();
  const int64_t first = ctx->rank() * L;
  std::vector<int32_t> offsets = toHost(ctx, expertOffset, n + 1);
  std::vector<int32_t> counts(static_cast<size_t>(n)), received(counts.size());
  for (int64_t e = 0; e < n; ++e)
    counts[e] = offsets[e + 1] - offsets[e];
  // Destination d's block of L counts is its experts': allToAll hands rank
  // r the block [r L, (r + 1) L) of every source, source-major.
  if (R == 1) {
    received = counts;
  } else {
    // Through backend memory, which the collectives take (device memory
    // under NCCL).
    ScratchScope scratch(ctx);
    int32_t *send = scratch.get<int32_t>(n), *recv = scratch.get<int32_t>(n);
    ctx->backend->copyFromHost(send, counts.data(), counts.size() * 4);
    ctx->backend->synchronize();
    ctx->collectives->allToAll(send, L, recv);
    received = toHost(ctx, recv, n);
  }
  std::vector<int32_t> segments(static_cast<size_t>(n + 1), 0);
  for (int64_t e = 0; e < n; ++e) {
    int32_t rows = 0;
    if (e >= first && e < first + L)
      for (int s = 0; s < R; ++s)
        rows += received[s * L + (e - first)];
    segments[e + 1] = segments[e] + rows;
  }
  ctx->backend->copyFromHost(recvCounts, received.data(), received.size() * 4);
  ctx->backend->copyFromHost(recvOffset, segments.data(), segments.size() * 4);
}

Rows exchangeToExperts(Context *ctx, const float *buffer,
                       const int32_t *expertOffset, const int32_t *recvCounts,
                       int64_t rows, int64_t n, int64_t d) {
  ExchangeLayout layout = exchangeLayout(ctx, "exchange_to_experts",
                                         expertOffset, recvCounts, n, rows);
  Rows out = poolRows(ctx, layout.received, d);
  Backend &b = *ctx->backend;
  if (layout.ranks == 1) {
    if (out.rows)
      b.copyDevice(out.data, buffer, sizeof(float) * out.rows * d);
    return out;
  }
  ScratchScope scratch(ctx);
  float *arrived = scratch.get<float>(std::max<int64_t>(out.rows * d, 1));
  b.synchronize(); // the collective reads what the kernels wrote
  ctx->collectives->allToAllV(buffer, layout.sendCounts.data(), d, arrived,
                              layout.recvTotals.data());
  gatherRows(ctx, scratch, arrived, layout.order, out.data, d);
  return out;
}

void exchangeToTokens(Context *ctx, Rows expertRows,
                      const int32_t *expertOffset, const int32_t *recvCounts,
                      float *out, int64_t rows, int64_t n, int64_t d) {
  ExchangeLayout layout = exchangeLayout(ctx, "exchange_to_tokens",
                                         expertOffset, recvCounts, n, rows);
  expectRows("exchange_to_tokens", expertRows, layout.received);
  Backend &b = *ctx->backend;
  if (layout.ranks == 1) {
    if (expertRows.rows)
      b.copyDevice(out, expertRows.data,
                   sizeof(float) * expertRows.rows * d);
    return;
  }
  // Back into arrival order (the inverse permutation), then home.
  std::vector<int32_t> inverse(layout.order.size());
  for (size_t p = 0; p < layout.order.size(); ++p)
    inverse[layout.order[p]] = static_cast<int32_t>(p);
  ScratchScope scratch(ctx);
  float *departing =
      scratch.get<float>(std::max<int64_t>(expertRows.rows * d, 1));
  gatherRows(ctx, scratch, expertRows.data, inverse, departing, d);
  b.synchronize();
  ctx->collectives->allToAllV(departing, layout.recvTotals.data(), d, out,
                              layout.sendCounts.data());
}

Rows groupedMatmulRows(Context *ctx, Rows buffer, const float *weights,
                       const int32_t *recvOffset, int64_t n, int64_t dIn,
                       int64_t dOut, GemmPrecision precision) {
  const int64_t L = expertsPerRank(ctx, "grouped_matmul", n);
  Rows out = poolRows(ctx, buffer.rows, dOut);
  if (buffer.rows)
    groupedMatmulForward(ctx, buffer.rows, L, dIn, dOut,
                         recvOffset + ctx->rank() * L, buffer.data, weights,
                         out.data, precision);
  return out;
}

Rows groupedMatmulGradRows(Context *ctx, Rows buffer, const float *weights,
                           const int32_t *recvOffset, Rows dOut,
                           float *dWeights, int64_t n, int64_t dIn,
                           int64_t dOutWidth, GemmPrecision precision) {
  const int64_t L = expertsPerRank(ctx, "grouped_matmul_grad", n);
  expectRows("grouped_matmul_grad", dOut, buffer.rows);
  Rows dBuffer = poolRows(ctx, buffer.rows, dIn);
  if (!buffer.rows) {
    // No tokens reached this rank's experts: their gradient is zero.
    ctx->backend->fill(dWeights, 0.0f, L * dIn * dOutWidth);
    return dBuffer;
  }
  groupedMatmulBackward(ctx, buffer.rows, L, dIn, dOutWidth,
                        recvOffset + ctx->rank() * L, buffer.data, weights,
                        dOut.data, dBuffer.data, dWeights, precision);
  return dBuffer;
}

Rows activateRows(Context *ctx, Rows input, int64_t width, Activation act) {
  Rows out = poolRows(ctx, input.rows, width);
  if (input.rows)
    activate(ctx, input.data, out.data, input.rows * width, act);
  return out;
}

Rows activateGradRows(Context *ctx, Rows output, Rows dOutput, int64_t width,
                      Activation act) {
  expectRows("activate_grad", dOutput, output.rows);
  Rows dInput = poolRows(ctx, output.rows, width);
  if (output.rows)
    activateGrad(ctx, output.data, dOutput.data, dInput.data,
                 output.rows * width, act);
  return dInput;
}

} // namespace moe::rt::step
