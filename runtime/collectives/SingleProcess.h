//===- SingleProcess.h - The collectives of a single rank ------*- C++ -*-===//
//
// size() == 1: every reduction is the identity and every exchange a copy to
// self. Used when the program is not launched by mpirun; needs no MPI.
// Pointers are host memory (the copies are std::memcpy).
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_COLLECTIVES_SINGLEPROCESS_H
#define MOE_RUNTIME_COLLECTIVES_SINGLEPROCESS_H

#include "runtime/collectives/Collectives.h"

namespace moe::rt {

class SingleProcess final : public Collectives {
public:
  std::string name() const override;
  int rank() const override;
  int size() const override;
  void allReduceSum(float *data, int64_t count) override;
  void allReduceSum(int64_t *data, int64_t count) override;
  void allReduceSum(int32_t *data, int64_t count) override;
  void allGather(const void *send, size_t bytesPerRank, void *recv) override;
  void allToAll(const int32_t *send, int64_t countPerRank,
                int32_t *recv) override;
  void allToAll(const int64_t *send, int64_t countPerRank,
                int64_t *recv) override;
  /// Throws std::invalid_argument unless root == 0.
  void broadcast(void *data, size_t bytes, int root) override;
  void barrier() override;
  /// Copies sendCounts[0] rows; throws std::invalid_argument unless
  /// recvCounts[0] == sendCounts[0].
  void allToAllV(const float *send, const int64_t *sendCounts, int64_t rowWidth,
                 float *recv, const int64_t *recvCounts) override;
  void allToAllV(const int32_t *send, const int64_t *sendCounts,
                 int64_t rowWidth, int32_t *recv,
                 const int64_t *recvCounts) override;
};

} // namespace moe::rt

#endif // MOE_RUNTIME_COLLECTIVES_SINGLEPROCESS_H
