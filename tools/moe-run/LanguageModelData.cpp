//===- LanguageModelData.cpp - A corpus for a language model --------------===//
//
// Batches come from rt::data::LmBatcher: one stream of sentences, each
// ended by <eos>, shuffled per epoch by the seed. The global batch of R
// ranks is R compiled batches cut from that stream and rank r feeds the
// r-th, so R ranks read what one rank compiled for R times the batch reads.
//
//===----------------------------------------------------------------------===//

#include "tools/moe-run/LanguageModelData.h"

#include "tools/moe-run/Metrics.h"
#include "tools/moe-run/Package.h"

#include "runtime/Fnv1a.h"
#include "runtime/checkpoint/Checkpoint.h"
#include "runtime/data/Batcher.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

namespace moe::run {

std::string hex64(uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx",
                static_cast<unsigned long long>(value));
  return text;
}

std::string splitFingerprint(const std::vector<std::vector<int32_t>> &split) {
  rt::Fnv1a hash;
  for (const auto &sentence : split) {
    hash.integer(sentence.size());
    for (int32_t id : sentence)
      hash.integer(static_cast<uint32_t>(id));
  }
  return hex64(hash.value());
}

namespace {

/// [batch * ranks, time] blocks of tokens and targets from one stream, of
/// which this rank feeds rows [rank * batch, (rank + 1) * batch).
class LmBatches : public BatcherSource<rt::data::LmBatcher> {
public:
  LmBatches(const std::vector<std::vector<int32_t>> &sentences,
            const LmShape &shape, int rank, int ranks, uint64_t seed,
            bool shuffle, int32_t paddingTarget)
      : BatcherSource(sentences, shape.batch * ranks, shape.time, seed,
                      shuffle),
        tokens(shape.batch * ranks * shape.time), targets(tokens.size()),
        rankTokens(shape.batch * shape.time), rankOffset(rank * rankTokens),
        paddingTarget(paddingTarget) {
    arrays = {{"tokens", tokens.data() + rankOffset},
              {"targets", targets.data() + rankOffset}};
  }

  bool next() override { return batcher.next(tokens.data(), targets.data()); }
  const InputArrays &inputs() const override { return arrays; }
  void pad() override {
    std::fill_n(tokens.begin() + rankOffset, rankTokens, rt::data::kEosId);
    std::fill_n(targets.begin() + rankOffset, rankTokens, paddingTarget);
  }
  int64_t realTargets() const override {
    return batcher.realTargets(targets.data());
  }

private:
  std::vector<int32_t> tokens, targets;
  int64_t rankTokens, rankOffset;
  int32_t paddingTarget;
  InputArrays arrays;
};

rt::data::Corpus loadData(const DataOptions &data, const LmShape &shape,
                          bool quiet) {
  if (data.path.empty())
    throw std::runtime_error("--data is required: a text file, one "
                             "sentence per line");
  int64_t vocab = data.vocabSize ? data.vocabSize : shape.vocab;
  if (vocab > shape.vocab)
    throw std::runtime_error("--vocab-size " + std::to_string(vocab) +
                             " exceeds the model's vocabulary of " +
                             std::to_string(shape.vocab));
  rt::data::CorpusOptions options;
  options.testFraction = data.testFraction;
  options.split = data.testSplit == "documents" ? rt::data::TestSplit::Documents
                                                : rt::data::TestSplit::Blocks;
  options.vocabSize = vocab;
  options.minCount = data.minCount;
  options.maxLines = data.maxLines;
  auto start = Clock::now();
  rt::data::Corpus corpus = rt::data::loadCorpus(data.path, options);
  if (!quiet)
    std::printf("data: %s: %zu train / %zu test sentences, %lld / %lld "
                "words, vocabulary %lld (%.2fs)\n",
                data.path.c_str(), corpus.train.size(), corpus.test.size(),
                static_cast<long long>(corpus.trainWords),
                static_cast<long long>(corpus.testWords),
                static_cast<long long>(corpus.vocab.size()),
                secondsSince(start));
  if (!quiet && corpus.documents)
    std::printf("data: %lld of %lld documents held out for test\n",
                static_cast<long long>(corpus.testDocuments),
                static_cast<long long>(corpus.documents));
  if (corpus.train.empty())
    throw std::runtime_error("data: " + data.path +
                             " has no training sentences");
  return corpus;
}

} // namespace

