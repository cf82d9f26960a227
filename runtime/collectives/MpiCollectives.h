//===- MpiCollectives.h - Collectives over MPI on host memory --*- C++ -*-===//
//
// Every rank of MPI_COMM_WORLD, on a private duplicate of it. Each blocking
// operation posts a non-blocking MPI call (MPI_Ialltoallv, MPI_Iallgatherv,
// ...) and polls it with MPI_Testall until it completes or the timeout
// passes, so a dead or stuck rank makes the others throw instead of hang.
// Pointers are host memory.
//
// The float sum is a reduce-scatter followed by an all-gather: rank r
// receives everybody's copy of slice r, adds them in rank order, and sends
// the sum to everybody. Each element is therefore added once, in a fixed
// order, by one rank, which makes the result independent of MPI's reduction
// algorithm and bit-identical on every rank, at the traffic of a ring
// all-reduce.
//
// After a timeout the object is unusable (later calls throw). The requests
// that never completed stay alive with their scratch memory, since MPI may
// still write to them should the missing rank catch up; the destructor
// waits briefly for them.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_COLLECTIVES_MPICOLLECTIVES_H
#define MOE_RUNTIME_COLLECTIVES_MPICOLLECTIVES_H

#include "runtime/collectives/Collectives.h"

namespace moe::rt {

class MpiCollectives final : public Collectives {
public:
  /// Initialises MPI if needed and duplicates MPI_COMM_WORLD (collective:
  /// every rank constructs one). Each later operation throws after
  /// timeoutSeconds without completing.
  explicit MpiCollectives(double timeoutSeconds);
  ~MpiCollectives() override;
  MpiCollectives(const MpiCollectives &) = delete;
  MpiCollectives &operator=(const MpiCollectives &) = delete;

#define MOE_COLLECTIVE(Ret, Name, Params, Args) Ret Name Params override;
#include "runtime/collectives/Collectives.def"

private:
  /// The communicator, requests and scratch (keeps mpi.h out of this
  /// header).
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace moe::rt

#endif // MOE_RUNTIME_COLLECTIVES_MPICOLLECTIVES_H
