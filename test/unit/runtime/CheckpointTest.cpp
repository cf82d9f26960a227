//===- CheckpointTest.cpp - Safetensors files and atomic checkpoints ------===//
//
// Round trips must be bit-exact (NaN payloads, -0.0, integer extremes), and
// every kind of damage must surface as a CheckpointError that says what is
// wrong. The format cases are crafted by hand so that they test the reader
// against the specification, not against our own writer.
//
//===----------------------------------------------------------------------===//

#include "runtime/checkpoint/Checkpoint.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace fs = std::filesystem;

using moe::rt::Checkpoint;
using moe::rt::CheckpointError;
using moe::rt::HostTensor;
using moe::rt::latestCheckpoint;
using moe::rt::loadCheckpoint;
using moe::rt::parseSafetensors;
using moe::rt::readSafetensors;
using moe::rt::SafetensorsContents;
using moe::rt::saveCheckpoint;
using moe::rt::writeSafetensors;

namespace {

template <typename T>
HostTensor makeTensor(const std::string &name, const std::string &dtype,
                      std::vector<int64_t> shape,
                      const std::vector<T> &values) {
  HostTensor t{name, dtype, std::move(shape), {}};
  t.data.resize(values.size() * sizeof(T));
  if (!values.empty())
    std::memcpy(t.data.data(), values.data(), t.data.size());
  return t;
}

/// Tensors of every supported dtype, including a 0-d scalar, an empty tensor
/// and values whose bit patterns a float conversion would not preserve.
std::vector<HostTensor> sampleTensors() {
  std::vector<float> weights = {1.5f,
                                -0.0f,
                                std::numeric_limits<float>::denorm_min(),
                                std::numeric_limits<float>::infinity(),
                                3.25f,
                                -7.0f};
  // A NaN with a payload: only a byte copy keeps it.
  uint32_t nanBits = 0x7fc12345u;
  float nan;
  std::memcpy(&nan, &nanBits, sizeof(nan));
  weights.push_back(nan);
  weights.push_back(1e-30f);
  return {
      makeTensor<float>("layer0.weight", "F32", {2, 4}, weights),
      makeTensor<int32_t>("router.counts", "I32", {3},
                          {std::numeric_limits<int32_t>::min(), 0,
                           std::numeric_limits<int32_t>::max()}),
      makeTensor<int64_t>("step.scalar", "I64", {},
                          {std::numeric_limits<int64_t>::min() + 12345}),
      makeTensor<float>("empty", "F32", {0, 3}, {}),
      makeTensor<int64_t>("philox.counter", "I64", {2},
                          {int64_t(0x0123456789abcdefLL), -1}),
  };
}

void expectSameTensors(const std::vector<HostTensor> &expected,
                       const std::vector<HostTensor> &actual) {
  ASSERT_EQ(expected.size(), actual.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    SCOPED_TRACE(expected[i].name);
    EXPECT_EQ(expected[i].name, actual[i].name);
    EXPECT_EQ(expected[i].dtype, actual[i].dtype);
    EXPECT_EQ(expected[i].shape, actual[i].shape);
    EXPECT_EQ(expected[i].data, actual[i].data); // bit-exact
  }
}

std::string readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void writeFile(const std::string &path, const std::string &bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

/// A safetensors file by hand: little-endian length, header text, data.
std::string craft(const std::string &header, const std::string &data) {
  std::string bytes(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i)
    bytes[i] = static_cast<char>(n >> (8 * i));
  return bytes + header + data;
}

/// The message of the CheckpointError that `fn` throws ("" if none).
template <typename Fn> std::string errorOf(Fn &&fn) {
  try {
    fn();
  } catch (const CheckpointError &e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a CheckpointError";
  return "";
}

/// Per-test scratch directory, removed afterwards.
class CheckpointFixture : public testing::Test {
protected:
  void SetUp() override {
    std::string pattern = testing::TempDir() + "moe-ckpt-XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    ASSERT_NE(mkdtemp(buffer.data()), nullptr) << pattern;
    dir = buffer.data();
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string path(const std::string &name) const {
    return (fs::path(dir) / name).string();
  }
  /// The names in `d`, sorted.
  static std::vector<std::string> entries(const std::string &d) {
    std::vector<std::string> names;
    for (const auto &e : fs::directory_iterator(d))
      names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

  std::string dir;
};

using SafetensorsTest = CheckpointFixture;
using CheckpointTest = CheckpointFixture;

//===----------------------------------------------------------------------===//
// Safetensors
//===----------------------------------------------------------------------===//

TEST_F(SafetensorsTest, RoundTripIsBitExact) {
  std::vector<HostTensor> tensors = sampleTensors();
  std::map<std::string, std::string> metadata = {
      {"format", "pt"}, {"note", "line\nbreak \"quoted\""}, {"empty", ""}};
  writeSafetensors(path("t.safetensors"), tensors, metadata);
  SafetensorsContents back = readSafetensors(path("t.safetensors"));
  expectSameTensors(tensors, back.tensors);
  EXPECT_EQ(metadata, back.metadata);
}

TEST_F(SafetensorsTest, WriterFollowsTheSpecLayout) {
  std::vector<HostTensor> tensors = sampleTensors();
  writeSafetensors(path("t.safetensors"), tensors);
  std::string bytes = readFile(path("t.safetensors"));
  ASSERT_GE(bytes.size(), 8u);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i)
    n = n << 8 | static_cast<uint8_t>(bytes[i]);
  // The data starts 8-byte aligned, the padding is spaces.
  EXPECT_EQ((8 + n) % 8, 0u);
  ASSERT_LE(8 + n, bytes.size());
  std::string header = bytes.substr(8, n);
  EXPECT_EQ(header.front(), '{');
  auto json = nlohmann::json::parse(header);
  EXPECT_FALSE(json.contains("__metadata__")); // none given
  EXPECT_EQ(json["layer0.weight"]["dtype"], "F32");
  EXPECT_EQ(json["layer0.weight"]["shape"], nlohmann::json({2, 4}));
  EXPECT_EQ(json["layer0.weight"]["data_offsets"], nlohmann::json({0, 32}));
  EXPECT_EQ(json["router.counts"]["data_offsets"], nlohmann::json({32, 44}));
  EXPECT_EQ(json["step.scalar"]["shape"], nlohmann::json::array());
  EXPECT_EQ(json["step.scalar"]["data_offsets"], nlohmann::json({44, 52}));
  EXPECT_EQ(json["empty"]["data_offsets"], nlohmann::json({52, 52}));
  // The data is the tensors' bytes back to back, and nothing else.
  std::string data;
  for (const HostTensor &t : tensors)
    data.append(t.data.begin(), t.data.end());
  EXPECT_EQ(bytes.substr(8 + n), data);
}

TEST_F(SafetensorsTest, ReadsAHandCraftedFile) {
  // Keys out of offset order, no padding, an unknown extra field.
  int32_t ids[2] = {7, -8};
  float x = 2.5f;
  std::string data(reinterpret_cast<char *>(&x), 4);
  data.append(reinterpret_cast<char *>(ids), 8);
  std::string bytes =
      craft(R"({"ids":{"dtype":"I32","shape":[2],"data_offsets":[4,12]},)"
            R"("__metadata__":{"k":"v"},)"
            R"("x":{"dtype":"F32","shape":[],"data_offsets":[0,4],"extra":1}})",
            data);
  SafetensorsContents c = parseSafetensors(bytes.data(), bytes.size(), "mem");
  ASSERT_EQ(c.tensors.size(), 2u);
  EXPECT_EQ(c.tensors[0].name, "ids");
  EXPECT_EQ(c.tensors[0].shape, std::vector<int64_t>({2}));
  EXPECT_EQ(c.tensors[0].data,
            std::vector<uint8_t>(reinterpret_cast<uint8_t *>(ids),
                                 reinterpret_cast<uint8_t *>(ids) + 8));
  EXPECT_EQ(c.tensors[1].name, "x");
  EXPECT_TRUE(c.tensors[1].shape.empty());
  float back;
  ASSERT_EQ(c.tensors[1].data.size(), 4u);
  std::memcpy(&back, c.tensors[1].data.data(), 4);
  EXPECT_EQ(back, 2.5f);
  EXPECT_EQ(c.metadata.at("k"), "v");
}

TEST_F(SafetensorsTest, EmptyFileWithNoTensors) {
  writeSafetensors(path("none.safetensors"), {});
  SafetensorsContents c = readSafetensors(path("none.safetensors"));
  EXPECT_TRUE(c.tensors.empty());
  EXPECT_TRUE(c.metadata.empty());
}

/// parseSafetensors of a hand-made file must fail with a message holding
/// `words` and the file's name.
void expectFormatError(const std::string &bytes, const std::string &words) {
  std::string msg = errorOf(
      [&] { parseSafetensors(bytes.data(), bytes.size(), "crafted.st"); });
  EXPECT_NE(msg.find(words), std::string::npos) << msg;
  EXPECT_NE(msg.find("crafted.st"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

TEST_F(SafetensorsTest, FileShorterThanTheLength) {
  writeFile(path("short.st"), std::string("\x08\x00\x00", 3));
  std::string msg = errorOf([&] { readSafetensors(path("short.st")); });
  EXPECT_NE(msg.find("shorter than"), std::string::npos) << msg;
  EXPECT_NE(msg.find(path("short.st")), std::string::npos) << msg;
  expectFormatError("", "shorter than");
}

TEST_F(SafetensorsTest, GarbageHeaderLength) {
  // 0xffff... would be a 16 EiB allocation if the reader believed it.
  expectFormatError(std::string(8, '\xff') + "{}", "exceeds the file");
  // Just below 2^63, so positive even as a signed offset.
  expectFormatError(std::string("\xf0\xff\xff\xff\xff\xff\xff\x7f", 8) + "{}",
                    "exceeds the file");
}

TEST_F(SafetensorsTest, HeaderBeyondTheSizeLimit) {
  // A sparse 100 MB file: the reader must refuse before allocating.
  const uint64_t n = 100000001;
  std::string bytes = craft("", "");
  for (int i = 0; i < 8; ++i)
    bytes[i] = static_cast<char>(n >> (8 * i));
  writeFile(path("big.st"), bytes);
  fs::resize_file(path("big.st"), 8 + n);
  std::string msg = errorOf([&] { readSafetensors(path("big.st")); });
  EXPECT_NE(msg.find("exceeds the limit of 100000000 bytes"), std::string::npos)
      << msg;
}

TEST_F(SafetensorsTest, HeaderLengthOneBeyondTheFile) {
  std::string bytes = craft("{}", "");
  bytes[0] = 3; // header is 2 bytes long
  expectFormatError(bytes, "header length 3 exceeds the file (10 bytes)");
}

TEST_F(SafetensorsTest, MalformedHeaderJson) {
  expectFormatError(craft(R"({"a": {"dtype": "F32", )", ""),
                    "malformed header JSON");
  expectFormatError(craft("", ""), "malformed header JSON");
  // The JSON library alone would stop at the NUL and accept this.
  expectFormatError(craft(std::string("{}\0{\"x\"", 6), ""), "NUL byte");
  expectFormatError(craft("[1, 2]", ""), "not an object");
  expectFormatError(craft(R"({"a": 1})", ""), "entry is not an object");
}

TEST_F(SafetensorsTest, UnknownDtype) {
  expectFormatError(
      craft(R"({"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})",
            std::string(4, '\0')),
      "unsupported dtype \"F16\"");
  expectFormatError(
      craft(R"({"h":{"dtype":3,"shape":[2],"data_offsets":[0,4]}})",
            std::string(4, '\0')),
      "dtype is not a string");
}

TEST_F(SafetensorsTest, ShapeDoesNotMatchOffsets) {
  expectFormatError(
      craft(R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})",
            std::string(20, '\0')),
      "span 20 bytes but F32 shape needs 24");
  expectFormatError(
      craft(R"({"w":{"dtype":"I64","shape":[],"data_offsets":[0,4]}})",
            std::string(4, '\0')),
      "span 4 bytes but I64 shape needs 8");
}

TEST_F(SafetensorsTest, BadDimensions) {
  std::string data(4, '\0');
  expectFormatError(
      craft(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", data),
      "negative dimension");
  expectFormatError(
      craft(R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})",
            data),
      "non-integer");
  expectFormatError(
      craft(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],)"
            R"("data_offsets":[0,4]}})",
            data),
      "overflows");
  expectFormatError(
      craft(R"({"w":{"dtype":"F32","shape":[18446744073709551615],)"
            R"("data_offsets":[0,4]}})",
            data),
      "too large");
  expectFormatError(
      craft(R"({"w":{"dtype":"F32","shape":1,"data_offsets":[0,4]}})", data),
      "shape is not an array");
}

