//===- ScheduleTest.cpp - The paper's learning-rate schedule --------------===//

#include "runtime/Backend.h"

#include <gtest/gtest.h>

#include <cmath>

using moe::rt::LrSchedule;

// Paper 5.1: linear warm-up for 200 steps, constant for 200, then
// proportional to 1/sqrt(step).
TEST(LrSchedule, WarmupConstantInverseSqrt) {
  LrSchedule s{/*baseLr=*/0.01f, /*warmupSteps=*/200, /*constantSteps=*/200};
  EXPECT_FLOAT_EQ(s.at(1), 0.01f / 200);
  EXPECT_FLOAT_EQ(s.at(100), 0.005f);
  EXPECT_FLOAT_EQ(s.at(200), 0.01f);
  EXPECT_FLOAT_EQ(s.at(300), 0.01f);
  EXPECT_FLOAT_EQ(s.at(400), 0.01f);
  EXPECT_FLOAT_EQ(s.at(1600), 0.01f * std::sqrt(400.0f / 1600.0f));
  // Decay is monotone after the plateau.
  EXPECT_LT(s.at(5000), s.at(4000));
}

TEST(LrSchedule, NoWarmupStartsAtBase) {
  LrSchedule s{0.5f, 0, 10};
  EXPECT_FLOAT_EQ(s.at(1), 0.5f);
  EXPECT_FLOAT_EQ(s.at(40), 0.5f * std::sqrt(10.0f / 40.0f));
}
