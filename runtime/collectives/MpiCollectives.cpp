//===- MpiCollectives.cpp - Collectives over MPI on host memory -----------===//
//
// Each operation posts non-blocking MPI calls and waits for them with
// wait(), which enforces the deadline. MPI counts and displacements are int:
// row exchanges count in rows (a contiguous datatype of rowWidth elements),
// and the long operations are split into pieces that fit.
//
//===----------------------------------------------------------------------===//

#include "runtime/collectives/MpiCollectives.h"

#include "runtime/collectives/MpiSupport.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace moe::rt {

namespace {

/// Elements per piece of allReduceSum(float): bounds the scratch memory
/// (about one piece) and keeps every MPI count an int.
constexpr int64_t kReduceBlock = int64_t(1) << 24;
/// Elements or bytes per MPI call of the integer sums and of broadcast /
/// allGather.
constexpr int64_t kMaxPiece = int64_t(1) << 30;

int toInt(const char *op, int64_t value, const char *what) {
  if (value > INT_MAX)
    throw std::invalid_argument(std::string("collective ") + op + ": " + what +
                                " " + std::to_string(value) +
                                " exceeds what MPI can address (2^31-1)");
  return static_cast<int>(value);
}

/// A valid address for buffers that are empty on this rank (a rank without
/// tokens may pass null).
template <typename T> T *orDummy(T *ptr) {
  static int64_t dummy;
  return ptr ? ptr : reinterpret_cast<T *>(&dummy);
}

} // namespace

struct MpiCollectives::Impl {
  MPI_Comm comm = MPI_COMM_NULL;
  int rank = 0;
  int size = 1;
  double timeoutSeconds = 120;
  /// The first error; once set, every operation throws.
  std::string broken;
  /// Reduce-scatter receive buffer of allReduceSum(float).
  std::vector<float> scratch;

  /// Requests left behind by a timeout, with the scratch they may still
  /// write into.
  struct Abandoned {
    std::vector<MPI_Request> requests;
    std::vector<float> scratch;
  };
  std::vector<Abandoned> abandoned;

  void checkUsable(const char *op) const {
    if (!broken.empty())
      throw std::runtime_error(detail::brokenMessage(op, broken));
  }

  /// Turns an MPI error of a posting call into an exception (and makes the
  /// object unusable: the ranks may now disagree on what was posted).
  void check(const char *op, int rc, const char *call) {
    if (rc == MPI_SUCCESS)
      return;
    broken = std::string("collective ") + op + ": " + call +
             " failed: " + detail::mpiErrorString(rc);
    detail::noteUnrecoveredFailures(1);
    throw std::runtime_error(broken);
  }

  /// Blocks until `requests` complete, or throws the timeout error.
  void wait(const char *op, std::vector<MPI_Request> &requests) {
    bool done = false;
    try {
      done =
          detail::testAllUntil(op, requests, detail::Deadline(timeoutSeconds));
    } catch (const std::exception &error) {
      broken = error.what();
      detail::noteUnrecoveredFailures(1);
      throw;
    }
    if (done)
      return;
    broken = detail::timeoutMessage(op, timeoutSeconds, rank, size);
    abandoned.push_back({requests, std::move(scratch)});
    detail::noteUnrecoveredFailures(1);
    throw std::runtime_error(broken);
  }

  void wait(const char *op, MPI_Request request) {
    std::vector<MPI_Request> requests(1, request);
    wait(op, requests);
  }

  /// Sums one piece of at most kReduceBlock floats in place.
  void reduceBlock(float *data, int64_t count);

  template <typename T>
  void allReduceInts(T *data, int64_t count, MPI_Datatype type);
  template <typename T>
  void allToAllFixed(const T *send, int64_t countPerRank, T *recv,
                     MPI_Datatype type);
  void allToAllRows(const char *op, const void *send, const int64_t *sendCounts,
                    int64_t rowWidth, void *recv, const int64_t *recvCounts,
                    MPI_Datatype element);
};

void MpiCollectives::Impl::reduceBlock(float *data, int64_t count) {
  // Rank r owns the slice [lo(r), lo(r + 1)).
  auto lo = [&](int r) { return count * r / size; };
  int mine = static_cast<int>(lo(rank + 1) - lo(rank));
  std::vector<int> sliceCounts(size), sliceStarts(size), fromCounts(size),
      fromStarts(size);
  for (int r = 0; r < size; ++r) {
    sliceStarts[r] = static_cast<int>(lo(r));
    sliceCounts[r] = static_cast<int>(lo(r + 1) - lo(r));
    fromCounts[r] = mine;
    fromStarts[r] = r * mine;
  }
  if (scratch.size() < static_cast<size_t>(size) * mine + 1)
    scratch.resize(static_cast<size_t>(size) * mine + 1);

  // Reduce-scatter: everybody's copy of my slice, in rank order.
  MPI_Request request = MPI_REQUEST_NULL;
  check("allReduceSum",
        MPI_Ialltoallv(data, sliceCounts.data(), sliceStarts.data(), MPI_FLOAT,
                       scratch.data(), fromCounts.data(), fromStarts.data(),
                       MPI_FLOAT, comm, &request),
        "MPI_Ialltoallv");
  wait("allReduceSum", request);

  // ((x0 + x1) + x2) + ...: one fixed order per element.
  float *out = data + lo(rank);
  std::memcpy(out, scratch.data(), sizeof(float) * mine);
  for (int r = 1; r < size; ++r) {
    const float *in = scratch.data() + static_cast<size_t>(r) * mine;
    for (int i = 0; i < mine; ++i)
      out[i] += in[i];
  }

  // All-gather the summed slices back into every rank's data.
  check("allReduceSum",
        MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data,
                        sliceCounts.data(), sliceStarts.data(), MPI_FLOAT, comm,
                        &request),
        "MPI_Iallgatherv");
  wait("allReduceSum", request);
}

