//===- Commands.cpp - train, eval, generate, gradcheck, info --------------===//
//
// The language-model driver: a corpus split into train and test, batches of
// the compiled [batch, time] shape, the training step in a loop with
// progress, metrics, evaluation and atomic checkpoints, and a resume that
// replays an uninterrupted run exactly (parameters, Adam moments, step,
// seed and data position are restored; all randomness is keyed by them).
//
//===----------------------------------------------------------------------===//

#include "tools/moe-run/Commands.h"

#include "tools/moe-run/Metrics.h"
#include "tools/moe-run/Package.h"
#include "tools/moe-run/Session.h"

#include "runtime/Fnv1a.h"
#include "runtime/Philox.h"
#include "runtime/checkpoint/Checkpoint.h"
#include "runtime/collectives/Collectives.h"
#include "runtime/data/Batcher.h"
#include "runtime/data/Corpus.h"
#include "runtime/data/Tokenizer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>

namespace moe::run {

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// A loaded package with its session and the ranks it runs on (declared
/// first: destroyed after the session that uses them).
struct Loaded {
  std::unique_ptr<rt::Collectives> collectives;
  std::unique_ptr<Package> package;
  std::unique_ptr<Session> session;
  int rank() const { return collectives->rank(); }
  int ranks() const { return collectives->size(); }
};

std::unique_ptr<rt::Backend> makeBackend(const CommonOptions &options,
                                         const Package &package) {
  std::string backend = options.backend;
  if (backend == "auto")
    backend = package.target() == "cuda" ? "cuda" : "cpu";
  if (backend == "cpu") {
    if (package.target() == "cuda")
      throw std::runtime_error("package " + package.directory() +
                               " was compiled for CUDA (step.cu); compile "
                               "it with --moe-to-cpp for the CPU");
    return rt::createCpuBackend(options.threads);
  }
  if (backend == "cuda")
    return rt::createCudaBackend(options.device);
  throw std::runtime_error("unknown backend '" + backend +
                           "' (expected auto, cpu or cuda)");
}

Loaded loadPackage(const CommonOptions &options) {
  Loaded loaded;
  loaded.package = std::make_unique<Package>(Package::open(options.package));
  // Under mpirun every rank runs this; "auto" finds out. GPU ranks talk
  // over NCCL (device memory, one GPU per rank); CPU ranks over MPI.
  std::string kind = options.collectives;
  bool cuda = options.backend == "cuda" ||
              (options.backend == "auto" && loaded.package->target() == "cuda");
  bool launched = std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMI_SIZE");
  if (kind == "auto" && cuda && launched)
    kind = "nccl";
  rt::CollectivesOptions collectiveOptions;
  collectiveOptions.device = options.device;
  loaded.collectives = rt::createCollectives(kind, collectiveOptions);
  // Rank 0 compiles the package; the others then find it in the cache.
  if (loaded.rank() == 0)
    loaded.package->load(options.verbose);
  loaded.collectives->barrier();
  if (loaded.rank() != 0)
    loaded.package->load(false);
  // The ranks size the buffers of expert-sharded tensors.
  loaded.session = std::make_unique<Session>(
      *loaded.package, makeBackend(options, *loaded.package),
      loaded.collectives.get());
  return loaded;
}

/// The [batch, time] shape of a language model's tokens and targets.
struct LmShape {
  int64_t batch = 0, time = 0, vocab = 0;
};

LmShape languageModelShape(const Package &package) {
  const FunctionInfo &step = *package.function("train_step");
  const ArgumentInfo *tokens = step.input("tokens");
  const ArgumentInfo *targets = step.input("targets");
  std::string inputs;
  for (const ArgumentInfo &arg : step.arguments)
    if (arg.role == ArgumentRole::Input)
      inputs += (inputs.empty() ? "" : ", ") + arg.name;
  if (!tokens || !targets || tokens->shape.size() != 2 ||
      tokens->shape != targets->shape || tokens->dtype != "i32")
    throw std::runtime_error(
        "moe-run trains language models: inputs 'tokens' and 'targets' of "
        "shape [batch, time] (i32); model " +
        package.model() + " has inputs " + inputs);
  if (tokens->idBound < 2)
    throw std::runtime_error("input 'tokens' feeds no embedding: cannot "
                             "tell the vocabulary size");
  return {tokens->shape[0], tokens->shape[1], tokens->idBound};
}

rt::data::Corpus loadData(const DataOptions &data, const LmShape &shape,
                          bool quiet) {
  if (data.path.empty())
    throw std::runtime_error("--data is required: a text file, one "
                             "sentence per line");
  int64_t vocab = data.vocabSize ? data.vocabSize : shape.vocab;
  if (vocab > shape.vocab)
    throw std::runtime_error("--vocab-size " + std::to_string(vocab) +
                             " exceeds the model's vocabulary of " +
                             std::to_string(shape.vocab));
  rt::data::CorpusOptions options;
  options.testFraction = data.testFraction;
  options.vocabSize = vocab;
  options.minCount = data.minCount;
  options.maxLines = data.maxLines;
  auto start = Clock::now();
  rt::data::Corpus corpus = rt::data::loadCorpus(data.path, options);
  if (!quiet)
    std::printf("data: %s: %zu train / %zu test sentences, %lld / %lld "
                "words, vocabulary %lld (%.2fs)\n",
                data.path.c_str(), corpus.train.size(), corpus.test.size(),
                static_cast<long long>(corpus.trainWords),
                static_cast<long long>(corpus.testWords),
                static_cast<long long>(corpus.vocab.size()),
                secondsSince(start));
  if (corpus.train.empty())
    throw std::runtime_error("data: " + data.path + " has no training "
                                                    "sentences");
  return corpus;
}

std::string hex64(uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx",
                static_cast<unsigned long long>(value));
  return text;
}

