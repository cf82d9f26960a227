// REQUIRES: moe-run, mpi
// XFAIL: *
// RUN: rm -rf %t && mkdir -p %t
// RUN: python3 %S/Inputs/make-corpus.py %t/corpus.txt --lines 400
// RUN: %package %S/Inputs/tiny_hmoe_topk.mlir %t/dp "lr=0.01 warmup-steps=5 data-parallel=true" 2>/dev/null
// RUN: %package %S/Inputs/tiny_hmoe_topk.mlir %t/ep "lr=0.01 warmup-steps=5 expert-parallel=true" 2>/dev/null
// RUN: sed 's/4x5/8x5/g' %S/Inputs/tiny_hmoe_topk.mlir > %t/batch8.mlir
// RUN: %package %t/batch8.mlir %t/ref8 "lr=0.01 warmup-steps=5 sparse-gradients=off" 2>/dev/null
// RUN: moe-run train %t/ref8 --data %t/corpus.txt --steps 20 --log-every 1 --checkpoint-dir %t/ref8c --metrics %t/ref8.jsonl -q

// A hierarchical MoE with noisy top-k at both levels across ranks: two
// data-parallel ranks of batch 4, and two expert-parallel ranks (each
// holding half of the 8 experts, the secondary level's tokens exchanged),
// should equal one rank of batch 8 over 20 steps, as the flat layers do.
// They do not yet (issue 15, item 4): both compile and train, but the loss
// differs by 0.1-0.4% from the first step, because a rank draws the
// secondary level's gating noise for its own rows, which are not its shard
// of the global batch's group-major rows. Expected to fail until then; an
// unexpected pass fails the suite, so remove the XFAIL with the fix.
// RUN: %mpirun -np 2 moe-run train %t/dp --data %t/corpus.txt --steps 20 --log-every 1 --checkpoint-dir %t/dp2 --metrics %t/dp2.jsonl -q
// RUN: python3 %S/Inputs/compare-metrics.py %t/dp2.jsonl %t/ref8.jsonl --rtol 1e-5
// RUN: python3 %S/Inputs/compare-checkpoints.py %t/dp2/step-00000020/tensors.safetensors %t/ref8c/step-00000020/tensors.safetensors --rtol 1e-4
// RUN: %mpirun -np 2 moe-run train %t/ep --data %t/corpus.txt --steps 20 --log-every 1 --checkpoint-dir %t/ep2 --metrics %t/ep2.jsonl -q
// RUN: python3 %S/Inputs/compare-metrics.py %t/ep2.jsonl %t/ref8.jsonl --rtol 1e-5
// RUN: python3 %S/Inputs/compare-checkpoints.py %t/ep2/step-00000020 %t/ref8c/step-00000020 --rtol 1e-4
