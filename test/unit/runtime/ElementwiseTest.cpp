//===- ElementwiseTest.cpp - CPU memory, GEMM and pointwise kernels -------===//
//
// The backend entry points (f32) are checked against naive loops; the
// backward kernels are checked in double against central differences of
// sum(out * w) for random w.
//
//===----------------------------------------------------------------------===//

#include "runtime/Backend.h"
#include "runtime/Philox.h"
#include "runtime/cpu/kernels/ElementwiseKernels.h"

#include "runtime/TestUtil.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

using namespace moe;
using moe::test::expectAllClose;
using moe::test::numericGradient;
using moe::test::randomVector;

namespace {

/// Sizes around the Philox block of 4 and above the OpenMP grain.
const int64_t kSizes[] = {0, 1, 3, 4, 7, 1000, rt::cpu::kParallelGrain + 5};

double dot(const std::vector<double> &a, const std::vector<double> &b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i)
    s += a[i] * b[i];
  return s;
}

} // namespace

//===----------------------------------------------------------------------===//
// Memory and GEMM
//===----------------------------------------------------------------------===//

TEST(CpuBackend, NameAllocCopyFill) {
  auto be = rt::createCpuBackend(2);
  EXPECT_EQ(be->name(), "cpu");
  for (size_t bytes : {size_t(0), size_t(1), size_t(100), size_t(4096)}) {
    void *p = be->alloc(bytes);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u) << bytes;
    be->release(p);
  }
  std::vector<float> host = randomVector(37, 1);
  auto *a = static_cast<float *>(be->alloc(37 * sizeof(float)));
  auto *b = static_cast<float *>(be->alloc(37 * sizeof(float)));
  be->copyFromHost(a, host.data(), 37 * sizeof(float));
  be->copyDevice(b, a, 37 * sizeof(float));
  std::vector<float> back(37);
  be->copyToHost(back.data(), b, 37 * sizeof(float));
  be->synchronize();
  EXPECT_EQ(back, host);
  be->fill(a, 2.5f, 37);
  be->copyToHost(back.data(), a, 37 * sizeof(float));
  EXPECT_EQ(back, std::vector<float>(37, 2.5f));
  be->release(a);
  be->release(b);
}

TEST(CpuBackend, GemmMatchesNaiveWithTransposesAndStrides) {
  auto be = rt::createCpuBackend();
  struct Shape {
    int64_t m, n, k;
  };
  for (Shape s :
       {Shape{1, 1, 1}, Shape{5, 3, 7}, Shape{17, 33, 1}, Shape{8, 8, 8}}) {
    for (int ta = 0; ta < 2; ++ta) {
      for (int tb = 0; tb < 2; ++tb) {
        // Padded leading dimensions exercise lda/ldb/ldc > width.
        int64_t lda = (ta ? s.m : s.k) + 2, ldb = (tb ? s.k : s.n) + 1;
        int64_t ldc = s.n + 3;
        int64_t rowsA = ta ? s.k : s.m, rowsB = tb ? s.n : s.k;
        auto A = randomVector(rowsA * lda, 2);
        auto B = randomVector(rowsB * ldb, 3);
        auto C = randomVector(s.m * ldc, 4);
        std::vector<float> expected = C;
        for (int64_t i = 0; i < s.m; ++i)
          for (int64_t j = 0; j < s.n; ++j) {
            double acc = 0;
            for (int64_t p = 0; p < s.k; ++p)
              acc += double(ta ? A[p * lda + i] : A[i * lda + p]) *
                     (tb ? B[j * ldb + p] : B[p * ldb + j]);
            expected[i * ldc + j] = 0.5 * acc + 2.0 * C[i * ldc + j];
          }
        be->gemm(ta, tb, s.m, s.n, s.k, 0.5f, A.data(), lda, B.data(), ldb,
                 2.0f, C.data(), ldc, rt::GemmPrecision::BF16);
        expectAllClose(C, expected, 1e-5, 1e-5, "gemm");
      }
    }
  }
}

