//===- Checkpoint.cpp - Atomic, verified training checkpoints -------------===//
//
// The step directories, saving and loading. A checkpoint only exists under
// a .tmp-* name until it is complete (DurableFile.h), and checkpoint.json
// (CheckpointManifest.h), the commit marker, is the last file written, so a
// reader never sees a half-written step-* directory. Expert shards:
// Shards.h.
//
//===----------------------------------------------------------------------===//

#include "runtime/checkpoint/Checkpoint.h"

#include "runtime/checkpoint/CheckpointManifest.h"
#include "runtime/checkpoint/DurableFile.h"
#include "runtime/checkpoint/Shards.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <set>
#include <system_error>
#include <utility>

namespace fs = std::filesystem;

namespace moe::rt {

using namespace checkpoint;

static constexpr const char *kStepPrefix = "step-";
static constexpr const char *kTmpPrefix = ".tmp-";

/// "step-00000042".
static std::string stepDirName(int64_t step) {
  char digits[32];
  std::snprintf(digits, sizeof(digits), "%08lld", static_cast<long long>(step));
  return kStepPrefix + std::string(digits);
}

/// The step of a directory named step-<digits>, or -1 for any other name.
static int64_t parseStepDirName(const std::string &name) {
  const size_t prefix = std::char_traits<char>::length(kStepPrefix);
  // 18 digits always fit in int64_t.
  if (name.compare(0, prefix, kStepPrefix) != 0 || name.size() == prefix ||
      name.size() > prefix + 18)
    return -1;
  int64_t step = 0;
  for (size_t i = prefix; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9')
      return -1;
    step = step * 10 + (name[i] - '0');
  }
  return step;
}

/// The step-* directories directly under `root`, newest first.
static std::vector<std::pair<int64_t, std::string>>
listStepDirs(const std::string &root) {
  std::vector<std::pair<int64_t, std::string>> dirs;
  std::error_code ec;
  fs::directory_iterator it(root, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    int64_t step = parseStepDirName(name);
    std::error_code typeEc;
    if (step >= 0 && it->is_directory(typeEc))
      dirs.emplace_back(step, joinPath(root, name));
  }
  std::sort(dirs.begin(), dirs.end(),
            [](const auto &a, const auto &b) { return a.first > b.first; });
  return dirs;
}

/// Deletes a step directory. It is renamed out of sight first (to a .tmp-*
/// name, which the next run's removeUnfinishedSaves deletes), so that an
/// interrupted removal never leaves a step-* directory that fails to load;
/// failing that, its commit marker goes first, so that it at least never
/// looks like a checkpoint.
static void removeCheckpointDir(const std::string &dir) {
  fs::path path(dir);
  std::string doomed = dir;
  try {
    std::string aside =
        makeTempDir(path.parent_path().string(),
                    kTmpPrefix + path.filename().string() + "-removed-");
    if (::rename(dir.c_str(), aside.c_str()) == 0)
      doomed = aside;
    else
      ::rmdir(aside.c_str());
  } catch (const CheckpointError &) {
    // Removed in place below.
  }
  ::unlink(joinPath(doomed, kManifestName).c_str());
  std::error_code ec;
  fs::remove_all(doomed, ec);
}

/// The checks of saveCheckpointFiles on one list of files, before anything
/// is written.
static std::vector<std::string>
checkFilesToSave(const std::string &root,
                 const std::vector<const std::string *> &nameRefs,
                 const std::vector<const std::vector<HostTensor> *> &files) {
  if (nameRefs.empty())
    fail(root, "no files to save");
  std::vector<std::string> names;
  std::set<std::string> unique;
  for (const std::string *name : nameRefs) {
    if (!isPlainFileName(*name) || !endsWith(*name, kSafetensorsSuffix))
      fail(root, "cannot save a tensor file named \"" + *name +
                     "\" (a plain name ending in .safetensors)");
    if (!unique.insert(*name).second)
      fail(root, "file " + *name + " given twice");
    names.push_back(*name);
  }
  checkTensorLayout(root, names, files, findShardFiles(root, names));
  return names;
}

/// saveCheckpointFiles on borrowed names and tensors, so that the
/// single-file form copies no tensor data.
static std::string
saveFiles(const std::string &root, int64_t step,
          const std::vector<const std::string *> &nameRefs,
          const std::vector<const std::vector<HostTensor> *> &files,
          const nlohmann::json &state, int keepLast) {
  if (step < 0)
    fail(root, "negative step " + std::to_string(step));
  const std::vector<std::string> names =
      checkFilesToSave(root, nameRefs, files);
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec)
    fail(root, "cannot create the directory: " + ec.message());

