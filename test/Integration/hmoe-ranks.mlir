// REQUIRES: moe-run, mpi
// RUN: rm -rf %t && mkdir -p %t
// RUN: python3 %S/Inputs/make-corpus.py %t/corpus.txt --lines 400
// RUN: %package %S/Inputs/tiny_hmoe_topk.mlir %t/dp "lr=0.01 warmup-steps=5 data-parallel=true" 2>/dev/null
// RUN: %package %S/Inputs/tiny_hmoe_topk.mlir %t/ep "lr=0.01 warmup-steps=5 expert-parallel=true" 2>/dev/null
// RUN: sed 's/4x5/8x5/g' %S/Inputs/tiny_hmoe_topk.mlir > %t/batch8.mlir
// RUN: %package %t/batch8.mlir %t/ref8 "lr=0.01 warmup-steps=5 sparse-gradients=off" 2>/dev/null
// RUN: moe-run train %t/ref8 --data %t/corpus.txt --steps 20 --log-every 1 --checkpoint-dir %t/ref8c --metrics %t/ref8.jsonl -q

// Hierarchical MoE layers across ranks (paper 3.3 and section 4), as the
// flat layers in data-parallel.mlir and expert-parallel.mlir: R ranks of
// batch B equal one rank of batch R B.
//
// Noisy top-k at both levels with the importance and Load_H losses
// (Inputs/tiny_hmoe_topk.mlir): two data-parallel ranks of batch 4, and two
// expert-parallel ranks (each holding half of the 8 experts, the
// secondary level's tokens exchanged), equal one rank of batch 8 over 20
// steps. A secondary row draws the noise of its primary assignment (the
// group plan's position), which is its shard of the global batch's
// stream, and Load_H takes the ranks' sums of its loads and group sizes.
// RUN: %mpirun -np 2 moe-run train %t/dp --data %t/corpus.txt --steps 20 --log-every 1 --checkpoint-dir %t/dp2 --metrics %t/dp2.jsonl -q
// RUN: python3 %S/Inputs/compare-metrics.py %t/dp2.jsonl %t/ref8.jsonl --rtol 1e-5
// RUN: python3 %S/Inputs/compare-checkpoints.py %t/dp2/step-00000020/tensors.safetensors %t/ref8c/step-00000020/tensors.safetensors --rtol 1e-4
// RUN: %mpirun -np 2 moe-run train %t/ep --data %t/corpus.txt --steps 20 --log-every 1 --checkpoint-dir %t/ep2 --metrics %t/ep2.jsonl -q
// RUN: python3 %S/Inputs/compare-metrics.py %t/ep2.jsonl %t/ref8.jsonl --rtol 1e-5
// RUN: python3 %S/Inputs/compare-checkpoints.py %t/ep2/step-00000020 %t/ref8c/step-00000020 --rtol 1e-4

