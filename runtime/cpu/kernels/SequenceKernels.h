//===- SequenceKernels.h - Embedding, LSTM and attention on CPU -*- C++ -*-===//
//
// The sequence layers of the paper's models as templates over the scalar
// type: embedding lookup, an LSTM with fused gates and optional output
// projection (LSTMP, Sak et al. 2014; used in 5.2), and the Appendix B
// attention A(x_i, y_j) = sum_e V_e tanh(x_i U)_e tanh(y_j W)_e.
//
// Every matrix product goes to BLAS, batched as far as the recurrence
// allows: the LSTM input projection x * Wx and the weight gradients dWx,
// dWh, dProj are single GEMMs over all B*S rows; only h * Wh (and the
// projection) run per time step. Reductions over rows (bias and V
// gradients, embedding scatter) split columns across threads and add rows
// in a fixed order, so results do not depend on the thread count.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_CPU_KERNELS_SEQUENCEKERNELS_H
#define MOE_RUNTIME_CPU_KERNELS_SEQUENCEKERNELS_H

#include "runtime/Checks.h"
#include "runtime/cpu/kernels/Blas.h"
#include "runtime/cpu/kernels/ElementwiseKernels.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace moe::rt::cpu {

/// Columns per thread task in the row-order reductions.
constexpr int64_t kSequenceColumnBlock = 64;

/// The LSTM cell updates evaluate five exp/tanh per element, so they pay
/// for a thread team at a smaller size than plain arithmetic loops.
constexpr int64_t kLstmCellGrain = kParallelGrain / 8;

/// out[c] (+)= sum over rows r, in increasing r, of a[r * cols + c]; `out`
/// is overwritten unless `accumulateInto` is set.
template <typename T>
void sumRowsInOrder(int64_t rows, int64_t cols, const T *a, T *out,
                    bool accumulateInto) {
  int64_t numBlocks = (cols + kSequenceColumnBlock - 1) / kSequenceColumnBlock;
#pragma omp parallel for if (rows * cols > kParallelGrain) schedule(static)
  for (int64_t blk = 0; blk < numBlocks; ++blk) {
    int64_t begin = blk * kSequenceColumnBlock;
    int64_t end = std::min(cols, begin + kSequenceColumnBlock);
    T acc[kSequenceColumnBlock];
    for (int64_t c = begin; c < end; ++c)
      acc[c - begin] = accumulateInto ? out[c] : T(0);
    for (int64_t r = 0; r < rows; ++r) {
      const T *row = a + r * cols;
      for (int64_t c = begin; c < end; ++c)
        acc[c - begin] += row[c];
    }
    std::copy(acc, acc + (end - begin), out + begin);
  }
}

