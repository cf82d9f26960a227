//===- CollectivesToEmitC.cpp - Mesh collectives of partitioned graphs ----===//
//
// Lowers the upstream mesh.all_reduce (sum or average over the 1-D mesh of
// ranks that moe-partition adds), moe.divide_by_mesh_size, the expert
// exchange and moe.sum_rows_over_ranks to the step ABI, which calls the
// runtime's Collectives; the mesh itself is only a symbol and emits nothing.
//
//===----------------------------------------------------------------------===//

#include "codegen/MoEToEmitC.h"

#include "dialect/MoECollectiveOps.h"
#include "dialect/MoEOps.h"

#include "mlir/Dialect/Mesh/IR/MeshOps.h"

using namespace mlir;
using namespace mlir::moe;

namespace {

struct MeshLowering : public OpConversionPattern<mesh::MeshOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(mesh::MeshOp op, OpAdaptor,
                  ConversionPatternRewriter &rewriter) const override {
    rewriter.eraseOp(op);
    return success();
  }
};

} // namespace

void mlir::moe::populateMoECollectivesToEmitCPatterns(
    const TypeConverter &converter, RewritePatternSet &patterns,
    const EmitCTarget &) {
  patterns.add<MeshLowering>(converter, patterns.getContext());
  addStepCall<mesh::AllReduceOp>(
      patterns, converter, "allReduce",
      [](mesh::AllReduceOp op, mesh::AllReduceOp::Adaptor a, StepCall &c) {
        c.ptr(a.getInput())
            .results()
            .i64(numElements(op.getResult()))
            .flag(op.getReduction() == mesh::ReductionKind::Average);
      });
  addStepCall<ExchangeCountsOp>(
      patterns, converter, "exchangeCounts",
      [](ExchangeCountsOp op, ExchangeCountsOp::Adaptor a, StepCall &c) {
        c.ptr(a.getExpertOffset())
            .results()
            .i64(numElements(op.getRecvCounts()));
      });
  addStepCall<ExchangeToExpertsOp>(
      patterns, converter, "exchangeToExperts",
      [](ExchangeToExpertsOp op, ExchangeToExpertsOp::Adaptor a,
         StepCall &c) {
        c.ptr(a.getBuffer())
            .ptr(a.getExpertOffset())
            .ptr(a.getRecvCounts())
            .returns(0)
            .i64(dimSize(op.getBuffer(), 0))
            .i64(numElements(op.getRecvCounts()))
            .i64(dimSize(op.getBuffer(), 1));
      });
  addStepCall<ExchangeToTokensOp>(
      patterns, converter, "exchangeToTokens",
      [](ExchangeToTokensOp op, ExchangeToTokensOp::Adaptor a, StepCall &c) {
        c.ptr(a.getExpertRows())
            .ptr(a.getExpertOffset())
            .ptr(a.getRecvCounts())
            .results()
            .i64(dimSize(op.getBuffer(), 0))
            .i64(numElements(op.getRecvCounts()))
            .i64(dimSize(op.getBuffer(), 1));
      });
  addStepCall<SumRowsOverRanksOp>(
      patterns, converter, "sumRowsOverRanks",
      [](SumRowsOverRanksOp op, SumRowsOverRanksOp::Adaptor a, StepCall &c) {
        int64_t n = dimSize(op.getRows(), 0);
        ValueRange values = a.getValues();
        auto width = [&](unsigned i) {
          return i < values.size() ? numElements(op.getValues()[i]) / n : 0;
        };
        c.ptr(a.getRows())
            .ptr(values[0])
            .ptr(values.size() > 1 ? values[1] : Value())
            .i64(n)
            .i64(width(0))
            .i64(width(1))
            .i64(op.getVocab())
            .returnsParts("moe::rt::step::RowSum");
      });
  addStepCall<DivideByMeshSizeOp>(
      patterns, converter, "divideByRanks",
      [](DivideByMeshSizeOp op, DivideByMeshSizeOp::Adaptor a, StepCall &c) {
        c.ptr(a.getInput()).results().i64(numElements(op.getOutput()));
      });
}
