//===- BufferPlan.h - Sizes the buffer plan and code generation share -*- C++ -*-===//
//
// moe-plan-buffers reserves saved state for the backward pass right after an
// LSTM's or attention's output; code generation passes the same sizes to
// the runtime, which checks them against its kernels' workspace sizes
// (runtime/Backend.h: lstmWorkspaceSize, attentionWorkspaceSize).
//
//===----------------------------------------------------------------------===//

#ifndef MOE_PASSES_BUFFERPLAN_H
#define MOE_PASSES_BUFFERPLAN_H

#include "dialect/MoEOps.h"
#include "dialect/VerifierUtils.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Block.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Value.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/Support/CheckedArithmetic.h"

#include <algorithm>
#include <cstdint>
#include <optional>

namespace mlir::moe {

/// Buffers start at multiples of this, enough for any vector load.
constexpr int64_t kBufferAlignment = 64;

inline int64_t alignBufferSize(int64_t bytes) {
  return (bytes + kBufferAlignment - 1) / kBufferAlignment * kBufferAlignment;
}

/// The moe.offsets entry of a result that the step allocates from the
/// call's pool (runtime/step/Step.h: Pool) rather than the arena.
constexpr int64_t kPoolOffset = -1;

/// Tensors whose size depends on the run: a dynamic dimension (rows an
/// expert-parallel rank received) or a #moe.shard encoding (a rank holds
/// 1 / R of it).
inline bool isPoolAllocated(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  return tensor && (!tensor.hasStaticShape() || tensor.getEncoding());
}

/// The product of `factors` times 4 bytes, aligned, or std::nullopt when it
/// does not fit in int64_t.
inline std::optional<int64_t> checkedFloatBytes(ArrayRef<int64_t> factors) {
  std::optional<int64_t> bytes = 4;
  for (int64_t factor : factors)
    if (!(bytes = llvm::checkedMul<int64_t>(*bytes, factor)))
      return std::nullopt;
  if (!llvm::checkedAdd<int64_t>(*bytes, kBufferAlignment))
    return std::nullopt;
  return alignBufferSize(*bytes);
}

/// `a * b + c`, or std::nullopt when it does not fit in int64_t.
inline std::optional<int64_t> checkedMulAdd(int64_t a, int64_t b, int64_t c) {
  if (std::optional<int64_t> product = llvm::checkedMul<int64_t>(a, b))
    return llvm::checkedAdd<int64_t>(*product, c);
  return std::nullopt;
}

/// Gate activations, cells, shifted states and the pre-projection output
/// of an LSTM over `input` [B, S, d_in] with output [B, S, P]:
/// B*S*(6H + P) floats; std::nullopt when that overflows.
inline std::optional<int64_t>
lstmSavedStateBytes(Value input, Value inputWeights, Value output) {
  ArrayRef<int64_t> out = cast<ShapedType>(output.getType()).getShape();
  int64_t hidden = cast<ShapedType>(inputWeights.getType()).getDimSize(1) / 4;
  (void)input;
  std::optional<int64_t> perStep = checkedMulAdd(6, hidden, out[2]);
  if (!perStep)
    return std::nullopt;
  return checkedFloatBytes({out[0], out[1], *perStep});
}

/// tanh(xU) [B,Sx,E], tanh(yW) and the queries [B,Sy,E], the weights
/// [B,Sy,Sx]; std::nullopt when that overflows.
inline std::optional<int64_t>
attentionSavedStateBytes(Value source, Value target, Value scoreWeights) {
  ArrayRef<int64_t> src = cast<ShapedType>(source.getType()).getShape();
  ArrayRef<int64_t> tgt = cast<ShapedType>(target.getType()).getShape();
  int64_t e = cast<ShapedType>(scoreWeights.getType()).getDimSize(0);
  // Sy*Sx + Sy*E + Sy*E + Sx*E, each step checked.
  std::optional<int64_t> perBatch = llvm::checkedMul<int64_t>(tgt[1], src[1]);
  for (auto [a, b] :
       {std::pair(tgt[1], e), std::pair(tgt[1], e), std::pair(src[1], e)})
    if (!perBatch || !(perBatch = checkedMulAdd(a, b, *perBatch)))
      return std::nullopt;
  return checkedFloatBytes({src[0], *perBatch});
}

/// The arena bytes moe-plan-buffers reserves for `result`: its tensor and,
/// for the output of an LSTM or attention, the saved state after it;
/// aligned, at least one alignment unit. std::nullopt when that does not
/// fit in int64_t; 0 for a value that has no arena buffer.
inline std::optional<int64_t> plannedBufferBytes(OpResult result) {
  auto tensor = dyn_cast<RankedTensorType>(result.getType());
  if (!tensor || !tensor.hasStaticShape() ||
      !tensor.getElementType().isIntOrFloat())
    return 0;
  std::optional<int64_t> bytes = checkedTensorBytes(tensor);
  if (!bytes)
    return std::nullopt;
  int64_t total = alignBufferSize(std::max<int64_t>(*bytes, 1));
  if (result.getResultNumber() != 0)
    return total;
  std::optional<int64_t> saved = 0;
  Operation *op = result.getOwner();
  if (auto lstm = dyn_cast<LSTMOp>(op))
    saved = lstmSavedStateBytes(lstm.getInput(), lstm.getInputWeights(),
                                lstm.getOutput());
  else if (auto attention = dyn_cast<AttentionOp>(op))
    saved =
        attentionSavedStateBytes(attention.getSource(), attention.getTarget(),
                                 attention.getScoreWeights());
  return saved ? llvm::checkedAdd<int64_t>(total, *saved) : std::nullopt;
}

/// The lifetimes of a straight-line function's buffers, as moe-plan-buffers
/// plans them and code generation checks a plan: ops are numbered in
/// order; views (reshapes) and Adam's in-place results share the buffer of
/// their source; a buffer lives from its op to its last read (through any
/// view), and the results of the op after that may take its place.
struct BufferLiveness {
  /// Views and in-place results to the value whose buffer they share.
  DenseMap<Value, Value> root;
  DenseMap<Operation *, int64_t> index;
  /// Of root values: the number of the last op that reads them.
  DenseMap<Value, int64_t> lastUse;

