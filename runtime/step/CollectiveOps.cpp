//===- CollectiveOps.cpp - All-reduce for data-parallel graphs ------------===//
//
// The Collectives add in rank order (runtime/collectives), so a reduced
// value has the same bits on every rank and replicated parameters stay
// identical without being broadcast.
//
//===----------------------------------------------------------------------===//

#include "runtime/step/OpSupport.h"

#include "runtime/collectives/Collectives.h"

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

} // namespace moe::rt::step
