//===- AddDecodeStep.cpp - Incremental decoding functions of each model ---===//
//
// Derives <model>_encode and <model>_decode_step from every model function,
// so that translation and generation run one position at a time. See the
// pass description in Passes.td.
//
//===----------------------------------------------------------------------===//

#include "passes/ModelFunctions.h"
#include "passes/Passes.h"

#include "dialect/MoEDialect.h"
#include "dialect/MoEOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Verifier.h"
#include "llvm/ADT/SetVector.h"

namespace mlir::moe {
#define GEN_PASS_DEF_ADDDECODESTEP
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

#define DEBUG_TYPE "moe-add-decode-step"

namespace {

/// The argument of `func` whose moe.input is `name`, or null.
BlockArgument inputNamed(func::FuncOp func, StringRef name) {
  for (BlockArgument arg : func.getArguments())
    if (auto attr = func.getArgAttrOfType<StringAttr>(
            arg.getArgNumber(), MoEDialect::kInputAttrName);
        attr && attr.getValue() == name)
      return arg;
  return nullptr;
}

/// `type` [batch, time, ...] with time 1.
RankedTensorType atOnePosition(Type type) {
  auto tensor = cast<RankedTensorType>(type);
  SmallVector<int64_t> shape(tensor.getShape());
  shape[1] = 1;
  return RankedTensorType::get(shape, tensor.getElementType());
}

/// The name of an LSTM's state: its input weights' parameter name without
/// the last component ("decoder.lstm.input_weights" -> "decoder.lstm"), or
/// "lstm<index>" when the weights are not a parameter.
std::string lstmStateName(func::FuncOp model, LSTMOp lstm, unsigned index) {
  if (auto arg = dyn_cast<BlockArgument>(lstm.getInputWeights()))
    if (auto name = model.getArgAttrOfType<StringAttr>(
            arg.getArgNumber(), MoEDialect::kParamAttrName)) {
      StringRef prefix = name.getValue().rsplit('.').first;
      if (prefix != name.getValue())
        return prefix.str();
    }
  return "lstm" + std::to_string(index);
}

/// What the decode step of one model is made of.
struct DecodeSplit {
  SoftmaxCrossEntropyOp loss;
  /// Ops that depend on tokens and that the loss's hidden state needs, in
  /// program order: the decoder, re-typed to one position.
  SmallVector<Operation *> decoder;
  /// Values the decoder reads from ops that do not depend on tokens (the
  /// encoder's outputs), in the order the decoder first reads them.
  llvm::SetVector<Value> encoderOutputs;
  /// Function arguments the decoder or the encoder reads.
  DenseSet<Value> decoderArgs, encoderArgs;
};

class DecodeStepBuilder {
public:
  DecodeStepBuilder(func::FuncOp model) : model(model) {}

