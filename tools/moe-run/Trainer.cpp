//===- Trainer.cpp - The training loop ------------------------------------===//

#include "tools/moe-run/Trainer.h"

#include "tools/moe-run/BatchSource.h"
#include "tools/moe-run/Package.h"
#include "tools/moe-run/RunState.h"
#include "tools/moe-run/Session.h"
#include "tools/moe-run/StopTogether.h"

#include "runtime/collectives/Collectives.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <stdexcept>

namespace moe::run {

namespace {

/// A line summarising the expert load of the window: per plan, the share
/// of tokens the busiest and the idlest expert got relative to a uniform
/// split.
std::string loadSummary(const std::vector<std::vector<int64_t>> &load) {
  std::ostringstream text;
  for (size_t p = 0; p < load.size(); ++p) {
    int64_t total = 0, most = 0, least = INT64_MAX;
    for (int64_t c : load[p]) {
      total += c;
      most = std::max(most, c);
      least = std::min(least, c);
    }
    double uniform = static_cast<double>(total) / load[p].size();
    text << (p ? "; " : "") << "layer " << p << ": max/mean "
         << (uniform > 0 ? most / uniform : 0) << ", min/mean "
         << (uniform > 0 ? least / uniform : 0);
  }
  return text.str();
}

} // namespace

void Trainer::Window::add(const CallResult &result, int64_t realTargets) {
  loss += result.loss;
  crossEntropy += result.stats.crossEntropySum;
  crossEntropyTokens += result.stats.crossEntropyTokens;
  targets += realTargets;
  seconds += result.seconds;
  ++steps;
  addExpertLoad(expertLoad, result.stats.expertTokens);
}

Trainer::Trainer(const Package &package, Session &session,
                 rt::Collectives &ranks, const Dataset &data, RunState &state,
                 const TrainOptions &options, bool verbose, bool quiet)
    : package(package), session(session), ranks(ranks), data(data),
      state(state), options(options), stepInfo(*package.function("train_step")),
      verbose(verbose), quiet(quiet),
      progress(options.steps, ranks.size(), quiet) {}

Trainer::~Trainer() = default;

void Trainer::run(uint64_t seed) {
  double baseline = data.baselinePerplexity();
  batches = data.trainingBatches(state.open(seed), ranks.rank(), ranks.size());
  int64_t step = state.start(*batches);
  printSetup(baseline);

  // Allocate every arena now: a model too large for this machine fails
  // before training, not at its first evaluation.
  session.prepare("train_step");
  if (data.hasTestSplit())
    session.prepare(package.evaluationFunction());

  // Rank 0 writes the metrics for all.
  stopTogether(ranks, [&] {
    metrics.emplace(ranks.rank() == 0 ? options.metrics : "",
                    /*append=*/state.resuming());
  });
  start = Clock::now();
  firstStep = step;
  // The killed run may have stopped before the evaluation that followed
  // this checkpoint; its record was dropped with the rest after the save.
  if (state.resuming() && options.evalEvery > 0 &&
      step % options.evalEvery == 0 && step < options.steps)
    evaluateAt(step);
  int64_t lastSaved = -1;
  bool stoppedEarly = false;
  while (step < options.steps) {
    if (!batches->next())
      continue; // end of an epoch: the next call starts the next one
    ++step;
    CallResult r = session.call("train_step", batches->inputs(), step,
                                /*training=*/true, /*collectStats=*/true);
    if (!std::isfinite(r.loss)) {
      progress.finishLine();
      throw std::runtime_error("the loss is " + std::to_string(r.loss) +
                               " at step " + std::to_string(step) +
                               " (diverged; try a lower --lr when compiling)");
    }
    window.add(r, batches->realTargets());

    bool last = step == options.steps;
    bool outOfTime =
        options.maxMinutes > 0 && secondsSince(start) > options.maxMinutes * 60;
    if (step % std::max<int64_t>(options.logEvery, 1) == 0 || last || outOfTime)
      report(step, r.lr);
    if (state.saves() && options.checkpointEvery > 0 &&
        step % options.checkpointEvery == 0) {
      save(step);
      lastSaved = step;
    }
    if (options.evalEvery > 0 && step % options.evalEvery == 0 && !last)
      evaluateAt(step);
    if (outOfTime && !last) {
      progress.finishLine();
      if (!quiet)
        std::printf("stopping at step %lld: --max-minutes %.1f reached\n",
                    static_cast<long long>(step), options.maxMinutes);
      stoppedEarly = true;
      break;
    }
  }
  progress.finishLine();
  if (state.saves() && lastSaved != step && step > firstStep)
    save(step);
  Evaluation e = evaluateAt(step);
  if (!quiet) {
    std::printf("trained %lld steps in %s%s\n",
                static_cast<long long>(step - firstStep),
                formatDuration(secondsSince(start)).c_str(),
                stoppedEarly ? " (time limit)" : "");
    std::printf("test perplexity: %.2f (unigram baseline: %.2f)\n",
                e.perplexity, baseline);
  }
  metrics->write({{"step", step},
                  {"final", true},
                  {"test_perplexity", e.perplexity},
                  {"unigram_perplexity", baseline}});
}

void Trainer::printSetup(double baseline) const {
  if (quiet)
    return;
  int64_t parameters = 0;
  for (const std::string &name : session.parameterNames())
    parameters += session.bufferInfo(name).elements();
  std::printf("model: %s, %lld parameters, batch %s, arena %.1f MiB, %.3f "
              "GFLOP per step, backend %s\n",
              package.model().c_str(), static_cast<long long>(parameters),
              data.describeBatch(1).c_str(), stepInfo.arenaBytes / 1048576.0,
              stepInfo.flops / 1e9, session.backend().name().c_str());
  if (ranks.size() > 1)
    std::printf("ranks: %d (%s), global batch %s\n", ranks.size(),
                ranks.name().c_str(), data.describeBatch(ranks.size()).c_str());
  std::printf("unigram baseline: test perplexity %.2f\n", baseline);
  if (!data.hasTestSplit())
    std::printf("note: no test split (%s): no evaluation\n",
                data.missingTestSplit().c_str());
}

void Trainer::report(int64_t step, float lr) {
  double loss = window.loss / window.steps;
  // Perplexity of the global batches: every rank's cross-entropy.
  sumOverRanks(&ranks, window.crossEntropy, window.crossEntropyTokens);
  sumOverRanks(&ranks, stepInfo.planExperts, window.expertLoad);
  // The sampled softmax has no exact perplexity: reported as null.
  double ppl = window.crossEntropyTokens
                   ? std::exp(window.crossEntropy / window.crossEntropyTokens)
                   : std::nan("");
  double seconds = std::max(window.seconds, 1e-9);
  double tokensPerSecond = window.targets / seconds;
  // The manifest's FLOPs are one rank's share of a step: what a device did
  // (on average over the ranks, under expert parallelism), and the job did
  // that on every rank.
  double tflopsPerDevice = stepInfo.flops * window.steps / seconds / 1e12;
  double tflopsJob = tflopsPerDevice * ranks.size();
  double elapsed = secondsSince(start);
  double eta = elapsed / (step - firstStep) * (options.steps - step);
  if (options.maxMinutes > 0)
    eta = std::min(eta, options.maxMinutes * 60 - elapsed);
  progress.report(step, loss, ppl, lr, tokensPerSecond, tflopsPerDevice,
                  tflopsJob, eta);
  metrics->write({{"step", step},
                  {"epoch", batches->epoch()},
                  {"loss", loss},
                  {"perplexity", ppl},
                  {"lr", lr},
                  {"tokens_per_s", tokensPerSecond},
                  {"tflops_per_device", tflopsPerDevice},
                  {"tflops_job", tflopsJob},
                  {"expert_load", window.expertLoad},
                  {"elapsed_s", elapsed}});
  if (verbose && !window.expertLoad.empty()) {
    progress.finishLine();
    std::printf("expert load: %s\n", loadSummary(window.expertLoad).c_str());
  }
  window = Window();
}

void Trainer::save(int64_t step) {
  // Logged before the save: a kill just after its rename would leave a
  // checkpoint the metrics never mention, while a record without its
  // checkpoint is past the one a resumed run starts from, and dropped.
  metrics->write({{"step", step}, {"checkpoint", state.checkpointPath(step)}});
  std::string dir = state.save(step, *batches);
  progress.finishLine();
  if (!quiet)
    std::printf("checkpoint: %s\n", dir.c_str());
}

Evaluation Trainer::evaluateAt(int64_t step) {
  Evaluation e;
  if (!data.hasTestSplit()) {
    e.perplexity = e.crossEntropy = std::nan("");
    return e;
  }
  e = evaluate(session, package, *data.evaluationBatches("test"),
               options.evalBatches, &ranks);
  progress.finishLine();
  if (!quiet)
    std::printf("eval at step %lld: test perplexity %.2f over %lld words "
                "(%.1fs)\n",
                static_cast<long long>(step), e.perplexity,
                static_cast<long long>(e.tokens), e.seconds);
  metrics->write({{"step", step},
                  {"split", "test"},
                  {"perplexity", e.perplexity},
                  {"cross_entropy", e.crossEntropy},
                  {"tokens", e.tokens},
                  {"expert_load", e.expertLoad}});
  return e;
}

} // namespace moe::run
