// REQUIRES: moe-run
// RUN: rm -rf %t && mkdir -p %t
// RUN: python3 %S/Inputs/make-corpus.py %t/corpus.txt --lines 200
// RUN: %package %S/Inputs/tiny_topk.mlir %t/ep "lr=0.01 expert-parallel=true" 2>/dev/null
// RUN: %package %S/Inputs/tiny_topk.mlir %t/plain "lr=0.01" 2>/dev/null

// The per-rank memory of training, from the manifest, by hand: 2226
// parameters (embedding 400, two LSTMs 2 x 544, gate 32, experts 4 x 8 x
// 8 = 256, softmax 450) are 8904 B = 8.70 KiB; Adam's two moments and the
// i64 step counter 17816 B = 17.40 KiB; the arenas of the train step
// (12800 B) and the evaluation copy (3264 B) 15.69 KiB; tokens and targets
// [2, 5] i32 of both functions 160 B. On R ranks the experts and their
// moments (1024 B each) are split: 8392 B and 16792 B on 2 ranks, 8136 B
// and 16280 B on 4. The experts' gradient comes from the train step's
// pool at the shard's size: 1024 B, 512 B, 256 B.
// RUN: moe-run info %t/ep --memory-limit 1G | FileCheck %s --check-prefix=EP
// EP:      memory per rank to train (train_step + eval arenas
// EP-NEXT:   ranks    parameters     optimizer        arenas        inputs         pools         total
// EP-NEXT:       1      8.70 KiB     17.40 KiB     15.69 KiB         160 B      1.00 KiB     42.94 KiB
// EP-NEXT:       2      8.20 KiB     16.40 KiB     15.69 KiB         160 B         512 B     40.94 KiB
// EP-NEXT:       4      7.95 KiB     15.90 KiB     15.69 KiB         160 B         256 B     39.94 KiB
// EP-NEXT: fits on 1 rank: --memory-limit is 1.00 GiB

// The replicated package has one row: more ranks do not divide it.
// RUN: moe-run info %t/plain | FileCheck %s --check-prefix=PLAIN
// PLAIN:      ranks    parameters
// PLAIN-NEXT:     1      8.70 KiB     17.40 KiB
// PLAIN-NEXT: (replicated: data-parallel ranks each hold all of it
// PLAIN-NEXT: fits on 1 rank: the host has available

// Training reports the same numbers before its first step.
// RUN: moe-run train %t/ep --data %t/corpus.txt --steps 2 --memory-limit 64M > %t/train.out
// RUN: FileCheck %s --check-prefix=TRAIN --input-file=%t/train.out
// TRAIN: memory per rank: 8.70 KiB of parameters, 17.40 KiB of optimizer state, 15.69 KiB of arenas, 160 B of inputs, 1.00 KiB of pools: 42.94 KiB (--memory-limit is 64.00 MiB)

// A model that does not fit fails at once with the numbers and the rank
// count that would fit (40 KiB = 40960 B holds the 40896 B of 4 ranks, not
// the 41920 B of 2).
// RUN: not moe-run train %t/ep --data %t/corpus.txt --steps 2 --memory-limit 40K 2>&1 | FileCheck %s --check-prefix=TIGHT
// TIGHT: moe-run: error: package {{.*}}ep needs 42.94 KiB per rank on 1 rank, --memory-limit is 40.00 KiB; fits on 4 ranks (expert-parallel) (see moe-run info)
// RUN: not moe-run train %t/plain --data %t/corpus.txt --steps 2 --memory-limit 30K 2>&1 | FileCheck %s --check-prefix=PLAINTIGHT
// PLAINTIGHT: moe-run: error: package {{.*}}plain needs 42.44 KiB per rank on 1 rank, --memory-limit is 30.00 KiB; data-parallel ranks each hold every tensor: compile with expert-parallel=true to split the experts
// RUN: moe-run info %t/ep --memory-limit 39K | FileCheck %s --check-prefix=NONE
// NONE: needs 42.94 KiB per rank on 1 rank, --memory-limit is 39.00 KiB; does not fit on any rank count that divides the experts
// RUN: not moe-run train %t/ep --data %t/corpus.txt --memory-limit 12X 2>&1 | FileCheck %s --check-prefix=BAD
// BAD: moe-run: error: --memory-limit: '12X' is no size (e.g. 1000, 512M, 8G, 1.5GiB)
