// REQUIRES: moe-run
// RUN: rm -rf %t && mkdir -p %t
// RUN: python3 %S/Inputs/make-corpus.py %t/corpus.txt --lines 500
// RUN: %package %examples/tiny_moe.mlir %t/pkg "lr=0.01 warmup-steps=10" 2>/dev/null
// An uninterrupted run of 60 steps with checkpoints every 20 steps ...
// RUN: moe-run train %t/pkg --data %t/corpus.txt --steps 60 --checkpoint-dir %t/a --checkpoint-every 20 --keep 0 --metrics %t/a.jsonl -q
// ... and one resumed from its step 20 checkpoint.
// RUN: moe-run train %t/pkg --data %t/corpus.txt --steps 60 --checkpoint-dir %t/b --resume %t/a/step-00000020 --metrics %t/b.jsonl | FileCheck %s
// RUN: cmp %t/a/step-00000060/tensors.safetensors %t/b/step-00000060/tensors.safetensors
// RUN: grep '"step":60,' %t/a.jsonl > %t/a60
// RUN: grep '"step":60,' %t/b.jsonl > %t/b60
// RUN: python3 -c "import json,sys; a=[json.loads(l) for l in open(sys.argv[1])]; b=[json.loads(l) for l in open(sys.argv[2])]; assert a[0]['loss']==b[0]['loss'], (a,b); print('loss at 60:', a[0]['loss'])" %t/a60 %t/b60
// --resume latest continues from the newest checkpoint of the directory.
// RUN: moe-run train %t/pkg --data %t/corpus.txt --steps 70 --checkpoint-dir %t/a --resume latest | FileCheck %s --check-prefix=LATEST

// The resumed run restores parameters, Adam moments, the step counter, the
// seed and the data position, and all randomness (gating noise, data
// order) is keyed by them: its parameters at step 60 are bit-identical to
// the uninterrupted run's (cmp), and so is the loss it logs.
// CHECK: resume: {{.*}}a/step-00000020 at step 20 (epoch 0, batch 20)
// CHECK: checkpoint: {{.*}}b/step-00000060
// LATEST: resume: {{.*}}a/step-00000060 at step 60
// LATEST: step 70/70

// A kill just after a checkpoint's rename, before the evaluation that
// follows it: the metrics hold the step-40 record of the checkpoint
// (written before the rename) and nothing after it. The resumed run
// repeats the evaluation, and its metrics equal the uninterrupted run's
// record for record (but timings).
// RUN: moe-run train %t/pkg --data %t/corpus.txt --steps 60 --log-every 10 --eval-every 20 --eval-batches 2 --checkpoint-dir %t/c --checkpoint-every 20 --keep 0 --metrics %t/c.jsonl -q
// RUN: cp -r %t/c %t/k && rm -r %t/k/step-00000060
// RUN: python3 -c "import sys; lines=open(sys.argv[1]).readlines(); end=[i for i, l in enumerate(lines) if '\"checkpoint\"' in l and '\"step\":40' in l][0]; open(sys.argv[2], 'w').writelines(lines[:end + 1])" %t/c.jsonl %t/k.jsonl
// RUN: moe-run train %t/pkg --data %t/corpus.txt --steps 60 --log-every 10 --eval-every 20 --eval-batches 2 --checkpoint-dir %t/k --checkpoint-every 20 --keep 0 --metrics %t/k.jsonl --resume latest | FileCheck %s --check-prefix=REPEAT
// RUN: python3 %S/Inputs/compare-metrics.py --records %t/c.jsonl %t/k.jsonl
// RUN: cmp %t/c/step-00000060/tensors.safetensors %t/k/step-00000060/tensors.safetensors
// REPEAT: resume: {{.*}}k/step-00000040 at step 40
// REPEAT: eval at step 40: test perplexity
// REPEAT-NEXT: step 50/60
