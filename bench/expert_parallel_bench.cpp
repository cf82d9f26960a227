//===- expert_parallel_bench.cpp - The shipped expert-parallel exchange ---===//
//
// Times one expert-parallel MoE layer step, forward + backward, on each of
// the R ranks of an mpirun job, through the step ABI that a package compiled
// with `expert-parallel=true` calls (runtime/step/Step.h): a step::Context
// with the CPU backend and the MPI collectives. Rank r holds its batch of T
// tokens and the experts [r n/R, (r+1) n/R) of n experts (linear d x d, or
// with --hidden h the FFN d x h, relu, h x d). Per step and rank, in the
// order of the generated code (test/Codegen/expert-parallel.mlir):
//
//   forward   dispatchPlan; exchangeCounts; dispatchForward;
//             exchangeToExperts; groupedMatmulRows [activateRows;
//             groupedMatmulRows]; exchangeToTokens; combineForward
//   backward  combineBackward; exchangeToExperts; [groupedMatmulGradRows;
//             activateGradRows;] groupedMatmulGradRows; exchangeToTokens;
//             dispatchBackward
//
// Every timed call is the shipped one: the token side calls the kernels'
// step entries (runtime/Kernels.def) with top-k's implicit row pointers,
// as the generated code does.
//
// Routing is a deterministic hash, computed once before timing (the
// expert ids and gates are the step's inputs): the k distinct experts of
// global token g and their gates (a softmax over k hashed logits) depend
// only on (seed, g), so the single-rank reference routes every token as
// its rank does. Expert e is drawn with probability ~ (1 + e)^-skew (skew
// 0: uniform; larger skews load the low experts, i.e. the low ranks). The
// gate GEMMs, top-k and balancing losses are data-parallel per-token work
// that moe-layer-bench measures.
//
// Phases, timed with a barrier after every section of the step: each rank
// times its own work of a section from its exit from the previous barrier,
// and a section counts as long as on its slowest rank (the critical path;
// the rest of the synchronised step is barrier latency and skew):
//   dispatch plan  step::dispatchPlan;
//   token side     dispatch, combine and their gradients;
//   exchange       exchangeCounts, 2 x exchangeToExperts, 2 x
//                  exchangeToTokens (with their permutation of the received
//                  rows into expert-major order and back);
//   expert GEMMs   groupedMatmul(Grad)Rows, activate(Grad)Rows.
// Every repetition runs the step twice, once with a barrier after every
// section (the breakdown) and once free-running (barriers only at the start
// and the end: the step time, rank 0's clock), then, on rank 0 alone while
// the others wait in a barrier, the baseline: a Context without collectives
// computing all n experts on the global batch of R T tokens with every
// core, the same calls less the three exchange ones (the experts take the
// dispatch buffer and the plan's segments, as in a package compiled without
// expert-parallel). The fastest repetition of each is kept. The baseline's
// outputs are also the reference: y, dx, dGate and the expert weight
// gradients of every rank are gathered to rank 0 and must equal it within
// 1e-5 (relative to max(1, |reference|)), else the run fails and writes no
// row.
//
// Usage: mpirun -np R expert-parallel-bench [--tokens T] [--dmodel d]
//          [--experts n] [--k k] [--hidden h] [--skew s] [--reps N]
//          [--threads c] [--baseline-threads C] [--seed S] [--commit HASH]
//          [--results FILE]
// --threads is per rank (default: max(1, cores / R)); --baseline-threads
// (default: every core) is the reference's. With --results, rank 0 appends
// one Markdown table row. Outside mpirun it runs as one rank.
//
//===----------------------------------------------------------------------===//

#include "bench/BenchSupport.h"
#include "runtime/Backend.h"
#include "runtime/collectives/Collectives.h"
#include "runtime/step/Step.h"

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
#include <cstring>
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

enum Phase { Plan, TokenSide, Exchange, ExpertGemm, NumPhases };

const char *const kPhaseNames[NumPhases] = {"dispatch plan", "token side",
                                            "exchange", "expert GEMMs"};

