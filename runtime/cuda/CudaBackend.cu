//===- CudaBackend.cu - CUDA backend: memory, GEMM and shared helpers -----===//
//
// The backend object (device, stream, cuBLAS handle), memory management,
// dense GEMM through cublasGemmEx with the precision option, and the helpers
// shared by the kernel families: errors, deterministic reductions, the
// stable sort by key.
//
//===----------------------------------------------------------------------===//

#include "runtime/Checks.h"
#include "runtime/cuda/Common.cuh"
#include "runtime/cuda/CudaBackend.h"
#include "runtime/cuda/Gemm.cuh"

#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_scan.cuh>

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

namespace moe::rt {
namespace gpu {

//===----------------------------------------------------------------------===//
// Errors
//===----------------------------------------------------------------------===//

void throwCudaError(cudaError_t error, const char *call, const char *file,
                    int line) {
  throw std::runtime_error(std::string("CUDA error in ") + call + " at " +
                           file + ":" + std::to_string(line) + ": " +
                           cudaGetErrorName(error) + ": " +
                           cudaGetErrorString(error));
}

void throwCublasError(cublasStatus_t status, const char *call, const char *file,
                      int line) {
  throw std::runtime_error(std::string("cuBLAS error in ") + call + " at " +
                           file + ":" + std::to_string(line) + ": " +
                           cublasGetStatusName(status) + ": " +
                           cublasGetStatusString(status));
}

//===----------------------------------------------------------------------===//
// Shared kernels
//===----------------------------------------------------------------------===//

__global__ void __launch_bounds__(kSumThreads)
    sumFinalKernel(const float *partials, int64_t count, float scale,
                   float *out) {
  float acc = 0.0f;
  for (int64_t i = threadIdx.x; i < count; i += kSumThreads)
    acc += partials[i];
  acc = groupSum<Block256>(acc);
  if (threadIdx.x == 0)
    out[0] = scale * acc;
}

__global__ void columnFinalKernel(const float *partials, int64_t chunks,
                                  int64_t cols, float scale,
                                  const float *scaleBy, bool accumulate,
                                  float *out) {
  if (scaleBy)
    scale *= scaleBy[0];
  MOE_GRID_STRIDE(c, cols) {
    float sum = 0.0f;
    for (int64_t chunk = 0; chunk < chunks; ++chunk)
      sum += partials[chunk * cols + c];
    out[c] = accumulate ? out[c] + scale * sum : scale * sum;
  }
}

__global__ void fillKernel(float *x, float value, int64_t count) {
  MOE_GRID_STRIDE(i, count) { x[i] = value; }
}

__global__ void setIntKernel(int32_t *ptr, int32_t value) { ptr[0] = value; }

namespace {

__global__ void iotaKernel(int32_t *x, int64_t count) {
  MOE_GRID_STRIDE(i, count) { x[i] = static_cast<int32_t>(i); }
}

/// offsets[e] = lower_bound(sortedKeys, e) for e in [0, numKeys].
__global__ void lowerBoundKernel(const int32_t *sortedKeys, int64_t count,
                                 int64_t numKeys, int32_t *offsets) {
  MOE_GRID_STRIDE(e, numKeys + 1) {
    int64_t lo = 0, hi = count;
    while (lo < hi) {
      int64_t mid = lo + (hi - lo) / 2;
      if (sortedKeys[mid] < e)
        lo = mid + 1;
      else
        hi = mid;
    }
    offsets[e] = static_cast<int32_t>(lo);
  }
}

/// C = beta * C over an m x n row-major block (a GEMM with k = 0).
__global__ void scaleMatrixKernel(int64_t m, int64_t n, float beta, float *C,
                                  int64_t ldc) {
  MOE_GRID_STRIDE(i, m * n) {
    float &c = C[(i / n) * ldc + i % n];
    c = beta == 0.0f ? 0.0f : beta * c; // beta = 0 overwrites, as in BLAS
  }
}

__global__ void toBf16Kernel(int64_t rows, int64_t cols, const float *src,
                             int64_t ldSrc, __nv_bfloat16 *dst, int64_t ldDst) {
  MOE_GRID_STRIDE(i, rows * cols) {
    int64_t r = i / cols, c = i % cols;
    dst[r * ldDst + c] = __float2bfloat16_rn(src[r * ldSrc + c]);
  }
}

__global__ void fromBf16Kernel(int64_t rows, int64_t cols,
                               const __nv_bfloat16 *src, int64_t ldSrc,
                               float *dst, int64_t ldDst) {
  MOE_GRID_STRIDE(i, rows * cols) {
    int64_t r = i / cols, c = i % cols;
    dst[r * ldDst + c] = __bfloat162float(src[r * ldSrc + c]);
  }
}

/// The first sorted position p of each key adds that key's rows, in input
/// order, to dst[key]. One row group per sorted position.
template <class G>
__global__ void __launch_bounds__(G::kBlock)
    accumulateRunsKernel(int64_t count, int64_t d, const int32_t *sortedKeys,
                         const int32_t *order, const float *rows,
                         int32_t skipKey, float *dst) {
  int64_t p = groupRow<G>();
  int lane = groupLane<G>();
  if (p >= count || (p > 0 && sortedKeys[p] == sortedKeys[p - 1]))
    return;
  int32_t key = sortedKeys[p];
  if (key == skipKey)
    return;
  int64_t end = p + 1;
  while (end < count && sortedKeys[end] == key)
    ++end;
  float *out = dst + static_cast<int64_t>(key) * d;
  for (int64_t c = lane; c < d; c += G::kThreads) {
    float acc = out[c];
    for (int64_t q = p; q < end; ++q)
      acc += rows[static_cast<int64_t>(order[q]) * d + c];
    out[c] = acc;
  }
}

/// runStart[p] = 1 where sorted position p starts a run of a kept key.
__global__ void runStartKernel(int64_t count, const int32_t *sortedKeys,
                               int32_t skipKey, int32_t *runStart) {
  MOE_GRID_STRIDE(p, count) {
    int32_t key = sortedKeys[p];
    runStart[p] = key != skipKey && (p == 0 || key != sortedKeys[p - 1]);
  }
}

__global__ void fillIntKernel(int32_t *x, int32_t value, int64_t count) {
  MOE_GRID_STRIDE(i, count) { x[i] = value; }
}

/// The run starting at sorted position p goes to slot[p]: its key and the
/// sum of its rows in input order, from zero.
template <class G>
__global__ void __launch_bounds__(G::kBlock)
    compactRunsKernel(int64_t count, int64_t d, const int32_t *sortedKeys,
                      const int32_t *order, const float *rows,
                      const int32_t *runStart, const int32_t *slot,
                      int32_t *outKeys, float *outValues) {
  int64_t p = groupRow<G>();
  int lane = groupLane<G>();
  if (p >= count || !runStart[p])
    return;
  int32_t key = sortedKeys[p];
  int64_t end = p + 1;
  while (end < count && sortedKeys[end] == key)
    ++end;
  if (lane == 0)
    outKeys[slot[p]] = key;
  float *out = outValues + static_cast<int64_t>(slot[p]) * d;
  for (int64_t c = lane; c < d; c += G::kThreads) {
    float acc = 0.0f;
    for (int64_t q = p; q < end; ++q)
      acc += rows[static_cast<int64_t>(order[q]) * d + c];
    out[c] = acc;
  }
}

cublasOperation_t op(bool trans) { return trans ? CUBLAS_OP_T : CUBLAS_OP_N; }

} // namespace

void stableSortByKey(const Context &ctx, int64_t count, int64_t keyLimit,
                     const int32_t *keys, int32_t *sortedKeys, int32_t *order) {
  if (count == 0)
    return;
  if (count > std::numeric_limits<int32_t>::max())
    throw std::invalid_argument("stableSortByKey: more than 2^31-1 keys");
  int endBit = 1;
  while (endBit < 31 && (int64_t(1) << endBit) < keyLimit)
    ++endBit;
  DeviceBuffer<int32_t> positions(ctx.stream, count);
  MOE_LAUNCH(iotaKernel, dim3(gridFor(count)), dim3(kElementwiseThreads), 0,
             ctx.stream, positions.get(), count);
  int num = static_cast<int>(count);
  size_t bytes = 0;
  MOE_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(
      nullptr, bytes, keys, sortedKeys, positions.get(), order, num, 0, endBit,
      ctx.stream));
  DeviceBuffer<unsigned char> temp(ctx.stream, bytes);
  // LSD radix sort is stable: equal keys keep their input order.
  MOE_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(
      temp.get(), bytes, keys, sortedKeys, positions.get(), order, num, 0,
      endBit, ctx.stream));
}

