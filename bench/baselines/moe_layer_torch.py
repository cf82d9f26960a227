#!/usr/bin/env python3
"""PyTorch peer of bench/moe_layer_bench.cpp: one MoE layer, forward + backward.

What it measures
----------------
For each (n experts, k) configuration, the wall time of one training step of
a Sparsely-Gated MoE layer (Shazeer et al. 2017) written the way a PyTorch
user would write it, and, in the same run, the time of a dense GEMM forward +
backward with the same useful FLOPs. The ratio dense / MoE is the same
figure moe-layer-bench reports as "MoE/dense", so the two can be put side
by side; the MoE time itself can be compared with ours directly.

How it mirrors moe-layer-bench
------------------------------
Same shapes, initialisation scales and FLOP accounting:

* x [T, d] uniform in +-sqrt(3) (unit variance), W_g, W_noise [d, n] and the
  experts W_e [n, d, d] uniform in +-sqrt(3/d), dy [T, d] uniform in +-1.
* Router, always f32 (TF32 is switched off around its GEMMs and their
  backward, whatever --precision says): clean = x W_g (+ -log(e+1) per
  expert e with --routing zipf), raw = x W_noise, s = softplus(raw) + 1e-2,
  H = clean + N(0,1) * s; top-(k+1) of H, gates = softmax of the top k.
* Balancing losses, weight 0.1 each, CV^2 = var / (mean^2 + 1e-10)
  (population variance): importance = per-expert gate sums; load = the
  smooth estimator sum_t Phi((clean - thr) / s), thr = the (k+1)-th value
  of H for an expert inside the top k and the k-th for one outside
  (Tensor2Tensor's _prob_in_top_k; our loadEstimateForward).
* Dispatch plan: a stable sort of the T*k expert ids; dispatch gathers the
  token rows into expert order; linear d x d experts; combine gathers each
  token's k expert outputs back (positionOf) and sums them weighted by the
  gates.
* Backward: autograd from dy on the layer output and dLoss = 1 on each
  balancing loss; it writes dx, dW_g, dW_noise and dW_e as ours does.
* Expert GEMMs (--impl): "loop", one matmul per expert over torch.split
  segments, or "grouped", torch._grouped_mm over the segment offsets (only in
  recent PyTorch; its fast kernel is bf16 on sm90+, other dtypes take
  PyTorch's own per-group fallback or are refused: the script says
  "grouped unavailable" and skips).
* --precision applies to the expert GEMMs and the dense reference only: f32
  (TF32 off), tf32 (torch.backends.cuda.matmul.allow_tf32), bf16 (f32
  master weights and activations cast to bf16 inside the step, f32
  accumulation, as our backend converts inside its GEMM calls).
* Dense reference, as denseStep: Y = X W, dX = dY W^T, dW = X^T dY with X,
  dY [T*k, d] and W [d, d], i.e. the 6 T k d^2 FLOPs of the expert GEMMs.
* Timing: warm-up steps, then --reps repetitions alternating MoE and dense
  steps (synchronised, time.perf_counter), keeping the fastest of each.

Output: one machine-readable line per configuration,

  torch-layer T=<T> d=<d> n=<n> k=<k> precision=<p> impl=<impl> routing=<r> \
moe_ms=<x> dense_ms=<y> ratio=<dense/moe>

and human-readable lines starting with '#'. --check runs one step per
configuration, asserts that the losses are finite, that gradients reach
W_g, W_noise, the experts and x (and that the load and importance losses
alone reach the router), compares the layer output with a per-token
reference, and prints "check ok" (no timing).

Needs only PyTorch (works from 1.13 on the CPU to current releases on CUDA).
bench/baselines/lm_step_torch.py imports moe_forward from this file.
"""

import argparse
import contextlib
import math
import sys
import time
import warnings

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover - reported to the user
    print("moe_layer_torch.py: PyTorch is not installed", file=sys.stderr)
    sys.exit(1)

