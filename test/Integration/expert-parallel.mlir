// REQUIRES: moe-run, mpi
// RUN: rm -rf %t && mkdir -p %t
// RUN: python3 %S/Inputs/make-corpus.py %t/corpus.txt --lines 400
// RUN: %package %S/Inputs/tiny_topk.mlir %t/ep "lr=0.01 warmup-steps=5 expert-parallel=true" 2>/dev/null
// RUN: %package %S/Inputs/tiny_topk.mlir %t/plain "lr=0.01 warmup-steps=5 sparse-gradients=off" 2>/dev/null
// RUN: sed 's/2x5/4x5/g' %S/Inputs/tiny_topk.mlir > %t/batch4.mlir
// RUN: %package %t/batch4.mlir %t/ref4 "lr=0.01 warmup-steps=5 sparse-gradients=off" 2>/dev/null
// RUN: sed 's/2x5/8x5/g' %S/Inputs/tiny_topk.mlir > %t/batch8.mlir
// RUN: %package %t/batch8.mlir %t/ref8 "lr=0.01 warmup-steps=5 sparse-gradients=off" 2>/dev/null

// Expert parallelism (the paper's section 4): rank r of R holds experts
// [r 4/R, (r+1) 4/R) of the tiny LM's 4, and the tokens routed to them come
// to it (moe.exchange_to_experts) and go back (moe.exchange_to_tokens).
// One rank is the plain package, bit for bit; its checkpoint keeps the
// experts in their own shard file. (The references compile with
// sparse-gradients=off, which the tiny tables get under `auto` too; sparse
// vocabulary layers across ranks: sparse-gradients-ranks.mlir.)
// RUN: moe-run train %t/ep --data %t/corpus.txt --steps 20 --log-every 1 --checkpoint-dir %t/ep1 --metrics %t/ep1.jsonl -q
// RUN: moe-run train %t/plain --data %t/corpus.txt --steps 20 --log-every 1 --checkpoint-dir %t/plain1 --metrics %t/plain1.jsonl -q
// RUN: python3 %S/Inputs/compare-metrics.py %t/ep1.jsonl %t/plain1.jsonl --rtol 0
// RUN: python3 %S/Inputs/compare-checkpoints.py %t/ep1/step-00000020 %t/plain1/step-00000020 --rtol 0 --atol 0
// RUN: ls %t/ep1/step-00000020 | FileCheck %s --check-prefix=FILES1

// Two ranks of batch 2 equal one rank of batch 4, and four ranks one rank
// of batch 8: the same losses at every step and the same parameters
// (experts joined from the ranks' shard files), to round-off.
// RUN: %mpirun -np 2 moe-run train %t/ep --data %t/corpus.txt --steps 20 --log-every 1 --checkpoint-dir %t/ep2 --metrics %t/ep2.jsonl > %t/ep2.out
// RUN: FileCheck %s --check-prefix=TWO --input-file=%t/ep2.out
// RUN: moe-run train %t/ref4 --data %t/corpus.txt --steps 20 --log-every 1 --checkpoint-dir %t/ref4c --metrics %t/ref4.jsonl -q
// RUN: python3 %S/Inputs/compare-metrics.py %t/ep2.jsonl %t/ref4.jsonl --rtol 1e-5
// RUN: python3 %S/Inputs/compare-metrics.py %t/ep2.jsonl %t/ref4.jsonl --key expert_load
// RUN: python3 %S/Inputs/compare-checkpoints.py %t/ep2/step-00000020 %t/ref4c/step-00000020 --rtol 1e-4
// RUN: ls %t/ep2/step-00000020 | FileCheck %s --check-prefix=FILES2
// Each rank wrote its shard file in place; gathered to rank 0 instead
// (ranks without a shared directory), the files are the same bytes.
// RUN: %mpirun -np 2 moe-run train %t/ep --data %t/corpus.txt --steps 20 --log-every 1 --checkpoint-dir %t/ep2g --metrics %t/ep2g.jsonl -q --checkpoint-gather
// RUN: cmp %t/ep2/step-00000020/tensors-expert-1-of-2.safetensors %t/ep2g/step-00000020/tensors-expert-1-of-2.safetensors
// RUN: cmp %t/ep2/step-00000020/tensors.safetensors %t/ep2g/step-00000020/tensors.safetensors
// RUN: %mpirun -np 4 moe-run train %t/ep --data %t/corpus.txt --steps 20 --log-every 1 --checkpoint-dir %t/ep4 --metrics %t/ep4.jsonl -q
// RUN: moe-run train %t/ref8 --data %t/corpus.txt --steps 20 --log-every 1 --checkpoint-dir %t/ref8c --metrics %t/ref8.jsonl -q
// RUN: python3 %S/Inputs/compare-metrics.py %t/ep4.jsonl %t/ref8.jsonl --rtol 1e-5
// RUN: python3 %S/Inputs/compare-metrics.py %t/ep4.jsonl %t/ref8.jsonl --key expert_load
// RUN: python3 %S/Inputs/compare-checkpoints.py %t/ep4/step-00000020 %t/ref8c/step-00000020 --rtol 1e-4

