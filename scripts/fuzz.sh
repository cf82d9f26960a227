#!/usr/bin/env bash
# Runs the libFuzzer targets of tools/fuzz, each for a given time, and fails
# on any crash, sanitizer report, leak or timeout:
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]     (default 600)
#
#   moe-opt-fuzzer, once per pipeline ($MOE_FUZZ_PIPELINE): parse (parse,
#     verify, print), train, train-data-parallel, train-expert-parallel,
#     train-no-optimizer, inference, passes (every pass of moe-opt on its own
#     and moe-translate's emitters on the input)
#   moe-package-fuzzer      moe-run's package manifest reader
#   moe-checkpoint-fuzzer   checkpoint.json + safetensors shards (loadCheckpoint)
#
# The targets are built by clang-19 with -fsanitize=fuzzer,address,undefined
# in FUZZ_BUILD_DIR (only they and what they link). Seeds: examples/, the
# .mlir tests (split at `// -----`), the planned modules and manifests of
# packages compiled by scripts/package.sh, and the checkpoints of a tiny
# model trained for a few steps by moe-run; these need the normal build
# (BUILD_DIR: moe-opt, moe-translate, moe-run), built here if missing.
# Each target's corpus grows in OUT/corpus/<run>; crash inputs land in
# OUT/crashes/<run>/ and reproduce with `[MOE_FUZZ_PIPELINE=<pipeline>]
# FUZZ_BUILD_DIR/bin/<target> <file>` (with the ASAN_OPTIONS below).
#
#   FUZZ_BUILD_DIR=build-fuzz   the instrumented build (default build-fuzz)
#   BUILD_DIR=build             the normal build, for the seeds
#   FUZZ_OUT=DIR                results (default FUZZ_BUILD_DIR/fuzz-results)
#   FUZZ_RUNS="train passes package"   only these runs (names as printed)
#   JOBS=N                      parallel build jobs (default: nproc)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

SECONDS_PER_TARGET=${1:-600}
FUZZ_BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz}
BUILD_DIR=${BUILD_DIR:-build}
OUT=${FUZZ_OUT:-$FUZZ_BUILD_DIR/fuzz-results}
JOBS=${JOBS:-$(nproc)}
PIPELINES="parse train train-data-parallel train-expert-parallel train-no-optimizer inference passes"
RUNS=${FUZZ_RUNS:-$PIPELINES package checkpoint}
start=$(date +%s)

bash scripts/install-deps.sh

echo "== build the fuzz targets ($FUZZ_BUILD_DIR)"
CC=clang-19 CXX=clang++-19 cmake -S . -B "$FUZZ_BUILD_DIR" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMOE_ENABLE_FUZZERS=ON \
  -DMOE_ENABLE_CUDA=OFF -DMOE_ENABLE_MPI=OFF -DMOE_BUILD_TESTS=OFF \
  -DMOE_BUILD_BENCH=OFF >/dev/null
cmake --build "$FUZZ_BUILD_DIR" -j "$JOBS" --target \
  moe-opt-fuzzer moe-package-fuzzer moe-checkpoint-fuzzer
echo "== fuzz build took $(( $(date +%s) - start ))s"

if [ ! -x "$BUILD_DIR/bin/moe-run" ] || [ ! -x "$BUILD_DIR/bin/moe-opt" ] ||
   [ ! -x "$BUILD_DIR/bin/moe-translate" ]; then
  echo "== build the tools for the seeds ($BUILD_DIR)"
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD_DIR" -j "$JOBS" --target moe-opt moe-translate moe-run moe_rt
fi

