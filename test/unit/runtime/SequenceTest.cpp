//===- SequenceTest.cpp - Embedding, LSTM and attention kernels -----------===//
//
// Forward passes (f32 backend) are compared with step-by-step loops written
// here; every backward is checked in double against central differences of
// sum(out * w) for a random w.
//
//===----------------------------------------------------------------------===//

#include "runtime/Backend.h"
#include "runtime/cpu/kernels/SequenceKernels.h"

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

double dot(const std::vector<double> &a, const std::vector<double> &b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i)
    s += a[i] * b[i];
  return s;
}

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

} // namespace

//===----------------------------------------------------------------------===//
// Embedding
//===----------------------------------------------------------------------===//

TEST(Embedding, ForwardGathersAndBackwardAccumulatesRepeats) {
  auto be = rt::createCpuBackend();
  const int64_t vocab = 9, d = 70;
  std::vector<int32_t> ids = {3, 0, 3, 8, 3, 1, 0};
  const int64_t T = ids.size();
  auto table = randomVector(vocab * d, 1);
  std::vector<float> out(T * d);
  be->embeddingForward(T, d, ids.data(), table.data(), out.data());
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < d; ++j)
      ASSERT_EQ(out[t * d + j], table[ids[t] * d + j]) << t << "," << j;

  auto dOut = randomVector(T * d, 2);
  auto dTable = randomVector(vocab * d, 3);
  std::vector<double> ref(dTable.begin(), dTable.end());
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < d; ++j)
      ref[ids[t] * d + j] += dOut[t * d + j];
  be->embeddingBackward(T, d, ids.data(), dOut.data(), dTable.data());
  expectAllClose(dTable, ref, 1e-6, 1e-6, "dTable");
}

TEST(Embedding, GradientCheck) {
  const int64_t vocab = 5, d = 3;
  std::vector<int32_t> ids = {4, 1, 4, 0};
  const int64_t T = ids.size();
  auto table = randomVector<double>(vocab * d, 4);
  auto w = randomVector<double>(T * d, 5);
  auto loss = [&](const std::vector<double> &tab) {
    std::vector<double> out(T * d);
    rt::cpu::embeddingForward<double>(T, d, ids.data(), tab.data(), out.data());
    return dot(out, w);
  };
  std::vector<double> dTable(vocab * d, 0.0);
  rt::cpu::embeddingBackward<double>(T, d, ids.data(), w.data(), dTable.data());
  expectAllClose(dTable, numericGradient(loss, table), 1e-7, 1e-9, "dTable");
}

TEST(Embedding, BackwardIsDeterministicAcrossThreadCounts) {
  const int64_t vocab = 50, d = 300, T = 2000;
  std::vector<int32_t> ids(T);
  for (int64_t t = 0; t < T; ++t)
    ids[t] = (t * 7919) % vocab;
  auto dOut = randomVector(T * d, 6);
  auto run = [&](int threads) {
    int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    std::vector<float> dTable(vocab * d, 0.0f);
    rt::cpu::embeddingBackward<float>(T, d, ids.data(), dOut.data(),
                                      dTable.data());
    omp_set_num_threads(saved);
    return dTable;
  };
  EXPECT_EQ(run(1), run(2));
  EXPECT_EQ(run(3), run(2));
}

TEST(Embedding, RejectsNegativeIds) {
  auto be = rt::createCpuBackend();
  std::vector<int32_t> ids = {0, -1};
  std::vector<float> table(4), out(4);
  EXPECT_THROW(be->embeddingForward(2, 2, ids.data(), table.data(), out.data()),
               std::invalid_argument);
  EXPECT_THROW(
      be->embeddingBackward(2, 2, ids.data(), out.data(), table.data()),
      std::invalid_argument);
}

//===----------------------------------------------------------------------===//
// LSTM
//===----------------------------------------------------------------------===//

