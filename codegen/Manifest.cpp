//===- Manifest.cpp - The package manifest of a compiled model ------------===//
//
// Emits manifest.json with llvm::json: arguments by role (inputs,
// parameters with initializers, optimizer state), results by role (loss,
// learning rate, updated parameters and state) and the planned arena sizes.
//
//===----------------------------------------------------------------------===//

#include "codegen/Manifest.h"

#include "dialect/MoEAttrs.h"
#include "dialect/MoEDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Tools/mlir-translate/Translation.h"
#include "llvm/Support/JSON.h"

using namespace mlir;
using namespace mlir::moe;

namespace {

constexpr llvm::StringLiteral kFormat = "moe-package/1";

llvm::json::Array shapeOf(RankedTensorType type) {
  llvm::json::Array shape;
  for (int64_t dim : type.getShape())
    shape.push_back(dim);
  return shape;
}

std::string dtypeOf(RankedTensorType type) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << type.getElementType();
  return text;
}

/// {"name", "shape", "dtype", "arg"} plus `extra`.
llvm::json::Object tensorEntry(StringRef name, Type type, unsigned index) {
  auto tensor = cast<RankedTensorType>(type);
  return llvm::json::Object{{"name", name},
                            {"shape", shapeOf(tensor)},
                            {"dtype", dtypeOf(tensor)},
                            {"index", index}};
}

int64_t arenaBytes(func::FuncOp func) {
  auto bytes = func->getAttrOfType<IntegerAttr>("moe.arena_bytes");
  return bytes ? bytes.getInt() : 0;
}

/// The function's results by role, from their moe.* result attributes.
FailureOr<llvm::json::Array> describeResults(func::FuncOp func) {
  llvm::json::Array results;
  for (unsigned i = 0, e = func.getNumResults(); i < e; ++i) {
    llvm::json::Object entry{{"index", i}};
    if (auto out = func.getResultAttrOfType<StringAttr>(i, "moe.output")) {
      entry["kind"] = out.getValue();
    } else if (auto param = func.getResultAttrOfType<StringAttr>(
                   i, MoEDialect::kParamAttrName)) {
      entry["kind"] = "param";
      entry["name"] = param.getValue();
    } else if (auto state = func.getResultAttrOfType<StringAttr>(
                   i, MoEDialect::kStateAttrName)) {
      entry["kind"] = "state";
      entry["name"] = state.getValue();
    } else {
      return func.emitOpError("result #")
             << i << " has no role (moe.output, moe.param or moe.state)";
    }
    results.push_back(std::move(entry));
  }
  return results;
}

} // namespace

LogicalResult mlir::moe::writeManifest(ModuleOp module, raw_ostream &os) {
  func::FuncOp step;
  for (auto func : module.getOps<func::FuncOp>()) {
    bool isStep = false;
    for (unsigned i = 0, e = func.getNumArguments(); i < e; ++i)
      if (auto state =
              func.getArgAttrOfType<StringAttr>(i, MoEDialect::kStateAttrName))
        isStep |= state.getValue() == "step";
    if (!isStep)
      continue;
    if (step)
      return func.emitOpError("is a second training step; a package holds "
                              "one model (first: @")
             << step.getSymName() << ")";
    step = func;
  }
  if (!step)
    return module.emitError("no training step: run --moe-train-pipeline "
                            "before --moe-to-manifest");

  llvm::json::Array inputs, parameters, state;
  for (BlockArgument arg : step.getArguments()) {
    unsigned i = arg.getArgNumber();
    if (auto name =
            step.getArgAttrOfType<StringAttr>(i, MoEDialect::kInputAttrName)) {
      inputs.push_back(tensorEntry(name.getValue(), arg.getType(), i));
    } else if (auto name = step.getArgAttrOfType<StringAttr>(
                   i, MoEDialect::kParamAttrName)) {
      auto init = step.getArgAttrOfType<InitAttr>(i, MoEDialect::kInitAttrName);
      llvm::json::Object entry = tensorEntry(name.getValue(), arg.getType(), i);
      entry["init"] =
          llvm::json::Object{{"kind", stringifyInitKind(init.getKind())},
                             {"scale", init.getScale().convertToDouble()}};
      parameters.push_back(std::move(entry));
    } else if (auto name = step.getArgAttrOfType<StringAttr>(
                   i, MoEDialect::kStateAttrName)) {
      state.push_back(tensorEntry(name.getValue(), arg.getType(), i));
    } else {
      return step.emitOpError("argument #")
             << i << " has no role (moe.input, moe.param or moe.state)";
    }
  }
  FailureOr<llvm::json::Array> results = describeResults(step);
  if (failed(results))
    return failure();

  // The model function the step was derived from evaluates the loss.
  StringRef stepName = step.getSymName();
  StringRef modelName = stepName;
  modelName.consume_back("_train_step");
  auto model = module.lookupSymbol<func::FuncOp>(modelName);

  llvm::json::Object manifest{
      {"format", kFormat},
      {"model", modelName},
      {"train_step", llvm::json::Object{{"function", stepName},
                                        {"arena_bytes", arenaBytes(step)},
                                        {"inputs", std::move(inputs)},
                                        {"parameters", std::move(parameters)},
                                        {"state", std::move(state)},
                                        {"results", std::move(*results)}}}};
  if (model && model != step)
    manifest["eval"] = llvm::json::Object{{"function", model.getSymName()},
                                          {"arena_bytes", arenaBytes(model)}};
  os << llvm::formatv("{0:2}", llvm::json::Value(std::move(manifest))) << "\n";
  return success();
}

void mlir::moe::registerManifestTranslation() {
  TranslateFromMLIRRegistration registration(
      "moe-to-manifest", "Write the manifest.json of a compiled training step",
      [](ModuleOp module, raw_ostream &os) {
        return writeManifest(module, os);
      },
      [](DialectRegistry &registry) {
        registry.insert<MoEDialect, func::FuncDialect, arith::ArithDialect,
                        tensor::TensorDialect>();
      });
}
