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
  // Each rank's message, cut to a fixed size; an empty one means success.
  constexpr size_t kMessageBytes = 512;
  message.erase(std::find(message.begin(), message.end(), '\0'), message.end());
  message = message.substr(0, kMessageBytes - 1);
  if (failure && message.empty())
    message = "failed";
  std::vector<std::string> all = gatherStrings(ranks, message, kMessageBytes);
  if (failure)
    std::rethrow_exception(failure);
  for (int r = 0; r < ranks.size(); ++r) {
    std::string text = all[r];
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

std::vector<std::string> gatherStrings(rt::Collectives &ranks,
                                       const std::string &text,
                                       size_t maxBytes) {
  if (text.size() >= maxBytes || text.find('\0') != std::string::npos)
    throw std::invalid_argument(
        "gatherStrings: a text of " + std::to_string(text.size()) +
        " bytes does not fit " + std::to_string(maxBytes));
  std::vector<char> mine(maxBytes, '\0'), all(maxBytes * ranks.size());
  std::memcpy(mine.data(), text.data(), text.size());
  ranks.allGatherHost(mine.data(), maxBytes, all.data());
  std::vector<std::string> texts;
  for (int r = 0; r < ranks.size(); ++r)
    texts.emplace_back(all.data() + r * maxBytes);
  return texts;
}

} // namespace moe::run