namespace {

struct LstmShape {
  int64_t B, S, dIn, H, P;
  bool projected;
};

struct LstmParams {
  std::vector<double> x, Wx, Wh, bias, proj;
};

LstmParams randomLstm(const LstmShape &s, uint32_t seed) {
  LstmParams p;
  p.x = randomVector<double>(s.B * s.S * s.dIn, seed);
  p.Wx = randomVector<double>(s.dIn * 4 * s.H, seed + 1, -0.5, 0.5);
  p.Wh = randomVector<double>(s.P * 4 * s.H, seed + 2, -0.5, 0.5);
  p.bias = randomVector<double>(4 * s.H, seed + 3, -0.5, 0.5);
  if (s.projected)
    p.proj = randomVector<double>(s.H * s.P, seed + 4, -0.7, 0.7);
  return p;
}

/// The LSTM one sequence and one step at a time, from the equations.
std::vector<double> referenceLstm(const LstmShape &s, const LstmParams &p) {
  const int64_t H = s.H, P = s.P, G = 4 * H;
  std::vector<double> y(s.B * s.S * P);
  for (int64_t b = 0; b < s.B; ++b) {
    std::vector<double> h(P, 0.0), c(H, 0.0);
    for (int64_t t = 0; t < s.S; ++t) {
      const double *xt = &p.x[(b * s.S + t) * s.dIn];
      std::vector<double> pre(p.bias);
      for (int64_t g = 0; g < G; ++g) {
        for (int64_t k = 0; k < s.dIn; ++k)
          pre[g] += xt[k] * p.Wx[k * G + g];
        for (int64_t k = 0; k < P; ++k)
          pre[g] += h[k] * p.Wh[k * G + g];
      }
      std::vector<double> m(H);
      for (int64_t j = 0; j < H; ++j) {
        double i = sigmoid(pre[j]), f = sigmoid(pre[H + j]);
        double g = std::tanh(pre[2 * H + j]), o = sigmoid(pre[3 * H + j]);
        c[j] = f * c[j] + i * g;
        m[j] = o * std::tanh(c[j]);
      }
      for (int64_t k = 0; k < P; ++k) {
        if (!s.projected) {
          h[k] = m[k];
        } else {
          h[k] = 0;
          for (int64_t j = 0; j < H; ++j)
            h[k] += m[j] * p.proj[j * P + k];
        }
        y[(b * s.S + t) * P + k] = h[k];
      }
    }
  }
  return y;
}

template <typename T> std::vector<T> cast(const std::vector<double> &v) {
  return std::vector<T>(v.begin(), v.end());
}

} // namespace

TEST(Lstm, ForwardMatchesStepLoop) {
  auto be = rt::createCpuBackend();
  for (LstmShape s :
       {LstmShape{1, 1, 1, 1, 1, false}, LstmShape{2, 4, 5, 6, 6, false},
        LstmShape{3, 5, 7, 6, 4, true}, LstmShape{1, 7, 3, 2, 5, true},
        LstmShape{5, 2, 4, 3, 3, true}}) {
    LstmParams p = randomLstm(s, 10);
    auto x = cast<float>(p.x), Wx = cast<float>(p.Wx), Wh = cast<float>(p.Wh);
    auto bias = cast<float>(p.bias), proj = cast<float>(p.proj);
    std::vector<float> y(s.B * s.S * s.P);
    std::vector<float> ws(be->lstmWorkspaceSize(s.B, s.S, s.dIn, s.H, s.P));
    be->lstmForward(s.B, s.S, s.dIn, s.H, s.P, x.data(), Wx.data(), Wh.data(),
                    bias.data(), s.projected ? proj.data() : nullptr, nullptr,
                    nullptr, y.data(), nullptr, nullptr, ws.data(),
                    rt::GemmPrecision::F32);
    expectAllClose(y, referenceLstm(s, p), 1e-5, 1e-6, "lstm y");
  }
}