# PyTorch >= 2.9 warns that allow_tf32 will be replaced by fp32_precision.
# The legacy flag is used on purpose: mixing the two APIs is an error, and
# torch.compile's own code still reads the legacy one.
warnings.filterwarnings("ignore", message=".*TF32.*")
warnings.filterwarnings("ignore", message=".*tf32.*")

PRECISIONS = ("f32", "tf32", "bf16")
IMPLS = ("loop", "grouped")
ROUTINGS = ("uniform", "zipf")
NOISE_EPS = 1e-2
LOSS_WEIGHT = 0.1
CV_EPS = 1e-10


# ---------------------------------------------------------------------------
# Precision control
# ---------------------------------------------------------------------------

def set_tf32(enabled):
    """Sets TF32 for cuBLAS matmuls and cuDNN (legacy flags only)."""
    torch.backends.cuda.matmul.allow_tf32 = bool(enabled)
    torch.backends.cudnn.allow_tf32 = bool(enabled)


@contextlib.contextmanager
def tf32_off():
    """TF32 off for the matmuls inside (the router stays f32)."""
    saved = torch.backends.cuda.matmul.allow_tf32
    if saved:
        torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        if saved:
            torch.backends.cuda.matmul.allow_tf32 = True


class F32Matmul(torch.autograd.Function):
    """x @ w with TF32 off in the forward and in both backward GEMMs, so
    that the router's GEMMs are f32 even when the expert GEMMs use TF32 (as
    in our compiled steps and moe-layer-bench)."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        with tf32_off():
            return x.mm(w)

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        dx = dw = None
        with tf32_off():
            if ctx.needs_input_grad[0]:
                dx = grad.mm(w.t())
            if ctx.needs_input_grad[1]:
                dw = x.t().mm(grad)
        return dx, dw


def router_matmul(x, w):
    if x.is_cuda:
        return F32Matmul.apply(x, w)
    return x.mm(w)


# ---------------------------------------------------------------------------
# Grouped GEMM availability
# ---------------------------------------------------------------------------

_GROUPED_PROBES = {}


def grouped_mm_status(device, d, dtype):
    """(True, "") when torch._grouped_mm runs forward and backward on
    [*, d] x [n, d, d] operands of `dtype` on `device`, else (False, why)."""
    key = (str(device), d, dtype)
    if key in _GROUPED_PROBES:
        return _GROUPED_PROBES[key]
    if not hasattr(torch, "_grouped_mm"):
        result = (False, "torch._grouped_mm is not in PyTorch %s"
                  % torch.__version__)
    else:
        try:
            a = torch.randn(32, d, device=device, dtype=dtype,
                            requires_grad=True)
            b = torch.randn(2, d, d, device=device, dtype=dtype,
                            requires_grad=True)
            offs = torch.tensor([16, 32], device=device, dtype=torch.int32)
            out = torch._grouped_mm(a, b, offs=offs)
            # A dense incoming gradient, as in the layer (that of a sum is
            # an expanded tensor, which some versions refuse).
            out.backward(torch.ones_like(out))
            ref = torch.cat([a[:16] @ b[0], a[16:] @ b[1]])
            if not torch.allclose(out.float(), ref.float(), rtol=5e-2,
                                  atol=5e-1):
                raise RuntimeError("result differs from per-group matmuls")
            result = (True, "")
        except Exception as e:  # noqa: BLE001 - any failure means "no"
            result = (False, "torch._grouped_mm(%s, d=%d) on %s: %s"
                      % (str(dtype).replace("torch.", ""), d, device,
                         str(e).strip().splitlines()[0] if str(e).strip()
                         else type(e).__name__))
    _GROUPED_PROBES[key] = result
    return result


# ---------------------------------------------------------------------------
# The layer
# ---------------------------------------------------------------------------

def cv_squared(v):
    """CV^2 = population variance / (mean^2 + 1e-10), weighted by 0.1."""
    mean = v.mean()
    var = ((v - mean) ** 2).mean()
    return LOSS_WEIGHT * var / (mean * mean + CV_EPS)


def normal_cdf(u):
    return 0.5 * torch.erfc(-u * (1.0 / math.sqrt(2.0)))


def expert_gemms(buffer, experts, counts, offsets, precision, impl):
    """Rows of `buffer` [A, d] in expert order times their expert's [d, d]
    matrix; counts [n] rows per expert, offsets [n] int32 segment ends."""
    if precision == "bf16":
        buffer = buffer.to(torch.bfloat16)
        experts = experts.to(torch.bfloat16)
    if impl == "grouped":
        out = torch._grouped_mm(buffer, experts, offs=offsets)
    else:
        sizes = counts.tolist()  # one host synchronisation
        segments = buffer.split(sizes)
        weights = experts.unbind(0)
        parts = [seg.mm(w) for seg, w, rows in zip(segments, weights, sizes)
                 if rows > 0]
        out = torch.cat(parts) if parts else buffer.new_zeros(
            (0, experts.shape[-1]))
    return out.float() if precision == "bf16" else out


def moe_forward(x, Wg, Wn, We, k, precision="f32", impl="loop",
                zipf_bias=None, training=True):
    """One MoE layer on x [T, d] (f32). Returns (y [T, d], importance loss,
    load loss, info) with info the routing (for checks)."""
    T, d = x.shape
    n = Wg.shape[1]
    # Router, f32.
    clean = router_matmul(x, Wg)
    if zipf_bias is not None:
        clean = clean + zipf_bias
    raw = router_matmul(x, Wn)
    noise_std = F.softplus(raw) + NOISE_EPS
    if training:
        noisy = clean + torch.randn_like(clean) * noise_std
    else:
        noisy = clean
    kept = min(k + 1, n)
    top_values, top_index = noisy.topk(kept, dim=1)  # sorted, descending
    gate = torch.softmax(top_values[:, :k], dim=1)  # [T, k]
    expert = top_index[:, :k]  # [T, k]

    # Balancing losses.
    expert_flat = expert.reshape(-1)
    gate_flat = gate.reshape(-1)
    importance = torch.zeros(n, device=x.device, dtype=gate.dtype).index_add(
        0, expert_flat, gate_flat)
    if kept > k:
        thr_in = top_values[:, k:k + 1]
        thr_out = top_values[:, k - 1:k]
        inside = noisy > thr_in
        thr = torch.where(inside, thr_in, thr_out)
        load = normal_cdf((clean - thr) / noise_std).sum(0)
    else:  # k == n: every expert is in, P = 1
        load = torch.full((n,), float(T), device=x.device)
    loss_importance = cv_squared(importance)
    loss_load = cv_squared(load)

    # Dispatch plan: stable sort of the expert ids.
    A = T * k
    _, order = torch.sort(expert_flat, stable=True)
    counts = torch.bincount(expert_flat, minlength=n)
    offsets = counts.cumsum(0).to(torch.int32)
    token_of_position = order // k
    position_of = torch.empty_like(order).scatter_(
        0, order, torch.arange(A, device=x.device))

    buffer = x.index_select(0, token_of_position)  # dispatch
    expert_out = expert_gemms(buffer, We, counts, offsets, precision, impl)
    gathered = expert_out.index_select(0, position_of).view(T, k, d)
    y = (gathered * gate.unsqueeze(-1)).sum(1)  # combine
    info = {"expert": expert, "gate": gate, "counts": counts}
    return y, loss_importance, loss_load, info


# ---------------------------------------------------------------------------
# Benchmark
# ---------------------------------------------------------------------------

def uniform(shape, scale, device, generator):
    t = torch.rand(shape, generator=generator) * (2 * scale) - scale
    return t.to(device)


class LayerState:
    """The tensors of one configuration, as moe-layer-bench's LayerState."""

    def __init__(self, T, d, n, k, device, zipf):
        g = torch.Generator().manual_seed(1234 + 7 * n + k)
        w_scale = math.sqrt(3.0 / d)
        self.T, self.d, self.n, self.k = T, d, n, k
        self.x = uniform((T, d), math.sqrt(3.0), device, g).requires_grad_()
        self.Wg = uniform((d, n), w_scale, device, g).requires_grad_()
        self.Wn = uniform((d, n), w_scale, device, g).requires_grad_()
        self.We = uniform((n, d, d), w_scale, device, g).requires_grad_()
        self.dy = uniform((T, d), 1.0, device, g)
        self.dense_x = uniform((T * k, d), 1.0, device, g)
        self.dense_dy = uniform((T * k, d), 1.0, device, g)
        self.dense_w = self.We.detach()[0]
        self.one = torch.ones((), device=device)
        self.zipf_bias = None
        if zipf:
            self.zipf_bias = -torch.log(
                torch.arange(1, n + 1, dtype=torch.float32)).to(device)

    def params(self):
        return [self.x, self.Wg, self.Wn, self.We]

    def clear_grads(self):
        for p in self.params():
            p.grad = None


