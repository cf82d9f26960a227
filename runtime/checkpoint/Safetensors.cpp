//===- Safetensors.cpp - Reading and writing the safetensors format -------===//
//
// The reader works on a byte source (a file read with pread, or memory) so
// the same validation serves files and in-memory buffers. It reads the 8-byte
// length, then the header, validates every entry against the file size, and
// only then allocates and reads the tensor data; nothing it allocates exceeds
// the size of the file.
//
//===----------------------------------------------------------------------===//

#include "runtime/checkpoint/Safetensors.h"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <set>
#include <system_error>
#include <utility>

// The data is copied between the file and HostTensor::data as-is.
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the safetensors reader and writer assume a little-endian host"
#endif

namespace moe::rt {

namespace {

using Json = nlohmann::json;

constexpr const char *kMetadataKey = "__metadata__";
constexpr uint64_t kMaxHeaderBytes = 100000000;
constexpr uint64_t kMaxDim =
    static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

[[noreturn]] void fail(const std::string &file, const std::string &what) {
  throw CheckpointError("safetensors " + file + ": " + what);
}

std::string errnoMessage(int err) {
  return std::system_category().message(err);
}

/// A JSON-quoted, escaped copy of `s`, so names with quotes or newlines keep
/// the message on one line.
std::string quote(const std::string &s) {
  return nlohmann::json(s).dump(-1, ' ', false,
                                nlohmann::json::error_handler_t::replace);
}

/// Bytes of `shape` elements of `elemSize` bytes; false when a dimension is
/// negative or the product overflows.
bool tensorBytes(const std::vector<int64_t> &shape, size_t elemSize,
                 uint64_t &bytes) {
  uint64_t count = 1;
  bool zero = false;
  for (int64_t d : shape) {
    if (d < 0)
      return false;
    zero |= d == 0;
  }
  // A zero dimension makes the product 0 whatever the others are.
  if (zero) {
    bytes = 0;
    return true;
  }
  for (int64_t d : shape)
    if (__builtin_mul_overflow(count, static_cast<uint64_t>(d), &count))
      return false;
  return !__builtin_mul_overflow(count, static_cast<uint64_t>(elemSize),
                                 &bytes);
}

/// Where the reader gets its bytes.
class ByteSource {
public:
  virtual ~ByteSource() = default;
  virtual uint64_t size() const = 0;
  /// Copies bytes [offset, offset + n), all inside size(), to `dst`.
  virtual void read(uint64_t offset, void *dst, size_t n) = 0;
};

class MemorySource : public ByteSource {
public:
  MemorySource(const void *data, size_t size)
      : base(static_cast<const uint8_t *>(data)), length(size) {}
  uint64_t size() const override { return length; }
  void read(uint64_t offset, void *dst, size_t count) override {
    if (count)
      std::memcpy(dst, base + offset, count);
  }

private:
  const uint8_t *base;
  size_t length;
};

class FileSource : public ByteSource {
public:
  explicit FileSource(const std::string &path) : file(path) {
    fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      fail(file, "cannot open: " + errnoMessage(errno));
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      int err = errno;
      ::close(fd);
      fail(file, "cannot stat: " + errnoMessage(err));
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      fail(file, "not a regular file");
    }
    length = static_cast<uint64_t>(st.st_size);
  }
  ~FileSource() override { ::close(fd); }
  FileSource(const FileSource &) = delete;
  FileSource &operator=(const FileSource &) = delete;

