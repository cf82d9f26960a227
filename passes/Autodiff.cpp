//===- Autodiff.cpp - Reverse-mode differentiation of model functions -----===//
//
// Builds <model>_train_step: the forward graph followed by its reverse-mode
// derivative, returning the loss and the gradient of every parameter. Each
// op contributes its vector-Jacobian product through GradientOpInterface;
// this pass only orders them and accumulates gradients.
//
//===----------------------------------------------------------------------===//

#include "passes/ModelFunctions.h"
#include "passes/Passes.h"

#include "dialect/MoEDialect.h"
#include "dialect/MoEOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"

namespace mlir::moe {
#define GEN_PASS_DEF_AUTODIFF
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

#define DEBUG_TYPE "moe-autodiff"

namespace {

bool isFloatTensor(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  return tensor && isa<FloatType>(tensor.getElementType());
}

Value splat(OpBuilder &b, Location loc, Type type, float value) {
  auto tensor = cast<RankedTensorType>(type);
  return b.create<arith::ConstantOp>(
      loc, tensor,
      DenseElementsAttr::get(tensor,
                             b.getFloatAttr(tensor.getElementType(), value)));
}

/// The gradients of one function's values, summed as paths are added.
class GradientMap {
public:
  GradientMap(OpBuilder &builder) : b(builder) {}

  Value lookup(Value value) const { return grads.lookup(value); }

  void accumulate(Value value, Value grad, Location loc) {
    Value &slot = grads[value];
    slot = slot ? b.create<AddOp>(loc, slot, grad).getResult() : grad;
  }

private:
  OpBuilder &b;
  DenseMap<Value, Value> grads;
};

struct AutodiffPass : public mlir::moe::impl::AutodiffBase<AutodiffPass> {
  using AutodiffBase::AutodiffBase;

  void runOnOperation() override {
    // A training pipeline that differentiates nothing would produce a
    // package without a step.
    if (requireModel &&
        llvm::none_of(getOperation().getOps<func::FuncOp>(), isModelFunction)) {
      getOperation().emitError(
          "no model function: expected a func.func with moe.param arguments "
          "that returns its loss");
      return signalPassFailure();
    }
    if (failed(deriveFromModels(
            getOperation(), "_train_step",
            [&](func::FuncOp step) { return differentiate(step); })))
      signalPassFailure();
  }

  LogicalResult differentiate(func::FuncOp func) {
    if (!func.getBody().hasOneBlock())
      return func.emitOpError("moe-autodiff expects a single-block model");
    Block &body = func.getBody().front();
    auto ret = cast<func::ReturnOp>(body.getTerminator());
    if (ret.getNumOperands() == 0 ||
        ret.getOperand(0).getType() !=
            RankedTensorType::get({}, Float32Type::get(&getContext())))
      return func.emitOpError(
          "a model's first result must be its scalar loss, tensor<f32>");

    OpBuilder b(ret);
    GradientMap grads(b);
    Value loss = ret.getOperand(0);
    grads.accumulate(loss, splat(b, ret.getLoc(), loss.getType(), 1.0f),
                     ret.getLoc());

    // Only values that depend on a parameter need a gradient.
    DenseSet<Value> active;
    for (BlockArgument arg : func.getArguments())
      if (func.getArgAttr(arg.getArgNumber(), MoEDialect::kParamAttrName))
        active.insert(arg);
    SmallVector<Operation *> forward;
    for (Operation &op : body.without_terminator()) {
      forward.push_back(&op);
      if (llvm::any_of(op.getOperands(),
                       [&](Value v) { return active.contains(v); }))
        active.insert(op.result_begin(), op.result_end());
    }

    // Walk the forward ops in reverse; backward ops are inserted before the
    // return, after all of them.
    for (Operation *op : llvm::reverse(forward))
      if (failed(backpropagate(op, b, grads, active)))
        return failure();

    SmallVector<Value> results = {loss};
    SmallVector<Type> resultTypes = {loss.getType()};
    SmallVector<DictionaryAttr> resultAttrs = {DictionaryAttr::get(
        &getContext(),
        {b.getNamedAttr("moe.output", b.getStringAttr("loss"))})};
    for (BlockArgument arg : func.getArguments()) {
      auto name = func.getArgAttrOfType<StringAttr>(arg.getArgNumber(),
                                                    MoEDialect::kParamAttrName);
      if (!name)
        continue;
      Value grad = grads.lookup(arg);
      // A parameter the loss does not depend on gets a zero gradient, so
      // the optimizer sees every parameter.
      if (!grad)
        grad = splat(b, ret.getLoc(), arg.getType(), 0.0f);
      results.push_back(grad);
      resultTypes.push_back(arg.getType());
      resultAttrs.push_back(DictionaryAttr::get(
          &getContext(), {b.getNamedAttr("moe.grad", name)}));
    }
    b.create<func::ReturnOp>(ret.getLoc(), results);
    ret.erase();
    // Vector-Jacobian products build every operand's gradient; drop the ones
    // no parameter needs, and forward work only they used.
    SmallVector<Operation *> ops;
    for (Operation &op : body.without_terminator())
      ops.push_back(&op);
    for (Operation *op : llvm::reverse(ops))
      if (isOpTriviallyDead(op))
        op->erase();
    func.setType(
        FunctionType::get(&getContext(), func.getArgumentTypes(), resultTypes));
    func.setAllResultAttrs(resultAttrs);
    return success();
  }

  LogicalResult backpropagate(Operation *op, OpBuilder &b, GradientMap &grads,
                              const DenseSet<Value> &active) {
    SmallVector<Value> resultGrads;
    bool any = false;
    for (Value result : op->getResults()) {
      resultGrads.push_back(grads.lookup(result));
      any |= bool(resultGrads.back());
    }
    if (!any)
      return success();

    Location loc = op->getLoc();
    SmallVector<Value> operandGrads;
    if (auto collapse = dyn_cast<tensor::CollapseShapeOp>(op)) {
      operandGrads.push_back(b.create<tensor::ExpandShapeOp>(
          loc, collapse.getSrcType(), resultGrads[0],
          collapse.getReassociationIndices()));
    } else if (auto expand = dyn_cast<tensor::ExpandShapeOp>(op)) {
      operandGrads.push_back(b.create<tensor::CollapseShapeOp>(
          loc, expand.getSrcType(), resultGrads[0],
          expand.getReassociationIndices()));
    } else if (auto differentiable = dyn_cast<GradientOpInterface>(op)) {
      if (failed(differentiable.buildGradient(b, resultGrads, operandGrads)))
        return failure();
      if (operandGrads.size() != op->getNumOperands())
        return op->emitOpError("built ")
               << operandGrads.size() << " operand gradients for "
               << op->getNumOperands() << " operands";
    } else if (isa<MoELayerOp, LinearOp>(op)) {
      return op->emitOpError("has no gradient of its own: run "
                             "--moe-decompose before --moe-autodiff");
    } else if (isa<HierarchicalMoELayerOp>(op)) {
      return op->emitOpError("has no gradient of its own: run "
                             "--moe-expand-hierarchy before --moe-autodiff");
    } else {
      return op->emitOpError(
          "has no gradient: moe-autodiff cannot differentiate through it");
    }

    for (auto [operand, grad] : llvm::zip(op->getOperands(), operandGrads))
      if (grad && active.contains(operand) && isFloatTensor(operand.getType()))
        grads.accumulate(operand, grad, loc);
    return success();
  }
};

} // namespace
