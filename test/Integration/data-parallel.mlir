// REQUIRES: moe-run, mpi
// RUN: rm -rf %t && mkdir -p %t
// RUN: python3 %S/Inputs/make-corpus.py %t/corpus.txt --lines 400
// RUN: %package %S/Inputs/tiny_topk.mlir %t/dp "lr=0.01 warmup-steps=5 data-parallel=true" 2>/dev/null
// RUN: %package %S/Inputs/tiny_topk.mlir %t/plain "lr=0.01 warmup-steps=5 sparse-gradients=off" 2>/dev/null
// RUN: sed 's/2x5/4x5/g' %S/Inputs/tiny_topk.mlir > %t/batch4.mlir
// RUN: %package %t/batch4.mlir %t/ref4 "lr=0.01 warmup-steps=5 sparse-gradients=off" 2>/dev/null
// RUN: sed 's/2x5/8x5/g' %S/Inputs/tiny_topk.mlir > %t/batch8.mlir
// RUN: %package %t/batch8.mlir %t/ref8 "lr=0.01 warmup-steps=5 sparse-gradients=off" 2>/dev/null

// On one rank the data-parallel package is the plain one, bit for bit.
// The tiny tables keep exact (dense) Adam under sparse-gradients=auto; the
// one-rank references say so with sparse-gradients=off (sparse vocabulary
// layers across ranks: sparse-gradients-ranks.mlir).
// RUN: moe-run train %t/dp --data %t/corpus.txt --steps 20 --checkpoint-dir %t/dp1 -q
// RUN: moe-run train %t/plain --data %t/corpus.txt --steps 20 --checkpoint-dir %t/plain1 -q
// RUN: cmp %t/dp1/step-00000020/tensors.safetensors %t/plain1/step-00000020/tensors.safetensors

// Rank 0 alone claims the checkpoint directory; when it refuses, every
// rank stops at once (none waits for it until the collectives time out).
// RUN: not %mpirun -np 2 moe-run train %t/dp --data %t/corpus.txt --steps 2 --checkpoint-dir %t/dp1 2>&1 | FileCheck %s --check-prefix=TAKEN
// TAKEN: moe-run: error: --checkpoint-dir {{.*}}dp1: already holds checkpoints of another run
// TAKEN-NOT: timed out

// Two ranks of batch 2 train as one rank of batch 4 (the same global
// batches, the loss of the global batch, gradients summed in rank order):
// the same loss at every step and the same parameters, to round-off, and
// the same tokens per expert (every rank's, summed) in the metrics.
// RUN: %mpirun -np 2 moe-run train %t/dp --data %t/corpus.txt --steps 20 --log-every 1 --checkpoint-dir %t/dp2 --metrics %t/dp2.jsonl > %t/dp2.out
// RUN: FileCheck %s --check-prefix=TWO --input-file=%t/dp2.out
// RUN: moe-run train %t/ref4 --data %t/corpus.txt --steps 20 --log-every 1 --checkpoint-dir %t/ref4c --metrics %t/ref4.jsonl -q
// RUN: python3 %S/Inputs/compare-metrics.py %t/dp2.jsonl %t/ref4.jsonl --rtol 1e-5
// RUN: python3 %S/Inputs/compare-metrics.py %t/dp2.jsonl %t/ref4.jsonl --key expert_load
// RUN: python3 %S/Inputs/compare-checkpoints.py %t/dp2/step-00000020/tensors.safetensors %t/ref4c/step-00000020/tensors.safetensors --rtol 1e-4

// Four ranks as one rank of batch 8.
// RUN: %mpirun -np 4 moe-run train %t/dp --data %t/corpus.txt --steps 20 --log-every 1 --checkpoint-dir %t/dp4 --metrics %t/dp4.jsonl -q
// RUN: moe-run train %t/ref8 --data %t/corpus.txt --steps 20 --log-every 1 --checkpoint-dir %t/ref8c --metrics %t/ref8.jsonl -q
// RUN: python3 %S/Inputs/compare-metrics.py %t/dp4.jsonl %t/ref8.jsonl --rtol 1e-5
// RUN: python3 %S/Inputs/compare-metrics.py %t/dp4.jsonl %t/ref8.jsonl --key expert_load
// RUN: python3 %S/Inputs/compare-checkpoints.py %t/dp4/step-00000020/tensors.safetensors %t/ref8c/step-00000020/tensors.safetensors --rtol 1e-4

// The last batch of an epoch is padded (targets -1). With a corpus of 14
// steps per epoch, steps 14 and 28 give rank 0 the last real targets and
// rank 1 none: the loss is the global batch's only because each rank
// divides its sum by the global count (moe.count_targets summed over the
// ranks), not by its own. Loss and perplexity equal one rank of batch 4 at
// every step, across three epochs.
// RUN: python3 %S/Inputs/make-corpus.py %t/short.txt --lines 30 --seed 3
// RUN: %mpirun -np 2 moe-run train %t/dp --data %t/short.txt --steps 40 --log-every 1 --checkpoint-dir %t/short2 --metrics %t/short2.jsonl -q
// RUN: moe-run train %t/ref4 --data %t/short.txt --steps 40 --log-every 1 --checkpoint-dir %t/short4 --metrics %t/short4.jsonl -q
// RUN: grep -E '"step":(14|15|40),' %t/short4.jsonl | FileCheck %s --check-prefix=EPOCHS
// RUN: python3 %S/Inputs/compare-metrics.py %t/short2.jsonl %t/short4.jsonl --rtol 1e-5 --key loss --key perplexity
// RUN: python3 %S/Inputs/compare-checkpoints.py %t/short2/step-00000040/tensors.safetensors %t/short4/step-00000040/tensors.safetensors --rtol 1e-4
// EPOCHS: "epoch":0,{{.*}}"step":14,
// EPOCHS-NEXT: "epoch":1,{{.*}}"step":15,
// EPOCHS-NEXT: "epoch":2,{{.*}}"step":40,

