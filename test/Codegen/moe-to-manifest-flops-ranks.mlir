// RUN: moe-opt --moe-train-pipeline %S/../Integration/Inputs/tiny_topk.mlir 2>/dev/null | moe-translate --moe-to-manifest | FileCheck %s
// RUN: moe-opt --moe-train-pipeline="expert-parallel=true" %S/../Integration/Inputs/tiny_topk.mlir 2>/dev/null | moe-translate --moe-to-manifest | FileCheck %s

// A package's FLOPs are one rank's share of a step's work. Under expert
// parallelism the experts' dispatch buffer holds the rows the other ranks
// sent (a dynamic size); the rows this rank sends stand for them, so the
// tiny LM counts the same work on one rank either way: its two LSTMs,
// output layer, router and, per step, 10 tokens x 2 experts of 8 x 8
// multiply-adds (the expert work is not dropped as unknown).
// CHECK: "eval": {
// CHECK: "flops": 31680,
// CHECK: "model": {
// CHECK: "flops": 31680,
// CHECK: "train_step": {
// CHECK: "flops": 95040,