struct Options {
  int64_t tokens = 2048; ///< per rank
  int64_t dmodel = 512;
  int64_t experts = 64;
  int64_t k = 4;
  int64_t hidden = 0; ///< 0: linear d x d experts; else FFN d x h x d
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
    "         [--experts n] [--k k] [--hidden h] [--skew s] [--reps N]\n"
    "         [--threads c] [--baseline-threads C] [--seed S]\n"
    "         [--commit HASH] [--results FILE]\n";

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
// Clocks
//===----------------------------------------------------------------------===//

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

//===----------------------------------------------------------------------===//
// The MoE layer step through a step::Context
//===----------------------------------------------------------------------===//

/// Backend arrays released with their owner.
class Arrays {
public:
  explicit Arrays(Backend &backend) : backend(backend) {}
  ~Arrays() {
    for (void *ptr : owned)
      backend.release(ptr);
  }
  Arrays(const Arrays &) = delete;
  Arrays &operator=(const Arrays &) = delete;
  template <typename T> T *make(int64_t count) {
    owned.push_back(backend.alloc(sizeof(T) * std::max<int64_t>(count, 1)));
    return static_cast<T *>(owned.back());
  }
  template <typename T> T *upload(const std::vector<T> &host) {
    T *ptr = make<T>(int64_t(host.size()));
    backend.copyFromHost(ptr, host.data(), sizeof(T) * host.size());
    return ptr;
  }

private:
  Backend &backend;
  std::vector<void *> owned;
};

/// One GEMM of the experts: [rows, in] x [experts, in, out], then relu
/// when `relu`; the weights and their gradient are this context's experts.
struct ExpertGemmLayer {
  int64_t in, out;
  bool relu;
  float *weights, *dWeights;
};

/// The tensors of one MoE layer on a context: T tokens (global tokens
/// [firstToken, firstToken + T)), each routed to k of the n experts, the
/// context's shard of which it holds. With `exchange` the step runs as an
/// expert-parallel rank; without, as a package without expert-parallel.
struct LayerStep {
  step::Context ctx;
  Arrays arrays;
  int64_t T, d, n, k, A;
  bool exchange;
  int64_t firstExpert = 0, localExperts = 0;
  std::vector<ExpertGemmLayer> layers;
  float *x, *dy, *gate;
  int32_t *expert;
  // The dispatch plan and, with the exchange, the received segments.
  int32_t *expertOffset, *position, *token, *recvCounts, *recvOffset;
  float *buffer, *y, *dExpertOut, *dGate, *dx;
  // Where exchangeToTokens brings the rows home (the dispatch buffer's
  // layout); without the exchange the experts' pool rows are used.
  float *expertOut = nullptr, *dBuffer = nullptr;
  int64_t received = 0; ///< rows the experts got in the last step

  LayerStep(Backend &b, Collectives *comm, const Options &o,
            const Router &router, int64_t firstToken, int64_t T, bool exchange)
      : ctx(&b), arrays(b), T(T), d(o.dmodel), n(o.experts), k(o.k),
        A(T * o.k), exchange(exchange) {
    ctx.collectives = comm;
    localExperts = step::shardCount(&ctx, n);
    firstExpert = ctx.rank() * localExperts;
    std::vector<int32_t> hostExpert(A);
    std::vector<float> hostGate(A);
    router.route(firstToken, T, hostExpert.data(), hostGate.data());
    expert = arrays.upload(hostExpert);
    gate = arrays.upload(hostGate);
    x = arrays.upload(
        uniformSlice(o.seed, 1, firstToken * d, T * d, std::sqrt(3.0f)));
    dy = arrays.upload(uniformSlice(o.seed, 3, firstToken * d, T * d, 1.0f));
    std::vector<int64_t> widths = {d};
    if (o.hidden)
      widths.push_back(o.hidden);
    widths.push_back(d);
    for (size_t l = 0; l + 1 < widths.size(); ++l) {
      int64_t in = widths[l], out = widths[l + 1], size = in * out;
      float *w = arrays.upload(uniformSlice(o.seed, 10 + l, firstExpert * size,
                                            localExperts * size,
                                            std::sqrt(3.0f / float(in))));
      layers.push_back({in, out, l + 2 < widths.size(), w,
                        arrays.make<float>(localExperts * size)});
    }
    expertOffset = arrays.make<int32_t>(n + 1);
    position = arrays.make<int32_t>(A);
    token = arrays.make<int32_t>(A);
    recvCounts = arrays.make<int32_t>(n);
    recvOffset = arrays.make<int32_t>(n + 1);
    buffer = arrays.make<float>(A * d);
    y = arrays.make<float>(T * d);
    dExpertOut = arrays.make<float>(A * d);
    dGate = arrays.make<float>(A);
    dx = arrays.make<float>(T * d);
    if (exchange) {
      expertOut = arrays.make<float>(A * d);
      dBuffer = arrays.make<float>(A * d);
    }
  }

