//===- Common.cuh - Shared helpers of the CUDA kernels ---------*- CUDA -*-===//
//
// Error checking, the backend's stream and cuBLAS handle, stream-ordered
// scratch buffers, launch helpers and the deterministic reductions that every
// kernel family uses. Private to runtime/cuda: nothing here is installed.
//
// Determinism: no reduction in this backend uses floating-point atomics. Sums
// are fixed trees (warp butterflies, then a fixed order over warps and
// chunks) whose shape depends only on the problem size, so the same inputs
// give bit-identical results on every run on the same GPU model.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_CUDA_COMMON_CUH
#define MOE_RUNTIME_CUDA_COMMON_CUH

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <utility>

namespace moe::rt::gpu {

//===----------------------------------------------------------------------===//
// Errors
//===----------------------------------------------------------------------===//

/// Throws std::runtime_error naming the failed call, its place and the CUDA
/// error string.
[[noreturn]] void throwCudaError(cudaError_t error, const char *call,
                                 const char *file, int line);
/// Same for cuBLAS status codes.
[[noreturn]] void throwCublasError(cublasStatus_t status, const char *call,
                                   const char *file, int line);

inline void checkCuda(cudaError_t error, const char *call, const char *file,
                      int line) {
  if (error != cudaSuccess)
    throwCudaError(error, call, file, line);
}

inline void checkCublas(cublasStatus_t status, const char *call,
                        const char *file, int line) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throwCublasError(status, call, file, line);
}

#define MOE_CUDA_CHECK(call)                                                   \
  ::moe::rt::gpu::checkCuda((call), #call, __FILE__, __LINE__)
#define MOE_CUBLAS_CHECK(call)                                                 \
  ::moe::rt::gpu::checkCublas((call), #call, __FILE__, __LINE__)

//===----------------------------------------------------------------------===//
// Backend state
//===----------------------------------------------------------------------===//

/// What every kernel family needs: the device, the single stream on which
/// all work of the backend is ordered, and the cuBLAS handle bound to it.
struct Context {
  int device = 0;
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
};

/// A stream-ordered scratch allocation (cudaMallocAsync from the device's
/// memory pool, which the backend configures to keep freed memory cached).
/// Released on `stream` when it goes out of scope, so kernels queued before
/// the release still see valid memory.
template <typename T> class DeviceBuffer {
public:
  DeviceBuffer() = default;
  DeviceBuffer(cudaStream_t stream, size_t count)
      : stream_(stream), count_(count) {
    if (count > 0)
      MOE_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void **>(&ptr_),
                                     count * sizeof(T), stream));
  }
  DeviceBuffer(const DeviceBuffer &) = delete;
  DeviceBuffer &operator=(const DeviceBuffer &) = delete;
  DeviceBuffer(DeviceBuffer &&other) noexcept { swap(other); }
  DeviceBuffer &operator=(DeviceBuffer &&other) noexcept {
    DeviceBuffer(std::move(other)).swap(*this);
    return *this;
  }
  ~DeviceBuffer() {
    if (!ptr_)
      return;
    // A destructor cannot throw; a failed release means the context is
    // already broken and the next checked call reports it.
    cudaError_t error = cudaFreeAsync(ptr_, stream_);
    if (error != cudaSuccess)
      std::fprintf(stderr, "moe-runtime: cudaFreeAsync failed: %s\n",
                   cudaGetErrorString(error));
  }

  T *get() const { return ptr_; }
  size_t size() const { return count_; }

private:
  void swap(DeviceBuffer &other) noexcept {
    std::swap(stream_, other.stream_);
    std::swap(ptr_, other.ptr_);
    std::swap(count_, other.count_);
  }

  cudaStream_t stream_ = nullptr;
  T *ptr_ = nullptr;
  size_t count_ = 0;
};

//===----------------------------------------------------------------------===//
// Launching
//===----------------------------------------------------------------------===//

/// Launches `kernel` unless the grid is empty (a zero-sized grid is a launch
/// error) and checks the launch.
template <typename... KernelArgs, typename... Args>
void launchKernel(const char *name, const char *file, int line,
                  void (*kernel)(KernelArgs...), dim3 grid, dim3 block,
                  size_t sharedBytes, cudaStream_t stream, Args &&...args) {
  if (grid.x == 0 || grid.y == 0 || grid.z == 0)
    return;
  kernel<<<grid, block, sharedBytes, stream>>>(std::forward<Args>(args)...);
  checkCuda(cudaGetLastError(), name, file, line);
}

