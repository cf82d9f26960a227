//===- Metrics.h - Progress display and JSONL metrics -----------*- C++ -*-===//

#ifndef MOE_TOOLS_MOE_RUN_METRICS_H
#define MOE_TOOLS_MOE_RUN_METRICS_H

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>

namespace moe::run {

/// One line per record in a JSON Lines file (flushed at once, so a killed
/// run keeps what it measured); a no-op without a path.
class MetricsFile {
public:
  explicit MetricsFile(const std::string &path, bool append);
  void write(const nlohmann::json &record);

private:
  std::ofstream out;
};

/// Training progress: a bar redrawn in place on a terminal, one line per
/// report otherwise.
class Progress {
public:
  /// `devices`: the ranks of the job; with more than one, the line shows
  /// the job's TFLOP/s besides a device's.
  Progress(int64_t totalSteps, int devices, bool quiet);
  void report(int64_t step, double loss, double perplexity, double lr,
              double tokensPerSecond, double tflopsPerDevice, double tflopsJob,
              double etaSeconds);
  /// Ends the bar's line before other output.
  void finishLine();
  bool interactive() const { return terminal; }

private:
  int64_t total;
  int devices;
  bool quiet, terminal, open = false;
};

/// "1:02:03" or "02:03".
std::string formatDuration(double seconds);

using Clock = std::chrono::steady_clock;

/// Seconds from `start` to now.
double secondsSince(Clock::time_point start);

} // namespace moe::run

#endif // MOE_TOOLS_MOE_RUN_METRICS_H
