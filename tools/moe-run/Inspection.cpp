//===- Inspection.cpp - What the experts of a trained model receive -------===//

#include "tools/moe-run/Inspection.h"

#include "tools/moe-run/Package.h"

#include <algorithm>
#include <charconv>
#include <numeric>
#include <stdexcept>
#include <unordered_map>

namespace moe::run {

std::vector<MoELayer> moeLayers(const FunctionInfo &function) {
  std::vector<MoELayer> layers;
  int groupPlan = -1;
  for (size_t p = 0; p < function.planExperts.size(); ++p) {
    if (function.planRoutesGroups[p]) {
      groupPlan = static_cast<int>(p);
      continue;
    }
    MoELayer layer;
    layer.plan = p;
    layer.experts = function.planExperts[p];
    if (groupPlan >= 0) {
      layer.groupPlan = groupPlan;
      layer.groups = function.planExperts[groupPlan];
    }
    layers.push_back(layer);
    groupPlan = -1;
  }
  return layers;
}

void RouteLog::add(const rt::step::RouteCapture &capture, int64_t firstWord,
                   const std::vector<bool> &keep) {
  if (capture.experts != experts())
    throw std::runtime_error("a routing capture over " +
                             std::to_string(capture.experts) +
                             " experts where the manifest says " +
                             std::to_string(experts()));
  if (capture.gate.size() != capture.expert.size())
    throw std::runtime_error("the package's dispatch plans carry no gate "
                             "values: compile it again (scripts/package.sh) "
                             "to inspect it");
  for (int64_t t = 0; t < capture.tokens; ++t) {
    if (!keep[t])
      continue;
    for (int32_t a = capture.rowPtr[t]; a < capture.rowPtr[t + 1]; ++a) {
      int32_t e = capture.expert[a];
      if (e < 0 || e >= experts())
        throw std::runtime_error("a routing capture names expert " +
                                 std::to_string(e) + " of " +
                                 std::to_string(experts()));
      byExpert[e].push_back({firstWord + t, capture.gate[a]});
      ++total_;
    }
  }
}

std::vector<int64_t> RouteLog::mostUsed(size_t count) const {
  std::vector<int64_t> ids(byExpert.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int64_t a, int64_t b) {
    return byExpert[a].size() > byExpert[b].size();
  });
  ids.resize(std::min(count, ids.size()));
  return ids;
}

std::vector<RankedContext>
topContexts(const std::vector<RoutedWord> &words, size_t count,
            const std::function<std::string(int64_t)> &contextOf) {
  std::vector<RankedContext> contexts;
  std::unordered_map<std::string, size_t> index;
  for (const RoutedWord &w : words) {
    std::string text = contextOf(w.word);
    auto [it, fresh] = index.try_emplace(text, contexts.size());
    if (fresh) {
      contexts.push_back({std::move(text), w.gate, 1});
      continue;
    }
    RankedContext &c = contexts[it->second];
    c.gate = std::max(c.gate, w.gate);
    ++c.count;
  }
  // Stable: equal gates keep the order in which the contexts first came.
  std::stable_sort(
      contexts.begin(), contexts.end(),
      [](const RankedContext &a, const RankedContext &b) {
        return a.gate > b.gate;
      });
  contexts.resize(std::min(count, contexts.size()));
  return contexts;
}

std::vector<int64_t> parseIds(const std::string &text, int64_t limit,
                              const std::string &what,
                              const std::string &limitNote) {
  std::vector<int64_t> ids;
  size_t begin = 0;
  while (begin <= text.size()) {
    size_t comma = std::min(text.find(',', begin), text.size());
    const char *first = text.data() + begin, *last = text.data() + comma;
    int64_t id = -1;
    auto [end, ec] = std::from_chars(first, last, id);
    if (ec != std::errc() || end != last || id < 0)
      throw std::runtime_error("'" + std::string(first, last) + "' is not " +
                               (what[0] == 'e' ? "an " : "a ") + what +
                               " id (expected a list like 0,5,17)");
    if (id >= limit)
      throw std::runtime_error(what + " " + std::to_string(id) +
                               " is out of range: " + limitNote + " (0-" +
                               std::to_string(limit - 1) + ")");
    ids.push_back(id);
    begin = comma + 1;
  }
  return ids;
}

} // namespace moe::run
