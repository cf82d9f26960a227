//===- MoEPrimitiveOps.td - Primitive ops the kernels implement -*- tablegen -*-===//
//
// What moe-decompose lowers model ops to: one op per runtime kernel
// (runtime/Backend.h), on rank-2 [tokens, d] tensors. Routing decisions are
// carried in assignment form: `expert` / `gate` tensors of A assignments,
// token-major; for top-k gating every token has k assignments (A = T * k),
// for batchwise gating a row-pointer tensor [T + 1] says where each token's
// assignments start.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_DIALECT_MOEPRIMITIVEOPS_TD
#define MOE_DIALECT_MOEPRIMITIVEOPS_TD

include "dialect/MoEDialect.td"
include "dialect/MoEAttrs.td"
include "dialect/MoEInterfaces.td"

def MoE_Matrix : 2DTensorOf<[F32]>;
def MoE_Vector : 1DTensorOf<[F32]>;
def MoE_IdMatrix : 2DTensorOf<[I32]>;
def MoE_IdVector : 1DTensorOf<[I32]>;

//===----------------------------------------------------------------------===//
// Dense algebra
//===----------------------------------------------------------------------===//

def MoE_MatmulOp : MoE_Op<"matmul", [
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "matrix product op(lhs) * op(rhs), op = identity or transpose";
  let description = [{
    `transpose_lhs` / `transpose_rhs` read an operand as its transpose, so
    that the backward products need no explicit transposes. Maps to one
    GEMM, in f32: these are the router's products, whose logits decide the
    routing. `allow_tf32` (the pipelines' `router-precision=tf32`) lets a
    GPU use TF32 tensor cores for this product and its gradients; the
    routing math after the logits stays f32, and the CPU ignores it.

    ```mlir
    %logits = moe.matmul %x, %w_gate
        : (tensor<2560x512xf32>, tensor<512x8xf32>) -> tensor<2560x8xf32>
    %dw = moe.matmul %x, %dy {transpose_lhs}
        : (tensor<2560x512xf32>, tensor<2560x8xf32>) -> tensor<512x8xf32>
    ```
  }];
  let arguments = (ins MoE_Matrix:$lhs, MoE_Matrix:$rhs,
                       UnitAttr:$transpose_lhs, UnitAttr:$transpose_rhs,
                       UnitAttr:$allow_tf32);
  let results = (outs MoE_Matrix:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def MoE_AddOp : MoE_Op<"add", [SameOperandsAndResultType, Commutative,
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "element-wise sum (gradient accumulation)";
  let description = [{
    ```mlir
    %g = moe.add %g1, %g2 : tensor<512x8xf32>
    ```
  }];
  let arguments = (ins MoE_F32Tensor:$lhs, MoE_F32Tensor:$rhs);
  let results = (outs MoE_F32Tensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
}

def MoE_SumRowsOp : MoE_Op<"sum_rows"> {
  let summary = "sums [..., d] over every dimension but the last";
  let description = [{
    The gradient of a bias; summed in row order (deterministic).

    ```mlir
    %db = moe.sum_rows %dy : (tensor<64x16xf32>) -> tensor<16xf32>
    ```
  }];
  let arguments = (ins MoE_F32Tensor:$input);
  let results = (outs MoE_Vector:$output);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def MoE_BiasAddOp : MoE_Op<"bias_add", [
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "adds a [d] bias to every row of [..., d]";
  let description = [{
    ```mlir
    %y = moe.bias_add %x, %b : (tensor<64x16xf32>, tensor<16xf32>) -> tensor<64x16xf32>
    ```
  }];
  let arguments = (ins MoE_F32Tensor:$input, MoE_Vector:$bias);
  let results = (outs MoE_F32Tensor:$output);
  let assemblyFormat = [{
    $input `,` $bias attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def MoE_ActivateOp : MoE_Op<"activate", [SameOperandsAndResultType,
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "element-wise activation (relu, sigmoid, tanh)";
  let description = [{
    ```mlir
    %y = moe.activate %x {act = #moe.activation<sigmoid>} : tensor<64x16xf32>
    ```
  }];
  let arguments = (ins MoE_F32TensorOrRows:$input, MoE_ActivationAttr:$act);
  let results = (outs MoE_F32TensorOrRows:$output);
  let assemblyFormat = "$input attr-dict `:` type($output)";
  let hasVerifier = 1;
}

def MoE_ScaleOp : MoE_Op<"scale", [SameOperandsAndResultType,
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "multiplies a tensor by a constant factor";
  let description = [{
    Used for loss weights and to turn a token sum into a mean.

    ```mlir
    %y = moe.scale %x {factor = 1.000000e-01 : f32} : tensor<f32>
    ```
  }];
  let arguments = (ins MoE_F32Tensor:$input, F32Attr:$factor);
  let results = (outs MoE_F32Tensor:$output);
  let assemblyFormat = "$input attr-dict `:` type($output)";
}

//===----------------------------------------------------------------------===//
// Gating
//===----------------------------------------------------------------------===//

def MoE_NoisyTopKOp : MoE_Op<"noisy_top_k", [AttrSizedOperandSegments,
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "top-k gating with optional trainable Gaussian noise";
  let description = [{
    With `noise_logits`: H = clean + z * (softplus(noise_logits) + eps),
    z ~ N(0, 1) from the counter-based RNG stream `rng_stream` (training
    only); without: H = clean (plain top-k, Eq. 3-4). Keeps the k largest
    entries of each row of H, ties to the lower index. Element (t, i)
    draws value t * n + i of the stream (each rank at its shard's offset
    of the global batch's stream), or, with `noise_position` [T] (a
    permutation of the rows), row position[a] draws stream row a: the
    secondary level of a hierarchical layer passes its group plan's
    positions, so a row's noise follows its token's primary assignment
    rather than its place in this rank's group-major buffer, and R ranks
    draw what one rank of the global batch draws.

    Results: `expert` [T, k] (descending H), `gate` [T, k] (softmax over the
    kept entries), and what the load estimate and the backward pass need:
    `noisy` H [T, n], `noise_std` [T, n] and `top_values` [T, k + 1].

    ```mlir
    %e, %g, %h, %s, %top = moe.noisy_top_k %clean, noise %raw {k = 2 : i64,
        noise_eps = 1.000000e-02 : f32, rng_stream = 0 : i64}
        : (tensor<64x8xf32>, tensor<64x8xf32>) -> (tensor<64x2xi32>,
           tensor<64x2xf32>, tensor<64x8xf32>, tensor<64x8xf32>,
           tensor<64x3xf32>)
    ```
  }];
  let arguments = (ins
    MoE_Matrix:$clean_logits,
    Optional<MoE_Matrix>:$noise_logits,
    Optional<MoE_IdVector>:$noise_position,
    ConfinedAttr<I64Attr, [IntPositive]>:$k,
    DefaultValuedAttr<F32Attr, "1.0e-2">:$noise_eps,
    DefaultValuedAttr<I64Attr, "0">:$rng_stream
  );
  let results = (outs MoE_IdMatrix:$expert, MoE_Matrix:$gate,
                      MoE_Matrix:$noisy, MoE_Matrix:$noise_std,
                      MoE_Matrix:$top_values);
  let assemblyFormat = [{
    $clean_logits (`,` `noise` $noise_logits^)?
    (`noise_position` $noise_position^)? attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def MoE_LoadEstimateOp : MoE_Op<"load_estimate", [
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "smooth estimate of the number of tokens per expert";
  let description = [{
    load_i = sum_x Phi((clean_i - thr_i) / std_i), where thr_i is the k-th
    largest noisy value of x excluding expert i (paper, final version):
    the probability that expert i stays in the top k if only its own noise
    were drawn again. Differentiable, unlike the token counts.

    The gradient flows to the clean and the raw noise logits (`noise`)
    only: the kernel differentiates through the noisy values, the noise
    std and the thresholds itself, so the saved `noisy`, `noise_std` and
    `top_values` operands take no gradient.

    With `rows(row_ptr)` ([T + 1], the assignments of `moe.drop_padding`)
    the sum leaves out the tokens with no assignment (padding).

    ```mlir
    %load = moe.load_estimate %clean, noise %raw, %noisy, %std, %top
        {k = 2 : i64} : (tensor<64x8xf32>, tensor<64x8xf32>,
        tensor<64x8xf32>, tensor<64x8xf32>, tensor<64x3xf32>) -> tensor<8xf32>
    ```
  }];
  let arguments = (ins MoE_Matrix:$clean_logits, MoE_Matrix:$noise_logits,
                       MoE_Matrix:$noisy, MoE_Matrix:$noise_std,
                       MoE_Matrix:$top_values, Optional<MoE_IdVector>:$row_ptr,
                       ConfinedAttr<I64Attr, [IntPositive]>:$k);
  let results = (outs MoE_Vector:$load);
  let assemblyFormat = [{
    $clean_logits `,` `noise` $noise_logits `,` $noisy `,` $noise_std `,`
    $top_values (`rows` $row_ptr^)? attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def MoE_DropPaddingOp : MoE_Op<"drop_padding", [
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "drops the assignments of padded positions (CSR form)";
  let description = [{
    The top-k selection of T = batch * time tokens, k per token (`expert`
    and `gate` [T * k], token-major), without the tokens at padded
    positions: token t = b * time + j is padding when j >= lengths[b]
    (`lengths` i32 [batch], each in [1, time], checked when the step
    runs). The result is the row-pointer form that threshold masks use for
    a data-dependent number of assignments: `row_ptr` [T + 1] (k for a
    valid token, 0 for padding), and the kept assignments packed in token
    order into `expert` and `gate` [T * k]; the slots past row_ptr[T] hold
    expert 0 and gate 0, so sums over every slot (the importance) count
    the kept ones only. The dispatch plan, the experts and the combine
    then skip the padding.

    ```mlir
    %rows, %e, %g = moe.drop_padding %expert, %gate lengths %len
        : (tensor<128xi32>, tensor<128xf32>, tensor<4xi32>)
        -> (tensor<65xi32>, tensor<128xi32>, tensor<128xf32>)
    ```
  }];
  let arguments = (ins MoE_IdVector:$expert, MoE_Vector:$gate,
                       MoE_IdVector:$lengths);
  let results = (outs MoE_IdVector:$row_ptr, MoE_IdVector:$kept_expert,
                      MoE_Vector:$kept_gate);
  let assemblyFormat = [{
    $expert `,` $gate `lengths` $lengths attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// Tokens (T): the row pointers' length less one.
    int64_t getTokens() {
      return ::llvm::cast<::mlir::RankedTensorType>(getRowPtr().getType())
                 .getDimSize(0) - 1;
    }
  }];
}

def MoE_SoftmaxOp : MoE_Op<"softmax", [SameOperandsAndResultType,
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "row-wise softmax (dense gating, Eq. 2)";
  let description = [{
    ```mlir
    %p = moe.softmax %logits : tensor<64x8xf32>
    ```
  }];
  let arguments = (ins MoE_Matrix:$logits);
  let results = (outs MoE_Matrix:$probs);
  let assemblyFormat = "$logits attr-dict `:` type($probs)";
}

def MoE_BatchwiseMaskOp : MoE_Op<"batchwise_mask", [
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "Appendix A: top m tokens per expert over the batch";
  let description = [{
    Keeps, for each expert, the m tokens with the largest gate
    probability G_sigma = softmax(logits) of the token (ties to the lower
    token): the paper masks G_sigma (Eq. 3), and ranking probabilities is
    not ranking logits across tokens. Results: the 0/1 `mask`
    [T, n], and the assignments token-major: `row_ptr` [T + 1], `expert`
    [n * m] and `gate` [n * m] (softmax over each token's kept logits).

    ```mlir
    %mask, %rows, %e, %g = moe.batchwise_mask %logits {m = 16 : i64}
        : (tensor<64x8xf32>) -> (tensor<64x8xf32>, tensor<65xi32>,
           tensor<128xi32>, tensor<128xf32>)
    ```

    With `combined_batch` (moe-decompose's `combined-batch`, for
    data-parallel training) the ranking is over the combined batch of all R
    ranks (paper Appendix A): each expert keeps the m * R tokens with the
    largest probability among every rank's tokens, ties to the lower rank
    and then the lower token, as one rank of the global batch would choose.
    A rank's share varies, so `expert` and `gate` have a capacity C (at most
    T * n, checked at run time): row_ptr[T] slots are used, the others hold
    expert 0 and gate 0.
  }];
  let arguments = (ins MoE_Matrix:$logits,
                       ConfinedAttr<I64Attr, [IntPositive]>:$m,
                       UnitAttr:$combined_batch);
  let results = (outs MoE_Matrix:$mask, MoE_IdVector:$row_ptr,
                      MoE_IdVector:$expert, MoE_Vector:$gate);
  let assemblyFormat = [{
    $logits attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def MoE_ThresholdMaskOp : MoE_Op<"threshold_mask", [
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "Eq. 7: keep expert i when its probability exceeds T_i";
  let description = [{
    The inference-time replacement of the batchwise mask: each token keeps
    the experts whose gate probability softmax(logits) exceeds the learned
    per-expert threshold (a probability), so
    the number of assignments depends on the data. Assignments are written
    token-major into `expert` and `gate` buffers of a compiled capacity C,
    1 <= C <= T * n (both the same size; moe-decompose sizes them from its
    `threshold-capacity` option, T * n being room for every token and
    expert); `row_ptr[T]` is the number actually used, and the ops
    downstream read only that many. No token is dropped: when more than C
    assignments pass, the kernel fails at run time instead. Gates are the
    softmax over each token's kept logits.

    ```mlir
    %rows, %e, %g = moe.threshold_mask %logits, %t
        : (tensor<64x8xf32>, tensor<8xf32>)
        -> (tensor<65xi32>, tensor<256xi32>, tensor<256xf32>)
    ```
  }];
  let arguments = (ins MoE_Matrix:$logits, MoE_Vector:$thresholds);
  let results = (outs MoE_IdVector:$row_ptr, MoE_IdVector:$expert,
                      MoE_Vector:$gate);
  let assemblyFormat = [{
    $logits `,` $thresholds attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def MoE_BatchwiseThresholdLossOp : MoE_Op<"batchwise_threshold_loss", [
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "Eq. 8: trains thresholds to imitate the batchwise mask";
  let description = [{
    L = sum_x sum_i (Mthreshold(x, T)_i - Mbatchwise(X, m)_x,i) (X_x,i - T_i)
    with X = softmax(logits), the gate probabilities. X is treated as a
    constant: the loss trains the thresholds.

    ```mlir
    %l = moe.batchwise_threshold_loss %logits, %mask, %thresholds
        : (tensor<64x8xf32>, tensor<64x8xf32>, tensor<8xf32>) -> tensor<f32>
    ```
  }];
  let arguments = (ins MoE_Matrix:$logits, MoE_Matrix:$batch_mask,
                       MoE_Vector:$thresholds);
  let results = (outs MoE_Scalar:$loss);
  let assemblyFormat = [{
    $logits `,` $batch_mask `,` $thresholds attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def MoE_ImportanceOp : MoE_Op<"importance", [
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "per-expert sum of gate values over the batch";
  let description = [{
    Importance_i = sum_x G(x)_i from assignments (`expert`, `gate`).

    ```mlir
    %imp = moe.importance %e, %g {num_experts = 8 : i64}
        : (tensor<128xi32>, tensor<128xf32>) -> tensor<8xf32>
    ```
  }];
  let arguments = (ins MoE_IdVector:$expert, MoE_Vector:$gate,
                       ConfinedAttr<I64Attr, [IntPositive]>:$num_experts);
  let results = (outs MoE_Vector:$importance);
  let assemblyFormat = [{
    $expert `,` $gate attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def MoE_CvSquaredOp : MoE_Op<"cv_squared", [
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "squared coefficient of variation, times a loss weight";
  let description = [{
    weight * var(v) / (mean(v)^2 + 1e-10), population variance. Applied to
    importance and load for the balancing losses.

    ```mlir
    %l = moe.cv_squared %imp {weight = 1.000000e-01 : f32}
        : (tensor<8xf32>) -> tensor<f32>
    ```
  }];
  let arguments = (ins MoE_Vector:$values, F32Attr:$weight);
  let results = (outs MoE_Scalar:$loss);
  let assemblyFormat = "$values attr-dict `:` functional-type(operands, results)";
}

def MoE_L2BalanceOp : MoE_Op<"l2_balance", [
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "Eq. 5: L2 distance of mean gates from uniform";
  let description = [{
    weight / 2 * sum_i (importance_i / tokens - 1 / n)^2.

    ```mlir
    %l = moe.l2_balance %imp {tokens = 64 : i64, weight = 1.0 : f32}
        : (tensor<8xf32>) -> tensor<f32>
    ```
  }];
  let arguments = (ins MoE_Vector:$importance,
                       ConfinedAttr<I64Attr, [IntPositive]>:$tokens,
                       F32Attr:$weight);
  let results = (outs MoE_Scalar:$loss);
  let assemblyFormat = "$importance attr-dict `:` functional-type(operands, results)";
}

//===----------------------------------------------------------------------===//
// Dispatch, experts, combine
//===----------------------------------------------------------------------===//

def MoE_DispatchPlanOp : MoE_Op<"dispatch_plan", [AttrSizedOperandSegments]> {
  let summary = "sorts assignments into per-expert segments";
  let description = [{
    A stable counting sort of the A assignments by `expert`: `expert_offset`
    [n + 1] (segment e is rows [offset_e, offset_e+1) of the dispatch
    buffer; empty experts have empty segments, no token is dropped),
    `position` [A] (buffer row of assignment a) and `token` [A] (token
    feeding buffer row p). `row_ptr` [T + 1] gives each token's assignments;
    without it every token has A / tokens of them.

    `gate` [A] (optional) is the assignments' gate values. It does not
    change the plan: the plan is where token, expert and gate meet, so a
    runtime asked to capture the routing (moe-run inspect) records each
    assignment's (token, expert, gate) here; otherwise it is not read.

    ```mlir
    %off, %pos, %tok = moe.dispatch_plan %e gates %g {num_experts = 8 : i64,
        tokens = 64 : i64} : (tensor<128xi32>, tensor<128xf32>)
        -> (tensor<9xi32>, tensor<128xi32>, tensor<128xi32>)
    ```
  }];
  let arguments = (ins MoE_IdVector:$expert, Optional<MoE_IdVector>:$row_ptr,
                       Optional<MoE_Vector>:$gate,
                       ConfinedAttr<I64Attr, [IntPositive]>:$num_experts,
                       ConfinedAttr<I64Attr, [IntPositive]>:$tokens);
  let results = (outs MoE_IdVector:$expert_offset, MoE_IdVector:$position,
                      MoE_IdVector:$token);
  let assemblyFormat = [{
    $expert (`rows` $row_ptr^)? (`gates` $gate^)? attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def MoE_DispatchOp : MoE_Op<"dispatch", [
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "gathers token rows into the expert-major buffer";
  let description = [{
    Row p of the result is row `token[p]` of the input.

    ```mlir
    %buf = moe.dispatch %x, %tok
        : (tensor<64x16xf32>, tensor<128xi32>) -> tensor<128x16xf32>
    ```
  }];
  let arguments = (ins MoE_Matrix:$input, MoE_IdVector:$token);
  let results = (outs MoE_Matrix:$buffer);
  let assemblyFormat = [{
    $input `,` $token attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def MoE_GroupedMatmulOp : MoE_Op<"grouped_matmul", [
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "one matrix product per expert segment";
  let description = [{
    Rows [offset_e, offset_e+1) of `buffer` times `weights[e]`
    ([n, d_in, d_out]); segments of zero rows cost nothing.

    `rows_per_expert = m` states that every segment has exactly m rows
    (offset_e = e m, buffer [n m, d_in]), as a batchwise mask over one
    rank's batch guarantees: backends then run one strided-batched GEMM
    without reading the offsets (moe-mark-equal-segments sets it).

    ```mlir
    %out = moe.grouped_matmul %buf, %w, %off
        : (tensor<128x16xf32>, tensor<8x16x16xf32>, tensor<9xi32>)
        -> tensor<128x16xf32>
    ```
  }];
  let arguments = (ins MoE_Matrix:$buffer, MoE_F32Tensor:$weights,
                       MoE_IdVector:$expert_offset,
                       OptionalAttr<ConfinedAttr<I64Attr, [IntPositive]>>:$rows_per_expert);
  let results = (outs MoE_Matrix:$output);
  // Segments are data-dependent unless moe-mark-equal-segments says not.
  let builders = [OpBuilder<(ins "Type":$output, "Value":$buffer,
                                 "Value":$weights, "Value":$expert_offset), [{
    build($_builder, $_state, output, buffer, weights, expert_offset,
          IntegerAttr());
  }]>];
  let assemblyFormat = [{
    $buffer `,` $weights `,` $expert_offset attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def MoE_CombineOp : MoE_Op<"combine", [
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "gate-weighted sum of expert outputs back per token (Eq. 1)";
  let description = [{
    y_t = sum over t's assignments a of gate[a] * expert_out[position[a]],
    summed in assignment order (deterministic). `row_ptr` as in
    `moe.dispatch_plan`.

    ```mlir
    %y = moe.combine %out, %g, %pos {tokens = 64 : i64}
        : (tensor<128x16xf32>, tensor<128xf32>, tensor<128xi32>)
        -> tensor<64x16xf32>
    ```
  }];
  let arguments = (ins MoE_Matrix:$expert_output, MoE_Vector:$gate,
                       MoE_IdVector:$position, Optional<MoE_IdVector>:$row_ptr,
                       ConfinedAttr<I64Attr, [IntPositive]>:$tokens);
  let results = (outs MoE_Matrix:$output);
  let assemblyFormat = [{
    $expert_output `,` $gate `,` $position (`rows` $row_ptr^)? attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def MoE_ComposeRoutesOp : MoE_Op<"compose_routes", [
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "two-level routing: primary groups times secondary experts";
  let description = [{
    Paper 3.3: a token routed to group g with gate p (primary assignment a,
    token-major) and, inside the group, to local expert j with gate s
    (row `position[a]` of the secondary selection, which is in group-major
    dispatch order) goes to expert g * experts_per_group + j with gate
    p * s. The result is token-major assignment form: assignment a
    expands into k_secondary consecutive ones.

    ```mlir
    %e, %g = moe.compose_routes %pe, %pg, %pos, %se, %sg
        {experts_per_group = 16 : i64}
        : (tensor<128xi32>, tensor<128xf32>, tensor<128xi32>,
           tensor<128x4xi32>, tensor<128x4xf32>)
        -> (tensor<512xi32>, tensor<512xf32>)
    ```
  }];
  let arguments = (ins MoE_IdVector:$primary_expert, MoE_Vector:$primary_gate,
                       MoE_IdVector:$position, MoE_IdMatrix:$secondary_expert,
                       MoE_Matrix:$secondary_gate,
                       ConfinedAttr<I64Attr, [IntPositive]>:$experts_per_group);
  let results = (outs MoE_IdVector:$expert, MoE_Vector:$gate);
  let assemblyFormat = [{
    operands attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Hierarchical routing with batchwise and threshold masks, Load_H
//===----------------------------------------------------------------------===//
//
// The secondary level of a hierarchical layer works on the rows that the
// primary level dispatched to the groups, in group-major order: group g
// owns rows [expert_offset[g], expert_offset[g + 1]) of the dispatch
// buffer. With a primary batchwise mask every group gets the same number of
// rows, so these ops take `groups` equal segments; with a primary threshold
// mask the segments come from the plan's offsets.

def MoE_GroupedBatchwiseMaskOp : MoE_Op<"grouped_batchwise_mask", [
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "Appendix A per group: top m rows per expert of each segment";
  let description = [{
    The secondary batchwise mask of a hierarchical layer (paper 3.3 with
    Appendix A at each level). The R rows of `logits` [R, n] form `groups`
    equal segments of R / groups rows (the rows dispatched to each group);
    within each segment, each of the group's n experts keeps the m rows
    with the largest gate probability softmax(logits) (ties to the lower
    row), exactly as `moe.batchwise_mask` does on the segment alone.

    Results: the 0/1 `mask` [R, n] and the assignments row-major:
    `row_ptr` [R + 1], `expert` [groups * n * m] (ids local to the group,
    in increasing order within a row) and `gate` [groups * n * m] (softmax
    over each row's kept logits).

    ```mlir
    %mask, %rows, %e, %g = moe.grouped_batchwise_mask %logits
        {groups = 2 : i64, m = 4 : i64}
        : (tensor<16x4xf32>) -> (tensor<16x4xf32>, tensor<17xi32>,
           tensor<32xi32>, tensor<32xf32>)
    ```

    With `combined_batch` (data-parallel training, after a primary
    `moe.batchwise_mask` over the combined batch) the groups' rows are the
    segments of the primary plan's `expert_offset` [groups + 1] (rows past
    expert_offset[groups] keep nothing), and each expert of group g keeps
    the m * R rows of largest probability among the rows of group g of all
    R ranks, ties to the lower rank and then the lower row: one rank of the
    global batch, whose group-major rows are the ranks' segments in rank
    order, chooses the same. A rank's share varies, so `expert` and `gate`
    have a capacity C (1 <= C <= R * n, checked at run time); row_ptr[R]
    slots are used, the others hold expert 0 and gate 0.

    ```mlir
    %mask, %rows, %e, %g = moe.grouped_batchwise_mask %logits offsets %off
        {combined_batch, groups = 2 : i64, m = 4 : i64}
        : (tensor<24x4xf32>, tensor<3xi32>) -> (tensor<24x4xf32>,
           tensor<25xi32>, tensor<64xi32>, tensor<64xf32>)
    ```
  }];
  let arguments = (ins MoE_Matrix:$logits,
                       Optional<MoE_IdVector>:$expert_offset,
                       ConfinedAttr<I64Attr, [IntPositive]>:$groups,
                       ConfinedAttr<I64Attr, [IntPositive]>:$m,
                       UnitAttr:$combined_batch);
  let results = (outs MoE_Matrix:$mask, MoE_IdVector:$row_ptr,
                      MoE_IdVector:$expert, MoE_Vector:$gate);
  let assemblyFormat = [{
    $logits (`offsets` $expert_offset^)? attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def MoE_GroupedThresholdMaskOp : MoE_Op<"grouped_threshold_mask", [
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "Eq. 7 per group: row r of group g keeps expert j when p > T[g, j]";
  let description = [{
    The inference-time secondary mask of a hierarchical layer. Row r of
    `logits` [R, n] belongs to group g when expert_offset[g] <= r <
    expert_offset[g + 1] (`expert_offset` [groups + 1] is the primary
    dispatch plan); it keeps local expert j when its gate probability
    softmax(logits[r])_j exceeds `thresholds`[g, j] ([groups, n]). Rows past
    expert_offset[groups] (unused slots of a data-dependent primary mask)
    keep nothing. As for `moe.threshold_mask`, the assignments are written
    row-major into `expert` and `gate` buffers of a compiled capacity C, 1
    <= C <= R * n (the same for both; moe-expand-hierarchy sizes them from
    its `threshold-capacity` option), `row_ptr[R]` says how many are used,
    and the kernel fails at run time when more than C pass; gates are the
    softmax over each row's kept logits.

    ```mlir
    %rows, %e, %g = moe.grouped_threshold_mask %logits, %t, %off
        : (tensor<24x4xf32>, tensor<2x4xf32>, tensor<3xi32>)
        -> (tensor<25xi32>, tensor<48xi32>, tensor<48xf32>)
    ```
  }];
  let arguments = (ins MoE_Matrix:$logits, MoE_Matrix:$thresholds,
                       MoE_IdVector:$expert_offset);
  let results = (outs MoE_IdVector:$row_ptr, MoE_IdVector:$expert,
                      MoE_Vector:$gate);
  let assemblyFormat = [{
    $logits `,` $thresholds `,` $expert_offset attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def MoE_GroupedBatchwiseThresholdLossOp
    : MoE_Op<"grouped_batchwise_threshold_loss", [
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "Eq. 8 per group: trains the secondary thresholds";
  let description = [{
    The R rows of `logits` [R, n] and `batch_mask` [R, n] form G equal
    segments, G = the first dimension of `thresholds` [G, n]; row r of
    segment g is compared with the thresholds of its group:
    L = sum_g sum_{r in g} sum_j (Mthreshold(x_r, T_g)_j - Mbatchwise_r,j)
    (X_r,j - T_g,j) with X = softmax(logits), the gate probabilities,
    treated as a constant (the loss trains the thresholds).

    ```mlir
    %l = moe.grouped_batchwise_threshold_loss %logits, %mask, %t
        : (tensor<16x4xf32>, tensor<16x4xf32>, tensor<2x4xf32>) -> tensor<f32>
    ```

    With `expert_offset` [G + 1] (the primary plan's, after a mask over the
    combined batch) group g's rows are [expert_offset[g],
    expert_offset[g + 1]) and rows past expert_offset[G] count nothing.
  }];
  let arguments = (ins MoE_Matrix:$logits, MoE_Matrix:$batch_mask,
                       MoE_Matrix:$thresholds,
                       Optional<MoE_IdVector>:$expert_offset);
  let results = (outs MoE_Scalar:$loss);
  let assemblyFormat = [{
    $logits `,` $batch_mask `,` $thresholds (`offsets` $expert_offset^)?
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def MoE_ComposeRoutesCsrOp : MoE_Op<"compose_routes_csr", [
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "two-level routing with a variable number of experts per row";
  let description = [{
    `moe.compose_routes` for masks that keep a variable number of groups
    per token and of experts per dispatched row (batchwise and threshold
    masks). The primary level is token-major assignment form
    (`primary_row_ptr` [T + 1], group `primary_expert` [A1], `primary_gate`
    [A1]); primary assignment a was dispatched to buffer row `position`[a];
    the secondary level is assignment form over the A1 buffer rows
    (`secondary_row_ptr` [A1 + 1], local `secondary_expert` [A2],
    `secondary_gate` [A2]). For each token, in order, each of its primary
    assignments a (group g, gate p) expands into the secondary assignments
    of row position[a] (local expert j, gate s): expert g *
    experts_per_group + j with gate p * s.

    Results: `row_ptr` [T + 1], `expert` [A2] and `gate` [A2]. With
    data-dependent masks only the first row_ptr[T] entries are used.

    ```mlir
    %rows, %e, %g = moe.compose_routes_csr %prows, %pe, %pg, %pos, %srows,
        %se, %sg {experts_per_group = 4 : i64}
        : (tensor<9xi32>, tensor<16xi32>, tensor<16xf32>, tensor<16xi32>,
           tensor<17xi32>, tensor<32xi32>, tensor<32xf32>)
        -> (tensor<9xi32>, tensor<32xi32>, tensor<32xf32>)
    ```
  }];
  let arguments = (ins MoE_IdVector:$primary_row_ptr,
                       MoE_IdVector:$primary_expert, MoE_Vector:$primary_gate,
                       MoE_IdVector:$position, MoE_IdVector:$secondary_row_ptr,
                       MoE_IdVector:$secondary_expert,
                       MoE_Vector:$secondary_gate,
                       ConfinedAttr<I64Attr, [IntPositive]>:$experts_per_group);
  let results = (outs MoE_IdVector:$row_ptr, MoE_IdVector:$expert,
                      MoE_Vector:$gate);
  let assemblyFormat = [{
    operands attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def MoE_GroupedLoadEstimateOp : MoE_Op<"grouped_load_estimate", [
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "smooth load per group: Load_g(X^(g)) of the secondary gates";
  let description = [{
    `moe.load_estimate` summed per group: load[g, j] = sum over the rows r
    of group g (expert_offset[g] <= r < expert_offset[g + 1]) of
    Phi((clean_r,j - thr_r,j) / std_r,j), the probability that local
    expert j stays in the row's top k. Operands as in `moe.load_estimate`
    over the R dispatched rows, n experts per group. The gradient flows to
    the clean and raw noise logits.

    ```mlir
    %load = moe.grouped_load_estimate %clean, noise %raw, %noisy, %std,
        %top, %off {k = 2 : i64}
        : (tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x4xf32>,
           tensor<12x4xf32>, tensor<12x3xf32>, tensor<5xi32>)
        -> tensor<4x4xf32>
    ```
  }];
  let arguments = (ins MoE_Matrix:$clean_logits, MoE_Matrix:$noise_logits,
                       MoE_Matrix:$noisy, MoE_Matrix:$noise_std,
                       MoE_Matrix:$top_values, MoE_IdVector:$expert_offset,
                       ConfinedAttr<I64Attr, [IntPositive]>:$k);
  let results = (outs MoE_Matrix:$load);
  let assemblyFormat = [{
    $clean_logits `,` `noise` $noise_logits `,` $noisy `,` $noise_std `,`
    $top_values `,` $expert_offset attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def MoE_HierarchicalLoadOp : MoE_Op<"hierarchical_load", [
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "Load_H: primary load times the secondary load share";
  let description = [{
    The hierarchical load estimate (paper, final version, Appendix B):
    Load_H[g * n + j] = Load_primary[g] * Load_g(X^(g))[j] / |X^(g)|, with
    |X^(g)| = expert_offset[g + 1] - expert_offset[g] the number of rows
    the primary level sent to group g (a group without rows has load 0).
    Load_primary [G] is the expected number of tokens reaching group g
    (`moe.load_estimate` of the primary gate), Load_g [G, n] the smooth
    secondary load (`moe.grouped_load_estimate`); the product keeps a
    gradient to the primary gate, which Load_g alone would not have.

    ```mlir
    %lh = moe.hierarchical_load %pload, %sload, %off
        : (tensor<4xf32>, tensor<4x4xf32>, tensor<5xi32>) -> tensor<16xf32>
    ```
  }];
  let arguments = (ins MoE_Vector:$primary_load, MoE_Matrix:$secondary_load,
                       MoE_IdVector:$expert_offset);
  let results = (outs MoE_Vector:$load);
  let assemblyFormat = [{
    operands attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Fused routing
//===----------------------------------------------------------------------===//

def MoE_FusedRouteOp : MoE_Op<"fused_route", [
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "logits, noisy top-k, load, importance and plan in one op";
  let description = [{
    Produced by moe-fuse-routing from the chain moe-decompose emits for a
    noisy top-k layer, never written by users: one op computes both gate
    matmuls, the noise, the top-(k+1) selection, the softmax over the kept
    k, the smooth load estimate, the importance and the dispatch plan.
    Everything runs in f32, except that `allow_tf32` (copied from the gate
    products) lets a GPU run the two gate GEMMs in TF32. It is one call of
    the step ABI, which makes three Backend calls
    (runtime/step/RoutingOps.cpp): two GEMMs (clean and raw noise logits)
    and fusedRouteForward, which on CUDA is one pass over [T, n] for the
    noise, selection, gates, load and importance partials and expert counts,
    then the plan from those counts (runtime/cuda/FusedRoute.cu).

    Results, in order: clean and raw noise logits [T, n]; `expert` and
    `gate` [T, k]; `noisy`, `noise_std` [T, n] and `top_values` [T, k + 1]
    (saved for the backward pass); `load` and `importance` [n];
    `expert_offset` [n + 1], `position` and `token` [T * k] (the dispatch
    plan).

    ```mlir
    %clean, %raw, %e, %g, %h, %std, %top, %load, %imp, %off, %pos, %tok =
        moe.fused_route %x, %w_gate, %w_noise {k = 2 : i64}
        : (tensor<64x16xf32>, tensor<16x8xf32>, tensor<16x8xf32>) -> (...)
    ```
  }];
  let arguments = (ins MoE_Matrix:$input, MoE_Matrix:$gate_weights,
                       MoE_Matrix:$noise_weights,
                       ConfinedAttr<I64Attr, [IntPositive]>:$k,
                       DefaultValuedAttr<F32Attr, "1.0e-2">:$noise_eps,
                       DefaultValuedAttr<I64Attr, "0">:$rng_stream,
                       UnitAttr:$allow_tf32);
  let results = (outs MoE_Matrix:$clean_logits, MoE_Matrix:$noise_logits,
                      MoE_IdMatrix:$expert, MoE_Matrix:$gate,
                      MoE_Matrix:$noisy, MoE_Matrix:$noise_std,
                      MoE_Matrix:$top_values, MoE_Vector:$load,
                      MoE_Vector:$importance, MoE_IdVector:$expert_offset,
                      MoE_IdVector:$position, MoE_IdVector:$token);
  let assemblyFormat = [{
    operands attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Optimizer
//===----------------------------------------------------------------------===//

def MoE_StepCounter : 0DTensorOf<[I64]>;

def MoE_LrScheduleOp : MoE_Op<"lr_schedule"> {
  let summary = "the paper's learning rate: warm-up, constant, 1/sqrt(step)";
  let description = [{
    At 1-based `step`: base_lr * step / warmup_steps during the warm-up,
    base_lr for the next constant_steps, then
    base_lr * sqrt((warmup_steps + constant_steps) / step) (paper 5.1:
    200 + 200 steps).

    ```mlir
    %lr = moe.lr_schedule %step {base_lr = 1.000000e-03 : f32,
        warmup_steps = 200 : i64, constant_steps = 200 : i64}
        : (tensor<i64>) -> tensor<f32>
    ```
  }];
  let arguments = (ins MoE_StepCounter:$step, F32Attr:$base_lr,
                       I64Attr:$warmup_steps, I64Attr:$constant_steps);
  let results = (outs MoE_Scalar:$lr);
  let assemblyFormat = "$step attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def MoE_AdamUpdateOp : MoE_Op<"adam_update", [
    AllTypesMatch<["param", "grad", "m", "v", "new_param", "new_m",
                   "new_v"]>]> {
  let summary = "one Adam step (bias-corrected, optional decoupled decay)";
  let description = [{
    m' = b1 m + (1 - b1) g; v' = b2 v + (1 - b2) g^2;
    p' = p - lr (m'/(1 - b1^step) / (sqrt(v'/(1 - b2^step)) + eps) + wd p).

    ```mlir
    %p2, %m2, %v2 = moe.adam_update %p, %g, %m, %v, %lr, %step
        {beta1 = 0.9 : f32, beta2 = 0.999 : f32, eps = 1.0e-08 : f32,
         weight_decay = 0.0 : f32}
        : (tensor<512x8xf32>, tensor<512x8xf32>, tensor<512x8xf32>,
           tensor<512x8xf32>, tensor<f32>, tensor<i64>)
        -> (tensor<512x8xf32>, tensor<512x8xf32>, tensor<512x8xf32>)
    ```
  }];
  let arguments = (ins MoE_F32Tensor:$param, MoE_F32Tensor:$grad,
                       MoE_F32Tensor:$m, MoE_F32Tensor:$v, MoE_Scalar:$lr,
                       MoE_StepCounter:$step, F32Attr:$beta1, F32Attr:$beta2,
                       F32Attr:$eps, F32Attr:$weight_decay);
  let results = (outs MoE_F32Tensor:$new_param, MoE_F32Tensor:$new_m,
                      MoE_F32Tensor:$new_v);
  let assemblyFormat = [{
    operands attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def MoE_AdamUpdateRowsOp : MoE_Op<"adam_update_rows", [
    AllTypesMatch<["param", "m", "v", "new_param", "new_m", "new_v"]>]> {
  let summary = "lazy Adam: moe.adam_update on the listed rows only";
  let description = [{
    TensorFlow's LazyAdamOptimizer: for each row r = rows[i] >= 0 (distinct),
    m[r], v[r] and param[r] take moe.adam_update's step with gradient
    values[i] and the global step's bias correction; -1 rows are skipped and
    untouched rows keep their parameters and moments (and get no weight
    decay). `values` is [N] followed by param's shape without its first
    dimension. Written in place like moe.adam_update. Under data
    parallelism the rows are those of all ranks (moe.sum_rows_over_ranks),
    whose number N = `?` is known when the graph runs.

    ```mlir
    %p2, %m2, %v2 = moe.adam_update_rows %p, %rows, %vals, %m, %v, %lr, %step
        {beta1 = 0.9 : f32, beta2 = 0.999 : f32, eps = 1.0e-08 : f32,
         weight_decay = 0.0 : f32}
        : (tensor<10000x512xf32>, tensor<640xi32>, tensor<640x512xf32>,
           tensor<10000x512xf32>, tensor<10000x512xf32>, tensor<f32>,
           tensor<i64>)
        -> (tensor<10000x512xf32>, tensor<10000x512xf32>,
            tensor<10000x512xf32>)
    ```
  }];
  let arguments = (ins MoE_F32Tensor:$param, MoE_IdVector:$rows,
                       RankedTensorOf<[F32]>:$values, MoE_F32Tensor:$m,
                       MoE_F32Tensor:$v, MoE_Scalar:$lr,
                       MoE_StepCounter:$step, F32Attr:$beta1, F32Attr:$beta2,
                       F32Attr:$eps, F32Attr:$weight_decay);
  let results = (outs MoE_F32Tensor:$new_param, MoE_F32Tensor:$new_m,
                      MoE_F32Tensor:$new_v);
  let assemblyFormat = [{
    operands attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

include "dialect/MoEGradientOps.td"

#endif // MOE_DIALECT_MOEPRIMITIVEOPS_TD