template <typename T>
void MpiCollectives::Impl::allReduceInts(T *data, int64_t count,
                                         MPI_Datatype type) {
  checkUsable("allReduceSum");
  detail::checkCount("allReduceSum", count);
  if (size == 1 || count == 0)
    return;
  std::vector<MPI_Request> requests;
  for (int64_t start = 0; start < count; start += kMaxPiece) {
    int piece = static_cast<int>(std::min(kMaxPiece, count - start));
    requests.push_back(MPI_REQUEST_NULL);
    check("allReduceSum",
          MPI_Iallreduce(MPI_IN_PLACE, data + start, piece, type, MPI_SUM, comm,
                         &requests.back()),
          "MPI_Iallreduce");
  }
  wait("allReduceSum", requests);
}

template <typename T>
void MpiCollectives::Impl::allToAllFixed(const T *send, int64_t countPerRank,
                                         T *recv, MPI_Datatype type) {
  checkUsable("allToAll");
  detail::checkCount("allToAll", countPerRank);
  if (countPerRank == 0)
    return;
  int count = toInt("allToAll", countPerRank, "countPerRank");
  toInt("allToAll", countPerRank * size, "total count");
  MPI_Request request = MPI_REQUEST_NULL;
  check("allToAll",
        MPI_Ialltoall(send, count, type, recv, count, type, comm, &request),
        "MPI_Ialltoall");
  wait("allToAll", request);
}

void MpiCollectives::Impl::allToAllRows(const char *op, const void *send,
                                        const int64_t *sendCounts,
                                        int64_t rowWidth, void *recv,
                                        const int64_t *recvCounts,
                                        MPI_Datatype element) {
  checkUsable(op);
  detail::checkRowExchange(op, sendCounts, recvCounts, size, rowWidth);
  if (rowWidth == 0)
    return;
  // Counts and displacements in rows, so that only the row totals need to
  // fit an int.
  std::vector<int> sendRows(size), sendStarts(size), recvRows(size),
      recvStarts(size);
  int64_t sendTotal = 0, recvTotal = 0;
  for (int r = 0; r < size; ++r) {
    sendStarts[r] = toInt(op, sendTotal, "row offset");
    recvStarts[r] = toInt(op, recvTotal, "row offset");
    sendRows[r] = toInt(op, sendCounts[r], "row count");
    recvRows[r] = toInt(op, recvCounts[r], "row count");
    sendTotal += sendCounts[r];
    recvTotal += recvCounts[r];
  }
  toInt(op, sendTotal, "row total");
  toInt(op, recvTotal, "row total");

  MPI_Datatype row = element;
  if (rowWidth > 1) {
    check(op,
          MPI_Type_contiguous(toInt(op, rowWidth, "row width"), element, &row),
          "MPI_Type_contiguous");
    check(op, MPI_Type_commit(&row), "MPI_Type_commit");
  }
  MPI_Request request = MPI_REQUEST_NULL;
  int rc = MPI_Ialltoallv(orDummy(send), sendRows.data(), sendStarts.data(),
                          row, orDummy(recv), recvRows.data(),
                          recvStarts.data(), row, comm, &request);
  // A datatype may be freed while operations that use it are pending.
  if (row != element)
    MPI_Type_free(&row);
  check(op, rc, "MPI_Ialltoallv");
  wait(op, request);
}

MpiCollectives::MpiCollectives(double timeoutSeconds)
    : impl_(std::make_unique<Impl>()) {
  impl_->timeoutSeconds = timeoutSeconds;
  impl_->comm = detail::duplicateWorld(timeoutSeconds);
  MPI_Comm_rank(impl_->comm, &impl_->rank);
  MPI_Comm_size(impl_->comm, &impl_->size);
}

MpiCollectives::~MpiCollectives() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized)
    return;
  if (!impl_->abandoned.empty()) {
    // Should the missing rank have caught up, the abandoned requests can
    // still complete; wait a little for them before giving up on them.
    detail::Deadline grace(std::min(impl_->timeoutSeconds, 5.0));
    bool allDone = true;
    for (auto &entry : impl_->abandoned) {
      bool done = false;
      try {
        done = detail::testAllUntil("drain", entry.requests, grace);
      } catch (const std::exception &) {
        // Completed with an error: nothing is pending any more.
        done = true;
      }
      if (done)
        detail::noteUnrecoveredFailures(-1);
      allDone = allDone && done;
    }
    if (!allDone) {
      // Leak the communicator and the scratch on purpose: MPI may still
      // write to them.
      (void)impl_.release();
      return;
    }
  }
  MPI_Comm_free(&impl_->comm);
}

