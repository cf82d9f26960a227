//===- ModelFunctions.h - Finding and copying model functions ---*- C++ -*-===//
//
// moe-add-eval and moe-autodiff both derive functions from each model: an
// evaluation copy and a training step.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_PASSES_MODELFUNCTIONS_H
#define MOE_PASSES_MODELFUNCTIONS_H

#include "dialect/MoEDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/SymbolTable.h"

namespace mlir::moe {

/// A model: a function with parameters that is neither an evaluation copy
/// (moe.inference) nor a derived training step.
inline bool isModelFunction(func::FuncOp func) {
  if (func->hasAttr(MoEDialect::kInferenceAttrName) ||
      func.getSymName().ends_with("_train_step"))
    return false;
  for (unsigned i = 0, e = func.getNumArguments(); i < e; ++i)
    if (func.getArgAttr(i, MoEDialect::kParamAttrName))
      return true;
  return false;
}

/// Copies every model of `module` as `<model><suffix>`, placed right after
/// it, and calls `derive` on each copy; fails naming the clash when the
/// name is taken or when `derive` fails.
template <typename Derive>
LogicalResult deriveFromModels(ModuleOp module, StringRef suffix,
                               Derive derive) {
  SymbolTable symbols(module);
  SmallVector<func::FuncOp> models;
  for (auto func : module.getOps<func::FuncOp>())
    if (isModelFunction(func))
      models.push_back(func);
  for (func::FuncOp model : models) {
    std::string name = (model.getSymName() + suffix).str();
    if (symbols.lookup(name))
      return model.emitOpError("already has a function named @")
             << name << "; rename one of them";
    func::FuncOp copy = model.clone();
    copy.setSymName(name);
    symbols.insert(copy, std::next(Block::iterator(model)));
    if (failed(derive(copy)))
      return failure();
  }
  return success();
}

} // namespace mlir::moe

#endif // MOE_PASSES_MODELFUNCTIONS_H
