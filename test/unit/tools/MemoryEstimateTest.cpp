//===- MemoryEstimateTest.cpp - moe-run's per-rank memory estimate --------===//
//
// The estimate's arithmetic on a hand-written manifest: shared tensors
// counted once, sharded ones divided by the ranks, arenas and inputs of the
// functions a command runs only; the fit verdict and the byte parser.
//
//===----------------------------------------------------------------------===//

#include "tools/moe-run/MemoryEstimate.h"
#include "tools/moe-run/Package.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include <unistd.h>

using namespace moe::run;

namespace {

/// A package directory with `manifest` and an empty step.cpp, removed at
/// the end of the test.
struct TempPackage {
  std::filesystem::path dir;
  TempPackage(const std::string &name, const std::string &manifest)
      : dir(std::filesystem::temp_directory_path() /
            ("moe-memory-test-" + name + "-" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "manifest.json") << manifest;
    std::ofstream(dir / "step.cpp") << "";
  }
  ~TempPackage() { std::filesystem::remove_all(dir); }
  Package open() const { return Package::open(dir.string()); }
};

/// A model with w [8, 4] f32 (replicated), experts [4, 16, 16] f32 (sharded
/// when `sharded`), Adam moments of both and an i64 step; a train step of
/// arena 1000 and an eval of arena 300, each with tokens [2, 5] i32.
std::string manifest(bool sharded, int64_t rankRowsBytes = 0) {
  using nlohmann::json;
  auto tensor = [&](const std::string &name, const std::string &role,
                    const std::string &dtype, json shape, bool expert) {
    json t = {
        {"name", name}, {"role", role}, {"dtype", dtype}, {"shape", shape}};
    if (role == "param")
      t["init"] = {{"kind", "zeros"}, {"scale", 0}};
    if (role == "input")
      t["id_bound"] = 50;
    if (expert && sharded)
      t["shard"] = {{"dim", 0}, {"mesh", "ranks"}};
    return t;
  };
  json tokens = tensor("tokens", "input", "i32", {2, 5}, false);
  json params = {tensor("w", "param", "f32", {8, 4}, false),
                 tensor("experts", "param", "f32", {4, 16, 16}, true)};
  json state = {tensor("step", "state", "i64", json::array(), false),
                tensor("w.adam_m", "state", "f32", {8, 4}, false),
                tensor("w.adam_v", "state", "f32", {8, 4}, false),
                tensor("experts.adam_m", "state", "f32", {4, 16, 16}, true),
                tensor("experts.adam_v", "state", "f32", {4, 16, 16}, true)};
  auto function = [&](const std::string &symbol, int64_t arena,
                      bool withState) {
    json extra = json::object();
    if (withState && rankRowsBytes)
      extra["rank_rows_bytes"] = rankRowsBytes;
    json arguments = json::array({tokens});
    for (const json &p : params)
      arguments.push_back(p);
    if (withState)
      for (const json &t : state)
        arguments.push_back(t);
    for (size_t i = 0; i < arguments.size(); ++i)
      arguments[i]["index"] = i;
    json f = {{"symbol", symbol},
              {"arena_bytes", arena},
              {"flops", 0},
              {"dispatch_plans", json::array()},
              {"arguments", arguments},
              {"results", {{{"index", 0}, {"kind", "loss"}}}}};
    f.update(extra);
    return f;
  };
  json m = {{"format", "moe-package/2"},
            {"model", "m"},
            {"optimizer", "adam"},
            {"functions",
             {{"train_step", function("m_train_step", 1000, true)},
              {"eval", function("m_eval", 300, false)}}}};
  return m.dump();
}

} // namespace

TEST(MemoryEstimate, ReplicatedTensorsOnceArenasOfTheFunctionsRun) {
  TempPackage dir("plain", manifest(false));
  Package package = dir.open();
  MemoryEstimate train =
      estimateMemory(package, 1, functionsOf(package, "train"));
  EXPECT_EQ(train.parameters, 4u * (32 + 1024));
  EXPECT_EQ(train.optimizerState, 8u + 2 * 4 * (32 + 1024));
  EXPECT_EQ(train.arenas, 1300u);
  EXPECT_EQ(train.inputs, 2u * 40);
  EXPECT_EQ(train.pools, 0u) << "replicated gradients are in the arena";
  EXPECT_EQ(train.total(), 4224u + 8456 + 1300 + 80);
  // Evaluation runs the eval copy only, but holds every tensor.
  MemoryEstimate eval =
      estimateMemory(package, 1, functionsOf(package, "eval"));
  EXPECT_EQ(eval.optimizerState, train.optimizerState);
  EXPECT_EQ(eval.arenas, 300u);
  EXPECT_EQ(eval.inputs, 40u);
  // Replicated: the same on every rank, and no larger rank count divides.
  EXPECT_EQ(estimateMemory(package, 4, {"train_step"}).parameters,
            train.parameters);
  EXPECT_TRUE(largerRankCounts(package, 1).empty());
}