// Resharding: the two-rank checkpoint loads on 1, 2 and 4 ranks (each rank
// takes its slice of the joined experts) and into the replicated package;
// all four score the test split alike.
// RUN: moe-run eval %t/ep --data %t/corpus.txt --checkpoint %t/ep2/step-00000020 > %t/eval1.out
// RUN: %mpirun -np 2 moe-run eval %t/ep --data %t/corpus.txt --checkpoint %t/ep2/step-00000020 > %t/eval2.out
// RUN: %mpirun -np 4 moe-run eval %t/ep --data %t/corpus.txt --checkpoint %t/ep2/step-00000020 > %t/eval4.out
// RUN: moe-run eval %t/plain --data %t/corpus.txt --checkpoint %t/ep2/step-00000020 > %t/evalplain.out
// The "data:" line carries its load time, so only the scores are compared.
// RUN: grep perplexity %t/eval1.out > %t/score1
// RUN: grep perplexity %t/eval2.out | diff %t/score1 -
// RUN: grep perplexity %t/eval4.out | diff %t/score1 -
// RUN: grep perplexity %t/evalplain.out | diff %t/score1 -
// RUN: FileCheck %s --check-prefix=EVAL --input-file=%t/eval1.out
// And training resumes from it on 4 ranks and on 1, where it writes the
// shard files of its own rank count.
// RUN: %mpirun -np 4 moe-run train %t/ep --data %t/corpus.txt --steps 24 --checkpoint-dir %t/ep2to4 --resume %t/ep2/step-00000020 | FileCheck %s --check-prefix=RESHARD
// RUN: ls %t/ep2to4/step-00000024 | FileCheck %s --check-prefix=FILES4
// RUN: moe-run train %t/ep --data %t/corpus.txt --steps 26 --checkpoint-dir %t/ep4to1 --resume %t/ep2to4/step-00000024 -q
// RUN: ls %t/ep4to1/step-00000026 | FileCheck %s --check-prefix=FILES1

// A rank count that does not divide the experts is refused up front.
// RUN: not %mpirun -np 3 moe-run train %t/ep --data %t/corpus.txt --steps 2 --checkpoint-dir %t/ep3 2>&1 | FileCheck %s --check-prefix=THREE

// FILES1: checkpoint.json
// FILES1-NEXT: tensors-expert-0-of-1.safetensors
// FILES1-NEXT: tensors.safetensors
// FILES2: checkpoint.json
// FILES2-NEXT: tensors-expert-0-of-2.safetensors
// FILES2-NEXT: tensors-expert-1-of-2.safetensors
// FILES2-NEXT: tensors.safetensors
// FILES4: tensors-expert-3-of-4.safetensors
// TWO: ranks: 2 (mpi), global batch 4 x 5
// TWO: step 20/20
// TWO: checkpoint: {{.*}}ep2/step-00000020
// EVAL: test perplexity at step 20: {{[0-9.]+}} over {{[0-9]+}} words
// RESHARD: resume: {{.*}}ep2/step-00000020 at step 20
// RESHARD: step 24/24
// THREE: 4 experts cannot be split over 3 ranks

// Feed-forward experts (two grouped matmuls and a relu on the received
// rows) and a noisy gate (each rank draws its shard of the global batch's
// noise): two ranks equal one rank of batch 4.
// RUN: %package %S/Inputs/tiny_ffn.mlir %t/ffn "lr=0.01 warmup-steps=5 expert-parallel=true" 2>/dev/null
// RUN: sed 's/2x5/4x5/g' %S/Inputs/tiny_ffn.mlir > %t/ffn4.mlir
// RUN: %package %t/ffn4.mlir %t/ffnref "lr=0.01 warmup-steps=5 sparse-gradients=off" 2>/dev/null
// RUN: %mpirun -np 2 moe-run train %t/ffn --data %t/corpus.txt --steps 30 --log-every 1 --checkpoint-dir %t/ffn2 --metrics %t/ffn2.jsonl -q
// RUN: moe-run train %t/ffnref --data %t/corpus.txt --steps 30 --log-every 1 --checkpoint-dir %t/ffn1 --metrics %t/ffnref.jsonl -q
// RUN: python3 %S/Inputs/compare-metrics.py %t/ffn2.jsonl %t/ffnref.jsonl --rtol 1e-5
// RUN: python3 %S/Inputs/compare-checkpoints.py %t/ffn2/step-00000030 %t/ffn1/step-00000030 --rtol 1e-4
// RUN: %package %examples/tiny_moe.mlir %t/noisy "lr=0.01 warmup-steps=10 expert-parallel=true" 2>/dev/null
// RUN: sed 's/2x5/4x5/g' %examples/tiny_moe.mlir > %t/noisy4.mlir
// RUN: %package %t/noisy4.mlir %t/noisyref "lr=0.01 warmup-steps=10 sparse-gradients=off" 2>/dev/null
// RUN: %mpirun -np 2 moe-run train %t/noisy --data %t/corpus.txt --steps 60 --log-every 10 --checkpoint-dir %t/noisy2 --metrics %t/noisy.jsonl -q
// RUN: moe-run train %t/noisyref --data %t/corpus.txt --steps 60 --log-every 10 --checkpoint-dir %t/noisy1 --metrics %t/noisyref.jsonl -q
// RUN: python3 %S/Inputs/compare-metrics.py %t/noisy.jsonl %t/noisyref.jsonl --rtol 1e-4
// RUN: python3 %S/Inputs/compare-checkpoints.py %t/noisy2/step-00000060 %t/noisy1/step-00000060 --rtol 1e-3 --atol 1e-5
