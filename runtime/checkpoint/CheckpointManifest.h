//===- CheckpointManifest.h - checkpoint.json -------------------*- C++ -*-===//
//
// Internal to moe_checkpoint. checkpoint.json names the format, the step, the
// caller's state and the size and SHA-256 of every file of the checkpoint
// directory (Checkpoint.h). It is written last and is the commit marker.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_CHECKPOINT_CHECKPOINTMANIFEST_H
#define MOE_RUNTIME_CHECKPOINT_CHECKPOINTMANIFEST_H

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace moe::rt::checkpoint {

inline constexpr const char kManifestName[] = "checkpoint.json";
/// Every tensor file of a checkpoint ends in this.
inline constexpr const char kSafetensorsSuffix[] = ".safetensors";

/// One entry of checkpoint.json's "files".
struct FileEntry {
  std::string name;
  uint64_t bytes = 0;
  std::string sha256;
};

/// The parsed and checked checkpoint.json of a directory.
struct Manifest {
  int64_t step = 0;
  nlohmann::json state;
  std::vector<FileEntry> files;
};

/// A plain name inside the checkpoint directory: the manifest must not be
/// able to point a load outside it.
bool isPlainFileName(const std::string &name);

/// Reads <dir>/checkpoint.json and checks its fields: the format, a
/// non-negative step, the state, and a non-empty list of uniquely and plainly
/// named files with a size and 64 lowercase hex digits of SHA-256 each.
Manifest readManifest(const std::string &dir);

/// Checks the size, then the SHA-256 of the file `entry` lists in `dir`.
void verifyFile(const std::string &dir, const FileEntry &entry);

/// Writes <dir>/checkpoint.json for a checkpoint of `root`, fsynced. Fails
/// (naming `root`) without writing when loading would refuse the state.
void writeManifest(const std::string &dir, const std::string &root,
                   int64_t step, const nlohmann::json &state,
                   const std::vector<FileEntry> &files);

} // namespace moe::rt::checkpoint

#endif // MOE_RUNTIME_CHECKPOINT_CHECKPOINTMANIFEST_H
