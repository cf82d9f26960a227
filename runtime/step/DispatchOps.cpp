//===- DispatchOps.cpp - The dispatch plan --------------------------------===//
//
// The IR carries a plan as its arrays (expert offsets, positions, tokens),
// which the dispatch, combine and expert kernels take as they are (direct
// kernels, runtime/Kernels.def). Building one is more than a kernel call:
// threshold masks fill a data-dependent number of the `capacity` assignment
// slots (rowPtr[tokens] of them, read back here: one of the few host reads
// of a step, docs/ARCHITECTURE.md), the plan covers those, and the unused
// slots of `token` are set to row 0 so that a dispatch over the whole
// buffer reads valid rows. The plan is where token, expert and gate meet,
// so it also records the routing when the driver asks (Context::
// captureRoutes, moe-run inspect).
//
//===----------------------------------------------------------------------===//

#include "runtime/step/OpSupport.h"

namespace moe::rt::step {

namespace {

/// Appends the per-expert token counts of a plan to the call's statistics.
void recordExpertTokens(Context *ctx, const int32_t *expertOffset, int64_t n) {
  if (!ctx->collectStats)
    return;
  std::vector<int32_t> offsets = toHost(ctx, expertOffset, n + 1);
  std::vector<int64_t> counts(static_cast<size_t>(n));
  for (int64_t e = 0; e < n; ++e)
    counts[e] = offsets[e + 1] - offsets[e];
  ctx->stats.expertTokens.push_back(std::move(counts));
}

/// Appends the plan's assignments (token-major, `assignments` of them) to
/// the call's captured routes.
void captureRoutes(Context *ctx, const int32_t *rowPtr, const int32_t *expert,
                   const float *gate, int64_t assignments, int64_t n,
                   int64_t tokens) {
  if (!ctx->captureRoutes)
    return;
  RouteCapture capture;
  capture.tokens = tokens;
  capture.experts = n;
  if (rowPtr) {
    capture.rowPtr = toHost(ctx, rowPtr, tokens + 1);
  } else {
    // Top-k's implicit row pointer: assignments / tokens per token.
    capture.rowPtr.resize(static_cast<size_t>(tokens) + 1);
    for (int64_t t = 0; t <= tokens; ++t)
      capture.rowPtr[t] = static_cast<int32_t>(t * (assignments / tokens));
  }
  capture.expert = toHost(ctx, expert, assignments);
  if (gate)
    capture.gate = toHost(ctx, gate, assignments);
  ctx->routes.push_back(std::move(capture));
}

} // namespace

void buildPlan(Context *ctx, const int32_t *rowPtr, const int32_t *expert,
               const float *gate, int32_t *expertOffset, int32_t *position,
               int32_t *token, int64_t assignments, int64_t n, int64_t tokens) {
  ctx->backend->buildDispatchPlan(tokens, n, assignments, rowPtr, expert,
                                  expertOffset, position, token);
  recordPlan(ctx, rowPtr, expert, gate, expertOffset, assignments, n, tokens);
}

void recordPlan(Context *ctx, const int32_t *rowPtr, const int32_t *expert,
                const float *gate, const int32_t *expertOffset,
                int64_t assignments, int64_t n, int64_t tokens) {
  recordExpertTokens(ctx, expertOffset, n);
  captureRoutes(ctx, rowPtr, expert, gate, assignments, n, tokens);
}

void dispatchPlan(Context *ctx, const int32_t *expert, const int32_t *rowPtr,
                  const float *gate, int32_t *expertOffset, int32_t *position,
                  int32_t *token, int64_t capacity, int64_t n,
                  int64_t tokens) {
  int64_t used = capacity;
  if (!rowPtr) {
    if (capacity % tokens != 0)
      fail("dispatch_plan", std::to_string(capacity) +
                                " assignments do not split evenly over " +
                                std::to_string(tokens) + " tokens");
  } else {
    int32_t last = 0;
    ctx->backend->copyToHost(&last, rowPtr + tokens, sizeof(last));
    if (last < 0 || last > capacity)
      fail("dispatch_plan", "row pointers end at " + std::to_string(last) +
                                ", outside [0, " + std::to_string(capacity) +
                                "]");
    used = last;
  }
  if (used < capacity) {
    // All-zero bits are 0 as int32 too.
    ctx->backend->fill(reinterpret_cast<float *>(token + used), 0.0f,
                       capacity - used);
    ctx->backend->fill(reinterpret_cast<float *>(position + used), 0.0f,
                       capacity - used);
  }
  buildPlan(ctx, rowPtr, expert, gate, expertOffset, position, token, used, n,
            tokens);
}

} // namespace moe::rt::step