TEST(CpuBackend, GemmRejectsBadShapes) {
  auto be = rt::createCpuBackend();
  std::vector<float> a(16), b(16), c(16);
  EXPECT_THROW(be->gemm(false, false, -1, 2, 2, 1, a.data(), 2, b.data(), 2, 0,
                        c.data(), 2, rt::GemmPrecision::F32),
               std::invalid_argument);
  // lda = 2 is too small for a 2 x 3 row-major A.
  EXPECT_THROW(be->gemm(false, false, 2, 2, 3, 1, a.data(), 2, b.data(), 2, 0,
                        c.data(), 2, rt::GemmPrecision::F32),
               std::invalid_argument);
  EXPECT_THROW(rt::createCpuBackend(-1), std::invalid_argument);
}

//===----------------------------------------------------------------------===//
// Add, accumulate, ReLU, sigmoid
//===----------------------------------------------------------------------===//

TEST(Elementwise, AddAndAccumulate) {
  auto be = rt::createCpuBackend();
  for (int64_t n : kSizes) {
    auto a = randomVector(n, 5), b = randomVector(n, 6);
    std::vector<float> y(n), sum(n);
    for (int64_t i = 0; i < n; ++i)
      sum[i] = a[i] + b[i];
    be->add(a.data(), b.data(), y.data(), n);
    EXPECT_EQ(y, sum) << n;
    be->accumulate(a.data(), b.data(), n);
    EXPECT_EQ(b, sum) << n;
  }
}

TEST(Elementwise, ReluForwardBackward) {
  auto be = rt::createCpuBackend();
  for (int64_t n : kSizes) {
    auto x = randomVector(n, 7), dy = randomVector(n, 8);
    std::vector<float> y(n), dx(n), yRef(n), dxRef(n);
    for (int64_t i = 0; i < n; ++i) {
      yRef[i] = x[i] > 0 ? x[i] : 0;
      dxRef[i] = x[i] > 0 ? dy[i] : 0;
    }
    be->reluForward(x.data(), y.data(), n);
    be->reluBackward(y.data(), dy.data(), dx.data(), n);
    EXPECT_EQ(y, yRef) << n;
    EXPECT_EQ(dx, dxRef) << n;
  }
}

TEST(Elementwise, ReluGradientCheck) {
  // Keep |x| >= 0.1 so that the step never crosses the kink.
  auto x = randomVector<double>(40, 9, 0.1, 1.0);
  for (size_t i = 0; i < x.size(); i += 2)
    x[i] = -x[i];
  auto w = randomVector<double>(40, 10);
  auto loss = [&](const std::vector<double> &in) {
    std::vector<double> y(in.size());
    rt::cpu::reluForward(in.data(), y.data(), in.size());
    return dot(y, w);
  };
  std::vector<double> y(40), dx(40);
  rt::cpu::reluForward(x.data(), y.data(), 40);
  rt::cpu::reluBackward(y.data(), w.data(), dx.data(), 40);
  expectAllClose(dx, numericGradient(loss, x), 1e-7, 1e-8, "relu dx");
}

TEST(Elementwise, SigmoidForwardMatchesNaiveAndSaturates) {
  auto be = rt::createCpuBackend();
  for (int64_t n : kSizes) {
    auto x = randomVector(n, 11, -8, 8);
    std::vector<float> y(n), ref(n);
    for (int64_t i = 0; i < n; ++i)
      ref[i] = 1.0 / (1.0 + std::exp(-double(x[i])));
    be->sigmoidForward(x.data(), y.data(), n);
    expectAllClose(y, ref, 1e-6, 1e-7, "sigmoid");
  }
  std::vector<float> extreme = {-200.0f, 200.0f, 0.0f}, y(3);
  be->sigmoidForward(extreme.data(), y.data(), 3);
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_EQ(y[1], 1.0f);
  EXPECT_EQ(y[2], 0.5f);
}

TEST(Elementwise, SigmoidGradientCheck) {
  auto x = randomVector<double>(33, 12, -4, 4);
  auto w = randomVector<double>(33, 13);
  auto loss = [&](const std::vector<double> &in) {
    std::vector<double> y(in.size());
    rt::cpu::sigmoidForward(in.data(), y.data(), in.size());
    return dot(y, w);
  };
  std::vector<double> y(33), dx(33);
  rt::cpu::sigmoidForward(x.data(), y.data(), 33);
  rt::cpu::sigmoidBackward(y.data(), w.data(), dx.data(), 33);
  expectAllClose(dx, numericGradient(loss, x), 1e-7, 1e-9, "sigmoid dx");
}