/// A fingerprint of the training split (ids and sentence boundaries): a
/// resumed run must read the same stream.
std::string splitFingerprint(const std::vector<std::vector<int32_t>> &split) {
  rt::Fnv1a hash;
  for (const auto &sentence : split) {
    hash.integer(sentence.size());
    for (int32_t id : sentence)
      hash.integer(static_cast<uint32_t>(id));
  }
  return hex64(hash.value());
}

/// Loads `checkpoint` into the session after checking it belongs to this
/// model, vocabulary and (for training) batch shape and training split.
void restoreCheckpoint(Session &session, const Package &package,
                       const rt::data::Corpus &corpus,
                       const rt::Checkpoint &checkpoint,
                       const std::string &dir, const LmShape *shape) {
  const nlohmann::json &state = checkpoint.state;
  std::string model = state.value("model", "");
  if (model != package.model())
    throw rt::CheckpointError("checkpoint " + dir + " is of model '" + model +
                              "', the package is '" + package.model() + "'");
  std::string fingerprint = state.value("vocab_fingerprint", "");
  if (fingerprint != hex64(corpus.vocab.fingerprint()))
    throw rt::CheckpointError(
        "checkpoint " + dir +
        " was trained with another vocabulary (different --data, "
        "--vocab-size or --min-count)");
  if (shape) {
    std::vector<int64_t> batch =
        state.value("batch", std::vector<int64_t>{});
    if (batch != std::vector<int64_t>{shape->batch, shape->time})
      throw rt::CheckpointError("checkpoint " + dir +
                                " was trained with another batch shape; "
                                "resuming needs the same compiled batch");
    if (state.value("train_fingerprint", "") !=
        splitFingerprint(corpus.train))
      throw rt::CheckpointError(
          "checkpoint " + dir +
          " was trained on another training split (different --data, "
          "--test-fraction or --max-lines): its data position would not "
          "resume the same stream");
  }
  session.restore(checkpoint);
}

/// Resuming from step N into a directory that holds later checkpoints of
/// an abandoned run would mix the two runs (pruning keeps the newest steps,
/// and `--resume latest` would jump back to the abandoned one).
void refuseNewerCheckpoints(const std::string &root, int64_t step) {
  if (root.empty())
    return;
  std::string latest = rt::latestCheckpoint(root);
  if (latest.empty())
    return;
  rt::Checkpoint newest = rt::loadCheckpoint(latest);
  if (newest.step > step)
    throw std::runtime_error(
        "--checkpoint-dir " + root + " holds " + latest + ", later than the "
        "resume point (step " + std::to_string(step) +
        "): write to another directory or remove the later checkpoints");
}

/// Drops the records a killed run logged after its last checkpoint, so the
/// resumed run's records follow on without duplicates.
void dropMetricsAfter(const std::string &path, int64_t step) {
  std::ifstream in(path);
  if (!in)
    return;
  std::vector<std::string> kept;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty())
      continue;
    nlohmann::json record = nlohmann::json::parse(line, nullptr, false);
    if (record.is_discarded() || record.value("step", int64_t(0)) <= step)
      kept.push_back(line);
  }
  in.close();
  std::ofstream out(path, std::ios::trunc);
  for (const std::string &k : kept)
    out << k << "\n";
}

