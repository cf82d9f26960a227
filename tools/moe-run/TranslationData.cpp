//===- TranslationData.cpp - A parallel corpus for a translator -----------===//
//
// As for the language model, the global batch of R data-parallel ranks is R
// compiled batches cut from one stream (a ParallelBatcher of R * B rows),
// and rank r feeds rows [r B, (r + 1) B): R ranks read what one rank
// compiled for R times the batch reads, and a checkpoint's position is the
// batcher's.
//
//===----------------------------------------------------------------------===//

#include "tools/moe-run/TranslationData.h"

#include "tools/moe-run/LanguageModelData.h"
#include "tools/moe-run/Metrics.h"
#include "tools/moe-run/Package.h"

#include "runtime/checkpoint/Checkpoint.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <stdexcept>

namespace moe::run {

namespace {

/// [batch * ranks] pairs per global batch, of which this rank feeds rows
/// [rank * batch, (rank + 1) * batch).
class NmtBatches : public BatcherSource<rt::data::ParallelBatcher> {
public:
  NmtBatches(const rt::data::ParallelIds &pairs, const NmtShape &shape,
             rt::data::ParallelSpecialIds ids, rt::data::LongPairs longPairs,
             int rank, int ranks, uint64_t seed, bool shuffle)
      : BatcherSource(pairs,
                      rt::data::ParallelBatchShape{shape.batch * ranks,
                                                   shape.sourceLength,
                                                   shape.targetLength},
                      ids, longPairs, seed, shuffle),
        shape(shape), pad_(ids.pad),
        source(shape.batch * ranks * shape.sourceLength),
        lengths(shape.batch * ranks),
        tokens(shape.batch * ranks * shape.targetLength),
        targets(tokens.size()) {
    int64_t row = rank * shape.batch;
    arrays = {{"source", source.data() + row * shape.sourceLength},
              {"tokens", tokens.data() + row * shape.targetLength},
              {"targets", targets.data() + row * shape.targetLength}};
    if (shape.sourceLengths)
      arrays["source_lengths"] = lengths.data() + row;
    rankRow = row;
  }

