//===- Passes.td - Passes of moe-compiler ------------------*- tablegen -*-===//

#ifndef MOE_PASSES_PASSES_TD
#define MOE_PASSES_PASSES_TD

include "mlir/Pass/PassBase.td"

def ModelSummary : Pass<"moe-model-summary", "mlir::ModuleOp"> {
  let summary = "Print parameter counts and per-word computation of models";
  let description = [{
    For every function with `moe.param` arguments, prints a table in the
    terms of the paper's Table 3: parameters and multiply-adds per word in
    the forward pass, both "excluding input/output layers" (embedding and
    softmax) and in total, plus one line per MoE layer (experts, k, gating,
    parameters, multiply-adds per word). The IR is not changed.

    Counting rules (per token, forward): LSTM 4H(d_in + P) + HP (projection);
    flat MoE d*n for the gate (+ d*n for noise) plus k expert evaluations
    (d*d_out linear, d*h + h*d_out ffn); hierarchical MoE d*groups +
    k_primary * d * m + k_primary * k_secondary expert evaluations; linear
    d_in*d_out; attention (d_x + d_y) E + E + d_x per (source, target) pair
    is reported separately because it grows with sequence length.

    ```
    model @lstm_moe: 8.41M parameters, 4.21M excluding i/o
      computation per word: 6.29M multiply-adds, 6.29M excluding i/o
      moe_layer: 8 experts (linear 512->512), k = 8, batchwise
    ```
  }];
}

#endif // MOE_PASSES_PASSES_TD
