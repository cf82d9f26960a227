//===- Trainer.h - The training loop ----------------------------*- C++ -*-===//
//
// Runs the package's training step over a Dataset's batches: statistics
// per reporting window (loss, perplexity, tokens/s, TFLOP/s, expert load),
// the progress bar and JSONL metrics, evaluations and the time limit.
// Checkpoints and resume are the RunState's; the trainer tells it when.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TOOLS_MOE_RUN_TRAINER_H
#define MOE_TOOLS_MOE_RUN_TRAINER_H

#include "tools/moe-run/Evaluation.h"
#include "tools/moe-run/Metrics.h"
#include "tools/moe-run/Options.h"

#include <memory>
#include <optional>
#include <vector>

namespace moe::rt {
class Collectives;
} // namespace moe::rt

namespace moe::run {

class BatchSource;
struct CallResult;
class Dataset;
struct FunctionInfo;
class Package;
class RunState;
class Session;

class Trainer {
public:
  /// Rank 0 of `ranks` prints (unless `quiet`) and writes the metrics;
  /// `verbose` adds a line of expert load per report.
  Trainer(const Package &package, Session &session, rt::Collectives &ranks,
          const Dataset &data, RunState &state, const TrainOptions &options,
          bool verbose, bool quiet);
  ~Trainer();

  /// Trains from a fresh start with `seed`, or from the checkpoint that
  /// --resume names, to --steps or --max-minutes, saving and evaluating as
  /// the options ask; saves and evaluates once more at the end.
  void run(uint64_t seed);

private:
  /// Sums over the steps of one reporting window.
  struct Window {
    double loss = 0, crossEntropy = 0, seconds = 0;
    int64_t steps = 0, crossEntropyTokens = 0, targets = 0;
    /// Tokens per expert of each dispatch plan.
    std::vector<std::vector<int64_t>> expertLoad;

    void add(const CallResult &result, int64_t realTargets);
  };

  void printSetup(double baseline) const;
  /// Reports the window ending at `step` and starts the next one.
  void report(int64_t step, float lr);
  void save(int64_t step);
  Evaluation evaluateAt(int64_t step);

  const Package &package;
  Session &session;
  rt::Collectives &ranks;
  const Dataset &data;
  RunState &state;
  const TrainOptions &options;
  const FunctionInfo &stepInfo;
  bool verbose, quiet;
  std::unique_ptr<BatchSource> batches;
  std::optional<MetricsFile> metrics;
  Progress progress;
  Window window;
  Clock::time_point start;
  int64_t firstStep = 0;
};

} // namespace moe::run

#endif // MOE_TOOLS_MOE_RUN_TRAINER_H
