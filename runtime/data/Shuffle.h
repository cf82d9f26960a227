//===- Shuffle.h - The per-epoch order of the batchers ----------*- C++ -*-===//
//
// Internal to runtime/data: the language-model and the translation batchers
// visit their sentences in the same reproducible order. A Fisher-Yates on
// std::mt19937_64 with an unbiased bounded draw written here, so the order
// is the same on every platform and standard library, and the order of
// epoch e depends only on (seed, e), so a batcher can seek without replay.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_DATA_SHUFFLE_H
#define MOE_RUNTIME_DATA_SHUFFLE_H

#include <cstdint>
#include <vector>

namespace moe::rt::data {

/// The order of `count` items in `epoch`: 0, 1, ..., count-1 without
/// shuffling, else a permutation drawn from (seed, epoch).
std::vector<int64_t> epochOrder(int64_t count, uint64_t seed, int64_t epoch,
                                bool shuffle);

} // namespace moe::rt::data

#endif // MOE_RUNTIME_DATA_SHUFFLE_H