def moe_step(s, precision, impl):
    y, l_imp, l_load, info = moe_forward(
        s.x, s.Wg, s.Wn, s.We, s.k, precision, impl, s.zipf_bias)
    torch.autograd.backward([y, l_imp + l_load], [s.dy, s.one])
    return y, l_imp, l_load, info


def dense_step(X, W, dY, precision):
    """Y = X W, dX = dY W^T, dW = X^T dY on [T*k, d] x [d, d]; at bf16 the
    f32 operands are cast inside the step, as our backend's GEMM does."""
    if precision == "bf16":
        X, W, dY = (t.to(torch.bfloat16) for t in (X, W, dY))
    Y = X.mm(W)
    dX = dY.mm(W.t())
    dW = X.t().mm(dY)
    return Y, dX, dW


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device, fn):
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def check_configuration(s, precision, impl):
    """One step with assertions; raises AssertionError on a failure."""
    s.clear_grads()
    y, l_imp, l_load, info = moe_forward(
        s.x, s.Wg, s.Wn, s.We, s.k, precision, impl, s.zipf_bias)
    tag = "T=%d d=%d n=%d k=%d" % (s.T, s.d, s.n, s.k)
    assert torch.isfinite(y).all(), tag + ": non-finite layer output"
    assert torch.isfinite(l_imp) and torch.isfinite(l_load), (
        tag + ": non-finite loss (importance %s, load %s)"
        % (l_imp.item(), l_load.item()))
    assert int(info["counts"].sum()) == s.T * s.k, tag + ": lost assignments"

    # The balancing losses alone reach the router.
    g_imp = torch.autograd.grad(l_imp, [s.Wg], retain_graph=True)[0]
    assert g_imp.abs().max() > 0, tag + ": importance loss does not reach W_g"
    if s.k < s.n:
        g_load = torch.autograd.grad(l_load, [s.Wg, s.Wn], retain_graph=True)
        assert g_load[0].abs().max() > 0, tag + ": load loss does not reach W_g"
        assert g_load[1].abs().max() > 0, (
            tag + ": load loss does not reach W_noise")

    torch.autograd.backward([y, l_imp + l_load], [s.dy, s.one])
    for name, p in (("x", s.x), ("W_g", s.Wg), ("W_noise", s.Wn),
                    ("experts", s.We)):
        assert p.grad is not None, tag + ": no gradient reaches " + name
        assert torch.isfinite(p.grad).all(), tag + ": non-finite d" + name
        assert p.grad.abs().max() > 0, tag + ": zero gradient for " + name
    used = info["counts"] > 0
    per_expert = s.We.grad.abs().flatten(1).amax(1)
    assert (per_expert[used] > 0).all(), (
        tag + ": an expert with tokens got no gradient")

    # Output against a per-token reference on the first tokens.
    rows = min(s.T, 64)
    xs = s.x.detach()[:rows].double()
    W = s.We.detach().double()
    ref = torch.zeros(rows, s.d, dtype=torch.float64, device=xs.device)
    for j in range(s.k):
        e = info["expert"][:rows, j]
        g = info["gate"].detach()[:rows, j].double()
        ref += g.unsqueeze(1) * torch.bmm(xs.unsqueeze(1), W[e]).squeeze(1)
    err = (y.detach()[:rows].double() - ref).abs().max().item()
    scale = ref.abs().max().item() + 1e-30
    tol = {"f32": 1e-4, "tf32": 1e-2, "bf16": 3e-2}[precision]
    assert err <= tol * scale, (
        tag + ": output differs from the per-token reference by %.3g "
        "(max |ref| %.3g)" % (err, scale))
    s.clear_grads()
    return err / scale, expert0_share(info, s.n)


