//===- expert_parallel_bench.cpp - Expert-parallel MoE over MPI ranks ---===//
//
// Times one expert-parallel MoE layer step, forward + backward, on each of
// the R ranks of an mpirun job, as docs/PARTITIONING.md plans it: rank r
// holds its own batch of T tokens and the experts [r n/R, (r+1) n/R) of the
// n linear d x d experts. Per step and rank:
//
//   forward   route T tokens to k experts; dispatch plan by global expert id
//             (so the rows are grouped by destination rank); dispatch;
//             allToAll of the per-(destination, expert) counts; allToAllV of
//             the rows; receive plan (the received rows are source-major,
//             expert-minor: a stable sort by local expert makes each local
//             expert's rows one segment, in global token order); grouped GEMM
//             of the local experts; back to source-major order; allToAllV
//             back; combine.
//   backward  combine backward; allToAllV of the output gradients; sort by
//             local expert; grouped GEMM backward (dInput, dWeights of the
//             shard); back to source-major; allToAllV back; dispatch
//             backward.
//
// Routing is deterministic and pseudo-random, not the noisy top-k gate: the
// k distinct experts of global token g and their gates (a softmax over k
// hashed logits) depend only on (seed, g), so the single-rank reference
// routes every token exactly as its rank does. Expert e is drawn with
// probability proportional to (1 + e)^-skew: skew 0 (the default) is
// uniform, larger skews load the low experts, i.e. the low ranks (the
// imbalance is across experts and across ranks). The gate GEMMs, top-k and
// balancing losses are data-parallel per-token work that moe-layer-bench
// measures; here the router is this cheap hash.
//
// Phases, timed with a barrier after every section of the step: each rank
// times its own work of a section from its exit from the previous barrier,
// and a section counts as long as on its slowest rank (the critical path;
// the rest of the synchronised step is barrier latency and skew):
//   dispatch/plan  routing, the two dispatch plans, dispatch and the
//                  receive-side sorts (forward and backward);
//   exchange       the count allToAll and the four allToAllV;
//   expert GEMMs   groupedMatmulForward / Backward on the received rows;
//   combine        combineForward / Backward.
// Every repetition runs the step twice, once with a barrier after every
// section (the breakdown) and once free-running (barriers only at the start
// and the end: the step time, rank 0's clock), then, on rank 0 alone while the
// others wait in a barrier, the baseline: one rank computing all n experts on
// the global batch of R T tokens (the same total work) with every core. The
// fastest repetition of each is kept. The baseline's outputs are also the
// reference: y, dx, dGate and dWeights of every rank are gathered to rank 0 and
// must equal it within 1e-5 (relative to max(1, |reference|)), else the run
// fails and writes no row.
//
// Usage: mpirun -np R expert-parallel-bench [--tokens T] [--dmodel d]
//          [--experts n] [--k k] [--skew s] [--reps N] [--threads c]
//          [--baseline-threads C] [--seed S] [--commit HASH]
//          [--results FILE]
// --threads is per rank (default: max(1, cores / R)); --baseline-threads
// (default: every core) is the reference's. With --results, rank 0 appends
// one Markdown table row. Outside mpirun it runs as one rank.
//
//===----------------------------------------------------------------------===//

#include "bench/BenchSupport.h"
#include "runtime/Backend.h"
#include "runtime/collectives/Collectives.h"

#ifndef MOE_COLLECTIVES_HAS_MPI
#error "expert-parallel-bench needs MOE_COLLECTIVES_HAS_MPI"
#endif

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace moe::rt;
using moe::bench::cpuModel;
using moe::bench::today;

