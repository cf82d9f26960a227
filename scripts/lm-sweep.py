#!/usr/bin/env python3
"""The paper's Table 3 trend at demo size: test perplexity against the number
of experts at equal compute per word, on the King James Bible with whole
books held out for test.

  scripts/lm-sweep.py [--work DIR] [--steps N] [--models a,b,...] [--gpu]
  scripts/lm-sweep.py --mini --corpus FILE --work DIR   (CI: two models)

Models (generated into WORK/models/, see model_text): the 3-layer LSTM
baseline; 2 LSTMs around a flat MoE of 4, 16, 64 and 256 linear d x d
experts, with batchwise gating (the paper's) and with noisy top-k; a
hierarchical MoE of 16 groups x 16 experts; the flat 64-expert batchwise
model with a sampled softmax. Each is compiled with scripts/package.sh,
trained by moe-run for the same steps on the same batch, and evaluated on
the held-out books (moe-run --test-split documents); parameters and
multiply-adds per word come from moe-opt --moe-model-summary. Writes
WORK/results.md (a Markdown table), WORK/results.json and, with gnuplot,
WORK/perplexity.png.

Equal compute, as in the paper (5.1.1): an LSTM-d layer costs 8 d^2
multiply-adds per word, so the MoE runs k = 8 experts of d x d per word
(hierarchical: 2 groups x 4 experts). With 4 experts k is 4: every expert
on every word, half the LSTM's multiply-adds. The gates add d * n (noisy
top-k: 2 d * n) on top, which the table's numbers show.

Default size: d = 64, an 8000-word vocabulary, batch 16 x 20 = 320 words,
3000 steps (about 1.1 epochs of the 0.87M training words), lr 0.01 (200
steps of warm-up, 200 constant, then 1/sqrt decay). --gpu: d = 512 (the
paper's size: 6.3M multiply-adds per word excluding i/o), a 16000-word
vocabulary, batch 128 x 32 = 4096 words, 3000 steps (about 14 epochs, as
in the paper), the cuda target; it trains only on a CUDA machine
(--compile-only generates and translates every model anywhere).
"""
import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Size:
    """The shapes of one sweep: hidden size, vocabulary, batch."""

    def __init__(self, d, vocab, batch, time_steps, dropout, samples):
        self.d, self.vocab = d, vocab
        self.batch, self.time = batch, time_steps
        self.dropout, self.samples = dropout, samples


CPU = Size(d=64, vocab=8000, batch=16, time_steps=20, dropout=0.1,
           samples=1024)
GPU = Size(d=512, vocab=16000, batch=128, time_steps=32, dropout=0.2,
           samples=2048)
MINI = Size(d=16, vocab=64, batch=4, time_steps=8, dropout=0.0, samples=16)