/// The logistic function of the LSTM gates.
template <typename T> inline T sigmoidOf(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

//===----------------------------------------------------------------------===//
// Embedding
//===----------------------------------------------------------------------===//

/// out [T,d] = table[ids[t]]. The vocabulary size is not passed; the caller
/// validates ids against it, this only rejects negative ids.
template <typename T>
void embeddingForward(int64_t rows, int64_t d, const int32_t *ids,
                      const T *table, T *out) {
  if (rows < 0 || d < 0)
    throw std::invalid_argument("embeddingForward: negative shape");
  for (int64_t t = 0; t < rows; ++t)
    if (ids[t] < 0)
      throw std::invalid_argument("embeddingForward: negative id");
#pragma omp parallel for if (rows * d > kParallelGrain) schedule(static)
  for (int64_t t = 0; t < rows; ++t)
    std::copy(table + int64_t(ids[t]) * d, table + (int64_t(ids[t]) + 1) * d,
              out + t * d);
}

/// dTable[ids[t]] += dOut[t] for t in increasing order (accumulates). A
/// thread owns a block of columns, so repeated ids never race.
template <typename T>
void embeddingBackward(int64_t rows, int64_t d, const int32_t *ids,
                       const T *dOut, T *dTable) {
  if (rows < 0 || d < 0)
    throw std::invalid_argument("embeddingBackward: negative shape");
  for (int64_t t = 0; t < rows; ++t)
    if (ids[t] < 0)
      throw std::invalid_argument("embeddingBackward: negative id");
  int64_t numBlocks = (d + kSequenceColumnBlock - 1) / kSequenceColumnBlock;
#pragma omp parallel for if (rows * d > kParallelGrain) schedule(static)
  for (int64_t blk = 0; blk < numBlocks; ++blk) {
    int64_t begin = blk * kSequenceColumnBlock;
    int64_t end = std::min(d, begin + kSequenceColumnBlock);
    for (int64_t t = 0; t < rows; ++t) {
      T *dst = dTable + int64_t(ids[t]) * d;
      const T *src = dOut + t * d;
      for (int64_t c = begin; c < end; ++c)
        dst[c] += src[c];
    }
  }
}

//===----------------------------------------------------------------------===//
// LSTM
//===----------------------------------------------------------------------===//

/// Where the forward pass leaves what the backward pass reads, as offsets
/// (in elements) into the workspace. All regions are batch-major [B,S,X],
/// matching x and y, so step s of every sequence is one strided slice.
struct LstmWorkspaceLayout {
  int64_t gates;      ///< [B,S,4H] activations i, f, g, o
  int64_t cells;      ///< [B,S,H] cell states c_s
  int64_t prevHidden; ///< [B,S,P] h_{s-1} (zero at s = 0), the input of Wh
  int64_t cellOut;    ///< [B,S,H] o * tanh(c) before the projection
  int64_t total;

  LstmWorkspaceLayout(int64_t B, int64_t S, int64_t H, int64_t P) {
    int64_t rows = B * S;
    gates = 0;
    cells = gates + rows * 4 * H;
    prevHidden = cells + rows * H;
    cellOut = prevHidden + rows * P;
    total = cellOut + rows * H;
  }
};

/// Elements of workspace lstmForward needs (the projection case; without a
/// projection the cellOut region is unused).
inline int64_t lstmWorkspaceSize(int64_t B, int64_t S, int64_t H, int64_t P) {
  return LstmWorkspaceLayout(B, S, H, P).total;
}

/// LSTM over x [B,S,dIn] with fused gate weights Wx [dIn,4H], Wh [P,4H],
/// bias [4H] (gate order i, f, g, o) and optional projection proj [H,P]:
/// c_s = f c_{s-1} + i g, h_s = (o tanh(c_s)) proj (or o tanh(c_s) when
/// proj is null). The state starts at h0 [B,P], c0 [B,H] (zero when null);
/// the last step's goes to hT [B,P], cT [B,H] when they are given. Writes
/// y [B,S,P] and the workspace (whose shifted states the backward pass
/// assumes start at zero).
template <typename T>
void lstmForward(int64_t B, int64_t S, int64_t dIn, int64_t H, int64_t P,
                 const T *x, const T *Wx, const T *Wh, const T *bias,
                 const T *proj, T *y, T *workspace, const T *h0 = nullptr,
                 const T *c0 = nullptr, T *hT = nullptr, T *cT = nullptr) {
  checkLstmShape("lstmForward", B, S, dIn, H, P, proj != nullptr);
  checkLstmState("lstmForward", h0, c0, hT, cT);
  if (B == 0)
    return;
  if (S == 0) {
    // No step: the final state is the initial one.
    if (hT) {
      for (int64_t q = 0; q < B * P; ++q)
        hT[q] = h0 ? h0[q] : T(0);
      for (int64_t q = 0; q < B * H; ++q)
        cT[q] = c0 ? c0[q] : T(0);
    }
    return;
  }
  LstmWorkspaceLayout layout(B, S, H, P);
  T *gates = workspace + layout.gates;
  T *cells = workspace + layout.cells;
  T *prevHidden = workspace + layout.prevHidden;
  T *cellOut = workspace + layout.cellOut;
  const int64_t G = 4 * H;

  // Input contributions of every time step at once: gates = bias + x Wx.
#pragma omp parallel for if (B * S * G > kParallelGrain) schedule(static)
  for (int64_t r = 0; r < B * S; ++r)
    std::copy(bias, bias + G, gates + r * G);
  gemm<T>(false, false, B * S, G, dIn, T(1), x, dIn, Wx, G, T(1), gates, G);
  for (int64_t b = 0; b < B; ++b) {
    T *first = prevHidden + b * S * P;
    if (h0)
      std::copy(h0 + b * P, h0 + (b + 1) * P, first);
    else
      std::fill(first, first + P, T(0));
  }

  // m_s goes straight to y when there is no projection.
  T *mBase = proj ? cellOut : y;
  int64_t mStride = proj ? S * H : S * P;
  for (int64_t s = 0; s < S; ++s) {
    if (s > 0 || h0)
      gemm<T>(false, false, B, G, P, T(1), prevHidden + s * P, S * P, Wh, G,
              T(1), gates + s * G, S * G);
#pragma omp parallel for collapse(2) if (B * H > kLstmCellGrain)               \
    schedule(static)
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t j = 0; j < H; ++j) {
        T *gate = gates + (b * S + s) * G;
        T *c = cells + (b * S + s) * H;
        T cPrev = s > 0 ? c[j - H] : c0 ? c0[b * H + j] : T(0);
        T i = sigmoidOf(gate[j]);
        T f = sigmoidOf(gate[H + j]);
        T g = std::tanh(gate[2 * H + j]);
        T o = sigmoidOf(gate[3 * H + j]);
        gate[j] = i;
        gate[H + j] = f;
        gate[2 * H + j] = g;
        gate[3 * H + j] = o;
        c[j] = f * cPrev + i * g;
        mBase[b * mStride + s * H + j] = o * std::tanh(c[j]);
      }
    }
    if (proj)
      gemm<T>(false, false, B, P, H, T(1), cellOut + s * H, S * H, proj, P,
              T(0), y + s * P, S * P);
    if (s + 1 < S)
      for (int64_t b = 0; b < B; ++b)
        std::copy(y + (b * S + s) * P, y + (b * S + s + 1) * P,
                  prevHidden + (b * S + s + 1) * P);
  }
  if (hT)
    for (int64_t b = 0; b < B; ++b) {
      int64_t last = b * S + S - 1;
      std::copy(y + last * P, y + (last + 1) * P, hT + b * P);
      std::copy(cells + last * H, cells + (last + 1) * H, cT + b * H);
    }
}