// A decode step: running the sequence in pieces, each starting from the
// state the previous piece returned, gives the whole sequence's outputs.
TEST(Lstm, StateCarriedAcrossPiecesMatchesWholeSequence) {
  auto be = rt::createCpuBackend();
  for (LstmShape s :
       {LstmShape{2, 5, 3, 4, 4, false}, LstmShape{3, 4, 5, 6, 3, true}}) {
    LstmParams p = randomLstm(s, 12);
    auto x = cast<float>(p.x), Wx = cast<float>(p.Wx), Wh = cast<float>(p.Wh);
    auto bias = cast<float>(p.bias), proj = cast<float>(p.proj);
    const float *projPtr = s.projected ? proj.data() : nullptr;
    std::vector<double> whole = referenceLstm(s, p);
    // Pieces of 1, then the rest, then nothing: lengths 1, S - 1, 0.
    std::vector<float> h(s.B * s.P), c(s.B * s.H), hNext(h), cNext(c);
    int64_t done = 0;
    for (int64_t len : {int64_t(1), s.S - 1, int64_t(0)}) {
      std::vector<float> piece(s.B * len * s.dIn), y(s.B * len * s.P);
      for (int64_t b = 0; b < s.B; ++b)
        std::copy(x.begin() + (b * s.S + done) * s.dIn,
                  x.begin() + (b * s.S + done + len) * s.dIn,
                  piece.begin() + b * len * s.dIn);
      std::vector<float> ws(std::max<int64_t>(
          1, be->lstmWorkspaceSize(s.B, len, s.dIn, s.H, s.P)));
      // The first piece starts from zero (null state), the others from the
      // state the last one returned.
      bool first = done == 0;
      be->lstmForward(s.B, len, s.dIn, s.H, s.P, piece.data(), Wx.data(),
                      Wh.data(), bias.data(), projPtr,
                      first ? nullptr : h.data(), first ? nullptr : c.data(),
                      y.data(), hNext.data(), cNext.data(), ws.data(),
                      rt::GemmPrecision::F32);
      std::vector<double> expected;
      for (int64_t b = 0; b < s.B; ++b)
        expected.insert(expected.end(), whole.begin() + (b * s.S + done) * s.P,
                        whole.begin() + (b * s.S + done + len) * s.P);
      expectAllClose(y, expected, 1e-5, 1e-6, "lstm piece y");
      std::vector<double> lastH;
      for (int64_t b = 0; b < s.B; ++b)
        lastH.insert(lastH.end(), whole.begin() + (b * s.S + s.S - 1) * s.P,
                     whole.begin() + (b * s.S + s.S) * s.P);
      if (done + len == s.S)
        expectAllClose(hNext, lastH, 1e-5, 1e-6, "lstm final h");
      h = hNext;
      c = cNext;
      done += len;
    }
  }
}

TEST(Lstm, RejectsHalfAState) {
  auto be = rt::createCpuBackend();
  std::vector<float> buf(256);
  EXPECT_THROW(be->lstmForward(1, 1, 2, 3, 3, buf.data(), buf.data(),
                               buf.data(), buf.data(), nullptr, buf.data(),
                               nullptr, buf.data(), nullptr, nullptr,
                               buf.data(), rt::GemmPrecision::F32),
               std::invalid_argument);
  EXPECT_THROW(be->lstmForward(1, 1, 2, 3, 3, buf.data(), buf.data(),
                               buf.data(), buf.data(), nullptr, nullptr,
                               nullptr, buf.data(), buf.data(), nullptr,
                               buf.data(), rt::GemmPrecision::F32),
               std::invalid_argument);
}

