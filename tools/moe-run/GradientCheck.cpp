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

  // Random ids in each input's range: the gradient does not need text.
  std::map<std::string, std::vector<int32_t>> data;
  std::map<std::string, const int32_t *> inputs;
  for (const ArgumentInfo &arg : step.arguments) {
    if (arg.role != ArgumentRole::Input)
      continue;
    if (arg.idBound < 1)
      throw std::runtime_error("input '" + arg.name +
                               "' has no id range to draw from");
    auto &values = data[arg.name];
    values.resize(arg.elements());
    for (int64_t i = 0; i < arg.elements(); ++i)
      values[i] = static_cast<int32_t>(rt::philoxUniformAt(seed, 0x6964, i) *
                                       arg.idBound) %
                  static_cast<int32_t>(arg.idBound);
    inputs[arg.name] = values.data();
  }

  CallResult base = session.call("train_step", inputs, 1, true, false);
  CallResult replay = session.call("model", inputs, 1, true, false);
  std::printf("gradcheck: loss %.6f (train step), %.6f (model function)\n",
              base.loss, replay.loss);
  if (std::fabs(base.loss - replay.loss) > 1e-5f * std::fabs(base.loss))
    throw std::runtime_error("the model function and the training step "
                             "disagree on the loss: different noise or "
                             "ops");

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
