//===- moe-run.cpp - The runtime driver of compiled MoE models ------------===//
//
// Runs the packages moe-translate writes (manifest.json + step.cpp/.cu):
//
//   moe-run train PACKAGE --data corpus.txt --steps 2000 [--checkpoint-dir D]
//   moe-run eval PACKAGE --data corpus.txt --checkpoint D/step-00002000
//   moe-run generate PACKAGE --data corpus.txt --checkpoint ... --prompt "In"
//   moe-run inspect PACKAGE --data corpus.txt --checkpoint ... [--experts 0,5]
//   moe-run translate PACKAGE --data nmt-dir --checkpoint ... < english.txt
//   moe-run gradcheck PACKAGE          (a package compiled with optimizer=none)
//   moe-run check-decode-step PACKAGE  (incremental decoding vs eval)
//   moe-run info PACKAGE
//
// Needs no LLVM: it compiles the package source against the runtime with
// the system compiler (or nvcc) and loads it. Errors are one line and a
// non-zero exit.
//
//===----------------------------------------------------------------------===//

#include "tools/moe-run/Commands.h"
#include "tools/moe-run/MemoryEstimate.h"

#include "runtime/checkpoint/Safetensors.h"

#include <CLI/CLI.hpp>

#include <dlfcn.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <system_error>


using namespace moe::run;

