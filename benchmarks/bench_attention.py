"""Scaled-dot-product attention, causal, forward and forward+backward: our fused kernel vs torch.

Shapes (B, H, T, D), float32: a small-model batch, then longer sequences. torch runs its own
CPU flash-attention kernel (torch.nn.functional.scaled_dot_product_attention) on the same data
and thread count (conftest.py). Results are checked against each other before timing counts.

    .venv/bin/python -m pytest benchmarks/bench_attention.py
    .venv/bin/python benchmarks/bench_attention.py --memory    # peak RSS, ours vs torch
"""
import resource
import subprocess
import sys

import numpy as np
import pytest

import tinygradattn as tga
import tinygradattn.nn.functional as F

try:
    from .common import assert_close, convert, require, rng_array, to_numpy, torch
except ImportError:                                   # run as a script (--memory only)
    torch = None

SHAPES = [(12, 4, 64, 32), (8, 8, 256, 64), (4, 8, 512, 64), (1, 8, 1024, 64)]


def _sdpa(impl):
    if impl == "tga":
        return lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return lambda q, k, v: torch.nn.functional.scaled_dot_product_attention(q, k, v,
                                                                             is_causal=True)


def _operands(impl, shape, requires_grad):
    arrays = [rng_array(shape, seed=s) for s in range(4)]
    q, k, v = (convert(impl, a, requires_grad) for a in arrays[:3])
    return q, k, v, convert(impl, arrays[3]), arrays


@pytest.mark.parametrize("impl", ["tga", "torch"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_sdpa_causal_fwd(benchmark, impl, shape):
    require(impl)
    q, k, v, _, arrays = _operands(impl, shape, False)
    fn = _sdpa(impl)
    benchmark.group = f"sdpa causal fwd {'x'.join(map(str, shape))}"
    benchmark.extra_info.update(impl=impl)
    out = benchmark(fn, q, k, v)
    want = F._sdpa_composed(*(tga.tensor(a, dtype=tga.float64) for a in arrays[:3]), None,
                            0.0, True, 1.0 / np.sqrt(shape[3]))
    assert_close(out, want.numpy(), rtol=1e-4, what=f"{impl} sdpa")


@pytest.mark.parametrize("impl", ["tga", "torch"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_sdpa_causal_fwd_bwd(benchmark, impl, shape):
    require(impl)
    q, k, v, dout, _ = _operands(impl, shape, True)
    fn = _sdpa(impl)

    def step():
        q.grad = k.grad = v.grad = None
        fn(q, k, v).backward(dout)
        return q.grad

    benchmark.group = f"sdpa causal fwd+bwd {'x'.join(map(str, shape))}"
    benchmark.extra_info.update(impl=impl)
    dq = benchmark(step)
    if impl == "tga" and torch is not None:            # one side-by-side gradient check
        tq, tk, tv, tdout, _ = _operands("torch", shape, True)
        _sdpa("torch")(tq, tk, tv).backward(tdout)
        assert_close(dq, to_numpy(tq.grad).astype(np.float64), rtol=1e-4, what="dq vs torch")


# ---- the attention map's own cost: the fused forward inside capture_attention ----------------
@pytest.mark.parametrize("heads", ["none", "one", "all"])
@pytest.mark.parametrize("shape", SHAPES[:3], ids=lambda s: "x".join(map(str, s)))
def test_sdpa_causal_fwd_map(benchmark, heads, shape):
    """Forward alone ("none": no capture open, the op's hot path), then with the map of head 0
    or of every head rebuilt from lse (nn.attention_maps.capture_attention)."""
    from tinygradattn.nn.attention_maps import capture_attention
    q, k, v, _, _ = _operands("tga", shape, False)
    fn = _sdpa("tga")
    chosen = {"one": [0], "all": None}.get(heads)

    def step():
        if heads == "none":
            return fn(q, k, v)
        with capture_attention(chosen) as maps:
            fn(q, k, v)
        return maps[0]

    benchmark.group = f"sdpa causal fwd + map {'x'.join(map(str, shape))}"
    benchmark.extra_info.update(impl="tga", heads=heads)
    out = benchmark(step)
    if heads != "none":
        assert_close(to_numpy(out.sum(-1)), np.ones(out.shape[:-1]), rtol=1e-4,
                     what="map rows sum to 1")


# ---- memory: peak RSS of one forward + backward, each library in its own process -----------
_MEMORY_CHILD = """
import resource, sys
impl, B, H, T, D = sys.argv[1], *map(int, sys.argv[2:])
if impl == "tga":
    import tinygradattn as tga, tinygradattn.nn.functional as F
    q, k, v = (tga.randn(B, H, T, D, requires_grad=True) for _ in range(3))
    dout = tga.randn(B, H, T, D)
    sdpa = F.scaled_dot_product_attention
else:
    import torch
    torch.set_num_threads(2)
    q, k, v = (torch.randn(B, H, T, D, requires_grad=True) for _ in range(3))
    dout = torch.randn(B, H, T, D)
    sdpa = torch.nn.functional.scaled_dot_product_attention
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
sdpa(q, k, v, is_causal=True).backward(dout)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(before, after)
"""


def peak_rss_mib(impl, B=1, H=8, T=4096, D=64):
    """(peak RSS before the op, peak RSS after fwd+bwd) in MiB, in a fresh interpreter."""
    res = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, impl, str(B), str(H), str(T),
                          str(D)], capture_output=True, text=True, check=True)
    before, after = map(int, res.stdout.split())
    return before / 1024, after / 1024                 # ru_maxrss is in KiB on Linux


if __name__ == "__main__":
    if "--memory" in sys.argv:
        for impl in ("tga", "torch"):
            before, after = peak_rss_mib(impl)
            print(f"{impl:6s} B=1 H=8 T=4096 D=64 causal fwd+bwd: peak RSS {after:.0f} MiB "
                  f"({after - before:+.0f} MiB over the {before:.0f} MiB after setup)")
    del resource
