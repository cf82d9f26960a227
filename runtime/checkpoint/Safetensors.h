//===- Safetensors.h - Reading and writing the safetensors format -*- C++
//-*-===//
//
// The file format of https://github.com/huggingface/safetensors:
//
//   u64 N (little-endian) | N bytes of JSON header | raw little-endian data
//
// The header maps each tensor name to {"dtype", "shape", "data_offsets":
// [begin, end]} (offsets relative to the start of the data) and may hold a
// "__metadata__" object of string to string. The writer pads the header with
// spaces so the data starts 8-byte aligned.
//
// The reader trusts nothing: every length, dimension and offset is checked
// against the file before anything is allocated, so a corrupt or fuzzed file
// gives a CheckpointError, never a crash or a huge allocation. Like the
// reference implementation, it requires the tensors to tile the data region
// exactly: no overlap, no unreferenced bytes, no trailing bytes.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_CHECKPOINT_SAFETENSORS_H
#define MOE_RUNTIME_CHECKPOINT_SAFETENSORS_H

#include <nlohmann/json_fwd.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace moe::rt {

/// A corrupt, incomplete or unwritable checkpoint or safetensors file. The
/// message is one line naming the file and what is wrong with it.
class CheckpointError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// One tensor in host memory. `data` holds the raw little-endian bytes,
/// product(shape) * dtypeSize(dtype) of them; an empty shape is a 0-d scalar.
struct HostTensor {
  std::string name;
  std::string dtype; ///< "F32", "I32" or "I64"
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
};

/// The tensors and "__metadata__" of a safetensors file.
struct SafetensorsContents {
  /// In the order of the file's header (the writer's order for our files).
  std::vector<HostTensor> tensors;
  std::map<std::string, std::string> metadata;
};

/// Bytes per element of a supported dtype ("F32", "I32", "I64"); 0 for any
/// other string.
size_t dtypeSize(const std::string &dtype);

/// Writes `tensors` and `metadata` to `path` (created or truncated), then
/// fsyncs and closes it. Throws CheckpointError for an invalid tensor
/// (unknown dtype, negative dimension, data size not matching the shape,
/// duplicate or reserved name) before creating the file, or for an I/O error.
void writeSafetensors(const std::string &path,
                      const std::vector<HostTensor> &tensors,
                      const std::map<std::string, std::string> &metadata = {});

/// Reads and validates the safetensors file at `path`. Throws
/// CheckpointError naming the file on any I/O error or format violation.
SafetensorsContents readSafetensors(const std::string &path);

/// Like readSafetensors, from `size` bytes in memory; `name` stands for the
/// file in error messages.
SafetensorsContents parseSafetensors(const void *bytes, size_t size,
                                     const std::string &name);

/// Parses JSON `text` as the readers of this module need: besides what the
/// JSON library rejects, a NUL byte, a duplicate key in any object and
/// containers nested deeper than `maxDepth` are errors (the library copies
/// and destroys values recursively, so a corrupt "[[[[..." could otherwise
/// overflow the stack). Returns false with a one-line `error` on failure.
/// `topLevelKeys`, if given, receives the keys of a top-level object in
/// file order.
bool parseJsonStrict(const std::string &text, int maxDepth, nlohmann::json &out,
                     std::string &error,
                     std::vector<std::string> *topLevelKeys = nullptr);

} // namespace moe::rt

#endif // MOE_RUNTIME_CHECKPOINT_SAFETENSORS_H
