#!/usr/bin/env python3
"""Copies the package SRC to DST with one field of its manifest edited (for
package-plan.mlir): arena_bytes, shape, shard or huge.

  edit-manifest.py SRC DST EDIT
"""
import json
import shutil
import sys

src, dst, edit = sys.argv[1:4]
shutil.copytree(src, dst)
path = dst + "/manifest.json"
manifest = json.load(open(path))
step = manifest["functions"]["train_step"]
args = {a["name"]: a for a in step["arguments"]}
if edit == "arena_bytes":
    step["arena_bytes"] = 64
elif edit == "shape":
    args["embedding"]["shape"][0] += 1
elif edit == "shard":
    args["moe.expert_weights"]["shard"] = {"mesh": "ranks", "dim": 0}
elif edit == "huge":
    for function in manifest["functions"].values():
        function["arguments"][2]["shape"] = [1 << 40, 1 << 40]
json.dump(manifest, open(path, "w"), indent=1)