TEST(Elementwise, TanhForwardMatchesNaiveAndSaturates) {
  auto be = rt::createCpuBackend();
  for (int64_t n : kSizes) {
    auto x = randomVector(n, 30, -5, 5);
    std::vector<float> y(n, 123.0f), ref(n);
    for (int64_t i = 0; i < n; ++i)
      ref[i] = std::tanh(double(x[i]));
    be->tanhForward(x.data(), y.data(), n);
    expectAllClose(y, ref, 1e-6, 1e-7, "tanh");
  }
  std::vector<float> extreme = {-200.0f, 200.0f, 0.0f}, y(3);
  be->tanhForward(extreme.data(), y.data(), 3);
  EXPECT_EQ(y[0], -1.0f);
  EXPECT_EQ(y[1], 1.0f);
  EXPECT_EQ(y[2], 0.0f);
  EXPECT_THROW(be->tanhForward(extreme.data(), y.data(), -1),
               std::invalid_argument);
  EXPECT_THROW(be->tanhBackward(y.data(), y.data(), y.data(), -1),
               std::invalid_argument);
}

TEST(Elementwise, TanhBackwardMatchesNaive) {
  auto be = rt::createCpuBackend();
  for (int64_t n : kSizes) {
    auto y = randomVector(n, 31, -1, 1), dy = randomVector(n, 32);
    std::vector<float> dx(n, 123.0f);
    std::vector<double> ref(n);
    for (int64_t i = 0; i < n; ++i)
      ref[i] = double(dy[i]) * (1.0 - double(y[i]) * y[i]);
    be->tanhBackward(y.data(), dy.data(), dx.data(), n);
    expectAllClose(dx, ref, 1e-6, 1e-7, "tanh dx");
  }
}

TEST(Elementwise, TanhGradientCheck) {
  auto x = randomVector<double>(37, 33, -3, 3);
  auto w = randomVector<double>(37, 34);
  auto loss = [&](const std::vector<double> &in) {
    std::vector<double> y(in.size());
    rt::cpu::tanhForward(in.data(), y.data(), in.size());
    return dot(y, w);
  };
  std::vector<double> y(37), dx(37);
  rt::cpu::tanhForward(x.data(), y.data(), 37);
  rt::cpu::tanhBackward(y.data(), w.data(), dx.data(), 37);
  expectAllClose(dx, numericGradient(loss, x), 1e-7, 1e-9, "tanh dx");
}

//===----------------------------------------------------------------------===//
// Scale, bias add, row sums
//===----------------------------------------------------------------------===//

namespace {

struct RowsShape {
  int64_t rows, d;
};

/// Empty shapes, single elements, d not a multiple of the column block of
/// sumRows (64), and shapes above the OpenMP grain with many rows or many
/// columns.
const RowsShape kRowsShapes[] = {{0, 5},   {4, 0},    {1, 1},     {3, 7},
                                 {9, 130}, {500, 70}, {40, 1000}, {2, 20000}};

} // namespace

TEST(Elementwise, ScaleMatchesNaiveAndAliases) {
  auto be = rt::createCpuBackend();
  for (int64_t n : kSizes) {
    for (float factor : {0.37f, -2.0f, 0.0f}) {
      auto x = randomVector(n, 35);
      std::vector<float> y(n, 123.0f), ref(n);
      for (int64_t i = 0; i < n; ++i)
        ref[i] = factor * x[i];
      be->scale(x.data(), factor, y.data(), n);
      EXPECT_EQ(y, ref) << n << " " << factor;
      // In place: y == x.
      be->scale(x.data(), factor, x.data(), n);
      EXPECT_EQ(x, ref) << "in place " << n << " " << factor;
    }
  }
  std::vector<float> x(4);
  EXPECT_THROW(be->scale(x.data(), 1.0f, x.data(), -1), std::invalid_argument);
}

TEST(Elementwise, ScaleByNullFactorIsTheMultiplier) {
  // A null factor counts as 1: y = multiplier * x, bit for bit.
  auto be = rt::createCpuBackend();
  for (int64_t n : kSizes) {
    for (float multiplier : {1.0f, 0.37f, -2.0f, 0.0f}) {
      auto x = randomVector(n, 43);
      std::vector<float> y(n, 123.0f), ref(n);
      for (int64_t i = 0; i < n; ++i)
        ref[i] = multiplier * x[i];
      be->scaleBy(x.data(), nullptr, multiplier, y.data(), n);
      EXPECT_EQ(y, ref) << n << " " << multiplier;
    }
  }
}

