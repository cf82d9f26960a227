//===- MoECollectiveOps.td - Ops of data-parallel graphs ---*- tablegen -*-===//
//
// What moe-partition adds besides the upstream mesh dialect's collectives.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_DIALECT_MOECOLLECTIVEOPS_TD
#define MOE_DIALECT_MOECOLLECTIVEOPS_TD

include "dialect/MoEDialect.td"
include "dialect/MoEInterfaces.td"
include "mlir/IR/SymbolInterfaces.td"

def MoE_DivideByMeshSizeOp : MoE_Op<"divide_by_mesh_size", [
    SameOperandsAndResultType,
    DeclareOpInterfaceMethods<SymbolUserOpInterface>,
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "divides by the number of devices of a mesh";
  let description = [{
    The adjoint of `mesh.all_reduce ... reduction = <average>`: a loss that
    every rank computes as the average of the ranks' values depends on each
    rank's value with weight 1 / R. The mesh's size is only known when the
    graph runs (one compiled graph serves any number of ranks), so this is
    an op rather than a `moe.scale`.

    ```mlir
    %d = moe.divide_by_mesh_size %g on @ranks : tensor<f32>
    ```
  }];
  let arguments = (ins MoE_F32Tensor:$input, FlatSymbolRefAttr:$mesh);
  let results = (outs MoE_F32Tensor:$output);
  let assemblyFormat = "$input `on` $mesh attr-dict `:` type($output)";
}

#endif // MOE_DIALECT_MOECOLLECTIVEOPS_TD
