//===- TranslationData.h - A parallel corpus for a translator ---*- C++ -*-===//
//
// The data of an encoder-decoder translation model (paper section 5.2): the
// folder scripts/nmt-corpus.py writes ({train,dev,test}.{en,fr} and the
// shared wordpiece model spm.model), cut by rt::data::ParallelBatcher into
// batches of the inputs
//
//   source          i32 [B, S]  source pieces, then <pad>
//   source_lengths  i32 [B]     pieces per source row (when the model has it)
//   tokens          i32 [B, T]  BOS and the target's pieces (decoder input)
//   targets         i32 [B, T]  the target's pieces and EOS, then -1
//
// moe-run picks this Dataset instead of the language model's when the
// training step has an input `source`.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TOOLS_MOE_RUN_TRANSLATIONDATA_H
#define MOE_TOOLS_MOE_RUN_TRANSLATIONDATA_H

#include "tools/moe-run/BatchSource.h"
#include "tools/moe-run/Options.h"

#include "runtime/data/ParallelCorpus.h"
#include "runtime/data/Wordpieces.h"

namespace moe::run {

class Package;

/// The compiled shape of a translation model's inputs.
struct NmtShape {
  int64_t batch = 0, sourceLength = 0, targetLength = 0;
  /// The smallest id bound of the embeddings and the softmax: the largest
  /// wordpiece vocabulary the model takes.
  int64_t vocab = 0;
  /// Whether the model takes `source_lengths`.
  bool sourceLengths = false;
};

/// Whether the package's training step has a translation model's inputs
/// (an input named `source`).
bool isTranslationModel(const Package &package);

/// Reads the shape from the training step; throws std::runtime_error
/// unless `source` is i32 [B, S], `tokens` and `targets` i32 [B, T] (the
/// targets allowing -1), `source_lengths`, when there, i32 [B], and the ids
/// feed embeddings.
NmtShape translationModelShape(const Package &package);

class TranslationData : public Dataset {
public:
  /// Loads the corpus folder of `options.path`; prints a line about it
  /// unless `quiet`. Throws std::runtime_error (one line) when a file is
  /// missing or the wordpiece vocabulary exceeds the model's.
  TranslationData(const NmtShape &shape, const DataOptions &options,
                  bool quiet);

  const NmtShape &shape() const { return shape_; }
  const rt::data::Wordpieces &wordpieces() const { return wordpieces_; }
  /// The lines and the encoded pairs of `split` ("train", "dev", "test");
  /// throws std::runtime_error for another name.
  const rt::data::ParallelText &text(const std::string &split) const;
  const rt::data::ParallelIds &ids(const std::string &split) const;

  std::unique_ptr<BatchSource> trainingBatches(uint64_t seed, int rank,
                                               int ranks) const override;
  /// `split` is "test", "dev" or "train"; pairs too long for the batch are
  /// cut, so that every pair is scored.
  std::unique_ptr<BatchSource>
  evaluationBatches(const std::string &split) const override;
  std::string missingTestSplit() const override;
  double baselinePerplexity() const override;
  std::string describeBatch(int ranks) const override;
  nlohmann::json checkpointFields() const override;
  void checkCheckpoint(const nlohmann::json &state, const std::string &dir,
                       bool resuming) const override;

private:
  struct Split {
    rt::data::ParallelText text;
    rt::data::ParallelIds ids;
  };
  const Split &split(const std::string &name) const;
  rt::data::ParallelSpecialIds specialIds() const;

  NmtShape shape_;
  DataOptions options;
  rt::data::Wordpieces wordpieces_;
  Split train, dev, test;
  /// Of the training pairs: a resumed run must read the same stream.
  std::string trainFingerprint;
};

} // namespace moe::run

#endif // MOE_TOOLS_MOE_RUN_TRANSLATIONDATA_H
