//===- Evaluation.cpp - Perplexity of a split over the ranks --------------===//

#include "tools/moe-run/Evaluation.h"

#include "tools/moe-run/BatchSource.h"
#include "tools/moe-run/Metrics.h"
#include "tools/moe-run/Package.h"
#include "tools/moe-run/Session.h"

#include "runtime/collectives/Collectives.h"

#include <cmath>
#include <stdexcept>
#include <string>
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

std::vector<int64_t> sumOverRanks(rt::Collectives &collectives,
                                  const std::vector<int64_t> &local) {
  const int ranks = collectives.size();
  if (ranks == 1)
    return local;
  const size_t n = local.size();
  std::vector<int64_t> all(n * ranks), sum(n, 0);
  collectives.allGatherHost(local.data(), n * sizeof(int64_t), all.data());
  for (int r = 0; r < ranks; ++r)
    for (size_t i = 0; i < n; ++i)
      sum[i] += all[r * n + i];
  return sum;
}

void sumOverRanks(rt::Collectives *collectives,
                  const std::vector<int64_t> &planExperts,
                  std::vector<std::vector<int64_t>> &load) {
  if (!collectives || collectives->size() == 1)
    return;
  // Every rank knows the plans' sizes from the manifest, also a rank that
  // scored no batch (it has no load and adds zeros).
  if (!load.empty() && load.size() != planExperts.size())
    throw std::logic_error("expert load of " + std::to_string(load.size()) +
                           " dispatch plans, the manifest lists " +
                           std::to_string(planExperts.size()));
  std::vector<int64_t> flat;
  for (size_t p = 0; p < planExperts.size(); ++p) {
    if (!load.empty() && static_cast<int64_t>(load[p].size()) != planExperts[p])
      throw std::logic_error("expert load of plan " + std::to_string(p) +
                             " has " + std::to_string(load[p].size()) +
                             " experts, the manifest lists " +
                             std::to_string(planExperts[p]));
    if (load.empty())
      flat.resize(flat.size() + planExperts[p], 0);
    else
      flat.insert(flat.end(), load[p].begin(), load[p].end());
  }
  flat = sumOverRanks(*collectives, flat);
  load.assign(planExperts.size(), {});
  auto at = flat.begin();
  for (size_t p = 0; p < planExperts.size(); at += planExperts[p], ++p)
    load[p].assign(at, at + planExperts[p]);
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
  sumOverRanks(collectives, package.function(role)->planExperts,
               result.expertLoad);
  result.tokens = tokenCount;
  result.seconds = secondsSince(start);
  result.crossEntropy = result.tokens ? sum / result.tokens : 0;
  result.perplexity = std::exp(result.crossEntropy);
  return result;
}

} // namespace moe::run
