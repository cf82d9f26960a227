//===- LanguageModelData.h - A corpus for a language model ------*- C++ -*-===//
//
// The data of a language model: a corpus of one sentence per line, split
// into train and test, cut into [batch, time] blocks of the inputs
// `tokens` and next-word `targets`.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TOOLS_MOE_RUN_LANGUAGEMODELDATA_H
#define MOE_TOOLS_MOE_RUN_LANGUAGEMODELDATA_H

#include "tools/moe-run/BatchSource.h"
#include "tools/moe-run/Options.h"

#include "runtime/data/Corpus.h"

namespace moe::run {

class Package;

/// The compiled [batch, time] shape of a language model's tokens and
/// targets, and its vocabulary.
struct LmShape {
  int64_t batch = 0, time = 0, vocab = 0;
};

/// Reads the shape from the training step; throws std::runtime_error
/// unless it has i32 inputs `tokens` and `targets` of one [batch, time]
/// shape and the tokens feed an embedding.
LmShape languageModelShape(const Package &package);

/// Throws std::runtime_error when `batchTokens` (--batch-tokens; 0: any)
/// is not the compiled batch's number of tokens.
void checkBatchTokens(const LmShape &shape, int64_t batchTokens);

/// `value` as 16 hex digits (checkpoint fingerprints).
std::string hex64(uint64_t value);

/// A fingerprint of a split's ids and sentence boundaries.
std::string splitFingerprint(const std::vector<std::vector<int32_t>> &split);

class LanguageModelData : public Dataset {
public:
  /// Loads the corpus of `options` (the vocabulary at most the model's);
  /// prints a line about it unless `quiet`. Throws std::runtime_error.
  LanguageModelData(const Package &package, const LmShape &shape,
                    const DataOptions &options, bool quiet);

  const rt::data::Corpus &corpus() const { return corpus_; }
  const LmShape &shape() const { return shape_; }

  std::unique_ptr<BatchSource> trainingBatches(uint64_t seed, int rank,
                                               int ranks) const override;
  std::unique_ptr<BatchSource>
  evaluationBatches(const std::string &split) const override;
  std::string missingTestSplit() const override;
  double baselinePerplexity() const override;
  std::string describeBatch(int ranks) const override;
  nlohmann::json checkpointFields() const override;
  void checkCheckpoint(const nlohmann::json &state, const std::string &dir,
                       bool resuming) const override;

private:
  const Package &package;
  LmShape shape_;
  DataOptions options;
  rt::data::Corpus corpus_;
  /// Of the training split: a resumed run must read the same stream.
  std::string trainFingerprint;
};

} // namespace moe::run

#endif // MOE_TOOLS_MOE_RUN_LANGUAGEMODELDATA_H
