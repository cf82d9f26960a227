#!/usr/bin/env bash
# The main job: installs dependencies, builds moe-compiler and compiles the
# paper's example models, printing for each what the paper's Table 3
# reports (parameters and multiply-adds per word, with and without the
# input/output layers). Then compiles the small LSTM-MoE language model into
# its training step (forward, backward, Adam) and shows what the step is
# made of and how much memory it plans.
#
# Training the compiled models on the King James Bible (`moe-run train`)
# arrives with the code generator; see docs/ARCHITECTURE.md for the status.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build}

bash scripts/install-deps.sh
echo "== build"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" --target moe-opt

MOE_OPT="$BUILD_DIR/bin/moe-opt"
for model in examples/*.mlir; do
  echo "== $model"
  "$MOE_OPT" --moe-model-summary -o /dev/null "$model"
done

MODEL=examples/small_lstm_moe.mlir
STEP="$BUILD_DIR/small_lstm_moe.train.mlir"
echo "== $MODEL -> training step ($STEP)"
"$MOE_OPT" --moe-train-pipeline="lr=0.01 warmup-steps=200 constant-steps=200" \
  "$MODEL" -o "$STEP"
echo "ops in @small_lstm_moe_train_step, by kind:"
sed -n '/func.func @small_lstm_moe_train_step/,/^  }/p' "$STEP" |
  grep -o '= [a-z_]*\.[a-z_]*' | sed 's/= //' | sort | uniq -c | sort -rn
