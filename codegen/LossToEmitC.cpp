//===- LossToEmitC.cpp - Output layer, learning rate and Adam -------------===//
//
// Lowers the cross-entropy ops (full or sampled softmax, with the output
// layer's GEMMs at the target's precision; a `target_count` operand selects
// the step ABI's overload that divides by it), the learning-rate schedule and
// Adam. moe.adam_update and moe.adam_update_rows write their parameter and
// moments in place, so their results are their operands' pointers.
//
//===----------------------------------------------------------------------===//

#include "codegen/MoEToEmitC.h"

#include "dialect/MoEOps.h"

using namespace mlir;
using namespace mlir::moe;

namespace {

/// tokens, d, vocab of an output layer over `hidden` [..., d].
void outputSizes(StepCall &c, Value hidden, Value weights) {
  int64_t d = dimSize(weights, 1);
  c.i64(numElements(hidden) / d).i64(d).i64(dimSize(weights, 0));
}

/// Adam's hyperparameters, after the pointers, and the in-place results.
template <typename AdamOp, typename Adaptor>
void adamTail(AdamOp op, Adaptor a, StepCall &c) {
  c.f32(op.getBeta1().convertToFloat())
      .f32(op.getBeta2().convertToFloat())
      .f32(op.getEps().convertToFloat())
      .f32(op.getWeightDecay().convertToFloat())
      .replaceWith({a.getParam(), a.getM(), a.getV()});
}

} // namespace

void mlir::moe::populateMoELossToEmitCPatterns(const TypeConverter &converter,
                                               RewritePatternSet &patterns,
                                               const EmitCTarget &target) {
  std::string precision = target.gemmPrecision;
  addStepCall<SoftmaxCrossEntropyOp>(
      patterns, converter, "softmaxCrossEntropy",
      [precision](SoftmaxCrossEntropyOp op, SoftmaxCrossEntropyOp::Adaptor a,
                  StepCall &c) {
        c.operands(a.getOperands()).results();
        outputSizes(c, op.getHidden(), op.getWeights());
        c.i64(op.getNumSamples().value_or(0))
            .i64(op.getRngStream())
            .literal(precision);
      });
  addStepCall<CountTargetsOp>(
      patterns, converter, "countTargets",
      [](CountTargetsOp op, CountTargetsOp::Adaptor a, StepCall &c) {
        c.ptr(a.getTargets()).results().i64(numElements(op.getTargets()));
      });
  addStepCall<SoftmaxCrossEntropyGradOp>(
      patterns, converter, "softmaxCrossEntropyGrad",
      [precision](SoftmaxCrossEntropyGradOp op,
                  SoftmaxCrossEntropyGradOp::Adaptor a, StepCall &c) {
        c.operands(a.getOperands()).results();
        outputSizes(c, op.getHidden(), op.getWeights());
        c.i64(op.getNumSamples().value_or(0))
            .i64(op.getRngStream())
            .literal(precision);
      });
  addStepCall<SoftmaxCrossEntropyRowGradOp>(
      patterns, converter, "softmaxCrossEntropyRowGrad",
      [](SoftmaxCrossEntropyRowGradOp op,
         SoftmaxCrossEntropyRowGradOp::Adaptor a, StepCall &c) {
        c.operands(a.getOperands()).results();
        outputSizes(c, op.getHidden(), op.getWeights());
        c.i64(op.getNumSamples()).i64(op.getRngStream());
      });
  addStepCall<LrScheduleOp>(
      patterns, converter, "lrSchedule",
      [](LrScheduleOp op, LrScheduleOp::Adaptor a, StepCall &c) {
        c.ptr(a.getStep())
            .results()
            .f32(op.getBaseLr().convertToFloat())
            .i64(op.getWarmupSteps())
            .i64(op.getConstantSteps());
      });
  addStepCall<AdamUpdateOp>(
      patterns, converter, "adamUpdate",
      [](AdamUpdateOp op, AdamUpdateOp::Adaptor a, StepCall &c) {
        c.count(op.getParam()).operands(a.getOperands());
        adamTail(op, a, c);
      });
  addStepCall<AdamUpdateRowsOp>(
      patterns, converter, "adamUpdateRows",
      [](AdamUpdateRowsOp op, AdamUpdateRowsOp::Adaptor a, StepCall &c) {
        if (hasDynamicRows(op.getRows())) {
          // The rows of all data-parallel ranks: their number comes with
          // them (moe::rt::step::RowIds, Rows).
          c.callee("adamUpdateSummedRows")
              .i64(numElements(op.getParam()) / dimSize(op.getParam(), 0))
              .operands(a.getOperands());
          adamTail(op, a, c);
          return;
        }
        int64_t n = dimSize(op.getRows(), 0);
        c.i64(n)
            .i64(n ? numElements(op.getValues()) / n : 0)
            .operands(a.getOperands());
        adamTail(op, a, c);
      });
}
