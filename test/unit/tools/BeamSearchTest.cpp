//===- BeamSearchTest.cpp - moe-run's beam search on hand-made models -----===//
//
// The "models" here are scoring functions whose next-piece probabilities
// are written down, so the best hypothesis of each search is known.
//
//===----------------------------------------------------------------------===//

#include "tools/moe-run/BeamSearch.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

using namespace moe::run;

namespace {

constexpr int32_t kPad = 0, kBos = 2, kEos = 3;
constexpr int32_t kA = 4, kB = 5, kC = 6;
constexpr int64_t kVocab = 7;

BeamOptions options(int64_t width, double alpha, int64_t maxLength = 10) {
  BeamOptions o;
  o.width = width;
  o.lengthPenalty = alpha;
  o.maxLength = maxLength;
  o.eos = kEos;
  o.excluded = {kPad, kBos};
  return o;
}

/// A model given as next-piece probabilities per prefix; a prefix it does
/// not list ends at once.
NextPieceScorer
tableModel(std::map<std::vector<int32_t>, std::map<int32_t, double>> table) {
  return [table](const std::vector<std::vector<int32_t>> &prefixes,
                 std::vector<std::vector<float>> &logProbs) {
    for (size_t i = 0; i < prefixes.size(); ++i) {
      std::vector<float> row(kVocab, -INFINITY);
      auto it = table.find(prefixes[i]);
      if (it == table.end())
        row[kEos] = 0;
      else
        for (auto [piece, p] : it->second)
          row[piece] = static_cast<float>(std::log(p));
      logProbs[i] = row;
    }
  };
}

/// A model whose next-piece distribution is a pseudo-random function of the
/// prefix (a hash of it seeds the draw).
NextPieceScorer randomModel(uint32_t seed) {
  return [seed](const std::vector<std::vector<int32_t>> &prefixes,
                std::vector<std::vector<float>> &logProbs) {
    for (size_t i = 0; i < prefixes.size(); ++i) {
      uint32_t h = seed * 2654435761u;
      for (int32_t p : prefixes[i])
        h = (h ^ static_cast<uint32_t>(p)) * 16777619u;
      std::mt19937 rng(h);
      std::normal_distribution<float> normal(0.0f, 2.0f);
      std::vector<float> row(kVocab);
      for (float &x : row)
        x = normal(rng);
      logSoftmax(row.data(), kVocab);
      logProbs[i] = row;
    }
  };
}

/// Greedy decoding written out: the most likely allowed piece each step.
std::vector<int32_t> greedy(const NextPieceScorer &model, int64_t maxLength) {
  std::vector<int32_t> prefix;
  for (;;) {
    std::vector<std::vector<float>> logProbs(1);
    model({prefix}, logProbs);
    int32_t best = kEos;
    if (static_cast<int64_t>(prefix.size()) < maxLength)
      for (int32_t v = 0; v < kVocab; ++v)
        if (v != kPad && v != kBos && logProbs[0][v] > logProbs[0][best])
          best = v;
    prefix.push_back(best);
    if (best == kEos)
      return prefix;
  }
}

} // namespace

TEST(BeamSearchTest, LengthPenaltyIsGnmts) {
  EXPECT_DOUBLE_EQ(lengthPenalty(1, 0.6), 1.0);
  EXPECT_DOUBLE_EQ(lengthPenalty(7, 0.6), std::pow(12.0 / 6.0, 0.6));
  EXPECT_DOUBLE_EQ(lengthPenalty(30, 0.0), 1.0);
}

TEST(BeamSearchTest, WidthOneIsGreedy) {
  for (uint32_t seed = 1; seed <= 50; ++seed) {
    NextPieceScorer model = randomModel(seed);
    Hypothesis h = beamSearch(options(1, 0.6, 8), kVocab, model);
    EXPECT_EQ(h.pieces, greedy(model, 8)) << "seed " << seed;
  }
}

TEST(BeamSearchTest, WiderBeamFindsWhatGreedyMisses) {
  // Greedy takes A (0.5), after which nothing is likely (at best 0.25):
  // A EOS has probability 0.125. B EOS has 0.4 * 0.9 = 0.36.
  NextPieceScorer model = tableModel({
      {{}, {{kA, 0.5}, {kB, 0.4}, {kC, 0.1}}},
      {{kA}, {{kA, 0.25}, {kB, 0.25}, {kC, 0.25}, {kEos, 0.25}}},
      {{kB}, {{kEos, 0.9}, {kC, 0.1}}},
  });
  Hypothesis greedyBest = beamSearch(options(1, 0.0), kVocab, model);
  EXPECT_EQ(greedyBest.pieces.front(), kA);
  EXPECT_LT(greedyBest.logProb, std::log(0.36));
  Hypothesis wide = beamSearch(options(2, 0.0), kVocab, model);
  EXPECT_EQ(wide.pieces, (std::vector<int32_t>{kB, kEos}));
  EXPECT_NEAR(wide.logProb, std::log(0.36), 1e-6);
  EXPECT_NEAR(wide.score, std::log(0.36), 1e-6);
}

