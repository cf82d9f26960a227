//===- SequenceOps.cpp - Embedding, LSTM and attention step ops -----------===//
//
// moe-plan-buffers reserves an LSTM's or attention's saved state right after
// its output (at the next 64-byte boundary), so the backward op finds the
// state from the forward op's output pointer without a separate operand.
//
//===----------------------------------------------------------------------===//

#include "runtime/step/OpSupport.h"

namespace moe::rt::step {

namespace {

/// The buffer plan's alignment of every tensor (passes/PlanBuffers.cpp).
constexpr int64_t kPlanAlignment = 64;

float *savedStateOf(const float *output, int64_t outputElements) {
  int64_t bytes = std::max<int64_t>(outputElements * 4, 1);
  int64_t aligned = (bytes + kPlanAlignment - 1) / kPlanAlignment *
                    kPlanAlignment;
  return reinterpret_cast<float *>(
      const_cast<char *>(reinterpret_cast<const char *>(output)) + aligned);
}

void checkSavedState(const char *op, int64_t needFloats, int64_t savedBytes) {
  if (needFloats * 4 > savedBytes)
    fail(op, "the buffer plan reserves " + std::to_string(savedBytes) +
                 " bytes of saved state but the backend needs " +
                 std::to_string(needFloats * 4) +
                 " (compiler and runtime disagree: recompile the package)");
}

void checkIds(Context *ctx, const char *op, const int32_t *ids,
              int64_t tokens, int64_t vocab) {
  std::vector<int32_t> host = toHost(ctx, ids, tokens);
  for (int64_t t = 0; t < tokens; ++t)
    if (host[t] < 0 || host[t] >= vocab)
      fail(op, "id " + std::to_string(host[t]) + " at position " +
                   std::to_string(t) + " is outside the vocabulary [0, " +
                   std::to_string(vocab) + ")");
}

} // namespace

void embedding(Context *ctx, const float *table, const int32_t *ids,
               float *out, int64_t tokens, int64_t d, int64_t vocab) {
  checkIds(ctx, "embedding", ids, tokens, vocab);
  ctx->backend->embeddingForward(tokens, d, ids, table, out);
}

void embeddingGrad(Context *ctx, const int32_t *ids, const float *dOut,
                   float *dTable, int64_t tokens, int64_t d, int64_t vocab) {
  // The kernel accumulates rows; the op's result is a fresh gradient.
  ctx->backend->fill(dTable, 0.0f, vocab * d);
  ctx->backend->embeddingBackward(tokens, d, ids, dOut, dTable);
}

void lstm(Context *ctx, const float *input, const float *inputWeights,
          const float *recurrentWeights, const float *bias,
          const float *projection, float *out, int64_t batch, int64_t time,
          int64_t dIn, int64_t hidden, int64_t projected, int64_t savedBytes,
          GemmPrecision precision) {
  lstmWithState(ctx, input, inputWeights, recurrentWeights, bias, projection,
                nullptr, nullptr, out, nullptr, nullptr, batch, time, dIn,
                hidden, projected, savedBytes, precision);
}

void lstmWithState(Context *ctx, const float *input, const float *inputWeights,
                   const float *recurrentWeights, const float *bias,
                   const float *projection, const float *initialHidden,
                   const float *initialCell, float *out, float *finalHidden,
                   float *finalCell, int64_t batch, int64_t time, int64_t dIn,
                   int64_t hidden, int64_t projected, int64_t savedBytes,
                   GemmPrecision precision) {
  Backend &b = *ctx->backend;
  checkSavedState("lstm",
                  b.lstmWorkspaceSize(batch, time, dIn, hidden, projected),
                  savedBytes);
  b.lstmForward(batch, time, dIn, hidden, projected, input, inputWeights,
                recurrentWeights, bias, projection, initialHidden, initialCell,
                out, finalHidden, finalCell,
                savedStateOf(out, batch * time * projected), precision);
}

void lstmGrad(Context *ctx, const float *input, const float *inputWeights,
              const float *recurrentWeights, const float *bias,
              const float *projection, const float *output,
              const float *dOutput, float *dInput, float *dInputWeights,
              float *dRecurrentWeights, float *dBias, float *dProjection,
              int64_t batch, int64_t time, int64_t dIn, int64_t hidden,
              int64_t projected, int64_t savedBytes, GemmPrecision precision) {
  Backend &b = *ctx->backend;
  checkSavedState("lstm_grad",
                  b.lstmWorkspaceSize(batch, time, dIn, hidden, projected),
                  savedBytes);
  b.lstmBackward(batch, time, dIn, hidden, projected, input, inputWeights,
                 recurrentWeights, bias, projection,
                 savedStateOf(output, batch * time * projected), dOutput,
                 dInput, dInputWeights, dRecurrentWeights, dBias, dProjection,
                 precision);
}

void attention(Context *ctx, const float *source, const float *target,
               const float *sourceWeights, const float *targetWeights,
               const float *scoreWeights, const int32_t *lengths,
               float *context, int64_t batch, int64_t sourceLen,
               int64_t targetLen, int64_t sourceWidth, int64_t targetWidth,
               int64_t scoreWidth, int64_t savedBytes) {
  Backend &b = *ctx->backend;
  if (lengths)
    checkLengths(ctx, "attention", lengths, batch, sourceLen);
  checkSavedState("attention",
                  b.attentionWorkspaceSize(batch, sourceLen, targetLen,
                                           sourceWidth, targetWidth,
                                           scoreWidth),
                  savedBytes);
  b.attentionForward(batch, sourceLen, targetLen, sourceWidth, targetWidth,
                     scoreWidth, source, target, sourceWeights, targetWeights,
                     scoreWeights, lengths, context,
                     savedStateOf(context, batch * targetLen * sourceWidth));
}

void attentionGrad(Context *ctx, const float *source, const float *target,
                   const float *sourceWeights, const float *targetWeights,
                   const float *scoreWeights, const float *context,
                   const float *dContext, float *dSource, float *dTarget,
                   float *dSourceWeights, float *dTargetWeights,
                   float *dScoreWeights, int64_t batch, int64_t sourceLen,
                   int64_t targetLen, int64_t sourceWidth, int64_t targetWidth,
                   int64_t scoreWidth, int64_t savedBytes) {
  Backend &b = *ctx->backend;
  checkSavedState("attention_grad",
                  b.attentionWorkspaceSize(batch, sourceLen, targetLen,
                                           sourceWidth, targetWidth,
                                           scoreWidth),
                  savedBytes);
  b.attentionBackward(batch, sourceLen, targetLen, sourceWidth, targetWidth,
                      scoreWidth,
                      source, target, sourceWeights, targetWeights,
                      scoreWeights,
                      savedStateOf(context, batch * targetLen * sourceWidth),
                      dContext, dSource, dTarget, dSourceWeights,
                      dTargetWeights, dScoreWeights);
}

} // namespace moe::rt::step
