//===- TextFile.h - Reading the data pipeline's input files -----*- C++ -*-===//
//
// Internal to runtime/data: corpora and vocabularies are read whole.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_DATA_TEXTFILE_H
#define MOE_RUNTIME_DATA_TEXTFILE_H

#include <string>

namespace moe::rt::data {

/// The bytes of `path`; throws std::runtime_error "<kind> <path>: cannot
/// open (...)", "cannot read (...)" (e.g. a directory) or "empty file".
std::string readNonEmptyFile(const std::string &path, const char *kind);

} // namespace moe::rt::data

#endif // MOE_RUNTIME_DATA_TEXTFILE_H
