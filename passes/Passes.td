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

def AddEval : Pass<"moe-add-eval", "mlir::ModuleOp"> {
  let summary = "Add an evaluation copy <model>_eval of every model function";
  let description = [{
    The training pipeline turns a model into its training step, whose
    forward pass draws gating noise and dropout masks and ranks batchwise
    masks over the batch. Test perplexity needs the inference-time model
    (paper Appendix A: threshold masks; no noise, no dropout, full softmax)
    in the same package, so that both run on the same parameters. This
    pass clones every model function `@m` (one with `moe.param` arguments)
    into `@m_eval` with the unit attribute `moe.inference`, which
    moe-decompose and moe-expand-hierarchy honour as their `inference`
    option and moe-autodiff leaves alone.

    ```mlir
    // after
    func.func @m(...) -> tensor<f32> { ... }
    func.func @m_eval(...) -> tensor<f32> attributes {moe.inference} { ... }
    ```
  }];
}

def AddDecodeStep : Pass<"moe-add-decode-step", "mlir::ModuleOp"> {
  let summary = "Add <model>_encode and <model>_decode_step for incremental "
                "decoding";
  let description = [{
    Beam search and generation extend a sequence one token at a time.
    Re-running the whole model for every token costs O(T^2); this pass
    derives from every model function `@m` (one with `moe.param`
    arguments, `tokens` and `targets` inputs and one
    `moe.softmax_cross_entropy` of the targets) two inference functions
    (`moe.inference`) that decode in O(T):

    - `@m_encode` (encoder-decoder models only): the ops that do not
      depend on `tokens`, returning the values the decoder reads
      (`moe.state = "encoder_output"`, `"encoder_output1"`, ...). A
      language model has none.
    - `@m_decode_step`: the ops that depend on `tokens` and that the loss
      needs, re-typed to one position. It takes the parameters it reads,
      `tokens` `[batch, 1]`, any other inputs the decoder reads (e.g.
      `source_lengths`), the encoder outputs (`moe.state =
      "encoder_output"`, ...) and, for every `moe.lstm` of the decoder,
      its state h `[batch, P]`, c `[batch, H]` (`moe.state =
      "<lstm>.hidden"`, `"<lstm>.cell"`, where `<lstm>` is the input
      weights' parameter name without its last component). It returns the
      logits `[batch, vocab]` of the position (`moe.output = "logits"`,
      what the loss would have applied the softmax to) and the LSTM
      states after it (same `moe.state` names). Each LSTM becomes the
      stateful form `moe.lstm ... state(%h, %c)`, dropout the identity,
      the MoE layers run on `[batch, 1, d]`; the layers' auxiliary losses
      are not returned. Decoding state is matched by its `moe.state`
      name: encode's results and each step's state results feed the next
      step's arguments of the same name.

    A decoder op that one position at a time would change (attention over
    the decoder's own positions, an MoE layer with padding lengths, any
    op without a rule) is an error naming it; with `skip-unsupported`
    (what --moe-train-pipeline uses) such a model gets no decode functions
    and a `moe.no_decode_step` attribute holding that error, which the
    manifest carries (`no_decode_step`) so that moe-run can say why it
    decodes by re-running the window.

    ```mlir
    // after, for an encoder-decoder @m
    func.func @m_encode(%source, %source_lengths, <encoder params>)
        -> (tensor<BxSxdxf32> {moe.state = "encoder_output"})
    func.func @m_decode_step(<decoder params>, %tokens: tensor<Bx1xi32>,
        %source_lengths, %enc {moe.state = "encoder_output"},
        %h {moe.state = "decoder.lstm.hidden"},
        %c {moe.state = "decoder.lstm.cell"})
        -> (tensor<BxVxf32> {moe.output = "logits"}, h', c')
    ```
  }];
  let options = [
    Option<"skipUnsupported", "skip-unsupported", "bool",
           /*default=*/"false",
           "Leave a model that cannot be decoded one position at a time "
           "without decode functions instead of failing">
  ];
  let dependentDialects = ["mlir::tensor::TensorDialect"];
}

def Decompose : Pass<"moe-decompose", "mlir::func::FuncOp"> {
  let summary = "Lower model-level layers to primitive ops";
  let description = [{
    Rewrites `moe.moe_layer` and `moe.linear` into the primitive ops that
    the runtime kernels implement, so that later passes (fusion, autodiff,
    partitioning) see routing, dispatch and expert compute explicitly.

    A rank-3 `[batch, time, d]` input is collapsed to `[batch * time, d]`
    first: the MoE runs once over all time steps (paper section 4,
    combination across time steps), which multiplies the batch each expert
    sees by the sequence length.

    ```mlir
    // before
    %y, %aux = moe.moe_layer %x gate(%wg, noise %wn) experts(%we)
        {num_experts = 4, k = 2, gating = #moe.gating<noisy_top_k>, ...}
    // after
    %clean = moe.matmul %x, %wg
    %raw = moe.matmul %x, %wn
    %e, %g, %h, %std, %top = moe.noisy_top_k %clean, noise %raw {k = 2}
    %off, %pos, %tok = moe.dispatch_plan %e_flat {num_experts = 4}
    %buf = moe.dispatch %x, %tok
    %out = moe.grouped_matmul %buf, %we, %off
    %y = moe.combine %out, %g_flat, %pos
    %load = moe.load_estimate %clean, %h, %std, %top {k = 2}
    %aux = moe.total_loss (moe.cv_squared %importance), (moe.cv_squared %load)
    ```

    Softmax gating becomes top-k with k = num_experts and no noise (the
    same gates, and the same dispatch path). Every op that draws random
    numbers (noisy gates, dropout, sampled softmax) gets its own RNG stream,
    numbered in program order, so noise and masks are independent across
    layers and the backward pass can redraw a dropout mask. Hierarchical layers
    are left to `moe-expand-hierarchy`.

    With `inference`, the graph is lowered for evaluation: gates carry no
    noise, batchwise-trained layers route with their learned thresholds
    (Eq. 7, `moe.threshold_mask`) since a single example has no batch to
    rank, dropout is the identity, the sampled softmax becomes the full
    softmax, and the auxiliary losses are zero. Functions marked
    `moe.inference` (moe-add-eval) are lowered this way without the option.

    How many tokens pass the thresholds depends on the data, so a threshold
    mask gets a compiled capacity: `min(tokens * n, ceil(threshold-capacity
    * expected))` assignment slots, where `expected` = k * tokens is the
    number of assignments the layer's batchwise mask makes in training (n
    experts times m = k * tokens / n). The mask's `expert` and `gate` and
    everything downstream (dispatch plan, dispatch buffer, expert outputs)
    have that size; the kernel throws at run time when more assignments
    pass than fit, naming the option. Threshold gating written by the user
    has no k: its capacity is `tokens * n`, room for every pair, which a
    factor of at least n / k gives any layer (thresholds that have not
    learned yet let every pair pass).

    ```mlir
    // inference, tokens = 64, n = 8, k = 2, threshold-capacity = 2.0:
    // ceil(2.0 * 2 * 64) = 256 of the 512 slots
    %rows, %e, %g = moe.threshold_mask %clean, %t
        : (tensor<64x8xf32>, tensor<8xf32>)
        -> (tensor<65xi32>, tensor<256xi32>, tensor<256xf32>)
    ```
  }];
  let options = [
    Option<"inference", "inference", "bool", "false",
           "Lower for evaluation: no noise, threshold masks, no dropout">,
    Option<"thresholdCapacity", "threshold-capacity", "double", "2.0",
           "Assignment slots of a threshold mask (inference) as a multiple "
           "of the assignments its batchwise mask makes in training, at "
           "most tokens * experts; must be positive">,
    Option<"combinedBatch", "combined-batch", "bool", "false",
           "Batchwise masks rank the combined batch of all ranks "
           "(data-parallel training; sized by threshold-capacity)">,
    Option<"routerPrecision", "router-precision", "std::string", "\"f32\"",
           "Precision of the router's gate GEMMs: f32 (default) or tf32 "
           "(TF32 tensor cores on GPUs; the routing after the logits stays "
           "f32)">,
  ];
  let dependentDialects = ["mlir::tensor::TensorDialect",
                           "mlir::arith::ArithDialect"];
}

