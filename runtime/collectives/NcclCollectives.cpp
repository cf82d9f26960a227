//===- NcclCollectives.cpp - Collectives over NCCL on device memory -------===//
//
// Host code (compiled by the C++ compiler; the only kernel is in
// NcclKernels.cu). Every operation queues grouped NCCL calls on the stream
// and then waits: first until NCCL has queued them (a non-blocking
// communicator may still be connecting to its peers), then until the stream
// has run them, both against one deadline per operation.
//
//===----------------------------------------------------------------------===//

#include "runtime/collectives/NcclCollectives.h"

#include "runtime/collectives/MpiSupport.h"
#include "runtime/collectives/NcclKernels.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace moe::rt {

namespace {

/// The rank of this process among those of its node: the launcher's
/// word, else its rank among the processes that share its memory.
int nodeLocalRank(MPI_Comm comm) {
  int local = launcherLocalRank();
  if (local >= 0)
    return local;
  MPI_Comm shared = MPI_COMM_NULL;
  if (MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL,
                          &shared) != MPI_SUCCESS)
    return 0;
  MPI_Comm_rank(shared, &local);
  MPI_Comm_free(&shared);
  return local;
}

} // namespace

struct NcclCollectives::Impl {
  MPI_Comm mpi = MPI_COMM_NULL;
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  bool ownsStream = false;
  int device = 0;
  int rank = 0;
  int size = 1;
  double timeoutSeconds = 120;
  /// The first error; once set, every operation throws.
  std::string broken;
  /// Reduce-scatter receive buffer of allReduceSum(float) (device).
  float *scratch = nullptr;
  size_t scratchCount = 0;
  /// One int of device memory for barrier().
  int32_t *token = nullptr;

