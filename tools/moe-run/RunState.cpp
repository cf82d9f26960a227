//===- RunState.cpp - A training run's checkpoints and resume -------------===//

#include "tools/moe-run/RunState.h"

#include "tools/moe-run/BatchSource.h"
#include "tools/moe-run/Package.h"
#include "tools/moe-run/Session.h"
#include "tools/moe-run/StopTogether.h"

#include "runtime/collectives/Collectives.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace fs = std::filesystem;

namespace moe::run {

namespace {

[[noreturn]] void failDir(const std::string &dir, const std::string &what) {
  throw std::runtime_error("--checkpoint-dir " + dir + ": " + what);
}

/// Fails unless a file can be created in `dir`: a read-only or full
/// directory is found now, not at the first checkpoint hours later.
void probeWritable(const std::string &dir) {
  std::string probe = dir + "/.write-probe-" + std::to_string(::getpid());
  int fd = ::open(probe.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0 || ::close(fd) != 0 || ::unlink(probe.c_str()) != 0)
    failDir(dir, std::string("not writable: ") + std::strerror(errno));
}

/// Takes the exclusive lock of `dir` for the life of the process and
/// returns its descriptor; another run holding it fails naming its pid.
int lockDirectory(const std::string &dir) {
  std::string path = dir + "/.lock";
  int fd = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  if (fd < 0)
    failDir(dir, "cannot open " + path + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    char pid[32] = {};
    ssize_t n = ::pread(fd, pid, sizeof(pid) - 1, 0);
    ::close(fd);
    if (err == EWOULDBLOCK)
      failDir(dir, "in use by another training run (process " +
                       std::string(n > 0 ? pid : "?") +
                       "); wait for it or choose another directory");
    failDir(dir, "cannot lock " + path + ": " + std::strerror(err));
  }
  std::string pid = std::to_string(::getpid());
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    // The pid is only a hint for the error above; the lock holds anyway.
  }
  return fd;
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
        "--checkpoint-dir " + root + " holds " + latest +
        ", later than the resume point (step " + std::to_string(step) +
        "): write to another directory or remove the later checkpoints");
}

