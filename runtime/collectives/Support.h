//===- Support.h - Shared helpers of the collectives -----------*- C++ -*-===//
//
// Argument checks, deadlines and error messages shared by the SingleProcess,
// MPI and NCCL implementations. Private to runtime/collectives.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_COLLECTIVES_SUPPORT_H
#define MOE_RUNTIME_COLLECTIVES_SUPPORT_H

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

namespace moe::rt::detail {

/// Throws std::invalid_argument when count < 0.
void checkCount(const char *op, int64_t count);
/// Throws std::invalid_argument unless 0 <= root < size.
void checkRoot(const char *op, int root, int size);
/// Throws std::invalid_argument for null count arrays, negative counts or a
/// negative rowWidth.
void checkRowExchange(const char *op, const int64_t *sendCounts,
                      const int64_t *recvCounts, int size, int64_t rowWidth);

/// "collective <op> timed out after <t> s: a rank is unresponsive or died
/// (rank r of n; ...)".
std::string timeoutMessage(const char *op, double seconds, int rank, int size);
/// The message of every call on an object that timed out before.
std::string brokenMessage(const char *op, const std::string &firstError);

/// Adds delta to the count reported by unrecoveredCollectiveFailures().
void noteUnrecoveredFailures(int delta);

/// The end of a blocking operation's time budget.
class Deadline {
public:
  explicit Deadline(double seconds)
      : end_(std::chrono::steady_clock::now() +
             std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                 std::chrono::duration<double>(seconds))) {}
  bool passed() const { return std::chrono::steady_clock::now() >= end_; }

private:
  std::chrono::steady_clock::time_point end_;
};

/// Pacing of a polling loop: the first polls spin (low latency for the
/// common fast case), later ones sleep with a growing pause so that waiting
/// ranks leave the cores to the ranks still working (ranks are often
/// oversubscribed on CPU machines). The pause stays short because MPI makes
/// progress only inside MPI calls.
class Backoff {
public:
  void pause() {
    if (++polls_ <= kSpinPolls)
      return;
    std::this_thread::sleep_for(std::chrono::microseconds(sleepUs_));
    if (sleepUs_ < kMaxSleepUs)
      sleepUs_ *= 2;
  }

private:
  static constexpr int kSpinPolls = 200;
  static constexpr int kMaxSleepUs = 128;
  int polls_ = 0;
  int sleepUs_ = 1;
};

} // namespace moe::rt::detail

#endif // MOE_RUNTIME_COLLECTIVES_SUPPORT_H