  /// Splits the model; fails (with an error naming what) where it cannot.
  LogicalResult split() {
    BlockArgument tokens = inputNamed(model, "tokens");
    BlockArgument targets = inputNamed(model, "targets");
    if (!tokens || !targets)
      return model.emitOpError("has no 'tokens' and 'targets' inputs: "
                               "moe-add-decode-step derives the decoder "
                               "from them");
    auto tokenType = cast<RankedTensorType>(tokens.getType());
    if (tokenType.getRank() != 2)
      return model.emitOpError("has 'tokens' of rank ")
             << tokenType.getRank() << "; moe-add-decode-step needs "
             << "[batch, time]";
    batch = tokenType.getDimSize(0);
    time = tokenType.getDimSize(1);
    model.walk([&](SoftmaxCrossEntropyOp op) {
      if (op.getTargets() == targets)
        s.loss = s.loss ? SoftmaxCrossEntropyOp() : op;
    });
    if (!s.loss)
      return model.emitOpError("has not exactly one moe.softmax_cross_entropy "
                               "of its 'targets': moe-add-decode-step "
                               "replaces it by the logits");

    // Ops that depend on the tokens (forward).
    DenseSet<Operation *> tokenDependent;
    for (Operation &op : model.getBody().front())
      for (Value operand : op.getOperands())
        if (operand == tokens ||
            (operand.getDefiningOp() &&
             tokenDependent.contains(operand.getDefiningOp()))) {
          tokenDependent.insert(&op);
          break;
        }
    // Of those, what the loss's hidden state and weights need (backward).
    DenseSet<Operation *> needed;
    SmallVector<Value> work(s.loss->getOperands());
    while (!work.empty()) {
      Value v = work.pop_back_val();
      if (auto arg = dyn_cast<BlockArgument>(v)) {
        if (arg != targets)
          s.decoderArgs.insert(arg);
        continue;
      }
      Operation *def = v.getDefiningOp();
      if (!tokenDependent.contains(def)) {
        continue;
      }
      if (!needed.insert(def).second)
        continue;
      llvm::append_range(work, def->getOperands());
    }
    for (Operation &op : model.getBody().front())
      if (needed.contains(&op))
        s.decoder.push_back(&op);
    // Encoder outputs in the order the decoder reads them; the encoder's
    // arguments.
    for (Operation *op : s.decoder)
      for (Value operand : op->getOperands())
        if (Operation *def = operand.getDefiningOp();
            def && !tokenDependent.contains(def))
          s.encoderOutputs.insert(operand);
    for (Value operand : s.loss->getOperands())
      if (Operation *def = operand.getDefiningOp();
          def && !tokenDependent.contains(def))
        s.encoderOutputs.insert(operand);
    SmallVector<Value> encoderWork(s.encoderOutputs.begin(),
                                   s.encoderOutputs.end());
    DenseSet<Value> seen(encoderWork.begin(), encoderWork.end());
    while (!encoderWork.empty()) {
      Value v = encoderWork.pop_back_val();
      if (isa<BlockArgument>(v)) {
        s.encoderArgs.insert(v);
        continue;
      }
      for (Value operand : v.getDefiningOp()->getOperands())
        if (seen.insert(operand).second)
          encoderWork.push_back(operand);
    }
    return checkDecoderOps();
  }

  /// <model>_encode: the encoder outputs from the model's other inputs.
  func::FuncOp buildEncode(StringRef name) {
    OpBuilder b(model.getContext());
    SmallVector<unsigned> args = keptArguments(s.encoderArgs);
    SmallVector<Type> argTypes, resultTypes;
    for (unsigned i : args)
      argTypes.push_back(model.getArgument(i).getType());
    for (Value v : s.encoderOutputs)
      resultTypes.push_back(v.getType());
    auto func = b.create<func::FuncOp>(
        model.getLoc(), name, b.getFunctionType(argTypes, resultTypes));
    Block *body = func.addEntryBlock();
    IRMapping mapping;
    for (auto [k, i] : llvm::enumerate(args)) {
      func.setArgAttrs(k, model.getArgAttrDict(i));
      mapping.map(model.getArgument(i), func.getArgument(k));
    }
    // The encoder outputs' backward slice, in program order.
    DenseSet<Operation *> slice;
    SmallVector<Value> work(s.encoderOutputs.begin(), s.encoderOutputs.end());
    while (!work.empty()) {
      Operation *def = work.pop_back_val().getDefiningOp();
      if (def && slice.insert(def).second)
        llvm::append_range(work, def->getOperands());
    }
    b.setInsertionPointToStart(body);
    for (Operation &op : model.getBody().front())
      if (slice.contains(&op))
        b.clone(op, mapping);
    SmallVector<Value> results;
    for (auto [k, v] : llvm::enumerate(s.encoderOutputs)) {
      results.push_back(mapping.lookup(v));
      func.setResultAttr(k, MoEDialect::kStateAttrName,
                         b.getStringAttr(encoderOutputName(k)));
    }
    b.create<func::ReturnOp>(model.getLoc(), results);
    return func;
  }

