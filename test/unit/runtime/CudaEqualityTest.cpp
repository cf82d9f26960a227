//===- CudaEqualityTest.cpp - The CUDA backend agrees with the CPU one ----===//
//
// Every kernel runs on both backends from the same host data and the
// results are compared: exactly for indices, masks and routing (tie-breaking
// included), to ~1e-5 relative for f32 arithmetic, and to ~1e-2 of the
// output scale for TF32/BF16 GEMMs. Backward kernels get the CPU's forward
// outputs as inputs so that each kernel is checked on its own. The CUDA
// backend must also be bit-for-bit deterministic from run to run.
//
// Every test skips itself (in SetUp) when no CUDA device is visible, so the
// file builds and passes on machines without a GPU.
//
//===----------------------------------------------------------------------===//

#include "runtime/Backend.h"
#include "runtime/Optimizer.h"

#include "runtime/TestUtil.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

using namespace moe;
using moe::test::randomVector;

namespace {

constexpr uint64_t kSeed = 0x5eedc0ffee12ULL;
constexpr uint64_t kCounter = 41;

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

/// A tensor on both backends, initialised from the same host values.
template <typename T> class Twin {
public:
  Twin(rt::Backend &cpu, rt::Backend &gpu, const std::vector<T> &values)
      : cpu_(cpu), gpu_(gpu), count_(values.size()) {
    cpuPtr_ = static_cast<T *>(cpu.alloc(bytes()));
    gpuPtr_ = static_cast<T *>(gpu.alloc(bytes()));
    cpu.copyFromHost(cpuPtr_, values.data(), bytes());
    gpu.copyFromHost(gpuPtr_, values.data(), bytes());
  }
  ~Twin() {
    cpu_.release(cpuPtr_);
    gpu_.release(gpuPtr_);
  }
  Twin(const Twin &) = delete;
  Twin &operator=(const Twin &) = delete;

  T *cpu() const { return cpuPtr_; }
  T *gpu() const { return gpuPtr_; }
  std::vector<T> onCpu() const { return read(cpu_, cpuPtr_); }
  std::vector<T> onGpu() const { return read(gpu_, gpuPtr_); }

private:
  size_t bytes() const { return count_ * sizeof(T); }
  std::vector<T> read(rt::Backend &backend, const T *ptr) const {
    std::vector<T> values(count_);
    backend.copyToHost(values.data(), ptr, bytes());
    return values;
  }

  rt::Backend &cpu_, &gpu_;
  size_t count_;
  T *cpuPtr_ = nullptr, *gpuPtr_ = nullptr;
};

/// Expects |gpu - cpu| <= atol + rtol * |cpu| elementwise; equal values
/// (infinities included) always pass. Reports the first mismatch.
void expectNear(const std::vector<float> &gpu, const std::vector<float> &cpu,
                double rtol, double atol, const std::string &what) {
  ASSERT_EQ(gpu.size(), cpu.size()) << what;
  for (size_t i = 0; i < gpu.size(); ++i) {
    double a = gpu[i], b = cpu[i];
    if (a == b)
      continue;
    if (!(std::fabs(a - b) <= atol + rtol * std::fabs(b))) {
      ADD_FAILURE() << what << ": mismatch at " << i << ": cuda " << a
                    << ", cpu " << b;
      return;
    }
  }
}

/// Expects equal vectors, reporting the first difference.
template <typename T>
void expectEqual(const std::vector<T> &gpu, const std::vector<T> &cpu,
                 const std::string &what) {
  ASSERT_EQ(gpu.size(), cpu.size()) << what;
  for (size_t i = 0; i < gpu.size(); ++i)
    if (gpu[i] != cpu[i]) {
      ADD_FAILURE() << what << ": differs at " << i << ": cuda " << gpu[i]
                    << ", cpu " << cpu[i];
      return;
    }
}

/// Bitwise equality of two runs (0.0 vs -0.0 and NaN payloads count).
void expectBitwiseEqual(const std::vector<float> &a,
                        const std::vector<float> &b, const std::string &what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)))
      << what << " differs between two runs";
}

float maxAbs(const std::vector<float> &v) {
  float m = 0.0f;
  for (float x : v)
    m = std::max(m, std::fabs(x));
  return m;
}

/// Values on a grid of 0.25 in [-2, 2]: plenty of exact ties.
std::vector<float> tiedValues(size_t count, uint32_t seed) {
  std::vector<float> v = randomVector(count, seed, -2.0, 2.0);
  for (float &x : v)
    x = std::round(x * 4.0f) / 4.0f;
  return v;
}

/// Router logits [T, n] whose tokens repeat `distinct` random rows: equal
/// rows have bit-identical softmax probabilities on either backend, so every
/// column of the probabilities has groups of exact ties (permuted rows would
/// tie only mathematically, the two backends rounding them differently).
std::vector<float> repeatedRows(int64_t T, int64_t n, int64_t distinct,
                                uint32_t seed) {
  std::vector<float> pool = randomVector(distinct * n, seed, -2.0, 2.0);
  std::vector<float> pick = randomVector(T, seed + 1, 0.0, double(distinct));
  std::vector<float> v(T * n);
  for (int64_t t = 0; t < T; ++t) {
    int64_t row = std::min<int64_t>(int64_t(pick[t]), distinct - 1);
    std::copy_n(pool.begin() + row * n, n, v.begin() + t * n);
  }
  return v;
}

/// Thresholds on the probability scale for the router `logits` [T, n]: the
/// one of expert i lies in the middle of the widest gap between consecutive
/// sorted probabilities of column i near rank T/4 .. 3T/4, so the
/// ulp-level differences between the CPU and CUDA softmax cannot flip a
/// comparison with it. T >= 2.
std::vector<float>
thresholdsBetweenProbabilities(const std::vector<float> &logits, int64_t T,
                               int64_t n) {
  std::vector<double> p(T * n);
  for (int64_t t = 0; t < T; ++t) {
    const float *x = logits.data() + t * n;
    double maxValue = *std::max_element(x, x + n), sum = 0;
    for (int64_t i = 0; i < n; ++i)
      sum += std::exp(double(x[i]) - maxValue);
    for (int64_t i = 0; i < n; ++i)
      p[t * n + i] = std::exp(double(x[i]) - maxValue) / sum;
  }
  std::vector<float> thresholds(n);
  for (int64_t i = 0; i < n; ++i) {
    std::vector<double> column(T);
    for (int64_t t = 0; t < T; ++t)
      column[t] = p[t * n + i];
    std::sort(column.begin(), column.end());
    int64_t target = T / 4 + (i * 37) % std::max<int64_t>(1, T / 2);
    int64_t best = std::min(target, T - 2);
    for (int64_t r = std::max<int64_t>(0, target - 4);
         r <= std::min(target + 4, T - 2); ++r)
      if (column[r + 1] - column[r] > column[best + 1] - column[best])
        best = r;
    thresholds[i] = float(0.5 * (column[best] + column[best + 1]));
  }
  return thresholds;
}

/// f32 tolerances of kernels without long sums.
constexpr double kRtol = 1e-5, kAtol = 1e-6;

class CudaEquality : public ::testing::Test {
protected:
  void SetUp() override {
    if (rt::cudaDeviceCount() == 0)
      GTEST_SKIP() << "no CUDA device";
    cpu = rt::createCpuBackend();
    gpu = rt::createCudaBackend(0);
  }

  template <typename T> std::unique_ptr<Twin<T>> twin(const std::vector<T> &v) {
    return std::make_unique<Twin<T>>(*cpu, *gpu, v);
  }
  /// An output tensor pre-filled with a sentinel on both sides, so that an
  /// entry one backend forgets to write shows up as a difference.
  template <typename T> std::unique_ptr<Twin<T>> output(size_t count) {
    return twin(std::vector<T>(count, T(-77)));
  }

  void expectClose(const Twin<float> &t, double rtol, double atol,
                   const std::string &what) {
    expectNear(t.onGpu(), t.onCpu(), rtol, atol, what);
  }
  template <typename T>
  void expectSame(const Twin<T> &t, const std::string &what) {
    expectEqual(t.onGpu(), t.onCpu(), what);
  }

  std::unique_ptr<rt::Backend> cpu, gpu;
};

// Runs everywhere: the build has the real CUDA entry points, and asking for
// a device that does not exist is a clear error, GPU or not.
TEST(CudaBackendEntry, CompiledInAndRejectsMissingDevice) {
  EXPECT_TRUE(rt::cudaBackendCompiled());
  int count = rt::cudaDeviceCount();
  EXPECT_GE(count, 0);
  EXPECT_THROW(rt::createCudaBackend(count), std::runtime_error);
  EXPECT_THROW(rt::createCudaBackend(-1), std::runtime_error);
}

//===----------------------------------------------------------------------===//
// Memory, GEMM, elementwise
//===----------------------------------------------------------------------===//

TEST_F(CudaEquality, MemoryRoundTripFillAndCopy) {
  EXPECT_EQ(gpu->name(), "cuda");
  std::vector<float> host = randomVector(1000, 1);
  auto a = twin(host);
  auto b = output<float>(1000);
  gpu->copyDevice(b->gpu(), a->gpu(), 1000 * sizeof(float));
  cpu->copyDevice(b->cpu(), a->cpu(), 1000 * sizeof(float));
  gpu->synchronize();
  expectEqual(b->onGpu(), host, "copyDevice");
  gpu->fill(a->gpu() + 3, 2.5f, 997);
  cpu->fill(a->cpu() + 3, 2.5f, 997);
  expectSame(*a, "fill");
}

TEST_F(CudaEquality, GemmF32AllTransposes) {
  const int64_t m = 37, n = 29, k = 53;
  for (bool transA : {false, true})
    for (bool transB : {false, true}) {
      // Padded leading dimensions, as for views into wider matrices.
      int64_t lda = (transA ? m : k) + 3, ldb = (transB ? k : n) + 5;
      int64_t ldc = n + 2;
      auto A = twin(randomVector((transA ? k : m) * lda, 2));
      auto B = twin(randomVector((transB ? n : k) * ldb, 3));
      auto C = twin(randomVector(m * ldc, 4));
      for (auto [backend, a, b, c] :
           {std::tuple{cpu.get(), A->cpu(), B->cpu(), C->cpu()},
            std::tuple{gpu.get(), A->gpu(), B->gpu(), C->gpu()}})
        backend->gemm(transA, transB, m, n, k, 0.7f, a, lda, b, ldb, 0.3f, c,
                      ldc, rt::GemmPrecision::F32);
      expectClose(*C, 1e-5, 2e-5,
                  "gemm transA=" + std::to_string(transA) +
                      " transB=" + std::to_string(transB));
    }
}

TEST_F(CudaEquality, GemmEdgeShapes) {
  // k = 0 scales C by beta; beta = 0 overwrites even NaN.
  auto C = twin(randomVector(12, 5));
  auto A = twin(std::vector<float>(1, 1.0f));
  cpu->gemm(false, false, 3, 4, 0, 1.0f, A->cpu(), 1, A->cpu(), 4, 0.5f,
            C->cpu(), 4, rt::GemmPrecision::F32);
  gpu->gemm(false, false, 3, 4, 0, 1.0f, A->gpu(), 1, A->gpu(), 4, 0.5f,
            C->gpu(), 4, rt::GemmPrecision::F32);
  expectClose(*C, kRtol, kAtol, "gemm k=0");
  auto nan = twin(std::vector<float>(6, std::nanf("")));
  auto x = twin(randomVector(6, 6));
  cpu->gemm(false, false, 2, 3, 1, 1.0f, x->cpu(), 1, x->cpu(), 3, 0.0f,
            nan->cpu(), 3, rt::GemmPrecision::F32);
  gpu->gemm(false, false, 2, 3, 1, 1.0f, x->gpu(), 1, x->gpu(), 3, 0.0f,
            nan->gpu(), 3, rt::GemmPrecision::F32);
  expectClose(*nan, kRtol, kAtol, "gemm beta=0 over NaN");
  EXPECT_THROW(gpu->gemm(false, false, -1, 3, 1, 1.0f, x->gpu(), 1, x->gpu(), 3,
                         0.0f, nan->gpu(), 3, rt::GemmPrecision::F32),
               std::invalid_argument);
}

TEST_F(CudaEquality, GemmReducedPrecision) {
  const int64_t m = 64, n = 48, k = 96;
  std::vector<float> a = randomVector(m * k, 7), b = randomVector(k * n, 8);
  for (rt::GemmPrecision precision :
       {rt::GemmPrecision::TF32, rt::GemmPrecision::BF16}) {
    auto A = twin(a), B = twin(b);
    auto C = output<float>(m * n);
    cpu->gemm(false, true, m, n, k, 1.0f, A->cpu(), k, B->cpu(), k, 0.0f,
              C->cpu(), n, rt::GemmPrecision::F32);
    // B is read transposed: k x n data seen as n x k.
    gpu->gemm(false, true, m, n, k, 1.0f, A->gpu(), k, B->gpu(), k, 0.0f,
              C->gpu(), n, precision);
    std::vector<float> reference = C->onCpu();
    expectNear(C->onGpu(), reference, 1e-2, 1e-2 * maxAbs(reference),
               precision == rt::GemmPrecision::TF32 ? "tf32" : "bf16");
  }
}

TEST_F(CudaEquality, ElementwiseKernels) {
  const int64_t count = 1001;
  auto a = twin(randomVector(count, 9, -4, 4));
  auto b = twin(randomVector(count, 10));
  auto y = output<float>(count), dx = output<float>(count);
  cpu->add(a->cpu(), b->cpu(), y->cpu(), count);
  gpu->add(a->gpu(), b->gpu(), y->gpu(), count);
  expectClose(*y, kRtol, kAtol, "add");
  cpu->accumulate(a->cpu(), y->cpu(), count);
  gpu->accumulate(a->gpu(), y->gpu(), count);
  expectClose(*y, kRtol, kAtol, "accumulate");
  cpu->sigmoidForward(a->cpu(), y->cpu(), count);
  gpu->sigmoidForward(a->gpu(), y->gpu(), count);
  expectClose(*y, kRtol, kAtol, "sigmoidForward");
  cpu->sigmoidBackward(y->cpu(), b->cpu(), dx->cpu(), count);
  gpu->sigmoidBackward(y->gpu(), b->gpu(), dx->gpu(), count);
  expectClose(*dx, kRtol, kAtol, "sigmoidBackward");
  cpu->reluForward(a->cpu(), y->cpu(), count);
  gpu->reluForward(a->gpu(), y->gpu(), count);
  expectSame(*y, "reluForward");
  cpu->reluBackward(y->cpu(), b->cpu(), dx->cpu(), count);
  gpu->reluBackward(y->gpu(), b->gpu(), dx->gpu(), count);
  expectSame(*dx, "reluBackward");
}

TEST_F(CudaEquality, TanhForwardBackward) {
  const int64_t count = 1001;
  auto x = twin(randomVector(count, 13, -5, 5));
  auto dy = twin(randomVector(count, 14));
  auto y = output<float>(count), dx = output<float>(count);
  cpu->tanhForward(x->cpu(), y->cpu(), count);
  gpu->tanhForward(x->gpu(), y->gpu(), count);
  expectClose(*y, kRtol, kAtol, "tanhForward");
  // Backward from the CPU's forward output on both sides.
  auto yIn = twin(y->onCpu());
  cpu->tanhBackward(yIn->cpu(), dy->cpu(), dx->cpu(), count);
  gpu->tanhBackward(yIn->gpu(), dy->gpu(), dx->gpu(), count);
  expectClose(*dx, kRtol, kAtol, "tanhBackward");
  EXPECT_THROW(gpu->tanhForward(x->gpu(), y->gpu(), -1), std::invalid_argument);
}

