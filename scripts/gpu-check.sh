#!/usr/bin/env bash
# The GPU check: one command on a machine with an NVIDIA GPU and the CUDA
# toolkit, from the bundle that scripts/gpu-bundle.sh built on a CPU
# machine (nothing is compiled here but the packages' step.cu, by moe-run):
#
#   bash scripts/gpu-check.sh [BUNDLE] [OUT]   # default .gpu/bundle.tar.gz
#
# Runs, in this order, and prints Markdown tables (also written to
# OUT/gpu-check.md, default gpu-check/, for bench/RESULTS.md):
#   1. the CPU-vs-CUDA equality tests;
#   2. compute-sanitizer memcheck over them, racecheck over the kernels
#      that share memory between threads (top-k selection, sums, softmax);
#   3. the dense GEMM at 8192^3 against the datasheet peak;
#   4. the MoE layer benchmark on the CUDA backend at f32, tf32 and bf16
#      (T 8K/32K, d 512/1024, 8/64/512 experts, k 2/4, uniform and Zipf(1)
#      routing): forward + backward against a dense GEMM of equal FLOPs in
#      the same run;
#   5. moe-run training tokens/s of the demo LM and the GPU-size LM, and
#      the 1.89B-parameter lstm2x512_hmoe4096's time from launch to its
#      first step;
#   6. the PyTorch peers of bench/baselines/ where PyTorch has CUDA: the
#      layer (per-expert loop at tf32, torch._grouped_mm at bf16) and the
#      GPU-size LM, against ours.
# Exits non-zero when a test or a sanitizer fails. On an H200 the tests,
# sanitizers and dense GEMMs take 20 s, the layer grid (72 configurations)
# about a minute, the training runs and the PyTorch peers two more (each
# package's step.cu is compiled by nvcc once).
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

# Datasheet dense peaks (TFLOP/s; SXM parts) for the dense GEMM's share.
case "$GPU" in
  *H200* | *H100*) PEAK_F32=67; PEAK_TF32=494.7; PEAK_BF16=989.4 ;;
  *) PEAK_F32=0; PEAK_TF32=0; PEAK_BF16=0 ;;
esac

echo "== 3. dense GEMM 8192^3 against the datasheet peak ($(elapsed))"
for precision in f32 tf32 bf16; do
  case $precision in
    f32) peak=$PEAK_F32 ;; tf32) peak=$PEAK_TF32 ;; bf16) peak=$PEAK_BF16 ;;
  esac
  line=$("$B/bin/moe-layer-bench" --backend cuda --precision "$precision" \
    --dense-peak 8192 --peak-tflops "$peak" --reps 5 2>&1 | grep dense-peak)
  echo "$line"
  tflops=$(echo "$line" | grep -Eo 'tflops=[0-9.]+' | cut -d= -f2)
  percent=$(echo "$line" | grep -Eo 'percent=[0-9.]+' | cut -d= -f2)
  row "dense GEMM 8192^3, $precision" "${tflops:-failed} TFLOP/s (${percent:-?}% of the datasheet's $peak)"
done

echo "== 4. MoE layer vs dense GEMM on CUDA ($(elapsed))"
if [ "$QUICK" = 1 ]; then
  shapes="8192:512"
else
  shapes="8192:512 32768:1024"
