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

//===----------------------------------------------------------------------===//
// Expert parallelism: the token exchange
//===----------------------------------------------------------------------===//

def MoE_ExchangeCountsOp : MoE_Op<"exchange_counts", [
    DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "tells every rank how many rows it receives for its experts";
  let description = [{
    The count exchange before an expert-parallel dispatch. Rank r of R holds
    the experts [r n / R, (r + 1) n / R) of n; `expert_offset` [n + 1] is
    this rank's dispatch plan (rows of each expert in its buffer). Results:

    * `recv_counts` [n]: the table [R, n / R] (source-major) of the rows
      each rank sends to each of this rank's experts;
    * `recv_offset` [n + 1]: the segments of the received buffer by global
      expert, expert-major and by source rank within an expert (the order
      of one rank computing the global batch); experts of other ranks have
      empty segments.

    ```mlir
    %counts, %offset = moe.exchange_counts %off on @ranks
        : (tensor<9xi32>) -> (tensor<8xi32>, tensor<9xi32>)
    ```
  }];
  let arguments = (ins MoE_IdVector:$expert_offset, FlatSymbolRefAttr:$mesh);
  let results = (outs MoE_IdVector:$recv_counts, MoE_IdVector:$recv_offset);
  let assemblyFormat = [{
    $expert_offset `on` $mesh attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def MoE_ExchangeToExpertsOp : MoE_Op<"exchange_to_experts", [
    DeclareOpInterfaceMethods<SymbolUserOpInterface>,
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "all-to-all of dispatch-buffer rows to the experts' ranks";
  let description = [{
    Sends the segment of each expert of this rank's dispatch buffer [A, d]
    (laid out by `expert_offset`) to the rank holding the expert, and
    returns the rows this rank received, laid out by the `recv_offset` of
    the moe.exchange_counts that made `recv_counts`. Their number depends
    on the routing of every rank: the result's first dimension is dynamic.
    Its gradient is moe.exchange_to_tokens.

    ```mlir
    %recv = moe.exchange_to_experts %buf, %off, %counts on @ranks
        : (tensor<128x16xf32>, tensor<9xi32>, tensor<8xi32>)
        -> tensor<?x16xf32>
    ```
  }];
  let arguments = (ins MoE_Matrix:$buffer, MoE_IdVector:$expert_offset,
                       MoE_IdVector:$recv_counts, FlatSymbolRefAttr:$mesh);
  let results = (outs MoE_Matrix:$received);
  let assemblyFormat = [{
    $buffer `,` $expert_offset `,` $recv_counts `on` $mesh attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def MoE_ExchangeToTokensOp : MoE_Op<"exchange_to_tokens", [
    DeclareOpInterfaceMethods<SymbolUserOpInterface>,
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "all-to-all of expert outputs back to the tokens' ranks";
  let description = [{
    The inverse of moe.exchange_to_experts with the same `expert_offset`
    and `recv_counts`: every received row goes back to the rank and the
    dispatch-buffer row it came from, so the result [A, d] is laid out like
    this rank's dispatch buffer. Its gradient is moe.exchange_to_experts.

    ```mlir
    %back = moe.exchange_to_tokens %y, %off, %counts on @ranks
        : (tensor<?x16xf32>, tensor<9xi32>, tensor<8xi32>)
        -> tensor<128x16xf32>
    ```
  }];
  let arguments = (ins MoE_Matrix:$expert_rows, MoE_IdVector:$expert_offset,
                       MoE_IdVector:$recv_counts, FlatSymbolRefAttr:$mesh);
  let results = (outs MoE_Matrix:$buffer);
  let assemblyFormat = [{
    $expert_rows `,` $expert_offset `,` $recv_counts `on` $mesh attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Data parallelism: row-sparse gradients
//===----------------------------------------------------------------------===//

def MoE_SumRowsOverRanksOp : MoE_Op<"sum_rows_over_ranks", [
    DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "sums the row-sparse gradients of every rank";
  let description = [{
    The data-parallel form of a row-sparse gradient's all-reduce. `rows` [N]
    are this rank's distinct row ids in [0, vocab) then -1 (what
    moe.embedding_row_grad and moe.softmax_cross_entropy_row_grad make) and
    each of `values` ([N, ...], one or two: a table's rows and its bias's)
    holds their gradients. Every rank gets the same `summed_rows` [R N]:
    the distinct ids of all R ranks, ascending, then -1, and for each of
    `values` the sum over the ranks of each id's rows, added in rank order
    (zero for the -1 rows). The rows of all ranks are gathered (N per rank,
    the compiled capacity) and merged, so the result has R N rows, a number
    known when the graph runs.

    ```mlir
    %ids, %w, %b = moe.sum_rows_over_ranks %rows, %dw, %db on @ranks
        {vocab = 50 : i64}
        : (tensor<18xi32>, tensor<18x8xf32>, tensor<18xf32>)
        -> (tensor<?xi32>, tensor<?x8xf32>, tensor<?xf32>)
    ```
  }];
  let arguments = (ins MoE_IdVector:$rows, Variadic<MoE_F32Tensor>:$values,
                       FlatSymbolRefAttr:$mesh,
                       ConfinedAttr<I64Attr, [IntPositive]>:$vocab);
  let results = (outs MoE_IdVector:$summed_rows,
                      Variadic<RankedTensorOf<[F32]>>:$summed_values);
  let assemblyFormat = [{
    $rows `,` $values `on` $mesh attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

#endif // MOE_DIALECT_MOECOLLECTIVEOPS_TD
