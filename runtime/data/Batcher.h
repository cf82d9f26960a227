//===- Batcher.h - [batch, seqLen] blocks of an LM token stream -*- C++ -*-===//
//
// Feeds the `tokens` and `targets` inputs ([B, S] int32) of a compiled
// language-model training step. An epoch's stream is <eos>, then every
// sentence followed by <eos>, the sentences in an order shuffled per epoch;
// targets are the stream shifted by one. The shuffle (Shuffle.h) gives the
// same batch stream on every platform and standard library, and a resumed
// run replays it exactly from a saved Position.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_DATA_BATCHER_H
#define MOE_RUNTIME_DATA_BATCHER_H

#include "runtime/data/BatchPosition.h"

#include <cstdint>
#include <vector>

namespace moe::rt::data {

/// Cuts an epoch's token stream into [batch, seqLen] blocks of tokens and
/// targets: tokens[b][s] = stream[p], targets[b][s] = stream[p+1] with
/// p = (i*batch + b)*seqLen + s in batch i, so the rows of a batch are
/// consecutive pieces of the stream. The stream starts with one <eos> so the
/// first word is predicted from a sentence start. The last batch of an epoch
/// is padded with token <eos> and target -1. Without shuffling every epoch
/// is in file order (for evaluation).
class LmBatcher {
public:
  /// Copies `sentences` (ids >= 0, without <eos>). Throws
  /// std::invalid_argument when batch or seqLen < 1, there are no sentences,
  /// or an id is negative.
  LmBatcher(const std::vector<std::vector<int32_t>> &sentences, int64_t batch,
            int64_t seqLen, uint64_t seed, bool shuffle);

  /// Fills tokens and targets [batch*seqLen] with the next batch. Returns
  /// false, writing nothing, at the end of an epoch; the next call then
  /// starts the next epoch.
  bool next(int32_t *tokens, int32_t *targets);

  /// ceil(targetsPerEpoch() / (batch*seqLen)).
  int64_t batchesPerEpoch() const;

  /// Real (non-padding) targets in an epoch: the words plus one <eos> per
  /// sentence.
  int64_t targetsPerEpoch() const { return streamLength_ - 1; }

  /// The next batch to produce. batch == batchesPerEpoch() means the next
  /// call to next() ends the epoch.
  using Position = BatchPosition;
  Position position() const { return position_; }

  /// Restores a position: the batches produced after seek(p) equal those an
  /// uninterrupted batcher produces from p. Throws std::invalid_argument
  /// unless epoch >= 0 and 0 <= batch <= batchesPerEpoch().
  void seek(Position position);

  /// The number of targets != -1 among the batch*seqLen of `targets`.
  int64_t realTargets(const int32_t *targets) const;

private:
  /// Materializes the stream of position_.epoch unless it is already built.
  void buildStream();

  int64_t batch_, seqLen_;
  uint64_t seed_;
  bool shuffle_;
  /// The sentences as one CSR array: sentence i is
  /// ids_[offsets_[i], offsets_[i+1]).
  std::vector<int32_t> ids_;
  std::vector<int64_t> offsets_;
  int64_t streamLength_;
  Position position_;
  /// The epoch `stream_` holds; -1 before the first build.
  int64_t streamEpoch_ = -1;
  std::vector<int32_t> stream_;
};

} // namespace moe::rt::data

#endif // MOE_RUNTIME_DATA_BATCHER_H
