//===- moe_layer_bench.cpp - MoE layer vs dense GEMM on a backend ---------===//
//
// Times one MoE layer, forward + backward, through the Backend interface of
// the CPU or the CUDA backend: gate logits (x W_g, x W_noise), noisy top-k, the
// load estimator and importance with their CV^2 losses, the dispatch plan,
// dispatch, the grouped expert GEMMs (linear d x d experts), combine, and all
// their backwards. In the same run it times a dense sgemm forward + backward
// with the same useful FLOPs: the three expert GEMMs of [T*k, d] x [d, d].
// The throughput ratio dense time / MoE time says how close the sparse layer
// gets to plain GEMM speed; the routing share is the part of the layer spent
// outside the expert GEMMs.
//
// Usage: moe-layer-bench [--tokens T] [--dmodel d] [--experts 8,64,512]
//          [--k 4,8] [--reps R] [--backend cpu|cuda] [--precision
//          f32|tf32|bf16] [--routing uniform|zipf|equal] [--router
//          separate|fused] [--commit HASH] [--results FILE]
//        moe-layer-bench --dense-peak N [--peak-tflops P] [--backend ...]
//          [--precision ...]
// --routing zipf biases the gate logits by -log(e + 1), so that expert e
// gets about 1 / (e + 1) of the tokens (Zipf(1)), the skew of a router
// early in training. --routing equal times the expert GEMMs as a batchwise
// mask gives them, T k / n rows per expert, through batchedMatmulForward /
// Backward (one strided-batched GEMM, no offsets read; the routing phases
// stay top-k's). --router fused runs the forward routing as compiled
// steps do, one fusedRouteForward (noisy top-k, load, importance and the
// plan) and one fusedRouteBackward, timed as the phase "fused router"; the
// default times the separate kernels phase by phase. --dense-peak times one N x
// N x N GEMM at the precision instead, as TFLOP/s and, with the datasheet peak
// P, its share. The precision is that of the expert GEMMs and the dense
// reference (the router's GEMMs stay f32, as in compiled steps); the CPU
// computes in f32 whatever it says. With --results, one Markdown table row per
// configuration is appended.
//
//===----------------------------------------------------------------------===//

#include "bench/BenchSupport.h"
#include "runtime/Backend.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

using namespace moe::rt;
using moe::bench::cpuModel;
using moe::bench::gpuModel;
using moe::bench::today;

namespace {

/// The parts of the layer that the breakdown reports, forward + backward.
enum Phase {
  GateGemm,    ///< x W_g, x W_noise and their three backward GEMMs each
  TopK,        ///< noisy top-k forward / backward
  Balance,     ///< load estimate, importance, CV^2, forward and backward
  Plan,        ///< buildDispatchPlan
  Dispatch,    ///< dispatch forward / backward
  ExpertGemm,  ///< grouped GEMMs forward / backward
  Combine,     ///< combine forward / backward
  FusedRouter, ///< --router fused: fusedRouteForward (top-k, load,
               ///< importance, plan) and fusedRouteBackward
  NumPhases
};

const char *const kPhaseNames[NumPhases] = {
    "gate GEMMs",    "noisy top-k", "load/importance/CV^2",
    "dispatch plan", "dispatch",    "expert GEMMs",
    "combine",       "fused router"};

struct Config {
  int64_t T, d, n, k;
};

struct Options {
  int64_t tokens = 8192;
  int64_t dmodel = 512;
  std::vector<int64_t> experts = {8, 64, 512};
  std::vector<int64_t> ks = {4, 8};
  int reps = 3;
  std::string backend = "cpu";
  std::string routing = "uniform";
  bool fusedRouter = false;
  int64_t densePeak = 0;
  double peakTflops = 0;
  std::string precisionName = "f32";
  GemmPrecision precision = GemmPrecision::F32;
  std::string commit = "unknown";
  std::string results;
  bool help = false;
};

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// A typed buffer in backend memory, released on destruction.
template <typename T> class DeviceArray {
public:
  DeviceArray(Backend &backend, int64_t count)
      : backend(backend),
        ptr(static_cast<T *>(backend.alloc(sizeof(T) * count))), count(count) {}
  ~DeviceArray() { backend.release(ptr); }
  DeviceArray(const DeviceArray &) = delete;
  DeviceArray &operator=(const DeviceArray &) = delete;
  T *get() const { return ptr; }
  /// Fills with uniform values in [-scale, scale) from `seed`: a hash of
  /// (seed, index), in parallel, since the 512-expert weights of d = 1024
  /// are half a billion values.
  void randomize(uint32_t seed, float scale) {
    std::vector<float> host(count);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < count; ++i) {
      uint64_t z = (uint64_t(seed) << 40) + uint64_t(i) + 0x9e3779b97f4a7c15ull;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull; // splitmix64's finalizer
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      z ^= z >> 31;
      host[i] = scale * (2.0f * float(z >> 40) / float(1 << 24) - 1.0f);
    }
    upload(host);
  }
  void upload(const std::vector<T> &host) {
    backend.copyFromHost(ptr, host.data(), sizeof(T) * count);
  }

private:
  Backend &backend;
  T *ptr;
  int64_t count;
};