/// MOE_LAUNCH(kernel, grid, block, sharedBytes, stream, args...). Wrap a
/// kernel whose template arguments contain commas in parentheses.
#define MOE_LAUNCH(kernel, grid, block, shared, stream, ...)                   \
  ::moe::rt::gpu::launchKernel(#kernel, __FILE__, __LINE__, kernel, grid,      \
                               block, shared, stream, __VA_ARGS__)

/// Grid-stride loop over [0, count) with 64-bit indices.
#define MOE_GRID_STRIDE(i, count)                                              \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;             \
       i < (count); i += int64_t(gridDim.x) * blockDim.x)

/// Threads per block of the elementwise kernels.
constexpr int kElementwiseThreads = 256;

/// Blocks for a grid-stride loop over `count` items; capped because each
/// thread loops, and at least 1 only when there is work.
inline unsigned gridFor(int64_t count, int threads = kElementwiseThreads) {
  int64_t blocks = (std::max<int64_t>(count, 0) + threads - 1) / threads;
  return static_cast<unsigned>(std::min<int64_t>(blocks, int64_t(1) << 20));
}

inline unsigned ceilDiv(int64_t a, int64_t b) {
  return static_cast<unsigned>((a + b - 1) / b);
}

//===----------------------------------------------------------------------===//
// Warp and row reductions
//===----------------------------------------------------------------------===//

constexpr unsigned kFullMask = 0xffffffffu;

