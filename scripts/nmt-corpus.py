#!/usr/bin/env python3
"""Builds an English->French parallel corpus from installed gettext catalogs.

    python3 scripts/nmt-corpus.py OUT_DIR [--locale-dir DIR] [--vocab-size N]

Reads every compiled catalog DIR/*.mo (default: the French catalogs of the
Debian image, /usr/share/locale/fr/LC_MESSAGES) and writes to OUT_DIR:

  {train,dev,test}.{en,fr}  one message per line, line i of .en translated by
                            line i of .fr (UTF-8)
  catalogs.tsv              catalog, family, split, entries read, pairs kept
  spm.model, spm.vocab      a shared SentencePiece vocabulary trained on
                            train.en + train.fr (unless --no-wordpieces)

Standard library only; the .mo format is parsed here rather than through
msgunfmt (whose output would need a .po parser, and which re-wraps lines).

Which entries become pairs, and why:
  - The header (empty msgid) and empty translations are dropped. Compiled
    catalogs normally hold no fuzzy entries (msgfmt leaves them out unless
    run with --use-fuzzy, and no fuzzy flag survives compilation), so there
    is nothing left to detect for them.
  - A msgctxt ("context\\x04msgid") is dropped: it disambiguates for the
    program, it is not text to translate.
  - Plural entries keep the singular: msgid's first form with msgstr[0].
  - Whitespace runs, line breaks included, become one space (the files are
    one message a line); that also turns French's no-break spaces before
    ':', ';', '!', '?' into plain ones, as sacreBLEU's tokenizer would.
  - GTK mnemonic underscores ("_Open" -> "_Ouvrir", "Cu_t" -> "Co_uper") are
    removed when the msgid and the msgstr hold exactly one underscore before
    a letter or digit each and the two underscored words differ: a
    translator moves a mnemonic with the word but copies an identifier
    ("query_info", "it_lld") verbatim, and identifiers keep their
    underscores. '&' is left alone: no catalog here uses Qt-style '&'
    accelerators, and its uses are XML entities ("&lt;") or plain text.
  - Format-only entries are dropped: a msgid without a letter once printf
    directives ("%s", "%1$-10lu", "%pB") are removed ("%s: %s", "(%d)") has
    nothing to translate.
  - Pairs are deduplicated (exact English and French); see the split below
    for which copy is kept.

The split is by catalog family, so that no catalog, nor a version of it
(gtk20 and gtk30, iso_639-3 and iso_639_3), is in two splits: the families
are ordered by a hash of their names (SHA-256, so the order is the same on
every machine), and walked in that order, each going to test while test
holds under 10% of the pairs and would not pass 12% with it, then to dev
likewise, else to train. A pair that occurs in two splits is kept in the
held-out one (test before dev before train), so no test or dev pair is
trained on.

Other machines have other catalogs: the script lists the ones it used and
warns when there are few; it fails only when no pair at all is found.
"""

import argparse
import codecs
import hashlib
import os
import re
import shutil
import struct
import subprocess
import sys
import time

DEFAULT_LOCALE_DIR = "/usr/share/locale/fr/LC_MESSAGES"
SPLITS = ("train", "dev", "test")
HELD_OUT_FRACTION = 0.10
HELD_OUT_MAX_FRACTION = 0.12
# Fewer catalogs than this: held-out splits will be small or empty.
FEW_CATALOGS = 10

MO_MAGIC_LE = 0x950412DE

# A printf directive: %%, or % [n$] [flags] [width] [.precision] [length]
# conversion, and glibc's/binutils' %pB-style pointer extensions.
PRINTF_DIRECTIVE = re.compile(
    r"%(?:%|(?:\d+\$)?[-+ #0']*(?:\*|\d+)?(?:\.(?:\*|\d+))?"
    r"(?:hh|h|ll|l|L|q|j|z|t|I64|I32)?(?:p[A-Za-z]|[diouxXeEfFgGaAcspnmCS]))")
# One underscore starting or inside a word: a possible GTK mnemonic.
MNEMONIC = re.compile(r"_(?=\w)")


class CatalogError(Exception):
    pass


def read_mo(path):
    """The (msgid, msgstr) byte strings of a .mo file and its charset.

    Raises CatalogError when the file is not a .mo file or is truncated.
    Only the static string tables are read: revision 1 files may add
    system-dependent strings (<PRIu64> segments), which are skipped.
    """
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 28:
        raise CatalogError("shorter than a .mo header")
    (magic,) = struct.unpack("<I", data[:4])
    if magic == MO_MAGIC_LE:
        order = "<"
    elif struct.unpack(">I", data[:4])[0] == MO_MAGIC_LE:
        order = ">"
    else:
        raise CatalogError("not a .mo file (bad magic number)")
    revision, count, ids_at, strs_at = struct.unpack(order + "4I", data[4:20])
    if revision >> 16 > 1:
        raise CatalogError(f"unsupported .mo revision {revision >> 16}")

    def string(table, i):
        at = table + 8 * i
        if at + 8 > len(data):
            raise CatalogError("truncated string table")
        length, offset = struct.unpack(order + "2I", data[at:at + 8])
        if offset + length > len(data):
            raise CatalogError("string past the end of the file")
        return data[offset:offset + length]

    entries = [(string(ids_at, i), string(strs_at, i)) for i in range(count)]
    charset = "utf-8"
    for msgid, msgstr in entries:
        if msgid == b"":
            m = re.search(rb"charset=([-\w.:]+)", msgstr)
            if m:
                charset = m.group(1).decode("ascii")
    try:
        codecs.lookup(charset)
    except LookupError:
        raise CatalogError(f"unknown charset {charset}")
    return entries, charset