/// Every tensor of one MoE layer and of the dense reference.
struct LayerState {
  Config c;
  GemmPrecision precision;
  bool zipf;
  bool fusedRouter = false;
  DeviceArray<float> x, Wg, Wn, We, dy;
  DeviceArray<float> clean, raw, noisy, noiseStd, top, gate, load, importance,
      loss, dLoss;
  // The plan arrays; top-k routing has no row pointers (k per token).
  DeviceArray<int32_t> expert, offset, positionOf, tokenOfPosition;
  DeviceArray<float> buffer, expertOut, y;
  DeviceArray<float> dExpertOut, dGate, dGateImportance, dBuffer, dWe, dx,
      dClean, dRaw, dLoad, dImportance, dWg, dWn;
  DeviceArray<float> denseX, denseY, denseDy, denseDx, denseDw;
  DeviceArray<float> zipfBias;
  /// Equal segments of T k / n rows (--routing equal), else empty.
  DeviceArray<int32_t> equalOffset;
  int64_t equalRows = 0;

  LayerState(Backend &b, const Config &c, GemmPrecision precision, bool zipf,
             bool equal)
      : c(c), precision(precision), zipf(zipf), x(b, c.T * c.d),
        Wg(b, c.d * c.n), Wn(b, c.d * c.n), We(b, c.n * c.d * c.d),
        dy(b, c.T * c.d), clean(b, c.T * c.n), raw(b, c.T * c.n),
        noisy(b, c.T * c.n), noiseStd(b, c.T * c.n), top(b, c.T * (c.k + 1)),
        gate(b, c.T * c.k), load(b, c.n), importance(b, c.n), loss(b, 2),
        dLoss(b, 1), expert(b, c.T * c.k), offset(b, c.n + 1),
        positionOf(b, c.T * c.k), tokenOfPosition(b, c.T * c.k),
        buffer(b, c.T * c.k * c.d), expertOut(b, c.T * c.k * c.d),
        y(b, c.T * c.d), dExpertOut(b, c.T * c.k * c.d), dGate(b, c.T * c.k),
        dGateImportance(b, c.T * c.k), dBuffer(b, c.T * c.k * c.d),
        dWe(b, c.n * c.d * c.d), dx(b, c.T * c.d), dClean(b, c.T * c.n),
        dRaw(b, c.T * c.n), dLoad(b, c.n), dImportance(b, c.n),
        dWg(b, c.d * c.n), dWn(b, c.d * c.n), denseX(b, c.T * c.k * c.d),
        denseY(b, c.T * c.k * c.d), denseDy(b, c.T * c.k * c.d),
        denseDx(b, c.T * c.k * c.d), denseDw(b, c.d * c.d), zipfBias(b, c.n),
        equalOffset(b, equal ? c.n + 1 : 0) {
    // Unit-variance inputs and 1/sqrt(d) weights give logits of order one,
    // so the routing spreads tokens over all experts as in training.
    float wScale = std::sqrt(3.0f / c.d);
    x.randomize(1, std::sqrt(3.0f));
    Wg.randomize(2, wScale);
    Wn.randomize(3, wScale);
    We.randomize(4, wScale);
    dy.randomize(5, 1.0f);
    denseX.randomize(6, 1.0f);
    denseDy.randomize(7, 1.0f);
    // The gradient of each balancing loss, in backend memory as a compiled
    // step keeps it.
    b.fill(dLoss.get(), 1.0f, 1);
    std::vector<float> bias(static_cast<size_t>(c.n));
    for (int64_t e = 0; e < c.n; ++e)
      bias[e] = -std::log(static_cast<float>(e + 1));
    zipfBias.upload(bias);
    if (equal) {
      equalRows = c.T * c.k / c.n;
      std::vector<int32_t> offsets(static_cast<size_t>(c.n + 1));
      for (int64_t e = 0; e <= c.n; ++e)
        offsets[e] = static_cast<int32_t>(e * equalRows);
      equalOffset.upload(offsets);
    }
  }
};

