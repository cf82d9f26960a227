//===- DecodeStepCheck.h - Incremental decoding vs the whole window -*- C++
//-*-===//
//
// moe-run check-decode-step: the package's <model>_decode_step, run one
// position at a time from the state <model>_encode (or zero) starts, must
// give the logits the evaluation function gives at every position of the
// whole window.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TOOLS_MOE_RUN_DECODESTEPCHECK_H
#define MOE_TOOLS_MOE_RUN_DECODESTEPCHECK_H

#include <cstdint>

namespace moe::run {

class Package;
class Session;

/// Compares on random parameters (`seed`) and inputs; prints the largest
/// difference and returns whether it is within `tolerance` of the largest
/// logit's magnitude. Throws std::runtime_error when the package has no
/// decode step.
bool checkDecodeStep(Session &session, const Package &package, uint64_t seed,
                     double tolerance);

} // namespace moe::run

#endif // MOE_TOOLS_MOE_RUN_DECODESTEPCHECK_H
