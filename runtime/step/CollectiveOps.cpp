//===- CollectiveOps.cpp - Collectives of data-parallel graphs ------------===//
//
// The Collectives add in rank order (runtime/collectives), so a reduced
// value has the same bits on every rank and replicated parameters stay
// identical without being broadcast.
//
//===----------------------------------------------------------------------===//

#include "runtime/step/OpSupport.h"

#include "runtime/collectives/Collectives.h"

#include <algorithm>
#include <string>
#include <type_traits>

namespace moe::rt::step {

namespace {

int rankCount(Context *ctx) { return ctx->ranks(); }

} // namespace

int Context::rank() const { return collectives ? collectives->rank() : 0; }

int Context::ranks() const { return collectives ? collectives->size() : 1; }

Context::RngPlace Context::rngFor(int64_t stream, int64_t count) const {
  RngPlace place;
  place.counter = counterFor(stream);
  uint64_t offset = static_cast<uint64_t>(rank()) * static_cast<uint64_t>(count);
  if (offset % 4 == 0)
    place.elementOffset = offset;
  else
    place.counter ^= static_cast<uint64_t>(rank()) << 48;
  return place;
}

void allReduce(Context *ctx, const float *in, float *out, int64_t count,
               bool average) {
  Backend &b = *ctx->backend;
  if (out != in)
    b.copyDevice(out, in, sizeof(float) * count);
  int ranks = rankCount(ctx);
  if (ranks == 1)
    return;
  b.synchronize(); // the collective reads what the kernels wrote
  ctx->collectives->allReduceSum(out, count);
  if (average)
    b.scale(out, 1.0f / static_cast<float>(ranks), out, count);
}

void allReduce(Context *ctx, const int32_t *in, int32_t *out, int64_t count,
               bool average) {
  if (average)
    fail("all_reduce", "an integer average is not exact; only sums");
  Backend &b = *ctx->backend;
  if (out != in)
    b.copyDevice(out, in, sizeof(int32_t) * count);
  if (rankCount(ctx) == 1)
    return;
  b.synchronize();
  ctx->collectives->allReduceSum(out, count);
}

void divideByRanks(Context *ctx, const float *in, float *out, int64_t count) {
  ctx->backend->scale(in, 1.0f / static_cast<float>(rankCount(ctx)), out,
                      count);
}

RowSum sumRowsOverRanks(Context *ctx, const int32_t *rows, const float *values0,
                        const float *values1, int64_t n, int64_t width0,
                        int64_t width1, int64_t vocab) {
  Backend &b = *ctx->backend;
  const int64_t ranks = rankCount(ctx), total = ranks * n;
  RowSum sum;
  sum.rows = {static_cast<int32_t *>(ctx->pool.get(sizeof(int32_t) * total)),
              total};
  ScratchScope scratch(ctx);
  // Every rank's n rows, in rank order: the compiled capacity, so the
  // gathers need no count exchange (-1 rows are padding).
  auto gather = [&](const auto *local, int64_t width) {
    using T = std::remove_const_t<std::remove_pointer_t<decltype(local)>>;
    if (ranks == 1)
      return local;
    T *all = scratch.get<T>(total * width);
    ctx->collectives->allGather(local, sizeof(T) * n * width, all);
    return static_cast<const T *>(all);
  };
  if (ranks > 1)
    b.synchronize(); // the collectives read what the kernels wrote
  const int32_t *ids = gather(rows, 1);
  const float *values[2] = {values0, values1};
  const int64_t widths[2] = {width0, width1};
  for (int i = 0; i < 2; ++i) {
    if (!values[i])
      continue;
    const float *all = gather(values[i], widths[i]);
    sum.values[i] = {
        static_cast<float *>(ctx->pool.get(
            sizeof(float) * std::max<int64_t>(total * widths[i], 1))),
        total};
    // Both value tensors get the same ids: keep the first's.
    int32_t *merged = i == 0 ? sum.rows.data : scratch.get<int32_t>(total);
    b.rowGradient(total, widths[i], vocab, ids, all, merged,
                  sum.values[i].data);
  }
  return sum;
}

void adamUpdateSummedRows(Context *ctx, int64_t d, float *param, RowIds rows,
                          Rows values, float *m, float *v, const float *lr,
                          const int64_t *step, float beta1, float beta2,
                          float eps, float weightDecay) {
  if (values.rows != rows.rows)
    fail("adam_update_rows", std::to_string(values.rows) + " value rows for " +
                                 std::to_string(rows.rows) + " row ids");
  ctx->backend->adamUpdateRows(rows.rows, d, param, rows.data, values.data, m,
                               v, lr, step, beta1, beta2, eps, weightDecay);
}

} // namespace moe::rt::step