/// Adds every rank's (cross-entropy sum, token count) in rank order, so all
/// ranks report the same perplexity; a no-op on one rank.
void sumOverRanks(rt::Collectives *collectives, double &sum, int64_t &count) {
  if (!collectives || collectives->size() == 1)
    return;
  double local[2] = {sum, static_cast<double>(count)};
  std::vector<double> all(2 * collectives->size());
  collectives->allGather(local, sizeof(local), all.data());
  sum = 0;
  count = 0;
  for (int r = 0; r < collectives->size(); ++r) {
    sum += all[2 * r];
    count += static_cast<int64_t>(all[2 * r + 1]);
  }
}

/// Perplexity of the eval function over a split.
struct Evaluation {
  double perplexity = 0, crossEntropy = 0;
  int64_t tokens = 0;
  double seconds = 0;
};

/// Evaluates the split's batches, rank r taking batches r, r + R, ...; the
/// sums are gathered and added in rank order, so every rank reports the
/// same perplexity whatever the number of ranks.
Evaluation evaluate(Session &session, const Package &package,
                    const std::vector<std::vector<int32_t>> &sentences,
                    const LmShape &shape, int64_t maxBatches,
                    rt::Collectives *collectives = nullptr) {
  if (sentences.empty())
    throw std::runtime_error("the split to evaluate has no sentences "
                             "(raise --test-fraction or use a larger "
                             "corpus)");
  std::string role = package.function("eval") ? "eval" : "model";
  rt::data::LmBatcher batcher(sentences, shape.batch, shape.time, 0,
                              /*shuffle=*/false);
  std::vector<int32_t> tokens(shape.batch * shape.time),
      targets(shape.batch * shape.time);
  Evaluation result;
  double sum = 0;
  int64_t batches = 0, tokenCount = 0;
  int rank = collectives ? collectives->rank() : 0;
  int ranks = collectives ? collectives->size() : 1;
  auto start = Clock::now();
  while (batcher.next(tokens.data(), targets.data())) {
    if (batches++ % ranks == rank) {
      CallResult r = session.call(
          role, {{"tokens", tokens.data()}, {"targets", targets.data()}},
          /*step=*/1, /*training=*/false, /*collectStats=*/true);
      sum += r.stats.crossEntropySum;
      tokenCount += r.stats.crossEntropyTokens;
    }
    if (maxBatches && batches >= maxBatches)
      break;
  }
  // With expert-sharded tensors every call is collective (each rank's
  // tokens go to the ranks of their experts), so a rank left without a
  // batch in the last round calls on padding and ignores what it gets.
  int64_t busy = batches % ranks;
  if (package.hasShardedTensors() && busy != 0 && rank >= busy) {
    const ArgumentInfo *input = package.function(role)->input("targets");
    std::fill(tokens.begin(), tokens.end(), rt::data::kEosId);
    std::fill(targets.begin(), targets.end(),
              input && input->allowsPadding ? -1 : rt::data::kEosId);
    session.call(role, {{"tokens", tokens.data()}, {"targets", targets.data()}},
                 /*step=*/1, /*training=*/false, /*collectStats=*/true);
  }
  sumOverRanks(collectives, sum, tokenCount);
  result.tokens = tokenCount;
  result.seconds = secondsSince(start);
  result.crossEntropy = result.tokens ? sum / result.tokens : 0;
  result.perplexity = std::exp(result.crossEntropy);
  return result;
}

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

//===----------------------------------------------------------------------===//
// train
//===----------------------------------------------------------------------===//

