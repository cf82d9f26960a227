# Sourced by the bench scripts. OpenBLAS falls back to its SSE3 "Prescott"
# kernels on CPU models it does not know (virtual CPUs with generic names):
# 4x slower sgemm on the AVX-512 CI machines. Name the core from the CPU's
# features, as moe-run does; a value the caller set is kept.
#
#   choose_openblas_core BINARY [ARGS...]   # runs BINARY ARGS to probe
choose_openblas_core() {
  [[ -n "${OPENBLAS_CORETYPE:-}" ]] && return 0
  # The probe may exit non-zero; under pipefail `probe | grep -q` would take
  # its exit status, so its output is captured first.
  local probe
  probe="$(OPENBLAS_VERBOSE=2 "$@" 2>&1 || true)"
  [[ "$probe" == *"Core: Prescott"* ]] || return 0
  if grep -q avx512bw /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX
  elif grep -q avx2 /proc/cpuinfo; then export OPENBLAS_CORETYPE=Haswell; fi
}