def expert0_share(info, n):
    counts = info["counts"].float()
    return (counts[0] / counts.sum()).item()


def time_configuration(s, args, device):
    """(fastest MoE step, fastest dense step) in seconds: warm-up steps,
    then --reps repetitions alternating the two, as moe-layer-bench."""
    def moe():
        moe_step(s, args.precision, args.impl)

    def dense():
        dense_step(s.dense_x, s.dense_w, s.dense_dy, args.precision)

    for _ in range(args.warmup):
        s.clear_grads()
        moe()
        dense()
    best_moe = best_dense = float("inf")
    for _ in range(args.reps):
        s.clear_grads()
        best_moe = min(best_moe, timed(device, moe))
        best_dense = min(best_dense, timed(device, dense))
    s.clear_grads()
    return best_moe, best_dense


def dense_bf16_operands(s, args, device):
    """The dense reference's GEMMs on operands already in bf16 (no casts):
    what PyTorch's bf16 GEMMs reach by themselves."""
    X, W, dY = (t.to(torch.bfloat16) for t in
                (s.dense_x, s.dense_w, s.dense_dy))
    return min(timed(device, lambda: dense_step(X, W, dY, "f32"))
               for _ in range(args.reps + 1))


def parse_list(text, name, parser):
    try:
        values = [int(v) for v in text.split(",") if v.strip() != ""]
    except ValueError:
        parser.error("%s must be a comma list of integers, got '%s'"
                     % (name, text))
    if not values or any(v < 1 for v in values):
        parser.error("%s must be a comma list of integers >= 1, got '%s'"
                     % (name, text))
    return values


