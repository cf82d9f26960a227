//===- Gemm.cuh - Row-major cuBLAS GEMMs with a precision knob -*- CUDA -*-===//
//
// The backend keeps row-major matrices; cuBLAS is column-major. A row-major
// C = op(A) op(B) is the column-major C^T = op(B)^T op(A)^T, so every call
// swaps the operands (and m with n) and keeps the transpose flags.
//
// Precision: F32 computes in CUBLAS_COMPUTE_32F, TF32 in
// CUBLAS_COMPUTE_32F_FAST_TF32 on f32 data, BF16 converts the operands to
// bfloat16 copies and computes in CUBLAS_COMPUTE_32F with an f32 output.
// Weights reused across many GEMMs (the LSTM's recurrent matrix) are
// converted once through GemmOperand.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_CUDA_GEMM_CUH
#define MOE_RUNTIME_CUDA_GEMM_CUH

#include "runtime/Backend.h"
#include "runtime/cuda/Common.cuh"

#include <cuda_bf16.h>

namespace moe::rt::gpu {

/// Leading dimension of the bf16 copies: a multiple of 8 elements keeps
/// every row 16-byte aligned, as cuBLAS's tensor-core paths want.
inline int64_t bf16LeadingDim(int64_t cols) {
  return std::max<int64_t>(8, (cols + 7) / 8 * 8);
}

/// dst [rows, ldDst] (bf16) = src [rows, ldSrc] (f32), rounded to nearest.
void convertToBf16(const Context &ctx, int64_t rows, int64_t cols,
                   const float *src, int64_t ldSrc, __nv_bfloat16 *dst,
                   int64_t ldDst);

/// dst [rows, ldDst] (f32) = src [rows, ldSrc] (bf16).
void convertFromBf16(const Context &ctx, int64_t rows, int64_t cols,
                     const __nv_bfloat16 *src, int64_t ldSrc, float *dst,
                     int64_t ldDst);

/// A row-major GEMM operand in the form the precision asks for: the f32
/// matrix itself, or (BF16) a bfloat16 copy owned by the operand.
class GemmOperand {
public:
  /// `rows` x `cols` with leading dimension `ld`, as stored (before op()).
  GemmOperand(const Context &ctx, const float *data, int64_t rows, int64_t cols,
              int64_t ld, GemmPrecision precision);

  const void *data() const { return data_; }
  cudaDataType_t type() const { return type_; }
  int64_t ld() const { return ld_; }

private:
  DeviceBuffer<__nv_bfloat16> copy_;
  const void *data_;
  cudaDataType_t type_;
  int64_t ld_;
};

/// The cuBLAS compute type of a precision.
cublasComputeType_t computeType(GemmPrecision precision);

/// C = alpha * op(A) op(B) + beta * C, row-major; op(A) is m x k. C is f32.
void gemm(const Context &ctx, bool transA, bool transB, int64_t m, int64_t n,
          int64_t k, float alpha, const GemmOperand &A, const GemmOperand &B,
          float beta, float *C, int64_t ldc, GemmPrecision precision);

/// The same on f32 pointers, converting them first when precision is BF16.
void gemm(const Context &ctx, bool transA, bool transB, int64_t m, int64_t n,
          int64_t k, float alpha, const float *A, int64_t lda, const float *B,
          int64_t ldb, float beta, float *C, int64_t ldc,
          GemmPrecision precision);

/// `batch` independent f32 GEMMs, matrix i at A + i * strideA (and so on).
void gemmStridedBatched(const Context &ctx, bool transA, bool transB, int64_t m,
                        int64_t n, int64_t k, float alpha, const float *A,
                        int64_t lda, int64_t strideA, const float *B,
                        int64_t ldb, int64_t strideB, float beta, float *C,
                        int64_t ldc, int64_t strideC, int64_t batch);

} // namespace moe::rt::gpu

#endif // MOE_RUNTIME_CUDA_GEMM_CUH
