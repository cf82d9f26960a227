//===- Context.cpp - The state a compiled function runs in ----------------===//
//
// Scratch memory, RNG counters, host scalars and the memory ops of the step
// ABI (runtime/step/Step.h).
//
//===----------------------------------------------------------------------===//

#include "runtime/step/OpSupport.h"

#include <algorithm>
#include <stdexcept>

namespace moe::rt::step {

void fail(const char *op, const std::string &message) {
  throw std::runtime_error(std::string(op) + ": " + message);
}

void checkLengths(Context *ctx, const char *op, const int32_t *lengths,
                  int64_t batch, int64_t positions) {
  std::vector<int32_t> host = toHost(ctx, lengths, batch);
  for (int64_t b = 0; b < batch; ++b)
    if (host[b] < 1 || host[b] > positions)
      fail(op, "length " + std::to_string(host[b]) + " of sequence " +
                   std::to_string(b) + " is outside [1, " +
                   std::to_string(positions) +
                   "]: every sequence needs at least one position and "
                   "at most the padded length");
}

void Stats::clear() {
  crossEntropySum = 0;
  crossEntropyTokens = 0;
  expertTokens.clear();
}

Scratch::~Scratch() {
  for (auto &[ptr, bytes] : blocks)
    backend->release(ptr);
}

void *Scratch::get(size_t bytes) {
  if (cursor == blocks.size())
    blocks.emplace_back(nullptr, 0);
  auto &[ptr, size] = blocks[cursor++];
  if (size < bytes || !ptr) {
    if (ptr)
      backend->release(ptr);
    // Grow geometrically: batch shapes are fixed, so this settles at once.
    size = std::max(bytes, size + size / 2);
    ptr = backend->alloc(size);
  }
  return ptr;
}

Pool::~Pool() {
  for (Chunk &chunk : chunks)
    backend->release(chunk.ptr);
}

void *Pool::get(size_t bytes) {
  if (bytes == 0)
    return nullptr;
  // Aligned like the arena's buffers, for vector loads.
  bytes = (bytes + 63) / 64 * 64;
  if (chunks.empty() || chunks.back().size - chunks.back().used < bytes) {
    // Earlier pointers stay valid: a new chunk, never a reallocation.
    size_t size = std::max(bytes, chunks.empty() ? 0 : chunks.back().size);
    chunks.push_back({backend->alloc(size), size, 0});
  }
  Chunk &chunk = chunks.back();
  void *ptr = static_cast<char *>(chunk.ptr) + chunk.used;
  chunk.used += bytes;
  return ptr;
}

void Pool::reset() {
  if (chunks.size() > 1) {
    size_t total = 0;
    for (Chunk &chunk : chunks) {
      total += chunk.size;
      backend->release(chunk.ptr);
    }
    chunks.clear();
    chunks.push_back({backend->alloc(total), total, 0});
    return;
  }
  for (Chunk &chunk : chunks)
    chunk.used = 0;
}

Context::Context(Backend *backend)
    : backend(backend), scratch(backend), pool(backend) {}

Context::~Context() {
  if (softmaxCache.dLogits)
    backend->release(softmaxCache.dLogits);
}

uint64_t Context::counterFor(int64_t stream) const {
  // 48 bits of step, 16 of stream: streams are numbered per model (a few
  // dozen), steps never reach 2^48.
  return (static_cast<uint64_t>(step) << 16) |
         (static_cast<uint64_t>(stream) & 0xffff);
}

void Context::beginCall() {
  ++call;
  softmaxCache.valid = false;
  pool.reset();
  stats.clear();
  routes.clear();
  results.assign(results.size(), nullptr);
}

void result(Context *ctx, int64_t index, const void *ptr) {
  if (index < 0 || static_cast<size_t>(index) >= ctx->results.size())
    fail("result", "index " + std::to_string(index) + " out of range (" +
                       std::to_string(ctx->results.size()) + " results)");
  ctx->results[index] = ptr;
}

void fill(Context *ctx, float *out, int64_t count, float value) {
  ctx->backend->fill(out, value, count);
}

} // namespace moe::rt::step
