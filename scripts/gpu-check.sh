#!/usr/bin/env bash
# The GPU check: one command on a machine with an NVIDIA GPU and the CUDA
# toolkit, from the bundle that scripts/gpu-bundle.sh built on a CPU
# machine (nothing is compiled here but the packages' step.cu, by moe-run):
#
#   bash scripts/gpu-check.sh [BUNDLE] [OUT]   # default .gpu/bundle.tar.gz
#
# Runs, in this order, and prints one Markdown table (also written to
# OUT/gpu-check.md, default gpu-check/, for bench/RESULTS.md):
#   1. the CPU-vs-CUDA equality tests;
#   2. compute-sanitizer memcheck over them, racecheck over the kernels
#      that share memory between threads (top-k selection, sums, softmax);
#   3. the MoE layer benchmark on the CUDA backend at f32, tf32 and bf16
#      (T 8K/32K, d 512/1024, 8/64/512 experts, k 4): forward + backward
#      against a dense GEMM of equal FLOPs in the same run;
#   4. moe-run training tokens/s of the demo LM compiled for CUDA.
# Exits non-zero when a test or a sanitizer fails. About 5 minutes on an
# H200 (the sanitizers take most of it).
#
#   QUICK=1   the smallest benchmark configurations only
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
BUNDLE=${1:-.gpu/bundle.tar.gz}
OUT=${2:-gpu-check}
QUICK=${QUICK:-0}

if [ ! -f "$BUNDLE" ]; then
  echo "gpu-check: no bundle at $BUNDLE: build it on a CPU machine with" \
    "bash scripts/gpu-bundle.sh" >&2
  exit 2
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
B=$(mktemp -d)
tar -C "$B" -xzf "$BUNDLE"
export LD_LIBRARY_PATH="$B/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export MOE_RUN_INCLUDE_DIR=$REPO MOE_RUN_LIBRARY_DIR=$B/lib
export PATH="$PATH:/usr/local/cuda/bin"
COMMIT=$(cat "$B/commit")
GPU=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader -i 0 \
  2>/dev/null || echo "no GPU")
TABLE=$OUT/gpu-check.md
status=0
start=$(date +%s)
elapsed() { echo "$(( $(date +%s) - start ))s"; }

{
  echo "GPU check on $GPU, $(date -u +%Y-%m-%d), commit $COMMIT"
  echo
  echo "| check | result |"
  echo "|---|---|"
} > "$TABLE"
row() { echo "| $1 | $2 |" >> "$TABLE"; }

echo "== 1. CPU-vs-CUDA equality tests ($(elapsed))"
"$B/bin/moe-runtime-cuda-tests" --gtest_brief=1 > "$OUT/equality.log" 2>&1
rc=$?
tail -n 3 "$OUT/equality.log"
passed=$(grep -Eo '\[  PASSED  \] [0-9]+' "$OUT/equality.log" | grep -Eo '[0-9]+$')
failed=$(grep -Eo '\[  FAILED  \] [0-9]+ test' "$OUT/equality.log" | grep -Eo '[0-9]+' | head -n 1)
skipped=$(grep -Eo '\[  SKIPPED \] [0-9]+' "$OUT/equality.log" | grep -Eo '[0-9]+$')
row "CPU-vs-CUDA equality tests" "${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped"
[ "$rc" -eq 0 ] && [ -z "$skipped" ] || status=1

echo "== 2. compute-sanitizer ($(elapsed))"
if command -v compute-sanitizer >/dev/null; then
  timeout 240 compute-sanitizer --tool memcheck --error-exitcode 3 \
    "$B/bin/moe-runtime-cuda-tests" --gtest_brief=1 > "$OUT/memcheck.log" 2>&1
  rc=$?
  row "memcheck, every equality test" "$(grep -Eo 'ERROR SUMMARY: [0-9]+ error' "$OUT/memcheck.log" | tail -n 1) (exit $rc)"
  [ "$rc" -eq 0 ] || status=1
  timeout 150 compute-sanitizer --tool racecheck --error-exitcode 3 \
    "$B/bin/moe-runtime-cuda-tests" --gtest_brief=1 \
    --gtest_filter='*TopK*:*Softmax*:*Mask*:*Importance*:*CvSquared*:*Balanc*:*SumRows*' \
    > "$OUT/racecheck.log" 2>&1
  rc=$?
  row "racecheck, selection / sums / softmax / masks" "$(grep -Eo 'RACECHECK SUMMARY: [0-9]+ hazard[s]? displayed' "$OUT/racecheck.log" | tail -n 1) (exit $rc)"
  [ "$rc" -eq 0 ] || status=1
else
  row "compute-sanitizer" "not found"
fi

echo "== 3. MoE layer vs dense GEMM on CUDA ($(elapsed))"
if [ "$QUICK" = 1 ]; then
  shapes="8192:512"
else
  shapes="8192:512 32768:1024"
fi
LAYER=$OUT/layer.md
: > "$LAYER"
for precision in f32 tf32 bf16; do
  for shape in $shapes; do
    "$B/bin/moe-layer-bench" --backend cuda --precision "$precision" \
      --tokens "${shape%%:*}" --dmodel "${shape##*:}" --experts 8,64,512 \
      --k 4 --reps 5 --commit "$COMMIT" --results "$LAYER" \
      >> "$OUT/layer.log" 2>&1 || status=1
  done
done
# One row per configuration: ... | T | d | n | k | MoE ms | dense ms |
# dense GFLOP/s | MoE/dense | routing share | gate share |
while IFS='|' read -r _ _ _ device T d n k moe dense gflops ratio routing _; do
  row "layer T=${T// /} d=${d// /} n=${n// /} k=${k// /}, ${device##*, }" \
    "MoE/dense ${ratio// /} (MoE ${moe// /} ms, dense ${dense// /} ms at ${gflops// /} GFLOP/s), routing ${routing// /}"
done < "$LAYER"

echo "== 4. training tokens/s, small_lstm_moe on CUDA ($(elapsed))"
"$B/bin/moe-run" train "$B/packages/small_lstm_moe" --backend cuda \
  --data "$B/kjv.txt" --steps 300 --log-every 100 \
  --checkpoint-dir "$B/checkpoints" --metrics "$OUT/train.jsonl" \
  > "$OUT/train.log" 2>&1 || status=1
tail -n 4 "$OUT/train.log"
rate=$(grep -Eo '[0-9.]+k tok/s' "$OUT/train.log" | tail -n 1)
ppl=$(grep -Eo 'test perplexity: [0-9.]+' "$OUT/train.log" | tail -n 1)
row "small_lstm_moe training, 300 steps" "${rate:-failed}, ${ppl:-no perplexity}"

echo "== done ($(elapsed))"
echo
cat "$TABLE"
rm -rf "$B"
exit "$status"
