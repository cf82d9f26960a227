//===- Fnv1a.h - 64-bit FNV-1a hashing --------------------------*- C++ -*-===//
//
// A small, stable hash for fingerprints (vocabulary, training split) and
// for naming RNG streams (a parameter's initializer). Not cryptographic:
// checkpoint files use SHA-256.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_FNV1A_H
#define MOE_RUNTIME_FNV1A_H

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace moe::rt {

/// Incremental FNV-1a over bytes; integers are added as their 8
/// little-endian bytes, so the value does not depend on the host.
class Fnv1a {
public:
  Fnv1a &byte(unsigned char b) {
    hash ^= b;
    hash *= kPrime;
    return *this;
  }
  Fnv1a &bytes(std::string_view text) {
    for (char c : text)
      byte(static_cast<unsigned char>(c));
    return *this;
  }
  Fnv1a &integer(uint64_t value) {
    for (int i = 0; i < 8; ++i)
      byte(static_cast<unsigned char>(value >> (8 * i)));
    return *this;
  }
  uint64_t value() const { return hash; }

private:
  static constexpr uint64_t kOffsetBasis = 0xcbf29ce484222325ull;
  static constexpr uint64_t kPrime = 0x100000001b3ull;
  uint64_t hash = kOffsetBasis;
};

/// FNV-1a of `text`.
inline uint64_t fnv1a(std::string_view text) {
  return Fnv1a().bytes(text).value();
}

} // namespace moe::rt

#endif // MOE_RUNTIME_FNV1A_H
