//===- TextFile.h - Reading the data pipeline's input files -----*- C++ -*-===//
//
// Internal to runtime/data: corpora and vocabularies are read whole.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_DATA_TEXTFILE_H
#define MOE_RUNTIME_DATA_TEXTFILE_H

#include <cstdint>
#include <string>

namespace moe::rt::data {

/// The largest file read: corpora and vocabularies are held in memory.
inline constexpr uint64_t kMaxTextFileBytes = uint64_t(4) << 30;

/// The bytes of `path`; throws std::runtime_error "<kind> <path>: cannot
/// open (...)", "cannot read (...)" (e.g. a directory), "empty file", "not
/// a text file" (a NUL byte) or "larger than the limit" (kMaxTextFileBytes).
std::string readNonEmptyFile(const std::string &path, const char *kind);

} // namespace moe::rt::data

#endif // MOE_RUNTIME_DATA_TEXTFILE_H