def Autodiff : Pass<"moe-autodiff", "mlir::ModuleOp"> {
  let summary = "Derive a training step: the loss and every parameter's gradient";
  let description = [{
    For every model function `@m` (one with `moe.param` arguments, whose
    first result is the scalar loss) adds `@m_train_step` with the same
    arguments, returning the loss followed by the gradient of each
    parameter in argument order. Gradient results carry
    `{moe.grad = "<param name>"}`. The model function itself is kept for
    evaluation.

    Reverse mode over the primitive graph: ops are visited in reverse
    program order, each builds its vector-Jacobian product through
    `GradientOpInterface`, and gradients reaching a value along several
    paths are summed with `moe.add`. Reshapes (`tensor.collapse_shape`,
    `tensor.expand_shape`) are inverted. An op without a gradient is an
    error naming the op; model-level MoE layers must be decomposed first.
    Evaluation copies (`moe.inference`) are not differentiated.

    ```mlir
    // before
    func.func @m(%x, %w {moe.param = "w"}) -> tensor<f32> {
      %y = moe.matmul %x, %w
      ...
    }
    // after: @m unchanged, plus
    func.func @m_train_step(%x, %w {moe.param = "w"})
        -> (tensor<f32>, tensor<8x4xf32> {moe.grad = "w"}) {
      ... forward ...
      %one = arith.constant dense<1.0> : tensor<f32>
      ... backward ...
      %dw = moe.matmul %x, %dy {transpose_lhs}
      return %loss, %dw
    }
    ```
  }];
  let dependentDialects = ["mlir::tensor::TensorDialect",
                           "mlir::arith::ArithDialect"];
  let options = [
    Option<"requireModel", "require-model", "bool", "false",
           "Fail on a module without a model function (the training "
           "pipeline sets it: a package needs a step)">,
  ];
}