int runTrain(const CommonOptions &common, const DataOptions &data,
             const TrainOptions &train) {
  Loaded loaded = loadPackage(common);
  Package &package = *loaded.package;
  Session &session = *loaded.session;
  rt::Collectives &ranks = *loaded.collectives;
  // Rank 0 speaks, writes metrics and checkpoints for all.
  bool lead = ranks.rank() == 0;
  bool quiet = common.quiet || !lead;
  if (!package.hasAdam())
    throw std::runtime_error(
        "package " + package.directory() +
        " returns gradients (optimizer=none): compile it with Adam to train");
  LmShape shape = languageModelShape(package);
  int64_t batchTokens = shape.batch * shape.time;
  if (train.batchTokens && train.batchTokens != batchTokens)
    throw std::runtime_error(
        "--batch-tokens " + std::to_string(train.batchTokens) +
        ": the model was compiled for batches of " +
        std::to_string(shape.batch) + " x " + std::to_string(shape.time) +
        " = " + std::to_string(batchTokens) +
        " tokens (change the shapes in the model and recompile)");
  if (train.steps < 1)
    throw std::runtime_error("--steps must be at least 1");
  rt::data::Corpus corpus = loadData(data, shape, quiet);
  double unigram = rt::data::unigramPerplexity(corpus);

  // The global batch of a step is R batches of the compiled shape, cut
  // from one stream; rank r takes the r-th. R ranks thus read what one
  // rank compiled for R times the batch reads.
  int64_t globalRows = shape.batch * ranks.size();
  std::string trainFingerprint = splitFingerprint(corpus.train);
  int64_t step = 0;
  uint64_t seed = common.seed;
  std::string resumeDir = train.resume;
  if (resumeDir == "latest") {
    if (train.checkpointDir.empty())
      throw std::runtime_error("--resume latest needs --checkpoint-dir");
    resumeDir = rt::latestCheckpoint(train.checkpointDir);
    if (resumeDir.empty() && !quiet)
      std::printf("resume: no checkpoint in %s yet, starting fresh\n",
                  train.checkpointDir.c_str());
  }
  bool resuming = !resumeDir.empty();
  rt::Checkpoint checkpoint;
  if (resuming) {
    checkpoint = rt::loadCheckpoint(resumeDir);
    // The seed is part of the run: a resumed run keeps the original one.
    seed = checkpoint.state.value("seed", seed);
  }
  session.initialize(seed);
  rt::data::LmBatcher batcher(corpus.train, globalRows, shape.time, seed,
                              /*shuffle=*/true);
  if (resuming) {
    restoreCheckpoint(session, package, corpus, checkpoint, resumeDir, &shape);
    step = checkpoint.step;
    const nlohmann::json &state = checkpoint.state;
    refuseNewerCheckpoints(train.checkpointDir, step);
    if (!train.metrics.empty() && lead)
      dropMetricsAfter(train.metrics, step);
    rt::data::LmBatcher::Position position;
    position.epoch = state["data"].value("epoch", int64_t(0));
    position.batch = state["data"].value("batch", int64_t(0));
    batcher.seek(position);
    if (!quiet)
      std::printf("resume: %s at step %lld (epoch %lld, batch %lld)\n",
                  resumeDir.c_str(), static_cast<long long>(step),
                  static_cast<long long>(position.epoch),
                  static_cast<long long>(position.batch));
    if (!quiet && checkpoint.expertShards > 0 &&
        checkpoint.expertShards != ranks.size())
      std::printf("resume: expert shards of %d ranks split anew over %d\n",
                  checkpoint.expertShards, ranks.size());
  }

  const FunctionInfo &stepInfo = *package.function("train_step");
  int64_t parameters = 0;
  for (const std::string &name : session.parameterNames())
    parameters += session.bufferInfo(name).elements();
  if (!quiet) {
    std::printf("model: %s, %lld parameters, batch %lld x %lld, arena %.1f "
                "MiB, %.3f GFLOP per step, backend %s\n",
                package.model().c_str(), static_cast<long long>(parameters),
                static_cast<long long>(shape.batch),
                static_cast<long long>(shape.time),
                stepInfo.arenaBytes / 1048576.0, stepInfo.flops / 1e9,
                session.backend().name().c_str());
    if (ranks.size() > 1)
      std::printf("ranks: %d (%s), global batch %lld x %lld\n", ranks.size(),
                  ranks.name().c_str(), static_cast<long long>(globalRows),
                  static_cast<long long>(shape.time));
    std::printf("unigram baseline: test perplexity %.2f\n", unigram);
    if (corpus.test.empty())
      std::printf("note: no test split (--test-fraction %.3g of %zu "
                  "sentences rounds to none per block): no evaluation\n",
                  data.testFraction, corpus.train.size());
  }

  // Allocate every arena now: a model too large for this machine fails
  // before training, not at its first evaluation.
  session.prepare("train_step");
  if (!corpus.test.empty())
    session.prepare(package.function("eval") ? "eval" : "model");

  MetricsFile metrics(lead ? train.metrics : "", /*append=*/!resumeDir.empty());
  Progress progress(train.steps, quiet);
  std::vector<int32_t> globalTokens(globalRows * shape.time),
      globalTargets(globalRows * shape.time);
  int32_t *tokens = globalTokens.data() + ranks.rank() * batchTokens;
  int32_t *targets = globalTargets.data() + ranks.rank() * batchTokens;

  auto saveAt = [&](int64_t at) {
    nlohmann::json state{
        {"model", package.model()},
        {"seed", seed},
        {"data",
         {{"epoch", batcher.position().epoch},
          {"batch", batcher.position().batch}}},
        {"vocab_size", corpus.vocab.size()},
        {"vocab_fingerprint", hex64(corpus.vocab.fingerprint())},
        {"train_fingerprint", trainFingerprint},
        {"batch", {shape.batch, shape.time}},
        {"corpus", data.path}};
    // Rank 0 writes the replicated tensors and, gathered from every rank,
    // the expert shards (no shared filesystem needed).
    std::vector<rt::CheckpointFile> files = session.snapshot();
    std::string dir;
    if (lead)
      dir = rt::saveCheckpointFiles(train.checkpointDir, at, files, state,
                                    train.keep);
    ranks.barrier();
    progress.finishLine();
    if (!quiet)
      std::printf("checkpoint: %s\n", dir.c_str());
    metrics.write({{"step", at}, {"checkpoint", dir}});
  };
  auto evalAt = [&](int64_t at) {
    Evaluation e;
    if (corpus.test.empty()) {
      e.perplexity = e.crossEntropy = std::nan("");
      return e;
    }
    e = evaluate(session, package, corpus.test, shape, train.evalBatches,
                 &ranks);
    progress.finishLine();
    if (!quiet)
      std::printf("eval at step %lld: test perplexity %.2f over %lld words "
                  "(%.1fs)\n",
                  static_cast<long long>(at), e.perplexity,
                  static_cast<long long>(e.tokens), e.seconds);
    metrics.write({{"step", at},
                   {"split", "test"},
                   {"perplexity", e.perplexity},
                   {"cross_entropy", e.crossEntropy},
                   {"tokens", e.tokens}});
    return e;
  };

  // Statistics of the current reporting window.
  double windowLoss = 0, windowCe = 0, windowSeconds = 0;
  int64_t windowSteps = 0, windowCeTokens = 0, windowTokens = 0;
  std::vector<std::vector<int64_t>> windowLoad;
  auto start = Clock::now();
  int64_t firstStep = step, lastSaved = -1;
  bool stoppedEarly = false;
  while (step < train.steps) {
    if (!batcher.next(globalTokens.data(), globalTargets.data()))
      continue; // end of an epoch: the next call starts the next one
    ++step;
    CallResult r = session.call("train_step",
                                {{"tokens", tokens}, {"targets", targets}},
                                step, /*training=*/true, /*collectStats=*/true);
    if (!std::isfinite(r.loss)) {
      progress.finishLine();
      throw std::runtime_error("the loss is " + std::to_string(r.loss) +
                               " at step " + std::to_string(step) +
                               " (diverged; try a lower --lr when compiling)");
    }
    windowLoss += r.loss;
    windowCe += r.stats.crossEntropySum;
    windowCeTokens += r.stats.crossEntropyTokens;
    windowTokens += batcher.realTargets(globalTargets.data());
    windowSeconds += r.seconds;
    ++windowSteps;
    if (windowLoad.size() != r.stats.expertTokens.size())
      windowLoad.assign(r.stats.expertTokens.size(), {});
    for (size_t p = 0; p < r.stats.expertTokens.size(); ++p) {
      auto &sum = windowLoad[p];
      sum.resize(r.stats.expertTokens[p].size(), 0);
      for (size_t e = 0; e < sum.size(); ++e)
        sum[e] += r.stats.expertTokens[p][e];
    }

    bool last = step == train.steps;
    bool outOfTime =
        train.maxMinutes > 0 && secondsSince(start) > train.maxMinutes * 60;
    if (step % std::max<int64_t>(train.logEvery, 1) == 0 || last ||
        outOfTime) {
      double loss = windowLoss / windowSteps;
      // Perplexity of the global batches: every rank's cross-entropy.
      sumOverRanks(&ranks, windowCe, windowCeTokens);
      // The sampled softmax has no exact perplexity: reported as null.
      double ppl = windowCeTokens ? std::exp(windowCe / windowCeTokens)
                                  : std::nan("");
      double tokensPerSecond = windowTokens / std::max(windowSeconds, 1e-9);
      double tflops = stepInfo.flops * windowSteps * ranks.size() /
                      std::max(windowSeconds, 1e-9) / 1e12;
      double perStep = secondsSince(start) / (step - firstStep);
      double eta = perStep * (train.steps - step);
      if (train.maxMinutes > 0)
        eta = std::min(eta, train.maxMinutes * 60 - secondsSince(start));
      progress.report(step, loss, ppl, r.lr, tokensPerSecond, tflops, eta);
      metrics.write({{"step", step},
                     {"epoch", batcher.position().epoch},
                     {"loss", loss},
                     {"perplexity", ppl},
                     {"lr", r.lr},
                     {"tokens_per_s", tokensPerSecond},
                     {"tflops", tflops},
                     {"expert_load", windowLoad},
                     {"elapsed_s", secondsSince(start)}});
      if (common.verbose && !windowLoad.empty()) {
        progress.finishLine();
        std::printf("expert load: %s\n", loadSummary(windowLoad).c_str());
      }
      windowLoss = windowCe = windowSeconds = 0;
      windowSteps = windowCeTokens = windowTokens = 0;
      windowLoad.clear();
    }
    if (!train.checkpointDir.empty() && train.checkpointEvery > 0 &&
        step % train.checkpointEvery == 0) {
      saveAt(step);
      lastSaved = step;
    }
    if (train.evalEvery > 0 && step % train.evalEvery == 0 && !last)
      evalAt(step);
    if (outOfTime && !last) {
      progress.finishLine();
      if (!quiet)
        std::printf("stopping at step %lld: --max-minutes %.1f reached\n",
                    static_cast<long long>(step), train.maxMinutes);
      stoppedEarly = true;
      break;
    }
  }
  progress.finishLine();
  if (!train.checkpointDir.empty() && lastSaved != step && step > firstStep)
    saveAt(step);
  Evaluation e = evalAt(step);
  if (!quiet) {
    std::printf("trained %lld steps in %s%s\n",
                static_cast<long long>(step - firstStep),
                formatDuration(secondsSince(start)).c_str(),
                stoppedEarly ? " (time limit)" : "");
    std::printf("test perplexity: %.2f (unigram baseline: %.2f)\n",
                e.perplexity, unigram);
  }
  metrics.write({{"step", step},
                 {"final", true},
                 {"test_perplexity", e.perplexity},
                 {"unigram_perplexity", unigram}});
  return 0;
}