TEST_F(SafetensorsTest, OffsetsOutOfRange) {
  std::string data(8, '\0');
  expectFormatError(
      craft(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", data),
      "out of range");
  expectFormatError(
      craft(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", data),
      "end before they begin");
  expectFormatError(
      craft(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", data),
      "pair of non-negative integers");
  expectFormatError(
      craft(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}})",
            data),
      "pair of non-negative integers");
  expectFormatError(craft(R"({"w":{"dtype":"F32","shape":[1]}})", data),
                    "needs \"dtype\", \"shape\" and \"data_offsets\"");
}

TEST_F(SafetensorsTest, OffsetsOverlapping) {
  expectFormatError(
      craft(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
            R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
            std::string(12, '\0')),
      "\"b\": data_offsets overlap those of tensor \"a\"");
  // Two tensors sharing the same bytes.
  expectFormatError(
      craft(R"({"a":{"dtype":"I32","shape":[1],"data_offsets":[0,4]},)"
            R"("b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
            std::string(4, '\0')),
      "overlap");
}

TEST_F(SafetensorsTest, HolesAndTrailingBytes) {
  expectFormatError(
      craft(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
            std::string(12, '\0')),
      "8 trailing bytes after the last tensor");
  expectFormatError(craft("{}", "x"), "1 trailing bytes");
  expectFormatError(
      craft(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
            std::string(8, '\0')),
      "data bytes [0, 4) belong to no tensor");
}

