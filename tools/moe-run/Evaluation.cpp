//===- Evaluation.cpp - Perplexity of a split over the ranks --------------===//

#include "tools/moe-run/Evaluation.h"

#include "tools/moe-run/BatchSource.h"
#include "tools/moe-run/Metrics.h"
#include "tools/moe-run/Package.h"
#include "tools/moe-run/Session.h"

#include "runtime/collectives/Collectives.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <vector>

namespace moe::run {

void sumOverRanks(rt::Collectives *collectives, double &sum, int64_t &count) {
  if (!collectives || collectives->size() == 1)
    return;
  double local[2] = {sum, static_cast<double>(count)};
  std::vector<double> all(2 * collectives->size());
  collectives->allGatherHost(local, sizeof(local), all.data());
  sum = 0;
  count = 0;
  for (int r = 0; r < collectives->size(); ++r) {
    sum += all[2 * r];
    count += static_cast<int64_t>(all[2 * r + 1]);
  }
}

void addExpertLoad(std::vector<std::vector<int64_t>> &sum,
                   const std::vector<std::vector<int64_t>> &perPlan) {
  sum.resize(perPlan.size());
  for (size_t p = 0; p < perPlan.size(); ++p) {
    sum[p].resize(perPlan[p].size(), 0);
    for (size_t e = 0; e < perPlan[p].size(); ++e)
      sum[p][e] += perPlan[p][e];
  }
}

void sumOverRanks(rt::Collectives *collectives,
                  std::vector<std::vector<int64_t>> &load) {
  if (!collectives || collectives->size() == 1)
    return;
  const int ranks = collectives->size();
  // The plans' sizes, from the first rank that has them (ranks that scored
  // no batch have none).
  int64_t plans = static_cast<int64_t>(load.size());
  std::vector<int64_t> allPlans(ranks);
  collectives->allGatherHost(&plans, sizeof(plans), allPlans.data());
  plans = *std::max_element(allPlans.begin(), allPlans.end());
  if (plans == 0)
    return;
  std::vector<int64_t> sizes(plans, 0);
  for (size_t p = 0; p < load.size(); ++p)
    sizes[p] = static_cast<int64_t>(load[p].size());
  std::vector<int64_t> allSizes(plans * ranks);
  collectives->allGatherHost(sizes.data(), plans * sizeof(int64_t),
                             allSizes.data());
  int owner = 0;
  while (allPlans[owner] != plans)
    ++owner;
  std::vector<int64_t> shape(allSizes.begin() + owner * plans,
                             allSizes.begin() + (owner + 1) * plans);
  for (int r = 0; r < ranks; ++r)
    if (allPlans[r] != 0 &&
        !std::equal(shape.begin(), shape.end(), allSizes.begin() + r * plans))
      throw std::logic_error("ranks report expert loads of different shapes");
  int64_t flat = std::accumulate(shape.begin(), shape.end(), int64_t(0));
  std::vector<int64_t> mine(flat, 0), all(flat * ranks);
  for (size_t p = 0, at = 0; p < load.size(); at += load[p].size(), ++p)
    std::copy(load[p].begin(), load[p].end(), mine.begin() + at);
  collectives->allGatherHost(mine.data(), flat * sizeof(int64_t), all.data());
  load.assign(plans, {});
  for (int64_t p = 0, at = 0; p < plans; at += shape[p], ++p) {
    load[p].assign(shape[p], 0);
    for (int r = 0; r < ranks; ++r)
      for (int64_t e = 0; e < shape[p]; ++e)
        load[p][e] += all[r * flat + at + e];
  }
}

Evaluation evaluate(Session &session, const Package &package,
                    BatchSource &batches, int64_t maxBatches,
                    rt::Collectives *collectives) {
  std::string role = package.evaluationFunction();
  Evaluation result;
  double sum = 0;
  int64_t count = 0, tokenCount = 0;
  int rank = collectives ? collectives->rank() : 0;
  int ranks = collectives ? collectives->size() : 1;
  auto start = Clock::now();
  auto score = [&] {
    return session.call(role, batches.inputs(), /*step=*/1,
                        /*training=*/false, /*collectStats=*/true);
  };
  while (batches.next()) {
    if (count++ % ranks == rank) {
      CallResult r = score();
      sum += r.stats.crossEntropySum;
      tokenCount += r.stats.crossEntropyTokens;
      addExpertLoad(result.expertLoad, r.stats.expertTokens);
    }
    if (maxBatches && count >= maxBatches)
      break;
  }
  // With expert-sharded tensors every call is collective (each rank's
  // tokens go to the ranks of their experts), so a rank left without a
  // batch in the last round calls on padding and ignores what it gets.
  int64_t busy = count % ranks;
  if (package.hasShardedTensors() && busy != 0 && rank >= busy) {
    batches.pad();
    score();
  }
  sumOverRanks(collectives, sum, tokenCount);
  sumOverRanks(collectives, result.expertLoad);
  result.tokens = tokenCount;
  result.seconds = secondsSince(start);
  result.crossEntropy = result.tokens ? sum / result.tokens : 0;
  result.perplexity = std::exp(result.crossEntropy);
  return result;
}

} // namespace moe::run