  /// Rows of the dispatch buffer's layout at their experts: exchanged, or
  /// the buffer itself.
  step::Rows toExperts(StepClock &clock, float *rows) {
    if (!exchange)
      return {rows, A};
    step::Rows out;
    clock.run(Exchange, [&] {
      out = step::exchangeToExperts(&ctx, rows, expertOffset, recvCounts, A,
                                    n, d);
    });
    return out;
  }
  /// The inverse: the experts' rows in the dispatch buffer's layout, sent
  /// home into `home`, or the rows themselves.
  const float *toTokens(StepClock &clock, step::Rows rows, float *home) {
    if (!exchange)
      return rows.data;
    clock.run(Exchange, [&] {
      step::exchangeToTokens(&ctx, rows, expertOffset, recvCounts, home, A, n,
                             d);
    });
    return home;
  }
};

/// One step of the layer, forward + backward.
void layerStep(LayerStep &s, StepClock &clock) {
  step::Context *ctx = &s.ctx;
  const int64_t T = s.T, d = s.d, n = s.n, k = s.k, A = s.A;
  const GemmPrecision f32 = GemmPrecision::F32;
  ctx->beginCall(); // as moe-run before each call: the pool starts empty
  clock.run(Plan, [&] {
    step::dispatchPlan(ctx, s.expert, nullptr, s.gate, s.expertOffset,
                       s.position, s.token, A, n, T);
  });
  // moe-partition puts the count exchange right after the plan.
  if (s.exchange)
    clock.run(Exchange, [&] {
      step::exchangeCounts(ctx, s.expertOffset, s.recvCounts, s.recvOffset, n);
    });
  clock.run(TokenSide, [&] {
    step::dispatchForward(ctx, A, d, s.token, s.x, s.buffer);
  });
  step::Rows rows = s.toExperts(clock, s.buffer);
  s.received = rows.rows;
  // The experts' segments: by global expert id either way.
  const int32_t *segments = s.exchange ? s.recvOffset : s.expertOffset;
  // acts[l]: the input rows of GEMM l; acts.back(): the experts' output.
  std::vector<step::Rows> acts = {rows};
  clock.run(ExpertGemm, [&] {
    for (const ExpertGemmLayer &l : s.layers) {
      step::Rows out = step::groupedMatmulRows(ctx, acts.back(), l.weights,
                                               segments, n, l.in, l.out, f32);
      acts.push_back(
          l.relu ? step::activateRows(ctx, out, l.out, step::Activation::Relu)
                 : out);
    }
  });
  const float *expertOut = s.toTokens(clock, acts.back(), s.expertOut);
  clock.run(TokenSide, [&] {
    step::combineForward(ctx, T, A, d, /*rowPtr=*/nullptr, s.position, s.gate,
                         expertOut, s.y);
  });

  clock.run(TokenSide, [&] {
    step::combineBackward(ctx, T, A, d, /*rowPtr=*/nullptr, s.position,
                          s.gate, expertOut, s.dy, s.dExpertOut, s.dGate);
  });
  step::Rows grad = s.toExperts(clock, s.dExpertOut);
  clock.run(ExpertGemm, [&] {
    for (size_t l = s.layers.size(); l-- > 0;) {
      const ExpertGemmLayer &layer = s.layers[l];
      if (layer.relu)
        grad = step::activateGradRows(ctx, acts[l + 1], grad, layer.out,
                                      step::Activation::Relu);
      grad = step::groupedMatmulGradRows(ctx, acts[l], layer.weights,
                                         segments, grad, layer.dWeights, n,
                                         layer.in, layer.out, f32);
    }
  });
  const float *dBuffer = s.toTokens(clock, grad, s.dBuffer);
  clock.run(TokenSide, [&] {
    step::dispatchBackward(ctx, T, A, d, /*rowPtr=*/nullptr, s.position,
                           dBuffer, s.dx);
  });
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
    else if (flag == "--hidden")
      o.hidden = std::stoll(value);
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
  if (o.skew < 0 || o.hidden < 0 || o.threads < 0 || o.baselineThreads < 0)
    throw std::invalid_argument("--skew, --hidden, --threads and "
                                "--baseline-threads must be >= 0");
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

  const int64_t T = o.tokens, d = o.dmodel, k = o.k;
  LayerStep state(b, comm.get(), o, router, rank * T, T, true);
  std::unique_ptr<LayerStep> reference;
  if (root)
    reference =
        std::make_unique<LayerStep>(b, nullptr, o, router, 0, R * T, false);

  std::string expertKind =
      o.hidden ? "ffn " + std::to_string(o.hidden) : std::string("linear");
  std::string device =
      cpuModel() + ", " + std::to_string(cores) + " cores, " +
      std::to_string(threads) + " thread" + (threads > 1 ? "s" : "") +
      "/rank (1 rank: " + std::to_string(baselineThreads) + ")";
  if (root)
    std::printf("device: %s\ncommit: %s\nranks R=%d, T=%lld tokens/rank, "
                "d=%lld, n=%lld (%lld/rank), k=%lld, %s experts, skew=%g, "
                "reps=%d\n",
                device.c_str(), o.commit.c_str(), R, (long long)T,
                (long long)d, (long long)o.experts,
                (long long)state.localExperts, (long long)k,
                expertKind.c_str(), o.skew, o.reps);

  // One repetition: the step with a barrier after every section, the step
  // free-running, then the baseline on rank 0 (the others wait, asleep in
  // the collectives' backoff).
  Times bestSynced, bestFree, bestBaseline;
  for (int rep = -1; rep < o.reps; ++rep) { // rep -1: warm-up
    StepClock synced(b, comm.get(), true);
    synced.start();
    layerStep(state, synced);
    synced.stop();
    StepClock freeRun(b, comm.get(), false);
    freeRun.start();
    layerStep(state, freeRun);
    freeRun.stop();
    comm->barrier();
    StepClock baseline(b, nullptr, true);
    if (root) {
      setThreads(baselineThreads);
      baseline.start();
      layerStep(*reference, baseline);
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

  // Rows per rank and the off-rank rows (outside the timing): a rank keeps
  // the plan's segments of its own experts.
  std::vector<int32_t> offsets(o.experts + 1);
  b.copyToHost(offsets.data(), state.expertOffset,
               sizeof(int32_t) * offsets.size());
  std::vector<int64_t> load(2 * R, 0);
  load[rank] = state.received;
  load[R + rank] =
      state.A - (offsets[state.firstExpert + state.localExperts] -
                 offsets[state.firstExpert]);
  comm->allReduceSum(load.data(), int64_t(load.size()));

  // Validation: gather every rank's results and compare with the reference.
  struct Field {
    std::string name;
    const float *local;
    int64_t rows, width;
    const float *want;
  };
  auto want = [&](float *LayerStep::*field) -> const float * {
    return root ? reference.get()->*field : nullptr;
  };
  std::vector<Field> fields = {
      {"y", state.y, T, d, want(&LayerStep::y)},
      {"dx", state.dx, T, d, want(&LayerStep::dx)},
      {"dGate", state.dGate, T, k, want(&LayerStep::dGate)}};
  for (size_t l = 0; l < state.layers.size(); ++l) {
    const ExpertGemmLayer &layer = state.layers[l];
    fields.push_back({"dW" + std::to_string(l + 1), layer.dWeights,
                      state.localExperts, layer.in * layer.out,
                      root ? reference->layers[l].dWeights : nullptr});
  }
  bool ok = true;
  Error outputError;
  std::string report;
  for (const Field &f : fields) {
    int64_t count = R * f.rows * f.width;
    std::vector<float> got(root ? count : 0);
    gatherRows(*comm, f.local, f.rows, f.width, root ? got.data() : nullptr);
    if (!root)
      continue;
    std::vector<float> expected(count);
    b.copyToHost(expected.data(), f.want, sizeof(float) * count);
    Error e = compare(got, expected);
    if (f.local == state.y)
      outputError = e;
    bool good = e.relative <= 1e-5;
    ok = ok && good;
    char line[160];
    std::snprintf(line, sizeof(line),
                  "  %-6s max |err| %.3g, relative %.3g%s\n", f.name.c_str(),
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
  double gemmFlopsPerRow = 0;
  for (const ExpertGemmLayer &layer : state.layers)
    gemmFlopsPerRow += 6.0 * double(layer.in * layer.out);
  double usefulFlops = gemmFlopsPerRow * double(R * T * k);
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
              (long long)minRows, (long long)maxRows, (long long)(T * k),
              (long long)(R * T * k / o.experts), exchangeBytes / (1 << 20),
              exchangeBytes / exchange / 1e9);
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
        "| %s | %s | %s | %d | %lld | %lld | %lld | %lld | %s | %g | "
        "%.1f | %.1f | %.1f | %.1f%% | %.0f | %.1f | %.0f | %.2f | "
        "%d | %.1e |\n",
        today().c_str(), o.commit.c_str(), device.c_str(), R, (long long)T,
        (long long)d, (long long)o.experts, (long long)k, expertKind.c_str(),
        o.skew, step * 1e3, synced * 1e3, exchange * 1e3,
        100 * exchange / synced, gemmRate, baseline * 1e3, baselineRate,
        speedup, R, outputError.relative);
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
