//===- ParallelCorpus.cpp - Sentence pairs in fixed-shape batches ---------===//
//
// The pairs are stored already cut to the batch shape, so a batch is a few
// copies per row. A stored target of exactly T pieces is one that was
// truncated: an uncut target has at most T - 1, leaving room for its EOS.
//
//===----------------------------------------------------------------------===//

#include "runtime/data/ParallelCorpus.h"

#include "runtime/data/Shuffle.h"
#include "runtime/data/TextFile.h"
#include "runtime/data/Wordpieces.h"

#include <algorithm>
#include <stdexcept>

namespace moe::rt::data {

std::vector<std::string> splitLines(const std::string &text) {
  std::vector<std::string> lines;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos)
      end = text.size();
    size_t stop = end;
    if (stop > begin && text[stop - 1] == '\r')
      --stop;
    lines.emplace_back(text, begin, stop - begin);
    begin = end + 1;
  }
  return lines;
}

ParallelText readParallelText(const std::string &sourcePath,
                              const std::string &targetPath) {
  ParallelText text;
  text.source = splitLines(readNonEmptyFile(sourcePath, "parallel corpus"));
  text.target = splitLines(readNonEmptyFile(targetPath, "parallel corpus"));
  if (text.source.size() != text.target.size())
    throw std::runtime_error(
        "parallel corpus " + sourcePath + ", " + targetPath + ": " +
        std::to_string(text.source.size()) + " lines but " +
        std::to_string(text.target.size()));
  return text;
}

ParallelIds encodeParallel(const ParallelText &text,
                           const Wordpieces &wordpieces) {
  ParallelIds ids;
  ids.source.reserve(text.source.size());
  ids.target.reserve(text.target.size());
  for (const std::string &segment : text.source)
    ids.source.push_back(wordpieces.encode(segment));
  for (const std::string &segment : text.target)
    ids.target.push_back(wordpieces.encode(segment));
  return ids;
}

ParallelBatcher::ParallelBatcher(const ParallelIds &pairs,
                                 ParallelBatchShape shape,
                                 ParallelSpecialIds ids, LongPairs longPairs,
                                 uint64_t seed, bool shuffle)
    : shape_(shape), ids_(ids), seed_(seed), shuffle_(shuffle) {
  if (shape.batch < 1 || shape.sourceLength < 1 || shape.targetLength < 2)
    throw std::invalid_argument(
        "ParallelBatcher: need batch >= 1, sourceLength >= 1 and "
        "targetLength >= 2; got " +
        std::to_string(shape.batch) + ", " +
        std::to_string(shape.sourceLength) + ", " +
        std::to_string(shape.targetLength));
  if (ids.pad < 0 || ids.bos < 0 || ids.eos < 0)
    throw std::invalid_argument("ParallelBatcher: the pad, BOS and EOS ids "
                                "must be >= 0 (does the wordpiece model "
                                "define them?)");
  if (pairs.source.size() != pairs.target.size())
    throw std::invalid_argument(
        "ParallelBatcher: " + std::to_string(pairs.source.size()) +
        " sources but " + std::to_string(pairs.target.size()) + " targets");
  sourceOffsets_.push_back(0);
  targetOffsets_.push_back(0);
  const size_t maxSource = static_cast<size_t>(shape.sourceLength);
  const size_t maxTarget = static_cast<size_t>(shape.targetLength) - 1;
  for (size_t i = 0; i < pairs.source.size(); ++i) {
    const auto &source = pairs.source[i];
    const auto &target = pairs.target[i];
    for (const auto *side : {&source, &target})
      for (int32_t id : *side)
        if (id < 0)
          throw std::invalid_argument("ParallelBatcher: negative id " +
                                      std::to_string(id) + " in pair " +
                                      std::to_string(i));
    if (source.empty() || target.empty()) {
      ++skippedEmpty_;
      continue;
    }
    if (source.size() > maxSource || target.size() > maxTarget) {
      if (longPairs == LongPairs::Skip) {
        ++skippedLong_;
        continue;
      }
      ++truncated_;
    }
    size_t sourceKept = std::min(source.size(), maxSource);
    // A truncated target keeps T pieces (no EOS follows them).
    size_t targetKept = std::min(target.size(), maxTarget + 1);
    sourceIds_.insert(sourceIds_.end(), source.begin(),
                      source.begin() + sourceKept);
    targetIds_.insert(targetIds_.end(), target.begin(),
                      target.begin() + targetKept);
    sourceOffsets_.push_back(static_cast<int64_t>(sourceIds_.size()));
    targetOffsets_.push_back(static_cast<int64_t>(targetIds_.size()));
    pairIndex_.push_back(static_cast<int64_t>(i));
    // Its pieces plus EOS, or T when cut.
    targetsPerEpoch_ += std::min<int64_t>(static_cast<int64_t>(targetKept) + 1,
                                          shape.targetLength);
  }
  if (pairIndex_.empty())
    throw std::invalid_argument(
        "ParallelBatcher: no pair left of " +
        std::to_string(pairs.source.size()) + " (" +
        std::to_string(skippedEmpty_) + " with an empty side, " +
        std::to_string(skippedLong_) + " longer than " +
        std::to_string(shape.sourceLength) + " source or " +
        std::to_string(shape.targetLength - 1) + " target pieces)");
}

