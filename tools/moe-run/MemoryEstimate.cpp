//===- MemoryEstimate.cpp - Bytes a package needs per rank ----------------===//
//
// The same walk over the functions' arguments as Session's constructor and
// Session::state, so the estimate is what they allocate.
//
//===----------------------------------------------------------------------===//

#include "tools/moe-run/MemoryEstimate.h"

#include "tools/moe-run/Package.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <stdexcept>

namespace moe::run {

std::vector<std::string> functionsOf(const Package &package,
                                     const std::string &command) {
  std::vector<std::string> roles;
  if (command == "train" || command == "gradcheck")
    roles.push_back("train_step");
  roles.push_back(command == "gradcheck" ? "model"
                                         : package.evaluationFunction());
  // Decoding may run incrementally (its state buffers are not counted:
  // a few rows of LSTM state and encoder outputs).
  if (command == "translate" || command == "generate" || command == "eval") {
    roles.push_back("encode");
    roles.push_back("decode_step");
  }
  std::vector<std::string> present;
  for (const std::string &role : roles)
    if (package.function(role))
      present.push_back(role);
  return present;
}

MemoryEstimate estimateMemory(const Package &package, int ranks,
                              const std::vector<std::string> &functions) {
  MemoryEstimate estimate;
  estimate.ranks = ranks;
  // Parameters and state are shared by every function of the package
  // (Session allocates them all, whatever runs).
  std::set<std::string> seen;
  for (const char *role : {"train_step", "eval", "model"}) {
    const FunctionInfo *info = package.function(role);
    if (!info)
      continue;
    for (const ArgumentInfo &arg : info->arguments) {
      if (arg.role == ArgumentRole::Input || !seen.insert(arg.name).second)
        continue;
      uint64_t bytes = arg.localBytes(ranks);
      (arg.role == ArgumentRole::Param ? estimate.parameters
                                       : estimate.optimizerState) += bytes;
    }
  }
  for (const std::string &role : functions) {
    const FunctionInfo *info = package.function(role);
    if (!info)
      continue;
    estimate.arenas += static_cast<uint64_t>(info->arenaBytes);
    // The vocabulary layers' rows of all ranks (sparse gradients under
    // data parallelism) grow with the ranks.
    estimate.pools += static_cast<uint64_t>(ranks) *
                      static_cast<uint64_t>(info->rankRowsBytes);
    for (const ArgumentInfo &arg : info->arguments) {
      if (arg.role == ArgumentRole::Input)
        estimate.inputs += arg.bytes();
      // A shard's gradient has a run-time size (n / R rows): the planner
      // leaves it to the step's pool.
      if (role == "train_step" && arg.role == ArgumentRole::Param &&
          arg.sharded)
        estimate.pools += arg.localBytes(ranks);
    }
  }
  return estimate;
}

std::vector<int> largerRankCounts(const Package &package, int ranks) {
  std::vector<int> counts;
  if (!package.hasShardedTensors())
    return counts;
  for (int r = ranks * 2; r <= 1024; r *= 2) {
    bool divides = true;
    for (const ArgumentInfo *arg : package.trainableState())
      if (arg->sharded && (arg->shape.empty() || arg->shape[0] % r != 0))
        divides = false;
    if (!divides)
      break;
    counts.push_back(r);
  }
  return counts;
}

std::optional<std::string> checkFits(const Package &package, int ranks,
                                     const std::vector<std::string> &functions,
                                     uint64_t budget,
                                     const std::string &where) {
  uint64_t needed = estimateMemory(package, ranks, functions).total();
  if (needed <= budget)
    return std::nullopt;
  std::string message = "needs " + formatBytes(needed) + " per rank on " +
                        std::to_string(ranks) +
                        (ranks == 1 ? " rank" : " ranks") + ", " + where + " " +
                        formatBytes(budget);
  if (!package.hasShardedTensors())
    return message + "; data-parallel ranks each hold every tensor: compile "
                     "with expert-parallel=true to split the experts";
  for (int r : largerRankCounts(package, ranks))
    if (estimateMemory(package, r, functions).total() <= budget)
      return message + "; fits on " + std::to_string(r) +
             " ranks (expert-parallel)";
  return message + "; does not fit on any rank count that divides the experts";
}

std::string formatBytes(uint64_t bytes) {
  static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  if (unit == 0)
    std::snprintf(text, sizeof(text), "%llu B",
                  static_cast<unsigned long long>(bytes));
  else
    std::snprintf(text, sizeof(text), "%.2f %s", value, units[unit]);
  return text;
}

uint64_t parseBytes(const std::string &text) {
  auto bad = [&] {
    return std::invalid_argument("'" + text +
                                 "' is no size (e.g. 1000, 512M, 8G, 1.5GiB)");
  };
  const char *begin = text.c_str();
  char *end = nullptr;
  double value = std::strtod(begin, &end);
  if (end == begin || !(value >= 0) || !std::isfinite(value))
    throw bad();
  std::string suffix(end);
  double scale = 1;
  if (!suffix.empty()) {
    const std::string letters = "BKMGT";
    size_t power = letters.find(static_cast<char>(std::toupper(suffix[0])));
    std::string rest = suffix.substr(1);
    if (power == std::string::npos ||
        !(rest.empty() || (power > 0 && (rest == "iB" || rest == "B"))))
      throw bad();
    scale = std::ldexp(1.0, 10 * static_cast<int>(power));
  }
  double bytes = std::floor(value * scale);
  if (bytes >= 18446744073709551616.0)
    throw bad();
  return static_cast<uint64_t>(bytes);
}

} // namespace moe::run
