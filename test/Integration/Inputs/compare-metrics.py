#!/usr/bin/env python3
"""Compares the training losses of two moe-run metrics files step by step
(records with a "loss"), within a relative tolerance. Exits 1 on a
difference beyond it or when the steps differ.

  compare-metrics.py A.jsonl B.jsonl [--rtol R]
"""
import argparse
import json
import sys


def losses(path):
    out = {}
    for line in open(path):
        if line.strip():
            record = json.loads(line)
            if "loss" in record:
                out[record["step"]] = record["loss"]
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--rtol", type=float, default=1e-5)
    args = parser.parse_args()
    a, b = losses(args.a), losses(args.b)
    if sorted(a) != sorted(b) or not a:
        print("FAIL: steps differ: %s vs %s" % (sorted(a), sorted(b)))
        sys.exit(1)
    worst = max(abs(a[s] - b[s]) / max(abs(a[s]), abs(b[s])) for s in a)
    print("%d steps, largest relative loss difference %.3g" % (len(a), worst))
    if worst > args.rtol:
        print("FAIL: beyond rtol %g" % args.rtol)
        sys.exit(1)


if __name__ == "__main__":
    main()
