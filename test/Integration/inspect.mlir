// REQUIRES: moe-run
// RUN: rm -rf %t && mkdir -p %t
// RUN: python3 %S/Inputs/make-corpus.py %t/corpus.txt
// RUN: %package %examples/tiny_moe.mlir %t/pkg "lr=0.01 warmup-steps=10" 2>/dev/null
// RUN: moe-run train %t/pkg --data %t/corpus.txt --steps 40 --checkpoint-dir %t/ckpt -q
// RUN: moe-run inspect %t/pkg --data %t/corpus.txt --checkpoint %t/ckpt/step-00000040 --batches 8 --contexts 3 --window 2 -q > %t/flat.out
// RUN: FileCheck %s --check-prefix=FLAT --input-file=%t/flat.out
// RUN: python3 %S/Inputs/check-inspect.py %t/flat.out --experts 4 --complete --contexts 3 --window 2 --words 80
// RUN: moe-run inspect %t/pkg --data %t/corpus.txt --checkpoint %t/ckpt/step-00000040 --experts 3,0 --contexts 2 -q | FileCheck %s --check-prefix=CHOSEN
// RUN: %package %S/Inputs/tiny_hmoe_topk.mlir %t/hpkg "lr=0.01 warmup-steps=10" 2>/dev/null
// RUN: moe-run train %t/hpkg --data %t/corpus.txt --steps 40 --checkpoint-dir %t/hckpt -q
// RUN: moe-run inspect %t/hpkg --data %t/corpus.txt --checkpoint %t/hckpt/step-00000040 --top-experts 2 --contexts 4 -q > %t/hier.out
// RUN: FileCheck %s --check-prefix=HIER --input-file=%t/hier.out
// RUN: python3 %S/Inputs/check-inspect.py %t/hier.out --experts 2 --groups 2 --contexts 4 --window 4
// RUN: moe-run inspect %t/hpkg --data %t/corpus.txt --checkpoint %t/hckpt/step-00000040 --groups --experts 1 -q | FileCheck %s --check-prefix=GROUPS

// Bad requests are one-line errors, before the data is routed.
// RUN: not moe-run inspect %t/pkg --data %t/corpus.txt --checkpoint %t/ckpt/step-00000040 --experts 1,4 -q 2>&1 | FileCheck %s --check-prefix=RANGE
// RUN: not moe-run inspect %t/pkg --data %t/corpus.txt --checkpoint %t/ckpt/step-00000040 --experts 1,x -q 2>&1 | FileCheck %s --check-prefix=BADID
// RUN: not moe-run inspect %t/pkg --data %t/corpus.txt --checkpoint %t/ckpt/step-00000040 --groups -q 2>&1 | FileCheck %s --check-prefix=FLATGROUPS
// RUN: not moe-run inspect %t/pkg --data %t/corpus.txt --checkpoint %t/ckpt/step-00000040 --layer 1 -q 2>&1 | FileCheck %s --check-prefix=LAYER
// RUN: not moe-run inspect %t/hpkg --data %t/corpus.txt --checkpoint %t/hckpt/step-00000040 --groups --experts 2 -q 2>&1 | FileCheck %s --check-prefix=GROUPRANGE
// RUN: not moe-run inspect %t/pkg --data %t/corpus.txt --checkpoint %t/hckpt/step-00000040 -q 2>&1 | FileCheck %s --check-prefix=MISMATCH
// RUN: %package %S/Inputs/tiny_dense.mlir %t/dense 2>/dev/null
// RUN: not moe-run inspect %t/dense --data %t/corpus.txt --checkpoint %t/ckpt/step-00000040 -q 2>&1 | FileCheck %s --check-prefix=NOMOE

// The tiny LM's 4 experts, most used first (check-inspect.py checks the
// shares, the order by use and by gate, the context lengths and that the
// gates of each expert's contexts are real gate values).
// FLAT: layer 0 of 1: 4 experts; 80 words of the test split (8 batches), checkpoint step 40
// FLAT-NEXT: top 3 contexts by gate value (the routed word last, after up to 2 words of its row)
// FLAT-EMPTY:
// FLAT-NEXT: expert {{[0-3]}}: {{[0-9]+}} of 160 assignments ({{[0-9.]+}}%), mean gate {{0\.[0-9]+}}
// FLAT-NEXT: {{^  [01]\.[0-9]{4}  [^ ].*}}

// Chosen experts come in the order asked.
// CHOSEN: expert 3: {{[0-9]+}} of
// CHOSEN: expert 0: {{[0-9]+}} of

// A hierarchical layer: the experts (with their group), then Table 7's
// view, the primary groups.
// HIER: layer 0 of 1: 8 experts in 2 primary groups of 4; {{[0-9]+}} words of the test split (20 batches), checkpoint step 40
// HIER: expert [[E:[0-7]]] (group {{[01]}}): {{[0-9]+}} of
// HIER: primary group {{[01]}} (experts {{0-3|4-7}}): {{[0-9]+}} of
// HIER: primary group {{[01]}} (experts {{0-3|4-7}}): {{[0-9]+}} of

// --groups: only the groups asked for.
// GROUPS-NOT: expert {{[0-9]}} (
// GROUPS: primary group 1 (experts 4-7):
// GROUPS-NOT: primary group 0

// RANGE: moe-run: error: expert 4 is out of range: layer 0 has 4 experts (0-3)
// BADID: moe-run: error: 'x' is not an expert id (expected a list like 0,5,17)
// FLATGROUPS: moe-run: error: --groups: layer 0 is not hierarchical (it has no primary groups)
// LAYER: moe-run: error: --layer 1 is out of range: the package has 1 MoE layer (from 0)
// GROUPRANGE: moe-run: error: group 2 is out of range: layer 0 has 2 primary groups (0-1)
// MISMATCH: moe-run: error: checkpoint {{.*}}hckpt/step-00000040 is of model 'tiny_hmoe_topk', the package is 'tiny_moe'
// NOMOE: moe-run: error: package {{.*}}dense has no MoE layer: its eval function routes nothing to experts
