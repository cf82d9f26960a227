//===- RouteCaptureTest.cpp - Routing captures of the dispatch plans ------===//
//
// Context::captureRoutes (what moe-run inspect reads) against a host
// recomputation of the routing, in double precision:
//  * off (the default), a call captures nothing;
//  * the fused noisy top-k router in inference: each token's k experts of
//    largest clean logit and their softmax gates;
//  * a threshold mask's plan: only the used slots, each token's experts
//    whose probability passes its threshold, gates renormalised over them;
//  * a hierarchical layer (top-k at both levels): the primary plan captures
//    (token, group, primary gate), the composed plan (token, expert, p * s)
//    whose experts lie in the token's groups, are the group's top k of the
//    secondary logits, and whose gates sum per group to the primary gate.
// Each runs on the CPU and, when a GPU is present, on CUDA, whose capture
// must equal the CPU's (the capture itself is host copies; the routing
// kernels differ).
//
//===----------------------------------------------------------------------===//

#include "runtime/Backend.h"
#include "runtime/step/Step.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

using namespace moe::rt;

namespace {

constexpr int64_t kTokens = 7, kWidth = 5;

double inputAt(int64_t t, int64_t i) { return std::sin(1.0 + t * 1.7 + i * 0.9); }
double weightAt(int64_t i, int64_t j, int64_t salt) {
  return std::cos(0.3 + i * 2.1 + j * 1.3 + salt * 0.7);
}

std::unique_ptr<Backend> makeBackend(const std::string &name) {
  return name == "cpu" ? createCpuBackend(1) : createCudaBackend(0);
}

/// A backend ("cpu", "cuda"), a step context on it in inference with
/// routing captures on or off, at the start of a call, and the buffers a
/// test allocates.
class Device {
public:
  Device(const std::string &name, bool capture)
      : backend(makeBackend(name)), ctx(backend.get()) {
    ctx.training = false;
    ctx.captureRoutes = capture;
    ctx.beginCall();
  }
  ~Device() {
    for (void *p : buffers)
      backend->release(p);
  }
  template <typename T> T *upload(const std::vector<T> &host) {
    T *ptr = alloc<T>(static_cast<int64_t>(host.size()));
    backend->copyFromHost(ptr, host.data(), sizeof(T) * host.size());
    return ptr;
  }
  template <typename T> T *alloc(int64_t count) {
    void *p = backend->alloc(sizeof(T) * std::max<int64_t>(count, 1));
    buffers.push_back(p);
    return static_cast<T *>(p);
  }
  /// x [kTokens, kWidth] times w [kWidth, n], in f32 on the backend.
  float *product(const std::vector<float> &x, const std::vector<float> &w,
                 int64_t n) {
    float *out = alloc<float>(kTokens * n);
    backend->gemm(false, false, kTokens, n, kWidth, 1.0f, upload(x), kWidth,
                  upload(w), n, 0.0f, out, n, GemmPrecision::F32);
    return out;
  }
  template <typename T> std::vector<T> download(const T *ptr, int64_t count) {
    std::vector<T> host(count);
    backend->copyToHost(host.data(), ptr, sizeof(T) * count);
    return host;
  }

