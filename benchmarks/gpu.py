"""Our Numba-CUDA kernels against PyTorch's on the same GPU, in one run, as ratios.

    python -m benchmarks.gpu                 # the full set (a few minutes on an H100)
    python -m benchmarks.gpu --quick         # smaller N, fewer rounds (~1-2 minutes)
    python -m benchmarks.report --device cuda [--quick]     # the same, from the report

Ratio = torch's time / ours: > 1 means we are faster. Each case runs ours and torch's on the
same data, checks that they agree, then times each (`--rounds` timings of a loop of calls,
the minimum per call, with a device synchronize before the clock stops). Cases:

- matmul float32, N x N @ N x N for N = 1024 .. 8192, against torch with TF32 off (the
  ratio) and with TF32 on (a reference column: tensor cores, a different precision);
- softmax and layer norm over 16384 rows of 1024 (forward), with the memory bandwidth each
  reaches (bytes read + written / time) and ours as a share of torch's;
- cross-entropy (8192 rows, 8192 classes) forward + backward;
- attention forward + backward, (8, 8, 1024, 64), causal, against torch's SDPA;
- AdamW over 10M parameters (10 tensors of 1M) against torch's foreach and fused AdamW;
- a GPT training step (forward, cross-entropy, backward, clip, AdamW) for the charlm presets
  nano and base, against the PyTorch twin (tests/torch_gpt.py) run eagerly.

Writes benchmarks/results/gpu-<stamp>.json and prints a Markdown table. `--tiny` runs every
case at toy sizes (a check of this script: under NUMBA_ENABLE_CUDASIM, against torch on the
CPU when torch has no GPU; the ratios then mean nothing).
"""
import argparse
import datetime
import json
import math
import pathlib
import platform
import sys
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:           # `python benchmarks/gpu.py` as well as `-m`
    sys.path.insert(0, str(ROOT))

import tinygradattn as tga                                       # noqa: E402
import tinygradattn.nn.functional as F                           # noqa: E402

SIZES = {   # per mode: the shapes of each case
    "full": dict(matmul=(1024, 2048, 4096, 8192), rows=(16384, 1024), ce=(8192, 8192),
                 attn=(8, 8, 1024, 64), adam=(10, 1_000_000), gpt=("nano", "base")),
    "quick": dict(matmul=(1024, 4096), rows=(16384, 1024), ce=(8192, 8192),
                  attn=(8, 8, 1024, 64), adam=(10, 1_000_000), gpt=("nano", "base")),
    "tiny": dict(matmul=(8,), rows=(4, 16), ce=(4, 8), attn=(1, 2, 4, 4), adam=(2, 16),
                 gpt=("tiny",)),
}
GPT_PRESETS = {
    "nano": dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12),
    "base": dict(n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=64),
    "tiny": dict(n_layer=1, n_head=2, n_embd=8, block_size=4, batch_size=2),
}
VOCAB = 65


class Bench:
    def __init__(self, torch, device, rounds, min_time):
        self.torch, self.tdev = torch, device
        self.rounds, self.min_time = rounds, min_time
        self.rows = []

    def sync(self):
        tga.cuda.synchronize()
        if self.tdev == "cuda":
            self.torch.cuda.synchronize()

    def time(self, fn):
        """Seconds per call: the fastest of `rounds` timed loops (each >= min_time)."""
        fn()
        self.sync()
        n, start = 1, time.perf_counter()          # calibrate the loop length
        fn()
        self.sync()
        once = max(time.perf_counter() - start, 1e-6)
        n = max(1, min(1000, int(self.min_time / once)))
        best = math.inf
        for _ in range(self.rounds):
            self.sync()
            start = time.perf_counter()
            for _ in range(n):
                fn()
            self.sync()
            best = min(best, (time.perf_counter() - start) / n)
        return best

    def row(self, case, ours, theirs, **extra):
        self.rows.append(dict(case=case, ours_s=ours, torch_s=theirs,
                              ratio=theirs / ours if ours else math.nan, **extra))
        r = self.rows[-1]
        print(f"  {case:42s} ours {ours * 1e3:9.3f} ms  torch {theirs * 1e3:9.3f} ms  "
              f"ratio {r['ratio']:6.3f}", flush=True)

    # ---- data ---------------------------------------------------------------------------
    def pair(self, array, requires_grad=False):
        """(ours on cuda, torch's on its device) of the same float32 numpy data."""
        ours = tga.tensor(array, device="cuda", requires_grad=requires_grad)
        theirs = self.torch.tensor(array, device=self.tdev, requires_grad=requires_grad)
        return ours, theirs

    def check(self, what, ours, theirs, rtol=2e-3, atol=2e-4):
        a = ours.detach().cpu().numpy()
        b = theirs.detach().cpu().numpy()
        scale = max(1.0, float(np.abs(b).max())) if b.size else 1.0
        err = float(np.abs(a - b).max()) if a.size else 0.0
        if not err <= atol * scale + rtol * float(np.abs(b).max() if b.size else 0):
            raise AssertionError(f"{what}: ours and torch's differ by {err:.3g} "
                                 f"(scale {scale:.3g})")


