//===- DurableFile.h - Crash-safe files and directories ---------*- C++ -*-===//
//
// Internal to moe_checkpoint. Durability follows the usual POSIX recipe:
// write and fsync every file, fsync the directory that holds them, rename it
// into place, fsync the parent. Every failure throws CheckpointError
// "checkpoint <dir>: <what>", naming the directory the caller passes.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_CHECKPOINT_DURABLEFILE_H
#define MOE_RUNTIME_CHECKPOINT_DURABLEFILE_H

#include <cstdint>
#include <string>

namespace moe::rt::checkpoint {

/// Throws CheckpointError("checkpoint <dir>: <what>").
[[noreturn]] void fail(const std::string &dir, const std::string &what);

/// The text of an errno value.
std::string errnoMessage(int err);

/// `dir`/`name`.
std::string joinPath(const std::string &dir, const std::string &name);

bool endsWith(const std::string &s, const std::string &suffix);

/// fsync of a directory, which makes the entries created or renamed in it
/// durable.
void fsyncDir(const std::string &dir, const std::string &errorDir);

/// Writes `text` to a new file at `path`, fsyncs and closes it.
void writeFileSynced(const std::string &path, const std::string &text,
                     const std::string &errorDir);

/// The whole content of the file at `path`; errors name it `label`.
std::string readFile(const std::string &path, const std::string &errorDir,
                     const std::string &label);

/// Size and lowercase-hex SHA-256 of a file, read in one streaming pass.
struct FileDigest {
  uint64_t bytes = 0;
  std::string sha256;
};

/// The digest of the file at `path`; errors name it `label`.
FileDigest digestFile(const std::string &path, const std::string &errorDir,
                      const std::string &label);

/// A fresh, empty, uniquely named directory "<root>/<prefix>XXXXXX".
std::string makeTempDir(const std::string &root, const std::string &prefix);

/// Renames the complete directory `tmpDir` to <root>/<name> and fsyncs
/// `root`. An existing <root>/<name> is first moved aside to a fresh
/// "<root>/<asidePrefix>XXXXXX" (rename may only replace an empty
/// directory), so at every moment <root>/<name> is the old directory, absent,
/// or the new one; it is removed once the new one is in place. When the
/// rename fails, `tmpDir` is removed and the old directory put back.
void renameDirIntoPlace(const std::string &tmpDir, const std::string &root,
                        const std::string &name,
                        const std::string &asidePrefix);

} // namespace moe::rt::checkpoint

#endif // MOE_RUNTIME_CHECKPOINT_DURABLEFILE_H