  bool next() override {
    return batcher.next(
        {source.data(), lengths.data(), tokens.data(), targets.data()});
  }
  const InputArrays &inputs() const override { return arrays; }
  void pad() override {
    // Rows as the batcher pads them: one pad source piece, no targets.
    int64_t B = shape.batch, S = shape.sourceLength, T = shape.targetLength;
    std::fill_n(source.begin() + rankRow * S, B * S, pad_);
    std::fill_n(lengths.begin() + rankRow, B, 1);
    std::fill_n(tokens.begin() + rankRow * T, B * T, pad_);
    std::fill_n(targets.begin() + rankRow * T, B * T, -1);
  }
  int64_t realTargets() const override {
    return batcher.realTargets(targets.data());
  }

private:
  NmtShape shape;
  int32_t pad_;
  std::vector<int32_t> source, lengths, tokens, targets;
  int64_t rankRow = 0;
  InputArrays arrays;
};

const char *const kCorpusHelp =
    "(scripts/nmt-corpus.py DIR writes a translation corpus)";

/// A held-out split, empty when its files are: nmt-corpus.py may write
/// empty dev or test files for a machine with few catalogs.
rt::data::ParallelText readSplit(const std::string &dir,
                                 const std::string &name) {
  std::string en = dir + "/" + name + ".en", fr = dir + "/" + name + ".fr";
  std::error_code error;
  if (name != "train" && std::filesystem::file_size(en, error) == 0 &&
      std::filesystem::file_size(fr, error) == 0 && !error)
    return {};
  return rt::data::readParallelText(en, fr);
}

int64_t usablePairs(const rt::data::ParallelIds &ids) {
  int64_t count = 0;
  for (size_t i = 0; i < ids.source.size(); ++i)
    count += !ids.source[i].empty() && !ids.target[i].empty();
  return count;
}

rt::data::Wordpieces loadWordpieces(const DataOptions &options,
                                    const NmtShape &shape) {
  if (options.path.empty())
    throw std::runtime_error("--data is required: a translation corpus "
                             "folder " +
                             std::string(kCorpusHelp));
  if (!std::filesystem::is_directory(options.path))
    throw std::runtime_error("data: " + options.path +
                             " is not a folder: a translation model reads "
                             "a corpus folder " +
                             kCorpusHelp);
  for (const char *file : {"spm.model", "train.en", "train.fr", "dev.en",
                           "dev.fr", "test.en", "test.fr"})
    if (!std::filesystem::exists(options.path + "/" + file))
      throw std::runtime_error("data: " + options.path + " has no " + file +
                               " " + kCorpusHelp);
  rt::data::Wordpieces wordpieces =
      rt::data::Wordpieces::load(options.path + "/spm.model");
  if (wordpieces.size() > shape.vocab)
    throw std::runtime_error(
        "data: " + options.path + "/spm.model has " +
        std::to_string(wordpieces.size()) +
        " wordpieces, more than the model's vocabulary of " +
        std::to_string(shape.vocab) + " (build the corpus with --vocab-size " +
        std::to_string(shape.vocab) + " or recompile the model)");
  if (wordpieces.padId() < 0 || wordpieces.bosId() < 0 ||
      wordpieces.eosId() < 0)
    throw std::runtime_error("data: " + options.path +
                             "/spm.model lacks a <pad>, <s> or </s> piece " +
                             kCorpusHelp);
  return wordpieces;
}

} // namespace

bool isTranslationModel(const Package &package) {
  const FunctionInfo *step = package.function("train_step");
  return step && step->input("source");
}

NmtShape translationModelShape(const Package &package) {
  const FunctionInfo &step = *package.function("train_step");
  const ArgumentInfo *source = step.input("source");
  const ArgumentInfo *lengths = step.input("source_lengths");
  const ArgumentInfo *tokens = step.input("tokens");
  const ArgumentInfo *targets = step.input("targets");
  auto ids = [](const ArgumentInfo *arg, size_t rank) {
    return arg && arg->dtype == "i32" && arg->shape.size() == rank;
  };
  if (!ids(source, 2) || !ids(tokens, 2) || !ids(targets, 2) ||
      tokens->shape != targets->shape || source->shape[0] != tokens->shape[0] ||
      (lengths && (!ids(lengths, 1) || lengths->shape[0] != source->shape[0])))
    throw std::runtime_error(
        "moe-run trains translation models with inputs 'source' [batch, "
        "source length], optional 'source_lengths' [batch], 'tokens' and "
        "'targets' [batch, target length] (i32); model " +
        package.model() + " does not have them");
  if (!targets->allowsPadding)
    throw std::runtime_error("input 'targets' does not allow -1 padding: "
                             "a translation model's loss must skip it");
  if (source->idBound < 4 || tokens->idBound < 4 || targets->idBound < 4)
    throw std::runtime_error("inputs 'source', 'tokens' and 'targets' must "
                             "feed embeddings and the softmax: cannot tell "
                             "the vocabulary size");
  NmtShape shape;
  shape.batch = source->shape[0];
  shape.sourceLength = source->shape[1];
  shape.targetLength = tokens->shape[1];
  shape.vocab = std::min({source->idBound, tokens->idBound, targets->idBound});
  shape.sourceLengths = lengths != nullptr;
  if (shape.targetLength < 2)
    throw std::runtime_error("the decoder needs at least 2 positions (BOS "
                             "and EOS)");
  return shape;
}

TranslationData::TranslationData(const NmtShape &shape,
                                 const DataOptions &options, bool quiet)
    : shape_(shape), options(options),
      wordpieces_(loadWordpieces(options, shape)) {
  auto start = Clock::now();
  for (auto [name, split] : {std::pair{"train", &train}, std::pair{"dev", &dev},
                             std::pair{"test", &test}}) {
    split->text = readSplit(options.path, name);
    split->ids = rt::data::encodeParallel(split->text, wordpieces_);
  }
  trainFingerprint =
      splitFingerprint(train.ids.source) + splitFingerprint(train.ids.target);
  // Counts the pairs training leaves out; throws when none is left.
  std::optional<rt::data::ParallelBatcher> counts;
  try {
    counts.emplace(train.ids,
                   rt::data::ParallelBatchShape{
                       shape_.batch, shape_.sourceLength, shape_.targetLength},
                   specialIds(), rt::data::LongPairs::Skip, 0, false);
  } catch (const std::invalid_argument &e) {
    throw std::runtime_error("data: " + options.path + "/train: " + e.what());
  }
  if (quiet)
    return;
  std::printf(
      "data: %s: %zu train / %zu dev / %zu test pairs, %lld "
      "wordpieces; %lld training pairs longer than %lld source or "
      "%lld target pieces left out (%.2fs)\n",
      options.path.c_str(), train.text.source.size(), dev.text.source.size(),
      test.text.source.size(), static_cast<long long>(wordpieces_.size()),
      static_cast<long long>(counts->skippedLong()),
      static_cast<long long>(shape_.sourceLength),
      static_cast<long long>(shape_.targetLength - 1), secondsSince(start));
}

rt::data::ParallelSpecialIds TranslationData::specialIds() const {
  return {wordpieces_.padId(), wordpieces_.bosId(), wordpieces_.eosId()};
}

const TranslationData::Split &
TranslationData::split(const std::string &name) const {
  if (name == "train")
    return train;
  if (name == "dev")
    return dev;
  if (name == "test")
    return test;
  throw std::runtime_error("unknown split '" + name +
                           "' (expected test, dev or train)");
}

const rt::data::ParallelText &
TranslationData::text(const std::string &name) const {
  return split(name).text;
}

const rt::data::ParallelIds &
TranslationData::ids(const std::string &name) const {
  return split(name).ids;
}

std::unique_ptr<BatchSource>
TranslationData::trainingBatches(uint64_t seed, int rank, int ranks) const {
  return std::make_unique<NmtBatches>(train.ids, shape_, specialIds(),
                                      rt::data::LongPairs::Skip, rank, ranks,
                                      seed, /*shuffle=*/true);
}

std::unique_ptr<BatchSource>
TranslationData::evaluationBatches(const std::string &name) const {
  const Split &pairs = split(name);
  if (usablePairs(pairs.ids) == 0)
    throw std::runtime_error("the " + name + " split of " + options.path +
                             " has no pairs to evaluate");
  return std::make_unique<NmtBatches>(pairs.ids, shape_, specialIds(),
                                      rt::data::LongPairs::Truncate, /*rank=*/0,
                                      /*ranks=*/1, /*seed=*/0,
                                      /*shuffle=*/false);
}

std::string TranslationData::missingTestSplit() const {
  if (usablePairs(test.ids) > 0)
    return "";
  return options.path + "/test.en and test.fr hold no pair";
}

double TranslationData::baselinePerplexity() const {
  // Add-one unigram frequencies of the training targets' pieces and EOS,
  // scored on the test targets' (as the language model's baseline).
  if (missingTestSplit().size())
    return NAN;
  int64_t V = wordpieces_.size();
  int32_t eos = wordpieces_.eosId();
  std::vector<int64_t> counts(V, 0);
  int64_t total = 0;
  for (const auto &target : train.ids.target) {
    for (int32_t id : target)
      ++counts[id];
    ++counts[eos];
    total += static_cast<int64_t>(target.size()) + 1;
  }
  double negLogLikelihood = 0;
  int64_t scored = 0;
  auto score = [&](int32_t id) {
    negLogLikelihood -= std::log(static_cast<double>(counts[id] + 1) /
                                 static_cast<double>(total + V));
    ++scored;
  };
  for (size_t i = 0; i < test.ids.target.size(); ++i) {
    if (test.ids.source[i].empty() || test.ids.target[i].empty())
      continue;
    for (int32_t id : test.ids.target[i])
      score(id);
    score(eos);
  }
  return std::exp(negLogLikelihood / static_cast<double>(scored));
}

std::string TranslationData::describeBatch(int ranks) const {
  return std::to_string(shape_.batch * ranks) + " pairs x " +
         std::to_string(shape_.sourceLength) + " source / " +
         std::to_string(shape_.targetLength) + " target pieces";
}

nlohmann::json TranslationData::checkpointFields() const {
  return {{"wordpieces", wordpieces_.size()},
          {"wordpiece_fingerprint", hex64(wordpieces_.fingerprint())},
          {"train_fingerprint", trainFingerprint},
          {"batch", {shape_.batch, shape_.sourceLength, shape_.targetLength}},
          {"corpus", options.path}};
}

void TranslationData::checkCheckpoint(const nlohmann::json &state,
                                      const std::string &dir,
                                      bool resuming) const {
  if (state.value("wordpiece_fingerprint", "") !=
      hex64(wordpieces_.fingerprint()))
    throw rt::CheckpointError("checkpoint " + dir +
                              " was trained with another wordpiece "
                              "vocabulary (a different spm.model in --data)");
  if (!resuming)
    return;
  if (state.value("batch", std::vector<int64_t>{}) !=
      std::vector<int64_t>{shape_.batch, shape_.sourceLength,
                           shape_.targetLength})
    throw rt::CheckpointError("checkpoint " + dir +
                              " was trained with another batch shape; "
                              "resuming needs the same compiled batch");
  if (state.value("train_fingerprint", "") != trainFingerprint)
    throw rt::CheckpointError("checkpoint " + dir +
                              " was trained on other training pairs "
                              "(different --data): its data position would "
                              "not resume the same stream");
}

} // namespace moe::run
