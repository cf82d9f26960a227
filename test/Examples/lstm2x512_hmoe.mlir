// The paper 5.1.1 hierarchical-MoE language models
// (examples/lstm2x512_hmoe512.mlir, lstm2x512_hmoe4096.mlir,
// lstm2x512_hmoe32768.mlir) parse, verify, and print in a form that parses
// again, both custom and generic, to the same text. All three have 32 groups,
// k_primary = 2 and k_secondary = 4 with batchwise masks and thresholds at
// both levels; H512, H4096 and H32768 lines check the experts per group in
// the secondary gate and threshold shapes, the stacked experts and
// num_experts.

// RUN: moe-opt %examples/lstm2x512_hmoe512.mlir | moe-opt | FileCheck %s --check-prefixes=CHECK,H512
// RUN: moe-opt %examples/lstm2x512_hmoe512.mlir --mlir-print-op-generic | moe-opt | FileCheck %s --check-prefixes=CHECK,H512
// RUN: moe-opt %examples/lstm2x512_hmoe512.mlir -o %t.512.mlir && moe-opt %t.512.mlir | diff %t.512.mlir -

// RUN: moe-opt %examples/lstm2x512_hmoe4096.mlir | moe-opt | FileCheck %s --check-prefixes=CHECK,H4096
// RUN: moe-opt %examples/lstm2x512_hmoe4096.mlir --mlir-print-op-generic | moe-opt | FileCheck %s --check-prefixes=CHECK,H4096
// RUN: moe-opt %examples/lstm2x512_hmoe4096.mlir -o %t.4096.mlir && moe-opt %t.4096.mlir | diff %t.4096.mlir -

// RUN: moe-opt %examples/lstm2x512_hmoe32768.mlir | moe-opt | FileCheck %s --check-prefixes=CHECK,H32768
// RUN: moe-opt %examples/lstm2x512_hmoe32768.mlir --mlir-print-op-generic | moe-opt | FileCheck %s --check-prefixes=CHECK,H32768
// RUN: moe-opt %examples/lstm2x512_hmoe32768.mlir -o %t.32768.mlir && moe-opt %t.32768.mlir | diff %t.32768.mlir -

// Across ranks (paper section 4): each model compiles through the
// training pipeline data-parallel and expert-parallel, with both levels'
// batchwise masks over the combined batch of all ranks (the secondary in
// the segments of the primary plan), the grouped Eq. 8 summed over the
// ranks and, expert-parallel, the experts sharded and their rows
// exchanged. Compiling only: time and memory do not grow with the experts.
// RUN: moe-opt %examples/lstm2x512_hmoe512.mlir --moe-train-pipeline="data-parallel=true" 2>/dev/null | FileCheck %s --check-prefix=RANKS
// RUN: moe-opt %examples/lstm2x512_hmoe4096.mlir --moe-train-pipeline="data-parallel=true" 2>/dev/null | FileCheck %s --check-prefix=RANKS
// RUN: moe-opt %examples/lstm2x512_hmoe32768.mlir --moe-train-pipeline="data-parallel=true" 2>/dev/null | FileCheck %s --check-prefix=RANKS
// RUN: moe-opt %examples/lstm2x512_hmoe512.mlir --moe-train-pipeline="expert-parallel=true" 2>/dev/null | FileCheck %s --check-prefixes=RANKS,SHARDED
// RUN: moe-opt %examples/lstm2x512_hmoe4096.mlir --moe-train-pipeline="expert-parallel=true" 2>/dev/null | FileCheck %s --check-prefixes=RANKS,SHARDED
// RUN: moe-opt %examples/lstm2x512_hmoe32768.mlir --moe-train-pipeline="expert-parallel=true" 2>/dev/null | FileCheck %s --check-prefixes=RANKS,SHARDED
// RANKS: mesh.mesh @ranks(shape = ?)
// SHARDED: #moe.shard<@ranks>> {moe.init = #moe.init<glorot_uniform>, moe.param = "moe.expert_weights"}
// RANKS: moe.batchwise_mask %{{.*}} {combined_batch, m = 512 : i64
// RANKS: %[[OFF:.*]], %{{.*}}, %{{.*}} = moe.dispatch_plan
// RANKS: %[[SM:.*]], %{{.*}}, %{{.*}}, %{{.*}} = moe.grouped_batchwise_mask %{{.*}} offsets %[[OFF]] {combined_batch, groups = 32 : i64
// RANKS: %[[L8:.*]] = moe.grouped_batchwise_threshold_loss %{{.*}}, %[[SM]], %{{.*}} offsets %[[OFF]]
// RANKS: mesh.all_reduce %[[L8]] on @ranks
// SHARDED: moe.exchange_to_experts
// SHARDED: moe.exchange_to_tokens
// RANKS-LABEL: _train_step(

