// REQUIRES: moe-run, gnuplot
// RUN: rm -rf %t && mkdir -p %t
// RUN: python3 %S/Inputs/make-corpus.py %t/corpus.txt --lines 400 --documents 10
// RUN: python3 %moe_src_root/scripts/lm-sweep.py --mini --corpus %t/corpus.txt --test-fraction 0.2 --work %t/sweep > %t/out
// RUN: FileCheck %s --input-file=%t/sweep/results.md
// RUN: FileCheck %s --check-prefix=LOG --input-file=%t/sweep/moe16_bw.log
// RUN: python3 %S/Inputs/check-sweep.py %t/sweep

// The miniature of scripts/lm-sweep.py (two tiny models, 100 steps on a
// synthetic corpus of 10 documents): the sweep generates, compiles, trains
// and evaluates both on held-out documents, and writes the table, the JSON
// results and the plot. check-sweep.py checks that both perplexities are
// finite and below the unigram baseline's and that the plot is a PNG.

// CHECK: Sweep: d = 16, vocabulary 64, batch 4 x 8, 100 steps, {{.*}}test split: documents; unigram perplexity [[UNIGRAM:[0-9.]+]])
// CHECK: | model | experts | k | test ppl | train ppl |
// CHECK: | 3 x LSTM (baseline) | - | - | {{[0-9]+\.[0-9]+}} | {{[0-9]+\.[0-9]}} | {{[0-9.]+K}} ({{[0-9.]+K}}) | {{[0-9.]+K}} ({{[0-9.]+K}}) | - | - |
// The batchwise mask gives every expert exactly its capacity in training;
// at test the learned thresholds pick a number of experts per word.
// CHECK: | MoE-16, batchwise | 16 | 8 | {{[0-9]+\.[0-9]+}} | {{[0-9]+\.[0-9]}} | {{[0-9.]+K}} ({{[0-9.]+K}}) | {{[0-9.]+K}} ({{[0-9.]+K}}) | 1.00/1.00; {{[0-9]+\.[0-9]+}}/{{[0-9]+\.[0-9]+}} | {{[0-9]+\.[0-9]+}} |

// The test split is whole documents: 2 of the 10 at --test-fraction 0.2.
// LOG: moe-run train
// LOG-SAME: --test-split documents
// LOG: data: 2 of 10 documents held out for test
// LOG: trained 100 steps
