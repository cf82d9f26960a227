//===- BeamSearch.cpp - Beam search with GNMT's length penalty ------------===//

#include "tools/moe-run/BeamSearch.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace moe::run {

double lengthPenalty(int64_t length, double alpha) {
  return std::pow((5.0 + static_cast<double>(length)) / 6.0, alpha);
}

BeamSearch::BeamSearch(BeamOptions options) : options_(std::move(options)) {
  if (options_.width < 1)
    throw std::invalid_argument("beam width must be at least 1");
  if (options_.maxLength < 0)
    throw std::invalid_argument("maximum length must not be negative");
  live_.emplace_back();
}

void BeamSearch::advance(const std::vector<const float *> &logProbs,
                         int64_t vocab) {
  if (logProbs.size() != live_.size())
    throw std::invalid_argument("advance: " + std::to_string(logProbs.size()) +
                                " score rows for " +
                                std::to_string(live_.size()) + " hypotheses");
  std::vector<bool> allowed(vocab, true);
  for (int32_t id : options_.excluded)
    if (id >= 0 && id < vocab)
      allowed[id] = false;
  struct Candidate {
    double logProb;
    size_t parent;
    int32_t piece;
  };
  std::vector<Candidate> candidates;
  auto add = [&](size_t parent, int32_t piece) {
    float lp = logProbs[parent][piece];
    if (std::isnan(lp))
      throw std::runtime_error("the model's next-piece log-probabilities "
                               "are not finite");
    candidates.push_back({live_[parent].logProb + lp, parent, piece});
  };
  for (size_t i = 0; i < live_.size(); ++i) {
    // A hypothesis at the maximum length can only end.
    if (static_cast<int64_t>(live_[i].pieces.size()) >= options_.maxLength) {
      if (options_.eos >= 0 && options_.eos < vocab)
        add(i, options_.eos);
      continue;
    }
    for (int32_t v = 0; v < vocab; ++v)
      if (allowed[v])
        add(i, v);
  }
  // The 2 * width best: enough for `width` live ones even when up to
  // `width` of them end here. Ties go to the earlier hypothesis and piece,
  // so the search is deterministic.
  size_t width = static_cast<size_t>(options_.width);
  size_t keep = std::min(candidates.size(), 2 * width);
  std::partial_sort(candidates.begin(), candidates.begin() + keep,
                    candidates.end(),
                    [](const Candidate &a, const Candidate &b) {
                      if (a.logProb != b.logProb)
                        return a.logProb > b.logProb;
                      if (a.parent != b.parent)
                        return a.parent < b.parent;
                      return a.piece < b.piece;
                    });
  std::vector<Hypothesis> next;
  for (size_t r = 0; r < keep; ++r) {
    const Candidate &c = candidates[r];
    if (next.size() >= width && r >= width)
      break;
    bool ends = c.piece == options_.eos;
    if (ends && r >= width)
      continue; // only an EOS among the best `width` finishes
    if (!ends && next.size() >= width)
      continue;
    Hypothesis h;
    h.pieces = live_[c.parent].pieces;
    h.pieces.push_back(c.piece);
    h.logProb = c.logProb;
    h.parent = c.parent;
    if (ends) {
      h.score = h.logProb / lengthPenalty(static_cast<int64_t>(h.pieces.size()),
                                          options_.lengthPenalty);
      finished_.push_back(std::move(h));
    } else {
      next.push_back(std::move(h));
    }
  }
  if (finished_.size() >= width)
    next.clear();
  live_ = std::move(next);
}

const Hypothesis &BeamSearch::best() const {
  if (finished_.empty())
    throw std::logic_error("beam search: no finished hypothesis");
  const Hypothesis *best = &finished_[0];
  for (const Hypothesis &h : finished_)
    if (h.score > best->score)
      best = &h;
  return *best;
}

Hypothesis beamSearch(const BeamOptions &options, int64_t vocab,
                      const NextPieceScorer &scorer) {
  BeamSearch search(options);
  std::vector<std::vector<int32_t>> prefixes;
  std::vector<std::vector<float>> logProbs;
  while (!search.done()) {
    prefixes.clear();
    for (const Hypothesis &h : search.live())
      prefixes.push_back(h.pieces);
    logProbs.assign(prefixes.size(), {});
    scorer(prefixes, logProbs);
    std::vector<const float *> rows;
    for (const auto &row : logProbs) {
      if (static_cast<int64_t>(row.size()) != vocab)
        throw std::invalid_argument("beamSearch: a score row of " +
                                    std::to_string(row.size()) +
                                    " entries, not " + std::to_string(vocab));
      rows.push_back(row.data());
    }
    search.advance(rows, vocab);
  }
  return search.best();
}

void logSoftmax(float *values, int64_t count) {
  double maxValue = -INFINITY;
  for (int64_t i = 0; i < count; ++i)
    maxValue = std::max<double>(maxValue, values[i]);
  double sum = 0;
  for (int64_t i = 0; i < count; ++i)
    sum += std::exp(values[i] - maxValue);
  double logSum = maxValue + std::log(sum);
  for (int64_t i = 0; i < count; ++i)
    values[i] = static_cast<float>(values[i] - logSum);
}

} // namespace moe::run
