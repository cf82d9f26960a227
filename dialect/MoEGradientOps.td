//===- MoEGradientOps.td - Backward ops built by moe-autodiff -*- tablegen -*-===//
//
// One op per backward kernel of runtime/Backend.h. moe-autodiff creates them
// through GradientOpInterface; users never write them. Result types that
// must equal an operand's type are constrained with AllTypesMatch.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_DIALECT_MOEGRADIENTOPS_TD
#define MOE_DIALECT_MOEGRADIENTOPS_TD

include "dialect/MoEDialect.td"
include "dialect/MoEAttrs.td"

/// Backward ops without optional operands print their operands in order.
class MoE_GradOp<string mnemonic, list<Trait> traits = []>
    : MoE_Op<mnemonic, traits> {
  let assemblyFormat =
      "operands attr-dict `:` functional-type(operands, results)";
}

def MoE_ActivateGradOp : MoE_GradOp<"activate_grad",
    [AllTypesMatch<["output", "d_output", "d_input"]>]> {
  let summary = "backward of moe.activate, from the activation's output";
  let description = [{
    relu: dy where y > 0; sigmoid: dy * y * (1 - y); tanh: dy * (1 - y^2).

    ```mlir
    %dx = moe.activate_grad %y, %dy {act = #moe.activation<relu>}
        : (tensor<64x16xf32>, tensor<64x16xf32>) -> tensor<64x16xf32>
    ```
  }];
  let arguments = (ins MoE_F32TensorOrRows:$output,
                       MoE_F32TensorOrRows:$d_output, MoE_ActivationAttr:$act);
  let results = (outs MoE_F32TensorOrRows:$d_input);
}

