//===- Shards.cpp - Expert shard files of a checkpoint --------------------===//

#include "runtime/checkpoint/Shards.h"

#include "runtime/checkpoint/Checkpoint.h"
#include "runtime/checkpoint/CheckpointManifest.h"
#include "runtime/checkpoint/DurableFile.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <set>

namespace moe::rt {

namespace checkpoint {

static constexpr const char *kShardPrefix = "tensors-expert-";
static constexpr const char *kShardOf = "-of-";
/// More shards than any run has ranks: a bound for parsing names.
static constexpr int kMaxShards = 1 << 20;

/// A decimal number in [0, kMaxShards] without leading zeros (one spelling
/// per shard, so two names never mean the same shard), or -1.
static int parseShardNumber(const std::string &digits) {
  if (digits.empty() || digits.size() > 7 ||
      (digits.size() > 1 && digits[0] == '0'))
    return -1;
  int value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9')
      return -1;
    value = value * 10 + (c - '0');
  }
  return value <= kMaxShards ? value : -1;
}

namespace {
/// Shard `shard` of `shards`; shard < 0 for a file that is not a shard.
struct ShardName {
  int shard = -1;
  int shards = 0;
};
} // namespace

/// Parses tensors-expert-<r>-of-<R>.safetensors. A name with the shard
/// prefix that does not parse is an error rather than a plain file: its
/// tensors would otherwise load unsharded.
static ShardName parseShardName(const std::string &dir,
                                const std::string &name) {
  const std::string prefix = kShardPrefix, suffix = kSafetensorsSuffix;
  if (name.compare(0, prefix.size(), prefix) != 0)
    return {};
  ShardName parsed;
  if (endsWith(name, suffix) && name.size() > prefix.size() + suffix.size()) {
    std::string middle =
        name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
    size_t of = middle.find(kShardOf);
    if (of != std::string::npos) {
      parsed.shard = parseShardNumber(middle.substr(0, of));
      parsed.shards = parseShardNumber(
          middle.substr(of + std::char_traits<char>::length(kShardOf)));
    }
  }
  if (parsed.shard < 0 || parsed.shards < 1 || parsed.shard >= parsed.shards)
    fail(dir, name + ": not a valid expert shard name (expected " +
                  kShardPrefix + "<r>-of-<R>" + kSafetensorsSuffix +
                  " with r < R)");
  return parsed;
}

std::vector<size_t> findShardFiles(const std::string &dir,
                                   const std::vector<std::string> &names) {
  std::vector<size_t> byShard;
  size_t first = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    ShardName s = parseShardName(dir, names[i]);
    if (s.shard < 0)
      continue;
    if (byShard.empty()) {
      byShard.assign(static_cast<size_t>(s.shards), names.size());
      first = i;
    } else if (static_cast<size_t>(s.shards) != byShard.size()) {
      fail(dir, names[i] + " and " + names[first] +
                    " are expert shards of different saves (" +
                    std::to_string(s.shards) + " and " +
                    std::to_string(byShard.size()) + " shards)");
    }
    // Names are unique and spelt one way, so each shard appears once.
    byShard[static_cast<size_t>(s.shard)] = i;
  }
  for (size_t r = 0; r < byShard.size(); ++r)
    if (byShard[r] == names.size())
      fail(dir, "missing expert shard " + std::to_string(r) + " of " +
                    std::to_string(byShard.size()) + " (" +
                    expertShardFileName(static_cast<int>(r),
                                        static_cast<int>(byShard.size())) +
                    ")");
  return byShard;
}