class Model:
    """One model of the sweep; kind: baseline, flat, hierarchical or lstm2
    (the control: the MoE models without their MoE layer)."""

    def __init__(self, name, kind, gating="", experts=0, k=0, groups=0,
                 sampled=False):
        self.name, self.kind, self.gating = name, kind, gating
        self.experts, self.k, self.groups = experts, k, groups
        self.sampled = sampled

    def label(self):
        if self.kind == "baseline":
            return "3 x LSTM (baseline)"
        if self.kind == "lstm2":
            return "2 x LSTM (no MoE layer)"
        if self.kind == "hierarchical":
            return "hierarchical MoE %d x %d, batchwise" % (
                self.groups, self.experts // self.groups)
        text = "MoE-%d, %s" % (self.experts, self.gating.replace("_", "-"))
        return text + (", sampled softmax" if self.sampled else "")


def all_models():
    models = [Model("baseline", "baseline")]
    for gating, short in (("batchwise", "bw"), ("noisy_top_k", "topk")):
        for n in (4, 16, 64, 256):
            models.append(Model("moe%d_%s" % (n, short), "flat", gating, n,
                                min(8, n)))
    models.append(Model("hmoe256_bw", "hierarchical", "batchwise", 256, 8,
                        groups=16))
    models.append(Model("moe64_bw_sampled", "flat", "batchwise", 64, 8,
                        sampled=True))
    return models


def extra_models():
    """Models run only when --models names them (the investigation)."""
    return [Model("lstm2", "lstm2")]


def mini_models():
    return [Model("baseline", "baseline"),
            Model("moe16_bw", "flat", "batchwise", 16, 8)]


def tensor(*dims):
    return "tensor<%sxf32>" % "x".join(str(d) for d in dims)


def model_text(model, size):
    """The model in the MoE dialect; the layout of examples/small_lstm_moe."""
    d, v, n = size.d, size.vocab, model.experts
    bt = "%dx%d" % (size.batch, size.time)
    act = "tensor<%sx%dxf32>" % (bt, d)
    scale = 0.1 if d <= 128 else 0.05
    params = []

    def param(var, shape, name, init):
        params.append("    %%%s: %s\n        {moe.param = \"%s\", moe.init = "
                      "#moe.init<%s>}" % (var, shape, name, init))

    uniform = "uniform, scale = %g" % scale
    param("embedding", tensor(v, d), "embedding", uniform)

    def lstm_params(i):
        param("lstm%d_wx" % i, tensor(d, 4 * d), "lstm%d.input_weights" % i,
              uniform)
        param("lstm%d_wh" % i, tensor(d, 4 * d),
              "lstm%d.recurrent_weights" % i, uniform)
        param("lstm%d_b" % i, tensor(4 * d), "lstm%d.bias" % i, "zeros")

    body = []
    drop = size.dropout

    def dropout(out, x):
        if drop <= 0:
            return x
        body.append("  %%%s = moe.dropout %%%s {rate = %g : f32} : %s"
                    % (out, x, drop, act))
        return out

    def lstm(i, x, out):
        body.append(
            "  %%h%d = moe.lstm %%%s weights(%%lstm%d_wx, %%lstm%d_wh, "
            "%%lstm%d_b)\n      : (%s, %s, %s,\n         %s) -> %s"
            % (i, x, i, i, i, act, tensor(d, 4 * d), tensor(d, 4 * d),
               tensor(4 * d), act))
        hd = dropout("h%dd" % i, "h%d" % i)
        body.append("  %%%s = moe.residual %%%s, %%%s : %s" % (out, x, hd, act))

    body.append("  %%emb = moe.embedding %%embedding[%%tokens]\n      : (%s, "
                "tensor<%sxi32>) -> %s" % (tensor(v, d), bt, act))
    x0 = dropout("x0", "emb")
    lstm_params(1)
    lstm(1, x0, "x1")
    aux = None
    if model.kind == "baseline":
        lstm_params(2)
        lstm(2, "x1", "x2")
        last = 3
    elif model.kind == "lstm2":
        last = 2
    elif model.kind == "flat":
        expert_shape = tensor(n, d, d)
        param("moe_gate", tensor(d, n), "moe.gate_weights", "zeros")
        if model.gating == "batchwise":
            # Thresholds start at the uniform gate probability (see
            # examples/lstm2x512_moe64.mlir).
            param("moe_thresholds", tensor(n), "moe.thresholds",
                  "constant, scale = %g" % (1.0 / n))
            gate = "gate(%moe_gate) thresholds(%moe_thresholds)"
            types = [tensor(d, n), tensor(n)]
            losses = "importance = 0.1, batchwise_threshold = 0.01"
        else:
            param("moe_noise", tensor(d, n), "moe.noise_weights", "zeros")
            gate = "gate(%moe_gate, noise %moe_noise)"
            types = [tensor(d, n), tensor(d, n)]
            losses = "importance = 0.1, load = 0.1"
        param("moe_experts", expert_shape, "moe.expert_weights",
              "glorot_uniform")
        body.append(
            "  %%m, %%aux = moe.moe_layer %%x1 %s\n      experts(%%moe_experts) "
            "{\n        num_experts = %d : i64, k = %d : i64,\n        gating = "
            "#moe.gating<%s>, expert = #moe.expert<linear>,\n        losses = "
            "#moe.losses<%s>}\n      : (%s, %s) -> (%s, tensor<f32>)"
            % (gate, n, model.k, model.gating, losses, act,
               ", ".join(types + [expert_shape]), act))
        aux = "aux"
    else:
        g, per = model.groups, n // model.groups
        param("moe_pgate", tensor(d, g), "moe.primary_gate_weights", "zeros")
        param("moe_pthresholds", tensor(g), "moe.primary_thresholds",
              "constant, scale = %g" % (1.0 / g))
        param("moe_sgate", tensor(g, d, per), "moe.secondary_gate_weights",
              "zeros")
        param("moe_sthresholds", tensor(g, per), "moe.secondary_thresholds",
              "constant, scale = %g" % (1.0 / per))
        param("moe_experts", tensor(n, d, d), "moe.expert_weights",
              "glorot_uniform")
        body.append(
            "  %%m, %%aux = moe.hierarchical_moe_layer %%x1\n"
            "      primary(%%moe_pgate, thresholds %%moe_pthresholds)\n"
            "      secondary(%%moe_sgate, thresholds %%moe_sthresholds)\n"
            "      experts(%%moe_experts) {\n"
            "        num_experts = %d : i64, groups = %d : i64,\n"
            "        k_primary = 2 : i64, k_secondary = 4 : i64,\n"
            "        gating = #moe.gating<batchwise>, expert = "
            "#moe.expert<linear>,\n        losses = #moe.losses<importance = "
            "0.1, batchwise_threshold = 0.01>}\n"
            "      : (%s, %s, %s,\n         %s, %s, %s)\n"
            "      -> (%s, tensor<f32>)"
            % (n, g, act, tensor(d, g), tensor(g), tensor(g, d, per),
               tensor(g, per), tensor(n, d, d), act))
        aux = "aux"
    if model.kind in ("flat", "hierarchical"):
        md = dropout("md", "m")
        body.append("  %%x2 = moe.residual %%x1, %%%s : %s" % (md, act))
        last = 2
    lstm_params(last)
    lstm(last, "x1" if model.kind == "lstm2" else "x2", "x3")
    param("softmax_w", tensor(v, d), "softmax.weights", uniform)
    param("softmax_b", tensor(v), "softmax.bias", "zeros")
    samples = ("\n      {num_samples = %d : i64}" % size.samples
               if model.sampled else "")
    body.append(
        "  %%ce = moe.softmax_cross_entropy %%x3, %%targets weights("
        "%%softmax_w, %%softmax_b)%s\n      : (%s, tensor<%sxi32>, %s,\n"
        "         %s) -> tensor<f32>"
        % (samples, act, bt, tensor(v, d), tensor(v)))
    if aux:
        body.append("  %%loss = moe.total_loss %%ce, %%%s : tensor<f32>" % aux)
    else:
        body.append("  %loss = moe.total_loss %ce : tensor<f32>")
    body.append("  return %loss : tensor<f32>")
    inputs = ("    %%tokens: tensor<%sxi32> {moe.input = \"tokens\"},\n"
              "    %%targets: tensor<%sxi32> {moe.input = \"targets\"},\n"
              % (bt, bt))
    return ("// Generated by scripts/lm-sweep.py: %s, d = %d, vocabulary %d,"
            " batch %s.\n\nfunc.func @%s(\n%s%s)\n    -> tensor<f32> {\n%s\n}\n"
            % (model.label(), d, v, bt, model.name, inputs,
               ",\n".join(params), "\n".join(body)))


def run(cmd, log=None, **kwargs):
    """Runs cmd; its output goes to `log` (appended) or is returned."""
    if log:
        with open(log, "a") as f:
            f.write("$ " + " ".join(cmd) + "\n")
            f.flush()
            subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT,
                           check=True, **kwargs)
        return ""
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          check=True, text=True, **kwargs).stdout