TEST(BeamSearchTest, LengthPenaltyFavoursLongerTranslations) {
  // EOS at once: 0.3. A B EOS: 0.5 * 0.5 * 1.0 = 0.25, less likely but
  // longer: alpha 0 prefers the short one, alpha 2 the long one
  // (log 0.25 / (8/6)^2 = -0.78 > log 0.3 = -1.20).
  NextPieceScorer model = tableModel({
      {{}, {{kEos, 0.3}, {kA, 0.5}, {kC, 0.2}}},
      {{kA}, {{kB, 0.5}, {kEos, 0.1}, {kC, 0.4}}},
      {{kA, kB}, {{kEos, 1.0}}},
      {{kA, kC}, {{kC, 1.0}}},
  });
  Hypothesis shortest = beamSearch(options(3, 0.0), kVocab, model);
  EXPECT_EQ(shortest.pieces, (std::vector<int32_t>{kEos}));
  Hypothesis longer = beamSearch(options(3, 2.0), kVocab, model);
  EXPECT_EQ(longer.pieces, (std::vector<int32_t>{kA, kB, kEos}));
  EXPECT_NEAR(longer.logProb, std::log(0.25), 1e-6);
  EXPECT_NEAR(longer.score, std::log(0.25) / std::pow(8.0 / 6.0, 2.0), 1e-6);
}

TEST(BeamSearchTest, MaxLengthEndsHypotheses) {
  // A model that all but never ends: every hypothesis runs to the limit,
  // where EOS is its only extension.
  NextPieceScorer model = [](const std::vector<std::vector<int32_t>> &prefixes,
                             std::vector<std::vector<float>> &logProbs) {
    for (size_t i = 0; i < prefixes.size(); ++i) {
      std::vector<float> row(kVocab, std::log(0.01f));
      row[kA] = std::log(0.9f);
      row[kEos] = std::log(1e-9f);
      logProbs[i] = row;
    }
  };
  for (int64_t width : {1, 3}) {
    Hypothesis h = beamSearch(options(width, 0.6, 4), kVocab, model);
    ASSERT_EQ(h.pieces.size(), 5u);
    EXPECT_EQ(h.pieces.back(), kEos);
  }
}

TEST(BeamSearchTest, WideBeamNeverScoresBelowGreedy) {
  for (uint32_t seed = 1; seed <= 50; ++seed) {
    NextPieceScorer model = randomModel(seed);
    Hypothesis narrow = beamSearch(options(1, 0.0, 6), kVocab, model);
    Hypothesis wide = beamSearch(options(kVocab, 0.0, 6), kVocab, model);
    EXPECT_GE(wide.score, narrow.score - 1e-9) << "seed " << seed;
    for (int32_t p : wide.pieces)
      EXPECT_TRUE(p != kPad && p != kBos) << "seed " << seed;
  }
}

TEST(BeamSearchTest, RejectsBadArguments) {
  EXPECT_THROW(BeamSearch(options(0, 0.6)), std::invalid_argument);
  BeamSearch search(options(2, 0.6));
  EXPECT_THROW(search.advance({}, kVocab), std::invalid_argument);
  EXPECT_THROW(search.best(), std::logic_error);
}

TEST(BeamSearchTest, ParentsNameTheExtendedHypothesis) {
  // Incremental decoding gathers each row's state from its parent's row:
  // every live hypothesis must be its parent's pieces plus one.
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    NextPieceScorer model = randomModel(seed);
    BeamSearch search(options(3, 0.6, 6));
    while (!search.done()) {
      std::vector<Hypothesis> before = search.live();
      std::vector<std::vector<int32_t>> prefixes;
      for (const Hypothesis &h : before)
        prefixes.push_back(h.pieces);
      std::vector<std::vector<float>> logProbs(prefixes.size());
      model(prefixes, logProbs);
      std::vector<const float *> rows;
      for (const auto &row : logProbs)
        rows.push_back(row.data());
      search.advance(rows, kVocab);
      for (const Hypothesis &h : search.live()) {
        ASSERT_LT(h.parent, before.size()) << "seed " << seed;
        std::vector<int32_t> prefix = before[h.parent].pieces;
        ASSERT_EQ(h.pieces.size(), prefix.size() + 1);
        EXPECT_TRUE(std::equal(prefix.begin(), prefix.end(), h.pieces.begin()))
            << "seed " << seed;
      }
    }
  }
}