  std::unique_ptr<Backend> backend;
  step::Context ctx;

private:
  std::vector<void *> buffers;
};

std::vector<float> inputs() {
  std::vector<float> x(kTokens * kWidth);
  for (int64_t t = 0; t < kTokens; ++t)
    for (int64_t i = 0; i < kWidth; ++i)
      x[t * kWidth + i] = static_cast<float>(inputAt(t, i));
  return x;
}

std::vector<float> weights(int64_t n, int64_t salt) {
  std::vector<float> w(kWidth * n);
  for (int64_t i = 0; i < kWidth; ++i)
    for (int64_t j = 0; j < n; ++j)
      w[i * n + j] = static_cast<float>(weightAt(i, j, salt));
  return w;
}

/// x_t . W[:, j] in double, from the f32 values the device sees.
double logit(const std::vector<float> &x, const std::vector<float> &w,
             int64_t n, int64_t t, int64_t j) {
  double sum = 0;
  for (int64_t i = 0; i < kWidth; ++i)
    sum += double(x[t * kWidth + i]) * double(w[i * n + j]);
  return sum;
}

/// Of token t's logits x_t W over n experts, the k largest (ties to the
/// lower index) and their softmax.
void topK(const std::vector<float> &x, const std::vector<float> &w, int64_t n,
          int64_t t, int64_t k, std::vector<int32_t> &experts,
          std::vector<double> &gates) {
  std::vector<double> logits(n);
  for (int64_t j = 0; j < n; ++j)
    logits[j] = logit(x, w, n, t, j);
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  experts.assign(order.begin(), order.begin() + k);
  gates.clear();
  double sum = 0;
  for (int32_t e : experts)
    sum += std::exp(logits[e] - logits[experts[0]]);
  for (int32_t e : experts)
    gates.push_back(std::exp(logits[e] - logits[experts[0]]) / sum);
}

std::vector<std::string> backends() {
  std::vector<std::string> names{"cpu"};
  if (cudaDeviceCount() > 0)
    names.push_back("cuda");
  return names;
}

/// The fused router of a flat noisy top-k layer in inference, with the
/// capture on or off.
std::vector<step::RouteCapture> fusedRouteCapture(const std::string &backend,
                                                  bool capture, int64_t n,
                                                  int64_t k) {
  Device d(backend, capture);
  std::vector<float> x = inputs(), wg = weights(n, 1), wn = weights(n, 2);
  int64_t a = kTokens * k;
  step::fusedRoute(&d.ctx, d.upload(x), d.upload(wg), d.upload(wn),
                   d.alloc<float>(kTokens * n), d.alloc<float>(kTokens * n),
                   d.alloc<int32_t>(a), d.alloc<float>(a),
                   d.alloc<float>(kTokens * n), d.alloc<float>(kTokens * n),
                   d.alloc<float>(kTokens * (k + 1)), d.alloc<float>(n),
                   d.alloc<float>(n), d.alloc<int32_t>(n + 1),
                   d.alloc<int32_t>(a), d.alloc<int32_t>(a), kTokens, kWidth,
                   n, k, 1e-2f, /*stream=*/0, GemmPrecision::F32);
  d.backend->synchronize();
  return d.ctx.routes;
}

TEST(RouteCapture, OffByDefault) {
  step::Context ctx(nullptr);
  EXPECT_FALSE(ctx.captureRoutes);
  EXPECT_TRUE(fusedRouteCapture("cpu", /*capture=*/false, 6, 2).empty());
}

TEST(RouteCapture, FusedTopKMatchesHostRouting) {
  const int64_t n = 6, k = 2;
  std::vector<float> x = inputs(), wg = weights(n, 1);
  for (const std::string &backend : backends()) {
    SCOPED_TRACE(backend);
    std::vector<step::RouteCapture> routes =
        fusedRouteCapture(backend, true, n, k);
    ASSERT_EQ(routes.size(), 1u);
    const step::RouteCapture &c = routes[0];
    EXPECT_EQ(c.tokens, kTokens);
    EXPECT_EQ(c.experts, n);
    ASSERT_EQ(c.rowPtr.size(), size_t(kTokens + 1));
    ASSERT_EQ(c.expert.size(), size_t(kTokens * k));
    ASSERT_EQ(c.gate.size(), size_t(kTokens * k));
    for (int64_t t = 0; t < kTokens; ++t) {
      std::vector<int32_t> experts;
      std::vector<double> gates;
      topK(x, wg, n, t, k, experts, gates);
      ASSERT_EQ(c.rowPtr[t], t * k);
      for (int64_t s = 0; s < k; ++s) {
        EXPECT_EQ(c.expert[t * k + s], experts[s]) << "token " << t;
        EXPECT_NEAR(c.gate[t * k + s], gates[s], 1e-5) << "token " << t;
      }
    }
  }
}

TEST(RouteCapture, ThresholdPlanCapturesUsedSlotsOnly) {
  const int64_t n = 4, capacity = kTokens * n;
  std::vector<float> x = inputs(), w = weights(n, 3);
  std::vector<float> thresholds = {0.2f, 0.3f, 0.25f, 0.15f};
  std::vector<step::RouteCapture> cpu;
  for (const std::string &backend : backends()) {
    SCOPED_TRACE(backend);
    Device d(backend, true);
    float *logits = d.product(x, w, n);
    int32_t *rowPtr = d.alloc<int32_t>(kTokens + 1);
    int32_t *expert = d.alloc<int32_t>(capacity);
    float *gate = d.alloc<float>(capacity);
    step::thresholdMask(&d.ctx, logits, d.upload(thresholds), rowPtr, expert,
                        gate, kTokens, n, capacity);
    step::dispatchPlan(&d.ctx, expert, rowPtr, gate, d.alloc<int32_t>(n + 1),
                       d.alloc<int32_t>(capacity), d.alloc<int32_t>(capacity),
                       capacity, n, kTokens);
    d.backend->synchronize();
    ASSERT_EQ(d.ctx.routes.size(), 1u);
    const step::RouteCapture &c = d.ctx.routes[0];
    ASSERT_EQ(c.rowPtr.size(), size_t(kTokens + 1));
    int64_t used = 0;
    for (int64_t t = 0; t < kTokens; ++t) {
      std::vector<double> l(n);
      double max = -INFINITY, sum = 0;
      for (int64_t j = 0; j < n; ++j)
        max = std::max(max, l[j] = logit(x, w, n, t, j));
      for (int64_t j = 0; j < n; ++j)
        sum += std::exp(l[j] - max);
      std::vector<int32_t> kept;
      double keptSum = 0;
      for (int64_t j = 0; j < n; ++j)
        if (std::exp(l[j] - max) / sum > thresholds[j]) {
          kept.push_back(static_cast<int32_t>(j));
          keptSum += std::exp(l[j] - max);
        }
      ASSERT_EQ(c.rowPtr[t], used) << "token " << t;
      ASSERT_EQ(c.rowPtr[t + 1] - c.rowPtr[t], int32_t(kept.size()))
          << "token " << t;
      for (size_t s = 0; s < kept.size(); ++s) {
        EXPECT_EQ(c.expert[used + s], kept[s]);
        EXPECT_NEAR(c.gate[used + s], std::exp(l[kept[s]] - max) / keptSum,
                    1e-5);
      }
      used += static_cast<int64_t>(kept.size());
    }
    // Only the used slots, and some were unused: the test means something.
    EXPECT_EQ(c.expert.size(), size_t(used));
    EXPECT_EQ(c.gate.size(), size_t(used));
    EXPECT_LT(used, capacity);
    EXPECT_GT(used, 0);
    if (backend == "cpu") {
      cpu = d.ctx.routes;
    } else {
      EXPECT_EQ(c.rowPtr, cpu[0].rowPtr);
      EXPECT_EQ(c.expert, cpu[0].expert);
    }
  }
}

TEST(RouteCapture, HierarchicalPlansCaptureGroupsAndComposedExperts) {
  const int64_t groups = 3, perGroup = 4, kp = 2, ks = 2;
  const int64_t rows = kTokens * kp;
  std::vector<float> x = inputs(), wp = weights(groups, 4);
  std::vector<std::vector<float>> ws;
  for (int64_t g = 0; g < groups; ++g)
    ws.push_back(weights(perGroup, 10 + g));
  for (const std::string &backend : backends()) {
    SCOPED_TRACE(backend);
    Device d(backend, true);
    // Primary level: top-kp groups of x Wp, and its plan over the groups.
    float *primaryLogits = d.product(x, wp, groups);
    int32_t *groupIds = d.alloc<int32_t>(rows);
    float *groupGates = d.alloc<float>(rows);
    step::noisyTopK(&d.ctx, primaryLogits, nullptr, nullptr, groupIds,
                    groupGates, d.alloc<float>(kTokens * groups),
                    d.alloc<float>(kTokens * groups),
                    d.alloc<float>(kTokens * (kp + 1)), kTokens, groups, kp,
                    1e-2f, 0);
    int32_t *position = d.alloc<int32_t>(rows);
    int32_t *token = d.alloc<int32_t>(rows);
    int32_t *groupOffset = d.alloc<int32_t>(groups + 1);
    step::dispatchPlan(&d.ctx, groupIds, nullptr, groupGates, groupOffset,
                       position, token, rows, groups, kTokens);
    // Secondary level over the group-major rows, logits computed here.
    std::vector<int32_t> offsets = d.download(groupOffset, groups + 1);
    std::vector<int32_t> tokenOf = d.download(token, rows);
    std::vector<float> secondary(rows * perGroup);
    for (int64_t g = 0; g < groups; ++g)
      for (int32_t r = offsets[g]; r < offsets[g + 1]; ++r)
        for (int64_t j = 0; j < perGroup; ++j)
          secondary[r * perGroup + j] =
              static_cast<float>(logit(x, ws[g], perGroup, tokenOf[r], j));
    int32_t *localIds = d.alloc<int32_t>(rows * ks);
    float *localGates = d.alloc<float>(rows * ks);
    step::noisyTopK(&d.ctx, d.upload(secondary), nullptr, nullptr, localIds,
                    localGates, d.alloc<float>(rows * perGroup),
                    d.alloc<float>(rows * perGroup),
                    d.alloc<float>(rows * (ks + 1)), rows, perGroup, ks, 1e-2f,
                    1);
    int64_t a = rows * ks, n = groups * perGroup;
    int32_t *expert = d.alloc<int32_t>(a);
    float *gate = d.alloc<float>(a);
    step::composeRoutesForward(&d.ctx, rows, ks, perGroup, groupIds,
                               groupGates, position, localIds, localGates,
                               expert, gate);
    step::dispatchPlan(&d.ctx, expert, nullptr, gate, d.alloc<int32_t>(n + 1),
                       d.alloc<int32_t>(a), d.alloc<int32_t>(a), a, n,
                       kTokens);
    d.backend->synchronize();

    ASSERT_EQ(d.ctx.routes.size(), 2u);
    const step::RouteCapture &primary = d.ctx.routes[0];
    const step::RouteCapture &composed = d.ctx.routes[1];
    EXPECT_EQ(primary.experts, groups);
    EXPECT_EQ(composed.experts, n);
    ASSERT_EQ(primary.gate.size(), size_t(rows));
    ASSERT_EQ(composed.gate.size(), size_t(a));
    for (int64_t t = 0; t < kTokens; ++t) {
      SCOPED_TRACE("token " + std::to_string(t));
      std::vector<int32_t> hostGroups;
      std::vector<double> hostGates;
      topK(x, wp, groups, t, kp, hostGroups, hostGates);
      ASSERT_EQ(primary.rowPtr[t + 1] - primary.rowPtr[t], kp);
      for (int64_t s = 0; s < kp; ++s) {
        int32_t g = primary.expert[primary.rowPtr[t] + s];
        float p = primary.gate[primary.rowPtr[t] + s];
        EXPECT_EQ(g, hostGroups[s]);
        EXPECT_NEAR(p, hostGates[s], 1e-5);
        // The composed assignments in group g: the group's top ks experts
        // of the token, gates p * s summing to p.
        std::vector<int32_t> hostLocal;
        std::vector<double> hostLocalGates;
        topK(x, ws[g], perGroup, t, ks, hostLocal, hostLocalGates);
        double sum = 0;
        std::vector<int32_t> local;
        for (int32_t c = composed.rowPtr[t]; c < composed.rowPtr[t + 1]; ++c)
          if (composed.expert[c] / perGroup == g) {
            local.push_back(composed.expert[c] % perGroup);
            sum += composed.gate[c];
          }
        std::sort(hostLocal.begin(), hostLocal.end());
        std::sort(local.begin(), local.end());
        EXPECT_EQ(local, hostLocal) << "group " << g;
        EXPECT_NEAR(sum, p, 1e-5) << "group " << g;
      }
      EXPECT_EQ(composed.rowPtr[t + 1] - composed.rowPtr[t], kp * ks);
    }
  }
}

} // namespace
