//===- MoECollectiveOps.h - Collectives in moe graphs -----------*- C++ -*-===//

#ifndef MOE_DIALECT_MOECOLLECTIVEOPS_H
#define MOE_DIALECT_MOECOLLECTIVEOPS_H

#include "mlir/IR/DialectRegistry.h"

namespace mlir::moe {

/// Attaches moe's GradientOpInterface to the upstream mesh.all_reduce.
/// Every tool that differentiates partitioned graphs registers it.
void registerMeshGradientModels(DialectRegistry &registry);

} // namespace mlir::moe

#endif // MOE_DIALECT_MOECOLLECTIVEOPS_H
