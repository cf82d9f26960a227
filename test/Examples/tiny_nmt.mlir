// The smallest translation model (examples/tiny_nmt.mlir), used by the
// gradient check of padded encoder-decoder batches: source lengths mask the
// attention and keep the encoder's MoE layer from routing padding. It
// parses, verifies, and prints in a form that parses again, both custom and
// generic, to the same text.

// RUN: moe-opt %examples/tiny_nmt.mlir | moe-opt | FileCheck %s
// RUN: moe-opt %examples/tiny_nmt.mlir --mlir-print-op-generic | moe-opt | FileCheck %s
// RUN: moe-opt %examples/tiny_nmt.mlir -o %t.mlir && moe-opt %t.mlir | diff %t.mlir -
// RUN: moe-opt --moe-model-summary %examples/tiny_nmt.mlir -o /dev/null 2>&1 | FileCheck %s --check-prefix=SUMMARY

// CHECK-LABEL: func.func @tiny_nmt(
// CHECK-SAME: %[[SRC:[^:]+]]: tensor<3x6xi32> {moe.input = "source"},
// CHECK-SAME: %[[LEN:[^:]+]]: tensor<3xi32> {moe.input = "source_lengths"},
// CHECK-SAME: %[[TOKENS:[^:]+]]: tensor<3x5xi32> {moe.input = "tokens"},
// CHECK-SAME: %[[TARGETS:[^:]+]]: tensor<3x5xi32> {moe.input = "targets"},
// CHECK: %[[E0:.*]] = moe.embedding %{{.*}}[%[[SRC]]] : (tensor<40x8xf32>, tensor<3x6xi32>) -> tensor<3x6x8xf32>
// CHECK: %[[H1:.*]] = moe.lstm %[[E0]]
// CHECK: %[[E1:.*]] = moe.residual %[[E0]], %[[H1]] : tensor<3x6x8xf32>
// CHECK: %[[M:.*]], %[[AUX:.*]] = moe.moe_layer %[[E1]] gate(%{{.*}}, noise %{{.*}}) lengths(%[[LEN]]) experts(%{{[^,]*}}, %{{[^)]*}})
// CHECK-SAME: gating = #moe.gating<noisy_top_k>, k = 2 : i64
// CHECK-SAME: output_act = #moe.activation<sigmoid>
// CHECK: %[[ENC:.*]] = moe.residual %[[E1]], %[[M]] : tensor<3x6x8xf32>
// CHECK: %[[D0:.*]] = moe.embedding %{{.*}}[%[[TOKENS]]] : (tensor<30x8xf32>, tensor<3x5xi32>) -> tensor<3x5x8xf32>
// CHECK: %[[K1:.*]] = moe.lstm %[[D0]]
// CHECK: %[[D1:.*]] = moe.residual %[[D0]], %[[K1]] : tensor<3x5x8xf32>
// CHECK: %[[CTX:.*]] = moe.attention %[[ENC]], %[[D1]] weights(%{{.*}}, %{{.*}}, %{{.*}}) lengths(%[[LEN]])
// CHECK: %[[D2:.*]] = moe.residual %[[D1]], %[[CTX]] : tensor<3x5x8xf32>
// CHECK: %[[CE:.*]] = moe.softmax_cross_entropy %[[D2]], %[[TARGETS]]
// CHECK: %[[LOSS:.*]] = moe.total_loss %[[CE]], %[[AUX]] : tensor<f32>
// CHECK: return %[[LOSS]] : tensor<f32>

// SUMMARY: parameters: 2630 (2.6K) total, 1800 (1.8K) excluding i/o layers
// SUMMARY: moe_layer: 4 experts (ffn 8->8 relu->8), k = 2, noisy_top_k gating; 576 parameters
