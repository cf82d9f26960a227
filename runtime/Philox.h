//===- Philox.h - Counter-based RNG shared by every backend -----*- C++ -*-===//
//
// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
// 3", SC'11). A pure function of (key, counter), so noise and dropout masks
// are identical on CPU and GPU and on every rank, and a resumed run replays
// the same stream from the saved counter. Header-only, usable from CUDA.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_PHILOX_H
#define MOE_RUNTIME_PHILOX_H

#include "runtime/HostDevice.h"

#include <cmath>
#include <cstdint>

namespace moe::rt {

struct PhiloxBlock {
  uint32_t v[4];
};

/// The 4x32 Philox block for a 64-bit key and a 128-bit counter
/// (counterHi:counterLo), 10 rounds.
MOE_HOST_DEVICE PhiloxBlock philox4x32(uint64_t key, uint64_t counterLo,
                                       uint64_t counterHi) {
  uint32_t c0 = static_cast<uint32_t>(counterLo);
  uint32_t c1 = static_cast<uint32_t>(counterLo >> 32);
  uint32_t c2 = static_cast<uint32_t>(counterHi);
  uint32_t c3 = static_cast<uint32_t>(counterHi >> 32);
  uint32_t k0 = static_cast<uint32_t>(key);
  uint32_t k1 = static_cast<uint32_t>(key >> 32);
  constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = static_cast<uint64_t>(kMul0) * c0;
    uint64_t p1 = static_cast<uint64_t>(kMul1) * c2;
    uint32_t hi0 = static_cast<uint32_t>(p0 >> 32),
             lo0 = static_cast<uint32_t>(p0);
    uint32_t hi1 = static_cast<uint32_t>(p1 >> 32),
             lo1 = static_cast<uint32_t>(p1);
    uint32_t n0 = hi1 ^ c1 ^ k0;
    uint32_t n1 = lo1;
    uint32_t n2 = hi0 ^ c3 ^ k1;
    uint32_t n3 = lo0;
    c0 = n0;
    c1 = n1;
    c2 = n2;
    c3 = n3;
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  return PhiloxBlock{{c0, c1, c2, c3}};
}

/// Uniform float in (0, 1]: never 0, so log() is safe.
MOE_HOST_DEVICE float philoxUniform(uint32_t bits) {
  return (static_cast<float>(bits >> 8) + 1.0f) * (1.0f / 16777216.0f);
}

/// Element `index` of a stream of uniforms keyed by (seed, counter). Each
/// Philox block yields four consecutive elements.
MOE_HOST_DEVICE float philoxUniformAt(uint64_t seed, uint64_t counter,
                                      uint64_t index) {
  PhiloxBlock b = philox4x32(seed, index >> 2, counter);
  return philoxUniform(b.v[index & 3]);
}

/// Element `index` of a stream of standard normals keyed by (seed, counter),
/// by Box-Muller on the block's two pairs. Computed in float so that CPU and
/// GPU agree to the last ulp of their libm (checked to a tolerance in tests).
MOE_HOST_DEVICE float philoxNormalAt(uint64_t seed, uint64_t counter,
                                     uint64_t index) {
  PhiloxBlock b = philox4x32(seed, index >> 2, counter);
  unsigned pair = static_cast<unsigned>(index & 3) >> 1;
  float u1 = philoxUniform(b.v[2 * pair]);
  float u2 = philoxUniform(b.v[2 * pair + 1]);
  float radius = sqrtf(-2.0f * logf(u1));
  float angle = 6.283185307179586f * u2;
  return (index & 1) ? radius * sinf(angle) : radius * cosf(angle);
}

/// Element `index` of a stream of classes in [0, range) from the log-uniform
/// (Zipf) distribution Q(c) = log((c + 2) / (c + 1)) / log(range + 1), as
/// TensorFlow's LogUniformCandidateSampler draws them: floor(exp(u *
/// log(range + 1))) - 1 for the uniform u of the same index. Computed in
/// double so that sampled softmax draws the same classes on every backend;
/// u = 1 would give `range`, so it is clamped to the last class.
MOE_HOST_DEVICE int64_t philoxLogUniformAt(uint64_t seed, uint64_t counter,
                                           uint64_t index, int64_t range) {
  double u = philoxUniformAt(seed, counter, index);
  int64_t c =
      static_cast<int64_t>(exp(u * log(static_cast<double>(range) + 1.0))) - 1;
  return c < range ? c : range - 1;
}

/// The four standard normals of Philox block `block` keyed by (seed,
/// counter): elements 4*block .. 4*block+3 of philoxNormalAt's stream, with
/// the same float arithmetic, so they are bit-identical to it while the
/// block and the logarithms are computed once per pair instead of per
/// element. The CUDA noise kernels use it too.
MOE_HOST_DEVICE void philoxNormalBlock(uint64_t seed, uint64_t counter,
                                       uint64_t block, float z[4]) {
  PhiloxBlock b = philox4x32(seed, block, counter);
  for (int pair = 0; pair < 2; ++pair) {
    float u1 = philoxUniform(b.v[2 * pair]);
    float u2 = philoxUniform(b.v[2 * pair + 1]);
    float radius = sqrtf(-2.0f * logf(u1));
    float angle = 6.283185307179586f * u2;
    z[2 * pair] = radius * cosf(angle);
    z[2 * pair + 1] = radius * sinf(angle);
  }
}

} // namespace moe::rt

#endif // MOE_RUNTIME_PHILOX_H
