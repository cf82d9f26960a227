//===- Package.h - A compiled model: manifest, source, library --*- C++ -*-===//
//
// A package directory holds what moe-translate wrote: manifest.json and the
// source of the compiled functions (step.cpp for the CPU, step.cu for CUDA).
// Loading one validates the manifest, compiles the source into a shared
// object (cached by the SHA-256 of the source, the compile command and the
// runtime's ABI headers) and resolves the functions it names. Roles and
// kinds are parsed into enums here, once.
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

// The enums below are spelled in the manifest as their enumerators in
// lower case (glorot_uniform for GlorotUniform); Package.cpp's tables list
// the spellings in enumerator order.

/// What an argument of a compiled function holds: data fed to each call
/// (input), a trained tensor (param), or what the optimizer carries from
/// step to step (state: Adam's moments, the step counter).
enum class ArgumentRole { Input, Param, State };

/// What a result of a compiled function is. Param and state results are
/// the updated tensors, grad results the gradients (optimizer=none);
/// logits those of a decode step's position.
enum class ResultKind { Loss, Lr, Param, State, Grad, Logits };

/// How a parameter starts: the dialect's #moe.init kinds.
enum class InitKind { Zeros, Constant, Normal, Uniform, GlorotUniform };

/// One argument of a compiled function.
struct ArgumentInfo {
  ArgumentRole role = ArgumentRole::Input;
  std::string name;
  std::string dtype; ///< "f32", "i32" or "i64"
  std::vector<int64_t> shape;
  int64_t idBound = 0; ///< inputs: ids index [0, idBound)
  bool allowsPadding = false; ///< inputs: -1 marks padding (loss targets)
  /// Lengths inputs: each value lies in [1, maxLength] (0: not lengths),
  /// and positions at or past it are padding in the inputs `pads` names.
  int64_t maxLength = 0;
  std::vector<std::string> pads;
  InitKind init = InitKind::Zeros; ///< params only
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

/// One result; param, state and grad results name their argument.
struct ResultInfo {
  ResultKind kind = ResultKind::Loss;
  std::string name;
};

struct FunctionInfo {
  std::string symbol;
  int64_t arenaBytes = 0;
  double flops = 0;
  /// Pool bytes that R data-parallel ranks each need R times: the rows of
  /// all ranks that moe.sum_rows_over_ranks sums (manifest
  /// "rank_rows_bytes", absent when none).
  int64_t rankRowsBytes = 0;
  std::vector<ArgumentInfo> arguments;
  std::vector<ResultInfo> results;
  /// Experts of each dispatch plan, in program order.
  std::vector<int64_t> planExperts;
  /// Whether each plan routes to the groups of a hierarchical layer (its
  /// primary level) rather than to experts.
  std::vector<bool> planRoutesGroups;
  rt::step::CompiledFunction entry = nullptr;

  const ArgumentInfo *input(const std::string &name) const;
  /// The first result of `kind` (named `name` unless empty), or -1.
  int resultIndex(ResultKind kind, const std::string &name = "") const;
};

class Package {
public:
  /// Reads and validates <dir>/manifest.json; throws std::runtime_error
  /// with a one-line message naming the file.
  static Package open(const std::string &dir);

  /// Validates `text`, the contents of the manifest `manifestPath` (which
  /// names it in errors), as open does; throws std::runtime_error. The
  /// result has no directory or source: open adds them.
  static Package parseManifest(const std::string &text,
                               const std::string &manifestPath);

  /// Compiles the source (or reuses the cached object) and resolves every
  /// function's entry point. `verbose` prints the compile command,
  /// `progress` that a compile is running and how long it took.
  void load(bool verbose, bool progress = false);

  const std::string &directory() const { return dir; }
  const std::string &model() const { return modelName; }
  /// "cpu" (step.cpp) or "cuda" (step.cu).
  const std::string &target() const { return sourceTarget; }
  bool hasAdam() const { return optimizer == "adam"; }
  /// Why moe-add-decode-step gave the model no decode functions (the
  /// manifest's "no_decode_step"); empty when it did or was not asked.
  const std::string &noDecodeStepReason() const { return noDecodeStep; }
  /// "train_step", "eval" or "model"; null when the package lacks it.
  const FunctionInfo *function(const std::string &role) const;
  /// The function that scores data without training: "eval" (inference
  /// mode) when the package has it, else "model".
  std::string evaluationFunction() const;
  /// The training step's parameters and optimizer state, in argument order.
  std::vector<const ArgumentInfo *> trainableState() const;
  /// Whether some parameter or state tensor is split over the ranks.
  bool hasShardedTensors() const;

private:
  std::string dir, modelName, optimizer, sourcePath, sourceTarget, noDecodeStep;
  std::map<std::string, FunctionInfo> functions;
  void *library = nullptr;
};

} // namespace moe::run

#endif // MOE_TOOLS_MOE_RUN_PACKAGE_H
