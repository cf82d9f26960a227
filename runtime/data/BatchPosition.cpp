//===- BatchPosition.cpp - Where a batcher is in its stream ---------------===//

#include "runtime/data/BatchPosition.h"

#include <stdexcept>
#include <string>

namespace moe::rt::data {

void checkSeekPosition(const char *who, BatchPosition position,
                       int64_t batchesPerEpoch) {
  if (position.epoch < 0 || position.batch < 0 ||
      position.batch > batchesPerEpoch)
    throw std::invalid_argument(
        std::string(who) + "::seek: position (epoch " +
        std::to_string(position.epoch) + ", batch " +
        std::to_string(position.batch) + ") out of range; " +
        std::to_string(batchesPerEpoch) + " batches per epoch");
}

} // namespace moe::rt::data