TEST_F(CudaEquality, ScaleAndBiasAdd) {
  // One multiply or add per element: the same bits on both backends.
  const int64_t rows = 37, d = 29;
  std::vector<float> values = randomVector(rows * d, 15);
  auto x = twin(values);
  auto bias = twin(randomVector(d, 16));
  auto y = output<float>(rows * d);
  cpu->scale(x->cpu(), -0.37f, y->cpu(), rows * d);
  gpu->scale(x->gpu(), -0.37f, y->gpu(), rows * d);
  expectSame(*y, "scale");
  cpu->biasAdd(rows, d, x->cpu(), bias->cpu(), y->cpu());
  gpu->biasAdd(rows, d, x->gpu(), bias->gpu(), y->gpu());
  expectSame(*y, "biasAdd");
  // In place (y == x).
  auto z = twin(values);
  cpu->scale(z->cpu(), 1.5f, z->cpu(), rows * d);
  gpu->scale(z->gpu(), 1.5f, z->gpu(), rows * d);
  expectSame(*z, "scale in place");
  cpu->biasAdd(rows, d, z->cpu(), bias->cpu(), z->cpu());
  gpu->biasAdd(rows, d, z->gpu(), bias->gpu(), z->gpu());
  expectSame(*z, "biasAdd in place");
  EXPECT_THROW(gpu->scale(x->gpu(), 1.0f, y->gpu(), -1), std::invalid_argument);
  EXPECT_THROW(gpu->biasAdd(-1, d, x->gpu(), bias->gpu(), y->gpu()),
               std::invalid_argument);
  EXPECT_THROW(gpu->biasAdd(rows, -1, x->gpu(), bias->gpu(), y->gpu()),
               std::invalid_argument);
}

TEST_F(CudaEquality, ScaleBy) {
  // y = (factor[0] * multiplier) * x: one product of the scalars, then one
  // multiply per element, so the same bits on both backends.
  const int64_t count = 1001;
  std::vector<float> values = randomVector(count, 19);
  auto x = twin(values);
  auto factor = twin(std::vector<float>{-0.37f});
  for (float multiplier : {1.0f, 0.3f, -2.5f}) {
    std::string what = "scaleBy multiplier " + std::to_string(multiplier);
    auto y = output<float>(count);
    cpu->scaleBy(x->cpu(), factor->cpu(), multiplier, y->cpu(), count);
    gpu->scaleBy(x->gpu(), factor->gpu(), multiplier, y->gpu(), count);
    expectSame(*y, what);
    std::vector<float> expected(count);
    float s = -0.37f * multiplier;
    for (int64_t i = 0; i < count; ++i)
      expected[i] = s * values[i];
    expectEqual(y->onGpu(), expected, what + " vs loop");
    // A null factor counts as 1.
    cpu->scaleBy(x->cpu(), nullptr, multiplier, y->cpu(), count);
    gpu->scaleBy(x->gpu(), nullptr, multiplier, y->gpu(), count);
    expectSame(*y, what + " null factor");
    for (int64_t i = 0; i < count; ++i)
      expected[i] = multiplier * values[i];
    expectEqual(y->onGpu(), expected, what + " null factor vs loop");
  }
  // In place, with another factor written to memory.
  float f = 4.0f;
  cpu->copyFromHost(factor->cpu(), &f, sizeof(float));
  gpu->copyFromHost(factor->gpu(), &f, sizeof(float));
  auto z = twin(values);
  cpu->scaleBy(z->cpu(), factor->cpu(), 0.5f, z->cpu(), count);
  gpu->scaleBy(z->gpu(), factor->gpu(), 0.5f, z->gpu(), count);
  expectSame(*z, "scaleBy in place");
  std::vector<float> doubled = values;
  for (float &v : doubled)
    v *= 2.0f;
  expectEqual(z->onGpu(), doubled, "scaleBy in place vs loop");
  // count = 0 writes nothing; a negative count is an error.
  auto untouched = output<float>(4);
  gpu->scaleBy(x->gpu(), factor->gpu(), 1.0f, untouched->gpu(), 0);
  expectEqual(untouched->onGpu(), std::vector<float>(4, -77.0f),
              "scaleBy count 0");
  EXPECT_THROW(gpu->scaleBy(x->gpu(), factor->gpu(), 1.0f, z->gpu(), -1),
               std::invalid_argument);
}

TEST_F(CudaEquality, SumRows) {
  struct Shape {
    int64_t rows, d;
  };
  // Both backends add the rows of each column in order in f32, so the sums
  // agree exactly; rows = 0 writes zeros over the sentinel.
  for (Shape s : {Shape{0, 29}, Shape{1, 1}, Shape{37, 29}, Shape{3000, 70},
                  Shape{5, 2000}}) {
    // rows = 0 still passes a valid (unread) x.
    auto x =
        twin(randomVector(std::max<int64_t>(1, s.rows * s.d), 17, -10, 10));
    auto y = output<float>(s.d);
    cpu->sumRows(s.rows, s.d, x->cpu(), y->cpu());
    gpu->sumRows(s.rows, s.d, x->gpu(), y->gpu());
    std::string what =
        "sumRows " + std::to_string(s.rows) + "x" + std::to_string(s.d);
    expectSame(*y, what);
    if (s.rows == 0)
      expectEqual(y->onGpu(), std::vector<float>(s.d, 0.0f), what);
    std::vector<float> first = y->onGpu();
    gpu->sumRows(s.rows, s.d, x->gpu(), y->gpu());
    expectBitwiseEqual(y->onGpu(), first, what);
  }
  auto x = twin(randomVector(4, 18));
  EXPECT_THROW(gpu->sumRows(-1, 2, x->gpu(), x->gpu()), std::invalid_argument);
  EXPECT_THROW(gpu->sumRows(2, -1, x->gpu(), x->gpu()), std::invalid_argument);
}

TEST_F(CudaEquality, DropoutMaskMatchesCpu) {
  for (int64_t count : {1, 6, 1003}) {
    for (float rate : {0.0f, 0.3f, 0.9f}) {
      auto x = twin(randomVector(count, 11, 0.5, 1.5));
      auto y = output<float>(count), dx = output<float>(count);
      cpu->dropoutForward(x->cpu(), y->cpu(), count, rate, kSeed, kCounter, 0);
      gpu->dropoutForward(x->gpu(), y->gpu(), count, rate, kSeed, kCounter, 0);
      std::string what = "dropout count=" + std::to_string(count) +
                         " rate=" + std::to_string(rate);
      // x is never zero, so zeros are exactly the dropped entries.
      std::vector<float> cy = y->onCpu(), gy = y->onGpu();
      for (int64_t i = 0; i < count; ++i)
        ASSERT_EQ(cy[i] == 0.0f, gy[i] == 0.0f) << what << " at " << i;
      expectNear(gy, cy, kRtol, kAtol, what);
      cpu->dropoutBackward(x->cpu(), dx->cpu(), count, rate, kSeed, kCounter,
                           0);
      gpu->dropoutBackward(x->gpu(), dx->gpu(), count, rate, kSeed, kCounter,
                           0);
      expectClose(*dx, kRtol, kAtol, what + " backward");
    }
  }
  auto x = twin(randomVector(4, 12));
  EXPECT_THROW(gpu->dropoutForward(x->gpu(), x->gpu(), 4, 1.0f, 1, 1, 0),
               std::invalid_argument);
}

// A shard's mask (elementOffset) is the same on both backends.
/// Parameters initialized on the device equal the CPU's bit for bit, shard
/// offsets off the Philox blocks included.
TEST_F(CudaEquality, InitUniformMatchesCpuExactly) {
  for (uint64_t begin : {0, 3, 1 << 20})
    for (int64_t count : {1, 7, 100003}) {
      auto x = output<float>(count);
      cpu->initUniform(x->cpu(), count, 0.07, kSeed, kCounter, begin);
      gpu->initUniform(x->gpu(), count, 0.07, kSeed, kCounter, begin);
      std::vector<float> cx = x->onCpu(), gx = x->onGpu();
      for (int64_t i = 0; i < count; ++i)
        ASSERT_EQ(gx[i], cx[i]) << "begin " << begin << " at " << i;
    }
}

TEST_F(CudaEquality, DropoutShardOffset) {
  int64_t count = 1001;
  auto x = twin(randomVector(count, 13, 0.5, 1.5));
  auto y = output<float>(count);
  cpu->dropoutForward(x->cpu(), y->cpu(), count, 0.4f, kSeed, kCounter, 4096);
  gpu->dropoutForward(x->gpu(), y->gpu(), count, 0.4f, kSeed, kCounter, 4096);
  std::vector<float> cy = y->onCpu(), gy = y->onGpu();
  for (int64_t i = 0; i < count; ++i)
    ASSERT_EQ(cy[i] == 0.0f, gy[i] == 0.0f) << "at " << i;
  expectNear(gy, cy, kRtol, kAtol, "dropout with an element offset");
}

//===----------------------------------------------------------------------===//
// Gating
//===----------------------------------------------------------------------===//

// The assignments of a given mask, with the unused slots zeroed.
TEST_F(CudaEquality, MaskAssignments) {
  int64_t T = 37, n = 6, capacity = T * n;
  auto logits = twin(randomVector(T * n, 16));
  std::vector<float> hostMask(T * n);
  for (int64_t i = 0; i < T * n; ++i)
    hostMask[i] = (i * 7919 % 3) == 0 ? 1.0f : 0.0f;
  auto mask = twin(hostMask);
  auto rowPtr = output<int32_t>(T + 1), expert = output<int32_t>(capacity);
  auto gate = output<float>(capacity);
  int64_t cpuCount = 0, gpuCount = 0;
  cpu->maskAssignmentsForward(T, n, logits->cpu(), mask->cpu(), rowPtr->cpu(),
                              expert->cpu(), gate->cpu(), capacity, &cpuCount);
  gpu->maskAssignmentsForward(T, n, logits->gpu(), mask->gpu(), rowPtr->gpu(),
                              expert->gpu(), gate->gpu(), capacity, &gpuCount);
  EXPECT_EQ(cpuCount, gpuCount);
  expectSame(*rowPtr, "mask row pointers");
  expectSame(*expert, "mask experts");
  expectClose(*gate, kRtol, kAtol, "mask gates");
}

// A shard's gating noise (elementOffset) is the same on both backends, and
// so is noise drawn by position (a hierarchical secondary level: row
// position[a] takes stream row a's noise).
TEST_F(CudaEquality, NoisyTopKShardOffsetAndNoisePosition) {
  int64_t T = 33, k = 2;
  auto run = [&](int64_t n, bool byPosition, const std::string &what) {
    std::vector<int32_t> order(T);
    for (int64_t a = 0; a < T; ++a)
      order[a] = static_cast<int32_t>((a * 5 + 3) % T); // a permutation
    auto position = twin(order);
    auto clean = twin(randomVector(T * n, 14));
    auto raw = twin(randomVector(T * n, 15, -2.0, 2.0));
    auto noisy = output<float>(T * n), std = output<float>(T * n);
    auto top = output<float>(T * (k + 1)), gate = output<float>(T * k);
    auto expert = output<int32_t>(T * k);
    cpu->noisyTopKForward(T, n, k, clean->cpu(), raw->cpu(), 0.01f, true, kSeed,
                          kCounter, noisy->cpu(), std->cpu(), top->cpu(),
                          expert->cpu(), gate->cpu(), 264,
                          byPosition ? position->cpu() : nullptr);
    gpu->noisyTopKForward(T, n, k, clean->gpu(), raw->gpu(), 0.01f, true, kSeed,
                          kCounter, noisy->gpu(), std->gpu(), top->gpu(),
                          expert->gpu(), gate->gpu(), 264,
                          byPosition ? position->gpu() : nullptr);
    expectClose(*noisy, kRtol, kAtol, "noisy values " + what);
    expectClose(*std, kRtol, kAtol, "noise std " + what);
    expectEqual(expert->onGpu(), expert->onCpu(), "experts " + what);
  };
  run(8, false, "with an element offset");
  run(7, true, "drawn by position");
}

struct TopKCase {
  int64_t T, n, k;
  bool noise, training, ties;
};

/// Warp path (n <= 32, n <= 256) and radix path (n > 256), k = 1, k = n,
/// one token, ties, eval and noiseless gating. Cases with noise keep k
/// small: the noise differs by an ulp between the backends, which must not
/// reorder near-equal entries.
const TopKCase kTopKCases[] = {
    {1, 4, 1, true, true, false},         {37, 8, 2, true, true, false},
    {64, 32, 32, true, true, false},      {50, 200, 4, true, true, false},
    {20, 1000, 3, true, true, false},     {9, 513, 100, false, false, false},
    {5, 3000, 3000, false, false, false}, {40, 300, 10, false, false, true},
    {40, 24, 5, true, false, true},       {7, 2049, 2, true, true, false},
};

std::string describe(const TopKCase &c) {
  return "T=" + std::to_string(c.T) + " n=" + std::to_string(c.n) +
         " k=" + std::to_string(c.k) + (c.noise ? " noise" : "") +
         (c.training ? " training" : "") + (c.ties ? " ties" : "");
}

TEST_F(CudaEquality, NoisyTopKForward) {
  for (const TopKCase &c : kTopKCases) {
    int64_t T = c.T, n = c.n, k = c.k;
    // Spread-out clean logits keep the noisy values far apart.
    std::vector<float> cleanHost =
        c.ties ? tiedValues(T * n, 13) : randomVector(T * n, 13, -10, 10);
    auto clean = twin(cleanHost);
    auto raw = twin(randomVector(T * n, 14));
    auto noisy = output<float>(T * n), noiseStd = output<float>(T * n);
    auto top = output<float>(T * (k + 1)), gate = output<float>(T * k);
    auto expert = output<int32_t>(T * k);
    for (bool onGpu : {false, true}) {
      rt::Backend &b = onGpu ? *gpu : *cpu;
      auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
      b.noisyTopKForward(T, n, k, p(clean), c.noise ? p(raw) : nullptr, 1e-2f,
                         c.training, kSeed, kCounter, p(noisy), p(noiseStd),
                         p(top), p(expert), p(gate), 0, nullptr);
    }
    std::string what = describe(c);
    expectSame(*expert, what + " expert");
    expectClose(*noisy, kRtol, kAtol, what + " noisy");
    expectClose(*noiseStd, kRtol, kAtol, what + " noiseStd");
    expectClose(*top, kRtol, kAtol, what + " topValues");
    expectClose(*gate, kRtol, kAtol, what + " gate");
  }
}

TEST_F(CudaEquality, NoisyTopKForwardTiesOfSignedZeros) {
  // -0.0 and +0.0 compare equal: the lower index wins on both backends.
  std::vector<float> clean = {0.0f, -0.0f, -1.0f, -0.0f, 0.0f, 0.5f};
  auto c = twin(clean);
  auto noisy = output<float>(6), noiseStd = output<float>(6);
  auto top = output<float>(4), gate = output<float>(3);
  auto expert = output<int32_t>(3);
  cpu->noisyTopKForward(1, 6, 3, c->cpu(), nullptr, 0.0f, false, 1, 1,
                        noisy->cpu(), noiseStd->cpu(), top->cpu(),
                        expert->cpu(), gate->cpu(), 0, nullptr);
  gpu->noisyTopKForward(1, 6, 3, c->gpu(), nullptr, 0.0f, false, 1, 1,
                        noisy->gpu(), noiseStd->gpu(), top->gpu(),
                        expert->gpu(), gate->gpu(), 0, nullptr);
  expectSame(*expert, "signed zeros");
  expectEqual(expert->onGpu(), std::vector<int32_t>{5, 0, 1}, "order");
}

