//===- MpiSupport.cpp - MPI start-up and deadline polling -----------------===//

#include "runtime/collectives/MpiSupport.h"

#include "runtime/collectives/Collectives.h"

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>

namespace moe::rt::detail {

namespace {

std::mutex initMutex;

void finalizeAtExit() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized)
    return;
  if (int pending = unrecoveredCollectiveFailures()) {
    // MPI_Finalize synchronises with every rank, so it would wait forever
    // for the rank that made the collective fail; and merely exiting
    // without it leaves stuck ranks (and, with some mpirun settings,
    // mpirun itself) waiting. Aborting ends the whole job with an error.
    std::fprintf(stderr,
                 "moe-runtime: %d collective operation(s) timed out or "
                 "failed and never completed: aborting the MPI job instead "
                 "of MPI_Finalize\n",
                 pending);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    return;
  }
  MPI_Finalize();
}

} // namespace

void ensureMpiInitialized() {
  std::lock_guard<std::mutex> lock(initMutex);
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized)
    throw std::runtime_error("collectives: MPI was finalised already");
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized)
    return;
  // FUNNELED: the training step calls collectives from the main thread
  // only, while the CPU backend's worker threads never call MPI.
  int provided = 0;
  int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
  if (rc != MPI_SUCCESS)
    throw std::runtime_error("collectives: MPI_Init_thread failed: " +
                             mpiErrorString(rc));
  std::atexit(finalizeAtExit);
}

std::string mpiErrorString(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS)
    return "MPI error " + std::to_string(code);
  return std::string(text, length);
}

bool testAllUntil(const char *op, std::vector<MPI_Request> &requests,
                  const Deadline &deadline) {
  Backoff backoff;
  for (;;) {
    int done = 0;
    int rc = MPI_Testall(static_cast<int>(requests.size()), requests.data(),
                         &done, MPI_STATUSES_IGNORE);
    if (rc != MPI_SUCCESS)
      throw std::runtime_error(
          std::string("collective ") + op +
          ": MPI reported an error: " + mpiErrorString(rc));
    if (done)
      return true;
    if (deadline.passed())
      return false;
    backoff.pause();
  }
}

MPI_Comm duplicateWorld(double timeoutSeconds) {
  ensureMpiInitialized();
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Comm comm = MPI_COMM_NULL;
  std::vector<MPI_Request> request(1, MPI_REQUEST_NULL);
  int rc = MPI_Comm_idup(MPI_COMM_WORLD, &comm, request.data());
  if (rc != MPI_SUCCESS)
    throw std::runtime_error("collectives: MPI_Comm_idup failed: " +
                             mpiErrorString(rc));
  if (!testAllUntil("createCollectives", request, Deadline(timeoutSeconds))) {
    noteUnrecoveredFailures(1);
    throw std::runtime_error(
        timeoutMessage("createCollectives", timeoutSeconds, rank, size));
  }
  // A failed peer must surface as an exception, not as MPI's default abort
  // of the whole job from inside a library call.
  MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
  return comm;
}

} // namespace moe::rt::detail