/// Backward through time of lstmForward from dy [B,S,P] and the saved
/// workspace. Writes dx [B,S,dIn], dWx, dWh, dBias and, with a projection,
/// dProj [H,P] (ignored when proj is null).
template <typename T>
void lstmBackward(int64_t B, int64_t S, int64_t dIn, int64_t H, int64_t P,
                  const T *x, const T *Wx, const T *Wh, const T *proj,
                  const T *workspace, const T *dy, T *dx, T *dWx, T *dWh,
                  T *dBias, T *dProj) {
  checkLstmShape("lstmBackward", B, S, dIn, H, P, proj != nullptr);
  const int64_t G = 4 * H;
  const int64_t rows = B * S;
  if (rows == 0) {
    // No time steps: every weight gradient is zero.
    std::fill(dWx, dWx + dIn * G, T(0));
    std::fill(dWh, dWh + P * G, T(0));
    std::fill(dBias, dBias + G, T(0));
    if (proj)
      std::fill(dProj, dProj + H * P, T(0));
    return;
  }
  LstmWorkspaceLayout layout(B, S, H, P);
  const T *gates = workspace + layout.gates;
  const T *cells = workspace + layout.cells;
  const T *prevHidden = workspace + layout.prevHidden;
  const T *cellOut = workspace + layout.cellOut;

  // dHidden [B,S,P] = dy plus, filled in step by step, the recurrent
  // gradient dGates_{s+1} Wh^T. Kept whole for the dProj GEMM.
  std::vector<T> dHidden(dy, dy + rows * P);
  std::vector<T> dGates(rows * G);
  std::vector<T> dCellNext(B * H, T(0));
  std::vector<T> dCellOut(proj ? B * H : 0);
  for (int64_t s = S - 1; s >= 0; --s) {
    const T *dm = dHidden.data() + s * P;
    int64_t dmStride = S * P;
    if (proj) {
      gemm<T>(false, true, B, H, P, T(1), dHidden.data() + s * P, S * P, proj,
              P, T(0), dCellOut.data(), H);
      dm = dCellOut.data();
      dmStride = H;
    }
#pragma omp parallel for collapse(2) if (B * H > kLstmCellGrain)               \
    schedule(static)
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t j = 0; j < H; ++j) {
        const T *gate = gates + (b * S + s) * G;
        const T *c = cells + (b * S + s) * H;
        T *dGate = dGates.data() + (b * S + s) * G;
        T i = gate[j], f = gate[H + j], g = gate[2 * H + j],
          o = gate[3 * H + j];
        T cPrev = s > 0 ? c[j - H] : T(0);
        T tanhC = std::tanh(c[j]);
        T dmv = dm[b * dmStride + j];
        T dc = dCellNext[b * H + j] + dmv * o * (T(1) - tanhC * tanhC);
        dGate[j] = dc * g * i * (T(1) - i);
        dGate[H + j] = dc * cPrev * f * (T(1) - f);
        dGate[2 * H + j] = dc * i * (T(1) - g * g);
        dGate[3 * H + j] = dmv * tanhC * o * (T(1) - o);
        dCellNext[b * H + j] = dc * f;
      }
    }
    if (s > 0)
      gemm<T>(false, true, B, P, G, T(1), dGates.data() + s * G, S * G, Wh, G,
              T(1), dHidden.data() + (s - 1) * P, S * P);
  }

  // Everything that does not feed the recurrence, over all B*S rows at once.
  gemm<T>(false, true, rows, dIn, G, T(1), dGates.data(), G, Wx, G, T(0), dx,
          dIn);
  gemm<T>(true, false, dIn, G, rows, T(1), x, dIn, dGates.data(), G, T(0), dWx,
          G);
  gemm<T>(true, false, P, G, rows, T(1), prevHidden, P, dGates.data(), G, T(0),
          dWh, G);
  sumRowsInOrder(rows, G, dGates.data(), dBias, /*accumulateInto=*/false);
  if (proj)
    gemm<T>(true, false, H, P, rows, T(1), cellOut, H, dHidden.data(), P, T(0),
            dProj, P);
}