/// The CPU's forward outputs of one top-k case, as inputs for backwards.
struct TopKState {
  std::vector<float> clean, raw, noisy, noiseStd, top, gate;
  std::vector<int32_t> expert;
};

TopKState cpuTopK(rt::Backend &cpu, const TopKCase &c) {
  int64_t T = c.T, n = c.n, k = c.k;
  TopKState s;
  s.clean = randomVector(T * n, 15, -3, 3);
  s.raw = randomVector(T * n, 16);
  s.noisy.resize(T * n);
  s.noiseStd.resize(T * n);
  s.top.resize(T * (k + 1));
  s.gate.resize(T * k);
  s.expert.resize(T * k);
  // The CPU backend works on host memory, so host vectors serve directly.
  cpu.noisyTopKForward(T, n, k, s.clean.data(), s.raw.data(), 1e-2f, true,
                       kSeed, kCounter, s.noisy.data(), s.noiseStd.data(),
                       s.top.data(), s.expert.data(), s.gate.data(), 0,
                       nullptr);
  return s;
}

TEST_F(CudaEquality, NoisyTopKBackward) {
  for (const TopKCase &c : kTopKCases) {
    if (!c.noise || !c.training)
      continue;
    int64_t T = c.T, n = c.n, k = c.k;
    TopKState s = cpuTopK(*cpu, c);
    auto clean = twin(s.clean), raw = twin(s.raw), noisy = twin(s.noisy);
    auto noiseStd = twin(s.noiseStd), gate = twin(s.gate);
    auto expert = twin(s.expert);
    auto dGate = twin(randomVector(T * k, 17));
    auto dClean = output<float>(T * n), dRaw = output<float>(T * n);
    for (bool onGpu : {false, true}) {
      rt::Backend &b = onGpu ? *gpu : *cpu;
      auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
      b.noisyTopKBackward(T, n, k, p(noisy), p(clean), p(raw), p(noiseStd),
                          p(expert), p(gate), p(dGate), p(dClean), p(dRaw));
    }
    expectClose(*dClean, kRtol, kAtol, describe(c) + " dClean");
    expectClose(*dRaw, 1e-4, 1e-6, describe(c) + " dRawNoise");
  }
}

TEST_F(CudaEquality, LoadEstimator) {
  for (const TopKCase &c : kTopKCases) {
    if (!c.noise || !c.training)
      continue;
    // Every token, and with row pointers that make every third token
    // padding (no assignments: left out of the load and its gradient).
    for (bool padded : {false, true}) {
      int64_t T = c.T, n = c.n, k = c.k;
      std::string what = describe(c) + (padded ? " padded" : "");
      TopKState s = cpuTopK(*cpu, c);
      auto clean = twin(s.clean), raw = twin(s.raw), noisy = twin(s.noisy);
      auto noiseStd = twin(s.noiseStd), top = twin(s.top);
      std::vector<int32_t> rows(T + 1, 0);
      for (int64_t t = 0; t < T; ++t)
        rows[t + 1] = rows[t] + (t % 3 == 2 ? 0 : static_cast<int32_t>(k));
      auto rowPtr = twin(rows);
      auto load = output<float>(n);
      auto dLoad = twin(randomVector(n, 18));
      // Backward accumulates: start from the same random gradients.
      auto dClean = twin(randomVector(T * n, 19));
      auto dRaw = twin(randomVector(T * n, 20));
      for (bool onGpu : {false, true}) {
        rt::Backend &b = onGpu ? *gpu : *cpu;
        auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
        const int32_t *rp = padded ? p(rowPtr) : nullptr;
        b.loadEstimateForward(T, n, k, p(clean), p(noisy), p(noiseStd), p(top),
                              rp, p(load));
        b.loadEstimateBackward(T, n, k, p(clean), p(noisy), p(raw), p(noiseStd),
                               p(top), rp, p(dLoad), p(dClean), p(dRaw));
      }
      expectClose(*load, 1e-5, 1e-5, what + " load");
      expectClose(*dClean, 1e-4, 1e-5, what + " dClean");
      expectClose(*dRaw, 1e-4, 1e-5, what + " dRawNoise");
    }
  }
}

/// moe.fused_route's routing on one backend: inputs and every output.
struct FusedRouteTwins {
  std::unique_ptr<Twin<float>> clean, raw, noisy, std, top, gate, load,
      importance;
  std::unique_ptr<Twin<int32_t>> expert, offset, position, token;
};

/// T past one CUDA tile (16 tokens a warp, 8 warps up to 722 experts, fewer
/// above) and not a multiple of it, no tokens, n in the three selection
/// paths (<= 32, <= 256, longer rows), at the shared-memory limit (4096:
/// one warp a block, exactly 48 KB) and past it (the separate kernels),
/// k = 1, k = n, ties. Training cases with many experts keep T small: the
/// noise differs by an ulp between the backends, which must not reorder
/// near-equal entries.
const TopKCase kFusedRouteCases[] = {
    {0, 8, 2, true, true, false},       {1, 4, 1, true, true, false},
    {37, 8, 2, true, true, false},      {130, 16, 1, true, true, false},
    {300, 64, 4, true, true, false},    {129, 6, 6, true, true, false},
    {200, 200, 3, true, false, false},  {20, 1000, 3, true, true, false},
    {150, 24, 5, true, false, true},    {40, 300, 10, false, false, true},
    {9, 513, 100, false, false, false}, {3, 5000, 2, true, true, false},
    {257, 33, 33, false, false, true},  {300, 1000, 2, true, false, false},
    {40, 4096, 3, true, false, false},
};

TEST_F(CudaEquality, FusedRouteForward) {
  for (const TopKCase &c : kFusedRouteCases) {
    int64_t T = c.T, n = c.n, k = c.k;
    std::string what = describe(c);
    FusedRouteTwins f;
    f.clean =
        twin(c.ties ? tiedValues(T * n, 13) : randomVector(T * n, 13, -10, 10));
    f.raw = twin(randomVector(T * n, 14));
    f.noisy = output<float>(T * n);
    f.std = output<float>(T * n);
    f.top = output<float>(T * (k + 1));
    f.gate = output<float>(T * k);
    f.load = output<float>(n);
    f.importance = output<float>(n);
    f.expert = output<int32_t>(T * k);
    f.offset = output<int32_t>(n + 1);
    f.position = output<int32_t>(T * k);
    f.token = output<int32_t>(T * k);
    for (bool onGpu : {false, true}) {
      rt::Backend &b = onGpu ? *gpu : *cpu;
      auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
      b.fusedRouteForward(T, n, k, p(f.clean), c.noise ? p(f.raw) : nullptr,
                          1e-2f, c.training, kSeed, kCounter, 264, p(f.noisy),
                          p(f.std), p(f.top), p(f.expert), p(f.gate), p(f.load),
                          p(f.importance), p(f.offset), p(f.position),
                          p(f.token));
    }
    expectSame(*f.expert, what + " expert");
    expectSame(*f.offset, what + " expertOffset");
    expectSame(*f.position, what + " positionOf");
    expectSame(*f.token, what + " tokenOfPosition");
    expectClose(*f.noisy, kRtol, kAtol, what + " noisy");
    expectClose(*f.std, kRtol, kAtol, what + " noiseStd");
    expectClose(*f.top, kRtol, kAtol, what + " topValues");
    expectClose(*f.gate, kRtol, kAtol, what + " gate");
    expectClose(*f.load, 1e-5, 1e-5, what + " load");
    expectClose(*f.importance, 1e-5, 1e-5, what + " importance");
  }
}

TEST_F(CudaEquality, FusedRouteForwardEqualsTheSeparateCudaKernels) {
  // Training on the GPU must not change: the same noise, selection and
  // gates bit for bit, the same plan; load and importance differ only in
  // the order of their float sums. Two runs are bitwise equal.
  for (const TopKCase &c : kFusedRouteCases) {
    int64_t T = c.T, n = c.n, k = c.k;
    std::string what = describe(c);
    auto clean =
        c.ties ? tiedValues(T * n, 23) : randomVector(T * n, 23, -10, 10);
    auto raw = randomVector(T * n, 24);
    auto cleanGpu = twin(clean), rawGpu = twin(raw);
    const float *rawPtr = c.noise ? rawGpu->gpu() : nullptr;
    std::vector<std::vector<float>> floats[3];
    std::vector<std::vector<int32_t>> ints[3];
    for (int run = 0; run < 3; ++run) {
      auto noisy = output<float>(T * n), std = output<float>(T * n);
      auto top = output<float>(T * (k + 1)), gate = output<float>(T * k);
      auto load = output<float>(n), importance = output<float>(n);
      auto expert = output<int32_t>(T * k), offset = output<int32_t>(n + 1);
      auto position = output<int32_t>(T * k), token = output<int32_t>(T * k);
      if (run < 2) {
        gpu->fusedRouteForward(T, n, k, cleanGpu->gpu(), rawPtr, 1e-2f,
                               c.training, kSeed, kCounter, 264, noisy->gpu(),
                               std->gpu(), top->gpu(), expert->gpu(),
                               gate->gpu(), load->gpu(), importance->gpu(),
                               offset->gpu(), position->gpu(), token->gpu());
      } else {
        gpu->noisyTopKForward(T, n, k, cleanGpu->gpu(), rawPtr, 1e-2f,
                              c.training, kSeed, kCounter, noisy->gpu(),
                              std->gpu(), top->gpu(), expert->gpu(),
                              gate->gpu(), 264, nullptr);
        gpu->loadEstimateForward(T, n, k, cleanGpu->gpu(), noisy->gpu(),
                                 std->gpu(), top->gpu(), nullptr, load->gpu());
        gpu->importanceForward(T * k, n, expert->gpu(), gate->gpu(),
                               importance->gpu());
        gpu->buildDispatchPlan(T, n, T * k, nullptr, expert->gpu(),
                               offset->gpu(), position->gpu(), token->gpu());
      }
      floats[run] = {noisy->onGpu(), std->onGpu(),  top->onGpu(),
                     gate->onGpu(),  load->onGpu(), importance->onGpu()};
      ints[run] = {expert->onGpu(), offset->onGpu(), position->onGpu(),
                   token->onGpu()};
    }
    const char *floatNames[] = {"noisy", "noiseStd", "topValues",
                                "gate",  "load",     "importance"};
    const char *intNames[] = {"expert", "expertOffset", "positionOf",
                              "tokenOfPosition"};
    for (int i = 0; i < 6; ++i) {
      expectBitwiseEqual(floats[0][i], floats[1][i],
                         what + " fused " + floatNames[i]);
      if (i < 4)
        expectBitwiseEqual(floats[0][i], floats[2][i],
                           what + " fused vs separate " + floatNames[i]);
      else
        expectNear(floats[0][i], floats[2][i], 1e-5, 1e-5,
                   what + " fused vs separate " + floatNames[i]);
    }
    for (int i = 0; i < 4; ++i) {
      expectEqual(ints[0][i], ints[1][i], what + " fused " + intNames[i]);
      expectEqual(ints[0][i], ints[2][i],
                  what + " fused vs separate " + intNames[i]);
    }
  }
}

TEST_F(CudaEquality, FusedRouteBackward) {
  // Inputs: the CPU's fused forward; every subset of the three incoming
  // gradients. Against the CPU, and against the separate CUDA kernels
  // summed as moe-autodiff did before (equal values), twice (bitwise).
  for (const TopKCase &c : kFusedRouteCases) {
    int64_t T = c.T, n = c.n, k = c.k, size = T * n;
    std::vector<float> clean = randomVector(size, 33, -3, 3);
    std::vector<float> raw = randomVector(size, 34);
    std::vector<float> noisy(size), noiseStd(size), top(T * (k + 1)),
        gate(T * k), load(n), importance(n);
    std::vector<int32_t> expert(T * k), offset(n + 1), position(T * k),
        token(T * k);
    cpu->fusedRouteForward(T, n, k, clean.data(), raw.data(), 1e-2f, c.training,
                           kSeed, kCounter, 0, noisy.data(), noiseStd.data(),
                           top.data(), expert.data(), gate.data(), load.data(),
                           importance.data(), offset.data(), position.data(),
                           token.data());
    auto cleanT = twin(clean), rawT = twin(raw), noisyT = twin(noisy);
    auto stdT = twin(noiseStd), topT = twin(top), gateT = twin(gate);
    auto expertT = twin(expert);
    auto dGate = twin(randomVector(T * k, 35));
    auto dLoad = twin(randomVector(n, 36));
    auto dImportance = twin(randomVector(n, 37));
    for (int mask = 1; mask < 8; ++mask) {
      std::string what = describe(c) + (mask & 1 ? " dGate" : "") +
                         (mask & 2 ? " dLoad" : "") +
                         (mask & 4 ? " dImportance" : "");
      auto dClean = output<float>(size), dRaw = output<float>(size);
      for (bool onGpu : {false, true}) {
        rt::Backend &b = onGpu ? *gpu : *cpu;
        auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
        b.fusedRouteBackward(
            T, n, k, p(cleanT), p(rawT), p(noisyT), p(stdT), p(topT),
            p(expertT), p(gateT), mask & 1 ? p(dGate) : nullptr,
            mask & 2 ? p(dLoad) : nullptr, mask & 4 ? p(dImportance) : nullptr,
            p(dClean), p(dRaw));
      }
      expectClose(*dClean, 1e-4, 1e-5, what + " dClean");
      expectClose(*dRaw, 1e-4, 1e-5, what + " dRawNoise");

      auto again = output<float>(size), againRaw = output<float>(size);
      gpu->fusedRouteBackward(
          T, n, k, cleanT->gpu(), rawT->gpu(), noisyT->gpu(), stdT->gpu(),
          topT->gpu(), expertT->gpu(), gateT->gpu(),
          mask & 1 ? dGate->gpu() : nullptr, mask & 2 ? dLoad->gpu() : nullptr,
          mask & 4 ? dImportance->gpu() : nullptr, again->gpu(),
          againRaw->gpu());
      expectBitwiseEqual(again->onGpu(), dClean->onGpu(), what + " dClean");
      expectBitwiseEqual(againRaw->onGpu(), dRaw->onGpu(), what + " dRawNoise");

      // The separate kernels: importance into the gates, top-k, load.
      auto gateGrad = output<float>(T * k),
           fromImportance = output<float>(T * k);
      const float *gg = mask & 1 ? dGate->gpu() : nullptr;
      if (mask & 4) {
        gpu->importanceBackward(T * k, n, expertT->gpu(), dImportance->gpu(),
                                fromImportance->gpu());
        if (gg)
          gpu->add(gg, fromImportance->gpu(), gateGrad->gpu(), T * k);
        else
          gpu->copyDevice(gateGrad->gpu(), fromImportance->gpu(),
                          T * k * sizeof(float));
        gg = gateGrad->gpu();
      }
      auto sepClean = output<float>(size), sepRaw = output<float>(size);
      auto loadClean = output<float>(size), loadRaw = output<float>(size);
      if (gg)
        gpu->noisyTopKBackward(
            T, n, k, noisyT->gpu(), cleanT->gpu(), rawT->gpu(), stdT->gpu(),
            expertT->gpu(), gateT->gpu(), gg, sepClean->gpu(), sepRaw->gpu());
      if (mask & 2) {
        gpu->fill(loadClean->gpu(), 0.0f, size);
        gpu->fill(loadRaw->gpu(), 0.0f, size);
        gpu->loadEstimateBackward(T, n, k, cleanT->gpu(), noisyT->gpu(),
                                  rawT->gpu(), stdT->gpu(), topT->gpu(),
                                  nullptr, dLoad->gpu(), loadClean->gpu(),
                                  loadRaw->gpu());
        if (gg) {
          gpu->add(sepClean->gpu(), loadClean->gpu(), sepClean->gpu(), size);
          gpu->add(sepRaw->gpu(), loadRaw->gpu(), sepRaw->gpu(), size);
        } else {
          gpu->copyDevice(sepClean->gpu(), loadClean->gpu(),
                          size * sizeof(float));
          gpu->copyDevice(sepRaw->gpu(), loadRaw->gpu(), size * sizeof(float));
        }
      }
      // Equal values (a sum with zero may turn -0 into +0).
      expectEqual(dClean->onGpu(), sepClean->onGpu(),
                  what + " fused vs separate dClean");
      expectEqual(dRaw->onGpu(), sepRaw->onGpu(),
                  what + " fused vs separate dRawNoise");
    }
  }
}