def make_corpus(path):
    """The King James Bible, one verse a line, a blank line between books."""
    text = subprocess.run(["bible", "-l0", "Gen1:1-Rev22:21"], check=True,
                          stdout=subprocess.PIPE, text=True).stdout
    out, book = [], None
    for line in text.splitlines():
        heading = re.match(r"^(\S.*) \d+$", line)  # "1 Kings 3"
        if heading:
            if book is not None and heading.group(1) != book:
                out.append("")
            book = heading.group(1)
            continue
        verse = re.match(r"^ +\d+ (.*)$", line)
        if verse:
            out.append(verse.group(1))
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def summary(build, path):
    """Parameters and multiply-adds per word from --moe-model-summary."""
    text = run([os.path.join(build, "bin", "moe-opt"), "--moe-model-summary",
                "-o", os.devnull, path])
    params = re.search(r"parameters: (\d+) \S+ total, (\d+) \S+ excluding",
                       text)
    macs = re.search(r"multiply-adds per word \(forward\): (\d+) \S+ total, "
                     r"(\d+) \S+ excluding", text)
    if not params or not macs:
        raise RuntimeError("unexpected --moe-model-summary output:\n" + text)
    return {"params": int(params.group(1)),
            "params_no_io": int(params.group(2)),
            "macs": int(macs.group(1)), "macs_no_io": int(macs.group(2))}