TEST_F(SafetensorsTest, DuplicateNames) {
  expectFormatError(
      craft(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
            R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
            std::string(8, '\0')),
      "duplicate key \"a\"");
  // Within an entry too: which dtype would be meant?
  expectFormatError(craft(R"({"a":{"dtype":"F32","dtype":"I32","shape":[1],)"
                          R"("data_offsets":[0,4]}})",
                          std::string(4, '\0')),
                    "duplicate key \"dtype\"");
}

// Without a depth limit the JSON library's recursive copies and destructors
// overflow the stack on such headers.
TEST_F(SafetensorsTest, DeeplyNestedHeader) {
  const size_t depth = 1000000;
  expectFormatError(
      craft(std::string(depth, '[') + std::string(depth, ']'), ""),
      "nested deeper than 64 levels");
  expectFormatError(
      craft(R"({"x":{"dtype":"F32","shape":)" + std::string(depth, '[') +
                std::string(depth, ']') + R"(,"data_offsets":[0,0]}})",
            ""),
      "nested deeper than 64 levels");
  std::string objects;
  for (size_t i = 0; i < depth / 8; ++i)
    objects += R"({"a":)";
  objects += "1" + std::string(depth / 8, '}');
  expectFormatError(craft(objects, ""), "nested deeper than 64 levels");
}

