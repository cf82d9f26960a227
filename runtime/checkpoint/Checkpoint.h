//===- Checkpoint.h - Atomic, verified training checkpoints -----*- C++ -*-===//
//
// A checkpoint is a directory <root>/step-<8-digit step>/ holding
//
//   tensors.safetensors  the replicated tensors (parameters, optimizer
//                        moments, ...)
//   tensors-expert-<r>-of-<R>.safetensors, r = 0 .. R-1
//                        only when some tensors are expert-sharded: file r
//                        holds rank r's slice [r n/R, (r+1) n/R) of dim 0
//                        of every sharded tensor, under the tensor's name
//                        and with the slice's shape
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
// Loading concatenates the expert shards along dim 0 in rank order, so a
// loaded checkpoint holds global tensors whatever R it was saved with, and a
// run on R' ranks takes its own slice of them (resharding is free). The
// shard files must be a complete set of one save: every r in [0, R) for one
// R, each holding the same tensors with the same dtype and shape.
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

/// The file of the replicated tensors.
inline constexpr const char kTensorsFileName[] = "tensors.safetensors";

/// "tensors-expert-<shard>-of-<shards>.safetensors": the file of the expert
/// shard of rank `shard` of `shards`.
std::string expertShardFileName(int shard, int shards);

/// One safetensors file of a checkpoint to save.
struct CheckpointFile {
  /// kTensorsFileName, expertShardFileName(r, R) or another plain name
  /// ending in ".safetensors".
  std::string name;
  std::vector<HostTensor> tensors;
};

/// A loaded checkpoint.
struct Checkpoint {
  int64_t step = 0;
  /// The caller's JSON (data-pipeline position, RNG counters, config, ...).
  nlohmann::json state;
  /// Global tensors: the expert shards concatenated along dim 0.
  std::vector<HostTensor> tensors;
  /// The number of expert shard files it was saved with; 0 when none.
  int expertShards = 0;

  /// The tensor called `name`, or nullptr.
  const HostTensor *find(const std::string &name) const;
};

/// <root>/step-<8-digit step>: where the checkpoint of `step` goes.
std::string checkpointPath(const std::string &root, int64_t step);

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

/// Like saveCheckpoint, with the tensors in several files (the replicated
/// tensors and the expert shards). The files are checked first as
/// loadCheckpoint would check them: plain unique names ending in
/// ".safetensors", no tensor in two files except across the expert shards,
/// and the shards a complete set of equal shapes. Nothing is written when
/// the check fails.
std::string saveCheckpointFiles(const std::string &root, int64_t step,
                                const std::vector<CheckpointFile> &files,
                                const nlohmann::json &state, int keepLast = 0);

/// Loads the checkpoint directory `dir` and verifies it completely: the
/// fields of checkpoint.json, the size and SHA-256 of every listed file, the
/// safetensors format and the set of expert shards, which it concatenates
/// into global tensors. Throws CheckpointError naming what is wrong.
Checkpoint loadCheckpoint(const std::string &dir);

/// The newest step-* directory under `root` whose checkpoint.json is present
/// and well formed (with a step matching the directory name); .tmp-*
/// directories are ignored. The file hashes are left to loadCheckpoint.
/// Returns an empty string when there is none (or no `root`).
std::string latestCheckpoint(const std::string &root);

/// Every step-* directory under `root`, complete or not, newest first.
std::vector<std::string> checkpointDirectories(const std::string &root);

/// Deletes the checkpoint directory `dir`, its commit marker first.
void removeCheckpoint(const std::string &dir);

/// Deletes the .tmp-step-* directories a save killed midway left under
/// `root` (only safe while no save into `root` runs); returns their names.
std::vector<std::string> removeUnfinishedSaves(const std::string &root);

} // namespace moe::rt

#endif // MOE_RUNTIME_CHECKPOINT_CHECKPOINT_H
