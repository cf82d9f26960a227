#!/usr/bin/env bash
# Crash trial (issue 14): SIGKILLs `moe-run train` of a tiny model on a
# small corpus, checkpointing every 20 steps, at N random moments (about a
# third aimed at checkpoint writes), resumes it with --resume latest after
# each kill, and checks that every visible checkpoint loads, every resumed
# run ends with the final checkpoint and metrics of an uninterrupted run,
# and nothing is left behind. Prints a summary; exits 1 on any failure.
#
#   scripts/crash-trial.sh [N=100]
#
#   BUILD_DIR=build   holds bin/moe-opt, bin/moe-translate and bin/moe-run
#   WORK=DIR          where to work (default: a fresh temporary directory,
#                     removed afterwards when the trial passes)
# scripts/crash-trial.py --help lists the trial's own options.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100}
export BUILD_DIR=${BUILD_DIR:-build}
KEEP_WORK=${WORK:+1}
WORK=${WORK:-$(mktemp -d /tmp/moe-crash-trial.XXXXXX)}
mkdir -p "$WORK"
# A private compile cache, so the trial measures moe-run, not the compiler.
export MOE_RUN_CACHE="$WORK/cache"

python3 test/Integration/Inputs/make-corpus.py "$WORK/corpus.txt" --lines 500
bash scripts/package.sh examples/tiny_moe.mlir "$WORK/pkg" \
  "lr=0.01 warmup-steps=10" 2>/dev/null
status=0
python3 scripts/crash-trial.py --moe-run "$BUILD_DIR/bin/moe-run" \
  --package "$WORK/pkg" --data "$WORK/corpus.txt" --work "$WORK" -n "$N" ||
  status=$?
if [ "$status" -eq 0 ] && [ -z "$KEEP_WORK" ]; then
  rm -rf "$WORK"
else
  echo "work directory: $WORK"
fi
exit "$status"
