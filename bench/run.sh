#!/usr/bin/env bash
# Builds the runtime's benchmarks and runs the MoE layer benchmark, appending
# one row per configuration to bench/RESULTS.md (device, date, commit).
#
#   bench/run.sh                      # default shapes (paper 5.1 style)
#   bench/run.sh --experts 64 --k 4   # extra flags go to moe-layer-bench
#
# BUILD_DIR picks the build directory (default: build-bench in the repo).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$repo/build-bench}"
jobs="${JOBS:-2}"

if [[ ! -f "$build/build.ninja" && ! -f "$build/Makefile" ]]; then
  generator=()
  command -v ninja >/dev/null && generator=(-G Ninja)
  cmake -S "$repo/runtime" -B "$build" "${generator[@]}" \
    -DCMAKE_BUILD_TYPE=Release -DMOE_BUILD_BENCH=ON
fi
cmake --build "$build" --target moe-layer-bench -j "$jobs"

source "$repo/bench/openblas-core.sh"
# `--reps` without a value makes the bench stop at once, after OpenBLAS loaded.
choose_openblas_core "$build/bench/moe-layer-bench" --reps

commit="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git -C "$repo" status --porcelain -- runtime bench 2>/dev/null)" ]]; then
  commit="$commit+dirty"
fi

"$build/bench/moe-layer-bench" --commit "$commit" \
  --results "$repo/bench/RESULTS.md" "$@"