/// Drops the records a killed run logged after its last checkpoint, so the
/// resumed run's records follow on without duplicates. Of the checkpoint's
/// own step it keeps the training and checkpoint records, written before
/// the save's rename, and drops the evaluation and final records that
/// follow the save: the resumed run writes those again. The file is
/// replaced by a rename, so a kill during the rewrite loses nothing.
void dropMetricsAfter(const std::string &path, int64_t step) {
  std::ifstream in(path);
  if (!in)
    return;
  std::string kept, line;
  while (std::getline(in, line)) {
    if (line.empty())
      continue;
    nlohmann::json record = nlohmann::json::parse(line, nullptr, false);
    int64_t at = record.is_object() ? record.value("step", int64_t(0)) : 0;
    bool afterSave = record.is_object() &&
                     (record.contains("split") || record.contains("final"));
    if (record.is_discarded() || at < step || (at == step && !afterSave))
      kept += line + "\n";
  }
  in.close();
  std::string tmp = path + ".rewrite";
  int fd = ::open(tmp.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
  bool written = fd >= 0 &&
                 ::write(fd, kept.data(), kept.size()) ==
                     static_cast<ssize_t>(kept.size()) &&
                 ::fsync(fd) == 0;
  if (fd >= 0 && ::close(fd) != 0)
    written = false;
  if (!written || ::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error("--metrics " + path +
                             ": cannot rewrite it: " + std::strerror(err));
  }
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

RunState::~RunState() {
  if (lockFd >= 0)
    ::close(lockFd);
}

void RunState::claimOutputs() {
  // --resume (even "latest" with nothing to resume) continues a run, whose
  // outputs these are; a fresh run keeps off another's unless told not to.
  bool keepOff = options.resume.empty() && !options.overwrite;
  struct stat st;
  if (keepOff && !options.metrics.empty() &&
      ::stat(options.metrics.c_str(), &st) == 0 && st.st_size > 0)
    throw std::runtime_error(
        "--metrics " + options.metrics +
        " already holds another run's records: continue that run with "
        "--resume latest or replace them with --overwrite");
  if (!saves())
    return;
  const std::string &root = options.checkpointDir;
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec)
    failDir(root, "cannot create it: " + ec.message());
  probeWritable(root);
  lockFd = lockDirectory(root);
  std::vector<std::string> unfinished = rt::removeUnfinishedSaves(root);
  if (!unfinished.empty() && !quiet)
    std::printf("checkpoint: removed %zu unfinished save(s) of a killed run "
                "from %s (%s)\n",
                unfinished.size(), root.c_str(), unfinished.front().c_str());
  if (!options.resume.empty())
    return;
  std::vector<std::string> earlier = rt::checkpointDirectories(root);
  if (earlier.empty())
    return;
  if (keepOff)
    failDir(root, "already holds checkpoints of another run (newest " +
                      earlier.front() +
                      "): continue it with --resume latest or replace them "
                      "with --overwrite");
  // Left in place, the old run's later steps would outlive pruning and be
  // what --resume latest picks.
  for (const std::string &dir : earlier)
    rt::removeCheckpoint(dir);
  if (!quiet)
    std::printf("checkpoint: --overwrite: removed %zu checkpoint(s) of an "
                "earlier run from %s\n",
                earlier.size(), root.c_str());
}

std::string RunState::loadLatest() {
  const std::string &root = options.checkpointDir;
  std::vector<std::string> dirs = rt::checkpointDirectories(root);
  std::string newestError;
  for (size_t i = 0; i < dirs.size(); ++i) {
    try {
      checkpoint = rt::loadCheckpoint(dirs[i]);
    } catch (const rt::CheckpointError &e) {
      if (i == 0)
        newestError = e.what();
      continue;
    }
    if (i > 0 && ranks.rank() == 0) {
      // Set aside (kept for a look), so that saves, pruning and the next
      // --resume latest see only this run's valid steps.
      for (size_t d = 0; d < i; ++d) {
        fs::path damaged(dirs[d]);
        std::error_code ec;
        fs::rename(damaged,
                   damaged.parent_path() /
                       (".damaged-" + damaged.filename().string()),
                   ec);
      }
      std::fprintf(stderr,
                   "moe-run: warning: --resume latest: %zu damaged newer "
                   "checkpoint(s) set aside as .damaged-step-* (%s); resuming "
                   "from %s\n",
                   i, newestError.c_str(), dirs[i].c_str());
    }
    return dirs[i];
  }
  if (!dirs.empty())
    throw std::runtime_error("--resume latest: no valid checkpoint in " + root +
                             "; the newest failed: " + newestError);
  return "";
}

uint64_t RunState::open(uint64_t seed) {
  runSeed = seed;
  if (options.resume == "latest" && options.checkpointDir.empty())
    throw std::runtime_error("--resume latest needs --checkpoint-dir");
  stopTogether(ranks, [&] {
    if (ranks.rank() == 0)
      claimOutputs();
  });
  resumeDir = options.resume;
  if (resumeDir == "latest") {
    resumeDir = loadLatest();
    if (resumeDir.empty() && !quiet)
      std::printf("resume: no checkpoint in %s yet, starting fresh\n",
                  options.checkpointDir.c_str());
  } else if (resuming()) {
    checkpoint = rt::loadCheckpoint(resumeDir);
  }
  if (resuming()) {
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
  stopTogether(ranks, [&] {
    if (!options.metrics.empty() && ranks.rank() == 0)
      dropMetricsAfter(options.metrics, step);
  });
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

std::string RunState::checkpointPath(int64_t step) const {
  return rt::checkpointPath(options.checkpointDir, step);
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
  stopTogether(ranks, [&] {
    if (ranks.rank() == 0)
      dir = rt::saveCheckpointFiles(options.checkpointDir, step, files, state,
                                    options.keep);
  });
  return dir;
}

} // namespace moe::run
