// REQUIRES: moe-run
// RUN: rm -rf %t && mkdir -p %t
// RUN: python3 %S/Inputs/make-corpus.py %t/corpus.txt --lines 300
// RUN: %package %examples/tiny_moe.mlir %t/pkg 2>/dev/null
// RUN: moe-run train %t/pkg --data %t/corpus.txt --steps 4 --checkpoint-every 2 --keep 0 --checkpoint-dir %t/ckpt --metrics %t/m.jsonl -q

// No run silently replaces another's output: a fresh run into a directory
// of checkpoints, or onto a metrics file, is refused before it trains ...
// RUN: not moe-run train %t/pkg --data %t/corpus.txt --steps 2 --checkpoint-dir %t/ckpt 2>&1 | FileCheck %s --check-prefix=TAKEN
// TAKEN: moe-run: error: --checkpoint-dir {{.*}}ckpt: already holds checkpoints of another run (newest {{.*}}step-00000004): continue it with --resume latest or replace them with --overwrite
// RUN: not moe-run train %t/pkg --data %t/corpus.txt --steps 2 --metrics %t/m.jsonl 2>&1 | FileCheck %s --check-prefix=METRICS
// METRICS: moe-run: error: --metrics {{.*}}m.jsonl already holds another run's records: continue that run with --resume latest or replace them with --overwrite
// RUN: cp -r %t/ckpt %t/over && cp %t/m.jsonl %t/over.jsonl
// ... unless --overwrite says so; the old checkpoints go at once.
// RUN: moe-run train %t/pkg --data %t/corpus.txt --steps 1 --checkpoint-dir %t/over --metrics %t/over.jsonl --overwrite | FileCheck %s --check-prefix=OVERWRITE
// OVERWRITE: checkpoint: --overwrite: removed 2 checkpoint(s) of an earlier run from {{.*}}over
// RUN: ls %t/over | FileCheck %s --check-prefix=OVERDIR
// OVERDIR-NOT: step-00000004
// OVERDIR: step-00000001
// OVERDIR-NOT: step-
// RUN: not grep -q '"step":4' %t/over.jsonl

// A second run into a directory in use fails at once, naming it.
// RUN: flock %t/ckpt/.lock not moe-run train %t/pkg --data %t/corpus.txt --steps 6 --checkpoint-dir %t/ckpt --resume latest 2>&1 | FileCheck %s --check-prefix=LOCKED
// LOCKED: moe-run: error: --checkpoint-dir {{.*}}ckpt: in use by another training run (process {{.*}}); wait for it or choose another directory
// LOCKED-NOT: step

// A directory that cannot be written fails before the first step.
// RUN: touch %t/file
// RUN: not moe-run train %t/pkg --data %t/corpus.txt --steps 2 --checkpoint-dir %t/file/ckpt 2>&1 | FileCheck %s --check-prefix=NODIR
// NODIR: moe-run: error: --checkpoint-dir {{.*}}file/ckpt: cannot create it: Not a directory
// RUN: not moe-run train %t/pkg --data %t/corpus.txt --steps 2 --checkpoint-dir /proc/self 2>&1 | FileCheck %s --check-prefix=READONLY
// READONLY: moe-run: error: --checkpoint-dir /proc/self: not writable: {{.+}}
// READONLY-NOT: step

// The unfinished save of a killed run is cleared away, and --resume latest
// skips a damaged newest checkpoint, setting it aside.
// RUN: cp -r %t/ckpt %t/damaged && mkdir %t/damaged/.tmp-step-00000006-Ab12Cd
// RUN: python3 -c "import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[-5]^=0xff; open(p,'wb').write(bytes(b))" %t/damaged/step-00000004/tensors.safetensors
// RUN: moe-run train %t/pkg --data %t/corpus.txt --steps 6 --checkpoint-dir %t/damaged --resume latest --metrics %t/m.jsonl 2>&1 | FileCheck %s --check-prefix=FALLBACK
// FALLBACK: checkpoint: removed 1 unfinished save(s) of a killed run from {{.*}}damaged (.tmp-step-00000006-Ab12Cd)
// FALLBACK: moe-run: warning: --resume latest: 1 damaged newer checkpoint(s) set aside as .damaged-step-* (checkpoint {{.*}}step-00000004: tensors.safetensors: SHA-256 mismatch{{.*}}); resuming from {{.*}}damaged/step-00000002
// FALLBACK: resume: {{.*}}damaged/step-00000002 at step 2
// FALLBACK: step 6/6
// RUN: ls -a %t/damaged | FileCheck %s --check-prefix=ASIDE
// ASIDE-NOT: .tmp-step
// ASIDE: .damaged-step-00000004
// ASIDE: step-00000002
// ASIDE: step-00000006

// With no valid checkpoint left, the error says why the newest failed.
// RUN: truncate -s 100 %t/damaged/step-00000006/tensors.safetensors %t/damaged/step-00000002/tensors.safetensors
// RUN: not moe-run train %t/pkg --data %t/corpus.txt --steps 8 --checkpoint-dir %t/damaged --resume latest 2>&1 | FileCheck %s --check-prefix=NONE
// NONE: moe-run: error: --resume latest: no valid checkpoint in {{.*}}damaged; the newest failed: checkpoint {{.*}}step-00000006: tensors.safetensors: truncated