//===----------------------------------------------------------------------===//
// Attention (Appendix B)
//===----------------------------------------------------------------------===//

/// Workspace offsets of the attention forward pass.
struct AttentionWorkspaceLayout {
  int64_t sourceKeys; ///< [B,Sx,E] tanh(x U)
  int64_t targetKeys; ///< [B,Sy,E] tanh(y W)
  int64_t queries;    ///< [B,Sy,E] tanh(y W) * V
  int64_t weights;    ///< [B,Sy,Sx] softmax over the source
  int64_t total;

  AttentionWorkspaceLayout(int64_t B, int64_t Sx, int64_t Sy, int64_t E) {
    sourceKeys = 0;
    targetKeys = sourceKeys + B * Sx * E;
    queries = targetKeys + B * Sy * E;
    weights = queries + B * Sy * E;
    total = weights + B * Sy * Sx;
  }
};

/// Elements of workspace attentionForward needs.
inline int64_t attentionWorkspaceSize(int64_t B, int64_t Sx, int64_t Sy,
                                      int64_t E) {
  return AttentionWorkspaceLayout(B, Sx, Sy, E).total;
}

/// A = tanh(rows x U) in place of the GEMM output.
template <typename T>
void tanhProjection(int64_t rows, int64_t dIn, int64_t E, const T *in,
                    const T *U, T *out) {
  gemm<T>(false, false, rows, E, dIn, T(1), in, dIn, U, E, T(0), out, E);
#pragma omp parallel for if (rows * E > kParallelGrain) schedule(static)
  for (int64_t i = 0; i < rows * E; ++i)
    out[i] = std::tanh(out[i]);
}

