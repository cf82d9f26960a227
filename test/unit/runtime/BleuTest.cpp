//===- BleuTest.cpp - sacreBLEU's 13a tokenizer and corpus BLEU -----------===//
//
// Expected values are worked out by hand in the comments from sacreBLEU's
// definitions (tokenizer_13a.py, BLEU.compute_bleu), not taken from a run
// of this code.
//
//===----------------------------------------------------------------------===//

#include "runtime/data/Bleu.h"

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

using namespace moe::rt::data;

namespace {

TEST(Tokenize13a, SplitsSymbolsAndPunctuation) {
  EXPECT_EQ(tokenize13a("Hello, world!"), "Hello , world !");
  EXPECT_EQ(tokenize13a("(a+b)*c=d; e/f? [g] {h} ~i_j@k#l$m%n"),
            "( a + b ) * c = d ; e / f ? [ g ] { h } ~ i _ j @ k # l $ m % n");
  // Apostrophes and hyphens between letters are not split.
  EXPECT_EQ(tokenize13a("l'homme peut-être"), "l'homme peut-être");
}

TEST(Tokenize13a, PeriodsCommasAndDashesNextToDigits) {
  // '.' and ',' stay inside numbers...
  EXPECT_EQ(tokenize13a("3.14 and 1,000 items."), "3.14 and 1,000 items .");
  // ...but split when only one side is a digit: "1.a" has a digit before
  // (rule 2 does not fire) and a letter after (rule 3 does).
  EXPECT_EQ(tokenize13a("1.a"), "1 . a");
  EXPECT_EQ(tokenize13a("a.5"), "a . 5");
  // Rule 2 consumes "c." and resumes at the second '.', which has a space
  // after it, so rule 3 splits it off: "etc . .".
  EXPECT_EQ(tokenize13a("etc.."), "etc . .");
  // A dash after a digit is split, one after a letter is not.
  EXPECT_EQ(tokenize13a("5-3 x-3"), "5 - 3 x-3");
}

TEST(Tokenize13a, UnescapesSkipsAndJoinsLines) {
  // "<skipped>" goes first; then &quot; &amp; &lt; &gt; in that order, so
  // "&amp;lt;" becomes "&lt;" and then "<".
  EXPECT_EQ(tokenize13a("&quot;quoted&quot; &amp;lt; <skipped>x"),
            "\" quoted \" < x");
  EXPECT_EQ(tokenize13a("&gt;&amp;"), "> &");
  // "-\n" joins a hyphenated word, other line breaks become spaces, and
  // trailing whitespace goes.
  EXPECT_EQ(tokenize13a("co-\noperate\nnow \n"), "cooperate now");
}

TEST(Tokenize13a, UnicodeWhitespaceSeparatesTokens) {
  // French typography: U+00A0 before ':' and U+202F inside guillemets are
  // whitespace for Python's str.split(). '«' and '»' are not ASCII
  // symbols, so only the spaces separate them.
  EXPECT_EQ(tokenize13a("Fichier\u00a0: «\u202fx\u202f»"), "Fichier : « x »");
  // U+3000 and U+2003 too; U+00E9 (é, C3 A9) is no space.
  EXPECT_EQ(tokenize13a("a\u3000b\u2003été"), "a b été");
  EXPECT_EQ(tokenize13a(" \u00a0 "), "");
}

TEST(Bleu, PerfectMatchIs100) {
  BleuScore s =
      corpusBleu({"the cat sat on the mat"}, {"the cat sat on the mat"});
  EXPECT_DOUBLE_EQ(s.score, 100.0);
  EXPECT_DOUBLE_EQ(s.brevityPenalty, 1.0);
  for (double p : s.precisions)
    EXPECT_DOUBLE_EQ(p, 100.0);
  // 6 unigrams, 5 bigrams, 4 trigrams, 3 4-grams, all matching.
  EXPECT_EQ(s.stats.totals, (std::array<int64_t, 4>{6, 5, 4, 3}));
  EXPECT_EQ(s.stats.matches, s.stats.totals);
}

TEST(Bleu, TokenizationMakesPunctuationMatch) {
  // Both tokenize to "Hello , world !".
  EXPECT_DOUBLE_EQ(corpusBleu({"Hello, world!"}, {"Hello , world !"}).score,
                   100.0);
}

TEST(Bleu, BrevityPenalty) {
  // c = 5 < r = 6, every n-gram matches: BLEU = 100 * exp(1 - 6/5)
  // = 100 * exp(-0.2) = 81.873.
  BleuScore s = corpusBleu({"the cat sat on the"}, {"the cat sat on the mat"});
  EXPECT_NEAR(s.brevityPenalty, std::exp(-0.2), 1e-12);
  EXPECT_NEAR(s.score, 100.0 * std::exp(-0.2), 1e-9);
  EXPECT_EQ(s.stats.hypothesisLength, 5);
  EXPECT_EQ(s.stats.referenceLength, 6);
  EXPECT_EQ(s.format(), "BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp = "
                        "81.87 100.0/100.0/100.0/100.0 (BP = 0.819 ratio = "
                        "0.833 hyp_len = 5 ref_len = 6)");
}

TEST(Bleu, ZeroFourGramMatchesAreSmoothedByExp) {
  // "dog" breaks every 4-gram: unigrams 6/7, bigrams 4/6 (the quick, quick
  // brown, fox jumps, jumps over), trigrams 2/5 (the quick brown, fox
  // jumps over), 4-grams 0/4. c = 7 >= r = 6: BP = 1. The first order
  // without a match gets 100 / (2 * 4) = 12.5, so
  // BLEU = (600/7 * 400/6 * 40 * 12.5)^(1/4) = 2857142.86^(1/4) = 41.113.
  std::vector<std::string> hyp = {"the quick brown dog fox jumps over"};
  std::vector<std::string> ref = {"the quick brown fox jumps over"};
  BleuScore s = corpusBleu(hyp, ref);
  EXPECT_EQ(s.stats.matches, (std::array<int64_t, 4>{6, 4, 2, 0}));
  EXPECT_EQ(s.stats.totals, (std::array<int64_t, 4>{7, 6, 5, 4}));
  EXPECT_NEAR(s.precisions[3], 12.5, 1e-12);
  EXPECT_NEAR(s.score, std::pow(600.0 / 7 * 400.0 / 6 * 40.0 * 12.5, 0.25),
              1e-9);
  EXPECT_NEAR(s.score, 41.113, 1e-3);
  // Without smoothing the 4-gram precision is 0 and so is BLEU.
  BleuScore none = corpusBleu(hyp, ref, BleuSmoothing::None);
  EXPECT_EQ(none.precisions[3], 0.0);
  EXPECT_EQ(none.score, 0.0);
  EXPECT_NE(none.format().find("smooth:none = 0.00"), std::string::npos);
}

TEST(Bleu, CountsAreClippedAndEachUnmatchedOrderHalvesAgain) {
  // "the" x4 against one "the": unigrams 1/4 (clipped), bigrams 0/3,
  // trigrams 0/2, 4-grams 0/1. Smoothed: 25, 100/(2*3), 100/(4*2),
  // 100/(8*1): BLEU = (25 * 16.667 * 12.5 * 12.5)^(1/4) = 15.974.
  BleuScore s = corpusBleu({"the the the the"}, {"the cat"});
  EXPECT_EQ(s.stats.matches, (std::array<int64_t, 4>{1, 0, 0, 0}));
  EXPECT_NEAR(s.precisions[0], 25.0, 1e-12);
  EXPECT_NEAR(s.precisions[1], 100.0 / 6, 1e-12);
  EXPECT_NEAR(s.precisions[2], 12.5, 1e-12);
  EXPECT_NEAR(s.precisions[3], 12.5, 1e-12);
  EXPECT_NEAR(s.score, std::pow(25.0 * 100.0 / 6 * 12.5 * 12.5, 0.25), 1e-9);
}

TEST(Bleu, ZeroWhenNothingMatchesOrAnOrderIsMissing) {
  // No match of any order: 0 even with smoothing.
  EXPECT_EQ(corpusBleu({"a b c d"}, {"w x y z"}).score, 0.0);
  // Two-word segments have no trigrams: the loop stops there, precisions
  // 3 and 4 stay 0 and BLEU is 0 although everything matches.
  BleuScore s = corpusBleu({"the cat"}, {"the cat"});
  EXPECT_DOUBLE_EQ(s.precisions[0], 100.0);
  EXPECT_DOUBLE_EQ(s.precisions[1], 100.0);
  EXPECT_EQ(s.precisions[2], 0.0);
  EXPECT_EQ(s.score, 0.0);
  // Empty hypotheses: BP = 0.
  BleuScore empty = corpusBleu({""}, {"a b c d"});
  EXPECT_EQ(empty.brevityPenalty, 0.0);
  EXPECT_EQ(empty.score, 0.0);
}

TEST(Bleu, CorpusSumsStatisticsBeforeTheMean) {
  // Segment 2 alone would score 0 (no trigrams); summed with segment 1 the
  // precisions are 6/6, 4/4, 2/2, 1/1 and only BP = exp(1 - 8/6) remains:
  // 71.653.
  std::vector<std::string> hyp = {"a b c d", "x y"};
  std::vector<std::string> ref = {"a b c d", "x y z w"};
  BleuScore s = corpusBleu(hyp, ref);
  EXPECT_NEAR(s.score, 100.0 * std::exp(1.0 - 8.0 / 6.0), 1e-9);
  BleuStats sum = segmentBleuStats(hyp[0], ref[0]);
  sum += segmentBleuStats(hyp[1], ref[1]);
  EXPECT_EQ(computeBleu(sum).score, s.score);
  EXPECT_THROW(corpusBleu({"a"}, {}), std::invalid_argument);
}

} // namespace
