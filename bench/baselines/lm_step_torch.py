#!/usr/bin/env python3
"""PyTorch peer of examples/gpu_lstm_moe.mlir: training tokens/s of the LM.

What it measures
----------------
Training throughput (tokens per second) of the GPU-size language model of
issue 13, written in plain PyTorch, on random token ids (no data set needed):
--warmup untimed steps, then --steps timed ones, tokens/s = batch x time x
steps / seconds. moe-run trains the compiled examples/gpu_lstm_moe.mlir on
the same shapes, so the two tokens/s figures compare directly.

The model (as examples/gpu_lstm_moe.mlir)
-----------------------------------------
  embedding V x d (uniform +-0.1)
  -> dropout 0.1 -> LSTM-d -> dropout 0.1 -> + residual
  -> MoE: n linear d x d experts (Glorot uniform), noisy top-k gating with
     W_g and W_noise zero-initialised, importance and load losses 0.1 each
  -> dropout 0.1 -> + residual
  -> LSTM-d -> dropout 0.1 -> + residual
  -> full softmax over the V words (cross-entropy, mean over tokens)
  loss = cross-entropy + the two balancing losses; Adam, lr 1e-3.

Defaults: batch 128 x 32 tokens, V 8000, d 512, n 64, k 4. The LSTMs are
torch.nn.LSTM (cuDNN on CUDA; uniform +-0.1 weights, zero biases; cuDNN has
two bias vectors where ours has one, which changes nothing in the cost).
The MoE layer is moe_forward of bench/baselines/moe_layer_torch.py (same
directory), the peer of our MoE layer step, applied to all batch x time
positions at once; its router stays f32 at every precision and --impl
picks the expert GEMMs (loop: a matmul per expert; grouped:
torch._grouped_mm, where this PyTorch has it for the precision).

Precision: f32 (TF32 off for cuBLAS and cuDNN), tf32 (TF32 on for both), or
bf16 (torch.autocast to bfloat16 around the model; the MoE layer runs
outside autocast with its expert GEMMs cast to bf16 and its router in f32).
Adam is torch.optim.Adam(fused=True) where this PyTorch supports it on the
device, else foreach, else the plain loop. --compile wraps the model in
torch.compile where available (compile=1 in the output only when it ran).

Output: exactly one machine-readable line,

  torch-lm batch=<B>x<S> d=<d> n=<n> k=<k> precision=<p> impl=<impl> \
compile=<0|1> tokens_per_s=<x>

plus human-readable lines starting with '#'.
"""

import argparse
import math
import os
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:  # pragma: no cover - reported to the user
    print("lm_step_torch.py: PyTorch is not installed", file=sys.stderr)
    sys.exit(1)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moe_layer_torch as layer  # noqa: E402  (the MoE layer and helpers)

DROPOUT = 0.1
INIT_SCALE = 0.1


class MoE(nn.Module):
    """Noisy top-k MoE of linear d x d experts (moe_layer_torch.moe_forward)."""

    def __init__(self, d, n, k, precision, impl):
        super().__init__()
        self.k, self.precision, self.impl = k, precision, impl
        self.gate = nn.Parameter(torch.zeros(d, n))
        self.noise = nn.Parameter(torch.zeros(d, n))
        limit = math.sqrt(6.0 / (d + d))  # Glorot uniform
        self.experts = nn.Parameter(torch.empty(n, d, d).uniform_(-limit,
                                                                  limit))

    def forward(self, x):
        shape = x.shape
        flat = x.reshape(-1, shape[-1]).float()
        with autocast_off(x.device.type):
            y, l_imp, l_load, _ = layer.moe_forward(
                flat, self.gate, self.noise, self.experts, self.k,
                self.precision, self.impl, None, self.training)
        return y.view(shape), l_imp + l_load


def autocast_off(device_type):
    return torch.autocast(device_type=device_type, enabled=False)


class LSTMMoELM(nn.Module):
    def __init__(self, vocab, d, n, k, precision, impl):
        super().__init__()
        self.embedding = nn.Embedding(vocab, d)
        self.lstm1 = nn.LSTM(d, d, batch_first=True)
        self.moe = MoE(d, n, k, precision, impl)
        self.lstm2 = nn.LSTM(d, d, batch_first=True)
        self.softmax = nn.Linear(d, vocab)
        self.dropout = nn.Dropout(DROPOUT)
        with torch.no_grad():
            self.embedding.weight.uniform_(-INIT_SCALE, INIT_SCALE)
            for lstm in (self.lstm1, self.lstm2):
                for name, p in lstm.named_parameters():
                    if name.startswith("weight"):
                        p.uniform_(-INIT_SCALE, INIT_SCALE)
                    else:
                        p.zero_()
            self.softmax.weight.uniform_(-INIT_SCALE, INIT_SCALE)
            self.softmax.bias.zero_()

    def forward(self, tokens, targets):
        x0 = self.dropout(self.embedding(tokens))
        h1, _ = self.lstm1(x0)
        x1 = x0 + self.dropout(h1)
        m, aux = self.moe(x1)
        x2 = x1 + self.dropout(m)
        h2, _ = self.lstm2(x2)
        x3 = x2 + self.dropout(h2)
        logits = self.softmax(x3)
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(),
                             targets.reshape(-1))
        return ce + aux


def make_adam(params, device, lr):
    """(optimizer, description): fused Adam where supported, else foreach,
    else the plain loop."""
    params = list(params)
    if device.type == "cuda":
        try:
            return torch.optim.Adam(params, lr=lr, fused=True), "fused"
        except (TypeError, RuntimeError, ValueError):
            pass
    try:
        return torch.optim.Adam(params, lr=lr, foreach=True), "foreach"
    except (TypeError, RuntimeError, ValueError):
        return torch.optim.Adam(params, lr=lr), "for-loop"