namespace {

enum Phase { Plan, Exchange, ExpertGemm, Combine, NumPhases };

const char *const kPhaseNames[NumPhases] = {"dispatch/plan", "exchange",
                                            "expert GEMMs", "combine"};

struct Options {
  int64_t tokens = 2048; ///< per rank
  int64_t dmodel = 512;
  int64_t experts = 64;
  int64_t k = 4;
  double skew = 0.0;
  int reps = 5;
  int threads = 0;         ///< per rank; 0: max(1, cores / R)
  int baselineThreads = 0; ///< 0: every core
  uint64_t seed = 1;
  std::string commit = "unknown";
  std::string results;
};

const char *const kUsage =
    "usage: mpirun -np R expert-parallel-bench [--tokens T] [--dmodel d]\n"
    "         [--experts n] [--k k] [--skew s] [--reps N] [--threads c]\n"
    "         [--baseline-threads C] [--seed S] [--commit HASH]\n"
    "         [--results FILE]\n";

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

//===----------------------------------------------------------------------===//
// Deterministic data: every value is a function of (stream, global index),
// so a rank generates its slice of the global batch / weights directly.
//===----------------------------------------------------------------------===//

uint64_t splitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t hash3(uint64_t a, uint64_t b, uint64_t c) {
  return splitMix(splitMix(splitMix(a) ^ b) ^ c);
}

/// Uniform in [0, 1) from the top 24 bits.
double unit(uint64_t bits) { return double(bits >> 40) * 0x1.0p-24; }

/// host[i] = uniform in [-scale, scale) from (seed, stream, first + i).
std::vector<float> uniformSlice(uint64_t seed, uint64_t stream, int64_t first,
                                int64_t count, float scale) {
  std::vector<float> host(count);
  for (int64_t i = 0; i < count; ++i)
    host[i] = float((2.0 * unit(hash3(seed, stream, first + i)) - 1.0) * scale);
  return host;
}

/// k distinct experts per token, expert e with probability ~ (1 + e)^-skew,
/// and softmax gates over k hashed logits; a function of (seed, token).
class Router {
public:
  Router(int64_t n, int64_t k, double skew, uint64_t seed)
      : n(n), k(k), seed(seed), cdf(n) {
    double total = 0;
    for (int64_t e = 0; e < n; ++e)
      total += std::pow(1.0 + e, -skew);
    double sum = 0;
    for (int64_t e = 0; e < n; ++e) {
      sum += std::pow(1.0 + e, -skew) / total;
      cdf[e] = sum;
    }
    cdf[n - 1] = 1.0;
  }

  /// Routes global tokens [first, first + T): expert / gate [T*k].
  void route(int64_t first, int64_t T, int32_t *expert, float *gate) const {
    for (int64_t t = 0; t < T; ++t) {
      uint64_t g = uint64_t(first + t);
      int32_t *chosen = expert + t * k;
      for (int64_t j = 0; j < k; ++j) {
        int32_t e = -1;
        for (int attempt = 0; attempt < 64 && e < 0; ++attempt) {
          double u =
              unit(hash3(seed ^ 0x5eedull, g, uint64_t(j * 64 + attempt)));
          auto it = std::upper_bound(cdf.begin(), cdf.end(), u);
          int32_t candidate =
              int32_t(std::min<int64_t>(it - cdf.begin(), n - 1));
          if (std::find(chosen, chosen + j, candidate) == chosen + j)
            e = candidate;
        }
        // Very skewed draws: take the lowest expert not chosen yet.
        for (int32_t c = 0; e < 0; ++c)
          if (std::find(chosen, chosen + j, c) == chosen + j)
            e = c;
        chosen[j] = e;
      }
      float *out = gate + t * k;
      float top = -INFINITY;
      for (int64_t j = 0; j < k; ++j) {
        out[j] = float(4.0 * unit(hash3(seed ^ 0x6a7eull, g, uint64_t(j))));
        top = std::max(top, out[j]);
      }
      float sum = 0;
      for (int64_t j = 0; j < k; ++j)
        sum += out[j] = std::exp(out[j] - top);
      for (int64_t j = 0; j < k; ++j)
        out[j] /= sum;
    }
  }

private:
  int64_t n, k;
  uint64_t seed;
  std::vector<double> cdf;
};

//===----------------------------------------------------------------------===//
// Buffers and clocks
//===----------------------------------------------------------------------===//

/// A typed buffer in backend memory that can grow (the dynamic expert
/// section: how many rows a rank receives is known only after the counts).
template <typename T> class DeviceArray {
public:
  explicit DeviceArray(Backend &backend, int64_t count = 0) : backend(backend) {
    grow(count);
  }
  ~DeviceArray() {
    if (ptr)
      backend.release(ptr);
  }
  DeviceArray(const DeviceArray &) = delete;
  DeviceArray &operator=(const DeviceArray &) = delete;
  T *get() const { return ptr; }
  /// Makes room for `count` elements; the contents are lost when it grows.
  void grow(int64_t count) {
    if (count <= capacity && ptr)
      return;
    if (ptr)
      backend.release(ptr);
    capacity = std::max<int64_t>(count, 1);
    ptr = static_cast<T *>(backend.alloc(sizeof(T) * capacity));
  }
  void upload(const std::vector<T> &host) {
    grow(int64_t(host.size()));
    backend.copyFromHost(ptr, host.data(), sizeof(T) * host.size());
  }
  std::vector<T> download(int64_t count) const {
    std::vector<T> host(count);
    backend.copyToHost(host.data(), ptr, sizeof(T) * count);
    return host;
  }

private:
  Backend &backend;
  T *ptr = nullptr;
  int64_t capacity = 0;
};

/// Phase times of one step and its total, in seconds.
struct Times {
  double seconds[NumPhases] = {};
  double total = INFINITY;
};

/// Times one step; times.total runs from the start barrier to the end
/// barrier. With `comm` and `syncPhases`, every section of the step ends at
/// a barrier, and each rank records how long its own work of the section
/// took, from its exit from the previous barrier to its completion; a
/// section lasts as long as on the slowest rank (criticalPath). Charging
/// rank 0's barrier-to-barrier intervals instead would misattribute work
/// when ranks oversubscribe the cores: a rank that leaves a barrier late
/// (descheduled, or asleep in the collectives' backoff) sees the others'
/// work of the next section as part of the current one. Without syncPhases
/// only the total is timed (the step runs free between the two barriers).
/// Without comm (the single-rank baseline) the sections are timed locally.
class StepClock {
public:
  StepClock(Backend &backend, Collectives *comm, bool syncPhases)
      : backend(backend), comm(comm), syncPhases(syncPhases) {}

