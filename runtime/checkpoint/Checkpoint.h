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
// Loading joins the expert shards along dim 0 in rank order, so a loaded
// checkpoint holds global tensors whatever R it was saved with; rank r' of
// a run on R' ranks loads just its slice, reading only the shard files
// that hold its rows (resharding is free). The shard files must be a
// complete set of one save: every r in [0, R) for one R, each holding the
// same tensors with the same dtype and shape.
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
  /// The expert-sharded tensors hold slice `slice` of `slices` of their
  /// dim 0 (loadCheckpoint's arguments); 0 of 1: the global tensors.
  int slice = 0;
  int slices = 1;

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

/// A file written into a checkpoint under construction: its name, size and
/// SHA-256 (lowercase hex), as checkpoint.json lists it.
struct WrittenFile {
  std::string name;
  uint64_t bytes = 0;
  std::string sha256;
};

/// A checkpoint that several writers build together (the ranks of a job on
/// one filesystem, each writing its own expert shard in place): one writer
/// begins it, each writes its files into the temporary directory, and the
/// first commits it with every writer's WrittenFile. saveCheckpointFiles is
/// these three steps in one process.
///
/// beginCheckpoint creates `root` if missing and returns a fresh
/// <root>/.tmp-step-<step>-XXXXXX directory.
std::string beginCheckpoint(const std::string &root, int64_t step);

/// Writes `file` (a plain name ending in .safetensors) into the directory
/// `tmpDir` that beginCheckpoint made, fsynced, and returns its digest.
WrittenFile writeCheckpointFile(const std::string &tmpDir, int64_t step,
                                const CheckpointFile &file);

/// Writes checkpoint.json listing `files` (which must all be in `tmpDir`;
/// each is checked against its size and SHA-256 first), renames `tmpDir` to
/// <root>/step-<step> as saveCheckpoint does, prunes to `keepLast` and
/// returns the checkpoint's path. On failure before the rename, `tmpDir` is
/// removed and CheckpointError thrown.
std::string commitCheckpoint(const std::string &root, int64_t step,
                             const std::string &tmpDir,
                             const std::vector<WrittenFile> &files,
                             const nlohmann::json &state, int keepLast = 0);

/// Removes the temporary directory of a checkpoint that will not be
/// committed (best-effort).
void abandonCheckpoint(const std::string &tmpDir);

/// Loads the checkpoint directory `dir` and verifies what it reads: the
/// fields of checkpoint.json, the size and SHA-256 of every file read, the
/// safetensors format and the set of expert shards. The expert-sharded
/// tensors come as slice `slice` of `slices` of their dim 0 (rows
/// [slice n/slices, (slice+1) n/slices); by default the whole, global
/// tensors), and only the shard files holding those rows are read: rank r
/// of R loads slice r of R whatever rank count wrote the checkpoint. Throws
/// CheckpointError naming what is wrong (also when a sharded tensor's rows
/// do not split into `slices`).
Checkpoint loadCheckpoint(const std::string &dir, int slice = 0,
                          int slices = 1);

/// The step recorded in `dir`'s checkpoint.json (read and checked; the
/// tensor files are not).
int64_t checkpointStep(const std::string &dir);

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