  uint64_t size() const override { return length; }
  void read(uint64_t offset, void *dst, size_t count) override {
    auto *out = static_cast<uint8_t *>(dst);
    while (count > 0) {
      ssize_t got = ::pread(fd, out, count, static_cast<off_t>(offset));
      if (got < 0 && errno == EINTR)
        continue;
      if (got < 0)
        fail(file, "read error: " + errnoMessage(errno));
      // The size came from fstat, so a short file changed under us.
      if (got == 0)
        fail(file, "unexpected end of file (file changed while reading?)");
      out += got;
      offset += static_cast<uint64_t>(got);
      count -= static_cast<size_t>(got);
    }
  }

private:
  std::string file;
  int fd = -1;
  uint64_t length = 0;
};

/// Containers nested deeper than this are refused in a header, which needs
/// 3 levels.
constexpr int kMaxHeaderDepth = 64;

/// The checks parseJsonStrict adds to the JSON library's, as a SAX pass that
/// builds nothing and stops at the first problem.
class StrictJsonChecker : public nlohmann::json_sax<Json> {
public:
  StrictJsonChecker(int depthLimit, std::vector<std::string> *keysOut)
      : maxDepth(depthLimit), topLevelKeys(keysOut) {}

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t &) override { return true; }
  bool string(string_t &) override { return true; }
  bool binary(binary_t &) override { return true; }
  bool start_object(std::size_t) override {
    keys.emplace_back();
    return open();
  }
  bool key(string_t &name) override {
    if (!keys.back().insert(name).second) {
      error = "duplicate key " + quote(name);
      return false;
    }
    if (depth == 1 && topLevelKeys)
      topLevelKeys->push_back(name);
    return true;
  }
  bool end_object() override {
    keys.pop_back();
    --depth;
    return true;
  }
  bool start_array(std::size_t) override { return open(); }
  bool end_array() override {
    --depth;
    return true;
  }
  bool parse_error(std::size_t, const std::string &,
                   const Json::exception &e) override {
    error = e.what();
    return false;
  }

  std::string error;

private:
  bool open() {
    if (++depth <= maxDepth)
      return true;
    error = "nested deeper than " + std::to_string(maxDepth) + " levels";
    return false;
  }

  int maxDepth;
  int depth = 0;
  std::vector<std::string> *topLevelKeys;
  std::vector<std::set<std::string>> keys;
};

/// The header as JSON, with `order` receiving its top-level keys in file
/// order (a std::map-based object forgets it; an ordered_json would remember
/// it but inserts by linear search, quadratic in the number of tensors).
Json parseHeaderJson(const std::string &text, const std::string &file,
                     std::vector<std::string> &order) {
  Json header;
  std::string error;
  if (!parseJsonStrict(text, kMaxHeaderDepth, header, error, &order))
    fail(file, "malformed header JSON: " + error);
  if (!header.is_object())
    fail(file, std::string("header JSON is a ") + header.type_name() +
                   ", not an object");
  return header;
}

/// Where one tensor's bytes lie in the data region.
struct Extent {
  size_t index; ///< into SafetensorsContents::tensors
  uint64_t begin, end;
};