def Optimizer : Pass<"moe-optimizer", "mlir::ModuleOp"> {
  let summary = "Add Adam and the paper's learning-rate schedule to train steps";
  let description = [{
    Turns every function produced by moe-autodiff (results tagged
    `moe.grad`) into a complete training step: it takes the step counter
    (`{moe.state = "step"}`, 1-based) and the Adam moments of each parameter
    (`{moe.state = "<param>.adam_m"}`, `"<param>.adam_v"`) as extra
    arguments, and returns the loss, the learning rate and the updated
    parameters and moments instead of the gradients. Optimizer state is
    ordinary function arguments and results, so checkpoints, partitioning
    and buffer planning treat it like parameters.

    Learning rate (paper 5.1): linear warm-up for `warmup-steps`, constant
    for `constant-steps`, then proportional to 1/sqrt(step).

    ```mlir
    // after
    %lr = moe.lr_schedule %step {base_lr = 1.0e-03, warmup_steps = 200,
                                 constant_steps = 200}
    %w2, %m2, %v2 = moe.adam_update %w, %dw, %m, %v, %lr, %step {...}
    return %loss, %lr, %w2, %m2, %v2
    ```
  }];
  let options = [
    Option<"learningRate", "lr", "float", "1.0e-3",
           "Peak learning rate (after warm-up)">,
    Option<"beta1", "beta1", "float", "0.9", "Adam beta1">,
    Option<"beta2", "beta2", "float", "0.999", "Adam beta2">,
    Option<"epsilon", "eps", "float", "1.0e-8", "Adam epsilon">,
    Option<"weightDecay", "weight-decay", "float", "0.0",
           "Decoupled weight decay (0 disables)">,
    Option<"warmupSteps", "warmup-steps", "int64_t", "200",
           "Steps of linear learning-rate warm-up">,
    Option<"constantSteps", "constant-steps", "int64_t", "200",
           "Steps at the peak learning rate before 1/sqrt decay">,
  ];
}

