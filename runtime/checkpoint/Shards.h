//===- Shards.h - Expert shard files of a checkpoint ------------*- C++ -*-===//
//
// Internal to moe_checkpoint. Expert-sharded tensors are saved as one file
// per rank, tensors-expert-<r>-of-<R>.safetensors, holding rank r's slice of
// dim 0 (Checkpoint.h); loading joins the slices back into global tensors.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_CHECKPOINT_SHARDS_H
#define MOE_RUNTIME_CHECKPOINT_SHARDS_H

#include "runtime/checkpoint/Safetensors.h"

#include <cstddef>
#include <string>
#include <vector>

namespace moe::rt::checkpoint {

/// The indices into `names` of the expert shard files, by shard; empty when
/// there are none. Fails (naming `dir`) unless they are the complete set of
/// one save and every name with the shard prefix parses.
std::vector<size_t> findShardFiles(const std::string &dir,
                                   const std::vector<std::string> &names);

/// Checks that the tensors of the files combine into one checkpoint: a
/// tensor of a plain file appears in no other file, and every shard file
/// holds the same tensors (not 0-d) with the same dtype and shape as shard
/// 0's. `files[i]` holds the tensors of `names[i]`; `shards` is
/// findShardFiles(names).
void checkTensorLayout(
    const std::string &dir, const std::vector<std::string> &names,
    const std::vector<const std::vector<HostTensor> *> &files,
    const std::vector<size_t> &shards);

/// Appends to `out` the global tensors of the shards `byShard` (in rank
/// order, laid out as checkTensorLayout checks): their slices of dim 0 back
/// to back, in shard 0's order. Releases each slice's data once copied.
void joinShards(const std::vector<std::vector<HostTensor> *> &byShard,
                std::vector<HostTensor> &out);

} // namespace moe::rt::checkpoint

#endif // MOE_RUNTIME_CHECKPOINT_SHARDS_H
