//===- HierarchyKernels.h - Two-level routing composition ------*- C++ -*-===//
//
// Templates over the scalar type (float in the backend, double in the
// gradient tests) for hierarchical MoE: composing the primary (group) and
// secondary (expert within group) selections into one assignment list, the
// batchwise and threshold masks of the secondary level (Appendix A inside
// each group's rows), its threshold loss, and the hierarchical load
// estimate Load_H.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_CPU_KERNELS_HIERARCHYKERNELS_H
#define MOE_RUNTIME_CPU_KERNELS_HIERARCHYKERNELS_H

#include "runtime/Checks.h"
#include "runtime/cpu/kernels/RoutingKernels.h"

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

namespace moe::rt::cpu {

/// expert[a*k+s] = primaryExpert[a] * expertsPerGroup + local id,
/// gate[a*k+s] = primaryGate[a] * secondaryGate[position[a], s].
template <typename T>
void composeRoutesForward(int64_t assignments, int64_t k,
                          int64_t expertsPerGroup, const int32_t *primaryExpert,
                          const T *primaryGate, const int32_t *position,
                          const int32_t *secondaryExpert,
                          const T *secondaryGate, int32_t *expert, T *gate) {
  checkComposeShape("composeRoutesForward", assignments, k);
#pragma omp parallel for schedule(static) if (assignments * k > (1 << 15))
  for (int64_t a = 0; a < assignments; ++a) {
    int64_t row = position[a];
    int32_t base = static_cast<int32_t>(primaryExpert[a] * expertsPerGroup);
    for (int64_t s = 0; s < k; ++s) {
      expert[a * k + s] = base + secondaryExpert[row * k + s];
      gate[a * k + s] = primaryGate[a] * secondaryGate[row * k + s];
    }
  }
}

/// The product rule over each composed gate; position is a permutation,
/// so every secondary row is written by exactly one primary assignment.
template <typename T>
void composeRoutesBackward(int64_t assignments, int64_t k, const T *primaryGate,
                           const int32_t *position, const T *secondaryGate,
                           const T *dGate, T *dPrimaryGate, T *dSecondaryGate) {
  checkComposeShape("composeRoutesBackward", assignments, k);
#pragma omp parallel for schedule(static) if (assignments * k > (1 << 15))
  for (int64_t a = 0; a < assignments; ++a) {
    int64_t row = position[a];
    T sum = 0;
    for (int64_t s = 0; s < k; ++s) {
      sum += dGate[a * k + s] * secondaryGate[row * k + s];
      dSecondaryGate[row * k + s] = dGate[a * k + s] * primaryGate[a];
    }
    dPrimaryGate[a] = sum;
  }
}

//===----------------------------------------------------------------------===//
// Batchwise and threshold masks inside groups, Load_H
//===----------------------------------------------------------------------===//

/// Throws unless offsets [groups+1] are non-decreasing from >= 0 and end at
/// most at `rows` (rows < 0: no upper bound).
inline void checkGroupOffsets(const char *kernel, int64_t groups, int64_t rows,
                              const int32_t *offsets) {
  bool ok = offsets[0] >= 0 && (rows < 0 || offsets[groups] <= rows);
  for (int64_t g = 0; ok && g < groups; ++g)
    ok = offsets[g] <= offsets[g + 1];
  if (!ok)
    throw std::invalid_argument(
        std::string(kernel) +
        ": group offsets must be non-decreasing within [0, " +
        std::to_string(rows) + "]");
}

/// Throws unless rowPtr [count+1] is non-decreasing from 0 up to at most
/// `capacity`.
inline void checkRowPointers(const char *kernel, const char *what,
                             int64_t count, int64_t capacity,
                             const int32_t *rowPtr) {
  bool ok = rowPtr[0] == 0 && rowPtr[count] <= capacity;
  for (int64_t i = 0; ok && i < count; ++i)
    ok = rowPtr[i] <= rowPtr[i + 1];
  if (!ok)
    throw std::invalid_argument(std::string(kernel) + ": " + what +
                                " row pointers must rise from 0 to at most " +
                                std::to_string(capacity));
}

/// Appendix A inside each group: segment g is rows [g * rowsPerGroup, (g+1)
/// * rowsPerGroup) of logits [groups * rowsPerGroup, n]; each expert i
/// keeps the m rows of the segment with the largest probability p[r, i] =
/// softmax(logits[r, :])[i] (ties: lower row), as batchwiseMaskForward on
/// the segment alone; then the row-major assignment form of the mask.
template <typename T>
void groupedBatchwiseMaskForward(int64_t groups, int64_t rowsPerGroup,
                                 int64_t n, int64_t m, const T *logits, T *mask,
                                 int32_t *rowPtr, int32_t *expert, T *gate) {
  checkGroupedShape("groupedBatchwiseMaskForward", groups, rowsPerGroup, n);
  if (m < 0 || m > rowsPerGroup)
    throw std::invalid_argument(
        "groupedBatchwiseMaskForward: m = " + std::to_string(m) +
        " is not in [0, rowsPerGroup]");
  int64_t rows = groups * rowsPerGroup;
  std::fill(mask, mask + rows * n, T(0));
  if (m > 0 && rows > 0) {
    std::vector<T> probs = routerProbabilities(rows, n, logits);
    std::vector<int32_t> chosen(static_cast<size_t>(groups * n * m));
#pragma omp parallel if (rows * n > kRoutingParallelGrain)
    {
      std::vector<T> column(static_cast<size_t>(rowsPerGroup));
      std::vector<int32_t> order(static_cast<size_t>(rowsPerGroup));
#pragma omp for schedule(static)
      for (int64_t q = 0; q < groups * n; ++q) {
        const T *p = probs.data() + (q / n) * rowsPerGroup * n;
        int64_t i = q % n;
        for (int64_t r = 0; r < rowsPerGroup; ++r)
          column[r] = p[r * n + i];
        std::iota(order.begin(), order.end(), 0);
        std::nth_element(order.begin(), order.begin() + m, order.end(),
                         DescendingByValue<T>{column.data()});
        std::copy(order.begin(), order.begin() + m, chosen.begin() + q * m);
      }
    }
    for (int64_t q = 0; q < groups * n; ++q) {
      int64_t base = (q / n) * rowsPerGroup, i = q % n;
      for (int64_t j = 0; j < m; ++j)
        mask[(base + chosen[q * m + j]) * n + i] = T(1);
    }
  }
  maskToAssignments(rows, n, logits, mask, rowPtr, expert, gate);
}

/// Eq. 7 inside groups: row r of group g (groupOffset[g] <= r <
/// groupOffset[g+1]) keeps expert i when softmax(logits[r, :])[i] >
/// thresholds[g * n + i]; rows of no group keep nothing and their logits
/// are not read. Writes the assignment form into `capacity` slots and the
/// number of assignments; throws std::runtime_error, writing no
/// assignment, when more than `capacity` pass.
template <typename T>
void groupedThresholdMaskForward(int64_t rows, int64_t groups, int64_t n,
                                 const T *logits, const T *thresholds,
                                 const int32_t *groupOffset, T *mask,
                                 int32_t *rowPtr, int32_t *expert, T *gate,
                                 int64_t capacity, int64_t *numAssigned) {
  checkGroupedShape("groupedThresholdMaskForward", groups, rows, n);
  checkCount("groupedThresholdMaskForward", capacity);
  checkGroupOffsets("groupedThresholdMaskForward", groups, rows, groupOffset);
  std::fill(mask, mask + rows * n, T(0));
  int64_t begin = groupOffset[0], end = groupOffset[groups];
#pragma omp parallel if ((end - begin) * n > kRoutingParallelGrain)
  {
    std::vector<T> p(static_cast<size_t>(n));
#pragma omp for schedule(static)
    for (int64_t r = begin; r < end; ++r) {
      // The group of row r: the last g with groupOffset[g] <= r.
      int64_t g = std::upper_bound(groupOffset, groupOffset + groups + 1,
                                   static_cast<int32_t>(r)) -
                  groupOffset - 1;
      softmaxForward(1, n, logits + r * n, p.data());
      const T *thr = thresholds + g * n;
      for (int64_t i = 0; i < n; ++i)
        mask[r * n + i] = p[i] > thr[i] ? T(1) : T(0);
    }
  }
  maskToCappedAssignments("groupedThresholdMaskForward", rows, n, logits, mask,
                          rowPtr, expert, gate, capacity, numAssigned);
}

/// Eq. 8 inside groups: the sum over the segments of
/// batchwiseThresholdLossForward with each segment's row of thresholds.
template <typename T>
void groupedBatchwiseThresholdLossForward(int64_t groups, int64_t rowsPerGroup,
                                          int64_t n, const T *logits,
                                          const T *batchMask,
                                          const T *thresholds, T *loss) {
  checkGroupedShape("groupedBatchwiseThresholdLossForward", groups,
                    rowsPerGroup, n);
  double sum = 0.0;
  for (int64_t g = 0; g < groups; ++g) {
    T part = T(0);
    int64_t offset = g * rowsPerGroup * n;
    batchwiseThresholdLossForward(rowsPerGroup, n, logits + offset,
                                  batchMask + offset, thresholds + g * n,
                                  &part);
    sum += part;
  }
  loss[0] = static_cast<T>(sum);
}

/// dThresholds[g, i] = -dLoss * sum over segment g of (Mthr - Mbw)
/// (written).
template <typename T>
void groupedBatchwiseThresholdLossBackward(int64_t groups, int64_t rowsPerGroup,
                                           int64_t n, const T *logits,
                                           const T *batchMask,
                                           const T *thresholds, T dLoss,
                                           T *dThresholds) {
  checkGroupedShape("groupedBatchwiseThresholdLossBackward", groups,
                    rowsPerGroup, n);
  for (int64_t g = 0; g < groups; ++g) {
    int64_t offset = g * rowsPerGroup * n;
    batchwiseThresholdLossBackward(rowsPerGroup, n, logits + offset,
                                   batchMask + offset, thresholds + g * n,
                                   dLoss, dThresholds + g * n);
  }
}

/// Checks the routing operands of the CSR composition (index inputs).
inline void checkComposeCsrRouting(const char *kernel, int64_t tokens,
                                   int64_t primaryCapacity,
                                   int64_t secondaryCapacity,
                                   const int32_t *primaryRowPtr,
                                   const int32_t *position,
                                   const int32_t *secondaryRowPtr) {
  checkComposeCsrShape(kernel, tokens, primaryCapacity, secondaryCapacity);
  checkRowPointers(kernel, "primary", tokens, primaryCapacity, primaryRowPtr);
  checkRowPointers(kernel, "secondary", primaryCapacity, secondaryCapacity,
                   secondaryRowPtr);
  for (int32_t a = 0; a < primaryRowPtr[tokens]; ++a)
    if (position[a] < 0 || position[a] >= primaryCapacity)
      throw std::invalid_argument(
          std::string(kernel) + ": position " + std::to_string(position[a]) +
          " of primary assignment " + std::to_string(a) + " is out of range");
}

/// Token-major composition of CSR primary and secondary assignments: token
/// t's primary assignments a in order, each followed by the secondary
/// assignments b of its buffer row position[a] in order; expert = group *
/// expertsPerGroup + local, gate = primaryGate[a] * secondaryGate[b].
template <typename T>
void composeRoutesCsrForward(
    int64_t tokens, int64_t primaryCapacity, int64_t secondaryCapacity,
    int64_t expertsPerGroup, const int32_t *primaryRowPtr,
    const int32_t *primaryExpert, const T *primaryGate, const int32_t *position,
    const int32_t *secondaryRowPtr, const int32_t *secondaryExpert,
    const T *secondaryGate, int32_t *rowPtr, int32_t *expert, T *gate) {
  const char *kernel = "composeRoutesCsrForward";
  if (expertsPerGroup < 1)
    throw std::invalid_argument("composeRoutesCsrForward: expertsPerGroup "
                                "must be >= 1");
  checkComposeCsrRouting(kernel, tokens, primaryCapacity, secondaryCapacity,
                         primaryRowPtr, position, secondaryRowPtr);
  // Counts per token, then their prefix sum in order.
  int64_t total = 0;
  rowPtr[0] = 0;
  for (int64_t t = 0; t < tokens; ++t) {
    for (int32_t a = primaryRowPtr[t]; a < primaryRowPtr[t + 1]; ++a) {
      int32_t row = position[a];
      total += secondaryRowPtr[row + 1] - secondaryRowPtr[row];
    }
    if (total > secondaryCapacity)
      throw std::invalid_argument(
          "composeRoutesCsrForward: the composed routes exceed the " +
          std::to_string(secondaryCapacity) + " secondary slots");
    rowPtr[t + 1] = static_cast<int32_t>(total);
  }
  for (int32_t b = 0; b < secondaryRowPtr[primaryCapacity]; ++b)
    if (secondaryExpert[b] < 0 || secondaryExpert[b] >= expertsPerGroup)
      throw std::invalid_argument("composeRoutesCsrForward: local expert " +
                                  std::to_string(secondaryExpert[b]) +
                                  " is not in [0, " +
                                  std::to_string(expertsPerGroup) + ")");
#pragma omp parallel for schedule(static) if (total > (1 << 15))
  for (int64_t t = 0; t < tokens; ++t) {
    int64_t out = rowPtr[t];
    for (int32_t a = primaryRowPtr[t]; a < primaryRowPtr[t + 1]; ++a) {
      int32_t row = position[a];
      int64_t base = static_cast<int64_t>(primaryExpert[a]) * expertsPerGroup;
      for (int32_t b = secondaryRowPtr[row]; b < secondaryRowPtr[row + 1];
           ++b, ++out) {
        expert[out] = static_cast<int32_t>(base + secondaryExpert[b]);
        gate[out] = primaryGate[a] * secondaryGate[b];
      }
    }
  }
  // Free slots count nothing in sums over every slot (the importance).
  std::fill(expert + total, expert + secondaryCapacity, 0);
  std::fill(gate + total, gate + secondaryCapacity, T(0));
}

/// The product rule over each composed gate; every secondary assignment
/// belongs to at most one primary one (position is a permutation of the
/// used slots), so the writes do not collide.
template <typename T>
void composeRoutesCsrBackward(int64_t tokens, int64_t primaryCapacity,
                              int64_t secondaryCapacity, const int32_t *rowPtr,
                              const int32_t *primaryRowPtr,
                              const T *primaryGate, const int32_t *position,
                              const int32_t *secondaryRowPtr,
                              const T *secondaryGate, const T *dGate,
                              T *dPrimaryGate, T *dSecondaryGate) {
  checkComposeCsrRouting("composeRoutesCsrBackward", tokens, primaryCapacity,
                         secondaryCapacity, primaryRowPtr, position,
                         secondaryRowPtr);
  checkRowPointers("composeRoutesCsrBackward", "composed", tokens,
                   secondaryCapacity, rowPtr);
  std::fill(dPrimaryGate, dPrimaryGate + primaryCapacity, T(0));
  std::fill(dSecondaryGate, dSecondaryGate + secondaryCapacity, T(0));
#pragma omp parallel for schedule(static) if (rowPtr[tokens] > (1 << 15))
  for (int64_t t = 0; t < tokens; ++t) {
    int64_t out = rowPtr[t];
    for (int32_t a = primaryRowPtr[t]; a < primaryRowPtr[t + 1]; ++a) {
      int32_t row = position[a];
      T sum = T(0);
      for (int32_t b = secondaryRowPtr[row]; b < secondaryRowPtr[row + 1];
           ++b, ++out) {
        sum += dGate[out] * secondaryGate[b];
        dSecondaryGate[b] = dGate[out] * primaryGate[a];
      }
      dPrimaryGate[a] = sum;
    }
  }
}

/// load [groups, n] (written): loadEstimateForward over each group's rows.
template <typename T>
void groupedLoadEstimateForward(int64_t rows, int64_t groups, int64_t n,
                                int64_t k, const int32_t *groupOffset,
                                const T *clean, const T *noisy,
                                const T *noiseStd, const T *topValues,
                                T *load) {
  checkGroupedShape("groupedLoadEstimateForward", groups, rows, n);
  checkGroupOffsets("groupedLoadEstimateForward", groups, rows, groupOffset);
  for (int64_t g = 0; g < groups; ++g) {
    int64_t first = groupOffset[g];
    loadEstimateForward(groupOffset[g + 1] - first, n, k, clean + first * n,
                        noisy + first * n, noiseStd + first * n,
                        topValues + first * (k + 1), nullptr, load + g * n);
  }
}

/// Accumulates dLoad [groups, n] into dClean / dRawNoise of each group's
/// rows, as loadEstimateBackward.
template <typename T>
void groupedLoadEstimateBackward(int64_t rows, int64_t groups, int64_t n,
                                 int64_t k, const int32_t *groupOffset,
                                 const T *clean, const T *noisy,
                                 const T *rawNoise, const T *noiseStd,
                                 const T *topValues, const T *dLoad, T *dClean,
                                 T *dRawNoise) {
  checkGroupedShape("groupedLoadEstimateBackward", groups, rows, n);
  checkGroupOffsets("groupedLoadEstimateBackward", groups, rows, groupOffset);
  for (int64_t g = 0; g < groups; ++g) {
    int64_t first = groupOffset[g], at = first * n;
    loadEstimateBackward(groupOffset[g + 1] - first, n, k, clean + at,
                         noisy + at, rawNoise + at, noiseStd + at,
                         topValues + first * (k + 1), nullptr, dLoad + g * n,
                         dClean + at, dRawNoise + at);
  }
}

/// Rows the primary level sent to group g, at least 1 (a group without
/// rows has zero secondary load, so any divisor gives 0).
inline int64_t groupRows(const int32_t *groupOffset, int64_t g) {
  return std::max<int64_t>(groupOffset[g + 1] - groupOffset[g], 1);
}

/// Load_H[g * n + j] = primaryLoad[g] * secondaryLoad[g * n + j] / c_g.
template <typename T>
void hierarchicalLoadForward(int64_t groups, int64_t n,
                             const int32_t *groupOffset, const T *primaryLoad,
                             const T *secondaryLoad, T *load) {
  checkGroupedShape("hierarchicalLoadForward", groups, 0, n);
  checkGroupOffsets("hierarchicalLoadForward", groups, -1, groupOffset);
  for (int64_t g = 0; g < groups; ++g) {
    T scale = primaryLoad[g] / static_cast<T>(groupRows(groupOffset, g));
    for (int64_t j = 0; j < n; ++j)
      load[g * n + j] = scale * secondaryLoad[g * n + j];
  }
}

/// The product rule of Load_H (both gradients written).
template <typename T>
void hierarchicalLoadBackward(int64_t groups, int64_t n,
                              const int32_t *groupOffset, const T *primaryLoad,
                              const T *secondaryLoad, const T *dLoad,
                              T *dPrimaryLoad, T *dSecondaryLoad) {
  checkGroupedShape("hierarchicalLoadBackward", groups, 0, n);
  checkGroupOffsets("hierarchicalLoadBackward", groups, -1, groupOffset);
  for (int64_t g = 0; g < groups; ++g) {
    T inv = T(1) / static_cast<T>(groupRows(groupOffset, g));
    T sum = T(0);
    for (int64_t j = 0; j < n; ++j) {
      sum += dLoad[g * n + j] * secondaryLoad[g * n + j];
      dSecondaryLoad[g * n + j] = dLoad[g * n + j] * primaryLoad[g] * inv;
    }
    dPrimaryLoad[g] = sum * inv;
  }
}

} // namespace moe::rt::cpu

#endif // MOE_RUNTIME_CPU_KERNELS_HIERARCHYKERNELS_H
