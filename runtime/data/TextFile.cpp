//===- TextFile.cpp - Reading the data pipeline's input files -------------===//

#include "runtime/data/TextFile.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>
#include <stdexcept>

namespace moe::rt::data {

std::string readNonEmptyFile(const std::string &path, const char *kind) {
  auto error = [&](const std::string &what) {
    return std::runtime_error(std::string(kind) + " " + path + ": " + what);
  };
  std::FILE *file = std::fopen(path.c_str(), "rb");
  if (!file)
    throw error(std::string("cannot open (") + std::strerror(errno) + ")");
  // A device or an endless pipe (/dev/zero) is stopped at the limit, not
  // read until memory runs out.
  auto tooLarge = [&] {
    std::fclose(file);
    return error("larger than the limit of " +
                 std::to_string(kMaxTextFileBytes >> 30) +
                 " GiB for a text file");
  };
  struct stat st;
  if (::fstat(::fileno(file), &st) == 0 && S_ISREG(st.st_mode) &&
      static_cast<uint64_t>(st.st_size) > kMaxTextFileBytes)
    throw tooLarge();
  std::string text;
  char buffer[1 << 16];
  size_t got;
  while ((got = std::fread(buffer, 1, sizeof(buffer), file)) > 0) {
    if (const void *nul = std::memchr(buffer, 0, got)) {
      std::fclose(file);
      throw error("not a text file (a NUL byte at offset " +
                  std::to_string(text.size() + (static_cast<const char *>(nul) -
                                                buffer)) +
                  ")");
    }
    if (text.size() + got > kMaxTextFileBytes)
      throw tooLarge();
    try {
      text.append(buffer, got);
    } catch (const std::bad_alloc &) {
      std::fclose(file);
      throw error("out of memory after reading " +
                  std::to_string(text.size()) + " bytes");
    }
  }
  // A directory opens but fails to read (EISDIR).
  bool failed = std::ferror(file);
  int readErrno = errno;
  std::fclose(file);
  if (failed)
    throw error(std::string("cannot read (") + std::strerror(readErrno) + ")");
  if (text.empty())
    throw error("empty file");
  return text;
}

} // namespace moe::rt::data
