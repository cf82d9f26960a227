//===- Optimizer.h - The learning-rate schedule and Adam --------*- C++ -*-===//
//
// Plain host/device definitions shared by the kernels that apply them
// (Backend::lrSchedule, Backend::adamUpdate) and by moe-run, which prints
// the schedule. Not part of the kernel interface.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_OPTIMIZER_H
#define MOE_RUNTIME_OPTIMIZER_H

#include "runtime/HostDevice.h"

#include <cmath>
#include <cstdint>

namespace moe::rt {

/// The paper's learning-rate schedule: linear warm-up for `warmupSteps`,
/// constant for `constantSteps`, then proportional to 1/sqrt(step).
struct LrSchedule {
  float baseLr = 1e-3f;
  int64_t warmupSteps = 200;
  int64_t constantSteps = 200;

  /// Learning rate at 1-based step `step`. The same IEEE operations on the
  /// host and the device (division and sqrt are correctly rounded on both),
  /// so both backends give the same bits.
  MOE_HOST_DEVICE float at(int64_t step) const {
    step = step < 1 ? 1 : step;
    if (warmupSteps > 0 && step <= warmupSteps)
      return baseLr * static_cast<float>(step) /
             static_cast<float>(warmupSteps);
    int64_t plateauEnd = warmupSteps + constantSteps;
    if (step <= plateauEnd)
      return baseLr;
    // Continuous at the end of the plateau, then proportional to
    // 1/sqrt(step).
    float end = static_cast<float>(plateauEnd < 1 ? 1 : plateauEnd);
    return baseLr * sqrtf(end / static_cast<float>(step));
  }
};

struct AdamConfig {
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weightDecay = 0.0f; ///< decoupled (AdamW style); 0 disables
};

} // namespace moe::rt

#endif // MOE_RUNTIME_OPTIMIZER_H
