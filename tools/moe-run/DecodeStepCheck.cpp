//===- DecodeStepCheck.cpp - Incremental decoding vs the whole window ----===//
//
// Runs encode and decode_step on their own contexts: their state (encoder
// outputs, LSTM states) lives in buffers of this check, not in the
// session's parameter and optimizer buffers, which checkpoints hold.
//
//===----------------------------------------------------------------------===//

#include "tools/moe-run/DecodeStepCheck.h"

#include "tools/moe-run/Package.h"
#include "tools/moe-run/Session.h"

#include "runtime/Philox.h"
#include "runtime/step/Step.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace moe::run {

namespace {

/// Backend buffers by argument name, released with the check.
class Buffers {
public:
  explicit Buffers(rt::Backend &backend) : backend(backend) {}
  ~Buffers() {
    for (auto &[name, ptr] : byName)
      backend.release(ptr);
    for (void *ptr : arenas)
      backend.release(ptr);
  }
  void *get(const ArgumentInfo &arg) {
    auto it = byName.find(arg.name);
    if (it != byName.end())
      return it->second;
    void *ptr = backend.alloc(arg.bytes());
    std::vector<uint8_t> zeros(arg.bytes(), 0);
    backend.copyFromHost(ptr, zeros.data(), zeros.size());
    return byName[arg.name] = ptr;
  }
  char *arena(int64_t bytes) {
    arenas.push_back(backend.alloc(static_cast<size_t>(bytes)));
    return static_cast<char *>(arenas.back());
  }

private:
  rt::Backend &backend;
  std::map<std::string, void *> byName;
  std::vector<void *> arenas;
};

/// Calls `info` in inference mode: parameters from the session, inputs and
/// state from `buffers`. Returns the result pointers (in its arena).
std::vector<const void *>
callInference(Session &session, const FunctionInfo &info, Buffers &buffers) {
  rt::step::Context ctx(&session.backend());
  ctx.arena = buffers.arena(info.arenaBytes);
  ctx.results.assign(info.results.size(), nullptr);
  for (const ArgumentInfo &arg : info.arguments)
    ctx.arguments.push_back(arg.role == ArgumentRole::Param
                                ? session.buffer(arg.name)
                                : buffers.get(arg));
  ctx.beginCall();
  ctx.seed = session.seed();
  ctx.training = false;
  info.entry(&ctx);
  session.backend().synchronize();
  for (size_t i = 0; i < ctx.results.size(); ++i)
    if (!ctx.results[i])
      throw std::runtime_error(info.symbol + " did not set result #" +
                               std::to_string(i));
  return ctx.results;
}

/// Copies every state result of `info` into the state argument (buffer) of
/// the same name.
void keepState(Session &session, const FunctionInfo &info,
               const std::vector<const void *> &results, Buffers &buffers,
               const FunctionInfo &reader) {
  for (size_t i = 0; i < info.results.size(); ++i) {
    if (info.results[i].kind != ResultKind::State)
      continue;
    for (const ArgumentInfo &arg : reader.arguments)
      if (arg.role == ArgumentRole::State && arg.name == info.results[i].name)
        session.backend().copyDevice(buffers.get(arg), results[i], arg.bytes());
  }
}

} // namespace

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

  // One position at a time.
  rt::Backend &backend = session.backend();
  Buffers buffers(backend);
  auto feed = [&](const FunctionInfo &info, int64_t position) {
    for (const ArgumentInfo &arg : info.arguments) {
      if (arg.role != ArgumentRole::Input)
        continue;
      const std::vector<int32_t> &values = data.at(arg.name);
      std::vector<int32_t> column;
      const int32_t *host = values.data();
      if (arg.name == "tokens" && &info == step) {
        for (int64_t b = 0; b < batch; ++b)
          column.push_back(values[b * time + position]);
        host = column.data();
      }
      backend.copyFromHost(buffers.get(arg), host, arg.bytes());
    }
  };
  if (encode) {
    feed(*encode, 0);
    keepState(session, *encode, callInference(session, *encode, buffers),
              buffers, *step);
  }
  int logitsIndex = step->resultIndex(ResultKind::Logits);
  if (logitsIndex < 0)
    throw std::runtime_error("decode_step returns no logits");
  double maxDiff = 0, maxLogit = 0;
  std::vector<float> logits(batch * vocab);
  double stepSeconds = 0;
  for (int64_t t = 0; t < time; ++t) {
    feed(*step, t);
    auto start = std::chrono::steady_clock::now();
    std::vector<const void *> results = callInference(session, *step, buffers);
    stepSeconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    backend.copyToHost(logits.data(), results[logitsIndex],
                       logits.size() * sizeof(float));
    keepState(session, *step, results, buffers, *step);
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
