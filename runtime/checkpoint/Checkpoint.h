//===- Checkpoint.h - Atomic, verified training checkpoints -----*- C++ -*-===//
//
// A checkpoint is a directory <root>/step-<8-digit step>/ holding
//
//   tensors.safetensors  the tensors (parameters, optimizer moments, ...)
//   checkpoint.json      {"format": "moe-checkpoint/1", "step": N,
//                         "state": <caller's JSON>,
//                         "files": [{"name", "bytes", "sha256"}, ...]}
//
// checkpoint.json is written last and is the commit marker. The directory is
// built under a temporary name and renamed into place, so a crash at any
// point leaves either the complete checkpoint or none at all (plus a .tmp-*
// directory that latestCheckpoint ignores). Loading checks the size and
// SHA-256 of every listed file before parsing it, so a truncated or
// bit-flipped file is reported as such instead of being trained on.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_CHECKPOINT_CHECKPOINT_H
#define MOE_RUNTIME_CHECKPOINT_CHECKPOINT_H

#include "runtime/checkpoint/Safetensors.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace moe::rt {

/// A loaded checkpoint.
struct Checkpoint {
  int64_t step = 0;
  /// The caller's JSON (data-pipeline position, RNG counters, config, ...).
  nlohmann::json state;
  std::vector<HostTensor> tensors;

  /// The tensor called `name`, or nullptr.
  const HostTensor *find(const std::string &name) const;
};

/// Writes <root>/step-<8-digit step>/ atomically and returns its path. The
/// files go to a fresh <root>/.tmp-step-<step>-XXXXXX directory first, each
/// fsync'ed; then the directory is fsync'ed, renamed to its final name and
/// the parent fsync'ed. An existing checkpoint of the same step is replaced:
/// renamed aside, the new one renamed in, the old one removed. `root` is
/// created if missing. With `keepLast > 0`, step-* directories beyond the
/// newest `keepLast` are deleted afterwards, never the one just written;
/// pruning is best-effort and does not fail the save. Throws CheckpointError
/// (and removes the temporary directory) when anything fails before the
/// rename.
std::string saveCheckpoint(const std::string &root, int64_t step,
                           const std::vector<HostTensor> &tensors,
                           const nlohmann::json &state, int keepLast = 0);

/// Loads the checkpoint directory `dir` and verifies it completely: the
/// fields of checkpoint.json, the size and SHA-256 of every listed file, and
/// the safetensors format. Throws CheckpointError naming what is wrong.
Checkpoint loadCheckpoint(const std::string &dir);

/// The newest step-* directory under `root` whose checkpoint.json is present
/// and well formed (with a step matching the directory name); .tmp-*
/// directories are ignored. The file hashes are left to loadCheckpoint.
/// Returns an empty string when there is none (or no `root`).
std::string latestCheckpoint(const std::string &root);

} // namespace moe::rt

#endif // MOE_RUNTIME_CHECKPOINT_CHECKPOINT_H