// A 2-rank checkpoint resumes on 4 ranks (every parameter is replicated).
// RUN: %mpirun -np 4 moe-run train %t/dp --data %t/corpus.txt --steps 24 --checkpoint-dir %t/dp2to4 --resume %t/dp2/step-00000020 | FileCheck %s --check-prefix=RESHARD

// Only rank 0 reports; the global batch is shown.
// TWO: ranks: 2 (mpi), global batch 4 x 5
// TWO-NOT: ranks: 2
// TWO: step 20/20
// TWO: checkpoint: {{.*}}dp2/step-00000020
// RESHARD: resume: {{.*}}dp2/step-00000020 at step 20
// RESHARD: step 24/24

// With gating noise: each rank draws its shard of the global batch's noise
// (Philox element offsets), so the noisy tiny LM on two ranks also equals
// one rank of batch 4, and its loss falls.
// RUN: %package %examples/tiny_moe.mlir %t/noisy "lr=0.01 warmup-steps=10 data-parallel=true" 2>/dev/null
// RUN: sed 's/2x5/4x5/g' %examples/tiny_moe.mlir > %t/noisy4.mlir
// RUN: %package %t/noisy4.mlir %t/noisyref "lr=0.01 warmup-steps=10 sparse-gradients=off" 2>/dev/null
// RUN: %mpirun -np 2 moe-run train %t/noisy --data %t/corpus.txt --steps 150 --log-every 10 --checkpoint-dir %t/noisy2 --metrics %t/noisy.jsonl -q
// RUN: moe-run train %t/noisyref --data %t/corpus.txt --steps 150 --log-every 10 --checkpoint-dir %t/noisy1 --metrics %t/noisyref.jsonl -q
// RUN: python3 %S/Inputs/compare-metrics.py %t/noisy.jsonl %t/noisyref.jsonl --rtol 1e-4
// RUN: python3 %S/Inputs/compare-checkpoints.py %t/noisy2/step-00000150/tensors.safetensors %t/noisy1/step-00000150/tensors.safetensors --rtol 1e-3 --atol 1e-5
// RUN: python3 %S/Inputs/check-metrics.py %t/noisy.jsonl --max-loss-ratio 0.7

// Batchwise gating (Appendix A) ranks the combined batch of all ranks:
// every expert keeps its top m R tokens of the R ranks' tokens, ties to the
// lower (rank, token), which is one rank's choice over the concatenated
// batch. Two and four ranks equal one rank of batch 4 and 8, from the
// first step, where the zero gate weights make every probability tie.
// RUN: %package %S/Inputs/tiny_batchwise.mlir %t/bw "lr=0.01 warmup-steps=5 data-parallel=true" 2>/dev/null
// RUN: sed 's/2x5/4x5/g' %S/Inputs/tiny_batchwise.mlir > %t/bw4.mlir
// RUN: %package %t/bw4.mlir %t/bwref4 "lr=0.01 warmup-steps=5 sparse-gradients=off" 2>/dev/null
// RUN: sed 's/2x5/8x5/g' %S/Inputs/tiny_batchwise.mlir > %t/bw8.mlir
// RUN: %package %t/bw8.mlir %t/bwref8 "lr=0.01 warmup-steps=5 sparse-gradients=off" 2>/dev/null
// RUN: %mpirun -np 2 moe-run train %t/bw --data %t/corpus.txt --steps 30 --log-every 1 --checkpoint-dir %t/bw2 --metrics %t/bw2.jsonl -q
// RUN: moe-run train %t/bwref4 --data %t/corpus.txt --steps 30 --log-every 1 --checkpoint-dir %t/bw4c --metrics %t/bw4.jsonl -q
// RUN: python3 %S/Inputs/compare-metrics.py %t/bw2.jsonl %t/bw4.jsonl --rtol 1e-5
// RUN: python3 %S/Inputs/compare-metrics.py %t/bw2.jsonl %t/bw4.jsonl --key expert_load
// RUN: python3 %S/Inputs/compare-checkpoints.py %t/bw2/step-00000030/tensors.safetensors %t/bw4c/step-00000030/tensors.safetensors --rtol 1e-4
// RUN: %mpirun -np 4 moe-run train %t/bw --data %t/corpus.txt --steps 30 --log-every 1 --checkpoint-dir %t/bw4r --metrics %t/bw4r.jsonl -q
// RUN: moe-run train %t/bwref8 --data %t/corpus.txt --steps 30 --log-every 1 --checkpoint-dir %t/bw8c --metrics %t/bw8.jsonl -q
// RUN: python3 %S/Inputs/compare-metrics.py %t/bw4r.jsonl %t/bw8.jsonl --rtol 1e-5
// RUN: python3 %S/Inputs/compare-metrics.py %t/bw4r.jsonl %t/bw8.jsonl --key expert_load
// RUN: python3 %S/Inputs/compare-checkpoints.py %t/bw4r/step-00000030/tensors.safetensors %t/bw8c/step-00000030/tensors.safetensors --rtol 1e-4