  Impl() = default;
  Impl(const Impl &) = delete;
  Impl &operator=(const Impl &) = delete;
  /// Releases whatever the (possibly failed) constructor acquired.
  ~Impl() {
    if (comm) {
      // Finalize flushes outstanding work; on a non-blocking communicator
      // it reports "in progress" for a while.
      if (ncclCommFinalize(comm) == ncclInProgress) {
        detail::Deadline deadline(std::min(timeoutSeconds, 5.0));
        ncclResult_t state = ncclInProgress;
        while (state == ncclInProgress && !deadline.passed())
          ncclCommGetAsyncError(comm, &state);
        if (state == ncclInProgress) {
          ncclCommAbort(comm);
          comm = nullptr;
        }
      }
      if (comm)
        ncclCommDestroy(comm);
    }
    if (scratch)
      cudaFree(scratch);
    if (token)
      cudaFree(token);
    if (ownsStream)
      cudaStreamDestroy(stream);
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized && mpi != MPI_COMM_NULL)
      MPI_Comm_free(&mpi);
  }

  void checkUsable(const char *op) const {
    if (!broken.empty())
      throw std::runtime_error(detail::brokenMessage(op, broken));
  }

  void checkMpi(const char *op, int rc, const char *call) {
    if (rc != MPI_SUCCESS)
      fail(std::string("collective ") + op + ": " + call +
           " failed: " + detail::mpiErrorString(rc));
  }

  [[noreturn]] void fail(std::string message) {
    broken = std::move(message);
    detail::noteUnrecoveredFailures(1);
    throw std::runtime_error(broken);
  }

  void cuda(const char *op, cudaError_t error, const char *call) {
    if (error != cudaSuccess)
      fail(std::string("collective ") + op + ": " + call +
           " failed: " + cudaGetErrorString(error));
  }

  /// ncclInProgress is the normal answer of a non-blocking communicator.
  void nccl(const char *op, ncclResult_t result, const char *call) {
    if (result == ncclSuccess || result == ncclInProgress)
      return;
    std::string detail = comm ? ncclGetLastError(comm) : "";
    fail(std::string("collective ") + op + ": " + call +
         " failed: " + ncclGetErrorString(result) +
         (detail.empty() ? "" : " (" + detail + ")"));
  }

  [[noreturn]] void timedOut(const char *op) {
    // Abort kills the kernels still waiting for the missing peer, so the
    // stream and the device stay usable for an orderly exit.
    if (comm)
      ncclCommAbort(comm);
    comm = nullptr;
    fail(detail::timeoutMessage(op, timeoutSeconds, rank, size));
  }

  /// Waits until NCCL has queued the last calls on the stream.
  void waitQueued(const char *op, const detail::Deadline &deadline) {
    detail::Backoff backoff;
    for (;;) {
      ncclResult_t state = ncclSuccess;
      nccl(op, ncclCommGetAsyncError(comm, &state), "ncclCommGetAsyncError");
      if (state == ncclSuccess)
        return;
      nccl(op, state, "a queued NCCL operation");
      if (deadline.passed())
        timedOut(op);
      backoff.pause();
    }
  }

  /// Waits until the stream has run everything queued on it.
  void waitDone(const char *op, const detail::Deadline &deadline) {
    waitQueued(op, deadline);
    detail::Backoff backoff;
    for (;;) {
      cudaError_t state = cudaStreamQuery(stream);
      if (state == cudaSuccess)
        return;
      if (state != cudaErrorNotReady)
        cuda(op, state, "cudaStreamQuery");
      ncclResult_t async = ncclSuccess;
      nccl(op, ncclCommGetAsyncError(comm, &async), "ncclCommGetAsyncError");
      nccl(op, async, "a running NCCL operation");
      if (deadline.passed())
        timedOut(op);
      backoff.pause();
    }
  }

  void groupStart(const char *op) {
    nccl(op, ncclGroupStart(), "ncclGroupStart");
  }
  void groupEnd(const char *op, const detail::Deadline &deadline) {
    nccl(op, ncclGroupEnd(), "ncclGroupEnd");
    waitQueued(op, deadline);
  }

  void copy(const char *op, void *dst, const void *src, size_t bytes) {
    if (bytes > 0 && dst != src)
      cuda(op,
           cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream),
           "cudaMemcpyAsync");
  }

  /// Grouped point-to-point exchange: `sendBytes[r]` bytes from
  /// send + sendOffset[r] to rank r, `recvBytes[r]` bytes from rank r into
  /// recv + recvOffset[r]; the self segment is a device copy. Empty segments
  /// are skipped on both sides, which agree on their sizes.
  void exchange(const char *op, const char *send,
                const std::vector<size_t> &sendOffset,
                const std::vector<size_t> &sendBytes, char *recv,
                const std::vector<size_t> &recvOffset,
                const std::vector<size_t> &recvBytes,
                const detail::Deadline &deadline) {
    copy(op, recv + recvOffset[rank], send + sendOffset[rank], sendBytes[rank]);
    groupStart(op);
    for (int r = 0; r < size; ++r) {
      if (r == rank)
        continue;
      if (sendBytes[r] > 0)
        nccl(op,
             ncclSend(send + sendOffset[r], sendBytes[r], ncclInt8, r, comm,
                      stream),
             "ncclSend");
      if (recvBytes[r] > 0)
        nccl(op,
             ncclRecv(recv + recvOffset[r], recvBytes[r], ncclInt8, r, comm,
                      stream),
             "ncclRecv");
    }
    groupEnd(op, deadline);
  }

  template <typename T>
  void allReduceInts(T *data, int64_t count, ncclDataType_t type) {
    checkUsable("allReduceSum");
    detail::checkCount("allReduceSum", count);
    if (size == 1 || count == 0)
      return;
    detail::Deadline deadline(timeoutSeconds);
    nccl("allReduceSum",
         ncclAllReduce(data, data, static_cast<size_t>(count), type, ncclSum,
                       comm, stream),
         "ncclAllReduce");
    waitDone("allReduceSum", deadline);
  }

  template <typename T>
  void allToAllFixed(const T *send, int64_t countPerRank, T *recv) {
    checkUsable("allToAll");
    detail::checkCount("allToAll", countPerRank);
    if (countPerRank == 0)
      return;
    detail::Deadline deadline(timeoutSeconds);
    size_t block = static_cast<size_t>(countPerRank) * sizeof(T);
    std::vector<size_t> offsets(size), bytes(size, block);
    for (int r = 0; r < size; ++r)
      offsets[r] = block * r;
    exchange("allToAll", reinterpret_cast<const char *>(send), offsets, bytes,
             reinterpret_cast<char *>(recv), offsets, bytes, deadline);
    waitDone("allToAll", deadline);
  }

  void allToAllRows(const void *send, const int64_t *sendCounts,
                    int64_t rowWidth, void *recv, const int64_t *recvCounts,
                    size_t elementBytes) {
    const char *op = "allToAllV";
    checkUsable(op);
    detail::checkRowExchange(op, sendCounts, recvCounts, size, rowWidth);
    if (rowWidth == 0)
      return;
    detail::Deadline deadline(timeoutSeconds);
    size_t rowBytes = static_cast<size_t>(rowWidth) * elementBytes;
    std::vector<size_t> sendOffset(size), sendBytes(size), recvOffset(size),
        recvBytes(size);
    size_t sendAt = 0, recvAt = 0;
    for (int r = 0; r < size; ++r) {
      sendOffset[r] = sendAt;
      recvOffset[r] = recvAt;
      sendBytes[r] = static_cast<size_t>(sendCounts[r]) * rowBytes;
      recvBytes[r] = static_cast<size_t>(recvCounts[r]) * rowBytes;
      sendAt += sendBytes[r];
      recvAt += recvBytes[r];
    }
    if (sendBytes[rank] != recvBytes[rank])
      throw std::invalid_argument(
          "collective allToAllV: rank " + std::to_string(rank) + " sends " +
          std::to_string(sendCounts[rank]) + " rows to itself but expects " +
          std::to_string(recvCounts[rank]));
    exchange(op, static_cast<const char *>(send), sendOffset, sendBytes,
             static_cast<char *>(recv), recvOffset, recvBytes, deadline);
    waitDone(op, deadline);
  }
};

