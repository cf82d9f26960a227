//===- Manifest.cpp - The package manifest of a compiled model ------------===//
//
// Emits manifest.json with llvm::json. For each compiled function (the
// training step, the evaluation copy and the training-mode model): its C
// symbol, arena size, arguments by role (inputs with the id range they
// index, parameters with initializers, optimizer state), results by role,
// the dispatch plans in program order (for per-expert load histograms and
// routing captures; each says whether it routes to experts or, the primary
// level of a hierarchical layer, to groups) and
// the floating-point operations of one call (for achieved TFLOP/s): one
// rank's share of a step's work when the step runs on several.
//
//===----------------------------------------------------------------------===//

#include "codegen/Manifest.h"

#include "dialect/MoEAttrs.h"
#include "dialect/MoEDialect.h"
#include "dialect/MoEOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Mesh/IR/MeshDialect.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Tools/mlir-translate/Translation.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/JSON.h"

using namespace mlir;
using namespace mlir::moe;

namespace {

constexpr llvm::StringLiteral kFormat = "moe-package/2";

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

int64_t elements(Value v) {
  return cast<ShapedType>(v.getType()).getNumElements();
}

int64_t dim(Value v, unsigned i) {
  return cast<ShapedType>(v.getType()).getDimSize(i);
}

/// Multiply-adds of an LSTM's forward pass over `input` [B, S, d_in].
double lstmMacs(Value input, Value inputWeights, Value recurrentWeights,
                Value projection) {
  double tokens = dim(input, 0) * dim(input, 1);
  return tokens * (elements(inputWeights) + elements(recurrentWeights) +
                   (projection ? elements(projection) : 0));
}

/// Multiply-adds of the Appendix B attention's forward pass.
double attentionMacs(Value source, Value target, Value scoreWeights) {
  // In double: the [B, S_y, S_x] weights are no tensor of the IR, so their
  // size is not bounded by the verifier and can pass int64_t.
  double b = dim(source, 0), sx = dim(source, 1), sy = dim(target, 1),
         dx = dim(source, 2), dy = dim(target, 2), e = dim(scoreWeights, 0);
  return b * (sx * dx * e + sy * dy * e + sy * sx * (e + dx));
}

/// Multiply-adds of the output layer's logits: every class, or the
/// samples and the target.
double outputLayerMacs(Value hidden, Value weights,
                       std::optional<uint64_t> samples) {
  int64_t classes = samples ? *samples + 1 : dim(weights, 0);
  return double(elements(hidden)) * classes;
}

/// The rows of an expert GEMM's dispatch buffer. Under expert parallelism
/// the buffer holds the rows the other ranks sent, a number known only at
/// run time; the rows this rank sends stand for them: over all ranks the
/// two sums are the rows the experts process, so the FLOPs are this rank's
/// share of the job's expert work.
double expertRows(Value buffer) {
  if (!cast<ShapedType>(buffer.getType()).isDynamicDim(0))
    return dim(buffer, 0);
  if (auto exchange = buffer.getDefiningOp<ExchangeToExpertsOp>())
    return dim(exchange.getBuffer(), 0);
  return 0;
}

/// Floating-point operations of one op (multiply-adds count two): the
/// GEMM-like work, which is what TF/s figures compare. Element-wise and
/// routing arithmetic is left out.
double opFlops(Operation *op) {
  return llvm::TypeSwitch<Operation *, double>(op)
      .Case([](MatmulOp m) {
        // m x n result, inner dimension k.
        int64_t k = m.getTransposeLhs() ? dim(m.getLhs(), 0)
                                        : dim(m.getLhs(), 1);
        return 2.0 * elements(m.getResult()) * k;
      })
      .Case([](GroupedMatmulOp g) {
        return 2.0 * expertRows(g.getBuffer()) * dim(g.getBuffer(), 1) *
               dim(g.getOutput(), 1);
      })
      .Case([](GroupedMatmulGradOp g) {
        return 4.0 * expertRows(g.getBuffer()) * dim(g.getBuffer(), 1) *
               dim(g.getDOutput(), 1);
      })
      .Case([](FusedRouteOp f) {
        return 4.0 * elements(f.getInput()) * dim(f.getGateWeights(), 1);
      })
      .Case([](LSTMOp l) {
        return 2.0 * lstmMacs(l.getInput(), l.getInputWeights(),
                              l.getRecurrentWeights(), l.getProjection());
      })
      .Case([](LSTMGradOp l) {
        return 4.0 * lstmMacs(l.getInput(), l.getInputWeights(),
                              l.getRecurrentWeights(), l.getProjection());
      })
      .Case([](AttentionOp a) {
        return 2.0 *
               attentionMacs(a.getSource(), a.getTarget(), a.getScoreWeights());
      })
      .Case([](AttentionGradOp a) {
        return 4.0 *
               attentionMacs(a.getSource(), a.getTarget(), a.getScoreWeights());
      })
      .Case([](SoftmaxCrossEntropyOp ce) {
        return 2.0 * outputLayerMacs(ce.getHidden(), ce.getWeights(),
                                     ce.getNumSamples());
      })
      .Case([](SoftmaxCrossEntropyGradOp ce) {
        // The two gradient products, plus the logits again unless the
        // runtime reuses the forward op's softmax: a full softmax whose
        // [tokens, vocab] floats fit its cache (kSoftmaxCacheBytes in
        // runtime/step/LossOps.cpp).
        constexpr double kSoftmaxCacheBytes = 256 << 20;
        double macs = outputLayerMacs(ce.getHidden(), ce.getWeights(),
                                      ce.getNumSamples());
        double tokens = elements(ce.getHidden()) / dim(ce.getWeights(), 1);
        bool reused =
            !ce.getNumSamples() &&
            tokens * dim(ce.getWeights(), 0) * 4 <= kSoftmaxCacheBytes;
        return (reused ? 4.0 : 6.0) * macs;
      })
      .Case([](SoftmaxCrossEntropyRowGradOp ce) {
        // As the sampled gradient: the logits again and two products.
        return 6.0 * outputLayerMacs(ce.getHidden(), ce.getWeights(),
                                     ce.getNumSamples());
      })
      .Default([](Operation *) { return 0.0; });
}

/// The ops that read `value`, looking through reshapes.
void collectUsers(Value value, SmallVectorImpl<Operation *> &users) {
  for (Operation *user : value.getUsers()) {
    if (isa<tensor::CollapseShapeOp, tensor::ExpandShapeOp>(user))
      collectUsers(user->getResult(0), users);
    else
      users.push_back(user);
  }
}

/// The id range an input indexes: the rows of the embedding or output
/// layer it feeds (0 when it feeds neither).
int64_t idBound(ArrayRef<Operation *> users) {
  for (Operation *user : users) {
    if (auto embedding = dyn_cast<EmbeddingOp>(user))
      return dim(embedding.getTable(), 0);
    if (auto ce = dyn_cast<SoftmaxCrossEntropyOp>(user))
      return dim(ce.getWeights(), 0);
    if (auto ce = dyn_cast<SoftmaxCrossEntropyGradOp>(user))
      return dim(ce.getWeights(), 0);
    if (auto ce = dyn_cast<SoftmaxCrossEntropyRowGradOp>(user))
      return dim(ce.getWeights(), 0);
  }
  return 0;
}

/// The sequences whose lengths `value` gives: the value they pad (an
/// attention's source, a padded MoE layer's input) for every op that
/// reads `value` as lengths; empty when it is not lengths.
SmallVector<Value> paddedBy(Value value, ArrayRef<Operation *> users) {
  SmallVector<Value> padded;
  for (Operation *user : users) {
    if (auto attention = dyn_cast<AttentionOp>(user);
        attention && attention.getLengths() == value)
      padded.push_back(attention.getSource());
    // A padded MoE layer's selection: its input is the gate products' x.
    if (auto drop = dyn_cast<DropPaddingOp>(user);
        drop && drop.getLengths() == value)
      padded.push_back(drop.getExpert());
  }
  return padded;
}

/// The inputs of shape [batch, positions, ...] that `roots` are computed
/// from: those whose positions at or past a sequence's length are padding.
SmallVector<StringRef> paddedInputs(func::FuncOp func, ArrayRef<Value> roots,
                                    int64_t batch, int64_t positions) {
  SmallVector<StringRef> names;
  SmallVector<Value> work(roots);
  DenseSet<Value> seen(roots.begin(), roots.end());
  while (!work.empty()) {
    Value v = work.pop_back_val();
    if (auto arg = dyn_cast<BlockArgument>(v)) {
      auto name = func.getArgAttrOfType<StringAttr>(arg.getArgNumber(),
                                                    MoEDialect::kInputAttrName);
      auto type = dyn_cast<RankedTensorType>(arg.getType());
      if (name && type && type.getRank() >= 2 && type.getDimSize(0) == batch &&
          type.getDimSize(1) == positions &&
          !llvm::is_contained(names, name.getValue()))
        names.push_back(name.getValue());
      continue;
    }
    for (Value operand : v.getDefiningOp()->getOperands())
      if (seen.insert(operand).second)
        work.push_back(operand);
  }
  llvm::sort(names);
  return names;
}

/// A lengths input's entries: "length_range" [1, positions] and "pads",
/// the inputs it marks padding in. Fails where it bounds sequences of
/// different lengths.
LogicalResult describeLengths(func::FuncOp func, BlockArgument arg,
                              StringRef name, ArrayRef<Operation *> users,
                              llvm::json::Object &entry) {
  SmallVector<Value> padded = paddedBy(arg, users);
  if (padded.empty())
    return success();
  int64_t batch = dim(arg, 0), positions = 0;
  for (Operation *user : users)
    if (auto attention = dyn_cast<AttentionOp>(user))
      positions = dim(attention.getSource(), 1);
  for (Operation *user : users) {
    auto drop = dyn_cast<DropPaddingOp>(user);
    if (!drop)
      continue;
    int64_t time = drop.getTokens() / batch;
    if (positions && positions != time)
      return func.emitOpError("input '")
             << name << "' gives the lengths of sequences of " << positions
             << " and of " << time << " positions";
    positions = time;
  }
  llvm::json::Array pads;
  for (StringRef input : paddedInputs(func, padded, batch, positions))
    pads.push_back(input);
  entry["length_range"] = llvm::json::Array{1, positions};
  entry["pads"] = std::move(pads);
  return success();
}

llvm::json::Object tensorEntry(StringRef role, StringRef name, Value value,
                               unsigned index) {
  auto tensor = cast<RankedTensorType>(value.getType());
  llvm::json::Object entry{{"role", role},
                           {"name", name},
                           {"shape", shapeOf(tensor)},
                           {"dtype", dtypeOf(tensor)},
                           {"index", index}};
  // The global shape; each rank holds its slice of the first dimension.
  if (ShardAttr shard = getShard(tensor))
    entry["shard"] = llvm::json::Object{
        {"mesh", shard.getMesh().getValue()}, {"dim", 0}};
  return entry;
}

FailureOr<llvm::json::Array> describeArguments(func::FuncOp func) {
  llvm::json::Array arguments;
  for (BlockArgument arg : func.getArguments()) {
    unsigned i = arg.getArgNumber();
    if (auto name =
            func.getArgAttrOfType<StringAttr>(i, MoEDialect::kInputAttrName)) {
      llvm::json::Object entry = tensorEntry("input", name, arg, i);
      SmallVector<Operation *> users;
      collectUsers(arg, users);
      if (int64_t bound = idBound(users))
        entry["id_bound"] = bound;
      // Loss targets may be -1 (padding); embedding ids may not.
      bool targets = !users.empty();
      for (Operation *user : users)
        targets &= isa<SoftmaxCrossEntropyOp, SoftmaxCrossEntropyGradOp,
                       SoftmaxCrossEntropyRowGradOp, CountTargetsOp>(user);
      entry["padding"] = targets;
      if (failed(describeLengths(func, arg, name, users, entry)))
        return failure();
      arguments.push_back(std::move(entry));
    } else if (auto name = func.getArgAttrOfType<StringAttr>(
                   i, MoEDialect::kParamAttrName)) {
      auto init = func.getArgAttrOfType<InitAttr>(i, MoEDialect::kInitAttrName);
      llvm::json::Object entry = tensorEntry("param", name, arg, i);
      entry["init"] =
          llvm::json::Object{{"kind", stringifyInitKind(init.getKind())},
                             {"scale", init.getScale().convertToDouble()}};
      arguments.push_back(std::move(entry));
    } else if (auto name = func.getArgAttrOfType<StringAttr>(
                   i, MoEDialect::kStateAttrName)) {
      arguments.push_back(tensorEntry("state", name, arg, i));
    } else {
      return func.emitOpError("argument #")
             << i << " has no role (moe.input, moe.param or moe.state)";
    }
  }
  return arguments;
}

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
    } else if (auto grad =
                   func.getResultAttrOfType<StringAttr>(i, "moe.grad")) {
      entry["kind"] = "grad";
      entry["name"] = grad.getValue();
    } else if (i == 0) {
      // A model function returns its loss first (moe-autodiff checks it).
      entry["kind"] = "loss";
    } else {
      return func.emitOpError("result #")
             << i << " has no role (moe.output, moe.param, moe.state or "
                     "moe.grad)";
    }
    results.push_back(std::move(entry));
  }
  return results;
}

