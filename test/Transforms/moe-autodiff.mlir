// RUN: moe-opt %s -split-input-file --moe-autodiff --verify-diagnostics | FileCheck %s

// A decomposed noisy top-k layer trained only by its importance loss: the
// gradient runs cv^2 -> importance -> gates -> noisy top-k -> both gate
// matmuls. The experts do not reach the loss and get a zero gradient; the
// input is not a parameter, so no gradient is built for it, and the forward
// work nothing needs (dispatch, experts, combine) is dropped.
// CHECK-LABEL: func.func @importance_only(
// CHECK: func.func @importance_only_train_step(
// CHECK-SAME: %[[X:[^:]*]]: tensor<6x8xf32>
// CHECK-SAME: -> (tensor<f32> {moe.output = "loss"}, tensor<8x4xf32> {moe.grad = "gate"}, tensor<8x4xf32> {moe.grad = "noise"}, tensor<4x8x8xf32> {moe.grad = "experts"})
// CHECK: %[[CLEAN:.*]] = moe.matmul %[[X]], %{{.*}}
// CHECK: %[[RAW:.*]] = moe.matmul %[[X]], %{{.*}}
// CHECK: %[[E:.*]], %[[G:.*]], %[[H:.*]], %[[STD:.*]], %{{.*}} = moe.noisy_top_k
// CHECK: %[[IMP:.*]] = moe.importance
// CHECK: %[[LOSS:.*]] = moe.cv_squared %[[IMP]]
// CHECK-NOT: moe.dispatch
// CHECK: %[[ONE:.*]] = arith.constant dense<1.000000e+00> : tensor<f32>
// CHECK: %[[DIMP:.*]] = moe.cv_squared_grad %[[IMP]], %[[ONE]] {weight = 1.000000e-01 : f32}
// CHECK: %[[DGF:.*]] = moe.importance_grad %{{.*}}, %[[DIMP]]
// CHECK: %[[DG:.*]] = tensor.expand_shape %[[DGF]] {{\[}}[0, 1]] output_shape [6, 2]
// CHECK: %[[DC:.*]], %[[DR:.*]] = moe.noisy_top_k_grad %[[CLEAN]], %[[H]], %[[STD]], %[[E]], %[[G]], %[[DG]], noise %[[RAW]]
// CHECK-NOT: {transpose_rhs}
// CHECK-DAG: %[[DWN:.*]] = moe.matmul %[[X]], %[[DR]] {transpose_lhs}
// CHECK-DAG: %[[DWG:.*]] = moe.matmul %[[X]], %[[DC]] {transpose_lhs}
// CHECK: %[[ZERO:.*]] = arith.constant dense<0.000000e+00> : tensor<4x8x8xf32>
// CHECK: return %[[LOSS]], %[[DWG]], %[[DWN]], %[[ZERO]]
func.func @importance_only(%x: tensor<6x8xf32>,
    %wg: tensor<8x4xf32> {moe.param = "gate", moe.init = #moe.init<zeros>},
    %wn: tensor<8x4xf32> {moe.param = "noise", moe.init = #moe.init<zeros>},
    %we: tensor<4x8x8xf32> {moe.param = "experts", moe.init = #moe.init<glorot_uniform>}) -> tensor<f32> {
  %clean = moe.matmul %x, %wg : (tensor<6x8xf32>, tensor<8x4xf32>) -> tensor<6x4xf32>
  %raw = moe.matmul %x, %wn : (tensor<6x8xf32>, tensor<8x4xf32>) -> tensor<6x4xf32>
  %e, %g, %h, %s, %top = moe.noisy_top_k %clean, noise %raw {k = 2 : i64} : (tensor<6x4xf32>, tensor<6x4xf32>) -> (tensor<6x2xi32>, tensor<6x2xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x3xf32>)
  %ef = tensor.collapse_shape %e [[0, 1]] : tensor<6x2xi32> into tensor<12xi32>
  %gf = tensor.collapse_shape %g [[0, 1]] : tensor<6x2xf32> into tensor<12xf32>
  %imp = moe.importance %ef, %gf {num_experts = 4 : i64} : (tensor<12xi32>, tensor<12xf32>) -> tensor<4xf32>
  %loss = moe.cv_squared %imp {weight = 0.1 : f32} : (tensor<4xf32>) -> tensor<f32>
  %off, %pos, %tok = moe.dispatch_plan %ef {num_experts = 4 : i64, tokens = 6 : i64} : (tensor<12xi32>) -> (tensor<5xi32>, tensor<12xi32>, tensor<12xi32>)
  %buf = moe.dispatch %x, %tok : (tensor<6x8xf32>, tensor<12xi32>) -> tensor<12x8xf32>
  %out = moe.grouped_matmul %buf, %we, %off : (tensor<12x8xf32>, tensor<4x8x8xf32>, tensor<5xi32>) -> tensor<12x8xf32>
  %y = moe.combine %out, %gf, %pos {tokens = 6 : i64} : (tensor<12x8xf32>, tensor<12xf32>, tensor<12xi32>) -> tensor<6x8xf32>
  return %loss : tensor<f32>
}

// -----

// A parameter used on two paths gets the sum of both gradients.
// CHECK-LABEL: func.func @two_paths_train_step
// CHECK: %[[A:.*]] = moe.cv_squared_grad %{{.*}}, %{{.*}} {weight = 2.000000e+00 : f32}
// CHECK: %[[B:.*]] = moe.cv_squared_grad %{{.*}}, %{{.*}} {weight = 1.000000e+00 : f32}
// CHECK: %[[SUM:.*]] = moe.add %[[A]], %[[B]] : tensor<4xf32>
// CHECK: return %{{.*}}, %[[SUM]]
func.func @two_paths(%b: tensor<4xf32> {moe.param = "b", moe.init = #moe.init<normal, scale = 1.0>}) -> tensor<f32> {
  %l1 = moe.cv_squared %b {weight = 1.0 : f32} : (tensor<4xf32>) -> tensor<f32>
  %l2 = moe.cv_squared %b {weight = 2.0 : f32} : (tensor<4xf32>) -> tensor<f32>
  %loss = moe.add %l1, %l2 : tensor<f32>
  return %loss : tensor<f32>
}

// -----

// Functions without parameters are not models: nothing is added.
// CHECK-LABEL: func.func @not_a_model
// CHECK-NOT: not_a_model_train_step
func.func @not_a_model(%x: tensor<4xf32>) -> tensor<f32> {
  %l = moe.cv_squared %x {weight = 1.0 : f32} : (tensor<4xf32>) -> tensor<f32>
  return %l : tensor<f32>
}

// -----

// Model-level MoE layers are differentiated through their primitives.
func.func @undecomposed(%x: tensor<4x8xf32>, %wg: tensor<8x2xf32> {moe.param = "g", moe.init = #moe.init<zeros>}, %we: tensor<2x8x8xf32> {moe.param = "e", moe.init = #moe.init<glorot_uniform>}) -> tensor<f32> {
  // expected-error@+1 {{has no gradient of its own: run --moe-decompose before --moe-autodiff}}
  %y, %aux = moe.moe_layer %x gate(%wg) experts(%we) {num_experts = 2 : i64, k = 1 : i64, gating = #moe.gating<top_k>, expert = #moe.expert<linear>, losses = #moe.losses<importance = 1.0>} : (tensor<4x8xf32>, tensor<8x2xf32>, tensor<2x8x8xf32>) -> (tensor<4x8xf32>, tensor<f32>)
  return %aux : tensor<f32>
}

// -----

// Ops outside the moe dialect have no gradient: a clear error names them.
func.func @foreign_op(%b: tensor<4xf32> {moe.param = "b", moe.init = #moe.init<zeros>}) -> tensor<f32> {
  %l = moe.cv_squared %b {weight = 1.0 : f32} : (tensor<4xf32>) -> tensor<f32>
  // expected-error@+1 {{'arith.addf' op has no gradient: moe-autodiff cannot differentiate through it}}
  %s = arith.addf %l, %l : tensor<f32>
  return %s : tensor<f32>
}

// -----

// An LSTM that starts from a given state is a decode step: inference only.
func.func @lstm_with_state(%x: tensor<2x1x4xf32>, %wx: tensor<4x16xf32> {moe.param = "wx", moe.init = #moe.init<zeros>}, %wh: tensor<4x16xf32>, %b: tensor<16xf32>, %h0: tensor<2x4xf32>, %c0: tensor<2x4xf32>) -> tensor<f32> {
  // expected-error@+1 {{'moe.lstm' op with state(h_0, c_0) is inference-only (a decode step): moe-autodiff cannot differentiate it}}
  %y, %h, %c = moe.lstm %x weights(%wx, %wh, %b) state(%h0, %c0) : (tensor<2x1x4xf32>, tensor<4x16xf32>, tensor<4x16xf32>, tensor<16xf32>, tensor<2x4xf32>, tensor<2x4xf32>) -> (tensor<2x1x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>)
  %yf = tensor.collapse_shape %y [[0, 1, 2]] : tensor<2x1x4xf32> into tensor<8xf32>
  %loss = moe.cv_squared %yf {weight = 1.0 : f32} : (tensor<8xf32>) -> tensor<f32>
  return %loss : tensor<f32>
}

// -----

// Values an op saves for its own backward pass (here the noisy logits) take
// no gradient.
func.func @saved_value_in_loss(%x: tensor<6x8xf32>, %wg: tensor<8x4xf32> {moe.param = "g", moe.init = #moe.init<zeros>}) -> tensor<f32> {
  %clean = moe.matmul %x, %wg : (tensor<6x8xf32>, tensor<8x4xf32>) -> tensor<6x4xf32>
  // expected-error@+1 {{cannot differentiate through result #2, which the op computes for its own backward pass}}
  %e, %g, %h, %s, %top = moe.noisy_top_k %clean {k = 2 : i64} : (tensor<6x4xf32>) -> (tensor<6x2xi32>, tensor<6x2xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x3xf32>)
  %hf = tensor.collapse_shape %h [[0, 1]] : tensor<6x4xf32> into tensor<24xf32>
  %loss = moe.cv_squared %hf {weight = 1.0 : f32} : (tensor<24xf32>) -> tensor<f32>
  return %loss : tensor<f32>
}

// -----

// The backward of a dispatch sums rows per token, which needs the plan that
// made its token indices.
func.func @dispatch_without_plan(%x: tensor<6x8xf32>, %tok: tensor<12xi32>, %w: tensor<8x8xf32> {moe.param = "w", moe.init = #moe.init<zeros>}) -> tensor<f32> {
  %h = moe.matmul %x, %w : (tensor<6x8xf32>, tensor<8x8xf32>) -> tensor<6x8xf32>
  // expected-error@+1 {{can only be differentiated when its token indices come from moe.dispatch_plan or moe.fused_route}}
  %buf = moe.dispatch %h, %tok : (tensor<6x8xf32>, tensor<12xi32>) -> tensor<12x8xf32>
  %bf = tensor.collapse_shape %buf [[0, 1]] : tensor<12x8xf32> into tensor<96xf32>
  %loss = moe.cv_squared %bf {weight = 1.0 : f32} : (tensor<96xf32>) -> tensor<f32>
  return %loss : tensor<f32>
}

// -----

// Of the collectives' reductions only sum and average are differentiable.
mesh.mesh @ranks(shape = ?)
func.func @all_reduce_max(%b: tensor<4xf32> {moe.param = "b", moe.init = #moe.init<zeros>}) -> tensor<f32> {
  // expected-error@+1 {{has no gradient for reduction max (only sum and average)}}
  %m = mesh.all_reduce %b on @ranks mesh_axes = [0] reduction = <max> : tensor<4xf32> -> tensor<4xf32>
  %loss = moe.cv_squared %m {weight = 1.0 : f32} : (tensor<4xf32>) -> tensor<f32>
  return %loss : tensor<f32>
}

// -----

// The loss must come first and be a scalar.
// expected-error@+1 {{a model's first result must be its scalar loss, tensor<f32>}}
func.func @vector_loss(%b: tensor<4xf32> {moe.param = "b", moe.init = #moe.init<zeros>}) -> tensor<4xf32> {
  return %b : tensor<4xf32>
}

// -----

// Sequence layers: each model-level layer maps to one backward op; dropout
// redraws its mask from the same RNG stream, the sampled softmax its
// classes, and the residual and total_loss pass gradients straight through.
// CHECK-LABEL: func.func @sequence_layers_train_step
// CHECK: %[[E:.*]] = moe.embedding
// CHECK: %[[D:.*]] = moe.dropout %[[E]] {rate = 2.000000e-01 : f32, rng_stream = 4 : i64}
// CHECK: %[[H:.*]] = moe.lstm %[[D]] weights(%{{.*}}) projection(%{{.*}})
// CHECK: %[[C:.*]] = moe.attention %[[H]], %[[H]]
// CHECK: %[[R:.*]] = moe.residual %[[H]], %[[C]]
// CHECK: %[[CE:.*]] = moe.softmax_cross_entropy %[[R]]
// CHECK: %[[DH:.*]], %[[DW:.*]], %[[DB:.*]] = moe.softmax_cross_entropy_grad %[[R]], %{{.*}} {num_samples = 3 : i64, rng_stream = 5 : i64}
// CHECK: %[[DS:.*]], %[[DT:.*]], %[[DU:.*]], %[[DWA:.*]], %[[DV:.*]] = moe.attention_grad %[[H]], %[[H]], %{{.*}}, %{{.*}}, %{{.*}}, %[[C]], %[[DH]]
// CHECK: %[[S1:.*]] = moe.add %[[DH]], %[[DS]]
// CHECK: %[[S2:.*]] = moe.add %[[S1]], %[[DT]]
// CHECK: %[[DX:.*]], %[[DWX:.*]], %[[DWH:.*]], %[[DBL:.*]], %[[DP:.*]] = moe.lstm_grad %[[D]] weights(%{{.*}}) projection(%{{.*}}) output %[[H]], %[[S2]]
// CHECK: %[[DD:.*]] = moe.dropout %[[DX]] {rate = 2.000000e-01 : f32, rng_stream = 4 : i64}
// CHECK: %[[DE:.*]] = moe.embedding_grad %{{.*}}, %[[DD]]
// CHECK: return %{{.*}}, %[[DE]], %[[DWX]], %[[DWH]], %[[DBL]], %[[DP]], %[[DU]], %[[DWA]], %[[DV]], %[[DW]], %[[DB]]
func.func @sequence_layers(
    %ids: tensor<2x3xi32> {moe.input = "tokens"},
    %targets: tensor<2x3xi32> {moe.input = "targets"},
    %emb: tensor<10x4xf32> {moe.param = "emb", moe.init = #moe.init<uniform, scale = 0.1>},
    %wx: tensor<4x24xf32> {moe.param = "wx", moe.init = #moe.init<glorot_uniform>},
    %wh: tensor<4x24xf32> {moe.param = "wh", moe.init = #moe.init<glorot_uniform>},
    %b: tensor<24xf32> {moe.param = "b", moe.init = #moe.init<zeros>},
    %p: tensor<6x4xf32> {moe.param = "proj", moe.init = #moe.init<glorot_uniform>},
    %u: tensor<4x5xf32> {moe.param = "u", moe.init = #moe.init<glorot_uniform>},
    %w: tensor<4x5xf32> {moe.param = "w", moe.init = #moe.init<glorot_uniform>},
    %v: tensor<5xf32> {moe.param = "v", moe.init = #moe.init<uniform, scale = 0.1>},
    %wo: tensor<10x4xf32> {moe.param = "out.w", moe.init = #moe.init<uniform, scale = 0.1>},
    %bo: tensor<10xf32> {moe.param = "out.b", moe.init = #moe.init<zeros>},
    %aux: tensor<f32>) -> tensor<f32> {
  %e = moe.embedding %emb[%ids] : (tensor<10x4xf32>, tensor<2x3xi32>) -> tensor<2x3x4xf32>
  %d = moe.dropout %e {rate = 0.2 : f32, rng_stream = 4 : i64} : tensor<2x3x4xf32>
  %h = moe.lstm %d weights(%wx, %wh, %b) projection(%p) : (tensor<2x3x4xf32>, tensor<4x24xf32>, tensor<4x24xf32>, tensor<24xf32>, tensor<6x4xf32>) -> tensor<2x3x4xf32>
  %c = moe.attention %h, %h weights(%u, %w, %v) : (tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<4x5xf32>, tensor<4x5xf32>, tensor<5xf32>) -> tensor<2x3x4xf32>
  %r = moe.residual %h, %c : tensor<2x3x4xf32>
  %ce = moe.softmax_cross_entropy %r, %targets weights(%wo, %bo) {num_samples = 3 : i64, rng_stream = 5 : i64} : (tensor<2x3x4xf32>, tensor<2x3xi32>, tensor<10x4xf32>, tensor<10xf32>) -> tensor<f32>
  %loss = moe.total_loss %ce, %aux : tensor<f32>
  return %loss : tensor<f32>
}

// -----

// Plain top-k (no noise operand): one gradient, to the clean logits.
// CHECK-LABEL: func.func @plain_top_k_train_step
// CHECK: %[[DC:.*]] = moe.noisy_top_k_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : {{.*}} -> tensor<6x4xf32>
// CHECK: moe.matmul %{{.*}}, %[[DC]] {transpose_lhs}
func.func @plain_top_k(%x: tensor<6x8xf32>, %wg: tensor<8x4xf32> {moe.param = "gate", moe.init = #moe.init<zeros>}) -> tensor<f32> {
  %clean = moe.matmul %x, %wg : (tensor<6x8xf32>, tensor<8x4xf32>) -> tensor<6x4xf32>
  %e, %g, %h, %s, %top = moe.noisy_top_k %clean {k = 2 : i64} : (tensor<6x4xf32>) -> (tensor<6x2xi32>, tensor<6x2xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<6x3xf32>)
  %ef = tensor.collapse_shape %e [[0, 1]] : tensor<6x2xi32> into tensor<12xi32>
  %gf = tensor.collapse_shape %g [[0, 1]] : tensor<6x2xf32> into tensor<12xf32>
  %imp = moe.importance %ef, %gf {num_experts = 4 : i64} : (tensor<12xi32>, tensor<12xf32>) -> tensor<4xf32>
  %loss = moe.cv_squared %imp {weight = 0.1 : f32} : (tensor<4xf32>) -> tensor<f32>
  return %loss : tensor<f32>
}

// -----

// Attention with source lengths: the lengths take no gradient, and the
// backward is the unmasked op's (the saved weights are zero at padding).
// CHECK-LABEL: func.func @attention_lengths_train_step(
// CHECK: %[[CTX:.*]] = moe.attention %{{.*}}, %{{.*}} weights(%{{.*}}, %{{.*}}, %{{.*}}) lengths(%{{.*}})
// CHECK: moe.attention_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[CTX]], %{{.*}} : (tensor<2x4x3xf32>, tensor<2x2x3xf32>, tensor<3x5xf32>, tensor<3x5xf32>, tensor<5xf32>, tensor<2x2x3xf32>, tensor<2x2x3xf32>)
func.func @attention_lengths(%src: tensor<2x4x3xf32>, %tgt: tensor<2x2x3xf32>, %len: tensor<2xi32>,
    %u: tensor<3x5xf32> {moe.param = "u", moe.init = #moe.init<glorot_uniform>},
    %w: tensor<3x5xf32> {moe.param = "w", moe.init = #moe.init<glorot_uniform>},
    %v: tensor<5xf32> {moe.param = "v", moe.init = #moe.init<glorot_uniform>},
    %wo: tensor<7x3xf32> {moe.param = "wo", moe.init = #moe.init<zeros>},
    %bo: tensor<7xf32> {moe.param = "bo", moe.init = #moe.init<zeros>},
    %targets: tensor<2x2xi32>) -> tensor<f32> {
  %ctx = moe.attention %src, %tgt weights(%u, %w, %v) lengths(%len) : (tensor<2x4x3xf32>, tensor<2x2x3xf32>, tensor<3x5xf32>, tensor<3x5xf32>, tensor<5xf32>, tensor<2xi32>) -> tensor<2x2x3xf32>
  %loss = moe.softmax_cross_entropy %ctx, %targets weights(%wo, %bo) : (tensor<2x2x3xf32>, tensor<2x2xi32>, tensor<7x3xf32>, tensor<7xf32>) -> tensor<f32>
  return %loss : tensor<f32>
}