TEST_F(SafetensorsTest, BadMetadata) {
  expectFormatError(craft(R"({"__metadata__":{"k":1}})", ""),
                    "value of \"k\" is not a string");
  expectFormatError(craft(R"({"__metadata__":[]})", ""),
                    "__metadata__ is not an object");
}

TEST_F(SafetensorsTest, NamesWithNewlinesStayOnOneLine) {
  expectFormatError(
      craft(R"({"a\nb":{"dtype":"X","shape":[],"data_offsets":[0,0]}})", ""),
      "tensor \"a\\nb\": unsupported dtype");
}

TEST_F(SafetensorsTest, WriterRejectsInvalidTensors) {
  auto expectRejected = [&](const HostTensor &t, const std::string &words) {
    std::string msg = errorOf([&] { writeSafetensors(path("bad.st"), {t}); });
    EXPECT_NE(msg.find(words), std::string::npos) << msg;
    EXPECT_FALSE(fs::exists(path("bad.st"))) << "created before validating";
  };
  expectRejected(makeTensor<float>("w", "F32", {3}, {1, 2}),
                 "holds 8 bytes but its shape needs 12");
  expectRejected(makeTensor<float>("w", "BF16", {1}, {1}), "unsupported dtype");
  expectRejected(makeTensor<float>("w", "F32", {-1}, {}), "negative dimension");
  expectRejected(makeTensor<float>("__metadata__", "F32", {}, {1}), "reserved");
  std::string msg = errorOf([&] {
    writeSafetensors(path("bad.st"), {makeTensor<float>("w", "F32", {}, {1}),
                                      makeTensor<float>("w", "F32", {}, {2})});
  });
  EXPECT_NE(msg.find("duplicate name"), std::string::npos) << msg;
}