/// Times each phase of the layer; seconds[p] accumulates phase p.
struct PhaseClock {
  Backend *backend;
  double seconds[NumPhases] = {};
  template <typename F> void run(Phase p, F f) {
    Clock::time_point start = Clock::now();
    f();
    backend->synchronize();
    seconds[p] += secondsSince(start);
  }
};

/// One forward + backward of the MoE layer (importance and load losses with
/// weight 0.1 each, as in the paper).
void moeLayerStep(Backend &b, LayerState &s, PhaseClock &clock) {
  const Config &c = s.c;
  int64_t T = c.T, d = c.d, n = c.n, k = c.k, A = c.T * c.k;
  const float lossWeight = 0.1f;
  // Forward.
  clock.run(GateGemm, [&] {
    b.gemm(false, false, T, n, d, 1.0f, s.x.get(), d, s.Wg.get(), n, 0.0f,
           s.clean.get(), n, GemmPrecision::F32);
    b.gemm(false, false, T, n, d, 1.0f, s.x.get(), d, s.Wn.get(), n, 0.0f,
           s.raw.get(), n, GemmPrecision::F32);
    if (s.zipf)
      b.biasAdd(T, n, s.clean.get(), s.zipfBias.get(), s.clean.get());
  });
  if (s.fusedRouter) {
    clock.run(FusedRouter, [&] {
      b.fusedRouteForward(T, n, k, s.clean.get(), s.raw.get(), 1e-2f, true,
                          /*seed=*/42, /*counter=*/1, /*elementOffset=*/0,
                          s.noisy.get(), s.noiseStd.get(), s.top.get(),
                          s.expert.get(), s.gate.get(), s.load.get(),
                          s.importance.get(), s.offset.get(),
                          s.positionOf.get(), s.tokenOfPosition.get());
    });
  } else {
    clock.run(TopK, [&] {
      b.noisyTopKForward(T, n, k, s.clean.get(), s.raw.get(), 1e-2f, true,
                         /*seed=*/42, /*counter=*/1, s.noisy.get(),
                         s.noiseStd.get(), s.top.get(), s.expert.get(),
                         s.gate.get(), /*elementOffset=*/0, nullptr);
    });
    clock.run(Balance, [&] {
      b.loadEstimateForward(T, n, k, s.clean.get(), s.noisy.get(),
                            s.noiseStd.get(), s.top.get(), nullptr,
                            s.load.get());
      b.importanceForward(A, n, s.expert.get(), s.gate.get(),
                          s.importance.get());
    });
    clock.run(Plan, [&] {
      b.buildDispatchPlan(T, n, A, /*rowPtr=*/nullptr, s.expert.get(),
                          s.offset.get(), s.positionOf.get(),
                          s.tokenOfPosition.get());
    });
  }
  clock.run(Balance, [&] {
    b.cvSquaredForward(n, s.importance.get(), lossWeight, s.loss.get());
    b.cvSquaredForward(n, s.load.get(), lossWeight, s.loss.get() + 1);
  });
  clock.run(Dispatch, [&] {
    b.dispatchForward(A, d, s.tokenOfPosition.get(), s.x.get(), s.buffer.get());
  });
  clock.run(ExpertGemm, [&] {
    if (s.equalRows)
      b.batchedMatmulForward(n, s.equalRows, d, d, s.equalOffset.get(),
                             s.buffer.get(), s.We.get(), s.expertOut.get(),
                             s.precision);
    else
      b.groupedMatmulForward(A, n, d, d, s.offset.get(), s.buffer.get(),
                             s.We.get(), s.expertOut.get(), s.precision);
  });
  clock.run(Combine, [&] {
    b.combineForward(T, A, d, /*rowPtr=*/nullptr, s.positionOf.get(),
                     s.gate.get(), s.expertOut.get(), s.y.get());
  });

  // Backward.
  clock.run(Combine, [&] {
    b.combineBackward(T, A, d, /*rowPtr=*/nullptr, s.positionOf.get(),
                      s.gate.get(), s.expertOut.get(), s.dy.get(),
                      s.dExpertOut.get(), s.dGate.get());
  });
  clock.run(ExpertGemm, [&] {
    if (s.equalRows)
      b.batchedMatmulBackward(n, s.equalRows, d, d, s.equalOffset.get(),
                              s.buffer.get(), s.We.get(), s.dExpertOut.get(),
                              s.dBuffer.get(), s.dWe.get(), s.precision);
    else
      b.groupedMatmulBackward(A, n, d, d, s.offset.get(), s.buffer.get(),
                              s.We.get(), s.dExpertOut.get(), s.dBuffer.get(),
                              s.dWe.get(), s.precision);
  });
  clock.run(Dispatch, [&] {
    b.dispatchBackward(T, A, d, /*rowPtr=*/nullptr, s.positionOf.get(),
                       s.dBuffer.get(), s.dx.get());
  });
  clock.run(Balance, [&] {
    b.cvSquaredBackward(n, s.importance.get(), lossWeight, s.dLoss.get(),
                        s.dImportance.get());
    b.cvSquaredBackward(n, s.load.get(), lossWeight, s.dLoss.get(),
                        s.dLoad.get());
  });
  if (s.fusedRouter) {
    clock.run(FusedRouter, [&] {
      b.fusedRouteBackward(T, n, k, s.clean.get(), s.raw.get(), s.noisy.get(),
                           s.noiseStd.get(), s.top.get(), s.expert.get(),
                           s.gate.get(), s.dGate.get(), s.dLoad.get(),
                           s.dImportance.get(), s.dClean.get(), s.dRaw.get());
    });
  } else {
    clock.run(Balance, [&] {
      b.importanceBackward(A, n, s.expert.get(), s.dImportance.get(),
                           s.dGateImportance.get());
      b.accumulate(s.dGateImportance.get(), s.dGate.get(), A);
    });
    clock.run(TopK, [&] {
      b.noisyTopKBackward(T, n, k, s.noisy.get(), s.clean.get(), s.raw.get(),
                          s.noiseStd.get(), s.expert.get(), s.gate.get(),
                          s.dGate.get(), s.dClean.get(), s.dRaw.get());
    });
    clock.run(Balance, [&] {
      b.loadEstimateBackward(T, n, k, s.clean.get(), s.noisy.get(), s.raw.get(),
                             s.noiseStd.get(), s.top.get(), nullptr,
                             s.dLoad.get(), s.dClean.get(), s.dRaw.get());
    });
  }
  clock.run(GateGemm, [&] {
    b.gemm(true, false, d, n, T, 1.0f, s.x.get(), d, s.dClean.get(), n, 0.0f,
           s.dWg.get(), n, GemmPrecision::F32);
    b.gemm(true, false, d, n, T, 1.0f, s.x.get(), d, s.dRaw.get(), n, 0.0f,
           s.dWn.get(), n, GemmPrecision::F32);
    b.gemm(false, true, T, d, n, 1.0f, s.dClean.get(), n, s.Wg.get(), n, 1.0f,
           s.dx.get(), d, GemmPrecision::F32);
    b.gemm(false, true, T, d, n, 1.0f, s.dRaw.get(), n, s.Wn.get(), n, 1.0f,
           s.dx.get(), d, GemmPrecision::F32);
  });
}

