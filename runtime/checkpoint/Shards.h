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
#include <utility>
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

/// The shard files [first, last] of `shards` files that hold rows of slice
/// `slice` of `slices` of dim 0 (rows [slice n/slices, (slice+1) n/slices)
/// of n, file r holding [r n/shards, (r+1) n/shards)).
std::pair<int, int> shardsOfSlice(int shards, int slice, int slices);

/// Appends to `out` slice `slice` of `slices` of every expert-sharded
/// tensor. `byShard` holds the tensors of the shard files `first`,
/// `first`+1, ... of `shards` (shardsOfSlice; laid out as
/// checkTensorLayout checks), in shard `first`'s order. Fails (naming
/// `dir`) when a tensor's rows do not split into `slices` equal parts.
/// Releases each file's data once copied.
void sliceShards(const std::string &dir,
                 const std::vector<std::vector<HostTensor> *> &byShard,
                 int first, int shards, int slice, int slices,
                 std::vector<HostTensor> &out);

} // namespace moe::rt::checkpoint

#endif // MOE_RUNTIME_CHECKPOINT_SHARDS_H
