//===- CpuBackend.cpp - Memory and construction of the CPU backend --------===//
//
// Host memory stands in for device memory: alloc returns 64-byte aligned
// blocks (one cache line, full AVX-512 vectors) and the copies are memcpy.
// The kernels are in CpuKernels.cpp.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/CpuBackend.h"

#include "runtime/cpu/kernels/Blas.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>

#include <unistd.h>

namespace moe::rt {

namespace {
constexpr size_t kAlignment = 64;
} // namespace

std::string CpuBackend::name() const { return "cpu"; }

void *CpuBackend::alloc(size_t bytes) {
  // aligned_alloc needs a size that is a multiple of the alignment; a
  // zero-byte request still returns a unique, releasable block.
  size_t rounded = std::max<size_t>(kAlignment, (bytes + kAlignment - 1) /
                                                    kAlignment * kAlignment);
  void *ptr = std::aligned_alloc(kAlignment, rounded);
  if (!ptr)
    throw std::bad_alloc();
  return ptr;
}

void CpuBackend::release(void *ptr) { std::free(ptr); }

void CpuBackend::copyFromHost(void *dst, const void *src, size_t bytes) {
  if (bytes)
    std::memcpy(dst, src, bytes);
}

void CpuBackend::copyToHost(void *dst, const void *src, size_t bytes) {
  if (bytes)
    std::memcpy(dst, src, bytes);
}

void CpuBackend::copyDevice(void *dst, const void *src, size_t bytes) {
  // memmove: callers may copy between overlapping views of one buffer.
  if (bytes)
    std::memmove(dst, src, bytes);
}

void CpuBackend::fill(float *x, float value, int64_t count) {
  if (count < 0)
    throw std::invalid_argument("fill: negative count");
    // Threads share the pages of a large buffer: its first touch (the zeroed
    // Adam moments of a billion-parameter model) runs at memory speed.
#pragma omp parallel for if (count > (int64_t(1) << 20)) schedule(static)
  for (int64_t i = 0; i < count; ++i)
    x[i] = value;
}

void CpuBackend::synchronize() {}

namespace {

/// The first number after `key` in `path` (/proc/meminfo lines,
/// "key: N kB"), times `unit`; nullopt when absent or "max".
std::optional<size_t> readNumber(const char *path, const std::string &key,
                                 size_t unit) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, key.size(), key) != 0)
      continue;
    const char *text = line.c_str() + key.size();
    while (*text == ' ' || *text == ':')
      ++text;
    char *end = nullptr;
    unsigned long long value = std::strtoull(text, &end, 10);
    if (end == text)
      return std::nullopt;
    return static_cast<size_t>(value) * unit;
  }
  return std::nullopt;
}

} // namespace

size_t CpuBackend::availableMemory() const {
  std::optional<size_t> available =
      readNumber("/proc/meminfo", "MemAvailable", 1024);
  if (!available) {
    long pages = ::sysconf(_SC_AVPHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
    available = pages > 0 && page > 0 ? size_t(pages) * size_t(page) : 0;
  }
  // A container's limit (cgroup v2) is often below what the host has free.
  std::optional<size_t> limit = readNumber("/sys/fs/cgroup/memory.max", "", 1);
  std::optional<size_t> used =
      readNumber("/sys/fs/cgroup/memory.current", "", 1);
  if (limit && used)
    available = std::min(*available, *limit > *used ? *limit - *used : 0);
  return *available;
}

std::unique_ptr<Backend> createCpuBackend(int numThreads) {
  if (numThreads < 0)
    throw std::invalid_argument("createCpuBackend: negative thread count");
  // 0 keeps the OpenMP and OpenBLAS defaults, which use every core.
  if (numThreads > 0) {
    omp_set_num_threads(numThreads);
    openblas_set_num_threads(numThreads);
  }
  return std::make_unique<CpuBackend>();
}

} // namespace moe::rt
