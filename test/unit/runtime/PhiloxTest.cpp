//===- PhiloxTest.cpp - Philox4x32-10 known answers and statistics --------===//
//
// The known-answer vectors are Random123's kat_vectors for philox4x32_10,
// so a mistake in a multiplier, a Weyl constant or the word permutation
// fails here rather than silently changing every noise and dropout mask.
//
//===----------------------------------------------------------------------===//

#include "runtime/Philox.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>

using moe::rt::philox4x32;
using moe::rt::PhiloxBlock;
using moe::rt::philoxNormalAt;
using moe::rt::philoxUniform;
using moe::rt::philoxUniformAt;

namespace {

/// Runs Philox with Random123's word order: counter words c0..c3 and key
/// words k0, k1 (low word first).
PhiloxBlock philoxWords(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                        uint32_t k0, uint32_t k1) {
  uint64_t key = (static_cast<uint64_t>(k1) << 32) | k0;
  uint64_t lo = (static_cast<uint64_t>(c1) << 32) | c0;
  uint64_t hi = (static_cast<uint64_t>(c3) << 32) | c2;
  return philox4x32(key, lo, hi);
}

void expectBlock(const PhiloxBlock &b, uint32_t e0, uint32_t e1, uint32_t e2,
                 uint32_t e3) {
  EXPECT_EQ(b.v[0], e0);
  EXPECT_EQ(b.v[1], e1);
  EXPECT_EQ(b.v[2], e2);
  EXPECT_EQ(b.v[3], e3);
}

} // namespace

TEST(Philox, KnownAnswerZero) {
  expectBlock(philoxWords(0, 0, 0, 0, 0, 0), 0x6627e8d5u, 0xe169c58du,
              0xbc57ac4cu, 0x9b00dbd8u);
}

TEST(Philox, KnownAnswerAllOnes) {
  uint32_t ones = 0xffffffffu;
  expectBlock(philoxWords(ones, ones, ones, ones, ones, ones), 0x408f276du,
              0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu);
}

// The digits of pi vector of the same file exercises distinct words in every
// position, so swapped counter or key words are caught too.
TEST(Philox, KnownAnswerPi) {
  expectBlock(philoxWords(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u,
                          0xa4093822u, 0x299f31d0u),
              0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u);
}

TEST(Philox, UniformMapsExtremesIntoHalfOpenUnitInterval) {
  EXPECT_GT(philoxUniform(0u), 0.0f);
  EXPECT_EQ(philoxUniform(0xffffffffu), 1.0f);
}

TEST(Philox, UniformStreamRangeAndMoments) {
  constexpr int kCount = 100000;
  double sum = 0, sumSq = 0;
  for (int i = 0; i < kCount; ++i) {
    float u = philoxUniformAt(/*seed=*/42, /*counter=*/7, i);
    ASSERT_GT(u, 0.0f) << i;
    ASSERT_LE(u, 1.0f) << i;
    sum += u;
    sumSq += double(u) * u;
  }
  double mean = sum / kCount;
  double var = sumSq / kCount - mean * mean;
  // Standard error of the mean is sqrt(1/12 / 1e5) ~ 9e-4.
  EXPECT_NEAR(mean, 0.5, 5e-3);
  EXPECT_NEAR(var, 1.0 / 12.0, 2e-3);
}

TEST(Philox, NormalStreamMoments) {
  constexpr int kCount = 100000;
  double sum = 0, sumSq = 0, sumCube = 0;
  for (int i = 0; i < kCount; ++i) {
    double z = philoxNormalAt(/*seed=*/3, /*counter=*/11, i);
    ASSERT_TRUE(std::isfinite(z)) << i;
    sum += z;
    sumSq += z * z;
    sumCube += z * z * z;
  }
  double mean = sum / kCount;
  double var = sumSq / kCount - mean * mean;
  // Standard errors: mean ~3e-3, variance ~4.5e-3, third moment ~7.7e-3.
  EXPECT_NEAR(mean, 0.0, 0.02);
  EXPECT_NEAR(var, 1.0, 0.03);
  EXPECT_NEAR(sumCube / kCount, 0.0, 0.05);
}

TEST(Philox, StreamsAreDeterministicAndKeyed) {
  int sameSeedDiffer = 0, otherSeedDiffer = 0, otherCounterDiffer = 0;
  for (uint64_t i = 0; i < 1000; ++i) {
    float a = philoxUniformAt(5, 9, i);
    sameSeedDiffer += a != philoxUniformAt(5, 9, i);
    otherSeedDiffer += a != philoxUniformAt(6, 9, i);
    otherCounterDiffer += a != philoxUniformAt(5, 10, i);
    EXPECT_EQ(philoxNormalAt(5, 9, i), philoxNormalAt(5, 9, i));
  }
  EXPECT_EQ(sameSeedDiffer, 0);
  // Independent streams agree on an element only by chance (2^-24 each).
  EXPECT_GT(otherSeedDiffer, 990);
  EXPECT_GT(otherCounterDiffer, 990);
}

TEST(Philox, ConsecutiveElementsComeFromOneBlock) {
  PhiloxBlock b = philox4x32(17, 3, 4);
  for (int j = 0; j < 4; ++j)
    EXPECT_EQ(philoxUniformAt(17, 4, 12 + j), philoxUniform(b.v[j]));
}
