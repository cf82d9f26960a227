//===- Batcher.cpp - [batch, seqLen] blocks of an LM token stream ---------===//
//
// The epoch's stream is materialized once per epoch (O(tokens)); a batch is
// then a copy of batch*seqLen + 1 consecutive ids. The permutation of epoch
// e depends only on (seed, e) (Shuffle.h), so seek() needs no replay.
//
//===----------------------------------------------------------------------===//

#include "runtime/data/Batcher.h"

#include "runtime/data/Shuffle.h"
#include "runtime/data/Vocabulary.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace moe::rt::data {

LmBatcher::LmBatcher(const std::vector<std::vector<int32_t>> &sentences,
                     int64_t batch, int64_t seqLen, uint64_t seed, bool shuffle)
    : batch_(batch), seqLen_(seqLen), seed_(seed), shuffle_(shuffle) {
  if (batch < 1 || seqLen < 1)
    throw std::invalid_argument("LmBatcher: batch and seqLen must be >= 1");
  if (sentences.empty())
    throw std::invalid_argument("LmBatcher: no sentences");
  offsets_.reserve(sentences.size() + 1);
  offsets_.push_back(0);
  for (const auto &sentence : sentences) {
    for (int32_t id : sentence)
      if (id < 0)
        throw std::invalid_argument("LmBatcher: negative id " +
                                    std::to_string(id));
    ids_.insert(ids_.end(), sentence.begin(), sentence.end());
    offsets_.push_back(static_cast<int64_t>(ids_.size()));
  }
  // The leading <eos> plus one <eos> after each sentence.
  streamLength_ = static_cast<int64_t>(ids_.size() + sentences.size()) + 1;
}

int64_t LmBatcher::batchesPerEpoch() const {
  int64_t perBatch = batch_ * seqLen_;
  return (targetsPerEpoch() + perBatch - 1) / perBatch;
}

void LmBatcher::seek(Position position) {
  checkSeekPosition("LmBatcher", position, batchesPerEpoch());
  position_ = position;
}

void LmBatcher::buildStream() {
  // Without shuffling every epoch has the same stream.
  if (streamEpoch_ == position_.epoch || (!shuffle_ && streamEpoch_ >= 0))
    return;
  std::vector<int64_t> order =
      epochOrder(static_cast<int64_t>(offsets_.size()) - 1, seed_,
                 position_.epoch, shuffle_);
  stream_.clear();
  stream_.reserve(streamLength_);
  stream_.push_back(kEosId);
  for (int64_t s : order) {
    stream_.insert(stream_.end(), ids_.begin() + offsets_[s],
                   ids_.begin() + offsets_[s + 1]);
    stream_.push_back(kEosId);
  }
  streamEpoch_ = position_.epoch;
}

bool LmBatcher::next(int32_t *tokens, int32_t *targets) {
  if (position_.batch >= batchesPerEpoch()) {
    ++position_.epoch;
    position_.batch = 0;
    return false;
  }
  buildStream();
  int64_t perBatch = batch_ * seqLen_;
  int64_t begin = position_.batch * perBatch;
  // Positions p < streamLength_ - 1 have a target; the rest is padding.
  int64_t real = std::clamp<int64_t>(streamLength_ - 1 - begin, 0, perBatch);
  std::copy_n(stream_.begin() + begin, real, tokens);
  std::copy_n(stream_.begin() + begin + 1, real, targets);
  std::fill(tokens + real, tokens + perBatch, kEosId);
  std::fill(targets + real, targets + perBatch, -1);
  ++position_.batch;
  return true;
}

int64_t LmBatcher::realTargets(const int32_t *targets) const {
  int64_t perBatch = batch_ * seqLen_;
  return perBatch - std::count(targets, targets + perBatch, -1);
}

} // namespace moe::rt::data
