//===- MoEToEmitC.h - Lowering of moe ops to step ABI calls ----*- C++ -*-===//
//
// Every moe op of a planned function becomes one `emitc.call_opaque` of a
// function of runtime/step/Step.h: an op that is one kernel calls the
// kernel's step entry (moe::rt::step::K, with the kernel's name and
// parameter order from runtime/Kernels.def), the others a step op of their
// own. The patterns are split by op family
// (populateMoE<Family>ToEmitCPatterns); what differs between the CPU and
// CUDA code is in EmitCTarget.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_CODEGEN_MOETOEMITC_H
#define MOE_CODEGEN_MOETOEMITC_H

#include "mlir/Dialect/EmitC/IR/EmitC.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/Transforms/DialectConversion.h"

#include <functional>
#include <optional>
#include <string>

namespace mlir::moe {

/// The backend seam of code generation.
struct EmitCTarget {
  /// "cpu" or "cuda".
  std::string name = "cpu";
  /// C++ enumerator passed to the large GEMMs (experts, LSTM, output
  /// layer), e.g. "moe::rt::GemmPrecision::TF32".
  std::string gemmPrecision = "moe::rt::GemmPrecision::F32";

  /// The enumerator of a router product: TF32 where the op allows it and
  /// the target has tensor cores, f32 otherwise.
  std::string routerPrecision(bool allowTf32) const {
    return allowTf32 && name == "cuda" ? "moe::rt::GemmPrecision::TF32"
                                       : "moe::rt::GemmPrecision::F32";
  }
};

/// The namespace of the step ABI in the emitted code.
constexpr llvm::StringLiteral kStepNamespace = "moe::rt::step::";

/// Tensors become `!emitc.ptr<element>` (f32, i32, i64, static shapes);
/// f32 tensors of a dynamic number of rows (the rows an expert-parallel
/// rank received, the row gradients of all data-parallel ranks) become
/// `moe::rt::step::Rows`, a pointer and its rows, and i32 vectors of a
/// dynamic size (row ids) `moe::rt::step::RowIds`.
class StepTypeConverter : public TypeConverter {
public:
  StepTypeConverter();
};

/// Collects the operands and literal arguments of one step ABI call, in
/// order, and replaces the op with pointers to its results in the arena.
/// The call always starts with the function's context.
class StepCall {
public:
  StepCall(Operation *op, ConversionPatternRewriter &rewriter,
           const TypeConverter &converter, StringRef callee);

  /// A pointer operand (an already converted value); a null Value passes
  /// nullptr (an absent optional operand).
  StepCall &ptr(Value converted);
  /// Every operand of `converted` in order (an adaptor's getOperands(): the
  /// op's operands, where the callee takes them in the op's order).
  StepCall &operands(ValueRange converted);
  /// The arena pointer of result `i`; results(): all of them in order.
  StepCall &result(unsigned i);
  StepCall &results();
  StepCall &i64(int64_t value);
  StepCall &f32(float value);
  StepCall &flag(bool value);
  /// A C++ expression, e.g. an enumerator.
  StepCall &literal(StringRef text);
  /// Replaces the op's results by `replacements` instead of arena pointers
  /// (in-place ops).
  StepCall &replaceWith(ValueRange replacements);
  /// Calls `callee` (in the step namespace) instead of the pattern's.
  StepCall &callee(StringRef name);
  /// The element count of `tensor` on this rank: a literal, or
  /// shardCount(ctx, n) for a #moe.shard tensor, whose rank holds 1 / R.
  StepCall &count(Value tensor);
  /// Result `i` is what the call returns (a moe::rt::step::Rows whose rows
  /// are known only when the graph runs) rather than a pointer argument.
  StepCall &returns(unsigned i);
  /// The call returns `aggregateType` (a struct of the step ABI) and result
  /// `i` is `part<T>(aggregate, i)`, T its C++ type: an op with several
  /// results whose rows are known only when the graph runs.
  StepCall &returnsParts(StringRef aggregateType);

  /// Emits the call and replaces the op.
  LogicalResult emit();

  /// The arena pointer of result `i` of the op.
  Value resultPointer(unsigned i);

private:
  Operation *op;
  ConversionPatternRewriter &rewriter;
  const TypeConverter &converter;
  std::string callee_;
  SmallVector<Value> callOperands;
  SmallVector<Attribute> args;
  SmallVector<Value> resultPtrs;
  SmallVector<Value> replacements;
  bool replaced = false;
  std::optional<unsigned> returned;
  std::optional<std::string> aggregate;
};

/// A pattern that lowers OpTy with `describe`, which fills in the call.
template <typename OpTy>
class StepCallPattern : public OpConversionPattern<OpTy> {
public:
  using Adaptor = typename OpTy::Adaptor;
  using Describe = std::function<void(OpTy, Adaptor, StepCall &)>;

  StepCallPattern(const TypeConverter &converter, MLIRContext *context,
                  StringRef callee, Describe describe)
      : OpConversionPattern<OpTy>(converter, context), callee(callee.str()),
        describe(std::move(describe)) {}

  LogicalResult
  matchAndRewrite(OpTy op, Adaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    StepCall call(op, rewriter, *this->getTypeConverter(),
                  (kStepNamespace + callee).str());
    describe(op, adaptor, call);
    return call.emit();
  }

private:
  std::string callee;
  Describe describe;
};

/// Adds a StepCallPattern for OpTy calling moe::rt::step::<callee>.
template <typename OpTy, typename Fn>
void addStepCall(RewritePatternSet &patterns, const TypeConverter &converter,
                 StringRef callee, Fn &&describe) {
  patterns.add<StepCallPattern<OpTy>>(
      converter, patterns.getContext(), callee,
      typename StepCallPattern<OpTy>::Describe(std::forward<Fn>(describe)));
}

/// The C++ type of an f32 tensor with a dynamic number of rows.
constexpr llvm::StringLiteral kRowsType = "moe::rt::step::Rows";
/// The C++ type of an i32 vector of a dynamic size (row ids).
constexpr llvm::StringLiteral kRowIdsType = "moe::rt::step::RowIds";

/// Whether `tensor` has a dynamic number of rows (expert-side rows).
bool hasDynamicRows(Value tensor);

/// Number of elements of a tensor value; dimension i of it.
int64_t numElements(Value tensor);
int64_t dimSize(Value tensor, unsigned i);

void populateMoEAlgebraToEmitCPatterns(const TypeConverter &converter,
                                       RewritePatternSet &patterns,
                                       const EmitCTarget &target);
void populateMoERoutingToEmitCPatterns(const TypeConverter &converter,
                                       RewritePatternSet &patterns,
                                       const EmitCTarget &target);
void populateMoEDispatchToEmitCPatterns(const TypeConverter &converter,
                                        RewritePatternSet &patterns,
                                        const EmitCTarget &target);
void populateMoESequenceToEmitCPatterns(const TypeConverter &converter,
                                        RewritePatternSet &patterns,
                                        const EmitCTarget &target);
void populateMoECollectivesToEmitCPatterns(const TypeConverter &converter,
                                           RewritePatternSet &patterns,
                                           const EmitCTarget &target);
void populateMoELossToEmitCPatterns(const TypeConverter &converter,
                                    RewritePatternSet &patterns,
                                    const EmitCTarget &target);

} // namespace mlir::moe

#endif // MOE_CODEGEN_MOETOEMITC_H