TEST_F(CudaEquality, DropPadding) {
  // Lengths from 1 to time, one out of range each way (clamped alike).
  const int64_t B = 5, time = 7, k = 3, T = B * time;
  auto lengths = twin(std::vector<int32_t>{7, 1, 4, 9, -2});
  std::vector<int32_t> ids(T * k);
  for (int64_t i = 0; i < T * k; ++i)
    ids[i] = static_cast<int32_t>((i * 7) % 11);
  auto expert = twin(ids);
  auto gate = twin(randomVector(T * k, 60, 0, 1));
  auto rowPtr = output<int32_t>(T + 1), kept = output<int32_t>(T * k);
  auto keptGate = output<float>(T * k);
  auto dKept = twin(randomVector(T * k, 61));
  auto dGate = output<float>(T * k);
  for (bool onGpu : {false, true}) {
    rt::Backend &b = onGpu ? *gpu : *cpu;
    auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
    b.dropPaddingForward(B, time, k, p(lengths), p(expert), p(gate), p(rowPtr),
                         p(kept), p(keptGate));
    b.dropPaddingBackward(T, k, p(rowPtr), p(dKept), p(dGate));
  }
  expectSame(*rowPtr, "dropPadding rowPtr");
  expectSame(*kept, "dropPadding expert");
  expectSame(*keptGate, "dropPadding gate");
  expectSame(*dGate, "dropPaddingBackward");
}

TEST_F(CudaEquality, SoftmaxGating) {
  for (int64_t n : {1, 7, 1024, 3000}) {
    const int64_t T = 19;
    auto logits = twin(randomVector(T * n, 21, -5, 5));
    auto dProbs = twin(randomVector(T * n, 22));
    auto probs = output<float>(T * n), dLogits = output<float>(T * n);
    cpu->softmaxForward(T, n, logits->cpu(), probs->cpu());
    gpu->softmaxForward(T, n, logits->gpu(), probs->gpu());
    expectClose(*probs, kRtol, kAtol, "softmax n=" + std::to_string(n));
    cpu->softmaxBackward(T, n, probs->cpu(), dProbs->cpu(), dLogits->cpu());
    gpu->softmaxBackward(T, n, probs->gpu(), dProbs->gpu(), dLogits->gpu());
    expectClose(*dLogits, 1e-4, 1e-6, "softmaxBackward n=" + std::to_string(n));
  }
}

struct MaskCase {
  int64_t T, n, m;
  bool ties;
};

TEST_F(CudaEquality, BatchwiseMask) {
  // Warp selection (T <= 256) and radix selection (T > 256), m = 0, m = T,
  // ties between tokens of one column (of the probabilities, which both
  // backends rank).
  const MaskCase cases[] = {{100, 8, 25, false}, {1000, 16, 250, false},
                            {300, 5, 0, false},  {40, 6, 40, false},
                            {500, 4, 77, true},  {1, 3, 1, false},
                            {64, 33, 9, true}};
  for (const MaskCase &c : cases) {
    int64_t T = c.T, n = c.n, m = c.m, A = n * m;
    auto logits = twin(c.ties ? repeatedRows(T, n, 7, 23)
                              : randomVector(T * n, 23, -4, 4));
    auto mask = output<float>(T * n), gate = output<float>(A);
    auto rowPtr = output<int32_t>(T + 1), expert = output<int32_t>(A);
    for (bool onGpu : {false, true}) {
      rt::Backend &b = onGpu ? *gpu : *cpu;
      auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
      b.batchwiseMaskForward(T, n, m, p(logits), p(mask), p(rowPtr), p(expert),
                             p(gate));
    }
    std::string what = "batchwise T=" + std::to_string(T) +
                       " n=" + std::to_string(n) + " m=" + std::to_string(m);
    expectSame(*mask, what + " mask");
    expectSame(*rowPtr, what + " rowPtr");
    expectSame(*expert, what + " expert");
    expectClose(*gate, kRtol, kAtol, what + " gate");
  }
}

TEST_F(CudaEquality, ThresholdMaskAndMaskedGateBackward) {
  for (int64_t n : {5, 40, 1500}) {
    const int64_t T = 77;
    std::vector<float> logitsHost = randomVector(T * n, 24, -2, 2);
    auto logits = twin(logitsHost);
    auto thresholds = twin(thresholdsBetweenProbabilities(logitsHost, T, n));
    auto mask = output<float>(T * n), gate = output<float>(T * n);
    auto rowPtr = output<int32_t>(T + 1), expert = output<int32_t>(T * n);
    int64_t assigned[2] = {-1, -1};
    for (bool onGpu : {false, true}) {
      rt::Backend &b = onGpu ? *gpu : *cpu;
      auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
      b.thresholdMaskForward(T, n, p(logits), p(thresholds), p(mask), p(rowPtr),
                             p(expert), p(gate), T * n, &assigned[onGpu]);
    }
    std::string what = "threshold n=" + std::to_string(n);
    EXPECT_EQ(assigned[1], assigned[0]) << what;
    ASSERT_GT(assigned[0], 0) << what;
    expectSame(*mask, what + " mask");
    expectSame(*rowPtr, what + " rowPtr");
    int64_t A = assigned[0];
    std::vector<int32_t> ge = expert->onGpu(), ce = expert->onCpu();
    expectEqual(std::vector<int32_t>(ge.begin(), ge.begin() + A),
                std::vector<int32_t>(ce.begin(), ce.begin() + A),
                what + " expert");
    std::vector<float> gg = gate->onGpu(), cg = gate->onCpu();
    expectNear(std::vector<float>(gg.begin(), gg.begin() + A),
               std::vector<float>(cg.begin(), cg.begin() + A), kRtol, kAtol,
               what + " gate");

    // The backward reads the CPU routing on both sides.
    auto cpuRowPtr = twin(rowPtr->onCpu()), cpuExpert = twin(ce);
    auto cpuGate = twin(cg);
    auto dGate = twin(randomVector(T * n, 26));
    auto dLogits = output<float>(T * n);
    for (bool onGpu : {false, true}) {
      rt::Backend &b = onGpu ? *gpu : *cpu;
      auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
      b.maskedGateBackward(T, n, p(cpuRowPtr), p(cpuExpert), p(cpuGate),
                           p(dGate), p(dLogits));
    }
    expectClose(*dLogits, 1e-5, 1e-6, what + " maskedGateBackward");
  }
}

TEST_F(CudaEquality, ThresholdMaskCapacity) {
  // As GroupedThresholdMaskCapacity for the flat mask: exactly enough slots
  // give the uncapped routing and nothing written behind it on either
  // backend; one less is the same runtime error on both, with nothing
  // written.
  for (int64_t n : {5, 40, 1500}) {
    const int64_t T = 77, guard = 8;
    std::vector<float> logitsHost = randomVector(T * n, 27, -2, 2);
    auto logits = twin(logitsHost);
    auto thresholds = twin(thresholdsBetweenProbabilities(logitsHost, T, n));
    int64_t A = -1;
    {
      auto mask = output<float>(T * n), gate = output<float>(T * n);
      auto rowPtr = output<int32_t>(T + 1), expert = output<int32_t>(T * n);
      cpu->thresholdMaskForward(T, n, logits->cpu(), thresholds->cpu(),
                                mask->cpu(), rowPtr->cpu(), expert->cpu(),
                                gate->cpu(), T * n, &A);
    }
    std::string what = "threshold capacity n=" + std::to_string(n);
    ASSERT_GT(A, 1) << what;
    auto mask = output<float>(T * n), gate = output<float>(A + guard);
    auto rowPtr = output<int32_t>(T + 1), expert = output<int32_t>(A + guard);
    int64_t assigned[2] = {-1, -1};
    for (bool onGpu : {false, true}) {
      rt::Backend &b = onGpu ? *gpu : *cpu;
      auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
      b.thresholdMaskForward(T, n, p(logits), p(thresholds), p(mask), p(rowPtr),
                             p(expert), p(gate), A, &assigned[onGpu]);
    }
    EXPECT_EQ(assigned[0], A) << what;
    EXPECT_EQ(assigned[1], A) << what;
    expectSame(*mask, what + " mask");
    expectSame(*rowPtr, what + " rowPtr");
    expectSame(*expert, what + " expert");
    expectClose(*gate, kRtol, kAtol, what + " gate");
    std::vector<int32_t> ge = expert->onGpu();
    expectEqual(std::vector<int32_t>(ge.begin() + A, ge.end()),
                std::vector<int32_t>(guard, -77), what + " guard");

    auto lessGate = output<float>(A + guard);
    auto lessExpert = output<int32_t>(A + guard);
    std::string message[2];
    for (bool onGpu : {false, true}) {
      rt::Backend &b = onGpu ? *gpu : *cpu;
      auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
      try {
        b.thresholdMaskForward(T, n, p(logits), p(thresholds), p(mask),
                               p(rowPtr), p(lessExpert), p(lessGate), A - 1,
                               nullptr);
        ADD_FAILURE() << what << ": no error with a capacity of A - 1, gpu "
                      << onGpu;
      } catch (const std::runtime_error &e) {
        message[onGpu] = e.what();
      }
    }
    EXPECT_EQ(message[1], message[0]) << what;
    EXPECT_NE(message[0].find("thresholdMaskForward: " + std::to_string(A) +
                              " assignments pass the thresholds but the "
                              "compiled capacity is " +
                              std::to_string(A - 1)),
              std::string::npos)
        << message[0];
    expectEqual(lessExpert->onGpu(), std::vector<int32_t>(A + guard, -77),
                what + " overflow expert");
    expectEqual(lessGate->onGpu(), std::vector<float>(A + guard, -77.0f),
                what + " overflow gate");
  }
}

TEST_F(CudaEquality, BatchwiseThresholdLoss) {
  const int64_t T = 513, n = 12;
  std::vector<float> logitsHost = randomVector(T * n, 27, -2, 2);
  auto logits = twin(logitsHost);
  std::vector<float> maskHost = randomVector(T * n, 28, 0, 1);
  for (float &x : maskHost)
    x = x < 0.3f ? 1.0f : 0.0f;
  auto mask = twin(maskHost);
  auto thresholds = twin(thresholdsBetweenProbabilities(logitsHost, T, n));
  auto loss = output<float>(1), dThr = output<float>(n);
  auto dLoss = twin(std::vector<float>{0.7f}); // in backend memory
  for (bool onGpu : {false, true}) {
    rt::Backend &b = onGpu ? *gpu : *cpu;
    auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
    b.batchwiseThresholdLossForward(T, n, p(logits), p(mask), p(thresholds),
                                    p(loss));
    b.batchwiseThresholdLossBackward(T, n, p(logits), p(mask), p(thresholds),
                                     p(dLoss), p(dThr));
  }
  expectClose(*loss, 1e-5, 1e-5, "threshold loss");
  expectClose(*dThr, kRtol, kAtol, "dThresholds");
}

/// A token-major routing with variable experts per token, tokens without
/// experts and experts without tokens (e is never 1 or n - 1).
struct RoutingHost {
  std::vector<int32_t> rowPtr{0}, expert;
};

RoutingHost randomRouting(int64_t T, int64_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  RoutingHost r;
  for (int64_t t = 0; t < T; ++t) {
    std::vector<int32_t> experts;
    for (int32_t e = 0; e < n; ++e)
      if (e != 1 && e != n - 1)
        experts.push_back(e);
    std::shuffle(experts.begin(), experts.end(), gen);
    int64_t count = std::min<int64_t>(gen() % 4, experts.size());
    r.expert.insert(r.expert.end(), experts.begin(), experts.begin() + count);
    r.rowPtr.push_back(static_cast<int32_t>(r.expert.size()));
  }
  return r;
}

TEST_F(CudaEquality, BalancingLosses) {
  const int64_t T = 300, n = 9;
  RoutingHost r = randomRouting(T, n, 30);
  int64_t A = r.expert.size();
  auto expert = twin(r.expert);
  auto gate = twin(randomVector(A, 31, 0, 1));
  auto importance = output<float>(n), dGate = output<float>(A);
  auto dImportance = twin(randomVector(n, 32));
  auto cv = output<float>(1), l2 = output<float>(1);
  auto dCv = output<float>(n), dL2 = output<float>(n);
  // The gradients of the losses are read from backend memory.
  auto dLoss = twin(std::vector<float>{1.5f});
  for (bool onGpu : {false, true}) {
    rt::Backend &b = onGpu ? *gpu : *cpu;
    auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
    b.importanceForward(A, n, p(expert), p(gate), p(importance));
    b.importanceBackward(A, n, p(expert), p(dImportance), p(dGate));
    b.cvSquaredForward(n, p(importance), 0.1f, p(cv));
    b.cvSquaredBackward(n, p(importance), 0.1f, p(dLoss), p(dCv));
    b.l2BalanceForward(T, n, p(importance), 0.2f, p(l2));
    b.l2BalanceBackward(T, n, p(importance), 0.2f, p(dLoss), p(dL2));
  }
  expectClose(*importance, 1e-5, 1e-6, "importance");
  EXPECT_EQ(importance->onGpu()[1], 0.0f) << "an expert without tokens";
  expectSame(*dGate, "importanceBackward");
  expectClose(*cv, 1e-5, 1e-7, "cvSquared");
  expectClose(*dCv, 1e-4, 1e-7, "cvSquaredBackward");
  expectClose(*l2, 1e-5, 1e-7, "l2Balance");
  expectClose(*dL2, 1e-5, 1e-7, "l2BalanceBackward");

  // Another value in memory: both backends read it at the call (dLoss = -3
  // gives -2 times the gradients of dLoss = 1.5).
  std::vector<float> cvBefore = dCv->onGpu(), l2Before = dL2->onGpu();
  float minusThree = -3.0f;
  cpu->copyFromHost(dLoss->cpu(), &minusThree, sizeof(float));
  gpu->copyFromHost(dLoss->gpu(), &minusThree, sizeof(float));
  for (bool onGpu : {false, true}) {
    rt::Backend &b = onGpu ? *gpu : *cpu;
    auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
    b.cvSquaredBackward(n, p(importance), 0.1f, p(dLoss), p(dCv));
    b.l2BalanceBackward(T, n, p(importance), 0.2f, p(dLoss), p(dL2));
  }
  expectClose(*dCv, 1e-4, 1e-7, "cvSquaredBackward dLoss=-3");
  expectClose(*dL2, 1e-5, 1e-7, "l2BalanceBackward dLoss=-3");
  for (float &g : cvBefore)
    g *= -2.0f;
  for (float &g : l2Before)
    g *= -2.0f;
  expectNear(dCv->onGpu(), cvBefore, 1e-5, 1e-7, "cuda dCv scales with dLoss");
  expectNear(dL2->onGpu(), l2Before, 1e-5, 1e-7, "cuda dL2 scales with dLoss");
}

//===----------------------------------------------------------------------===//
// Dispatch and experts
//===----------------------------------------------------------------------===//

