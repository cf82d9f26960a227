#!/usr/bin/env bash
# Builds, on a CPU machine, everything scripts/gpu-check.sh runs on a GPU
# machine that has the CUDA toolkit but no apt, network, LLVM, OpenBLAS or
# GoogleTest:
#
#   bash scripts/gpu-bundle.sh [BUNDLE]     # default: .gpu/bundle.tar.gz
#
# The bundle holds the standalone runtime built with nvcc for sm_90 (the
# CPU-vs-CUDA tests, the layer benchmark, moe-run and libmoe_rt.so), the
# shared libraries they load that such a machine lacks, CUDA packages of
# the demo and the GPU-size LMs compiled by moe-opt/moe-translate, and the KJV
# corpus. The runtime headers that moe-run compiles a package against travel
# with the working tree. Needs the compiler build (build/, as test.sh makes
# it) for moe-opt and moe-translate.
#
#   BUILD_DIR=build       the compiler build (default: build)
#   GPU_BUILD_DIR=build-gpu   the standalone CUDA runtime build
#   CUDA_ARCH=90          the GPU architectures (default: 90, Hopper)
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build}
GPU_BUILD_DIR=${GPU_BUILD_DIR:-build-gpu}
CUDA_ARCH=${CUDA_ARCH:-90}
BUNDLE=${1:-.gpu/bundle.tar.gz}
JOBS=${JOBS:-$(nproc)}

for tool in moe-opt moe-translate; do
  if [ ! -x "$BUILD_DIR/bin/$tool" ]; then
    echo "gpu-bundle: $BUILD_DIR/bin/$tool is missing: build the compiler" \
      "first (bash scripts/test.sh, or cmake --build $BUILD_DIR)" >&2
    exit 1
  fi
done
if ! command -v nvcc >/dev/null && [ ! -x /usr/local/cuda/bin/nvcc ]; then
  echo "gpu-bundle: nvcc not found: the CUDA toolkit is needed to build" \
    "the GPU runtime" >&2
  exit 1
fi

echo "== runtime for sm_$CUDA_ARCH ($GPU_BUILD_DIR)"
cmake -S runtime -B "$GPU_BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DMOE_ENABLE_MPI=OFF -DMOE_ENABLE_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCH" >/dev/null
cmake --build "$GPU_BUILD_DIR" -j "$JOBS" --target moe-runtime-cuda-tests \
  moe-layer-bench moe-run moe_rt

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/bin" "$STAGE/lib" "$STAGE/packages"
for exe in moe-runtime-cuda-tests moe-layer-bench moe-run; do
  found=$(find "$GPU_BUILD_DIR" -type f -name "$exe" -perm -u+x | head -n 1)
  [ -n "$found" ] || { echo "gpu-bundle: $exe was not built" >&2; exit 1; }
  cp "$found" "$STAGE/bin/"
done
cp "$(find "$GPU_BUILD_DIR" -name libmoe_rt.so | head -n 1)" "$STAGE/lib/"

# The libraries the GPU machine lacks: everything the binaries load from
# outside the CUDA toolkit and the C/C++ runtime.
echo "== shared libraries"
for f in "$STAGE"/bin/* "$STAGE"/lib/libmoe_rt.so; do
  ldd "$f" | awk '/=> \// {print $3}'
done | sort -u | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so* | libm.so* | libdl.so* | librt.so* | libpthread.so* | \
      ld-linux* | libstdc++.so* | libgcc_s.so* | libcuda.so* | \
      libcudart.so* | libcublas*.so* | libnccl.so*) ;;
    *) cp -L "$lib" "$STAGE/lib/" ;;
  esac
done
ls "$STAGE/lib"

echo "== CUDA packages"
# The demo model (launch-bound: small GEMMs) and the GPU-size LM (64
# experts of 512 x 512, batch 128 x 32), both at TF32.
OPTIONS="lr=0.01 warmup-steps=200 constant-steps=200"
BUILD_DIR="$BUILD_DIR" bash scripts/package.sh examples/small_lstm_moe.mlir \
  "$STAGE/packages/small_lstm_moe" "$OPTIONS" cuda
BUILD_DIR="$BUILD_DIR" bash scripts/package.sh examples/gpu_lstm_moe.mlir \
  "$STAGE/packages/gpu_lstm_moe" "lr=0.001 warmup-steps=200" cuda
# The paper's 4096-expert model (1.89B parameters): time to the first step
# (issue 15: within 60 s of launch on one H200).
BUILD_DIR="$BUILD_DIR" bash scripts/package.sh examples/lstm2x512_hmoe4096.mlir \
  "$STAGE/packages/lstm2x512_hmoe4096" "" cuda
echo "== corpus"
bible -l0 "Gen1:1-Rev22:21" | sed -n 's/^ \+[0-9]\+ //p' > "$STAGE/kjv.txt"
wc -l "$STAGE/kjv.txt"

git rev-parse --short HEAD > "$STAGE/commit" 2>/dev/null || echo unknown > "$STAGE/commit"
mkdir -p "$(dirname "$BUNDLE")"
tar -C "$STAGE" -czf "$BUNDLE" .
echo "gpu-bundle: $BUNDLE ($(du -h "$BUNDLE" | cut -f1)); run on the GPU" \
  "machine: bash scripts/gpu-check.sh $BUNDLE"
