//===- GradientCheck.cpp - Compiled gradients vs finite differences -------===//

#include "tools/moe-run/GradientCheck.h"

#include "tools/moe-run/Package.h"
#include "tools/moe-run/Session.h"

#include "runtime/Philox.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <stdexcept>

namespace moe::run {

namespace {

/// philoxUniformAt scaled to [0, bound).
int32_t drawBelow(uint64_t seed, uint64_t stream, int64_t i, int64_t bound) {
  return static_cast<int32_t>(
      static_cast<int64_t>(rt::philoxUniformAt(seed, stream, i) * bound) %
      bound);
}

/// Random values for every input of `step`: lengths in [1, maxLength], ids
/// in [0, idBound), and in each row of an input that allows padding (loss
/// targets) a random tail of -1s, as a batch of sentences has. `salt`
/// varies the ids only, not the lengths or the padding.
std::map<std::string, std::vector<int32_t>>
drawInputs(const FunctionInfo &step, uint64_t seed, uint64_t salt) {
  std::map<std::string, std::vector<int32_t>> data;
  for (const ArgumentInfo &arg : step.arguments) {
    if (arg.role != ArgumentRole::Input)
      continue;
    auto &values = data[arg.name];
    values.resize(arg.elements());
    if (arg.maxLength > 0) {
      for (int64_t i = 0; i < arg.elements(); ++i)
        values[i] = 1 + drawBelow(seed, 0x6c656e, i, arg.maxLength);
      continue;
    }
    if (arg.idBound < 1)
      throw std::runtime_error("input '" + arg.name +
                               "' has no id range to draw from");
    for (int64_t i = 0; i < arg.elements(); ++i)
      values[i] = drawBelow(seed, 0x6964 + salt, i, arg.idBound);
    if (!arg.allowsPadding || arg.shape.size() < 2)
      continue;
    int64_t rows = arg.shape[0], cols = arg.elements() / rows;
    for (int64_t r = 0; r < rows; ++r)
      std::fill(values.begin() + r * cols + 1 +
                    drawBelow(seed, 0x706164, r, cols),
                values.begin() + (r + 1) * cols, -1);
  }
  return data;
}

/// For models with lengths inputs: the model function's loss must not move
/// when the ids at padded positions change (masking), and must move when
/// nothing is padding (the lengths are used). Throws otherwise.
void checkPadding(Session &session, const FunctionInfo &step,
                  const std::map<std::string, std::vector<int32_t>> &data,
                  uint64_t seed, float loss) {
  std::map<std::string, std::vector<int32_t>> other = data, full = data;
  std::map<std::string, std::vector<int32_t>> redrawn =
      drawInputs(step, seed, /*salt=*/0x100);
  bool any = false, padded = false;
  for (const ArgumentInfo &lengths : step.arguments) {
    if (lengths.maxLength == 0)
      continue;
    any = true;
    const std::vector<int32_t> &len = data.at(lengths.name);
    for (int32_t l : len)
      padded |= l < lengths.maxLength;
    std::fill(full[lengths.name].begin(), full[lengths.name].end(),
              static_cast<int32_t>(lengths.maxLength));
    for (const std::string &name : lengths.pads) {
      std::vector<int32_t> &ids = other.at(name);
      int64_t batch = static_cast<int64_t>(len.size());
      int64_t perRow = static_cast<int64_t>(ids.size()) / batch;
      int64_t width = perRow / lengths.maxLength;
      for (int64_t b = 0; b < batch; ++b)
        for (int64_t q = len[b] * width; q < perRow; ++q)
          ids[b * perRow + q] = redrawn.at(name)[b * perRow + q];
    }
  }
  if (!any)
    return;
  auto lossOf = [&](const std::map<std::string, std::vector<int32_t>> &d) {
    std::map<std::string, const int32_t *> in;
    for (auto &[name, values] : d)
      in[name] = values.data();
    return session.call("model", in, 1, true, false).loss;
  };
  float otherLoss = lossOf(other), fullLoss = lossOf(full);
  std::printf("gradcheck: padding: loss %.6f with other ids at the padded "
              "positions, %.6f with every position valid\n",
              otherLoss, fullLoss);
  if (otherLoss != loss)
    throw std::runtime_error("the ids at padded positions change the loss "
                             "(padding is not masked)");
  // (Drawn lengths that are all full pad nothing: no change to expect.)
  if (padded && fullLoss == loss)
    throw std::runtime_error("the loss does not depend on the lengths");
}

} // namespace

bool checkGradients(Session &session, const Package &package,
                    const GradcheckOptions &options, uint64_t seed,
                    bool verbose) {
  if (package.hasAdam())
    throw std::runtime_error(
        "gradcheck needs the gradients: compile the model with "
        "--moe-train-pipeline=\"optimizer=none\"");
  if (!package.function("model"))
    throw std::runtime_error("package has no model function to perturb");
  const FunctionInfo &step = *package.function("train_step");
  // A perturbed element of a shard would be perturbed on every rank at once
  // (each rank holds another slice), which no finite difference measures;
  // on one rank a shard is the whole tensor, so elements() below is what
  // each buffer holds.
  if (session.ranks() > 1)
    for (const std::string &name : session.parameterNames())
      if (session.bufferInfo(name).sharded)
        throw std::runtime_error("gradcheck of the expert-sharded " + name +
                                 " runs on one rank (not under mpirun)");
  session.initialize(seed);

  // Random inputs in each one's range: the gradient does not need text.
  std::map<std::string, std::vector<int32_t>> data = drawInputs(step, seed, 0);
  std::map<std::string, const int32_t *> inputs;
  for (auto &[name, values] : data)
    inputs[name] = values.data();

  CallResult base = session.call("train_step", inputs, 1, true, false);
  CallResult replay = session.call("model", inputs, 1, true, false);
  std::printf("gradcheck: loss %.6f (train step), %.6f (model function)\n",
              base.loss, replay.loss);
  if (std::fabs(base.loss - replay.loss) > 1e-5f * std::fabs(base.loss))
    throw std::runtime_error("the model function and the training step "
                             "disagree on the loss: different noise or "
                             "ops");
  checkPadding(session, step, data, seed, replay.loss);

  rt::Backend &backend = session.backend();
  std::vector<std::string> names = session.parameterNames();
  std::map<std::string, std::vector<float>> grads;
  for (const std::string &name : names) {
    int index = step.resultIndex(ResultKind::Grad, name);
    if (index < 0) {
      grads[name].assign(session.bufferInfo(name).elements(), 0.0f);
      continue;
    }
    std::vector<float> g(session.bufferInfo(name).elements());
    backend.copyToHost(g.data(), session.resultPointer("train_step", index),
                       g.size() * sizeof(float));
    grads[name] = std::move(g);
  }

  names.erase(std::remove_if(names.begin(), names.end(),
                             [&](const std::string &name) {
                               return session.bufferInfo(name).elements() == 0;
                             }),
              names.end());
  if (names.empty())
    throw std::runtime_error("the package has no parameters to check");
  int64_t failures = 0;
  double worst = 0;
  for (int64_t s = 0; s < options.samples; ++s) {
    const std::string &name = names[s % names.size()];
    int64_t count = session.bufferInfo(name).elements();
    int64_t index =
        static_cast<int64_t>(rt::philoxUniformAt(seed, 0x6663 + s, 0) * count) %
        count;
    float *param = static_cast<float *>(session.buffer(name)) + index;
    float value;
    backend.copyToHost(&value, param, sizeof(value));
    auto lossAt = [&](float v) {
      backend.copyFromHost(param, &v, sizeof(v));
      return static_cast<double>(
          session.call("model", inputs, 1, true, false).loss);
    };
    float h = static_cast<float>(options.epsilon);
    double plus = lossAt(value + h), minus = lossAt(value - h);
    backend.copyFromHost(param, &value, sizeof(value));
    double numeric = (plus - minus) / (2.0 * h);
    double analytic = grads[name][index];
    double error = std::fabs(numeric - analytic) /
                   std::max({std::fabs(numeric), std::fabs(analytic), 1e-2});
    worst = std::max(worst, error);
    bool ok = error <= options.tolerance;
    failures += !ok;
    if (verbose || !ok)
      std::printf("  %-32s [%lld] analytic %+.6e numeric %+.6e rel %.3g%s\n",
                  name.c_str(), static_cast<long long>(index), analytic,
                  numeric, error, ok ? "" : "  MISMATCH");
  }
  double fraction = static_cast<double>(failures) / options.samples;
  std::printf("gradcheck: %lld of %lld samples within %.3g (worst relative "
              "error %.3g)\n",
              static_cast<long long>(options.samples - failures),
              static_cast<long long>(options.samples), options.tolerance,
              worst);
  return fraction <= options.maxFailFraction;
}

} // namespace moe::run
