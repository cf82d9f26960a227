//===- DataTest.cpp - Tokenizer, vocabulary, corpus splits and batcher ----===//
//
// The batcher is checked against a token stream rebuilt here from its
// definition (<eos>, then each sentence and <eos>), so an off-by-one in the
// targets, the row layout or the padding fails. Files live in the gtest
// temporary directory under names unique to the test and the process.
//
//===----------------------------------------------------------------------===//

#include "runtime/data/Batcher.h"
#include "runtime/data/Corpus.h"
#include "runtime/data/Tokenizer.h"
#include "runtime/data/Vocabulary.h"

#include "runtime/DataTestUtil.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

using namespace moe::rt::data;
using moe::test::runtimeErrorOf;
using moe::test::TempFile;

namespace {

using Words = std::vector<std::string>;
using Sentences = std::vector<std::vector<int32_t>>;

/// FNV-1a 64 from its definition.
uint64_t fnv1a(const std::string &bytes) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

/// <eos>, then every sentence of `order` followed by <eos>.
std::vector<int32_t> referenceStream(const Sentences &sentences,
                                     const std::vector<size_t> &order) {
  std::vector<int32_t> stream = {kEosId};
  for (size_t s : order) {
    stream.insert(stream.end(), sentences[s].begin(), sentences[s].end());
    stream.push_back(kEosId);
  }
  return stream;
}

std::vector<size_t> identityOrder(size_t n) {
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i)
    order[i] = i;
  return order;
}

/// Sentences of lengths 0..maxLen-1 (cycling) with ids >= 2, each starting
/// with its own index + 2 so that the order of a stream can be read back.
Sentences makeSentences(int count, int maxLen) {
  Sentences sentences;
  for (int i = 0; i < count; ++i) {
    std::vector<int32_t> s = {i + 2};
    for (int j = 0; j < i % maxLen; ++j)
      s.push_back(1000 + 7 * i + j);
    sentences.push_back(s);
  }
  return sentences;
}

/// One epoch of batches, concatenated.
struct Epoch {
  std::vector<int32_t> tokens, targets;
  int64_t batches = 0;
};

Epoch runEpoch(LmBatcher &batcher, int64_t batch, int64_t seqLen) {
  Epoch epoch;
  std::vector<int32_t> tokens(batch * seqLen), targets(batch * seqLen);
  while (batcher.next(tokens.data(), targets.data())) {
    epoch.tokens.insert(epoch.tokens.end(), tokens.begin(), tokens.end());
    epoch.targets.insert(epoch.targets.end(), targets.begin(), targets.end());
    ++epoch.batches;
  }
  return epoch;
}

/// The sentence order of an epoch, read from the first id of each sentence
/// (see makeSentences) in the token stream.
std::vector<size_t> orderOf(const Epoch &epoch) {
  std::vector<size_t> order;
  bool atStart = false;
  for (size_t p = 0; p < epoch.tokens.size() && epoch.targets[p] != -1; ++p) {
    if (epoch.tokens[p] == kEosId) {
      atStart = true;
      continue;
    }
    if (atStart)
      order.push_back(static_cast<size_t>(epoch.tokens[p] - 2));
    atStart = false;
  }
  return order;
}

} // namespace

//===----------------------------------------------------------------------===//
// Tokenizer
//===----------------------------------------------------------------------===//

TEST(Tokenizer, SplitsWordsAndPunctuation) {
  EXPECT_EQ(tokenizeWords("And God said, Let there be light: and there was "
                          "light."),
            (Words{"And", "God", "said", ",", "Let", "there", "be", "light",
                   ":", "and", "there", "was", "light", "."}));
}

TEST(Tokenizer, EveryPunctuationCharacterIsAToken) {
  EXPECT_EQ(tokenizeWords("a,b;c:d.e?f!(g)\"h\""),
            (Words{"a", ",", "b", ";", "c", ":", "d", ".", "e", "?", "f", "!",
                   "(", "g", ")", "\"", "h", "\""}));
  EXPECT_EQ(tokenizeWords("?!"), (Words{"?", "!"}));
}

TEST(Tokenizer, ApostrophesHyphensAndCaseStay) {
  EXPECT_EQ(tokenizeWords("the LORD's house, his sons' wives"),
            (Words{"the", "LORD's", "house", ",", "his", "sons'", "wives"}));
  EXPECT_EQ(tokenizeWords("well-favoured LORD Lord lord"),
            (Words{"well-favoured", "LORD", "Lord", "lord"}));
}

TEST(Tokenizer, WhitespaceKindsAndUtf8) {
  EXPECT_EQ(tokenizeWords("  Hello\tWORLD\r\n\v\fend  "),
            (Words{"Hello", "WORLD", "end"}));
  // UTF-8 sequences contain no ASCII bytes, so they are never cut.
  EXPECT_EQ(tokenizeWords("caf\xC3\xA9 na\xC3\xAFve."),
            (Words{"caf\xC3\xA9", "na\xC3\xAFve", "."}));
}