// H512-LABEL: func.func @lstm2x512_hmoe512(
// H4096-LABEL: func.func @lstm2x512_hmoe4096(
// H32768-LABEL: func.func @lstm2x512_hmoe32768(
// CHECK-SAME: %[[TOKENS:[^:]+]]: tensor<256x32xi32> {moe.input = "tokens"},
// CHECK-SAME: %[[TARGETS:[^:]+]]: tensor<256x32xi32> {moe.input = "targets"},
// CHECK-SAME: %[[EMB:[^:]+]]: tensor<793471x512xf32> {moe.init = #moe.init<uniform, scale = 5.000000e-02>, moe.param = "embedding"},
// CHECK-SAME: %[[L1X:[^:]+]]: tensor<512x2048xf32> {moe.init = #moe.init<uniform, scale = 5.000000e-02>, moe.param = "lstm1.input_weights"},
// CHECK-SAME: %[[L1H:[^:]+]]: tensor<512x2048xf32> {moe.init = #moe.init<uniform, scale = 5.000000e-02>, moe.param = "lstm1.recurrent_weights"},
// CHECK-SAME: %[[L1B:[^:]+]]: tensor<2048xf32> {moe.init = #moe.init<zeros>, moe.param = "lstm1.bias"},
// CHECK-SAME: %[[PGATE:[^:]+]]: tensor<512x32xf32> {moe.init = #moe.init<zeros>, moe.param = "moe.primary_gate_weights"},
// CHECK-SAME: %[[PTHR:[^:]+]]: tensor<32xf32> {moe.init = #moe.init<constant, scale = 3.125000e-02>, moe.param = "moe.primary_thresholds"},
// H512-SAME: %[[SGATE:[^:]+]]: tensor<32x512x16xf32> {moe.init = #moe.init<zeros>, moe.param = "moe.secondary_gate_weights"},
// H512-SAME: %[[STHR:[^:]+]]: tensor<32x16xf32> {moe.init = #moe.init<constant, scale = 6.250000e-02>, moe.param = "moe.secondary_thresholds"},
// H512-SAME: %[[EXPERTS:[^:]+]]: tensor<512x512x512xf32> {moe.init = #moe.init<glorot_uniform>, moe.param = "moe.expert_weights"},
// H4096-SAME: %[[SGATE:[^:]+]]: tensor<32x512x128xf32> {moe.init = #moe.init<zeros>, moe.param = "moe.secondary_gate_weights"},
// H4096-SAME: %[[STHR:[^:]+]]: tensor<32x128xf32> {moe.init = #moe.init<constant, scale = 7.812500e-03>, moe.param = "moe.secondary_thresholds"},
// H4096-SAME: %[[EXPERTS:[^:]+]]: tensor<4096x512x512xf32> {moe.init = #moe.init<glorot_uniform>, moe.param = "moe.expert_weights"},
// H32768-SAME: %[[SGATE:[^:]+]]: tensor<32x512x1024xf32> {moe.init = #moe.init<zeros>, moe.param = "moe.secondary_gate_weights"},
// H32768-SAME: %[[STHR:[^:]+]]: tensor<32x1024xf32> {moe.init = #moe.init<constant, scale = 9.765625E-4>, moe.param = "moe.secondary_thresholds"},
// H32768-SAME: %[[EXPERTS:[^:]+]]: tensor<32768x512x512xf32> {moe.init = #moe.init<glorot_uniform>, moe.param = "moe.expert_weights"},
// CHECK-SAME: %[[L2X:[^:]+]]: tensor<512x2048xf32> {moe.init = #moe.init<uniform, scale = 5.000000e-02>, moe.param = "lstm2.input_weights"},
// CHECK-SAME: %[[L2H:[^:]+]]: tensor<512x2048xf32> {moe.init = #moe.init<uniform, scale = 5.000000e-02>, moe.param = "lstm2.recurrent_weights"},
// CHECK-SAME: %[[L2B:[^:]+]]: tensor<2048xf32> {moe.init = #moe.init<zeros>, moe.param = "lstm2.bias"},
// CHECK-SAME: %[[SW:[^:]+]]: tensor<793471x512xf32> {moe.init = #moe.init<uniform, scale = 5.000000e-02>, moe.param = "softmax.weights"},
// CHECK-SAME: %[[SB:[^:]+]]: tensor<793471xf32> {moe.init = #moe.init<zeros>, moe.param = "softmax.bias"})
// CHECK-SAME: -> tensor<f32>
// CHECK-NEXT: %[[E:.*]] = moe.embedding %[[EMB]][%[[TOKENS]]] : (tensor<793471x512xf32>, tensor<256x32xi32>) -> tensor<256x32x512xf32>
// CHECK-NEXT: %[[X0:.*]] = moe.dropout %[[E]] {rate = 2.000000e-01 : f32} : tensor<256x32x512xf32>
// CHECK-NEXT: %[[H1:.*]] = moe.lstm %[[X0]] weights(%[[L1X]], %[[L1H]], %[[L1B]]) : (tensor<256x32x512xf32>, tensor<512x2048xf32>, tensor<512x2048xf32>, tensor<2048xf32>) -> tensor<256x32x512xf32>
// CHECK-NEXT: %[[H1D:.*]] = moe.dropout %[[H1]] {rate = 2.000000e-01 : f32}
// CHECK-NEXT: %[[X1:.*]] = moe.residual %[[X0]], %[[H1D]] : tensor<256x32x512xf32>
// CHECK-NEXT: %[[M:.*]], %[[AUX:.*]] = moe.hierarchical_moe_layer %[[X1]] primary(%[[PGATE]], thresholds %[[PTHR]]) secondary(%[[SGATE]], thresholds %[[STHR]]) experts(%[[EXPERTS]])
// CHECK-SAME: {expert = #moe.expert<linear>, gating = #moe.gating<batchwise>, groups = 32 : i64, k_primary = 2 : i64, k_secondary = 4 : i64,
// CHECK-SAME: losses = #moe.losses<importance = 1.000000e-01, batchwise_threshold = 1.000000e-02>,
// H512-SAME: num_experts = 512 : i64}
// H4096-SAME: num_experts = 4096 : i64}
// H32768-SAME: num_experts = 32768 : i64}
// CHECK-SAME: -> (tensor<256x32x512xf32>, tensor<f32>)
// CHECK-NEXT: %[[MD:.*]] = moe.dropout %[[M]] {rate = 2.000000e-01 : f32}
// CHECK-NEXT: %[[X2:.*]] = moe.residual %[[X1]], %[[MD]]
// CHECK-NEXT: %[[H2:.*]] = moe.lstm %[[X2]] weights(%[[L2X]], %[[L2H]], %[[L2B]])
// CHECK-NEXT: %[[H2D:.*]] = moe.dropout %[[H2]] {rate = 2.000000e-01 : f32}
// CHECK-NEXT: %[[X3:.*]] = moe.residual %[[X2]], %[[H2D]]
// CHECK-NEXT: %[[CE:.*]] = moe.softmax_cross_entropy %[[X3]], %[[TARGETS]] weights(%[[SW]], %[[SB]]) {num_samples = 8192 : i64} : (tensor<256x32x512xf32>, tensor<256x32xi32>, tensor<793471x512xf32>, tensor<793471xf32>) -> tensor<f32>
// CHECK-NEXT: %[[LOSS:.*]] = moe.total_loss %[[CE]], %[[AUX]] : tensor<f32>
// CHECK-NEXT: return %[[LOSS]] : tensor<f32>
