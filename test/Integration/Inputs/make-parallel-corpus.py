#!/usr/bin/env python3
"""Writes a toy English->French corpus in scripts/nmt-corpus.py's layout.

    python3 make-parallel-corpus.py OUT_DIR [--train N] [--held-out N]

OUT_DIR/{train,dev,test}.{en,fr}: sentences of a small grammar ("the red
cat sees the dog" -> "le chat rouge voit le chien": French puts the
adjective after the noun), drawn with a fixed seed, so that a tiny model
learns something in a few dozen steps. The wordpiece model (spm.model) is
the test's to train, with spm_train.
"""

import argparse
import os
import random

NOUNS = {"cat": "chat", "dog": "chien", "bird": "oiseau", "house": "maison",
         "car": "voiture", "tree": "arbre"}
ADJECTIVES = {"red": "rouge", "big": "grand", "small": "petit"}
VERBS = {"sees": "voit", "likes": "aime", "has": "a"}


def pair(rng):
    noun1, noun2 = rng.sample(sorted(NOUNS), 2)
    verb = rng.choice(sorted(VERBS))
    if rng.random() < 0.5:
        adjective = rng.choice(sorted(ADJECTIVES))
        en = f"the {adjective} {noun1} {verb} the {noun2}"
        fr = f"le {NOUNS[noun1]} {ADJECTIVES[adjective]} {VERBS[verb]} le {NOUNS[noun2]}"
    else:
        en = f"the {noun1} {verb} the {noun2}"
        fr = f"le {NOUNS[noun1]} {VERBS[verb]} le {NOUNS[noun2]}"
    return en, fr


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir")
    parser.add_argument("--train", type=int, default=48)
    parser.add_argument("--held-out", type=int, default=8)
    args = parser.parse_args()
    rng = random.Random(16)
    os.makedirs(args.out_dir, exist_ok=True)
    for split, count in (("train", args.train), ("dev", args.held_out),
                         ("test", args.held_out)):
        pairs = [pair(rng) for _ in range(count)]
        for side, index in (("en", 0), ("fr", 1)):
            with open(os.path.join(args.out_dir, f"{split}.{side}"), "w",
                      encoding="utf-8") as f:
                f.writelines(p[index] + "\n" for p in pairs)


if __name__ == "__main__":
    main()
