//===- StopTogether.cpp - Failures of some ranks stop every rank ----------===//

#include "tools/moe-run/StopTogether.h"

#include "runtime/collectives/Collectives.h"

#include <algorithm>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

namespace moe::run {

void stopTogether(rt::Collectives &ranks, const std::function<void()> &work) {
  std::exception_ptr failure;
  std::string message;
  try {
    work();
  } catch (const std::exception &e) {
    failure = std::current_exception();
    message = e.what();
  } catch (...) {
    failure = std::current_exception();
    message = "unknown error";
  }
  if (ranks.size() == 1) {
    if (failure)
      std::rethrow_exception(failure);
    return;
  }
  // Each rank's message, cut to a fixed size; an empty one means success
  // (host memory, as in sumOverRanks).
  constexpr size_t kMessageBytes = 512;
  std::vector<char> mine(kMessageBytes, '\0');
  if (failure) {
    if (message.empty())
      message = "failed";
    std::memcpy(mine.data(), message.data(),
                std::min(message.size(), kMessageBytes - 1));
  }
  std::vector<char> all(kMessageBytes * ranks.size());
  ranks.allGather(mine.data(), kMessageBytes, all.data());
  if (failure)
    std::rethrow_exception(failure);
  for (int r = 0; r < ranks.size(); ++r) {
    std::string text(all.data() + r * kMessageBytes);
    if (text.empty())
      continue;
    // One line: the failed rank prints the rest (a compiler's output).
    size_t newline = text.find('\n');
    if (newline != std::string::npos)
      text = text.substr(0, newline) + " ...";
    throw std::runtime_error("stopped: rank " + std::to_string(r) +
                             " failed: " + text);
  }
}

} // namespace moe::run
