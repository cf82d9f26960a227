// REQUIRES: moe-run
// RUN: rm -rf %t && mkdir -p %t
// RUN: %package %S/Inputs/tiny_hmoe.mlir %t/grad "optimizer=none" 2>/dev/null
// RUN: moe-run gradcheck %t/grad --samples 100 | FileCheck %s
// RUN: python3 %S/Inputs/make-corpus.py %t/corpus.txt
// RUN: %package %S/Inputs/tiny_hmoe.mlir %t/pkg "lr=0.01 warmup-steps=10 constant-steps=100" 2>/dev/null
// RUN: moe-run train %t/pkg --data %t/corpus.txt --steps 200 --log-every 50 --metrics %t/metrics.jsonl > %t/train.out
// RUN: FileCheck %s --check-prefix=TRAIN --input-file=%t/train.out
// RUN: python3 %S/Inputs/check-metrics.py %t/metrics.jsonl --max-loss-ratio 0.8
// RUN: %package %S/Inputs/tiny_hmoe.mlir %t/small "threshold-capacity=0.3" 2>/dev/null
// RUN: not moe-run train %t/small --data %t/corpus.txt --steps 1 2>&1 | FileCheck %s --check-prefix=OVERFLOW

// A hierarchical MoE with batchwise masks at both levels (paper 3.3 with
// Appendix A per level; Inputs/tiny_hmoe.mlir): the compiled gradients of
// the whole graph (both masks, the grouped Eq. 8, the CSR composition of
// the two levels) agree with finite differences of the compiled forward
// pass, and the model trains; the evaluation at the end routes with the
// learned thresholds of both levels (Eq. 7) and beats the unigram baseline
// (check-metrics.py).
// CHECK: gradcheck: loss [[LOSS:[0-9.]+]] (train step), [[LOSS]] (model function)
// CHECK: gradcheck: {{9[5-9]|100}} of 100 samples within 0.05

// TRAIN: model: tiny_hmoe, 2540 parameters, batch 4 x 5
// TRAIN: step 200/200  loss
// TRAIN: eval at step 200: test perplexity {{[0-9.]+}} over

// The evaluation copy's threshold masks have a compiled capacity
// (threshold-capacity times what the batchwise masks keep in training);
// thresholds that have not learned yet let every token reach both groups,
// which overflows 0.3 * 20 = 6 primary slots: an error that says what to
// change, not a silent overflow.
// OVERFLOW: moe-run: error: thresholdMaskForward: 40 assignments pass the thresholds but the compiled capacity is 6 (recompile with a larger --moe-inference-pipeline="threshold-capacity=..." or --moe-train-pipeline="threshold-capacity=...")