def MoE_NoisyTopKGradOp : MoE_Op<"noisy_top_k_grad", [
    AllTypesMatch<["clean_logits", "noisy", "noise_std", "d_clean_logits"]>,
    AllTypesMatch<["gate", "d_gate"]>]> {
  let summary = "backward of moe.noisy_top_k's gates";
  let description = [{
    From the gradient of the kept gates to the clean logits and, with
    `noise`, to the raw noise logits through
    H = clean + z * (softplus(raw) + eps).

    ```mlir
    %dc, %dr = moe.noisy_top_k_grad %clean, %h, %std, %e, %g, %dg, noise %raw
        : (tensor<64x8xf32>, tensor<64x8xf32>, tensor<64x8xf32>,
           tensor<64x8xf32>, tensor<64x2xi32>, tensor<64x2xf32>,
           tensor<64x2xf32>) -> (tensor<64x8xf32>, tensor<64x8xf32>)
    ```
  }];
  let arguments = (ins MoE_Matrix:$clean_logits,
                       Optional<MoE_Matrix>:$noise_logits, MoE_Matrix:$noisy,
                       MoE_Matrix:$noise_std, MoE_IdMatrix:$expert,
                       MoE_Matrix:$gate, MoE_Matrix:$d_gate);
  let results = (outs MoE_Matrix:$d_clean_logits,
                      Optional<MoE_Matrix>:$d_noise_logits);
  let assemblyFormat = [{
    $clean_logits `,` $noisy `,` $noise_std `,` $expert `,` $gate `,` $d_gate
    (`,` `noise` $noise_logits^)? attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def MoE_LoadEstimateGradOp : MoE_GradOp<"load_estimate_grad", [
    AllTypesMatch<["clean_logits", "noise_logits", "d_clean_logits",
                   "d_noise_logits"]>]> {
  let summary = "backward of moe.load_estimate";
  let description = [{
    Differentiates the normal-CDF load estimate through the clean logits,
    the noise std and the k-th / (k+1)-th thresholds, back to the clean and
    raw noise logits.

    ```mlir
    %dc, %dr = moe.load_estimate_grad %clean, %raw, %h, %std, %top, %dload
        {k = 2 : i64} : (tensor<64x8xf32>, tensor<64x8xf32>, tensor<64x8xf32>,
        tensor<64x8xf32>, tensor<64x3xf32>, tensor<8xf32>)
        -> (tensor<64x8xf32>, tensor<64x8xf32>)
    ```
  }];
  let arguments = (ins MoE_Matrix:$clean_logits, MoE_Matrix:$noise_logits,
                       MoE_Matrix:$noisy, MoE_Matrix:$noise_std,
                       MoE_Matrix:$top_values, MoE_Vector:$d_load,
                       Optional<MoE_IdVector>:$row_ptr,
                       ConfinedAttr<I64Attr, [IntPositive]>:$k);
  let results = (outs MoE_Matrix:$d_clean_logits,
                      MoE_Matrix:$d_noise_logits);
  let hasVerifier = 1;
}

def MoE_FusedRouteGradOp : MoE_Op<"fused_route_grad", [
    AttrSizedOperandSegments,
    AllTypesMatch<["clean_logits", "noise_logits", "noisy", "noise_std",
                   "d_clean_logits", "d_noise_logits"]>]> {
  let summary = "backward of moe.fused_route's routing, in one kernel";
  let description = [{
    From the gradients of the gates [T, k], the load [n] and the importance
    [n] (each optional, at least one) to the clean and raw noise logits
    [T, n]: the sum of moe.importance_grad (into the gates),
    moe.noisy_top_k_grad and moe.load_estimate_grad, with the same float
    operations in the same order. The gate weights' products are not
    included (moe.matmul of the results).

    ```mlir
    %dc, %dr = moe.fused_route_grad %clean, %raw, %h, %std, %top, %e, %g
        d_gate %dg d_load %dload d_importance %dimp
        : (tensor<64x8xf32>, tensor<64x8xf32>, tensor<64x8xf32>,
           tensor<64x8xf32>, tensor<64x3xf32>, tensor<64x2xi32>,
           tensor<64x2xf32>, tensor<64x2xf32>, tensor<8xf32>, tensor<8xf32>)
        -> (tensor<64x8xf32>, tensor<64x8xf32>)
    ```
  }];
  let arguments = (ins MoE_Matrix:$clean_logits, MoE_Matrix:$noise_logits,
                       MoE_Matrix:$noisy, MoE_Matrix:$noise_std,
                       MoE_Matrix:$top_values, MoE_IdMatrix:$expert,
                       MoE_Matrix:$gate, Optional<MoE_Matrix>:$d_gate,
                       Optional<MoE_Vector>:$d_load,
                       Optional<MoE_Vector>:$d_importance);
  let results = (outs MoE_Matrix:$d_clean_logits,
                      MoE_Matrix:$d_noise_logits);
  let assemblyFormat = [{
    $clean_logits `,` $noise_logits `,` $noisy `,` $noise_std `,`
    $top_values `,` $expert `,` $gate (`d_gate` $d_gate^)?
    (`d_load` $d_load^)? (`d_importance` $d_importance^)? attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def MoE_DropPaddingGradOp : MoE_GradOp<"drop_padding_grad"> {
  let summary = "backward of moe.drop_padding's gates";
  let description = [{
    Scatters the kept gates' gradient back to the [T * k] top-k slots:
    d_gate[t * k + s] = d_kept_gate[row_ptr[t] + s] for a valid token, 0
    for padding (the forward's `row_ptr`).

    ```mlir
    %dg = moe.drop_padding_grad %rows, %dkept
        : (tensor<65xi32>, tensor<128xf32>) -> tensor<128xf32>
    ```
  }];
  let arguments = (ins MoE_IdVector:$row_ptr, MoE_Vector:$d_kept_gate);
  let results = (outs MoE_Vector:$d_gate);
  let hasVerifier = 1;
}

def MoE_SoftmaxGradOp : MoE_GradOp<"softmax_grad",
    [AllTypesMatch<["probs", "d_probs", "d_logits"]>]> {
  let summary = "backward of moe.softmax";
  let description = [{
    ```mlir
    %dl = moe.softmax_grad %p, %dp
        : (tensor<64x8xf32>, tensor<64x8xf32>) -> tensor<64x8xf32>
    ```
  }];
  let arguments = (ins MoE_Matrix:$probs, MoE_Matrix:$d_probs);
  let results = (outs MoE_Matrix:$d_logits);
}

def MoE_MaskedGateGradOp : MoE_GradOp<"masked_gate_grad",
    [AllTypesMatch<["gate", "d_gate"]>]> {
  let summary = "backward of masked softmax gates in assignment form";
  let description = [{
    Gates of a batchwise mask are a softmax over each token's kept logits;
    this maps their gradient back to the [T, n] logits (zero where masked).

    ```mlir
    %dl = moe.masked_gate_grad %rows, %e, %g, %dg {num_experts = 8 : i64}
        : (tensor<65xi32>, tensor<128xi32>, tensor<128xf32>, tensor<128xf32>)
        -> tensor<64x8xf32>
    ```
  }];
  let arguments = (ins MoE_IdVector:$row_ptr, MoE_IdVector:$expert,
                       MoE_Vector:$gate, MoE_Vector:$d_gate,
                       ConfinedAttr<I64Attr, [IntPositive]>:$num_experts);
  let results = (outs MoE_Matrix:$d_logits);
  let hasVerifier = 1;
}

def MoE_BatchwiseThresholdLossGradOp
    : MoE_GradOp<"batchwise_threshold_loss_grad",
                 [AllTypesMatch<["thresholds", "d_thresholds"]>]> {
  let summary = "backward of Eq. 8 to the thresholds";
  let description = [{
    ```mlir
    %dt = moe.batchwise_threshold_loss_grad %l, %mask, %t, %dloss
        : (tensor<64x8xf32>, tensor<64x8xf32>, tensor<8xf32>, tensor<f32>)
        -> tensor<8xf32>
    ```
  }];
  let arguments = (ins MoE_Matrix:$logits, MoE_Matrix:$batch_mask,
                       MoE_Vector:$thresholds, MoE_Scalar:$d_loss);
  let results = (outs MoE_Vector:$d_thresholds);
}

def MoE_ImportanceGradOp : MoE_GradOp<"importance_grad"> {
  let summary = "backward of moe.importance: d_gate[a] = d_imp[expert[a]]";
  let description = [{
    ```mlir
    %dg = moe.importance_grad %e, %dimp
        : (tensor<128xi32>, tensor<8xf32>) -> tensor<128xf32>
    ```
  }];
  let arguments = (ins MoE_IdVector:$expert, MoE_Vector:$d_importance);
  let results = (outs MoE_Vector:$d_gate);
  let hasVerifier = 1;
}

def MoE_CvSquaredGradOp : MoE_GradOp<"cv_squared_grad",
    [AllTypesMatch<["values", "d_values"]>]> {
  let summary = "backward of moe.cv_squared";
  let description = [{
    ```mlir
    %dv = moe.cv_squared_grad %v, %dloss {weight = 1.000000e-01 : f32}
        : (tensor<8xf32>, tensor<f32>) -> tensor<8xf32>
    ```
  }];
  let arguments = (ins MoE_Vector:$values, MoE_Scalar:$d_loss,
                       F32Attr:$weight);
  let results = (outs MoE_Vector:$d_values);
}

def MoE_L2BalanceGradOp : MoE_GradOp<"l2_balance_grad",
    [AllTypesMatch<["importance", "d_importance"]>]> {
  let summary = "backward of moe.l2_balance (Eq. 5)";
  let description = [{
    ```mlir
    %di = moe.l2_balance_grad %imp, %dloss {tokens = 64 : i64,
        weight = 1.000000e+00 : f32} : (tensor<8xf32>, tensor<f32>)
        -> tensor<8xf32>
    ```
  }];
  let arguments = (ins MoE_Vector:$importance, MoE_Scalar:$d_loss,
                       ConfinedAttr<I64Attr, [IntPositive]>:$tokens,
                       F32Attr:$weight);
  let results = (outs MoE_Vector:$d_importance);
}

def MoE_ComposeRoutesGradOp : MoE_GradOp<"compose_routes_grad", [
    AllTypesMatch<["primary_gate", "d_primary_gate"]>,
    AllTypesMatch<["secondary_gate", "d_secondary_gate"]>]> {
  let summary = "backward of moe.compose_routes to both levels' gates";
  let description = [{
    d_primary[a] = sum_s d_gate[a * ks + s] * secondary_gate[position[a], s];
    d_secondary[position[a], s] = d_gate[a * ks + s] * primary_gate[a].

    ```mlir
    %dp, %ds = moe.compose_routes_grad %pg, %pos, %sg, %dg
        : (tensor<128xf32>, tensor<128xi32>, tensor<128x4xf32>,
           tensor<512xf32>) -> (tensor<128xf32>, tensor<128x4xf32>)
    ```
  }];
  let arguments = (ins MoE_Vector:$primary_gate, MoE_IdVector:$position,
                       MoE_Matrix:$secondary_gate, MoE_Vector:$d_gate);
  let results = (outs MoE_Vector:$d_primary_gate,
                      MoE_Matrix:$d_secondary_gate);
  let hasVerifier = 1;
}

def MoE_DispatchGradOp : MoE_Op<"dispatch_grad"> {
  let summary = "backward of moe.dispatch: sums buffer rows back per token";
  let description = [{
    d_input[t] = sum over t's assignments a of d_buffer[position[a]], in
    assignment order (deterministic, no atomics).

    ```mlir
    %dx = moe.dispatch_grad %dbuf, %pos {tokens = 64 : i64}
        : (tensor<128x16xf32>, tensor<128xi32>) -> tensor<64x16xf32>
    ```
  }];
  let arguments = (ins MoE_Matrix:$d_buffer, MoE_IdVector:$position,
                       Optional<MoE_IdVector>:$row_ptr,
                       ConfinedAttr<I64Attr, [IntPositive]>:$tokens);
  let results = (outs MoE_Matrix:$d_input);
  let assemblyFormat = [{
    $d_buffer `,` $position (`rows` $row_ptr^)? attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def MoE_GroupedMatmulGradOp : MoE_GradOp<"grouped_matmul_grad", [
    AllTypesMatch<["buffer", "d_buffer"]>,
    AllTypesMatch<["weights", "d_weights"]>]> {
  let summary = "backward of moe.grouped_matmul";
  let description = [{
    d_buffer = d_output * W[e]^T per segment; d_weights[e] = buffer[seg]^T *
    d_output[seg] (zero for experts without tokens). `rows_per_expert` as
    on moe.grouped_matmul.

    ```mlir
    %db, %dw = moe.grouped_matmul_grad %buf, %w, %off, %dout
        : (tensor<128x16xf32>, tensor<8x16x16xf32>, tensor<9xi32>,
           tensor<128x16xf32>) -> (tensor<128x16xf32>, tensor<8x16x16xf32>)
    ```
  }];
  let arguments = (ins MoE_Matrix:$buffer, MoE_F32Tensor:$weights,
                       MoE_IdVector:$expert_offset, MoE_Matrix:$d_output,
                       OptionalAttr<ConfinedAttr<I64Attr, [IntPositive]>>:$rows_per_expert);
  let results = (outs MoE_Matrix:$d_buffer, MoE_F32Tensor:$d_weights);
  let builders = [OpBuilder<(ins "Type":$d_buffer, "Type":$d_weights,
                                 "Value":$buffer, "Value":$weights,
                                 "Value":$expert_offset, "Value":$d_output), [{
    build($_builder, $_state, d_buffer, d_weights, buffer, weights,
          expert_offset, d_output, IntegerAttr());
  }]>];
  let hasVerifier = 1;
}

def MoE_CombineGradOp : MoE_Op<"combine_grad", [
    AllTypesMatch<["expert_output", "d_expert_output"]>,
    AllTypesMatch<["gate", "d_gate"]>]> {
  let summary = "backward of moe.combine to expert outputs and gates";
  let description = [{
    d_expert_output[position[a]] = gate[a] * d_output[t]; d_gate[a] =
    <d_output[t], expert_output[position[a]]>: the gradient that trains the
    gating network.

    ```mlir
    %dout, %dg = moe.combine_grad %out, %g, %pos, %dy {tokens = 64 : i64}
        : (tensor<128x16xf32>, tensor<128xf32>, tensor<128xi32>,
           tensor<64x16xf32>) -> (tensor<128x16xf32>, tensor<128xf32>)
    ```
  }];
  let arguments = (ins MoE_Matrix:$expert_output, MoE_Vector:$gate,
                       MoE_IdVector:$position, Optional<MoE_IdVector>:$row_ptr,
                       MoE_Matrix:$d_output,
                       ConfinedAttr<I64Attr, [IntPositive]>:$tokens);
  let results = (outs MoE_Matrix:$d_expert_output, MoE_Vector:$d_gate);
  let assemblyFormat = [{
    $expert_output `,` $gate `,` $position (`rows` $row_ptr^)? `,` $d_output
    attr-dict `:` functional-type(operands, results)
  }];
}

def MoE_EmbeddingGradOp : MoE_GradOp<"embedding_grad"> {
  let summary = "backward of moe.embedding: rows added into a zero table";
  let description = [{
    ```mlir
    %dt = moe.embedding_grad %ids, %dout
        : (tensor<32x20xi32>, tensor<32x20x512xf32>) -> tensor<10000x512xf32>
    ```
  }];
  let arguments = (ins MoE_IdTensor:$ids, MoE_F32Tensor:$d_output);
  let results = (outs MoE_Matrix:$d_table);
  let hasVerifier = 1;
}

def MoE_EmbeddingRowGradOp : MoE_GradOp<"embedding_row_grad"> {
  let summary = "row-sparse backward of moe.embedding";
  let description = [{
    The gradient of moe.embedding_grad as the rows the ids touched: `rows`
    [N] (N = number of ids) holds the distinct ids ascending, then -1;
    `values` [N, d] each row's summed gradient (in token order, so
    scattering them into a zero table gives embedding_grad bit for bit),
    zeros for the -1 rows. `vocab` is the table's row count. Made by
    moe-sparse-gradients for moe.adam_update_rows.

    ```mlir
    %rows, %vals = moe.embedding_row_grad %ids, %dout {vocab = 10000 : i64}
        : (tensor<32x20xi32>, tensor<32x20x512xf32>)
        -> (tensor<640xi32>, tensor<640x512xf32>)
    ```
  }];
  let arguments = (ins MoE_IdTensor:$ids, MoE_F32Tensor:$d_output,
                       ConfinedAttr<I64Attr, [IntPositive]>:$vocab);
  let results = (outs MoE_IdVector:$rows, MoE_Matrix:$values);
  let hasVerifier = 1;
}

def MoE_LSTMGradOp : MoE_Op<"lstm_grad", [
    AllTypesMatch<["input", "d_input"]>,
    AllTypesMatch<["input_weights", "d_input_weights"]>,
    AllTypesMatch<["recurrent_weights", "d_recurrent_weights"]>,
    AllTypesMatch<["bias", "d_bias"]>,
    AllTypesMatch<["output", "d_output"]>]> {
  let summary = "backward of moe.lstm (through time)";
  let description = [{
    `output` is the forward op's result: the state the forward pass saved
    for it (gates, cells) is tied to that value by code generation.

    ```mlir
    %dx, %dwx, %dwh, %db = moe.lstm_grad %x weights(%wx, %wh, %b)
        output %y, %dy : (...) -> (...)
    ```
  }];
  let arguments = (ins MoE_F32Tensor:$input, MoE_F32Tensor:$input_weights,
                       MoE_F32Tensor:$recurrent_weights, MoE_F32Tensor:$bias,
                       Optional<MoE_F32Tensor>:$projection,
                       MoE_F32Tensor:$output, MoE_F32Tensor:$d_output);
  let results = (outs MoE_F32Tensor:$d_input, MoE_F32Tensor:$d_input_weights,
                      MoE_F32Tensor:$d_recurrent_weights,
                      MoE_F32Tensor:$d_bias,
                      Optional<MoE_F32Tensor>:$d_projection);
  let assemblyFormat = [{
    $input `weights` `(` $input_weights `,` $recurrent_weights `,` $bias `)`
    (`projection` `(` $projection^ `)`)? `output` $output `,` $d_output
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def MoE_AttentionGradOp : MoE_GradOp<"attention_grad", [
    AllTypesMatch<["source", "d_source"]>,
    AllTypesMatch<["target", "d_target"]>,
    AllTypesMatch<["source_weights", "d_source_weights"]>,
    AllTypesMatch<["target_weights", "d_target_weights"]>,
    AllTypesMatch<["score_weights", "d_score_weights"]>,
    AllTypesMatch<["context", "d_context"]>]> {
  let summary = "backward of moe.attention";
  let description = [{
    `context` is the forward op's result, which ties the forward pass's
    saved attention weights to this op.

    ```mlir
    %dx, %dy, %du, %dw, %dv = moe.attention_grad %src, %tgt, %u, %w, %v,
        %ctx, %dctx : (...) -> (...)
    ```
  }];
  let arguments = (ins MoE_F32Tensor:$source, MoE_F32Tensor:$target,
                       MoE_F32Tensor:$source_weights,
                       MoE_F32Tensor:$target_weights,
                       MoE_F32Tensor:$score_weights, MoE_F32Tensor:$context,
                       MoE_F32Tensor:$d_context);
  let results = (outs MoE_F32Tensor:$d_source, MoE_F32Tensor:$d_target,
                      MoE_F32Tensor:$d_source_weights,
                      MoE_F32Tensor:$d_target_weights,
                      MoE_F32Tensor:$d_score_weights);
}

def MoE_SoftmaxCrossEntropyGradOp : MoE_GradOp<"softmax_cross_entropy_grad", [
    AllTypesMatch<["hidden", "d_hidden"]>,
    AllTypesMatch<["weights", "d_weights"]>,
    AllTypesMatch<["bias", "d_bias"]>]> {
  let summary = "backward of moe.softmax_cross_entropy";
  let description = [{
    With `num_samples` the sampled softmax draws the same classes as the
    forward pass (same `rng_stream`); with `target_count` each target's
    share of `d_loss` is 1 / target_count, as in the forward op.

    ```mlir
    %dh, %dw, %db = moe.softmax_cross_entropy_grad %h, %t, %w, %b, %dloss
        : (tensor<32x20x512xf32>, tensor<32x20xi32>, tensor<10000x512xf32>,
           tensor<10000xf32>, tensor<f32>)
        -> (tensor<32x20x512xf32>, tensor<10000x512xf32>, tensor<10000xf32>)
    ```
  }];
  let arguments = (ins MoE_F32Tensor:$hidden, MoE_IdTensor:$targets,
                       MoE_F32Tensor:$weights, MoE_F32Tensor:$bias,
                       MoE_Scalar:$d_loss,
                       Optional<MoE_CountScalar>:$target_count,
                       OptionalAttr<ConfinedAttr<I64Attr, [IntPositive]>>:$num_samples,
                       DefaultValuedAttr<I64Attr, "0">:$rng_stream);
  let results = (outs MoE_F32Tensor:$d_hidden, MoE_F32Tensor:$d_weights,
                      MoE_F32Tensor:$d_bias);
  let assemblyFormat = [{
    $hidden `,` $targets `,` $weights `,` $bias `,` $d_loss
    (`target_count` `(` $target_count^ `)`)? attr-dict
    `:` functional-type(operands, results)
  }];
}

def MoE_SoftmaxCrossEntropyRowGradOp
    : MoE_GradOp<"softmax_cross_entropy_row_grad", [
        AllTypesMatch<["hidden", "d_hidden"]>]> {
  let summary = "sampled softmax backward with row-sparse class gradients";
  let description = [{
    moe.softmax_cross_entropy_grad with `num_samples`, whose weight and bias
    gradients are given as the classes the step touched: `rows` [N] with N =
    num_samples + tokens (the samples and every token's target) holds the
    distinct classes ascending, then -1; `d_weight_values` [N, d] and
    `d_bias_values` [N] their summed gradients, zeros for -1 rows. Made by
    moe-sparse-gradients for moe.adam_update_rows; `target_count` as in
    moe.softmax_cross_entropy_grad.

    ```mlir
    %dh, %rows, %dw, %db = moe.softmax_cross_entropy_row_grad %h, %t, %w,
        %b, %dloss {num_samples = 64 : i64}
        : (tensor<640x512xf32>, tensor<640xi32>, tensor<10000x512xf32>,
           tensor<10000xf32>, tensor<f32>)
        -> (tensor<640x512xf32>, tensor<704xi32>, tensor<704x512xf32>,
            tensor<704xf32>)
    ```
  }];
  let arguments = (ins MoE_F32Tensor:$hidden, MoE_IdTensor:$targets,
                       MoE_Matrix:$weights, MoE_Vector:$bias,
                       MoE_Scalar:$d_loss,
                       Optional<MoE_CountScalar>:$target_count,
                       ConfinedAttr<I64Attr, [IntPositive]>:$num_samples,
                       DefaultValuedAttr<I64Attr, "0">:$rng_stream);
  let results = (outs MoE_F32Tensor:$d_hidden, MoE_IdVector:$rows,
                      MoE_Matrix:$d_weight_values, MoE_Vector:$d_bias_values);
  let assemblyFormat = [{
    $hidden `,` $targets `,` $weights `,` $bias `,` $d_loss
    (`target_count` `(` $target_count^ `)`)? attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Hierarchical routing with batchwise and threshold masks, Load_H
//===----------------------------------------------------------------------===//

def MoE_GroupedBatchwiseThresholdLossGradOp
    : MoE_GradOp<"grouped_batchwise_threshold_loss_grad",
                 [AllTypesMatch<["thresholds", "d_thresholds"]>]> {
  let summary = "backward of the grouped Eq. 8 to the secondary thresholds";
  let description = [{
    d_thresholds[g, j] = -d_loss * sum over the rows r of segment g of
    (Mthreshold(x_r, T_g)_j - Mbatchwise_r,j); with `expert_offset`, the
    segments are the offsets' (as in the forward op).

    ```mlir
    %dt = moe.grouped_batchwise_threshold_loss_grad %l, %mask, %t, %dloss
        : (tensor<16x4xf32>, tensor<16x4xf32>, tensor<2x4xf32>, tensor<f32>)
        -> tensor<2x4xf32>
    ```
  }];
  let arguments = (ins MoE_Matrix:$logits, MoE_Matrix:$batch_mask,
                       MoE_Matrix:$thresholds, MoE_Scalar:$d_loss,
                       Optional<MoE_IdVector>:$expert_offset);
  let results = (outs MoE_Matrix:$d_thresholds);
  let hasVerifier = 1;
}

def MoE_ComposeRoutesCsrGradOp : MoE_GradOp<"compose_routes_csr_grad", [
    AllTypesMatch<["primary_gate", "d_primary_gate"]>,
    AllTypesMatch<["secondary_gate", "d_secondary_gate"]>]> {
  let summary = "backward of moe.compose_routes_csr to both levels' gates";
  let description = [{
    With o the composed assignment that primary assignment a and secondary
    assignment b formed (token-major, from `row_ptr`, the forward op's
    first result): d_primary[a] = sum_b d_gate[o] * secondary_gate[b];
    d_secondary[b] = d_gate[o] * primary_gate[a]; zero for unused slots.

    ```mlir
    %dp, %ds = moe.compose_routes_csr_grad %rows, %prows, %pg, %pos,
        %srows, %sg, %dg
        : (tensor<9xi32>, tensor<9xi32>, tensor<16xf32>, tensor<16xi32>,
           tensor<17xi32>, tensor<32xf32>, tensor<32xf32>)
        -> (tensor<16xf32>, tensor<32xf32>)
    ```
  }];
  let arguments = (ins MoE_IdVector:$row_ptr, MoE_IdVector:$primary_row_ptr,
                       MoE_Vector:$primary_gate, MoE_IdVector:$position,
                       MoE_IdVector:$secondary_row_ptr,
                       MoE_Vector:$secondary_gate, MoE_Vector:$d_gate);
  let results = (outs MoE_Vector:$d_primary_gate,
                      MoE_Vector:$d_secondary_gate);
  let hasVerifier = 1;
}

def MoE_GroupedLoadEstimateGradOp : MoE_GradOp<"grouped_load_estimate_grad", [
    AllTypesMatch<["clean_logits", "noise_logits", "d_clean_logits",
                   "d_noise_logits"]>]> {
  let summary = "backward of moe.grouped_load_estimate";
  let description = [{
    `moe.load_estimate_grad` of each group's rows with that group's row of
    `d_load` [groups, n]; rows outside every group get zero.

    ```mlir
    %dc, %dr = moe.grouped_load_estimate_grad %clean, %raw, %h, %std, %top,
        %off, %dload {k = 2 : i64}
        : (tensor<12x4xf32>, tensor<12x4xf32>, tensor<12x4xf32>,
           tensor<12x4xf32>, tensor<12x3xf32>, tensor<5xi32>,
           tensor<4x4xf32>) -> (tensor<12x4xf32>, tensor<12x4xf32>)
    ```
  }];
  let arguments = (ins MoE_Matrix:$clean_logits, MoE_Matrix:$noise_logits,
                       MoE_Matrix:$noisy, MoE_Matrix:$noise_std,
                       MoE_Matrix:$top_values, MoE_IdVector:$expert_offset,
                       MoE_Matrix:$d_load,
                       ConfinedAttr<I64Attr, [IntPositive]>:$k);
  let results = (outs MoE_Matrix:$d_clean_logits,
                      MoE_Matrix:$d_noise_logits);
  let hasVerifier = 1;
}

def MoE_HierarchicalLoadGradOp : MoE_GradOp<"hierarchical_load_grad", [
    AllTypesMatch<["primary_load", "d_primary_load"]>,
    AllTypesMatch<["secondary_load", "d_secondary_load"]>]> {
  let summary = "backward of moe.hierarchical_load (Load_H)";
  let description = [{
    With c_g = max(|X^(g)|, 1): d_primary[g] = sum_j d_load[g * n + j] *
    secondary_load[g, j] / c_g; d_secondary[g, j] = d_load[g * n + j] *
    primary_load[g] / c_g.

    ```mlir
    %dp, %ds = moe.hierarchical_load_grad %pload, %sload, %off, %dlh
        : (tensor<4xf32>, tensor<4x4xf32>, tensor<5xi32>, tensor<16xf32>)
        -> (tensor<4xf32>, tensor<4x4xf32>)
    ```
  }];
  let arguments = (ins MoE_Vector:$primary_load, MoE_Matrix:$secondary_load,
                       MoE_IdVector:$expert_offset, MoE_Vector:$d_load);
  let results = (outs MoE_Vector:$d_primary_load,
                      MoE_Matrix:$d_secondary_load);
  let hasVerifier = 1;
}

#endif // MOE_DIALECT_MOEGRADIENTOPS_TD
