//===- MoEInterfaces.td - Interfaces of the moe dialect ----*- tablegen -*-===//

#ifndef MOE_DIALECT_MOEINTERFACES_TD
#define MOE_DIALECT_MOEINTERFACES_TD

include "mlir/IR/OpBase.td"

def MoE_GradientOpInterface : OpInterface<"GradientOpInterface"> {
  let cppNamespace = "::mlir::moe";
  let description = [{
    An op that knows its reverse-mode derivative. moe-autodiff walks the
    forward graph backwards and asks each op for the vector-Jacobian
    product: given the gradients of its results, build the gradients of its
    operands. Each op builds its own backward ops, so the backward of
    routing (softmax gates, the normal-CDF load estimate, the Eq. 8
    thresholds) lives next to the forward op it belongs to.
  }];
  let methods = [
    InterfaceMethod<[{
        Builds the gradients of the operands at the builder's insertion
        point. `resultGrads` has one entry per result, null where the result
        does not reach the loss (at least one is non-null). Fills
        `operandGrads` with one entry per operand, null where the operand
        takes no gradient (integer tensors, saved values).
      }],
      "::mlir::LogicalResult", "buildGradient",
      (ins "::mlir::OpBuilder &":$builder,
           "::mlir::ArrayRef<::mlir::Value>":$resultGrads,
           "::llvm::SmallVectorImpl<::mlir::Value> &":$operandGrads)>
  ];
}

#endif // MOE_DIALECT_MOEINTERFACES_TD
