#!/usr/bin/env bash
# Runs every test: installs dependencies if missing, builds the compiler and
# the runtime, runs the lit/FileCheck suite (compiler) and ctest (runtime
# unit tests, including the CPU-vs-CUDA tests, which skip without a GPU).
#
#   BUILD_DIR=build   where to build (default: build)
#   JOBS=N            parallel build jobs (default: nproc)
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}

bash scripts/install-deps.sh

echo "== configure ($BUILD_DIR)"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
echo "== build"
start=$(date +%s)
cmake --build "$BUILD_DIR" -j "$JOBS"
echo "== build took $(( $(date +%s) - start ))s"

echo "== lit (compiler tests)"
python3 "$(llvm-config-19 --prefix)/build/utils/lit/lit.py" -sv "$BUILD_DIR/test"

echo "== ctest (unit tests)"
cd "$BUILD_DIR"
ctest --output-on-failure -j "$JOBS" -E '^lit$'
