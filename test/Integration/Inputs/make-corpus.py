#!/usr/bin/env python3
"""Writes a small synthetic corpus with learnable structure for the
integration tests: sentences from a tiny grammar over ~40 words (the tiny
test models have a 50-word vocabulary), deterministic for a given seed.

  make-corpus.py OUT [--lines N] [--seed S] [--documents D]

--documents D puts a blank line after every N/D lines: D documents for
moe-run --test-split documents.
"""
import argparse
import random

SUBJECTS = ["the king", "the people", "a man", "his son", "the prophet",
            "the lord", "my servant", "the children"]
VERBS = ["spake unto", "went unto", "saw", "blessed", "smote", "heard"]
OBJECTS = ["the city", "the land", "his house", "the river", "the mountain",
           "the people", "the king"]
ENDINGS = ["in the morning", "by night", "and they were afraid",
           "and it was good", "for ever"]


def sentence(rng):
    words = [rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS)]
    if rng.random() < 0.6:
        words.append(rng.choice(ENDINGS))
    text = " ".join(words)
    return text[0].upper() + text[1:] + rng.choice([".", ";", ":"])


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out")
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--documents", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with open(args.out, "w") as f:
        per_document = max(1, args.lines // max(1, args.documents))
        for i in range(args.lines):
            if i and i % per_document == 0:
                f.write("\n")
            f.write(sentence(rng) + "\n")


if __name__ == "__main__":
    main()
