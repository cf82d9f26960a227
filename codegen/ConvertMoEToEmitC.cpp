//===- ConvertMoEToEmitC.cpp - Planned moe functions to EmitC -------------===//
//
// The convert-moe-to-emitc pass (see codegen/Passes.td): function skeletons
// and the conversion driver. The op patterns live in the <Family>ToEmitC.cpp
// files beside this one.
//
//===----------------------------------------------------------------------===//

#include "codegen/MoEToEmitC.h"
#include "codegen/Passes.h"

#include "dialect/MoEAttrs.h"
#include "dialect/MoEDialect.h"
#include "dialect/MoEOps.h"
#include "passes/BufferPlan.h"

#include "mlir/Conversion/ReconcileUnrealizedCasts/ReconcileUnrealizedCasts.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Mesh/IR/MeshDialect.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/CheckedArithmetic.h"

#include <map>

namespace mlir::moe {
#define GEN_PASS_DEF_CONVERTMOETOEMITC
#include "codegen/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

#define DEBUG_TYPE "convert-moe-to-emitc"

//===----------------------------------------------------------------------===//
// Types and calls
//===----------------------------------------------------------------------===//

StepTypeConverter::StepTypeConverter() {
  addConversion([](Type type) -> std::optional<Type> {
    if (isa<emitc::PointerType, emitc::OpaqueType>(type))
      return type;
    return std::nullopt;
  });
  addConversion([](RankedTensorType type) -> std::optional<Type> {
    Type element = type.getElementType();
    if (type.getRank() >= 1 && type.isDynamicDim(0) &&
        llvm::none_of(type.getShape().drop_front(), ShapedType::isDynamic)) {
      if (element.isF32())
        return emitc::OpaqueType::get(type.getContext(), kRowsType);
      if (element.isInteger(32) && type.getRank() == 1)
        return emitc::OpaqueType::get(type.getContext(), kRowIdsType);
    }
    if (!type.hasStaticShape() ||
        !(element.isF32() || element.isInteger(32) || element.isInteger(64)))
      return std::nullopt;
    return emitc::PointerType::get(element);
  });
  auto cast = [](OpBuilder &b, Type type, ValueRange inputs,
                 Location loc) -> std::optional<Value> {
    if (inputs.size() != 1)
      return std::nullopt;
    return b.create<UnrealizedConversionCastOp>(loc, type, inputs)
        .getResult(0);
  };
  addSourceMaterialization(cast);
  addTargetMaterialization(cast);
}

int64_t mlir::moe::numElements(Value tensor) {
  return cast<ShapedType>(tensor.getType()).getNumElements();
}

bool mlir::moe::hasDynamicRows(Value tensor) {
  auto type = cast<ShapedType>(tensor.getType());
  return type.hasRank() && type.getRank() >= 1 && type.isDynamicDim(0);
}

int64_t mlir::moe::dimSize(Value tensor, unsigned i) {
  return cast<ShapedType>(tensor.getType()).getDimSize(i);
}

namespace {

/// "i32:2x5,f32:50x8,i64:,f32:4x8x8/shard" : the element type and shape of
/// each argument, and whether it is split over the ranks (the driver sizes
/// its buffers by that), as the driver also derives it from the manifest.
std::string argumentSignature(TypeRange types) {
  std::string text;
  llvm::raw_string_ostream os(text);
  for (auto [i, type] : llvm::enumerate(types)) {
    auto tensor = dyn_cast<RankedTensorType>(type);
    if (i)
      os << ",";
    if (!tensor)
      continue;
    os << tensor.getElementType() << ":";
    llvm::interleave(tensor.getShape(), os, "x");
    if (getShard(tensor))
      os << "/shard";
  }
  return text;
}

Value contextOf(Operation *op) {
  return op->getParentOfType<emitc::FuncOp>().getArgument(0);
}

/// `callee<templateArgs>(ctx, value)`: a value of `type` from the step ABI.
Value stepValue(OpBuilder &b, Location loc, Value ctx, StringRef callee,
                Type type, int64_t value, ArrayAttr templateArgs) {
  auto call = b.create<emitc::CallOpaqueOp>(
      loc, TypeRange{type}, (kStepNamespace + callee).str(), ValueRange{ctx},
      b.getArrayAttr({b.getIndexAttr(0), b.getI64IntegerAttr(value)}),
      templateArgs);
  return call.getResult(0);
}

/// `callee<element>(ctx, index)`: a typed pointer from the step ABI.
Value stepPointer(OpBuilder &b, Location loc, Value ctx, StringRef callee,
                  Type pointerType, int64_t index) {
  Type element = cast<emitc::PointerType>(pointerType).getPointee();
  return stepValue(b, loc, ctx, callee, pointerType, index,
                   b.getArrayAttr({TypeAttr::get(element)}));
}

} // namespace

StepCall::StepCall(Operation *op, ConversionPatternRewriter &rewriter,
                   const TypeConverter &converter, StringRef callee)
    : op(op), rewriter(rewriter), converter(converter), callee_(callee.str()) {
  ptr(contextOf(op));
  resultPtrs.resize(op->getNumResults());
}

StepCall &StepCall::ptr(Value converted) {
  if (!converted)
    return literal("nullptr");
  args.push_back(rewriter.getIndexAttr(callOperands.size()));
  callOperands.push_back(converted);
  return *this;
}

StepCall &StepCall::operands(ValueRange converted) {
  for (Value value : converted)
    ptr(value);
  return *this;
}

Value StepCall::resultPointer(unsigned i) {
  if (resultPtrs[i])
    return resultPtrs[i];
  // The pass checked that planned ops carry one offset per result.
  auto offsets = op->getAttrOfType<DenseI64ArrayAttr>("moe.offsets");
  Value result = op->getResult(i);
  Type type = converter.convertType(result.getType());
  if (offsets[i] == kPoolOffset) {
    // A rank's shard: n / R of the n elements, from the call's pool (the
    // pass checked that only shards and returned rows are pool results).
    resultPtrs[i] = stepPointer(rewriter, op->getLoc(), contextOf(op),
                                "poolShard", type, numElements(result));
    return resultPtrs[i];
  }
  resultPtrs[i] = stepPointer(rewriter, op->getLoc(), contextOf(op), "arena",
                              type, offsets[i]);
  return resultPtrs[i];
}

StepCall &StepCall::result(unsigned i) { return ptr(resultPointer(i)); }

StepCall &StepCall::results() {
  for (unsigned i = 0, e = op->getNumResults(); i < e; ++i)
    result(i);
  return *this;
}

StepCall &StepCall::i64(int64_t value) {
  args.push_back(rewriter.getI64IntegerAttr(value));
  return *this;
}

StepCall &StepCall::f32(float value) {
  args.push_back(rewriter.getF32FloatAttr(value));
  return *this;
}

StepCall &StepCall::flag(bool value) {
  return literal(value ? "true" : "false");
}

StepCall &StepCall::literal(StringRef text) {
  args.push_back(emitc::OpaqueAttr::get(rewriter.getContext(), text));
  return *this;
}

StepCall &StepCall::callee(StringRef name) {
  callee_ = (kStepNamespace + name).str();
  return *this;
}

StepCall &StepCall::count(Value tensor) {
  if (!getShard(tensor.getType()))
    return i64(numElements(tensor));
  return ptr(stepValue(rewriter, op->getLoc(), contextOf(op), "shardCount",
                       rewriter.getI64Type(), numElements(tensor),
                       ArrayAttr()));
}

StepCall &StepCall::returns(unsigned i) {
  returned = i;
  return *this;
}

StepCall &StepCall::replaceWith(ValueRange values) {
  replacements.assign(values.begin(), values.end());
  replaced = true;
  return *this;
}

StepCall &StepCall::returnsParts(StringRef aggregateType) {
  aggregate = aggregateType.str();
  return *this;
}

LogicalResult StepCall::emit() {
  SmallVector<Type> returnTypes;
  if (returned)
    returnTypes.push_back(
        converter.convertType(op->getResult(*returned).getType()));
  if (aggregate)
    returnTypes.push_back(
        emitc::OpaqueType::get(rewriter.getContext(), *aggregate));
  auto call = rewriter.create<emitc::CallOpaqueOp>(
      op->getLoc(), returnTypes, callee_, callOperands,
      rewriter.getArrayAttr(args), ArrayAttr());
  if (returned)
    resultPtrs[*returned] = call.getResult(0);
  if (aggregate) {
    for (unsigned i = 0, e = op->getNumResults(); i < e; ++i) {
      Type type = converter.convertType(op->getResult(i).getType());
      resultPtrs[i] =
          rewriter
              .create<emitc::CallOpaqueOp>(
                  op->getLoc(), TypeRange{type},
                  (kStepNamespace + "part").str(),
                  ValueRange{call.getResult(0)},
                  rewriter.getArrayAttr({rewriter.getIndexAttr(0),
                                         rewriter.getI64IntegerAttr(i)}),
                  rewriter.getArrayAttr({TypeAttr::get(type)}))
              .getResult(0);
    }
  }
  if (replaced) {
    rewriter.replaceOp(op, replacements);
    return success();
  }
  SmallVector<Value> values;
  for (unsigned i = 0, e = op->getNumResults(); i < e; ++i)
    values.push_back(resultPointer(i));
  rewriter.replaceOp(op, values);
  return success();
}

//===----------------------------------------------------------------------===//
// Structural ops: views and the terminator
//===----------------------------------------------------------------------===//

namespace {

/// Views share their source's buffer: the same pointer.
template <typename ViewOp>
struct ViewLowering : public OpConversionPattern<ViewOp> {
  using OpConversionPattern<ViewOp>::OpConversionPattern;
  LogicalResult
  matchAndRewrite(ViewOp op, typename ViewOp::Adaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    rewriter.replaceOp(op, adaptor.getSrc());
    return success();
  }
};

/// func.return -> result(ctx, i, ptr)...; emitc.return.
struct ReturnLowering : public OpConversionPattern<func::ReturnOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(func::ReturnOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Value ctx = contextOf(op);
    for (auto [i, value] : llvm::enumerate(adaptor.getOperands()))
      rewriter.create<emitc::CallOpaqueOp>(
          op.getLoc(), TypeRange{}, (kStepNamespace + "result").str(),
          ValueRange{ctx, value},
          rewriter.getArrayAttr({rewriter.getIndexAttr(0),
                                 rewriter.getI64IntegerAttr(i),
                                 rewriter.getIndexAttr(1)}),
          ArrayAttr());
    rewriter.replaceOpWithNewOp<emitc::ReturnOp>(op, Value());
    return success();
  }
};

//===----------------------------------------------------------------------===//
// The pass
//===----------------------------------------------------------------------===//

struct ConvertMoEToEmitCPass
    : public mlir::moe::impl::ConvertMoEToEmitCBase<ConvertMoEToEmitCPass> {
  using ConvertMoEToEmitCBase::ConvertMoEToEmitCBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    FailureOr<EmitCTarget> emitTarget = parseTarget();
    if (failed(emitTarget))
      return signalPassFailure();

    StepTypeConverter converter;
    RewritePatternSet patterns(&getContext());
    patterns.add<ViewLowering<tensor::CollapseShapeOp>,
                 ViewLowering<tensor::ExpandShapeOp>, ReturnLowering>(
        converter, &getContext());
    populateMoEAlgebraToEmitCPatterns(converter, patterns, *emitTarget);
    populateMoERoutingToEmitCPatterns(converter, patterns, *emitTarget);
    populateMoEDispatchToEmitCPatterns(converter, patterns, *emitTarget);
    populateMoESequenceToEmitCPatterns(converter, patterns, *emitTarget);
    populateMoELossToEmitCPatterns(converter, patterns, *emitTarget);
    populateMoECollectivesToEmitCPatterns(converter, patterns, *emitTarget);

    llvm::StringSet<> lowered;
    for (const auto &pattern : patterns.getNativePatterns())
      if (std::optional<OperationName> root = pattern->getRootKind())
        lowered.insert(root->getStringRef());

    SmallVector<func::FuncOp> functions(module.getOps<func::FuncOp>());
    if (functions.empty()) {
      module.emitError("no functions to generate code for");
      return signalPassFailure();
    }
    for (func::FuncOp func : functions)
      if (failed(checkPlanned(func, lowered, converter)) ||
          failed(buildSkeleton(func, converter)))
        return signalPassFailure();

    ConversionTarget target(getContext());
    target.addLegalDialect<emitc::EmitCDialect>();
    target.addLegalOp<ModuleOp, UnrealizedConversionCastOp>();
    target.addIllegalDialect<MoEDialect, func::FuncDialect,
                             tensor::TensorDialect, arith::ArithDialect,
                             mesh::MeshDialect>();
    if (failed(applyFullConversion(module, target, std::move(patterns))))
      return signalPassFailure();

    OpPassManager cleanup(ModuleOp::getOperationName());
    cleanup.addPass(createReconcileUnrealizedCastsPass());
    if (failed(runPipeline(cleanup, module)))
      return signalPassFailure();

    for (auto step : llvm::to_vector(module.getOps<emitc::FuncOp>()))
      addDescription(step);

    // The ABI header first; then the functions.
    OpBuilder b(module.getBodyRegion());
    b.setInsertionPointToStart(module.getBody());
    b.create<emitc::IncludeOp>(module.getLoc(), "runtime/step/Step.h",
                               /*is_standard_include=*/false);
  }

