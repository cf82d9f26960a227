//===- OpSupport.h - Helpers shared by the step op files -------*- C++ -*-===//
//
// Internal to runtime/step: not part of the ABI the generated code sees.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_STEP_OPSUPPORT_H
#define MOE_RUNTIME_STEP_OPSUPPORT_H

#include "runtime/step/Step.h"

#include <string>
#include <vector>

namespace moe::rt::step {

/// Hands out scratch blocks for the duration of a scope and returns them
/// when it ends; scopes nest (an op's helper may open its own).
class ScratchScope {
public:
  explicit ScratchScope(Context *ctx)
      : ctx(ctx), start(ctx->scratch.mark()) {}
  ~ScratchScope() { ctx->scratch.release(start); }
  ScratchScope(const ScratchScope &) = delete;
  ScratchScope &operator=(const ScratchScope &) = delete;
  template <typename T> T *get(int64_t count) {
    return ctx->scratch.get<T>(count);
  }

private:
  Context *ctx;
  size_t start;
};

/// Copies `count` elements of backend memory to a host vector.
template <typename T>
std::vector<T> toHost(Context *ctx, const T *ptr, int64_t count) {
  std::vector<T> host(static_cast<size_t>(count));
  if (count > 0)
    ctx->backend->copyToHost(host.data(), ptr, sizeof(T) * host.size());
  return host;
}

/// Builds the dispatch plan of `assignments` token-major assignments,
/// records the per-expert counts when the context collects statistics and
/// the assignments (with `gate`, nullable) when it captures routes.
void buildPlan(Context *ctx, const int32_t *rowPtr, const int32_t *expert,
               const float *gate, int32_t *expertOffset, int32_t *position,
               int32_t *token, int64_t assignments, int64_t n, int64_t tokens);
/// buildPlan's recording, for a plan a kernel has already built.
void recordPlan(Context *ctx, const int32_t *rowPtr, const int32_t *expert,
                const float *gate, const int32_t *expertOffset,
                int64_t assignments, int64_t n, int64_t tokens);

/// The group offsets [groups + 1] of a hierarchical layer's primary plan,
/// on the host, checked to rise from 0 to at most `rows` (a mask over the
/// combined batch gives each rank a data-dependent share of rows).
std::vector<int32_t> groupOffsets(Context *ctx, const char *op,
                                  const int32_t *expertOffset, int64_t rows,
                                  int64_t groups);

/// Checks `batch` sequence lengths (backend memory) on the host: each in
/// [1, positions]. A sequence with no valid position has nothing to attend
/// to, so length 0 is refused like any value out of range.
void checkLengths(Context *ctx, const char *op, const int32_t *lengths,
                  int64_t batch, int64_t positions);

/// Throws std::runtime_error("<op>: <message>").
[[noreturn]] void fail(const char *op, const std::string &message);

} // namespace moe::rt::step

#endif // MOE_RUNTIME_STEP_OPSUPPORT_H
