//===- ParallelCorpus.h - Sentence pairs in fixed-shape batches -*- C++ -*-===//
//
// Feeds a compiled translation step (paper section 5.2): aligned source and
// target files (scripts/nmt-corpus.py writes {train,dev,test}.{en,fr}) are
// read, encoded with a Wordpieces model, and cut into batches of one
// compiled shape, B pairs of at most S source and T decoder positions:
//
//   sourceIds      [B, S]  the source's pieces, then pad
//   sourceLengths  [B]     pieces in each row (>= 1)
//   decoderInputs  [B, T]  BOS, the target's pieces, then pad
//   decoderTargets [B, T]  the target's pieces, EOS, then -1
//
// decoderTargets is decoderInputs shifted left by one and ended by EOS, so
// the decoder learns to predict each piece and the end from what precedes
// them; -1 marks positions the loss ignores. Padding uses the model's
// <pad> id, a valid row of the embedding, never -1.
//
// The pairs are visited once per epoch in an order shuffled per epoch
// (Shuffle.h, as LmBatcher), so a Position saved with a checkpoint replays
// the same batches after a resume.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_DATA_PARALLELCORPUS_H
#define MOE_RUNTIME_DATA_PARALLELCORPUS_H

#include "runtime/data/BatchPosition.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moe::rt::data {

class Wordpieces;

/// Aligned segments: target[i] translates source[i].
struct ParallelText {
  std::vector<std::string> source, target;
};

/// The lines of `text` as readParallelText splits a file: '\n' ends a
/// line, a '\r' before it is dropped, a last line without '\n' counts.
std::vector<std::string> splitLines(const std::string &text);

/// Reads two aligned UTF-8 files of one segment a line ('\n' ends a line, a
/// '\r' before it is dropped, a last line without '\n' counts). Throws
/// std::runtime_error with a one-line message: "parallel corpus <path>:
/// cannot open (...)" (or empty file, not a text file, ...) for either
/// file, and "parallel corpus <source>, <target>: N lines but M" when the
/// line counts differ.
ParallelText readParallelText(const std::string &sourcePath,
                              const std::string &targetPath);

/// Encoded pairs: target[i] translates source[i]; no BOS or EOS.
struct ParallelIds {
  std::vector<std::vector<int32_t>> source, target;
};

/// Encodes both sides with the shared wordpiece model.
ParallelIds encodeParallel(const ParallelText &text,
                           const Wordpieces &wordpieces);

struct ParallelBatchShape {
  int64_t batch = 0;        ///< B: pairs per batch, >= 1
  int64_t sourceLength = 0; ///< S: source positions, >= 1
  int64_t targetLength = 0; ///< T: decoder positions (BOS/EOS in), >= 2
};

/// The ids the batches are built with: Wordpieces' padId(), bosId(),
/// eosId().
struct ParallelSpecialIds {
  int32_t pad = 0, bos = 0, eos = 0;
};

/// What happens to a pair whose source has more than S pieces or whose
/// target has more than T - 1 (it would not fit with its EOS).
enum class LongPairs {
  /// Left out of every epoch (counted by skippedLong()). For training.
  Skip,
  /// The source keeps its first S pieces; the target keeps its first T
  /// pieces as decoderTargets, without EOS (the model must not learn to
  /// stop where the cut is), and BOS + its first T - 1 as decoderInputs.
  /// For evaluation, which must see every pair.
  Truncate,
};

/// Where each batch row's pointers go; sizes B*S, B, B*T and B*T.
struct ParallelBatchBuffers {
  int32_t *sourceIds = nullptr;
  int32_t *sourceLengths = nullptr;
  int32_t *decoderInputs = nullptr;
  int32_t *decoderTargets = nullptr;
};

/// Cuts the pairs into batches of a fixed shape. Batch i of an epoch holds
/// the pairs order[i*B], ..., order[i*B + B - 1] of the epoch's order (file
/// order without shuffling). The last batch of an epoch is filled up with
/// padding rows: one pad source piece (length 1, so that no row attends to
/// nothing), decoder inputs pad and targets -1.
class ParallelBatcher {
public:
  /// Copies the pairs. Pairs with an empty side are left out (counted by
  /// skippedEmpty()), long ones as `longPairs` says. Throws
  /// std::invalid_argument when the shape is out of range, an id in
  /// `pairs` or `ids` is negative, the two sides differ in length, or no
  /// pair is left.
  ParallelBatcher(const ParallelIds &pairs, ParallelBatchShape shape,
                  ParallelSpecialIds ids, LongPairs longPairs, uint64_t seed,
                  bool shuffle);

  /// Fills the buffers with the next batch. Returns false, writing nothing,
  /// at the end of an epoch; the next call then starts the next epoch.
  bool next(const ParallelBatchBuffers &out);

  /// The pairs of the rows of the batch next() wrote last, as indices into
  /// the constructor's `pairs` (line numbers - 1 of the files); -1 for a
  /// padding row. Empty before the first batch. Lets an evaluation match
  /// its translations with their references.
  const std::vector<int64_t> &batchPairs() const { return batchPairs_; }

  /// ceil(pairsPerEpoch() / B).
  int64_t batchesPerEpoch() const;
  /// Pairs visited in an epoch: all but the skipped ones.
  int64_t pairsPerEpoch() const {
    return static_cast<int64_t>(pairIndex_.size());
  }
  /// Decoder targets != -1 in an epoch: each pair's target pieces plus its
  /// EOS, at most T.
  int64_t targetsPerEpoch() const { return targetsPerEpoch_; }
  int64_t skippedEmpty() const { return skippedEmpty_; }
  /// Long pairs left out (LongPairs::Skip; 0 with Truncate)...
  int64_t skippedLong() const { return skippedLong_; }
  /// ...or cut (LongPairs::Truncate; 0 with Skip).
  int64_t truncated() const { return truncated_; }

  /// The next batch to produce. batch == batchesPerEpoch() means the next
  /// call to next() ends the epoch.
  using Position = BatchPosition;
  Position position() const { return position_; }

  /// Restores a position: the batches produced after seek(p) equal those an
  /// uninterrupted batcher produces from p. Throws std::invalid_argument
  /// unless epoch >= 0 and 0 <= batch <= batchesPerEpoch().
  void seek(Position position);

  /// The number of targets != -1 among the B*T of `decoderTargets`.
  int64_t realTargets(const int32_t *decoderTargets) const;

private:
  ParallelBatchShape shape_;
  ParallelSpecialIds ids_;
  uint64_t seed_;
  bool shuffle_;
  /// The kept pairs as CSR arrays, already cut to S source and T target
  /// pieces: pair k's source is sourceIds_[sourceOffsets_[k],
  /// sourceOffsets_[k+1]), its target likewise.
  std::vector<int32_t> sourceIds_, targetIds_;
  std::vector<int64_t> sourceOffsets_, targetOffsets_;
  /// Pair k's index in the constructor's `pairs`.
  std::vector<int64_t> pairIndex_;
  int64_t targetsPerEpoch_ = 0;
  int64_t skippedEmpty_ = 0, skippedLong_ = 0, truncated_ = 0;
  Position position_;
  /// The epoch `order_` holds; -1 before the first batch.
  int64_t orderEpoch_ = -1;
  std::vector<int64_t> order_;
  std::vector<int64_t> batchPairs_;
};

} // namespace moe::rt::data

#endif // MOE_RUNTIME_DATA_PARALLELCORPUS_H