  /// `<f>_arena_bytes()` and `<f>_signature()` after each function, so the
  /// driver can check that the manifest describes this very code (a stale
  /// manifest with a smaller arena would overflow it).
  void addDescription(emitc::FuncOp step) {
    MLIRContext *context = &getContext();
    OpBuilder b(context);
    b.setInsertionPointAfter(step);
    Location loc = step.getLoc();
    auto externC = b.getStrArrayAttr({"extern \"C\""});
    auto constant = [&](StringRef name, Type type, Attribute value) {
      auto func = b.create<emitc::FuncOp>(
          loc, (step.getSymName() + name).str(),
          FunctionType::get(context, {}, {type}));
      func.setSpecifiersAttr(externC);
      OpBuilder body = OpBuilder::atBlockBegin(func.addEntryBlock());
      Value v = body.create<emitc::ConstantOp>(loc, type, value);
      body.create<emitc::ReturnOp>(loc, v);
      b.setInsertionPointAfter(func);
    };
    Type i64 = b.getI64Type();
    constant("_arena_bytes", i64,
             b.getI64IntegerAttr(cast<IntegerAttr>(
                                     step->getAttr("moe.arena_bytes"))
                                     .getInt()));
    auto text = step->getAttrOfType<StringAttr>("moe.signature");
    constant("_signature",
             emitc::PointerType::get(emitc::OpaqueType::get(context,
                                                            "const char")),
             emitc::OpaqueAttr::get(context,
                                    ("\"" + text.getValue() + "\"").str()));
  }