class OneLineParser(argparse.ArgumentParser):
    """Bad arguments: one line on stderr, exit code 2."""

    def error(self, message):
        sys.stderr.write("%s: error: %s\n" % (self.prog, message))
        sys.exit(2)


def parse_args(argv=None):
    p = OneLineParser(
        prog="lm_step_torch.py",
        description="PyTorch peer of examples/gpu_lstm_moe.mlir: training "
        "tokens/s of the LSTM + MoE language model on random tokens.")
    p.add_argument("--steps", type=int, default=50, help="timed steps (50)")
    p.add_argument("--warmup", type=int, default=10,
                   help="untimed steps first (10)")
    p.add_argument("--batch", type=int, default=128, help="sentences (128)")
    p.add_argument("--time", type=int, default=32, help="tokens each (32)")
    p.add_argument("--vocab", type=int, default=8000, help="V (8000)")
    p.add_argument("--d", type=int, default=512, help="model width (512)")
    p.add_argument("--experts", type=int, default=64, help="n (64)")
    p.add_argument("--k", type=int, default=4, help="experts per token (4)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam lr (1e-3)")
    p.add_argument("--precision", default="f32", help="f32 | tf32 | bf16")
    p.add_argument("--impl", default="loop",
                   help="expert GEMMs: loop | grouped (torch._grouped_mm)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the model where available")
    p.add_argument("--device", default=None,
                   help="cuda | cpu (cuda when available)")
    p.add_argument("--seed", type=int, default=1, help="random seed (1)")
    a = p.parse_args(argv)
    for name in ("steps", "batch", "time", "vocab", "d", "experts", "k"):
        if getattr(a, name) < 1:
            p.error("--%s must be >= 1, got %d" % (name, getattr(a, name)))
    if a.warmup < 0:
        p.error("--warmup must be >= 0, got %d" % a.warmup)
    if a.k > a.experts:
        p.error("--k (%d) must be <= --experts (%d)" % (a.k, a.experts))
    if not a.lr > 0:
        p.error("--lr must be > 0")
    if a.precision not in layer.PRECISIONS:
        p.error("--precision must be f32, tf32 or bf16, got '%s'"
                % a.precision)
    if a.impl not in layer.IMPLS:
        p.error("--impl must be loop or grouped, got '%s'" % a.impl)
    if a.device is None:
        a.device = "cuda" if torch.cuda.is_available() else "cpu"
    if a.device not in ("cuda", "cpu"):
        p.error("--device must be cuda or cpu, got '%s'" % a.device)
    return a


def main(argv=None):
    args = parse_args(argv)
    device = layer.open_device(args.device, "lm_step_torch.py")
    if device is None:
        return 1
    torch.manual_seed(args.seed)
    layer.set_tf32(args.precision == "tf32")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    print("# torch %s on %s; precision %s (router f32), impl %s"
          % (torch.__version__, layer.describe_device(device), args.precision,
             args.impl))

    if args.impl == "grouped":
        dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
        ok, why = layer.grouped_mm_status(device, args.d, dtype)
        if not ok:
            print("# grouped unavailable: %s; skipped" % why)
            return 0

    model = LSTMMoELM(args.vocab, args.d, args.experts, args.k,
                      args.precision, args.impl).to(device)
    model.train()
    optimizer, adam_kind = make_adam(model.parameters(), device, args.lr)
    n_params = sum(p.numel() for p in model.parameters())
    print("# %d parameters, Adam %s, batch %d x %d"
          % (n_params, adam_kind, args.batch, args.time))

    compiled = 0
    step_model = model
    if args.compile:
        if hasattr(torch, "compile"):
            step_model = torch.compile(model)
            compiled = 1
        else:
            print("# torch.compile unavailable in PyTorch %s; eager"
                  % torch.__version__)

    # A few fixed random batches, cycled (no data set).
    pool = 4
    tokens = torch.randint(0, args.vocab, (pool, args.batch, args.time),
                           device=device)
    targets = torch.randint(0, args.vocab, (pool, args.batch, args.time),
                            device=device)
    use_autocast = args.precision == "bf16"

    first = []  # the loss of the very first step, kept on the device

    def step(i):
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                            enabled=use_autocast):
            loss = step_model(tokens[i % pool], targets[i % pool])
        loss.backward()
        optimizer.step()
        if not first:
            first.append(loss.detach())
        return loss

    try:
        for i in range(args.warmup):
            step(i)
    except Exception as e:  # noqa: BLE001
        if not compiled:
            raise
        print("# torch.compile failed (%s: %s); eager"
              % (type(e).__name__, str(e).strip().splitlines()[0]
                 if str(e).strip() else ""))
        step_model, compiled = model, 0
        for i in range(args.warmup):
            step(i)
    layer.synchronize(device)
    start = time.perf_counter()
    for i in range(args.steps):
        loss = step(args.warmup + i)
    layer.synchronize(device)
    seconds = time.perf_counter() - start
    last = loss.item()
    if not math.isfinite(last):
        print("lm_step_torch.py: the loss is not finite (%s)" % last,
              file=sys.stderr)
        return 1
    rate = args.batch * args.time * args.steps / seconds
    print("# loss %.4f after the first step, %.4f after the last (ln V = "
          "%.4f); %.2f ms per step" % (first[0].item(), last, math.log(args.vocab),
                                        1e3 * seconds / args.steps))
    print("torch-lm batch=%dx%d d=%d n=%d k=%d precision=%s impl=%s "
          "compile=%d tokens_per_s=%.1f"
          % (args.batch, args.time, args.d, args.experts, args.k,
             args.precision, args.impl, compiled, rate))
    return 0


if __name__ == "__main__":
    sys.exit(main())