def one_line(text):
    return " ".join(text.split())


def strip_mnemonics(en, fr):
    """Removes a GTK mnemonic underscore from both sides (see the docstring)."""
    en_marks = list(MNEMONIC.finditer(en))
    fr_marks = list(MNEMONIC.finditer(fr))
    if len(en_marks) != 1 or len(fr_marks) != 1:
        return en, fr

    def word(text, at):
        begin = at
        while begin > 0 and not text[begin - 1].isspace():
            begin -= 1
        end = at
        while end < len(text) and not text[end].isspace():
            end += 1
        return text[begin:end]

    en_at, fr_at = en_marks[0].start(), fr_marks[0].start()
    if word(en, en_at) == word(fr, fr_at):
        return en, fr
    return en[:en_at] + en[en_at + 1:], fr[:fr_at] + fr[fr_at + 1:]


def is_format_only(text):
    return not any(c.isalpha() for c in PRINTF_DIRECTIVE.sub("", text))


def catalog_pairs(entries, charset, stats):
    """The cleaned, deduplicated (en, fr) pairs of one catalog, in file order."""
    pairs, seen = [], set()
    for msgid, msgstr in entries:
        if msgid == b"":
            continue
        msgid = msgid.split(b"\x04", 1)[-1]
        msgid = msgid.split(b"\x00", 1)[0]
        msgstr = msgstr.split(b"\x00", 1)[0]
        try:
            en = msgid.decode(charset)
            fr = msgstr.decode(charset)
        except UnicodeDecodeError:
            stats["undecodable"] += 1
            continue
        en, fr = strip_mnemonics(one_line(en), one_line(fr))
        if not en or not fr:
            stats["empty"] += 1
            continue
        if is_format_only(en):
            stats["format-only"] += 1
            continue
        if (en, fr) in seen:
            stats["duplicate"] += 1
            continue
        seen.add((en, fr))
        pairs.append((en, fr))
    return pairs


def family(catalog):
    """The catalog without its version and variant suffixes: gtk30-properties
    -> gtk, iso_639_3 -> iso_639, gstreamer-1.0 -> gstreamer."""
    iso = re.match(r"iso_\d+", catalog)
    if iso:
        # iso_3166-2, iso_3166_2: the standard's number is the family.
        return iso.group(0)
    name = re.sub(r"-(properties|gnulib)$", "", catalog)
    name = re.sub(r"[-_]?\d+(\.\d+)*$", "", name)
    # Not down to a letter or two: "m4" is m4, not "m".
    return name if len(name) > 2 else catalog


def hash_order(name):
    return hashlib.sha256(name.encode("utf-8")).hexdigest()


def assign_splits(family_sizes, total):
    """family -> split, by the walk described in the module docstring;
    `total` is the number of distinct pairs of all catalogs."""
    held = {"test": 0, "dev": 0}
    split_of = {}
    for name in sorted(family_sizes, key=hash_order):
        size = family_sizes[name]
        split_of[name] = "train"
        for split in ("test", "dev"):
            if (held[split] < HELD_OUT_FRACTION * total and
                    held[split] + size <= HELD_OUT_MAX_FRACTION * total):
                split_of[name] = split
                held[split] += size
                break
    return split_of