  FailureOr<EmitCTarget> parseTarget() {
    EmitCTarget result;
    if (target != "cpu" && target != "cuda") {
      emitError(getOperation().getLoc())
          << "unknown target '" << target << "' (expected cpu or cuda)";
      return failure();
    }
    result.name = target;
    StringRef precision = gemmPrecision;
    std::string enumerator;
    if (precision == "f32")
      enumerator = "F32";
    else if (precision == "tf32")
      enumerator = "TF32";
    else if (precision == "bf16")
      enumerator = "BF16";
    else {
      emitError(getOperation().getLoc())
          << "unknown gemm-precision '" << precision
          << "' (expected f32, tf32 or bf16)";
      return failure();
    }
    // The CPU computes in f32 whatever it is told; say so in the code.
    if (result.name == "cpu")
      enumerator = "F32";
    result.gemmPrecision = "moe::rt::GemmPrecision::" + enumerator;
    return result;
  }

  /// The step writes result #i at `offsets[i]` of an arena of `arenaBytes`
  /// bytes: a hand-edited plan must keep every buffer inside the arena,
  /// aligned as moe-plan-buffers aligns it, and apart from the op's other
  /// results.
  static LogicalResult checkArenaPlacement(Operation *op,
                                           ArrayRef<int64_t> offsets,
                                           int64_t arenaBytes) {
    SmallVector<std::pair<int64_t, int64_t>> placed(offsets.size(), {0, 0});
    for (auto [i, offset] : llvm::enumerate(offsets)) {
      if (offset == kPoolOffset)
        continue;
      auto error = [&, i = i, offset = offset]() {
        return op->emitOpError("result #")
               << i << " at arena offset " << offset << " ";
      };
      if (offset < 0)
        return error() << "is negative (" << kPoolOffset
                       << " alone marks a pool-allocated result)";
      if (offset % kBufferAlignment != 0)
        return error() << "is not a multiple of " << kBufferAlignment
                       << " bytes";
      std::optional<int64_t> bytes = plannedBufferBytes(op->getResult(i));
      std::optional<int64_t> end =
          bytes ? llvm::checkedAdd(offset, *bytes) : std::nullopt;
      if (!end || *end > arenaBytes)
        return error() << "with "
                       << (bytes ? std::to_string(*bytes) : "2^63 or more")
                       << " bytes ends past moe.arena_bytes = " << arenaBytes;
      placed[i] = {offset, *end};
      for (auto [j, other] : llvm::enumerate(ArrayRef(placed).take_front(i)))
        if (other.first < *end && offset < other.second)
          return error() << "overlaps result #" << j << " at arena offset "
                         << other.first;
    }
    return success();
  }

