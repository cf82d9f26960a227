//===- Corpus.h - Train and test splits of an LM corpus ---------*- C++ -*-===//
//
// Loads a UTF-8 text file with one sentence per line (the demo uses the King
// James Bible, one verse a line), tokenizes it with tokenizeWords, holds out
// a test split, and maps both splits to ids of a vocabulary built from the
// train split alone.
//
// Two test splits, both spread over the whole file:
//  * blocks (the default): the non-empty lines are cut into kSplitBlocks
//    contiguous blocks of equal size and the last testFraction of each block
//    is held out. Adjacent verses are often near duplicates, so holding out
//    single interleaved lines would leak the test set into training.
//  * documents: blank lines separate documents (the sweep's corpus puts one
//    between two books of the Bible) and whole documents are held out, about
//    testFraction of the words: the test text then shares no book, only the
//    language, with the training text.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_DATA_CORPUS_H
#define MOE_RUNTIME_DATA_CORPUS_H

#include "runtime/data/Vocabulary.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moe::rt::data {

/// The number of contiguous blocks the test split is spread over.
constexpr int64_t kSplitBlocks = 20;

/// How the test split is chosen (see the file comment).
enum class TestSplit { Blocks, Documents };

struct CorpusOptions {
  double testFraction = 0.05; ///< in [0, 1)
  TestSplit split = TestSplit::Blocks;
  int64_t vocabSize = 0;      ///< entries incl. <unk> and <eos>; must be >= 2
  int64_t minCount = 1;       ///< rarer train words become <unk>
  int64_t maxLines = 0;       ///< first maxLines non-empty lines; 0: all
};

struct Corpus {
  Vocabulary vocab;
  /// One id sequence per non-empty line, in file order, without <eos>.
  std::vector<std::vector<int32_t>> train, test;
  int64_t trainWords = 0; ///< ids in `train`, <eos> not counted
  int64_t testWords = 0;  ///< ids in `test`, <eos> not counted
  /// Documents read and held out (TestSplit::Documents only; else 0).
  int64_t documents = 0, testDocuments = 0;
};

/// Which of `numLines` non-empty lines are held out for test: line i is in
/// block b = the one with b*numLines/kSplitBlocks <= i <
/// (b+1)*numLines/kSplitBlocks, and the last round(testFraction * size) lines
/// of each block are held out. Throws std::invalid_argument unless
/// 0 <= testFraction < 1.
std::vector<bool> testSplitMask(int64_t numLines, double testFraction);

/// Which of the documents with `documentWords` words each (in file order)
/// are held out for test: walking the documents in order, document d is held
/// out when that brings the held-out words closer to testFraction of the
/// words seen so far, d's included (error diffusion: deterministic, spread
/// over the corpus, and within half a document of testFraction of the
/// words). Throws std::invalid_argument unless 0 <= testFraction < 1 and no
/// count is negative.
std::vector<bool> documentSplitMask(const std::vector<int64_t> &documentWords,
                                    double testFraction);

/// Reads and splits the corpus at `path`. Throws std::runtime_error
/// "corpus <path>: ..." (one line) when the file is missing, unreadable,
/// holds no words or, for TestSplit::Documents, a single document, and
/// std::invalid_argument on bad options.
Corpus loadCorpus(const std::string &path, const CorpusOptions &options);

/// Perplexity on the test split of the unigram model of the train split:
/// p(w) = (count(w) + 1) / (N + V) over the V ids of the vocabulary, with
/// counts of ids (<unk> included) and one <eos> per train sentence, N their
/// sum. The test split is scored with one <eos> per sentence too. The
/// baseline printed next to a model's perplexity; NaN when the test split
/// is empty.
double unigramPerplexity(const Corpus &corpus);

} // namespace moe::rt::data

#endif // MOE_RUNTIME_DATA_CORPUS_H
