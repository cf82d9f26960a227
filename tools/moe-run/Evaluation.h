//===- Evaluation.h - Perplexity of a split over the ranks ------*- C++ -*-===//

#ifndef MOE_TOOLS_MOE_RUN_EVALUATION_H
#define MOE_TOOLS_MOE_RUN_EVALUATION_H

#include <cstddef>
#include <cstdint>
#include <vector>

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
  /// Assignments per expert, per dispatch plan, of every rank's batches
  /// (padding included): with thresholds (batchwise-trained layers) their
  /// sum over tokens is the experts a word used at inference.
  std::vector<std::vector<int64_t>> expertLoad;
};

/// Scores one epoch of `batches` (at most `maxBatches`; 0: all) with the
/// package's evaluation function, rank r taking batches r, r + R, ...; the
/// sums are added in rank order, so every rank reports the same perplexity
/// whatever the number of ranks.
Evaluation evaluate(Session &session, const Package &package,
                    BatchSource &batches, int64_t maxBatches,
                    rt::Collectives *collectives = nullptr);

/// Adds one call's tokens per expert (per dispatch plan) to `sum`.
void addExpertLoad(std::vector<std::vector<int64_t>> &sum,
                   const std::vector<std::vector<int64_t>> &perPlan);

/// Adds every rank's (cross-entropy sum, token count) in rank order, so all
/// ranks report the same perplexity; a no-op on one rank.
void sumOverRanks(rt::Collectives *collectives, double &sum, int64_t &count);

/// Every rank's `local` (the same length on each) added elementwise in
/// rank order.
std::vector<int64_t> sumOverRanks(rt::Collectives &collectives,
                                  const std::vector<int64_t> &local);

/// Adds every rank's tokens per expert of each dispatch plan (of the
/// function whose plans have `planExperts` experts), so the load describes
/// the global batch; a rank that scored no batch has none and adds zeros.
/// A no-op on one rank.
void sumOverRanks(rt::Collectives *collectives,
                  const std::vector<int64_t> &planExperts,
                  std::vector<std::vector<int64_t>> &load);

} // namespace moe::run

#endif // MOE_TOOLS_MOE_RUN_EVALUATION_H