  /// Buffers of different ops that are live at once must not overlap
  /// either: the planner's lifetimes (BufferLiveness) replayed over the
  /// plan. After checkArenaPlacement, so every buffer lies in the arena.
  static LogicalResult checkLiveBuffersApart(Block &body) {
    BufferLiveness liveness(body);
    // The live buffers by offset (disjoint), and when each dies.
    std::map<int64_t, std::pair<int64_t, OpResult>> live;
    std::multimap<int64_t, int64_t> deaths;
    for (Operation &op : body) {
      int64_t here = liveness.index.lookup(&op);
      for (auto it = deaths.begin(); it != deaths.end() && it->first < here;
           it = deaths.erase(it))
        live.erase(it->second);
      auto offsets = op.getAttrOfType<DenseI64ArrayAttr>("moe.offsets");
      if (!BufferLiveness::allocates(op) || !offsets)
        continue;
      for (auto [offset, result] :
           llvm::zip(offsets.asArrayRef(), op.getResults())) {
        int64_t end = offset + plannedBufferBytes(result).value_or(0);
        if (offset == kPoolOffset || end == offset)
          continue;
        auto clash = live.lower_bound(offset);
        if (clash == live.end() || clash->first >= end)
          clash =
              clash != live.begin() && std::prev(clash)->second.first > offset
                  ? std::prev(clash)
                  : live.end();
        if (clash != live.end()) {
          OpResult other = clash->second.second;
          return op.emitOpError("result #")
                 << result.getResultNumber() << " at arena offset " << offset
                 << " overlaps result #" << other.getResultNumber() << " of "
                 << other.getOwner()->getName() << " at arena offset "
                 << clash->first << ", which is still live";
        }
        live.emplace(offset, std::make_pair(end, result));
        deaths.emplace(liveness.death(result), offset);
      }
    }
    return success();
  }

