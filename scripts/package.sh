#!/usr/bin/env bash
# Compiles a model into a package directory that moe-run runs:
#
#   scripts/package.sh MODEL.mlir OUT_DIR [PIPELINE_OPTIONS] [cpu|cuda]
#
#   PIPELINE_OPTIONS  options of --moe-train-pipeline, e.g.
#                     "lr=0.01 warmup-steps=200" or "optimizer=none"
#   cpu|cuda          step.cpp (default) or step.cu
#
# BUILD_DIR (default build) holds moe-opt and moe-translate.
set -euo pipefail
if [ $# -lt 2 ]; then
  sed -n '2,10p' "$0" >&2
  exit 2
fi
MODEL=$1
OUT=$2
OPTIONS=${3:-}
TARGET=${4:-cpu}
BUILD_DIR=${BUILD_DIR:-build}
case "$TARGET" in
  cpu) SOURCE=step.cpp; TRANSLATION=--moe-to-cpp ;;
  cuda) SOURCE=step.cu; TRANSLATION=--moe-to-cuda ;;
  *) echo "package.sh: target must be cpu or cuda, got '$TARGET'" >&2; exit 2 ;;
esac
mkdir -p "$OUT"
rm -f "$OUT/step.cpp" "$OUT/step.cu"
# On success, the buffer planner's remarks (memory per function) as one
# line each, without the source excerpt; on failure, every diagnostic.
if ! "$BUILD_DIR/bin/moe-opt" --moe-train-pipeline="$OPTIONS" "$MODEL" \
    -o "$OUT/train.mlir" 2> "$OUT/compile.log"; then
  cat "$OUT/compile.log" >&2
  exit 1
fi
awk '/: remark: /{sub(/.*: remark: /, "  "); print}' "$OUT/compile.log" >&2
"$BUILD_DIR/bin/moe-translate" "$TRANSLATION" "$OUT/train.mlir" -o "$OUT/$SOURCE"
"$BUILD_DIR/bin/moe-translate" --moe-to-manifest "$OUT/train.mlir" \
  -o "$OUT/manifest.json"
