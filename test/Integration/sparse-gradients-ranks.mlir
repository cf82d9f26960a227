// REQUIRES: moe-run, mpi
// RUN: rm -rf %t && mkdir -p %t
// RUN: python3 %S/Inputs/make-corpus.py %t/corpus.txt --lines 400
// RUN: %package %S/Inputs/tiny_sampled.mlir %t/dp "lr=0.01 warmup-steps=5 data-parallel=true sparse-gradients=on" 2>/dev/null
// RUN: %package %S/Inputs/tiny_sampled.mlir %t/plain "lr=0.01 warmup-steps=5 sparse-gradients=on" 2>/dev/null
// RUN: sed 's/2x5/4x5/g' %S/Inputs/tiny_sampled.mlir > %t/batch4.mlir
// RUN: %package %t/batch4.mlir %t/ref4 "lr=0.01 warmup-steps=5 sparse-gradients=on" 2>/dev/null
// RUN: sed 's/2x5/8x5/g' %S/Inputs/tiny_sampled.mlir > %t/batch8.mlir
// RUN: %package %t/batch8.mlir %t/ref8 "lr=0.01 warmup-steps=5 sparse-gradients=on" 2>/dev/null
// RUN: FileCheck %s --check-prefix=STEP --input-file=%t/dp/step.cpp

// Data parallel with sparse-gradients=on: the embedding's and the sampled
// softmax's rows are summed over the ranks (moe.sum_rows_over_ranks, one
// exchange per layer) and every rank applies the same lazy Adam update to
// the rows any rank touched; those layers are not all-reduced dense.
// STEP: moe::rt::step::softmaxCrossEntropyRowGrad(
// STEP: moe::rt::step::sumRowsOverRanks({{.*}}, 18, 8, 1, 50)
// STEP: moe::rt::step::rowGradient(
// STEP: moe::rt::step::sumRowsOverRanks({{.*}}, nullptr, 10, 8, 0, 50)
// STEP-COUNT-3: moe::rt::step::adamUpdateSummedRows(
// STEP-NOT: moe::rt::step::allReduce({{.*}}, 400, false)
// STEP-NOT: moe::rt::step::allReduce({{.*}}, 50, false)

// On one rank the exchange only merges the rank's own distinct rows: the
// data-parallel package trains as the plain one, bit for bit.
// RUN: moe-run train %t/dp --data %t/corpus.txt --steps 10 --checkpoint-dir %t/dp1 -q
// RUN: moe-run train %t/plain --data %t/corpus.txt --steps 10 --checkpoint-dir %t/plain1 -q
// RUN: cmp %t/dp1/step-00000010/tensors.safetensors %t/plain1/step-00000010/tensors.safetensors

// Two ranks of batch 2 train as one rank of batch 4 with sparse gradients
// (lazy Adam on the union of the rows, each row's gradient summed over the
// ranks), and four as one rank of batch 8: the same losses and parameters
// to round-off, as the dense data-parallel tests (data-parallel.mlir).
// RUN: %mpirun -np 2 moe-run train %t/dp --data %t/corpus.txt --steps 20 --log-every 1 --checkpoint-dir %t/dp2 --metrics %t/dp2.jsonl -q
// RUN: moe-run train %t/ref4 --data %t/corpus.txt --steps 20 --log-every 1 --checkpoint-dir %t/ref4c --metrics %t/ref4.jsonl -q
// RUN: python3 %S/Inputs/compare-metrics.py %t/dp2.jsonl %t/ref4.jsonl --rtol 1e-5
// RUN: python3 %S/Inputs/compare-checkpoints.py %t/dp2/step-00000020/tensors.safetensors %t/ref4c/step-00000020/tensors.safetensors --rtol 1e-4
// RUN: %mpirun -np 4 moe-run train %t/dp --data %t/corpus.txt --steps 20 --log-every 1 --checkpoint-dir %t/dp4 --metrics %t/dp4.jsonl -q
// RUN: moe-run train %t/ref8 --data %t/corpus.txt --steps 20 --log-every 1 --checkpoint-dir %t/ref8c --metrics %t/ref8.jsonl -q
// RUN: python3 %S/Inputs/compare-metrics.py %t/dp4.jsonl %t/ref8.jsonl --rtol 1e-5
// RUN: python3 %S/Inputs/compare-checkpoints.py %t/dp4/step-00000020/tensors.safetensors %t/ref8c/step-00000020/tensors.safetensors --rtol 1e-4

// The reference is lazy Adam, not dense Adam: two sparse ranks differ from
// one dense rank of batch 4 (rows a step did not touch keep their moments).
// RUN: %package %t/batch4.mlir %t/dense4 "lr=0.01 warmup-steps=5 sparse-gradients=off" 2>/dev/null
// RUN: moe-run train %t/dense4 --data %t/corpus.txt --steps 20 --checkpoint-dir %t/dense4c -q
// RUN: not python3 %S/Inputs/compare-checkpoints.py %t/dp2/step-00000020/tensors.safetensors %t/dense4c/step-00000020/tensors.safetensors --rtol 1e-4 > %t/differ.out
// RUN: FileCheck %s --check-prefix=DIFFER --input-file=%t/differ.out
// DIFFER: FAIL: beyond rtol

