#!/usr/bin/env python3
"""Checks the table of scripts/nmt-sweep.py --mini (test/Integration/
nmt-sweep.test): rows for 0, 8, 32 and 128 experts and the copy floor,
finite numbers, equal compute per word but for the gate, and every model
above the floor.

    python3 check-sweep-table.py TABLE.md
"""

import math
import sys

D = 16          # the --mini model width
STEPS = 200     # the --mini training steps
DENSE_HIDDEN = 32


def number(cell):
    return float(cell.replace(",", "").replace(" s", ""))


def main():
    lines = open(sys.argv[1]).read().splitlines()
    cells = [[c.strip() for c in line.strip("|").split("|")]
             for line in lines[2:]]
    models = {int(row[1].split()[0]): row for row in cells[:-1]}
    assert sorted(models) == [0, 8, 32, 128], models
    copy = cells[-1]
    assert copy[0] == "copy the source", copy
    floor = number(copy[9])
    assert 0 <= floor <= 100, floor
    dense = models[0]
    for experts, row in models.items():
        params, core_params, macs, core_macs, steps, seconds, ppl, bleu = (
            number(c) for c in row[2:10])
        assert all(math.isfinite(v) for v in (params, macs, ppl, bleu)), row
        assert steps == STEPS, row
        assert seconds >= 0, row
        assert 1 < ppl < 48, row  # below a uniform guess over 48 pieces
        assert floor < bleu <= 100, row
        if experts:
            # Same expert compute as the dense ffn; the gate adds 2 x D x n.
            assert macs - number(dense[4]) == 2 * D * experts, row
            assert core_macs - number(dense[5]) == 2 * D * experts, row
            # n experts of D x 8 x 2 and the gate's 2 x D x n replace the
            # dense ffn's 2 x D x 32.
            expected = (number(dense[2]) - 2 * D * DENSE_HIDDEN
                        + experts * (2 * D * 8) + 2 * D * experts)
            assert params == expected, (row, expected)
    print("ok")


if __name__ == "__main__":
    main()
