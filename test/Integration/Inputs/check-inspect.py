#!/usr/bin/env python3
"""Checks the report of `moe-run inspect` beyond its line structure.

  check-inspect.py OUTPUT --experts S [--groups G] --contexts C --window W
                   [--words N] [--complete]

S expert sections (G group sections) must follow the header, most used
first; each lists 1..C distinct contexts of 1..W+1 words, gates in (0, 1],
highest first, the first at least the section's mean gate; the shares add
up to the stated percentages, and with --complete (every expert shown) the
sections' assignments add up to the total.
"""
import argparse
import re
import sys

HEADER = re.compile(r"^layer \d+ of \d+: (\d+) experts.*; (\d+) words of the "
                    r"(test|train) split \((\d+) batches\), checkpoint step \d+$")
SECTION = re.compile(r"^(expert|primary group) (\d+)(?: \((?:group (\d+)|"
                     r"experts (\d+)-(\d+))\))?: (\d+) of (\d+) assignments "
                     r"\(([0-9.]+)%\), mean gate ([0-9.]+)$")
CONTEXT = re.compile(r"^  ([0-9.]+)  (.+?)(?:  \(x(\d+)\))?$")


def fail(message):
    sys.exit("check-inspect.py: " + message)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("output")
    parser.add_argument("--experts", type=int, required=True)
    parser.add_argument("--groups", type=int, default=0)
    parser.add_argument("--contexts", type=int, required=True)
    parser.add_argument("--window", type=int, required=True)
    parser.add_argument("--words", type=int)
    parser.add_argument("--complete", action="store_true")
    args = parser.parse_args()

    lines = open(args.output).read().splitlines()
    header = HEADER.match(lines[0]) if lines else None
    if not header:
        fail("no header line: %r" % (lines[:1],))
    experts = int(header.group(1))
    if args.words is not None and int(header.group(2)) != args.words:
        fail("%s words, expected %d" % (header.group(2), args.words))

    sections = []
    for line in lines[1:]:
        m = SECTION.match(line)
        if m:
            sections.append({"kind": m.group(1), "id": int(m.group(2)),
                             "group": m.group(3), "first": m.group(4),
                             "last": m.group(5), "count": int(m.group(6)),
                             "total": int(m.group(7)),
                             "share": float(m.group(8)),
                             "mean": float(m.group(9)), "contexts": []})
            continue
        m = CONTEXT.match(line)
        if m and sections:
            sections[-1]["contexts"].append(
                (float(m.group(1)), m.group(2), int(m.group(3) or 1)))
        elif line and not line.startswith("top "):
            fail("unexpected line: %r" % line)

    kinds = [s["kind"] for s in sections]
    expected = ["expert"] * args.experts + ["primary group"] * args.groups
    if kinds != expected:
        fail("sections %s, expected %s" % (kinds, expected))
    for kind in ("expert", "primary group"):
        part = [s for s in sections if s["kind"] == kind]
        counts = [s["count"] for s in part]
        if counts != sorted(counts, reverse=True):
            fail("%s sections not most used first: %s" % (kind, counts))
        if len({s["id"] for s in part}) != len(part):
            fail("a %s is shown twice" % kind)
        if args.complete and kind == "expert" and part and \
                sum(counts) != part[0]["total"]:
            fail("the experts' assignments %s do not add up to %d" %
                 (counts, part[0]["total"]))
    groups = args.groups
    for s in sections:
        name = "%s %d" % (s["kind"], s["id"])
        if abs(100.0 * s["count"] / s["total"] - s["share"]) > 0.051:
            fail("%s: share %.1f%% of %d/%d" % (name, s["share"], s["count"],
                                                s["total"]))
        if s["kind"] == "primary group":
            per = experts // max(groups, 1)
            if (int(s["first"]), int(s["last"])) != \
                    (s["id"] * per, s["id"] * per + per - 1):
                fail("%s: experts %s-%s" % (name, s["first"], s["last"]))
        elif s["group"] is not None and groups and \
                int(s["group"]) != s["id"] // (experts // groups):
            fail("%s: group %s" % (name, s["group"]))
        contexts = s["contexts"]
        if not 1 <= len(contexts) <= args.contexts:
            fail("%s: %d contexts" % (name, len(contexts)))
        gates = [c[0] for c in contexts]
        if gates != sorted(gates, reverse=True):
            fail("%s: gates not highest first: %s" % (name, gates))
        if not all(0 < g <= 1 for g in gates) or not 0 < s["mean"] <= 1:
            fail("%s: a gate outside (0, 1]" % name)
        if gates[0] + 5e-4 < s["mean"]:
            fail("%s: top gate %.4f below the mean %.3f" % (name, gates[0],
                                                            s["mean"]))
        texts = [c[1] for c in contexts]
        if len(set(texts)) != len(texts):
            fail("%s: a context twice: %s" % (name, texts))
        for text in texts:
            if not 1 <= len(text.split(" ")) <= args.window + 1:
                fail("%s: context %r is not 1 to %d words" %
                     (name, text, args.window + 1))
        if sum(c[2] for c in contexts) > s["count"]:
            fail("%s: contexts seen more often than its assignments" % name)
    print("check-inspect.py: %d sections ok" % len(sections))


if __name__ == "__main__":
    main()