  /// Every op must have a lowering and, if it makes tensors, their places
  /// in the arena.
  LogicalResult checkPlanned(func::FuncOp func,
                             const llvm::StringSet<> &lowered,
                             const TypeConverter &converter) {
    if (!func->hasAttr("moe.arena_bytes"))
      return func.emitOpError(
          "has no buffer plan: run moe-plan-buffers (the last pass of "
          "--moe-train-pipeline and --moe-inference-pipeline) before code "
          "generation");
    auto arenaBytes = func->getAttrOfType<IntegerAttr>("moe.arena_bytes");
    if (!arenaBytes || !arenaBytes.getType().isInteger(64) ||
        arenaBytes.getInt() < 0)
      return func.emitOpError("has moe.arena_bytes = ")
             << func->getAttr("moe.arena_bytes")
             << ", expected a non-negative i64";
    if (!func.getBody().hasOneBlock())
      return func.emitOpError("must be a single block to generate code");
    WalkResult walk = func.walk([&](Operation *op) -> WalkResult {
      if (op == func.getOperation())
        return WalkResult::advance();
      StringRef name = op->getName().getStringRef();
      if (!lowered.contains(name))
        return op->emitOpError("has no lowering to the runtime step ABI "
                               "(runtime/step/Step.h)");
      if (isa<tensor::CollapseShapeOp, tensor::ExpandShapeOp, AdamUpdateOp,
              AdamUpdateRowsOp, func::ReturnOp>(op))
        return WalkResult::advance();
      // Backward ops find the forward op's saved state after its output.
      if (auto grad = dyn_cast<LSTMGradOp>(op)) {
        auto forward = grad.getOutput().getDefiningOp<LSTMOp>();
        if (!forward || forward.getInput() != grad.getInput() ||
            forward.getInputWeights() != grad.getInputWeights() ||
            forward.getRecurrentWeights() != grad.getRecurrentWeights())
          return op->emitOpError(
              "'output' must be the result of the moe.lstm it "
              "differentiates: its saved state is found there");
      }
      if (auto grad = dyn_cast<AttentionGradOp>(op)) {
        auto forward = grad.getContext().getDefiningOp<AttentionOp>();
        if (!forward || forward.getSource() != grad.getSource() ||
            forward.getTarget() != grad.getTarget())
          return op->emitOpError(
              "'context' must be the result of the moe.attention it "
              "differentiates: its saved state is found there");
      }
      if (auto constant = dyn_cast<arith::ConstantOp>(op)) {
        auto splat = dyn_cast<SplatElementsAttr>(constant.getValue());
        if (!splat || !splat.getElementType().isF32())
          return op->emitOpError("only splat f32 tensor constants are "
                                 "supported by code generation");
      }
      auto offsets = op->getAttrOfType<DenseI64ArrayAttr>("moe.offsets");
      if (!offsets || offsets.size() != static_cast<int64_t>(
                                            op->getNumResults()))
        return op->emitOpError("has no arena offsets for its results: run "
                               "moe-plan-buffers after the last transform");
      if (failed(checkArenaPlacement(op, offsets, arenaBytes.getInt())))
        return WalkResult::interrupt();
      for (auto [offset, result] : llvm::zip(offsets.asArrayRef(),
                                             op->getResults()))
        if (offset == kPoolOffset && !getShard(result.getType()) &&
            !isa<emitc::OpaqueType>(converter.convertType(result.getType())))
          return op->emitOpError("has a result of type ")
                 << result.getType()
                 << " that code generation cannot allocate (only expert "
                    "shards and f32 rows of a dynamic count)";
      return WalkResult::advance();
    });
    if (walk.wasInterrupted())
      return failure();
    return checkLiveBuffersApart(func.getBody().front());
  }