NcclCollectives::NcclCollectives(const CollectivesOptions &options)
    : impl_(std::make_unique<Impl>()) {
  Impl &s = *impl_;
  s.timeoutSeconds = options.timeoutSeconds > 0 ? options.timeoutSeconds
                                                : collectiveTimeoutSeconds();
  s.mpi = detail::duplicateWorld(s.timeoutSeconds);
  MPI_Comm_rank(s.mpi, &s.rank);
  MPI_Comm_size(s.mpi, &s.size);
  const char *op = "createCollectives";
  detail::Deadline deadline(s.timeoutSeconds);

  // Device and stream first, and agree on success before the bootstrap: a
  // rank without a device must not leave the others waiting for the id.
  std::string localError;
  // Collective (MPI_Comm_split_type) when no launcher names the local rank:
  // every rank asks, device or not.
  int localRank = options.device >= 0 ? 0 : nodeLocalRank(s.mpi);
  int devices = 0;
  cudaError_t error = cudaGetDeviceCount(&devices);
  if (error != cudaSuccess || devices == 0) {
    localError =
        std::string("no CUDA device is visible (") +
        (error != cudaSuccess ? cudaGetErrorString(error) : "0 devices") + ")";
  } else {
    s.device = selectDevice(options.device, localRank, devices);
    if ((error = cudaSetDevice(s.device)) != cudaSuccess)
      localError = "cudaSetDevice(" + std::to_string(s.device) +
                   ") failed: " + cudaGetErrorString(error);
  }
  if (localError.empty()) {
    if (options.cudaStream) {
      s.stream = static_cast<cudaStream_t>(options.cudaStream);
    } else if ((error = cudaStreamCreateWithFlags(
                    &s.stream, cudaStreamNonBlocking)) != cudaSuccess) {
      localError =
          std::string("cudaStreamCreate failed: ") + cudaGetErrorString(error);
    } else {
      s.ownsStream = true;
    }
  }
  if (localError.empty() &&
      (error = cudaMalloc(&s.token, sizeof(int32_t))) != cudaSuccess)
    localError = std::string("cudaMalloc failed: ") + cudaGetErrorString(error);

  int ok = localError.empty() ? 1 : 0;
  std::vector<MPI_Request> request(1, MPI_REQUEST_NULL);
  s.checkMpi(op,
             MPI_Iallreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, s.mpi,
                            request.data()),
             "MPI_Iallreduce");
  if (!detail::testAllUntil(op, request, deadline))
    s.fail(detail::timeoutMessage(op, s.timeoutSeconds, s.rank, s.size));
  if (!ok)
    throw std::runtime_error(
        "nccl collectives: " +
        (localError.empty()
             ? std::string("another rank has no usable CUDA "
                           "device")
             : "rank " + std::to_string(s.rank) + ": " + localError));

  ncclUniqueId id;
  std::memset(&id, 0, sizeof(id));
  if (s.rank == 0)
    s.nccl(op, ncclGetUniqueId(&id), "ncclGetUniqueId");
  request.assign(1, MPI_REQUEST_NULL);
  s.checkMpi(op,
             MPI_Ibcast(&id, sizeof(id), MPI_BYTE, 0, s.mpi, request.data()),
             "MPI_Ibcast");
  if (!detail::testAllUntil(op, request, deadline))
    s.fail(detail::timeoutMessage(op, s.timeoutSeconds, s.rank, s.size));

  // Non-blocking, so that even connecting to a dead peer cannot block.
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  s.nccl(op, ncclCommInitRankConfig(&s.comm, s.size, id, s.rank, &config),
         "ncclCommInitRankConfig");
  s.waitQueued(op, deadline);
}

