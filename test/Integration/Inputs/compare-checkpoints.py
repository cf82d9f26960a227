#!/usr/bin/env python3
"""Compares the tensors of two moe-run checkpoints (safetensors files, or
checkpoint directories, whose expert shard files tensors-expert-<r>-of-<R>
are joined in rank order into the global tensors): every tensor present in
both, element by element, within a relative tolerance. Prints the largest
difference; exits 1 when any is too large.

  compare-checkpoints.py A/tensors.safetensors B/tensors.safetensors [--rtol R]
  compare-checkpoints.py A/step-00000020 B/step-00000020 [--rtol R]
"""
import argparse
import json
import os
import re
import struct
import sys

FORMATS = {"F32": "f", "I32": "i", "I64": "q"}


def read(path):
    data = open(path, "rb").read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    body = data[8 + length:]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        code = FORMATS[entry["dtype"]]
        count = (end - begin) // struct.calcsize(code)
        tensors[name] = struct.unpack("<%d%s" % (count, code), body[begin:end])
    return tensors


def read_checkpoint(path):
    if not os.path.isdir(path):
        return read(path)
    tensors = {}
    replicated = os.path.join(path, "tensors.safetensors")
    if os.path.exists(replicated):
        tensors.update(read(replicated))
    shards = {}
    for name in os.listdir(path):
        m = re.fullmatch(r"tensors-expert-(\d+)-of-(\d+)\.safetensors", name)
        if m:
            shards[int(m.group(1))] = read(os.path.join(path, name))
    # A slice of the first dimension per rank: joined in rank order, the
    # flat data is the global tensor's.
    for rank in sorted(shards):
        for name, values in shards[rank].items():
            tensors[name] = tensors.get(name, ()) + values
    return tensors


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--rtol", type=float, default=1e-5)
    parser.add_argument("--atol", type=float, default=1e-7)
    args = parser.parse_args()
    a, b = read_checkpoint(args.a), read_checkpoint(args.b)
    if set(a) != set(b):
        print("FAIL: different tensors: %s" % sorted(set(a) ^ set(b)))
        sys.exit(1)
    worst, where = 0.0, None
    for name in sorted(a):
        if len(a[name]) != len(b[name]):
            print("FAIL: %s has %d vs %d elements" % (name, len(a[name]), len(b[name])))
            sys.exit(1)
        for i, (x, y) in enumerate(zip(a[name], b[name])):
            excess = abs(x - y) - args.atol - args.rtol * max(abs(x), abs(y))
            if excess > worst or where is None:
                worst, where = max(excess, worst), (name, i, x, y)
    name, i, x, y = where
    print("largest difference: %s[%d] %r vs %r" % (name, i, x, y))
    if worst > 0:
        print("FAIL: beyond rtol %g" % args.rtol)
        sys.exit(1)
    print("all %d tensors within rtol %g" % (len(a), args.rtol))


if __name__ == "__main__":
    main()
