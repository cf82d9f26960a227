//===- Shuffle.cpp - The per-epoch order of the batchers ------------------===//

#include "runtime/data/Shuffle.h"

#include <numeric>
#include <random>
#include <utility>

namespace moe::rt::data {

namespace {

/// SplitMix64's finalizer: consecutive epochs get unrelated generator seeds.
uint64_t mixEpoch(uint64_t epoch) {
  uint64_t z = epoch + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// Uniform in [0, bound) for bound >= 1: rejects the draws below
/// 2^64 mod bound, so every residue is equally likely. std::mt19937_64's
/// output is fixed by the standard; std::uniform_int_distribution's is not.
uint64_t boundedDraw(std::mt19937_64 &rng, uint64_t bound) {
  uint64_t threshold = (0 - bound) % bound;
  for (;;) {
    uint64_t r = rng();
    if (r >= threshold)
      return r % bound;
  }
}

} // namespace

std::vector<int64_t> epochOrder(int64_t count, uint64_t seed, int64_t epoch,
                                bool shuffle) {
  std::vector<int64_t> order(static_cast<size_t>(count));
  std::iota(order.begin(), order.end(), int64_t(0));
  if (shuffle) {
    std::mt19937_64 rng(seed ^ mixEpoch(static_cast<uint64_t>(epoch)));
    for (size_t i = order.size(); i > 1; --i)
      std::swap(order[i - 1], order[boundedDraw(rng, i)]);
  }
  return order;
}

} // namespace moe::rt::data