SafetensorsContents parseSource(ByteSource &src, const std::string &file) {
  const uint64_t fileSize = src.size();
  if (fileSize < 8)
    fail(file, "file is " + std::to_string(fileSize) +
                   " bytes, shorter than the 8-byte header length");
  uint8_t lengthBytes[8];
  src.read(0, lengthBytes, 8);
  uint64_t headerSize = 0;
  for (int i = 7; i >= 0; --i)
    headerSize = headerSize << 8 | lengthBytes[i];
  if (headerSize > fileSize - 8)
    fail(file, "header length " + std::to_string(headerSize) +
                   " exceeds the file (" + std::to_string(fileSize) +
                   " bytes)");
  // The reference implementation's limit; real headers are far smaller.
  if (headerSize > kMaxHeaderBytes)
    fail(file, "header length " + std::to_string(headerSize) +
                   " exceeds the limit of " + std::to_string(kMaxHeaderBytes) +
                   " bytes");
  const uint64_t dataSize = fileSize - 8 - headerSize;

  std::string text(headerSize, '\0');
  src.read(8, text.data(), headerSize);
  std::vector<std::string> order;
  const Json header = parseHeaderJson(text, file, order);

  SafetensorsContents contents;
  std::vector<Extent> extents;
  for (const std::string &name : order) {
    auto found = header.find(name);
    if (found == header.end())
      continue;
    const Json &entry = *found;
    if (name == kMetadataKey) {
      if (!entry.is_object())
        fail(file, "__metadata__ is not an object");
      for (auto &[key, value] : entry.items()) {
        if (!value.is_string())
          fail(file,
               "__metadata__ value of " + quote(key) + " is not a string");
        contents.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    const std::string what = "tensor " + quote(name) + ": ";
    if (!entry.is_object())
      fail(file, what + "entry is not an object");
    auto dtypeIt = entry.find("dtype");
    auto shapeIt = entry.find("shape");
    auto offsetsIt = entry.find("data_offsets");
    if (dtypeIt == entry.end() || shapeIt == entry.end() ||
        offsetsIt == entry.end())
      fail(file, what + "needs \"dtype\", \"shape\" and \"data_offsets\"");

    HostTensor tensor;
    tensor.name = name;
    if (!dtypeIt->is_string())
      fail(file, what + "dtype is not a string");
    tensor.dtype = dtypeIt->get<std::string>();
    size_t elemSize = dtypeSize(tensor.dtype);
    if (elemSize == 0)
      fail(file, what + "unsupported dtype " + quote(tensor.dtype) +
                     " (expected F32, I32 or I64)");

    if (!shapeIt->is_array())
      fail(file, what + "shape is not an array");
    for (const auto &dim : *shapeIt) {
      // Negative numbers parse as number_integer, fractions and numbers
      // beyond u64 as number_float.
      if (dim.is_number_integer() && !dim.is_number_unsigned())
        fail(file, what + "negative dimension in shape");
      if (!dim.is_number_unsigned())
        fail(file, what + "shape holds a non-integer");
      uint64_t d = dim.get<uint64_t>();
      if (d > kMaxDim)
        fail(file, what + "dimension " + std::to_string(d) + " too large");
      tensor.shape.push_back(static_cast<int64_t>(d));
    }
    uint64_t bytes = 0;
    if (!tensorBytes(tensor.shape, elemSize, bytes))
      fail(file, what + "shape overflows the byte count");

    const Json &offsets = *offsetsIt;
    if (!offsets.is_array() || offsets.size() != 2 ||
        !offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
      fail(file, what + "data_offsets is not a pair of non-negative integers");
    uint64_t begin = offsets[0].get<uint64_t>();
    uint64_t end = offsets[1].get<uint64_t>();
    std::string range =
        "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
    if (begin > end)
      fail(file, what + "data_offsets " + range + " end before they begin");
    if (end > dataSize)
      fail(file, what + "data_offsets " + range +
                     " out of range (data region is " +
                     std::to_string(dataSize) + " bytes)");
    if (end - begin != bytes)
      fail(file, what + "data_offsets " + range + " span " +
                     std::to_string(end - begin) + " bytes but " +
                     tensor.dtype + " shape needs " + std::to_string(bytes));
    extents.push_back({contents.tensors.size(), begin, end});
    contents.tensors.push_back(std::move(tensor));
  }

  // The tensors must tile [0, dataSize): sorted by offset, each begins where
  // the previous ended.
  std::vector<Extent> sorted = extents;
  std::sort(sorted.begin(), sorted.end(), [](const Extent &a, const Extent &b) {
    return std::make_pair(a.begin, a.end) < std::make_pair(b.begin, b.end);
  });
  uint64_t cursor = 0;
  const Extent *previous = nullptr;
  for (const Extent &e : sorted) {
    if (e.begin < cursor)
      fail(file, "tensor " + quote(contents.tensors[e.index].name) +
                     ": data_offsets overlap those of tensor " +
                     quote(contents.tensors[previous->index].name));
    if (e.begin > cursor)
      fail(file, "data bytes [" + std::to_string(cursor) + ", " +
                     std::to_string(e.begin) + ") belong to no tensor");
    cursor = e.end;
    previous = &e;
  }
  if (cursor != dataSize)
    fail(file, std::to_string(dataSize - cursor) +
                   " trailing bytes after the last tensor");

  // Everything is in range now, so the allocations are bounded by the file.
  for (const Extent &e : extents) {
    std::vector<uint8_t> &data = contents.tensors[e.index].data;
    data.resize(e.end - e.begin);
    src.read(8 + headerSize + e.begin, data.data(), data.size());
  }
  return contents;
}

/// Writes all of [data, data + n) to `fd`.
void writeAll(int fd, const void *data, size_t n, const std::string &path) {
  auto *in = static_cast<const uint8_t *>(data);
  while (n > 0) {
    ssize_t put = ::write(fd, in, n);
    if (put < 0 && errno == EINTR)
      continue;
    if (put < 0)
      fail(path, "write error: " + errnoMessage(errno));
    in += put;
    n -= static_cast<size_t>(put);
  }
}

} // namespace

bool parseJsonStrict(const std::string &text, int maxDepth, nlohmann::json &out,
                     std::string &error,
                     std::vector<std::string> *topLevelKeys) {
  // The JSON library stops at a NUL byte as at the end of input, which would
  // let anything after one through.
  if (size_t nul = text.find('\0'); nul != std::string::npos) {
    error = "NUL byte at offset " + std::to_string(nul);
    return false;
  }
  StrictJsonChecker checker(maxDepth, topLevelKeys);
  if (!Json::sax_parse(text, &checker)) {
    error = checker.error;
    return false;
  }
  // Checked: well formed, unique keys, bounded depth.
  try {
    out = Json::parse(text);
  } catch (const Json::exception &e) {
    error = e.what();
    return false;
  }
  return true;
}

size_t dtypeSize(const std::string &dtype) {
  if (dtype == "F32" || dtype == "I32")
    return 4;
  if (dtype == "I64")
    return 8;
  return 0;
}

void writeSafetensors(const std::string &path,
                      const std::vector<HostTensor> &tensors,
                      const std::map<std::string, std::string> &metadata) {
  // Validate and build the whole header before touching the file. The text
  // is assembled entry by entry to keep the tensors in the caller's order.
  std::string text = "{";
  auto append = [&](const std::string &key, const Json &value) {
    try {
      if (text.size() > 1)
        text += ',';
      text += Json(key).dump();
      text += ':';
      text += value.dump();
    } catch (const nlohmann::json::exception &) {
      fail(path,
           "tensor name or metadata " + quote(key) + " is not valid UTF-8");
    }
  };
  if (!metadata.empty())
    append(kMetadataKey, Json(metadata));
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const HostTensor &t : tensors) {
    const std::string what = "tensor " + quote(t.name) + ": ";
    if (t.name == kMetadataKey)
      fail(path, what + "name is reserved");
    if (!names.insert(t.name).second)
      fail(path, what + "duplicate name");
    size_t elemSize = dtypeSize(t.dtype);
    if (elemSize == 0)
      fail(path, what + "unsupported dtype " + quote(t.dtype) +
                     " (expected F32, I32 or I64)");
    uint64_t bytes = 0;
    if (!tensorBytes(t.shape, elemSize, bytes))
      fail(path, what + "negative dimension or overflowing shape");
    if (bytes != t.data.size())
      fail(path, what + "holds " + std::to_string(t.data.size()) +
                     " bytes but its shape needs " + std::to_string(bytes));
    append(t.name, {{"dtype", t.dtype},
                    {"shape", t.shape},
                    {"data_offsets", {offset, offset + bytes}}});
    offset += bytes;
  }
  text += '}';
  // Pad so the data starts 8-byte aligned, as the reference writer does.
  text.append((8 - text.size() % 8) % 8, ' ');
  uint8_t lengthBytes[8];
  for (int i = 0; i < 8; ++i)
    lengthBytes[i] =
        static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));

  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    fail(path, "cannot create: " + errnoMessage(errno));
  try {
    writeAll(fd, lengthBytes, sizeof(lengthBytes), path);
    writeAll(fd, text.data(), text.size(), path);
    for (const HostTensor &t : tensors)
      writeAll(fd, t.data.data(), t.data.size(), path);
    if (::fsync(fd) != 0)
      fail(path, "fsync failed: " + errnoMessage(errno));
  } catch (...) {
    ::close(fd);
    throw;
  }
  // close can report a deferred write error (NFS); it must not be ignored.
  if (::close(fd) != 0)
    fail(path, "close failed: " + errnoMessage(errno));
}

SafetensorsContents readSafetensors(const std::string &path) {
  FileSource src(path);
  return parseSource(src, path);
}

SafetensorsContents parseSafetensors(const void *bytes, size_t size,
                                     const std::string &name) {
  MemorySource src(bytes, size);
  return parseSource(src, name);
}

} // namespace moe::rt
