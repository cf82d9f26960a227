//===- TranslationDataTest.cpp - Wordpieces and the parallel batcher ------===//
//
// The wordpiece model is trained here, in memory, on a few generated
// sentences, so the tests need no model file. The batcher is checked
// against batches written out by hand and, over whole epochs, against the
// pairs it was given.
//
//===----------------------------------------------------------------------===//

#include "runtime/data/ParallelCorpus.h"
#include "runtime/data/Wordpieces.h"

#include "runtime/DataTestUtil.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

using namespace moe::rt::data;
using moe::test::runtimeErrorOf;
using moe::test::TempFile;

namespace {

using Ids = std::vector<int32_t>;

/// English and French sentences from a few words, varied enough for a
/// 40-piece vocabulary.
std::vector<std::string> trainingSentences() {
  const char *subjects[] = {"the cat", "the dog",  "a bird",
                            "le chat", "le chien", "un oiseau"};
  const char *verbs[] = {"sees", "eats", "likes", "voit", "mange", "aime"};
  const char *objects[] = {"the fish",   "a mouse",    "the bread",
                           "le poisson", "une souris", "le pain"};
  std::vector<std::string> sentences;
  for (const char *s : subjects)
    for (const char *v : verbs)
      for (const char *o : objects)
        sentences.push_back(std::string(s) + " " + v + " " + o + ".");
  return sentences;
}

const Wordpieces &tinyModel() {
  static const Wordpieces model = [] {
    WordpieceTrainOptions options;
    options.vocabSize = 40;
    return Wordpieces::train(trainingSentences(), options);
  }();
  return model;
}

TEST(Wordpieces, TrainedModelHasTheRequestedSpecialIds) {
  const Wordpieces &w = tinyModel();
  EXPECT_EQ(w.size(), 40);
  EXPECT_EQ(w.padId(), 0);
  EXPECT_EQ(w.unkId(), 1);
  EXPECT_EQ(w.bosId(), 2);
  EXPECT_EQ(w.eosId(), 3);
  EXPECT_EQ(w.piece(w.unkId()), "<unk>");
  EXPECT_EQ(w.piece(w.eosId()), "</s>");
  EXPECT_THROW(w.piece(40), std::out_of_range);
  EXPECT_THROW(w.piece(-1), std::out_of_range);
}

TEST(Wordpieces, EncodeDecodeRoundTrip) {
  const Wordpieces &w = tinyModel();
  for (const std::string &sentence : {std::string("the cat sees the fish."),
                                      std::string("le chien aime "
                                                  "une souris."),
                                      std::string("a dog eats le pain.")}) {
    Ids ids = w.encode(sentence);
    ASSERT_FALSE(ids.empty()) << sentence;
    for (int32_t id : ids) {
      EXPECT_GE(id, 4) << sentence; // no special piece in plain text
      EXPECT_LT(id, w.size()) << sentence;
    }
    EXPECT_EQ(w.decode(ids), sentence);
    // Pad, BOS and EOS decode to nothing.
    Ids framed = {w.bosId()};
    framed.insert(framed.end(), ids.begin(), ids.end());
    framed.push_back(w.eosId());
    framed.push_back(w.padId());
    EXPECT_EQ(w.decode(framed), sentence);
  }
  // Characters never seen become <unk>.
  Ids unknown = w.encode("\xE6\x97\xA5"); // U+65E5
  EXPECT_NE(std::find(unknown.begin(), unknown.end(), w.unkId()),
            unknown.end());
  EXPECT_THROW(w.decode({5, 40}), std::out_of_range);
  EXPECT_THROW(w.decode({-1}), std::out_of_range);
}

TEST(Wordpieces, SaveLoadKeepsIdsAndFingerprint) {
  const Wordpieces &w = tinyModel();
  TempFile file("spm.model");
  w.save(file.path());
  Wordpieces loaded = Wordpieces::load(file.path());
  EXPECT_EQ(loaded.size(), w.size());
  EXPECT_EQ(loaded.fingerprint(), w.fingerprint());
  for (const std::string &sentence : trainingSentences())
    EXPECT_EQ(loaded.encode(sentence), w.encode(sentence)) << sentence;
  // Another model has another fingerprint.
  WordpieceTrainOptions options;
  options.vocabSize = 32;
  Wordpieces smaller = Wordpieces::train(trainingSentences(), options);
  EXPECT_EQ(smaller.size(), 32);
  EXPECT_NE(smaller.fingerprint(), w.fingerprint());
}

TEST(Wordpieces, BadModelsAndTrainingGiveOneLineErrors) {
  TempFile missing("missing");
  std::string message =
      runtimeErrorOf([&] { Wordpieces::load(missing.path()); });
  EXPECT_EQ(message.rfind("wordpieces " + missing.path() + ": cannot open", 0),
            0u)
      << message;
  TempFile garbage("garbage");
  garbage.write("not a model\n");
  message = runtimeErrorOf([&] { Wordpieces::load(garbage.path()); });
  EXPECT_NE(message.find(": not a SentencePiece model"), std::string::npos)
      << message;
  TempFile empty("empty");
  empty.write("");
  message = runtimeErrorOf([&] { Wordpieces::load(empty.path()); });
  EXPECT_NE(message.find(": empty file"), std::string::npos) << message;
  // The sentences cannot fill 5000 pieces.
  WordpieceTrainOptions options;
  options.vocabSize = 5000;
  message =
      runtimeErrorOf([&] { Wordpieces::train(trainingSentences(), options); });
  EXPECT_EQ(message.rfind("wordpieces: training failed: ", 0), 0u) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST(ParallelText, ReadsAlignedLines) {
  TempFile en("en"), fr("fr");
  en.write("one\r\ntwo\n\nfour");
  fr.write("un\ndeux\nvide\nquatre\n");
  ParallelText text = readParallelText(en.path(), fr.path());
  EXPECT_EQ(text.source, (std::vector<std::string>{"one", "two", "", "four"}));
  EXPECT_EQ(text.target,
            (std::vector<std::string>{"un", "deux", "vide", "quatre"}));
  ParallelIds ids = encodeParallel(text, tinyModel());
  ASSERT_EQ(ids.source.size(), 4u);
  EXPECT_EQ(ids.source[1], tinyModel().encode("two"));
  EXPECT_EQ(ids.target[3], tinyModel().encode("quatre"));
  EXPECT_TRUE(ids.source[2].empty());
}

TEST(ParallelText, MissingFilesAndMismatchedLinesGiveOneLineErrors) {
  TempFile en("en"), fr("fr"), missing("missing");
  en.write("one\ntwo\nthree\n");
  fr.write("un\ndeux\n");
  EXPECT_EQ(runtimeErrorOf([&] { readParallelText(en.path(), fr.path()); }),
            "parallel corpus " + en.path() + ", " + fr.path() +
                ": 3 lines but 2");
  std::string message =
      runtimeErrorOf([&] { readParallelText(en.path(), missing.path()); });
  EXPECT_EQ(
      message.rfind("parallel corpus " + missing.path() + ": cannot open", 0),
      0u)
      << message;
}

/// Three pairs with ids >= 4; the batches below are written out by hand.
ParallelIds threePairs() {
  ParallelIds pairs;
  pairs.source = {{5, 6, 7}, {10}, {14, 15}};
  pairs.target = {{8, 9}, {11, 12, 13}, {16}};
  return pairs;
}

constexpr ParallelSpecialIds kIds{/*pad=*/0, /*bos=*/2, /*eos=*/3};

/// One batch's buffers.
struct Batch {
  explicit Batch(ParallelBatchShape shape)
      : sourceIds(shape.batch * shape.sourceLength), sourceLengths(shape.batch),
        decoderInputs(shape.batch * shape.targetLength),
        decoderTargets(shape.batch * shape.targetLength) {}
  ParallelBatchBuffers buffers() {
    return {sourceIds.data(), sourceLengths.data(), decoderInputs.data(),
            decoderTargets.data()};
  }
  bool operator==(const Batch &o) const {
    return sourceIds == o.sourceIds && sourceLengths == o.sourceLengths &&
           decoderInputs == o.decoderInputs &&
           decoderTargets == o.decoderTargets;
  }
  Ids sourceIds, sourceLengths, decoderInputs, decoderTargets;
};

TEST(ParallelBatcher, SmallBatchesByHand) {
  ParallelBatchShape shape{/*batch=*/2, /*sourceLength=*/3,
                           /*targetLength=*/4};
  ParallelBatcher batcher(threePairs(), shape, kIds, LongPairs::Skip, 0,
                          /*shuffle=*/false);
  EXPECT_EQ(batcher.pairsPerEpoch(), 3);
  EXPECT_EQ(batcher.batchesPerEpoch(), 2);
  // (2 + EOS) + (3 + EOS) + (1 + EOS).
  EXPECT_EQ(batcher.targetsPerEpoch(), 9);
  Batch b(shape);
  ASSERT_TRUE(batcher.next(b.buffers()));
  EXPECT_EQ(b.sourceIds, (Ids{5, 6, 7, /**/ 10, 0, 0}));
  EXPECT_EQ(b.sourceLengths, (Ids{3, 1}));
  EXPECT_EQ(b.decoderInputs, (Ids{2, 8, 9, 0, /**/ 2, 11, 12, 13}));
  EXPECT_EQ(b.decoderTargets, (Ids{8, 9, 3, -1, /**/ 11, 12, 13, 3}));
  EXPECT_EQ(batcher.batchPairs(), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(batcher.realTargets(b.decoderTargets.data()), 7);
  ASSERT_TRUE(batcher.next(b.buffers()));
  // The second row pads the epoch's last batch: one pad piece, no target.
  EXPECT_EQ(b.sourceIds, (Ids{14, 15, 0, /**/ 0, 0, 0}));
  EXPECT_EQ(b.sourceLengths, (Ids{2, 1}));
  EXPECT_EQ(b.decoderInputs, (Ids{2, 16, 0, 0, /**/ 0, 0, 0, 0}));
  EXPECT_EQ(b.decoderTargets, (Ids{16, 3, -1, -1, /**/ -1, -1, -1, -1}));
  EXPECT_EQ(batcher.batchPairs(), (std::vector<int64_t>{2, -1}));
  EXPECT_EQ(batcher.position().batch, 2);
  EXPECT_FALSE(batcher.next(b.buffers()));
  EXPECT_EQ(batcher.position().epoch, 1);
  EXPECT_EQ(batcher.position().batch, 0);
  // Epoch 1, unshuffled, starts like epoch 0.
  ASSERT_TRUE(batcher.next(b.buffers()));
  EXPECT_EQ(b.sourceIds, (Ids{5, 6, 7, /**/ 10, 0, 0}));
}

TEST(ParallelBatcher, LongPairsAreSkippedOrTruncated) {
  // S = 2 cuts pair 0's source (3 pieces); T = 3 leaves room for 2 target
  // pieces and EOS, which pair 1 (3 pieces) exceeds.
  ParallelBatchShape shape{/*batch=*/3, /*sourceLength=*/2,
                           /*targetLength=*/3};
  ParallelBatcher skip(threePairs(), shape, kIds, LongPairs::Skip, 0, false);
  EXPECT_EQ(skip.pairsPerEpoch(), 1);
  EXPECT_EQ(skip.skippedLong(), 2);
  EXPECT_EQ(skip.truncated(), 0);
  Batch b(shape);
  ASSERT_TRUE(skip.next(b.buffers()));
  EXPECT_EQ(skip.batchPairs(), (std::vector<int64_t>{2, -1, -1}));
  EXPECT_EQ(b.sourceIds, (Ids{14, 15, /**/ 0, 0, /**/ 0, 0}));

  ParallelBatcher cut(threePairs(), shape, kIds, LongPairs::Truncate, 0, false);
  EXPECT_EQ(cut.pairsPerEpoch(), 3);
  EXPECT_EQ(cut.skippedLong(), 0);
  EXPECT_EQ(cut.truncated(), 2);
  // 3 + 3 (cut, no EOS) + 2.
  EXPECT_EQ(cut.targetsPerEpoch(), 8);
  ASSERT_TRUE(cut.next(b.buffers()));
  EXPECT_EQ(b.sourceIds, (Ids{5, 6, /**/ 10, 0, /**/ 14, 15}));
  EXPECT_EQ(b.sourceLengths, (Ids{2, 1, 2}));
  // Pair 1's target keeps its 3 pieces as targets, without EOS.
  EXPECT_EQ(b.decoderInputs, (Ids{2, 8, 9, /**/ 2, 11, 12, /**/ 2, 16, 0}));
  EXPECT_EQ(b.decoderTargets, (Ids{8, 9, 3, /**/ 11, 12, 13, /**/ 16, 3, -1}));
}

TEST(ParallelBatcher, EmptySidesAndBadArgumentsAreRejected) {
  ParallelIds pairs = threePairs();
  pairs.source.push_back({});
  pairs.target.push_back({4});
  pairs.source.push_back({4});
  pairs.target.push_back({});
  ParallelBatchShape shape{2, 3, 4};
  ParallelBatcher batcher(pairs, shape, kIds, LongPairs::Skip, 0, false);
  EXPECT_EQ(batcher.skippedEmpty(), 2);
  EXPECT_EQ(batcher.pairsPerEpoch(), 3);

  auto make = [&](const ParallelIds &p, ParallelBatchShape s,
                  ParallelSpecialIds ids) {
    ParallelBatcher(p, s, ids, LongPairs::Skip, 0, false);
  };
  EXPECT_THROW(make(pairs, {0, 3, 4}, kIds), std::invalid_argument);
  EXPECT_THROW(make(pairs, {2, 0, 4}, kIds), std::invalid_argument);
  EXPECT_THROW(make(pairs, {2, 3, 1}, kIds), std::invalid_argument);
  EXPECT_THROW(make(pairs, shape, {0, -1, 3}), std::invalid_argument);
  ParallelIds negative = threePairs();
  negative.target[1][0] = -1;
  EXPECT_THROW(make(negative, shape, kIds), std::invalid_argument);
  ParallelIds ragged = threePairs();
  ragged.target.pop_back();
  EXPECT_THROW(make(ragged, shape, kIds), std::invalid_argument);
  // Nothing fits in one source piece.
  ParallelIds longOnly;
  longOnly.source = {{4, 5}};
  longOnly.target = {{6}};
  EXPECT_THROW(make(longOnly, {1, 1, 4}, kIds), std::invalid_argument);
}

/// `count` pairs of varied lengths whose first source id is 100 + index, so
/// a row tells which pair it holds.
ParallelIds numberedPairs(int count) {
  ParallelIds pairs;
  for (int i = 0; i < count; ++i) {
    Ids source = {100 + i};
    for (int k = 0; k < i % 5; ++k)
      source.push_back(4 + k);
    Ids target(1 + i % 4, 4 + i % 7);
    pairs.source.push_back(source);
    pairs.target.push_back(target);
  }
  return pairs;
}

/// The batches of the epoch that `batcher` is at, until next() ends it.
std::vector<Batch> restOfEpoch(ParallelBatcher &batcher,
                               ParallelBatchShape shape) {
  std::vector<Batch> batches;
  for (Batch b(shape); batcher.next(b.buffers()); b = Batch(shape))
    batches.push_back(b);
  return batches;
}

TEST(ParallelBatcher, EpochsVisitEveryPairOnceShuffledBySeed) {
  ParallelIds pairs = numberedPairs(23);
  ParallelBatchShape shape{/*batch=*/4, /*sourceLength=*/5,
                           /*targetLength=*/5};
  ParallelBatcher batcher(pairs, shape, kIds, LongPairs::Skip, 7, true);
  EXPECT_EQ(batcher.batchesPerEpoch(), 6);
  std::vector<std::vector<int64_t>> orders;
  for (int epoch = 0; epoch < 3; ++epoch) {
    std::vector<int64_t> order;
    int64_t targets = 0;
    Batch b(shape);
    while (batcher.next(b.buffers())) {
      targets += batcher.realTargets(b.decoderTargets.data());
      for (int64_t row = 0; row < shape.batch; ++row) {
        int64_t pair = batcher.batchPairs()[row];
        if (pair < 0)
          continue;
        order.push_back(pair);
        // The row holds that pair: its numbered first piece and target.
        EXPECT_EQ(b.sourceIds[row * shape.sourceLength], 100 + pair);
        EXPECT_EQ(b.sourceLengths[row],
                  static_cast<int32_t>(pairs.source[pair].size()));
        EXPECT_EQ(b.decoderTargets[row * shape.targetLength],
                  pairs.target[pair][0]);
      }
    }
    EXPECT_EQ(targets, batcher.targetsPerEpoch());
    std::vector<int64_t> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    std::vector<int64_t> all(23);
    for (int64_t i = 0; i < 23; ++i)
      all[i] = i;
    EXPECT_EQ(sorted, all) << "epoch " << epoch;
    orders.push_back(order);
  }
  EXPECT_NE(orders[0], orders[1]);
  EXPECT_NE(orders[1], orders[2]);
  // Another seed, another order; the same seed, the same.
  ParallelBatcher other(pairs, shape, kIds, LongPairs::Skip, 8, true);
  ParallelBatcher same(pairs, shape, kIds, LongPairs::Skip, 7, true);
  std::vector<Batch> a = restOfEpoch(other, shape);
  std::vector<Batch> b = restOfEpoch(same, shape);
  ParallelBatcher first(pairs, shape, kIds, LongPairs::Skip, 7, true);
  std::vector<Batch> c = restOfEpoch(first, shape);
  EXPECT_TRUE(b == c);
  EXPECT_FALSE(a == c);
}

TEST(ParallelBatcher, SeekReplaysAnUninterruptedRun) {
  ParallelIds pairs = numberedPairs(19);
  ParallelBatchShape shape{3, 5, 5};
  ParallelBatcher reference(pairs, shape, kIds, LongPairs::Skip, 11, true);
  // Record every batch of epochs 0-2 with the position before it.
  std::vector<std::pair<ParallelBatcher::Position, Batch>> run;
  for (int epoch = 0; epoch < 3; ++epoch) {
    for (;;) {
      ParallelBatcher::Position at = reference.position();
      Batch b(shape);
      if (!reference.next(b.buffers()))
        break;
      run.emplace_back(at, b);
    }
  }
  // Resume from a few positions; a fresh batcher replays the rest.
  for (size_t start : {size_t(0), size_t(5), size_t(7), run.size() - 1}) {
    ParallelBatcher resumed(pairs, shape, kIds, LongPairs::Skip, 11, true);
    resumed.seek(run[start].first);
    for (size_t i = start; i < run.size(); ++i) {
      Batch b(shape);
      if (!resumed.next(b.buffers()))
        ASSERT_TRUE(resumed.next(b.buffers())) << i;
      EXPECT_TRUE(b == run[i].second) << "batch " << i << " from " << start;
    }
  }
  ParallelBatcher batcher(pairs, shape, kIds, LongPairs::Skip, 11, true);
  EXPECT_THROW(batcher.seek({0, batcher.batchesPerEpoch() + 1}),
               std::invalid_argument);
  EXPECT_THROW(batcher.seek({-1, 0}), std::invalid_argument);
  batcher.seek({2, batcher.batchesPerEpoch()});
  Batch b(shape);
  EXPECT_FALSE(batcher.next(b.buffers()));
  EXPECT_EQ(batcher.position().epoch, 3);
}

} // namespace
