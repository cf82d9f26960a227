//===- StepPaddingTest.cpp - The step ABI's padding ops -------------------===//
//
// Attention with source lengths and the MoE layer's drop_padding, as the
// compiled code calls them: lengths are checked on the host before any
// kernel runs, and a sequence needs at least one valid position.
//
//===----------------------------------------------------------------------===//

#include "runtime/Backend.h"
#include "runtime/step/Step.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

using namespace moe::rt;

namespace {

/// The message of the std::runtime_error `call` throws ("" if none).
template <typename Call> std::string errorOf(Call call) {
  try {
    call();
  } catch (const std::runtime_error &e) {
    return e.what();
  }
  return "";
}

struct Fixture {
  std::unique_ptr<Backend> backend = createCpuBackend(1);
  std::unique_ptr<step::Context> ctx =
      std::make_unique<step::Context>(backend.get());
  Fixture() { ctx->beginCall(); }
};

} // namespace

TEST(StepPadding, DropPaddingChecksLengths) {
  Fixture f;
  const int64_t batch = 2, time = 3, k = 1;
  std::vector<int32_t> expert(batch * time, 1), rowPtr(batch * time + 1),
      kept(batch * time);
  std::vector<float> gate(batch * time, 1.0f), keptGate(batch * time);
  auto run = [&](std::vector<int32_t> lengths) {
    return errorOf([&] {
      step::dropPadding(f.ctx.get(), expert.data(), gate.data(), lengths.data(),
                        rowPtr.data(), kept.data(), keptGate.data(), batch,
                        time, k);
    });
  };
  EXPECT_EQ(run({3, 1}), "");
  EXPECT_EQ(rowPtr, (std::vector<int32_t>{0, 1, 2, 3, 4, 4, 4}));
  EXPECT_EQ(run({3, 0}),
            "drop_padding: length 0 of sequence 1 is outside [1, 3]: every "
            "sequence needs at least one position and at most the padded "
            "length");
  EXPECT_EQ(run({4, 1}),
            "drop_padding: length 4 of sequence 0 is outside [1, 3]: every "
            "sequence needs at least one position and at most the padded "
            "length");
}

TEST(StepPadding, AttentionChecksLengths) {
  Fixture f;
  const int64_t B = 2, Sx = 3, Sy = 2, d = 2, E = 2;
  std::vector<float> x(B * Sx * d, 0.5f), y(B * Sy * d, 0.25f), U(d * E, 0.1f),
      W(d * E, 0.2f), V(E, 1.0f);
  int64_t saved = f.backend->attentionWorkspaceSize(B, Sx, Sy, d, d, E) * 4;
  // The saved state follows the context at the plan's 64-byte alignment.
  std::vector<float> context(64 + saved / 4);
  auto run = [&](std::vector<int32_t> lengths) {
    return errorOf([&] {
      step::attention(f.ctx.get(), x.data(), y.data(), U.data(), W.data(),
                      V.data(), lengths.data(), context.data(), B, Sx, Sy, d, d,
                      E, saved);
    });
  };
  EXPECT_EQ(run({1, 3}), "");
  EXPECT_EQ(run({0, 3}),
            "attention: length 0 of sequence 0 is outside [1, 3]: every "
            "sequence needs at least one position and at most the padded "
            "length");
  EXPECT_NE(run({1, -1}), "");
}