  /// func.func @f(args) -> emitc.func @f(ctx) whose entry fetches every
  /// argument with argument<T>(ctx, i); the body moves over unchanged and
  /// the conversion lowers it.
  LogicalResult buildSkeleton(func::FuncOp func,
                              const TypeConverter &converter) {
    MLIRContext *context = &getContext();
    OpBuilder b(func);
    auto ctxType = emitc::PointerType::get(
        emitc::OpaqueType::get(context, "moe::rt::step::Context"));
    auto step = b.create<emitc::FuncOp>(func.getLoc(), func.getSymName(),
                                        FunctionType::get(context, {ctxType},
                                                          {}));
    step.setSpecifiersAttr(b.getStrArrayAttr({"extern \"C\""}));
    step->setAttr("moe.arena_bytes", func->getAttr("moe.arena_bytes"));
    step->setAttr("moe.signature",
                  b.getStringAttr(argumentSignature(func.getArgumentTypes())));
    Block *entry = step.addEntryBlock();
    Block &body = func.getBody().front();
    entry->getOperations().splice(entry->end(), body.getOperations());
    b.setInsertionPointToStart(entry);
    for (BlockArgument arg : body.getArguments()) {
      // Arguments are pointers: rows of a run-time count exist only inside
      // a step.
      Type type = converter.convertType(arg.getType());
      if (!isa_and_nonnull<emitc::PointerType>(type))
        return func.emitOpError("argument #")
               << arg.getArgNumber() << " has type " << arg.getType()
               << ", which code generation does not support (static f32, "
                  "i32 or i64 tensors)";
      Value pointer = stepPointer(b, func.getLoc(), entry->getArgument(0),
                                  "argument", type, arg.getArgNumber());
      arg.replaceAllUsesWith(
          b.create<UnrealizedConversionCastOp>(func.getLoc(), arg.getType(),
                                               pointer)
              .getResult(0));
    }
    func.erase();
    return success();
  }
};

} // namespace