TEST(Tokenizer, EmptyAndBlankLinesGiveNoTokens) {
  EXPECT_TRUE(tokenizeWords("").empty());
  EXPECT_TRUE(tokenizeWords(" \t \r\n ").empty());
}

//===----------------------------------------------------------------------===//
// Vocabulary
//===----------------------------------------------------------------------===//

namespace {

/// Counts: the 5, apple 3, Zed 3, mango 3, rare 1.
std::vector<Words> countedSentences() {
  return {{"the", "apple", "the", "mango"},
          {"Zed", "the", "rare", "apple"},
          {"mango", "the", "Zed", "apple", "Zed"},
          {"mango", "the"}};
}

} // namespace

TEST(Vocabulary, DefaultHoldsTheReservedWords) {
  Vocabulary v;
  EXPECT_EQ(v.size(), 2);
  EXPECT_EQ(v.word(kUnkId), "<unk>");
  EXPECT_EQ(v.word(kEosId), "<eos>");
  EXPECT_EQ(v.id("<eos>"), kEosId);
}

TEST(Vocabulary, KeepsMostFrequentWithByteOrderTies) {
  // Ties at count 3 go by byte order: 'Z' (0x5A) < 'a' < 'm'.
  Vocabulary all = Vocabulary::build(countedSentences(), 100);
  EXPECT_EQ(all.words(),
            (Words{"<unk>", "<eos>", "the", "Zed", "apple", "mango", "rare"}));
  EXPECT_EQ(all.size(), 7);

  // maxSize counts the reserved entries: 5 leaves room for three words, so
  // the last of the tied words is cut.
  Vocabulary cut = Vocabulary::build(countedSentences(), 5);
  EXPECT_EQ(cut.words(), (Words{"<unk>", "<eos>", "the", "Zed", "apple"}));
  EXPECT_EQ(cut.id("mango"), kUnkId);
  EXPECT_EQ(cut.id("rare"), kUnkId);
  EXPECT_EQ(cut.id("the"), 2);
  EXPECT_EQ(cut.id("apple"), 4);

  Vocabulary reservedOnly = Vocabulary::build(countedSentences(), 2);
  EXPECT_EQ(reservedOnly.size(), 2);
  EXPECT_EQ(reservedOnly.id("the"), kUnkId);
}

TEST(Vocabulary, MinCountDropsRareWords) {
  Vocabulary v = Vocabulary::build(countedSentences(), 100, /*minCount=*/3);
  EXPECT_EQ(v.words(),
            (Words{"<unk>", "<eos>", "the", "Zed", "apple", "mango"}));
  EXPECT_EQ(v.id("rare"), kUnkId);
  Vocabulary frequent = Vocabulary::build(countedSentences(), 100, 4);
  EXPECT_EQ(frequent.words(), (Words{"<unk>", "<eos>", "the"}));
}

TEST(Vocabulary, UnknownWordsAndIdRange) {
  Vocabulary v = Vocabulary::build(countedSentences(), 100);
  EXPECT_EQ(v.id("never-seen"), kUnkId);
  EXPECT_EQ(v.id("The"), kUnkId); // case matters
  for (int32_t i = 0; i < v.size(); ++i)
    EXPECT_EQ(v.id(v.word(i)), i);
  EXPECT_THROW(v.word(-1), std::out_of_range);
  EXPECT_THROW(v.word(static_cast<int32_t>(v.size())), std::out_of_range);
}

TEST(Vocabulary, ReservedWordsInTheTextKeepTheirIds) {
  Vocabulary v = Vocabulary::build(
      {{"<unk>", "<unk>", "<unk>", "a"}, {"<eos>", "<eos>", "b", "a"}}, 100);
  EXPECT_EQ(v.words(), (Words{"<unk>", "<eos>", "a", "b"}));
}

TEST(Vocabulary, RejectsBadArguments) {
  EXPECT_THROW(Vocabulary::build(countedSentences(), 1), std::invalid_argument);
  EXPECT_THROW(Vocabulary::build(countedSentences(), 10, 0),
               std::invalid_argument);
  EXPECT_THROW(Vocabulary::build({{"a", ""}}, 10), std::invalid_argument);
  EXPECT_THROW(Vocabulary::build({{"a\nb"}}, 10), std::invalid_argument);
}

TEST(Vocabulary, SaveLoadRoundTrip) {
  Vocabulary v = Vocabulary::build(countedSentences(), 100);
  TempFile file("vocab");
  v.save(file.path());
  EXPECT_EQ(file.read(), "<unk>\n<eos>\nthe\nZed\napple\nmango\nrare\n");

  Vocabulary loaded = Vocabulary::load(file.path());
  EXPECT_EQ(loaded.words(), v.words());
  EXPECT_EQ(loaded.fingerprint(), v.fingerprint());
  for (const auto &w : v.words())
    EXPECT_EQ(loaded.id(w), v.id(w));
  EXPECT_EQ(loaded.id("never-seen"), kUnkId);

  // A missing final newline is accepted.
  file.write("<unk>\n<eos>\nx");
  EXPECT_EQ(Vocabulary::load(file.path()).words(),
            (Words{"<unk>", "<eos>", "x"}));
}