void accumulateRowsByKey(const Context &ctx, int64_t count, int64_t d,
                         const int32_t *keys, int64_t keyLimit,
                         const float *rows, int32_t skipKey, float *dst) {
  if (count == 0 || d == 0)
    return;
  DeviceBuffer<int32_t> sortedKeys(ctx.stream, count), order(ctx.stream, count);
  stableSortByKey(ctx, count, keyLimit, keys, sortedKeys.get(), order.get());
  forRowLength(d, [&](auto group) {
    using G = decltype(group);
    MOE_LAUNCH(accumulateRunsKernel<G>, dim3(rowGrid<G>(count)),
               dim3(G::kBlock), 0, ctx.stream, count, d, sortedKeys.get(),
               order.get(), rows, skipKey, dst);
  });
}

void compactRowsByKey(const Context &ctx, int64_t count, int64_t d,
                      const int32_t *keys, int64_t keyLimit, const float *rows,
                      int32_t skipKey, int32_t *outKeys, float *outValues) {
  if (count == 0)
    return;
  MOE_LAUNCH(fillIntKernel, dim3(gridFor(count)), dim3(kElementwiseThreads), 0,
             ctx.stream, outKeys, -1, count);
  MOE_LAUNCH(fillKernel, dim3(gridFor(count * d)), dim3(kElementwiseThreads), 0,
             ctx.stream, outValues, 0.0f, count * d);
  DeviceBuffer<int32_t> sortedKeys(ctx.stream, count), order(ctx.stream, count);
  stableSortByKey(ctx, count, keyLimit, keys, sortedKeys.get(), order.get());
  DeviceBuffer<int32_t> runStart(ctx.stream, count), slot(ctx.stream, count);
  MOE_LAUNCH(runStartKernel, dim3(gridFor(count)), dim3(kElementwiseThreads), 0,
             ctx.stream, count, sortedKeys.get(), skipKey, runStart.get());
  int num = static_cast<int>(count);
  size_t bytes = 0;
  MOE_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(nullptr, bytes, runStart.get(),
                                               slot.get(), num, ctx.stream));
  DeviceBuffer<unsigned char> temp(ctx.stream, bytes);
  MOE_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(
      temp.get(), bytes, runStart.get(), slot.get(), num, ctx.stream));
  // With d = 0 the kernel still writes the keys (its value loop is empty).
  forRowLength(d, [&](auto group) {
    using G = decltype(group);
    MOE_LAUNCH(compactRunsKernel<G>, dim3(rowGrid<G>(count)), dim3(G::kBlock),
               0, ctx.stream, count, d, sortedKeys.get(), order.get(), rows,
               runStart.get(), slot.get(), outKeys, outValues);
  });
}