/// The dense reference: Y = X W, dX = dY W^T, dW = X^T dY on [T*k, d].
double denseStep(Backend &b, LayerState &s) {
  int64_t rows = s.c.T * s.c.k, d = s.c.d;
  Clock::time_point start = Clock::now();
  b.gemm(false, false, rows, d, d, 1.0f, s.denseX.get(), d, s.We.get(), d, 0.0f,
         s.denseY.get(), d, s.precision);
  b.gemm(false, true, rows, d, d, 1.0f, s.denseDy.get(), d, s.We.get(), d, 0.0f,
         s.denseDx.get(), d, s.precision);
  b.gemm(true, false, d, d, rows, 1.0f, s.denseX.get(), d, s.denseDy.get(), d,
         0.0f, s.denseDw.get(), d, s.precision);
  b.synchronize();
  return secondsSince(start);
}

/// One N x N x N GEMM at the options' precision, best of the repetitions:
/// what the backend's dense GEMM reaches, against the datasheet peak.
int densePeak(Backend &b, const Options &o) {
  int64_t n = o.densePeak;
  DeviceArray<float> A(b, n * n), B(b, n * n), C(b, n * n);
  A.randomize(1, 1.0f);
  B.randomize(2, 1.0f);
  double best = INFINITY;
  for (int rep = 0; rep <= o.reps; ++rep) { // the first is a warm-up
    Clock::time_point start = Clock::now();
    b.gemm(false, false, n, n, n, 1.0f, A.get(), n, B.get(), n, 0.0f, C.get(),
           n, o.precision);
    b.synchronize();
    if (rep > 0)
      best = std::min(best, secondsSince(start));
  }
  double tflops = 2.0 * n * n * n / best / 1e12;
  std::printf("dense-peak n=%lld precision=%s ms=%.2f tflops=%.1f",
              (long long)n, o.precisionName.c_str(), best * 1e3, tflops);
  if (o.peakTflops > 0)
    std::printf(" percent=%.1f", 100 * tflops / o.peakTflops);
  std::printf("\n");
  return 0;
}

