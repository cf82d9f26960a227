//===- TranslationDatasetTest.cpp - moe-run's translation Dataset ---------===//
//
// TranslationData on a corpus folder written here (a wordpiece model
// trained in memory): the inputs it feeds, source_lengths included (which
// no model compiled today takes), the rows of each data-parallel rank,
// padding rows, resuming at a position, and its checkpoint checks.
//
//===----------------------------------------------------------------------===//

#include "tools/moe-run/TranslationData.h"

#include "runtime/checkpoint/Checkpoint.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

using namespace moe::run;

namespace {

/// A corpus folder in nmt-corpus.py's layout, removed at the end.
class CorpusDir {
public:
  explicit CorpusDir(int64_t vocab = 32, const std::string &tag = "a") {
    const auto *info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = ::testing::TempDir() + "moe-nmt-" + info->name() + "-" + tag + "-" +
            std::to_string(getpid());
    std::filesystem::create_directories(path_);
    const char *nouns[] = {"cat", "dog", "bird", "house", "car"};
    const char *noms[] = {"chat", "chien", "oiseau", "maison", "voiture"};
    std::vector<std::string> all;
    for (const char *split : {"train", "dev", "test"}) {
      std::ofstream en(path_ + "/" + split + ".en"),
          fr(path_ + "/" + split + ".fr");
      int count = std::string(split) == "train" ? 25 : 5;
      for (int i = 0; i < count; ++i) {
        int a = i % 5, b = (i / 5 + a + 1) % 5;
        std::string e = std::string("the ") + nouns[a] + " sees the " +
                        nouns[b] + (i % 3 ? "" : " and the car");
        std::string f = std::string("le ") + noms[a] + " voit le " + noms[b] +
                        (i % 3 ? "" : " et la voiture");
        en << e << "\n";
        fr << f << "\n";
        all.push_back(e);
        all.push_back(f);
      }
    }
    moe::rt::data::WordpieceTrainOptions options;
    options.vocabSize = vocab;
    moe::rt::data::Wordpieces::train(all, options).save(path_ + "/spm.model");
  }
  ~CorpusDir() { std::filesystem::remove_all(path_); }
  const std::string &path() const { return path_; }

private:
  std::string path_;
};

NmtShape tinyShape(bool lengths) {
  NmtShape shape;
  shape.batch = 3;
  shape.sourceLength = 24;
  shape.targetLength = 24;
  shape.vocab = 64;
  shape.sourceLengths = lengths;
  return shape;
}

DataOptions dataAt(const std::string &path) {
  DataOptions options;
  options.path = path;
  return options;
}

std::vector<int32_t> copyOf(const int32_t *data, int64_t count) {
  return std::vector<int32_t>(data, data + count);
}

} // namespace

TEST(TranslationDatasetTest, FeedsSourceLengthsWhenTheModelHasThem) {
  CorpusDir dir;
  for (bool lengths : {false, true}) {
    NmtShape shape = tinyShape(lengths);
    TranslationData data(shape, dataAt(dir.path()), /*quiet=*/true);
    auto batches = data.trainingBatches(1, 0, 1);
    ASSERT_TRUE(batches->next());
    const InputArrays &in = batches->inputs();
    EXPECT_EQ(in.count("source_lengths"), lengths ? 1u : 0u);
    ASSERT_EQ(in.count("source") + in.count("tokens") + in.count("targets"),
              3u);
    int32_t pad = data.wordpieces().padId(), bos = data.wordpieces().bosId();
    for (int64_t row = 0; row < shape.batch; ++row) {
      const int32_t *source = in.at("source") + row * shape.sourceLength;
      int64_t real = std::count_if(source, source + shape.sourceLength,
                                   [&](int32_t id) { return id != pad; });
      if (lengths)
        EXPECT_EQ(in.at("source_lengths")[row], real) << "row " << row;
      EXPECT_EQ(in.at("tokens")[row * shape.targetLength], bos);
    }
  }
}

