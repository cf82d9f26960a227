//===- DecodeStepCheck.cpp - Incremental decoding vs the whole window ----===//
//
// Runs encode and decode_step through the session: their state (encoder
// outputs, LSTM states) lives in its decoding state buffers, not in the
// parameter and optimizer buffers, which checkpoints hold.
//
//===----------------------------------------------------------------------===//

#include "tools/moe-run/DecodeStepCheck.h"

#include "tools/moe-run/Package.h"
#include "tools/moe-run/Session.h"

#include "runtime/Philox.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace moe::run {

bool checkDecodeStep(Session &session, const Package &package, uint64_t seed,
                     double tolerance) {
  const FunctionInfo *step = package.function("decode_step");
  if (!step)
    throw std::runtime_error("package " + package.directory() +
                             " has no decode_step function "
                             "(moe-add-decode-step)");
  std::string evalRole = package.evaluationFunction();
  const FunctionInfo &eval = *package.function(evalRole);
  const FunctionInfo *encode = package.function("encode");
  const ArgumentInfo *tokens = eval.input("tokens");
  if (!tokens || tokens->shape.size() != 2)
    throw std::runtime_error("the evaluation function has no [batch, time] "
                             "'tokens' input");
  int64_t batch = tokens->shape[0], time = tokens->shape[1];
  session.initialize(seed);

  // Random inputs: lengths in [1, max], ids in their range, no padding.
  std::map<std::string, std::vector<int32_t>> data;
  std::map<std::string, const int32_t *> inputs;
  uint64_t stream = 0x646563;
  for (const ArgumentInfo &arg : eval.arguments) {
    if (arg.role != ArgumentRole::Input)
      continue;
    std::vector<int32_t> &values = data[arg.name];
    values.resize(arg.elements());
    int64_t bound = arg.maxLength > 0 ? arg.maxLength : arg.idBound;
    if (bound < 1)
      throw std::runtime_error("input '" + arg.name + "' has no range");
    for (int64_t i = 0; i < arg.elements(); ++i)
      values[i] = (arg.maxLength > 0 ? 1 : 0) +
                  static_cast<int32_t>(
                      static_cast<int64_t>(
                          rt::philoxUniformAt(seed, stream, i) * bound) %
                      bound);
    ++stream;
    inputs[arg.name] = values.data();
  }

  // The whole window: the logits of every position.
  std::vector<int64_t> rows(batch * time);
  for (int64_t r = 0; r < batch * time; ++r)
    rows[r] = r;
  session.captureLogits(evalRole, rows);
  double wholeSeconds =
      session.call(evalRole, inputs, 1, /*training=*/false, false).seconds;
  const std::vector<float> whole = session.capturedLogits(evalRole);
  if (whole.empty())
    throw std::runtime_error("the evaluation function kept no logits");
  int64_t vocab = static_cast<int64_t>(whole.size()) / (batch * time);

  // One position at a time, from zero state (or what encode returns).
  session.resetDecodingState();
  if (encode)
    session.call("encode", inputs, 1, /*training=*/false, false);
  std::map<std::string, const int32_t *> stepInputs = inputs;
  std::vector<int32_t> column(batch);
  stepInputs["tokens"] = column.data();
  const std::vector<int32_t> &tokenData = data.at("tokens");
  double maxDiff = 0, maxLogit = 0;
  double stepSeconds = 0;
  for (int64_t t = 0; t < time; ++t) {
    for (int64_t b = 0; b < batch; ++b)
      column[b] = tokenData[b * time + t];
    auto start = std::chrono::steady_clock::now();
    std::vector<float> logits =
        session.callForLogits("decode_step", stepInputs);
    stepSeconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    if (static_cast<int64_t>(logits.size()) != batch * vocab)
      throw std::runtime_error(
          "decode_step returns " + std::to_string(logits.size()) +
          " logits, not batch x vocabulary " + std::to_string(batch * vocab));
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t v = 0; v < vocab; ++v) {
        double expected = whole[(b * time + t) * vocab + v];
        maxDiff =
            std::max(maxDiff, std::fabs(logits[b * vocab + v] - expected));
        maxLogit = std::max(maxLogit, std::fabs(expected));
      }
  }
  bool ok = maxDiff <= tolerance * std::max(maxLogit, 1.0);
  std::printf("decode_step: %lld positions x %lld sequences, vocabulary "
              "%lld: largest |logit difference| %.3g (largest |logit| "
              "%.3g, tolerance %.3g): %s\n",
              static_cast<long long>(time), static_cast<long long>(batch),
              static_cast<long long>(vocab), maxDiff, maxLogit, tolerance,
              ok ? "matches" : "MISMATCH");
  // What re-running the window for every position costs against stepping
  // (the first calls include warm-up; a rough guide, not a benchmark).
  std::printf("time: whole window %.3g ms per call (x %lld positions when "
              "re-run per position), decode_step %.3g ms per position\n",
              wholeSeconds * 1e3, static_cast<long long>(time),
              stepSeconds * 1e3 / std::max<int64_t>(time, 1));
  return ok;
}

} // namespace moe::run