std::string MpiCollectives::name() const { return "mpi"; }
int MpiCollectives::rank() const { return impl_->rank; }
int MpiCollectives::size() const { return impl_->size; }

void MpiCollectives::allReduceSum(float *data, int64_t count) {
  impl_->checkUsable("allReduceSum");
  detail::checkCount("allReduceSum", count);
  if (impl_->size == 1)
    return;
  for (int64_t start = 0; start < count; start += kReduceBlock)
    impl_->reduceBlock(data + start, std::min(kReduceBlock, count - start));
}

void MpiCollectives::allReduceSum(int64_t *data, int64_t count) {
  impl_->allReduceInts(data, count, MPI_INT64_T);
}

void MpiCollectives::allReduceSum(int32_t *data, int64_t count) {
  impl_->allReduceInts(data, count, MPI_INT32_T);
}

void MpiCollectives::allGather(const void *send, size_t bytesPerRank,
                               void *recv) {
  impl_->checkUsable("allGather");
  if (bytesPerRank == 0)
    return;
  auto *in = static_cast<const char *>(send);
  auto *out = static_cast<char *>(recv);
  int64_t total = static_cast<int64_t>(bytesPerRank);
  std::vector<MPI_Request> requests;
  for (int64_t start = 0; start < total; start += kMaxPiece) {
    int piece = static_cast<int>(std::min(kMaxPiece, total - start));
    // Piece `start` of every rank's block: `piece` bytes whose extent is a
    // whole block, so that rank r's piece lands at r * bytesPerRank + start.
    MPI_Datatype block = MPI_DATATYPE_NULL, strided = MPI_DATATYPE_NULL;
    impl_->check("allGather", MPI_Type_contiguous(piece, MPI_BYTE, &block),
                 "MPI_Type_contiguous");
    impl_->check("allGather",
                 MPI_Type_create_resized(block, 0, total, &strided),
                 "MPI_Type_create_resized");
    MPI_Type_free(&block);
    impl_->check("allGather", MPI_Type_commit(&strided), "MPI_Type_commit");
    requests.push_back(MPI_REQUEST_NULL);
    int rc = MPI_Iallgather(in + start, piece, MPI_BYTE, out + start, 1,
                            strided, impl_->comm, &requests.back());
    MPI_Type_free(&strided);
    impl_->check("allGather", rc, "MPI_Iallgather");
  }
  impl_->wait("allGather", requests);
}

void MpiCollectives::allGatherHost(const void *send, size_t bytesPerRank,
                                   void *recv) {
  // MPI takes host memory everywhere.
  allGather(send, bytesPerRank, recv);
}

void MpiCollectives::allToAll(const int32_t *send, int64_t countPerRank,
                              int32_t *recv) {
  impl_->allToAllFixed(send, countPerRank, recv, MPI_INT32_T);
}

void MpiCollectives::allToAll(const int64_t *send, int64_t countPerRank,
                              int64_t *recv) {
  impl_->allToAllFixed(send, countPerRank, recv, MPI_INT64_T);
}

void MpiCollectives::broadcast(void *data, size_t bytes, int root) {
  impl_->checkUsable("broadcast");
  detail::checkRoot("broadcast", root, impl_->size);
  auto *bytesOut = static_cast<char *>(data);
  int64_t total = static_cast<int64_t>(bytes);
  std::vector<MPI_Request> requests;
  for (int64_t start = 0; start < total; start += kMaxPiece) {
    int piece = static_cast<int>(std::min(kMaxPiece, total - start));
    requests.push_back(MPI_REQUEST_NULL);
    impl_->check("broadcast",
                 MPI_Ibcast(bytesOut + start, piece, MPI_BYTE, root,
                            impl_->comm, &requests.back()),
                 "MPI_Ibcast");
  }
  if (!requests.empty())
    impl_->wait("broadcast", requests);
}

void MpiCollectives::barrier() {
  impl_->checkUsable("barrier");
  MPI_Request request = MPI_REQUEST_NULL;
  impl_->check("barrier", MPI_Ibarrier(impl_->comm, &request), "MPI_Ibarrier");
  impl_->wait("barrier", request);
}

void MpiCollectives::allToAllV(const float *send, const int64_t *sendCounts,
                               int64_t rowWidth, float *recv,
                               const int64_t *recvCounts) {
  impl_->allToAllRows("allToAllV", send, sendCounts, rowWidth, recv, recvCounts,
                      MPI_FLOAT);
}

void MpiCollectives::allToAllV(const int32_t *send, const int64_t *sendCounts,
                               int64_t rowWidth, int32_t *recv,
                               const int64_t *recvCounts) {
  impl_->allToAllRows("allToAllV", send, sendCounts, rowWidth, recv, recvCounts,
                      MPI_INT32_T);
}

} // namespace moe::rt
