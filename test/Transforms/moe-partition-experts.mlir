// RUN: moe-opt %s --split-input-file --moe-partition="expert-parallel=true" --verify-diagnostics | FileCheck %s
// RUN: moe-opt %examples/tiny_moe.mlir --moe-train-pipeline="expert-parallel=true" 2>/dev/null | FileCheck %s --check-prefix=PIPELINE

// An ffn expert section moves to the experts' ranks: the counts go first,
// the rows travel to the experts ([?, d]: how many arrive is known when the
// graph runs), the experts use the received segments and this rank's shard
// of their weights, and the outputs travel back before the combine.
// CHECK: mesh.mesh @ranks(shape = ?)
// CHECK-LABEL: func.func @ffn(
// CHECK-SAME: %[[W1:[^:]*]]: tensor<4x8x16xf32, #moe.shard<@ranks>> {moe.init = #moe.init<zeros>, moe.param = "w1"}
// CHECK-SAME: %[[W2:[^:]*]]: tensor<4x16x8xf32, #moe.shard<@ranks>> {moe.init = #moe.init<zeros>, moe.param = "w2"}
// CHECK: %[[OFF:.*]], %[[POS:.*]], %[[TOK:.*]] = moe.dispatch_plan
// CHECK-NEXT: %[[COUNTS:.*]], %[[ROFF:.*]] = moe.exchange_counts %[[OFF]] on @ranks : (tensor<5xi32>) -> (tensor<4xi32>, tensor<5xi32>)
// CHECK: %[[BUF:.*]] = moe.dispatch %{{.*}}, %[[TOK]]
// CHECK-NEXT: %[[RECV:.*]] = moe.exchange_to_experts %[[BUF]], %[[OFF]], %[[COUNTS]] on @ranks : (tensor<12x8xf32>, tensor<5xi32>, tensor<4xi32>) -> tensor<?x8xf32>
// CHECK-NEXT: %[[H:.*]] = moe.grouped_matmul %[[RECV]], %[[W1]], %[[ROFF]] : (tensor<?x8xf32>, tensor<4x8x16xf32, #moe.shard<@ranks>>, tensor<5xi32>) -> tensor<?x16xf32>
// CHECK-NEXT: %[[A:.*]] = moe.activate %[[H]] {act = #moe.activation<relu>} : tensor<?x16xf32>
// CHECK-NEXT: %[[Y:.*]] = moe.grouped_matmul %[[A]], %[[W2]], %[[ROFF]] : (tensor<?x16xf32>, tensor<4x16x8xf32, #moe.shard<@ranks>>, tensor<5xi32>) -> tensor<?x8xf32>
// CHECK-NEXT: %[[BACK:.*]] = moe.exchange_to_tokens %[[Y]], %[[OFF]], %[[COUNTS]] on @ranks : (tensor<?x8xf32>, tensor<5xi32>, tensor<4xi32>) -> tensor<12x8xf32>
// CHECK-NEXT: moe.combine %[[BACK]], %{{.*}}, %[[POS]]
func.func @ffn(%x: tensor<6x8xf32> {moe.param = "x", moe.init = #moe.init<zeros>},
               %e: tensor<12xi32> {moe.input = "experts"},
               %g: tensor<12xf32> {moe.param = "gates", moe.init = #moe.init<zeros>},
               %w1: tensor<4x8x16xf32> {moe.param = "w1", moe.init = #moe.init<zeros>},
               %w2: tensor<4x16x8xf32> {moe.param = "w2", moe.init = #moe.init<zeros>}) -> tensor<6x8xf32> {
  %off, %pos, %tok = moe.dispatch_plan %e {num_experts = 4 : i64, tokens = 6 : i64}
      : (tensor<12xi32>) -> (tensor<5xi32>, tensor<12xi32>, tensor<12xi32>)
  %buf = moe.dispatch %x, %tok : (tensor<6x8xf32>, tensor<12xi32>) -> tensor<12x8xf32>
  %h = moe.grouped_matmul %buf, %w1, %off
      : (tensor<12x8xf32>, tensor<4x8x16xf32>, tensor<5xi32>) -> tensor<12x16xf32>
  %a = moe.activate %h {act = #moe.activation<relu>} : tensor<12x16xf32>
  %y = moe.grouped_matmul %a, %w2, %off
      : (tensor<12x16xf32>, tensor<4x16x8xf32>, tensor<5xi32>) -> tensor<12x8xf32>
  %out = moe.combine %y, %g, %pos {tokens = 6 : i64}
      : (tensor<12x8xf32>, tensor<12xf32>, tensor<12xi32>) -> tensor<6x8xf32>
  return %out : tensor<6x8xf32>
}

// -----

// Only model parameters can be sharded.
func.func @computed_weights(%x: tensor<6x8xf32> {moe.param = "x", moe.init = #moe.init<zeros>},
                            %e: tensor<12xi32> {moe.input = "experts"},
                            %g: tensor<12xf32> {moe.param = "gates", moe.init = #moe.init<zeros>},
                            %w: tensor<4x8x8xf32> {moe.param = "w", moe.init = #moe.init<zeros>}) -> tensor<6x8xf32> {
  %off, %pos, %tok = moe.dispatch_plan %e {num_experts = 4 : i64, tokens = 6 : i64}
      : (tensor<12xi32>) -> (tensor<5xi32>, tensor<12xi32>, tensor<12xi32>)
  %buf = moe.dispatch %x, %tok : (tensor<6x8xf32>, tensor<12xi32>) -> tensor<12x8xf32>
  %w2 = moe.activate %w {act = #moe.activation<tanh>} : tensor<4x8x8xf32>
  // expected-error@+1 {{multiplies by expert weights that are not a model parameter}}
  %y = moe.grouped_matmul %buf, %w2, %off
      : (tensor<12x8xf32>, tensor<4x8x8xf32>, tensor<5xi32>) -> tensor<12x8xf32>
  %out = moe.combine %y, %g, %pos {tokens = 6 : i64}
      : (tensor<12x8xf32>, tensor<12xf32>, tensor<12xi32>) -> tensor<6x8xf32>
  return %out : tensor<6x8xf32>
}

// -----

// Expert weights that something else also reads cannot live on one rank.
func.func @shared_weights(%x: tensor<6x8xf32> {moe.param = "x", moe.init = #moe.init<zeros>},
                          %e: tensor<12xi32> {moe.input = "experts"},
                          %g: tensor<12xf32> {moe.param = "gates", moe.init = #moe.init<zeros>},
                          %w: tensor<4x8x8xf32> {moe.param = "w", moe.init = #moe.init<zeros>}) -> (tensor<6x8xf32>, tensor<4x8x8xf32>) {
  %off, %pos, %tok = moe.dispatch_plan %e {num_experts = 4 : i64, tokens = 6 : i64}
      : (tensor<12xi32>) -> (tensor<5xi32>, tensor<12xi32>, tensor<12xi32>)
  %buf = moe.dispatch %x, %tok : (tensor<6x8xf32>, tensor<12xi32>) -> tensor<12x8xf32>
  %y = moe.grouped_matmul %buf, %w, %off
      : (tensor<12x8xf32>, tensor<4x8x8xf32>, tensor<5xi32>) -> tensor<12x8xf32>
  %out = moe.combine %y, %g, %pos {tokens = 6 : i64}
      : (tensor<12x8xf32>, tensor<12xf32>, tensor<12xi32>) -> tensor<6x8xf32>
  // expected-error@+1 {{uses the expert weights "w" outside an expert section}}
  return %out, %w : tensor<6x8xf32>, tensor<4x8x8xf32>
}

// -----

// A value of the expert section that another op reads has no single home.
func.func @branching(%x: tensor<6x8xf32> {moe.param = "x", moe.init = #moe.init<zeros>},
                     %e: tensor<12xi32> {moe.input = "experts"},
                     %g: tensor<12xf32> {moe.param = "gates", moe.init = #moe.init<zeros>},
                     %w: tensor<4x8x8xf32> {moe.param = "w", moe.init = #moe.init<zeros>}) -> (tensor<6x8xf32>, tensor<12x8xf32>) {
  %off, %pos, %tok = moe.dispatch_plan %e {num_experts = 4 : i64, tokens = 6 : i64}
      : (tensor<12xi32>) -> (tensor<5xi32>, tensor<12xi32>, tensor<12xi32>)
  %buf = moe.dispatch %x, %tok : (tensor<6x8xf32>, tensor<12xi32>) -> tensor<12x8xf32>
  // expected-error@+1 {{feeds the experts' output and another op}}
  %y = moe.grouped_matmul %buf, %w, %off
      : (tensor<12x8xf32>, tensor<4x8x8xf32>, tensor<5xi32>) -> tensor<12x8xf32>
  %out = moe.combine %y, %g, %pos {tokens = 6 : i64}
      : (tensor<12x8xf32>, tensor<12xf32>, tensor<12xi32>) -> tensor<6x8xf32>
  return %out, %y : tensor<6x8xf32>, tensor<12x8xf32>
}

// The whole pipeline: the fused route's plan feeds the exchanges in the
// model, the training step and the evaluation copy; autodiff runs each
// exchange backwards as the other one; the expert gradient is not summed
// over the ranks (its shard stays home), every replicated one is; Adam
// updates the shard with its shard-sized moments.
// PIPELINE-LABEL: func.func @tiny_moe_train_step(
// PIPELINE-SAME: tensor<4x8x8xf32, #moe.shard<@ranks>> {moe.init = #moe.init<glorot_uniform>, moe.param = "moe.expert_weights"}
// PIPELINE-SAME: tensor<4x8x8xf32, #moe.shard<@ranks>> {moe.state = "moe.expert_weights.adam_m"}
// PIPELINE: %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[OFF:.*]], %[[POS:.*]], %[[TOK:.*]] = moe.fused_route
// PIPELINE-NEXT: %[[COUNTS:.*]], %[[ROFF:.*]] = moe.exchange_counts %[[OFF]] on @ranks
// PIPELINE: %[[RECV:.*]] = moe.exchange_to_experts %{{.*}}, %[[OFF]], %[[COUNTS]] on @ranks
// PIPELINE: moe.exchange_to_tokens
// PIPELINE: %[[DOUT:.*]], %{{.*}} = moe.combine_grad
// PIPELINE-NEXT: %[[DRECV:.*]] = moe.exchange_to_experts %[[DOUT]], %[[OFF]], %[[COUNTS]] on @ranks {{.*}} -> tensor<?x8xf32>
// PIPELINE-NEXT: %[[DBUF:.*]], %[[DW:.*]] = moe.grouped_matmul_grad %[[RECV]], %{{.*}}, %[[ROFF]], %[[DRECV]] {{.*}} -> (tensor<?x8xf32>, tensor<4x8x8xf32, #moe.shard<@ranks>>)
// PIPELINE-NEXT: moe.exchange_to_tokens %[[DBUF]], %[[OFF]], %[[COUNTS]] on @ranks {{.*}} -> tensor<20x8xf32>
// PIPELINE-NOT: mesh.all_reduce %[[DW]]
// PIPELINE: mesh.all_reduce %d_weights on @ranks
// PIPELINE: moe.adam_update %{{.*}}, %[[DW]], {{.*}} : (tensor<4x8x8xf32, #moe.shard<@ranks>>,
// PIPELINE-LABEL: func.func @tiny_moe_eval(
// PIPELINE: moe.exchange_counts
// PIPELINE: moe.exchange_to_experts
// PIPELINE: moe.exchange_to_tokens