def final_metrics(path):
    """What the metrics file says of a finished run: test perplexity, the
    unigram baseline's, the training perplexity of the last log window, the
    expert load balance of the last quarter of the windows and the experts a
    word used in the final evaluation."""
    out = {"test_ppl": None, "unigram_ppl": None, "train_ppl": None,
           "balance": None, "test_experts_per_word": None,
           "test_balance": None}
    loads = []
    with open(path) as f:
        for line in f:
            record = json.loads(line)
            if record.get("final"):
                out["test_ppl"] = record["test_perplexity"]
                out["unigram_ppl"] = record["unigram_perplexity"]
            elif "loss" in record:
                out["train_ppl"] = record["perplexity"]
                if record.get("expert_load"):
                    loads.append(record["expert_load"])
            elif record.get("split") == "test" and record.get("expert_load"):
                # Assignments per plan over the words scored (the padding
                # of the last batch makes this a slight overestimate).
                out["test_experts_per_word"] = [
                    sum(plan) / max(1, record["tokens"])
                    for plan in record["expert_load"]]
                out["test_balance"] = [load_balance(plan)
                                       for plan in record["expert_load"]]
    if loads:
        # max/mean and min/mean tokens per expert, per dispatch plan (the
        # hierarchical layer has one per level).
        tail = loads[-max(1, len(loads) // 4):]
        out["balance"] = []
        for plan in range(len(tail[0])):
            out["balance"].append(load_balance(
                [sum(w[plan][e] for w in tail)
                 for e in range(len(tail[0][plan]))]))
    return out


def load_balance(tokens):
    """[max, min] tokens of an expert over the mean."""
    mean = sum(tokens) / max(1, len(tokens))
    return [max(tokens) / mean, min(tokens) / mean] if mean > 0 else [0, 0]


def fmt_count(n):
    for unit, scale in (("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return "%.2f%s" % (n / scale, unit)
    return str(n)


def write_table(results, path, header):
    lines = [header, "",
             "| model | experts | k | test ppl | train ppl | parameters "
             "(excl. i/o) | multiply-adds/word (excl. i/o) | expert load "
             "max/min per mean (train; test) | experts/word at test | train s "
             "| wall s |",
             "|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|"]

    def number(value, form="%.2f"):
        return form % value if value is not None else "-"

    for r in results:
        balance = " ".join("%.2f/%.2f" % tuple(b)
                           for b in r.get("balance") or [])
        if r.get("test_balance"):
            balance += "; " + " ".join("%.2f/%.2f" % tuple(b)
                                       for b in r["test_balance"])
        used = " / ".join("%.2f" % u
                          for u in r.get("test_experts_per_word") or [])
        lines.append("| %s | %s | %s | %s | %s | %s (%s) | %s (%s) | %s | %s "
                     "| %s | %s |"
                     % (r["label"], r["experts"] or "-", r["k"] or "-",
                        number(r.get("test_ppl")) if r.get("test_ppl")
                        is not None else "failed",
                        number(r.get("train_ppl"), "%.1f"),
                        fmt_count(r["params"]), fmt_count(r["params_no_io"]),
                        fmt_count(r["macs"]), fmt_count(r["macs_no_io"]),
                        balance or "-", used or "-",
                        number(r.get("train_s"), "%.0f"),
                        number(r.get("wall_s"), "%.0f")))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def plot(results, work, title):
    """WORK/perplexity.png: test perplexity against experts (gnuplot)."""
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        print("lm-sweep: no gnuplot (apt-get install gnuplot-nox): no plot")
        return None
    series = {}
    lines = []  # models without experts: horizontal lines
    for r in results:
        if r.get("test_ppl") is None:
            continue
        if r["kind"] in ("baseline", "lstm2"):
            lines.append((r["test_ppl"], r["label"]))
            continue
        key = ("hierarchical, batchwise" if r["kind"] == "hierarchical" else
               "flat, sampled softmax" if r["sampled"] else
               "flat, " + r["gating"].replace("_", "-"))
        series.setdefault(key, []).append((r["experts"], r["test_ppl"]))
    plots = []
    for i, (key, points) in enumerate(sorted(series.items())):
        data = os.path.join(work, "plot-%d.dat" % i)
        with open(data, "w") as f:
            for n, ppl in sorted(points):
                f.write("%d %g\n" % (n, ppl))
        plots.append("'%s' using 1:2 with linespoints pt %d lw 2 title '%s'"
                     % (data, 5 + 2 * i, key))
    for i, (ppl, label) in enumerate(lines):
        plots.append("%g with lines dt %d lw 2 lc rgb '%s' title '%s'"
                     % (ppl, 2 + i, ("black", "gray40")[i % 2], label))
    if not plots:
        return None
    png = os.path.join(work, "perplexity.png")
    script = "\n".join([
        "set terminal pngcairo size 640,420 font ',10'" if
        "pngcairo" in run([gnuplot, "-e", "set terminal"]) else
        "set terminal png size 640,420",
        "set output '%s'" % png,
        "set title '%s'" % title,
        "set logscale x 2", "set xrange [2:512]",
        "set xlabel 'experts'", "set ylabel 'test perplexity (held-out books)'",
        "set key top left", "set grid",
        "plot " + ", ".join(plots), ""])
    script_path = os.path.join(work, "perplexity.gp")
    with open(script_path, "w") as f:
        f.write(script)
    run([gnuplot, script_path])
    return png


def read_run(result, log, metrics):
    """Adds the training time of the log and what the metrics say."""
    with open(log) as f:
        trained = re.search(r"trained \d+ steps in (\d+):(\d+):?(\d+)?",
                            f.read())
    if trained:
        parts = [int(p) for p in trained.groups() if p is not None]
        result["train_s"] = sum(p * 60 ** i
                                for i, p in enumerate(reversed(parts)))
    result.update(final_metrics(metrics))


def write_outputs(results, work, size, steps, args, target, corpus):
    """WORK/results.json, results.md and perplexity.png."""
    unigram = [r["unigram_ppl"] for r in results if r.get("unigram_ppl")]
    header = ("Sweep: d = %d, vocabulary %d, batch %d x %d, %d steps, "
              "lr %g, target %s, corpus %s (test split: %s; "
              "unigram perplexity %s)."
              % (size.d, size.vocab, size.batch, size.time, steps,
                 args.lr, target, os.path.basename(corpus),
                 args.test_split, "%.2f" % unigram[0] if unigram else "-"))
    with open(os.path.join(work, "results.json"), "w") as f:
        json.dump({"header": header, "results": results}, f, indent=1)
    write_table(results, os.path.join(work, "results.md"), header)
    plot(results, work, "KJV, d = %d, %d steps" % (size.d, steps))


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--work", default=None,
                        help="work directory (default BUILD/lm-sweep)")
    parser.add_argument("--build-dir", default=os.path.join(
        ROOT, os.environ.get("BUILD_DIR", "build")),
                        help="holds bin/moe-opt, moe-translate, moe-run "
                        "(default $BUILD_DIR or build, in the checkout)")
    parser.add_argument("--corpus", help="one sentence a line, a blank line "
                        "between documents (default: the KJV, made with "
                        "`bible`)")
    parser.add_argument("--steps", type=int, help="training steps per model")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--test-fraction", type=float, default=0.05,
                        help="share of the words held out (whole documents)")
    parser.add_argument("--models", help="comma-separated names (default all "
                        "but lstm2, the 2-LSTM control)")
    parser.add_argument("--checkpoints", action="store_true",
                        help="keep each model's final checkpoint in "
                        "WORK/NAME.checkpoints (for moe-run eval)")
    parser.add_argument("--eval-every", type=int, default=0,
                        help="moe-run --eval-every (0: at the end only)")
    parser.add_argument("--test-split", default="documents",
                        choices=["documents", "blocks"],
                        help="moe-run --test-split (blocks: test sentences "
                        "from the training books)")
    parser.add_argument("--threads", type=int, default=0,
                        help="moe-run --threads (0: all cores)")
    parser.add_argument("--gpu", action="store_true",
                        help="the larger version on the cuda target")
    parser.add_argument("--compile-only", action="store_true",
                        help="generate and compile, do not train")
    parser.add_argument("--report", action="store_true",
                        help="rewrite the table and plot from the runs "
                        "already in WORK (train nothing)")
    parser.add_argument("--mini", action="store_true",
                        help="two tiny models, for CI (needs --corpus)")
    args = parser.parse_args()

    build = os.path.abspath(args.build_dir)
    size = MINI if args.mini else GPU if args.gpu else CPU
    steps = args.steps or (100 if args.mini else 3000)
    target = "cuda" if args.gpu else "cpu"
    work = os.path.abspath(args.work or os.path.join(build, "lm-sweep"))
    models = mini_models() if args.mini else all_models()
    if args.models:
        wanted = args.models.split(",")
        models += [] if args.mini else extra_models()
        unknown = set(wanted) - {m.name for m in models}
        if unknown:
            sys.exit("lm-sweep: unknown models %s (have %s)" % (
                ", ".join(sorted(unknown)), ", ".join(m.name for m in models)))
        models = [m for m in models if m.name in wanted]
    os.makedirs(os.path.join(work, "models"), exist_ok=True)
    corpus = args.corpus
    if not corpus:
        if args.mini:
            sys.exit("lm-sweep: --mini needs --corpus")
        corpus = os.path.join(work, "kjv-books.txt")
        if not os.path.exists(corpus):
            make_corpus(corpus)
    corpus = os.path.abspath(corpus)

    warmup = max(1, min(200, steps // 10))
    options = ("lr=%g warmup-steps=%d constant-steps=%d"
               % (args.lr, warmup, warmup))
    env = dict(os.environ, BUILD_DIR=build)
    moe_run = os.path.join(build, "bin", "moe-run")
    previous = {}
    if args.report and os.path.exists(os.path.join(work, "results.json")):
        with open(os.path.join(work, "results.json")) as f:
            previous = {r["name"]: r for r in json.load(f)["results"]}
    results = []
    for model in models:
        start = time.time()
        source = os.path.join(work, "models", model.name + ".mlir")
        with open(source, "w") as f:
            f.write(model_text(model, size))
        package = os.path.join(work, model.name)
        log = os.path.join(work, model.name + ".log")
        metrics = os.path.join(work, model.name + ".metrics.jsonl")
        if args.report and not os.path.exists(metrics):
            continue
        if os.path.exists(log) and not args.report:
            os.remove(log)
        result = {"name": model.name, "label": model.label(),
                  "kind": model.kind, "gating": model.gating,
                  "experts": model.experts, "k": model.k,
                  "sampled": model.sampled}
        result.update(summary(build, source))
        print("== %s: %s parameters, %s multiply-adds per word (excl. i/o: "
              "%s, %s)" % (model.name, fmt_count(result["params"]),
                           fmt_count(result["macs"]),
                           fmt_count(result["params_no_io"]),
                           fmt_count(result["macs_no_io"])), flush=True)
        if args.report:
            read_run(result, log, metrics)
            if result.get("test_ppl") is None:
                continue  # unfinished
            result["wall_s"] = previous.get(model.name, {}).get("wall_s")
            results.append(result)
            write_outputs(results, work, size, steps, args, target, corpus)
            continue
        results.append(result)
        run(["bash", os.path.join(ROOT, "scripts", "package.sh"), source,
             package, options, target], log=log, env=env)
        if args.compile_only:
            continue
        train = [moe_run, "train", package, "--data", corpus,
                 "--test-split", args.test_split, "--test-fraction",
                 str(args.test_fraction), "--steps", str(steps),
                 "--log-every", str(max(1, steps // 20)),
                 "--eval-every", str(args.eval_every),
                 "--threads", str(args.threads), "--metrics", metrics,
                 "--overwrite"]
        if args.checkpoints:
            train += ["--checkpoint-dir",
                      os.path.join(work, model.name + ".checkpoints")]
        try:
            run(train, log=log, env=env)
            read_run(result, log, metrics)
        except subprocess.CalledProcessError:
            print("   failed: see %s" % log, flush=True)
        result["wall_s"] = time.time() - start
        if result.get("test_ppl") is not None:
            print("   test perplexity %.2f, %.0f s" % (
                result["test_ppl"], result["wall_s"]), flush=True)
        # Written after every model: a partial sweep keeps what finished.
        write_outputs(results, work, size, steps, args, target, corpus)
    print("lm-sweep: results in %s" % work)
    failed = [r["name"] for r in results
              if not args.compile_only and r.get("test_ppl") is None]
    if failed:
        sys.exit("lm-sweep: failed: %s" % ", ".join(failed))


if __name__ == "__main__":
    main()
