// REQUIRES: moe-run, mpi
// RUN: rm -rf %t && mkdir -p %t
// RUN: python3 %S/Inputs/make-corpus.py %t/corpus.txt --lines 400
// RUN: %package %S/Inputs/tiny_topk.mlir %t/ep "lr=0.01 warmup-steps=5 expert-parallel=true" 2>/dev/null

// A rank killed (SIGKILL) while an expert-parallel model trains, every step
// of which exchanges tokens all-to-all: the job ends with a non-zero status
// well within 60 s (watch-job.py fails otherwise) and says which rank died.
// Open MPI's mpirun ends the job itself as soon as it notices ...
// RUN: python3 %S/Inputs/watch-job.py --within 60 --kill-rank 1 --metrics %t/killed.jsonl -- %mpirun -np 2 moe-run train %t/ep --data %t/corpus.txt --steps 100000000 --log-every 1 --metrics %t/killed.jsonl -q | FileCheck %s --check-prefix=KILLED
// KILLED: exit status {{[1-9][0-9]*}} after
// KILLED: rank 1 {{.*}}exited on signal 9

// ... and where the launcher does not (Open MPI told not to abort the job
// when a rank fails), the other ranks find out themselves: their
// collective times out (MOE_COLLECTIVE_TIMEOUT_S, 120 s by default) and
// they exit with one line saying so.
// RUN: env MOE_COLLECTIVE_TIMEOUT_S=10 python3 %S/Inputs/watch-job.py --within 60 --kill-rank 1 --metrics %t/orphaned.jsonl -- %mpirun --mca orte_abort_on_non_zero_status 0 -x MOE_COLLECTIVE_TIMEOUT_S -np 2 moe-run train %t/ep --data %t/corpus.txt --steps 100000000 --log-every 1 --metrics %t/orphaned.jsonl -q | FileCheck %s --check-prefix=ORPHANED
// ORPHANED: exit status {{[1-9][0-9]*}} after
// ORPHANED: moe-run: error: collective {{[A-Za-z]+}} timed out after 10 s: a rank is unresponsive or died (this is rank 0 of 2; MOE_COLLECTIVE_TIMEOUT_S sets the limit)

// What fails on rank 0 alone before training stops every rank at once,
// each with one line (the others name rank 0's error), rather than leaving
// them in a collective until the timeout. Each rank runs under sh, which
// prints its exit status, so mpirun does not end the job at the first
// failed rank and every line shows. The package does not compile (rank 0
// compiles it for all) ...
// RUN: mkdir -p %t/broken && cp %t/ep/manifest.json %t/broken/ && echo 'this is not C++' > %t/broken/step.cpp
// RUN: python3 %S/Inputs/watch-job.py --within 60 -- %mpirun -np 2 sh -c 'moe-run train %t/broken --data %t/corpus.txt --steps 2; echo "moe-run exit status $?"' | FileCheck %s --check-prefix=BROKEN
// BROKEN-DAG: moe-run: error: compiling {{.*}}broken/step.cpp failed:
// BROKEN-DAG: moe-run: error: stopped: rank 0 failed: compiling {{.*}}broken/step.cpp failed: ...
// BROKEN-DAG: moe-run exit status 1
// BROKEN-DAG: moe-run exit status 1
// BROKEN-NOT: timed out

// ... or rank 0 cannot write the metrics file.
// RUN: python3 %S/Inputs/watch-job.py --within 60 -- %mpirun -np 2 sh -c 'moe-run train %t/ep --data %t/corpus.txt --steps 2 --metrics %t/missing/metrics.jsonl; echo "moe-run exit status $?"' | FileCheck %s --check-prefix=METRICS
// METRICS-DAG: moe-run: error: cannot write metrics file {{.*}}missing/metrics.jsonl
// METRICS-DAG: moe-run: error: stopped: rank 0 failed: cannot write metrics file {{.*}}missing/metrics.jsonl
// METRICS-DAG: moe-run exit status 1
// METRICS-DAG: moe-run exit status 1
// METRICS-NOT: timed out