  /// <model>_decode_step: the logits of one position and the decoder
  /// LSTMs' states after it, from the token ids [batch, 1], the encoder
  /// outputs and the states before it.
  func::FuncOp buildDecodeStep(StringRef name) {
    MLIRContext *ctx = model.getContext();
    OpBuilder b(ctx);
    Location loc = model.getLoc();
    SmallVector<unsigned> args = keptArguments(s.decoderArgs);
    SmallVector<Type> argTypes;
    SmallVector<DictionaryAttr> argAttrs;
    for (unsigned i : args) {
      Type type = model.getArgument(i).getType();
      if (model.getArgument(i) == inputNamed(model, "tokens"))
        type = atOnePosition(type);
      argTypes.push_back(type);
      argAttrs.push_back(model.getArgAttrDict(i));
    }
    auto stateAttr = [&](StringRef value) {
      return b.getDictionaryAttr(
          b.getNamedAttr(MoEDialect::kStateAttrName, b.getStringAttr(value)));
    };
    for (auto [k, v] : llvm::enumerate(s.encoderOutputs)) {
      argTypes.push_back(v.getType());
      argAttrs.push_back(stateAttr(encoderOutputName(k)));
    }
    // The state of every decoder LSTM: h [batch, P], c [batch, H].
    SmallVector<LSTMOp> lstms;
    for (Operation *op : s.decoder)
      if (auto lstm = dyn_cast<LSTMOp>(op))
        lstms.push_back(lstm);
    SmallVector<std::string> stateNames;
    for (auto [k, lstm] : llvm::enumerate(lstms)) {
      std::string prefix = lstmStateName(model, lstm, k);
      int64_t hidden = cast<RankedTensorType>(lstm.getInputWeights().getType())
                           .getDimSize(1) /
                       4;
      int64_t out =
          cast<RankedTensorType>(lstm.getOutput().getType()).getDimSize(2);
      argTypes.push_back(RankedTensorType::get({batch, out}, b.getF32Type()));
      argTypes.push_back(
          RankedTensorType::get({batch, hidden}, b.getF32Type()));
      stateNames.push_back(prefix + ".hidden");
      stateNames.push_back(prefix + ".cell");
      argAttrs.push_back(stateAttr(stateNames[stateNames.size() - 2]));
      argAttrs.push_back(stateAttr(stateNames.back()));
    }
    int64_t vocab =
        cast<RankedTensorType>(s.loss.getWeights().getType()).getDimSize(0);
    SmallVector<Type> resultTypes = {
        RankedTensorType::get({batch, vocab}, b.getF32Type())};
    for (unsigned i = 0; i < stateNames.size(); ++i)
      resultTypes.push_back(argTypes[argTypes.size() - stateNames.size() + i]);
    auto func = b.create<func::FuncOp>(
        loc, name, b.getFunctionType(argTypes, resultTypes));
    Block *body = func.addEntryBlock();
    for (auto [k, attrs] : llvm::enumerate(argAttrs))
      func.setArgAttrs(k, attrs);
    IRMapping mapping;
    for (auto [k, i] : llvm::enumerate(args))
      mapping.map(model.getArgument(i), func.getArgument(k));
    unsigned next = args.size();
    for (Value v : s.encoderOutputs)
      mapping.map(v, func.getArgument(next++));
    unsigned firstState = next;

    b.setInsertionPointToStart(body);
    SmallVector<Value> finalStates;
    unsigned lstmIndex = 0;
    for (Operation *op : s.decoder) {
      if (auto dropout = dyn_cast<DropoutOp>(op)) {
        // Inference: dropout is the identity.
        mapping.map(dropout.getOutput(), mapping.lookup(dropout.getInput()));
        continue;
      }
      if (auto lstm = dyn_cast<LSTMOp>(op)) {
        Value h0 = func.getArgument(firstState + 2 * lstmIndex);
        Value c0 = func.getArgument(firstState + 2 * lstmIndex + 1);
        ++lstmIndex;
        auto step = b.create<LSTMOp>(
            lstm.getLoc(), atOnePosition(lstm.getOutput().getType()),
            TypeRange{h0.getType(), c0.getType()},
            mapping.lookup(lstm.getInput()),
            mapping.lookup(lstm.getInputWeights()),
            mapping.lookup(lstm.getRecurrentWeights()),
            mapping.lookup(lstm.getBias()),
            lstm.getProjection() ? mapping.lookup(lstm.getProjection())
                                 : Value(),
            ValueRange{h0, c0});
        mapping.map(lstm.getOutput(), step.getOutput());
        finalStates.append({step.getFinalHidden(), step.getFinalCell()});
        continue;
      }
      Operation *copy = b.clone(*op, mapping);
      for (OpResult result : copy->getResults())
        if (isPerPosition(result.getType()))
          result.setType(atOnePosition(result.getType()));
    }

    // The logits of the position: hidden [batch, 1, d] -> [batch, d],
    // times the output weights [vocab, d] transposed, plus the bias.
    Value hidden = mapping.lookup(s.loss.getHidden());
    auto hiddenType = cast<RankedTensorType>(hidden.getType());
    int64_t d = hiddenType.getShape().back();
    Value rows = b.create<tensor::CollapseShapeOp>(
        s.loss.getLoc(), RankedTensorType::get({batch, d}, b.getF32Type()),
        hidden, SmallVector<ReassociationIndices>{{0, 1}, {2}});
    auto logitsType = RankedTensorType::get({batch, vocab}, b.getF32Type());
    auto matmul = b.create<MatmulOp>(s.loss.getLoc(), logitsType, rows,
                                     mapping.lookup(s.loss.getWeights()));
    matmul.setTransposeRhs(true);
    Value logits =
        b.create<BiasAddOp>(s.loss.getLoc(), logitsType, matmul.getResult(),
                            mapping.lookup(s.loss.getBias()));
    SmallVector<Value> results = {logits};
    llvm::append_range(results, finalStates);
    b.create<func::ReturnOp>(loc, results);
    func.setResultAttr(0, "moe.output", b.getStringAttr("logits"));
    for (auto [k, stateName] : llvm::enumerate(stateNames))
      func.setResultAttr(k + 1, MoEDialect::kStateAttrName,
                         b.getStringAttr(stateName));
    return func;
  }

