//===- AlgebraOps.cpp - Matrix products and element-wise step ops ---------===//
//
// The router's products (moe.matmul) run in f32 unless the compiler allowed
// TF32 (router-precision=tf32): the gate logits decide the routing, and a
// lower precision moves tokens between experts.
//
//===----------------------------------------------------------------------===//

#include "runtime/step/OpSupport.h"

namespace moe::rt::step {

void matmul(Context *ctx, const float *lhs, const float *rhs, float *out,
            int64_t lhsRows, int64_t lhsCols, int64_t rhsRows, int64_t rhsCols,
            bool transposeLhs, bool transposeRhs, GemmPrecision precision) {
  int64_t m = transposeLhs ? lhsCols : lhsRows;
  int64_t k = transposeLhs ? lhsRows : lhsCols;
  int64_t kRhs = transposeRhs ? rhsCols : rhsRows;
  int64_t n = transposeRhs ? rhsRows : rhsCols;
  if (k != kRhs)
    fail("matmul", "inner dimensions differ (" + std::to_string(k) + " vs " +
                       std::to_string(kRhs) + ")");
  ctx->backend->gemm(transposeLhs, transposeRhs, m, n, k, 1.0f, lhs, lhsCols,
                     rhs, rhsCols, 0.0f, out, n, precision);
}

void activate(Context *ctx, const float *input, float *out, int64_t count,
              Activation act) {
  Backend &b = *ctx->backend;
  switch (act) {
  case Activation::None:
    b.copyDevice(out, input, sizeof(float) * count);
    return;
  case Activation::Relu:
    b.reluForward(input, out, count);
    return;
  case Activation::Sigmoid:
    b.sigmoidForward(input, out, count);
    return;
  case Activation::Tanh:
    b.tanhForward(input, out, count);
    return;
  }
  fail("activate", "unknown activation " +
                       std::to_string(static_cast<int>(act)));
}

void activateGrad(Context *ctx, const float *output, const float *dOutput,
                  float *dInput, int64_t count, Activation act) {
  Backend &b = *ctx->backend;
  switch (act) {
  case Activation::None:
    b.copyDevice(dInput, dOutput, sizeof(float) * count);
    return;
  case Activation::Relu:
    b.reluBackward(output, dOutput, dInput, count);
    return;
  case Activation::Sigmoid:
    b.sigmoidBackward(output, dOutput, dInput, count);
    return;
  case Activation::Tanh:
    b.tanhBackward(output, dOutput, dInput, count);
    return;
  }
  fail("activate_grad", "unknown activation " +
                            std::to_string(static_cast<int>(act)));
}

void dropout(Context *ctx, const float *input, float *out, int64_t count,
             float rate, int64_t stream) {
  if (!ctx->training || rate == 0.0f) {
    ctx->backend->copyDevice(out, input, sizeof(float) * count);
    return;
  }
  Context::RngPlace place = ctx->rngFor(stream, count);
  ctx->backend->dropoutForward(input, out, count, rate, ctx->seed,
                               place.counter, place.elementOffset);
}

void totalLossOf(Context *ctx, float *out, const float *const *terms,
                 int64_t count) {
  if (count < 1)
    fail("total_loss", "needs at least one term");
  ctx->backend->copyDevice(out, terms[0], sizeof(float));
  for (int64_t i = 1; i < count; ++i)
    ctx->backend->accumulate(terms[i], out, 1);
}

} // namespace moe::rt::step
