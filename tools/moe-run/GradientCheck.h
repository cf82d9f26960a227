//===- GradientCheck.h - Gradients vs finite differences --------*- C++ -*-===//

#ifndef MOE_TOOLS_MOE_RUN_GRADIENTCHECK_H
#define MOE_TOOLS_MOE_RUN_GRADIENTCHECK_H

#include "tools/moe-run/Options.h"

namespace moe::run {

class Package;
class Session;

/// Compares the gradients that the training step of a package compiled
/// with optimizer=none returns with central finite differences of its
/// model function, on random inputs, at `options.samples` parameter
/// elements drawn by `seed`. Prints a line per mismatch (per sample when
/// `verbose`) and a summary; returns whether at most
/// `options.maxFailFraction` of the samples missed. Throws
/// std::runtime_error when the package cannot be checked.
bool checkGradients(Session &session, const Package &package,
                    const GradcheckOptions &options, uint64_t seed,
                    bool verbose);

} // namespace moe::run

#endif // MOE_TOOLS_MOE_RUN_GRADIENTCHECK_H