std::vector<int64_t> parseList(const std::string &text) {
  std::vector<int64_t> values;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ','))
    values.push_back(std::stoll(item));
  if (values.empty())
    throw std::invalid_argument("empty list '" + text + "'");
  return values;
}

Options parseOptions(int argc, char **argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      o.help = true;
      return o;
    }
    if (i + 1 >= argc)
      throw std::invalid_argument("missing value after " + flag);
    std::string value = argv[++i];
    if (flag == "--tokens")
      o.tokens = std::stoll(value);
    else if (flag == "--dmodel")
      o.dmodel = std::stoll(value);
    else if (flag == "--experts")
      o.experts = parseList(value);
    else if (flag == "--k")
      o.ks = parseList(value);
    else if (flag == "--reps")
      o.reps = std::stoi(value);
    else if (flag == "--backend")
      o.backend = value;
    else if (flag == "--precision")
      o.precisionName = value;
    else if (flag == "--routing")
      o.routing = value;
    else if (flag == "--router" && (value == "fused" || value == "separate"))
      o.fusedRouter = value == "fused";
    else if (flag == "--router")
      throw std::invalid_argument("--router must be separate or fused, got '" +
                                  value + "'");
    else if (flag == "--dense-peak")
      o.densePeak = std::stoll(value);
    else if (flag == "--peak-tflops")
      o.peakTflops = std::stod(value);
    else if (flag == "--commit")
      o.commit = value;
    else if (flag == "--results")
      o.results = value;
    else
      throw std::invalid_argument("unknown flag " + flag);
  }
  if (o.tokens < 1 || o.dmodel < 1 || o.reps < 1)
    throw std::invalid_argument("--tokens, --dmodel and --reps must be >= 1");
  if (o.routing != "uniform" && o.routing != "zipf" && o.routing != "equal")
    throw std::invalid_argument(
        "--routing must be uniform, zipf or equal, got '" + o.routing + "'");
  if (o.densePeak < 0 || o.peakTflops < 0)
    throw std::invalid_argument("--dense-peak and --peak-tflops must be >= 0");
  if (o.backend != "cpu" && o.backend != "cuda")
    throw std::invalid_argument("--backend must be cpu or cuda, got '" +
                                o.backend + "'");
  if (o.precisionName == "f32")
    o.precision = GemmPrecision::F32;
  else if (o.precisionName == "tf32")
    o.precision = GemmPrecision::TF32;
  else if (o.precisionName == "bf16")
    o.precision = GemmPrecision::BF16;
  else
    throw std::invalid_argument("--precision must be f32, tf32 or bf16, got '" +
                                o.precisionName + "'");
  return o;
}

} // namespace

