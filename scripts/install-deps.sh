#!/usr/bin/env bash
# Installs everything moe-compiler needs from Debian's packages. Idempotent:
# packages already present are skipped by apt, and `apt-get update` runs only
# when something is missing.
set -euo pipefail

PACKAGES=(
  # Build tools.
  cmake ninja-build g++ python3 pkg-config
  # Compiler: LLVM/MLIR 19 (mlir-tblgen, FileCheck, lit live in its prefix).
  llvm-19-dev libmlir-19-dev mlir-19-tools llvm-19-tools
  # Runtime: BLAS, MPI, tests, JSON, SHA-256 for checkpoints, moe-run's
  # command line.
  libopenblas-dev libopenmpi-dev openmpi-bin libgtest-dev nlohmann-json3-dev
  libssl-dev libcli11-dev
  # The fuzz targets (scripts/fuzz.sh, run briefly by CI): clang with
  # libFuzzer and the sanitizer runtimes, and its OpenMP for the runtime.
  clang-19 libclang-rt-19-dev libomp-19-dev
  # Demo corpus: the King James Bible (`bible -l0 "Gen1:1-Rev22:21"`).
  bible-kjv
  # Translation model: SentencePiece wordpieces (the library for
  # runtime/data, spm_train for scripts/nmt-corpus.py).
  libsentencepiece-dev sentencepiece
  # scripts/lm-sweep.py's plot of perplexity against experts.
  gnuplot-nox
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"