def train_wordpieces(out_dir, vocab_size, threads):
    """Trains OUT_DIR/spm.{model,vocab} on train.en + train.fr; returns the
    seconds it took."""
    spm_train = shutil.which("spm_train")
    if spm_train is None:
        sys.exit("nmt-corpus: spm_train not found: install sentencepiece "
                 "(scripts/install-deps.sh), or pass --no-wordpieces")
    # Run in OUT_DIR with relative paths: the model records its training
    # options, paths included, and should not depend on where it was made.
    command = [
        spm_train, "--input=train.en,train.fr", "--model_prefix=spm",
        f"--vocab_size={vocab_size}", "--model_type=unigram",
        # <pad> first so that a zero-filled id buffer is padding; the ids
        # are read back from the model by runtime/data/Wordpieces.h.
        "--pad_id=0", "--unk_id=1", "--bos_id=2", "--eos_id=3",
        "--random_seed=1", f"--num_threads={threads}", "--minloglevel=1",
    ]
    start = time.monotonic()
    result = subprocess.run(command, cwd=out_dir, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    seconds = time.monotonic() - start
    if result.returncode != 0:
        # The reason is on the line before "Program terminated ...".
        lines = [l for l in result.stdout.splitlines()
                 if l.strip() and not l.startswith("Program terminated")]
        detail = lines[-1] if lines else f"exit code {result.returncode}"
        sys.exit(f"nmt-corpus: spm_train failed: {detail}")
    return seconds


def main():
    parser = argparse.ArgumentParser(
        description="English->French pairs from gettext catalogs, split by "
        "catalog, with a shared SentencePiece vocabulary.")
    parser.add_argument("out_dir")
    parser.add_argument("--locale-dir", default=DEFAULT_LOCALE_DIR,
                        help="folder of French .mo catalogs "
                        f"(default: {DEFAULT_LOCALE_DIR})")
    parser.add_argument("--vocab-size", type=int, default=8000,
                        help="wordpieces in the shared vocabulary "
                        "(default: 8000)")
    parser.add_argument("--threads", type=int, default=2,
                        help="spm_train threads (default: 2)")
    parser.add_argument("--no-wordpieces", action="store_true",
                        help="write the corpus only, no SentencePiece model")
    args = parser.parse_args()

    if not os.path.isdir(args.locale_dir):
        sys.exit(f"nmt-corpus: {args.locale_dir}: no such folder; this "
                 "machine has no French gettext catalogs there")
    paths = sorted(p for p in os.listdir(args.locale_dir) if p.endswith(".mo"))
    stats = {k: 0 for k in ("entries", "undecodable", "empty", "format-only",
                            "duplicate")}
    catalogs = []  # (name, entries, pairs)
    for file_name in paths:
        path = os.path.join(args.locale_dir, file_name)
        try:
            entries, charset = read_mo(path)
        except (OSError, CatalogError) as e:
            print(f"nmt-corpus: skipping {path}: {e}", file=sys.stderr)
            continue
        stats["entries"] += len(entries)
        pairs = catalog_pairs(entries, charset, stats)
        catalogs.append((file_name[:-len(".mo")], len(entries), pairs))

    if not any(pairs for _, _, pairs in catalogs):
        sys.exit(f"nmt-corpus: no translated messages in {len(paths)} "
                 f".mo files under {args.locale_dir}: nothing to build")
    if len(catalogs) < FEW_CATALOGS:
        print(f"nmt-corpus: warning: only {len(catalogs)} catalogs under "
              f"{args.locale_dir} (the development image has 89-96); the "
              "dev and test splits may be small or empty", file=sys.stderr)

    family_pairs = {}
    for name, _, pairs in catalogs:
        family_pairs.setdefault(family(name), set()).update(pairs)
    split_of = assign_splits(
        {name: len(pairs) for name, pairs in family_pairs.items()},
        len(set().union(*family_pairs.values())))

    # Held-out splits first: a pair seen in two splits stays held out.
    kept = {split: [] for split in SPLITS}
    seen = set()
    rows = []
    for split in ("test", "dev", "train"):
        for name, count, pairs in catalogs:
            if split_of[family(name)] != split:
                continue
            fresh = [p for p in pairs if p not in seen]
            stats["duplicate"] += len(pairs) - len(fresh)
            seen.update(fresh)
            kept[split].extend(fresh)
            rows.append((name, family(name), split, count, len(fresh)))

    os.makedirs(args.out_dir, exist_ok=True)
    for split in SPLITS:
        for lang, side in (("en", 0), ("fr", 1)):
            with open(os.path.join(args.out_dir, f"{split}.{lang}"), "w",
                      encoding="utf-8", newline="\n") as f:
                f.writelines(pair[side] + "\n" for pair in kept[split])
    with open(os.path.join(args.out_dir, "catalogs.tsv"), "w",
              encoding="utf-8", newline="\n") as f:
        f.write("catalog\tfamily\tsplit\tentries\tpairs\n")
        for row in sorted(rows):
            f.write("\t".join(map(str, row)) + "\n")

    print(f"nmt-corpus: {len(catalogs)} catalogs in {args.locale_dir}, "
          f"{stats['entries']} entries; dropped {stats['empty']} empty, "
          f"{stats['format-only']} format-only, {stats['undecodable']} "
          f"undecodable, {stats['duplicate']} duplicate pairs")
    total = sum(len(kept[s]) for s in SPLITS)
    for split in SPLITS:
        names = sorted(r[0] for r in rows if r[2] == split)
        words = sum(len(en.split()) for en, _ in kept[split])
        print(f"{split:5s} {len(kept[split]):6d} pairs "
              f"({100.0 * len(kept[split]) / total:4.1f}%), {words} English "
              f"words, {len(names)} catalogs: {' '.join(names) or '-'}")

    if not args.no_wordpieces:
        if not kept["train"]:
            sys.exit("nmt-corpus: the train split is empty: no vocabulary "
                     "to train")
        seconds = train_wordpieces(args.out_dir, args.vocab_size,
                                   args.threads)
        print(f"wordpieces: {args.vocab_size} shared pieces in "
              f"{os.path.join(args.out_dir, 'spm.model')}, trained on "
              f"train.en + train.fr in {seconds:.1f} s")


if __name__ == "__main__":
    main()
