//===- Checkpoint.cpp - Atomic, verified training checkpoints -------------===//
//
// Durability follows the usual POSIX recipe: write and fsync every file,
// fsync the directory that holds them, rename it into place, fsync the
// parent. Until the rename the checkpoint only exists under a .tmp-* name,
// and checkpoint.json (the commit marker) is the last file written, so a
// reader never sees a half-written step-* directory.
//
//===----------------------------------------------------------------------===//

#include "runtime/checkpoint/Checkpoint.h"

#include <openssl/evp.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <system_error>
#include <utility>

namespace fs = std::filesystem;

namespace moe::rt {

namespace {

constexpr const char *kFormat = "moe-checkpoint/1";
constexpr const char *kManifestName = "checkpoint.json";
constexpr const char *kStepPrefix = "step-";
constexpr const char *kTmpPrefix = ".tmp-";
constexpr const char *kSafetensorsSuffix = ".safetensors";
constexpr const char *kShardPrefix = "tensors-expert-";
constexpr const char *kShardOf = "-of-";
/// More shards than any run has ranks: a bound for parsing names.
constexpr int kMaxShards = 1 << 20;

[[noreturn]] void fail(const std::string &dir, const std::string &what) {
  throw CheckpointError("checkpoint " + dir + ": " + what);
}

std::string errnoMessage(int err) {
  return std::system_category().message(err);
}

std::string join(const std::string &dir, const std::string &name) {
  return (fs::path(dir) / name).string();
}

/// "step-00000042".
std::string stepDirName(int64_t step) {
  char digits[32];
  std::snprintf(digits, sizeof(digits), "%08lld", static_cast<long long>(step));
  return kStepPrefix + std::string(digits);
}

/// The step of a directory named step-<digits>, or -1 for any other name.
int64_t parseStepDirName(const std::string &name) {
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
std::vector<std::pair<int64_t, std::string>>
listStepDirs(const std::string &root) {
  std::vector<std::pair<int64_t, std::string>> dirs;
  std::error_code ec;
  fs::directory_iterator it(root, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    int64_t step = parseStepDirName(name);
    std::error_code typeEc;
    if (step >= 0 && it->is_directory(typeEc))
      dirs.emplace_back(step, join(root, name));
  }
  std::sort(dirs.begin(), dirs.end(),
            [](const auto &a, const auto &b) { return a.first > b.first; });
  return dirs;
}

/// fsync of a directory, which makes the entries created or renamed in it
/// durable.
void fsyncDir(const std::string &dir, const std::string &errorDir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    fail(errorDir,
         "cannot open directory " + dir + " for fsync: " + errnoMessage(errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0)
    fail(errorDir,
         "fsync of directory " + dir + " failed: " + errnoMessage(err));
}

/// Writes `text` to a new file at `path`, fsyncs and closes it.
void writeFileSynced(const std::string &path, const std::string &text,
                     const std::string &errorDir) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    fail(errorDir, "cannot create " + path + ": " + errnoMessage(errno));
  const char *in = text.data();
  size_t n = text.size();
  while (n > 0) {
    ssize_t put = ::write(fd, in, n);
    if (put < 0 && errno == EINTR)
      continue;
    if (put < 0) {
      int err = errno;
      ::close(fd);
      fail(errorDir, "write error on " + path + ": " + errnoMessage(err));
    }
    in += put;
    n -= static_cast<size_t>(put);
  }
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    fail(errorDir, "fsync of " + path + " failed: " + errnoMessage(err));
  }
  if (::close(fd) != 0)
    fail(errorDir, "close of " + path + " failed: " + errnoMessage(errno));
}

/// Size and lowercase-hex SHA-256 of a file, read in one streaming pass.
struct FileDigest {
  uint64_t bytes = 0;
  std::string sha256;
};

FileDigest digestFile(const std::string &path, const std::string &errorDir,
                      const std::string &label) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    fail(errorDir, label + ": cannot open: " + errnoMessage(errno));
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX *)> ctx(EVP_MD_CTX_new(),
                                                          EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    ::close(fd);
    fail(errorDir, label + ": cannot initialize SHA-256");
  }
  FileDigest digest;
  std::vector<unsigned char> buffer(1 << 20);
  while (true) {
    ssize_t got = ::read(fd, buffer.data(), buffer.size());
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0) {
      int err = errno;
      ::close(fd);
      fail(errorDir, label + ": read error: " + errnoMessage(err));
    }
    if (got == 0)
      break;
    EVP_DigestUpdate(ctx.get(), buffer.data(), static_cast<size_t>(got));
    digest.bytes += static_cast<uint64_t>(got);
  }
  ::close(fd);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdLen = 0;
  if (EVP_DigestFinal_ex(ctx.get(), md, &mdLen) != 1)
    fail(errorDir, label + ": SHA-256 failed");
  static const char kHex[] = "0123456789abcdef";
  for (unsigned int i = 0; i < mdLen; ++i) {
    digest.sha256 += kHex[md[i] >> 4];
    digest.sha256 += kHex[md[i] & 15];
  }
  return digest;
}

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