/// A routing and its dispatch plan arrays on both backends.
struct TwinPlan {
  int64_t T = 0, n = 0, A = 0;
  std::unique_ptr<Twin<int32_t>> rowPtr, expert, offset, positionOf,
      tokenOfPosition;
};

TEST_F(CudaEquality, DispatchCombineAndGroupedMatmul) {
  const int64_t T = 97, n = 11, d = 20, dOut = 36;
  RoutingHost r = randomRouting(T, n, 33);
  int64_t A = r.expert.size();
  TwinPlan plan;
  plan.rowPtr = twin(r.rowPtr);
  plan.expert = twin(r.expert);
  plan.offset = output<int32_t>(n + 1);
  plan.positionOf = output<int32_t>(A);
  plan.tokenOfPosition = output<int32_t>(A);
  for (bool onGpu : {false, true}) {
    auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
    (onGpu ? *gpu : *cpu)
        .buildDispatchPlan(T, n, A, p(plan.rowPtr), p(plan.expert),
                           p(plan.offset), p(plan.positionOf),
                           p(plan.tokenOfPosition));
  }
  expectSame(*plan.offset, "expertOffset");
  expectSame(*plan.positionOf, "positionOf");
  expectSame(*plan.tokenOfPosition, "tokenOfPosition");

  auto x = twin(randomVector(T * d, 34));
  auto gate = twin(randomVector(A, 35, 0, 1));
  auto buffer = output<float>(A * d), dx = output<float>(T * d);
  auto expertOut = twin(randomVector(A * dOut, 36));
  auto y = output<float>(T * dOut), dy = twin(randomVector(T * dOut, 37));
  auto dExpertOut = output<float>(A * dOut), dGate = output<float>(A);
  auto weights = twin(randomVector(n * d * dOut, 38));
  auto out = output<float>(A * dOut), dIn = output<float>(A * d);
  auto dWeights = output<float>(n * d * dOut);
  for (bool onGpu : {false, true}) {
    rt::Backend &b = onGpu ? *gpu : *cpu;
    auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
    const int32_t *rowPtr = p(plan.rowPtr), *positionOf = p(plan.positionOf);
    b.dispatchForward(A, d, p(plan.tokenOfPosition), p(x), p(buffer));
    b.dispatchBackward(T, A, d, rowPtr, positionOf, p(buffer), p(dx));
    b.combineForward(T, A, dOut, rowPtr, positionOf, p(gate), p(expertOut),
                     p(y));
    b.combineBackward(T, A, dOut, rowPtr, positionOf, p(gate), p(expertOut),
                      p(dy), p(dExpertOut), p(dGate));
    b.groupedMatmulForward(A, n, d, dOut, p(plan.offset), p(buffer), p(weights),
                           p(out), rt::GemmPrecision::F32);
    b.groupedMatmulBackward(A, n, d, dOut, p(plan.offset), p(buffer),
                            p(weights), p(expertOut), p(dIn), p(dWeights),
                            rt::GemmPrecision::F32);
  }
  expectSame(*buffer, "dispatchForward");
  expectClose(*dx, kRtol, kAtol, "dispatchBackward");
  expectClose(*y, kRtol, kAtol, "combineForward");
  expectClose(*dExpertOut, kRtol, kAtol, "combineBackward dExpertOut");
  expectClose(*dGate, 1e-5, 1e-5, "combineBackward dGate");
  expectClose(*out, 1e-5, 1e-5, "groupedMatmulForward");
  expectClose(*dIn, 1e-5, 1e-5, "groupedMatmulBackward dInput");
  expectClose(*dWeights, 1e-5, 1e-5, "groupedMatmulBackward dWeights");
  std::vector<float> gw = dWeights->onGpu();
  EXPECT_EQ(maxAbs(std::vector<float>(gw.begin() + d * dOut,
                                      gw.begin() + 2 * d * dOut)),
            0.0f)
      << "expert 1 has no tokens: its weight gradient is zero";

  // Reduced precision against the CPU's f32, relative to the output scale.
  for (rt::GemmPrecision precision :
       {rt::GemmPrecision::TF32, rt::GemmPrecision::BF16}) {
    std::string what =
        precision == rt::GemmPrecision::TF32 ? "grouped tf32" : "grouped bf16";
    gpu->groupedMatmulForward(A, n, d, dOut, plan.offset->gpu(), buffer->gpu(),
                              weights->gpu(), out->gpu(), precision);
    std::vector<float> reference = out->onCpu();
    expectNear(out->onGpu(), reference, 1e-2, 1e-2 * maxAbs(reference), what);
    gpu->groupedMatmulBackward(A, n, d, dOut, plan.offset->gpu(), buffer->gpu(),
                               weights->gpu(), expertOut->gpu(), dIn->gpu(),
                               dWeights->gpu(), precision);
    reference = dIn->onCpu();
    expectNear(dIn->onGpu(), reference, 1e-2, 1e-2 * maxAbs(reference),
               what + " dInput");
    reference = dWeights->onCpu();
    expectNear(dWeights->onGpu(), reference, 1e-2, 1e-2 * maxAbs(reference),
               what + " dWeights");
  }
}

TEST_F(CudaEquality, BatchedMatmulOverEqualSegments) {
  // Odd widths exercise the bf16 copies' padded leading dimensions.
  const int64_t n = 6, d = 20, dOut = 37;
  for (int64_t rows : {int64_t(13), int64_t(0)}) {
    SCOPED_TRACE(testing::Message() << "rows per expert " << rows);
    const int64_t A = n * rows;
    std::vector<int32_t> offsets(n + 1);
    for (int64_t e = 0; e <= n; ++e)
      offsets[e] = static_cast<int32_t>(e * rows);
    auto offset = twin(offsets);
    auto in = twin(randomVector(std::max<int64_t>(A * d, 1), 71));
    auto weights = twin(randomVector(n * d * dOut, 72));
    auto dOutput = twin(randomVector(std::max<int64_t>(A * dOut, 1), 73));
    auto out = output<float>(std::max<int64_t>(A * dOut, 1));
    auto dIn = output<float>(std::max<int64_t>(A * d, 1));
    auto dWeights = output<float>(n * d * dOut);
    for (rt::GemmPrecision precision :
         {rt::GemmPrecision::F32, rt::GemmPrecision::TF32,
          rt::GemmPrecision::BF16}) {
      for (bool onGpu : {false, true}) {
        rt::Backend &b = onGpu ? *gpu : *cpu;
        auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
        b.batchedMatmulForward(n, rows, d, dOut, p(offset), p(in), p(weights),
                               p(out), precision);
        b.batchedMatmulBackward(n, rows, d, dOut, p(offset), p(in), p(weights),
                                p(dOutput), p(dIn), p(dWeights), precision);
      }
      if (precision == rt::GemmPrecision::F32) {
        if (A > 0) {
          expectClose(*out, 1e-5, 1e-5, "batchedMatmulForward");
          expectClose(*dIn, 1e-5, 1e-5, "batchedMatmulBackward dInput");
        }
        expectClose(*dWeights, 1e-5, 1e-5, "batchedMatmulBackward dWeights");
        continue;
      }
      // Reduced precision against the CPU's f32, relative to the scale.
      std::string what = precision == rt::GemmPrecision::TF32 ? "batched tf32"
                                                              : "batched bf16";
      std::vector<float> reference = dWeights->onCpu();
      expectNear(dWeights->onGpu(), reference, 1e-2,
                 1e-2 * std::max(maxAbs(reference), 1e-6f), what + " dWeights");
      if (A == 0)
        continue;
      reference = out->onCpu();
      expectNear(out->onGpu(), reference, 1e-2, 1e-2 * maxAbs(reference), what);
      reference = dIn->onCpu();
      expectNear(dIn->onGpu(), reference, 1e-2, 1e-2 * maxAbs(reference),
                 what + " dInput");
    }
    if (rows == 0)
      EXPECT_EQ(maxAbs(dWeights->onGpu()), 0.0f)
          << "experts without rows get zero weight gradients";
  }
}

TEST_F(CudaEquality, DispatchPlanWithoutAssignments) {
  const int64_t T = 5, n = 3;
  auto rowPtr = twin(std::vector<int32_t>(T + 1, 0));
  auto expert = output<int32_t>(1);
  auto offset = output<int32_t>(n + 1);
  auto positionOf = output<int32_t>(1), tokenOfPosition = output<int32_t>(1);
  gpu->buildDispatchPlan(T, n, 0, rowPtr->gpu(), expert->gpu(), offset->gpu(),
                         positionOf->gpu(), tokenOfPosition->gpu());
  expectEqual(offset->onGpu(), std::vector<int32_t>(n + 1, 0), "empty offsets");
  auto y = output<float>(T * 4), values = twin(randomVector(4, 39));
  gpu->combineForward(T, 0, 4, rowPtr->gpu(), positionOf->gpu(), values->gpu(),
                      values->gpu(), y->gpu());
  expectEqual(y->onGpu(), std::vector<float>(T * 4, 0.0f),
              "combine of no assignments");
  // The same without row pointers (0 / T = 0 assignments per token).
  offset = output<int32_t>(n + 1);
  gpu->buildDispatchPlan(T, n, 0, nullptr, expert->gpu(), offset->gpu(),
                         positionOf->gpu(), tokenOfPosition->gpu());
  expectEqual(offset->onGpu(), std::vector<int32_t>(n + 1, 0),
              "empty offsets, null rowPtr");
  y = output<float>(T * 4);
  gpu->combineForward(T, 0, 4, nullptr, positionOf->gpu(), values->gpu(),
                      values->gpu(), y->gpu());
  expectEqual(y->onGpu(), std::vector<float>(T * 4, 0.0f),
              "combine of no assignments, null rowPtr");
}

// A null rowPtr means A / T assignments per token (top-k): on the GPU the
// plan and the dispatch / combine kernels give the bits of the call with
// the row pointers [0, k, 2k, ...], and agree with the CPU's null-rowPtr
// call.
TEST_F(CudaEquality, ImplicitRowPointers) {
  const int64_t d = 24;
  struct Case {
    int64_t T, n, k;
  };
  for (Case c : {Case{97, 11, 3}, Case{1, 4, 4}, Case{300, 64, 1}}) {
    std::string what = "T=" + std::to_string(c.T) +
                       " n=" + std::to_string(c.n) +
                       " k=" + std::to_string(c.k);
    int64_t T = c.T, n = c.n, A = T * c.k;
    std::mt19937 gen(90);
    std::vector<int32_t> rowPtrHost(T + 1), expertHost;
    for (int64_t t = 0; t < T; ++t) {
      std::vector<int32_t> experts(n);
      std::iota(experts.begin(), experts.end(), 0);
      std::shuffle(experts.begin(), experts.end(), gen);
      expertHost.insert(expertHost.end(), experts.begin(),
                        experts.begin() + c.k);
    }
    for (int64_t t = 0; t <= T; ++t)
      rowPtrHost[t] = static_cast<int32_t>(t * c.k);
    auto rowPtr = twin(rowPtrHost), expert = twin(expertHost);
    // Plan with explicit row pointers (GPU), and with none (both).
    auto offset = output<int32_t>(n + 1), positionOf = output<int32_t>(A),
         tokenOfPosition = output<int32_t>(A);
    gpu->buildDispatchPlan(T, n, A, rowPtr->gpu(), expert->gpu(), offset->gpu(),
                           positionOf->gpu(), tokenOfPosition->gpu());
    std::vector<int32_t> explicitOffset = offset->onGpu(),
                         explicitPosition = positionOf->onGpu(),
                         explicitToken = tokenOfPosition->onGpu();
    offset = output<int32_t>(n + 1);
    positionOf = output<int32_t>(A);
    tokenOfPosition = output<int32_t>(A);
    for (bool onGpu : {false, true}) {
      auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
      (onGpu ? *gpu : *cpu)
          .buildDispatchPlan(T, n, A, nullptr, p(expert), p(offset),
                             p(positionOf), p(tokenOfPosition));
    }
    expectEqual(offset->onGpu(), explicitOffset, what + " offsets");
    expectEqual(positionOf->onGpu(), explicitPosition, what + " positionOf");
    expectEqual(tokenOfPosition->onGpu(), explicitToken,
                what + " tokenOfPosition");
    expectSame(*offset, what + " offsets vs cpu");
    expectSame(*positionOf, what + " positionOf vs cpu");
    expectSame(*tokenOfPosition, what + " tokenOfPosition vs cpu");

    auto dBuffer = twin(randomVector(A * d, 91));
    auto gate = twin(randomVector(A, 92, 0, 1));
    auto expertOut = twin(randomVector(A * d, 93));
    auto dy = twin(randomVector(T * d, 94));
    auto dx = output<float>(T * d), y = output<float>(T * d);
    auto dExpertOut = output<float>(A * d), dGate = output<float>(A);
    // rows: the row pointers on the GPU (explicit) or null, on `b`.
    auto run = [&](rt::Backend &b, bool onGpu, const int32_t *rows) {
      auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
      b.dispatchBackward(T, A, d, rows, p(positionOf), p(dBuffer), p(dx));
      b.combineForward(T, A, d, rows, p(positionOf), p(gate), p(expertOut),
                       p(y));
      b.combineBackward(T, A, d, rows, p(positionOf), p(gate), p(expertOut),
                        p(dy), p(dExpertOut), p(dGate));
    };
    run(*gpu, true, rowPtr->gpu());
    std::vector<float> explicitDx = dx->onGpu(), explicitY = y->onGpu(),
                       explicitDOut = dExpertOut->onGpu(),
                       explicitDGate = dGate->onGpu();
    run(*gpu, true, nullptr);
    run(*cpu, false, nullptr);
    expectBitwiseEqual(dx->onGpu(), explicitDx, what + " dispatchBackward");
    expectBitwiseEqual(y->onGpu(), explicitY, what + " combineForward");
    expectBitwiseEqual(dExpertOut->onGpu(), explicitDOut,
                       what + " combineBackward dExpertOut");
    expectBitwiseEqual(dGate->onGpu(), explicitDGate,
                       what + " combineBackward dGate");
    expectClose(*dx, kRtol, kAtol, what + " dispatchBackward vs cpu");
    expectClose(*y, kRtol, kAtol, what + " combineForward vs cpu");
    expectClose(*dExpertOut, kRtol, kAtol, what + " dExpertOut vs cpu");
    expectClose(*dGate, 1e-5, 1e-5, what + " dGate vs cpu");
  }
  // A must split evenly over the tokens.
  auto expert = twin(std::vector<int32_t>{0, 1, 2});
  auto offset = output<int32_t>(4), positions = output<int32_t>(3),
       tokens = output<int32_t>(3);
  EXPECT_THROW(gpu->buildDispatchPlan(2, 3, 3, nullptr, expert->gpu(),
                                      offset->gpu(), positions->gpu(),
                                      tokens->gpu()),
               std::invalid_argument);
}

//===----------------------------------------------------------------------===//
// Sequence layers
//===----------------------------------------------------------------------===//

TEST_F(CudaEquality, Embedding) {
  const int64_t T = 300, d = 24, vocab = 17;
  std::vector<int32_t> ids(T);
  std::mt19937 gen(40);
  for (int32_t &id : ids)
    id = static_cast<int32_t>(gen() % vocab); // many repeats
  auto idTwin = twin(ids);
  auto table = twin(randomVector(vocab * d, 41));
  auto out = output<float>(T * d), dOut = twin(randomVector(T * d, 42));
  auto dTable = twin(randomVector(vocab * d, 43)); // accumulates
  for (bool onGpu : {false, true}) {
    rt::Backend &b = onGpu ? *gpu : *cpu;
    auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
    b.embeddingForward(T, d, p(idTwin), p(table), p(out));
    b.embeddingBackward(T, d, p(idTwin), p(dOut), p(dTable));
  }
  expectSame(*out, "embeddingForward");
  // Same token order on both sides: the sums are the same additions.
  expectClose(*dTable, 1e-6, 1e-6, "embeddingBackward");
}