def PlanBuffers : Pass<"moe-plan-buffers", "mlir::func::FuncOp"> {
  let summary = "Assign tensors to offsets of one arena, reusing dead buffers";
  let description = [{
    Liveness-based buffer planning for straight-line training steps. Every
    tensor an op produces lives from its definition to its last use (views
    made by `tensor.collapse_shape` / `expand_shape` share their source's
    buffer and extend its life; returned values live to the end). Buffers
    are placed first-fit, in definition order, into one arena, so a buffer
    reuses the space of tensors that died before it was born. An LSTM's
    saved state (gates and cells for the backward pass) is planned with its
    output, and so is attention's (its keys, queries and weights). The
    softmax's [tokens, vocab] logits are not planned: the kernel is
    expected to work through them in row blocks. `moe.adam_update` writes
    parameters and moments in place (it
    runs after every read of the old values), so its results take no
    space.

    Each op gets `moe.offsets` (byte offset of each result in the arena)
    and the function `moe.arena_bytes`, which code generation allocates
    once. The pass reports, as a remark on the function, the memory with
    and without reuse and the peak of live tensors, so users can see what a
    batch size or an expert count costs:

    ```
    remark: moe-plan-buffers: 52 buffers, 9.1 MiB without reuse,
            arena 3.0 MiB (peak live 2.9 MiB)
    ```

    Function arguments (parameters, inputs, optimizer state) are owned by
    the runtime and are not planned.
  }];
}

def FuseRouting : Pass<"moe-fuse-routing", "mlir::func::FuncOp"> {
  let summary = "Fuse the noisy top-k routing chain into moe.fused_route";
  let description = [{
    Matches the chain moe-decompose emits for a noisy top-k layer,

    ```mlir
    %clean = moe.matmul %x, %w_gate
    %raw = moe.matmul %x, %w_noise
    %e, %g, %h, %s, %top = moe.noisy_top_k %clean, noise %raw {k}
    %ef = tensor.collapse_shape %e
    %off, %pos, %tok = moe.dispatch_plan %ef
    %load = moe.load_estimate %clean, noise %raw, %h, %s, %top  // optional
    %imp = moe.importance %ef, %gf                              // optional
    ```

    and replaces it with one `moe.fused_route`, one call of the step ABI;
    the expert matmuls, the combine and the loss arithmetic stay separate.
    That call runs the two gate GEMMs and one routing kernel (on CUDA a
    single pass from the logits to the gates, load, importance and expert
    counts, then the plan; see moe.fused_route). Run before moe-autodiff:
    the fused op has its own gradient, one moe.fused_route_grad (one
    kernel) and the gate products.

    Not fused: gating without noise (top_k, softmax), whose chain has no
    noise matmul; batchwise and threshold masks, which rank whole columns
    of the batch rather than rows; and any chain whose logits or selection
    are also used outside it (fusing would recompute or hide them).
  }];
}

def MarkEqualSegments : Pass<"moe-mark-equal-segments", "mlir::func::FuncOp"> {
  let summary = "State the rows per expert where routing fixes them";
  let description = [{
    Sets `rows_per_expert = m` on every `moe.grouped_matmul` and
    `moe.grouped_matmul_grad` whose dispatch plan gives each expert exactly
    m rows whatever the data: the assignments of a batchwise mask over this
    rank's batch (Appendix A: m tokens per expert), and the composed
    assignments of a hierarchical layer whose primary batchwise mask feeds
    a secondary grouped batchwise mask (m rows per expert of each group).
    Backends then run all experts as one strided-batched GEMM, with no read
    of the segment offsets (the CPU backend still checks them).

    Not marked: top-k and threshold routing (data-dependent segments), a
    batchwise mask over the combined batch of all ranks, and rows an
    expert-parallel rank received (`tensor<?xd>`).

    ```mlir
    // before
    %mask, %rows, %e, %g = moe.batchwise_mask %logits {m = 16 : i64}
    %off, %pos, %tok = moe.dispatch_plan %e rows %rows {num_experts = 8 ...}
    %out = moe.grouped_matmul %buf, %w, %off
    // after
    %out = moe.grouped_matmul %buf, %w, %off {rows_per_expert = 16 : i64}
    ```
  }];
}