/// scores[b,j,i] = sum_e V_e tanh(x_i U)_e tanh(y_j W)_e, weights = softmax
/// over i < lengths[b] (all i without lengths; 0 beyond), context
/// [B,Sy,dX] = weights x. Writes the workspace.
template <typename T>
void attentionForward(int64_t B, int64_t Sx, int64_t Sy, int64_t dX, int64_t dY,
                      int64_t E, const T *x, const T *y, const T *U, const T *W,
                      const T *V, const int32_t *lengths, T *context,
                      T *workspace) {
  checkAttentionShape("attentionForward", B, Sx, Sy, dX, dY, E);
  if (B == 0 || Sy == 0)
    return;
  AttentionWorkspaceLayout layout(B, Sx, Sy, E);
  T *keys = workspace + layout.sourceKeys;
  T *targetKeys = workspace + layout.targetKeys;
  T *queries = workspace + layout.queries;
  T *weights = workspace + layout.weights;

  tanhProjection(B * Sx, dX, E, x, U, keys);
  tanhProjection(B * Sy, dY, E, y, W, targetKeys);
#pragma omp parallel for if (B * Sy * E > kParallelGrain) schedule(static)
  for (int64_t r = 0; r < B * Sy; ++r)
    for (int64_t e = 0; e < E; ++e)
      queries[r * E + e] = targetKeys[r * E + e] * V[e];
  for (int64_t b = 0; b < B; ++b)
    gemm<T>(false, true, Sy, Sx, E, T(1), queries + b * Sy * E, E,
            keys + b * Sx * E, E, T(0), weights + b * Sy * Sx, Sx);
#pragma omp parallel for if (B * Sy * Sx > kParallelGrain) schedule(static)
  for (int64_t r = 0; r < B * Sy; ++r) {
    T *w = weights + r * Sx;
    // -inf scores for padded positions: exp gives exactly 0.
    if (lengths)
      std::fill(w + std::clamp<int64_t>(lengths[r / Sy], 1, Sx), w + Sx,
                -std::numeric_limits<T>::infinity());
    T maxScore = *std::max_element(w, w + Sx);
    T sum = 0;
    for (int64_t i = 0; i < Sx; ++i)
      sum += w[i] = std::exp(w[i] - maxScore);
    T inv = T(1) / sum;
    for (int64_t i = 0; i < Sx; ++i)
      w[i] *= inv;
  }
  for (int64_t b = 0; b < B; ++b)
    gemm<T>(false, false, Sy, dX, Sx, T(1), weights + b * Sy * Sx, Sx,
            x + b * Sx * dX, dX, T(0), context + b * Sy * dX, dX);
}