TEST_F(CudaEquality, RowGradient) {
  const int64_t n = 300, d = 24, vocab = 40;
  std::vector<int32_t> keys(n);
  std::mt19937 gen(140);
  for (int32_t &key : keys) // repeats and skipped (negative) keys
    key = static_cast<int32_t>(gen() % (vocab + 5)) - 5;
  auto keyTwin = twin(keys);
  auto values = twin(randomVector(n * d, 141));
  auto rows = twin(std::vector<int32_t>(n, 7));
  auto sums = twin(randomVector(n * d, 142)); // written, not accumulated
  for (bool onGpu : {false, true}) {
    rt::Backend &b = onGpu ? *gpu : *cpu;
    auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
    b.rowGradient(n, d, vocab, p(keyTwin), p(values), p(rows), p(sums));
  }
  expectSame(*rows, "rowGradient rows");
  // Same input order on both sides: the sums are the same additions.
  expectSame(*sums, "rowGradient values");
}

TEST_F(CudaEquality, Lstm) {
  const int64_t B = 3, S = 5, dIn = 7, H = 6;
  for (int64_t P : {int64_t(6), int64_t(4)}) {
    bool projected = P != H;
    auto x = twin(randomVector(B * S * dIn, 44));
    auto Wx = twin(randomVector(dIn * 4 * H, 45, -0.5, 0.5));
    auto Wh = twin(randomVector(P * 4 * H, 46, -0.5, 0.5));
    auto bias = twin(randomVector(4 * H, 47));
    auto proj = twin(randomVector(H * P, 48));
    auto y = output<float>(B * S * P), dy = twin(randomVector(B * S * P, 49));
    auto dx = output<float>(B * S * dIn), dWx = output<float>(dIn * 4 * H);
    auto dWh = output<float>(P * 4 * H), dBias = output<float>(4 * H);
    auto dProj = output<float>(H * P);
    int64_t cpuWs = cpu->lstmWorkspaceSize(B, S, dIn, H, P);
    int64_t gpuWs = gpu->lstmWorkspaceSize(B, S, dIn, H, P);
    // Workspaces are backend-private: each side gets its own size.
    std::vector<float> cpuWorkspace(cpuWs);
    float *gpuWorkspace =
        static_cast<float *>(gpu->alloc(gpuWs * sizeof(float)));
    for (bool onGpu : {false, true}) {
      rt::Backend &b = onGpu ? *gpu : *cpu;
      auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
      float *ws = onGpu ? gpuWorkspace : cpuWorkspace.data();
      const float *pr = projected ? p(proj) : nullptr;
      b.lstmForward(B, S, dIn, H, P, p(x), p(Wx), p(Wh), p(bias), pr, nullptr,
                    nullptr, p(y), nullptr, nullptr, ws,
                    rt::GemmPrecision::F32);
      b.lstmBackward(B, S, dIn, H, P, p(x), p(Wx), p(Wh), p(bias), pr, ws,
                     p(dy), p(dx), p(dWx), p(dWh), p(dBias),
                     projected ? p(dProj) : nullptr, rt::GemmPrecision::F32);
    }
    std::string what = projected ? "lstm P=4" : "lstm";
    expectClose(*y, 1e-5, 1e-5, what + " y");
    expectClose(*dx, 1e-4, 1e-5, what + " dx");
    expectClose(*dWx, 1e-4, 1e-5, what + " dWx");
    expectClose(*dWh, 1e-4, 1e-5, what + " dWh");
    expectClose(*dBias, 1e-4, 1e-5, what + " dBias");
    if (projected)
      expectClose(*dProj, 1e-4, 1e-5, what + " dProj");

    // BF16 GEMMs stay close to the f32 result.
    gpu->lstmForward(B, S, dIn, H, P, x->gpu(), Wx->gpu(), Wh->gpu(),
                     bias->gpu(), projected ? proj->gpu() : nullptr, nullptr,
                     nullptr, y->gpu(), nullptr, nullptr, gpuWorkspace,
                     rt::GemmPrecision::BF16);
    std::vector<float> reference = y->onCpu();
    expectNear(y->onGpu(), reference, 3e-2, 3e-2 * maxAbs(reference),
               what + " bf16 y");
    gpu->release(gpuWorkspace);
  }
}

// The decode-step form: a given initial state and the final state out.
TEST_F(CudaEquality, LstmWithState) {
  const int64_t B = 3, S = 2, dIn = 5, H = 6;
  for (int64_t P : {int64_t(6), int64_t(4)}) {
    bool projected = P != H;
    auto x = twin(randomVector(B * S * dIn, 60));
    auto Wx = twin(randomVector(dIn * 4 * H, 61, -0.5, 0.5));
    auto Wh = twin(randomVector(P * 4 * H, 62, -0.5, 0.5));
    auto bias = twin(randomVector(4 * H, 63));
    auto proj = twin(randomVector(H * P, 64));
    auto h0 = twin(randomVector(B * P, 65)), c0 = twin(randomVector(B * H, 66));
    auto y = output<float>(B * S * P), hT = output<float>(B * P);
    auto cT = output<float>(B * H);
    std::vector<float> cpuWorkspace(cpu->lstmWorkspaceSize(B, S, dIn, H, P));
    float *gpuWorkspace = static_cast<float *>(
        gpu->alloc(gpu->lstmWorkspaceSize(B, S, dIn, H, P) * sizeof(float)));
    for (bool onGpu : {false, true}) {
      rt::Backend &b = onGpu ? *gpu : *cpu;
      auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
      b.lstmForward(B, S, dIn, H, P, p(x), p(Wx), p(Wh), p(bias),
                    projected ? p(proj) : nullptr, p(h0), p(c0), p(y), p(hT),
                    p(cT), onGpu ? gpuWorkspace : cpuWorkspace.data(),
                    rt::GemmPrecision::F32);
    }
    std::string what = projected ? "lstm state P=4" : "lstm state";
    expectClose(*y, 1e-5, 1e-5, what + " y");
    expectClose(*hT, 1e-5, 1e-5, what + " hT");
    expectClose(*cT, 1e-5, 1e-5, what + " cT");
    gpu->release(gpuWorkspace);
  }
}

TEST_F(CudaEquality, Attention) {
  // Without lengths, and with padded sources (lengths 7 and 3 of 7).
  for (bool padded : {false, true}) {
    SCOPED_TRACE(padded ? "with lengths" : "without lengths");
    const int64_t B = 2, Sx = 7, Sy = 5, dX = 6, dY = 4, E = 8;
    auto lengths = twin(std::vector<int32_t>{7, 3});
    auto x = twin(randomVector(B * Sx * dX, 50));
    auto y = twin(randomVector(B * Sy * dY, 51));
    auto U = twin(randomVector(dX * E, 52)), W = twin(randomVector(dY * E, 53));
    auto V = twin(randomVector(E, 54));
    auto context = output<float>(B * Sy * dX);
    auto dContext = twin(randomVector(B * Sy * dX, 55));
    auto dx = output<float>(B * Sx * dX), dy = output<float>(B * Sy * dY);
    auto dU = output<float>(dX * E), dW = output<float>(dY * E);
    auto dV = output<float>(E);
    std::vector<float> cpuWorkspace(
        cpu->attentionWorkspaceSize(B, Sx, Sy, dX, dY, E));
    int64_t gpuWs = gpu->attentionWorkspaceSize(B, Sx, Sy, dX, dY, E);
    float *gpuWorkspace =
        static_cast<float *>(gpu->alloc(gpuWs * sizeof(float)));
    for (bool onGpu : {false, true}) {
      rt::Backend &b = onGpu ? *gpu : *cpu;
      auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
      float *ws = onGpu ? gpuWorkspace : cpuWorkspace.data();
      b.attentionForward(B, Sx, Sy, dX, dY, E, p(x), p(y), p(U), p(W), p(V),
                         padded ? p(lengths) : nullptr, p(context), ws);
      b.attentionBackward(B, Sx, Sy, dX, dY, E, p(x), p(y), p(U), p(W), p(V),
                          ws, p(dContext), p(dx), p(dy), p(dU), p(dW), p(dV));
    }
    gpu->release(gpuWorkspace);
    expectClose(*context, 1e-5, 1e-5, "attention context");
    expectClose(*dx, 1e-4, 1e-5, "attention dx");
    expectClose(*dy, 1e-4, 1e-5, "attention dy");
    expectClose(*dU, 1e-4, 1e-5, "attention dU");
    expectClose(*dW, 1e-4, 1e-5, "attention dW");
    expectClose(*dV, 1e-4, 1e-5, "attention dV");
    if (padded) {
      // No gradient reaches the padded positions 3..6 of sequence 1.
      std::vector<float> onGpu = dx->onGpu();
      for (int64_t q = (Sx + 3) * dX; q < 2 * Sx * dX; ++q)
        EXPECT_EQ(onGpu[q], 0.0f) << "padded dx at " << q;
    }
  }
}

//===----------------------------------------------------------------------===//
// Losses and optimizer
//===----------------------------------------------------------------------===//

TEST_F(CudaEquality, SoftmaxCrossEntropy) {
  for (int64_t V : {10, 5000}) {
    const int64_t T = 23;
    std::vector<int32_t> targets(T);
    std::mt19937 gen(56);
    for (int64_t t = 0; t < T; ++t)
      targets[t] = t % 5 == 3 ? -1 : static_cast<int32_t>(gen() % V);
    auto tg = twin(targets);
    auto logits = twin(randomVector(T * V, 57, -6, 6));
    auto loss = output<float>(1), dLogits = output<float>(T * V);
    // The gradient factor 0.25 = dLoss[0] (in backend memory) * dLossScale.
    auto dLoss = twin(std::vector<float>{0.5f});
    int64_t tokens[2] = {-1, -1};
    for (bool onGpu : {false, true}) {
      rt::Backend &b = onGpu ? *gpu : *cpu;
      auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
      b.softmaxCrossEntropy(T, V, p(logits), p(tg), p(dLoss), 0.5f, p(loss),
                            p(dLogits), &tokens[onGpu]);
    }
    std::string what = "cross-entropy V=" + std::to_string(V);
    EXPECT_EQ(tokens[1], tokens[0]) << what;
    expectClose(*loss, 1e-5, 1e-5, what + " loss");
    expectClose(*dLogits, 1e-4, 1e-7, what + " dLogits");

    // A null dLoss counts as 1: the factor is dLossScale alone, the same
    // bits on the GPU as dLoss[0] = 1 in memory.
    std::vector<float> withPointer = dLogits->onGpu();
    auto nullLogits = output<float>(T * V);
    for (bool onGpu : {false, true}) {
      rt::Backend &b = onGpu ? *gpu : *cpu;
      auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
      b.softmaxCrossEntropy(T, V, p(logits), p(tg), nullptr, 0.25f, p(loss),
                            p(nullLogits), &tokens[onGpu]);
    }
    expectClose(*nullLogits, 1e-4, 1e-7, what + " dLogits, null dLoss");
    auto one = twin(std::vector<float>{1.0f});
    gpu->softmaxCrossEntropy(T, V, logits->gpu(), tg->gpu(), one->gpu(), 0.25f,
                             loss->gpu(), dLogits->gpu(), nullptr);
    expectBitwiseEqual(nullLogits->onGpu(), dLogits->onGpu(),
                       what + " null dLoss vs dLoss = 1");
    // dLoss[0] = 2 doubles the GPU's gradient (the same rounding, times 2).
    auto two = twin(std::vector<float>{2.0f});
    gpu->softmaxCrossEntropy(T, V, logits->gpu(), tg->gpu(), two->gpu(), 0.25f,
                             loss->gpu(), dLogits->gpu(), nullptr);
    std::vector<float> doubled = nullLogits->onGpu();
    for (float &g : doubled)
      g *= 2.0f;
    expectNear(dLogits->onGpu(), doubled, 1e-6, 1e-9,
               what + " dLoss = 2 doubles dLogits");
  }
}

TEST_F(CudaEquality, SampledSoftmaxCrossEntropy) {
  const int64_t T = 33, d = 16, V = 1000, S = 64;
  std::vector<int32_t> targets(T);
  std::mt19937 gen(58);
  for (int64_t t = 0; t < T; ++t)
    // Small classes are drawn often: accidental hits happen.
    targets[t] = t == 4 ? -1 : static_cast<int32_t>(gen() % 20);
  auto tg = twin(targets);
  auto hidden = twin(randomVector(T * d, 59));
  auto weights = twin(randomVector(V * d, 60));
  auto bias = twin(randomVector(V, 61));
  auto loss = output<float>(1), dHidden = output<float>(T * d);
  auto dWeights = twin(randomVector(V * d, 62)); // accumulates
  auto dBias = twin(randomVector(V, 63));
  // The gradient factor 0.5 = dLoss[0] (in backend memory) * dLossScale.
  auto dLoss = twin(std::vector<float>{2.0f});
  for (bool onGpu : {false, true}) {
    rt::Backend &b = onGpu ? *gpu : *cpu;
    auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
    b.sampledSoftmaxCrossEntropy(T, d, V, S, p(hidden), p(weights), p(bias),
                                 p(tg), kSeed, kCounter, p(dLoss), 0.25f,
                                 p(loss), p(dHidden), p(dWeights), p(dBias));
  }
  expectClose(*loss, 1e-5, 1e-5, "sampled loss");
  expectClose(*dHidden, 1e-4, 1e-6, "sampled dHidden");
  expectClose(*dWeights, 1e-4, 1e-6, "sampled dWeights");
  expectClose(*dBias, 1e-4, 1e-6, "sampled dBias");

  // The row-sparse form (moe-sparse-gradients) from the same inputs.
  const int64_t n = S + T;
  auto rows = twin(std::vector<int32_t>(n, 7));
  auto dWeightRows = output<float>(n * d), dBiasRows = output<float>(n);
  for (bool onGpu : {false, true}) {
    rt::Backend &b = onGpu ? *gpu : *cpu;
    auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
    b.sampledSoftmaxCrossEntropyRows(T, d, V, S, p(hidden), p(weights), p(bias),
                                     p(tg), kSeed, kCounter, p(dLoss), 0.25f,
                                     p(loss), p(dHidden), p(rows),
                                     p(dWeightRows), p(dBiasRows));
  }
  expectClose(*loss, 1e-5, 1e-5, "sampled rows loss");
  expectClose(*dHidden, 1e-4, 1e-6, "sampled rows dHidden");
  expectSame(*rows, "sampled rows");
  expectClose(*dWeightRows, 1e-4, 1e-6, "sampled dWeightRows");
  expectClose(*dBiasRows, 1e-4, 1e-6, "sampled dBiasRows");
}