//===----------------------------------------------------------------------===//
// eval
//===----------------------------------------------------------------------===//

int runEval(const CommonOptions &common, const DataOptions &data,
            const EvalOptions &eval) {
  Loaded loaded = loadPackage(common);
  LmShape shape = languageModelShape(*loaded.package);
  // Rank 0 speaks for all, as in train.
  rt::data::Corpus corpus =
      loadData(data, shape, common.quiet || loaded.rank() != 0);
  if (eval.checkpoint.empty())
    throw std::runtime_error("--checkpoint is required: the directory of a "
                             "saved step (see moe-run train "
                             "--checkpoint-dir)");
  loaded.session->initialize(common.seed);
  rt::Checkpoint checkpoint = rt::loadCheckpoint(eval.checkpoint);
  restoreCheckpoint(*loaded.session, *loaded.package, corpus, checkpoint,
                    eval.checkpoint, nullptr);
  int64_t step = checkpoint.step;
  if (eval.split != "test" && eval.split != "train")
    throw std::runtime_error("--split must be test or train");
  const auto &sentences = eval.split == "test" ? corpus.test : corpus.train;
  Evaluation e =
      evaluate(*loaded.session, *loaded.package, sentences, shape,
               eval.batches, loaded.collectives.get());
  if (loaded.rank() != 0)
    return 0;
  std::printf("%s perplexity at step %lld: %.2f over %lld words (unigram "
              "baseline %.2f)\n",
              eval.split.c_str(), static_cast<long long>(step), e.perplexity,
              static_cast<long long>(e.tokens),
              rt::data::unigramPerplexity(corpus));
  return 0;
}

