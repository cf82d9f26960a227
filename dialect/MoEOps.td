//===- MoEOps.td - Model-level operations of the moe dialect -*- tablegen -*-===//
//
// What users write: layers with their parameters as operands. Shapes are
// static ranked tensors; the verifiers check that layer attributes and weight
// shapes agree and say what was expected.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_DIALECT_MOEOPS_TD
#define MOE_DIALECT_MOEOPS_TD

include "dialect/MoEDialect.td"
include "dialect/MoEAttrs.td"
include "dialect/MoEInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def MoE_F32Tensor : StaticShapeTensorOf<[F32]>;
def MoE_IdTensor : StaticShapeTensorOf<[I32]>;
// Element-wise ops also run on the rows an expert-parallel rank received,
// a matrix whose number of rows is known only when the graph runs.
def MoE_F32TensorOrRows : AnyTypeOf<[MoE_F32Tensor, 2DTensorOf<[F32]>],
    "statically shaped tensor of 32-bit float values, or a matrix of them">;
def MoE_Scalar : 0DTensorOf<[F32]>;
// A count (the non-padding targets of a batch).
def MoE_CountScalar : 0DTensorOf<[I32]>;

//===----------------------------------------------------------------------===//
// Mixture-of-experts layers
//===----------------------------------------------------------------------===//