TEST(MemoryEstimate, SummedSparseRowsGrowWithTheRanks) {
  // A data-parallel step whose vocabulary layers sum 1000 bytes of rows
  // per rank over the ranks: R ranks each hold R times that.
  TempPackage dir("rows", manifest(false, 1000));
  Package package = dir.open();
  for (int ranks : {1, 2, 4})
    EXPECT_EQ(
        estimateMemory(package, ranks, functionsOf(package, "train")).pools,
        1000u * ranks);
  EXPECT_EQ(estimateMemory(package, 4, functionsOf(package, "eval")).pools, 0u)
      << "evaluation computes no gradients";
}

TEST(MemoryEstimate, ShardedTensorsDivideByTheRanks) {
  TempPackage dir("ep", manifest(true));
  Package package = dir.open();
  std::vector<std::string> functions = functionsOf(package, "train");
  for (int ranks : {1, 2, 4}) {
    MemoryEstimate m = estimateMemory(package, ranks, functions);
    EXPECT_EQ(m.ranks, ranks);
    EXPECT_EQ(m.parameters, 4u * (32 + 1024 / ranks));
    EXPECT_EQ(m.optimizerState, 8u + 2 * 4 * (32 + 1024 / ranks));
    EXPECT_EQ(m.arenas, 1300u);
    // The train step's gradient of the shard, from its pool.
    EXPECT_EQ(m.pools, 4u * 1024 / ranks);
    EXPECT_EQ(m.total(),
              m.parameters + m.optimizerState + m.arenas + m.inputs + m.pools);
  }
  EXPECT_EQ(estimateMemory(package, 1, functionsOf(package, "eval")).pools, 0u)
      << "evaluation computes no gradients";
  // Four experts: 2 and 4 ranks divide them, 8 does not.
  EXPECT_EQ(largerRankCounts(package, 1), (std::vector<int>{2, 4}));
  EXPECT_THROW(estimateMemory(package, 3, functions), std::runtime_error);
}

TEST(MemoryEstimate, FitVerdictNamesTheNumbersAndTheRanksThatFit) {
  TempPackage dir("fit", manifest(true));
  Package package = dir.open();
  std::vector<std::string> functions = functionsOf(package, "train");
  uint64_t one = estimateMemory(package, 1, functions).total();
  uint64_t four = estimateMemory(package, 4, functions).total();
  EXPECT_FALSE(checkFits(package, 1, functions, one, "limit"));
  std::optional<std::string> error =
      checkFits(package, 1, functions, four, "the limit is");
  ASSERT_TRUE(error);
  EXPECT_EQ(*error,
            "needs " + formatBytes(one) + " per rank on 1 rank, the limit is " +
                formatBytes(four) + "; fits on 4 ranks (expert-parallel)");
  error = checkFits(package, 1, functions, four - 1, "the limit is");
  ASSERT_TRUE(error);
  EXPECT_NE(error->find("does not fit on any rank count"), std::string::npos);
}

TEST(MemoryEstimate, FormatAndParseBytes) {
  EXPECT_EQ(formatBytes(160), "160 B");
  EXPECT_EQ(formatBytes(8904), "8.70 KiB");
  EXPECT_EQ(formatBytes(uint64_t(148) << 30), "148.00 GiB");
  EXPECT_EQ(parseBytes("1000"), 1000u);
  EXPECT_EQ(parseBytes("40K"), 40960u);
  EXPECT_EQ(parseBytes("512M"), uint64_t(512) << 20);
  EXPECT_EQ(parseBytes("1.5GiB"), uint64_t(3) << 29);
  EXPECT_EQ(parseBytes("2T"), uint64_t(2) << 40);
  EXPECT_EQ(parseBytes("64B"), 64u);
  for (const char *bad : {"", "G", "12X", "-1", "1GB2", "1BiB", "nan", "1e30T"})
    EXPECT_THROW(parseBytes(bad), std::invalid_argument) << bad;
}
