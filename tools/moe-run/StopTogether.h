//===- StopTogether.h - Failures of some ranks stop every rank --*- C++ -*-===//
//
// Under mpirun, work that only some ranks do (rank 0 compiles the package,
// claims the run's outputs, writes metrics and checkpoints) or that may
// fail on some only must not leave the others waiting for the failed rank
// in their next collective until the timeout.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TOOLS_MOE_RUN_STOPTOGETHER_H
#define MOE_TOOLS_MOE_RUN_STOPTOGETHER_H

#include <functional>

namespace moe::rt {
class Collectives;
} // namespace moe::rt

namespace moe::run {

/// Runs `work` on this rank, then tells every rank whether it threw on any
/// (one allGather of each rank's error message, so it is collective: every
/// rank calls it at the same point). A rank whose `work` threw rethrows
/// its exception; the others throw std::runtime_error "stopped: rank R
/// failed: <the first line of its message>", R being the lowest failed
/// rank.
void stopTogether(rt::Collectives &ranks, const std::function<void()> &work);

} // namespace moe::run

#endif // MOE_TOOLS_MOE_RUN_STOPTOGETHER_H
