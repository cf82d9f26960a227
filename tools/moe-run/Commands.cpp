//===- Commands.cpp - the moe-run subcommands ----------------------------===//
//
// The subcommands: each loads the package on its ranks and hands the work
// to the pieces that do it (LanguageModelData or TranslationData, Trainer,
// RunState, evaluate, translate, Inspection); generate, inspect, gradcheck
// and info are short enough to live here.
//
//===----------------------------------------------------------------------===//

#include "tools/moe-run/Commands.h"

#include "tools/moe-run/DecodeStepCheck.h"

#include "tools/moe-run/Evaluation.h"
#include "tools/moe-run/GradientCheck.h"
#include "tools/moe-run/Inspection.h"
#include "tools/moe-run/LanguageModelData.h"
#include "tools/moe-run/MemoryEstimate.h"
#include "tools/moe-run/Package.h"
#include "tools/moe-run/RunState.h"
#include "tools/moe-run/Session.h"
#include "tools/moe-run/StopTogether.h"
#include "tools/moe-run/Trainer.h"
#include "tools/moe-run/TranslationData.h"
#include "tools/moe-run/Translator.h"

#include "runtime/Philox.h"
#include "runtime/checkpoint/Checkpoint.h"
#include "runtime/collectives/Collectives.h"
#ifdef MOE_COLLECTIVES_HAS_NCCL
#include "runtime/collectives/NcclCollectives.h"
#endif
#include "runtime/data/Bleu.h"
#include "runtime/data/Tokenizer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <vector>

