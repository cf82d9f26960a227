// The dense baseline of the demo translation model
// (examples/nmt_small_dense.mlir): nmt_small_moe.mlir with its encoder MoE
// replaced by one dense ffn 64 -> 512 ReLU -> 64 with a sigmoid output, the
// compute of the MoE's k = 4 experts of 64 -> 128 -> 64. It parses,
// verifies, prints in a form that parses again, has the parameters and
// multiply-adds its header counts, and moe-run trains it as a translation
// model (on the toy corpus of the integration tests) and translates with
// it.

// RUN: moe-opt %examples/nmt_small_dense.mlir | moe-opt | FileCheck %s
// RUN: moe-opt %examples/nmt_small_dense.mlir --mlir-print-op-generic | moe-opt | FileCheck %s
// RUN: moe-opt %examples/nmt_small_dense.mlir -o %t.mlir && moe-opt %t.mlir | diff %t.mlir -
// RUN: moe-opt --moe-model-summary -o /dev/null %examples/nmt_small_dense.mlir 2>&1 | FileCheck %s --check-prefix=SUMMARY

// CHECK-LABEL: func.func @nmt_small_dense(
// CHECK-SAME: tensor<32x32xi32> {moe.input = "source"},
// CHECK-SAME: tensor<32xi32> {moe.input = "source_lengths"},
// CHECK-SAME: tensor<32x32xi32> {moe.input = "tokens"},
// CHECK-SAME: tensor<32x32xi32> {moe.input = "targets"},
// CHECK: %[[E1:.*]] = moe.residual
// CHECK: %[[H:.*]] = moe.linear %[[E1]], %{{.*}} {act = #moe.activation<relu>} : (tensor<32x32x64xf32>, tensor<64x512xf32>) -> tensor<32x32x512xf32>
// CHECK: %[[Y:.*]] = moe.linear %[[H]], %{{.*}} {act = #moe.activation<sigmoid>} : (tensor<32x32x512xf32>, tensor<512x64xf32>) -> tensor<32x32x64xf32>
// CHECK: %[[YD:.*]] = moe.dropout %[[Y]]
// CHECK: moe.residual %[[E1]], %[[YD]]
// CHECK-NOT: moe.moe_layer
// CHECK: moe.attention {{.*}} lengths(
// CHECK: %[[CE:.*]] = moe.softmax_cross_entropy
// CHECK: return %[[CE]]

// 1,915,520 - 264,192 (the MoE layer) + 65,536 (the ffn); the per-word
// multiply-adds are nmt_small_moe's 686,080 less its gate's 2 x 64 x 16.
// SUMMARY: model @nmt_small_dense
// SUMMARY-NEXT: parameters: 1716864 (1.72M) total, 172864 (172.9K) excluding i/o layers
// SUMMARY-NEXT: multiply-adds per word (forward): 684032 (684.0K) total, 172032 (172.0K) excluding i/o layers
// SUMMARY-NOT: moe_layer

// REQUIRES: moe-run
// RUN: rm -rf %t.d && mkdir -p %t.d
// RUN: python3 %S/../Integration/Inputs/make-parallel-corpus.py %t.d/c --train 64
// RUN: cd %t.d/c && spm_train --input=train.en,train.fr --model_prefix=spm --vocab_size=48 --pad_id=0 --unk_id=1 --bos_id=2 --eos_id=3 --random_seed=1 --minloglevel=2 > /dev/null 2>&1
// RUN: %package %examples/nmt_small_dense.mlir %t.d/pkg "lr=0.005 warmup-steps=10" 2>/dev/null
// RUN: moe-run train %t.d/pkg --data %t.d/c --steps 4 --log-every 2 --checkpoint-dir %t.d/ck | FileCheck %s --check-prefix=TRAIN
// TRAIN: model: nmt_small_dense, 1716864 parameters, batch 32 pairs x 32 source / 32 target pieces
// TRAIN: step 4/4  loss
// RUN: moe-run translate %t.d/pkg --data %t.d/c --checkpoint %t.d/ck/step-00000004 --input %t.d/c/test.en --beam 4 --max-length 6 -q > %t.d/out.fr
// RUN: test $(wc -l < %t.d/out.fr) -eq 8