/// "groups" for the primary plan of a hierarchical layer (its positions
/// feed the composition of the two levels' routes), "experts" for a plan
/// over a layer's experts (flat, or the composed routes of a hierarchical
/// one).
llvm::StringRef planLevel(DispatchPlanOp plan) {
  for (Operation *user : plan.getPosition().getUsers())
    if (isa<ComposeRoutesOp, ComposeRoutesCsrOp>(user))
      return "groups";
  return "experts";
}

FailureOr<llvm::json::Object> describeFunction(func::FuncOp func) {
  FailureOr<llvm::json::Array> arguments = describeArguments(func);
  FailureOr<llvm::json::Array> results = describeResults(func);
  if (failed(arguments) || failed(results))
    return failure();
  auto bytes = func->getAttrOfType<IntegerAttr>("moe.arena_bytes");
  if (!bytes)
    return func.emitOpError("has no buffer plan: run the training pipeline "
                            "(moe-plan-buffers) before --moe-to-manifest");
  double flops = 0;
  // Pool bytes per rank of a data-parallel run: the R N summed rows of
  // each moe.sum_rows_over_ranks (ids and values), R times this.
  int64_t rankRowsBytes = 0;
  llvm::json::Array plans;
  func.walk([&](Operation *op) {
    flops += opFlops(op);
    if (auto sum = dyn_cast<SumRowsOverRanksOp>(op)) {
      rankRowsBytes += 4 * dim(sum.getRows(), 0);
      for (Value values : sum.getValues())
        rankRowsBytes +=
            4 * cast<ShapedType>(values.getType()).getNumElements();
    }
    if (auto route = dyn_cast<FusedRouteOp>(op))
      plans.push_back(llvm::json::Object{
          {"experts", dim(route.getGateWeights(), 1)},
          {"level", "experts"},
          {"op", "fused_route"}});
    if (auto plan = dyn_cast<DispatchPlanOp>(op))
      plans.push_back(llvm::json::Object{{"experts", plan.getNumExperts()},
                                         {"level", planLevel(plan)},
                                         {"op", "dispatch_plan"}});
  });
  llvm::json::Object function{{"symbol", func.getSymName()},
                              {"arena_bytes", bytes.getInt()},
                              {"flops", flops},
                              {"arguments", std::move(*arguments)},
                              {"results", std::move(*results)},
                              {"dispatch_plans", std::move(plans)}};
  if (rankRowsBytes)
    function["rank_rows_bytes"] = rankRowsBytes;
  return function;
}

} // namespace