def ExpandHierarchy : Pass<"moe-expand-hierarchy", "mlir::func::FuncOp"> {
  let summary = "Lower hierarchical MoE layers to two levels of routing";
  let description = [{
    Paper 3.3: a primary gate routes each token to groups; the token's row
    is dispatched to those groups (group-major, one segment per group),
    where each group's own gate (one grouped matmul for all groups) routes
    the row to the group's experts. The two selections are composed into
    one token-major list of (expert g * experts_per_group + j, gate
    primary gate * secondary gate) assignments, and the experts run as in a
    flat layer. A rank-3 input is routed as batch * time tokens.

    Gating, per level:
    - `top_k` / `noisy_top_k`: k_primary groups per token, k_secondary
      experts per row, composed by `moe.compose_routes` into k_primary *
      k_secondary assignments per token.
    - `batchwise` (Appendix A at each level): the primary mask keeps, for
      each group, the m_p = k_primary * tokens / groups tokens of highest
      primary probability, so every group sees exactly m_p rows; inside
      each group's m_p rows, `moe.grouped_batchwise_mask` keeps for each of
      its experts the m_s = k_secondary * m_p / experts_per_group rows of
      highest secondary probability. Both levels give a variable number of
      choices per token / row, so `moe.compose_routes_csr` composes them
      with row pointers. Eq. 8 trains each level's thresholds
      (`moe.batchwise_threshold_loss` for the primary [groups],
      `moe.grouped_batchwise_threshold_loss` for the secondary [groups,
      experts_per_group], each group's rows against its own row).
      With `combined-batch` (data-parallel training) both levels rank the
      combined batch of all ranks: the primary `moe.batchwise_mask
      {combined_batch}` (each group keeps m_p R tokens of the R ranks),
      whose varying share of rows gets `threshold-capacity` times m_p
      groups slots as the flat mask's does, then
      `moe.grouped_batchwise_mask {combined_batch}` and the Eq. 8 loss on
      the segments of the primary plan's offsets (each expert keeps m_s R
      rows of its group's rows of all ranks), ties to the lower (rank,
      row), as one rank of the global batch ranks them.
    - `threshold` (Eq. 7, inference only; batchwise layers lower this way
      in inference mode): `moe.threshold_mask` on the primary
      probabilities and `moe.grouped_threshold_mask` on the secondary ones
      (each row against the thresholds of its group, found from the
      primary plan's offsets). The number of assignments depends on the
      data, so each level gets a compiled capacity as the flat threshold
      mask does (`threshold-capacity`, see moe-decompose): the primary
      mask `C1 = min(tokens * groups, ceil(factor * k_primary * tokens))`
      assignments, which are also the rows dispatched to the groups, and
      the secondary mask `min(C1 * experts_per_group, ceil(factor *
      k_secondary * k_primary * tokens))` (k_secondary times the rows the
      groups receive in training); row pointers say how many are used, and
      the kernels throw when more pass than fit. Without k_primary /
      k_secondary (threshold gating written by a user) a level holds
      every choice: tokens * groups rows, C1 * experts_per_group
      assignments. Written by a user and lowered for training it is an
      error: its thresholds learn only through Eq. 8, which needs the
      batchwise mask.

    Balancing losses per level: importance / L2 balance over the groups
    (primary gates) and over all experts with the composed gates (the
    paper's Importance_H); with a `load` weight (noisy_top_k only) the
    groups' smooth load (`moe.load_estimate` of the primary gate) and the
    hierarchical load Load_H over all experts.

    Load_H: the paper text in shared/seeds (the conference version) does
    not define it (its section 3.3 has no losses); the arXiv version
    (Appendix B, Eq. 14) defines Load_H(X)_{i,j} = Load_primary(X)_i *
    Load_i(X^(i))_j / |X^(i)|, X^(i) the tokens with G_primary(x)_i > 0,
    and prefers it to Load_i(X^(i))_j alone because that would have no
    gradient with respect to the primary gate. That is what is lowered:
    Load_primary is the
    expected number of tokens reaching group i, `moe.grouped_load_estimate`
    sums each group's smooth secondary load Load_i over the rows it
    received, and `moe.hierarchical_load` multiplies the first by the
    second's share per row, |X^(i)| being the group's row count from the
    primary plan (the probability of reaching the group times the smooth
    secondary load, normalised per received row).

    Inference mode (the `inference` option, or the `moe.inference`
    function attribute that moe-add-eval puts on evaluation copies): no
    gating noise, threshold masks for batchwise layers, no auxiliary
    losses. Runs after moe-decompose (which leaves hierarchical layers
    alone); new RNG streams continue after the highest one in the function.

    ```mlir
    // batchwise, training
    %cp = moe.matmul %x, %w_primary
    %pm, %prows, %pe, %pg = moe.batchwise_mask %cp {m = m_p}
    %off, %pos, %tok = moe.dispatch_plan %pe rows %prows {num_experts = groups}
    %cs = moe.grouped_matmul (moe.dispatch %x, %tok), %w_secondary, %off
    %sm, %srows, %se, %sg = moe.grouped_batchwise_mask %cs {groups, m = m_s}
    %rows, %e, %g = moe.compose_routes_csr %prows, %pe, %pg, %pos, %srows,
        %se, %sg {experts_per_group}
    ... experts and combine as in a flat layer, with `rows %rows` ...
    ```
  }];
  let options = [
    Option<"inference", "inference", "bool", "false",
           "Lower for evaluation: no gating noise, no auxiliary losses">,
    Option<"thresholdCapacity", "threshold-capacity", "double", "2.0",
           "Assignment slots of each level's threshold mask (inference) as "
           "a multiple of the assignments its batchwise mask makes in "
           "training, at most every choice; must be positive">,
    Option<"combinedBatch", "combined-batch", "bool", "false",
           "Batchwise masks of both levels rank the combined batch of all "
           "ranks (data-parallel training; sized by threshold-capacity)">,
    Option<"routerPrecision", "router-precision", "std::string", "\"f32\"",
           "Precision of the router's gate GEMMs: f32 (default) or tf32 "
           "(TF32 tensor cores on GPUs; the routing after the logits stays "
           "f32)">,
  ];
}

def Partition : Pass<"moe-partition", "mlir::ModuleOp"> {
  let summary = "Make model functions data-parallel over a mesh of ranks";
  let description = [{
    The paper's combination across batches (section 4), first slice: every
    rank reads its own batch and holds a copy of the parameters; the loss is
    the loss of the global batch of all ranks. Adds a 1-D mesh
    `mesh.mesh @ranks(shape = ?)` (one compiled graph for any number of
    ranks) and, in every model function:

    ```mlir
    %n = moe.count_targets %targets : (tensor<32x20xi32>) -> tensor<i32>
    %all = mesh.all_reduce %n on @ranks mesh_axes = [0] : tensor<i32> -> tensor<i32>
    %ce = moe.softmax_cross_entropy ... target_count(%all) ...
    %global = mesh.all_reduce %ce on @ranks mesh_axes = [0] : tensor<f32> -> tensor<f32>
    %imp_all = mesh.all_reduce %imp on @ranks mesh_axes = [0] reduction = <average>
    %l = moe.cv_squared %imp_all ...
    ```

    The cross-entropy of the global batch is the mean over all ranks'
    non-padding targets: each rank divides its sum by the global count and
    the ranks' parts are summed (the average of the ranks' means would be
    wrong whenever their padding differs: translation batches, the last
    batch of an epoch). The balancing losses see the average importance and
    load, which gives the global batch's CV^2 (it does not change with
    scale) and Eq. 5 (which divides by the local token count, the same
    static shape on every rank). moe-autodiff differentiates the
    collectives (the sum's adjoint is the identity, so each rank's
    cross-entropy gradient is scaled by 1 / global count; the average's
    divides by the mesh size), and moe-sync-gradients sums the parameter
    gradients.

    Batchwise masks must rank the combined batch of all ranks (paper
    Appendix A): moe-decompose's `combined-batch` lowers them so (the
    runtime finds each expert's global top m R by bisection over all-reduced
    counts), and the Eq. 8 loss, a sum over the tokens, is summed over the
    ranks. Runs after moe-fuse-routing and before moe-autodiff.
    Hierarchical batchwise layers need both masks over the combined batch
    (moe-expand-hierarchy's `combined-batch`); their grouped Eq. 8 loss is
    summed over the ranks too. Load_H (`moe.hierarchical_load`, not linear
    in the batch) takes the ranks' sums of its primary and secondary loads
    and of the group offsets, so it is the global batch's on every rank.

    With `expert-parallel`, the experts are model-parallel as well: every
    expert weight becomes `tensor<n x ... , #moe.shard<@ranks>>` (rank r of
    R holds experts [r n / R, (r + 1) n / R)), and each MoE layer's expert
    section (the grouped matmuls and activations between moe.dispatch and
    moe.combine) runs on the ranks that hold the experts, on the rows of
    every rank routed to them:

    ```mlir
    %off, %pos, %tok = moe.dispatch_plan %e ...
    %counts, %roff = moe.exchange_counts %off on @ranks
    %buf = moe.dispatch %x, %tok
    %recv = moe.exchange_to_experts %buf, %off, %counts on @ranks
        : (...) -> tensor<?x16xf32>
    %y = moe.grouped_matmul %recv, %w, %roff : (tensor<?x16xf32>,
        tensor<8x16x16xf32, #moe.shard<@ranks>>, tensor<9xi32>) -> ...
    %back = moe.exchange_to_tokens %y, %off, %counts on @ranks
    %out = moe.combine %back, %g, %pos ...
    ```

    moe-autodiff turns each exchange's gradient into the other one, and
    moe-sync-gradients leaves the sharded gradients on their ranks. One
    graph runs on any number of ranks that divides every layer's expert
    count (docs/PARTITIONING.md).
  }];
  let options = [
    Option<"expertParallel", "expert-parallel", "bool", /*default=*/"false",
           "Shard the experts over the ranks and exchange the tokens "
           "routed to them (all-to-all) instead of replicating them">,
  ];
  let dependentDialects = ["mlir::mesh::MeshDialect"];
}

