//===- BenchSupport.h - What every benchmark's results row needs -*- C++ -*-===//

#ifndef MOE_BENCH_BENCHSUPPORT_H
#define MOE_BENCH_BENCHSUPPORT_H

#include <cstdio>
#include <ctime>
#include <fstream>
#include <string>

namespace moe::bench {

/// "AMD EPYC 7B13" from /proc/cpuinfo, or "unknown CPU".
inline std::string cpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) {
      size_t colon = line.find(':');
      if (colon != std::string::npos && colon + 2 <= line.size())
        return line.substr(colon + 2);
    }
  return "unknown CPU";
}

/// "NVIDIA H200" from nvidia-smi (the first GPU), or "unknown GPU".
inline std::string gpuModel() {
  std::string name;
  if (FILE *pipe = popen("nvidia-smi --query-gpu=name --format=csv,noheader "
                         "-i 0 2>/dev/null",
                         "r")) {
    char line[256];
    if (std::fgets(line, sizeof(line), pipe))
      name = line;
    pclose(pipe);
  }
  while (!name.empty() && (name.back() == '\n' || name.back() == '\r'))
    name.pop_back();
  return name.empty() ? "unknown GPU" : name;
}

/// Today's date, UTC, as YYYY-MM-DD.
inline std::string today() {
  std::time_t now = std::time(nullptr);
  char text[16];
  std::strftime(text, sizeof(text), "%Y-%m-%d", std::gmtime(&now));
  return text;
}

} // namespace moe::bench

#endif // MOE_BENCH_BENCHSUPPORT_H