namespace {

/// Counts and sizes: a negative one has no meaning, and CLI11 would clamp
/// one beyond int64 to the largest value (--steps 1e20 as 9.2e18 steps).
const CLI::Validator kCount(
    [](std::string &text) -> std::string {
      int64_t value = 0;
      auto [end, ec] =
          std::from_chars(text.data(), text.data() + text.size(), value);
      if (ec == std::errc::result_out_of_range)
        return "value " + text + " does not fit in a 64-bit integer";
      if (ec == std::errc() && value < 0)
        return "value " + text + " is negative";
      return ""; // anything else is CLI11's to convert or refuse
    },
    "COUNT");

void addMemoryLimit(CLI::App *app, CommonOptions &common) {
  app->add_option_function<std::string>(
         "--memory-limit",
         [&common](const std::string &text) {
           try {
             common.memoryLimit = parseBytes(text);
           } catch (const std::invalid_argument &e) {
             throw CLI::ValidationError("--memory-limit", e.what());
           }
         },
         "Bytes a rank may use (e.g. 64G; default: the device's free memory "
         "or the host's available memory): a package whose estimate (see "
         "moe-run info) exceeds it is refused before anything is allocated")
      ->type_name("BYTES");
}

void addCommon(CLI::App *app, CommonOptions &common) {
  app->add_option("package", common.package,
                  "Package directory (manifest.json and step.cpp or step.cu)")
      ->required();
  app->add_option("--backend", common.backend,
                  "auto (the package's target), cpu or cuda")
      ->capture_default_str();
  app->add_option("--threads", common.threads,
                  "CPU threads (0: every core)")
      ->capture_default_str()
      ->check(kCount);
  app->add_option("--device", common.device,
                  "CUDA device (default: the node-local rank under mpirun "
                  "modulo the visible devices, else 0)")
      ->check(kCount);
  app->add_option("--seed", common.seed,
                  "Seed of parameter initialisation, gating noise, dropout "
                  "and data order")
      ->capture_default_str();
  app->add_option("--collectives", common.collectives,
                  "How ranks talk: auto (under mpirun: NCCL for CUDA "
                  "packages, MPI for CPU ones; else one rank), single, mpi "
                  "or nccl")
      ->capture_default_str();
  addMemoryLimit(app, common);
  app->add_flag("-v,--verbose", common.verbose,
                "Print the compile command and per-layer expert load");
  app->add_flag("-q,--quiet", common.quiet, "Print only errors and results");
}

void addData(CLI::App *app, DataOptions &data, bool languageModel = true) {
  app->add_option("--data", data.path,
                  "A language model's text corpus, one sentence per line "
                  "(e.g. the King James Bible, see scripts/demo.sh); a "
                  "translation model's (inputs 'source', 'tokens', "
                  "'targets') corpus folder: {train,dev,test}.{en,fr} and "
                  "spm.model, as scripts/nmt-corpus.py writes it")
      ->required();
  if (!languageModel)
    return;
  app->add_option("--vocab-size", data.vocabSize,
                  "Language models: most frequent words kept, with <unk> and "
                  "<eos> (0: the model's vocabulary)")
      ->capture_default_str()
      ->check(kCount);
  app->add_option("--min-count", data.minCount,
                  "Language models: words seen fewer times become <unk>")
      ->capture_default_str()
      ->check(kCount);
  app->add_option("--test-fraction", data.testFraction,
                  "Language models: share of the corpus held out for test "
                  "perplexity (see --test-split)")
      ->capture_default_str();
  app->add_option("--test-split", data.testSplit,
                  "Language models: what is held out: blocks (the last "
                  "--test-fraction of the "
                  "sentences of each of 20 blocks spread over the corpus) or "
                  "documents (whole documents, separated by blank lines, "
                  "spread over the corpus: about --test-fraction of the "
                  "words, e.g. books of the Bible; see scripts/lm-sweep.py)")
      ->capture_default_str()
      ->check(CLI::IsMember({"blocks", "documents"}));
  app->add_option("--max-lines", data.maxLines,
                  "Language models: read only the first N sentences (0: "
                  "all)")
      ->capture_default_str()
      ->check(kCount);
}

/// How the next token is scored (translate, eval's BLEU, generate).
void addDecode(CLI::App *app, DecodePath &path) {
  std::map<std::string, DecodePath> paths = {
      {"auto", DecodePath::Auto},
      {"window", DecodePath::Window},
      {"incremental", DecodePath::Incremental}};
  app->add_option("--decode", path,
                  "incremental: encode once, then one decode_step call per "
                  "token (packages from moe-add-decode-step); window: re-run "
                  "the evaluation function's whole window per token; auto: "
                  "incremental when the package has decode_step")
      ->transform(CLI::CheckedTransformer(paths, CLI::ignore_case))
      ->default_str("auto");
}

/// Beam search options (translate, and the BLEU of eval).
void addBeam(CLI::App *app, BeamSearchOptions &search, const char *beamHelp) {
  addDecode(app, search.decode);
  app->add_option("--beam", search.beam, beamHelp)
      ->capture_default_str()
      ->check(kCount);
  app->add_option("--length-penalty", search.lengthPenalty,
                  "GNMT's alpha: a finished hypothesis Y scores log P(Y) / "
                  "((5 + |Y|)^alpha / 6^alpha); 0 ranks by probability")
      ->capture_default_str();
  app->add_option("--max-length", search.maxLength,
                  "Most pieces of a translation (0: the decoder's window "
                  "less its EOS, twice that when decoding incrementally, "
                  "which has no window)")
      ->capture_default_str()
      ->check(kCount);
}

/// Settings that the BLAS and OpenMP runtimes read only when they load, so
/// moe-run sets them and starts itself again:
///  * OpenBLAS picks its kernels from the CPU model and falls back to the
///    SSE3 "Prescott" ones on models it does not know (virtual CPUs report
///    generic names): half the speed on an AVX-512 machine. Name the core
///    from the CPU's features instead.
///  * OpenBLAS's threads and OpenMP's share the cores; OpenMP workers that
///    spin between the many small kernels of a step steal the GEMMs' time
///    (1.5x slower steps on 2 cores). Let them sleep (OMP_WAIT_POLICY).
/// A variable the user set is never changed.
void ensureRuntimeEnvironment(char **argv) {
  if (std::getenv("MOE_RUN_REEXEC"))
    return;
  bool changed = false;
  using CoreName = char *(*)();
  auto corename = reinterpret_cast<CoreName>(
      ::dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (corename && !std::getenv("OPENBLAS_CORETYPE") &&
      std::strcmp(corename(), "Prescott") == 0) {
    const char *core = nullptr;
    if (__builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq"))
      core = "SkylakeX";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
      core = "Haswell";
    if (core) {
      ::setenv("OPENBLAS_CORETYPE", core, 1);
      changed = true;
    }
  }
  if (!std::getenv("OMP_WAIT_POLICY")) {
    ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    changed = true;
  }
  if (!changed)
    return;
  ::setenv("MOE_RUN_REEXEC", "1", 1);
  ::execv("/proc/self/exe", argv);
  // Not fatal: carry on with the defaults.
}

} // namespace

int main(int argc, char **argv) {
  ensureRuntimeEnvironment(argv);
  // Line by line: progress reaches a pipe (mpirun, tee) as it happens, and
  // nothing is left in a buffer when MPI tears the pipe down at exit.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  CLI::App app{"moe-run: train, evaluate and sample compiled mixture-of-"
               "experts language models, and train, evaluate and run "
               "translation models.\n\nA package is what moe-translate "
               "writes from a model compiled by moe-opt --moe-train-pipeline:"
               "\n  moe-opt --moe-train-pipeline model.mlir -o step.mlir\n"
               "  moe-translate --moe-to-cpp step.mlir -o pkg/step.cpp\n"
               "  moe-translate --moe-to-manifest step.mlir -o "
               "pkg/manifest.json\n(scripts/package.sh does all three)."};
  app.require_subcommand(1);

  CommonOptions common;
  DataOptions data;
  TrainOptions train;
  EvalOptions eval;
  GenerateOptions generate;
  InspectOptions inspect;
  TranslateOptions translate;
  GradcheckOptions gradcheck;

  CLI::App *trainCmd = app.add_subcommand(
      "train", "Train on a corpus, with progress, metrics, checkpoints and "
               "test perplexity");
  addCommon(trainCmd, common);
  addData(trainCmd, data);
  trainCmd->add_option("--steps", train.steps, "Total training steps")
      ->capture_default_str()
      ->check(kCount);
  trainCmd->add_option("--max-minutes", train.maxMinutes,
                       "Stop (and checkpoint) after this long (0: no limit)")
      ->capture_default_str();
  trainCmd->add_option("--batch-tokens", train.batchTokens,
                       "Check that the compiled batch has this many tokens")
      ->capture_default_str()
      ->check(kCount);
  trainCmd->add_option("--log-every", train.logEvery,
                       "Steps between progress reports and metrics records")
      ->capture_default_str()
      ->check(kCount);
  trainCmd->add_option("--eval-every", train.evalEvery,
                       "Steps between test evaluations (0: at the end)")
      ->capture_default_str()
      ->check(kCount);
  trainCmd->add_option("--eval-batches", train.evalBatches,
                       "Test batches per evaluation (0: the whole split)")
      ->capture_default_str()
      ->check(kCount);
  trainCmd->add_option("--checkpoint-dir", train.checkpointDir,
                       "Where to write step-NNNNNNNN checkpoints");
  trainCmd->add_option("--checkpoint-every", train.checkpointEvery,
                       "Steps between checkpoints (0: at the end only)")
      ->capture_default_str()
      ->check(kCount);
  trainCmd->add_option("--keep", train.keep,
                       "Checkpoints kept (older ones are deleted; 0: all)")
      ->capture_default_str()
      ->check(kCount);
  trainCmd->add_option("--resume", train.resume,
                       "Continue from a checkpoint directory, or 'latest' in "
                       "--checkpoint-dir; the run continues exactly as if "
                       "uninterrupted");
  trainCmd->add_option("--metrics", train.metrics,
                       "JSON Lines file of loss, perplexity, learning rate, "
                       "tokens/s, TFLOP/s and per-expert load");
  trainCmd->add_flag("--checkpoint-gather", train.checkpointGather,
                     "Under mpirun, gather the expert shards to rank 0, "
                     "which writes the whole checkpoint (for ranks that do "
                     "not share --checkpoint-dir; chosen automatically when "
                     "a rank cannot see it). By default each rank writes "
                     "its own shard file in place");
  trainCmd->add_flag("--overwrite", train.overwrite,
                     "Let a fresh run replace an earlier run's checkpoints in "
                     "--checkpoint-dir (deleted at the start) and its "
                     "--metrics file; without it they are refused");

  CLI::App *evalCmd = app.add_subcommand(
      "eval", "Perplexity of a checkpoint on a split; for a translation "
              "model also the split's corpus BLEU (sacreBLEU's, against the "
              "raw reference lines)");
  addCommon(evalCmd, common);
  addData(evalCmd, data);
  evalCmd->add_option("--checkpoint", eval.checkpoint, "Checkpoint directory")
      ->required();
  evalCmd
      ->add_option("--split", eval.split,
                   "test or train (translation: also dev)")
      ->capture_default_str();
  evalCmd
      ->add_option("--batches", eval.batches,
                   "Batches (0: all); BLEU decodes their sentences")
      ->capture_default_str()
      ->check(kCount);
  addBeam(evalCmd, eval.search,
          "Translation: beam width of the decoding that BLEU scores (1: "
          "greedy; 0: no BLEU)");

  CLI::App *generateCmd =
      app.add_subcommand("generate", "Sample text from a checkpoint");
  addCommon(generateCmd, common);
  addData(generateCmd, data);
  generateCmd
      ->add_option("--checkpoint", generate.checkpoint, "Checkpoint directory")
      ->required();
  generateCmd->add_option("--prompt", generate.prompt, "Text to continue");
  generateCmd->add_option("--words", generate.words, "Words to sample")
      ->capture_default_str()
      ->check(kCount);
  generateCmd
      ->add_option("--temperature", generate.temperature,
                   "Softmax temperature (lower: more likely words)")
      ->capture_default_str();
  addDecode(generateCmd, generate.decode);

  CLI::App *inspectCmd = app.add_subcommand(
      "inspect",
      "For chosen experts of an MoE layer, the words they received with the "
      "highest gate values, in context (the paper's Table 6); for a "
      "hierarchical layer also per primary group (Table 7)");
  addCommon(inspectCmd, common);
  addData(inspectCmd, data);
  inspectCmd
      ->add_option("--checkpoint", inspect.checkpoint, "Checkpoint directory")
      ->required();
  inspectCmd->add_option("--split", inspect.split, "test or train")
      ->capture_default_str();
  inspectCmd
      ->add_option("--batches", inspect.batches,
                   "Batches of the split to route (0: all)")
      ->capture_default_str()
      ->check(kCount);
  inspectCmd
      ->add_option("--layer", inspect.layer,
                   "Which MoE layer, counted from 0 in program order")
      ->capture_default_str()
      ->check(kCount);
  CLI::Option *expertsOpt = inspectCmd->add_option(
      "--experts", inspect.experts,
      "Experts to show, e.g. 0,5,17 (with --groups: primary groups)");
  inspectCmd
      ->add_option("--top-experts", inspect.topExperts,
                   "Without --experts: show this many of the most used "
                   "experts (and primary groups)")
      ->capture_default_str()
      ->check(kCount)
      ->excludes(expertsOpt);
  inspectCmd
      ->add_option("--contexts", inspect.contexts,
                   "Distinct contexts per expert, highest gate first")
      ->capture_default_str()
      ->check(kCount);
  inspectCmd
      ->add_option("--window", inspect.window,
                   "Words shown before the routed word (from its batch row, "
                   "what the model saw)")
      ->capture_default_str()
      ->check(kCount);
  inspectCmd->add_flag("--groups", inspect.groups,
                       "Hierarchical layer: show only the primary groups "
                       "(shown after the experts by default)");
  CLI::App *translateCmd = app.add_subcommand(
      "translate",
      "Translate English lines to French with a translation model's "
      "checkpoint: beam search with GNMT's length penalty, one hypothesis "
      "per row of the compiled batch (--beam at most the batch; greedy with "
      "--beam 1). Each piece re-runs the whole decoder window (O(T^2) per "
      "sentence; an incremental decoder needs a compiler-made decode step)");
  addCommon(translateCmd, common);
  addData(translateCmd, data, /*languageModel=*/false);
  translateCmd
      ->add_option("--checkpoint", translate.checkpoint, "Checkpoint directory")
      ->required();
  translateCmd
      ->add_option("--input", translate.input,
                   "English lines to translate, one a line (- : stdin)")
      ->capture_default_str();
  addBeam(translateCmd, translate.search, "Beam width (1: greedy)");

  CLI::App *gradCmd = app.add_subcommand(
      "gradcheck", "Compare the compiled gradients with finite differences "
                   "of the compiled forward pass (package compiled with "
                   "optimizer=none)");
  addCommon(gradCmd, common);
  gradCmd->add_option("--samples", gradcheck.samples,
                      "Parameter entries to check")
      ->capture_default_str()
      ->check(kCount);
  gradCmd->add_option("--epsilon", gradcheck.epsilon, "Finite-difference step")
      ->capture_default_str();
  gradCmd->add_option("--tolerance", gradcheck.tolerance,
                      "Largest relative error that passes")
      ->capture_default_str();
  gradCmd->add_option("--max-fail-fraction", gradcheck.maxFailFraction,
                      "Share of samples allowed to miss (routing flips)")
      ->capture_default_str();

  double decodeTolerance = 1e-4;
  CLI::App *decodeCmd = app.add_subcommand(
      "check-decode-step",
      "Check that decode_step, one position at a time, gives the evaluation "
      "function's logits at every position (random parameters and inputs)");
  addCommon(decodeCmd, common);
  decodeCmd
      ->add_option("--tolerance", decodeTolerance,
                   "Largest difference that passes, relative to the largest "
                   "logit")
      ->capture_default_str();

  CLI::App *infoCmd =
      app.add_subcommand("info", "Describe a package's functions");
  infoCmd->add_option("package", common.package, "Package directory")
      ->required();
  infoCmd
      ->add_option("--device", common.device,
                   "CUDA device whose free memory the estimate is checked "
                   "against")
      ->check(kCount);
  addMemoryLimit(infoCmd, common);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError &e) {
    if (e.get_exit_code() == 0) // --help
      return app.exit(e);
    std::fprintf(stderr, "moe-run: error: %s (see --help)\n", e.what());
    return e.get_exit_code();
  }
  try {
    if (trainCmd->parsed())
      return runTrain(common, data, train);
    if (evalCmd->parsed())
      return runEval(common, data, eval);
    if (generateCmd->parsed())
      return runGenerate(common, data, generate);
    if (inspectCmd->parsed())
      return runInspect(common, data, inspect);
    if (translateCmd->parsed())
      return runTranslate(common, data, translate);
    if (gradCmd->parsed())
      return runGradcheck(common, gradcheck);
    if (decodeCmd->parsed())
      return runCheckDecodeStep(common, decodeTolerance);
    if (infoCmd->parsed())
      return runInfo(common);
  } catch (const std::exception &e) {
    std::fflush(stdout);
    // A progress bar may be open on the terminal: start a fresh line.
    std::fprintf(stderr, "%smoe-run: error: %s\n",
                 ::isatty(STDERR_FILENO) ? "\n" : "", e.what());
    return 1;
  }
  return 1;
}
