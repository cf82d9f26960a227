//===- DispatchToEmitC.cpp - Dispatch plan, dispatch, experts, combine ----===//
//
// Lowers the dispatch family. Apart from building the plan, each op is one
// kernel taking the plan's arrays as the IR carries them (an absent row_ptr
// is top-k routing's implicit one). The expert GEMMs take the target's
// precision; the plan, dispatch and combine move f32 rows and index arrays
// only.
//
//===----------------------------------------------------------------------===//

#include "codegen/MoEToEmitC.h"

#include "dialect/MoEOps.h"

using namespace mlir;
using namespace mlir::moe;

void mlir::moe::populateMoEDispatchToEmitCPatterns(
    const TypeConverter &converter, RewritePatternSet &patterns,
    const EmitCTarget &target) {
  std::string precision = target.gemmPrecision;
  addStepCall<DispatchPlanOp>(
      patterns, converter, "dispatchPlan",
      [](DispatchPlanOp op, DispatchPlanOp::Adaptor a, StepCall &c) {
        c.ptr(a.getExpert())
            .ptr(a.getRowPtr())
            .ptr(a.getGate())
            .results()
            .i64(numElements(op.getExpert()))
            .i64(op.getNumExperts())
            .i64(op.getTokens());
      });
  addStepCall<DispatchOp>(
      patterns, converter, "dispatchForward",
      [](DispatchOp op, DispatchOp::Adaptor a, StepCall &c) {
        c.i64(dimSize(op.getBuffer(), 0))
            .i64(dimSize(op.getBuffer(), 1))
            .ptr(a.getToken())
            .ptr(a.getInput())
            .results();
      });
  addStepCall<DispatchGradOp>(
      patterns, converter, "dispatchBackward",
      [](DispatchGradOp op, DispatchGradOp::Adaptor a, StepCall &c) {
        c.i64(op.getTokens())
            .i64(dimSize(op.getDBuffer(), 0))
            .i64(dimSize(op.getDBuffer(), 1))
            .ptr(a.getRowPtr())
            .ptr(a.getPosition())
            .ptr(a.getDBuffer())
            .results();
      });
  // On the rows an expert-parallel rank received (moe::rt::step::Rows),
  // the *Rows variants multiply by this rank's shard of the weights and
  // return their row outputs from the call's pool.
  addStepCall<GroupedMatmulOp>(
      patterns, converter, "groupedMatmulForward",
      [precision](GroupedMatmulOp op, GroupedMatmulOp::Adaptor a, StepCall &c) {
        int64_t n = numElements(op.getExpertOffset()) - 1;
        if (hasDynamicRows(op.getBuffer())) {
          c.callee("groupedMatmulRows")
              .operands(a.getOperands())
              .returns(0)
              .i64(n)
              .i64(dimSize(op.getBuffer(), 1))
              .i64(dimSize(op.getOutput(), 1))
              .literal(precision);
          return;
        }
        // Equal segments (moe-mark-equal-segments): no offsets to read.
        if (std::optional<uint64_t> rows = op.getRowsPerExpert())
          c.callee("batchedMatmulForward").i64(n).i64(*rows);
        else
          c.i64(dimSize(op.getBuffer(), 0)).i64(n);
        c.i64(dimSize(op.getBuffer(), 1))
            .i64(dimSize(op.getOutput(), 1))
            .ptr(a.getExpertOffset())
            .ptr(a.getBuffer())
            .ptr(a.getWeights())
            .results()
            .literal(precision);
      });
  addStepCall<GroupedMatmulGradOp>(
      patterns, converter, "groupedMatmulBackward",
      [precision](GroupedMatmulGradOp op, GroupedMatmulGradOp::Adaptor a,
                  StepCall &c) {
        int64_t n = numElements(op.getExpertOffset()) - 1;
        if (hasDynamicRows(op.getBuffer())) {
          c.callee("groupedMatmulGradRows")
              .operands(a.getOperands())
              .returns(0)
              .result(1)
              .i64(n)
              .i64(dimSize(op.getBuffer(), 1))
              .i64(dimSize(op.getDOutput(), 1))
              .literal(precision);
          return;
        }
        if (std::optional<uint64_t> rows = op.getRowsPerExpert())
          c.callee("batchedMatmulBackward").i64(n).i64(*rows);
        else
          c.i64(dimSize(op.getBuffer(), 0)).i64(n);
        c.i64(dimSize(op.getBuffer(), 1))
            .i64(dimSize(op.getDOutput(), 1))
            .ptr(a.getExpertOffset())
            .ptr(a.getBuffer())
            .ptr(a.getWeights())
            .ptr(a.getDOutput())
            .results()
            .literal(precision);
      });
  addStepCall<CombineOp>(patterns, converter, "combineForward",
                         [](CombineOp op, CombineOp::Adaptor a, StepCall &c) {
                           c.i64(op.getTokens())
                               .i64(dimSize(op.getExpertOutput(), 0))
                               .i64(dimSize(op.getOutput(), 1))
                               .ptr(a.getRowPtr())
                               .ptr(a.getPosition())
                               .ptr(a.getGate())
                               .ptr(a.getExpertOutput())
                               .results();
                         });
  addStepCall<CombineGradOp>(
      patterns, converter, "combineBackward",
      [](CombineGradOp op, CombineGradOp::Adaptor a, StepCall &c) {
        c.i64(op.getTokens())
            .i64(dimSize(op.getExpertOutput(), 0))
            .i64(dimSize(op.getDOutput(), 1))
            .ptr(a.getRowPtr())
            .ptr(a.getPosition())
            .ptr(a.getGate())
            .ptr(a.getExpertOutput())
            .ptr(a.getDOutput())
            .results();
      });
}