fi
LAYER=$OUT/layer.md
: > "$LAYER"
# Equal segments (a batchwise mask's, strided-batched GEMMs) at the largest
# shape and the tensor-core precisions only, to stay within the time.
for routing in uniform zipf equal; do
  precisions="f32 tf32 bf16" routing_shapes=$shapes
  if [ "$routing" = equal ]; then
    precisions="tf32 bf16" routing_shapes=${shapes##* }
  fi
  for precision in $precisions; do
    for shape in $routing_shapes; do
      "$B/bin/moe-layer-bench" --backend cuda --precision "$precision" \
        --routing "$routing" --tokens "${shape%%:*}" --dmodel "${shape##*:}" \
        --experts 8,64,512 --k 2,4 --reps 3 --commit "$COMMIT" \
        --results "$LAYER" >> "$OUT/layer.log" 2>&1 || status=1
    done
  done
done
# The fused router (what compiled steps run) with its phase breakdown, to
# read against the separate kernels' phases in layer.log.
shape=${shapes##* }
"$B/bin/moe-layer-bench" --backend cuda --precision tf32 --router fused \
  --tokens "${shape%%:*}" --dmodel "${shape##*:}" --experts 8,64,512 --k 4 \
  --reps 3 \
  >> "$OUT/layer-fused-router.log" 2>&1 || status=1
# One table: a row per (T, d, n, k, routing), MoE/dense at each precision,
# and the routing share (outside the expert GEMMs) at tf32.
python3 - "$LAYER" >> "$TABLE" <<'PY'
import sys
cells = {}
for line in open(sys.argv[1]):
    f = [c.strip() for c in line.strip().strip('|').split('|')]
    device, T, d, n, k, ratio, routing_share = f[2], f[3], f[4], f[5], f[6], f[10], f[11]
    precision = device.split('cuda ')[1].split(',')[0]
    routing = 'zipf' if 'zipf' in device else 'equal' if 'equal segments' in device else 'uniform'
    cells.setdefault((int(T), int(d), routing, int(n), int(k)), {})[precision] = (ratio, routing_share)
print()
print('| layer T, d, routing, n, k | MoE/dense f32 | tf32 | bf16 | routing share (tf32) |')
print('|---|---|---|---|---|')
for key in sorted(cells):
    c = cells[key]
    get = lambda p: c.get(p, ('-', '-'))[0]
    print('| %d, %d, %s, %d, %d | %s | %s | %s | %s |' % (key + (get('f32'), get('tf32'), get('bf16'), c.get('tf32', ('-', '-'))[1])))
print()
print('| check | result |')
print('|---|---|')
PY

echo "== 5. training tokens/s with moe-run ($(elapsed))"
train() { # package steps
  "$B/bin/moe-run" train "$B/packages/$1" --backend cuda --data "$B/kjv.txt" \
    --steps "$2" --log-every 50 --checkpoint-dir "$B/checkpoints-$1" \
    --metrics "$OUT/train-$1.jsonl" --overwrite > "$OUT/train-$1.log" 2>&1 || status=1
  tail -n 3 "$OUT/train-$1.log"
  rate=$(grep -Eo '[0-9.]+k tok/s' "$OUT/train-$1.log" | tail -n 1)
  ppl=$(grep -Eo 'test perplexity: [0-9.]+' "$OUT/train-$1.log" | tail -n 1)
  row "$1 training, $2 steps (tf32)" "${rate:-failed} at the last log line, ${ppl:-no perplexity}"
}
train small_lstm_moe 300
train gpu_lstm_moe 200
# Seconds from launch (package compile, initialisation, upload) to the
# first step's metrics record of the 1.89B-parameter model; stopped there.
first_step=$(python3 - "$B" "$OUT" <<'PY'
import json, os, subprocess, sys, time
b, out = sys.argv[1], sys.argv[2]
metrics = os.path.join(out, 'startup-hmoe4096.jsonl')
log = open(os.path.join(out, 'startup-hmoe4096.log'), 'w')
start = time.time()
p = subprocess.Popen([b + '/bin/moe-run', 'train', b + '/packages/lstm2x512_hmoe4096',
                      '--backend', 'cuda', '--data', b + '/kjv.txt', '--steps', '2',
                      '--log-every', '1', '--metrics', metrics, '--overwrite'],
                     stdout=log, stderr=subprocess.STDOUT)
while p.poll() is None and time.time() - start < 150:
    if os.path.exists(metrics):
        for line in open(metrics):
            try:
                record = json.loads(line)
            except ValueError:  # a line still being written
                continue
            if record.get('step') == 1 and 'loss' in record:
                print('%.1f s' % (time.time() - start))
                p.kill()
                sys.exit(0)
    time.sleep(0.2)
p.kill()
print('no first step within %.0f s' % (time.time() - start))
PY
)
row "lstm2x512_hmoe4096: launch to first step (target 60 s)" "$first_step"

echo "== 6. PyTorch peers ($(elapsed))"
if python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
  ours() { # MoE ms of our layer at T d n k precision (uniform routing)
    awk -F'|' -v T="$1" -v d="$2" -v n="$3" -v k="$4" -v p="cuda $5" \
      '$5+0==T && $6+0==d && $7+0==n && $8+0==k && index($4,p) && !index($4,"zipf") && !index($4,"equal") {print $9+0}' \
      "$LAYER" | head -n 1
  }
  for config in "tf32 loop" "bf16 grouped"; do
    set -- $config
    python3 bench/baselines/moe_layer_torch.py --device cuda --tokens 32768 \
      --dmodel 1024 --experts 64,512 --k 4 --precision "$1" --impl "$2" \
      > "$OUT/torch-layer-$1.log" 2>&1 || true
    grep '^torch-layer' "$OUT/torch-layer-$1.log" | while read -r line; do
      n=$(echo "$line" | grep -Eo ' n=[0-9]+' | cut -d= -f2)
      theirs=$(echo "$line" | grep -Eo 'moe_ms=[0-9.]+' | cut -d= -f2)
      mine=$(ours 32768 1024 "$n" 4 "$1")
      speedup=$(python3 -c "print('%.2f' % ($theirs / $mine))" 2>/dev/null || echo "?")
      row "layer vs PyTorch ($2, $1), T=32768 d=1024 n=$n k=4" "ours ${mine:-?} ms, PyTorch ${theirs:-failed} ms: ${speedup}x"
    done
  done
  for config in "tf32 loop" "bf16 grouped"; do
    set -- $config
    python3 bench/baselines/lm_step_torch.py --device cuda --precision "$1" \
      --impl "$2" > "$OUT/torch-lm-$1.log" 2>&1 || true
    rate=$(grep -Eo 'tokens_per_s=[0-9.]+' "$OUT/torch-lm-$1.log" | cut -d= -f2)
    row "GPU-size LM in PyTorch ($2, $1)" "${rate:-failed} tokens/s"
  done
else
  row "PyTorch peers" "no PyTorch with CUDA here"
fi

echo "== done ($(elapsed))"
echo
cat "$TABLE"
rm -rf "$B"
exit "$status"
