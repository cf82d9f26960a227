//===- SingleProcess.cpp - The collectives of a single rank ---------------===//
//
// Reductions over one rank leave the data as it is; exchanges copy to self.
// The argument checks match those of the multi-rank implementations so that
// a bug shows up on one rank already.
//
//===----------------------------------------------------------------------===//

#include "runtime/collectives/SingleProcess.h"

#include "runtime/collectives/Support.h"

#include <cstring>
#include <stdexcept>

namespace moe::rt {

namespace {

/// memcpy that tolerates null pointers for empty copies (a rank without
/// tokens may pass null).
void copyBytes(void *dst, const void *src, size_t bytes) {
  if (bytes == 0 || dst == src)
    return;
  std::memcpy(dst, src, bytes);
}

template <typename T>
void copyRows(const T *send, const int64_t *sendCounts, int64_t rowWidth,
              T *recv, const int64_t *recvCounts) {
  detail::checkRowExchange("allToAllV", sendCounts, recvCounts, 1, rowWidth);
  if (sendCounts[0] != recvCounts[0])
    throw std::invalid_argument(
        "collective allToAllV: rank 0 sends " + std::to_string(sendCounts[0]) +
        " rows to itself but expects " + std::to_string(recvCounts[0]));
  copyBytes(recv, send,
            static_cast<size_t>(sendCounts[0] * rowWidth) * sizeof(T));
}

} // namespace

std::string SingleProcess::name() const { return "single"; }
int SingleProcess::rank() const { return 0; }
int SingleProcess::size() const { return 1; }

void SingleProcess::allReduceSum(float *, int64_t count) {
  detail::checkCount("allReduceSum", count);
}
void SingleProcess::allReduceSum(int64_t *, int64_t count) {
  detail::checkCount("allReduceSum", count);
}
void SingleProcess::allReduceSum(int32_t *, int64_t count) {
  detail::checkCount("allReduceSum", count);
}

void SingleProcess::allGather(const void *send, size_t bytesPerRank,
                              void *recv) {
  copyBytes(recv, send, bytesPerRank);
}

void SingleProcess::allGatherHost(const void *send, size_t bytesPerRank,
                                  void *recv) {
  copyBytes(recv, send, bytesPerRank);
}

void SingleProcess::allToAll(const int32_t *send, int64_t countPerRank,
                             int32_t *recv) {
  detail::checkCount("allToAll", countPerRank);
  copyBytes(recv, send, static_cast<size_t>(countPerRank) * sizeof(int32_t));
}

void SingleProcess::allToAll(const int64_t *send, int64_t countPerRank,
                             int64_t *recv) {
  detail::checkCount("allToAll", countPerRank);
  copyBytes(recv, send, static_cast<size_t>(countPerRank) * sizeof(int64_t));
}

void SingleProcess::broadcast(void *, size_t, int root) {
  detail::checkRoot("broadcast", root, 1);
}

void SingleProcess::barrier() {}

void SingleProcess::allToAllV(const float *send, const int64_t *sendCounts,
                              int64_t rowWidth, float *recv,
                              const int64_t *recvCounts) {
  copyRows(send, sendCounts, rowWidth, recv, recvCounts);
}

void SingleProcess::allToAllV(const int32_t *send, const int64_t *sendCounts,
                              int64_t rowWidth, int32_t *recv,
                              const int64_t *recvCounts) {
  copyRows(send, sendCounts, rowWidth, recv, recvCounts);
}

} // namespace moe::rt