TEST(TranslationDatasetTest, RanksFeedTheirRowsOfOneStream) {
  CorpusDir dir;
  NmtShape shape = tinyShape(true);
  TranslationData data(shape, dataAt(dir.path()), true);
  NmtShape wide = shape;
  wide.batch = 2 * shape.batch;
  TranslationData global(wide, dataAt(dir.path()), true);
  int64_t S = shape.sourceLength, T = shape.targetLength, B = shape.batch;
  auto whole = global.trainingBatches(7, 0, 1);
  auto rank0 = data.trainingBatches(7, 0, 2);
  auto rank1 = data.trainingBatches(7, 1, 2);
  for (int step = 0; step < 6; ++step) {
    bool more = whole->next();
    ASSERT_EQ(rank0->next(), more);
    ASSERT_EQ(rank1->next(), more);
    if (!more)
      continue;
    const InputArrays &w = whole->inputs();
    for (auto [rank, source] : {std::pair{0, rank0.get()}, {1, rank1.get()}}) {
      const InputArrays &r = source->inputs();
      EXPECT_EQ(copyOf(r.at("source"), B * S),
                copyOf(w.at("source") + rank * B * S, B * S));
      EXPECT_EQ(copyOf(r.at("source_lengths"), B),
                copyOf(w.at("source_lengths") + rank * B, B));
      EXPECT_EQ(copyOf(r.at("tokens"), B * T),
                copyOf(w.at("tokens") + rank * B * T, B * T));
      EXPECT_EQ(copyOf(r.at("targets"), B * T),
                copyOf(w.at("targets") + rank * B * T, B * T));
    }
    EXPECT_EQ(rank0->realTargets(), whole->realTargets());
  }
  // A padding batch scores nothing and attends to one pad piece.
  rank1->pad();
  const InputArrays &p = rank1->inputs();
  for (int64_t i = 0; i < B * T; ++i)
    EXPECT_EQ(p.at("targets")[i], -1);
  for (int64_t row = 0; row < B; ++row)
    EXPECT_EQ(p.at("source_lengths")[row], 1);
}

TEST(TranslationDatasetTest, SeekResumesTheSameBatches) {
  CorpusDir dir;
  NmtShape shape = tinyShape(false);
  TranslationData data(shape, dataAt(dir.path()), true);
  auto a = data.trainingBatches(3, 0, 1);
  std::vector<std::vector<int32_t>> seen;
  nlohmann::json at;
  for (int step = 0; step < 20; ++step) {
    if (step == 11)
      at = a->position();
    if (!a->next())
      continue;
    if (step >= 11)
      seen.push_back(
          copyOf(a->inputs().at("tokens"), shape.batch * shape.targetLength));
  }
  auto b = data.trainingBatches(3, 0, 1);
  b->seek(at);
  std::vector<std::vector<int32_t>> resumed;
  for (int step = 11; step < 20; ++step)
    if (b->next())
      resumed.push_back(
          copyOf(b->inputs().at("tokens"), shape.batch * shape.targetLength));
  EXPECT_GE(at.value("epoch", 0), 1); // 9 batches an epoch: past the first
  EXPECT_EQ(resumed, seen);
}

TEST(TranslationDatasetTest, CheckpointsRefuseAnotherVocabulary) {
  CorpusDir dir, other(30, "b");
  NmtShape shape = tinyShape(false);
  TranslationData data(shape, dataAt(dir.path()), true);
  TranslationData otherData(shape, dataAt(other.path()), true);
  nlohmann::json state = data.checkpointFields();
  EXPECT_NO_THROW(data.checkCheckpoint(state, "ck", true));
  EXPECT_THROW(otherData.checkCheckpoint(state, "ck", false),
               moe::rt::CheckpointError);
  NmtShape longer = shape;
  longer.targetLength = 30;
  TranslationData reshaped(longer, dataAt(dir.path()), true);
  EXPECT_NO_THROW(reshaped.checkCheckpoint(state, "ck", false));
  EXPECT_THROW(reshaped.checkCheckpoint(state, "ck", true),
               moe::rt::CheckpointError);
}

TEST(TranslationDatasetTest, OneLineErrors) {
  CorpusDir dir;
  NmtShape shape = tinyShape(false);
  auto messageOf = [&](const NmtShape &s, const std::string &path) {
    try {
      TranslationData data(s, dataAt(path), true);
    } catch (const std::runtime_error &e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  NmtShape small = shape;
  small.vocab = 20;
  EXPECT_NE(messageOf(small, dir.path())
                .find("has 32 wordpieces, more than "
                      "the model's vocabulary of 20"),
            std::string::npos);
  std::filesystem::remove(dir.path() + "/dev.fr");
  EXPECT_NE(messageOf(shape, dir.path()).find("has no dev.fr"),
            std::string::npos);
  EXPECT_NE(messageOf(shape, dir.path() + "/none").find("is not a folder"),
            std::string::npos);
}