TEST_F(CudaEquality, CrossEntropyWithoutGradients) {
  // Full softmax with dLogits == nullptr: the GPU's loss equals its own
  // training loss bit for bit and the CPU's to f32 accuracy.
  for (int64_t V : {10, 5000}) {
    const int64_t T = 23;
    std::vector<int32_t> targets(T);
    std::mt19937 gen(66);
    for (int64_t t = 0; t < T; ++t)
      targets[t] = t % 5 == 3 ? -1 : static_cast<int32_t>(gen() % V);
    auto tg = twin(targets);
    auto logits = twin(randomVector(T * V, 67, -6, 6));
    auto loss = output<float>(1), lossOnly = output<float>(1);
    auto dLogits = output<float>(T * V);
    int64_t tokens = -1, tokensOnly[2] = {-1, -1};
    gpu->softmaxCrossEntropy(T, V, logits->gpu(), tg->gpu(), nullptr, 0.25f,
                             loss->gpu(), dLogits->gpu(), &tokens);
    for (bool onGpu : {false, true}) {
      rt::Backend &b = onGpu ? *gpu : *cpu;
      auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
      b.softmaxCrossEntropy(T, V, p(logits), p(tg), nullptr, 0.25f, p(lossOnly),
                            nullptr, &tokensOnly[onGpu]);
    }
    std::string what = "forward-only cross-entropy V=" + std::to_string(V);
    EXPECT_EQ(tokensOnly[1], tokens) << what;
    EXPECT_EQ(tokensOnly[0], tokens) << what;
    expectBitwiseEqual(lossOnly->onGpu(), loss->onGpu(), what + " loss");
    expectClose(*lossOnly, 1e-5, 1e-5, what + " loss vs cpu");
  }

  // Sampled softmax with no gradient outputs.
  const int64_t T = 33, d = 16, V = 1000, S = 64;
  std::vector<int32_t> targets(T);
  std::mt19937 gen(68);
  for (int64_t t = 0; t < T; ++t)
    targets[t] = t == 4 ? -1 : static_cast<int32_t>(gen() % 20);
  auto tg = twin(targets);
  auto hidden = twin(randomVector(T * d, 69));
  auto weights = twin(randomVector(V * d, 70));
  auto bias = twin(randomVector(V, 71));
  auto loss = output<float>(1), lossOnly = output<float>(1);
  auto dHidden = output<float>(T * d);
  auto dWeights = twin(std::vector<float>(V * d, 0.0f));
  auto dBias = twin(std::vector<float>(V, 0.0f));
  gpu->sampledSoftmaxCrossEntropy(T, d, V, S, hidden->gpu(), weights->gpu(),
                                  bias->gpu(), tg->gpu(), kSeed, kCounter,
                                  nullptr, 0.5f, loss->gpu(), dHidden->gpu(),
                                  dWeights->gpu(), dBias->gpu());
  for (bool onGpu : {false, true}) {
    rt::Backend &b = onGpu ? *gpu : *cpu;
    auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
    b.sampledSoftmaxCrossEntropy(T, d, V, S, p(hidden), p(weights), p(bias),
                                 p(tg), kSeed, kCounter, nullptr, 0.5f,
                                 p(lossOnly), nullptr, nullptr, nullptr);
  }
  expectBitwiseEqual(lossOnly->onGpu(), loss->onGpu(), "sampled loss only");
  expectClose(*lossOnly, 1e-5, 1e-5, "sampled loss only vs cpu");
  EXPECT_THROW(gpu->sampledSoftmaxCrossEntropy(
                   T, d, V, S, hidden->gpu(), weights->gpu(), bias->gpu(),
                   tg->gpu(), kSeed, kCounter, nullptr, 0.5f, loss->gpu(),
                   nullptr, dWeights->gpu(), nullptr),
               std::invalid_argument);
}

TEST_F(CudaEquality, Adam) {
  const int64_t count = 777;
  auto param = twin(randomVector(count, 64));
  auto m = twin(std::vector<float>(count, 0.0f));
  auto v = twin(std::vector<float>(count, 0.0f));
  rt::AdamConfig config;
  config.weightDecay = 0.01f;
  // The learning rate and the step counter live in backend memory.
  auto lr = twin(std::vector<float>{1e-2f});
  for (int64_t step = 1; step <= 3; ++step) {
    auto grad = twin(randomVector(count, 65 + step));
    auto stepMem = twin(std::vector<int64_t>{step});
    for (bool onGpu : {false, true}) {
      rt::Backend &b = onGpu ? *gpu : *cpu;
      auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
      b.adamUpdate(count, p(param), p(grad), p(m), p(v), p(lr), p(stepMem),
                   config.beta1, config.beta2, config.eps, config.weightDecay);
    }
  }
  expectClose(*param, 1e-5, 1e-6, "adam param");
  expectClose(*m, 1e-5, 1e-7, "adam m");
  expectClose(*v, 1e-5, 1e-7, "adam v");
}

TEST_F(CudaEquality, AdamUpdateRows) {
  const int64_t vocab = 50, d = 9, n = 20;
  std::vector<int32_t> rows(n, -1);
  for (int64_t i = 0; i < 15; ++i)
    rows[i] = static_cast<int32_t>(3 * i + 1); // distinct, then -1
  auto rowTwin = twin(rows);
  auto param = twin(randomVector(vocab * d, 164));
  auto m = twin(randomVector(vocab * d, 165, 0.0, 0.1));
  auto v = twin(randomVector(vocab * d, 166, 0.0, 0.1));
  rt::AdamConfig config;
  config.weightDecay = 0.01f;
  auto lr = twin(std::vector<float>{1e-2f});
  for (int64_t step = 1; step <= 3; ++step) {
    auto values = twin(randomVector(n * d, 167 + step));
    auto stepMem = twin(std::vector<int64_t>{step});
    for (bool onGpu : {false, true}) {
      rt::Backend &b = onGpu ? *gpu : *cpu;
      auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
      b.adamUpdateRows(n, d, p(param), p(rowTwin), p(values), p(m), p(v), p(lr),
                       p(stepMem), config.beta1, config.beta2, config.eps,
                       config.weightDecay);
    }
  }
  expectClose(*param, 1e-5, 1e-6, "lazy adam param");
  expectClose(*m, 1e-5, 1e-7, "lazy adam m");
  expectClose(*v, 1e-5, 1e-7, "lazy adam v");
}

// The optimizer as a compiled step runs it: lrSchedule writes the rate
// from the step counter in memory and adamUpdate reads both, over the
// warm-up, the plateau and the decay, with bias corrections far from 1
// and near 1 (step 1000).
TEST_F(CudaEquality, AdamWithScheduledLearningRate) {
  const int64_t count = 1001;
  const rt::LrSchedule schedule{3e-3f, 2, 2};
  rt::AdamConfig config;
  config.weightDecay = 0.05f;
  auto param = twin(randomVector(count, 95));
  auto m = twin(std::vector<float>(count, 0.0f));
  auto v = twin(std::vector<float>(count, 0.0f));
  auto lr = output<float>(1);
  for (int64_t step : {1, 2, 3, 4, 5, 9, 1000}) {
    auto grad = twin(randomVector(count, 96 + step, -2, 2));
    auto stepMem = twin(std::vector<int64_t>{step});
    for (bool onGpu : {false, true}) {
      rt::Backend &b = onGpu ? *gpu : *cpu;
      auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
      b.lrSchedule(p(stepMem), p(lr), schedule.baseLr, schedule.warmupSteps,
                   schedule.constantSteps);
      b.adamUpdate(count, p(param), p(grad), p(m), p(v), p(lr), p(stepMem),
                   config.beta1, config.beta2, config.eps, config.weightDecay);
    }
    std::string what = "step " + std::to_string(step);
    expectSame(*lr, what + " lr");
    EXPECT_EQ(lr->onGpu()[0], schedule.at(step)) << what;
    expectClose(*param, 1e-5, 1e-6, what + " param");
    expectClose(*m, 1e-5, 1e-7, what + " m");
    expectClose(*v, 1e-5, 1e-7, what + " v");
  }
}

// lrSchedule: the bits of the CPU (and of LrSchedule::at) for every phase
// of several schedules, the step and the rate in device memory.
TEST_F(CudaEquality, LrSchedule) {
  const rt::LrSchedule schedules[] = {{0.01f, 200, 200},
                                      {0.5f, 0, 10},
                                      {3e-4f, 7, 0},
                                      {1.0f, 0, 0},
                                      {1e-3f, 4000, 100000}};
  std::vector<int64_t> steps = {1,    2,    3,    7,      8,      10,       11,
                                100,  199,  200,  201,    399,    400,      401,
                                1600, 4000, 4001, 104000, 104001, 123456789};
  for (const rt::LrSchedule &s : schedules) {
    auto stepMem = twin(std::vector<int64_t>{1});
    auto lr = output<float>(1);
    for (int64_t step : steps) {
      cpu->copyFromHost(stepMem->cpu(), &step, sizeof(step));
      gpu->copyFromHost(stepMem->gpu(), &step, sizeof(step));
      cpu->lrSchedule(stepMem->cpu(), lr->cpu(), s.baseLr, s.warmupSteps,
                      s.constantSteps);
      gpu->lrSchedule(stepMem->gpu(), lr->gpu(), s.baseLr, s.warmupSteps,
                      s.constantSteps);
      std::string what = "base " + std::to_string(s.baseLr) + " warm-up " +
                         std::to_string(s.warmupSteps) + " constant " +
                         std::to_string(s.constantSteps) + " step " +
                         std::to_string(step);
      expectBitwiseEqual(lr->onGpu(), lr->onCpu(), what);
      std::vector<float> expected = {s.at(step)};
      expectBitwiseEqual(lr->onGpu(), expected, what + " vs at()");
    }
  }
}

//===----------------------------------------------------------------------===//
// Determinism
//===----------------------------------------------------------------------===//

TEST_F(CudaEquality, RunToRunDeterminism) {
  // Kernels with reductions or sorts, run twice on identical inputs.
  const int64_t T = 700, n = 600, k = 4, d = 32;
  auto run = [&]() {
    std::vector<std::vector<float>> results;
    auto clean = twin(randomVector(T * n, 70, -3, 3));
    auto raw = twin(randomVector(T * n, 71));
    auto noisy = output<float>(T * n), noiseStd = output<float>(T * n);
    auto top = output<float>(T * (k + 1)), gate = output<float>(T * k);
    auto expert = output<int32_t>(T * k);
    auto load = output<float>(n);
    gpu->noisyTopKForward(T, n, k, clean->gpu(), raw->gpu(), 1e-2f, true, kSeed,
                          kCounter, noisy->gpu(), noiseStd->gpu(), top->gpu(),
                          expert->gpu(), gate->gpu(), 0, nullptr);
    gpu->loadEstimateForward(T, n, k, clean->gpu(), noisy->gpu(),
                             noiseStd->gpu(), top->gpu(), nullptr, load->gpu());
    auto importance = output<float>(n);
    gpu->importanceForward(T * k, n, expert->gpu(), gate->gpu(),
                           importance->gpu());
    auto ids = twin(std::vector<int32_t>(T, 3)); // one hot row
    auto dOut = twin(randomVector(T * d, 72));
    auto dTable = twin(std::vector<float>(8 * d, 0.0f));
    gpu->embeddingBackward(T, d, ids->gpu(), dOut->gpu(), dTable->gpu());
    std::vector<float> expertAsFloat;
    for (int32_t e : expert->onGpu())
      expertAsFloat.push_back(static_cast<float>(e));
    results = {expertAsFloat, gate->onGpu(),       top->onGpu(),
               load->onGpu(), importance->onGpu(), dTable->onGpu()};
    return results;
  };
  auto first = run(), second = run();
  const char *names[] = {"expert", "gate",       "topValues",
                         "load",   "importance", "embeddingBackward"};
  for (size_t i = 0; i < first.size(); ++i)
    expectBitwiseEqual(first[i], second[i], names[i]);
}

} // namespace

//===----------------------------------------------------------------------===//
// Hierarchical routing
//===----------------------------------------------------------------------===//

TEST_F(CudaEquality, ComposeRoutes) {
  const int64_t primary = 37, k = 3, perGroup = 5;
  std::vector<int32_t> groups(primary), local(primary * k), position(primary);
  std::mt19937 gen(41);
  for (int64_t a = 0; a < primary; ++a)
    groups[a] = static_cast<int32_t>(gen() % 7);
  for (auto &id : local)
    id = static_cast<int32_t>(gen() % perGroup);
  std::iota(position.begin(), position.end(), 0);
  std::shuffle(position.begin(), position.end(), gen);
  auto pe = twin(groups);
  auto pg = twin(randomVector(primary, 42, 0.1, 1.0));
  auto pos = twin(position);
  auto se = twin(local);
  auto sg = twin(randomVector(primary * k, 43, 0.1, 1.0));
  auto dg = twin(randomVector(primary * k, 44));
  auto expert = output<int32_t>(primary * k);
  auto gate = output<float>(primary * k);
  auto dpg = output<float>(primary), dsg = output<float>(primary * k);
  for (rt::Backend *backend : {cpu.get(), gpu.get()}) {
    bool onGpu = backend == gpu.get();
    auto at = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
    backend->composeRoutesForward(primary, k, perGroup, at(pe), at(pg),
                                  at(pos), at(se), at(sg), at(expert),
                                  at(gate));
    backend->composeRoutesBackward(primary, k, at(pg), at(pos), at(sg),
                                   at(dg), at(dpg), at(dsg));
  }
  expectSame(*expert, "composeRoutes expert");
  expectClose(*gate, kRtol, kAtol, "composeRoutes gate");
  expectClose(*dpg, kRtol, kAtol, "composeRoutes dPrimaryGate");
  expectClose(*dsg, kRtol, kAtol, "composeRoutes dSecondaryGate");
}

//===----------------------------------------------------------------------===//
// Batchwise hierarchies: masks inside groups, CSR composition, Load_H
//===----------------------------------------------------------------------===//

TEST_F(CudaEquality, GroupedBatchwiseMask) {
  struct Case {
    int64_t groups, rowsPerGroup, n, m;
    bool ties;
  };
  // Warp and radix selection over the rows of a group, ties between rows,
  // m = rows of a group, the paper's 32 groups.
  const Case cases[] = {{3, 100, 8, 25, false},
                        {2, 300, 5, 77, true},
                        {4, 64, 33, 64, false},
                        {32, 12, 16, 6, false}};
  for (const Case &c : cases) {
    int64_t rows = c.groups * c.rowsPerGroup, A = c.groups * c.n * c.m;
    auto logits = twin(c.ties ? repeatedRows(rows, c.n, 7, 81)
                              : randomVector(rows * c.n, 81, -4, 4));
    auto mask = output<float>(rows * c.n), gate = output<float>(A);
    auto rowPtr = output<int32_t>(rows + 1), expert = output<int32_t>(A);
    for (bool onGpu : {false, true}) {
      rt::Backend &b = onGpu ? *gpu : *cpu;
      auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
      b.groupedBatchwiseMaskForward(c.groups, c.rowsPerGroup, c.n, c.m,
                                    p(logits), p(mask), p(rowPtr), p(expert),
                                    p(gate));
    }
    std::string what = "grouped batchwise groups=" + std::to_string(c.groups) +
                       " rows=" + std::to_string(c.rowsPerGroup) +
                       " n=" + std::to_string(c.n) +
                       " m=" + std::to_string(c.m);
    expectSame(*mask, what + " mask");
    expectSame(*rowPtr, what + " rowPtr");
    expectSame(*expert, what + " expert");
    expectClose(*gate, kRtol, kAtol, what + " gate");
  }
}

