#!/usr/bin/env python3
"""Checks the output of scripts/lm-sweep.py --mini in WORK: every model has
a finite test perplexity below its unigram baseline's (it trained), and
WORK/perplexity.png is a PNG image.

  check-sweep.py WORK
"""
import json
import math
import os
import sys


def main():
    work = sys.argv[1]
    with open(os.path.join(work, "results.json")) as f:
        results = json.load(f)["results"]
    assert len(results) == 2, results
    for r in results:
        ppl, unigram = r.get("test_ppl"), r.get("unigram_ppl")
        assert ppl is not None and math.isfinite(ppl), r
        assert 1.0 < ppl < unigram, r
        assert r["params"] > r["params_no_io"] > 0, r
        assert r["macs"] > r["macs_no_io"] > 0, r
    with open(os.path.join(work, "perplexity.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n", "not a PNG"
    print("check-sweep: %d models, perplexities %s" % (
        len(results), ", ".join("%.2f" % r["test_ppl"] for r in results)))


if __name__ == "__main__":
    main()
