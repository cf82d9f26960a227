// The demo-size translation model (examples/nmt_small_moe.mlir): an LSTM-64
// encoder with an MoE of 16 ffn experts (64 -> 128 ReLU -> 64, noisy top-4,
// sigmoid output), a 2-layer LSTM-64 decoder with Appendix B attention,
// dropout 0.1 and residual connections, a full softmax over 8000 shared
// wordpieces. It parses, verifies, prints in a form that parses again, has
// the parameters its header counts, and moe-run trains it as a translation
// model (on the toy corpus of the integration tests) and translates with
// it.

// RUN: moe-opt %examples/nmt_small_moe.mlir | moe-opt | FileCheck %s
// RUN: moe-opt %examples/nmt_small_moe.mlir --mlir-print-op-generic | moe-opt | FileCheck %s
// RUN: moe-opt %examples/nmt_small_moe.mlir -o %t.mlir && moe-opt %t.mlir | diff %t.mlir -
// RUN: moe-opt --moe-model-summary -o /dev/null %examples/nmt_small_moe.mlir 2>&1 | FileCheck %s --check-prefix=SUMMARY

// CHECK-LABEL: func.func @nmt_small_moe(
// CHECK-SAME: tensor<32x32xi32> {moe.input = "source"},
// CHECK-SAME: tensor<32xi32> {moe.input = "source_lengths"},
// CHECK-SAME: tensor<32x32xi32> {moe.input = "tokens"},
// CHECK-SAME: tensor<32x32xi32> {moe.input = "targets"},
// CHECK: %[[ENC:.*]] = moe.residual
// CHECK: moe.moe_layer {{.*}} lengths({{.*}} {expert = #moe.expert<ffn, hidden = 128>, gating = #moe.gating<noisy_top_k>, k = 4 : i64, losses = #moe.losses<importance = 1.000000e-01, load = 1.000000e-01>, num_experts = 16 : i64, output_act = #moe.activation<sigmoid>}
// CHECK: moe.attention {{.*}} lengths(
// CHECK: moe.softmax_cross_entropy
// CHECK: moe.total_loss
// SUMMARY: parameters: 1915520 (1.92M) total

// REQUIRES: moe-run
// RUN: rm -rf %t.d && mkdir -p %t.d
// RUN: python3 %S/../Integration/Inputs/make-parallel-corpus.py %t.d/c --train 64
// RUN: cd %t.d/c && spm_train --input=train.en,train.fr --model_prefix=spm --vocab_size=48 --pad_id=0 --unk_id=1 --bos_id=2 --eos_id=3 --random_seed=1 --minloglevel=2 > /dev/null 2>&1
// RUN: %package %examples/nmt_small_moe.mlir %t.d/pkg "lr=0.005 warmup-steps=10" 2>/dev/null
// RUN: moe-run train %t.d/pkg --data %t.d/c --steps 4 --log-every 2 --checkpoint-dir %t.d/ck | FileCheck %s --check-prefix=TRAIN
// TRAIN: model: nmt_small_moe, 1915520 parameters, batch 32 pairs x 32 source / 32 target pieces
// TRAIN: step 4/4  loss
// RUN: moe-run translate %t.d/pkg --data %t.d/c --checkpoint %t.d/ck/step-00000004 --input %t.d/c/test.en --beam 4 --max-length 6 -q > %t.d/out.fr
// RUN: test $(wc -l < %t.d/out.fr) -eq 8