  const std::string name = stepDirName(step);
  const std::string tmpDir = makeTempDir(root, kTmpPrefix + name + "-");
  try {
    std::vector<FileEntry> listed;
    for (size_t i = 0; i < names.size(); ++i) {
      const std::string path = joinPath(tmpDir, names[i]);
      writeSafetensors(path, *files[i], {{"moe.step", std::to_string(step)}});
      FileDigest digest = digestFile(path, tmpDir, names[i]);
      listed.push_back({names[i], digest.bytes, digest.sha256});
    }
    // Last: its presence marks the directory complete.
    writeManifest(tmpDir, root, step, state, listed);
    fsyncDir(tmpDir, tmpDir);
  } catch (...) {
    fs::remove_all(tmpDir, ec);
    throw;
  }
  renameDirIntoPlace(tmpDir, root, name, kTmpPrefix + name + "-old-");

  // Pruning is best-effort: the new checkpoint is already durable, and a
  // directory that cannot be removed now is removed by a later save.
  if (keepLast > 0) {
    auto dirs = listStepDirs(root);
    for (size_t i = static_cast<size_t>(keepLast); i < dirs.size(); ++i)
      if (dirs[i].first != step)
        removeCheckpointDir(dirs[i].second);
  }
  return checkpointPath(root, step);
}

std::string checkpointPath(const std::string &root, int64_t step) {
  return joinPath(root, stepDirName(step));
}

const HostTensor *Checkpoint::find(const std::string &name) const {
  for (const HostTensor &t : tensors)
    if (t.name == name)
      return &t;
  return nullptr;
}

std::string saveCheckpoint(const std::string &root, int64_t step,
                           const std::vector<HostTensor> &tensors,
                           const nlohmann::json &state, int keepLast) {
  const std::string name = kTensorsFileName;
  return saveFiles(root, step, {&name}, {&tensors}, state, keepLast);
}

std::string saveCheckpointFiles(const std::string &root, int64_t step,
                                const std::vector<CheckpointFile> &files,
                                const nlohmann::json &state, int keepLast) {
  std::vector<const std::string *> names;
  std::vector<const std::vector<HostTensor> *> tensors;
  for (const CheckpointFile &file : files) {
    names.push_back(&file.name);
    tensors.push_back(&file.tensors);
  }
  return saveFiles(root, step, names, tensors, state, keepLast);
}

Checkpoint loadCheckpoint(const std::string &dir) {
  Manifest manifest = readManifest(dir);
  // Every file is verified before any is parsed, so damage is reported as
  // damage rather than as whatever format error it happens to cause.
  for (const FileEntry &entry : manifest.files)
    verifyFile(dir, entry);

  // The tensor files: the ones ending in .safetensors (others are verified
  // but not read).
  std::vector<std::string> names;
  for (const FileEntry &entry : manifest.files)
    if (endsWith(entry.name, kSafetensorsSuffix))
      names.push_back(entry.name);
  std::vector<size_t> shards = findShardFiles(dir, names);
  std::vector<SafetensorsContents> contents;
  std::vector<const std::vector<HostTensor> *> files;
  contents.reserve(names.size());
  for (const std::string &name : names) {
    contents.push_back(readSafetensors(joinPath(dir, name)));
    files.push_back(&contents.back().tensors);
  }
  checkTensorLayout(dir, names, files, shards);

  Checkpoint checkpoint;
  checkpoint.step = manifest.step;
  checkpoint.state = std::move(manifest.state);
  checkpoint.expertShards = static_cast<int>(shards.size());
  std::vector<bool> isShard(names.size(), false);
  for (size_t i : shards)
    isShard[i] = true;
  for (size_t i = 0; i < names.size(); ++i)
    if (!isShard[i])
      for (HostTensor &t : contents[i].tensors)
        checkpoint.tensors.push_back(std::move(t));
  if (shards.empty())
    return checkpoint;
  std::vector<std::vector<HostTensor> *> byShard;
  for (size_t i : shards)
    byShard.push_back(&contents[i].tensors);
  joinShards(byShard, checkpoint.tensors);
  return checkpoint;
}

std::string latestCheckpoint(const std::string &root) {
  for (const auto &[step, dir] : listStepDirs(root)) {
    try {
      if (readManifest(dir).step == step)
        return dir;
    } catch (const CheckpointError &) {
      // Not a complete checkpoint; try the next older one.
    }
  }
  return "";
}

std::vector<std::string> checkpointDirectories(const std::string &root) {
  std::vector<std::string> dirs;
  for (auto &[step, dir] : listStepDirs(root))
    dirs.push_back(std::move(dir));
  return dirs;
}

void removeCheckpoint(const std::string &dir) { removeCheckpointDir(dir); }

std::vector<std::string> removeUnfinishedSaves(const std::string &root) {
  const std::string prefix = kTmpPrefix + std::string(kStepPrefix);
  std::vector<std::string> removed;
  std::error_code ec;
  fs::directory_iterator it(root, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.compare(0, prefix.size(), prefix) == 0)
      removed.push_back(name);
  }
  for (const std::string &name : removed)
    fs::remove_all(joinPath(root, name), ec);
  return removed;
}

} // namespace moe::rt