# ---- cases ------------------------------------------------------------------------------
def bench_matmul(b, sizes):
    torch = b.torch
    rng = np.random.default_rng(0)
    for n in sizes:
        x = rng.standard_normal((n, n)).astype(np.float32)
        y = rng.standard_normal((n, n)).astype(np.float32)
        (xa, xt), (ya, yt) = b.pair(x), b.pair(y)
        tf32 = getattr(getattr(torch.backends, "cuda", None), "matmul", None)
        if tf32 is not None:
            tf32.allow_tf32 = False
        b.check(f"matmul {n}", xa @ ya, xt @ yt, rtol=1e-3, atol=1e-3)
        ours = b.time(lambda: xa @ ya)
        theirs = b.time(lambda: xt @ yt)
        flops = 2 * n ** 3
        extra = {"tflops_ours": flops / ours / 1e12, "tflops_torch": flops / theirs / 1e12}
        if tf32 is not None and b.tdev == "cuda":
            tf32.allow_tf32 = True
            extra["torch_tf32_s"] = b.time(lambda: xt @ yt)
            tf32.allow_tf32 = False
        b.row(f"matmul f32 {n}x{n}x{n} (TF32 off)", ours, theirs, **extra)


def bench_rows(b, shape):
    torch = b.torch
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal(shape[-1]).astype(np.float32)
    bias = rng.standard_normal(shape[-1]).astype(np.float32)
    (xa, xt), (wa, wt), (ba, bt) = b.pair(x), b.pair(w), b.pair(bias)
    n_bytes = 2 * x.nbytes                                  # read once, write once
    b.check("softmax", F.softmax(xa, -1), torch.softmax(xt, -1))
    ours, theirs = b.time(lambda: F.softmax(xa, -1)), b.time(lambda: torch.softmax(xt, -1))
    b.row(f"softmax {shape[0]}x{shape[1]}", ours, theirs, gbps_ours=n_bytes / ours / 1e9,
          gbps_torch=n_bytes / theirs / 1e9, bandwidth_share=theirs / ours)
    ln = lambda: F.layer_norm(xa, (shape[-1],), wa, ba)                 # noqa: E731
    tln = lambda: torch.nn.functional.layer_norm(xt, (shape[-1],), wt, bt)   # noqa: E731
    b.check("layer norm", ln(), tln())
    ours, theirs = b.time(ln), b.time(tln)
    b.row(f"layer norm {shape[0]}x{shape[1]}", ours, theirs, gbps_ours=n_bytes / ours / 1e9,
          gbps_torch=n_bytes / theirs / 1e9, bandwidth_share=theirs / ours)


def bench_cross_entropy(b, shape):
    torch = b.torch
    rng = np.random.default_rng(2)
    logits = rng.standard_normal(shape).astype(np.float32)
    target = rng.integers(0, shape[1], shape[0])
    xa, xt = b.pair(logits, requires_grad=True)
    ya, yt = tga.tensor(target, device="cuda"), torch.tensor(target, device=b.tdev)

    def ours():
        F.cross_entropy(xa, ya).backward()

    def theirs():
        torch.nn.functional.cross_entropy(xt, yt).backward()
    b.check("cross-entropy", F.cross_entropy(xa, ya), torch.nn.functional.cross_entropy(xt, yt))
    b.row(f"cross-entropy fwd+bwd {shape[0]}x{shape[1]}", b.time(ours), b.time(theirs))


def bench_attention(b, shape):
    torch = b.torch
    rng = np.random.default_rng(3)
    q, k, v, g = (rng.standard_normal(shape).astype(np.float32) for _ in range(4))
    (qa, qt), (ka, kt), (va, vt) = (b.pair(a, requires_grad=True) for a in (q, k, v))
    ga, gt = b.pair(g)
    sdpa = torch.nn.functional.scaled_dot_product_attention
    b.check("attention", F.scaled_dot_product_attention(qa, ka, va, is_causal=True),
            sdpa(qt, kt, vt, is_causal=True))

    def ours():
        F.scaled_dot_product_attention(qa, ka, va, is_causal=True).backward(ga)

    def theirs():
        sdpa(qt, kt, vt, is_causal=True).backward(gt)
    b.row(f"attention fwd+bwd {shape} causal", b.time(ours), b.time(theirs))


