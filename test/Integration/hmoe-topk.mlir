// REQUIRES: moe-run
// RUN: rm -rf %t && mkdir -p %t
// RUN: %package %S/Inputs/tiny_hmoe_topk.mlir %t/grad "optimizer=none" 2>/dev/null
// RUN: moe-run gradcheck %t/grad --samples 100 | FileCheck %s
// RUN: python3 %S/Inputs/make-corpus.py %t/corpus.txt
// RUN: %package %S/Inputs/tiny_hmoe_topk.mlir %t/pkg "lr=0.01 warmup-steps=10 constant-steps=100" 2>/dev/null
// RUN: moe-run train %t/pkg --data %t/corpus.txt --steps 200 --log-every 50 --metrics %t/metrics.jsonl > %t/train.out
// RUN: FileCheck %s --check-prefix=TRAIN --input-file=%t/train.out
// RUN: python3 %S/Inputs/check-metrics.py %t/metrics.jsonl --max-loss-ratio 0.8

// A hierarchical MoE with noisy top-k gating at both levels (paper 3.3;
// Inputs/tiny_hmoe_topk.mlir): the compiled gradients of the whole graph
// (both noisy top-k levels, the composed routes, the per-group load
// estimate with 2 groups of 4 experts and the hierarchical load Load_H)
// agree with finite differences of the compiled forward pass at the same
// gating noise, and the model trains and beats the unigram baseline.
// CHECK: gradcheck: loss [[LOSS:[0-9.]+]] (train step), [[LOSS]] (model function)
// CHECK: gradcheck: {{9[5-9]|100}} of 100 samples within 0.05

// TRAIN: model: tiny_hmoe_topk, 2610 parameters, batch 4 x 5
// TRAIN: step 200/200  loss
// TRAIN: eval at step 200: test perplexity {{[0-9.]+}} over
