// REQUIRES: moe-run
// RUN: rm -rf %t && mkdir -p %t
// RUN: %package %examples/tiny_moe.mlir %t/grad "optimizer=none" 2>/dev/null
// RUN: moe-run gradcheck %t/grad --samples 150 | FileCheck %s
// RUN: %package %examples/tiny_moe.mlir %t/adam 2>/dev/null
// RUN: not moe-run gradcheck %t/adam 2>&1 | FileCheck %s --check-prefix=ADAM

// The gradient of the whole compiled graph (embedding, two LSTMs, the fused
// noisy top-k router with its importance and load losses, dispatch, expert
// GEMMs, combine, softmax cross-entropy) against central finite differences
// of the compiled forward pass, at the same gating noise: the training
// step and the model function agree on the loss exactly, and every sampled
// parameter entry's gradient matches.
// CHECK: gradcheck: loss [[LOSS:[0-9.]+]] (train step), [[LOSS]] (model function)
// CHECK: gradcheck: 150 of 150 samples within 0.05

// ADAM: error: gradcheck needs the gradients: compile the model with --moe-train-pipeline="optimizer=none"
