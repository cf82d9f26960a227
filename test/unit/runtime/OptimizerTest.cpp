//===- OptimizerTest.cpp - Adam with bias correction and weight decay -----===//

#include "runtime/Optimizer.h"
#include "runtime/Backend.h"
#include "runtime/cpu/kernels/OptimizerKernels.h"

#include "runtime/TestUtil.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

using namespace moe;
using moe::test::expectAllClose;
using moe::test::randomVector;

namespace {

/// Adam written from the paper's Algorithm 1 plus decoupled decay, in
/// double, one element at a time.
struct ReferenceAdam {
  std::vector<double> p, m, v;
  void step(const std::vector<float> &g, double lr, int64_t t,
            const rt::AdamConfig &c) {
    for (size_t i = 0; i < p.size(); ++i) {
      m[i] = c.beta1 * m[i] + (1 - c.beta1) * g[i];
      v[i] = c.beta2 * v[i] + (1 - c.beta2) * double(g[i]) * g[i];
      double mhat = m[i] / (1 - std::pow(double(c.beta1), double(t)));
      double vhat = v[i] / (1 - std::pow(double(c.beta2), double(t)));
      p[i] -= lr * (mhat / (std::sqrt(vhat) + c.eps) + c.weightDecay * p[i]);
    }
  }
};

/// Backend::adamUpdate with the learning rate and the step counter in
/// backend memory (host memory on the CPU backend), as a compiled step
/// keeps them.
void backendAdam(rt::Backend &be, int64_t n, float *p, const float *g, float *m,
                 float *v, float lr, int64_t step, const rt::AdamConfig &c) {
  be.adamUpdate(n, p, g, m, v, &lr, &step, c.beta1, c.beta2, c.eps,
                c.weightDecay);
}

} // namespace

TEST(Adam, MatchesReferenceOverSeveralSteps) {
  auto be = rt::createCpuBackend();
  for (float wd : {0.0f, 0.01f}) {
    for (int64_t n : {int64_t(1), int64_t(37), int64_t(100003)}) {
      rt::AdamConfig config;
      config.weightDecay = wd;
      auto p = randomVector(n, 1);
      std::vector<float> m(n, 0.0f), v(n, 0.0f);
      ReferenceAdam ref{std::vector<double>(p.begin(), p.end()),
                        std::vector<double>(n, 0.0),
                        std::vector<double>(n, 0.0)};
      rt::LrSchedule schedule{0.01f, 2, 2};
      for (int64_t step = 1; step <= 6; ++step) {
        auto g = randomVector(n, 100 + step);
        float lr = schedule.at(step);
        backendAdam(*be, n, p.data(), g.data(), m.data(), v.data(), lr, step,
                    config);
        ref.step(g, lr, step, config);
      }
      expectAllClose(p, ref.p, 1e-5, 1e-6, "param");
      expectAllClose(m, ref.m, 1e-5, 1e-7, "m");
      expectAllClose(v, ref.v, 1e-5, 1e-8, "v");
    }
  }
}

// With bias correction the first step moves every parameter by about lr in
// the direction opposite to its gradient, whatever the gradient's scale.
TEST(Adam, FirstStepIsLrTimesSign) {
  auto be = rt::createCpuBackend();
  std::vector<float> p(4, 1.0f), g = {1e-3f, -5.0f, 200.0f, -0.1f};
  std::vector<float> m(4, 0.0f), v(4, 0.0f);
  backendAdam(*be, 4, p.data(), g.data(), m.data(), v.data(), 0.1f, 1,
              rt::AdamConfig{});
  for (int i = 0; i < 4; ++i)
    EXPECT_NEAR(p[i], 1.0f - 0.1f * (g[i] > 0 ? 1 : -1), 1e-4) << i;
}

TEST(Adam, WeightDecayShrinksWithZeroGradient) {
  auto be = rt::createCpuBackend();
  rt::AdamConfig config;
  config.weightDecay = 0.5f;
  std::vector<float> p = {2.0f, -4.0f}, g(2, 0.0f), m(2, 0.0f), v(2, 0.0f);
  backendAdam(*be, 2, p.data(), g.data(), m.data(), v.data(), 0.1f, 3, config);
  EXPECT_FLOAT_EQ(p[0], 2.0f * (1 - 0.05f));
  EXPECT_FLOAT_EQ(p[1], -4.0f * (1 - 0.05f));
}

TEST(Adam, DeterministicAcrossThreadCounts) {
  const int64_t n = 70001;
  auto g = randomVector(n, 3);
  auto run = [&](int threads) {
    int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    auto p = randomVector(n, 4);
    std::vector<float> m(n, 0.1f), v(n, 0.2f);
    rt::cpu::adamUpdate<float>(n, p.data(), g.data(), m.data(), v.data(), 1e-3f,
                               7, rt::AdamConfig{});
    omp_set_num_threads(saved);
    return p;
  };
  EXPECT_EQ(run(1), run(2));
  EXPECT_EQ(run(2), run(2));
}

TEST(Adam, RejectsBadArguments) {
  auto be = rt::createCpuBackend();
  std::vector<float> p(2), g(2), m(2), v(2);
  EXPECT_THROW(backendAdam(*be, 2, p.data(), g.data(), m.data(), v.data(), 0.1f,
                           0, rt::AdamConfig{}),
               std::invalid_argument);
  rt::AdamConfig bad;
  bad.beta2 = 1.0f;
  EXPECT_THROW(
      backendAdam(*be, 2, p.data(), g.data(), m.data(), v.data(), 0.1f, 1, bad),
      std::invalid_argument);
}

// The backend reads lr[0] and step[0] from memory at the call: the same bits
// as the template given those values, and other values in memory give
// another update (the step through the bias corrections, lr directly).
TEST(Adam, BackendReadsLrAndStepFromMemory) {
  auto be = rt::createCpuBackend();
  const int64_t n = 301;
  rt::AdamConfig config;
  config.weightDecay = 0.01f;
  auto g = randomVector(n, 5);
  auto p0 = randomVector(n, 6);
  auto m0 = randomVector(n, 7, -0.1, 0.1), v0 = randomVector(n, 8, 0.0, 0.1);
  auto run = [&](bool backend, float lr, int64_t step) {
    std::vector<float> p = p0, m = m0, v = v0;
    if (backend) {
      float *lrMem = static_cast<float *>(be->alloc(sizeof(float)));
      int64_t *stepMem = static_cast<int64_t *>(be->alloc(sizeof(int64_t)));
      be->copyFromHost(lrMem, &lr, sizeof(float));
      be->copyFromHost(stepMem, &step, sizeof(int64_t));
      be->adamUpdate(n, p.data(), g.data(), m.data(), v.data(), lrMem, stepMem,
                     config.beta1, config.beta2, config.eps,
                     config.weightDecay);
      be->release(lrMem);
      be->release(stepMem);
    } else {
      rt::cpu::adamUpdate<float>(n, p.data(), g.data(), m.data(), v.data(), lr,
                                 step, config);
    }
    p.insert(p.end(), m.begin(), m.end());
    p.insert(p.end(), v.begin(), v.end());
    return p;
  };
  for (int64_t step : {int64_t(1), int64_t(2), int64_t(1000)}) {
    SCOPED_TRACE(step);
    EXPECT_EQ(run(true, 1e-3f, step), run(false, 1e-3f, step));
  }
  EXPECT_NE(run(true, 1e-3f, 1), run(true, 1e-3f, 2));
  EXPECT_NE(run(true, 1e-3f, 3), run(true, 2e-3f, 3));
}