TEST(Elementwise, ScaleByFactorInMemoryMatchesNaiveAndAliases) {
  // y = (factor[0] * multiplier) * x with factor[0] read from backend
  // memory; the product of the two scalars is taken first.
  auto be = rt::createCpuBackend();
  auto *factor = static_cast<float *>(be->alloc(sizeof(float)));
  for (int64_t n : kSizes) {
    for (float f : {2.0f, 0.37f, -1.5f, 0.0f}) {
      for (float multiplier : {1.0f, 0.125f, 3.3f}) {
        be->copyFromHost(factor, &f, sizeof(float));
        auto x = randomVector(n, 44);
        std::vector<float> y(n, 123.0f), ref(n);
        float s = f * multiplier;
        for (int64_t i = 0; i < n; ++i)
          ref[i] = s * x[i];
        be->scaleBy(x.data(), factor, multiplier, y.data(), n);
        EXPECT_EQ(y, ref) << n << " " << f << " " << multiplier;
        be->scaleBy(x.data(), factor, multiplier, x.data(), n);
        EXPECT_EQ(x, ref) << "in place " << n << " " << f << " " << multiplier;
      }
    }
  }
  // The factor is read at the call: a new value gives a new result.
  std::vector<float> x = {1.0f, -2.0f, 4.0f}, y(3);
  float f = 2.0f;
  be->copyFromHost(factor, &f, sizeof(float));
  be->scaleBy(x.data(), factor, 0.5f, y.data(), 3);
  EXPECT_EQ(y, x);
  f = 4.0f;
  be->copyFromHost(factor, &f, sizeof(float));
  be->scaleBy(x.data(), factor, 0.5f, y.data(), 3);
  EXPECT_EQ(y, (std::vector<float>{2.0f, -4.0f, 8.0f}));
  EXPECT_THROW(be->scaleBy(x.data(), factor, 1.0f, y.data(), -1),
               std::invalid_argument);
  be->release(factor);
  // The template in double.
  std::vector<double> xd = {1.5, -3.0}, yd(2);
  double fd = 3.0;
  rt::cpu::scaleBy<double>(xd.data(), &fd, 2.0, yd.data(), 2);
  EXPECT_EQ(yd, (std::vector<double>{9.0, -18.0}));
  rt::cpu::scaleBy<double>(xd.data(), nullptr, 2.0, yd.data(), 2);
  EXPECT_EQ(yd, (std::vector<double>{3.0, -6.0}));
}

TEST(Elementwise, BiasAddMatchesNaiveAndAliases) {
  auto be = rt::createCpuBackend();
  for (RowsShape s : kRowsShapes) {
    auto x = randomVector(s.rows * s.d, 36);
    auto bias = randomVector(s.d, 37);
    std::vector<float> y(s.rows * s.d, 123.0f), ref(s.rows * s.d);
    for (int64_t r = 0; r < s.rows; ++r)
      for (int64_t j = 0; j < s.d; ++j)
        ref[r * s.d + j] = x[r * s.d + j] + bias[j];
    be->biasAdd(s.rows, s.d, x.data(), bias.data(), y.data());
    EXPECT_EQ(y, ref) << s.rows << "x" << s.d;
    be->biasAdd(s.rows, s.d, x.data(), bias.data(), x.data());
    EXPECT_EQ(x, ref) << "in place " << s.rows << "x" << s.d;
  }
  std::vector<float> x(4);
  EXPECT_THROW(be->biasAdd(-1, 2, x.data(), x.data(), x.data()),
               std::invalid_argument);
  EXPECT_THROW(be->biasAdd(2, -1, x.data(), x.data(), x.data()),
               std::invalid_argument);
}

TEST(Elementwise, SumRowsMatchesNaiveInRowOrder) {
  auto be = rt::createCpuBackend();
  for (RowsShape s : kRowsShapes) {
    auto x = randomVector(s.rows * s.d, 38);
    // A sentinel start: y is written, not accumulated, and rows = 0 gives
    // zeros.
    std::vector<float> y(s.d, 123.0f), ref(s.d);
    for (int64_t j = 0; j < s.d; ++j) {
      float acc = 0.0f;
      for (int64_t r = 0; r < s.rows; ++r)
        acc += x[r * s.d + j];
      ref[j] = acc;
    }
    be->sumRows(s.rows, s.d, x.data(), y.data());
    // Rows summed in order in f32: the naive loop's bits exactly.
    EXPECT_EQ(y, ref) << s.rows << "x" << s.d;
    if (s.rows == 0) {
      EXPECT_EQ(y, std::vector<float>(s.d, 0.0f));
    }
  }
  std::vector<float> x(4);
  EXPECT_THROW(be->sumRows(-1, 2, x.data(), x.data()), std::invalid_argument);
  EXPECT_THROW(be->sumRows(2, -1, x.data(), x.data()), std::invalid_argument);
}