echo "== seeds"
rm -rf "$OUT"
SEEDS=$OUT/seeds
mkdir -p "$SEEDS/mlir" "$SEEDS/package" "$SEEDS/checkpoint" "$OUT/work"
# Every model and test input, one seed per `// -----` section.
for f in examples/*.mlir $(find test -name '*.mlir' | sort); do
  awk -v out="$SEEDS/mlir/$(echo "$f" | tr / _)" \
    '/^\/\/ -----$/ { n++; next } { print > (out "." n+0) }' "$f"
done
# Packages: their planned modules seed the parser (moe-translate's input),
# their manifests the package reader.
WORK=$OUT/work
python3 test/Integration/Inputs/make-corpus.py "$WORK/corpus.txt" --lines 200
package() { # NAME MODEL OPTIONS
  BUILD_DIR=$BUILD_DIR bash scripts/package.sh "$2" "$WORK/$1" "$3" 2>/dev/null
  cp "$WORK/$1/train.mlir" "$SEEDS/mlir/package-$1.mlir"
  cp "$WORK/$1/manifest.json" "$SEEDS/package/$1.json"
}
package tiny examples/tiny_moe.mlir "lr=0.01 warmup-steps=5"
package tiny-none examples/tiny_moe.mlir "optimizer=none"
package data-parallel test/Integration/Inputs/tiny_topk.mlir "data-parallel=true"
package expert-parallel test/Integration/Inputs/tiny_topk.mlir "expert-parallel=true"
package hmoe test/Integration/Inputs/tiny_hmoe.mlir "lr=0.01"
# Checkpoints of a few training steps, one file per checkpoint directory in
# the fuzzer's format ("==> NAME <==" before each file).
checkpoints() { # NAME PACKAGE [LAUNCHER...]
  local name=$1 pkg=$2
  shift 2
  "$@" "$BUILD_DIR/bin/moe-run" train "$WORK/$pkg" --data "$WORK/corpus.txt" \
    --steps 2 --checkpoint-every 1 --checkpoint-dir "$WORK/ckpt-$name" -q >/dev/null
  for dir in "$WORK/ckpt-$name"/step-*; do
    for file in "$dir"/*; do
      printf '==> %s <==\n' "$(basename "$file")"
      cat "$file"
      printf '\n'
    done > "$SEEDS/checkpoint/$name-$(basename "$dir")"
  done
}
checkpoints tiny tiny
checkpoints expert-parallel expert-parallel
# Two expert shard files.
if command -v mpirun >/dev/null; then
  launcher=(mpirun --oversubscribe -np 2)
  [ "$(id -u)" -eq 0 ] && launcher+=(--allow-run-as-root)
  checkpoints expert-parallel-2 expert-parallel "${launcher[@]}"
fi
echo "$(ls "$SEEDS/mlir" | wc -l) MLIR, $(ls "$SEEDS/package" | wc -l) manifest and $(ls "$SEEDS/checkpoint" | wc -l) checkpoint seeds"

# As scripts/sanitize.sh: LLVM's headers poison BumpPtrAllocator slabs in our
# instrumented code, which the uninstrumented MLIR libraries do not expect.
export ASAN_OPTIONS="allow_user_poisoning=0:detect_leaks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

failed=0
for run in $RUNS; do
  case "$run" in
    package) target=moe-package-fuzzer; seeds=$SEEDS/package; pipeline= ;;
    checkpoint) target=moe-checkpoint-fuzzer; seeds=$SEEDS/checkpoint; pipeline= ;;
    *) target=moe-opt-fuzzer; seeds=$SEEDS/mlir; pipeline=$run ;;
  esac
  dict=()
  [ "$target" = moe-opt-fuzzer ] || dict=(-dict=tools/fuzz/json.dict)
  corpus=$OUT/corpus/$run
  crashes=$OUT/crashes/$run
  log=$OUT/$run.log
  mkdir -p "$corpus" "$crashes"
  rc=0
  MOE_FUZZ_PIPELINE=$pipeline "$FUZZ_BUILD_DIR/bin/$target" \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=60 -print_final_stats=1 "${dict[@]}" \
    -artifact_prefix="$crashes/" "$corpus" "$seeds" > "$log" 2>&1 || rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  cov=$(grep -Eo '(cov|ft): [0-9]+' "$log" | tail -n 2 | tr '\n' ' ')
  found=$(find "$crashes" -type f | wc -l)
  printf '%-24s %8s runs  %s corpus %5s  crashes %s\n' "$run" "${runs:-0}" \
    "${cov:-cov: ?}" "$(ls "$corpus" | wc -l)" "$found"
  if [ "$rc" -ne 0 ] || [ "$found" -ne 0 ]; then
    failed=1
    echo "   rc=$rc; log: $log"
    grep -m 3 -E 'ERROR|runtime error|Test unit written' "$log" | sed 's/^/   /' || true
  fi
done
echo "== fuzz.sh took $(( $(date +%s) - start ))s (results in $OUT)"
exit "$failed"