void segmentOffsets(const Context &ctx, int64_t count, int64_t numKeys,
                    const int32_t *sortedKeys, int32_t *offsets) {
  MOE_LAUNCH(lowerBoundKernel, dim3(gridFor(numKeys + 1)),
             dim3(kElementwiseThreads), 0, ctx.stream, sortedKeys, count,
             numKeys, offsets);
}

//===----------------------------------------------------------------------===//
// GEMM
//===----------------------------------------------------------------------===//

void convertToBf16(const Context &ctx, int64_t rows, int64_t cols,
                   const float *src, int64_t ldSrc, __nv_bfloat16 *dst,
                   int64_t ldDst) {
  MOE_LAUNCH(toBf16Kernel, dim3(gridFor(rows * cols)),
             dim3(kElementwiseThreads), 0, ctx.stream, rows, cols, src, ldSrc,
             dst, ldDst);
}

void convertFromBf16(const Context &ctx, int64_t rows, int64_t cols,
                     const __nv_bfloat16 *src, int64_t ldSrc, float *dst,
                     int64_t ldDst) {
  MOE_LAUNCH(fromBf16Kernel, dim3(gridFor(rows * cols)),
             dim3(kElementwiseThreads), 0, ctx.stream, rows, cols, src, ldSrc,
             dst, ldDst);
}

GemmOperand::GemmOperand(const Context &ctx, const float *data, int64_t rows,
                         int64_t cols, int64_t ld, GemmPrecision precision)
    : data_(data), type_(CUDA_R_32F), ld_(ld) {
  if (precision != GemmPrecision::BF16)
    return;
  ld_ = bf16LeadingDim(cols);
  copy_ = DeviceBuffer<__nv_bfloat16>(ctx.stream, rows * ld_);
  convertToBf16(ctx, rows, cols, data, ld, copy_.get(), ld_);
  data_ = copy_.get();
  type_ = CUDA_R_16BF;
}

cublasComputeType_t computeType(GemmPrecision precision) {
  switch (precision) {
  case GemmPrecision::F32:
  case GemmPrecision::BF16: // bf16 products, f32 accumulation
    return CUBLAS_COMPUTE_32F;
  case GemmPrecision::TF32:
    return CUBLAS_COMPUTE_32F_FAST_TF32;
  }
  throw std::invalid_argument("gemm: unknown GemmPrecision");
}