TEST(Elementwise, SumRowsGradientOfBiasAdd) {
  // sumRows is the adjoint of biasAdd in the bias: d/db sum(biasAdd(x, b) *
  // w) = sumRows(w).
  const int64_t rows = 6, d = 5;
  auto x = randomVector<double>(rows * d, 39);
  auto b = randomVector<double>(d, 40);
  auto w = randomVector<double>(rows * d, 41);
  auto loss = [&](const std::vector<double> &bias) {
    std::vector<double> y(rows * d);
    rt::cpu::biasAdd(rows, d, x.data(), bias.data(), y.data());
    return dot(y, w);
  };
  std::vector<double> db(d);
  rt::cpu::sumRows(rows, d, w.data(), db.data());
  expectAllClose(db, numericGradient(loss, b), 1e-7, 1e-9, "bias gradient");
}

TEST(Elementwise, SumRowsDeterministicAcrossRunsAndThreadCounts) {
  // Many rows of few columns and few rows of many columns, both above the
  // grain; values of mixed magnitude make the sum order visible in the bits.
  for (RowsShape s : {RowsShape{5000, 70}, RowsShape{50, 3000}}) {
    auto x = randomVector(s.rows * s.d, 42, -1000, 1000);
    for (size_t i = 0; i < x.size(); i += 3)
      x[i] *= 1e-6f;
    auto run = [&](int threads) {
      int saved = omp_get_max_threads();
      omp_set_num_threads(threads);
      std::vector<float> y(s.d);
      rt::cpu::sumRows<float>(s.rows, s.d, x.data(), y.data());
      omp_set_num_threads(saved);
      return y;
    };
    auto first = run(2);
    EXPECT_EQ(first, run(2));
    EXPECT_EQ(first, run(1));
    EXPECT_EQ(first, run(3));
    EXPECT_EQ(first, run(8));
  }
}

//===----------------------------------------------------------------------===//
// Dropout
//===----------------------------------------------------------------------===//

/// Parameter initialization: every element is the serial formula of the
/// driver (bound * (2 u - 1) for uniform i of the global tensor), whatever
/// the threads, the shard's first element and its alignment to the Philox
/// blocks.
TEST(InitUniform, EqualsTheSerialDraws) {
  const uint64_t seed = 7, stream = 0x1234abcd;
  const double bound = 0.0625;
  for (int threads : {1, 4})
    for (uint64_t begin : {0, 1, 3, 4, 4096 + 2})
      for (int64_t count : {0, 1, 5, 100003}) {
        omp_set_num_threads(threads);
        std::vector<float> x(static_cast<size_t>(count) + 1, -7.0f);
        rt::cpu::initUniform(x.data(), count, bound, seed, stream, begin);
        for (int64_t i = 0; i < count; ++i) {
          float expected = static_cast<float>(
              bound *
              (2.0 * rt::philoxUniformAt(seed, stream, begin + i) - 1.0));
          ASSERT_EQ(x[i], expected) << "begin " << begin << " at " << i;
        }
        EXPECT_EQ(x[count], -7.0f) << "wrote past the end";
      }
  omp_set_num_threads(omp_get_num_procs());
}

TEST(Dropout, MaskFollowsPhiloxStream) {
  auto be = rt::createCpuBackend();
  const float rate = 0.3f;
  for (int64_t n : kSizes) {
    auto x = randomVector(n, 14);
    std::vector<float> y(n), ref(n);
    for (int64_t i = 0; i < n; ++i)
      ref[i] = rt::philoxUniformAt(77, 5, i) >= rate ? x[i] / (1 - rate) : 0;
    be->dropoutForward(x.data(), y.data(), n, rate, 77, 5, 0);
    expectAllClose(y, ref, 1e-6, 0, "dropout forward");
  }
}

