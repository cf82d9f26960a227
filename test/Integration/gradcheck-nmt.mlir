// REQUIRES: moe-run
// RUN: rm -rf %t && mkdir -p %t
// RUN: %package %examples/tiny_nmt.mlir %t/grad "optimizer=none" 2>/dev/null
// RUN: moe-run gradcheck %t/grad --samples 200 --epsilon 3e-3 | FileCheck %s

// The whole compiled translation graph (source and target embeddings, the
// encoder and decoder LSTMs, the encoder's noisy top-2 MoE with padded
// positions dropped from routing and from the importance and load, the
// Appendix B attention with padded source positions masked, residuals and
// the cross-entropy over -1-padded targets) against central finite
// differences. gradcheck draws the source lengths in [1, S] and a tail of
// -1 targets in each row. The step is 3e-3, not the default 1e-2: a step
// that large moves the encoder enough to flip a token's top-2 choice, a
// jump no gradient describes.
// CHECK: gradcheck: loss [[LOSS:[0-9.]+]] (train step), [[LOSS]] (model function)

// Masking, end to end: other ids at the padded source positions leave the
// loss exactly as it was; with every position valid it changes (gradcheck
// fails otherwise).
// CHECK-NEXT: gradcheck: padding: loss [[LOSS]] with other ids at the padded positions, {{[0-9.]+}} with every position valid
// CHECK: gradcheck: 200 of 200 samples within 0.05

// The check fails where either op lets padding through: the attention
// without its lengths, or the MoE layer without its lengths (the padded
// tokens then count in the importance and load losses).
// RUN: sed -e '/^      lengths(%%source_lengths)$/d' -e 's/tensor<8xf32>, tensor<3xi32>) -> tensor<3x5x8xf32>/tensor<8xf32>) -> tensor<3x5x8xf32>/' %examples/tiny_nmt.mlir > %t/attention.mlir
// RUN: %package %t/attention.mlir %t/attention "optimizer=none" 2>/dev/null
// RUN: not moe-run gradcheck %t/attention --samples 1 2>&1 | FileCheck %s --check-prefix=LEAK
// RUN: sed -e 's/      lengths(%%source_lengths) experts(/      experts(/' -e 's/tensor<8x4xf32>, tensor<3xi32>,$/tensor<8x4xf32>,/' %examples/tiny_nmt.mlir > %t/moe.mlir
// RUN: %package %t/moe.mlir %t/moe "optimizer=none" 2>/dev/null
// RUN: not moe-run gradcheck %t/moe --samples 1 2>&1 | FileCheck %s --check-prefix=LEAK
// LEAK: moe-run: error: the ids at padded positions change the loss (padding is not masked)

// moe-run train gives a model with source ids the translation data, which
// reads a corpus folder (scripts/nmt-corpus.py), not a text file.
// RUN: %package %examples/tiny_nmt.mlir %t/adam 2>/dev/null
// RUN: not moe-run train %t/adam --data %t/missing.txt --steps 1 2>&1 | FileCheck %s --check-prefix=TRAIN
// TRAIN: moe-run: error: data: {{.*}}missing.txt is not a folder: a translation model reads a corpus folder