// Random damage to a valid file must give either a valid result or a
// CheckpointError: never a crash, a huge allocation or another exception.
TEST_F(SafetensorsTest, FuzzedFilesNeverCrash) {
  writeSafetensors(path("t.safetensors"), sampleTensors(), {{"k", "v"}});
  const std::string valid = readFile(path("t.safetensors"));
  std::mt19937 gen(1234);
  int errors = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string bytes = valid;
    switch (iter % 3) {
    case 0: { // flip a few bytes anywhere, the length field included
      int flips = 1 + static_cast<int>(gen() % 4);
      for (int i = 0; i < flips; ++i)
        bytes[gen() % bytes.size()] ^= static_cast<char>(1 + gen() % 255);
      break;
    }
    case 1: // truncate
      bytes.resize(gen() % bytes.size());
      break;
    default: // rewrite one header byte with a JSON-significant character
      bytes[8 + gen() % 64] = "{}[]\",:-0123456789e. "[gen() % 21];
      break;
    }
    try {
      SafetensorsContents c =
          parseSafetensors(bytes.data(), bytes.size(), "fuzz");
      size_t total = 0;
      for (const HostTensor &t : c.tensors)
        total += t.data.size();
      EXPECT_LE(total, bytes.size());
    } catch (const CheckpointError &) {
      ++errors;
    } catch (const std::exception &e) {
      ADD_FAILURE() << "iteration " << iter
                    << ": not a CheckpointError: " << e.what();
    }
  }
  // Truncations alone always fail, so most iterations must have failed.
  EXPECT_GE(errors, 1000);
}

//===----------------------------------------------------------------------===//
// Checkpoints
//===----------------------------------------------------------------------===//

nlohmann::json sampleState() {
  return {{"epoch", 3},
          {"data", {{"shard", 17}, {"offset", 123456789012LL}}},
          {"lr", 0.125},
          {"name", "run \"a\""}};
}

