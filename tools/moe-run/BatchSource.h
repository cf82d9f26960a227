//===- BatchSource.h - A model's data, as the trainer sees it ---*- C++ -*-===//
//
// The trainer, the evaluation and the run state reach a model's data only
// through these two interfaces: a BatchSource fills the arguments whose
// role is input, and a Dataset makes the sources and names what ties a
// checkpoint to its data. A model with other inputs (an encoder-decoder's
// source ids and lengths, decoder inputs and outputs) brings its own
// Dataset; the training loop stays as it is. The language model's is in
// LanguageModelData.h.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TOOLS_MOE_RUN_BATCHSOURCE_H
#define MOE_TOOLS_MOE_RUN_BATCHSOURCE_H

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>

namespace moe::run {

/// Host arrays of a compiled function's inputs by name (Session::call).
using InputArrays = std::map<std::string, const int32_t *>;

/// A stream of batches of a compiled function's inputs.
class BatchSource {
public:
  virtual ~BatchSource() = default;

  /// Reads the next batch. Returns false, reading nothing, at the end of an
  /// epoch; the next call starts the next epoch.
  virtual bool next() = 0;
  /// This rank's part of the current batch: an array per input argument.
  virtual const InputArrays &inputs() const = 0;
  /// Makes inputs() a batch that scores nothing, for a rank that has no
  /// batch left but must join a collective call.
  virtual void pad() = 0;
  /// Targets of the current batch, over every rank, that are not padding.
  virtual int64_t realTargets() const = 0;

  /// The epoch of the next batch.
  virtual int64_t epoch() const = 0;
  /// Where the next batch is, as checkpoint state; seek() goes back there,
  /// after which the batches equal those of an uninterrupted stream.
  virtual nlohmann::json position() const = 0;
  virtual void seek(const nlohmann::json &position) = 0;
  /// The position in words, e.g. "epoch 0, batch 20".
  virtual std::string describePosition() const = 0;
};

/// A BatchSource over a batcher whose Position is an epoch and a batch
/// (rt::data::LmBatcher, rt::data::ParallelBatcher): the position is the
/// batcher's.
template <typename Batcher> class BatcherSource : public BatchSource {
public:
  int64_t epoch() const override { return batcher.position().epoch; }
  nlohmann::json position() const override {
    return {{"epoch", batcher.position().epoch},
            {"batch", batcher.position().batch}};
  }
  void seek(const nlohmann::json &position) override {
    typename Batcher::Position at;
    at.epoch = position.value("epoch", int64_t(0));
    at.batch = position.value("batch", int64_t(0));
    batcher.seek(at);
  }
  std::string describePosition() const override {
    return "epoch " + std::to_string(batcher.position().epoch) + ", batch " +
           std::to_string(batcher.position().batch);
  }

protected:
  template <typename... Args>
  explicit BatcherSource(Args &&...args)
      : batcher(std::forward<Args>(args)...) {}

  Batcher batcher;
};

/// The data of one model: its batch sources and what ties a checkpoint to
/// them.
class Dataset {
public:
  virtual ~Dataset() = default;

  /// The training stream, ordered by `seed`: each step's batch is the
  /// global batch of `ranks` ranks, and rank `rank` is fed its part.
  virtual std::unique_ptr<BatchSource> trainingBatches(uint64_t seed, int rank,
                                                       int ranks) const = 0;
  /// The batches of `split` ("test" or "train") in order, one rank's batch
  /// each. Throws std::runtime_error when the split is empty.
  virtual std::unique_ptr<BatchSource>
  evaluationBatches(const std::string &split) const = 0;
  /// Why there is no test split to evaluate on, for a note; empty when
  /// there is one.
  virtual std::string missingTestSplit() const = 0;
  bool hasTestSplit() const { return missingTestSplit().empty(); }
  /// The test perplexity of a model without context (unigram frequencies),
  /// which a trained model should beat; NaN without a test split.
  virtual double baselinePerplexity() const = 0;
  /// The global batch of `ranks` ranks, e.g. "2 x 5".
  virtual std::string describeBatch(int ranks) const = 0;

  /// Checkpoint state that identifies the data (vocabulary, training split,
  /// batch shape).
  virtual nlohmann::json checkpointFields() const = 0;
  /// Throws rt::CheckpointError, naming `dir`, when a checkpoint's state
  /// was written for other data: another vocabulary, or, when `resuming`,
  /// another batch shape or training split (its position would not resume
  /// the same stream).
  virtual void checkCheckpoint(const nlohmann::json &state,
                               const std::string &dir, bool resuming) const = 0;
};

} // namespace moe::run

#endif // MOE_TOOLS_MOE_RUN_BATCHSOURCE_H