def SyncGradients : Pass<"moe-sync-gradients", "mlir::ModuleOp"> {
  let summary = "Sum the gradients of replicated parameters over the ranks";
  let description = [{
    In a module that moe-partition made data-parallel, every gradient a
    training step returns (`moe.grad`) becomes
    `mesh.all_reduce %g on @ranks mesh_axes = [0] reduction = <sum>`, so
    every rank applies the same update (Adam runs on identical gradients).
    Gradients of expert-sharded parameters (`#moe.shard`) stay on their
    rank: each rank's experts see every rank's tokens already.
    The runtime adds the ranks' values in rank order, so the result has the
    same bits on every rank. A module without a mesh is left alone. Runs
    after moe-autodiff and before moe-optimizer.
  }];
  let dependentDialects = ["mlir::mesh::MeshDialect"];
}

def SparseGradients : Pass<"moe-sparse-gradients", "mlir::ModuleOp"> {
  let summary = "Row-sparse gradients and lazy Adam for the vocabulary layers";
  let description = [{
    Runs after moe-optimizer. An embedding table's gradient
    (`moe.embedding_grad`) or a sampled softmax's output weights and bias
    (`moe.softmax_cross_entropy_grad` with `num_samples`) that only feeds
    `moe.adam_update` is rewritten into the rows the step touched and a lazy
    Adam update of those rows, so no [vocab, d] gradient is made:

    ```mlir
    // before
    %dt = moe.embedding_grad %ids, %dout : (...) -> tensor<10000x64xf32>
    %t2, %m2, %v2 = moe.adam_update %t, %dt, %m, %v, %lr, %step {...}
    // after
    %rows, %vals = moe.embedding_row_grad %ids, %dout {vocab = 10000 : i64}
    %t2, %m2, %v2 = moe.adam_update_rows %t, %rows, %vals, %m, %v, %lr,
        %step {...}
    ```

    Lazy Adam differs from Adam on the untouched rows: their moments do
    not decay and their parameters do not move (nor decay). Under data
    parallelism the gradient reaches Adam through moe-sync-gradients'
    `mesh.all_reduce` sum; that all-reduce becomes
    `moe.sum_rows_over_ranks` of the rows (each rank's N rows gathered, the
    union of the ids summed over the ranks, R N rows a step), so every rank
    applies the same lazy Adam update as one rank of the global batch.
    Gradients with other uses (a tied layer's sum) stay dense.
    `mode`: `on` rewrites every candidate, `off` none, `auto` those where
    the dense path is costly and the sparse one much faster: a table of at
    least 64 MiB of which at most a quarter of the rows can be touched, N
    being the touched-row bound (ids for the embedding, samples + tokens
    for the sampled softmax; bench/sparse_gradient_bench.cpp), times
    `ranks` under data parallelism (the global batch's bound). Smaller
    tables keep exact Adam (the paper's 793K-word layers go sparse; the
    demo's 8K-word table does not).
  }];
  let options = [
    Option<"mode", "mode", "std::string", "\"auto\"",
           "auto | on | off">,
    Option<"ranks", "ranks", "int64_t", "1",
           "Data-parallel ranks the `auto` rule sizes the global batch for "
           "(R N touched rows; the graph itself runs on any number)">,
  ];
}

#endif // MOE_PASSES_PASSES_TD
