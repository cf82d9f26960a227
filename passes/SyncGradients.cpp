//===- SyncGradients.cpp - Sum replicated gradients over the ranks --------===//
//
// After moe-autodiff, in a module that moe-partition made data-parallel:
// every gradient a training step returns is summed over the mesh, so every
// rank applies the same update to its copy of the parameters. See the pass
// description in Passes.td.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "dialect/MoEAttrs.h"
#include "dialect/MoEDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Mesh/IR/MeshDialect.h"
#include "mlir/Dialect/Mesh/IR/MeshOps.h"
#include "mlir/IR/Builders.h"

namespace mlir::moe {
#define GEN_PASS_DEF_SYNCGRADIENTS
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

#define DEBUG_TYPE "moe-sync-gradients"

namespace {

struct SyncGradientsPass
    : public mlir::moe::impl::SyncGradientsBase<SyncGradientsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    mesh::MeshOp mesh;
    for (auto candidate : module.getOps<mesh::MeshOp>())
      mesh = candidate;
    if (!mesh)
      return; // not partitioned: one rank
    for (auto func : module.getOps<func::FuncOp>()) {
      auto ret = dyn_cast<func::ReturnOp>(func.getBody().back().getTerminator());
      if (!ret)
        continue;
      OpBuilder b(ret);
      for (unsigned i = 0, e = func.getNumResults(); i < e; ++i) {
        if (!func.getResultAttr(i, "moe.grad"))
          continue;
        Value grad = ret.getOperand(i);
        if (getShard(grad.getType()))
          continue;
        auto sum = b.create<mesh::AllReduceOp>(
            ret.getLoc(), grad, mesh.getSymName(),
            ArrayRef<mesh::MeshAxis>{0}, mesh::ReductionKind::Sum);
        ret.setOperand(i, sum.getResult());
      }
    }
  }
};

} // namespace