TEST_F(CudaEquality, CombinedRankingKernels) {
  // Group 1 is empty and the last eighth of the rows belongs to no group;
  // 16 levels make ties; 700 rows span several of the CUDA counter's
  // 256-row blocks.
  const int64_t n = 7, groups = 3, columns = groups * n;
  for (int64_t rows : {int64_t(80), int64_t(700)}) {
    const std::vector<int32_t> offsetsHost = {
        0, int32_t(rows * 3 / 8), int32_t(rows * 3 / 8), int32_t(rows * 7 / 8)};
    std::vector<float> probsHost = randomVector(rows * n, 91, 0, 1);
    for (float &v : probsHost)
      v = std::floor(v * 16) / 16;
    auto offsets = twin(offsetsHost);
    auto probs = twin(probsHost);
    std::vector<int64_t> loHost(columns), hiHost(columns), takeHost(columns);
    for (int64_t c = 0; c < columns; ++c) {
      loHost[c] = int64_t(0x3d800000) + c * 4096; // around 1/16
      hiHost[c] = loHost[c] + (int64_t(1) << 24);
      takeHost[c] = c % 4;
    }
    auto lo = twin(loHost), hi = twin(hiHost), take = twin(takeHost);
    auto counts = output<int64_t>(columns);
    auto mask = output<float>(rows * n);
    for (bool onGpu : {false, true}) {
      rt::Backend &b = onGpu ? *gpu : *cpu;
      auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
      b.countAtLeastMidpoint(rows, n, groups, p(offsets), p(probs), p(lo),
                             p(hi), p(counts));
      b.selectAboveThreshold(rows, n, groups, p(offsets), p(probs), p(lo),
                             p(take), p(mask));
      b.narrowBisection(columns, rows / 4, p(counts), p(lo), p(hi));
    }
    std::string what = "rows=" + std::to_string(rows);
    expectSame(*counts, what + " countAtLeastMidpoint");
    expectSame(*mask, what + " selectAboveThreshold");
    expectSame(*lo, what + " narrowBisection lo");
    expectSame(*hi, what + " narrowBisection hi");
  }
}

TEST_F(CudaEquality, GroupedThresholdMask) {
  // Group 1 is empty and rows 70-79 belong to no group (NaN logits).
  const int64_t rows = 80, groups = 3;
  const std::vector<int32_t> offsetsHost = {0, 30, 30, 70};
  for (int64_t n : {5, 40}) {
    std::vector<float> logitsHost = randomVector(rows * n, 82, -2, 2);
    for (int64_t q = 70 * n; q < rows * n; ++q)
      logitsHost[q] = std::nanf("");
    std::vector<float> thresholdsHost(groups * n, 0.5f);
    for (int64_t g : {0, 2}) {
      int64_t first = offsetsHost[g], count = offsetsHost[g + 1] - first;
      std::vector<float> segment(logitsHost.begin() + first * n,
                                 logitsHost.begin() + (first + count) * n);
      std::vector<float> t = thresholdsBetweenProbabilities(segment, count, n);
      std::copy(t.begin(), t.end(), thresholdsHost.begin() + g * n);
    }
    auto logits = twin(logitsHost), thresholds = twin(thresholdsHost);
    auto offsets = twin(offsetsHost);
    auto mask = output<float>(rows * n), gate = output<float>(rows * n);
    auto rowPtr = output<int32_t>(rows + 1), expert = output<int32_t>(rows * n);
    int64_t assigned[2] = {-1, -1};
    for (bool onGpu : {false, true}) {
      rt::Backend &b = onGpu ? *gpu : *cpu;
      auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
      b.groupedThresholdMaskForward(rows, groups, n, p(logits), p(thresholds),
                                    p(offsets), p(mask), p(rowPtr), p(expert),
                                    p(gate), rows * n, &assigned[onGpu]);
    }
    std::string what = "grouped threshold n=" + std::to_string(n);
    EXPECT_EQ(assigned[1], assigned[0]) << what;
    ASSERT_GT(assigned[0], 0) << what;
    expectSame(*mask, what + " mask");
    expectSame(*rowPtr, what + " rowPtr");
    int64_t A = assigned[0];
    std::vector<int32_t> ge = expert->onGpu(), ce = expert->onCpu();
    expectEqual(std::vector<int32_t>(ge.begin(), ge.begin() + A),
                std::vector<int32_t>(ce.begin(), ce.begin() + A),
                what + " expert");
    std::vector<float> gg = gate->onGpu(), cg = gate->onCpu();
    expectNear(std::vector<float>(gg.begin(), gg.begin() + A),
               std::vector<float>(cg.begin(), cg.begin() + A), kRtol, kAtol,
               what + " gate");
  }
}

TEST_F(CudaEquality, GroupedThresholdMaskCapacity) {
  // A compiled capacity of exactly the assignments that pass gives the
  // uncapped results on both backends and leaves the slots behind it
  // alone; one less throws the same error on both before any assignment is
  // written (the GPU scans the row pointers and checks their total first).
  const int64_t rows = 80, groups = 3, n = 12, guard = 8;
  const std::vector<int32_t> offsetsHost = {0, 30, 30, 70};
  std::vector<float> logitsHost = randomVector(rows * n, 85, -2, 2);
  for (int64_t q = 70 * n; q < rows * n; ++q)
    logitsHost[q] = std::nanf("");
  std::vector<float> thresholdsHost(groups * n, 0.5f);
  for (int64_t g : {0, 2}) {
    int64_t first = offsetsHost[g], count = offsetsHost[g + 1] - first;
    std::vector<float> segment(logitsHost.begin() + first * n,
                               logitsHost.begin() + (first + count) * n);
    std::vector<float> t = thresholdsBetweenProbabilities(segment, count, n);
    std::copy(t.begin(), t.end(), thresholdsHost.begin() + g * n);
  }
  auto logits = twin(logitsHost), thresholds = twin(thresholdsHost);
  auto offsets = twin(offsetsHost);
  int64_t A = -1;
  {
    auto mask = output<float>(rows * n), gate = output<float>(rows * n);
    auto rowPtr = output<int32_t>(rows + 1);
    auto expert = output<int32_t>(rows * n);
    cpu->groupedThresholdMaskForward(
        rows, groups, n, logits->cpu(), thresholds->cpu(), offsets->cpu(),
        mask->cpu(), rowPtr->cpu(), expert->cpu(), gate->cpu(), rows * n, &A);
  }
  ASSERT_GT(A, 1);
  auto mask = output<float>(rows * n), gate = output<float>(A + guard);
  auto rowPtr = output<int32_t>(rows + 1), expert = output<int32_t>(A + guard);
  int64_t assigned[2] = {-1, -1};
  for (bool onGpu : {false, true}) {
    rt::Backend &b = onGpu ? *gpu : *cpu;
    auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
    b.groupedThresholdMaskForward(rows, groups, n, p(logits), p(thresholds),
                                  p(offsets), p(mask), p(rowPtr), p(expert),
                                  p(gate), A, &assigned[onGpu]);
  }
  EXPECT_EQ(assigned[0], A);
  EXPECT_EQ(assigned[1], A);
  expectSame(*mask, "grouped capacity mask");
  expectSame(*rowPtr, "grouped capacity rowPtr");
  expectSame(*expert, "grouped capacity expert");
  expectClose(*gate, kRtol, kAtol, "grouped capacity gate");
  std::vector<int32_t> ge = expert->onGpu();
  expectEqual(std::vector<int32_t>(ge.begin() + A, ge.end()),
              std::vector<int32_t>(guard, -77), "grouped capacity guard");

  auto lessGate = output<float>(A + guard);
  auto lessExpert = output<int32_t>(A + guard);
  std::string message[2];
  for (bool onGpu : {false, true}) {
    rt::Backend &b = onGpu ? *gpu : *cpu;
    auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
    try {
      b.groupedThresholdMaskForward(rows, groups, n, p(logits), p(thresholds),
                                    p(offsets), p(mask), p(rowPtr),
                                    p(lessExpert), p(lessGate), A - 1, nullptr);
      ADD_FAILURE() << "no error with a capacity of A - 1, gpu " << onGpu;
    } catch (const std::runtime_error &e) {
      message[onGpu] = e.what();
    }
  }
  EXPECT_EQ(message[1], message[0]);
  EXPECT_NE(message[0].find(std::to_string(A) +
                            " assignments pass the thresholds but the "
                            "compiled capacity is " +
                            std::to_string(A - 1)),
            std::string::npos)
      << message[0];
  expectEqual(lessExpert->onGpu(), std::vector<int32_t>(A + guard, -77),
              "grouped overflow expert");
  expectEqual(lessGate->onGpu(), std::vector<float>(A + guard, -77.0f),
              "grouped overflow gate");
}

TEST_F(CudaEquality, GroupedBatchwiseThresholdLoss) {
  const int64_t groups = 3, rowsPerGroup = 171, n = 12;
  const int64_t rows = groups * rowsPerGroup;
  std::vector<float> logitsHost = randomVector(rows * n, 83, -2, 2);
  std::vector<float> maskHost = randomVector(rows * n, 84, 0, 1);
  for (float &x : maskHost)
    x = x < 0.3f ? 1.0f : 0.0f;
  std::vector<float> thresholdsHost;
  for (int64_t g = 0; g < groups; ++g) {
    std::vector<float> segment(logitsHost.begin() + g * rowsPerGroup * n,
                               logitsHost.begin() + (g + 1) * rowsPerGroup * n);
    std::vector<float> t =
        thresholdsBetweenProbabilities(segment, rowsPerGroup, n);
    thresholdsHost.insert(thresholdsHost.end(), t.begin(), t.end());
  }
  auto logits = twin(logitsHost), mask = twin(maskHost);
  auto thresholds = twin(thresholdsHost);
  auto loss = output<float>(1), dThr = output<float>(groups * n);
  auto dLoss = twin(std::vector<float>{0.7f}); // in backend memory
  for (bool onGpu : {false, true}) {
    rt::Backend &b = onGpu ? *gpu : *cpu;
    auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
    b.groupedBatchwiseThresholdLossForward(groups, rowsPerGroup, n, p(logits),
                                           p(mask), p(thresholds), p(loss));
    b.groupedBatchwiseThresholdLossBackward(groups, rowsPerGroup, n, p(logits),
                                            p(mask), p(thresholds), p(dLoss),
                                            p(dThr));
  }
  expectClose(*loss, 1e-5, 1e-5, "grouped threshold loss");
  expectClose(*dThr, kRtol, kAtol, "grouped dThresholds");
}

TEST_F(CudaEquality, ComposeRoutesCsr) {
  // Tokens with 0-3 groups, rows with 0-4 experts, spare slots at both
  // levels.
  const int64_t tokens = 211, groups = 7, perGroup = 5;
  std::mt19937 gen(85);
  std::vector<int32_t> primaryRowPtr = {0}, group;
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t j = 0, c = gen() % 4; j < c; ++j)
      group.push_back(static_cast<int32_t>(gen() % groups));
    primaryRowPtr.push_back(static_cast<int32_t>(group.size()));
  }
  int64_t used = group.size(), A1 = used + 9;
  group.resize(A1, 0);
  std::vector<int32_t> position(A1, 0);
  std::iota(position.begin(), position.begin() + used, 0);
  std::shuffle(position.begin(), position.begin() + used, gen);
  std::vector<int32_t> secondaryRowPtr = {0}, local;
  for (int64_t r = 0; r < A1; ++r) {
    for (int64_t j = 0, c = r < used ? gen() % 5 : 0; j < c; ++j)
      local.push_back(static_cast<int32_t>(gen() % perGroup));
    secondaryRowPtr.push_back(static_cast<int32_t>(local.size()));
  }
  int64_t A2 = local.size() + 13;
  local.resize(A2, 0);
  auto prow = twin(primaryRowPtr), pe = twin(group), pos = twin(position);
  auto srow = twin(secondaryRowPtr), se = twin(local);
  auto pg = twin(randomVector(A1, 86, 0.1, 1.0));
  auto sg = twin(randomVector(A2, 87, 0.1, 1.0));
  auto dg = twin(randomVector(A2, 88));
  auto rowPtr = output<int32_t>(tokens + 1), expert = output<int32_t>(A2);
  auto gate = output<float>(A2);
  auto dpg = output<float>(A1), dsg = output<float>(A2);
  for (bool onGpu : {false, true}) {
    rt::Backend &b = onGpu ? *gpu : *cpu;
    auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
    b.composeRoutesCsrForward(tokens, A1, A2, perGroup, p(prow), p(pe), p(pg),
                              p(pos), p(srow), p(se), p(sg), p(rowPtr),
                              p(expert), p(gate));
  }
  expectSame(*rowPtr, "composeRoutesCsr rowPtr");
  int64_t composed = rowPtr->onCpu()[tokens];
  ASSERT_GT(composed, 0);
  // Every slot: the composed ones and the free ones (expert 0, gate 0).
  expectSame(*expert, "composeRoutesCsr expert");
  expectNear(gate->onGpu(), gate->onCpu(), kRtol, kAtol,
             "composeRoutesCsr gate");
  // The backward reads the CPU's composed row pointers on both sides.
  auto cpuRowPtr = twin(rowPtr->onCpu());
  for (bool onGpu : {false, true}) {
    rt::Backend &b = onGpu ? *gpu : *cpu;
    auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
    b.composeRoutesCsrBackward(tokens, A1, A2, p(cpuRowPtr), p(prow), p(pg),
                               p(pos), p(srow), p(sg), p(dg), p(dpg), p(dsg));
  }
  expectClose(*dpg, kRtol, kAtol, "composeRoutesCsr dPrimaryGate");
  expectClose(*dsg, kRtol, kAtol, "composeRoutesCsr dSecondaryGate");
}

TEST_F(CudaEquality, GroupedLoadEstimate) {
  // 300 dispatched rows: group 1 empty, rows 220-299 of no group.
  const TopKCase c = {300, 8, 2, true, true, false};
  const int64_t groups = 4, n = c.n, k = c.k, rows = c.T;
  const std::vector<int32_t> offsetsHost = {0, 50, 50, 120, 220};
  TopKState s = cpuTopK(*cpu, c);
  auto clean = twin(s.clean), raw = twin(s.raw), noisy = twin(s.noisy);
  auto noiseStd = twin(s.noiseStd), top = twin(s.top);
  auto offsets = twin(offsetsHost);
  auto load = output<float>(groups * n);
  auto dLoad = twin(randomVector(groups * n, 89));
  // Backward accumulates: start from the same random gradients.
  auto dClean = twin(randomVector(rows * n, 90));
  auto dRaw = twin(randomVector(rows * n, 91));
  for (bool onGpu : {false, true}) {
    rt::Backend &b = onGpu ? *gpu : *cpu;
    auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
    b.groupedLoadEstimateForward(rows, groups, n, k, p(offsets), p(clean),
                                 p(noisy), p(noiseStd), p(top), p(load));
    b.groupedLoadEstimateBackward(rows, groups, n, k, p(offsets), p(clean),
                                  p(noisy), p(raw), p(noiseStd), p(top),
                                  p(dLoad), p(dClean), p(dRaw));
  }
  expectClose(*load, 1e-5, 1e-5, "grouped load");
  expectClose(*dClean, 1e-4, 1e-5, "grouped load dClean");
  expectClose(*dRaw, 1e-4, 1e-5, "grouped load dRawNoise");
}

TEST_F(CudaEquality, HierarchicalLoad) {
  const int64_t groups = 6, n = 37;
  const std::vector<int32_t> offsetsHost = {0, 10, 10, 55, 60, 61, 99};
  auto offsets = twin(offsetsHost);
  auto pl = twin(randomVector(groups, 92, 0.5, 9.0));
  auto sl = twin(randomVector(groups * n, 93, 0.0, 4.0));
  auto dLoad = twin(randomVector(groups * n, 94));
  auto load = output<float>(groups * n);
  auto dpl = output<float>(groups), dsl = output<float>(groups * n);
  for (bool onGpu : {false, true}) {
    rt::Backend &b = onGpu ? *gpu : *cpu;
    auto p = [&](auto &t) { return onGpu ? t->gpu() : t->cpu(); };
    b.hierarchicalLoadForward(groups, n, p(offsets), p(pl), p(sl), p(load));
    b.hierarchicalLoadBackward(groups, n, p(offsets), p(pl), p(sl), p(dLoad),
                               p(dpl), p(dsl));
  }
  expectClose(*load, kRtol, kAtol, "Load_H");
  expectClose(*dpl, 1e-5, 1e-6, "Load_H dPrimaryLoad");
  expectClose(*dsl, kRtol, kAtol, "Load_H dSecondaryLoad");
}
