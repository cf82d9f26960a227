// REQUIRES: moe-run
// RUN: rm -rf %t && mkdir -p %t
// RUN: python3 %S/Inputs/make-corpus.py %t/corpus.txt
// RUN: %package %examples/tiny_moe.mlir %t/pkg "lr=0.01 warmup-steps=10 constant-steps=100" 2>/dev/null
// RUN: moe-run train %t/pkg --data %t/corpus.txt --steps 200 --log-every 50 --metrics %t/metrics.jsonl --checkpoint-dir %t/ckpt > %t/train.out
// RUN: FileCheck %s --input-file=%t/train.out
// RUN: python3 %S/Inputs/check-metrics.py %t/metrics.jsonl --max-loss-ratio 0.6
// RUN: moe-run eval %t/pkg --data %t/corpus.txt --checkpoint %t/ckpt/step-00000200 > %t/eval.out
// RUN: FileCheck %s --check-prefix=EVAL --input-file=%t/eval.out
// RUN: python3 -c "import re,sys; t=re.search(r'test perplexity: ([0-9.]+)', open(sys.argv[1]).read()).group(1); e=re.search(r'at step 200: ([0-9.]+)', open(sys.argv[2]).read()).group(1); assert t == e, (t, e)" %t/train.out %t/eval.out
// RUN: moe-run generate %t/pkg --data %t/corpus.txt --checkpoint %t/ckpt/step-00000200 --prompt "The king" --words 12 | FileCheck %s --check-prefix=GEN
// Generation feeds the prompt and each word through decode_step, its LSTM
// states carrying the history; re-running the window per word samples the
// same words while the history fits the window of 5 (EOS, 2 prompt words,
// the first 2 sampled).
// RUN: moe-run generate %t/pkg --data %t/corpus.txt --checkpoint %t/ckpt/step-00000200 --prompt "The king" --words 2 > %t/gen-incremental.txt 2> %t/gen-incremental.err
// RUN: moe-run generate %t/pkg --data %t/corpus.txt --checkpoint %t/ckpt/step-00000200 --prompt "The king" --words 2 --decode window > %t/gen-window.txt 2> %t/gen-window.err
// RUN: diff %t/gen-incremental.txt %t/gen-window.txt
// RUN: FileCheck %s --check-prefix=GENPATH --input-file=%t/gen-incremental.err
// RUN: FileCheck %s --check-prefix=GENWINDOW --input-file=%t/gen-window.err
// GENPATH: generate: 2 words, incremental decoding
// GENWINDOW: generate: 2 words, window decoding

// The tiny LM compiles, trains for 200 steps on a synthetic corpus with the
// compiled Adam step, and its loss falls: the checks on the metrics file
// are in check-metrics.py (loss ratio, test perplexity below the unigram
// baseline, every field of every record, tokens routed to the experts).
// CHECK: data: {{.*}}corpus.txt: {{[0-9]+}} train / {{[0-9]+}} test sentences
// CHECK: model: tiny_moe, 2258 parameters, batch 2 x 5
// CHECK: unigram baseline: test perplexity [[UNIGRAM:[0-9.]+]]
// CHECK: step 50/200  loss
// CHECK: step 200/200  loss
// CHECK: checkpoint: {{.*}}ckpt/step-00000200
// CHECK: eval at step 200: test perplexity [[PPL:[0-9.]+]] over
// CHECK: test perplexity: [[PPL]] (unigram baseline: [[UNIGRAM]])

// Evaluating the saved checkpoint reproduces the final perplexity (the
// python line compares the two numbers).
// EVAL: test perplexity at step 200: {{[0-9.]+}} over {{[0-9]+}} words

// Sampling continues the prompt with words of the vocabulary.
// GEN: The king {{[a-z]+}}
