//===- Options.h - moe-run's command-line options ---------------*- C++ -*-===//
//
// What the command line sets, by subcommand; moe-run.cpp fills them in and
// the commands, the trainer and the run state read them.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TOOLS_MOE_RUN_OPTIONS_H
#define MOE_TOOLS_MOE_RUN_OPTIONS_H

#include <cstdint>
#include <string>

namespace moe::run {

/// Options shared by every subcommand.
struct CommonOptions {
  std::string package;
  std::string backend = "auto"; ///< auto, cpu or cuda
  int threads = 0;              ///< CPU threads; 0 = all cores
  int device = -1; ///< CUDA device; -1: the node-local rank modulo the devices
  uint64_t seed = 1;
  std::string collectives = "auto"; ///< auto, single or mpi
  /// Bytes a rank may use (0: what the backend has available); a package
  /// whose estimate exceeds it is refused before anything is allocated.
  uint64_t memoryLimit = 0;
  bool verbose = false;
  bool quiet = false;
};

/// Options of the data pipeline (train, eval, generate, translate).
struct DataOptions {
  std::string path;
  int64_t vocabSize = 0; ///< 0: the model's vocabulary
  int64_t minCount = 1;
  double testFraction = 0.05;
  std::string testSplit = "blocks"; ///< blocks or documents
  int64_t maxLines = 0;
};

struct TrainOptions {
  int64_t steps = 1000;
  double maxMinutes = 0;   ///< 0: no time limit
  int64_t batchTokens = 0; ///< 0: the compiled batch; else must match it
  int64_t logEvery = 50;
  int64_t evalEvery = 0;   ///< 0: at the end only
  int64_t evalBatches = 0; ///< 0: the whole test split
  std::string checkpointDir;
  int64_t checkpointEvery = 0; ///< 0: at the end only (with a directory)
  int keep = 3;
  std::string resume; ///< a checkpoint dir, or "latest" in checkpointDir
  std::string metrics;
  bool overwrite = false; ///< a fresh run may replace an earlier run's output
  /// Rank 0 gathers and writes every expert shard (ranks without a shared
  /// --checkpoint-dir; also chosen when a rank cannot see it).
  bool checkpointGather = false;
};

/// How translate, eval's BLEU and generate score the next token.
enum class DecodePath {
  /// incremental when the package has decode_step, else window
  Auto,
  /// re-run the evaluation function over the whole window per token
  Window,
  /// encode once, then one decode_step call per token
  Incremental,
};

/// Beam search of a translation model (translate, and eval's BLEU).
struct BeamSearchOptions {
  int64_t beam = 4;           ///< hypotheses; 1: greedy
  double lengthPenalty = 0.6; ///< GNMT's alpha
  int64_t maxLength = 0;      ///< pieces; 0: the decoder window's
  DecodePath decode = DecodePath::Auto;
};

struct EvalOptions {
  std::string checkpoint;
  std::string split = "test";
  int64_t batches = 0;
  /// A translation model's BLEU: greedy by default; beam 0 skips it.
  BeamSearchOptions search{1, 0.6, 0};
};

struct TranslateOptions {
  std::string checkpoint;
  std::string input = "-"; ///< a file of source lines, or - for stdin
  BeamSearchOptions search;
};

struct GenerateOptions {
  std::string checkpoint;
  std::string prompt;
  int64_t words = 30;
  double temperature = 1.0;
  DecodePath decode = DecodePath::Auto;
};

struct InspectOptions {
  std::string checkpoint;
  std::string split = "test";
  int64_t batches = 20; ///< 0: the whole split
  int64_t layer = 0;
  std::string experts; ///< "0,5,17"; empty: the most used
  int64_t topExperts = 4;
  int64_t contexts = 10;
  int64_t window = 4;
  bool groups = false; ///< only the primary groups of a hierarchical layer
};

struct GradcheckOptions {
  int64_t samples = 64;
  double epsilon = 1e-2;
  double tolerance = 5e-2;
  double maxFailFraction = 0.05;
};

} // namespace moe::run

#endif // MOE_TOOLS_MOE_RUN_OPTIONS_H