  void start() {
    if (comm)
      comm->barrier();
    begin = last = Clock::now();
  }
  template <typename F> void run(Phase p, F f) {
    f();
    if (!syncPhases && comm)
      return;
    backend.synchronize();
    Clock::time_point done = Clock::now();
    phases.push_back(p);
    seconds.push_back(std::chrono::duration<double>(done - last).count());
    if (comm)
      comm->barrier();
    last = Clock::now();
  }
  void stop() {
    backend.synchronize();
    if (comm)
      comm->barrier();
    total = secondsSince(begin);
  }

  /// The phase times: per section the maximum over the ranks (gathered on
  /// every rank: collective when there is a comm), summed per phase.
  Times criticalPath() const {
    std::vector<double> longest = seconds;
    if (comm && comm->size() > 1) {
      std::vector<double> all(seconds.size() * comm->size());
      comm->allGather(seconds.data(), sizeof(double) * seconds.size(),
                      all.data());
      for (int r = 0; r < comm->size(); ++r)
        for (size_t i = 0; i < seconds.size(); ++i)
          longest[i] = std::max(longest[i], all[r * seconds.size() + i]);
    }
    Times times;
    for (size_t i = 0; i < longest.size(); ++i)
      times.seconds[phases[i]] += longest[i];
    times.total = total;
    return times;
  }

private:
  Backend &backend;
  Collectives *comm;
  bool syncPhases;
  Clock::time_point begin, last;
  std::vector<Phase> phases;
  std::vector<double> seconds;
  double total = INFINITY;
};

void setThreads(int threads) {
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
}

/// Plan arrays of one dispatch: T tokens, A assignments, n experts.
struct PlanArrays {
  DeviceArray<int32_t> rowPtr, expert, count, offset, positionOf,
      tokenOfPosition;
  DispatchPlan plan;

  PlanArrays(Backend &b, int64_t n)
      : rowPtr(b), expert(b), count(b, n), offset(b, n + 1), positionOf(b),
        tokenOfPosition(b) {
    plan.numExperts = n;
  }
  /// Sizes the plan for T tokens and A assignments (growing its arrays).
  void resize(int64_t T, int64_t A) {
    rowPtr.grow(T + 1);
    expert.grow(A);
    positionOf.grow(A);
    tokenOfPosition.grow(A);
    plan.numTokens = T;
    plan.numAssignments = A;
    plan.rowPtr = rowPtr.get();
    plan.expert = expert.get();
    plan.expertCount = count.get();
    plan.expertOffset = offset.get();
    plan.positionOf = positionOf.get();
    plan.tokenOfPosition = tokenOfPosition.get();
  }
};

std::vector<int32_t> uniformRowPtr(int64_t T, int64_t k) {
  std::vector<int32_t> rowPtr(T + 1);
  for (int64_t t = 0; t <= T; ++t)
    rowPtr[t] = int32_t(t * k);
  return rowPtr;
}

//===----------------------------------------------------------------------===//
// The expert-parallel step on one rank
//===----------------------------------------------------------------------===//

struct RankState {
  int64_t T, d, n, k, R, m, rank;
  const Router &router;
  // Local batch, the expert shard and the incoming gradient.
  DeviceArray<float> x, W, dy;
  // Sender side (plan order = global expert id = destination rank).
  PlanArrays send;
  std::vector<int32_t> hostExpert;
  std::vector<float> hostGate;
  DeviceArray<float> gate, sendRows, backRows, y, dExpertOut, dGate, dBackRows,
      dx;
  DeviceArray<int32_t> recvExpertCount; ///< [R * m] rows from s for expert j
  std::vector<int64_t> sendCounts, recvCounts;
  // Receiver side: rows from every source, source-major (recvA, recvB) and
  // expert-major (xe, ye, dxe); the receive plan sorts them by local expert.
  PlanArrays recv;
  int64_t recvTotal = 0, recvCapacity = -1;
  DeviceArray<float> recvA, recvB, xe, ye, dxe, dW;

