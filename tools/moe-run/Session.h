//===- Session.h - A package's parameters, state and calls -----*- C++ -*-===//
//
// Owns the backend memory of a loaded package: one buffer per parameter and
// optimizer state tensor (shared by every function of the package), the
// input buffers and arena of each function, and the calls themselves. The
// buffer of an expert-sharded tensor holds only this rank's slice of dim 0:
// rows [r n/R, (r+1) n/R) of rank r of R, contiguous.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TOOLS_MOE_RUN_SESSION_H
#define MOE_TOOLS_MOE_RUN_SESSION_H

#include "tools/moe-run/Package.h"

#include "runtime/Backend.h"
#include "runtime/checkpoint/Checkpoint.h"
#include "runtime/step/Step.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace moe::run {

/// What one call returned, on the host.
struct CallResult {
  float loss = 0;
  float lr = 0;
  rt::step::Stats stats;
  double seconds = 0;
};

class Session {
public:
  /// Allocates the buffers for the ranks of `collectives` (one rank when
  /// null); throws std::runtime_error when a sharded tensor's dim 0 does
  /// not divide by their number.
  Session(const Package &package, std::unique_ptr<rt::Backend> backend,
          rt::Collectives *collectives = nullptr);
  ~Session();
  Session(const Session &) = delete;
  Session &operator=(const Session &) = delete;

  /// Parameters from their initializers (Philox keyed by `seed`, the
  /// parameter's name and the global element index, so every backend and
  /// rank draws the same values, and a shard the slice of the global
  /// tensor's), optimizer state zero; on the backend (the CUDA device),
  /// except normal initializers. `progress` announces a large model's.
  void initialize(uint64_t seed, bool progress = false);

  /// Runs the package function `role` ("train_step", "eval", "model") on
  /// `inputs` (host arrays, by input name) at the 1-based `step`.
  CallResult call(const std::string &role,
                  const std::map<std::string, const int32_t *> &inputs,
                  int64_t step, bool training, bool collectStats);

  /// Allocates the arena and input buffers of `role` now (they are
  /// otherwise allocated at its first call); throws when there is no memory.
  void prepare(const std::string &role);

  /// Makes the next calls of `role` keep the logits of the token rows
  /// `rows` (of the flattened [batch * time]: row b * time + t is position
  /// t of batch row b; none when empty), and returns what the last call
  /// kept: rows.size() x vocab, empty when the model has no full softmax.
  void captureLogits(const std::string &role, std::vector<int64_t> rows);
  const std::vector<float> &capturedLogits(const std::string &role);

  /// Makes the next calls of `role` record every dispatch plan's
  /// assignments (token, expert, gate), or stop doing so, and returns what
  /// the last call recorded, one entry per plan in program order.
  void captureRoutes(const std::string &role, bool capture);
  const std::vector<rt::step::RouteCapture> &
  capturedRoutes(const std::string &role);

  /// Decoding state: the State arguments of encode and decode_step that
  /// are no parameter or optimizer state (encoder outputs, LSTM states).
  /// Their buffers, by name, are the session's too, allocated zeroed at the
  /// first call that reads or writes them; a call copies its State results
  /// into them. Checkpoints, restore(), snapshot() and the memory estimate
  /// leave them out. This zeroes every one.
  void resetDecodingState();
  /// Reorders dim 0 (the batch rows) of the decoding state that `role`
  /// updates: row i becomes the old row rows[i] (a beam hypothesis takes
  /// its parent's state).
  void gatherDecodingState(const std::string &role,
                           const std::vector<int64_t> &rows);
  /// Calls `role` (decode_step) in inference mode and returns its Logits
  /// result on the host: [batch, vocab], both of its 'tokens' input.
  std::vector<float>
  callForLogits(const std::string &role,
                const std::map<std::string, const int32_t *> &inputs);

  /// Backend pointer of a result of the last call of `role`.
  const void *resultPointer(const std::string &role, int index) const;

  /// Parameters and optimizer state as the files of a checkpoint
  /// (rt::saveCheckpointFiles): the replicated tensors in
  /// rt::kTensorsFileName and, when some are expert-sharded, the slices of
  /// rank r of R in rt::expertShardFileName(r, R). Collective over the
  /// ranks when some tensors are sharded (the shards are gathered): every
  /// rank calls it, and only rank 0 gets the files (the others an empty
  /// list).
  std::vector<rt::CheckpointFile> snapshot() const;
  /// The files this rank writes into a checkpoint that every rank writes in
  /// place (rt::beginCheckpoint): its own expert shard and, on rank 0, the
  /// replicated tensors. Not collective.
  std::vector<rt::CheckpointFile> ownFiles() const;
  /// Whether some parameter or state tensor is split over the ranks.
  bool hasShards() const;
  /// Loads from the checkpoint directory `dir` what restore() needs on
  /// this rank: the replicated tensors and, of the expert-sharded ones,
  /// only this rank's slice (reading only the shard files that hold it).
  rt::Checkpoint loadCheckpoint(const std::string &dir) const;
  /// Restores every tensor of the package from `checkpoint` (global
  /// tensors, of which a sharded buffer takes this rank's slice, or the
  /// slices loadCheckpoint() read); throws rt::CheckpointError naming a
  /// missing or mis-shaped tensor.
  void restore(const rt::Checkpoint &checkpoint);

  /// The named parameter or state tensor, in backend memory: this rank's
  /// shard for a sharded one (bufferInfo(name).localElements(ranks())
  /// elements).
  void *buffer(const std::string &name) const;
  /// Its argument, with the global shape.
  const ArgumentInfo &bufferInfo(const std::string &name) const;
  std::vector<std::string> parameterNames() const;

  /// Makes the package's collectives (mesh.all_reduce) run over these
  /// ranks; without, the session is one rank. Each rank draws its shard of
  /// the global batch's gating noise and dropout masks. A change of the
  /// number of ranks reallocates the sharded buffers, whose contents are
  /// then undefined: initialize() or restore() afterwards. Throws like the
  /// constructor, leaving the session as it was.
  void setCollectives(rt::Collectives *collectives);
  int rank() const;
  int ranks() const;

  rt::Backend &backend() { return *backend_; }
  uint64_t seed() const { return seed_; }

private:
  struct FunctionState;
  FunctionState &state(const std::string &role);
  /// Bytes of this rank's part of a parameter or state tensor.
  size_t localBytes(const ArgumentInfo &arg) const;
  /// A host copy of this rank's part of the named buffer, as a checkpoint
  /// tensor of `shape`.
  rt::HostTensor hostCopy(const std::string &name,
                          const std::vector<int64_t> &shape) const;
  /// (Re)allocates the sharded buffers for `ranks` ranks.
  void allocateShards(int ranks);

  const Package &package;
  std::unique_ptr<rt::Backend> backend_;
  uint64_t seed_ = 0;
  rt::Collectives *collectives_ = nullptr;
  /// Parameters and optimizer state by name.
  std::map<std::string, std::pair<ArgumentInfo, void *>> buffers;
  std::map<std::string, std::unique_ptr<FunctionState>> functions;
  /// Decoding state by name (resetDecodingState()).
  std::map<std::string, std::pair<ArgumentInfo, void *>> decodingState;
  void *decodingBuffer(const ArgumentInfo &arg);
};

} // namespace moe::run

#endif // MOE_TOOLS_MOE_RUN_SESSION_H
