#!/usr/bin/env bash
# The main job: installs dependencies, builds moe-compiler, prints what the
# paper's Table 3 reports for every example model, then compiles the small
# LSTM-MoE language model (examples/small_lstm_moe.mlir) into its training
# step, trains it on the King James Bible on the CPU for a few minutes and
# prints its test perplexity next to the unigram baseline's.
#
#   BUILD_DIR=build   where to build (default: build)
#   STEPS=2000        training steps (320 words each)
#   MINUTES=6         stop training after this long at the latest
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build}
STEPS=${STEPS:-2000}
MINUTES=${MINUTES:-6}
WORK="$BUILD_DIR/demo"

bash scripts/install-deps.sh
echo "== build"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" --target moe-opt moe-translate moe-run

MOE_OPT="$BUILD_DIR/bin/moe-opt"
for model in examples/*.mlir; do
  echo "== $model"
  "$MOE_OPT" --moe-model-summary -o /dev/null "$model"
done

mkdir -p "$WORK"
CORPUS="$WORK/kjv.txt"
echo "== corpus: the King James Bible (bible-kjv), one verse per line"
# Verse lines are indented and numbered; chapter headings are not.
bible -l0 "Gen1:1-Rev22:21" | sed -n 's/^ \+[0-9]\+ //p' > "$CORPUS"
echo "$(wc -l < "$CORPUS") verses, $(wc -w < "$CORPUS") words in $CORPUS"

MODEL=examples/small_lstm_moe.mlir
PACKAGE="$WORK/small_lstm_moe"
echo "== compile $MODEL -> $PACKAGE (training step, evaluation copy, C++)"
BUILD_DIR="$BUILD_DIR" bash scripts/package.sh "$MODEL" "$PACKAGE" \
  "lr=0.01 warmup-steps=200 constant-steps=200"
"$BUILD_DIR/bin/moe-run" info "$PACKAGE"

echo "== train on $CORPUS (CPU, $STEPS steps or $MINUTES minutes)"
rm -rf "$WORK/checkpoints"
"$BUILD_DIR/bin/moe-run" train "$PACKAGE" --data "$CORPUS" \
  --steps "$STEPS" --max-minutes "$MINUTES" --log-every 100 \
  --checkpoint-dir "$WORK/checkpoints" --metrics "$WORK/metrics.jsonl" \
  --overwrite

echo "== sample from the trained model"
"$BUILD_DIR/bin/moe-run" generate "$PACKAGE" --data "$CORPUS" \
  --checkpoint "$(ls -d "$WORK"/checkpoints/step-* | tail -n 1)" \
  --prompt "And God said" --words 25 --temperature 0.8