  RankState(Backend &b, const Options &o, int64_t R, int64_t rank,
            const Router &router)
      : T(o.tokens), d(o.dmodel), n(o.experts), k(o.k), R(R), m(o.experts / R),
        rank(rank), router(router), x(b), W(b), dy(b), send(b, n),
        hostExpert(T * k), hostGate(T * k), gate(b, T * k),
        sendRows(b, T * k * d), backRows(b, T * k * d), y(b, T * d),
        dExpertOut(b, T * k * d), dGate(b, T * k), dBackRows(b, T * k * d),
        dx(b, T * d), recvExpertCount(b, R * m), sendCounts(R), recvCounts(R),
        recv(b, m), recvA(b), recvB(b), xe(b), ye(b), dxe(b), dW(b, m * d * d) {
    float wScale = std::sqrt(3.0f / float(d));
    x.upload(uniformSlice(o.seed, 1, rank * T * d, T * d, std::sqrt(3.0f)));
    W.upload(uniformSlice(o.seed, 2, rank * m * d * d, m * d * d, wScale));
    dy.upload(uniformSlice(o.seed, 3, rank * T * d, T * d, 1.0f));
    send.resize(T, T * k);
    send.rowPtr.upload(uniformRowPtr(T, k));
  }

  /// Grows the receive side to `rows` rows (nothing to do once the largest
  /// step has been seen).
  void growReceive(int64_t rows) {
    if (rows <= recvCapacity)
      return;
    recvCapacity = rows;
    recv.resize(rows, rows);
    std::vector<int32_t> identity(rows + 1);
    for (int64_t i = 0; i <= rows; ++i)
      identity[i] = int32_t(i);
    recv.rowPtr.upload(identity);
    for (DeviceArray<float> *buffer : {&recvA, &recvB, &xe, &ye, &dxe})
      buffer->grow(rows * d);
  }
};

void expertParallelStep(Backend &b, Collectives &comm, RankState &s,
                        StepClock &clock) {
  const int64_t T = s.T, d = s.d, R = s.R, m = s.m, A = s.T * s.k;
  const DispatchPlan &plan = s.send.plan;
  DispatchPlan &rplan = s.recv.plan;

  // Forward.
  clock.run(Plan, [&] {
    s.router.route(s.rank * T, T, s.hostExpert.data(), s.hostGate.data());
    b.copyFromHost(s.send.expert.get(), s.hostExpert.data(),
                   sizeof(int32_t) * A);
    b.copyFromHost(s.gate.get(), s.hostGate.data(), sizeof(float) * A);
    b.buildDispatchPlan(s.send.plan);
    b.dispatchForward(plan, d, s.x.get(), s.sendRows.get());
  });
  clock.run(Exchange, [&] {
    // Per destination r, the counts of its experts [r m, (r+1) m).
    comm.allToAll(plan.expertCount, m, s.recvExpertCount.get());
    std::vector<int32_t> sendCount = s.send.count.download(R * m);
    std::vector<int32_t> recvCount = s.recvExpertCount.download(R * m);
    int64_t total = 0;
    for (int64_t r = 0; r < R; ++r) {
      s.sendCounts[r] = s.recvCounts[r] = 0;
      for (int64_t j = 0; j < m; ++j) {
        s.sendCounts[r] += sendCount[r * m + j];
        s.recvCounts[r] += recvCount[r * m + j];
      }
      total += s.recvCounts[r];
    }
    s.growReceive(total);
    s.recvTotal = total;
    comm.allToAllV(s.sendRows.get(), s.sendCounts.data(), d, s.recvA.get(),
                   s.recvCounts.data());
  });
  clock.run(Plan, [&] {
    // The received rows are source-major, local-expert-minor; one "token"
    // per row, whose only assignment is its local expert. The stable sort
    // keeps the sources in rank order, i.e. the global token order.
    std::vector<int32_t> recvCount = s.recvExpertCount.download(R * m);
    std::vector<int32_t> localExpert(s.recvTotal);
    int64_t row = 0;
    for (int64_t src = 0; src < R; ++src)
      for (int32_t j = 0; j < m; ++j)
        for (int32_t c = 0; c < recvCount[src * m + j]; ++c)
          localExpert[row++] = j;
    b.copyFromHost(s.recv.expert.get(), localExpert.data(),
                   sizeof(int32_t) * s.recvTotal);
    rplan.numTokens = rplan.numAssignments = s.recvTotal;
    b.buildDispatchPlan(rplan);
    b.dispatchForward(rplan, d, s.recvA.get(), s.xe.get());
  });
  clock.run(ExpertGemm, [&] {
    b.groupedMatmulForward(rplan, d, d, s.xe.get(), s.W.get(), s.ye.get(),
                           GemmPrecision::F32);
  });
  clock.run(Plan, [&] {
    // Back to source-major order (one assignment per row: a gather).
    b.dispatchBackward(rplan, d, s.ye.get(), s.recvA.get());
  });
  clock.run(Exchange, [&] {
    comm.allToAllV(s.recvA.get(), s.recvCounts.data(), d, s.backRows.get(),
                   s.sendCounts.data());
  });
  clock.run(Combine, [&] {
    b.combineForward(plan, d, s.gate.get(), s.backRows.get(), s.y.get());
  });

  // Backward.
  clock.run(Combine, [&] {
    b.combineBackward(plan, d, s.gate.get(), s.backRows.get(), s.dy.get(),
                      s.dExpertOut.get(), s.dGate.get());
  });
  clock.run(Exchange, [&] {
    comm.allToAllV(s.dExpertOut.get(), s.sendCounts.data(), d, s.recvA.get(),
                   s.recvCounts.data());
  });
  clock.run(Plan,
            [&] { b.dispatchForward(rplan, d, s.recvA.get(), s.ye.get()); });
  clock.run(ExpertGemm, [&] {
    b.groupedMatmulBackward(rplan, d, d, s.xe.get(), s.W.get(), s.ye.get(),
                            s.dxe.get(), s.dW.get(), GemmPrecision::F32);
  });
  clock.run(Plan,
            [&] { b.dispatchBackward(rplan, d, s.dxe.get(), s.recvB.get()); });
  clock.run(Exchange, [&] {
    comm.allToAllV(s.recvB.get(), s.recvCounts.data(), d, s.dBackRows.get(),
                   s.sendCounts.data());
  });
  clock.run(Plan, [&] {
    b.dispatchBackward(plan, d, s.dBackRows.get(), s.dx.get());
  });
}

//===----------------------------------------------------------------------===//
// The single-rank baseline / reference: all n experts, R T tokens
//===----------------------------------------------------------------------===//

struct ReferenceState {
  int64_t T, d, n, k;
  const Router &router;
  DeviceArray<float> x, W, dy;
  PlanArrays plan;
  std::vector<int32_t> hostExpert;
  std::vector<float> hostGate;
  DeviceArray<float> gate, buffer, expertOut, y, dExpertOut, dGate, dBuffer, dx,
      dW;