LmShape languageModelShape(const Package &package) {
  const FunctionInfo &step = *package.function("train_step");
  const ArgumentInfo *tokens = step.input("tokens");
  const ArgumentInfo *targets = step.input("targets");
  std::string inputs;
  // An encoder-decoder model also takes source ids and lengths, which a
  // language-model corpus cannot give.
  bool others = false;
  for (const ArgumentInfo &arg : step.arguments)
    if (arg.role == ArgumentRole::Input) {
      inputs += (inputs.empty() ? "" : ", ") + arg.name;
      others |= arg.name != "tokens" && arg.name != "targets";
    }
  if (others || !tokens || !targets || tokens->shape.size() != 2 ||
      tokens->shape != targets->shape || tokens->dtype != "i32")
    throw std::runtime_error(
        "moe-run trains language models: inputs 'tokens' and 'targets' of "
        "shape [batch, time] (i32); model " +
        package.model() + " has inputs " + inputs);
  if (tokens->idBound < 2)
    throw std::runtime_error("input 'tokens' feeds no embedding: cannot "
                             "tell the vocabulary size");
  return {tokens->shape[0], tokens->shape[1], tokens->idBound};
}

void checkBatchTokens(const LmShape &shape, int64_t batchTokens) {
  int64_t compiled = shape.batch * shape.time;
  if (batchTokens && batchTokens != compiled)
    throw std::runtime_error(
        "--batch-tokens " + std::to_string(batchTokens) +
        ": the model was compiled for batches of " +
        std::to_string(shape.batch) + " x " + std::to_string(shape.time) +
        " = " + std::to_string(compiled) +
        " tokens (change the shapes in the model and recompile)");
}

LanguageModelData::LanguageModelData(const Package &package,
                                     const LmShape &shape,
                                     const DataOptions &options, bool quiet)
    : package(package), shape_(shape), options(options),
      corpus_(loadData(options, shape, quiet)),
      trainFingerprint(splitFingerprint(corpus_.train)) {}

std::unique_ptr<BatchSource>
LanguageModelData::trainingBatches(uint64_t seed, int rank, int ranks) const {
  return std::make_unique<LmBatches>(corpus_.train, shape_, rank, ranks, seed,
                                     /*shuffle=*/true, /*paddingTarget=*/-1);
}

std::unique_ptr<BatchSource>
LanguageModelData::evaluationBatches(const std::string &split) const {
  const auto &sentences = split == "test" ? corpus_.test : corpus_.train;
  if (sentences.empty())
    throw std::runtime_error("the split to evaluate has no sentences "
                             "(raise --test-fraction or use a larger "
                             "corpus)");
  // A padding row scores nothing: targets -1 where the loss allows them,
  // else <eos> (the caller ignores what a padding call returns).
  const ArgumentInfo *targets =
      package.function(package.evaluationFunction())->input("targets");
  int32_t paddingTarget =
      targets && targets->allowsPadding ? -1 : rt::data::kEosId;
  return std::make_unique<LmBatches>(sentences, shape_, /*rank=*/0,
                                     /*ranks=*/1, /*seed=*/0,
                                     /*shuffle=*/false, paddingTarget);
}

std::string LanguageModelData::missingTestSplit() const {
  if (!corpus_.test.empty())
    return "";
  char text[160];
  if (corpus_.documents)
    std::snprintf(text, sizeof(text),
                  "--test-fraction %.3g of %lld documents holds none out",
                  options.testFraction,
                  static_cast<long long>(corpus_.documents));
  else
    std::snprintf(text, sizeof(text),
                  "--test-fraction %.3g of %zu sentences rounds to none per "
                  "block",
                  options.testFraction, corpus_.train.size());
  return text;
}

double LanguageModelData::baselinePerplexity() const {
  return rt::data::unigramPerplexity(corpus_);
}

std::string LanguageModelData::describeBatch(int ranks) const {
  return std::to_string(shape_.batch * ranks) + " x " +
         std::to_string(shape_.time);
}

nlohmann::json LanguageModelData::checkpointFields() const {
  return {{"vocab_size", corpus_.vocab.size()},
          {"vocab_fingerprint", hex64(corpus_.vocab.fingerprint())},
          {"train_fingerprint", trainFingerprint},
          {"batch", {shape_.batch, shape_.time}},
          {"corpus", options.path}};
}

void LanguageModelData::checkCheckpoint(const nlohmann::json &state,
                                        const std::string &dir,
                                        bool resuming) const {
  if (state.value("vocab_fingerprint", "") !=
      hex64(corpus_.vocab.fingerprint()))
    throw rt::CheckpointError(
        "checkpoint " + dir +
        " was trained with another vocabulary (different --data, "
        "--vocab-size or --min-count)");
  if (!resuming)
    return;
  if (state.value("batch", std::vector<int64_t>{}) !=
      std::vector<int64_t>{shape_.batch, shape_.time})
    throw rt::CheckpointError("checkpoint " + dir +
                              " was trained with another batch shape; "
                              "resuming needs the same compiled batch");
  if (state.value("train_fingerprint", "") != trainFingerprint)
    throw rt::CheckpointError(
        "checkpoint " + dir +
        " was trained on another training split (different --data, "
        "--test-fraction, --test-split or --max-lines): its data position "
        "would not "
        "resume the same stream");
}

} // namespace moe::run