//===----------------------------------------------------------------------===//
// generate
//===----------------------------------------------------------------------===//

int runGenerate(const CommonOptions &common, const DataOptions &data,
                const GenerateOptions &options) {
  Loaded loaded = loadPackage(common);
  Package &package = *loaded.package;
  if (loaded.ranks() > 1)
    throw std::runtime_error("generate runs on one rank (not under mpirun)");
  LmShape shape = languageModelShape(package);
  rt::data::Corpus corpus = loadData(data, shape, /*quiet=*/true);
  if (options.checkpoint.empty())
    throw std::runtime_error("--checkpoint is required");
  if (!(options.temperature > 0))
    throw std::runtime_error("--temperature must be positive");
  loaded.session->initialize(common.seed);
  restoreCheckpoint(*loaded.session, package, corpus,
                    rt::loadCheckpoint(options.checkpoint), options.checkpoint,
                    nullptr);
  const rt::data::Vocabulary &vocab = corpus.vocab;
  std::vector<int32_t> history{rt::data::kEosId};
  for (const std::string &word : rt::data::tokenizeWords(options.prompt))
    history.push_back(vocab.id(word));
  std::string role = package.function("eval") ? "eval" : "model";
  std::vector<int32_t> tokens(shape.batch * shape.time, rt::data::kEosId),
      targets(shape.batch * shape.time, -1);
  std::string text = options.prompt;
  for (int64_t w = 0; w < options.words; ++w) {
    // The last `time` tokens of the history in row 0: the model is causal,
    // so the logits at the last position predict the next word.
    int64_t length = std::min<int64_t>(history.size(), shape.time);
    std::copy(history.end() - length, history.end(), tokens.begin());
    // The logits of row 0 at position length - 1.
    loaded.session->captureLogits(role, length - 1);
    loaded.session->call(role,
                         {{"tokens", tokens.data()}, {"targets", targets.data()}},
                         1, false, false);
    const std::vector<float> &logits = loaded.session->capturedLogits(role);
    if (logits.empty())
      throw std::runtime_error("the model's output layer captured no logits "
                               "(generation needs a full softmax)");
    std::vector<double> probs(logits.size());
    double maxLogit = -INFINITY;
    for (size_t i = 0; i < logits.size(); ++i)
      if (static_cast<int32_t>(i) != rt::data::kUnkId &&
          static_cast<int64_t>(i) < vocab.size())
        maxLogit = std::max<double>(maxLogit, logits[i]);
    double total = 0;
    for (size_t i = 0; i < logits.size(); ++i) {
      bool allowed = static_cast<int32_t>(i) != rt::data::kUnkId &&
                     static_cast<int64_t>(i) < vocab.size();
      probs[i] = allowed ? std::exp((logits[i] - maxLogit) /
                                    options.temperature)
                         : 0.0;
      total += probs[i];
    }
    if (!(total > 0) || !std::isfinite(total))
      throw std::runtime_error("the model's next-word distribution is not "
                               "finite");
    double u = rt::philoxUniformAt(common.seed, 0x67656e, w) * total;
    size_t next = probs.size();
    for (size_t i = 0; i < probs.size(); ++i) {
      if (probs[i] <= 0)
        continue;
      next = i; // the last allowed word catches rounding at the end
      u -= probs[i];
      if (u <= 0)
        break;
    }
    history.push_back(static_cast<int32_t>(next));
    if (static_cast<int32_t>(next) == rt::data::kEosId)
      text += "\n";
    else
      text += (text.empty() || text.back() == '\n' ? "" : " ") +
              vocab.word(static_cast<int32_t>(next));
  }
  std::printf("%s\n", text.c_str());
  return 0;
}

