//===- MpiSupport.h - MPI start-up and deadline polling --------*- C++ -*-===//
//
// MPI initialisation (once per process), error checks and the polling loop
// that turns a non-blocking MPI request into a blocking call with a
// deadline. Shared by MpiCollectives and the MPI bootstrap of
// NcclCollectives. Private to runtime/collectives.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_COLLECTIVES_MPISUPPORT_H
#define MOE_RUNTIME_COLLECTIVES_MPISUPPORT_H

#include "runtime/collectives/Support.h"

#include <mpi.h>

#include <string>
#include <vector>

namespace moe::rt::detail {

/// Calls MPI_Init_thread(MPI_THREAD_FUNNELED) unless MPI is initialised
/// already (by an earlier call or by the program); in the first case
/// MPI_Finalize runs at exit, or MPI_Abort when a failed operation never
/// completed (see unrecoveredCollectiveFailures). Thread-safe; throws
/// std::runtime_error when MPI was finalised already.
void ensureMpiInitialized();

/// The text of an MPI error code.
std::string mpiErrorString(int code);

/// Polls MPI_Testall until every request has completed (returns true) or
/// the deadline passes (returns false; the requests that have not completed
/// stay active in `requests`). Throws std::runtime_error naming `op` when
/// MPI reports an error.
bool testAllUntil(const char *op, std::vector<MPI_Request> &requests,
                  const Deadline &deadline);

/// A duplicate of MPI_COMM_WORLD that returns errors instead of aborting,
/// made with MPI_Comm_idup so that creation, too, fails after
/// timeoutSeconds instead of waiting forever for a missing rank.
MPI_Comm duplicateWorld(double timeoutSeconds);

} // namespace moe::rt::detail

#endif // MOE_RUNTIME_COLLECTIVES_MPISUPPORT_H
