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
// RUN: sed 's/4x5x/2x10x/g' %S/Inputs/tiny_hmoe.mlir > %t/narrow.mlir
// RUN: %package %t/narrow.mlir %t/narrow "lr=0.01 threshold-capacity=100" 2>/dev/null
// RUN: python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print(sorted(m['functions'])); print(m['no_decode_step'])" %t/narrow/manifest.json | FileCheck %s --check-prefix=NODECODE
// RUN: moe-run train %t/narrow --data %t/corpus.txt --steps 1 --checkpoint-dir %t/narrow-ck -q
// RUN: not moe-run generate %t/narrow --data %t/corpus.txt --checkpoint %t/narrow-ck/step-00000001 --prompt "The king" --words 1 --decode incremental 2>&1 | FileCheck %s --check-prefix=INCREMENTAL

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
// The same model on 2 sentences of 10 words: one position holds 2 tokens,
// too few for whole rows per expert, so the pipeline leaves it without a
// decode step, and the manifest and moe-run say why.
// NODECODE: ['eval', 'model', 'train_step']
// NODECODE-NEXT: 'moe.hierarchical_moe_layer' op batchwise gating gives each group k_primary * tokens / groups = 1 rows, and k_secondary * rows / experts per group = 2 * 1 / 4 rows per expert must be a whole number
// INCREMENTAL: moe-run: error: --decode incremental: package {{.*}}narrow has no decode_step function (moe-add-decode-step could not derive one: 'moe.hierarchical_moe_layer' op batchwise gating gives each group
// OVERFLOW: moe-run: error: thresholdMaskForward: 40 assignments pass the thresholds but the compiled capacity is 6 (recompile with a larger --moe-inference-pipeline="threshold-capacity=..." or --moe-train-pipeline="threshold-capacity=...")
