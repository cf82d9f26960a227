//===- AlgebraToEmitC.cpp - Products, element-wise ops, constants ---------===//
//
// Lowers the algebra family (matmul, add, residual, scale, bias_add,
// sum_rows, activate and its gradient, dropout, total_loss) and splat
// constants to step ABI calls.
//
//===----------------------------------------------------------------------===//

#include "codegen/MoEToEmitC.h"

#include "dialect/MoEOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"

using namespace mlir;
using namespace mlir::moe;

namespace {

std::string activationLiteral(Activation act) {
  switch (act) {
  case Activation::none:
    return "moe::rt::step::Activation::None";
  case Activation::relu:
    return "moe::rt::step::Activation::Relu";
  case Activation::sigmoid:
    return "moe::rt::step::Activation::Sigmoid";
  case Activation::tanh:
    return "moe::rt::step::Activation::Tanh";
  }
  llvm_unreachable("unknown activation");
}

/// Splat f32 constants (the seed of the backward pass, zero losses) become
/// fill calls; anything else has no lowering.
struct ConstantLowering : public OpConversionPattern<arith::ConstantOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(arith::ConstantOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    // The pass rejected every other constant before converting.
    auto splat = cast<SplatElementsAttr>(op.getValue());
    StepCall call(op, rewriter, *getTypeConverter(),
                  (kStepNamespace + "fill").str());
    call.results()
        .i64(numElements(op.getResult()))
        .f32(splat.getSplatValue<APFloat>().convertToFloat());
    return call.emit();
  }
};

} // namespace

void mlir::moe::populateMoEAlgebraToEmitCPatterns(
    const TypeConverter &converter, RewritePatternSet &patterns,
    const EmitCTarget &target) {
  patterns.add<ConstantLowering>(converter, patterns.getContext());

  addStepCall<MatmulOp>(
      patterns, converter, "matmul",
      [target](MatmulOp op, MatmulOp::Adaptor a, StepCall &c) {
        c.operands(a.getOperands()).results();
        c.i64(dimSize(op.getLhs(), 0))
            .i64(dimSize(op.getLhs(), 1))
            .i64(dimSize(op.getRhs(), 0))
            .i64(dimSize(op.getRhs(), 1))
            .flag(op.getTransposeLhs())
            .flag(op.getTransposeRhs())
            .literal(target.routerPrecision(op.getAllowTf32()));
      });
  // add, residual, scale, bias_add and sum_rows are one kernel each.
  addStepCall<AddOp>(
      patterns, converter, "add", [](AddOp op, AddOp::Adaptor a, StepCall &c) {
        c.operands(a.getOperands()).results().i64(numElements(op.getResult()));
      });
  addStepCall<ResidualOp>(
      patterns, converter, "add",
      [](ResidualOp op, ResidualOp::Adaptor a, StepCall &c) {
        c.operands(a.getOperands()).results().i64(numElements(op.getOutput()));
      });
  addStepCall<ScaleOp>(patterns, converter, "scale",
                       [](ScaleOp op, ScaleOp::Adaptor a, StepCall &c) {
                         c.ptr(a.getInput())
                             .f32(op.getFactor().convertToFloat())
                             .results()
                             .i64(numElements(op.getOutput()));
                       });
  addStepCall<BiasAddOp>(patterns, converter, "biasAdd",
                         [](BiasAddOp op, BiasAddOp::Adaptor a, StepCall &c) {
                           int64_t d = numElements(op.getBias());
                           c.i64(numElements(op.getOutput()) / d)
                               .i64(d)
                               .operands(a.getOperands())
                               .results();
                         });
  addStepCall<SumRowsOp>(patterns, converter, "sumRows",
                         [](SumRowsOp op, SumRowsOp::Adaptor a, StepCall &c) {
                           int64_t d = numElements(op.getOutput());
                           c.i64(numElements(op.getInput()) / d)
                               .i64(d)
                               .operands(a.getOperands())
                               .results();
                         });
  addStepCall<ActivateOp>(
      patterns, converter, "activate",
      [](ActivateOp op, ActivateOp::Adaptor a, StepCall &c) {
        if (hasDynamicRows(op.getInput())) {
          c.callee("activateRows")
              .ptr(a.getInput())
              .returns(0)
              .i64(dimSize(op.getInput(), 1))
              .literal(activationLiteral(op.getAct()));
          return;
        }
        c.ptr(a.getInput())
            .results()
            .i64(numElements(op.getOutput()))
            .literal(activationLiteral(op.getAct()));
      });
  addStepCall<ActivateGradOp>(
      patterns, converter, "activateGrad",
      [](ActivateGradOp op, ActivateGradOp::Adaptor a, StepCall &c) {
        if (hasDynamicRows(op.getOutput())) {
          c.callee("activateGradRows")
              .ptr(a.getOutput())
              .ptr(a.getDOutput())
              .returns(0)
              .i64(dimSize(op.getOutput(), 1))
              .literal(activationLiteral(op.getAct()));
          return;
        }
        c.ptr(a.getOutput())
            .ptr(a.getDOutput())
            .results()
            .i64(numElements(op.getDInput()))
            .literal(activationLiteral(op.getAct()));
      });
  addStepCall<DropoutOp>(patterns, converter, "dropout",
                         [](DropoutOp op, DropoutOp::Adaptor a, StepCall &c) {
                           c.ptr(a.getInput())
                               .results()
                               .i64(numElements(op.getOutput()))
                               .f32(op.getRate().convertToFloat())
                               .i64(op.getRngStream());
                         });
  addStepCall<TotalLossOp>(patterns, converter, "totalLoss",
                           [](TotalLossOp, TotalLossOp::Adaptor a,
                              StepCall &c) {
                             c.results();
                             for (Value term : a.getTerms())
                               c.ptr(term);
                           });
}
