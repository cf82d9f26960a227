//===- NcclCollectives.h - Collectives over NCCL on devices ----*- C++ -*-===//
//
// Every rank of MPI_COMM_WORLD, one CUDA device each. MPI only bootstraps:
// rank 0 creates the ncclUniqueId and broadcasts it. Pointers are device
// memory (count arrays of allToAllV stay on the host).
//
// The operations are queued on one stream (CollectivesOptions::cudaStream,
// e.g. the CUDA backend's, else a stream of this object) and each returns
// when its work on that stream has finished, so results may be used at
// once. With a stream of its own, the caller synchronizes its backend
// before a collective that reads data the backend wrote.
//
// The communicator is non-blocking (ncclConfig_t::blocking = 0): every wait
// polls ncclCommGetAsyncError and the stream until a deadline, then aborts
// the communicator (ncclCommAbort) and throws the timeout error.
//
// The float sum uses the same reduce-scatter (grouped ncclSend/ncclRecv),
// rank-order addition (a small kernel) and all-gather as MpiCollectives, so
// its result is bit-identical to the MPI one and independent of NCCL's
// algorithm choice; the integer sums use ncclAllReduce.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_COLLECTIVES_NCCLCOLLECTIVES_H
#define MOE_RUNTIME_COLLECTIVES_NCCLCOLLECTIVES_H

#include "runtime/collectives/Collectives.h"

namespace moe::rt {

class NcclCollectives final : public Collectives {
public:
  /// Collective over MPI_COMM_WORLD: picks the device (options.device, else
  /// the node-local rank modulo the visible devices), bootstraps NCCL over
  /// MPI and creates the communicator. Throws std::runtime_error on every
  /// rank when any rank has no usable device.
  explicit NcclCollectives(const CollectivesOptions &options);
  ~NcclCollectives() override;
  NcclCollectives(const NcclCollectives &) = delete;
  NcclCollectives &operator=(const NcclCollectives &) = delete;

  /// The CUDA device of this rank.
  int device() const;

#define MOE_COLLECTIVE(Ret, Name, Params, Args) Ret Name Params override;
#include "runtime/collectives/Collectives.def"

private:
  /// Communicator, stream and scratch (keeps nccl.h, cuda_runtime.h and
  /// mpi.h out of this header).
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace moe::rt

#endif // MOE_RUNTIME_COLLECTIVES_NCCLCOLLECTIVES_H
