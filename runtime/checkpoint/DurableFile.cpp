//===- DurableFile.cpp - Crash-safe files and directories -----------------===//

#include "runtime/checkpoint/DurableFile.h"

#include "runtime/checkpoint/Safetensors.h"

#include <openssl/evp.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <system_error>
#include <vector>

namespace fs = std::filesystem;

namespace moe::rt::checkpoint {

void fail(const std::string &dir, const std::string &what) {
  throw CheckpointError("checkpoint " + dir + ": " + what);
}

std::string errnoMessage(int err) {
  return std::system_category().message(err);
}

std::string joinPath(const std::string &dir, const std::string &name) {
  return (fs::path(dir) / name).string();
}

bool endsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

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

/// Calls `consume(bytes, n)` for each block of the file at `path`, in order.
template <typename Consume>
static void readBlocks(const std::string &path, const std::string &errorDir,
                       const std::string &label, size_t blockSize,
                       Consume consume) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    fail(errorDir, label + ": cannot open: " + errnoMessage(errno));
  std::vector<unsigned char> buffer(blockSize);
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
    consume(buffer.data(), static_cast<size_t>(got));
  }
  ::close(fd);
}

std::string readFile(const std::string &path, const std::string &errorDir,
                     const std::string &label) {
  std::string text;
  readBlocks(path, errorDir, label, 1 << 16,
             [&](const unsigned char *bytes, size_t n) {
               text.append(reinterpret_cast<const char *>(bytes), n);
             });
  return text;
}

FileDigest digestFile(const std::string &path, const std::string &errorDir,
                      const std::string &label) {
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX *)> ctx(EVP_MD_CTX_new(),
                                                          EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
    fail(errorDir, label + ": cannot initialize SHA-256");
  FileDigest digest;
  readBlocks(path, errorDir, label, 1 << 20,
             [&](const unsigned char *bytes, size_t n) {
               EVP_DigestUpdate(ctx.get(), bytes, n);
               digest.bytes += n;
             });
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

std::string makeTempDir(const std::string &root, const std::string &prefix) {
  std::string pattern = joinPath(root, prefix + "XXXXXX");
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (!::mkdtemp(buffer.data()))
    fail(root, "cannot create a temporary directory: " + errnoMessage(errno));
  return buffer.data();
}

void renameDirIntoPlace(const std::string &tmpDir, const std::string &root,
                        const std::string &name,
                        const std::string &asidePrefix) {
  const std::string finalDir = joinPath(root, name);
  std::error_code ec;
  std::string oldDir;
  struct stat st;
  if (::lstat(finalDir.c_str(), &st) == 0) {
    try {
      oldDir = makeTempDir(root, asidePrefix);
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
}

} // namespace moe::rt::checkpoint
