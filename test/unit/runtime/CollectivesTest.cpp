//===- CollectivesTest.cpp - The collectives on 1, 2 and 4 ranks ----------===//
//
// One binary, run alone (SingleProcess) and as every rank of an mpirun job
// (MpiCollectives; NcclCollectives where every rank has a GPU). Each rank
// derives every other rank's inputs from (rank, index), so it checks what it
// receives against values computed locally, never against another rank's
// claim. Every rank runs every collective in the same order whatever its
// checks found (EXPECT, not ASSERT, before a collective), so a failure on one
// rank cannot make the others wait.
//
// Rank 0 prints the usual gtest report; the other ranks print only their
// failures. gtest's exit code on each rank becomes mpirun's exit code, so
// ctest fails when any rank fails.
//
//===----------------------------------------------------------------------===//

#include "runtime/collectives/Collectives.h"
#include "runtime/collectives/SingleProcess.h"

#ifdef MOE_COLLECTIVES_HAS_NCCL
#include <cuda_runtime.h>
#endif

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace moe;

namespace {

//===----------------------------------------------------------------------===//
// The world and the deterministic inputs of every rank
//===----------------------------------------------------------------------===//

/// The collectives of the whole job ("auto": MPI under mpirun, else single).
std::unique_ptr<rt::Collectives> gWorld;

rt::Collectives &world() { return *gWorld; }

uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t key(uint64_t a, uint64_t b, uint64_t c = 0, uint64_t d = 0) {
  return splitmix(splitmix(splitmix(splitmix(a) ^ b) ^ c) ^ d);
}

/// A float of magnitude 2^-20 .. 2^20 and random sign: sums of such values
/// round differently in different orders, so the tests can tell orders
/// apart.
float valueOf(uint64_t k) {
  uint64_t h = splitmix(k);
  float mantissa = static_cast<float>(h & 0xffffff) / 16777216.0f * 2 - 1;
  int exponent = static_cast<int>((h >> 24) % 41) - 20;
  return std::ldexp(mantissa, exponent);
}

/// Element i of rank r's allReduce input.
float reduceInput(int r, int64_t i, uint64_t salt) {
  return valueOf(key(1, salt, r, i));
}

/// Rows that rank `from` sends to rank `to` in round `round`: 0-5, zero for
/// about a third of the pairs. Rank size-1 sends nothing at all in round 0,
/// and rank 1 sends nothing to rank 0; in round 1 rank size/2 has no tokens
/// (sends and receives nothing); in round 2 nobody sends anything.
int64_t rowsBetween(int from, int to, int size, int round) {
  if (round == 2)
    return 0;
  if (round == 0 && size > 1 && (from == size - 1 || (from == 1 && to == 0)))
    return 0;
  if (round == 1 && size > 1 && (from == size / 2 || to == size / 2))
    return 0;
  uint64_t h = key(2, round, from, to) % 9;
  return h < 3 ? 0 : static_cast<int64_t>(h - 3);
}

float floatRow(int from, int to, int64_t row, int64_t col) {
  return valueOf(key(3, from, to, row * 1000 + col));
}

int32_t intRow(int from, int to, int64_t row, int64_t col) {
  return from * 1000000 + to * 10000 + static_cast<int32_t>(row * 10 + col);
}

/// Sets (or unsets, for nullopt) an environment variable for one scope.
class ScopedEnv {
public:
  ScopedEnv(const char *name, std::optional<std::string> value) : name_(name) {
    if (const char *old = std::getenv(name))
      old_ = old;
    set(value);
  }
  ~ScopedEnv() { set(old_); }

private:
  void set(const std::optional<std::string> &value) {
    if (value)
      setenv(name_, value->c_str(), 1);
    else
      unsetenv(name_);
  }
  const char *name_;
  std::optional<std::string> old_;
};

//===----------------------------------------------------------------------===//
// Device selection (pure: no collective)
//===----------------------------------------------------------------------===//

TEST(DeviceSelection, LocalRankModuloDevices) {
  EXPECT_EQ(rt::selectDevice(-1, 0, 8), 0);
  EXPECT_EQ(rt::selectDevice(-1, 3, 8), 3);
  EXPECT_EQ(rt::selectDevice(-1, 9, 8), 1);
  EXPECT_EQ(rt::selectDevice(-1, 5, 1), 0);
  // Unknown local rank: the first device.
  EXPECT_EQ(rt::selectDevice(-1, -1, 4), 0);
}

TEST(DeviceSelection, ExplicitDeviceWins) {
  EXPECT_EQ(rt::selectDevice(2, 5, 8), 2);
  EXPECT_EQ(rt::selectDevice(0, 3, 8), 0);
  // Even past the visible devices: the backend then names it in its error.
  EXPECT_EQ(rt::selectDevice(9, 0, 8), 9);
  EXPECT_EQ(rt::selectDevice(1, 0, 0), 1);
}

TEST(DeviceSelection, LauncherLocalRank) {
  // Saved and restored: the mpirun job's own variables matter to the others.
  ScopedEnv ompi("OMPI_COMM_WORLD_LOCAL_RANK", std::nullopt);
  ScopedEnv mpich("MPI_LOCALRANKID", std::nullopt);
  ScopedEnv mvapich("MV2_COMM_WORLD_LOCAL_RANK", std::nullopt);
  ScopedEnv slurm("SLURM_LOCALID", std::nullopt);
  EXPECT_EQ(rt::launcherLocalRank(), -1);
  {
    ScopedEnv set("SLURM_LOCALID", "2");
    EXPECT_EQ(rt::launcherLocalRank(), 2);
    ScopedEnv first("OMPI_COMM_WORLD_LOCAL_RANK", "3");
    EXPECT_EQ(rt::launcherLocalRank(), 3);
  }
  ScopedEnv junk("MPI_LOCALRANKID", "x1");
  EXPECT_EQ(rt::launcherLocalRank(), -1);
}

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

TEST(Collectives, RankAndSize) {
  EXPECT_GE(world().size(), 1);
  EXPECT_GE(world().rank(), 0);
  EXPECT_LT(world().rank(), world().size());
  if (const char *size = std::getenv("OMPI_COMM_WORLD_SIZE")) {
    EXPECT_EQ(world().name(), "mpi");
    EXPECT_EQ(world().size(), std::atoi(size));
    EXPECT_EQ(world().rank(), std::atoi(std::getenv("OMPI_COMM_WORLD_RANK")));
  } else {
    EXPECT_EQ(world().name(), "single");
  }
  // Every rank sees the same size and a distinct rank.
  std::vector<int32_t> ranks(world().size());
  int32_t mine = world().rank();
  world().allGather(&mine, sizeof(mine), ranks.data());
  for (int r = 0; r < world().size(); ++r)
    EXPECT_EQ(ranks[r], r);
  // Control messages always travel in host memory.
  std::vector<int32_t> hostRanks(world().size(), -1);
  world().allGatherHost(&mine, sizeof(mine), hostRanks.data());
  EXPECT_EQ(hostRanks, ranks);
}

/// The float sum equals the rank-order sum of the inputs computed here,
/// bit for bit, and every rank holds the same bits.
TEST(Collectives, AllReduceFloatIsTheRankOrderSum) {
  const int size = world().size();
  int64_t differsFromReverse = 0;
  for (int64_t count : {0, 1, 3, 5, 1000, 65537}) {
    SCOPED_TRACE("count " + std::to_string(count));
    std::vector<float> data(count), expected(count);
    for (int64_t i = 0; i < count; ++i) {
      data[i] = reduceInput(world().rank(), i, count);
      float sum = reduceInput(0, i, count);
      for (int r = 1; r < size; ++r)
        sum += reduceInput(r, i, count);
      expected[i] = sum;
      float reverse = reduceInput(size - 1, i, count);
      for (int r = size - 2; r >= 0; --r)
        reverse += reduceInput(r, i, count);
      differsFromReverse += std::memcmp(&sum, &reverse, sizeof(float)) != 0;
    }
    world().allReduceSum(data.data(), count);
    int64_t mismatches = 0, first = -1;
    for (int64_t i = 0; i < count; ++i)
      if (std::memcmp(&data[i], &expected[i], sizeof(float)) != 0 &&
          mismatches++ == 0)
        first = i;
    EXPECT_EQ(mismatches, 0) << "first at " << first << ": " << data[first]
                             << " != " << expected[first];

    // Same bits on every rank.
    std::vector<float> all(count * size);
    world().allGather(data.data(), count * sizeof(float), all.data());
    // count 0 leaves data() null, and memcmp's pointers must not be null
    // even for no bytes (UBSan's nonnull-attribute check).
    for (int r = 0; r < size; ++r)
      EXPECT_TRUE(count == 0 || std::memcmp(all.data() + r * count,
                                            data.data(),
                                            count * sizeof(float)) == 0)
          << "rank " << r << " got different bits";

    // And the same bits again on a second call.
    std::vector<float> again(count);
    for (int64_t i = 0; i < count; ++i)
      again[i] = reduceInput(world().rank(), i, count);
    world().allReduceSum(again.data(), count);
    EXPECT_TRUE(count == 0 || std::memcmp(again.data(), data.data(),
                                          count * sizeof(float)) == 0);
  }
  // With three or more ranks the order matters, so the check above has
  // teeth (two summands commute).
  if (size >= 3) {
    EXPECT_GT(differsFromReverse, 0);
  }
}

/// Longer than one piece of the MPI implementation (2^24 floats), so the
/// pieces join up.
TEST(Collectives, AllReduceFloatAcrossPieces) {
  const int size = world().size();
  const int64_t count = (int64_t(1) << 24) + 4099;
  std::vector<float> data(count);
  for (int64_t i = 0; i < count; ++i)
    data[i] = reduceInput(world().rank(), i, 7);
  world().allReduceSum(data.data(), count);
  int64_t mismatches = 0;
  for (int64_t i = 0; i < count; ++i) {
    float sum = reduceInput(0, i, 7);
    for (int r = 1; r < size; ++r)
      sum += reduceInput(r, i, 7);
    mismatches += std::memcmp(&sum, &data[i], sizeof(float)) != 0;
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(Collectives, AllReduceIntegers) {
  const int size = world().size();
  const int rank = world().rank();
  for (int64_t count : {0, 1, 17, 4096}) {
    std::vector<int64_t> wide(count);
    std::vector<int32_t> narrow(count);
    for (int64_t i = 0; i < count; ++i) {
      wide[i] = (int64_t(rank + 1) << 40) + i * (rank + 3);
      narrow[i] = static_cast<int32_t>((rank + 1) * i % 1000) - 500;
    }
    world().allReduceSum(wide.data(), count);
    world().allReduceSum(narrow.data(), count);
    int64_t wideBad = 0, narrowBad = 0;
    for (int64_t i = 0; i < count; ++i) {
      int64_t w = 0, n = 0;
      for (int r = 0; r < size; ++r) {
        w += (int64_t(r + 1) << 40) + i * (r + 3);
        n += static_cast<int32_t>((r + 1) * i % 1000) - 500;
      }
      wideBad += wide[i] != w;
      narrowBad += narrow[i] != n;
    }
    EXPECT_EQ(wideBad, 0) << "count " << count;
    EXPECT_EQ(narrowBad, 0) << "count " << count;
  }
}

//===----------------------------------------------------------------------===//
// Fixed-size exchanges
//===----------------------------------------------------------------------===//

TEST(Collectives, AllGather) {
  const int size = world().size();
  for (size_t bytes : {size_t(0), size_t(1), size_t(13), size_t(100000)}) {
    std::vector<unsigned char> mine(bytes), all(bytes * size, 0xEE);
    for (size_t j = 0; j < bytes; ++j)
      mine[j] = static_cast<unsigned char>(key(4, world().rank(), j));
    world().allGather(bytes ? mine.data() : nullptr, bytes,
                      bytes ? all.data() : nullptr);
    int64_t bad = 0;
    for (int r = 0; r < size; ++r)
      for (size_t j = 0; j < bytes; ++j)
        bad += all[r * bytes + j] != static_cast<unsigned char>(key(4, r, j));
    EXPECT_EQ(bad, 0) << bytes << " bytes";
  }
}

TEST(Collectives, BroadcastFromEveryRoot) {
  const int size = world().size();
  for (int root = 0; root < size; ++root) {
    std::vector<unsigned char> data(4097);
    for (size_t j = 0; j < data.size(); ++j)
      data[j] = world().rank() == root
                    ? static_cast<unsigned char>(key(5, root, j))
                    : 0xEE;
    world().broadcast(data.data(), data.size(), root);
    int64_t bad = 0;
    for (size_t j = 0; j < data.size(); ++j)
      bad += data[j] != static_cast<unsigned char>(key(5, root, j));
    EXPECT_EQ(bad, 0) << "root " << root;
    world().broadcast(nullptr, 0, root);
  }
}

TEST(Collectives, AllToAllCounts) {
  const int size = world().size();
  const int rank = world().rank();
  const int64_t perRank = 3;
  std::vector<int32_t> send(size * perRank), recv(size * perRank, -1);
  std::vector<int64_t> send64(size * perRank), recv64(size * perRank, -1);
  for (int d = 0; d < size; ++d)
    for (int64_t j = 0; j < perRank; ++j) {
      send[d * perRank + j] = rank * 1000 + d * 10 + static_cast<int32_t>(j);
      send64[d * perRank + j] = (int64_t(rank) << 40) + d * 10 + j;
    }
  world().allToAll(send.data(), perRank, recv.data());
  world().allToAll(send64.data(), perRank, recv64.data());
  for (int s = 0; s < size; ++s)
    for (int64_t j = 0; j < perRank; ++j) {
      EXPECT_EQ(recv[s * perRank + j], s * 1000 + rank * 10 + j);
      EXPECT_EQ(recv64[s * perRank + j], (int64_t(s) << 40) + rank * 10 + j);
    }
  world().allToAll(static_cast<const int32_t *>(nullptr), 0, nullptr);
}

TEST(Collectives, Barrier) {
  for (int i = 0; i < 3; ++i)
    world().barrier();
}

//===----------------------------------------------------------------------===//
// Variable-size row exchange
//===----------------------------------------------------------------------===//

/// One token dispatch and its return trip: the counts are exchanged with
/// allToAll (each rank knows only what it sends), the rows with allToAllV,
/// and sending the received rows back reproduces what was sent.
template <typename T>
void checkRowExchange(int round, int64_t rowWidth,
                      T (*rowValue)(int, int, int64_t, int64_t)) {
  const int size = world().size();
  const int rank = world().rank();
  SCOPED_TRACE("round " + std::to_string(round) + ", row width " +
               std::to_string(rowWidth));

  std::vector<int64_t> sendCounts(size), recvCounts(size, -1);
  for (int d = 0; d < size; ++d)
    sendCounts[d] = rowsBetween(rank, d, size, round);
  world().allToAll(sendCounts.data(), 1, recvCounts.data());
  for (int s = 0; s < size; ++s)
    EXPECT_EQ(recvCounts[s], rowsBetween(s, rank, size, round)) << "from " << s;
  // Go on with the known counts so that every rank stays in step.
  for (int s = 0; s < size; ++s)
    recvCounts[s] = rowsBetween(s, rank, size, round);

  int64_t sendRows =
      std::accumulate(sendCounts.begin(), sendCounts.end(), int64_t(0));
  int64_t recvRows =
      std::accumulate(recvCounts.begin(), recvCounts.end(), int64_t(0));
  std::vector<T> send(sendRows * rowWidth), recv(recvRows * rowWidth);
  int64_t at = 0;
  for (int d = 0; d < size; ++d)
    for (int64_t row = 0; row < sendCounts[d]; ++row)
      for (int64_t col = 0; col < rowWidth; ++col)
        send[at++] = rowValue(rank, d, row, col);
  std::fill(recv.begin(), recv.end(), T(-7));

  // A rank without rows passes null pointers.
  world().allToAllV(sendRows ? send.data() : nullptr, sendCounts.data(),
                    rowWidth, recvRows ? recv.data() : nullptr,
                    recvCounts.data());
  int64_t bad = 0;
  at = 0;
  for (int s = 0; s < size; ++s)
    for (int64_t row = 0; row < recvCounts[s]; ++row)
      for (int64_t col = 0; col < rowWidth; ++col) {
        T want = rowValue(s, rank, row, col);
        bad += std::memcmp(&recv[at++], &want, sizeof(T)) != 0;
      }
  EXPECT_EQ(bad, 0);

  // The return trip (the combine step of expert parallelism).
  std::vector<T> back(sendRows * rowWidth, T(-7));
  world().allToAllV(recvRows ? recv.data() : nullptr, recvCounts.data(),
                    rowWidth, sendRows ? back.data() : nullptr,
                    sendCounts.data());
  // A rank without rows has null data(): no memcmp (its pointers must not
  // be null even for no bytes).
  EXPECT_TRUE(send.empty() || std::memcmp(back.data(), send.data(),
                                          send.size() * sizeof(T)) == 0);
}

float floatRowValue(int from, int to, int64_t row, int64_t col) {
  return floatRow(from, to, row, col);
}
int32_t intRowValue(int from, int to, int64_t row, int64_t col) {
  return intRow(from, to, row, col);
}

TEST(Collectives, AllToAllVFloatRows) {
  for (int round = 0; round < 3; ++round)
    for (int64_t width : {1, 5, 64})
      checkRowExchange<float>(round, width, floatRowValue);
}

TEST(Collectives, AllToAllVInt32Rows) {
  for (int round = 0; round < 3; ++round)
    for (int64_t width : {1, 3})
      checkRowExchange<int32_t>(round, width, intRowValue);
}

/// Zero-width rows move nothing and need no buffers.
TEST(Collectives, AllToAllVZeroWidth) {
  std::vector<int64_t> counts(world().size(), 2);
  world().allToAllV(static_cast<const float *>(nullptr), counts.data(), 0,
                    nullptr, counts.data());
  world().barrier();
}

//===----------------------------------------------------------------------===//
// Arguments, factory, settings
//===----------------------------------------------------------------------===//

/// Every rank makes the same mistake, so each throws on its own before
/// anything is sent.
TEST(Collectives, RejectsBadArguments) {
  float x = 0;
  EXPECT_THROW(world().allReduceSum(&x, -1), std::invalid_argument);
  EXPECT_THROW(world().broadcast(&x, sizeof(x), world().size()),
               std::invalid_argument);
  EXPECT_THROW(world().broadcast(&x, sizeof(x), -1), std::invalid_argument);
  std::vector<int64_t> counts(world().size(), 0), negative(world().size(), 0);
  negative[0] = -1;
  EXPECT_THROW(world().allToAllV(&x, negative.data(), 1, &x, counts.data()),
               std::invalid_argument);
  EXPECT_THROW(world().allToAllV(&x, counts.data(), -1, &x, counts.data()),
               std::invalid_argument);
  EXPECT_THROW(world().allToAllV(&x, nullptr, 1, &x, counts.data()),
               std::invalid_argument);
  // Still usable afterwards.
  world().barrier();
}

TEST(Collectives, SingleProcessCopies) {
  rt::SingleProcess single;
  EXPECT_EQ(single.size(), 1);
  EXPECT_EQ(single.rank(), 0);
  std::vector<float> data = {1.5f, -2.0f};
  single.allReduceSum(data.data(), 2);
  EXPECT_EQ(data, (std::vector<float>{1.5f, -2.0f}));
  std::vector<float> rows = {1, 2, 3, 4, 5, 6}, got(6, 0);
  int64_t three = 3;
  single.allToAllV(rows.data(), &three, 2, got.data(), &three);
  EXPECT_EQ(got, rows);
  int64_t two = 2;
  EXPECT_THROW(single.allToAllV(rows.data(), &three, 2, got.data(), &two),
               std::invalid_argument);
  EXPECT_THROW(single.broadcast(data.data(), 8, 1), std::invalid_argument);
  int32_t counts[2] = {4, 5}, out[2] = {0, 0};
  single.allToAll(counts, 2, out);
  EXPECT_EQ(out[1], 5);
  single.barrier();
}

TEST(Collectives, Factory) {
  EXPECT_THROW(rt::createCollectives("bogus"), std::invalid_argument);
  EXPECT_EQ(rt::createCollectives("single")->size(), 1);
  EXPECT_TRUE(rt::collectivesCompiled("single"));
  if (!rt::collectivesCompiled("mpi")) {
    try {
      rt::createCollectives("mpi");
      ADD_FAILURE() << "\"mpi\" without MPI must throw";
    } catch (const std::runtime_error &error) {
      EXPECT_NE(std::string(error.what()).find("without MPI"),
                std::string::npos)
          << error.what();
    }
  } else {
    // Collective: a second communicator beside the world's (every rank
    // creates it, also outside mpirun, where MPI starts as a singleton).
    auto mpi = rt::createCollectives("mpi");
    EXPECT_EQ(mpi->name(), "mpi");
    EXPECT_EQ(mpi->size(), world().size());
    EXPECT_EQ(mpi->rank(), world().rank());
    float one = 1;
    mpi->allReduceSum(&one, 1);
    EXPECT_EQ(one, static_cast<float>(world().size()));
  }
  if (!rt::collectivesCompiled("nccl")) {
    EXPECT_THROW(rt::createCollectives("nccl"), std::runtime_error);
  }
}

TEST(Collectives, TimeoutSetting) {
  {
    ScopedEnv env("MOE_COLLECTIVE_TIMEOUT_S", std::nullopt);
    EXPECT_EQ(rt::collectiveTimeoutSeconds(), 120.0);
  }
  {
    ScopedEnv env("MOE_COLLECTIVE_TIMEOUT_S", "2.5");
    EXPECT_EQ(rt::collectiveTimeoutSeconds(), 2.5);
  }
  for (const char *bad : {"", "abc", "0", "-3", "5s", "inf", "nan"}) {
    ScopedEnv env("MOE_COLLECTIVE_TIMEOUT_S", std::string(bad));
    EXPECT_THROW(rt::collectiveTimeoutSeconds(), std::invalid_argument) << bad;
  }
}

//===----------------------------------------------------------------------===//
// NCCL (every rank needs its own GPU; skipped otherwise)
//===----------------------------------------------------------------------===//

#ifdef MOE_COLLECTIVES_HAS_NCCL
template <typename T> struct DeviceArray {
  explicit DeviceArray(const std::vector<T> &host) : count(host.size()) {
    EXPECT_EQ(cudaMalloc(&ptr, std::max<size_t>(1, count) * sizeof(T)),
              cudaSuccess);
    EXPECT_EQ(
        cudaMemcpy(ptr, host.data(), count * sizeof(T), cudaMemcpyHostToDevice),
        cudaSuccess);
  }
  ~DeviceArray() { cudaFree(ptr); }
  std::vector<T> toHost() const {
    std::vector<T> host(count);
    EXPECT_EQ(
        cudaMemcpy(host.data(), ptr, count * sizeof(T), cudaMemcpyDeviceToHost),
        cudaSuccess);
    return host;
  }
  T *ptr = nullptr;
  size_t count;
};
#endif

/// The NCCL sum is the same rank-order sum as the MPI one, bit for bit, and
/// the row exchange works on device memory.
TEST(CollectivesNccl, MatchesTheHostResults) {
  if (!rt::collectivesCompiled("nccl"))
    GTEST_SKIP() << "NCCL collectives not compiled";
#ifdef MOE_COLLECTIVES_HAS_NCCL
  const int size = world().size();
  const int rank = world().rank();
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess)
    devices = 0;
  // All ranks must agree, since creating the communicator is collective.
  int32_t usable = devices >= size ? 1 : 0;
  world().allReduceSum(&usable, 1);
  if (usable != size)
    GTEST_SKIP() << "needs one GPU per rank (this rank sees " << devices << ")";

  auto nccl = rt::createCollectives("nccl");
  EXPECT_EQ(nccl->size(), size);
  EXPECT_EQ(nccl->rank(), rank);

  const int64_t count = 100003;
  std::vector<float> host(count), expected(count);
  for (int64_t i = 0; i < count; ++i) {
    host[i] = reduceInput(rank, i, 11);
    float sum = reduceInput(0, i, 11);
    for (int r = 1; r < size; ++r)
      sum += reduceInput(r, i, 11);
    expected[i] = sum;
  }
  DeviceArray<float> data(host);
  nccl->allReduceSum(data.ptr, count);
  std::vector<float> got = data.toHost();
  EXPECT_EQ(std::memcmp(got.data(), expected.data(), count * sizeof(float)), 0);

  std::vector<int64_t> wide(5, rank + 1);
  DeviceArray<int64_t> wideDevice(wide);
  nccl->allReduceSum(wideDevice.ptr, 5);
  EXPECT_EQ(wideDevice.toHost()[4], int64_t(size) * (size + 1) / 2);

  const int64_t width = 7;
  std::vector<int64_t> sendCounts(size), recvCounts(size);
  for (int r = 0; r < size; ++r) {
    sendCounts[r] = rowsBetween(rank, r, size, 0);
    recvCounts[r] = rowsBetween(r, rank, size, 0);
  }
  std::vector<float> send, expectRecv;
  for (int d = 0; d < size; ++d)
    for (int64_t row = 0; row < sendCounts[d]; ++row)
      for (int64_t col = 0; col < width; ++col)
        send.push_back(floatRow(rank, d, row, col));
  for (int s = 0; s < size; ++s)
    for (int64_t row = 0; row < recvCounts[s]; ++row)
      for (int64_t col = 0; col < width; ++col)
        expectRecv.push_back(floatRow(s, rank, row, col));
  DeviceArray<float> sendDevice(send);
  DeviceArray<float> recvDevice(std::vector<float>(expectRecv.size(), -7));
  nccl->allToAllV(sendDevice.ptr, sendCounts.data(), width, recvDevice.ptr,
                  recvCounts.data());
  EXPECT_EQ(recvDevice.toHost(), expectRecv);

  std::vector<int32_t> block(3, rank), gathered(3 * size, -1);
  DeviceArray<int32_t> blockDevice(block), gatheredDevice(gathered);
  nccl->allGather(blockDevice.ptr, 3 * sizeof(int32_t), gatheredDevice.ptr);
  gathered = gatheredDevice.toHost();
  for (int r = 0; r < size; ++r)
    EXPECT_EQ(gathered[3 * r + 2], r);
  // Control messages go over MPI, in host memory.
  std::vector<int32_t> hostGathered(3 * size, -1);
  nccl->allGatherHost(block.data(), 3 * sizeof(int32_t), hostGathered.data());
  EXPECT_EQ(hostGathered, gathered);

  std::vector<int32_t> bcast(9, rank == 0 ? 42 : -1);
  DeviceArray<int32_t> bcastDevice(bcast);
  nccl->broadcast(bcastDevice.ptr, 9 * sizeof(int32_t), 0);
  EXPECT_EQ(bcastDevice.toHost()[8], 42);
  nccl->barrier();
#endif
}

//===----------------------------------------------------------------------===//
// Failures: these run last, since they leave communicators behind
//===----------------------------------------------------------------------===//

/// One rank skips a collective: the others must throw the timeout error
/// after the configured time. The skipping rank then joins late, which lets
/// the abandoned operation complete everywhere, so the process still
/// finalises MPI cleanly.
TEST(CollectivesTimeout, SkippedRankMakesTheOthersThrow) {
  if (world().size() < 2 || world().name() != "mpi")
    GTEST_SKIP() << "needs at least two MPI ranks";
  const int size = world().size();
  const int rank = world().rank();
  const int skipper = size - 1;

  std::unique_ptr<rt::Collectives> quick;
  {
    ScopedEnv env("MOE_COLLECTIVE_TIMEOUT_S", "1");
    quick = rt::createCollectives("mpi");
  }
  std::vector<int64_t> sendCounts(size, 2), recvCounts(size, 2);
  std::vector<float> send(2 * size), recv(2 * size, -7);
  for (int d = 0; d < size; ++d)
    for (int row = 0; row < 2; ++row)
      send[2 * d + row] = floatRow(rank, d, row, 0);

  if (rank != skipper) {
    auto start = std::chrono::steady_clock::now();
    std::string message;
    try {
      quick->allToAllV(send.data(), sendCounts.data(), 1, recv.data(),
                       recvCounts.data());
      ADD_FAILURE() << "allToAllV completed without rank " << skipper;
    } catch (const std::runtime_error &error) {
      message = error.what();
    }
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    EXPECT_NE(message.find("collective allToAllV timed out after 1 s: a rank "
                           "is unresponsive or died"),
              std::string::npos)
        << message;
    EXPECT_GE(seconds, 1.0);
    EXPECT_LT(seconds, 30.0); // generous: 4 ranks may share 2 busy cores
    // The object refuses further work.
    try {
      quick->barrier();
      ADD_FAILURE() << "barrier after a timeout must throw";
    } catch (const std::runtime_error &error) {
      EXPECT_NE(std::string(error.what()).find("unusable"), std::string::npos)
          << error.what();
    }
    EXPECT_EQ(rt::unrecoveredCollectiveFailures(), 1);
  }

  // The skipper waits here until the others have given up, then joins the
  // abandoned operation; the others' polling in the second barrier lets it
  // complete on their side too.
  world().barrier();
  if (rank == skipper) {
    quick->allToAllV(send.data(), sendCounts.data(), 1, recv.data(),
                     recvCounts.data());
  }
  world().barrier();
  quick.reset(); // waits (briefly) for the abandoned requests
  EXPECT_EQ(rt::unrecoveredCollectiveFailures(), 0);
  // The late operation delivered the right rows everywhere.
  int64_t bad = 0;
  for (int s = 0; s < size; ++s)
    for (int row = 0; row < 2; ++row)
      bad += recv[2 * s + row] != floatRow(s, rank, row, 0);
  EXPECT_EQ(bad, 0);
  world().barrier();
}

/// Run only by the ctest Collectives.rankDies.* (with
/// --gtest_also_run_disabled_tests): the last rank kills itself before an
/// allToAllV. Open MPI's mpirun then ends the job; should it not (e.g. with
/// --enable-recovery), the other ranks throw the timeout error. Either way
/// the job fails, and it must end within the ctest timeout.
TEST(CollectivesFailure, DISABLED_RankDiesDuringAllToAllV) {
  const int size = world().size();
  const int rank = world().rank();
  std::vector<int64_t> counts(size, 1);
  std::vector<float> send(size, 1.0f), recv(size);
  world().barrier();
  auto start = std::chrono::steady_clock::now();
  if (rank == size - 1) {
    std::fprintf(stderr, "[rank %d] killing myself (SIGKILL)\n", rank);
    std::raise(SIGKILL);
  }
  try {
    world().allToAllV(send.data(), counts.data(), 1, recv.data(),
                      counts.data());
    ADD_FAILURE() << "allToAllV completed without the dead rank";
  } catch (const std::runtime_error &error) {
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    std::fprintf(stderr, "[rank %d] allToAllV threw after %.1f s: %s\n", rank,
                 seconds, error.what());
    FAIL() << error.what();
  }
}

//===----------------------------------------------------------------------===//
// Reporting
//===----------------------------------------------------------------------===//

/// Replaces gtest's report on ranks other than 0: only failures, prefixed
/// with the rank.
class RankFailurePrinter : public testing::EmptyTestEventListener {
public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const testing::TestPartResult &result) override {
    if (result.failed())
      std::fprintf(stderr, "[rank %d] %s:%d: Failure\n%s\n", rank_,
                   result.file_name() ? result.file_name() : "?",
                   result.line_number(), result.message());
  }
  void OnTestEnd(const testing::TestInfo &info) override {
    if (info.result()->Failed())
      std::fprintf(stderr, "[rank %d] FAILED %s.%s\n", rank_,
                   info.test_suite_name(), info.name());
  }

private:
  int rank_;
};

} // namespace

int main(int argc, char **argv) {
  testing::InitGoogleTest(&argc, argv);
  gWorld = rt::createCollectives("auto");
  if (gWorld->rank() != 0) {
    auto &listeners = testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new RankFailurePrinter(gWorld->rank()));
  }
  int result = RUN_ALL_TESTS();
  gWorld.reset();
  return result;
}