def bench_adamw(b, shape):
    torch = b.torch
    rng = np.random.default_rng(4)
    arrays = [rng.standard_normal(shape[1]).astype(np.float32) for _ in range(shape[0])]
    grads = [rng.standard_normal(shape[1]).astype(np.float32) for _ in range(shape[0])]
    ours = [tga.tensor(a, device="cuda", requires_grad=True) for a in arrays]
    for p, g in zip(ours, grads):
        p.grad = tga.tensor(g, device="cuda")
    opt = tga.optim.AdamW(ours, lr=1e-3)
    rows = {}
    for impl in ("foreach", "fused"):
        theirs = [torch.tensor(a, device=b.tdev, requires_grad=True) for a in arrays]
        for p, g in zip(theirs, grads):
            p.grad = torch.tensor(g, device=b.tdev)
        kw = {impl: True} if (impl == "foreach" or b.tdev == "cuda") else {"foreach": True}
        topt = torch.optim.AdamW(theirs, lr=1e-3, **kw)
        rows[impl] = b.time(topt.step)
    n = shape[0] * shape[1]
    b.row(f"AdamW step {n / 1e6:g}M params", b.time(opt.step), rows["foreach"],
          torch_fused_s=rows["fused"])


def bench_gpt(b, presets):
    from tests.torch_gpt import BETAS, CLIP, LR, WEIGHT_DECAY, torch_adamw, torch_gpt
    from tinygradattn.models import GPT, GPTConfig
    import types
    torch = b.torch
    for name in presets:
        p = GPT_PRESETS[name]
        cfg = dict(vocab_size=VOCAB, block_size=p["block_size"], n_layer=p["n_layer"],
                   n_head=p["n_head"], n_embd=p["n_embd"], dropout=0.0, bias=True)
        tga.manual_seed(0)
        model = GPT(GPTConfig(**cfg))
        twin = torch_gpt(torch, types.SimpleNamespace(**cfg))
        twin.load_state_dict({k: torch.from_numpy(v.numpy().copy())
                              for k, v in model.state_dict().items()}, strict=True)
        model.to("cuda")
        twin.to(b.tdev)
        opt = model.configure_optimizers(WEIGHT_DECAY, LR, betas=BETAS)
        topt = torch_adamw(torch, twin)
        data = np.random.default_rng(5).integers(0, VOCAB, (p["batch_size"],
                                                            p["block_size"] + 1))
        x, y = tga.tensor(data[:, :-1], device="cuda"), tga.tensor(data[:, 1:], device="cuda")
        xt = torch.tensor(data[:, :-1], device=b.tdev)
        yt = torch.tensor(data[:, 1:], device=b.tdev)
        params, tparams = list(model.parameters()), list(twin.parameters())

        def ours():
            _, loss = model(x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            tga.nn.utils.clip_grad_norm_(params, CLIP)
            opt.step()

        def theirs():
            _, loss = twin(xt, yt)
            topt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(tparams, CLIP)
            topt.step()
        b.check(f"GPT {name} loss", model(x, y)[1], twin(xt, yt)[1], rtol=1e-3)
        tokens = p["batch_size"] * p["block_size"]
        ours_s, theirs_s = b.time(ours), b.time(theirs)
        b.row(f"GPT {name} training step", ours_s, theirs_s, tokens_per_s_ours=tokens / ours_s,
              tokens_per_s_torch=tokens / theirs_s)


CASES = [("matmul", bench_matmul), ("rows", bench_rows), ("ce", bench_cross_entropy),
         ("attn", bench_attention), ("adam", bench_adamw), ("gpt", bench_gpt)]


def markdown(rows, meta):
    lines = [f"GPU benchmark, {meta['date']}, {meta['device']} (torch {meta['torch']} on "
             f"{meta['torch_device']}; numba-cuda {meta['numba_cuda']})", "",
             "| case | ours (ms) | torch (ms) | torch / ours | notes |",
             "|---|---:|---:|---:|---|"]
    for r in rows:
        notes = []
        if "torch_tf32_s" in r:
            notes.append(f"torch TF32 on: {r['torch_tf32_s'] * 1e3:.3f} ms "
                         f"(ratio {r['torch_tf32_s'] / r['ours_s']:.3f}); "
                         f"{r['tflops_ours']:.1f} vs {r['tflops_torch']:.1f} TFLOP/s")
        if "gbps_ours" in r:
            notes.append(f"{r['gbps_ours']:.0f} vs {r['gbps_torch']:.0f} GB/s "
                         f"({100 * r['bandwidth_share']:.0f}% of torch's bandwidth)")
        if "torch_fused_s" in r:
            notes.append(f"torch fused: {r['torch_fused_s'] * 1e3:.3f} ms")
        if "tokens_per_s_ours" in r:
            notes.append(f"{r['tokens_per_s_ours']:.0f} vs {r['tokens_per_s_torch']:.0f} "
                         f"tokens/s")
        if "error" in r:
            notes.append(f"FAILED: {r['error']}")
        lines.append(f"| {r['case']} | {r.get('ours_s', math.nan) * 1e3:.3f} | "
                     f"{r.get('torch_s', math.nan) * 1e3:.3f} | {r.get('ratio', math.nan):.3f} "
                     f"| {'; '.join(notes)} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu",
                                     description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="fewer sizes, shorter timings")
    mode.add_argument("--tiny", action="store_true", help="toy sizes: a check of the script")
    parser.add_argument("--only", help="comma-separated cases: " + ",".join(n for n, _ in CASES))
    parser.add_argument("--out", type=pathlib.Path, help="results JSON (default: "
                        "benchmarks/results/gpu-<stamp>.json)")
    parser.add_argument("--tune", action="append", default=[], metavar="KEY=N",
                        help="override a kernel size of tinygradattn.cuda.launch.GPU_TUNING "
                             "(e.g. --tune gemm_tile_m=128); repeatable")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        raise SystemExit("benchmarks.gpu needs PyTorch (with CUDA on a GPU machine)")
    if not tga.cuda.is_available():
        raise SystemExit("benchmarks.gpu: no cuda device here (a GPU with numba-cuda, or "
                         "NUMBA_ENABLE_CUDASIM=1 with --tiny)")
    _apply_tuning(args.tune)
    tdev = "cuda" if torch.cuda.is_available() else "cpu"
    if tdev == "cpu" and not args.tiny:
        raise SystemExit("benchmarks.gpu: torch sees no GPU (a CPU torch build?): the ratios "
                         "would compare different devices; use --tiny for a script check")
    mode_name = "tiny" if args.tiny else "quick" if args.quick else "full"
    sizes = SIZES[mode_name]
    bench = Bench(torch, tdev, rounds=2 if args.tiny else 3 if args.quick else 5,
                  min_time=0.0 if args.tiny else 0.05 if args.quick else 0.2)
    only = set(args.only.split(",")) if args.only else None
    meta = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
            "tune": args.tune,
            "device": tga.cuda.get_device_name(), "torch": torch.__version__,
            "torch_device": torch.cuda.get_device_name() if tdev == "cuda" else "cpu",
            "numba_cuda": _version("numba-cuda"), "python": platform.python_version(),
            "mode": mode_name}
    print(f"GPU benchmark ({mode_name}) on {meta['device']}", flush=True)
    for name, case in CASES:
        if only and name not in only:
            continue
        try:
            case(bench, sizes[name])
        except Exception as e:         # noqa: BLE001 - one broken case costs only its rows
            bench.rows.append({"case": name, "error": f"{type(e).__name__}: {e}"})
            print(f"  {name}: FAILED {type(e).__name__}: {e}", flush=True)
    table = markdown(bench.rows, meta)
    print("\n" + table)
    out = args.out or HERE / "results" / f"gpu-{meta['date'].replace(':', '')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "rows": bench.rows, "markdown": table}, indent=1))
    print(f"\nwrote {out}")
    return 1 if any("error" in r for r in bench.rows) else 0


def _apply_tuning(pairs):
    """KEY=N overrides of the kernel sizes, before any kernel is compiled."""
    from tinygradattn.cuda import launch
    tune = launch.tuning()
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in tune or not value.isdigit():
            raise SystemExit(f"--tune {pair}: expected KEY=N with KEY one of {sorted(tune)}")
        tune[key] = int(value)


def _version(dist):
    try:
        from importlib.metadata import version
        return version(dist)
    except Exception:                  # noqa: BLE001
        return "?"


if __name__ == "__main__":
    sys.exit(main())
