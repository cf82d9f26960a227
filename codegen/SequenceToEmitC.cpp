//===- SequenceToEmitC.cpp - Embedding, LSTM and attention ----------------===//
//
// Lowers the sequence layers. The LSTM's and attention's saved state sits
// after their output in the arena; the size the planner reserved is passed
// along so the runtime can check it against what its kernels need.
//
//===----------------------------------------------------------------------===//

#include "codegen/MoEToEmitC.h"

#include "dialect/MoEOps.h"
#include "passes/BufferPlan.h"

using namespace mlir;
using namespace mlir::moe;

namespace {

/// B, S, d_in, H, P of an LSTM with input `input` and output `output`.
void lstmSizes(StepCall &c, Value input, Value inputWeights, Value output) {
  c.i64(dimSize(input, 0))
      .i64(dimSize(input, 1))
      .i64(dimSize(input, 2))
      .i64(dimSize(inputWeights, 1) / 4)
      .i64(dimSize(output, 2));
}

/// B, S_x, S_y, d_x, d_y, E of an attention.
void attentionSizes(StepCall &c, Value source, Value target,
                    Value scoreWeights) {
  c.i64(dimSize(source, 0))
      .i64(dimSize(source, 1))
      .i64(dimSize(target, 1))
      .i64(dimSize(source, 2))
      .i64(dimSize(target, 2))
      .i64(dimSize(scoreWeights, 0));
}

} // namespace

void mlir::moe::populateMoESequenceToEmitCPatterns(
    const TypeConverter &converter, RewritePatternSet &patterns,
    const EmitCTarget &target) {
  std::string precision = target.gemmPrecision;
  addStepCall<EmbeddingOp>(
      patterns, converter, "embedding",
      [](EmbeddingOp op, EmbeddingOp::Adaptor a, StepCall &c) {
        c.ptr(a.getTable())
            .ptr(a.getIds())
            .results()
            .i64(numElements(op.getIds()))
            .i64(dimSize(op.getTable(), 1))
            .i64(dimSize(op.getTable(), 0));
      });
  addStepCall<EmbeddingGradOp>(
      patterns, converter, "embeddingGrad",
      [](EmbeddingGradOp op, EmbeddingGradOp::Adaptor a, StepCall &c) {
        c.ptr(a.getIds())
            .ptr(a.getDOutput())
            .results()
            .i64(numElements(op.getIds()))
            .i64(dimSize(op.getDTable(), 1))
            .i64(dimSize(op.getDTable(), 0));
      });
  addStepCall<EmbeddingRowGradOp>(
      patterns, converter, "rowGradient",
      [](EmbeddingRowGradOp op, EmbeddingRowGradOp::Adaptor a, StepCall &c) {
        c.i64(numElements(op.getIds()))
            .i64(dimSize(op.getValues(), 1))
            .i64(op.getVocab())
            .ptr(a.getIds())
            .ptr(a.getDOutput())
            .results();
      });
  // The stateful form calls lstmWithState; its calls add h_0, c_0 after
  // the weights and h_T, c_T after the output (.results()).
  addStepCall<LSTMOp>(
      patterns, converter, "lstm",
      [precision](LSTMOp op, LSTMOp::Adaptor a, StepCall &c) {
        if (op.hasState())
          c.callee("lstmWithState");
        c.ptr(a.getInput())
            .ptr(a.getInputWeights())
            .ptr(a.getRecurrentWeights())
            .ptr(a.getBias())
            .ptr(a.getProjection());
        if (op.hasState())
          c.ptr(a.getInitialState()[0]).ptr(a.getInitialState()[1]);
        c.results();
        lstmSizes(c, op.getInput(), op.getInputWeights(), op.getOutput());
        c.i64(*lstmSavedStateBytes(op.getInput(), op.getInputWeights(),
                                   op.getOutput()))
            .literal(precision);
      });
  addStepCall<LSTMGradOp>(
      patterns, converter, "lstmGrad",
      [precision](LSTMGradOp op, LSTMGradOp::Adaptor a, StepCall &c) {
        c.ptr(a.getInput())
            .ptr(a.getInputWeights())
            .ptr(a.getRecurrentWeights())
            .ptr(a.getBias())
            .ptr(a.getProjection())
            .ptr(a.getOutput())
            .ptr(a.getDOutput())
            .result(0)
            .result(1)
            .result(2)
            .result(3);
        if (op.getDProjection())
          c.result(4);
        else
          c.ptr(Value());
        lstmSizes(c, op.getInput(), op.getInputWeights(), op.getOutput());
        c.i64(*lstmSavedStateBytes(op.getInput(), op.getInputWeights(),
                                   op.getOutput()))
            .literal(precision);
      });
  addStepCall<AttentionOp>(
      patterns, converter, "attention",
      [](AttentionOp op, AttentionOp::Adaptor a, StepCall &c) {
        c.ptr(a.getSource())
            .ptr(a.getTarget())
            .ptr(a.getSourceWeights())
            .ptr(a.getTargetWeights())
            .ptr(a.getScoreWeights())
            .ptr(a.getLengths())
            .results();
        attentionSizes(c, op.getSource(), op.getTarget(),
                       op.getScoreWeights());
        c.i64(*attentionSavedStateBytes(op.getSource(), op.getTarget(),
                                        op.getScoreWeights()));
      });
  addStepCall<AttentionGradOp>(
      patterns, converter, "attentionGrad",
      [](AttentionGradOp op, AttentionGradOp::Adaptor a, StepCall &c) {
        c.ptr(a.getSource())
            .ptr(a.getTarget())
            .ptr(a.getSourceWeights())
            .ptr(a.getTargetWeights())
            .ptr(a.getScoreWeights())
            .ptr(a.getContext())
            .ptr(a.getDContext())
            .results();
        attentionSizes(c, op.getSource(), op.getTarget(),
                       op.getScoreWeights());
        c.i64(*attentionSavedStateBytes(op.getSource(), op.getTarget(),
                                        op.getScoreWeights()));
      });
}