TEST_F(CheckpointTest, RoundTrip) {
  std::vector<HostTensor> tensors = sampleTensors();
  std::string saved = saveCheckpoint(dir, 7, tensors, sampleState());
  EXPECT_EQ(saved, path("step-00000007"));
  EXPECT_EQ(entries(dir), std::vector<std::string>({"step-00000007"}));
  EXPECT_EQ(entries(saved), std::vector<std::string>(
                                {"checkpoint.json", "tensors.safetensors"}));

  Checkpoint ck = loadCheckpoint(saved);
  EXPECT_EQ(ck.step, 7);
  EXPECT_EQ(ck.state, sampleState());
  expectSameTensors(tensors, ck.tensors);
  ASSERT_NE(ck.find("router.counts"), nullptr);
  EXPECT_EQ(ck.find("router.counts")->dtype, "I32");
  EXPECT_EQ(ck.find("missing"), nullptr);

  // The manifest as documented.
  auto manifest =
      nlohmann::json::parse(readFile(path("step-00000007/checkpoint.json")));
  EXPECT_EQ(manifest["format"], "moe-checkpoint/1");
  EXPECT_EQ(manifest["step"], 7);
  EXPECT_EQ(manifest["state"], sampleState());
  ASSERT_EQ(manifest["files"].size(), 1u);
  EXPECT_EQ(manifest["files"][0]["name"], "tensors.safetensors");
  EXPECT_EQ(manifest["files"][0]["bytes"].get<uint64_t>(),
            fs::file_size(path("step-00000007/tensors.safetensors")));
  std::string sha = manifest["files"][0]["sha256"];
  EXPECT_EQ(sha.size(), 64u);
  EXPECT_EQ(sha.find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST_F(CheckpointTest, KnownSha256) {
  // An empty tensor list gives a fixed file, so its hash is a known answer
  // (computed with Python's hashlib): the 8-byte length 40, then the 33-byte
  // header and 7 spaces of padding.
  std::string saved = saveCheckpoint(dir, 0, {}, nullptr);
  std::string bytes = readFile(path("step-00000000/tensors.safetensors"));
  std::string expectedFile = craft(
      std::string(R"({"__metadata__":{"moe.step":"0"}})") + std::string(7, ' '),
      "");
  ASSERT_EQ(bytes, expectedFile);
  auto manifest = nlohmann::json::parse(readFile(saved + "/checkpoint.json"));
  EXPECT_EQ(manifest["files"][0]["sha256"],
            "de04d5094978db49322863bb2ef1542e75713681a4fe80cb079fb151663f874d");
  Checkpoint ck = loadCheckpoint(saved);
  EXPECT_TRUE(ck.tensors.empty());
  EXPECT_TRUE(ck.state.is_null());
}

TEST_F(CheckpointTest, FlippedDataByteIsShaMismatch) {
  std::string saved = saveCheckpoint(dir, 1, sampleTensors(), sampleState());
  std::string file = saved + "/tensors.safetensors";
  std::string bytes = readFile(file);
  bytes[bytes.size() - 3] ^= 0x01; // a data byte: still a valid safetensors
  writeFile(file, bytes);
  EXPECT_NO_THROW(readSafetensors(file));
  std::string msg = errorOf([&] { loadCheckpoint(saved); });
  EXPECT_EQ(msg, "checkpoint " + saved +
                     ": tensors.safetensors: SHA-256 mismatch (file corrupt "
                     "or modified)");
}

TEST_F(CheckpointTest, TruncatedFile) {
  std::string saved = saveCheckpoint(dir, 1, sampleTensors(), sampleState());
  std::string file = saved + "/tensors.safetensors";
  uint64_t size = fs::file_size(file);
  fs::resize_file(file, size - 5);
  std::string msg = errorOf([&] { loadCheckpoint(saved); });
  EXPECT_EQ(msg, "checkpoint " + saved + ": tensors.safetensors: truncated: " +
                     std::to_string(size - 5) + " bytes, expected " +
                     std::to_string(size));
  // Grown instead of shrunk.
  fs::resize_file(file, size + 1);
  msg = errorOf([&] { loadCheckpoint(saved); });
  EXPECT_NE(msg.find("bytes, expected " + std::to_string(size)),
            std::string::npos)
      << msg;
}

TEST_F(CheckpointTest, MissingFiles) {
  std::string saved = saveCheckpoint(dir, 2, sampleTensors(), sampleState());
  fs::remove(saved + "/tensors.safetensors");
  std::string msg = errorOf([&] { loadCheckpoint(saved); });
  EXPECT_EQ(msg, "checkpoint " + saved + ": tensors.safetensors: missing");

  fs::remove(saved + "/checkpoint.json");
  msg = errorOf([&] { loadCheckpoint(saved); });
  EXPECT_NE(msg.find("missing checkpoint.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find(saved), std::string::npos) << msg;

  msg = errorOf([&] { loadCheckpoint(path("nonexistent")); });
  EXPECT_NE(msg.find("no such directory"), std::string::npos) << msg;
}

TEST_F(CheckpointTest, BadManifest) {
  std::string saved = saveCheckpoint(dir, 2, sampleTensors(), sampleState());
  std::string file = saved + "/checkpoint.json";
  const auto good = nlohmann::json::parse(readFile(file));
  auto expectManifestError = [&](const std::string &text,
                                 const std::string &words) {
    writeFile(file, text);
    std::string msg = errorOf([&] { loadCheckpoint(saved); });
    EXPECT_NE(msg.find(saved + ": checkpoint.json: "), std::string::npos)
        << msg;
    EXPECT_NE(msg.find(words), std::string::npos) << msg;
  };
  expectManifestError("{\"format\": ", "malformed JSON");
  expectManifestError("[]", "not a JSON object");

  auto edited = [&](auto edit) {
    nlohmann::json j = good;
    edit(j);
    return j.dump();
  };
  expectManifestError(edited([](auto &j) { j["format"] = "moe-checkpoint/2"; }),
                      "unsupported format");
  expectManifestError(edited([](auto &j) { j.erase("step"); }), "missing or");
  expectManifestError(edited([](auto &j) { j["step"] = -1; }), "out of range");
  expectManifestError(edited([](auto &j) { j.erase("state"); }),
                      "missing \"state\"");
  expectManifestError(
      edited([](auto &j) { j["files"] = nlohmann::json::array(); }),
      "lists no files");
  expectManifestError(
      edited([](auto &j) { j["files"][0]["name"] = "../escape"; }),
      "no valid \"name\"");
  expectManifestError(edited([](auto &j) { j["files"][0]["sha256"] = "abc"; }),
                      "64 lowercase hex");
  expectManifestError(edited([](auto &j) { j["files"][0]["bytes"] = -3; }),
                      "invalid \"bytes\"");
  expectManifestError(
      edited([](auto &j) { j["files"].push_back(j["files"][0]); }),
      "listed twice");

  // NUL ends the input for the JSON library; deep nesting would overflow
  // the stack when the state is copied.
  expectManifestError(good.dump() + std::string("\0junk", 5), "NUL byte");
  std::string deep = edited([](auto &j) { j["state"] = "STATE"; });
  deep.replace(deep.find("\"STATE\""), 7,
               std::string(1000000, '[') + std::string(1000000, ']'));
  expectManifestError(deep, "nested deeper than 256 levels");

  writeFile(file, good.dump());
  EXPECT_NO_THROW(loadCheckpoint(saved));
}

TEST_F(CheckpointTest, LatestIgnoresTmpAndIncompleteDirs) {
  EXPECT_EQ(latestCheckpoint(path("nonexistent")), "");
  EXPECT_EQ(latestCheckpoint(dir), "");

  saveCheckpoint(dir, 1, sampleTensors(), sampleState());
  std::string two = saveCheckpoint(dir, 2, sampleTensors(), sampleState());
  // A crashed save of a later step: complete files, but never renamed.
  fs::copy(two, path(".tmp-step-00000009-abcdef"), fs::copy_options::recursive);
  // Later step-* dirs that are not complete checkpoints.
  fs::create_directory(path("step-00000005"));
  fs::copy(two + "/tensors.safetensors", path("step-00000005"));
  fs::create_directory(path("step-00000006"));
  writeFile(path("step-00000006/checkpoint.json"), "{not json");
  // A copy under the wrong step number, and names that are not steps.
  fs::copy(two, path("step-00000008"), fs::copy_options::recursive);
  fs::create_directory(path("step-12x"));
  writeFile(path("step-00000010"), "a file, not a directory");

  EXPECT_EQ(latestCheckpoint(dir), two);
  EXPECT_EQ(loadCheckpoint(latestCheckpoint(dir)).step, 2);
}

TEST_F(CheckpointTest, KeepLastPrunesOlderSteps) {
  for (int64_t step = 1; step <= 5; ++step)
    saveCheckpoint(dir, step, sampleTensors(), {{"step", step}},
                   /*keepLast=*/2);
  EXPECT_EQ(entries(dir),
            std::vector<std::string>({"step-00000004", "step-00000005"}));
  // Resaving an older step keeps it although it is not among the newest 2.
  saveCheckpoint(dir, 3, sampleTensors(), nullptr, /*keepLast=*/2);
  EXPECT_EQ(entries(dir),
            std::vector<std::string>(
                {"step-00000003", "step-00000004", "step-00000005"}));
  // keepLast = 0 keeps everything.
  saveCheckpoint(dir, 6, sampleTensors(), nullptr);
  EXPECT_EQ(entries(dir).size(), 4u);
  saveCheckpoint(dir, 7, sampleTensors(), nullptr, /*keepLast=*/1);
  EXPECT_EQ(entries(dir), std::vector<std::string>({"step-00000007"}));
  EXPECT_EQ(latestCheckpoint(dir), path("step-00000007"));
}

TEST_F(CheckpointTest, SavingTheSameStepTwiceReplacesIt) {
  std::vector<HostTensor> first = sampleTensors();
  saveCheckpoint(dir, 4, first, {{"version", 1}});
  std::vector<HostTensor> second = {
      makeTensor<int32_t>("only", "I32", {2, 2}, {1, 2, 3, 4})};
  std::string saved = saveCheckpoint(dir, 4, second, {{"version", 2}});
  // No temporary or moved-aside directory is left behind.
  EXPECT_EQ(entries(dir), std::vector<std::string>({"step-00000004"}));
  Checkpoint ck = loadCheckpoint(saved);
  EXPECT_EQ(ck.state["version"], 2);
  expectSameTensors(second, ck.tensors);
}

TEST_F(CheckpointTest, FailedSaveLeavesNothingBehind) {
  std::vector<HostTensor> bad = {
      makeTensor<float>("w", "F32", {4}, {1.0f})}; // 4 bytes for 16
  std::string msg = errorOf([&] { saveCheckpoint(dir, 3, bad, nullptr); });
  EXPECT_NE(msg.find("holds 4 bytes but its shape needs 16"), std::string::npos)
      << msg;
  EXPECT_TRUE(entries(dir).empty());

  // A failed replacement keeps the old checkpoint.
  std::string saved = saveCheckpoint(dir, 3, sampleTensors(), {{"v", 1}});
  errorOf([&] { saveCheckpoint(dir, 3, bad, {{"v", 2}}); });
  EXPECT_EQ(entries(dir), std::vector<std::string>({"step-00000003"}));
  EXPECT_EQ(loadCheckpoint(saved).state["v"], 1);

  msg = errorOf([&] { saveCheckpoint(dir, -1, {}, nullptr); });
  EXPECT_NE(msg.find("negative step"), std::string::npos) << msg;

  // A state the loader would refuse is refused when saving.
  nlohmann::json deep = 1;
  for (int i = 0; i < 300; ++i)
    deep = nlohmann::json::array({std::move(deep)});
  msg = errorOf([&] { saveCheckpoint(dir, 5, {}, deep); });
  EXPECT_NE(msg.find("nested deeper than 256 levels"), std::string::npos)
      << msg;
  EXPECT_EQ(entries(dir), std::vector<std::string>({"step-00000003"}));
}

TEST_F(CheckpointTest, CreatesTheRootAndNamesLargeSteps) {
  std::string root = path("a/b/c/");
  std::string saved = saveCheckpoint(root, 123456789, {}, nullptr);
  EXPECT_EQ(saved, path("a/b/c/step-123456789"));
  EXPECT_EQ(latestCheckpoint(root), saved);
  EXPECT_EQ(loadCheckpoint(saved).step, 123456789);
}

} // namespace
