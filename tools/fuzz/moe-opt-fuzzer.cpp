//===- moe-opt-fuzzer.cpp - Fuzz the model parser and the pipelines -------===//
//
// Each input is the text of a model. It is parsed as moe-opt parses it (the
// same dialects, after the same nesting guard), verified, and run through
// the pass pipeline that $MOE_FUZZ_PIPELINE names (kPipelines; default
// "train"). A module the train pipeline accepts is also emitted as C++
// source and a manifest, as moe-translate would. Bad input must end in a
// diagnostic, which is swallowed; a crash or a sanitizer report is a bug.
//
//===----------------------------------------------------------------------===//

#include "codegen/Manifest.h"
#include "codegen/Translations.h"
#include "tools/common/NestingGuard.h"
#include "tools/common/OptRegistration.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <sanitizer/common_interface_defs.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

using namespace mlir;

namespace {

/// What moe-translate's translations are run on.
enum class Emit { Nothing, Input, Result };

/// What one fuzz run does after parsing and verifying. `passes` are
/// textual pipelines, each run on a fresh copy of the input.
struct FuzzPipeline {
  const char *name;
  std::vector<const char *> passes;
  Emit emit;
};

const FuzzPipeline kPipelines[] = {
    {"parse", {}, Emit::Nothing},
    {"train", {"builtin.module(moe-train-pipeline)"}, Emit::Result},
    {"train-data-parallel",
     {"builtin.module(moe-train-pipeline{data-parallel=true})"},
     Emit::Result},
    {"train-expert-parallel",
     {"builtin.module(moe-train-pipeline{expert-parallel=true})"},
     Emit::Result},
    {"train-no-optimizer",
     {"builtin.module(moe-train-pipeline{optimizer=none eval=false})"},
     Emit::Result},
    {"inference", {"builtin.module(moe-inference-pipeline)"}, Emit::Nothing},
    // Every pass moe-opt offers on its own, and moe-translate's emitters
    // (run on the input itself, below).
    {"passes",
     {"builtin.module(moe-model-summary)", "builtin.module(moe-add-eval)",
      "builtin.module(func.func(moe-decompose))",
      "builtin.module(func.func(moe-decompose{inference=true "
      "combined-batch=true}))",
      "builtin.module(func.func(moe-expand-hierarchy))",
      "builtin.module(func.func(moe-expand-hierarchy{inference=true}))",
      "builtin.module(func.func(moe-fuse-routing))",
      "builtin.module(moe-partition)",
      "builtin.module(moe-partition{expert-parallel=true})",
      "builtin.module(moe-autodiff)", "builtin.module(moe-sync-gradients)",
      "builtin.module(moe-optimizer)",
      "builtin.module(func.func(moe-plan-buffers))",
      "builtin.module(convert-moe-to-emitc)", "builtin.module(cse)",
      "builtin.module(canonicalize)"},
     Emit::Input},
};

const FuzzPipeline *selected = nullptr;
DialectRegistry *registry = nullptr;

/// Runs `fn` with standard error sent to /dev/null: moe-model-summary
/// prints its table there, which would flood the fuzzer's log. Sanitizer
/// reports go to a copy of the real stderr (LLVMFuzzerInitialize).
template <typename Fn> auto withoutStderr(Fn fn) {
  std::fflush(stderr);
  int saved = dup(STDERR_FILENO);
  int null = open("/dev/null", O_WRONLY);
  dup2(null, STDERR_FILENO);
  close(null);
  auto result = fn();
  dup2(saved, STDERR_FILENO);
  close(saved);
  return result;
}

LogicalResult runPipeline(ModuleOp module, const char *pipeline) {
  PassManager pm(module.getContext());
  if (failed(parsePassPipeline(pipeline, pm))) {
    std::fprintf(stderr, "moe-opt-fuzzer: bad pipeline %s\n", pipeline);
    std::abort();
  }
  if (llvm::StringRef(pipeline).contains("moe-model-summary"))
    return withoutStderr([&] { return pm.run(module); });
  return pm.run(module);
}

/// moe-translate's three translations, into nothing.
void emit(ModuleOp module) {
  (void)moe::emitPackageSource(module, llvm::nulls(), "cpu", "f32");
  (void)moe::emitPackageSource(module, llvm::nulls(), "cuda", "bf16");
  (void)moe::writeManifest(module, llvm::nulls());
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  __sanitizer_set_report_fd(
      reinterpret_cast<void *>(static_cast<intptr_t>(dup(STDERR_FILENO))));
  moe::registerMoEOptPasses();
  registry = new DialectRegistry;
  moe::registerMoEOptDialects(*registry);
  const char *name = std::getenv("MOE_FUZZ_PIPELINE");
  if (!name)
    name = "train";
  for (const FuzzPipeline &pipeline : kPipelines)
    if (std::strcmp(pipeline.name, name) == 0)
      selected = &pipeline;
  if (!selected) {
    std::fprintf(stderr, "moe-opt-fuzzer: unknown MOE_FUZZ_PIPELINE=%s; one of",
                 name);
    for (const FuzzPipeline &pipeline : kPipelines)
      std::fprintf(stderr, " %s", pipeline.name);
    std::fprintf(stderr, "\n");
    std::exit(2);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  llvm::StringRef text(reinterpret_cast<const char *>(data), size);
  // moe-opt refuses this before parsing (MLIR's parser would overflow).
  if (moe::nestsTooDeep(text))
    return 0;
  MLIRContext context(*registry, MLIRContext::Threading::DISABLED);
  context.printOpOnDiagnostic(false);
  ScopedDiagnosticHandler swallow(&context,
                                  [](Diagnostic &) { return success(); });
  // MLIR's lexer needs the NUL after the text that a file read gives it.
  llvm::SourceMgr sourceMgr;
  sourceMgr.AddNewSourceBuffer(llvm::MemoryBuffer::getMemBufferCopy(text),
                               llvm::SMLoc());
  ParserConfig config(&context);
  OwningOpRef<ModuleOp> module = parseSourceFile<ModuleOp>(sourceMgr, config);
  if (!module || failed(verify(*module)))
    return 0;
  if (selected->passes.empty()) {
    module->print(llvm::nulls());
    module->print(llvm::nulls(), OpPrintingFlags().printGenericOpForm());
    return 0;
  }
  if (selected->emit == Emit::Input)
    emit(*module);
  for (const char *pipeline : selected->passes) {
    OwningOpRef<ModuleOp> copy(module->clone());
    if (succeeded(runPipeline(*copy, pipeline)) &&
        selected->emit == Emit::Result)
      emit(*copy);
  }
  return 0;
}
