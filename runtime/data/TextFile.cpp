//===- TextFile.cpp - Reading the data pipeline's input files -------------===//

#include "runtime/data/TextFile.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace moe::rt::data {

std::string readNonEmptyFile(const std::string &path, const char *kind) {
  auto error = [&](const std::string &what) {
    return std::runtime_error(std::string(kind) + " " + path + ": " + what);
  };
  std::FILE *file = std::fopen(path.c_str(), "rb");
  if (!file)
    throw error(std::string("cannot open (") + std::strerror(errno) + ")");
  std::string text;
  char buffer[1 << 16];
  size_t got;
  while ((got = std::fread(buffer, 1, sizeof(buffer), file)) > 0)
    text.append(buffer, got);
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
