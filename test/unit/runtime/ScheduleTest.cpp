//===- ScheduleTest.cpp - The paper's learning-rate schedule --------------===//

#include "runtime/Backend.h"
#include "runtime/Optimizer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

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

// Backend::lrSchedule reads the 1-based step from backend memory and writes
// the rate there: the bits of LrSchedule::at, in warm-up, on the plateau and
// in the decay, for schedules with and without warm-up or plateau.
TEST(LrSchedule, CpuKernelEqualsAt) {
  auto be = moe::rt::createCpuBackend();
  const LrSchedule schedules[] = {
      {0.01f, 200, 200}, {0.5f, 0, 10}, {3e-4f, 7, 0}, {1.0f, 0, 0}};
  for (const LrSchedule &s : schedules) {
    for (int64_t step : {int64_t(1), int64_t(2), int64_t(5), int64_t(7),
                         int64_t(8), int64_t(10), int64_t(11), int64_t(100),
                         int64_t(199), int64_t(200), int64_t(201), int64_t(400),
                         int64_t(401), int64_t(1600), int64_t(123457)}) {
      SCOPED_TRACE(testing::Message()
                   << "base=" << s.baseLr << " warmup=" << s.warmupSteps
                   << " constant=" << s.constantSteps << " step=" << step);
      int64_t stepInMemory = step;
      float lr = -1.0f;
      be->lrSchedule(&stepInMemory, &lr, s.baseLr, s.warmupSteps,
                     s.constantSteps);
      EXPECT_EQ(lr, s.at(step));
      EXPECT_EQ(stepInMemory, step); // read, not written
    }
  }
  // The three phases, by hand: the kernel is not just at() of something.
  int64_t step = 100;
  float lr = 0;
  be->lrSchedule(&step, &lr, 0.01f, 200, 200);
  EXPECT_FLOAT_EQ(lr, 0.005f);
  step = 300;
  be->lrSchedule(&step, &lr, 0.01f, 200, 200);
  EXPECT_FLOAT_EQ(lr, 0.01f);
  step = 1600;
  be->lrSchedule(&step, &lr, 0.01f, 200, 200);
  EXPECT_FLOAT_EQ(lr, 0.005f);
}
