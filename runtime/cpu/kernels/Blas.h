//===- Blas.h - Scalar-generic GEMM over OpenBLAS ---------------*- C++ -*-===//
//
// The CPU kernels are templates over the scalar type: the backend runs them
// in float, the gradient tests in double. gemm<T> picks cblas_sgemm or
// cblas_dgemm.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_CPU_KERNELS_BLAS_H
#define MOE_RUNTIME_CPU_KERNELS_BLAS_H

#include <cblas.h>
#include <cstdint>
#include <type_traits>

namespace moe::rt::cpu {

/// C = alpha * op(A) * op(B) + beta * C, row-major; op(A) is m x k.
template <typename T>
inline void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
                 T alpha, const T *A, int64_t lda, const T *B, int64_t ldb,
                 T beta, T *C, int64_t ldc) {
  if (m == 0 || n == 0)
    return;
  auto ta = transA ? CblasTrans : CblasNoTrans;
  auto tb = transB ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C,
                ldc);
  else
    cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C,
                ldc);
}

} // namespace moe::rt::cpu

#endif // MOE_RUNTIME_CPU_KERNELS_BLAS_H
