//===- DispatchOps.cpp - Dispatch plan, dispatch, experts, combine --------===//
//
// The IR carries a plan as its arrays (expert offsets, positions, tokens);
// these functions rebuild the DispatchPlan view each kernel reads. Threshold
// masks fill a data-dependent number of the `capacity` assignment slots
// (rowPtr[tokens] of them): the plan covers those, and the unused slots of
// `token` are set to row 0 so that a dispatch over the whole buffer reads
// valid rows.
//
//===----------------------------------------------------------------------===//

#include "runtime/step/OpSupport.h"

namespace moe::rt::step {

namespace {

/// Per-expert counts of a plan given by its offsets, in scratch memory.
int32_t *expertCounts(Context *ctx, ScratchScope &scratch,
                      const int32_t *expertOffset, int64_t n) {
  std::vector<int32_t> offsets = toHost(ctx, expertOffset, n + 1);
  std::vector<int32_t> counts(static_cast<size_t>(n));
  for (int64_t e = 0; e < n; ++e)
    counts[e] = offsets[e + 1] - offsets[e];
  int32_t *device = scratch.get<int32_t>(n);
  ctx->backend->copyFromHost(device, counts.data(), counts.size() * 4);
  return device;
}

/// The plan as the expert GEMMs read it: segments by expert over `rows`
/// buffer rows (the counts live in `scratch`).
DispatchPlan expertSidePlan(Context *ctx, ScratchScope &scratch,
                            const int32_t *expertOffset, int64_t rows,
                            int64_t n) {
  DispatchPlan plan;
  plan.numTokens = rows;
  plan.numExperts = n;
  plan.numAssignments = rows;
  plan.expertOffset = const_cast<int32_t *>(expertOffset);
  plan.expertCount = expertCounts(ctx, scratch, expertOffset, n);
  return plan;
}

/// The plan as the combine-side kernels read it: rows per token and the
/// buffer position of each assignment.
DispatchPlan tokenSidePlan(Context *ctx, const int32_t *position,
                           const int32_t *rowPtr, int64_t rows,
                           int64_t tokens) {
  DispatchPlan plan;
  plan.numTokens = tokens;
  plan.numExperts = 1;
  plan.numAssignments = rows;
  plan.rowPtr = rowPtr ? rowPtr : ctx->uniformRowPtr(tokens, rows / tokens);
  plan.positionOf = const_cast<int32_t *>(position);
  return plan;
}

} // namespace

void dispatchPlan(Context *ctx, const int32_t *expert, const int32_t *rowPtr,
                  int32_t *expertOffset, int32_t *position, int32_t *token,
                  int64_t capacity, int64_t n, int64_t tokens) {
  int64_t used = capacity;
  if (!rowPtr) {
    if (capacity % tokens != 0)
      fail("dispatch_plan", std::to_string(capacity) +
                                " assignments do not split evenly over " +
                                std::to_string(tokens) + " tokens");
    rowPtr = ctx->uniformRowPtr(tokens, capacity / tokens);
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
  buildPlan(ctx, rowPtr, expert, expertOffset, position, token, used, n,
            tokens);
}

void dispatch(Context *ctx, const float *input, const int32_t *token,
              float *buffer, int64_t rows, int64_t d) {
  DispatchPlan plan;
  plan.numTokens = rows;
  plan.numExperts = 1;
  plan.numAssignments = rows;
  plan.tokenOfPosition = const_cast<int32_t *>(token);
  ctx->backend->dispatchForward(plan, d, input, buffer);
}

void dispatchGrad(Context *ctx, const float *dBuffer, const int32_t *position,
                  const int32_t *rowPtr, float *dInput, int64_t rows,
                  int64_t d, int64_t tokens) {
  DispatchPlan plan = tokenSidePlan(ctx, position, rowPtr, rows, tokens);
  ctx->backend->dispatchBackward(plan, d, dBuffer, dInput);
}

void groupedMatmul(Context *ctx, const float *buffer, const float *weights,
                   const int32_t *expertOffset, float *out, int64_t rows,
                   int64_t n, int64_t dIn, int64_t dOut,
                   GemmPrecision precision) {
  ScratchScope scratch(ctx);
  DispatchPlan plan = expertSidePlan(ctx, scratch, expertOffset, rows, n);
  ctx->backend->groupedMatmulForward(plan, dIn, dOut, buffer, weights, out,
                                     precision);
}

void groupedMatmulGrad(Context *ctx, const float *buffer, const float *weights,
                       const int32_t *expertOffset, const float *dOut,
                       float *dBuffer, float *dWeights, int64_t rows,
                       int64_t n, int64_t dIn, int64_t dOutWidth,
                       GemmPrecision precision) {
  ScratchScope scratch(ctx);
  DispatchPlan plan = expertSidePlan(ctx, scratch, expertOffset, rows, n);
  ctx->backend->groupedMatmulBackward(plan, dIn, dOutWidth, buffer, weights,
                                      dOut, dBuffer, dWeights, precision);
}

void combine(Context *ctx, const float *expertOutput, const float *gate,
             const int32_t *position, const int32_t *rowPtr, float *out,
             int64_t rows, int64_t tokens, int64_t d) {
  DispatchPlan plan = tokenSidePlan(ctx, position, rowPtr, rows, tokens);
  ctx->backend->combineForward(plan, d, gate, expertOutput, out);
}

void combineGrad(Context *ctx, const float *expertOutput, const float *gate,
                 const int32_t *position, const int32_t *rowPtr,
                 const float *dOut, float *dExpertOutput, float *dGate,
                 int64_t rows, int64_t tokens, int64_t d) {
  DispatchPlan plan = tokenSidePlan(ctx, position, rowPtr, rows, tokens);
  ctx->backend->combineBackward(plan, d, gate, expertOutput, dOut,
                                dExpertOutput, dGate);
}

} // namespace moe::rt::step