void gemm(const Context &ctx, bool transA, bool transB, int64_t m, int64_t n,
          int64_t k, float alpha, const GemmOperand &A, const GemmOperand &B,
          float beta, float *C, int64_t ldc, GemmPrecision precision) {
  if (m == 0 || n == 0)
    return;
  if (k == 0) {
    MOE_LAUNCH(scaleMatrixKernel, dim3(gridFor(m * n)),
               dim3(kElementwiseThreads), 0, ctx.stream, m, n, beta, C, ldc);
    return;
  }
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T.
  MOE_CUBLAS_CHECK(cublasGemmEx_64(
      ctx.blas, op(transB), op(transA), n, m, k, &alpha, B.data(), B.type(),
      B.ld(), A.data(), A.type(), A.ld(), &beta, C, CUDA_R_32F, ldc,
      computeType(precision), CUBLAS_GEMM_DEFAULT));
}

void gemm(const Context &ctx, bool transA, bool transB, int64_t m, int64_t n,
          int64_t k, float alpha, const float *A, int64_t lda, const float *B,
          int64_t ldb, float beta, float *C, int64_t ldc,
          GemmPrecision precision) {
  if (m == 0 || n == 0)
    return;
  GemmOperand a(ctx, A, transA ? k : m, transA ? m : k, lda, precision);
  GemmOperand b(ctx, B, transB ? n : k, transB ? k : n, ldb, precision);
  gemm(ctx, transA, transB, m, n, k, alpha, a, b, beta, C, ldc, precision);
}

void gemmStridedBatched(const Context &ctx, bool transA, bool transB, int64_t m,
                        int64_t n, int64_t k, float alpha, const float *A,
                        int64_t lda, int64_t strideA, const float *B,
                        int64_t ldb, int64_t strideB, float beta, float *C,
                        int64_t ldc, int64_t strideC, int64_t batch) {
  if (m == 0 || n == 0 || batch == 0)
    return;
  if (k == 0) {
    for (int64_t i = 0; i < batch; ++i)
      MOE_LAUNCH(scaleMatrixKernel, dim3(gridFor(m * n)),
                 dim3(kElementwiseThreads), 0, ctx.stream, m, n, beta,
                 C + i * strideC, ldc);
    return;
  }
  MOE_CUBLAS_CHECK(cublasGemmStridedBatchedEx_64(
      ctx.blas, op(transB), op(transA), n, m, k, &alpha, B, CUDA_R_32F, ldb,
      strideB, A, CUDA_R_32F, lda, strideA, &beta, C, CUDA_R_32F, ldc, strideC,
      batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

} // namespace gpu

//===----------------------------------------------------------------------===//
// The backend object and memory
//===----------------------------------------------------------------------===//

CudaBackend::CudaBackend(int device) : ctx_(std::make_unique<gpu::Context>()) {
  ctx_->device = device;
  MOE_CUDA_CHECK(cudaSetDevice(device));
  // Scratch buffers come from the stream-ordered pool; keep freed memory
  // cached instead of returning it to the driver at every synchronization.
  cudaMemPool_t pool;
  MOE_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device));
  uint64_t keep = std::numeric_limits<uint64_t>::max();
  MOE_CUDA_CHECK(
      cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
  MOE_CUDA_CHECK(
      cudaStreamCreateWithFlags(&ctx_->stream, cudaStreamNonBlocking));
  try {
    MOE_CUBLAS_CHECK(cublasCreate(&ctx_->blas));
    MOE_CUBLAS_CHECK(cublasSetStream(ctx_->blas, ctx_->stream));
    // Plain f32 unless a call asks for TF32; no atomics, for determinism.
    MOE_CUBLAS_CHECK(cublasSetMathMode(ctx_->blas, CUBLAS_DEFAULT_MATH));
    MOE_CUBLAS_CHECK(
        cublasSetAtomicsMode(ctx_->blas, CUBLAS_ATOMICS_NOT_ALLOWED));
  } catch (...) {
    if (ctx_->blas)
      cublasDestroy(ctx_->blas);
    cudaStreamDestroy(ctx_->stream);
    throw;
  }
}

CudaBackend::~CudaBackend() {
  // Destructors cannot throw: report and go on releasing.
  cudaError_t error = cudaStreamSynchronize(ctx_->stream);
  if (error != cudaSuccess)
    std::fprintf(stderr, "moe-runtime: CUDA error at backend shutdown: %s\n",
                 cudaGetErrorString(error));
  cublasDestroy(ctx_->blas);
  cudaStreamDestroy(ctx_->stream);
}

std::string CudaBackend::name() const { return "cuda"; }

void *CudaBackend::alloc(size_t bytes) {
  // As on the CPU, an empty tensor still gets a unique non-null block: null
  // means "operand absent" to several kernels.
  void *ptr = nullptr;
  MOE_CUDA_CHECK(cudaMalloc(&ptr, std::max<size_t>(bytes, 256)));
  return ptr;
}

void CudaBackend::release(void *ptr) {
  if (ptr)
    MOE_CUDA_CHECK(cudaFree(ptr));
}

void CudaBackend::copyFromHost(void *dst, const void *src, size_t bytes) {
  if (bytes == 0)
    return;
  MOE_CUDA_CHECK(
      cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ctx_->stream));
  // The caller may reuse `src` at once, pinned or not.
  MOE_CUDA_CHECK(cudaStreamSynchronize(ctx_->stream));
}

