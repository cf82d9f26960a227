//===- Inspection.h - What the experts of a trained model receive -*- C++ -*-===//
//
// moe-run inspect (the paper's Tables 6 and 7): the evaluation function runs
// over a split with routing captures on (rt::step::Context::captureRoutes),
// a RouteLog collects, per expert or primary group, the words it received
// with their gate values, and topContexts ranks them.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TOOLS_MOE_RUN_INSPECTION_H
#define MOE_TOOLS_MOE_RUN_INSPECTION_H

#include "runtime/step/Step.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace moe::run {

struct FunctionInfo;

/// One MoE layer of a compiled function: its dispatch plan over the
/// experts and, for a hierarchical layer, its primary plan over the groups
/// (indices into the function's plans, in program order).
struct MoELayer {
  size_t plan = 0;
  int64_t experts = 0;
  int groupPlan = -1; ///< -1: a flat layer
  int64_t groups = 0;
  bool hierarchical() const { return groupPlan >= 0; }
};

/// The MoE layers of `function`, in program order: each plan over experts,
/// with the plan over groups just before it when there is one.
std::vector<MoELayer> moeLayers(const FunctionInfo &function);

/// One assignment as the log keeps it: the word (its index in the stream
/// of inspected tokens) and its gate value.
struct RoutedWord {
  int64_t word = 0;
  float gate = 0;
};

/// Per expert (or group), the words of the inspected stream it received.
class RouteLog {
public:
  explicit RouteLog(int64_t experts) : byExpert(experts) {}
  /// Records the assignments of one plan's capture, whose token t is word
  /// `firstWord + t` of the stream; tokens with `keep[t]` false (padding)
  /// are skipped. Throws std::runtime_error when the capture has no gates
  /// or names an expert outside [0, experts).
  void add(const rt::step::RouteCapture &capture, int64_t firstWord,
           const std::vector<bool> &keep);
  int64_t experts() const { return static_cast<int64_t>(byExpert.size()); }
  const std::vector<RoutedWord> &of(int64_t expert) const {
    return byExpert[expert];
  }
  int64_t total() const { return total_; }
  /// The `count` experts with the most assignments, most first (ties: the
  /// lower id).
  std::vector<int64_t> mostUsed(size_t count) const;

private:
  std::vector<std::vector<RoutedWord>> byExpert;
  int64_t total_ = 0;
};

/// A context as inspect prints it: its text, the largest gate it was
/// routed with and how many times it was.
struct RankedContext {
  std::string text;
  float gate = 0;
  int64_t count = 0;
};

/// The `count` distinct contexts (`contextOf(word)`) of the largest gates
/// among `words`, largest first (ties: the earlier word).
std::vector<RankedContext>
topContexts(const std::vector<RoutedWord> &words, size_t count,
            const std::function<std::string(int64_t)> &contextOf);

/// Parses "0,5,17" into ids, each below `limit`; throws std::runtime_error
/// naming `what` ("expert", "group") on a bad id and adding `limitNote`
/// (e.g. "layer 0 has 8 experts") to an out-of-range one.
std::vector<int64_t> parseIds(const std::string &text, int64_t limit,
                              const std::string &what,
                              const std::string &limitNote);

} // namespace moe::run

#endif // MOE_TOOLS_MOE_RUN_INSPECTION_H
