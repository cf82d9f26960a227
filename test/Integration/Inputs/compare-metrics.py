#!/usr/bin/env python3
"""Compares the training losses of two moe-run metrics files step by step
(records with a "loss"), within a relative tolerance; --key K compares
field K of those records instead (repeatable, e.g. --key loss --key
perplexity; a list-valued field such as expert_load must be equal). Exits 1 on a difference beyond it or when the steps differ.
With --records, every record instead, in order and exactly, but for the
timings and the directory of the checkpoints (a resumed run against an
uninterrupted one).

  compare-metrics.py A.jsonl B.jsonl [--rtol R] [--key K]... | --records
"""
import argparse
import json
import os
import sys

# "tflops": metrics of moe-run before tflops_per_device and tflops_job.
TIMINGS = ("elapsed_s", "tokens_per_s", "tflops", "tflops_per_device",
           "tflops_job")


def records(path):
    out = []
    for line in open(path):
        if line.strip():
            record = json.loads(line)
            for key in TIMINGS:
                record.pop(key, None)
            if "checkpoint" in record:
                record["checkpoint"] = os.path.basename(record["checkpoint"])
            out.append(record)
    return out


def values(path, key):
    """Field `key` of the training records (those with a loss), by step."""
    out = {}
    for line in open(path):
        if line.strip():
            record = json.loads(line)
            if "loss" in record:
                out[record["step"]] = record[key]
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--rtol", type=float, default=1e-5)
    parser.add_argument("--records", action="store_true")
    parser.add_argument("--key", action="append")
    args = parser.parse_args()
    if args.records:
        a, b = records(args.a), records(args.b)
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                print("FAIL: record %d differs: %s vs %s" % (i, x, y))
                sys.exit(1)
        if len(a) != len(b):
            print("FAIL: %d vs %d records" % (len(a), len(b)))
            sys.exit(1)
        print("%d records alike" % len(a))
        return
    for key in args.key or ["loss"]:
        a, b = values(args.a, key), values(args.b, key)
        if sorted(a) != sorted(b) or not a:
            print("FAIL: steps differ: %s vs %s" % (sorted(a), sorted(b)))
            sys.exit(1)
        # Lists (expert_load's counts) must be equal; numbers within rtol.
        worst = max(0.0 if a[s] == b[s] else float("inf")
                    if isinstance(a[s], list) else
                    abs(a[s] - b[s]) / max(abs(a[s]), abs(b[s])) for s in a)
        print("%d steps, largest relative %s difference %.3g"
              % (len(a), key, worst))
        if worst > args.rtol:
            print("FAIL: beyond rtol %g" % args.rtol)
            sys.exit(1)


if __name__ == "__main__":
    main()