int main(int argc, char **argv) {
  Options options;
  try {
    options = parseOptions(argc, argv);
  } catch (const std::exception &e) {
    std::cerr << "moe-layer-bench: " << e.what() << "\n";
    return 2;
  }
  if (options.help) {
    std::printf(
        "usage: moe-layer-bench [--tokens T] [--dmodel d] [--experts "
        "8,64,512] [--k 4,8]\n"
        "         [--reps R] [--backend cpu|cuda] [--precision "
        "f32|tf32|bf16]\n"
        "         [--routing uniform|zipf|equal] [--router separate|fused]\n"
        "         [--commit HASH] [--results FILE]\n"
        "       moe-layer-bench --dense-peak N [--peak-tflops P] [--backend "
        "...] [--precision ...]\n");
    return 0;
  }
  std::unique_ptr<Backend> backend;
  std::string device;
  try {
    if (options.backend == "cuda") {
      backend = createCudaBackend(0);
      device = gpuModel() + ", cuda " + options.precisionName;
    } else {
      backend = createCpuBackend();
      device = cpuModel() + ", " + std::to_string(omp_get_max_threads()) +
               " threads";
    }
  } catch (const std::exception &e) {
    std::cerr << "moe-layer-bench: " << e.what() << "\n";
    return 1;
  }
  std::printf("device: %s\ncommit: %s\n", device.c_str(),
              options.commit.c_str());
  if (options.densePeak > 0)
    return densePeak(*backend, options);
  if (options.routing == "zipf")
    device += ", zipf routing";
  if (options.routing == "equal")
    device += ", equal segments";
  if (options.fusedRouter)
    device += ", fused router";

  for (int64_t n : options.experts)
    for (int64_t k : options.ks) {
      if (k > n)
        continue;
      Config c{options.tokens, options.dmodel, n, k};
      if (options.routing == "equal" && c.T * c.k % n != 0) {
        std::fprintf(stderr,
                     "moe-layer-bench: skipping n=%lld: T k = %lld "
                     "rows do not split into equal segments\n",
                     (long long)n, (long long)(c.T * c.k));
        continue;
      }
      LayerState state(*backend, c, options.precision,
                       options.routing == "zipf", options.routing == "equal");
      state.fusedRouter = options.fusedRouter;
      // Warm-up: page in every buffer, start the thread pools.
      PhaseClock warm{backend.get()};
      moeLayerStep(*backend, state, warm);
      denseStep(*backend, state);

      // Alternate the two so that both see the same machine load; keep the
      // fastest repetition of each.
      double bestMoe = INFINITY, bestDense = INFINITY;
      PhaseClock bestClock{backend.get()};
      for (int rep = 0; rep < options.reps; ++rep) {
        PhaseClock clock{backend.get()};
        Clock::time_point start = Clock::now();
        moeLayerStep(*backend, state, clock);
        double moe = secondsSince(start);
        if (moe < bestMoe) {
          bestMoe = moe;
          bestClock = clock;
        }
        bestDense = std::min(bestDense, denseStep(*backend, state));
      }

      double usefulFlops = 6.0 * c.T * c.k * c.d * c.d;
      double gateFlops = 12.0 * c.T * c.d * c.n;
      double ratio = bestDense / bestMoe;
      double routingShare = 1.0 - bestClock.seconds[ExpertGemm] / bestMoe;
      double gateShare = bestClock.seconds[GateGemm] / bestMoe;
      std::printf("\nT=%lld d=%lld n=%lld k=%lld: MoE %.1f ms (%.1f useful "
                  "GFLOP/s), dense %.1f ms (%.1f GFLOP/s), MoE/dense %.2f, "
                  "routing share %.1f%% (gate GEMMs %.1f%%, %.2f GFLOP)\n",
                  (long long)c.T, (long long)c.d, (long long)c.n,
                  (long long)c.k, bestMoe * 1e3, usefulFlops / bestMoe / 1e9,
                  bestDense * 1e3, usefulFlops / bestDense / 1e9, ratio,
                  100 * routingShare, 100 * gateShare, gateFlops / 1e9);
      for (int p = 0; p < NumPhases; ++p)
        if (bestClock.seconds[p] > 0) // phases of the other router never ran
          std::printf("  %-22s %8.2f ms  %5.1f%%\n", kPhaseNames[p],
                      bestClock.seconds[p] * 1e3,
                      100 * bestClock.seconds[p] / bestMoe);

      if (!options.results.empty()) {
        std::ofstream out(options.results, std::ios::app);
        if (!out) {
          std::cerr << "moe-layer-bench: cannot append to " << options.results
                    << "\n";
          return 1;
        }
        char row[512];
        std::snprintf(row, sizeof(row),
                      "| %s | %s | %s | %lld | %lld | %lld | %lld | %.1f | "
                      "%.1f | %.0f | %.2f | %.1f%% | %.1f%% |\n",
                      today().c_str(), options.commit.c_str(), device.c_str(),
                      (long long)c.T, (long long)c.d, (long long)c.n,
                      (long long)c.k, bestMoe * 1e3, bestDense * 1e3,
                      usefulFlops / bestDense / 1e9, ratio, 100 * routingShare,
                      100 * gateShare);
        out << row;
      }
    }
  return 0;
}
