//===- DispatchToEmitC.cpp - Dispatch plan, dispatch, experts, combine ----===//
//
// Lowers the dispatch family. The expert GEMMs take the target's precision;
// the plan, dispatch and combine move f32 rows and index arrays only.
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
            .results()
            .i64(numElements(op.getExpert()))
            .i64(op.getNumExperts())
            .i64(op.getTokens());
      });
  addStepCall<DispatchOp>(patterns, converter, "dispatch",
                          [](DispatchOp op, DispatchOp::Adaptor a,
                             StepCall &c) {
                            c.ptr(a.getInput())
                                .ptr(a.getToken())
                                .results()
                                .i64(dimSize(op.getBuffer(), 0))
                                .i64(dimSize(op.getBuffer(), 1));
                          });
  addStepCall<DispatchGradOp>(
      patterns, converter, "dispatchGrad",
      [](DispatchGradOp op, DispatchGradOp::Adaptor a, StepCall &c) {
        c.ptr(a.getDBuffer())
            .ptr(a.getPosition())
            .ptr(a.getRowPtr())
            .results()
            .i64(dimSize(op.getDBuffer(), 0))
            .i64(dimSize(op.getDBuffer(), 1))
            .i64(op.getTokens());
      });
  // On the rows an expert-parallel rank received (moe::rt::step::Rows),
  // the *Rows variants multiply by this rank's shard of the weights and
  // return their row outputs from the call's pool.
  addStepCall<GroupedMatmulOp>(
      patterns, converter, "groupedMatmul",
      [precision](GroupedMatmulOp op, GroupedMatmulOp::Adaptor a,
                  StepCall &c) {
        int64_t n = numElements(op.getExpertOffset()) - 1;
        if (hasDynamicRows(op.getBuffer())) {
          c.callee("groupedMatmulRows")
              .ptr(a.getBuffer())
              .ptr(a.getWeights())
              .ptr(a.getExpertOffset())
              .returns(0)
              .i64(n)
              .i64(dimSize(op.getBuffer(), 1))
              .i64(dimSize(op.getOutput(), 1))
              .literal(precision);
          return;
        }
        c.ptr(a.getBuffer())
            .ptr(a.getWeights())
            .ptr(a.getExpertOffset())
            .results()
            .i64(dimSize(op.getBuffer(), 0))
            .i64(n)
            .i64(dimSize(op.getBuffer(), 1))
            .i64(dimSize(op.getOutput(), 1))
            .literal(precision);
      });
  addStepCall<GroupedMatmulGradOp>(
      patterns, converter, "groupedMatmulGrad",
      [precision](GroupedMatmulGradOp op, GroupedMatmulGradOp::Adaptor a,
                  StepCall &c) {
        int64_t n = numElements(op.getExpertOffset()) - 1;
        if (hasDynamicRows(op.getBuffer())) {
          c.callee("groupedMatmulGradRows")
              .ptr(a.getBuffer())
              .ptr(a.getWeights())
              .ptr(a.getExpertOffset())
              .ptr(a.getDOutput())
              .returns(0)
              .result(1)
              .i64(n)
              .i64(dimSize(op.getBuffer(), 1))
              .i64(dimSize(op.getDOutput(), 1))
              .literal(precision);
          return;
        }
        c.ptr(a.getBuffer())
            .ptr(a.getWeights())
            .ptr(a.getExpertOffset())
            .ptr(a.getDOutput())
            .results()
            .i64(dimSize(op.getBuffer(), 0))
            .i64(n)
            .i64(dimSize(op.getBuffer(), 1))
            .i64(dimSize(op.getDOutput(), 1))
            .literal(precision);
      });
  addStepCall<CombineOp>(patterns, converter, "combine",
                         [](CombineOp op, CombineOp::Adaptor a, StepCall &c) {
                           c.ptr(a.getExpertOutput())
                               .ptr(a.getGate())
                               .ptr(a.getPosition())
                               .ptr(a.getRowPtr())
                               .results()
                               .i64(dimSize(op.getExpertOutput(), 0))
                               .i64(op.getTokens())
                               .i64(dimSize(op.getOutput(), 1));
                         });
  addStepCall<CombineGradOp>(
      patterns, converter, "combineGrad",
      [](CombineGradOp op, CombineGradOp::Adaptor a, StepCall &c) {
        c.ptr(a.getExpertOutput())
            .ptr(a.getGate())
            .ptr(a.getPosition())
            .ptr(a.getRowPtr())
            .ptr(a.getDOutput())
            .results()
            .i64(dimSize(op.getExpertOutput(), 0))
            .i64(op.getTokens())
            .i64(dimSize(op.getDOutput(), 1));
      });
}