  explicit BufferLiveness(Block &body) {
    int64_t position = 0;
    for (Operation &op : body) {
      index[&op] = position;
      if (isa<tensor::CollapseShapeOp, tensor::ExpandShapeOp>(op))
        root[op.getResult(0)] = rootOf(op.getOperand(0));
      // Adam updates parameters and moments in place: the optimizer runs
      // last, after every read of the old values.
      auto inPlace = [&](auto adam) {
        root[adam.getNewParam()] = rootOf(adam.getParam());
        root[adam.getNewM()] = rootOf(adam.getM());
        root[adam.getNewV()] = rootOf(adam.getV());
      };
      if (auto adam = dyn_cast<AdamUpdateOp>(op))
        inPlace(adam);
      if (auto adam = dyn_cast<AdamUpdateRowsOp>(op))
        inPlace(adam);
      for (Value operand : op.getOperands())
        lastUse[rootOf(operand)] = position;
      ++position;
    }
  }

  Value rootOf(Value v) const {
    Value r = root.lookup(v);
    return r ? r : v;
  }

  /// Whether moe-plan-buffers gives `op` arena buffers for its results
  /// (views and Adam's updates, dense or lazy, reuse their operands').
  static bool allocates(Operation &op) {
    return !isa<tensor::CollapseShapeOp, tensor::ExpandShapeOp, AdamUpdateOp,
                AdamUpdateRowsOp>(op) &&
           op.getNumResults() != 0;
  }

  /// The number of the last op that needs the buffer of `result` (of a
  /// buffer-allocating op): its last reader, or its own op when none reads
  /// it (returned values are read by the terminator).
  int64_t death(OpResult result) const {
    auto it = lastUse.find(result);
    return it != lastUse.end() ? it->second : index.lookup(result.getOwner());
  }
};

} // namespace mlir::moe

#endif // MOE_PASSES_BUFFERPLAN_H
