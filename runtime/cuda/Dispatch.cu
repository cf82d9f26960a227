//===- Dispatch.cu - CUDA dispatch plan, gather/combine, grouped GEMM -----===//
//
// The dispatch plan is a stable sort of the assignments by expert (CUB radix
// sort, which is stable) followed by a binary search for each expert's
// segment start. Dispatch gathers token rows into the expert-major buffer;
// its backward and the combine loop over a token's assignments in order, so
// nothing is accumulated with atomics. The experts run as one
// cublasGemmGroupedBatchedEx call over the non-empty segments; its per-group
// sizes are host arrays, so each call reads the segment offsets back once.
// A null rowPtr means A / T assignments per token (top-k routing).
//
//===----------------------------------------------------------------------===//

#include "runtime/cuda/Common.cuh"
#include "runtime/cuda/CudaBackend.h"
#include "runtime/cuda/Gemm.cuh"

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace moe::rt {
namespace {

using namespace gpu;

/// The first assignment of token t: rowPtr[t], or t * perToken when the
/// row pointers are implicit (null).
__device__ inline int64_t rowBegin(const int32_t *rowPtr, int64_t perToken,
                                   int64_t t) {
  return rowPtr ? rowPtr[t] : t * perToken;
}

/// A / T assignments per token when the row pointers are implicit.
int64_t assignmentsPerToken(const char *kernel, const int32_t *rowPtr,
                            int64_t T, int64_t A) {
  if (rowPtr || T == 0)
    return 0;
  if (A % T != 0)
    throw std::invalid_argument(std::string(kernel) + ": " + std::to_string(A) +
                                " assignments do not split evenly over " +
                                std::to_string(T) + " tokens (no rowPtr)");
  return A / T;
}

/// tokenOf[a] = t for every assignment a of token t.
__global__ void tokenOfAssignmentKernel(int64_t T, const int32_t *rowPtr,
                                        int64_t perToken, int32_t *tokenOf) {
  MOE_GRID_STRIDE(t, T) {
    int64_t end = rowBegin(rowPtr, perToken, t + 1);
    for (int64_t a = rowBegin(rowPtr, perToken, t); a < end; ++a)
      tokenOf[a] = static_cast<int32_t>(t);
  }
}

/// positionOf[order[p]] = p and tokenOfPosition[p] = tokenOf[order[p]].
__global__ void planPositionsKernel(int64_t A, const int32_t *order,
                                    const int32_t *tokenOf, int32_t *positionOf,
                                    int32_t *tokenOfPosition) {
  MOE_GRID_STRIDE(p, A) {
    int32_t a = order[p];
    positionOf[a] = static_cast<int32_t>(p);
    tokenOfPosition[p] = tokenOf[a];
  }
}

/// y[t] = sum over the token's assignments a, in order, of
/// weight[a] * rows[positionOf[a]] (weight 1 when null).
__global__ void sumAssignmentsKernel(int64_t T, int64_t d,
                                     const int32_t *rowPtr, int64_t perToken,
                                     const int32_t *positionOf,
                                     const float *weight, const float *rows,
                                     float *y) {
  MOE_GRID_STRIDE(q, T * d) {
    int64_t t = q / d, c = q % d;
    float acc = 0.0f;
    int64_t end = rowBegin(rowPtr, perToken, t + 1);
    for (int64_t a = rowBegin(rowPtr, perToken, t); a < end; ++a) {
      float v = rows[static_cast<int64_t>(positionOf[a]) * d + c];
      acc += weight ? weight[a] * v : v;
    }
    y[q] = acc;
  }
}

/// dExpertOut[positionOf[a]] = gate[a] * dy[t] and dGate[a] = <dy[t],
/// expertOut[positionOf[a]]>. One row group per token.
template <class G>
__global__ void __launch_bounds__(G::kBlock)
    combineBackwardKernel(int64_t T, int64_t d, const int32_t *rowPtr,
                          int64_t perToken, const int32_t *positionOf,
                          const float *gate, const float *expertOut,
                          const float *dy, float *dExpertOut, float *dGate) {
  int64_t t = groupRow<G>();
  int lane = groupLane<G>();
  if (t >= T)
    return;
  const float *dyRow = dy + t * d;
  int64_t end = rowBegin(rowPtr, perToken, t + 1);
  for (int64_t a = rowBegin(rowPtr, perToken, t); a < end; ++a) {
    int64_t p = positionOf[a];
    const float *out = expertOut + p * d;
    float *dOut = dExpertOut + p * d;
    float g = gate[a], acc = 0.0f;
    for (int64_t c = lane; c < d; c += G::kThreads) {
      dOut[c] = g * dyRow[c];
      acc += dyRow[c] * out[c];
    }
    acc = groupSum<G>(acc);
    if (lane == 0)
      dGate[a] = acc;
  }
}

/// Zeroes dWeights[e] ([size] floats each) of the experts without tokens
/// (empty segments of offsets [n+1]): blockIdx.x is the expert, blockIdx.y
/// a slice of its matrix.
__global__ void zeroEmptyExpertsKernel(int64_t size, const int32_t *offsets,
                                       float *dWeights) {
  if (offsets[blockIdx.x + 1] != offsets[blockIdx.x])
    return;
  float *w = dWeights + static_cast<int64_t>(blockIdx.x) * size;
  for (int64_t i = blockIdx.y * int64_t(blockDim.x) + threadIdx.x; i < size;
       i += int64_t(gridDim.y) * blockDim.x)
    w[i] = 0.0f;
}

void checkPlan(const char *kernel, int64_t T, int64_t n, int64_t A, int64_t d) {
  if (T < 0 || n < 1 || A < 0 || d < 0)
    throw std::invalid_argument(std::string(kernel) +
                                ": invalid plan sizes or width");
  if (T == 0 && A != 0)
    throw std::invalid_argument(std::string(kernel) +
                                ": assignments without tokens");
}

/// Host copy of the segment offsets [n+1]: cuBLAS's grouped GEMM takes its
/// per-group sizes from host arrays (the one device-to-host read of the
/// expert GEMMs, docs/ARCHITECTURE.md).
std::vector<int32_t> hostOffsets(const Context &ctx, int64_t n,
                                 const int32_t *expertOffset) {
  std::vector<int32_t> offsets(n + 1);
  MOE_CUDA_CHECK(cudaMemcpyAsync(offsets.data(), expertOffset,
                                 offsets.size() * sizeof(int32_t),
                                 cudaMemcpyDeviceToHost, ctx.stream));
  MOE_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  return offsets;
}

/// One column-major GEMM C = op(A) op(B) of a grouped call.
struct GroupGemm {
  int64_t m, n, k;
  const void *A;
  int64_t lda;
  const void *B;
  int64_t ldb;
  void *C;
  int64_t ldc;
};

/// Runs `problems` (same transposes and types) as one grouped cuBLAS call,
/// each problem its own group of size 1.
void groupedGemm(const Context &ctx, cublasOperation_t opA,
                 cublasOperation_t opB, const std::vector<GroupGemm> &problems,
                 cudaDataType_t abType, cudaDataType_t cType,
                 cublasComputeType_t compute) {
  size_t count = problems.size();
  if (count == 0)
    return;
  std::vector<cublasOperation_t> transA(count, opA), transB(count, opB);
  std::vector<int64_t> m, n, k, lda, ldb, ldc, groupSize(count, 1);
  std::vector<float> alpha(count, 1.0f), beta(count, 0.0f);
  // The matrix pointers live in device memory: A's, then B's, then C's.
  std::vector<const void *> pointers;
  pointers.reserve(3 * count);
  for (const GroupGemm &p : problems) {
    m.push_back(p.m);
    n.push_back(p.n);
    k.push_back(p.k);
    lda.push_back(p.lda);
    ldb.push_back(p.ldb);
    ldc.push_back(p.ldc);
    pointers.push_back(p.A);
  }
  for (const GroupGemm &p : problems)
    pointers.push_back(p.B);
  for (const GroupGemm &p : problems)
    pointers.push_back(p.C);
  DeviceBuffer<const void *> devicePointers(ctx.stream, pointers.size());
  // From pageable memory the copy is staged before the call returns, so the
  // host vector may go away afterwards.
  MOE_CUDA_CHECK(cudaMemcpyAsync(devicePointers.get(), pointers.data(),
                                 pointers.size() * sizeof(void *),
                                 cudaMemcpyHostToDevice, ctx.stream));
  const void *const *aArray = devicePointers.get();
  const void *const *bArray = aArray + count;
  void *const *cArray = const_cast<void *const *>(aArray + 2 * count);
  MOE_CUBLAS_CHECK(cublasGemmGroupedBatchedEx_64(
      ctx.blas, transA.data(), transB.data(), m.data(), n.data(), k.data(),
      alpha.data(), aArray, abType, lda.data(), bArray, abType, ldb.data(),
      beta.data(), cArray, cType, ldc.data(), static_cast<int64_t>(count),
      groupSize.data(), compute));
}

/// Operands of the grouped GEMMs in the precision's storage: f32 as given,
/// or bf16 copies with 16-byte aligned rows (cuBLAS's grouped GEMM has bf16
/// inputs only with a bf16 output).
struct GroupedMatrix {
  DeviceBuffer<__nv_bfloat16> copy;
  const void *data;
  int64_t ld;

  GroupedMatrix(const Context &ctx, const float *src, int64_t rows,
                int64_t cols, GemmPrecision precision)
      : data(src), ld(cols) {
    if (precision != GemmPrecision::BF16)
      return;
    ld = bf16LeadingDim(cols);
    copy = DeviceBuffer<__nv_bfloat16>(ctx.stream, rows * ld);
    convertToBf16(ctx, rows, cols, src, cols, copy.get(), ld);
    data = copy.get();
  }

  /// Element offset of row r.
  const char *row(int64_t r, size_t elementBytes) const {
    return static_cast<const char *>(data) + r * ld * elementBytes;
  }
};

/// Where a grouped GEMM writes: the f32 output itself, or a bf16 buffer
/// widened into it by finish().
struct GroupedOutput {
  DeviceBuffer<__nv_bfloat16> copy;
  float *dst;
  int64_t rows, cols, ld;

  GroupedOutput(const Context &ctx, float *out, int64_t rows, int64_t cols,
                GemmPrecision precision)
      : dst(out), rows(rows), cols(cols), ld(cols) {
    if (precision != GemmPrecision::BF16)
      return;
    ld = bf16LeadingDim(cols);
    copy = DeviceBuffer<__nv_bfloat16>(ctx.stream, rows * ld);
  }

  void *row(int64_t r) const {
    if (copy.get())
      return copy.get() + r * ld;
    return dst + r * ld;
  }
  void finish(const Context &ctx) const {
    if (copy.get())
      convertFromBf16(ctx, rows, cols, copy.get(), ld, dst, cols);
  }
};

size_t storageBytes(GemmPrecision precision) {
  return precision == GemmPrecision::BF16 ? sizeof(__nv_bfloat16)
                                          : sizeof(float);
}

cudaDataType_t storageType(GemmPrecision precision) {
  return precision == GemmPrecision::BF16 ? CUDA_R_16BF : CUDA_R_32F;
}

} // namespace

void CudaBackend::buildDispatchPlan(int64_t T, int64_t n, int64_t A,
                                    const int32_t *rowPtr,
                                    const int32_t *expert,
                                    int32_t *expertOffset, int32_t *positionOf,
                                    int32_t *tokenOfPosition) {
  checkPlan("buildDispatchPlan", T, n, A, 0);
  const Context &ctx = *ctx_;
  int64_t perToken = assignmentsPerToken("buildDispatchPlan", rowPtr, T, A);
  if (A == 0) {
    MOE_CUDA_CHECK(cudaMemsetAsync(expertOffset, 0, (n + 1) * sizeof(int32_t),
                                   ctx.stream));
    return;
  }
  DeviceBuffer<int32_t> sortedExperts(ctx.stream, A), order(ctx.stream, A);
  DeviceBuffer<int32_t> tokenOf(ctx.stream, A);
  stableSortByKey(ctx, A, n, expert, sortedExperts.get(), order.get());
  segmentOffsets(ctx, A, n, sortedExperts.get(), expertOffset);
  MOE_LAUNCH(tokenOfAssignmentKernel, dim3(gridFor(T)),
             dim3(kElementwiseThreads), 0, ctx.stream, T, rowPtr, perToken,
             tokenOf.get());
  MOE_LAUNCH(planPositionsKernel, dim3(gridFor(A)), dim3(kElementwiseThreads),
             0, ctx.stream, A, order.get(), tokenOf.get(), positionOf,
             tokenOfPosition);
}

void CudaBackend::dispatchForward(int64_t A, int64_t d,
                                  const int32_t *tokenOfPosition,
                                  const float *x, float *buffer) {
  checkPlan("dispatchForward", A, 1, A, d);
  gatherRows(*ctx_, A, d, tokenOfPosition, x, buffer);
}

void CudaBackend::dispatchBackward(int64_t T, int64_t A, int64_t d,
                                   const int32_t *rowPtr,
                                   const int32_t *positionOf,
                                   const float *dBuffer, float *dx) {
  checkPlan("dispatchBackward", T, 1, A, d);
  int64_t perToken = assignmentsPerToken("dispatchBackward", rowPtr, T, A);
  MOE_LAUNCH(sumAssignmentsKernel, dim3(gridFor(T * d)),
             dim3(kElementwiseThreads), 0, ctx_->stream, T, d, rowPtr, perToken,
             positionOf, static_cast<const float *>(nullptr), dBuffer, dx);
}

void CudaBackend::combineForward(int64_t T, int64_t A, int64_t d,
                                 const int32_t *rowPtr,
                                 const int32_t *positionOf, const float *gate,
                                 const float *expertOut, float *y) {
  checkPlan("combineForward", T, 1, A, d);
  int64_t perToken = assignmentsPerToken("combineForward", rowPtr, T, A);
  MOE_LAUNCH(sumAssignmentsKernel, dim3(gridFor(T * d)),
             dim3(kElementwiseThreads), 0, ctx_->stream, T, d, rowPtr, perToken,
             positionOf, gate, expertOut, y);
}

void CudaBackend::combineBackward(int64_t T, int64_t A, int64_t d,
                                  const int32_t *rowPtr,
                                  const int32_t *positionOf, const float *gate,
                                  const float *expertOut, const float *dy,
                                  float *dExpertOut, float *dGate) {
  checkPlan("combineBackward", T, 1, A, d);
  int64_t perToken = assignmentsPerToken("combineBackward", rowPtr, T, A);
  forRowLength(d, [&](auto group) {
    using G = decltype(group);
    MOE_LAUNCH(combineBackwardKernel<G>, dim3(rowGrid<G>(T)), dim3(G::kBlock),
               0, ctx_->stream, T, d, rowPtr, perToken, positionOf, gate,
               expertOut, dy, dExpertOut, dGate);
  });
}

namespace {

/// The expert segments of a grouped GEMM: equal ones of `equalRows` rows
/// (one strided-batched call, offsets not read), or the plan's offsets
/// read to the host for cuBLAS's grouped GEMM.
struct Segments {
  std::optional<int64_t> equalRows;
  std::vector<int32_t> offsets;

  Segments(const Context &ctx, int64_t n, const int32_t *expertOffset,
           std::optional<int64_t> equal)
      : equalRows(equal) {
    if (!equalRows)
      offsets = hostOffsets(ctx, n, expertOffset);
  }
  int64_t begin(int64_t e) const {
    return equalRows ? e * *equalRows : offsets[e];
  }
  int64_t rows(int64_t e) const {
    return equalRows ? *equalRows : offsets[e + 1] - offsets[e];
  }
};

/// Runs `problemOf(e)` for the n experts with rows: one strided-batched
/// call when the segments are equal (problem e's pointers are then
/// problem 0's advanced by e times the strides, in elements), else one
/// grouped call.
template <typename ProblemOf>
void runExperts(const Context &ctx, cublasOperation_t opA,
                cublasOperation_t opB, int64_t n, const Segments &segments,
                const int64_t strides[3], ProblemOf problemOf,
                GemmPrecision precision) {
  cudaDataType_t type = storageType(precision);
  if (segments.equalRows) {
    if (*segments.equalRows == 0)
      return;
    GroupGemm p = problemOf(0);
    float alpha = 1.0f, beta = 0.0f;
    MOE_CUBLAS_CHECK(cublasGemmStridedBatchedEx_64(
        ctx.blas, opA, opB, p.m, p.n, p.k, &alpha, p.A, type, p.lda, strides[0],
        p.B, type, p.ldb, strides[1], &beta, p.C, type, p.ldc, strides[2], n,
        computeType(precision), CUBLAS_GEMM_DEFAULT));
    return;
  }
  std::vector<GroupGemm> problems;
  for (int64_t e = 0; e < n; ++e)
    if (segments.rows(e) > 0)
      problems.push_back(problemOf(e));
  groupedGemm(ctx, opA, opB, problems, type, type, computeType(precision));
}

/// out_e = in_e op(W_e) for every expert segment e, where W_e is rows
/// [e dIn, (e+1) dIn) of `w` and op transposes it (backward to the input);
/// op(W_e) is inWidth x outWidth.
void segmentsTimesWeights(const Context &ctx, bool transposeWeights, int64_t n,
                          int64_t dIn, int64_t outWidth, int64_t inWidth,
                          const Segments &segments, const GroupedMatrix &w,
                          const GroupedMatrix &in, const GroupedOutput &out,
                          GemmPrecision precision) {
  size_t bytes = storageBytes(precision);
  int64_t rows = segments.equalRows.value_or(0);
  // Row-major out_e = in_e op(W_e) is column-major
  // out_e^T = op(W_e)^T in_e^T.
  const int64_t strides[3] = {dIn * w.ld, rows * in.ld, rows * out.ld};
  runExperts(
      ctx, transposeWeights ? CUBLAS_OP_T : CUBLAS_OP_N, CUBLAS_OP_N, n,
      segments, strides,
      [&](int64_t e) {
        int64_t begin = segments.begin(e);
        return GroupGemm{
            outWidth, segments.rows(e),     inWidth, w.row(e * dIn, bytes),
            w.ld,     in.row(begin, bytes), in.ld,   out.row(begin),
            out.ld};
      },
      precision);
}

void expertsForward(const Context &ctx, int64_t A, int64_t n, int64_t dIn,
                    int64_t dOut, const int32_t *expertOffset,
                    std::optional<int64_t> equalRows, const float *in,
                    const float *weights, float *out, GemmPrecision precision) {
  if (A == 0 || dOut == 0)
    return;
  if (dIn == 0) {
    MOE_CUDA_CHECK(
        cudaMemsetAsync(out, 0, A * dOut * sizeof(float), ctx.stream));
    return;
  }
  Segments segments(ctx, n, expertOffset, equalRows);
  GroupedMatrix x(ctx, in, A, dIn, precision);
  GroupedMatrix w(ctx, weights, n * dIn, dOut, precision);
  GroupedOutput y(ctx, out, A, dOut, precision);
  segmentsTimesWeights(ctx, /*transposeWeights=*/false, n, dIn, dOut, dIn,
                       segments, w, x, y, precision);
  y.finish(ctx);
}

void expertsBackward(const Context &ctx, int64_t A, int64_t n, int64_t dIn,
                     int64_t dOut, const int32_t *expertOffset,
                     std::optional<int64_t> equalRows, const float *in,
                     const float *weights, const float *dOutput, float *dInput,
                     float *dWeights, GemmPrecision precision) {
  int64_t weightSize = dIn * dOut;
  if (weightSize == 0) {
    if (A * dIn > 0)
      MOE_CUDA_CHECK(
          cudaMemsetAsync(dInput, 0, A * dIn * sizeof(float), ctx.stream));
    return;
  }
  Segments segments(ctx, n, expertOffset, equalRows);
  GroupedMatrix x(ctx, in, A, dIn, precision);
  GroupedMatrix w(ctx, weights, n * dIn, dOut, precision);
  GroupedMatrix dy(ctx, dOutput, A, dOut, precision);
  GroupedOutput dx(ctx, dInput, A, dIn, precision);
  GroupedOutput dw(ctx, dWeights, n * dIn, dOut, precision);
  bool anyEmpty = false;
  for (int64_t e = 0; e < n && !anyEmpty; ++e)
    anyEmpty = segments.rows(e) == 0;
  // Experts without tokens get zero gradients: through the bf16 copy
  // (zeroed before the GEMMs fill the others) or directly in dWeights.
  if (anyEmpty && precision == GemmPrecision::BF16)
    MOE_CUDA_CHECK(cudaMemsetAsync(
        dw.copy.get(), 0, n * dIn * dw.ld * sizeof(__nv_bfloat16), ctx.stream));
  if (anyEmpty && precision != GemmPrecision::BF16)
    MOE_LAUNCH(zeroEmptyExpertsKernel,
               dim3(static_cast<unsigned>(n),
                    std::min<unsigned>(ceilDiv(weightSize, 256), 64)),
               dim3(256), 0, ctx.stream, weightSize, expertOffset, dWeights);
  // dIn_e = dOut_e W_e^T.
  segmentsTimesWeights(ctx, /*transposeWeights=*/true, n, dIn, dIn, dOut,
                       segments, w, dy, dx, precision);
  int64_t rows = equalRows.value_or(0);
  size_t bytes = storageBytes(precision);
  // dW_e = in_e^T dOut_e, column-major dW_e^T = dOut_e^T in_e.
  const int64_t weightStrides[3] = {rows * dy.ld, rows * x.ld, dIn * dw.ld};
  runExperts(
      ctx, CUBLAS_OP_N, CUBLAS_OP_T, n, segments, weightStrides,
      [&](int64_t e) {
        int64_t begin = segments.begin(e);
        return GroupGemm{dOut,
                         dIn,
                         segments.rows(e),
                         dy.row(begin, bytes),
                         dy.ld,
                         x.row(begin, bytes),
                         x.ld,
                         dw.row(e * dIn),
                         dw.ld};
      },
      precision);
  dx.finish(ctx);
  dw.finish(ctx);
}

/// Rows per expert of an equal-segment call, checked against the sizes.
int64_t checkEqualRows(const char *kernel, int64_t n, int64_t rows, int64_t dIn,
                       int64_t dOut) {
  if (n < 1 || rows < 0 || dIn < 0 || dOut < 0)
    throw std::invalid_argument(std::string(kernel) +
                                ": invalid expert count, rows or widths");
  return n * rows;
}

} // namespace

void CudaBackend::groupedMatmulForward(int64_t A, int64_t n, int64_t dIn,
                                       int64_t dOut,
                                       const int32_t *expertOffset,
                                       const float *in, const float *weights,
                                       float *out, GemmPrecision precision) {
  checkPlan("groupedMatmulForward", A, n, A, dIn);
  if (dOut < 0)
    throw std::invalid_argument("groupedMatmulForward: negative dOut");
  expertsForward(*ctx_, A, n, dIn, dOut, expertOffset, std::nullopt, in,
                 weights, out, precision);
}

void CudaBackend::groupedMatmulBackward(int64_t A, int64_t n, int64_t dIn,
                                        int64_t dOut,
                                        const int32_t *expertOffset,
                                        const float *in, const float *weights,
                                        const float *dOutput, float *dInput,
                                        float *dWeights,
                                        GemmPrecision precision) {
  checkPlan("groupedMatmulBackward", A, n, A, dIn);
  if (dOut < 0)
    throw std::invalid_argument("groupedMatmulBackward: negative dOut");
  expertsBackward(*ctx_, A, n, dIn, dOut, expertOffset, std::nullopt, in,
                  weights, dOutput, dInput, dWeights, precision);
}

void CudaBackend::batchedMatmulForward(int64_t n, int64_t rows, int64_t dIn,
                                       int64_t dOut,
                                       const int32_t *expertOffset,
                                       const float *in, const float *weights,
                                       float *out, GemmPrecision precision) {
  int64_t A = checkEqualRows("batchedMatmulForward", n, rows, dIn, dOut);
  expertsForward(*ctx_, A, n, dIn, dOut, expertOffset, rows, in, weights, out,
                 precision);
}

void CudaBackend::batchedMatmulBackward(int64_t n, int64_t rows, int64_t dIn,
                                        int64_t dOut,
                                        const int32_t *expertOffset,
                                        const float *in, const float *weights,
                                        const float *dOutput, float *dInput,
                                        float *dWeights,
                                        GemmPrecision precision) {
  int64_t A = checkEqualRows("batchedMatmulBackward", n, rows, dIn, dOut);
  expertsBackward(*ctx_, A, n, dIn, dOut, expertOffset, rows, in, weights,
                  dOutput, dInput, dWeights, precision);
}

} // namespace moe::rt
