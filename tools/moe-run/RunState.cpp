//===- RunState.cpp - A training run's checkpoints and resume -------------===//

#include "tools/moe-run/RunState.h"

#include "tools/moe-run/BatchSource.h"
#include "tools/moe-run/Package.h"
#include "tools/moe-run/Session.h"

#include "runtime/collectives/Collectives.h"

#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace moe::run {

namespace {

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
        "--checkpoint-dir " + root + " holds " + latest +
        ", later than the resume point (step " + std::to_string(step) +
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

} // namespace

void restoreCheckpoint(Session &session, const Package &package,
                       const Dataset &data, const rt::Checkpoint &checkpoint,
                       const std::string &dir, bool resuming) {
  std::string model = checkpoint.state.value("model", "");
  if (model != package.model())
    throw rt::CheckpointError("checkpoint " + dir + " is of model '" + model +
                              "', the package is '" + package.model() + "'");
  data.checkCheckpoint(checkpoint.state, dir, resuming);
  session.restore(checkpoint);
}

RunState::RunState(const Package &package, Session &session,
                   const Dataset &data, rt::Collectives &ranks,
                   const TrainOptions &options, bool quiet)
    : package(package), session(session), data(data), ranks(ranks),
      options(options), quiet(quiet) {}

uint64_t RunState::open(uint64_t seed) {
  runSeed = seed;
  resumeDir = options.resume;
  if (resumeDir == "latest") {
    if (options.checkpointDir.empty())
      throw std::runtime_error("--resume latest needs --checkpoint-dir");
    resumeDir = rt::latestCheckpoint(options.checkpointDir);
    if (resumeDir.empty() && !quiet)
      std::printf("resume: no checkpoint in %s yet, starting fresh\n",
                  options.checkpointDir.c_str());
  }
  if (resuming()) {
    checkpoint = rt::loadCheckpoint(resumeDir);
    // The seed is part of the run: a resumed run keeps the original one.
    runSeed = checkpoint.state.value("seed", seed);
  }
  return runSeed;
}

int64_t RunState::start(BatchSource &batches) {
  session.initialize(runSeed);
  if (!resuming())
    return 0;
  restoreCheckpoint(session, package, data, checkpoint, resumeDir,
                    /*resuming=*/true);
  int64_t step = checkpoint.step;
  refuseNewerCheckpoints(options.checkpointDir, step);
  if (!options.metrics.empty() && ranks.rank() == 0)
    dropMetricsAfter(options.metrics, step);
  batches.seek(checkpoint.state.value("data", nlohmann::json::object()));
  if (!quiet)
    std::printf("resume: %s at step %lld (%s)\n", resumeDir.c_str(),
                static_cast<long long>(step),
                batches.describePosition().c_str());
  if (!quiet && checkpoint.expertShards > 0 &&
      checkpoint.expertShards != ranks.size())
    std::printf("resume: expert shards of %d ranks split anew over %d\n",
                checkpoint.expertShards, ranks.size());
  // The tensors are in the session now.
  checkpoint = rt::Checkpoint();
  return step;
}

std::string RunState::save(int64_t step, const BatchSource &batches) {
  nlohmann::json state = data.checkpointFields();
  state["model"] = package.model();
  state["seed"] = runSeed;
  state["data"] = batches.position();
  // Rank 0 writes the replicated tensors and, gathered from every rank,
  // the expert shards (no shared filesystem needed).
  std::vector<rt::CheckpointFile> files = session.snapshot();
  std::string dir;
  if (ranks.rank() == 0)
    dir = rt::saveCheckpointFiles(options.checkpointDir, step, files, state,
                                  options.keep);
  ranks.barrier();
  return dir;
}

} // namespace moe::run