// Expert parallel keeps the vocabulary layers replicated: the same
// exchange applies, and two expert-parallel ranks equal one rank of batch 4.
// RUN: %package %S/Inputs/tiny_sampled.mlir %t/ep "lr=0.01 warmup-steps=5 expert-parallel=true sparse-gradients=on" 2>/dev/null
// RUN: FileCheck %s --check-prefix=EP --input-file=%t/ep/step.cpp
// RUN: %mpirun -np 2 moe-run train %t/ep --data %t/corpus.txt --steps 20 --log-every 1 --checkpoint-dir %t/ep2 --metrics %t/ep2.jsonl -q
// RUN: python3 %S/Inputs/compare-metrics.py %t/ep2.jsonl %t/ref4.jsonl --rtol 1e-5
// RUN: python3 %S/Inputs/compare-checkpoints.py %t/ep2/step-00000020 %t/ref4c/step-00000020 --rtol 1e-4
// EP: moe::rt::step::exchangeToExperts(
// EP: moe::rt::step::sumRowsOverRanks({{.*}}, 18, 8, 1, 50)
// EP: moe::rt::step::sumRowsOverRanks({{.*}}, nullptr, 10, 8, 0, 50)

// sparse-gradients=off keeps the dense path (all-reduced gradients, dense
// Adam): two ranks equal one dense rank of batch 4.
// RUN: %package %S/Inputs/tiny_sampled.mlir %t/dpdense "lr=0.01 warmup-steps=5 data-parallel=true sparse-gradients=off" 2>/dev/null
// RUN: FileCheck %s --check-prefix=DENSE --input-file=%t/dpdense/step.cpp
// RUN: %mpirun -np 2 moe-run train %t/dpdense --data %t/corpus.txt --steps 20 --log-every 1 --checkpoint-dir %t/dpdense2 --metrics %t/dpdense2.jsonl -q
// RUN: moe-run train %t/dense4 --data %t/corpus.txt --steps 20 --log-every 1 --checkpoint-dir %t/dense4m --metrics %t/dense4.jsonl -q
// RUN: python3 %S/Inputs/compare-metrics.py %t/dpdense2.jsonl %t/dense4.jsonl --rtol 1e-5
// RUN: python3 %S/Inputs/compare-checkpoints.py %t/dpdense2/step-00000020/tensors.safetensors %t/dense4m/step-00000020/tensors.safetensors --rtol 1e-4
// DENSE-NOT: sumRowsOverRanks
// DENSE: moe::rt::step::allReduce({{.*}}, 400, false)
// DENSE-NOT: sumRowsOverRanks

// The embedding alone (a full softmax keeps its dense gradient, all-reduced):
// two and four ranks equal one rank of the global batch.
// RUN: %package %S/Inputs/tiny_topk.mlir %t/emb "lr=0.01 warmup-steps=5 data-parallel=true sparse-gradients=on" 2>/dev/null
// RUN: FileCheck %s --check-prefix=EMB --input-file=%t/emb/step.cpp
// RUN: sed 's/2x5/4x5/g' %S/Inputs/tiny_topk.mlir > %t/emb4.mlir
// RUN: %package %t/emb4.mlir %t/embref4 "lr=0.01 warmup-steps=5 sparse-gradients=on" 2>/dev/null
// RUN: sed 's/2x5/8x5/g' %S/Inputs/tiny_topk.mlir > %t/emb8.mlir
// RUN: %package %t/emb8.mlir %t/embref8 "lr=0.01 warmup-steps=5 sparse-gradients=on" 2>/dev/null
// RUN: %mpirun -np 2 moe-run train %t/emb --data %t/corpus.txt --steps 20 --log-every 1 --checkpoint-dir %t/emb2 --metrics %t/emb2.jsonl -q
// RUN: moe-run train %t/embref4 --data %t/corpus.txt --steps 20 --log-every 1 --checkpoint-dir %t/embref4c --metrics %t/embref4.jsonl -q
// RUN: python3 %S/Inputs/compare-metrics.py %t/emb2.jsonl %t/embref4.jsonl --rtol 1e-5
// RUN: python3 %S/Inputs/compare-checkpoints.py %t/emb2/step-00000020/tensors.safetensors %t/embref4c/step-00000020/tensors.safetensors --rtol 1e-4
// RUN: %mpirun -np 4 moe-run train %t/emb --data %t/corpus.txt --steps 20 --log-every 1 --checkpoint-dir %t/emb4r --metrics %t/emb4r.jsonl -q
// RUN: moe-run train %t/embref8 --data %t/corpus.txt --steps 20 --log-every 1 --checkpoint-dir %t/embref8c --metrics %t/embref8.jsonl -q
// RUN: python3 %S/Inputs/compare-metrics.py %t/emb4r.jsonl %t/embref8.jsonl --rtol 1e-5
// RUN: python3 %S/Inputs/compare-checkpoints.py %t/emb4r/step-00000020/tensors.safetensors %t/embref8c/step-00000020/tensors.safetensors --rtol 1e-4
// EMB-COUNT-1: moe::rt::step::sumRowsOverRanks(
// EMB-NOT: sumRowsOverRanks
