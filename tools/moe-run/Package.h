//===- Package.h - A compiled model: manifest, source, shared object -*- C++ -*-===//
//
// A package directory holds what moe-translate wrote: manifest.json and the
// source of the compiled functions (step.cpp for the CPU, step.cu for CUDA).
// Loading one validates the manifest, compiles the source into a shared
// object (cached by the SHA-256 of the source and the compile command) and
// resolves the functions it names.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TOOLS_MOE_RUN_PACKAGE_H
#define MOE_TOOLS_MOE_RUN_PACKAGE_H

#include "runtime/step/Step.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace moe::run {

/// One argument of a compiled function.
struct ArgumentInfo {
  std::string role; ///< "input", "param" or "state"
  std::string name;
  std::string dtype; ///< "f32", "i32" or "i64"
  std::vector<int64_t> shape;
  int64_t idBound = 0; ///< inputs: ids index [0, idBound)
  bool allowsPadding = false; ///< inputs: -1 marks padding (loss targets)
  std::string init;    ///< params: zeros, constant, normal, uniform, ...
  double initScale = 0;
  /// Params and state: split along dim 0 over the ranks ("shard" in the
  /// manifest); rank r holds rows [r n/R, (r+1) n/R). `shape` stays global.
  bool sharded = false;

  /// Of the global tensor.
  int64_t elements() const;
  size_t bytes() const;
  /// Of the part one of `ranks` ranks holds: the global tensor unless
  /// sharded. Throws std::runtime_error when dim 0 does not divide.
  std::vector<int64_t> localShape(int ranks) const;
  int64_t localElements(int ranks) const;
  size_t localBytes(int ranks) const;
};

/// One result: kind "loss", "lr", "param", "state" or "grad".
struct ResultInfo {
  std::string kind;
  std::string name;
};

struct FunctionInfo {
  std::string symbol;
  int64_t arenaBytes = 0;
  double flops = 0;
  std::vector<ArgumentInfo> arguments;
  std::vector<ResultInfo> results;
  /// Experts of each dispatch plan, in program order.
  std::vector<int64_t> planExperts;
  rt::step::CompiledFunction entry = nullptr;

  const ArgumentInfo *input(const std::string &name) const;
  int resultIndex(const std::string &kind, const std::string &name = "") const;
};

class Package {
public:
  /// Reads and validates <dir>/manifest.json; throws std::runtime_error
  /// with a one-line message naming the file.
  static Package open(const std::string &dir);

  /// Compiles the source (or reuses the cached object) and resolves every
  /// function's entry point. `verbose` prints the compile command.
  void load(bool verbose);

  const std::string &directory() const { return dir; }
  const std::string &model() const { return modelName; }
  /// "cpu" (step.cpp) or "cuda" (step.cu).
  const std::string &target() const { return sourceTarget; }
  bool hasAdam() const { return optimizer == "adam"; }
  /// "train_step", "eval" or "model"; null when the package lacks it.
  const FunctionInfo *function(const std::string &role) const;
  /// The training step's parameters and optimizer state, in argument order.
  std::vector<const ArgumentInfo *> trainableState() const;
  /// Whether some parameter or state tensor is split over the ranks.
  bool hasShardedTensors() const;

private:
  std::string dir, modelName, optimizer, sourcePath, sourceTarget;
  std::map<std::string, FunctionInfo> functions;
  void *library = nullptr;
};

} // namespace moe::run

#endif // MOE_TOOLS_MOE_RUN_PACKAGE_H