/// Backward of attentionForward from dContext [B,Sy,dX]: writes dx, dy, dU,
/// dW and dV.
template <typename T>
void attentionBackward(int64_t B, int64_t Sx, int64_t Sy, int64_t dX,
                       int64_t dY, int64_t E, const T *x, const T *y,
                       const T *U, const T *W, const T *V, const T *workspace,
                       const T *dContext, T *dx, T *dy, T *dU, T *dW, T *dV) {
  checkAttentionShape("attentionBackward", B, Sx, Sy, dX, dY, E);
  if (B == 0 || Sy == 0) {
    // Nothing attends: x gets no gradient through the context or the keys.
    std::fill(dx, dx + B * Sx * dX, T(0));
    std::fill(dU, dU + dX * E, T(0));
    std::fill(dW, dW + dY * E, T(0));
    std::fill(dV, dV + E, T(0));
    return;
  }
  AttentionWorkspaceLayout layout(B, Sx, Sy, E);
  const T *keys = workspace + layout.sourceKeys;
  const T *targetKeys = workspace + layout.targetKeys;
  const T *queries = workspace + layout.queries;
  const T *weights = workspace + layout.weights;

  // Through context = weights x: dx (first term) and dWeights.
  std::vector<T> dScores(B * Sy * Sx);
  for (int64_t b = 0; b < B; ++b) {
    gemm<T>(true, false, Sx, dX, Sy, T(1), weights + b * Sy * Sx, Sx,
            dContext + b * Sy * dX, dX, T(0), dx + b * Sx * dX, dX);
    gemm<T>(false, true, Sy, Sx, dX, T(1), dContext + b * Sy * dX, dX,
            x + b * Sx * dX, dX, T(0), dScores.data() + b * Sy * Sx, Sx);
  }
  // Softmax backward in place: ds_i = w_i (dw_i - sum_k w_k dw_k).
#pragma omp parallel for if (B * Sy * Sx > kParallelGrain) schedule(static)
  for (int64_t r = 0; r < B * Sy; ++r) {
    const T *w = weights + r * Sx;
    T *ds = dScores.data() + r * Sx;
    T dot = 0;
    for (int64_t i = 0; i < Sx; ++i)
      dot += w[i] * ds[i];
    for (int64_t i = 0; i < Sx; ++i)
      ds[i] = w[i] * (ds[i] - dot);
  }
  // Through scores = queries keys^T.
  std::vector<T> dQueries(B * Sy * E), dKeys(B * Sx * E);
  for (int64_t b = 0; b < B; ++b) {
    gemm<T>(false, false, Sy, E, Sx, T(1), dScores.data() + b * Sy * Sx, Sx,
            keys + b * Sx * E, E, T(0), dQueries.data() + b * Sy * E, E);
    gemm<T>(true, false, Sx, E, Sy, T(1), dScores.data() + b * Sy * Sx, Sx,
            queries + b * Sy * E, E, T(0), dKeys.data() + b * Sx * E, E);
  }
  // dV_e = sum_r dQueries[r,e] tanh(yW)[r,e]; then dQueries becomes the
  // gradient of the pre-tanh y W, and dKeys that of x U.
  std::vector<T> dVTerms(B * Sy * E);
#pragma omp parallel for if (B * Sy * E > kParallelGrain) schedule(static)
  for (int64_t r = 0; r < B * Sy; ++r) {
    for (int64_t e = 0; e < E; ++e) {
      int64_t k = r * E + e;
      T a = targetKeys[k];
      dVTerms[k] = dQueries[k] * a;
      dQueries[k] *= V[e] * (T(1) - a * a);
    }
  }
  sumRowsInOrder(B * Sy, E, dVTerms.data(), dV, /*accumulateInto=*/false);
#pragma omp parallel for if (B * Sx * E > kParallelGrain) schedule(static)
  for (int64_t k = 0; k < B * Sx * E; ++k)
    dKeys[k] *= T(1) - keys[k] * keys[k];
  gemm<T>(true, false, dX, E, B * Sx, T(1), x, dX, dKeys.data(), E, T(0), dU,
          E);
  gemm<T>(false, true, B * Sx, dX, E, T(1), dKeys.data(), E, U, E, T(1), dx,
          dX);
  gemm<T>(true, false, dY, E, B * Sy, T(1), y, dY, dQueries.data(), E, T(0), dW,
          E);
  gemm<T>(false, true, B * Sy, dY, E, T(1), dQueries.data(), E, W, E, T(0), dy,
          dY);
}

} // namespace moe::rt::cpu

#endif // MOE_RUNTIME_CPU_KERNELS_SEQUENCEKERNELS_H