namespace {

/// Central-difference check of every LSTM gradient on loss = sum(y * w).
void checkLstmGradients(const LstmShape &s) {
  LstmParams p = randomLstm(s, 20);
  auto w = randomVector<double>(s.B * s.S * s.P, 30);
  const double *projPtr = s.projected ? p.proj.data() : nullptr;
  auto forward = [&](const LstmParams &q, std::vector<double> &ws) {
    std::vector<double> y(s.B * s.S * s.P);
    ws.assign(rt::cpu::lstmWorkspaceSize(s.B, s.S, s.H, s.P), 0.0);
    rt::cpu::lstmForward<double>(s.B, s.S, s.dIn, s.H, s.P, q.x.data(),
                                 q.Wx.data(), q.Wh.data(), q.bias.data(),
                                 s.projected ? q.proj.data() : nullptr,
                                 y.data(), ws.data());
    return y;
  };
  auto lossOf = [&](auto member) {
    return [&, member](const std::vector<double> &v) {
      LstmParams q = p;
      q.*member = v;
      std::vector<double> ws;
      return dot(forward(q, ws), w);
    };
  };
  std::vector<double> ws;
  forward(p, ws);
  std::vector<double> dx(p.x.size()), dWx(p.Wx.size()), dWh(p.Wh.size()),
      dBias(p.bias.size()), dProj(p.proj.size());
  rt::cpu::lstmBackward<double>(
      s.B, s.S, s.dIn, s.H, s.P, p.x.data(), p.Wx.data(), p.Wh.data(), projPtr,
      ws.data(), w.data(), dx.data(), dWx.data(), dWh.data(), dBias.data(),
      s.projected ? dProj.data() : nullptr);
  const double rtol = 1e-6, atol = 1e-8;
  expectAllClose(dx, numericGradient(lossOf(&LstmParams::x), p.x), rtol, atol,
                 "dx");
  expectAllClose(dWx, numericGradient(lossOf(&LstmParams::Wx), p.Wx), rtol,
                 atol, "dWx");
  expectAllClose(dWh, numericGradient(lossOf(&LstmParams::Wh), p.Wh), rtol,
                 atol, "dWh");
  expectAllClose(dBias, numericGradient(lossOf(&LstmParams::bias), p.bias),
                 rtol, atol, "dBias");
  if (s.projected)
    expectAllClose(dProj, numericGradient(lossOf(&LstmParams::proj), p.proj),
                   rtol, atol, "dProj");
}

} // namespace

TEST(Lstm, GradientCheckWithoutProjection) {
  checkLstmGradients({2, 3, 3, 4, 4, false});
}

TEST(Lstm, GradientCheckWithProjection) {
  checkLstmGradients({2, 3, 3, 4, 3, true});
}

TEST(Lstm, GradientCheckSingleStep) {
  checkLstmGradients({1, 1, 2, 2, 3, true});
}

TEST(Lstm, DeterministicAcrossRunsAndThreadCounts) {
  const LstmShape s{4, 6, 33, 40, 24, true};
  LstmParams p = randomLstm(s, 40);
  auto x = cast<float>(p.x), Wx = cast<float>(p.Wx), Wh = cast<float>(p.Wh);
  auto bias = cast<float>(p.bias), proj = cast<float>(p.proj);
  auto dy = randomVector(s.B * s.S * s.P, 41);
  auto run = [&](int threads) {
    int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    std::vector<float> y(s.B * s.S * s.P);
    std::vector<float> ws(rt::cpu::lstmWorkspaceSize(s.B, s.S, s.H, s.P));
    rt::cpu::lstmForward<float>(s.B, s.S, s.dIn, s.H, s.P, x.data(), Wx.data(),
                                Wh.data(), bias.data(), proj.data(), y.data(),
                                ws.data());
    std::vector<float> dx(x.size()), dWx(Wx.size()), dWh(Wh.size()),
        dBias(bias.size()), dProj(proj.size());
    rt::cpu::lstmBackward<float>(s.B, s.S, s.dIn, s.H, s.P, x.data(), Wx.data(),
                                 Wh.data(), proj.data(), ws.data(), dy.data(),
                                 dx.data(), dWx.data(), dWh.data(),
                                 dBias.data(), dProj.data());
    omp_set_num_threads(saved);
    for (auto *v : {&dx, &dWx, &dWh, &dBias, &dProj})
      y.insert(y.end(), v->begin(), v->end());
    return y;
  };
  auto first = run(2);
  EXPECT_EQ(first, run(2));
  EXPECT_EQ(first, run(1));
}