// Batchwise gating at both levels (Appendix A per level, Eq. 8 per level;
// Inputs/tiny_hmoe.mlir): each group keeps the top m_p R tokens of all
// ranks, and inside a group each expert the top m_s R of the group's rows
// of all ranks, ties to the lower (rank, row), which is one rank's choice
// over the concatenated batch. Data-parallel and expert-parallel on 2 and
// 4 ranks equal one rank of batch 8 and 16. (The evaluation at the end
// routes with thresholds that 20 steps have not trained: room for every
// row, threshold-capacity = 8 >= n / k at both levels.)
// RUN: %package %S/Inputs/tiny_hmoe.mlir %t/bwdp "lr=0.01 warmup-steps=5 threshold-capacity=8 data-parallel=true" 2>/dev/null
// RUN: %package %S/Inputs/tiny_hmoe.mlir %t/bwep "lr=0.01 warmup-steps=5 threshold-capacity=8 expert-parallel=true" 2>/dev/null
// RUN: sed 's/4x5/8x5/g' %S/Inputs/tiny_hmoe.mlir > %t/bw8.mlir
// RUN: %package %t/bw8.mlir %t/bwref8 "lr=0.01 warmup-steps=5 threshold-capacity=8" 2>/dev/null
// RUN: sed 's/4x5/16x5/g' %S/Inputs/tiny_hmoe.mlir > %t/bw16.mlir
// RUN: %package %t/bw16.mlir %t/bwref16 "lr=0.01 warmup-steps=5 threshold-capacity=8" 2>/dev/null
// RUN: moe-run train %t/bwref8 --data %t/corpus.txt --steps 20 --log-every 1 --checkpoint-dir %t/bwref8c --metrics %t/bwref8.jsonl -q
// RUN: moe-run train %t/bwref16 --data %t/corpus.txt --steps 20 --log-every 1 --checkpoint-dir %t/bwref16c --metrics %t/bwref16.jsonl -q
// RUN: %mpirun -np 2 moe-run train %t/bwdp --data %t/corpus.txt --steps 20 --log-every 1 --checkpoint-dir %t/bwdp2 --metrics %t/bwdp2.jsonl -q
// RUN: python3 %S/Inputs/compare-metrics.py %t/bwdp2.jsonl %t/bwref8.jsonl --rtol 1e-5
// RUN: python3 %S/Inputs/compare-checkpoints.py %t/bwdp2/step-00000020/tensors.safetensors %t/bwref8c/step-00000020/tensors.safetensors --rtol 1e-4
// RUN: %mpirun -np 4 moe-run train %t/bwdp --data %t/corpus.txt --steps 20 --log-every 1 --checkpoint-dir %t/bwdp4 --metrics %t/bwdp4.jsonl -q
// RUN: python3 %S/Inputs/compare-metrics.py %t/bwdp4.jsonl %t/bwref16.jsonl --rtol 1e-5
// RUN: python3 %S/Inputs/compare-checkpoints.py %t/bwdp4/step-00000020/tensors.safetensors %t/bwref16c/step-00000020/tensors.safetensors --rtol 1e-4
// RUN: %mpirun -np 2 moe-run train %t/bwep --data %t/corpus.txt --steps 20 --log-every 1 --checkpoint-dir %t/bwep2 --metrics %t/bwep2.jsonl -q
// RUN: python3 %S/Inputs/compare-metrics.py %t/bwep2.jsonl %t/bwref8.jsonl --rtol 1e-5
// RUN: python3 %S/Inputs/compare-checkpoints.py %t/bwep2/step-00000020 %t/bwref8c/step-00000020 --rtol 1e-4
// RUN: %mpirun -np 4 moe-run train %t/bwep --data %t/corpus.txt --steps 20 --log-every 1 --checkpoint-dir %t/bwep4 --metrics %t/bwep4.jsonl -q
// RUN: python3 %S/Inputs/compare-metrics.py %t/bwep4.jsonl %t/bwref16.jsonl --rtol 1e-5
// RUN: python3 %S/Inputs/compare-checkpoints.py %t/bwep4/step-00000020 %t/bwref16c/step-00000020 --rtol 1e-4

// On one rank the data-parallel package (both masks over the combined
// batch, host bisection, segmented Eq. 8) trains as the plain one, bit for
// bit.
// RUN: %package %S/Inputs/tiny_hmoe.mlir %t/bwplain "lr=0.01 warmup-steps=5 threshold-capacity=8" 2>/dev/null
// RUN: moe-run train %t/bwdp --data %t/corpus.txt --steps 20 --log-every 1 --checkpoint-dir %t/bwdp1 --metrics %t/bwdp1.jsonl -q
// RUN: moe-run train %t/bwplain --data %t/corpus.txt --steps 20 --log-every 1 --checkpoint-dir %t/bwplain1 --metrics %t/bwplain1.jsonl -q
// RUN: python3 %S/Inputs/compare-metrics.py %t/bwdp1.jsonl %t/bwplain1.jsonl --rtol 0
// RUN: cmp %t/bwdp1/step-00000020/tensors.safetensors %t/bwplain1/step-00000020/tensors.safetensors

// Threshold gating at both levels (Eq. 7, the evaluation copy of the
// batchwise model) through moe-partition: the 2-rank expert-parallel
// checkpoint scores the same test perplexity on 1, 2 and 4 expert-parallel
// ranks (the sharded experts' rows exchanged) and in the replicated
// package of one rank.
// RUN: moe-run eval %t/bwep --data %t/corpus.txt --checkpoint %t/bwep2/step-00000020 > %t/eval1.out
// RUN: %mpirun -np 2 moe-run eval %t/bwep --data %t/corpus.txt --checkpoint %t/bwep2/step-00000020 > %t/eval2.out
// RUN: %mpirun -np 4 moe-run eval %t/bwep --data %t/corpus.txt --checkpoint %t/bwep2/step-00000020 > %t/eval4.out
// RUN: moe-run eval %t/bwplain --data %t/corpus.txt --checkpoint %t/bwep2/step-00000020 > %t/evalplain.out
// RUN: grep perplexity %t/eval1.out > %t/score1
// RUN: grep perplexity %t/eval2.out | diff %t/score1 -
// RUN: grep perplexity %t/eval4.out | diff %t/score1 -
// RUN: grep perplexity %t/evalplain.out | diff %t/score1 -
// RUN: FileCheck %s --check-prefix=EVAL --input-file=%t/eval1.out
// EVAL: test perplexity at step 20: {{[0-9.]+}} over