TEST(Vocabulary, FingerprintIsFnv1aOfTheSavedFile) {
  // Known answers of FNV-1a 64 guard the reference itself.
  EXPECT_EQ(fnv1a(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a("a"), 0xaf63dc4c8601ec8cull);

  Vocabulary v = Vocabulary::build(countedSentences(), 100);
  TempFile file("vocab");
  v.save(file.path());
  EXPECT_EQ(v.fingerprint(), fnv1a(file.read()));
  EXPECT_EQ(Vocabulary().fingerprint(), fnv1a("<unk>\n<eos>\n"));
}

TEST(Vocabulary, FingerprintChangesWithAnyWord) {
  Vocabulary a = Vocabulary::build({{"x", "x", "y", "z"}}, 100);
  Vocabulary renamed = Vocabulary::build({{"x", "x", "y", "w"}}, 100);
  Vocabulary reordered = Vocabulary::build({{"x", "y", "y", "z"}}, 100);
  Vocabulary shorter = Vocabulary::build({{"x", "x", "y", "z"}}, 4);
  // Same bytes, other word boundaries.
  Vocabulary joinedA = Vocabulary::build({{"ab", "ab", "c"}}, 100);
  Vocabulary joinedB = Vocabulary::build({{"a", "a", "bc"}}, 100);
  EXPECT_EQ(a.fingerprint(),
            Vocabulary::build({{"z", "x", "y", "x"}}, 100).fingerprint());
  EXPECT_NE(a.fingerprint(), renamed.fingerprint());
  EXPECT_NE(a.fingerprint(), reordered.fingerprint());
  EXPECT_NE(a.fingerprint(), shorter.fingerprint());
  EXPECT_NE(joinedA.fingerprint(), joinedB.fingerprint());
}

TEST(Vocabulary, LoadRejectsCorruptFiles) {
  TempFile file("vocab");
  struct Case {
    std::string contents, expected;
  };
  std::vector<Case> cases = {
      {"", "empty file"},
      {"<unk>\n<eos>\nthe\nand\nthe\n",
       "duplicate word 'the' at lines 3 and 5"},
      {"the\nand\n", "first two lines must be <unk> and <eos>"},
      {"<eos>\n<unk>\nthe\n", "first two lines must be <unk> and <eos>"},
      {"<unk>\n", "first two lines must be <unk> and <eos>"},
      {"<unk>\n<eos>\nthe\n\nand\n", "empty word at line 4"},
      {"\n", "empty word at line 1"},
  };
  for (const auto &c : cases) {
    file.write(c.contents);
    std::string message =
        runtimeErrorOf([&] { Vocabulary::load(file.path()); });
    EXPECT_NE(message.find("vocabulary " + file.path() + ": "),
              std::string::npos)
        << message;
    EXPECT_NE(message.find(c.expected), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }

  std::string missing = file.path() + "-missing";
  std::string message = runtimeErrorOf([&] { Vocabulary::load(missing); });
  EXPECT_EQ(message.rfind("vocabulary " + missing + ": cannot open", 0), 0u)
      << message;
}

//===----------------------------------------------------------------------===//
// Corpus
//===----------------------------------------------------------------------===//

TEST(CorpusSplit, BlocksHoldOutTheirLastLines) {
  for (int64_t n : {0, 1, 7, 20, 99, 1000, 31102}) {
    for (double f : {0.0, 0.05, 0.1, 0.3}) {
      std::vector<bool> mask = testSplitMask(n, f);
      ASSERT_EQ(static_cast<int64_t>(mask.size()), n);
      EXPECT_EQ(mask, testSplitMask(n, f)) << "deterministic";
      int64_t total = 0;
      for (int64_t b = 0; b < kSplitBlocks; ++b) {
        int64_t begin = b * n / kSplitBlocks, end = (b + 1) * n / kSplitBlocks;
        int64_t held = 0;
        for (int64_t i = begin; i < end; ++i) {
          // Held-out lines are a suffix of the block.
          if (held > 0) {
            EXPECT_TRUE(mask[i]) << "n=" << n << " f=" << f << " line " << i;
          }
          held += mask[i];
        }
        double want = f * static_cast<double>(end - begin);
        EXPECT_LE(std::abs(static_cast<double>(held) - want), 1.0)
            << "n=" << n << " f=" << f << " block " << b;
        total += held;
      }
      EXPECT_LE(std::abs(static_cast<double>(total) - f * n),
                static_cast<double>(kSplitBlocks));
    }
  }
  // 1000 lines: blocks of 50, the last 5 of each held out at 10%.
  std::vector<bool> mask = testSplitMask(1000, 0.1);
  for (int64_t i = 0; i < 1000; ++i)
    EXPECT_EQ(mask[i], i % 50 >= 45) << i;
  EXPECT_THROW(testSplitMask(10, 1.0), std::invalid_argument);
  EXPECT_THROW(testSplitMask(10, -0.1), std::invalid_argument);
}

namespace {

/// Line i of the synthetic corpus: "x" then the decimal digits of i as
/// separate words, so its index can be read back from ids of train words.
std::string lineOf(int i, bool heldOut) {
  std::string line = "x";
  for (char c : std::to_string(i))
    line += std::string(" ") + c;
  if (heldOut)
    line += " heldout.";
  return line;
}

int indexOf(const Vocabulary &vocab, const std::vector<int32_t> &ids) {
  int index = 0;
  for (size_t k = 1; k < ids.size(); ++k) {
    const std::string &w = vocab.word(ids[k]);
    if (w.size() != 1 || w[0] < '0' || w[0] > '9')
      break;
    index = index * 10 + (w[0] - '0');
  }
  return index;
}

} // namespace

TEST(Corpus, SplitIsDisjointDeterministicAndInFileOrder) {
  constexpr int kLines = 400;
  std::vector<bool> mask = testSplitMask(kLines, 0.1);
  std::string text;
  for (int i = 0; i < kLines; ++i) {
    text += lineOf(i, mask[i]) + "\n";
    if (i % 37 == 0)
      text += "   \n\n"; // blank lines are not sentences
  }
  TempFile file("corpus");
  file.write(text);

  CorpusOptions options;
  options.vocabSize = 100;
  options.testFraction = 0.1;
  Corpus c = loadCorpus(file.path(), options);
  ASSERT_EQ(c.train.size() + c.test.size(), static_cast<size_t>(kLines));
  EXPECT_EQ(c.test.size(), 40u); // blocks of 20 lines, 2 held out each

  // Words seen only in test lines are not in the vocabulary.
  EXPECT_EQ(c.vocab.id("heldout"), kUnkId);
  EXPECT_EQ(c.vocab.id("."), kUnkId);
  EXPECT_EQ(c.vocab.size(), 2 + 1 + 10); // <unk> <eos> x 0..9

  std::vector<int> trainIdx, testIdx;
  int64_t trainWords = 0, testWords = 0;
  for (const auto &s : c.train) {
    trainIdx.push_back(indexOf(c.vocab, s));
    trainWords += static_cast<int64_t>(s.size());
  }
  for (const auto &s : c.test) {
    testIdx.push_back(indexOf(c.vocab, s));
    testWords += static_cast<int64_t>(s.size());
    // "heldout" and "." map to <unk>.
    ASSERT_GE(s.size(), 2u);
    EXPECT_EQ(s[s.size() - 1], kUnkId);
    EXPECT_EQ(s[s.size() - 2], kUnkId);
  }
  EXPECT_EQ(c.trainWords, trainWords);
  EXPECT_EQ(c.testWords, testWords);

  std::vector<int> wantTrain, wantTest;
  for (int i = 0; i < kLines; ++i)
    (mask[i] ? wantTest : wantTrain).push_back(i);
  EXPECT_EQ(trainIdx, wantTrain);
  EXPECT_EQ(testIdx, wantTest);

  Corpus again = loadCorpus(file.path(), options);
  EXPECT_EQ(again.train, c.train);
  EXPECT_EQ(again.test, c.test);
  EXPECT_EQ(again.vocab.fingerprint(), c.vocab.fingerprint());
}

TEST(Corpus, MaxLinesVocabSizeAndLineEndings) {
  // A BOM and CRLF line ends are not part of any word.
  std::string text = "\xEF\xBB\xBF"
                     "b a a\r\n";
  for (int i = 0; i < 59; ++i)
    text += "a b c\r\n";
  TempFile file("corpus");
  file.write(text);

  CorpusOptions options;
  options.vocabSize = 4; // <unk> <eos> a b: c becomes <unk>
  options.testFraction = 0.0;
  options.maxLines = 25;
  Corpus c = loadCorpus(file.path(), options);
  EXPECT_TRUE(c.test.empty());
  ASSERT_EQ(c.train.size(), 25u);
  EXPECT_EQ(c.vocab.words(), (Words{"<unk>", "<eos>", "a", "b"}));
  EXPECT_EQ(c.train[0], (std::vector<int32_t>{3, 2, 2}));
  EXPECT_EQ(c.train[1], (std::vector<int32_t>{2, 3, kUnkId}));
  EXPECT_EQ(c.trainWords, 75);
  EXPECT_TRUE(std::isnan(unigramPerplexity(c)));
}

TEST(Corpus, UnreadableFilesGiveOneLineErrors) {
  TempFile file("corpus");
  std::string missing = file.path() + "-missing";
  CorpusOptions options;
  options.vocabSize = 10;
  std::string message = runtimeErrorOf([&] { loadCorpus(missing, options); });
  EXPECT_EQ(message.rfind("corpus " + missing + ": cannot open", 0), 0u)
      << message;
  EXPECT_EQ(message.find('\n'), std::string::npos);

  file.write("");
  message = runtimeErrorOf([&] { loadCorpus(file.path(), options); });
  EXPECT_EQ(message, "corpus " + file.path() + ": empty file");

  file.write(" \n\t\n\n");
  message = runtimeErrorOf([&] { loadCorpus(file.path(), options); });
  EXPECT_EQ(message.rfind("corpus " + file.path() + ": no words", 0), 0u)
      << message;

  message = runtimeErrorOf([&] { loadCorpus(::testing::TempDir(), options); });
  EXPECT_EQ(message.rfind("corpus " + ::testing::TempDir() + ": cannot", 0), 0u)
      << message;

  // A device or a huge file is not read until memory runs out.
  message = runtimeErrorOf([&] { loadCorpus("/dev/zero", options); });
  EXPECT_EQ(message, "corpus /dev/zero: not a text file (a NUL byte at "
                     "offset 0)");
  file.write("a b\n");
  ASSERT_EQ(::truncate(file.path().c_str(), int64_t(5) << 30), 0); // sparse
  message = runtimeErrorOf([&] { loadCorpus(file.path(), options); });
  EXPECT_EQ(message, "corpus " + file.path() +
                         ": larger than the limit of 4 GiB for a text file");

  file.write("a b\n");
  CorpusOptions bad = options;
  bad.vocabSize = 1;
  EXPECT_THROW(loadCorpus(file.path(), bad), std::invalid_argument);
  bad = options;
  bad.testFraction = 1.0;
  EXPECT_THROW(loadCorpus(file.path(), bad), std::invalid_argument);
}

TEST(CorpusSplit, DocumentsByErrorDiffusion) {
  // By hand at 25%: after document d the target is 0.25 * (words so far);
  // d is held out when held + words/2 falls below it (a tie, as for
  // documents 1 and 5, stays in train).
  //   words  10  10  10  10   2   2   8   8
  //   seen   10  20  30  40  42  44  52  60
  //   target 2.5  5 7.5  10 10.5 11 13  15
  //   held    0   0  10  10  10  10  10  18
  std::vector<int64_t> words = {10, 10, 10, 10, 2, 2, 8, 8};
  EXPECT_EQ(documentSplitMask(words, 0.25),
            (std::vector<bool>{false, false, true, false, false, false, false,
                               true}));
  EXPECT_EQ(documentSplitMask(words, 0.0), std::vector<bool>(8, false));
  EXPECT_EQ(documentSplitMask({}, 0.1), std::vector<bool>{});
  // Empty documents are never held out.
  EXPECT_EQ(documentSplitMask({0, 0, 4}, 0.9),
            (std::vector<bool>{false, false, true}));
  EXPECT_THROW(documentSplitMask(words, 1.0), std::invalid_argument);
  EXPECT_THROW(documentSplitMask(words, -0.1), std::invalid_argument);
  EXPECT_THROW(documentSplitMask({3, -1}, 0.1), std::invalid_argument);

  // Many documents of uneven sizes: deterministic, held-out words within
  // half the largest document of the target, spread over the whole list.
  std::vector<int64_t> uneven;
  for (int i = 0; i < 66; ++i)
    uneven.push_back(100 + (i * 7919) % 3000);
  for (double f : {0.05, 0.1, 0.3}) {
    std::vector<bool> mask = documentSplitMask(uneven, f);
    EXPECT_EQ(mask, documentSplitMask(uneven, f));
    int64_t total = 0, held = 0, firstHeld = -1, lastHeld = -1;
    for (size_t d = 0; d < uneven.size(); ++d) {
      total += uneven[d];
      if (mask[d]) {
        held += uneven[d];
        lastHeld = static_cast<int64_t>(d);
        if (firstHeld < 0)
          firstHeld = static_cast<int64_t>(d);
      }
    }
    EXPECT_LE(std::abs(static_cast<double>(held) - f * total), 1550.0)
        << "f=" << f;
    EXPECT_LT(firstHeld, 33) << "f=" << f;
    EXPECT_GE(lastHeld, 33) << "f=" << f;
  }
}

TEST(Corpus, DocumentsSplitHoldsOutWholeDocuments) {
  // Documents of 10 lines "dN ..." each, separated by blank lines (several
  // and whitespace-only ones count as one separator).
  constexpr int kDocuments = 12, kLinesPerDocument = 10;
  std::string text = "\n";
  for (int d = 0; d < kDocuments; ++d) {
    for (int i = 0; i < kLinesPerDocument; ++i)
      text += "d" + std::to_string(d) + " w" + std::to_string(i) + " x\n";
    text += d % 2 ? "\n" : " \t\n\n";
  }
  TempFile file("corpus");
  file.write(text);

  CorpusOptions options;
  options.vocabSize = 100;
  options.testFraction = 0.2;
  options.split = TestSplit::Documents;
  Corpus c = loadCorpus(file.path(), options);
  std::vector<int64_t> words(kDocuments, 3 * kLinesPerDocument);
  std::vector<bool> mask = documentSplitMask(words, 0.2);
  int64_t heldDocuments = std::count(mask.begin(), mask.end(), true);
  ASSERT_GT(heldDocuments, 0);
  EXPECT_EQ(c.documents, kDocuments);
  EXPECT_EQ(c.testDocuments, heldDocuments);
  EXPECT_EQ(static_cast<int64_t>(c.test.size()),
            heldDocuments * kLinesPerDocument);
  EXPECT_EQ(c.testWords, heldDocuments * kLinesPerDocument * 3);
  EXPECT_EQ(c.trainWords, (kDocuments - heldDocuments) * kLinesPerDocument * 3);
  // Held-out documents' names are unknown to the vocabulary; the others'
  // are known.
  for (int d = 0; d < kDocuments; ++d)
    EXPECT_EQ(c.vocab.id("d" + std::to_string(d)) == kUnkId, mask[d]) << d;
  // The test lines, in file order, are exactly the held-out documents'.
  size_t line = 0;
  for (int d = 0; d < kDocuments; ++d) {
    if (!mask[d])
      continue;
    for (int i = 0; i < kLinesPerDocument; ++i, ++line) {
      ASSERT_LT(line, c.test.size());
      EXPECT_EQ(c.test[line][0], kUnkId);
      EXPECT_EQ(c.vocab.word(c.test[line][1]), "w" + std::to_string(i));
    }
  }

  // The default blocks split ignores the blank lines.
  options.split = TestSplit::Blocks;
  Corpus blocks = loadCorpus(file.path(), options);
  EXPECT_EQ(blocks.documents, 0);
  std::vector<bool> blockMask =
      testSplitMask(kDocuments * kLinesPerDocument, 0.2);
  EXPECT_EQ(blocks.test.size(), static_cast<size_t>(std::count(
                                    blockMask.begin(), blockMask.end(), true)));

  // Without blank lines there is one document: a one-line error.
  file.write("a b\nc d\n");
  options.split = TestSplit::Documents;
  std::string message =
      runtimeErrorOf([&] { loadCorpus(file.path(), options); });
  EXPECT_EQ(message, "corpus " + file.path() +
                         ": one document: the documents test split needs "
                         "blank lines between documents");
}

TEST(Corpus, UnigramPerplexityByHand) {
  // Vocabulary <unk> <eos> a b (V = 4). Train "a a b" and "a": counts
  // a 3, b 1, <eos> 2, <unk> 0, N = 6, so p = (count + 1) / 10:
  // p(a) = 0.4, p(b) = 0.2, p(<eos>) = 0.3, p(<unk>) = 0.1.
  // Test "a <unk>" plus <eos>: ppl = (0.4 * 0.1 * 0.3)^(-1/3).
  Corpus c;
  c.vocab = Vocabulary::build({{"a", "a", "b"}, {"a"}}, 10);
  ASSERT_EQ(c.vocab.words(), (Words{"<unk>", "<eos>", "a", "b"}));
  c.train = {{2, 2, 3}, {2}};
  c.test = {{2, kUnkId}};
  EXPECT_NEAR(unigramPerplexity(c), std::cbrt(1.0 / 0.012), 1e-12);

  // A second test sentence "b": (0.4 * 0.1 * 0.3 * 0.2 * 0.3)^(-1/5).
  c.test.push_back({3});
  EXPECT_NEAR(unigramPerplexity(c), std::pow(1.0 / 0.00072, 0.2), 1e-12);

  c.test.push_back({7});
  EXPECT_THROW(unigramPerplexity(c), std::invalid_argument);
}

//===----------------------------------------------------------------------===//
// Batcher
//===----------------------------------------------------------------------===//

TEST(LmBatcher, SmallStreamByHand) {
  // Stream: <eos> 5 6 <eos> 7 <eos>; five targets, four per batch.
  LmBatcher batcher({{5, 6}, {7}}, /*batch=*/2, /*seqLen=*/2, /*seed=*/0,
                    /*shuffle=*/false);
  EXPECT_EQ(batcher.batchesPerEpoch(), 2);
  EXPECT_EQ(batcher.targetsPerEpoch(), 5);
  std::vector<int32_t> tokens(4), targets(4);
  ASSERT_TRUE(batcher.next(tokens.data(), targets.data()));
  EXPECT_EQ(tokens, (std::vector<int32_t>{1, 5, 6, 1}));
  EXPECT_EQ(targets, (std::vector<int32_t>{5, 6, 1, 7}));
  EXPECT_EQ(batcher.realTargets(targets.data()), 4);
  ASSERT_TRUE(batcher.next(tokens.data(), targets.data()));
  EXPECT_EQ(tokens, (std::vector<int32_t>{7, 1, 1, 1}));
  EXPECT_EQ(targets, (std::vector<int32_t>{1, -1, -1, -1}));
  EXPECT_EQ(batcher.realTargets(targets.data()), 1);

  std::vector<int32_t> untouchedTokens(4, 42), untouchedTargets(4, 42);
  EXPECT_FALSE(batcher.next(untouchedTokens.data(), untouchedTargets.data()));
  EXPECT_EQ(untouchedTokens, std::vector<int32_t>(4, 42));
  EXPECT_EQ(untouchedTargets, std::vector<int32_t>(4, 42));
  EXPECT_EQ(batcher.position().epoch, 1);
  EXPECT_EQ(batcher.position().batch, 0);
  ASSERT_TRUE(batcher.next(tokens.data(), targets.data()));
  EXPECT_EQ(tokens, (std::vector<int32_t>{1, 5, 6, 1}));
}

TEST(LmBatcher, EpochCoversTheStreamOnceInOrder) {
  Sentences sentences = makeSentences(37, 9);
  sentences.insert(sentences.begin() + 5, std::vector<int32_t>{}); // "<eos>"
  std::vector<int32_t> stream =
      referenceStream(sentences, identityOrder(sentences.size()));
  int64_t targetsInStream = static_cast<int64_t>(stream.size()) - 1;
  for (auto [batch, seqLen] : std::vector<std::pair<int64_t, int64_t>>{
           {3, 5}, {1, 1}, {4, 7}, {2, 1000}, {16, 8}}) {
    LmBatcher batcher(sentences, batch, seqLen, 1234, /*shuffle=*/false);
    int64_t perBatch = batch * seqLen;
    EXPECT_EQ(batcher.targetsPerEpoch(), targetsInStream);
    EXPECT_EQ(batcher.batchesPerEpoch(),
              (targetsInStream + perBatch - 1) / perBatch);
    Epoch e = runEpoch(batcher, batch, seqLen);
    ASSERT_EQ(e.batches, batcher.batchesPerEpoch());
    ASSERT_EQ(static_cast<int64_t>(e.targets.size()), e.batches * perBatch);

    // Concatenated batches = the stream (tokens) and the stream shifted by
    // one (targets), then padding only.
    for (int64_t p = 0; p < static_cast<int64_t>(e.targets.size()); ++p) {
      if (p < targetsInStream) {
        ASSERT_EQ(e.tokens[p], stream[p]) << "p=" << p;
        ASSERT_EQ(e.targets[p], stream[p + 1]) << "p=" << p;
      } else {
        ASSERT_EQ(e.tokens[p], kEosId) << "p=" << p;
        ASSERT_EQ(e.targets[p], -1) << "p=" << p;
      }
    }
    // Within a row, the target of s is the token of s + 1.
    for (int64_t row = 0; row < e.batches * batch; ++row)
      for (int64_t s = 0; s + 1 < seqLen; ++s)
        if (e.targets[row * seqLen + s] != -1) {
          ASSERT_EQ(e.targets[row * seqLen + s],
                    e.tokens[row * seqLen + s + 1]);
        }

    int64_t real = 0;
    for (int64_t i = 0; i < e.batches; ++i)
      real += batcher.realTargets(e.targets.data() + i * perBatch);
    EXPECT_EQ(real, targetsInStream);

    // Without shuffling every epoch is the same.
    Epoch second = runEpoch(batcher, batch, seqLen);
    EXPECT_EQ(second.tokens, e.tokens);
    EXPECT_EQ(second.targets, e.targets);
  }
}

TEST(LmBatcher, ShufflesPerEpochAndBySeed) {
  Sentences sentences = makeSentences(50, 6);
  const int64_t batch = 4, seqLen = 8;
  LmBatcher a(sentences, batch, seqLen, 7, true);
  LmBatcher b(sentences, batch, seqLen, 7, true);
  LmBatcher other(sentences, batch, seqLen, 8, true);
  std::vector<std::vector<size_t>> orders;
  for (int epoch = 0; epoch < 3; ++epoch) {
    Epoch ea = runEpoch(a, batch, seqLen);
    Epoch eb = runEpoch(b, batch, seqLen);
    Epoch eo = runEpoch(other, batch, seqLen);
    EXPECT_EQ(ea.tokens, eb.tokens) << "same seed, epoch " << epoch;
    EXPECT_EQ(ea.targets, eb.targets) << "same seed, epoch " << epoch;
    EXPECT_NE(ea.tokens, eo.tokens) << "other seed, epoch " << epoch;

    // The epoch is a permutation of the sentences, laid out as the
    // reference stream of that order.
    std::vector<size_t> order = orderOf(ea);
    ASSERT_EQ(order.size(), sentences.size());
    std::vector<size_t> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(sorted, identityOrder(sentences.size()));
    EXPECT_NE(order, identityOrder(sentences.size()));
    std::vector<int32_t> stream = referenceStream(sentences, order);
    for (size_t p = 0; p + 1 < stream.size(); ++p) {
      ASSERT_EQ(ea.tokens[p], stream[p]);
      ASSERT_EQ(ea.targets[p], stream[p + 1]);
    }
    orders.push_back(order);
  }
  EXPECT_NE(orders[0], orders[1]);
  EXPECT_NE(orders[1], orders[2]);
}

TEST(LmBatcher, ShuffleIsAGoldenFisherYates) {
  // The order given by mt19937_64(7 ^ splitmix64(0)), the rejection draw
  // and the Fisher-Yates, computed by an independent (Python) implementation
  // of all three. A change here breaks the replay of saved data positions.
  Sentences sentences = makeSentences(10, 3);
  LmBatcher batcher(sentences, 2, 4, 7, true);
  std::vector<size_t> order = orderOf(runEpoch(batcher, 2, 4));
  EXPECT_EQ(order, (std::vector<size_t>{3, 7, 4, 6, 2, 8, 0, 5, 1, 9}));
}

TEST(LmBatcher, ShuffleIsUniform) {
  // Three sentences: each of the 6 orders should come up in about 1/6 of
  // the epochs (a Fisher-Yates that draws from the whole range each step
  // gives 4/27 and 5/27 instead). 6000 epochs: sd ~29, bound 5 sd.
  Sentences sentences = {{2}, {3}, {4}};
  LmBatcher batcher(sentences, 1, 6, 99, true);
  std::map<std::vector<size_t>, int> counts;
  for (int epoch = 0; epoch < 6000; ++epoch)
    ++counts[orderOf(runEpoch(batcher, 1, 6))];
  ASSERT_EQ(counts.size(), 6u);
  for (const auto &[order, count] : counts)
    EXPECT_NEAR(count, 1000, 145) << order[0] << order[1] << order[2];
}

TEST(LmBatcher, SeekReproducesTheUninterruptedStream) {
  Sentences sentences = makeSentences(41, 11);
  const int64_t batch = 3, seqLen = 7, perBatch = batch * seqLen;
  for (bool shuffle : {true, false}) {
    // Record 3 epochs of calls: position before the call, result, data.
    struct Call {
      LmBatcher::Position position;
      bool produced;
      std::vector<int32_t> tokens, targets;
    };
    std::vector<Call> calls;
    LmBatcher reference(sentences, batch, seqLen, 2024, shuffle);
    int64_t perEpoch = reference.batchesPerEpoch();
    ASSERT_GE(perEpoch, 4);
    for (int64_t i = 0; i < 3 * (perEpoch + 1); ++i) {
      Call c{reference.position(), false, std::vector<int32_t>(perBatch),
             std::vector<int32_t>(perBatch)};
      c.produced = reference.next(c.tokens.data(), c.targets.data());
      calls.push_back(std::move(c));
    }

    // Mid-epoch, end of epoch, start of the next epoch, the very start.
    for (LmBatcher::Position p :
         {LmBatcher::Position{1, perEpoch / 2},
          LmBatcher::Position{0, perEpoch}, LmBatcher::Position{2, 0},
          LmBatcher::Position{0, 0}, LmBatcher::Position{1, perEpoch - 1}}) {
      size_t from = 0;
      while (from < calls.size() && !(calls[from].position.epoch == p.epoch &&
                                      calls[from].position.batch == p.batch))
        ++from;
      ASSERT_LT(from, calls.size());

      // A fresh batcher, and one whose stream belongs to another epoch.
      LmBatcher fresh(sentences, batch, seqLen, 2024, shuffle);
      LmBatcher stale(sentences, batch, seqLen, 2024, shuffle);
      stale.seek({2, 1});
      std::vector<int32_t> t(perBatch), y(perBatch);
      stale.next(t.data(), y.data());
      for (LmBatcher *resumed : {&fresh, &stale}) {
        resumed->seek(p);
        EXPECT_EQ(resumed->position().epoch, p.epoch);
        EXPECT_EQ(resumed->position().batch, p.batch);
        for (size_t i = from; i < calls.size(); ++i) {
          std::vector<int32_t> tokens(perBatch, -7), targets(perBatch, -7);
          bool produced = resumed->next(tokens.data(), targets.data());
          ASSERT_EQ(produced, calls[i].produced) << "call " << i;
          if (produced) {
            ASSERT_EQ(tokens, calls[i].tokens) << "call " << i;
            ASSERT_EQ(targets, calls[i].targets) << "call " << i;
          }
        }
      }
    }
  }
}

TEST(LmBatcher, RejectsBadArguments) {
  Sentences sentences = {{2, 3}, {4}};
  EXPECT_THROW(LmBatcher({}, 2, 2, 0, false), std::invalid_argument);
  EXPECT_THROW(LmBatcher(sentences, 0, 2, 0, false), std::invalid_argument);
  EXPECT_THROW(LmBatcher(sentences, 2, 0, 0, false), std::invalid_argument);
  EXPECT_THROW(LmBatcher({{2, -1}}, 2, 2, 0, false), std::invalid_argument);
  LmBatcher batcher(sentences, 1, 2, 0, false);
  EXPECT_THROW(batcher.seek({-1, 0}), std::invalid_argument);
  EXPECT_THROW(batcher.seek({0, -1}), std::invalid_argument);
  EXPECT_THROW(batcher.seek({0, batcher.batchesPerEpoch() + 1}),
               std::invalid_argument);
}