TEST(Lstm, RejectsProjectionSizeWithoutProjection) {
  auto be = rt::createCpuBackend();
  std::vector<float> buf(256);
  EXPECT_THROW(be->lstmForward(1, 1, 2, 3, 4, buf.data(), buf.data(),
                               buf.data(), buf.data(), nullptr, nullptr,
                               nullptr, buf.data(), nullptr, nullptr,
                               buf.data(), rt::GemmPrecision::F32),
               std::invalid_argument);
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

namespace {

struct AttentionShape {
  int64_t B, Sx, Sy, dX, dY, E;
};

struct AttentionParams {
  std::vector<double> x, y, U, W, V;
};

AttentionParams randomAttention(const AttentionShape &s, uint32_t seed) {
  return {randomVector<double>(s.B * s.Sx * s.dX, seed),
          randomVector<double>(s.B * s.Sy * s.dY, seed + 1),
          randomVector<double>(s.dX * s.E, seed + 2),
          randomVector<double>(s.dY * s.E, seed + 3),
          randomVector<double>(s.E, seed + 4, -2, 2)};
}

/// Eq. 10 evaluated pair by pair, then a softmax over the source.
std::vector<double> referenceAttention(const AttentionShape &s,
                                       const AttentionParams &p) {
  std::vector<double> context(s.B * s.Sy * s.dX, 0.0);
  for (int64_t b = 0; b < s.B; ++b) {
    for (int64_t j = 0; j < s.Sy; ++j) {
      std::vector<double> score(s.Sx, 0.0);
      for (int64_t i = 0; i < s.Sx; ++i) {
        for (int64_t e = 0; e < s.E; ++e) {
          double xu = 0, yw = 0;
          for (int64_t k = 0; k < s.dX; ++k)
            xu += p.x[(b * s.Sx + i) * s.dX + k] * p.U[k * s.E + e];
          for (int64_t k = 0; k < s.dY; ++k)
            yw += p.y[(b * s.Sy + j) * s.dY + k] * p.W[k * s.E + e];
          score[i] += p.V[e] * std::tanh(xu) * std::tanh(yw);
        }
      }
      double sum = 0;
      for (double v : score)
        sum += std::exp(v);
      for (int64_t i = 0; i < s.Sx; ++i)
        for (int64_t k = 0; k < s.dX; ++k)
          context[(b * s.Sy + j) * s.dX + k] +=
              std::exp(score[i]) / sum * p.x[(b * s.Sx + i) * s.dX + k];
    }
  }
  return context;
}

} // namespace

TEST(Attention, ForwardMatchesPairwiseReference) {
  auto be = rt::createCpuBackend();
  for (AttentionShape s :
       {AttentionShape{1, 1, 1, 1, 1, 1}, AttentionShape{2, 5, 3, 4, 6, 7},
        AttentionShape{3, 1, 4, 2, 3, 5}, AttentionShape{1, 9, 1, 8, 3, 2}}) {
    AttentionParams p = randomAttention(s, 50);
    auto x = cast<float>(p.x), y = cast<float>(p.y), U = cast<float>(p.U);
    auto W = cast<float>(p.W), V = cast<float>(p.V);
    std::vector<float> context(s.B * s.Sy * s.dX);
    std::vector<float> ws(
        be->attentionWorkspaceSize(s.B, s.Sx, s.Sy, s.dX, s.dY, s.E));
    be->attentionForward(s.B, s.Sx, s.Sy, s.dX, s.dY, s.E, x.data(), y.data(),
                         U.data(), W.data(), V.data(), nullptr, context.data(),
                         ws.data());
    expectAllClose(context, referenceAttention(s, p), 1e-5, 1e-6, "context");
  }
}

namespace {

/// attentionForward in double (lengths nullable); writes the workspace.
std::vector<double> attentionContext(const AttentionShape &s,
                                     const AttentionParams &q,
                                     const int32_t *lengths,
                                     std::vector<double> &ws) {
  std::vector<double> context(s.B * s.Sy * s.dX);
  ws.assign(rt::cpu::attentionWorkspaceSize(s.B, s.Sx, s.Sy, s.E), 0.0);
  rt::cpu::attentionForward<double>(
      s.B, s.Sx, s.Sy, s.dX, s.dY, s.E, q.x.data(), q.y.data(), q.U.data(),
      q.W.data(), q.V.data(), lengths, context.data(), ws.data());
  return context;
}

/// Checks attentionBackward's gradients of <context, w> (w random from
/// `seed`) against central differences; returns dx.
std::vector<double> expectAttentionGradients(const AttentionShape &s,
                                             const AttentionParams &p,
                                             const int32_t *lengths,
                                             uint32_t seed) {
  auto w = randomVector<double>(s.B * s.Sy * s.dX, seed);
  auto lossOf = [&](auto member) {
    return [&, member](const std::vector<double> &v) {
      AttentionParams q = p;
      q.*member = v;
      std::vector<double> ws;
      return dot(attentionContext(s, q, lengths, ws), w);
    };
  };
  std::vector<double> ws;
  attentionContext(s, p, lengths, ws);
  std::vector<double> dx(p.x.size()), dy(p.y.size()), dU(p.U.size()),
      dW(p.W.size()), dV(p.V.size());
  rt::cpu::attentionBackward<double>(
      s.B, s.Sx, s.Sy, s.dX, s.dY, s.E, p.x.data(), p.y.data(), p.U.data(),
      p.W.data(), p.V.data(), ws.data(), w.data(), dx.data(), dy.data(),
      dU.data(), dW.data(), dV.data());
  const double rtol = 1e-6, atol = 1e-8;
  expectAllClose(dx, numericGradient(lossOf(&AttentionParams::x), p.x), rtol,
                 atol, "dx");
  expectAllClose(dy, numericGradient(lossOf(&AttentionParams::y), p.y), rtol,
                 atol, "dy");
  expectAllClose(dU, numericGradient(lossOf(&AttentionParams::U), p.U), rtol,
                 atol, "dU");
  expectAllClose(dW, numericGradient(lossOf(&AttentionParams::W), p.W), rtol,
                 atol, "dW");
  expectAllClose(dV, numericGradient(lossOf(&AttentionParams::V), p.V), rtol,
                 atol, "dV");
  return dx;
}

} // namespace

TEST(Attention, GradientCheck) {
  for (AttentionShape s :
       {AttentionShape{2, 4, 3, 3, 2, 5}, AttentionShape{1, 1, 2, 2, 3, 2}})
    expectAttentionGradients(s, randomAttention(s, 60), nullptr, 70);
}

// Padded source positions (i >= length) get weight 0: the context equals
// attention over the first `length` positions alone, the gradients through
// the masked softmax match finite differences, and none reaches the padded
// positions' vectors.
TEST(Attention, LengthsMaskThePaddedSource) {
  AttentionShape s{3, 5, 2, 4, 3, 6};
  std::vector<int32_t> lengths = {5, 1, 3};
  AttentionParams p = randomAttention(s, 80);
  std::vector<double> ws;
  std::vector<double> context = attentionContext(s, p, lengths.data(), ws);
  for (int64_t b = 0; b < s.B; ++b) {
    // One sequence, cut to its length.
    AttentionShape one{1, lengths[b], s.Sy, s.dX, s.dY, s.E};
    AttentionParams q = p;
    q.x.assign(p.x.begin() + b * s.Sx * s.dX,
               p.x.begin() + (b * s.Sx + lengths[b]) * s.dX);
    q.y.assign(p.y.begin() + b * s.Sy * s.dY,
               p.y.begin() + (b + 1) * s.Sy * s.dY);
    std::vector<double> got(context.begin() + b * s.Sy * s.dX,
                            context.begin() + (b + 1) * s.Sy * s.dX);
    expectAllClose(got, referenceAttention(one, q), 1e-12, 1e-12,
                   "context of a cut sequence");
  }
  std::vector<double> dx = expectAttentionGradients(s, p, lengths.data(), 81);
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t i = lengths[b]; i < s.Sx; ++i)
      for (int64_t k = 0; k < s.dX; ++k)
        EXPECT_EQ(dx[(b * s.Sx + i) * s.dX + k], 0.0)
            << "padded position " << i << " of sequence " << b;
}

TEST(Attention, RejectsEmptySource) {
  auto be = rt::createCpuBackend();
  std::vector<float> buf(64);
  EXPECT_THROW(be->attentionForward(1, 0, 2, 2, 2, 2, buf.data(), buf.data(),
                                    buf.data(), buf.data(), buf.data(), nullptr,
                                    buf.data(), buf.data()),
               std::invalid_argument);
}
