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
#define MOE_COLLECTIVE(Ret, Name, Params, Args) Ret Name Params override;
#include "runtime/collectives/Collectives.def"
};

} // namespace moe::rt

#endif // MOE_RUNTIME_COLLECTIVES_SINGLEPROCESS_H