class OneLineParser(argparse.ArgumentParser):
    """Bad arguments: one line on stderr, exit code 2."""

    def error(self, message):
        sys.stderr.write("%s: error: %s\n" % (self.prog, message))
        sys.exit(2)


def make_parser():
    p = OneLineParser(
        prog="moe_layer_torch.py",
        description="PyTorch peer of moe-layer-bench: one MoE layer forward "
        "+ backward against a dense GEMM of equal useful FLOPs.")
    p.add_argument("--tokens", type=int, default=8192, help="T (8192)")
    p.add_argument("--dmodel", type=int, default=512, help="d (512)")
    p.add_argument("--experts", default="8,64,512",
                   help="comma list of expert counts n (8,64,512)")
    p.add_argument("--k", default="4,8", help="comma list of k (4,8)")
    p.add_argument("--precision", default="f32",
                   help="expert GEMMs and dense reference: f32|tf32|bf16")
    p.add_argument("--impl", default="loop",
                   help="expert GEMMs: loop (matmul per expert) | grouped "
                   "(torch._grouped_mm)")
    p.add_argument("--routing", default="uniform",
                   help="uniform | zipf (gate bias -log(e+1))")
    p.add_argument("--device", default=None,
                   help="cuda | cpu (cuda when available)")
    p.add_argument("--reps", type=int, default=5,
                   help="timed repetitions, fastest kept (5)")
    p.add_argument("--warmup", type=int, default=2,
                   help="untimed steps first (2)")
    p.add_argument("--check", action="store_true",
                   help="assert finite losses, gradients and the output "
                   "against a reference; print 'check ok' (no timing)")
    return p