NcclCollectives::~NcclCollectives() = default;

int NcclCollectives::device() const { return impl_->device; }
std::string NcclCollectives::name() const { return "nccl"; }
int NcclCollectives::rank() const { return impl_->rank; }
int NcclCollectives::size() const { return impl_->size; }

void NcclCollectives::allReduceSum(float *data, int64_t count) {
  Impl &s = *impl_;
  const char *op = "allReduceSum";
  s.checkUsable(op);
  detail::checkCount(op, count);
  if (s.size == 1 || count == 0)
    return;
  detail::Deadline deadline(s.timeoutSeconds);
  // Rank r owns the slice [lo(r), lo(r + 1)), as in MpiCollectives.
  auto lo = [&](int r) { return static_cast<size_t>(count * r / s.size); };
  size_t mine = lo(s.rank + 1) - lo(s.rank);
  size_t need = mine * s.size;
  if (need > s.scratchCount) {
    // Growing synchronizes the device; it happens for the first few sizes
    // only.
    if (s.scratch)
      s.cuda(op, cudaFree(s.scratch), "cudaFree");
    s.scratch = nullptr;
    s.scratchCount = 0;
    s.cuda(op, cudaMalloc(&s.scratch, need * sizeof(float)), "cudaMalloc");
    s.scratchCount = need;
  }

  // Reduce-scatter: everybody's copy of my slice, in rank order.
  std::vector<size_t> sliceOffset(s.size), sliceBytes(s.size),
      fromOffset(s.size), fromBytes(s.size, mine * sizeof(float));
  for (int r = 0; r < s.size; ++r) {
    sliceOffset[r] = lo(r) * sizeof(float);
    sliceBytes[r] = (lo(r + 1) - lo(r)) * sizeof(float);
    fromOffset[r] = r * mine * sizeof(float);
  }
  auto *bytes = reinterpret_cast<char *>(data);
  auto *scratchBytes = reinterpret_cast<char *>(s.scratch);
  s.exchange(op, bytes, sliceOffset, sliceBytes, scratchBytes, fromOffset,
             fromBytes, deadline);

  float *out = data + lo(s.rank);
  s.cuda(op,
         detail::launchRankOrderSum(s.scratch, s.size,
                                    static_cast<int64_t>(mine), out, s.stream),
         "the rank-order sum kernel");

  // All-gather the summed slices: my slice to everybody, theirs into data.
  std::vector<size_t> mineOffset(s.size, lo(s.rank) * sizeof(float)),
      mineBytes(s.size, mine * sizeof(float));
  mineBytes[s.rank] = 0; // already in place
  sliceBytes[s.rank] = 0;
  s.exchange(op, bytes, mineOffset, mineBytes, bytes, sliceOffset, sliceBytes,
             deadline);
  s.waitDone(op, deadline);
}