/// Butterfly sum: every lane gets the same, order-fixed result.
template <typename V> __device__ __forceinline__ V warpSum(V v) {
  for (int offset = 16; offset > 0; offset >>= 1)
    v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

__device__ __forceinline__ float warpMax(float v) {
  for (int offset = 16; offset > 0; offset >>= 1)
    v = fmaxf(v, __shfl_xor_sync(kFullMask, v, offset));
  return v;
}

/// Short rows: one warp per row, eight rows per block of 256 threads.
struct WarpPerRow {
  static constexpr int kThreads = 32;
  static constexpr int kBlock = 256;
  static constexpr int kRowsPerBlock = kBlock / kThreads;
};

/// Long rows: one block of 512 threads per row.
struct BlockPerRow {
  static constexpr int kThreads = 512;
  static constexpr int kBlock = 512;
  static constexpr int kRowsPerBlock = 1;
};

/// One block of 256 threads working together (single-block reductions).
struct Block256 {
  static constexpr int kThreads = 256;
  static constexpr int kBlock = 256;
  static constexpr int kRowsPerBlock = 1;
};

/// Row lengths up to this use WarpPerRow.
constexpr int64_t kWarpRowLimit = 1024;

template <class G> __device__ __forceinline__ int64_t groupRow() {
  return static_cast<int64_t>(blockIdx.x) * G::kRowsPerBlock +
         threadIdx.x / G::kThreads;
}

template <class G> __device__ __forceinline__ int groupLane() {
  return static_cast<int>(threadIdx.x % G::kThreads);
}

/// Sum over the threads of one row group; every thread gets the same
/// result. For block-wide groups every thread of the block must call it (it
/// synchronizes).
template <class G, typename V> __device__ __forceinline__ V groupSum(V v) {
  v = warpSum(v);
  if constexpr (G::kThreads > 32) {
    __shared__ V partial[32];
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    __syncthreads(); // the previous reduction's readers are done
    if (lane == 0)
      partial[warp] = v;
    __syncthreads();
    v = warpSum(lane < G::kThreads / 32 ? partial[lane] : V(0));
  }
  return v;
}

template <class G> __device__ __forceinline__ float groupMax(float v) {
  v = warpMax(v);
  if constexpr (G::kThreads > 32) {
    __shared__ float partial[32];
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    __syncthreads();
    if (lane == 0)
      partial[warp] = v;
    __syncthreads();
    v = warpMax(lane < G::kThreads / 32 ? partial[lane] : -INFINITY);
  }
  return v;
}

/// Calls `launch(WarpPerRow{})` or `launch(BlockPerRow{})` by row length.
template <class F> void forRowLength(int64_t length, F &&launch) {
  if (length <= kWarpRowLimit)
    launch(WarpPerRow{});
  else
    launch(BlockPerRow{});
}

/// Grid for `rows` rows handled by row group G.
template <class G> unsigned rowGrid(int64_t rows) {
  return ceilDiv(rows, G::kRowsPerBlock);
}

//===----------------------------------------------------------------------===//
// Deterministic sums
//===----------------------------------------------------------------------===//

constexpr int kSumThreads = Block256::kThreads;

/// Block b sums f(i) over i in [b * chunk, min(count, (b + 1) * chunk)).
template <class F>
__global__ void __launch_bounds__(kSumThreads)
    sumChunksKernel(int64_t count, int64_t chunk, F f, float *partials) {
  int64_t begin = static_cast<int64_t>(blockIdx.x) * chunk;
  int64_t end = min(count, begin + chunk);
  float acc = 0.0f;
  for (int64_t i = begin + threadIdx.x; i < end; i += kSumThreads)
    acc += f(i);
  acc = groupSum<Block256>(acc);
  if (threadIdx.x == 0)
    partials[blockIdx.x] = acc;
}

/// out[0] = scale * sum of partials[0, count).
__global__ void __launch_bounds__(kSumThreads)
    sumFinalKernel(const float *partials, int64_t count, float scale,
                   float *out);

/// out[0] (device) = scale * sum_{i < count} f(i), deterministic: the chunk
/// size depends only on `count`.
template <class F>
void deterministicSum(const Context &ctx, int64_t count, F f, float scale,
                      float *out) {
  int64_t chunk = std::max<int64_t>(4096, (count + 1023) / 1024);
  int64_t chunks = std::max<int64_t>(1, (count + chunk - 1) / chunk);
  DeviceBuffer<float> partials(ctx.stream, chunks);
  MOE_LAUNCH(sumChunksKernel<F>, dim3(chunks), dim3(kSumThreads), 0, ctx.stream,
             count, chunk, f, partials.get());
  MOE_LAUNCH(sumFinalKernel, dim3(1), dim3(kSumThreads), 0, ctx.stream,
             partials.get(), chunks, scale, out);
}

constexpr int kColumnTileRows = 8;

/// Partial column sums over one chunk of rows: block (32, 8) covers 32
/// columns; partials[chunk, col].
template <class F>
__global__ void __launch_bounds__(32 * kColumnTileRows)
    columnChunksKernel(int64_t rows, int64_t cols, int64_t rowsPerChunk, F f,
                       float *partials) {
  __shared__ float tile[kColumnTileRows][33];
  int64_t col = static_cast<int64_t>(blockIdx.x) * 32 + threadIdx.x;
  int64_t begin = static_cast<int64_t>(blockIdx.y) * rowsPerChunk;
  int64_t end = min(rows, begin + rowsPerChunk);
  float acc = 0.0f;
  if (col < cols)
    for (int64_t r = begin + threadIdx.y; r < end; r += kColumnTileRows)
      acc += f(r, col);
  tile[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && col < cols) {
    float sum = 0.0f;
    for (int y = 0; y < kColumnTileRows; ++y)
      sum += tile[y][threadIdx.x];
    partials[static_cast<int64_t>(blockIdx.y) * cols + col] = sum;
  }
}

/// out[col] = scale * sum over chunks of partials[chunk, col], or added to
/// out when `accumulate`; scale is multiplied by scaleBy[0] when non-null.
__global__ void columnFinalKernel(const float *partials, int64_t chunks,
                                  int64_t cols, float scale,
                                  const float *scaleBy, bool accumulate,
                                  float *out);

/// out[c] (device) = scale * sum_{r < rows} f(r, c) for c < cols, written
/// or (when `accumulate`) added; scale is multiplied by scaleBy[0] (device)
/// when non-null. Deterministic: chunking depends only on the shape.
template <class F>
void columnSum(const Context &ctx, int64_t rows, int64_t cols, F f, float scale,
               bool accumulate, float *out, const float *scaleBy = nullptr) {
  if (cols == 0)
    return;
  int64_t rowsPerChunk = std::max<int64_t>(256, (rows + 4095) / 4096);
  int64_t chunks =
      std::max<int64_t>(1, (rows + rowsPerChunk - 1) / rowsPerChunk);
  DeviceBuffer<float> partials(ctx.stream, chunks * cols);
  MOE_LAUNCH(columnChunksKernel<F>,
             dim3(ceilDiv(cols, 32), static_cast<unsigned>(chunks)),
             dim3(32, kColumnTileRows), 0, ctx.stream, rows, cols, rowsPerChunk,
             f, partials.get());
  MOE_LAUNCH(columnFinalKernel, dim3(gridFor(cols)), dim3(kElementwiseThreads),
             0, ctx.stream, partials.get(), chunks, cols, scale, scaleBy,
             accumulate, out);
}

/// Reads element i of a vector.
struct VectorElement {
  const float *data;
  __device__ float operator()(int64_t i) const { return data[i]; }
};

/// Reads element (r, c) of a row-major matrix with leading dimension ld.
struct MatrixElement {
  const float *data;
  int64_t ld;
  __device__ float operator()(int64_t r, int64_t c) const {
    return data[r * ld + c];
  }
};

//===----------------------------------------------------------------------===//
// Small shared kernels
//===----------------------------------------------------------------------===//

/// dst[r] = src[index[r]] for rows of `width` elements of type V.
template <typename V>
__global__ void gatherRowsKernel(int64_t rows, int64_t width,
                                 const int32_t *index, const V *src, V *dst) {
  MOE_GRID_STRIDE(q, rows * width) {
    int64_t r = q / width, c = q % width;
    dst[q] = src[static_cast<int64_t>(index[r]) * width + c];
  }
}

/// dst [rows, d] = src[index[r]] row by row, as float4 when alignment
/// allows.
inline void gatherRows(const Context &ctx, int64_t rows, int64_t d,
                       const int32_t *index, const float *src, float *dst) {
  bool vectorized = d % 4 == 0 &&
                    reinterpret_cast<uintptr_t>(src) % alignof(float4) == 0 &&
                    reinterpret_cast<uintptr_t>(dst) % alignof(float4) == 0;
  if (vectorized)
    MOE_LAUNCH(gatherRowsKernel<float4>, dim3(gridFor(rows * d / 4)),
               dim3(kElementwiseThreads), 0, ctx.stream, rows, d / 4, index,
               reinterpret_cast<const float4 *>(src),
               reinterpret_cast<float4 *>(dst));
  else
    MOE_LAUNCH(gatherRowsKernel<float>, dim3(gridFor(rows * d)),
               dim3(kElementwiseThreads), 0, ctx.stream, rows, d, index, src,
               dst);
}

/// x[i] = value for i < count.
__global__ void fillKernel(float *x, float value, int64_t count);

/// Writes `value` to ptr[0]: for the one-element outputs computed on the host
/// side of a kernel sequence.
__global__ void setIntKernel(int32_t *ptr, int32_t value);

/// Stable sort of `count` int32 keys in [0, keyLimit) carrying their
/// original positions: sortedKeys/order[p] are the key and input index of
/// sorted position p (ties keep input order).
void stableSortByKey(const Context &ctx, int64_t count, int64_t keyLimit,
                     const int32_t *keys, int32_t *sortedKeys, int32_t *order);

/// dst[key] += the rows [count, d] carrying that key, added one by one in
/// input order (the order of a sequential loop), for every key except
/// `skipKey`; keys lie in [0, keyLimit). Deterministic without atomics: the
/// rows are sorted by key and the first position of each key sums its run.
void accumulateRowsByKey(const Context &ctx, int64_t count, int64_t d,
                         const int32_t *keys, int64_t keyLimit,
                         const float *rows, int32_t skipKey, float *dst);

/// The row-sparse form of accumulateRowsByKey (Kernels.def: rowGradient):
/// outKeys [count] = the distinct kept keys ascending, then -1; outValues
/// [count, d] = each key's rows summed in input order from zero, then zeros.
void compactRowsByKey(const Context &ctx, int64_t count, int64_t d,
                      const int32_t *keys, int64_t keyLimit, const float *rows,
                      int32_t skipKey, int32_t *outKeys, float *outValues);

/// offsets[e] = first sorted position with key >= e, for e in [0, numKeys],
/// from keys sorted ascending (offsets[numKeys] = count).
void segmentOffsets(const Context &ctx, int64_t count, int64_t numKeys,
                    const int32_t *sortedKeys, int32_t *offsets);

} // namespace moe::rt::gpu

#endif // MOE_RUNTIME_CUDA_COMMON_CUH
