//===- Corpus.cpp - Train and test splits of an LM corpus -----------------===//
//
// The whole file is read at once (the KJV is 4 MB) and tokenized line by
// line; the string tokens live only until both splits are mapped to ids.
//
//===----------------------------------------------------------------------===//

#include "runtime/data/Corpus.h"
#include "runtime/data/TextFile.h"

#include "runtime/data/Tokenizer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace moe::rt::data {

namespace {

std::runtime_error corpusError(const std::string &path,
                               const std::string &what) {
  return std::runtime_error("corpus " + path + ": " + what);
}

std::vector<int32_t> toIds(const Vocabulary &vocab,
                           const std::vector<std::string> &words) {
  std::vector<int32_t> ids;
  ids.reserve(words.size());
  for (const auto &word : words)
    ids.push_back(vocab.id(word));
  return ids;
}

} // namespace

std::vector<bool> testSplitMask(int64_t numLines, double testFraction) {
  if (!(testFraction >= 0.0 && testFraction < 1.0))
    throw std::invalid_argument(
        "testSplitMask: testFraction must be in [0, 1)");
  if (numLines < 0)
    throw std::invalid_argument("testSplitMask: negative line count");
  std::vector<bool> heldOut(numLines, false);
  for (int64_t b = 0; b < kSplitBlocks; ++b) {
    int64_t begin = b * numLines / kSplitBlocks;
    int64_t end = (b + 1) * numLines / kSplitBlocks;
    int64_t test =
        std::llround(testFraction * static_cast<double>(end - begin));
    for (int64_t i = end - test; i < end; ++i)
      heldOut[i] = true;
  }
  return heldOut;
}

std::vector<bool> documentSplitMask(const std::vector<int64_t> &documentWords,
                                    double testFraction) {
  if (!(testFraction >= 0.0 && testFraction < 1.0))
    throw std::invalid_argument(
        "documentSplitMask: testFraction must be in [0, 1)");
  std::vector<bool> heldOut(documentWords.size(), false);
  double seen = 0.0, held = 0.0;
  for (size_t d = 0; d < documentWords.size(); ++d) {
    if (documentWords[d] < 0)
      throw std::invalid_argument("documentSplitMask: negative word count");
    auto words = static_cast<double>(documentWords[d]);
    seen += words;
    // |held + words - target| < |held - target|, for words > 0.
    if (words > 0 && held + words / 2 < testFraction * seen) {
      heldOut[d] = true;
      held += words;
    }
  }
  return heldOut;
}

Corpus loadCorpus(const std::string &path, const CorpusOptions &options) {
  if (options.vocabSize < 2)
    throw std::invalid_argument(
        "loadCorpus: vocabSize must be at least 2 (<unk> and <eos>)");
  if (!(options.testFraction >= 0.0 && options.testFraction < 1.0))
    throw std::invalid_argument("loadCorpus: testFraction must be in [0, 1)");
  if (options.minCount < 1 || options.maxLines < 0)
    throw std::invalid_argument(
        "loadCorpus: minCount must be >= 1 and maxLines >= 0");

  std::string text = readNonEmptyFile(path, "corpus");
  size_t start = 0;
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0)
    start = 3;

  std::vector<std::vector<std::string>> lines;
  // The document of each line and the words of each document; a line
  // without words after one with words starts the next document.
  std::vector<int64_t> lineDocument, documentWords;
  bool inDocument = false;
  while (start < text.size() &&
         (options.maxLines == 0 ||
          static_cast<int64_t>(lines.size()) < options.maxLines)) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos)
      end = text.size();
    auto words =
        tokenizeWords(std::string_view(text).substr(start, end - start));
    if (!words.empty()) {
      if (!inDocument)
        documentWords.push_back(0);
      inDocument = true;
      documentWords.back() += static_cast<int64_t>(words.size());
      lineDocument.push_back(static_cast<int64_t>(documentWords.size()) - 1);
      lines.push_back(std::move(words));
    } else {
      inDocument = false;
    }
    start = end + 1;
  }
  if (lines.empty())
    throw corpusError(path, "no words (every line is empty)");

  std::vector<bool> heldOut;
  int64_t testDocuments = 0;
  if (options.split == TestSplit::Documents) {
    if (documentWords.size() < 2)
      throw corpusError(path, "one document: the documents test split needs "
                              "blank lines between documents");
    std::vector<bool> heldOutDocuments =
        documentSplitMask(documentWords, options.testFraction);
    for (int64_t document : lineDocument)
      heldOut.push_back(heldOutDocuments[document]);
    testDocuments =
        std::count(heldOutDocuments.begin(), heldOutDocuments.end(), true);
  } else {
    heldOut =
        testSplitMask(static_cast<int64_t>(lines.size()), options.testFraction);
  }
  std::vector<std::vector<std::string>> trainWords, testWords;
  for (size_t i = 0; i < lines.size(); ++i)
    (heldOut[i] ? testWords : trainWords).push_back(std::move(lines[i]));

  Corpus corpus;
  if (options.split == TestSplit::Documents) {
    corpus.documents = static_cast<int64_t>(documentWords.size());
    corpus.testDocuments = testDocuments;
  }
  corpus.vocab =
      Vocabulary::build(trainWords, options.vocabSize, options.minCount);
  for (const auto &words : trainWords) {
    corpus.train.push_back(toIds(corpus.vocab, words));
    corpus.trainWords += static_cast<int64_t>(words.size());
  }
  for (const auto &words : testWords) {
    corpus.test.push_back(toIds(corpus.vocab, words));
    corpus.testWords += static_cast<int64_t>(words.size());
  }
  return corpus;
}

double unigramPerplexity(const Corpus &corpus) {
  int64_t V = corpus.vocab.size();
  auto checkId = [&](int32_t id) {
    if (id < 0 || id >= V)
      throw std::invalid_argument("unigramPerplexity: id " +
                                  std::to_string(id) +
                                  " outside the vocabulary");
  };
  std::vector<int64_t> counts(V, 0);
  int64_t total = 0;
  for (const auto &sentence : corpus.train) {
    for (int32_t id : sentence) {
      checkId(id);
      ++counts[id];
    }
    ++counts[kEosId];
    total += static_cast<int64_t>(sentence.size()) + 1;
  }

  double denominator = static_cast<double>(total + V);
  double negLogLikelihood = 0.0;
  int64_t scored = 0;
  auto score = [&](int32_t id) {
    negLogLikelihood -=
        std::log(static_cast<double>(counts[id] + 1) / denominator);
    ++scored;
  };
  for (const auto &sentence : corpus.test) {
    for (int32_t id : sentence) {
      checkId(id);
      score(id);
    }
    score(kEosId);
  }
  if (scored == 0)
    return std::numeric_limits<double>::quiet_NaN();
  return std::exp(negLogLikelihood / static_cast<double>(scored));
}

} // namespace moe::rt::data