void NcclCollectives::allReduceSum(int64_t *data, int64_t count) {
  impl_->allReduceInts(data, count, ncclInt64);
}

void NcclCollectives::allReduceSum(int32_t *data, int64_t count) {
  impl_->allReduceInts(data, count, ncclInt32);
}

void NcclCollectives::allGather(const void *send, size_t bytesPerRank,
                                void *recv) {
  Impl &s = *impl_;
  s.checkUsable("allGather");
  if (bytesPerRank == 0)
    return;
  detail::Deadline deadline(s.timeoutSeconds);
  s.nccl("allGather",
         ncclAllGather(send, recv, bytesPerRank, ncclInt8, s.comm, s.stream),
         "ncclAllGather");
  s.waitDone("allGather", deadline);
}

void NcclCollectives::allGatherHost(const void *send, size_t bytesPerRank,
                                    void *recv) {
  // Over the MPI communicator NCCL was bootstrapped from: host memory.
  Impl &s = *impl_;
  s.checkUsable("allGatherHost");
  if (bytesPerRank == 0)
    return;
  if (bytesPerRank > static_cast<size_t>(std::numeric_limits<int>::max()))
    throw std::invalid_argument("allGatherHost: a control message of " +
                                std::to_string(bytesPerRank) + " bytes");
  detail::Deadline deadline(s.timeoutSeconds);
  std::vector<MPI_Request> request(1, MPI_REQUEST_NULL);
  int bytes = static_cast<int>(bytesPerRank);
  s.checkMpi("allGatherHost",
             MPI_Iallgather(send, bytes, MPI_BYTE, recv, bytes, MPI_BYTE, s.mpi,
                            request.data()),
             "MPI_Iallgather");
  if (!detail::testAllUntil("allGatherHost", request, deadline))
    s.fail(detail::timeoutMessage("allGatherHost", s.timeoutSeconds, s.rank,
                                  s.size));
}

void NcclCollectives::allToAll(const int32_t *send, int64_t countPerRank,
                               int32_t *recv) {
  impl_->allToAllFixed(send, countPerRank, recv);
}

void NcclCollectives::allToAll(const int64_t *send, int64_t countPerRank,
                               int64_t *recv) {
  impl_->allToAllFixed(send, countPerRank, recv);
}

void NcclCollectives::broadcast(void *data, size_t bytes, int root) {
  Impl &s = *impl_;
  s.checkUsable("broadcast");
  detail::checkRoot("broadcast", root, s.size);
  if (bytes == 0 || s.size == 1)
    return;
  detail::Deadline deadline(s.timeoutSeconds);
  s.nccl("broadcast",
         ncclBroadcast(data, data, bytes, ncclInt8, root, s.comm, s.stream),
         "ncclBroadcast");
  s.waitDone("broadcast", deadline);
}

void NcclCollectives::barrier() {
  Impl &s = *impl_;
  s.checkUsable("barrier");
  detail::Deadline deadline(s.timeoutSeconds);
  // A one-int sum: NCCL has no barrier, and waiting for it on the host
  // makes it one.
  s.nccl(
      "barrier",
      ncclAllReduce(s.token, s.token, 1, ncclInt32, ncclSum, s.comm, s.stream),
      "ncclAllReduce");
  s.waitDone("barrier", deadline);
}

void NcclCollectives::allToAllV(const float *send, const int64_t *sendCounts,
                                int64_t rowWidth, float *recv,
                                const int64_t *recvCounts) {
  impl_->allToAllRows(send, sendCounts, rowWidth, recv, recvCounts,
                      sizeof(float));
}

void NcclCollectives::allToAllV(const int32_t *send, const int64_t *sendCounts,
                                int64_t rowWidth, int32_t *recv,
                                const int64_t *recvCounts) {
  impl_->allToAllRows(send, sendCounts, rowWidth, recv, recvCounts,
                      sizeof(int32_t));
}

} // namespace moe::rt
