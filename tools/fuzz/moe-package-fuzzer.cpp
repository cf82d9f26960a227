//===- moe-package-fuzzer.cpp - Fuzz moe-run's package manifest reader ----===//
//
// Each input is the text of a package's manifest.json. moe-run validates it
// (Package::parseManifest) and then trusts what it says: the sizes of the
// tensors it allocates, their shards, the results it reads back. So any
// manifest it accepts must answer those questions without overflow, and any
// other must be refused with std::runtime_error, as moe-run reports it.
//
//===----------------------------------------------------------------------===//

#include "tools/moe-run/Package.h"

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

using namespace moe::run;

/// What moe-run asks of an accepted package's function.
static void query(const FunctionInfo &function) {
  for (const ArgumentInfo &arg : function.arguments) {
    (void)arg.elements();
    (void)arg.bytes();
    for (int ranks = 1; ranks <= 4; ++ranks) {
      try {
        (void)arg.localBytes(ranks);
      } catch (const std::runtime_error &) {
        // Experts that do not split over this many ranks.
      }
    }
    (void)function.input(arg.name);
  }
  for (const ResultInfo &result : function.results)
    (void)function.resultIndex(result.kind, result.name);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string text(reinterpret_cast<const char *>(data), size);
  try {
    Package package = Package::parseManifest(text, "manifest.json");
    for (const char *role : {"train_step", "eval", "model"})
      if (const FunctionInfo *function = package.function(role))
        query(*function);
    (void)package.trainableState();
    (void)package.hasShardedTensors();
    (void)package.evaluationFunction();
  } catch (const std::runtime_error &) {
    // Refused, with the message moe-run prints.
  }
  return 0;
}
