//===- Collectives.cpp - The factory and shared helpers -------------------===//
//
// createCollectives picks an implementation by name; the argument checks,
// the timeout setting and the error messages live here so that every
// implementation words them the same way.
//
//===----------------------------------------------------------------------===//

#include "runtime/collectives/Collectives.h"

#include "runtime/collectives/SingleProcess.h"
#include "runtime/collectives/Support.h"

#ifdef MOE_COLLECTIVES_HAS_MPI
#include "runtime/collectives/MpiCollectives.h"
#endif
#ifdef MOE_COLLECTIVES_HAS_NCCL
#include "runtime/collectives/NcclCollectives.h"
#endif

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace moe::rt {

Collectives::~Collectives() = default;

namespace {

constexpr double kDefaultTimeoutSeconds = 120.0;

std::atomic<int> unrecoveredFailures{0};

/// True when a process manager launched us (Open MPI's mpirun sets
/// OMPI_COMM_WORLD_SIZE, MPICH's hydra and Slurm's PMI set PMI_SIZE).
bool launchedByMpirun() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr ||
         std::getenv("PMI_SIZE") != nullptr;
}

[[noreturn]] void notCompiled(const std::string &kind, const char *why) {
  throw std::runtime_error("collectives '" + kind +
                           "' are not available: " + why);
}

} // namespace

int launcherLocalRank() {
  for (const char *name : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID",
                           "MV2_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID"})
    if (const char *value = std::getenv(name)) {
      char *end = nullptr;
      long rank = std::strtol(value, &end, 10);
      if (end != value && *end == '\0' && rank >= 0 && rank < (1L << 30))
        return static_cast<int>(rank);
    }
  return -1;
}

int selectDevice(int requested, int localRank, int devices) {
  if (requested >= 0 || devices <= 0)
    return requested;
  return std::max(localRank, 0) % devices;
}

std::unique_ptr<Collectives>
createCollectives(const std::string &kind, const CollectivesOptions &options) {
  CollectivesOptions resolved = options;
  if (resolved.timeoutSeconds <= 0)
    resolved.timeoutSeconds = collectiveTimeoutSeconds();

  if (kind == "single")
    return std::make_unique<SingleProcess>();
  if (kind == "auto") {
    if (!launchedByMpirun())
      return std::make_unique<SingleProcess>();
    if (!collectivesCompiled("mpi"))
      // Running N independent single-rank copies would silently train N
      // different models.
      notCompiled("auto", "launched by mpirun, but moe-runtime was built "
                          "without MPI (install libopenmpi-dev and "
                          "reconfigure with -DMOE_ENABLE_MPI=ON)");
    return createCollectives("mpi", resolved);
  }
  if (kind == "mpi") {
#ifdef MOE_COLLECTIVES_HAS_MPI
    return std::make_unique<MpiCollectives>(resolved.timeoutSeconds);
#else
    notCompiled(kind, "moe-runtime was built without MPI (install "
                      "libopenmpi-dev and reconfigure with "
                      "-DMOE_ENABLE_MPI=ON)");
#endif
  }
  if (kind == "nccl") {
#ifdef MOE_COLLECTIVES_HAS_NCCL
    return std::make_unique<NcclCollectives>(resolved);
#else
    notCompiled(kind, "moe-runtime was built without NCCL (it needs "
                      "MOE_ENABLE_CUDA, NCCL (set NCCL_ROOT) and MPI)");
#endif
  }
  throw std::invalid_argument("unknown collectives kind '" + kind +
                              "' (expected auto, single, mpi or nccl)");
}

bool collectivesCompiled(const std::string &kind) {
  if (kind == "single")
    return true;
#ifdef MOE_COLLECTIVES_HAS_MPI
  if (kind == "mpi")
    return true;
#endif
#ifdef MOE_COLLECTIVES_HAS_NCCL
  if (kind == "nccl")
    return true;
#endif
  return false;
}

double collectiveTimeoutSeconds() {
  const char *text = std::getenv("MOE_COLLECTIVE_TIMEOUT_S");
  if (!text)
    return kDefaultTimeoutSeconds;
  errno = 0;
  char *end = nullptr;
  double seconds = std::strtod(text, &end);
  if (end == text || *end != '\0' || errno != 0 || !std::isfinite(seconds) ||
      seconds <= 0)
    throw std::invalid_argument(
        std::string("MOE_COLLECTIVE_TIMEOUT_S must be a positive number of "
                    "seconds, got '") +
        text + "'");
  return seconds;
}

int unrecoveredCollectiveFailures() { return unrecoveredFailures.load(); }

namespace detail {

void noteUnrecoveredFailures(int delta) { unrecoveredFailures += delta; }

void checkCount(const char *op, int64_t count) {
  if (count < 0)
    throw std::invalid_argument(std::string("collective ") + op +
                                ": negative count " + std::to_string(count));
}

void checkRoot(const char *op, int root, int size) {
  if (root < 0 || root >= size)
    throw std::invalid_argument(std::string("collective ") + op + ": root " +
                                std::to_string(root) + " is not a rank of " +
                                std::to_string(size));
}

void checkRowExchange(const char *op, const int64_t *sendCounts,
                      const int64_t *recvCounts, int size, int64_t rowWidth) {
  std::string prefix = std::string("collective ") + op + ": ";
  if (!sendCounts || !recvCounts)
    throw std::invalid_argument(prefix + "null count array");
  if (rowWidth < 0)
    throw std::invalid_argument(prefix + "negative row width " +
                                std::to_string(rowWidth));
  for (int r = 0; r < size; ++r)
    if (sendCounts[r] < 0 || recvCounts[r] < 0)
      throw std::invalid_argument(prefix + "negative row count for rank " +
                                  std::to_string(r));
}

std::string timeoutMessage(const char *op, double seconds, int rank, int size) {
  char text[32];
  std::snprintf(text, sizeof(text), "%g", seconds);
  return std::string("collective ") + op + " timed out after " + text +
         " s: a rank is unresponsive or died (this is rank " +
         std::to_string(rank) + " of " + std::to_string(size) +
         "; MOE_COLLECTIVE_TIMEOUT_S sets the limit)";
}

std::string brokenMessage(const char *op, const std::string &firstError) {
  return std::string("collective ") + op +
         ": these collectives are unusable after an earlier failure: " +
         firstError;
}

} // namespace detail

} // namespace moe::rt