void CudaBackend::copyToHost(void *dst, const void *src, size_t bytes) {
  if (bytes == 0)
    return;
  MOE_CUDA_CHECK(
      cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, ctx_->stream));
  MOE_CUDA_CHECK(cudaStreamSynchronize(ctx_->stream));
}

void CudaBackend::copyDevice(void *dst, const void *src, size_t bytes) {
  if (bytes == 0)
    return;
  auto d = reinterpret_cast<uintptr_t>(dst),
       s = reinterpret_cast<uintptr_t>(src);
  if (d < s + bytes && s < d + bytes && d != s) {
    // Overlapping views of one buffer (allowed, as memmove on the CPU):
    // device-to-device copies are undefined then, so go through scratch.
    void *scratch = nullptr;
    MOE_CUDA_CHECK(cudaMallocAsync(&scratch, bytes, ctx_->stream));
    MOE_CUDA_CHECK(cudaMemcpyAsync(scratch, src, bytes,
                                   cudaMemcpyDeviceToDevice, ctx_->stream));
    MOE_CUDA_CHECK(cudaMemcpyAsync(dst, scratch, bytes,
                                   cudaMemcpyDeviceToDevice, ctx_->stream));
    MOE_CUDA_CHECK(cudaFreeAsync(scratch, ctx_->stream));
    return;
  }
  MOE_CUDA_CHECK(
      cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ctx_->stream));
}

void CudaBackend::fill(float *x, float value, int64_t count) {
  if (count < 0)
    throw std::invalid_argument("fill: negative count");
  MOE_LAUNCH(gpu::fillKernel, dim3(gpu::gridFor(count)),
             dim3(gpu::kElementwiseThreads), 0, ctx_->stream, x, value, count);
}

void CudaBackend::synchronize() {
  MOE_CUDA_CHECK(cudaStreamSynchronize(ctx_->stream));
}

size_t CudaBackend::availableMemory() const {
  size_t free = 0, total = 0;
  MOE_CUDA_CHECK(cudaSetDevice(ctx_->device));
  MOE_CUDA_CHECK(cudaMemGetInfo(&free, &total));
  return free;
}

void CudaBackend::gemm(bool transA, bool transB, int64_t m, int64_t n,
                       int64_t k, float alpha, const float *A, int64_t lda,
                       const float *B, int64_t ldb, float beta, float *C,
                       int64_t ldc, GemmPrecision precision) {
  checkGemmShape(transA, transB, m, n, k, lda, ldb, ldc);
  gpu::gemm(*ctx_, transA, transB, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc,
            precision);
}

//===----------------------------------------------------------------------===//
// Entry points
//===----------------------------------------------------------------------===//

bool cudaBackendCompiled() { return true; }

int cudaDeviceCount() {
  int count = 0;
  cudaError_t error = cudaGetDeviceCount(&count);
  if (error != cudaSuccess) {
    // No driver or no device: not an error for the caller, just no GPU.
    // Say why once, so an old driver is not mistaken for a missing GPU.
    static bool reported = false;
    if (!reported && error != cudaErrorNoDevice) {
      std::fprintf(stderr, "moe-runtime: no usable CUDA device: %s\n",
                   cudaGetErrorString(error));
      reported = true;
    }
    (void)cudaGetLastError();
    return 0;
  }
  return count;
}

std::unique_ptr<Backend> createCudaBackend(int device) {
  int count = cudaDeviceCount();
  if (device < 0 || device >= count)
    throw std::runtime_error("createCudaBackend: no CUDA device " +
                             std::to_string(device) + " (" +
                             std::to_string(count) + " visible)");
  return std::make_unique<CudaBackend>(device);
}

} // namespace moe::rt
