//===- Commands.cpp - train, eval, generate, gradcheck, info --------------===//
//
// The subcommands: each loads the package on its ranks and hands the work
// to the pieces that do it (LanguageModelData, Trainer, RunState,
// evaluate); generate, gradcheck and info are short enough to live here.
//
//===----------------------------------------------------------------------===//

#include "tools/moe-run/Commands.h"

#include "tools/moe-run/Evaluation.h"
#include "tools/moe-run/GradientCheck.h"
#include "tools/moe-run/LanguageModelData.h"
#include "tools/moe-run/Package.h"
#include "tools/moe-run/RunState.h"
#include "tools/moe-run/Session.h"
#include "tools/moe-run/StopTogether.h"
#include "tools/moe-run/Trainer.h"

#include "runtime/Philox.h"
#include "runtime/checkpoint/Checkpoint.h"
#include "runtime/collectives/Collectives.h"
#include "runtime/data/Tokenizer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <stdexcept>

namespace moe::run {

namespace {

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
  // Rank 0 compiles the package; the others then find it in the cache. A
  // failure stops every rank at once.
  Package &package = *loaded.package;
  rt::Collectives &ranks = *loaded.collectives;
  stopTogether(ranks, [&] {
    if (ranks.rank() == 0)
      package.load(options.verbose);
  });
  stopTogether(ranks, [&] {
    if (ranks.rank() != 0)
      package.load(false);
  });
  // The ranks size the buffers of expert-sharded tensors.
  loaded.session = std::make_unique<Session>(
      *loaded.package, makeBackend(options, *loaded.package),
      loaded.collectives.get());
  return loaded;
}

/// Initializes the session and restores the checkpoint at `dir` into it
/// (checked against the model and the data); returns its step.
int64_t restoreForInference(Loaded &loaded, const CommonOptions &common,
                            const Dataset &data, const std::string &dir) {
  loaded.session->initialize(common.seed);
  rt::Checkpoint checkpoint = rt::loadCheckpoint(dir);
  restoreCheckpoint(*loaded.session, *loaded.package, data, checkpoint, dir,
                    /*resuming=*/false);
  return checkpoint.step;
}

} // namespace

//===----------------------------------------------------------------------===//
// train
//===----------------------------------------------------------------------===//

int runTrain(const CommonOptions &common, const DataOptions &data,
             const TrainOptions &train) {
  Loaded loaded = loadPackage(common);
  const Package &package = *loaded.package;
  // Rank 0 speaks, writes metrics and checkpoints for all.
  bool quiet = common.quiet || loaded.rank() != 0;
  if (!package.hasAdam())
    throw std::runtime_error(
        "package " + package.directory() +
        " returns gradients (optimizer=none): compile it with Adam to train");
  LmShape shape = languageModelShape(package);
  checkBatchTokens(shape, train.batchTokens);
  if (train.steps < 1)
    throw std::runtime_error("--steps must be at least 1");
  LanguageModelData dataset(package, shape, data, quiet);
  RunState state(package, *loaded.session, dataset, *loaded.collectives, train,
                 quiet);
  Trainer trainer(package, *loaded.session, *loaded.collectives, dataset, state,
                  train, common.verbose, quiet);
  trainer.run(common.seed);
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
  LanguageModelData dataset(*loaded.package, shape, data,
                            common.quiet || loaded.rank() != 0);
  if (eval.checkpoint.empty())
    throw std::runtime_error("--checkpoint is required: the directory of a "
                             "saved step (see moe-run train "
                             "--checkpoint-dir)");
  int64_t step = restoreForInference(loaded, common, dataset, eval.checkpoint);
  if (eval.split != "test" && eval.split != "train")
    throw std::runtime_error("--split must be test or train");
  Evaluation e = evaluate(*loaded.session, *loaded.package,
                          *dataset.evaluationBatches(eval.split), eval.batches,
                          loaded.collectives.get());
  if (loaded.rank() != 0)
    return 0;
  std::printf("%s perplexity at step %lld: %.2f over %lld words (unigram "
              "baseline %.2f)\n",
              eval.split.c_str(), static_cast<long long>(step), e.perplexity,
              static_cast<long long>(e.tokens), dataset.baselinePerplexity());
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
  return checkGradients(*loaded.session, *loaded.package, options, common.seed,
                        common.verbose)
             ? 0
             : 1;
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
