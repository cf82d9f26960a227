// REQUIRES: moe-run
// RUN: rm -rf %t && mkdir -p %t
// RUN: python3 %S/Inputs/make-corpus.py %t/corpus.txt --lines 500
// RUN: %package %S/Inputs/tiny_sampled.mlir %t/sparse "lr=0.01 warmup-steps=10 sparse-gradients=on" 2>/dev/null
// RUN: %package %S/Inputs/tiny_sampled.mlir %t/dense "lr=0.01 warmup-steps=10 sparse-gradients=off" 2>/dev/null
// RUN: FileCheck %s --check-prefix=SPARSE --input-file=%t/sparse/step.cpp
// RUN: FileCheck %s --check-prefix=DENSE --input-file=%t/dense/step.cpp
// One step each, from the same initial parameters and batch ...
// RUN: moe-run train %t/sparse --data %t/corpus.txt --steps 1 --checkpoint-dir %t/sparse1 -q
// RUN: moe-run train %t/dense --data %t/corpus.txt --steps 1 --checkpoint-dir %t/dense1 -q
// RUN: python3 %S/Inputs/compare-checkpoints.py %t/sparse1/step-00000001 %t/dense1/step-00000001 --rtol 1e-6
// ... then both learn over 150 steps.
// RUN: moe-run train %t/sparse --data %t/corpus.txt --steps 150 --log-every 50 --metrics %t/sparse.jsonl --checkpoint-dir %t/sparse150 -q
// RUN: moe-run train %t/dense --data %t/corpus.txt --steps 150 --log-every 50 --metrics %t/dense.jsonl --checkpoint-dir %t/dense150 -q
// RUN: python3 %S/Inputs/check-metrics.py %t/sparse.jsonl --max-loss-ratio 0.8
// RUN: python3 %S/Inputs/check-metrics.py %t/dense.jsonl --max-loss-ratio 0.8
// RUN: not python3 %S/Inputs/compare-checkpoints.py %t/sparse150/step-00000150 %t/dense150/step-00000150 --rtol 1e-6 > %t/differ.out
// RUN: FileCheck %s --check-prefix=DIFFER --input-file=%t/differ.out

// sparse-gradients=on: the embedding's ids and the sampled softmax's
// classes (8 samples + 10 targets) give row gradients and lazy Adam;
// =off keeps the dense [50, 8] gradients and Adam.
// SPARSE: moe::rt::step::softmaxCrossEntropyRowGrad({{.*}}, 10, 8, 50, 8, {{[0-9]+}});
// SPARSE: moe::rt::step::rowGradient({{v[0-9]+}}, 10, 8, 50,
// SPARSE-COUNT-3: moe::rt::step::adamUpdateRows(
// DENSE-NOT: Rows
// DENSE: moe::rt::step::softmaxCrossEntropyGrad(
// DENSE-NOT: Rows
// DENSE: moe::rt::step::embeddingGrad(
// DENSE-NOT: Rows

// Lazy Adam equals Adam on the first step (zero moments: rows the batch
// did not touch get no update either way; no weight decay): the step-1
// checkpoints agree. Later, dense Adam keeps moving rows by their decaying
// moments and lazy Adam does not, so the parameters part while both
// losses fall and both beat the unigram baseline (check-metrics.py).
// DIFFER: FAIL: beyond rtol
