//===- CheckpointTest.cpp - Safetensors files and atomic checkpoints ------===//
//
// Round trips must be bit-exact (NaN payloads, -0.0, integer extremes), and
// every kind of damage must surface as a CheckpointError that says what is
// wrong. Expert shards are cut from global tensors by the tests themselves,
// so the loader's concatenation is checked against the values it must give
// back, not against the saver. The format cases are crafted by hand so that
// they test the reader against the specification, not against our own writer.
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
using moe::rt::CheckpointFile;
using moe::rt::expertShardFileName;
using moe::rt::HostTensor;
using moe::rt::latestCheckpoint;
using moe::rt::loadCheckpoint;
using moe::rt::parseSafetensors;
using moe::rt::readSafetensors;
using moe::rt::SafetensorsContents;
using moe::rt::saveCheckpoint;
using moe::rt::saveCheckpointFiles;
using moe::rt::writeSafetensors;
using moe::rt::WrittenFile;

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

TEST_F(CheckpointTest, ListsStepDirsAndRemovesUnfinishedSaves) {
  EXPECT_TRUE(moe::rt::checkpointDirectories(path("nonexistent")).empty());
  std::string one = saveCheckpoint(dir, 1, sampleTensors(), sampleState());
  fs::create_directory(path("step-00000005")); // incomplete: listed too
  fs::create_directory(path("step-12x"));
  fs::create_directory(path(".tmp-step-00000009-abcdef"));
  fs::create_directory(path(".tmp-step-00000001-old-ghijkl"));
  fs::create_directory(path(".damaged-step-00000007"));
  EXPECT_EQ(moe::rt::checkpointDirectories(dir),
            std::vector<std::string>({path("step-00000005"), one}));

  std::vector<std::string> removed = moe::rt::removeUnfinishedSaves(dir);
  std::sort(removed.begin(), removed.end());
  EXPECT_EQ(removed, std::vector<std::string>({".tmp-step-00000001-old-ghijkl",
                                               ".tmp-step-00000009-abcdef"}));
  EXPECT_EQ(entries(dir),
            std::vector<std::string>({".damaged-step-00000007",
                                      "step-00000001", "step-00000005",
                                      "step-12x"}));
  moe::rt::removeCheckpoint(one);
  EXPECT_FALSE(fs::exists(one));
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

//===----------------------------------------------------------------------===//
// Checkpoints with expert shards
//===----------------------------------------------------------------------===//

/// A global [n, 2, 3] F32 tensor whose element i is base + i, so any
/// reordering of rows shows.
HostTensor globalExpertTensor(const std::string &name, int64_t n, float base) {
  std::vector<float> values(static_cast<size_t>(n * 6));
  for (size_t i = 0; i < values.size(); ++i)
    values[i] = base + static_cast<float>(i);
  return makeTensor<float>(name, "F32", {n, 2, 3}, values);
}

/// Rows [shard n/R, (shard+1) n/R) of dim 0 of `global`, cut by hand.
HostTensor sliceOf(const HostTensor &global, int shard, int shards) {
  HostTensor t = global;
  int64_t rows = global.shape[0] / shards;
  size_t rowBytes = global.data.size() / static_cast<size_t>(global.shape[0]);
  t.shape[0] = rows;
  auto begin = global.data.begin() +
               static_cast<std::ptrdiff_t>(shard * rows * rowBytes);
  t.data.assign(begin, begin + static_cast<std::ptrdiff_t>(rows * rowBytes));
  return t;
}

/// The files of a checkpoint whose expert tensors `sharded` (global) are
/// split over `shards` ranks; the replicated tensors are sampleTensors().
std::vector<CheckpointFile> shardedFiles(const std::vector<HostTensor> &sharded,
                                         int shards) {
  std::vector<CheckpointFile> files = {
      {"tensors.safetensors", sampleTensors()}};
  for (int r = 0; r < shards; ++r) {
    CheckpointFile file{"tensors-expert-" + std::to_string(r) + "-of-" +
                            std::to_string(shards) + ".safetensors",
                        {}};
    for (const HostTensor &t : sharded)
      file.tensors.push_back(sliceOf(t, r, shards));
    files.push_back(std::move(file));
  }
  return files;
}

std::vector<HostTensor> expertTensors(int64_t n = 4) {
  return {globalExpertTensor("moe.expert_weights", n, 0.0f),
          globalExpertTensor("moe.expert_weights.adam_m", n, 1000.0f),
          makeTensor<int32_t>("moe.expert_counts", "I32", {n, 1},
                              std::vector<int32_t>(n, 0))};
}

/// Rows [begin, end) of dim 0 of `t`.
HostTensor rowsOf(const HostTensor &t, int64_t begin, int64_t end) {
  size_t rowBytes = t.data.size() / t.shape[0];
  HostTensor part = t;
  part.shape[0] = end - begin;
  part.data.assign(t.data.begin() + begin * rowBytes,
                   t.data.begin() + end * rowBytes);
  return part;
}

// Rank r of R' loads only its rows of the expert-sharded tensors, from the
// shard files of any R that hold them, and the replicated tensors whole.
TEST_F(CheckpointTest, LoadsOneSliceFromTheFilesThatHoldIt) {
  std::vector<HostTensor> global = expertTensors(12);
  for (int e = 0; e < 12; ++e)
    reinterpret_cast<int32_t *>(global[2].data.data())[e] = 10 * e + 7;
  for (int saved : {1, 2, 3, 4, 6}) {
    std::string dir = saveCheckpointFiles(path("r" + std::to_string(saved)), 1,
                                          shardedFiles(global, saved), nullptr);
    for (int slices : {1, 2, 3, 4, 6, 12})
      for (int slice = 0; slice < slices; ++slice) {
        SCOPED_TRACE(testing::Message() << "saved on " << saved << ", slice "
                                        << slice << " of " << slices);
        Checkpoint c = loadCheckpoint(dir, slice, slices);
        EXPECT_EQ(c.slice, slice);
        EXPECT_EQ(c.slices, slices);
        EXPECT_EQ(c.expertShards, saved);
        int64_t rows = 12 / slices;
        for (const HostTensor &t : global) {
          const HostTensor *loaded = c.find(t.name);
          ASSERT_NE(loaded, nullptr) << t.name;
          HostTensor expected = rowsOf(t, slice * rows, (slice + 1) * rows);
          EXPECT_EQ(loaded->shape, expected.shape) << t.name;
          EXPECT_EQ(loaded->data, expected.data) << t.name;
        }
        ASSERT_NE(c.find("layer0.weight"), nullptr) << "replicated";
      }
  }

  // Only the files holding the slice are read: damage elsewhere is left to
  // the rank that reads it.
  std::string dir = path("r2/step-00000001");
  std::string shard1 = dir + "/" + expertShardFileName(1, 2);
  std::string bytes = readFile(shard1);
  bytes[bytes.size() - 1] ^= 1;
  writeFile(shard1, bytes);
  EXPECT_NO_THROW(loadCheckpoint(dir, 0, 2));
  EXPECT_NO_THROW(loadCheckpoint(dir, 1, 4));
  std::string msg = errorOf([&] { loadCheckpoint(dir, 1, 2); });
  EXPECT_NE(msg.find(expertShardFileName(1, 2)), std::string::npos) << msg;
  EXPECT_NE(errorOf([&] { loadCheckpoint(dir, 2, 4); }).find("SHA-256"),
            std::string::npos);

  msg = errorOf([&] { loadCheckpoint(path("r1/step-00000001"), 0, 5); });
  EXPECT_NE(msg.find("its 12 rows do not split into 5 equal slices"),
            std::string::npos)
      << msg;
  msg = errorOf([&] { loadCheckpoint(path("r1/step-00000001"), 2, 2); });
  EXPECT_NE(msg.find("cannot load slice 2 of 2"), std::string::npos) << msg;
}

TEST_F(CheckpointTest, ShardFileNames) {
  EXPECT_EQ(expertShardFileName(0, 1), "tensors-expert-0-of-1.safetensors");
  EXPECT_EQ(expertShardFileName(3, 4), "tensors-expert-3-of-4.safetensors");
  EXPECT_EQ(expertShardFileName(12, 64), "tensors-expert-12-of-64.safetensors");
}

class ShardedRoundTrip : public CheckpointFixture,
                         public testing::WithParamInterface<int> {};

TEST_P(ShardedRoundTrip, LoadsGlobalTensors) {
  const int shards = GetParam();
  std::vector<HostTensor> global = expertTensors();
  // Distinct counts per expert: a wrong concatenation order shows here too.
  for (int e = 0; e < 4; ++e)
    reinterpret_cast<int32_t *>(global[2].data.data())[e] = 10 * e + 7;
  std::string saved =
      saveCheckpointFiles(dir, 9, shardedFiles(global, shards), sampleState());
  EXPECT_EQ(saved, path("step-00000009"));

  std::vector<std::string> expectedEntries = {"checkpoint.json"};
  for (int r = 0; r < shards; ++r)
    expectedEntries.push_back("tensors-expert-" + std::to_string(r) + "-of-" +
                              std::to_string(shards) + ".safetensors");
  expectedEntries.push_back("tensors.safetensors");
  std::sort(expectedEntries.begin(), expectedEntries.end());
  EXPECT_EQ(entries(saved), expectedEntries);

  // Every file is listed with its size and hash.
  auto manifest = nlohmann::json::parse(readFile(saved + "/checkpoint.json"));
  ASSERT_EQ(manifest["files"].size(), static_cast<size_t>(shards + 1));
  for (const auto &f : manifest["files"]) {
    std::string name = f["name"];
    EXPECT_EQ(f["bytes"].get<uint64_t>(), fs::file_size(saved + "/" + name))
        << name;
    EXPECT_EQ(f["sha256"].get<std::string>().size(), 64u) << name;
  }

  // Each shard file holds the slice's shape and bytes under the global name.
  SafetensorsContents last =
      readSafetensors(saved + "/" + expertShardFileName(shards - 1, shards));
  ASSERT_EQ(last.tensors.size(), 3u);
  EXPECT_EQ(last.tensors[0].name, "moe.expert_weights");
  EXPECT_EQ(last.tensors[0].shape, std::vector<int64_t>({4 / shards, 2, 3}));
  float firstOfLast;
  std::memcpy(&firstOfLast, last.tensors[0].data.data(), sizeof(float));
  EXPECT_EQ(firstOfLast, static_cast<float>((shards - 1) * (4 / shards) * 6));

  Checkpoint ck = loadCheckpoint(saved);
  EXPECT_EQ(ck.step, 9);
  EXPECT_EQ(ck.state, sampleState());
  EXPECT_EQ(ck.expertShards, shards);
  // The replicated tensors first, then the global expert tensors.
  std::vector<HostTensor> expected = sampleTensors();
  expected.insert(expected.end(), global.begin(), global.end());
  expectSameTensors(expected, ck.tensors);
}

INSTANTIATE_TEST_SUITE_P(Shards, ShardedRoundTrip, testing::Values(1, 2, 4));

TEST_F(CheckpointTest, ShardsConcatenateInRankOrderNotListOrder) {
  std::vector<HostTensor> global = expertTensors();
  std::vector<CheckpointFile> files = shardedFiles(global, 4);
  // Listed (and written) as 3, 1, replicated, 0, 2.
  std::vector<CheckpointFile> shuffled = {files[4], files[2], files[0],
                                          files[1], files[3]};
  std::string saved = saveCheckpointFiles(dir, 1, shuffled, nullptr);
  auto manifest = nlohmann::json::parse(readFile(saved + "/checkpoint.json"));
  EXPECT_EQ(manifest["files"][0]["name"], "tensors-expert-3-of-4.safetensors");
  Checkpoint ck = loadCheckpoint(saved);
  ASSERT_NE(ck.find("moe.expert_weights"), nullptr);
  EXPECT_EQ(ck.find("moe.expert_weights")->shape,
            std::vector<int64_t>({4, 2, 3}));
  EXPECT_EQ(ck.find("moe.expert_weights")->data, global[0].data);
  EXPECT_EQ(ck.find("moe.expert_weights.adam_m")->data, global[1].data);
  EXPECT_EQ(ck.find("layer0.weight")->data, sampleTensors()[0].data);
  EXPECT_EQ(ck.expertShards, 4);
}

TEST_F(CheckpointTest, SingleFileLayoutIsUnchanged) {
  // The multi-file form with only the replicated file writes what the
  // single-file form writes, byte for byte.
  std::string a = saveCheckpoint(path("a"), 3, sampleTensors(), sampleState());
  std::string b = saveCheckpointFiles(
      path("b"), 3, {{"tensors.safetensors", sampleTensors()}}, sampleState());
  EXPECT_EQ(entries(b), std::vector<std::string>(
                            {"checkpoint.json", "tensors.safetensors"}));
  EXPECT_EQ(readFile(a + "/tensors.safetensors"),
            readFile(b + "/tensors.safetensors"));
  EXPECT_EQ(readFile(a + "/checkpoint.json"), readFile(b + "/checkpoint.json"));
  EXPECT_EQ(loadCheckpoint(a).expertShards, 0);

  // The known answer of KnownSha256 through the multi-file form.
  std::string empty =
      saveCheckpointFiles(path("c"), 0, {{"tensors.safetensors", {}}}, nullptr);
  auto manifest = nlohmann::json::parse(readFile(empty + "/checkpoint.json"));
  ASSERT_EQ(manifest["files"].size(), 1u);
  EXPECT_EQ(manifest["files"][0]["sha256"],
            "de04d5094978db49322863bb2ef1542e75713681a4fe80cb079fb151663f874d");
}

/// Removes `file` from the directory and from its checkpoint.json.
void unlist(const std::string &saved, const std::string &file) {
  auto manifest = nlohmann::json::parse(readFile(saved + "/checkpoint.json"));
  auto &files = manifest["files"];
  for (auto it = files.begin(); it != files.end(); ++it)
    if ((*it)["name"] == file) {
      files.erase(it);
      break;
    }
  writeFile(saved + "/checkpoint.json", manifest.dump());
  fs::remove(saved + "/" + file);
}

/// Puts file `file` of checkpoint `from` into checkpoint `into`, replacing
/// the entry of `replaces` (or adding one when empty): a checkpoint mixed
/// from two saves, whose hashes are all right.
void transplant(const std::string &from, const std::string &file,
                const std::string &into, const std::string &replaces = "") {
  auto source = nlohmann::json::parse(readFile(from + "/checkpoint.json"));
  nlohmann::json entry;
  for (const auto &f : source["files"])
    if (f["name"] == file)
      entry = f;
  ASSERT_FALSE(entry.is_null()) << file;
  auto manifest = nlohmann::json::parse(readFile(into + "/checkpoint.json"));
  auto &files = manifest["files"];
  if (!replaces.empty()) {
    for (auto it = files.begin(); it != files.end(); ++it)
      if ((*it)["name"] == replaces) {
        files.erase(it);
        break;
      }
    fs::remove(into + "/" + replaces);
  }
  files.push_back(entry);
  writeFile(into + "/checkpoint.json", manifest.dump());
  fs::copy_file(from + "/" + file, into + "/" + file,
                fs::copy_options::overwrite_existing);
}

TEST_F(CheckpointTest, MissingShard) {
  std::string saved =
      saveCheckpointFiles(dir, 2, shardedFiles(expertTensors(), 4), nullptr);
  // Deleted but still listed: the file check catches it.
  std::string file = saved + "/tensors-expert-2-of-4.safetensors";
  std::string bytes = readFile(file);
  fs::remove(file);
  EXPECT_EQ(errorOf([&] { loadCheckpoint(saved); }),
            "checkpoint " + saved +
                ": tensors-expert-2-of-4.safetensors: missing");
  // Deleted and unlisted: the set of shards is incomplete.
  writeFile(file, bytes);
  EXPECT_NO_THROW(loadCheckpoint(saved));
  unlist(saved, "tensors-expert-2-of-4.safetensors");
  EXPECT_EQ(errorOf([&] { loadCheckpoint(saved); }),
            "checkpoint " + saved +
                ": missing expert shard 2 of 4 "
                "(tensors-expert-2-of-4.safetensors)");
  // The last one too.
  saved =
      saveCheckpointFiles(dir, 3, shardedFiles(expertTensors(), 2), nullptr);
  unlist(saved, "tensors-expert-1-of-2.safetensors");
  EXPECT_NE(errorOf([&] {
              loadCheckpoint(saved);
            }).find("missing expert shard 1 of 2"),
            std::string::npos);
}

TEST_F(CheckpointTest, ShardsOfDifferentSaves) {
  std::string two = saveCheckpointFiles(
      path("two"), 1, shardedFiles(expertTensors(), 2), nullptr);
  std::string four = saveCheckpointFiles(
      path("four"), 1, shardedFiles(expertTensors(), 4), nullptr);
  // A shard of 4 in a checkpoint of 2 shards.
  transplant(four, "tensors-expert-3-of-4.safetensors", two);
  std::string msg = errorOf([&] { loadCheckpoint(two); });
  EXPECT_NE(msg.find("expert shards of different saves (4 and 2 shards)"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("tensors-expert-3-of-4.safetensors"), std::string::npos)
      << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

TEST_F(CheckpointTest, ShardsOfDifferentShapes) {
  std::string good = saveCheckpointFiles(
      path("good"), 1, shardedFiles(expertTensors(4), 2), nullptr);
  auto loadError = [&](const std::vector<HostTensor> &other,
                       const std::string &name) {
    std::string into = path(name);
    fs::copy(good, into, fs::copy_options::recursive);
    std::string from = saveCheckpointFiles(path(name + "-src"), 1,
                                           shardedFiles(other, 2), nullptr);
    transplant(from, "tensors-expert-1-of-2.safetensors", into,
               "tensors-expert-1-of-2.safetensors");
    return errorOf([&] { loadCheckpoint(into); });
  };

  // Other trailing dims: [n, 2, 3] against [n, 3, 2].
  std::vector<HostTensor> transposed = expertTensors(4);
  transposed[0].shape = {4, 3, 2};
  EXPECT_EQ(loadError(transposed, "dims"),
            "checkpoint " + path("dims") +
                ": tensors-expert-1-of-2.safetensors: tensor "
                "moe.expert_weights has shape [2, 3, 2] but [2, 2, 3] in "
                "tensors-expert-0-of-2.safetensors");

  // Unequal slices of dim 0 (a shard of 6 experts with one of 4).
  std::string msg = loadError(expertTensors(6), "rows");
  EXPECT_NE(msg.find("has shape [3, 2, 3] but [2, 2, 3]"), std::string::npos)
      << msg;

  // Another dtype.
  std::vector<HostTensor> retyped = expertTensors(4);
  retyped[0].dtype = "I32";
  msg = loadError(retyped, "dtype");
  EXPECT_NE(msg.find("tensor moe.expert_weights is I32 but F32 in "
                     "tensors-expert-0-of-2.safetensors"),
            std::string::npos)
      << msg;

  // A tensor missing from one shard, or one only it has.
  std::vector<HostTensor> fewer = expertTensors(4);
  fewer.pop_back();
  msg = loadError(fewer, "fewer");
  EXPECT_NE(msg.find("tensors-expert-1-of-2.safetensors: no tensor "
                     "moe.expert_counts (it is in "
                     "tensors-expert-0-of-2.safetensors)"),
            std::string::npos)
      << msg;
  std::vector<HostTensor> more = expertTensors(4);
  more.push_back(globalExpertTensor("moe.extra", 4, 5.0f));
  msg = loadError(more, "more");
  EXPECT_NE(msg.find("tensor moe.extra is not in "
                     "tensors-expert-0-of-2.safetensors"),
            std::string::npos)
      << msg;
}

TEST_F(CheckpointTest, ShardTensorAlsoReplicated) {
  // moe.expert_weights whole in tensors.safetensors of one save ...
  std::vector<HostTensor> plain = sampleTensors();
  plain.push_back(globalExpertTensor("moe.expert_weights", 4, 0.0f));
  std::string into = saveCheckpoint(path("plain"), 1, plain, nullptr);
  // ... and as a shard of another.
  std::string from = saveCheckpointFiles(
      path("sharded"), 1, shardedFiles(expertTensors(), 1), nullptr);
  transplant(from, "tensors-expert-0-of-1.safetensors", into);
  std::string msg = errorOf([&] { loadCheckpoint(into); });
  EXPECT_NE(msg.find("tensors-expert-0-of-1.safetensors: tensor "
                     "moe.expert_weights also appears in tensors.safetensors"),
            std::string::npos)
      << msg;
}

TEST_F(CheckpointTest, CorruptShard) {
  std::string saved =
      saveCheckpointFiles(dir, 5, shardedFiles(expertTensors(), 2), nullptr);
  std::string file = saved + "/tensors-expert-1-of-2.safetensors";
  std::string bytes = readFile(file);
  std::string flipped = bytes;
  flipped[flipped.size() - 2] ^= 0x20; // a data byte
  writeFile(file, flipped);
  EXPECT_EQ(errorOf([&] { loadCheckpoint(saved); }),
            "checkpoint " + saved +
                ": tensors-expert-1-of-2.safetensors: SHA-256 mismatch (file "
                "corrupt or modified)");
  writeFile(file, bytes.substr(0, bytes.size() - 4));
  EXPECT_NE(errorOf([&] {
              loadCheckpoint(saved);
            }).find("tensors-expert-1-of-2.safetensors: truncated"),
            std::string::npos);
  writeFile(file, bytes);
  EXPECT_EQ(loadCheckpoint(saved).expertShards, 2);
}

TEST_F(CheckpointTest, MalformedShardNames) {
  std::string saved =
      saveCheckpointFiles(dir, 5, shardedFiles(expertTensors(), 1), nullptr);
  const std::string good = "tensors-expert-0-of-1.safetensors";
  for (const std::string bad :
       {"tensors-expert-00-of-1.safetensors",
        "tensors-expert-1-of-1.safetensors",
        "tensors-expert-0-of-01.safetensors",
        "tensors-expert-0-of-0.safetensors",
        "tensors-expert-x-of-1.safetensors", "tensors-expert-0-1.safetensors",
        "tensors-expert-.safetensors"}) {
    SCOPED_TRACE(bad);
    // Renamed in the directory and the manifest: the hashes still hold.
    std::string text = readFile(saved + "/checkpoint.json");
    std::string renamed = text;
    renamed.replace(renamed.find(good), good.size(), bad);
    writeFile(saved + "/checkpoint.json", renamed);
    fs::rename(saved + "/" + good, saved + "/" + bad);
    std::string msg = errorOf([&] { loadCheckpoint(saved); });
    EXPECT_EQ(msg, "checkpoint " + saved + ": " + bad +
                       ": not a valid expert shard name (expected "
                       "tensors-expert-<r>-of-<R>.safetensors with r < R)");
    fs::rename(saved + "/" + bad, saved + "/" + good);
    writeFile(saved + "/checkpoint.json", text);
  }
  EXPECT_NO_THROW(loadCheckpoint(saved));
}

// Writers that share the directory (the ranks of a job, each with its own
// expert shard) build the same checkpoint as one process saving it all.
TEST_F(CheckpointTest, WritersInPlaceMatchOneSave) {
  std::vector<CheckpointFile> files = shardedFiles(expertTensors(), 2);
  std::string whole = saveCheckpointFiles(path("whole"), 4, files, nullptr);

  std::string tmp = moe::rt::beginCheckpoint(path("parts"), 4);
  EXPECT_EQ(fs::path(tmp).filename().string().rfind(".tmp-step-00000004-", 0),
            0u)
      << tmp;
  std::vector<WrittenFile> written;
  // In any order, as the ranks finish.
  for (auto it = files.rbegin(); it != files.rend(); ++it)
    written.push_back(moe::rt::writeCheckpointFile(tmp, 4, *it));
  EXPECT_TRUE(latestCheckpoint(path("parts")).empty())
      << "nothing is a checkpoint before the commit";
  std::string parts =
      moe::rt::commitCheckpoint(path("parts"), 4, tmp, written, nullptr);
  EXPECT_EQ(parts, path("parts/step-00000004"));
  EXPECT_FALSE(fs::exists(tmp));
  for (const CheckpointFile &file : files)
    EXPECT_EQ(readFile(parts + "/" + file.name),
              readFile(whole + "/" + file.name))
        << file.name;
  Checkpoint loaded = loadCheckpoint(parts);
  EXPECT_EQ(loaded.expertShards, 2);
}

TEST_F(CheckpointTest, CommitRefusesAFileAWriterDidNotFinish) {
  std::vector<CheckpointFile> files = shardedFiles(expertTensors(), 2);
  std::string tmp = moe::rt::beginCheckpoint(path("root"), 1);
  std::vector<WrittenFile> written;
  for (const CheckpointFile &file : files)
    written.push_back(moe::rt::writeCheckpointFile(tmp, 1, file));
  // A rank's file lost (or still being written) before the commit.
  fs::resize_file(tmp + "/" + written[1].name, written[1].bytes / 2);
  std::string msg = errorOf([&] {
    moe::rt::commitCheckpoint(path("root"), 1, tmp, written, nullptr);
  });
  EXPECT_NE(msg.find("file " + written[1].name + " is missing or not " +
                     std::to_string(written[1].bytes) + " bytes"),
            std::string::npos)
      << msg;
  EXPECT_FALSE(fs::exists(tmp)) << "the unfinished save is removed";
  EXPECT_TRUE(latestCheckpoint(path("root")).empty());

  std::string tmp2 = moe::rt::beginCheckpoint(path("root"), 2);
  msg = errorOf([&] {
    moe::rt::writeCheckpointFile(tmp2, 2, {"../escape.safetensors", {}});
  });
  EXPECT_NE(msg.find("a plain name ending in .safetensors"), std::string::npos)
      << msg;
  moe::rt::abandonCheckpoint(tmp2);
  EXPECT_FALSE(fs::exists(tmp2));
}

TEST_F(CheckpointTest, SaveRefusesWhatLoadWouldRefuse) {
  std::string root = path("root");
  auto saveError = [&](const std::vector<CheckpointFile> &files) {
    std::string msg =
        errorOf([&] { saveCheckpointFiles(root, 1, files, nullptr); });
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    // Nothing is written, not even the root.
    EXPECT_FALSE(fs::exists(root)) << msg;
    return msg;
  };
  std::vector<CheckpointFile> four = shardedFiles(expertTensors(), 4);

  std::vector<CheckpointFile> incomplete = four;
  incomplete.erase(incomplete.begin() + 3); // shard 2
  EXPECT_NE(saveError(incomplete).find("missing expert shard 2 of 4"),
            std::string::npos);

  std::vector<CheckpointFile> mixed = four;
  mixed[1].name = "tensors-expert-0-of-2.safetensors";
  EXPECT_NE(saveError(mixed).find("expert shards of different saves"),
            std::string::npos);

  std::vector<CheckpointFile> reshaped = four;
  reshaped[2].tensors[0].shape = {1, 3, 2};
  EXPECT_NE(saveError(reshaped).find("has shape [1, 3, 2] but [1, 2, 3]"),
            std::string::npos);

  std::vector<CheckpointFile> scalar = shardedFiles({}, 2);
  for (size_t i = 1; i < scalar.size(); ++i)
    scalar[i].tensors.push_back(
        makeTensor<int64_t>("moe.step", "I64", {}, {int64_t(3)}));
  EXPECT_NE(saveError(scalar).find("is 0-d and cannot be an expert shard"),
            std::string::npos);

  std::vector<CheckpointFile> twice = four;
  twice[0].tensors.push_back(sliceOf(expertTensors()[0], 0, 4));
  EXPECT_NE(saveError(twice).find("also appears in tensors.safetensors"),
            std::string::npos);

  std::vector<CheckpointFile> duplicate = {{"tensors.safetensors", {}},
                                           {"tensors.safetensors", {}}};
  EXPECT_NE(saveError(duplicate).find("file tensors.safetensors given twice"),
            std::string::npos);
  EXPECT_NE(saveError({}).find("no files to save"), std::string::npos);
  for (const std::string bad :
       {"checkpoint.json", "../up.safetensors", "tensors.bin", "",
        "tensors-expert-1-of-1.safetensors"}) {
    SCOPED_TRACE(bad);
    std::string msg = saveError({{bad, {}}});
    EXPECT_TRUE(msg.find("cannot save a tensor file named") !=
                    std::string::npos ||
                msg.find("not a valid expert shard name") != std::string::npos)
        << msg;
  }
  // A plain replicated tensor in two plain files.
  EXPECT_NE(saveError({{"a.safetensors", sampleTensors()},
                       {"b.safetensors", sampleTensors()}})
                .find("b.safetensors: tensor layer0.weight also appears in "
                      "a.safetensors"),
            std::string::npos);
}

TEST_F(CheckpointTest, CreatesTheRootAndNamesLargeSteps) {
  std::string root = path("a/b/c/");
  std::string saved = saveCheckpoint(root, 123456789, {}, nullptr);
  EXPECT_EQ(saved, path("a/b/c/step-123456789"));
  EXPECT_EQ(latestCheckpoint(root), saved);
  EXPECT_EQ(loadCheckpoint(saved).step, 123456789);
}

} // namespace