TEST(Dropout, ShardsDrawTheirPartOfTheWholeMask) {
  // The second half of a tensor, dropped with elementOffset = its start,
  // gets the whole tensor's mask for those elements (forward and backward).
  int64_t count = 40, half = 20;
  auto x = randomVector<float>(count, 5);
  std::vector<float> whole(count), part(half), back(half);
  rt::cpu::dropoutForward(x.data(), whole.data(), count, 0.5f, 11, 3);
  rt::cpu::dropoutForward(x.data() + half, part.data(), half, 0.5f, 11, 3,
                          half);
  rt::cpu::dropoutBackward(x.data() + half, back.data(), half, 0.5f, 11, 3,
                           half);
  for (int64_t i = 0; i < half; ++i) {
    EXPECT_EQ(part[i], whole[half + i]) << i;
    EXPECT_EQ(back[i], whole[half + i]) << i;
  }
  EXPECT_THROW(rt::cpu::dropoutForward(x.data(), part.data(), half, 0.5f, 11,
                                       3, 2),
               std::invalid_argument);
}

TEST(Dropout, KeepFractionAndScalePreserveTheMean) {
  auto be = rt::createCpuBackend();
  const int64_t n = 200000;
  for (float rate : {0.1f, 0.5f, 0.9f}) {
    std::vector<float> ones(n, 1.0f), y(n);
    be->dropoutForward(ones.data(), y.data(), n, rate, 1234, 0, 0);
    int64_t kept = 0;
    double sum = 0;
    for (float v : y) {
      kept += v != 0;
      sum += v;
    }
    EXPECT_NEAR(double(kept) / n, 1.0 - rate, 5e-3) << rate;
    EXPECT_NEAR(sum / n, 1.0, 0.03) << rate;
  }
}

TEST(Dropout, BackwardRecomputesTheForwardMask) {
  auto be = rt::createCpuBackend();
  const int64_t n = 1003;
  auto x = randomVector(n, 15), dy = randomVector(n, 16);
  std::vector<float> y(n), dx(n);
  be->dropoutForward(x.data(), y.data(), n, 0.4f, 9, 21, 0);
  be->dropoutBackward(dy.data(), dx.data(), n, 0.4f, 9, 21, 0);
  int64_t dropped = 0;
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_EQ(y[i] == 0, dx[i] == 0) << i;
    if (y[i] != 0) {
      EXPECT_FLOAT_EQ(dx[i], dy[i] / 0.6f) << i;
    }
    dropped += y[i] == 0;
  }
  EXPECT_GT(dropped, 0);
  // Another counter gives another mask.
  std::vector<float> y2(n);
  be->dropoutForward(x.data(), y2.data(), n, 0.4f, 9, 22, 0);
  EXPECT_NE(y, y2);
}

TEST(Dropout, GradientCheckAndDeterminism) {
  const int64_t n = 29;
  auto x = randomVector<double>(n, 17), w = randomVector<double>(n, 18);
  auto loss = [&](const std::vector<double> &in) {
    std::vector<double> y(n);
    rt::cpu::dropoutForward(in.data(), y.data(), n, 0.25f, 3, 4);
    return dot(y, w);
  };
  std::vector<double> dx(n), dx2(n);
  rt::cpu::dropoutBackward(w.data(), dx.data(), n, 0.25f, 3, 4);
  rt::cpu::dropoutBackward(w.data(), dx2.data(), n, 0.25f, 3, 4);
  expectAllClose(dx, numericGradient(loss, x), 1e-7, 1e-9, "dropout dx");
  EXPECT_EQ(dx, dx2);
}

TEST(Dropout, RateZeroIsIdentityAndBadRatesThrow) {
  auto be = rt::createCpuBackend();
  auto x = randomVector(50, 19);
  std::vector<float> y(50);
  be->dropoutForward(x.data(), y.data(), 50, 0.0f, 1, 1, 0);
  EXPECT_EQ(y, x);
  EXPECT_THROW(be->dropoutForward(x.data(), y.data(), 50, 1.0f, 1, 1, 0),
               std::invalid_argument);
  EXPECT_THROW(be->dropoutBackward(x.data(), y.data(), 50, -0.1f, 1, 1, 0),
               std::invalid_argument);
  EXPECT_THROW(be->add(x.data(), x.data(), y.data(), -1),
               std::invalid_argument);
}
