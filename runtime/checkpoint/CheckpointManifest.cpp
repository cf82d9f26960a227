//===- CheckpointManifest.cpp - checkpoint.json ---------------------------===//

#include "runtime/checkpoint/CheckpointManifest.h"

#include "runtime/checkpoint/DurableFile.h"
#include "runtime/checkpoint/Safetensors.h"

#include <sys/stat.h>

#include <algorithm>
#include <limits>
#include <set>

namespace moe::rt::checkpoint {

static constexpr const char *kFormat = "moe-checkpoint/1";

/// checkpoint.json nests the caller's state; deeper is refused (see
/// parseJsonStrict).
static constexpr int kMaxManifestDepth = 256;

static bool isLowerHex(const std::string &s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

bool isPlainFileName(const std::string &name) {
  return !name.empty() && name != "." && name != ".." &&
         name != kManifestName && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

Manifest readManifest(const std::string &dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    fail(dir, "no such directory");
  const std::string path = joinPath(dir, kManifestName);
  if (::stat(path.c_str(), &st) != 0)
    fail(dir, std::string("missing ") + kManifestName +
                  " (not a checkpoint, or an incomplete one)");
  if (!S_ISREG(st.st_mode))
    fail(dir, std::string(kManifestName) + " is not a regular file");
  std::string text = readFile(path, dir, kManifestName);

  const std::string what = std::string(kManifestName) + ": ";
  nlohmann::json json;
  std::string error;
  if (!parseJsonStrict(text, kMaxManifestDepth, json, error))
    fail(dir, what + "malformed JSON: " + error);
  if (!json.is_object())
    fail(dir, what + "not a JSON object");
  auto format = json.find("format");
  if (format == json.end() || !format->is_string())
    fail(dir, what + "missing \"format\"");
  if (format->get<std::string>() != kFormat)
    fail(dir, what + "unsupported format " + format->dump() + " (expected " +
                  kFormat + ")");

  Manifest manifest;
  auto step = json.find("step");
  if (step == json.end() || !step->is_number_integer())
    fail(dir, what + "missing or non-integer \"step\"");
  if (step->is_number_unsigned()
          ? step->get<uint64_t>() >
                static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
          : step->get<int64_t>() < 0)
    fail(dir, what + "\"step\" out of range");
  manifest.step = step->get<int64_t>();

  auto state = json.find("state");
  if (state == json.end())
    fail(dir, what + "missing \"state\"");
  manifest.state = std::move(*state);

  auto files = json.find("files");
  if (files == json.end() || !files->is_array())
    fail(dir, what + "missing or non-array \"files\"");
  if (files->empty())
    fail(dir, what + "lists no files");
  std::set<std::string> names;
  for (const auto &f : *files) {
    if (!f.is_object())
      fail(dir, what + "a \"files\" entry is not an object");
    auto name = f.find("name");
    auto bytes = f.find("bytes");
    auto sha = f.find("sha256");
    if (name == f.end() || !name->is_string() ||
        !isPlainFileName(name->get<std::string>()))
      fail(dir, what + "a \"files\" entry has no valid \"name\"");
    FileEntry entry;
    entry.name = name->get<std::string>();
    if (!names.insert(entry.name).second)
      fail(dir, what + "file " + entry.name + " listed twice");
    if (bytes == f.end() || !bytes->is_number_unsigned())
      fail(dir, what + entry.name + ": missing or invalid \"bytes\"");
    entry.bytes = bytes->get<uint64_t>();
    if (sha == f.end() || !sha->is_string() ||
        sha->get<std::string>().size() != 64 ||
        !isLowerHex(sha->get<std::string>()))
      fail(dir,
           what + entry.name + ": \"sha256\" is not 64 lowercase hex digits");
    entry.sha256 = sha->get<std::string>();
    manifest.files.push_back(std::move(entry));
  }
  return manifest;
}

void verifyFile(const std::string &dir, const FileEntry &entry) {
  const std::string path = joinPath(dir, entry.name);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    fail(dir, entry.name + ": missing");
  if (!S_ISREG(st.st_mode))
    fail(dir, entry.name + ": not a regular file");
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < entry.bytes)
    fail(dir, entry.name + ": truncated: " + std::to_string(size) +
                  " bytes, expected " + std::to_string(entry.bytes));
  if (size > entry.bytes)
    fail(dir, entry.name + ": " + std::to_string(size) + " bytes, expected " +
                  std::to_string(entry.bytes) + " (file modified?)");
  FileDigest digest = digestFile(path, dir, entry.name);
  if (digest.bytes != entry.bytes)
    fail(dir, entry.name + ": changed while being verified");
  if (digest.sha256 != entry.sha256)
    fail(dir, entry.name + ": SHA-256 mismatch (file corrupt or modified)");
}

void writeManifest(const std::string &dir, const std::string &root,
                   int64_t step, const nlohmann::json &state,
                   const std::vector<FileEntry> &files) {
  nlohmann::json listed = nlohmann::json::array();
  for (const FileEntry &entry : files)
    listed.push_back({{"name", entry.name},
                      {"bytes", entry.bytes},
                      {"sha256", entry.sha256}});
  nlohmann::json manifest = {{"format", kFormat},
                             {"step", step},
                             {"state", state},
                             {"files", std::move(listed)}};
  std::string text;
  try {
    text = manifest.dump(2) + "\n";
  } catch (const nlohmann::json::exception &) {
    fail(root, "the state holds a string that is not valid UTF-8");
  }
  // Refuse now what readManifest would refuse later.
  nlohmann::json reparsed;
  std::string error;
  if (!parseJsonStrict(text, kMaxManifestDepth, reparsed, error))
    fail(root, "the state cannot be stored: " + error);
  writeFileSynced(joinPath(dir, kManifestName), text, dir);
}

} // namespace moe::rt::checkpoint