namespace moe::run {

namespace {

/// A loaded package with its session and the ranks it runs on (declared
/// first: destroyed after the session that uses them).
struct Loaded {
  std::unique_ptr<rt::Collectives> collectives;
  std::unique_ptr<Package> package;
  std::unique_ptr<Session> session;
  /// This rank's estimate and the least budget of the ranks.
  MemoryEstimate memory;
  uint64_t budget = 0;
  std::string budgetWhere;
  int rank() const { return collectives->rank(); }
  int ranks() const { return collectives->size(); }
};

/// `device` is the CUDA device this rank uses.
std::unique_ptr<rt::Backend> makeBackend(const CommonOptions &options,
                                         const Package &package, int device) {
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
    return rt::createCudaBackend(device);
  throw std::runtime_error("unknown backend '" + backend +
                           "' (expected auto, cpu or cuda)");
}

/// Bytes a rank may use: what `backend` has available, capped by
/// --memory-limit; `where` says which, for messages.
uint64_t memoryBudget(const CommonOptions &options, const rt::Backend &backend,
                      std::string &where) {
  uint64_t available = backend.availableMemory();
  if (options.memoryLimit && options.memoryLimit < available) {
    where = "--memory-limit is";
    return options.memoryLimit;
  }
  where = backend.name() == "cpu"
              ? "the host has available"
              : "the " + backend.name() + " device has free";
  return available;
}

/// Refuses, before anything big is allocated, a package whose per-rank
/// estimate for `command` exceeds the smallest budget of the ranks (every
/// rank decides alike, so none is left waiting in a collective).
void checkMemory(const CommonOptions &options, Loaded &loaded,
                 rt::Backend &backend, const std::string &command) {
  std::string where;
  uint64_t budget = memoryBudget(options, backend, where);
  if (loaded.ranks() > 1) {
    std::vector<uint64_t> budgets(loaded.ranks());
    loaded.collectives->allGatherHost(&budget, sizeof(budget), budgets.data());
    uint64_t least = *std::min_element(budgets.begin(), budgets.end());
    if (least < budget)
      where = "a rank has";
    budget = least;
  }
  std::vector<std::string> functions = functionsOf(*loaded.package, command);
  if (std::optional<std::string> error =
          checkFits(*loaded.package, loaded.ranks(), functions, budget, where))
    throw std::runtime_error("package " + loaded.package->directory() + " " +
                             *error + " (see moe-run info)");
  loaded.memory = estimateMemory(*loaded.package, loaded.ranks(), functions);
  loaded.budget = budget;
  loaded.budgetWhere = where;
}

/// Loads the package on the ranks of this process for `command` ("train",
/// "eval", "generate", "gradcheck"), whose memory it checks first.
Loaded loadPackage(const CommonOptions &options, const std::string &command) {
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
  // Each rank of a node its own GPU: --device, else the node-local rank
  // modulo the devices. NCCL picks it (it can ask MPI for the local rank
  // when no launcher says), and the backend uses the same one.
  rt::CollectivesOptions collectiveOptions;
  collectiveOptions.device = options.device;
  loaded.collectives = rt::createCollectives(kind, collectiveOptions);
  int device = 0;
  if (cuda)
    device = rt::selectDevice(options.device, rt::launcherLocalRank(),
                              rt::cudaDeviceCount());
#ifdef MOE_COLLECTIVES_HAS_NCCL
  if (auto *nccl =
          dynamic_cast<rt::NcclCollectives *>(loaded.collectives.get()))
    device = nccl->device();
#endif
  if (cuda && options.verbose)
    std::printf("rank %d of %d: CUDA device %d of %d\n", loaded.rank(),
                loaded.ranks(), device, rt::cudaDeviceCount());
  Package &package = *loaded.package;
  rt::Collectives &ranks = *loaded.collectives;
  // The memory check gathers over the ranks: a rank without its backend
  // must not leave the others waiting there.
  std::unique_ptr<rt::Backend> backend;
  stopTogether(ranks, [&] { backend = makeBackend(options, package, device); });
  checkMemory(options, loaded, *backend, command);
  // Rank 0 compiles the package; the others then find it in the cache. A
  // failure stops every rank at once.
  stopTogether(ranks, [&] {
    if (ranks.rank() == 0)
      package.load(options.verbose, !options.quiet);
  });
  stopTogether(ranks, [&] {
    if (ranks.rank() != 0)
      package.load(false);
  });
  // The ranks size the buffers of expert-sharded tensors.
  loaded.session = std::make_unique<Session>(
      *loaded.package, std::move(backend), loaded.collectives.get());
  return loaded;
}

/// Initializes the session and restores the checkpoint at `dir` into it
/// (checked against the model and the data); returns its step.
int64_t restoreForInference(Loaded &loaded, const CommonOptions &common,
                            const Dataset &data, const std::string &dir) {
  loaded.session->initialize(common.seed);
  rt::Checkpoint checkpoint;
  stopTogether(*loaded.collectives,
               [&] { checkpoint = loaded.session->loadCheckpoint(dir); });
  restoreCheckpoint(*loaded.session, *loaded.package, data, checkpoint, dir,
                    /*resuming=*/false);
  return checkpoint.step;
}

/// The package's data: a translation corpus folder for a model with a
/// `source` input, else a language model's text. Throws when
/// `batchTokens` (0: any) is not the compiled batch's (decoder) tokens.
std::unique_ptr<Dataset> openData(const Package &package,
                                  const DataOptions &data, bool quiet,
                                  int64_t batchTokens = 0) {
  if (isTranslationModel(package)) {
    NmtShape shape = translationModelShape(package);
    checkBatchTokens({shape.batch, shape.targetLength, shape.vocab},
                     batchTokens);
    return std::make_unique<TranslationData>(shape, data, quiet);
  }
  LmShape shape = languageModelShape(package);
  checkBatchTokens(shape, batchTokens);
  return std::make_unique<LanguageModelData>(package, shape, data, quiet);
}

/// Sums BLEU statistics over the ranks, in rank order.
void sumBleuOverRanks(rt::Collectives &collectives,
                      rt::data::BleuStats &stats) {
  constexpr int kOrders = rt::data::kBleuMaxOrder;
  std::vector<int64_t> fields = {stats.hypothesisLength, stats.referenceLength};
  fields.insert(fields.end(), stats.matches.begin(), stats.matches.end());
  fields.insert(fields.end(), stats.totals.begin(), stats.totals.end());
  fields = sumOverRanks(collectives, fields);
  stats.hypothesisLength = fields[0];
  stats.referenceLength = fields[1];
  std::copy_n(fields.begin() + 2, kOrders, stats.matches.begin());
  std::copy_n(fields.begin() + 2 + kOrders, kOrders, stats.totals.begin());
}

/// Corpus BLEU of the translations of `split`'s first `lines` source lines
/// (0: all) against their reference lines. The ranks of a replicated
/// package share the sentences and add their statistics. Empty, with
/// `note` saying why, for an expert-sharded package on several ranks (all
/// of whose calls would have to be collective).
std::optional<rt::data::BleuScore>
splitBleu(Loaded &loaded, const TranslationData &data, const std::string &split,
          int64_t lines, const BeamOptions &beam, DecodePath path,
          std::string &note) {
  int rank = loaded.rank(), ranks = loaded.ranks();
  if (ranks > 1 && loaded.package->hasShardedTensors()) {
    note = "BLEU: skipped on " + std::to_string(ranks) +
           " ranks of an expert-parallel package (run moe-run eval on one "
           "rank)";
    return std::nullopt;
  }
  const rt::data::ParallelText &text = data.text(split);
  const rt::data::ParallelIds &ids = data.ids(split);
  size_t count = text.source.size();
  if (lines > 0)
    count = std::min<size_t>(count, lines);
  // Rank r decodes the sentence chunks r, r + R, ... (a chunk: what one
  // call decodes).
  size_t chunk = static_cast<size_t>(data.shape().batch / beam.width);
  std::vector<size_t> mine;
  std::vector<std::vector<int32_t>> sources;
  for (size_t i = 0; i < count; ++i)
    if (static_cast<int>((i / chunk) % ranks) == rank) {
      mine.push_back(i);
      sources.push_back(ids.source[i]);
    }
  std::vector<std::vector<int32_t>> pieces =
      translate(*loaded.session, *loaded.package, data.shape(),
                data.wordpieces(), sources, beam, path);
  rt::data::BleuStats stats;
  for (size_t k = 0; k < mine.size(); ++k)
    stats += rt::data::segmentBleuStats(data.wordpieces().decode(pieces[k]),
                                        text.target[mine[k]]);
  if (ranks > 1)
    sumBleuOverRanks(*loaded.collectives, stats);
  return rt::data::computeBleu(stats);
}

std::string describeBeam(const BeamOptions &beam) {
  if (beam.width == 1)
    return "greedy";
  char text[80];
  std::snprintf(text, sizeof(text), "beam %lld, length penalty %g",
                static_cast<long long>(beam.width), beam.lengthPenalty);
  return text;
}

/// How the next token is scored, for the progress lines.
const char *describeDecoding(bool incremental) {
  return incremental ? "incremental decoding" : "window decoding";
}

} // namespace

//===----------------------------------------------------------------------===//
// train
//===----------------------------------------------------------------------===//

int runTrain(const CommonOptions &common, const DataOptions &data,
             const TrainOptions &train) {
  Loaded loaded = loadPackage(common, "train");
  const Package &package = *loaded.package;
  // Rank 0 speaks, writes metrics and checkpoints for all.
  bool quiet = common.quiet || loaded.rank() != 0;
  if (!package.hasAdam())
    throw std::runtime_error(
        "package " + package.directory() +
        " returns gradients (optimizer=none): compile it with Adam to train");
  if (!quiet) {
    const MemoryEstimate &m = loaded.memory;
    std::printf("memory per rank: %s of parameters, %s of optimizer state, "
                "%s of arenas, %s of inputs, %s of pools: %s (%s %s)\n",
                formatBytes(m.parameters).c_str(),
                formatBytes(m.optimizerState).c_str(),
                formatBytes(m.arenas).c_str(), formatBytes(m.inputs).c_str(),
                formatBytes(m.pools).c_str(), formatBytes(m.total()).c_str(),
                loaded.budgetWhere.c_str(), formatBytes(loaded.budget).c_str());
  }
  if (train.steps < 1)
    throw std::runtime_error("--steps must be at least 1");
  std::unique_ptr<Dataset> dataset =
      openData(package, data, quiet, train.batchTokens);
  RunState state(package, *loaded.session, *dataset, *loaded.collectives, train,
                 quiet);
  Trainer trainer(package, *loaded.session, *loaded.collectives, *dataset,
                  state, train, common.verbose, quiet);
  trainer.run(common.seed);
  return 0;
}

//===----------------------------------------------------------------------===//
// eval
//===----------------------------------------------------------------------===//

int runEval(const CommonOptions &common, const DataOptions &data,
            const EvalOptions &eval) {
  Loaded loaded = loadPackage(common, "eval");
  // Rank 0 speaks for all, as in train.
  std::unique_ptr<Dataset> dataset =
      openData(*loaded.package, data, common.quiet || loaded.rank() != 0);
  auto *translation = dynamic_cast<const TranslationData *>(dataset.get());
  if (eval.checkpoint.empty())
    throw std::runtime_error("--checkpoint is required: the directory of a "
                             "saved step (see moe-run train "
                             "--checkpoint-dir)");
  if (eval.split != "test" && eval.split != "train" &&
      !(translation && eval.split == "dev"))
    throw std::runtime_error(translation ? "--split must be test, dev or train"
                                         : "--split must be test or train");
  std::optional<BeamOptions> beam;
  if (translation && eval.search.beam > 0)
    beam = translationBeam(
        translation->shape(), translation->wordpieces(), eval.search.beam,
        eval.search.lengthPenalty, eval.search.maxLength,
        decodesIncrementally(*loaded.package, eval.search.decode));
  int64_t step = restoreForInference(loaded, common, *dataset, eval.checkpoint);
  Evaluation e = evaluate(*loaded.session, *loaded.package,
                          *dataset->evaluationBatches(eval.split), eval.batches,
                          loaded.collectives.get());
  if (loaded.rank() == 0)
    std::printf("%s perplexity at step %lld: %.2f over %lld %s (unigram "
                "baseline %.2f)\n",
                eval.split.c_str(), static_cast<long long>(step), e.perplexity,
                static_cast<long long>(e.tokens),
                translation ? "target pieces" : "words",
                dataset->baselinePerplexity());
  if (!beam)
    return 0;
  // BLEU over the sentences the perplexity scored (--batches limits both).
  auto start = Clock::now();
  std::string note;
  int64_t lines = eval.batches * translation->shape().batch;
  std::optional<rt::data::BleuScore> bleu = splitBleu(
      loaded, *translation, eval.split, lines, *beam, eval.search.decode, note);
  if (loaded.rank() != 0)
    return 0;
  if (!bleu) {
    std::printf("%s\n", note.c_str());
    return 0;
  }
  size_t sentences = translation->text(eval.split).source.size();
  if (lines > 0)
    sentences = std::min<size_t>(sentences, lines);
  std::printf("%s BLEU at step %lld (%s, %s, %zu sentences, %.2fs): %s\n",
              eval.split.c_str(), static_cast<long long>(step),
              describeBeam(*beam).c_str(),
              describeDecoding(
                  decodesIncrementally(*loaded.package, eval.search.decode)),
              sentences, secondsSince(start), bleu->format().c_str());
  return 0;
}

//===----------------------------------------------------------------------===//
// generate
//===----------------------------------------------------------------------===//

int runGenerate(const CommonOptions &common, const DataOptions &data,
                const GenerateOptions &options) {
  Loaded loaded = loadPackage(common, "generate");
  Package &package = *loaded.package;
  if (loaded.ranks() > 1)
    throw std::runtime_error("generate runs on one rank (not under mpirun)");
  if (isTranslationModel(package))
    throw std::runtime_error("model " + package.model() +
                             " translates: use moe-run translate");
  LmShape shape = languageModelShape(package);
  LanguageModelData dataset(package, shape, data, /*quiet=*/true);
  if (options.checkpoint.empty())
    throw std::runtime_error("--checkpoint is required");
  if (!(options.temperature > 0))
    throw std::runtime_error("--temperature must be positive");
  restoreForInference(loaded, common, dataset, options.checkpoint);
  const rt::data::Vocabulary &vocab = dataset.corpus().vocab;
  std::vector<int32_t> history{rt::data::kEosId};
  for (const std::string &word : rt::data::tokenizeWords(options.prompt))
    history.push_back(vocab.id(word));
  std::string role = package.evaluationFunction();
  std::vector<int32_t> tokens(shape.batch * shape.time, rt::data::kEosId),
      targets(shape.batch * shape.time, -1);
  std::string text = options.prompt;
  bool incremental = decodesIncrementally(package, options.decode);
  auto start = Clock::now();
  // Incremental: row 0 of decode_step feeds the history one token at a
  // time, its LSTM states carrying all of it; the window keeps only the
  // last `time` tokens, so the two agree while the history fits.
  std::vector<int32_t> stepTokens(shape.batch, rt::data::kEosId);
  size_t fed = 0;
  std::vector<float> logits;
  if (incremental)
    loaded.session->resetDecodingState();
  for (int64_t w = 0; w < options.words; ++w) {
    if (incremental) {
      for (; fed < history.size(); ++fed) {
        stepTokens[0] = history[fed];
        logits = loaded.session->callForLogits("decode_step",
                                               {{"tokens", stepTokens.data()}});
      }
      logits.resize(logits.size() / shape.batch); // row 0
    } else {
      // The last `time` tokens of the history in row 0: the model is
      // causal, so the logits at the last position predict the next word.
      int64_t length = std::min<int64_t>(history.size(), shape.time);
      std::copy(history.end() - length, history.end(), tokens.begin());
      // The logits of row 0 at position length - 1.
      loaded.session->captureLogits(role, {length - 1});
      loaded.session->call(
          role, {{"tokens", tokens.data()}, {"targets", targets.data()}}, 1,
          false, false);
      logits = loaded.session->capturedLogits(role);
    }
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
  if (!common.quiet)
    std::fprintf(stderr, "generate: %lld words, %s (%.2fs)\n",
                 static_cast<long long>(options.words),
                 describeDecoding(incremental), secondsSince(start));
  return 0;
}

//===----------------------------------------------------------------------===//
// inspect
//===----------------------------------------------------------------------===//

namespace {

/// Prints, for each of `ids`, its share of the assignments, its mean gate
/// and its top contexts. `name` labels an id ("expert 3", "group 1 (experts
/// 4-7)").
void printTopContexts(const RouteLog &log, const std::vector<int64_t> &ids,
                      size_t contexts,
                      const std::function<std::string(int64_t)> &name,
                      const std::function<std::string(int64_t)> &contextOf) {
  for (int64_t id : ids) {
    const std::vector<RoutedWord> &words = log.of(id);
    double gates = 0;
    for (const RoutedWord &w : words)
      gates += w.gate;
    std::printf("\n%s: %zu of %lld assignments (%.1f%%), mean gate %.3f\n",
                name(id).c_str(), words.size(),
                static_cast<long long>(log.total()),
                log.total() ? 100.0 * words.size() / log.total() : 0.0,
                words.empty() ? 0.0 : gates / words.size());
    for (const RankedContext &c : topContexts(words, contexts, contextOf)) {
      std::printf("  %.4f  %s", c.gate, c.text.c_str());
      if (c.count > 1)
        std::printf("  (x%lld)", static_cast<long long>(c.count));
      std::printf("\n");
    }
  }
}

} // namespace

int runInspect(const CommonOptions &common, const DataOptions &data,
               const InspectOptions &options) {
  Loaded loaded = loadPackage(common, "eval");
  Package &package = *loaded.package;
  if (loaded.ranks() > 1)
    throw std::runtime_error("inspect runs on one rank (not under mpirun)");
  std::string role = package.evaluationFunction();
  const FunctionInfo &function = *package.function(role);
  std::vector<MoELayer> layers = moeLayers(function);
  if (layers.empty())
    throw std::runtime_error("package " + package.directory() +
                             " has no MoE layer: its " + role +
                             " function routes nothing to experts");
  if (options.layer < 0 || options.layer >= static_cast<int64_t>(layers.size()))
    throw std::runtime_error(
        "--layer " + std::to_string(options.layer) +
        " is out of range: the package has " + std::to_string(layers.size()) +
        " MoE layer" + (layers.size() == 1 ? "" : "s") + " (from 0)");
  const MoELayer &layer = layers[options.layer];
  std::string layerName = "layer " + std::to_string(options.layer);
  if (options.groups && !layer.hierarchical())
    throw std::runtime_error("--groups: " + layerName +
                             " is not hierarchical (it has no primary "
                             "groups)");
  int64_t perGroup = layer.hierarchical() ? layer.experts / layer.groups : 0;
  // The ids first: a typo should not cost a pass over the data.
  std::vector<int64_t> chosen;
  if (!options.experts.empty())
    chosen = options.groups
                 ? parseIds(options.experts, layer.groups, "group",
                            layerName + " has " + std::to_string(layer.groups) +
                                " primary groups")
                 : parseIds(options.experts, layer.experts, "expert",
                            layerName + " has " +
                                std::to_string(layer.experts) + " experts");
  if (options.contexts < 1)
    throw std::runtime_error("--contexts must be at least 1");
  if (options.split != "test" && options.split != "train")
    throw std::runtime_error("--split must be test or train");
  if (options.checkpoint.empty())
    throw std::runtime_error("--checkpoint is required: the directory of a "
                             "saved step (see moe-run train "
                             "--checkpoint-dir)");

  LmShape shape = languageModelShape(package);
  LanguageModelData dataset(package, shape, data, common.quiet);
  int64_t step =
      restoreForInference(loaded, common, dataset, options.checkpoint);
  std::unique_ptr<BatchSource> batches =
      dataset.evaluationBatches(options.split);

  // The words of the inspected batches, in stream order: a batch's rows
  // are consecutive pieces of the stream (rt::data::LmBatcher).
  std::vector<int32_t> words;
  RouteLog experts(layer.experts), groups(layer.groups);
  int64_t perBatch = shape.batch * shape.time, batchCount = 0, real = 0;
  Session &session = *loaded.session;
  session.captureRoutes(role, true);
  while ((!options.batches || batchCount < options.batches) &&
         batches->next()) {
    const InputArrays &in = batches->inputs();
    const int32_t *tokens = in.at("tokens"), *targets = in.at("targets");
    session.call(role, in, /*step=*/1, /*training=*/false,
                 /*collectStats=*/false);
    const std::vector<rt::step::RouteCapture> &routes =
        session.capturedRoutes(role);
    if (routes.size() != function.planExperts.size())
      throw std::runtime_error(
          "the " + role + " function captured " +
          std::to_string(routes.size()) + " dispatch plans; its manifest "
          "lists " + std::to_string(function.planExperts.size()));
    if (routes[layer.plan].tokens != perBatch)
      throw std::runtime_error(layerName + " routes " +
                               std::to_string(routes[layer.plan].tokens) +
                               " tokens a call, not the batch's " +
                               std::to_string(perBatch));
    // Padding positions of the last batch route too; they are no words.
    std::vector<bool> keep(perBatch);
    for (int64_t t = 0; t < perBatch; ++t) {
      keep[t] = targets[t] >= 0;
      real += keep[t];
    }
    int64_t first = static_cast<int64_t>(words.size());
    words.insert(words.end(), tokens, tokens + perBatch);
    experts.add(routes[layer.plan], first, keep);
    if (layer.hierarchical())
      groups.add(routes[layer.groupPlan], first, keep);
    ++batchCount;
  }
  session.captureRoutes(role, false);

  const rt::data::Vocabulary &vocab = dataset.corpus().vocab;
  // The routed word after up to `window` words before it in its row: what
  // the model's recurrent layers saw of it.
  auto contextOf = [&](int64_t w) {
    int64_t rowStart = w - w % shape.time;
    int64_t from = std::max(rowStart, w - std::max<int64_t>(options.window, 0));
    std::string text;
    for (int64_t i = from; i <= w; ++i)
      text += (i == from ? "" : " ") + vocab.word(words[i]);
    return text;
  };
  std::printf("%s of %zu: %lld experts", layerName.c_str(), layers.size(),
              static_cast<long long>(layer.experts));
  if (layer.hierarchical())
    std::printf(" in %lld primary groups of %lld",
                static_cast<long long>(layer.groups),
                static_cast<long long>(perGroup));
  std::printf("; %lld words of the %s split (%lld batches), checkpoint step "
              "%lld\n",
              static_cast<long long>(real), options.split.c_str(),
              static_cast<long long>(batchCount), static_cast<long long>(step));
  std::printf("top %lld contexts by gate value (the routed word last, after "
              "up to %lld words of its row)\n",
              static_cast<long long>(options.contexts),
              static_cast<long long>(options.window));
  size_t top = static_cast<size_t>(options.topExperts);
  if (!options.groups)
    printTopContexts(
        experts, chosen.empty() ? experts.mostUsed(top) : chosen,
        options.contexts,
        [&](int64_t e) {
          std::string name = "expert " + std::to_string(e);
          if (layer.hierarchical())
            name += " (group " + std::to_string(e / perGroup) + ")";
          return name;
        },
        contextOf);
  // Table 7's view: the primary groups and the words sent to each.
  if (layer.hierarchical())
    printTopContexts(
        groups,
        options.groups && !chosen.empty() ? chosen : groups.mostUsed(top),
        options.contexts,
        [&](int64_t g) {
          return "primary group " + std::to_string(g) + " (experts " +
                 std::to_string(g * perGroup) + "-" +
                 std::to_string((g + 1) * perGroup - 1) + ")";
        },
        contextOf);
  return 0;
}

//===----------------------------------------------------------------------===//
// translate
//===----------------------------------------------------------------------===//

int runTranslate(const CommonOptions &common, const DataOptions &data,
                 const TranslateOptions &options) {
  Loaded loaded = loadPackage(common, "translate");
  Package &package = *loaded.package;
  if (loaded.ranks() > 1)
    throw std::runtime_error("translate runs on one rank (not under mpirun)");
  if (!isTranslationModel(package))
    throw std::runtime_error("model " + package.model() +
                             " has no input 'source': translate needs an "
                             "encoder-decoder (moe-run generate samples a "
                             "language model)");
  NmtShape shape = translationModelShape(package);
  TranslationData dataset(shape, data, /*quiet=*/true);
  bool incremental = decodesIncrementally(package, options.search.decode);
  BeamOptions beam = translationBeam(
      shape, dataset.wordpieces(), options.search.beam,
      options.search.lengthPenalty, options.search.maxLength, incremental);
  // The source lines before the checkpoint: a missing file fails fast.
  std::string text;
  if (options.input == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin),
                std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(options.input, std::ios::binary);
    if (!in)
      throw std::runtime_error("--input " + options.input + ": cannot open");
    text.assign(std::istreambuf_iterator<char>(in),
                std::istreambuf_iterator<char>());
  }
  std::vector<std::vector<int32_t>> sources;
  for (const std::string &line : rt::data::splitLines(text))
    sources.push_back(dataset.wordpieces().encode(line));
  restoreForInference(loaded, common, dataset, options.checkpoint);
  auto start = Clock::now();
  std::vector<std::vector<int32_t>> pieces =
      translate(*loaded.session, package, shape, dataset.wordpieces(), sources,
                beam, options.search.decode);
  for (const std::vector<int32_t> &translation : pieces)
    std::printf("%s\n", dataset.wordpieces().decode(translation).c_str());
  if (!common.quiet)
    std::fprintf(stderr,
                 "translate: %zu lines, %s, at most %lld pieces, %s (%.2fs)\n",
                 sources.size(), describeBeam(beam).c_str(),
                 static_cast<long long>(beam.maxLength),
                 describeDecoding(incremental), secondsSince(start));
  return 0;
}

//===----------------------------------------------------------------------===//
// gradcheck
//===----------------------------------------------------------------------===//

int runGradcheck(const CommonOptions &common,
                 const GradcheckOptions &options) {
  Loaded loaded = loadPackage(common, "gradcheck");
  return checkGradients(*loaded.session, *loaded.package, options, common.seed,
                        common.verbose)
             ? 0
             : 1;
}

int runCheckDecodeStep(const CommonOptions &common, double tolerance) {
  Loaded loaded = loadPackage(common, "eval");
  return checkDecodeStep(*loaded.session, *loaded.package, common.seed,
                         tolerance)
             ? 0
             : 1;
}

//===----------------------------------------------------------------------===//
// info
//===----------------------------------------------------------------------===//

namespace {

/// The per-rank memory table of `moe-run info`: training (the train step
/// and the evaluation function) on one rank and, for an expert-parallel
/// package, on the rank counts that divide its experts; then the budget of
/// this machine and whether training fits.
void printMemory(const CommonOptions &common, const Package &package) {
  std::vector<int> counts{1};
  for (int r : largerRankCounts(package, 1))
    counts.push_back(r);
  std::vector<std::string> functions = functionsOf(package, "train");
  std::string roles;
  for (const std::string &role : functions)
    roles += (roles.empty() ? "" : " + ") + role;
  std::printf("memory per rank to train (%s arenas; gradients are in the "
              "train step's arena, an expert shard's and all ranks' "
              "summed vocabulary rows in its pool):\n",
              roles.c_str());
  std::printf("  %5s  %12s  %12s  %12s  %12s  %12s  %12s\n", "ranks",
              "parameters", "optimizer", "arenas", "inputs", "pools", "total");
  for (int r : counts) {
    MemoryEstimate m = estimateMemory(package, r, functions);
    std::printf("  %5d  %12s  %12s  %12s  %12s  %12s  %12s\n", r,
                formatBytes(m.parameters).c_str(),
                formatBytes(m.optimizerState).c_str(),
                formatBytes(m.arenas).c_str(), formatBytes(m.inputs).c_str(),
                formatBytes(m.pools).c_str(), formatBytes(m.total()).c_str());
  }
  if (!package.hasShardedTensors())
    std::printf("  (replicated: data-parallel ranks each hold all of it; "
                "expert-parallel=true splits the experts)\n");
  // The budget of this machine, when there is a device to ask.
  std::unique_ptr<rt::Backend> backend;
  if (package.target() == "cpu")
    backend = rt::createCpuBackend(1);
  else if (rt::cudaDeviceCount() > 0)
    backend = rt::createCudaBackend(rt::selectDevice(
        common.device, rt::launcherLocalRank(), rt::cudaDeviceCount()));
  std::string where;
  uint64_t budget = common.memoryLimit;
  if (backend)
    budget = memoryBudget(common, *backend, where);
  else if (budget)
    where = "--memory-limit is";
  else {
    std::printf("no CUDA device visible: no budget to check against\n");
    return;
  }
  std::optional<std::string> error =
      checkFits(package, 1, functions, budget, where);
  std::printf(
      "%s\n",
      error ? error->c_str()
            : ("fits on 1 rank: " + where + " " + formatBytes(budget)).c_str());
}

} // namespace

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
  printMemory(common, package);
  return 0;
}

} // namespace moe::run
