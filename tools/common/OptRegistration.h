//===- OptRegistration.h - What moe-opt registers ---------------*- C++ -*-===//
//
// The dialects, passes and pipelines of moe-opt, shared with the fuzz
// targets (test/fuzz) so that they parse and transform exactly what the
// tool does.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TOOLS_COMMON_OPTREGISTRATION_H
#define MOE_TOOLS_COMMON_OPTREGISTRATION_H

namespace mlir {
class DialectRegistry;
} // namespace mlir

namespace mlir::moe {

/// The dialects moe-opt parses, with the extensions and gradient models
/// its passes need.
void registerMoEOptDialects(DialectRegistry &registry);

/// moe-opt's passes and pipelines: the moe passes, --moe-train-pipeline,
/// --moe-inference-pipeline, the codegen passes, cse and canonicalize.
void registerMoEOptPasses();

} // namespace mlir::moe

#endif // MOE_TOOLS_COMMON_OPTREGISTRATION_H
