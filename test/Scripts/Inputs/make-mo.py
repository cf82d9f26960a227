#!/usr/bin/env python3
"""Writes small gettext catalogs (.mo) for the nmt-corpus.py tests:

  make-mo.py OUT_DIR

  special.mo    one entry for each rule of nmt-corpus.py (context, plural,
                mnemonic, identifier, format-only, empty, multi-line,
                duplicate)
  latin1-2.mo   the same message as special.mo's "Open", ISO-8859-1 and
                big-endian: a duplicate pair once decoded
  alpha..kilo   eleven catalogs of ten distinct pairs, so that the split
                has catalogs to spread
  broken.mo     not a catalog (skipped with a message)
"""
import os
import struct
import sys


def write_mo(path, entries, charset="UTF-8", order="<"):
    """entries: (msgid, msgstr) str pairs; the header is added first."""
    header = f"Content-Type: text/plain; charset={charset}\n"
    items = sorted([("", header)] + list(entries))
    ids = [k.encode(charset) for k, _ in items]
    strs = [v.encode(charset) for _, v in items]
    count = len(items)
    ids_at = 28
    strs_at = ids_at + 8 * count
    data_at = strs_at + 8 * count
    blob = b""
    id_table, str_table = [], []
    for table, values in ((id_table, ids), (str_table, strs)):
        for value in values:
            table.append((len(value), data_at + len(blob)))
            blob += value + b"\0"
    out = struct.pack(order + "7I", 0x950412DE, 0, count, ids_at, strs_at, 0,
                      data_at)
    for length, offset in id_table + str_table:
        out += struct.pack(order + "2I", length, offset)
    with open(path, "wb") as f:
        f.write(out + blob)


WORDS = ["red", "green", "blue", "file", "folder", "window", "disk", "user",
         "group", "network", "printer", "screen", "sound", "key", "mouse"]
MOTS = ["rouge", "vert", "bleu", "fichier", "dossier", "fenêtre", "disque",
        "utilisateur", "groupe", "réseau", "imprimante", "écran", "son",
        "clé", "souris"]


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    write_mo(os.path.join(out, "special.mo"), [
        ("Open", "Ouvrir"),
        ("menu\x04_Save", "_Enregistrer"),
        ("%d file\0%d files", "%d fichier\0%d fichiers"),
        ("query_info failed", "échec de query_info"),
        ("%s: %s", "%s : %s"),
        ("(%d)", "(%d)"),
        ("Empty", ""),
        ("Line one\nline two\n", "Ligne un\nligne deux\n"),
        ("Cancel", "Annuler"),
        ("dialog\x04Cancel", "Annuler"),
    ])
    write_mo(os.path.join(out, "latin1-2.mo"),
             [("Open", "Ouvrir"), ("Éspace", "Éspace libre")],
             charset="ISO-8859-1", order=">")
    names = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf",
             "hotel", "india", "juliett", "kilo"]
    for c, name in enumerate(names, 1):
        entries = []
        for i in range(10):
            w = (c * 3 + i) % len(WORDS)
            entries.append((f"The {WORDS[w]} number {c}-{i} is ready",
                            f"Le {MOTS[w]} numéro {c}-{i} est prêt"))
        write_mo(os.path.join(out, f"{name}.mo"), entries)
    with open(os.path.join(out, "broken.mo"), "wb") as f:
        f.write(b"this is not a catalog at all, just text\n")


if __name__ == "__main__":
    main()