static std::string shapeText(const std::vector<int64_t> &shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

void checkTensorLayout(
    const std::string &dir, const std::vector<std::string> &names,
    const std::vector<const std::vector<HostTensor> *> &files,
    const std::vector<size_t> &shards) {
  std::vector<bool> isShard(names.size(), false);
  for (size_t i : shards)
    isShard[i] = true;
  std::map<std::string, size_t> owner; // tensor name -> file index
  for (size_t i = 0; i < names.size(); ++i) {
    if (isShard[i])
      continue;
    for (const HostTensor &t : *files[i]) {
      auto [it, inserted] = owner.emplace(t.name, i);
      if (!inserted)
        fail(dir, names[i] + ": tensor " + t.name + " also appears in " +
                      names[it->second]);
    }
  }
  if (shards.empty())
    return;
  const std::string &firstName = names[shards[0]];
  std::map<std::string, const HostTensor *> reference;
  for (const HostTensor &t : *files[shards[0]]) {
    auto it = owner.find(t.name);
    if (it != owner.end())
      fail(dir, firstName + ": tensor " + t.name + " also appears in " +
                    names[it->second]);
    if (t.shape.empty())
      fail(dir, firstName + ": tensor " + t.name +
                    " is 0-d and cannot be an expert shard");
    if (t.shape[0] > std::numeric_limits<int64_t>::max() /
                         static_cast<int64_t>(shards.size()))
      fail(dir, firstName + ": tensor " + t.name +
                    ": dim 0 overflows when the shards are concatenated");
    reference.emplace(t.name, &t);
  }
  for (size_t r = 1; r < shards.size(); ++r) {
    const std::string &name = names[shards[r]];
    std::set<std::string> seen;
    for (const HostTensor &t : *files[shards[r]]) {
      auto it = reference.find(t.name);
      if (it == reference.end())
        fail(dir, name + ": tensor " + t.name + " is not in " + firstName);
      const HostTensor &ref = *it->second;
      if (t.dtype != ref.dtype)
        fail(dir, name + ": tensor " + t.name + " is " + t.dtype + " but " +
                      ref.dtype + " in " + firstName);
      // Equal slices: the shards are [r n/R, (r+1) n/R) of one tensor.
      if (t.shape != ref.shape)
        fail(dir, name + ": tensor " + t.name + " has shape " +
                      shapeText(t.shape) + " but " + shapeText(ref.shape) +
                      " in " + firstName);
      seen.insert(t.name);
    }
    for (const auto &[tensor, ref] : reference)
      if (!seen.count(tensor))
        fail(dir,
             name + ": no tensor " + tensor + " (it is in " + firstName + ")");
  }
}

std::pair<int, int> shardsOfSlice(int shards, int slice, int slices) {
  // File r overlaps the slice when r/shards < (slice+1)/slices and
  // slice/slices < (r+1)/shards.
  int first = static_cast<int>(int64_t(slice) * shards / slices);
  int last = static_cast<int>((int64_t(slice + 1) * shards - 1) / slices);
  return {first, std::min(last, shards - 1)};
}

void sliceShards(const std::string &dir,
                 const std::vector<std::vector<HostTensor> *> &byShard,
                 int first, int shards, int slice, int slices,
                 std::vector<HostTensor> &out) {
  std::vector<std::map<std::string, HostTensor *>> byName(byShard.size());
  for (size_t j = 0; j < byShard.size(); ++j)
    for (HostTensor &t : *byShard[j])
      byName[j].emplace(t.name, &t);
  for (const HostTensor &reference : *byShard[0]) {
    const int64_t rowsPerShard = reference.shape[0];
    if (rowsPerShard > std::numeric_limits<int64_t>::max() / shards)
      fail(dir, "tensor " + reference.name +
                    ": dim 0 overflows when the shards are concatenated");
    const int64_t rows = rowsPerShard * shards;
    if (rows % slices != 0)
      fail(dir, "tensor " + reference.name + ": its " + std::to_string(rows) +
                    " rows do not split into " + std::to_string(slices) +
                    " equal slices");
    const int64_t begin = rows / slices * slice, end = begin + rows / slices;
    const size_t rowBytes =
        rowsPerShard ? reference.data.size() / rowsPerShard : 0;
    HostTensor part{reference.name, reference.dtype, reference.shape, {}};
    part.shape[0] = end - begin;
    part.data.reserve((end - begin) * rowBytes);
    // Dim 0 is outermost: each file's rows are one contiguous block.
    for (size_t j = 0; j < byShard.size(); ++j) {
      HostTensor &file = *byName[j].at(reference.name);
      const int64_t fileBegin = (first + int64_t(j)) * rowsPerShard;
      const int64_t from = std::max(begin, fileBegin);
      const int64_t to = std::min(end, fileBegin + rowsPerShard);
      if (from < to)
        part.data.insert(part.data.end(),
                         file.data.begin() + (from - fileBegin) * rowBytes,
                         file.data.begin() + (to - fileBegin) * rowBytes);
    }
    out.push_back(std::move(part));
  }
  // The checkpoint holds each row once.
  for (std::vector<HostTensor> *file : byShard)
    for (HostTensor &t : *file)
      std::vector<uint8_t>().swap(t.data);
}

} // namespace checkpoint

std::string expertShardFileName(int shard, int shards) {
  return std::string(checkpoint::kShardPrefix) + std::to_string(shard) +
         checkpoint::kShardOf + std::to_string(shards) +
         checkpoint::kSafetensorsSuffix;
}

} // namespace moe::rt
