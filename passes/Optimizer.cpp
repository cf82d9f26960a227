//===- Optimizer.cpp - Adam and the learning-rate schedule ----------------===//
//
// Rewrites a train_step (loss + gradients) into a full training step that
// applies Adam with the paper's schedule and returns the new parameters and
// optimizer state. See the pass description in Passes.td.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "dialect/MoEDialect.h"
#include "dialect/MoEOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringMap.h"

namespace mlir::moe {
#define GEN_PASS_DEF_OPTIMIZER
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

#define DEBUG_TYPE "moe-optimizer"

namespace {

struct OptimizerPass : public mlir::moe::impl::OptimizerBase<OptimizerPass> {
  using OptimizerBase::OptimizerBase;

  void runOnOperation() override {
    if (failed(checkOptions()))
      return signalPassFailure();
    for (auto func : getOperation().getOps<func::FuncOp>())
      if (hasGradients(func) && failed(addOptimizer(func)))
        return signalPassFailure();
  }

  LogicalResult checkOptions() {
    auto error = [&]() { return getOperation().emitError("moe-optimizer: "); };
    if (!(learningRate > 0))
      return error() << "lr must be positive, got " << learningRate.getValue();
    if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1))
      return error() << "beta1 and beta2 must be in [0, 1)";
    if (!(epsilon > 0))
      return error() << "eps must be positive";
    if (weightDecay < 0)
      return error() << "weight-decay must be non-negative";
    if (warmupSteps < 0 || constantSteps < 0)
      return error() << "warmup-steps and constant-steps must be "
                        "non-negative";
    return success();
  }

  static bool hasGradients(func::FuncOp func) {
    for (unsigned i = 0, e = func.getNumResults(); i < e; ++i)
      if (func.getResultAttr(i, "moe.grad"))
        return true;
    return false;
  }

  LogicalResult addOptimizer(func::FuncOp func) {
    MLIRContext *ctx = &getContext();
    Block &body = func.getBody().front();
    auto ret = cast<func::ReturnOp>(body.getTerminator());
    OpBuilder b(ret);
    Location loc = ret.getLoc();
    auto stateAttr = [&](StringRef name) {
      return DictionaryAttr::get(
          ctx,
          {b.getNamedAttr(MoEDialect::kStateAttrName, b.getStringAttr(name))});
    };

    llvm::StringMap<BlockArgument> params;
    for (BlockArgument arg : func.getArguments())
      if (auto name = func.getArgAttrOfType<StringAttr>(
              arg.getArgNumber(), MoEDialect::kParamAttrName))
        params[name.getValue()] = arg;
    // Checkpoints and the driver name state and parameters alike.
    for (auto &entry : params) {
      StringRef name = entry.getKey();
      if (name == "step" || name.ends_with(".adam_m") ||
          name.ends_with(".adam_v"))
        return func.emitOpError("parameter '")
               << name
               << "' has a name the optimizer state uses (step, "
                  "<param>.adam_m, <param>.adam_v); rename it";
    }

    auto stepType = RankedTensorType::get({}, b.getI64Type());
    func.insertArgument(func.getNumArguments(), stepType, stateAttr("step"),
                        loc);
    Value step = func.getArguments().back();
    Value lr = b.create<LrScheduleOp>(
        loc, RankedTensorType::get({}, b.getF32Type()), step,
        b.getF32FloatAttr(learningRate), b.getI64IntegerAttr(warmupSteps),
        b.getI64IntegerAttr(constantSteps));

    SmallVector<Value> results = {ret.getOperand(0), lr};
    SmallVector<DictionaryAttr> resultAttrs = {
        func.getResultAttrDict(0),
        DictionaryAttr::get(
            ctx, {b.getNamedAttr("moe.output", b.getStringAttr("lr"))})};
    SmallVector<Value> moments;
    SmallVector<DictionaryAttr> momentAttrs;
    for (unsigned i = 0, e = ret.getNumOperands(); i < e; ++i) {
      auto name = func.getResultAttrOfType<StringAttr>(i, "moe.grad");
      if (!name)
        continue;
      BlockArgument param = params.lookup(name.getValue());
      if (!param)
        return func.emitOpError("gradient '")
               << name.getValue() << "' names no parameter";
      Type type = param.getType();
      std::string mName = (name.getValue() + ".adam_m").str();
      std::string vName = (name.getValue() + ".adam_v").str();
      func.insertArgument(func.getNumArguments(), type, stateAttr(mName), loc);
      Value m = func.getArguments().back();
      func.insertArgument(func.getNumArguments(), type, stateAttr(vName), loc);
      Value v = func.getArguments().back();
      auto update = b.create<AdamUpdateOp>(
          loc, TypeRange{type, type, type}, param, ret.getOperand(i), m, v, lr,
          step, b.getF32FloatAttr(beta1), b.getF32FloatAttr(beta2),
          b.getF32FloatAttr(epsilon), b.getF32FloatAttr(weightDecay));
      results.push_back(update.getNewParam());
      resultAttrs.push_back(DictionaryAttr::get(
          ctx, {b.getNamedAttr(MoEDialect::kParamAttrName, name)}));
      moments.append({update.getNewM(), update.getNewV()});
      momentAttrs.append({stateAttr(mName), stateAttr(vName)});
    }
    results.append(moments);
    resultAttrs.append(momentAttrs);

    b.create<func::ReturnOp>(loc, results);
    ret.erase();
    SmallVector<Type> resultTypes;
    for (Value v : results)
      resultTypes.push_back(v.getType());
    func.setType(FunctionType::get(ctx, func.getArgumentTypes(), resultTypes));
    func.setAllResultAttrs(resultAttrs);
    return success();
  }
};

} // namespace
