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

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Value.h"

#include <algorithm>
#include <cstdint>

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

/// Gate activations, cells, shifted states and the pre-projection output
/// of an LSTM over `input` [B, S, d_in] with output [B, S, P]:
/// B*S*(6H + P) floats.
inline int64_t lstmSavedStateBytes(Value input, Value inputWeights,
                                   Value output) {
  ArrayRef<int64_t> out = cast<ShapedType>(output.getType()).getShape();
  int64_t hidden = cast<ShapedType>(inputWeights.getType()).getDimSize(1) / 4;
  (void)input;
  return alignBufferSize(out[0] * out[1] * (6 * hidden + out[2]) * 4);
}

/// tanh(xU) [B,Sx,E], tanh(yW) and the queries [B,Sy,E], the weights
/// [B,Sy,Sx].
inline int64_t attentionSavedStateBytes(Value source, Value target,
                                        Value scoreWeights) {
  ArrayRef<int64_t> src = cast<ShapedType>(source.getType()).getShape();
  ArrayRef<int64_t> tgt = cast<ShapedType>(target.getType()).getShape();
  int64_t e = cast<ShapedType>(scoreWeights.getType()).getDimSize(0);
  return alignBufferSize(src[0] *
                         (src[1] * e + 2 * tgt[1] * e + tgt[1] * src[1]) * 4);
}

} // namespace mlir::moe

#endif // MOE_PASSES_BUFFERPLAN_H
