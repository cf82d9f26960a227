//===- Metrics.cpp - Progress display and JSONL metrics -------------------===//

#include "tools/moe-run/Metrics.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace moe::run {

MetricsFile::MetricsFile(const std::string &path, bool append) {
  if (path.empty())
    return;
  out.open(path, append ? std::ios::app : std::ios::trunc);
  if (!out)
    throw std::runtime_error("cannot write metrics file " + path);
}

void MetricsFile::write(const nlohmann::json &record) {
  if (!out.is_open())
    return;
  out << record.dump() << "\n";
  out.flush();
}

std::string formatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0)
    return "--:--";
  long s = std::lround(seconds);
  char text[32];
  if (s >= 3600)
    std::snprintf(text, sizeof(text), "%ld:%02ld:%02ld", s / 3600,
                  (s / 60) % 60, s % 60);
  else
    std::snprintf(text, sizeof(text), "%02ld:%02ld", s / 60, s % 60);
  return text;
}

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

Progress::Progress(int64_t totalSteps, int devices, bool quiet)
    : total(totalSteps), devices(devices), quiet(quiet),
      terminal(::isatty(STDERR_FILENO)) {}

void Progress::report(int64_t step, double loss, double perplexity, double lr,
                      double tokensPerSecond, double tflopsPerDevice,
                      double tflopsJob, double etaSeconds) {
  if (quiet)
    return;
  char ppl[32] = "-";
  if (std::isfinite(perplexity))
    std::snprintf(ppl, sizeof(ppl), "%.1f", perplexity);
  char tflops[64];
  if (devices > 1)
    std::snprintf(tflops, sizeof(tflops), "%.3f TFLOP/s/device (job %.3f)",
                  tflopsPerDevice, tflopsJob);
  else
    std::snprintf(tflops, sizeof(tflops), "%.3f TFLOP/s", tflopsPerDevice);
  char line[320];
  std::snprintf(line, sizeof(line),
                "step %lld/%lld  loss %.4f  ppl %s  lr %.2e  %.1fk tok/s  "
                "%s  ETA %s",
                static_cast<long long>(step), static_cast<long long>(total),
                loss, ppl, lr, tokensPerSecond / 1000.0, tflops,
                formatDuration(etaSeconds).c_str());
  if (terminal) {
    constexpr int kWidth = 24;
    int filled = total > 0 ? static_cast<int>(kWidth * step / total) : 0;
    std::string bar(static_cast<size_t>(filled), '=');
    bar.resize(kWidth, ' ');
    std::fprintf(stderr, "\r\033[K[%s] %s", bar.c_str(), line);
    std::fflush(stderr);
    open = true;
  } else {
    std::printf("%s\n", line);
    std::fflush(stdout);
  }
}

void Progress::finishLine() {
  if (open) {
    std::fprintf(stderr, "\n");
    open = false;
  }
}

} // namespace moe::run
