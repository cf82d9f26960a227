#!/usr/bin/env bash
# Builds expert-parallel-bench and runs it under mpirun with 1, 2 and 4 ranks,
# adding one row per rank count to the "Expert-parallel MoE layer steps" table
# of bench/RESULTS.md (device, date, commit). A run whose result differs from
# the single-rank reference fails the script and adds no row.
#
#   bench/run_expert_parallel.sh               # T=2048/rank, d=512, n=64, k=4
#   bench/run_expert_parallel.sh --skew 1      # extra flags go to the bench
#   bench/run_expert_parallel.sh --hidden 1024 # FFN experts (activateRows)
#   NPS="2 4" bench/run_expert_parallel.sh     # other rank counts
#
# BUILD_DIR picks the build directory (default: build-bench in the repo, as
# bench/run.sh; the top-level build/ works too). Needs the MPI collectives
# (libopenmpi-dev): the target exists only when CMake found MPI.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$repo/build-bench}"
jobs="${JOBS:-2}"
nps="${NPS:-1 2 4}"
results="$repo/bench/RESULTS.md"
heading="## Expert-parallel MoE layer steps over MPI ranks"

if [[ ! -f "$build/build.ninja" && ! -f "$build/Makefile" ]]; then
  generator=()
  command -v ninja >/dev/null && generator=(-G Ninja)
  cmake -S "$repo/runtime" -B "$build" "${generator[@]}" \
    -DCMAKE_BUILD_TYPE=Release -DMOE_BUILD_BENCH=ON
fi
if ! cmake --build "$build" --target expert-parallel-bench -j "$jobs"; then
  echo "run_expert_parallel.sh: cannot build expert-parallel-bench; it is" \
    "defined only when CMake found MPI (install libopenmpi-dev and" \
    "reconfigure)" >&2
  exit 1
fi
# A standalone runtime build puts it in bench/, the top-level build in bin/.
bin="$build/bench/expert-parallel-bench"
[[ -x "$bin" ]] || bin="$build/bin/expert-parallel-bench"

source "$repo/bench/openblas-core.sh"
choose_openblas_core "$bin" --help
# Idle OpenMP workers sleep instead of spinning: ranks share the cores.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"

# Open MPI: more ranks than cores need --oversubscribe, root needs
# --allow-run-as-root, and its default binding (a core per rank for up to 2
# ranks) would pin rank 0's multi-threaded single-rank baseline to one core.
mpirun_flags=()
if mpirun --version 2>/dev/null | grep -q "Open MPI\|OpenRTE"; then
  mpirun_flags=(--oversubscribe --bind-to none -x OMP_WAIT_POLICY)
  [[ -n "${OPENBLAS_CORETYPE:-}" ]] && mpirun_flags+=(-x OPENBLAS_CORETYPE)
  [[ "$(id -u)" == 0 ]] && mpirun_flags+=(--allow-run-as-root)
fi

commit="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git -C "$repo" status --porcelain -- runtime bench 2>/dev/null)" ]]; then
  commit="$commit+dirty"
fi

rows="$(mktemp)"
trap 'rm -f "$rows" "$rows.md"' EXIT
for np in $nps; do
  echo "== mpirun -np $np (OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset})"
  mpirun "${mpirun_flags[@]}" -np "$np" "$bin" --commit "$commit" \
    --results "$rows" "$@"
  echo
done

# The table goes under its own heading, created at the end of the file on
# the first run; rows are added at the end of that table (not of the file,
# which other sections may follow).
if ! grep -qxF "$heading" "$results"; then
  cat >>"$results" <<EOF

$heading

| date | commit | device | R | T/rank | d | n | k | expert | skew | step ms | synced ms | exchange ms | exchange share | expert GFLOP/s | 1-rank ms | 1-rank GFLOP/s | speed-up | ideal | max err |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
EOF
fi
awk -v heading="$heading" -v rowsfile="$rows" '
  { line[NR] = $0 }
  END {
    for (h = 1; h <= NR && line[h] != heading; ++h) {}
    for (t = h + 1; t <= NR && line[t] !~ /^\|/; ++t)
      if (line[t] ~ /^## /) t = NR + 1
    if (t > NR) { print "no table under " heading > "/dev/stderr"; exit 1 }
    for (e = t; e + 1 <= NR && line[e + 1] ~ /^\|/; ++e) {}
    for (i = 1; i <= e; ++i) print line[i]
    while ((getline row < rowsfile) > 0) print row
    for (i = e + 1; i <= NR; ++i) print line[i]
  }' "$results" >"$rows.md"
cat "$rows.md" >"$results"
echo "added $(wc -l <"$rows") row(s) to $results"