  ReferenceState(Backend &b, const Options &o, int64_t R, const Router &router)
      : T(o.tokens * R), d(o.dmodel), n(o.experts), k(o.k), router(router),
        x(b), W(b), dy(b), plan(b, n), hostExpert(T * k), hostGate(T * k),
        gate(b, T * k), buffer(b, T * k * d), expertOut(b, T * k * d),
        y(b, T * d), dExpertOut(b, T * k * d), dGate(b, T * k),
        dBuffer(b, T * k * d), dx(b, T * d), dW(b, n * d * d) {
    float wScale = std::sqrt(3.0f / float(d));
    x.upload(uniformSlice(o.seed, 1, 0, T * d, std::sqrt(3.0f)));
    W.upload(uniformSlice(o.seed, 2, 0, n * d * d, wScale));
    dy.upload(uniformSlice(o.seed, 3, 0, T * d, 1.0f));
    plan.resize(T, T * k);
    plan.rowPtr.upload(uniformRowPtr(T, k));
  }
};

void referenceStep(Backend &b, ReferenceState &s, StepClock &clock) {
  const int64_t d = s.d, A = s.T * s.k;
  const DispatchPlan &plan = s.plan.plan;
  clock.run(Plan, [&] {
    s.router.route(0, s.T, s.hostExpert.data(), s.hostGate.data());
    b.copyFromHost(s.plan.expert.get(), s.hostExpert.data(),
                   sizeof(int32_t) * A);
    b.copyFromHost(s.gate.get(), s.hostGate.data(), sizeof(float) * A);
    b.buildDispatchPlan(s.plan.plan);
    b.dispatchForward(plan, d, s.x.get(), s.buffer.get());
  });
  clock.run(ExpertGemm, [&] {
    b.groupedMatmulForward(plan, d, d, s.buffer.get(), s.W.get(),
                           s.expertOut.get(), GemmPrecision::F32);
  });
  clock.run(Combine, [&] {
    b.combineForward(plan, d, s.gate.get(), s.expertOut.get(), s.y.get());
    b.combineBackward(plan, d, s.gate.get(), s.expertOut.get(), s.dy.get(),
                      s.dExpertOut.get(), s.dGate.get());
  });
  clock.run(ExpertGemm, [&] {
    b.groupedMatmulBackward(plan, d, d, s.buffer.get(), s.W.get(),
                            s.dExpertOut.get(), s.dBuffer.get(), s.dW.get(),
                            GemmPrecision::F32);
  });
  clock.run(Plan,
            [&] { b.dispatchBackward(plan, d, s.dBuffer.get(), s.dx.get()); });
}

/// Gathers `rows` rows of `width` floats of every rank, in rank order, into
/// out on rank 0 (R * rows rows; null elsewhere) with allToAllV.
void gatherRows(Collectives &comm, const float *local, int64_t rows,
                int64_t width, float *out) {
  int R = comm.size();
  std::vector<int64_t> sendCounts(R, 0), recvCounts(R, 0);
  sendCounts[0] = rows;
  if (comm.rank() == 0)
    std::fill(recvCounts.begin(), recvCounts.end(), rows);
  comm.allToAllV(local, sendCounts.data(), width, out, recvCounts.data());
}

/// Largest |a - b| / max(1, |b|) and largest |a - b| over count values.
struct Error {
  double relative = 0, absolute = 0;
};

Error compare(const std::vector<float> &got, const std::vector<float> &want) {
  Error e;
  for (size_t i = 0; i < want.size(); ++i) {
    double diff = std::fabs(double(got[i]) - double(want[i]));
    if (!(diff == diff)) // NaN
      diff = INFINITY;
    e.absolute = std::max(e.absolute, diff);
    e.relative =
        std::max(e.relative, diff / std::max(1.0, std::fabs(double(want[i]))));
  }
  return e;
}

//===----------------------------------------------------------------------===//
// Driver
//===----------------------------------------------------------------------===//

/// Returns false after --help.
bool parseOptions(int argc, char **argv, Options &o) {
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--help" || flag == "-h")
      return false;
    if (i + 1 >= argc)
      throw std::invalid_argument("missing value after " + flag);
    std::string value = argv[++i];
    if (flag == "--tokens")
      o.tokens = std::stoll(value);
    else if (flag == "--dmodel")
      o.dmodel = std::stoll(value);
    else if (flag == "--experts")
      o.experts = std::stoll(value);
    else if (flag == "--k")
      o.k = std::stoll(value);
    else if (flag == "--skew")
      o.skew = std::stod(value);
    else if (flag == "--reps")
      o.reps = std::stoi(value);
    else if (flag == "--threads")
      o.threads = std::stoi(value);
    else if (flag == "--baseline-threads")
      o.baselineThreads = std::stoi(value);
    else if (flag == "--seed")
      o.seed = std::stoull(value);
    else if (flag == "--commit")
      o.commit = value;
    else if (flag == "--results")
      o.results = value;
    else
      throw std::invalid_argument("unknown flag " + flag);
  }
  if (o.tokens < 1 || o.dmodel < 1 || o.experts < 1 || o.reps < 1)
    throw std::invalid_argument(
        "--tokens, --dmodel, --experts and --reps must be >= 1");
  if (o.k < 1 || o.k > o.experts)
    throw std::invalid_argument("--k must be in [1, experts]");
  if (o.skew < 0 || o.threads < 0 || o.baselineThreads < 0)
    throw std::invalid_argument(
        "--skew, --threads and --baseline-threads must be >= 0");
  return true;
}