  bool hasEncoder() const { return !s.encoderOutputs.empty(); }

private:
  /// Whether a result of a decoder op is [batch, time, ...], per position.
  bool isPerPosition(Type type) const {
    auto tensor = dyn_cast<RankedTensorType>(type);
    return tensor && tensor.getRank() >= 3 && tensor.getDimSize(0) == batch &&
           tensor.getDimSize(1) == time;
  }

  static std::string encoderOutputName(unsigned k) {
    return "encoder_output" + (k ? std::to_string(k) : std::string());
  }

  /// The numbers of the model's arguments in `used`, in order.
  SmallVector<unsigned> keptArguments(const DenseSet<Value> &used) {
    SmallVector<unsigned> kept;
    for (BlockArgument arg : model.getArguments())
      if (used.contains(arg))
        kept.push_back(arg.getArgNumber());
    return kept;
  }

  /// Fails on a decoder op that one position at a time would change.
  LogicalResult checkDecoderOps() {
    DenseSet<Operation *> decoder(s.decoder.begin(), s.decoder.end());
    for (Operation *op : s.decoder) {
      auto refuse = [&](const Twine &why) {
        return op->emitOpError("cannot run one position at a time in "
                               "moe-add-decode-step: ")
               << why;
      };
      if (isa<EmbeddingOp, ResidualOp, DropoutOp, LSTMOp, LinearOp>(op)) {
        if (auto lstm = dyn_cast<LSTMOp>(op); lstm && lstm.hasState())
          return refuse("it already takes a state");
      } else if (auto attention = dyn_cast<AttentionOp>(op)) {
        // Attending over the decoder's own positions needs all of them.
        if (Operation *def = attention.getSource().getDefiningOp();
            def && decoder.contains(def))
          return refuse("it attends over the decoder's own positions");
      } else if (isa<MoELayerOp, HierarchicalMoELayerOp>(op)) {
        bool padded = isa<MoELayerOp>(op)
                          ? bool(cast<MoELayerOp>(op).getLengths())
                          : bool(cast<HierarchicalMoELayerOp>(op).getLengths());
        if (padded)
          return refuse("its lengths mark padded positions of the whole "
                        "sequence");
      } else {
        return refuse("no rule re-types it to one position");
      }
      // Per-position results, or scalars (the MoE layers' auxiliary losses,
      // which the decode step does not return).
      for (Value result : op->getResults()) {
        auto tensor = dyn_cast<RankedTensorType>(result.getType());
        if (!tensor || (tensor.getRank() != 0 && !isPerPosition(tensor)))
          return refuse("its result is not [batch, time, ...]");
      }
    }
    auto hidden = cast<RankedTensorType>(s.loss.getHidden().getType());
    if (!isPerPosition(hidden) || hidden.getRank() != 3)
      return s.loss.emitOpError("cannot run one position at a time in "
                                "moe-add-decode-step: its hidden state is not "
                                "[batch, time, d]");
    return success();
  }