bool isLowerHex(const std::string &s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

/// A plain name inside the checkpoint directory: the manifest must not be
/// able to point a load outside it.
bool isPlainFileName(const std::string &name) {
  return !name.empty() && name != "." && name != ".." &&
         name != kManifestName && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

/// checkpoint.json nests the caller's state; deeper is refused (see
/// parseJsonStrict).
constexpr int kMaxManifestDepth = 256;

Manifest readManifest(const std::string &dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    fail(dir, "no such directory");
  const std::string path = join(dir, kManifestName);
  if (::stat(path.c_str(), &st) != 0)
    fail(dir, std::string("missing ") + kManifestName +
                  " (not a checkpoint, or an incomplete one)");
  if (!S_ISREG(st.st_mode))
    fail(dir, std::string(kManifestName) + " is not a regular file");

  std::string text;
  {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      fail(dir, std::string(kManifestName) +
                    ": cannot open: " + errnoMessage(errno));
    char buffer[65536];
    while (true) {
      ssize_t got = ::read(fd, buffer, sizeof(buffer));
      if (got < 0 && errno == EINTR)
        continue;
      if (got < 0) {
        int err = errno;
        ::close(fd);
        fail(dir,
             std::string(kManifestName) + ": read error: " + errnoMessage(err));
      }
      if (got == 0)
        break;
      text.append(buffer, static_cast<size_t>(got));
    }
    ::close(fd);
  }

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

/// Checks one listed file's size, then its SHA-256.
void verifyFile(const std::string &dir, const FileEntry &entry) {
  const std::string path = join(dir, entry.name);
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

/// Deletes a step directory, its commit marker first so that an interrupted
/// removal never leaves something that looks like a checkpoint.
void removeCheckpointDir(const std::string &dir) {
  ::unlink(join(dir, kManifestName).c_str());
  std::error_code ec;
  fs::remove_all(dir, ec);
}

/// A fresh, empty, uniquely named directory "<root>/<prefix>XXXXXX".
std::string makeTempDir(const std::string &root, const std::string &prefix) {
  std::string pattern = join(root, prefix + "XXXXXX");
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (!::mkdtemp(buffer.data()))
    fail(root, "cannot create a temporary directory: " + errnoMessage(errno));
  return buffer.data();
}

bool endsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// A decimal number in [0, kMaxShards] without leading zeros (one spelling
/// per shard, so two names never mean the same shard), or -1.
int parseShardNumber(const std::string &digits) {
  if (digits.empty() || digits.size() > 7 ||
      (digits.size() > 1 && digits[0] == '0'))
    return -1;
  int value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9')
      return -1;
    value = value * 10 + (c - '0');
  }
  return value <= kMaxShards ? value : -1;
}

/// Shard `shard` of `shards`; shard < 0 for a file that is not a shard.
struct ShardName {
  int shard = -1;
  int shards = 0;
};

/// Parses tensors-expert-<r>-of-<R>.safetensors. A name with the shard
/// prefix that does not parse is an error rather than a plain file: its
/// tensors would otherwise load unsharded.
ShardName parseShardName(const std::string &dir, const std::string &name) {
  const std::string prefix = kShardPrefix, suffix = kSafetensorsSuffix;
  if (name.compare(0, prefix.size(), prefix) != 0)
    return {};
  ShardName parsed;
  if (endsWith(name, suffix) && name.size() > prefix.size() + suffix.size()) {
    std::string middle =
        name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
    size_t of = middle.find(kShardOf);
    if (of != std::string::npos) {
      parsed.shard = parseShardNumber(middle.substr(0, of));
      parsed.shards = parseShardNumber(
          middle.substr(of + std::char_traits<char>::length(kShardOf)));
    }
  }
  if (parsed.shard < 0 || parsed.shards < 1 || parsed.shard >= parsed.shards)
    fail(dir, name + ": not a valid expert shard name (expected " +
                  kShardPrefix + "<r>-of-<R>" + kSafetensorsSuffix +
                  " with r < R)");
  return parsed;
}

/// The indices into `names` of the expert shard files, by shard; empty when
/// there are none. Fails unless they are the complete set of one save.
std::vector<size_t> findShardFiles(const std::string &dir,
                                   const std::vector<std::string> &names) {
  std::vector<size_t> byShard;
  size_t first = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    ShardName s = parseShardName(dir, names[i]);
    if (s.shard < 0)
      continue;
    if (byShard.empty()) {
      byShard.assign(static_cast<size_t>(s.shards), names.size());
      first = i;
    } else if (static_cast<size_t>(s.shards) != byShard.size()) {
      fail(dir, names[i] + " and " + names[first] +
                    " are expert shards of different saves (" +
                    std::to_string(s.shards) + " and " +
                    std::to_string(byShard.size()) + " shards)");
    }
    // Names are unique and spelt one way, so each shard appears once.
    byShard[static_cast<size_t>(s.shard)] = i;
  }
  for (size_t r = 0; r < byShard.size(); ++r)
    if (byShard[r] == names.size())
      fail(dir, "missing expert shard " + std::to_string(r) + " of " +
                    std::to_string(byShard.size()) + " (" +
                    expertShardFileName(static_cast<int>(r),
                                        static_cast<int>(byShard.size())) +
                    ")");
  return byShard;
}

std::string shapeText(const std::vector<int64_t> &shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

/// Checks that the tensors of the files combine into one checkpoint: a
/// tensor of a plain file appears in no other file, and every shard file
/// holds the same tensors (not 0-d) with the same dtype and shape as shard
/// 0's. `files[i]` holds the tensors of `names[i]`; `shards` is
/// findShardFiles(names).
void checkTensorLayout(
    const std::string &dir, const std::vector<std::string> &names,
    const std::vector<const std::vector<HostTensor> *> &files,
    const std::vector<size_t> &shards) {
  std::vector<bool> isShard(names.size(), false);
  for (size_t i : shards)
    isShard[i] = true;
  std::map<std::string, size_t> owner; // tensor name -> file index
  for (size_t i = 0; i < names.size(); ++i) {
    if (isShard[i])
      continue;
    for (const HostTensor &t : *files[i]) {
      auto [it, inserted] = owner.emplace(t.name, i);
      if (!inserted)
        fail(dir, names[i] + ": tensor " + t.name + " also appears in " +
                      names[it->second]);
    }
  }
  if (shards.empty())
    return;
  const std::string &firstName = names[shards[0]];
  std::map<std::string, const HostTensor *> reference;
  for (const HostTensor &t : *files[shards[0]]) {
    auto it = owner.find(t.name);
    if (it != owner.end())
      fail(dir, firstName + ": tensor " + t.name + " also appears in " +
                    names[it->second]);
    if (t.shape.empty())
      fail(dir, firstName + ": tensor " + t.name +
                    " is 0-d and cannot be an expert shard");
    if (t.shape[0] > std::numeric_limits<int64_t>::max() /
                         static_cast<int64_t>(shards.size()))
      fail(dir, firstName + ": tensor " + t.name +
                    ": dim 0 overflows when the shards are concatenated");
    reference.emplace(t.name, &t);
  }
  for (size_t r = 1; r < shards.size(); ++r) {
    const std::string &name = names[shards[r]];
    std::set<std::string> seen;
    for (const HostTensor &t : *files[shards[r]]) {
      auto it = reference.find(t.name);
      if (it == reference.end())
        fail(dir, name + ": tensor " + t.name + " is not in " + firstName);
      const HostTensor &ref = *it->second;
      if (t.dtype != ref.dtype)
        fail(dir, name + ": tensor " + t.name + " is " + t.dtype + " but " +
                      ref.dtype + " in " + firstName);
      // Equal slices: the shards are [r n/R, (r+1) n/R) of one tensor.
      if (t.shape != ref.shape)
        fail(dir, name + ": tensor " + t.name + " has shape " +
                      shapeText(t.shape) + " but " + shapeText(ref.shape) +
                      " in " + firstName);
      seen.insert(t.name);
    }
    for (const auto &[tensor, ref] : reference)
      if (!seen.count(tensor))
        fail(dir,
             name + ": no tensor " + tensor + " (it is in " + firstName + ")");
  }
}

/// The checks of saveCheckpointFiles on one list of files, before anything
/// is written.
std::vector<std::string>
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
std::string saveFiles(const std::string &root, int64_t step,
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
  const std::string finalDir = join(root, name);
  const std::string tmpDir = makeTempDir(root, kTmpPrefix + name + "-");
  try {
    nlohmann::json listed = nlohmann::json::array();
    for (size_t i = 0; i < names.size(); ++i) {
      const std::string path = join(tmpDir, names[i]);
      writeSafetensors(path, *files[i], {{"moe.step", std::to_string(step)}});
      FileDigest digest = digestFile(path, tmpDir, names[i]);
      listed.push_back({{"name", names[i]},
                        {"bytes", digest.bytes},
                        {"sha256", digest.sha256}});
    }
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
    // Refuse now what loadCheckpoint would refuse later.
    nlohmann::json reparsed;
    std::string error;
    if (!parseJsonStrict(text, kMaxManifestDepth, reparsed, error))
      fail(root, "the state cannot be stored: " + error);
    // Last: its presence marks the directory complete.
    writeFileSynced(join(tmpDir, kManifestName), text, tmpDir);
    fsyncDir(tmpDir, tmpDir);
  } catch (...) {
    fs::remove_all(tmpDir, ec);
    throw;
  }

  // Replacing a checkpoint of the same step: move the old one aside under a
  // .tmp-* name (rename may replace an empty directory), so at every moment
  // step-N is either the old checkpoint, absent, or the new one.
  std::string oldDir;
  struct stat st;
  if (::lstat(finalDir.c_str(), &st) == 0) {
    try {
      oldDir = makeTempDir(root, kTmpPrefix + name + "-old-");
    } catch (...) {
      fs::remove_all(tmpDir, ec);
      throw;
    }
    if (::rename(finalDir.c_str(), oldDir.c_str()) != 0) {
      int err = errno;
      fs::remove_all(tmpDir, ec);
      ::rmdir(oldDir.c_str());
      fail(root,
           "cannot move the existing " + name + " aside: " + errnoMessage(err));
    }
  }
  if (::rename(tmpDir.c_str(), finalDir.c_str()) != 0) {
    int err = errno;
    if (!oldDir.empty())
      ::rename(oldDir.c_str(), finalDir.c_str());
    fs::remove_all(tmpDir, ec);
    fail(root,
         "cannot rename " + tmpDir + " to " + name + ": " + errnoMessage(err));
  }
  fsyncDir(root, root);
  if (!oldDir.empty()) {
    fs::remove_all(oldDir, ec);
    // The old data is gone either way; a failed fsync here loses nothing.
    try {
      fsyncDir(root, root);
    } catch (const CheckpointError &) {
    }
  }

  // Pruning is best-effort: the new checkpoint is already durable, and a
  // directory that cannot be removed now is removed by a later save.
  if (keepLast > 0) {
    auto dirs = listStepDirs(root);
    for (size_t i = static_cast<size_t>(keepLast); i < dirs.size(); ++i)
      if (dirs[i].first != step)
        removeCheckpointDir(dirs[i].second);
  }
  return finalDir;
}

} // namespace

const HostTensor *Checkpoint::find(const std::string &name) const {
  for (const HostTensor &t : tensors)
    if (t.name == name)
      return &t;
  return nullptr;
}

std::string expertShardFileName(int shard, int shards) {
  return kShardPrefix + std::to_string(shard) + kShardOf +
         std::to_string(shards) + kSafetensorsSuffix;
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
    contents.push_back(readSafetensors(join(dir, name)));
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
  // The global tensors: the shards' slices of dim 0 back to back in rank
  // order (dim 0 is outermost, so each slice is one contiguous block).
  std::vector<std::map<std::string, HostTensor *>> byName(shards.size());
  for (size_t r = 0; r < shards.size(); ++r)
    for (HostTensor &t : contents[shards[r]].tensors)
      byName[r].emplace(t.name, &t);
  for (const HostTensor &first : contents[shards[0]].tensors) {
    HostTensor global;
    global.name = first.name;
    global.dtype = first.dtype;
    global.shape = first.shape;
    global.shape[0] *= static_cast<int64_t>(shards.size());
    global.data.reserve(first.data.size() * shards.size());
    for (size_t r = 0; r < shards.size(); ++r) {
      HostTensor &slice = *byName[r].at(first.name);
      global.data.insert(global.data.end(), slice.data.begin(),
                         slice.data.end());
      // Release each slice once it is copied: the checkpoint holds the
      // tensors once.
      std::vector<uint8_t>().swap(slice.data);
    }
    checkpoint.tensors.push_back(std::move(global));
  }
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

} // namespace moe::rt