bool isRankZero() {
  for (const char *name : {"OMPI_COMM_WORLD_RANK", "PMI_RANK"})
    if (const char *value = std::getenv(name))
      return std::string(value) == "0";
  return true;
}

int runBenchmark(const Options &o) {
  std::unique_ptr<Collectives> comm = createCollectives("auto");
  const int R = comm->size(), rank = comm->rank();
  const bool root = rank == 0;
  if (o.experts % R != 0)
    throw std::invalid_argument("--experts " + std::to_string(o.experts) +
                                " is not a multiple of the " +
                                std::to_string(R) + " ranks");
  if (o.tokens * R * o.k > INT32_MAX)
    throw std::invalid_argument("the global batch is too large for int32 "
                                "plan indices / MPI counts");
  int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  int threads = o.threads ? o.threads : std::max(1, cores / R);
  int baselineThreads = o.baselineThreads ? o.baselineThreads : cores;
  std::unique_ptr<Backend> backend = createCpuBackend(threads);
  Backend &b = *backend;
  Router router(o.experts, o.k, o.skew, o.seed);

  RankState state(b, o, R, rank, router);
  std::unique_ptr<ReferenceState> reference;
  if (root)
    reference = std::make_unique<ReferenceState>(b, o, R, router);

  std::string device =
      cpuModel() + ", " + std::to_string(cores) + " cores, " +
      std::to_string(threads) + " thread" + (threads > 1 ? "s" : "") +
      "/rank (1 rank: " + std::to_string(baselineThreads) + ")";
  if (root)
    std::printf("device: %s\ncommit: %s\nranks R=%d, T=%lld tokens/rank, "
                "d=%lld, n=%lld (%lld/rank), k=%lld, skew=%g, reps=%d\n",
                device.c_str(), o.commit.c_str(), R, (long long)o.tokens,
                (long long)o.dmodel, (long long)o.experts,
                (long long)(o.experts / R), (long long)o.k, o.skew, o.reps);

  // One repetition: the step with a barrier after every section, the step
  // free-running, then the baseline on rank 0 (the others wait, asleep in
  // the collectives' backoff).
  Times bestSynced, bestFree, bestBaseline;
  for (int rep = -1; rep < o.reps; ++rep) { // rep -1: warm-up
    StepClock synced(b, comm.get(), true);
    synced.start();
    expertParallelStep(b, *comm, state, synced);
    synced.stop();
    StepClock freeRun(b, comm.get(), false);
    freeRun.start();
    expertParallelStep(b, *comm, state, freeRun);
    freeRun.stop();
    comm->barrier();
    StepClock baseline(b, nullptr, true);
    if (root) {
      setThreads(baselineThreads);
      baseline.start();
      referenceStep(b, *reference, baseline);
      baseline.stop();
      setThreads(threads);
    }
    comm->barrier();
    if (rep < 0)
      continue;
    Times syncedTimes = synced.criticalPath(); // collective
    if (syncedTimes.total < bestSynced.total)
      bestSynced = syncedTimes;
    if (freeRun.criticalPath().total < bestFree.total)
      bestFree = freeRun.criticalPath();
    if (root && baseline.criticalPath().total < bestBaseline.total)
      bestBaseline = baseline.criticalPath();
  }

  // Rows per rank and the exchanged volume (outside the timing).
  std::vector<int64_t> load(2 * R, 0);
  load[rank] = state.recvTotal;
  load[R + rank] = state.T * state.k - state.sendCounts[rank]; // off-rank rows
  comm->allReduceSum(load.data(), int64_t(load.size()));

  // Validation: gather every rank's results and compare with the reference.
  const int64_t T = o.tokens, d = o.dmodel, k = o.k, m = o.experts / R;
  struct Field {
    const char *name;
    const float *local;
    int64_t rows, width;
    const float *want;
  };
  std::vector<Field> fields = {
      {"y", state.y.get(), T, d, root ? reference->y.get() : nullptr},
      {"dx", state.dx.get(), T, d, root ? reference->dx.get() : nullptr},
      {"dGate", state.dGate.get(), T, k,
       root ? reference->dGate.get() : nullptr},
      {"dW", state.dW.get(), m, d * d, root ? reference->dW.get() : nullptr}};
  bool ok = true;
  Error outputError;
  std::string report;
  for (const Field &f : fields) {
    int64_t count = R * f.rows * f.width;
    std::vector<float> got(root ? count : 0);
    gatherRows(*comm, f.local, f.rows, f.width, root ? got.data() : nullptr);
    if (!root)
      continue;
    std::vector<float> want(count);
    b.copyToHost(want.data(), f.want, sizeof(float) * count);
    Error e = compare(got, want);
    if (f.local == state.y.get())
      outputError = e;
    bool good = e.relative <= 1e-5;
    ok = ok && good;
    char line[160];
    std::snprintf(line, sizeof(line),
                  "  %-6s max |err| %.3g, relative %.3g%s\n", f.name,
                  e.absolute, e.relative, good ? "" : "  FAILED");
    report += line;
  }
  int32_t status = ok ? 0 : 1;
  comm->broadcast(&status, sizeof(status), 0);
  if (!root)
    return status;

  std::printf("validation against one rank on the global batch (%lld tokens, "
              "tolerance 1e-5 relative to max(1, |ref|)): %s\n%s",
              (long long)(R * T), ok ? "passed" : "FAILED", report.c_str());
  if (!ok) {
    std::fprintf(stderr, "expert-parallel-bench: the expert-parallel step "
                         "differs from the single-rank reference; no row "
                         "written\n");
    return 1;
  }

  int64_t minRows = load[0], maxRows = load[0], offRank = 0;
  for (int r = 0; r < R; ++r) {
    minRows = std::min(minRows, load[r]);
    maxRows = std::max(maxRows, load[r]);
    offRank += load[R + r];
  }
  double usefulFlops = 6.0 * double(R * T * k) * double(d * d);
  double exchangeBytes = 4.0 * double(offRank) * double(d) * sizeof(float);
  double step = bestFree.total, synced = bestSynced.total;
  double exchange = bestSynced.seconds[Exchange];
  double gemmRate = usefulFlops / bestSynced.seconds[ExpertGemm] / 1e9;
  double baseline = bestBaseline.total;
  double baselineRate = usefulFlops / bestBaseline.seconds[ExpertGemm] / 1e9;
  double speedup = baseline / step;

  std::printf("rows received per rank: %lld..%lld (mean %lld, %lld rows per "
              "expert); off-rank traffic %.1f MiB per step (all ranks, 4 "
              "exchanges), %.2f GB/s over the exchange phase\n",
              (long long)minRows, (long long)maxRows,
              (long long)(R * T * k / R), (long long)(R * T * k / o.experts),
              exchangeBytes / (1 << 20), exchangeBytes / exchange / 1e9);
  std::printf("\n%d rank%s: step %.1f ms free-running, %.1f ms with a barrier "
              "after each section:\n",
              R, R > 1 ? "s" : "", step * 1e3, synced * 1e3);
  double critical = 0;
  for (int p = 0; p < NumPhases; ++p) {
    critical += bestSynced.seconds[p];
    std::printf("  %-14s %8.2f ms  %5.1f%%\n", kPhaseNames[p],
                bestSynced.seconds[p] * 1e3,
                100 * bestSynced.seconds[p] / synced);
  }
  std::printf("  %-14s %8.2f ms  %5.1f%%\n", "barriers/skew",
              (synced - critical) * 1e3, 100 * (synced - critical) / synced);
  std::printf("  expert GEMMs %.1f GFLOP/s (all ranks, %.2f GFLOP)\n", gemmRate,
              usefulFlops / 1e9);
  std::printf("1 rank, all %lld experts, %lld tokens, %d threads: %.1f ms\n",
              (long long)o.experts, (long long)(R * T), baselineThreads,
              baseline * 1e3);
  for (int p = 0; p < NumPhases; ++p)
    if (p != Exchange)
      std::printf("  %-14s %8.2f ms  %5.1f%%\n", kPhaseNames[p],
                  bestBaseline.seconds[p] * 1e3,
                  100 * bestBaseline.seconds[p] / baseline);
  std::printf("  expert GEMMs %.1f GFLOP/s\n", baselineRate);
  std::printf("speed-up over 1 rank: %.2f (ideal %d with a device per rank)\n",
              speedup, R);

  if (!o.results.empty()) {
    std::ofstream out(o.results, std::ios::app);
    if (!out) {
      std::cerr << "expert-parallel-bench: cannot append to " << o.results
                << "\n";
      return 1;
    }
    char row[768];
    std::snprintf(
        row, sizeof(row),
        "| %s | %s | %s | %d | %lld | %lld | %lld | %lld | %g | "
        "%.1f | %.1f | %.1f | %.1f%% | %.0f | %.1f | %.0f | %.2f | "
        "%d | %.1e |\n",
        today().c_str(), o.commit.c_str(), device.c_str(), R, (long long)T,
        (long long)d, (long long)o.experts, (long long)k, o.skew, step * 1e3,
        synced * 1e3, exchange * 1e3, 100 * exchange / synced, gemmRate,
        baseline * 1e3, baselineRate, speedup, R, outputError.relative);
    out << row;
  }
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  // Line by line: progress reaches mpirun's pipe as it happens.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  Options options;
  try {
    if (!parseOptions(argc, argv, options)) {
      std::fputs(kUsage, stdout);
      return 0;
    }
  } catch (const std::exception &e) {
    if (isRankZero())
      std::cerr << "expert-parallel-bench: " << e.what() << "\n" << kUsage;
    return 2;
  }
  try {
    return runBenchmark(options);
  } catch (const std::exception &e) {
    std::cerr << "expert-parallel-bench: " << e.what() << "\n";
    return 1;
  }
}
