//===- Evaluation.h - Perplexity of a split over the ranks ------*- C++ -*-===//

#ifndef MOE_TOOLS_MOE_RUN_EVALUATION_H
#define MOE_TOOLS_MOE_RUN_EVALUATION_H

#include <cstddef>
#include <cstdint>

namespace moe::rt {
class Backend;
class Collectives;
} // namespace moe::rt

namespace moe::run {

class BatchSource;
class Package;
class Session;

struct Evaluation {
  double perplexity = 0, crossEntropy = 0;
  int64_t tokens = 0;
  double seconds = 0;
};

/// Scores one epoch of `batches` (at most `maxBatches`; 0: all) with the
/// package's evaluation function, rank r taking batches r, r + R, ...; the
/// sums are added in rank order, so every rank reports the same perplexity
/// whatever the number of ranks.
Evaluation evaluate(Session &session, const Package &package,
                    BatchSource &batches, int64_t maxBatches,
                    rt::Collectives *collectives = nullptr);

/// Adds every rank's (cross-entropy sum, token count) in rank order, so all
/// ranks report the same perplexity; a no-op on one rank.
void sumOverRanks(rt::Collectives *collectives, double &sum, int64_t &count);

} // namespace moe::run

#endif // MOE_TOOLS_MOE_RUN_EVALUATION_H