def MoE_MoELayerOp : MoE_Op<"moe_layer", [AttrSizedOperandSegments]> {
  let summary = "sparsely-gated mixture-of-experts layer (flat)";
  let description = [{
    y = sum_i G(x)_i E_i(x) (Eq. 1), computing E_i only for the experts the
    gate picks. The input is `[tokens, d]` or `[batch, time, d]`; a rank-3
    input is routed as one batch of `batch * time` tokens (the paper's
    combination across time steps).

    Operands:
    - `gate(W_g[, noise W_noise])`: gate weights `[d, n]`; `noisy_top_k`
      also takes noise weights `[d, n]`.
    - `thresholds(T)`: per-expert thresholds `[n]` on the gate
      probabilities, required by `batchwise` (learned through Eq. 8) and
      `threshold` gating.
    - `experts(...)`: `[n, d, d_out]` for `#moe.expert<linear>`;
      `[n, d, hidden]` and `[n, hidden, d_out]` for `#moe.expert<ffn>`.
    - `lengths(L)` (optional, rank-3 input only): i32 `[batch]`; positions
      t >= L[b] of sequence b are padding. Padded positions get no experts
      (no dispatch, no expert compute, a zero sum of experts, so the output
      there is `output_act(0)`), count in neither the importance nor the
      load, and pass no gradient to the gate. Lengths must lie in
      [1, time] (checked when the step runs). Softmax, top-k and noisy
      top-k gating only: a batchwise mask keeps a fixed m tokens per
      expert, which padding would make data-dependent, and the l2_balance
      loss divides by the token count.

    Attributes: `num_experts` (n), `k` (experts per token; for `batchwise`
    the average, m = k * tokens / n per expert; absent for `softmax` and
    `threshold`), `gating`, `expert`, `output_act` (`sigmoid` in paper 5.2)
    and `losses` (balancing loss weights).

    Results: the layer output and the weighted sum of its auxiliary losses
    (a scalar to add to the training loss).

    ```mlir
    %y, %aux = moe.moe_layer %x gate(%wg, noise %wn) experts(%we) {
        num_experts = 8 : i64, k = 2 : i64,
        gating = #moe.gating<noisy_top_k>, expert = #moe.expert<linear>,
        losses = #moe.losses<importance = 1.000000e-01, load = 1.000000e-01>}
        : (tensor<64x512xf32>, tensor<512x8xf32>, tensor<512x8xf32>,
           tensor<8x512x512xf32>) -> (tensor<64x512xf32>, tensor<f32>)
    ```
  }];
  let arguments = (ins
    MoE_F32Tensor:$input,
    MoE_F32Tensor:$gate_weights,
    Optional<MoE_F32Tensor>:$noise_weights,
    Optional<MoE_F32Tensor>:$thresholds,
    Optional<MoE_IdTensor>:$lengths,
    Variadic<MoE_F32Tensor>:$expert_weights,
    ConfinedAttr<I64Attr, [IntPositive]>:$num_experts,
    OptionalAttr<ConfinedAttr<I64Attr, [IntPositive]>>:$k,
    MoE_GatingAttr:$gating,
    MoE_ExpertAttr:$expert,
    OptionalAttr<MoE_ActivationAttr>:$output_act,
    OptionalAttr<MoE_LossesAttr>:$losses
  );
  let results = (outs MoE_F32Tensor:$output, MoE_Scalar:$aux_loss);
  let assemblyFormat = [{
    $input `gate` `(` $gate_weights (`,` `noise` $noise_weights^)? `)`
    (`thresholds` `(` $thresholds^ `)`)?
    (`lengths` `(` $lengths^ `)`)?
    `experts` `(` $expert_weights `)` attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def MoE_HierarchicalMoELayerOp
    : MoE_Op<"hierarchical_moe_layer", [AttrSizedOperandSegments]> {
  let summary = "two-level hierarchical mixture-of-experts layer (paper 3.3)";
  let description = [{
    A primary gate picks `k_primary` of `groups` groups; each group is a
    secondary MoE of `num_experts / groups` experts with its own gate that
    picks `k_secondary` of them. Expert `g * (num_experts / groups) + j` is
    expert j of group g. Balancing losses apply at both levels.

    Operand shapes (m = num_experts / groups): primary gate and noise
    `[d, groups]`, primary thresholds `[groups]`; secondary gates and noise
    `[groups, d, m]`, secondary thresholds `[groups, m]`; experts as in
    `moe.moe_layer` with n = num_experts. `lengths(L)` parses but is
    refused by the verifier: padding-aware routing exists for flat layers
    only (see `moe.moe_layer`).

    ```mlir
    %y, %aux = moe.hierarchical_moe_layer %x
        primary(%pg, noise %pn) secondary(%sg, noise %sn) experts(%we) {
        num_experts = 64 : i64, groups = 8 : i64,
        k_primary = 2 : i64, k_secondary = 2 : i64,
        gating = #moe.gating<noisy_top_k>, expert = #moe.expert<linear>}
        : (tensor<64x512xf32>, tensor<512x8xf32>, tensor<512x8xf32>,
           tensor<8x512x8xf32>, tensor<8x512x8xf32>, tensor<64x512x512xf32>)
        -> (tensor<64x512xf32>, tensor<f32>)
    ```
  }];
  let arguments = (ins
    MoE_F32Tensor:$input,
    MoE_F32Tensor:$primary_gate_weights,
    Optional<MoE_F32Tensor>:$primary_noise_weights,
    Optional<MoE_F32Tensor>:$primary_thresholds,
    MoE_F32Tensor:$secondary_gate_weights,
    Optional<MoE_F32Tensor>:$secondary_noise_weights,
    Optional<MoE_F32Tensor>:$secondary_thresholds,
    Optional<MoE_IdTensor>:$lengths,
    Variadic<MoE_F32Tensor>:$expert_weights,
    ConfinedAttr<I64Attr, [IntPositive]>:$num_experts,
    ConfinedAttr<I64Attr, [IntPositive]>:$groups,
    OptionalAttr<ConfinedAttr<I64Attr, [IntPositive]>>:$k_primary,
    OptionalAttr<ConfinedAttr<I64Attr, [IntPositive]>>:$k_secondary,
    MoE_GatingAttr:$gating,
    MoE_ExpertAttr:$expert,
    OptionalAttr<MoE_ActivationAttr>:$output_act,
    OptionalAttr<MoE_LossesAttr>:$losses
  );
  let results = (outs MoE_F32Tensor:$output, MoE_Scalar:$aux_loss);
  // `%gate[, noise %n][, thresholds %t]` is a custom directive: as two ODS
  // optional groups both would start with `,`, so the generated parser would
  // commit to `noise` after any comma and reject `(%g, thresholds %t)`.
  let assemblyFormat = [{
    $input
    `primary` `(` custom<GateOperands>($primary_gate_weights,
        $primary_noise_weights, $primary_thresholds) `)`
    `secondary` `(` custom<GateOperands>($secondary_gate_weights,
        $secondary_noise_weights, $secondary_thresholds) `)`
    (`lengths` `(` $lengths^ `)`)?
    `experts` `(` $expert_weights `)` attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// Experts in each group (num_experts / groups).
    int64_t getExpertsPerGroup() { return getNumExperts() / getGroups(); }
  }];
}

//===----------------------------------------------------------------------===//
// Sequence layers
//===----------------------------------------------------------------------===//

def MoE_LSTMOp : MoE_Op<"lstm", [AttrSizedOperandSegments,
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "LSTM over a sequence, with optional output projection";
  let description = [{
    Runs an LSTM over `[batch, time, d_in]`. Gate weights are fused in the
    order (input, forget, cell, output): input weights `[d_in, 4H]`,
    recurrent weights `[P, 4H]`, bias `[4H]`. With `projection(W_p)` of
    shape `[H, P]` the output is the projected state (LSTMP, paper 5.2),
    otherwise P = H. The result is `[batch, time, P]`.

    The state starts at zero unless `state(h_0, c_0)` gives it (`[batch, P]`
    and `[batch, H]`); then the op also returns the state after the last
    step, h_T `[batch, P]` and c_T `[batch, H]`, so that a decoder can run
    one step at a time (moe-add-decode-step). That form is inference-only:
    moe-autodiff refuses it.

    ```mlir
    %h = moe.lstm %x weights(%wx, %wh, %b)
        : (tensor<32x20x512xf32>, tensor<512x2048xf32>, tensor<512x2048xf32>,
           tensor<2048xf32>) -> tensor<32x20x512xf32>
    %y, %hT, %cT = moe.lstm %x1 weights(%wx, %wh, %b) state(%h0, %c0)
        : (tensor<32x1x512xf32>, tensor<512x2048xf32>, tensor<512x2048xf32>,
           tensor<2048xf32>, tensor<32x512xf32>, tensor<32x512xf32>)
        -> (tensor<32x1x512xf32>, tensor<32x512xf32>, tensor<32x512xf32>)
    ```
  }];
  let arguments = (ins
    MoE_F32Tensor:$input,
    MoE_F32Tensor:$input_weights,
    MoE_F32Tensor:$recurrent_weights,
    MoE_F32Tensor:$bias,
    Optional<MoE_F32Tensor>:$projection,
    Variadic<MoE_F32Tensor>:$initial_state
  );
  let results = (outs MoE_F32Tensor:$output,
                      Variadic<MoE_F32Tensor>:$final_state);
  let assemblyFormat = [{
    $input `weights` `(` $input_weights `,` $recurrent_weights `,` $bias `)`
    (`projection` `(` $projection^ `)`)?
    (`state` `(` $initial_state^ `)`)? attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// Whether the op starts from a given state and returns the final one.
    bool hasState() { return !getInitialState().empty(); }
    /// h_0 [batch, P] and c_0 [batch, H]; null without state.
    Value getInitialHidden() { return hasState() ? getInitialState()[0] : Value(); }
    Value getInitialCell() { return hasState() ? getInitialState()[1] : Value(); }
    /// h_T [batch, P] and c_T [batch, H]; null without state.
    Value getFinalHidden() { return getFinalState().empty() ? Value() : getFinalState()[0]; }
    Value getFinalCell() { return getFinalState().empty() ? Value() : getFinalState()[1]; }
  }];
}

def MoE_EmbeddingOp : MoE_Op<"embedding", [
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "embedding lookup";
  let description = [{
    Rows of `table` `[vocab, d]` selected by integer ids; the result has the
    ids' shape with `d` appended. Ids outside `[0, vocab)` are a runtime
    error.

    ```mlir
    %e = moe.embedding %table[%ids]
        : (tensor<10000x512xf32>, tensor<32x20xi32>) -> tensor<32x20x512xf32>
    ```
  }];
  let arguments = (ins MoE_F32Tensor:$table, MoE_IdTensor:$ids);
  let results = (outs MoE_F32Tensor:$output);
  let assemblyFormat = [{
    $table `[` $ids `]` attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def MoE_LinearOp : MoE_Op<"linear"> {
  let summary = "affine map over the last dimension, optional activation";
  let description = [{
    `act(x W + b)` with `W` of shape `[d_in, d_out]` and optional `b`
    `[d_out]`, applied to every row of `[..., d_in]`.

    ```mlir
    %y = moe.linear %x, %w, %b {act = #moe.activation<relu>}
        : (tensor<64x512xf32>, tensor<512x2048xf32>, tensor<2048xf32>)
        -> tensor<64x2048xf32>
    ```
  }];
  let arguments = (ins
    MoE_F32Tensor:$input,
    MoE_F32Tensor:$weights,
    Optional<MoE_F32Tensor>:$bias,
    OptionalAttr<MoE_ActivationAttr>:$act
  );
  let results = (outs MoE_F32Tensor:$output);
  let assemblyFormat = [{
    $input `,` $weights (`,` $bias^)? attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def MoE_DropoutOp : MoE_Op<"dropout", [SameOperandsAndResultType,
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "inverted dropout (training only)";
  let description = [{
    Zeroes each element with probability `rate` and scales the rest by
    1 / (1 - rate) during training; the identity at inference. The mask comes
    from the counter-based RNG, keyed by the step and `rng_stream` (set by
    moe-decompose so that every dropout draws its own mask; the backward
    pass redraws the same one).

    ```mlir
    %y = moe.dropout %x {rate = 2.000000e-01 : f32} : tensor<32x20x512xf32>
    ```
  }];
  let arguments = (ins MoE_F32Tensor:$input, F32Attr:$rate,
                       DefaultValuedAttr<I64Attr, "0">:$rng_stream);
  let results = (outs MoE_F32Tensor:$output);
  let assemblyFormat = "$input attr-dict `:` type($output)";
  let hasVerifier = 1;
}

def MoE_ResidualOp : MoE_Op<"residual", [SameOperandsAndResultType,
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "residual connection: the sum of a layer's input and output";
  let description = [{
    ```mlir
    %y = moe.residual %x, %layer_out : tensor<32x20x512xf32>
    ```
  }];
  let arguments = (ins MoE_F32Tensor:$input, MoE_F32Tensor:$layer_output);
  let results = (outs MoE_F32Tensor:$output);
  let assemblyFormat = "$input `,` $layer_output attr-dict `:` type($output)";
}

def MoE_AttentionOp : MoE_Op<"attention", [
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "Appendix B attention: A = sum_e V_e tanh(xU)_e tanh(yW)_e";
  let description = [{
    For source `[batch, S_x, d_x]` and target `[batch, S_y, d_y]`, scores
    A(x_i, y_j) = sum_e V_e tanh((x_i U)_e) tanh((y_j W)_e) with `U`
    `[d_x, E]`, `W` `[d_y, E]`, `V` `[E]`; weights are the softmax over
    source positions and the result is the weighted sum of source vectors,
    `[batch, S_y, d_x]`. Unlike GNMT's additive form this is two matrix
    products, which is why the paper uses it.

    With `lengths(L)` (i32 `[batch]`) source positions i >= L[b] are
    padding: their scores are -inf before the softmax, so their weights
    are exactly 0 and no gradient reaches their source vectors, or U, W
    and V through them. Lengths must lie in [1, S_x]: a sequence with
    nothing to attend to has no softmax, and the step refuses it with an
    error naming the sequence.

    ```mlir
    %ctx = moe.attention %src, %tgt weights(%u, %w, %v)
        : (tensor<8x30x512xf32>, tensor<8x20x512xf32>, tensor<512x256xf32>,
           tensor<512x256xf32>, tensor<256xf32>) -> tensor<8x20x512xf32>
    ```
  }];
  let arguments = (ins
    MoE_F32Tensor:$source,
    MoE_F32Tensor:$target,
    MoE_F32Tensor:$source_weights,
    MoE_F32Tensor:$target_weights,
    MoE_F32Tensor:$score_weights,
    Optional<MoE_IdTensor>:$lengths
  );
  let results = (outs MoE_F32Tensor:$context);
  let assemblyFormat = [{
    $source `,` $target
    `weights` `(` $source_weights `,` $target_weights `,` $score_weights `)`
    (`lengths` `(` $lengths^ `)`)?
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Losses
//===----------------------------------------------------------------------===//

def MoE_SoftmaxCrossEntropyOp : MoE_Op<"softmax_cross_entropy", [
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "output layer + softmax cross-entropy, full or sampled";
  let description = [{
    Mean over non-padding tokens of -log softmax(h W^T + b)[target], with
    output weights `[vocab, d]`, bias `[vocab]`, hidden states `[..., d]` and
    integer targets of the hidden states' leading shape (-1 marks padding).
    With `num_samples = S` training uses importance-sampled softmax over S
    classes drawn from a log-uniform distribution (Jean et al. 2015, as in
    paper 5.1); evaluation always uses the full softmax.

    With `target_count`, the sum of -log p over this batch's non-padding
    targets is divided by that count instead of this batch's own: the
    global batch's count of a data-parallel step (moe-partition's
    moe.count_targets summed over the ranks), so that the ranks' losses add
    up to the global batch's mean however the padding falls.

    ```mlir
    %loss = moe.softmax_cross_entropy %h, %targets weights(%w, %b)
        {num_samples = 1024 : i64}
        : (tensor<32x20x512xf32>, tensor<32x20xi32>, tensor<10000x512xf32>,
           tensor<10000xf32>) -> tensor<f32>
    %part = moe.softmax_cross_entropy %h, %targets weights(%w, %b)
        target_count(%n)
        : (tensor<32x20x512xf32>, tensor<32x20xi32>, tensor<10000x512xf32>,
           tensor<10000xf32>, tensor<i32>) -> tensor<f32>
    ```
  }];
  let arguments = (ins
    MoE_F32Tensor:$hidden,
    MoE_IdTensor:$targets,
    MoE_F32Tensor:$weights,
    MoE_F32Tensor:$bias,
    Optional<MoE_CountScalar>:$target_count,
    OptionalAttr<ConfinedAttr<I64Attr, [IntPositive]>>:$num_samples,
    DefaultValuedAttr<I64Attr, "0">:$rng_stream
  );
  let results = (outs MoE_Scalar:$loss);
  let assemblyFormat = [{
    $hidden `,` $targets `weights` `(` $weights `,` $bias `)`
    (`target_count` `(` $target_count^ `)`)? attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def MoE_CountTargetsOp : MoE_Op<"count_targets"> {
  let summary = "number of non-padding targets (not -1) of a batch";
  let description = [{
    What moe.softmax_cross_entropy divides by, as a value: moe-partition
    sums it over the ranks (`mesh.all_reduce ... <sum>`) and hands the
    global count to the cross-entropy as `target_count`.

    ```mlir
    %n = moe.count_targets %targets : (tensor<32x20xi32>) -> tensor<i32>
    ```
  }];
  let arguments = (ins MoE_IdTensor:$targets);
  let results = (outs MoE_CountScalar:$count);
  let assemblyFormat = [{
    $targets attr-dict `:` functional-type(operands, results)
  }];
}

def MoE_TotalLossOp : MoE_Op<"total_loss", [SameOperandsAndResultType,
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "sum of scalar losses (task loss plus auxiliary losses)";
  let description = [{
    ```mlir
    %loss = moe.total_loss %ce, %aux : tensor<f32>
    ```
  }];
  let arguments = (ins Variadic<MoE_Scalar>:$terms);
  let results = (outs MoE_Scalar:$loss);
  // SameOperandsAndResultType already rejects an empty sum ("expected 1 or
  // more operands"), so there is nothing left for a verifier to check.
  let assemblyFormat = "$terms attr-dict `:` type($loss)";
}

include "dialect/MoEPrimitiveOps.td"
include "dialect/MoECollectiveOps.td"

#endif // MOE_DIALECT_MOEOPS_TD
