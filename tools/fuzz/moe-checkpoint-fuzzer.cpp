//===- moe-checkpoint-fuzzer.cpp - Fuzz the checkpoint reader -------------===//
//
// Each input is a checkpoint directory in the format `head` prints files
// in: a line "==> NAME <==" before the bytes of each file and a newline
// after them, which is not part of the file. The files are written to a
// step directory and loaded with loadCheckpoint, as moe-run resumes (whole,
// and as one of two ranks). Since the loader verifies every file's SHA-256
// before parsing it, random bytes would rarely get past checkpoint.json; so
// the directory is loaded twice, as given and with the sizes and hashes in
// checkpoint.json corrected, which lets the fuzzer reach the safetensors
// parser and the joining of expert shards. Every safetensors file is also
// parsed directly. A bad checkpoint must end in CheckpointError.
//
//===----------------------------------------------------------------------===//

#include "runtime/checkpoint/Checkpoint.h"
#include "runtime/checkpoint/CheckpointManifest.h"
#include "runtime/checkpoint/DurableFile.h"
#include "runtime/checkpoint/Safetensors.h"

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace fs = std::filesystem;
using namespace moe::rt;

namespace {

constexpr const char kHeaderOpen[] = "==> ";
constexpr const char kHeaderClose[] = " <==\n";

using Files = std::vector<std::pair<std::string, std::string>>;

/// The files of `input`: each "==> NAME <==" line starts one.
Files splitFiles(const std::string &input) {
  Files files;
  size_t at = input.compare(0, 4, kHeaderOpen) == 0
                  ? 0
                  : input.find(std::string("\n") + kHeaderOpen);
  while (at != std::string::npos) {
    size_t nameBegin = at + (input[at] == '\n') + 4;
    size_t nameEnd = input.find(kHeaderClose, nameBegin);
    if (nameEnd == std::string::npos)
      break;
    size_t begin = nameEnd + 5;
    size_t next = input.find(std::string("\n") + kHeaderOpen, begin);
    // Every file ends in the newline before the next header or the end.
    size_t end = next;
    if (end == std::string::npos)
      end = input.size() - (input.size() > begin && input.back() == '\n');
    files.emplace_back(input.substr(nameBegin, nameEnd - nameBegin),
                       input.substr(begin, end - begin));
    at = next;
  }
  return files;
}

std::string root;

/// Writes `files` into a fresh step directory under `root`; names that are
/// not plain file names are skipped (the reader never opens them).
std::string writeDirectory(const Files &files) {
  std::string dir = root + "/step-00000007";
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir);
  for (const auto &[name, bytes] : files) {
    if (name.empty() || name.size() > 200 ||
        name.find_first_of(std::string("/\0", 2)) != std::string::npos ||
        name == "." || name == "..")
      continue;
    std::ofstream(dir + "/" + name, std::ios::binary) << bytes;
  }
  return dir;
}

/// Loads `dir` as moe-run does: whole (one rank), as rank 1 of 2 (only
/// the expert shard files holding its rows) and for its step.
void load(const std::string &dir) {
  for (auto [slice, slices] : {std::pair(0, 1), std::pair(1, 2)}) {
    try {
      Checkpoint checkpoint = loadCheckpoint(dir, slice, slices);
      for (const HostTensor &tensor : checkpoint.tensors)
        (void)checkpoint.find(tensor.name);
    } catch (const CheckpointError &e) {
      // To see why a seed does not load.
      if (std::getenv("MOE_FUZZ_VERBOSE"))
        std::fprintf(stderr, "%s\n", e.what());
    }
  }
  try {
    (void)checkpointStep(dir);
  } catch (const CheckpointError &) {
  }
  (void)latestCheckpoint(root);
}

/// checkpoint.json with the size and SHA-256 of every listed file that
/// exists in `dir` corrected; empty when there is nothing to correct.
std::string correctHashes(const std::string &dir, const std::string &text) {
  nlohmann::json json;
  std::string error;
  if (!parseJsonStrict(text, 64, json, error) || !json.is_object())
    return "";
  auto files = json.find("files");
  if (files == json.end() || !files->is_array())
    return "";
  bool changed = false;
  for (nlohmann::json &entry : *files) {
    if (!entry.is_object() || !entry.contains("name") ||
        !entry["name"].is_string())
      continue;
    std::string name = entry["name"].get<std::string>();
    if (!checkpoint::isPlainFileName(name) ||
        !fs::is_regular_file(dir + "/" + name))
      continue;
    checkpoint::FileDigest digest =
        checkpoint::digestFile(dir + "/" + name, dir, name);
    entry["bytes"] = digest.bytes;
    entry["sha256"] = digest.sha256;
    changed = true;
  }
  if (!changed)
    return "";
  try {
    return json.dump();
  } catch (const nlohmann::json::exception &) {
    return ""; // Not UTF-8.
  }
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  // In memory where there is a tmpfs: each input writes a directory.
  std::string pattern =
      std::string(fs::is_directory("/dev/shm") ? "/dev/shm" : "/tmp") +
      "/moe-checkpoint-fuzzer-XXXXXX";
  if (!mkdtemp(pattern.data())) {
    std::perror("mkdtemp");
    std::exit(1);
  }
  root = pattern;
  std::atexit([] {
    std::error_code ec;
    fs::remove_all(root, ec);
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Files files =
      splitFiles(std::string(reinterpret_cast<const char *>(data), size));
  for (const auto &[name, bytes] : files) {
    try {
      (void)parseSafetensors(bytes.data(), bytes.size(), name);
    } catch (const CheckpointError &) {
    }
  }
  std::string dir = writeDirectory(files);
  load(dir);
  for (const auto &[name, bytes] : files) {
    if (name != checkpoint::kManifestName)
      continue;
    std::string corrected = correctHashes(dir, bytes);
    if (corrected.empty())
      break;
    std::ofstream(dir + "/" + name, std::ios::binary | std::ios::trunc)
        << corrected;
    load(dir);
    break;
  }
  return 0;
}
