#!/usr/bin/env python3
"""Checks a moe-run metrics file (JSON Lines) of a training run: the loss
fell, the final test perplexity beat the unigram baseline, and every record
has the fields the driver promises (evaluations: the experts' tokens). Prints what it checked; exits 1 on a
failed check.

  check-metrics.py METRICS.jsonl [--max-loss-ratio R]
"""
import argparse
import json
import math
import sys


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("metrics")
    parser.add_argument("--max-loss-ratio", type=float, default=0.8,
                        help="last logged loss / first logged loss must be below this")
    args = parser.parse_args()
    records = [json.loads(line) for line in open(args.metrics) if line.strip()]
    train = [r for r in records if "loss" in r]
    final = [r for r in records if r.get("final")]
    failures = []
    if len(train) < 2:
        failures.append("fewer than two training records")
    for r in train:
        for key in ("step", "loss", "perplexity", "lr", "tokens_per_s",
                    "tflops_per_device", "tflops_job", "expert_load",
                    "elapsed_s"):
            if key not in r:
                failures.append("record at step %s has no %s" % (r.get("step"), key))
        if not math.isfinite(r["loss"]):
            failures.append("loss at step %d is %r" % (r["step"], r["loss"]))
        for plan in r.get("expert_load", []):
            if sum(plan) <= 0:
                failures.append("no tokens routed at step %d" % r["step"])
    if train:
        first, last = train[0]["loss"], train[-1]["loss"]
        print("loss: first %.4f (step %d), last %.4f (step %d), ratio %.3f"
              % (first, train[0]["step"], last, train[-1]["step"], last / first))
        if not last < args.max_loss_ratio * first:
            failures.append("the loss did not fall enough (%.4f -> %.4f)" % (first, last))
    # Evaluations count the experts' tokens too, per dispatch plan of the
    # evaluation copy (one per plan of the training step).
    for r in records:
        if r.get("split") != "test":
            continue
        plans = r.get("expert_load")
        if plans is None:
            failures.append("evaluation at step %s has no expert_load" % r.get("step"))
            continue
        if train and len(plans) != len(train[-1].get("expert_load", [])):
            failures.append("evaluation at step %s has %d dispatch plans, training %d"
                            % (r["step"], len(plans), len(train[-1]["expert_load"])))
        for plan in plans:
            if sum(plan) <= 0:
                failures.append("no tokens routed in the evaluation at step %s" % r["step"])
    if len(final) != 1:
        failures.append("expected one final record, got %d" % len(final))
    else:
        f = final[0]
        print("test perplexity %.3f, unigram %.3f"
              % (f["test_perplexity"], f["unigram_perplexity"]))
        if not f["test_perplexity"] < f["unigram_perplexity"]:
            failures.append("test perplexity is not below the unigram baseline")
    for failure in failures:
        print("FAIL: " + failure)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
