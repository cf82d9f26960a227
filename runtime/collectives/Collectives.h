//===- Collectives.h - Communication between training ranks ----*- C++ -*-===//
//
// One interface for the collectives of a synchronous multi-rank training
// step: experts are model-parallel (each rank holds n/ranks experts and the
// tokens routed to them are exchanged with allToAllV), everything else is
// data-parallel (gradients summed with allReduceSum). The generated step
// and moe-run call only this interface; the implementations are
//  * SingleProcess: one rank, every operation is a copy (no MPI needed);
//  * MpiCollectives: MPI on host memory (the CPU backend);
//  * NcclCollectives: NCCL on device memory (the CUDA backend), bootstrapped
//    over MPI.
//
// Conventions:
//  * Every operation is collective: all ranks call it, in the same order,
//    with the same sizes (count, rowWidth, bytes, root), and it returns when
//    it has completed on the calling rank.
//  * Data pointers are backend memory (host memory for MPI and
//    SingleProcess, device memory for NCCL). Count arrays of allToAllV
//    (sendCounts, recvCounts) are host memory on every implementation,
//    because the caller needs them on the host to size its buffers.
//  * Row segments are laid out in rank order: the send buffer holds the rows
//    for rank 0, then those for rank 1, ...; the receive buffer holds the
//    rows from rank 0, then those from rank 1, ... A pointer whose segments
//    are all empty may be null.
//  * Deterministic: allReduceSum of floats adds the ranks' values in rank
//    order, ((x0 + x1) + x2) + ..., whatever the timing or the transport, and
//    every rank receives bit-identical results.
//  * Never hangs: a blocking operation that does not complete within the
//    timeout (CollectivesOptions::timeoutSeconds, else the environment
//    variable MOE_COLLECTIVE_TIMEOUT_S, else 120 s) throws
//    std::runtime_error("collective <op> timed out after <t> s: a rank is
//    unresponsive or died ..."). The object is unusable afterwards (every
//    later call throws) and the job should end: an exception escaping main
//    ends the process, mpirun then stops the other ranks; a process that
//    exits normally after such a failure calls MPI_Abort instead of
//    MPI_Finalize, which would wait for the missing rank.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_COLLECTIVES_COLLECTIVES_H
#define MOE_RUNTIME_COLLECTIVES_COLLECTIVES_H

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace moe::rt {

class Collectives {
public:
  virtual ~Collectives();
#define MOE_COLLECTIVE(Ret, Name, Params, Args) virtual Ret Name Params = 0;
#include "runtime/collectives/Collectives.def"
};

/// Settings of createCollectives. Zero / negative / null fields take their
/// defaults.
struct CollectivesOptions {
  /// Deadline of each blocking operation; <= 0 reads
  /// collectiveTimeoutSeconds().
  double timeoutSeconds = 0;
  /// NCCL only: the CUDA device of this rank; < 0 picks the node-local rank
  /// modulo the number of visible devices.
  int device = -1;
  /// NCCL only: the cudaStream_t to order the collectives on (e.g. the
  /// backend's). Null creates a stream; the caller then synchronizes its
  /// backend before each collective that reads backend data.
  void *cudaStream = nullptr;
};

/// The collectives of this process. `kind`:
///  * "single": one rank (SingleProcess);
///  * "mpi": MPI on host memory (needs MPI compiled in);
///  * "nccl": NCCL on device memory (needs CUDA, NCCL and MPI compiled in and
///    a GPU);
///  * "auto": "mpi" when launched by mpirun (OMPI_COMM_WORLD_SIZE or PMI_SIZE
///    is set), else "single".
/// MPI is initialised on first use (MPI_Init_thread, MPI_THREAD_FUNNELED,
/// unless the program already did) and finalised at exit. Creating an MPI
/// or NCCL object is itself collective. Throws std::invalid_argument for an
/// unknown kind and std::runtime_error when the kind is not available.
std::unique_ptr<Collectives>
createCollectives(const std::string &kind,
                  const CollectivesOptions &options = {});

/// True when `kind` ("single", "mpi", "nccl") is compiled into this build.
bool collectivesCompiled(const std::string &kind);

/// The default timeout of blocking collectives in seconds: the environment
/// variable MOE_COLLECTIVE_TIMEOUT_S when set (a positive number; anything
/// else throws std::invalid_argument), else 120.
double collectiveTimeoutSeconds();

/// The rank of this process among those of its node, as the launcher
/// reports it (Open MPI, MPICH/Hydra, MVAPICH, Slurm), or -1 when no
/// launcher said so.
int launcherLocalRank();

/// The CUDA device of a rank: `requested` when it is >= 0 (an explicit
/// --device wins), else the node-local rank modulo the `devices` visible,
/// so that the ranks of a node spread over its GPUs. A negative
/// `localRank` (unknown) counts as 0.
int selectDevice(int requested, int localRank, int devices);

/// Number of collective operations of this process that timed out or
/// failed and never completed. While it is non-zero, exit calls MPI_Abort
/// instead of MPI_Finalize (which would wait forever for a missing rank),
/// which ends the whole job with an error.
int unrecoveredCollectiveFailures();

} // namespace moe::rt

#endif // MOE_RUNTIME_COLLECTIVES_COLLECTIVES_H
