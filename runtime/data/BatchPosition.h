//===- BatchPosition.h - Where a batcher is in its stream -------*- C++ -*-===//
//
// The language-model and the translation batchers resume the same way: a
// position is (epoch, batch), and seeking to one checks it against the
// batches of an epoch.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_DATA_BATCHPOSITION_H
#define MOE_RUNTIME_DATA_BATCHPOSITION_H

#include <cstdint>

namespace moe::rt::data {

/// The next batch to produce. batch == batches per epoch means the next
/// call to next() ends the epoch.
struct BatchPosition {
  int64_t epoch = 0;
  int64_t batch = 0;
};

/// Throws std::invalid_argument "<who>::seek: position ... out of range"
/// unless epoch >= 0 and 0 <= batch <= batchesPerEpoch.
void checkSeekPosition(const char *who, BatchPosition position,
                       int64_t batchesPerEpoch);

} // namespace moe::rt::data

#endif // MOE_RUNTIME_DATA_BATCHPOSITION_H
