//===- RunState.h - A training run's checkpoints and resume -----*- C++ -*-===//
//
// What ties a training run to its checkpoints. A checkpoint holds the
// session's tensors (parameters, Adam moments, the step counter) and, as
// state JSON, the model, the seed, the data position and the dataset's
// fingerprints; since all randomness is keyed by them, a run resumed from
// it continues bit-identically to an uninterrupted one.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TOOLS_MOE_RUN_RUNSTATE_H
#define MOE_TOOLS_MOE_RUN_RUNSTATE_H

#include "tools/moe-run/Options.h"

#include "runtime/checkpoint/Checkpoint.h"

#include <cstdint>
#include <string>

namespace moe::rt {
class Collectives;
} // namespace moe::rt

namespace moe::run {

class BatchSource;
class Dataset;
class Package;
class Session;

/// Loads `checkpoint` (read from `dir`) into the session after checking it
/// is of this model and data (and, when `resuming` training, of its batch
/// shape and training split); throws rt::CheckpointError naming `dir`.
void restoreCheckpoint(Session &session, const Package &package,
                       const Dataset &data, const rt::Checkpoint &checkpoint,
                       const std::string &dir, bool resuming);

class RunState {
public:
  /// `options` name the checkpoint directory, the checkpoints to keep, the
  /// one to resume from and the metrics file; rank 0 of `ranks` writes.
  RunState(const Package &package, Session &session, const Dataset &data,
           rt::Collectives &ranks, const TrainOptions &options, bool quiet);
  ~RunState();
  RunState(const RunState &) = delete;
  RunState &operator=(const RunState &) = delete;

  /// Claims the run's outputs on rank 0 (see claimOutputs), then finds and
  /// loads the checkpoint that --resume names: a directory, or "latest" in
  /// --checkpoint-dir, the newest one that verifies (none there yet: a
  /// fresh start). Returns the run's seed: `seed`, or the checkpoint's,
  /// which a resumed run keeps.
  uint64_t open(uint64_t seed);
  bool resuming() const { return !resumeDir.empty(); }

  /// Initializes the session from the seed; when resuming, restores the
  /// checkpoint into the session and `batches` (the data position), and
  /// drops the metrics records the interrupted run wrote after it. Returns
  /// the step to continue after (0 for a fresh start).
  int64_t start(BatchSource &batches);

  /// Whether --checkpoint-dir asks for checkpoints.
  bool saves() const { return !options.checkpointDir.empty(); }
  /// The directory the checkpoint of `step` is saved to.
  std::string checkpointPath(int64_t step) const;
  /// Writes the checkpoint of `step`: the session's tensors (gathered from
  /// every rank, so it is collective) and the position of `batches`.
  /// Returns its directory on rank 0, "" on the others.
  std::string save(int64_t step, const BatchSource &batches);

private:
  /// Before the first step: refuses to let a fresh run overwrite another
  /// run's checkpoints or metrics (unless --overwrite), checks that
  /// --checkpoint-dir is writable, locks it for the run's life and removes
  /// the unfinished saves of a killed run.
  void claimOutputs();
  /// The newest checkpoint of --checkpoint-dir that loads, loaded into
  /// `checkpoint`; "" when there is none. Damaged newer ones are set aside.
  std::string loadLatest();

  const Package &package;
  Session &session;
  const Dataset &data;
  rt::Collectives &ranks;
  const TrainOptions &options;
  bool quiet;
  uint64_t runSeed = 0;
  std::string resumeDir;
  rt::Checkpoint checkpoint;
  int lockFd = -1; ///< the flock'ed .lock of --checkpoint-dir (rank 0)
};

} // namespace moe::run

#endif // MOE_TOOLS_MOE_RUN_RUNSTATE_H