  func::FuncOp model;
  DecodeSplit s;
  int64_t batch = 0, time = 0;
};

struct AddDecodeStepPass
    : public mlir::moe::impl::AddDecodeStepBase<AddDecodeStepPass> {
  using AddDecodeStepBase::AddDecodeStepBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);
    SmallVector<func::FuncOp> models;
    for (auto func : module.getOps<func::FuncOp>())
      if (isModelFunction(func))
        models.push_back(func);
    UnitAttr inference = UnitAttr::get(&getContext());
    for (func::FuncOp model : models) {
      DecodeStepBuilder builder(model);
      // Why the model gets no decode functions, in skip-unsupported mode:
      // the first error, kept on the model for the manifest.
      std::string reason;
      auto keepReason = [&](Diagnostic &diag) {
        if (reason.empty() && diag.getSeverity() == DiagnosticSeverity::Error)
          reason = diag.str();
        return success();
      };
      auto skip = [&] {
        model->setAttr(MoEDialect::kNoDecodeStepAttrName,
                       StringAttr::get(&getContext(), reason));
      };
      if (skipUnsupported) {
        // The pipeline adds decode steps where it can: a model it cannot
        // split still trains and evaluates.
        ScopedDiagnosticHandler quiet(&getContext(), keepReason);
        if (failed(builder.split())) {
          skip();
          continue;
        }
      } else if (failed(builder.split())) {
        return signalPassFailure();
      }
      SmallVector<func::FuncOp> added;
      std::string encodeName = (model.getSymName() + "_encode").str();
      std::string stepName = (model.getSymName() + "_decode_step").str();
      for (StringRef name : {StringRef(encodeName), StringRef(stepName)})
        if (symbols.lookup(name)) {
          model.emitOpError("already has a function named @")
              << name << "; rename one of them";
          return signalPassFailure();
        }
      if (builder.hasEncoder())
        added.push_back(builder.buildEncode(encodeName));
      added.push_back(builder.buildDecodeStep(stepName));
      Block::iterator at = std::next(Block::iterator(model));
      for (func::FuncOp func : added) {
        func->setAttr(MoEDialect::kInferenceAttrName, inference);
        symbols.insert(func, at);
        at = std::next(Block::iterator(func));
      }
      // A layer may not be valid at one position (a batchwise hierarchical
      // layer's rows per expert); its verifier names it.
      bool valid = true;
      {
        std::optional<ScopedDiagnosticHandler> quiet;
        if (skipUnsupported)
          quiet.emplace(&getContext(), keepReason);
        for (func::FuncOp func : added)
          valid &= succeeded(verify(func));
      }
      if (valid)
        continue;
      if (!skipUnsupported)
        return signalPassFailure();
      for (func::FuncOp func : added) {
        symbols.erase(func);
      }
      skip();
    }
  }
};

} // namespace
