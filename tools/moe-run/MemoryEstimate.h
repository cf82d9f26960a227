//===- MemoryEstimate.h - Bytes a package needs per rank --------*- C++ -*-===//
//
// What a Session allocates for a package before its first step, from the
// manifest alone: one buffer per parameter and optimizer state tensor (an
// expert-sharded one at its slice for R ranks), and the arena and input
// buffers of each function the command runs. Gradients live in the train
// step's arena (moe-plan-buffers plans them with the activations; Adam
// updates in place), so they are part of it, except the gradients of
// expert-sharded parameters, which the train step takes from its pool at
// the shard's size (counted as pools), and the R N summed rows of the
// vocabulary layers' sparse gradients under data parallelism (pools, R
// times the manifest's rank_rows_bytes). Not included: the per-call scratch
// and the pool rows the step functions size at run time (the output
// layer's logit blocks, the expert exchange's rows) and the CUDA context.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TOOLS_MOE_RUN_MEMORYESTIMATE_H
#define MOE_TOOLS_MOE_RUN_MEMORYESTIMATE_H

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace moe::run {

class Package;

/// Bytes one of `ranks` ranks allocates, by kind.
struct MemoryEstimate {
  int ranks = 1;
  uint64_t parameters = 0;
  /// Adam's moments and the step counter.
  uint64_t optimizerState = 0;
  /// The arenas of the functions run: activations, gradients, scratch the
  /// compiler planned.
  uint64_t arenas = 0;
  /// The functions' input buffers (token ids, targets).
  uint64_t inputs = 0;
  /// The train step's gradients of expert-sharded parameters, from its
  /// pool (one shard each), and the summed rows of all ranks' sparse
  /// vocabulary gradients.
  uint64_t pools = 0;

  uint64_t total() const {
    return parameters + optimizerState + arenas + inputs + pools;
  }
};

/// The functions a command runs: "train" the train step and the evaluation
/// function, "eval" and "generate" the evaluation function, "gradcheck" the
/// train step and the model; those the package lacks are left out.
std::vector<std::string> functionsOf(const Package &package,
                                     const std::string &command);

/// Per-rank bytes of `package` on `ranks` ranks running `functions`.
/// Throws std::runtime_error when a sharded tensor's dim 0 does not divide.
MemoryEstimate estimateMemory(const Package &package, int ranks,
                              const std::vector<std::string> &functions);

/// Rank counts after `ranks` (doubling, up to 1024) at which every sharded
/// tensor divides; empty for a package without sharded tensors.
std::vector<int> largerRankCounts(const Package &package, int ranks);

/// One line saying that `package` does not fit in `budget` bytes on
/// `ranks` ranks, with the numbers and, when some rank count would fit,
/// that one (e.g. "needs 148.00 GiB per rank on 1 rank, the cuda device
/// has 139.00 GiB; fits on 2 ranks (expert-parallel)"); nullopt when it
/// fits. `where` names the budget ("the cuda device has").
std::optional<std::string> checkFits(const Package &package, int ranks,
                                     const std::vector<std::string> &functions,
                                     uint64_t budget, const std::string &where);

/// "8.70 KiB", "1.50 GiB": binary units, two decimals.
std::string formatBytes(uint64_t bytes);

/// Bytes from "1000", "512M", "8G", "1.5GiB", "2T" (binary units; B, K, M,
/// G, T with an optional "iB"); throws std::invalid_argument naming the
/// text otherwise.
uint64_t parseBytes(const std::string &text);

} // namespace moe::run

#endif // MOE_TOOLS_MOE_RUN_MEMORYESTIMATE_H