int64_t ParallelBatcher::batchesPerEpoch() const {
  return (pairsPerEpoch() + shape_.batch - 1) / shape_.batch;
}

void ParallelBatcher::seek(Position position) {
  checkSeekPosition("ParallelBatcher", position, batchesPerEpoch());
  position_ = position;
}

bool ParallelBatcher::next(const ParallelBatchBuffers &out) {
  if (position_.batch >= batchesPerEpoch()) {
    ++position_.epoch;
    position_.batch = 0;
    return false;
  }
  // Without shuffling every epoch has the same order.
  if (orderEpoch_ != position_.epoch && (shuffle_ || orderEpoch_ < 0)) {
    order_ = epochOrder(pairsPerEpoch(), seed_, position_.epoch, shuffle_);
    orderEpoch_ = position_.epoch;
  }
  const int64_t S = shape_.sourceLength, T = shape_.targetLength;
  batchPairs_.assign(static_cast<size_t>(shape_.batch), -1);
  for (int64_t row = 0; row < shape_.batch; ++row) {
    int32_t *source = out.sourceIds + row * S;
    int32_t *inputs = out.decoderInputs + row * T;
    int32_t *targets = out.decoderTargets + row * T;
    std::fill(source, source + S, ids_.pad);
    std::fill(inputs, inputs + T, ids_.pad);
    std::fill(targets, targets + T, -1);
    int64_t slot = position_.batch * shape_.batch + row;
    if (slot >= pairsPerEpoch()) {
      out.sourceLengths[row] = 1;
      continue;
    }
    int64_t pair = order_[slot];
    batchPairs_[row] = pairIndex_[pair];
    auto sourceBegin = sourceIds_.begin() + sourceOffsets_[pair];
    int64_t sourceLength = sourceOffsets_[pair + 1] - sourceOffsets_[pair];
    std::copy_n(sourceBegin, sourceLength, source);
    out.sourceLengths[row] = static_cast<int32_t>(sourceLength);
    auto targetBegin = targetIds_.begin() + targetOffsets_[pair];
    int64_t targetLength = targetOffsets_[pair + 1] - targetOffsets_[pair];
    // inputs: BOS t0 .. t(n-1); targets: t0 .. t(n-1) EOS, where a cut
    // target (n == T) has no room for its EOS and drops its last input.
    inputs[0] = ids_.bos;
    std::copy_n(targetBegin, std::min(targetLength, T - 1), inputs + 1);
    std::copy_n(targetBegin, targetLength, targets);
    if (targetLength < T)
      targets[targetLength] = ids_.eos;
  }
  ++position_.batch;
  return true;
}

int64_t ParallelBatcher::realTargets(const int32_t *decoderTargets) const {
  int64_t count = shape_.batch * shape_.targetLength;
  return count - std::count(decoderTargets, decoderTargets + count, -1);
}

} // namespace moe::rt::data