LogicalResult mlir::moe::writeManifest(ModuleOp module, raw_ostream &os) {
  func::FuncOp step;
  for (auto func : module.getOps<func::FuncOp>()) {
    if (!func.getSymName().ends_with("_train_step"))
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

  StringRef modelName = step.getSymName();
  modelName.consume_back("_train_step");
  llvm::json::Object functions;
  FailureOr<llvm::json::Object> train = describeFunction(step);
  if (failed(train))
    return failure();
  bool adam = false;
  for (unsigned i = 0, e = step.getNumArguments(); i < e; ++i)
    if (auto state =
            step.getArgAttrOfType<StringAttr>(i, MoEDialect::kStateAttrName))
      adam |= state.getValue() == "step";
  functions["train_step"] = std::move(*train);
  for (auto [role, name] :
       {std::make_pair("eval", (modelName + "_eval").str()),
        std::make_pair("encode", (modelName + "_encode").str()),
        std::make_pair("decode_step", (modelName + "_decode_step").str()),
        std::make_pair("model", modelName.str())}) {
    auto func = module.lookupSymbol<func::FuncOp>(name);
    if (!func)
      continue;
    FailureOr<llvm::json::Object> entry = describeFunction(func);
    if (failed(entry))
      return failure();
    functions[role] = std::move(*entry);
  }

  llvm::json::Object manifest{{"format", kFormat},
                              {"model", modelName},
                              {"optimizer", adam ? "adam" : "none"},
                              {"functions", std::move(functions)}};
  if (auto model = module.lookupSymbol<func::FuncOp>(modelName))
    if (auto reason =
            model->getAttrOfType<StringAttr>(MoEDialect::kNoDecodeStepAttrName))
      manifest["no_decode_step"] = reason.getValue().str();
  os << llvm::formatv("{0:2}", llvm::json::Value(std::move(manifest))) << "\n";
  return success();
}

void mlir::moe::registerManifestTranslation() {
  TranslateFromMLIRRegistration registration(
      "moe-to-manifest",
      "Write the manifest.json of a compiled model (functions, argument and "
      "result roles, initializers, arena sizes, FLOPs)",
      [](ModuleOp module, raw_ostream &os) {
        return writeManifest(module, os);
      },
      [](DialectRegistry &registry) {
        registry.insert<MoEDialect, func::FuncDialect, arith::ArithDialect,
                        tensor::TensorDialect, mesh::MeshDialect>();
      });
}