//===----------------------------------------------------------------------===//
// gradcheck
//===----------------------------------------------------------------------===//

int runGradcheck(const CommonOptions &common,
                 const GradcheckOptions &options) {
  Loaded loaded = loadPackage(common);
  Package &package = *loaded.package;
  Session &session = *loaded.session;
  if (package.hasAdam())
    throw std::runtime_error(
        "gradcheck needs the gradients: compile the model with "
        "--moe-train-pipeline=\"optimizer=none\"");
  if (!package.function("model"))
    throw std::runtime_error("package has no model function to perturb");
  const FunctionInfo &step = *package.function("train_step");
  // A perturbed element of a shard would be perturbed on every rank at once
  // (each rank holds another slice), which no finite difference measures;
  // on one rank a shard is the whole tensor, so elements() below is what
  // each buffer holds.
  if (session.ranks() > 1)
    for (const std::string &name : session.parameterNames())
      if (session.bufferInfo(name).sharded)
        throw std::runtime_error("gradcheck of the expert-sharded " + name +
                                 " runs on one rank (not under mpirun)");
  session.initialize(common.seed);

  // Random ids in each input's range: the gradient does not need text.
  std::map<std::string, std::vector<int32_t>> data;
  std::map<std::string, const int32_t *> inputs;
  for (const ArgumentInfo &arg : step.arguments) {
    if (arg.role != ArgumentRole::Input)
      continue;
    if (arg.idBound < 1)
      throw std::runtime_error("input '" + arg.name +
                               "' has no id range to draw from");
    auto &values = data[arg.name];
    values.resize(arg.elements());
    for (int64_t i = 0; i < arg.elements(); ++i)
      values[i] = static_cast<int32_t>(
          rt::philoxUniformAt(common.seed, 0x6964, i) * arg.idBound) %
          static_cast<int32_t>(arg.idBound);
    inputs[arg.name] = values.data();
  }

  CallResult base = session.call("train_step", inputs, 1, true, false);
  CallResult replay = session.call("model", inputs, 1, true, false);
  std::printf("gradcheck: loss %.6f (train step), %.6f (model function)\n",
              base.loss, replay.loss);
  if (std::fabs(base.loss - replay.loss) > 1e-5f * std::fabs(base.loss))
    throw std::runtime_error("the model function and the training step "
                             "disagree on the loss: different noise or "
                             "ops");

  rt::Backend &backend = session.backend();
  std::vector<std::string> names = session.parameterNames();
  std::map<std::string, std::vector<float>> grads;
  for (const std::string &name : names) {
    int index = step.resultIndex(ResultKind::Grad, name);
    if (index < 0) {
      grads[name].assign(session.bufferInfo(name).elements(), 0.0f);
      continue;
    }
    std::vector<float> g(session.bufferInfo(name).elements());
    backend.copyToHost(g.data(), session.resultPointer("train_step", index),
                       g.size() * sizeof(float));
    grads[name] = std::move(g);
  }

  names.erase(std::remove_if(names.begin(), names.end(),
                             [&](const std::string &name) {
                               return session.bufferInfo(name).elements() == 0;
                             }),
              names.end());
  if (names.empty())
    throw std::runtime_error("the package has no parameters to check");
  int64_t failures = 0;
  double worst = 0;
  for (int64_t s = 0; s < options.samples; ++s) {
    const std::string &name = names[s % names.size()];
    int64_t count = session.bufferInfo(name).elements();
    int64_t index =
        static_cast<int64_t>(
            rt::philoxUniformAt(common.seed, 0x6663 + s, 0) * count) %
        count;
    float *param = static_cast<float *>(session.buffer(name)) + index;
    float value;
    backend.copyToHost(&value, param, sizeof(value));
    auto lossAt = [&](float v) {
      backend.copyFromHost(param, &v, sizeof(v));
      return static_cast<double>(
          session.call("model", inputs, 1, true, false).loss);
    };
    float h = static_cast<float>(options.epsilon);
    double plus = lossAt(value + h), minus = lossAt(value - h);
    backend.copyFromHost(param, &value, sizeof(value));
    double numeric = (plus - minus) / (2.0 * h);
    double analytic = grads[name][index];
    double error = std::fabs(numeric - analytic) /
                   std::max({std::fabs(numeric), std::fabs(analytic), 1e-2});
    worst = std::max(worst, error);
    bool ok = error <= options.tolerance;
    failures += !ok;
    if (common.verbose || !ok)
      std::printf("  %-32s [%lld] analytic %+.6e numeric %+.6e rel %.3g%s\n",
                  name.c_str(), static_cast<long long>(index), analytic,
                  numeric, error, ok ? "" : "  MISMATCH");
  }
  double fraction = static_cast<double>(failures) / options.samples;
  std::printf("gradcheck: %lld of %lld samples within %.3g (worst relative "
              "error %.3g)\n",
              static_cast<long long>(options.samples - failures),
              static_cast<long long>(options.samples), options.tolerance,
              worst);
  return fraction <= options.maxFailFraction ? 0 : 1;
}

//===----------------------------------------------------------------------===//
// info
//===----------------------------------------------------------------------===//

int runInfo(const CommonOptions &common) {
  Package package = Package::open(common.package);
  std::printf("package %s: model %s, %s source, optimizer %s\n",
              package.directory().c_str(), package.model().c_str(),
              package.target().c_str(), package.hasAdam() ? "adam" : "none");
  for (const char *role : {"train_step", "eval", "model"}) {
    const FunctionInfo *f = package.function(role);
    if (!f)
      continue;
    std::map<ArgumentRole, int64_t> count;
    for (const ArgumentInfo &arg : f->arguments)
      ++count[arg.role];
    std::printf("  %-10s %-28s arena %10.2f MiB  %10.3f GFLOP  %lld inputs, "
                "%lld params, %lld state, %zu dispatch plans\n",
                role, f->symbol.c_str(), f->arenaBytes / 1048576.0,
                f->flops / 1e9,
                static_cast<long long>(count[ArgumentRole::Input]),
                static_cast<long long>(count[ArgumentRole::Param]),
                static_cast<long long>(count[ArgumentRole::State]),
                f->planExperts.size());
  }
  return 0;
}

} // namespace moe::run
