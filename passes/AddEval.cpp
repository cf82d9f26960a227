//===- AddEval.cpp - The evaluation copy of each model --------------------===//
//
// Clones every model function into an inference-mode <model>_eval. See the
// pass description in Passes.td.
//
//===----------------------------------------------------------------------===//

#include "passes/ModelFunctions.h"
#include "passes/Passes.h"

#include "dialect/MoEDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

namespace mlir::moe {
#define GEN_PASS_DEF_ADDEVAL
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

#define DEBUG_TYPE "moe-add-eval"

namespace {

struct AddEvalPass : public mlir::moe::impl::AddEvalBase<AddEvalPass> {
  void runOnOperation() override {
    UnitAttr inference = UnitAttr::get(&getContext());
    if (failed(deriveFromModels(getOperation(), "_eval",
                                [&](func::FuncOp eval) {
                                  eval->setAttr(MoEDialect::kInferenceAttrName,
                                                inference);
                                  return success();
                                })))
      signalPassFailure();
  }
};

} // namespace