def parse_args(argv=None):
    p = make_parser()
    a = p.parse_args(argv)
    if a.tokens < 1 or a.dmodel < 1 or a.reps < 1 or a.warmup < 0:
        p.error("--tokens, --dmodel and --reps must be >= 1, --warmup >= 0")
    a.experts = parse_list(a.experts, "--experts", p)
    a.k = parse_list(a.k, "--k", p)
    for name, value, allowed in (("--precision", a.precision, PRECISIONS),
                                 ("--impl", a.impl, IMPLS),
                                 ("--routing", a.routing, ROUTINGS)):
        if value not in allowed:
            p.error("%s must be %s, got '%s'"
                    % (name, " or ".join(allowed), value))
    if a.device is None:
        a.device = "cuda" if torch.cuda.is_available() else "cpu"
    if a.device not in ("cuda", "cpu"):
        p.error("--device must be cuda or cpu, got '%s'" % a.device)
    return a


def describe_device(device):
    if device.type == "cuda":
        return "%s, CUDA %s" % (torch.cuda.get_device_name(device),
                                torch.version.cuda)
    return "cpu, %d threads" % torch.get_num_threads()


def open_device(name, program):
    """torch.device(name), or None after saying why on stderr when `name` is
    cuda and this PyTorch has no CUDA device."""
    if name == "cuda" and not torch.cuda.is_available():
        print("%s: --device cuda but this PyTorch has no CUDA device"
              % program, file=sys.stderr)
        return None
    return torch.device(name)


def main(argv=None):
    args = parse_args(argv)
    device = open_device(args.device, "moe_layer_torch.py")
    if device is None:
        return 1
    set_tf32(args.precision == "tf32")
    print("# torch %s on %s; precision %s (router f32), impl %s, routing %s"
          % (torch.__version__, describe_device(device), args.precision,
             args.impl, args.routing))
    if args.device == "cpu" and args.precision != "f32":
        print("# note: on the CPU tf32 computes in f32; bf16 casts as on CUDA")
    torch.manual_seed(42)

    if args.impl == "grouped":
        dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
        ok, why = grouped_mm_status(device, args.dmodel, dtype)
        if not ok:
            print("# grouped unavailable: %s; skipped" % why)
            return 0
        if dtype != torch.bfloat16:
            print("# note: torch._grouped_mm takes its fast kernel for bf16 "
                  "only; %s goes through PyTorch's per-group fallback"
                  % args.precision)

    checked = 0
    for n in args.experts:
        for k in args.k:
            if k > n:
                continue
            s = LayerState(args.tokens, args.dmodel, n, k, device,
                           args.routing == "zipf")
            if args.check:
                rel, share = check_configuration(s, args.precision, args.impl)
                print("# check T=%d d=%d n=%d k=%d: output rel. error %.2e, "
                      "expert 0 gets %.1f%% of the assignments"
                      % (s.T, s.d, n, k, rel, 100 * share))
                checked += 1
                s = None
                continue

            best_moe, best_dense = time_configuration(s, args, device)
            useful = 6.0 * s.T * k * s.d * s.d
            gate_flops = 12.0 * s.T * s.d * n
            print("# T=%d d=%d n=%d k=%d: MoE %.3f ms (%.1f useful GFLOP/s), "
                  "dense %.3f ms (%.1f GFLOP/s), gate GEMMs %.2f GFLOP"
                  % (s.T, s.d, n, k, best_moe * 1e3, useful / best_moe / 1e9,
                     best_dense * 1e3, useful / best_dense / 1e9,
                     gate_flops / 1e9))
            if args.precision == "bf16":
                print("# dense GEMMs alone, operands already bf16: %.3f ms"
                      % (dense_bf16_operands(s, args, device) * 1e3))
            print("torch-layer T=%d d=%d n=%d k=%d precision=%s impl=%s "
                  "routing=%s moe_ms=%.3f dense_ms=%.3f ratio=%.3f"
                  % (s.T, s.d, n, k, args.precision, args.impl, args.routing,
                     best_moe * 1e3, best_dense * 1e3, best_dense / best_moe))
            sys.stdout.flush()
            s = None
            if device.type == "cuda":
                torch.cuda.empty_cache()
    if args.check:
        if checked == 0:
            print("moe_layer_torch.py: no configuration with k <= n",
                  file=sys.stderr)
            return 1
        print("check ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
