#!/usr/bin/env python3
"""Scaling table of the paper's models on 1, 8, 64 and 128 GPUs.

For each model it compiles the expert-parallel package (scripts/package.sh)
and reads, from the compiler and moe-run, what does not need a GPU:

- memory per rank (parameters, Adam moments, arenas, inputs) from
  `moe-run info`, which computes it from the package manifest;
- the train step's FLOPs per rank (the manifest's count);
- the bytes each rank sends per step through the expert exchanges: the
  static [rows, d] f32 operand of every moe.exchange_to_experts and
  moe.exchange_to_tokens in the partitioned IR (forward and backward).

Step time = compute + exchange (the runtime does not overlap them):
compute at the TFLOP/s measured on one H200 for lstm2x512_moe64 (283K
tokens/s at TF32, issue 13's measurement; --tflops to override), exchange
at published bandwidths: NVLink inside a node of 8 GPUs, InfiniBand
between nodes, (R - 1) / R of the volume leaving the device. Prints a
Markdown table.

  python3 bench/scaling_table.py [--build-dir build] [--tflops T]
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

MODELS = ["lstm2x512_moe64", "lstm2x512_moe512", "lstm2x512_hmoe4096",
          "lstm2x512_hmoe32768"]
RANKS = [1, 8, 64, 128]
GPUS_PER_NODE = 8
# Achievable all-to-all bandwidth per GPU and direction: NVLink 4 (H100 /
# H200 SXM: 900 GB/s bidirectional, ~400 GB/s measured all-to-all) and one
# 400 Gb/s NDR InfiniBand port per GPU (~45 GB/s of its 50 GB/s).
NVLINK_BYTES_PER_S = 400e9
IB_BYTES_PER_S = 45e9
DEVICE_BYTES = 141e9  # H200
# The reference measurement: lstm2x512_moe64 at 283K tokens/s, 8192 tokens
# a step, on one H200 (TF32).
REFERENCE = ("lstm2x512_moe64", 283e3)

GIB = 1024**3
TOKENS = 8192  # 256 x 32 per GPU in every paper model


def run(cmd):
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"scaling_table: {' '.join(cmd)} failed:\n{done.stderr}")
    return done.stdout


def expected_assignments(model, tokens):
    """k T for a flat layer, k_primary k_secondary T for a hierarchical one:
    the rows a rank sends per exchange on average (the IR's buffers are
    sized for the combined batch's capacity, twice that)."""
    text = open(f"examples/{model}.mlir").read()
    hierarchical = re.search(r"k_primary = (\d+).*?k_secondary = (\d+)", text,
                             re.S)
    if hierarchical:
        return int(hierarchical.group(1)) * int(hierarchical.group(2)) * tokens
    return int(re.search(r"\bk = (\d+)", text).group(1)) * tokens


def exchange_bytes(build, model, tokens):
    """Bytes one rank sends per train step through the expert exchanges:
    every exchange of the train step (forward and backward) moves the
    expected assignments' rows of d floats."""
    ir = run([f"{build}/bin/moe-opt", "--moe-train-pipeline=expert-parallel=true",
              f"examples/{model}.mlir"])
    step = ir[ir.index(f"func.func @{model}_train_step"):]
    step = step[:step.index("\n  }\n")]
    total = 0
    for line in step.splitlines():
        if re.search(r"moe\.exchange_to_(experts|tokens) ", line):
            d = int(re.search(r"tensor<\d+x(\d+)xf32>", line).group(1))
            total += expected_assignments(model, tokens) * d * 4
    return total


def info(build, model, out):
    pkg = os.path.join(out, model)
    subprocess.run(["bash", "scripts/package.sh", f"examples/{model}.mlir",
                    pkg, "expert-parallel=true"], check=True,
                   capture_output=True, env=dict(os.environ, BUILD_DIR=build))
    text = run([f"{build}/bin/moe-run", "info", pkg])
    gflop = float(re.search(r"train_step .* ([0-9.]+) GFLOP", text).group(1))
    memory = {}
    units = {"GiB": GIB, "MiB": 1024**2, "KiB": 1024, "B": 1}
    for line in text.splitlines():
        # "  ranks  parameters  optimizer  arenas  inputs  total": value-unit
        # pairs after the rank count, the total last.
        cells = line.split()
        if (len(cells) > 3 and len(cells) % 2 == 1 and cells[0].isdigit()
                and cells[-1] in units):
            memory[int(cells[0])] = float(cells[-2]) * units[cells[-1]]
    return gflop, memory


def exchange_seconds(volume, ranks):
    if ranks == 1:
        return 0.0
    inside = min(ranks, GPUS_PER_NODE)
    # Of the (R - 1) / R leaving the device, (inside - 1) / R stays in the
    # node (NVLink) and (R - inside) / R crosses nodes (InfiniBand).
    nvlink = volume * (inside - 1) / ranks / NVLINK_BYTES_PER_S
    network = volume * (ranks - inside) / ranks / IB_BYTES_PER_S
    return nvlink + network


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default="build")
    parser.add_argument("--tflops", type=float,
                        help="achieved TFLOP/s per GPU (default: from the "
                             "moe64 reference measurement)")
    args = parser.parse_args()
    out = tempfile.mkdtemp(prefix="scaling-")
    rows = {m: (info(args.build_dir, m, out),
                exchange_bytes(args.build_dir, m, TOKENS))
            for m in MODELS}
    ref_gflop = rows[REFERENCE[0]][0][0]
    tflops = args.tflops or ref_gflop * REFERENCE[1] / 8192 / 1e3
    print(f"compute at {tflops:.1f} TFLOP/s per GPU; NVLink "
          f"{NVLINK_BYTES_PER_S / 1e9:.0f} GB/s, InfiniBand "
          f"{IB_BYTES_PER_S / 1e9:.0f} GB/s per GPU; {GPUS_PER_NODE} GPUs "
          f"per node; 8192 tokens per GPU and step\n")
    print("| model | GPUs | memory per GPU | fits 141 GB | exchange per GPU "
          "and step | compute ms | exchange ms | step ms | job tokens/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for model in MODELS:
        (gflop, memory), volume = rows[model]
        for ranks in RANKS:
            mem = memory.get(ranks)
            if not mem:
                print(f"| {model} | {ranks} | n/a: fewer experts than GPUs "
                      "| | | | | | |")
                continue
            compute = gflop / tflops  # GFLOP / TFLOP/s = ms
            exchange = exchange_seconds(volume, ranks) * 1e3
            step = compute + exchange
            fits = "yes" if mem < DEVICE_BYTES else "no"
            mem_text = f"{mem / GIB:.1f} GiB"
            print(f"| {model} | {ranks} | {mem_text} | {fits} | "
                  f"{volume * (ranks - 1) / ranks / GIB:.2f} GiB | "
                  f"{compute:.1f} | {exchange:.1f} | {step:.1f} | "
                  f"{ranks * 8192 / step * 1e3 / 1e6:.2f}M |")


if __name__ == "__main__":
    main()
