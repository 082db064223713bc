"""Fused row kernels, forward + backward, ours vs torch on the same data and thread count.

softmax (3072, 64) attention-like rows, (16384, 256), (8192, 1024) vocab-like rows;
cross-entropy (768, 65) and (16384, 65) (a char-level vocabulary), mean over the rows;
layer norm (768, 128) and (16384, 384) with weight and bias.
Run: python -m pytest benchmarks/bench_fused.py  (ratios: benchmarks/report.py).
"""
import numpy as np
import pytest

from .common import assert_close, convert, require, rng_array, torch

import tinygradattn as tga

SOFTMAX = [(3072, 64), (16384, 256), (8192, 1024)]
CROSS_ENTROPY = [(768, 65), (16384, 65)]
LAYER_NORM = [(768, 128), (16384, 384)]
IDS = lambda s: f"{s[0]}x{s[1]}"   # noqa: E731


def _functional(impl):
    return tga.nn.functional if impl == "tga" else torch.nn.functional


def _step(x, params, fn):
    """One forward + backward; returns x's gradient."""
    def run():
        for p in (x,) + params:
            p.grad = None
        fn()
        return x.grad
    return run


@pytest.mark.parametrize("impl", ["tga", "torch"])
@pytest.mark.parametrize("shape", SOFTMAX, ids=IDS)
def test_softmax_fwd_bwd(benchmark, impl, shape):
    require(impl)
    x_np, dout_np = rng_array(shape, seed=1, scale=4.0), rng_array(shape, seed=2)
    x, dout = convert(impl, x_np, requires_grad=True), convert(impl, dout_np)
    benchmark.group = f"fused softmax fwd+bwd {shape[0]}x{shape[1]}"
    benchmark.extra_info.update(impl=impl, bench="softmax fwd+bwd", shape=IDS(shape))
    dx = benchmark(_step(x, (), lambda: x.softmax(-1).backward(dout)))
    x64 = x_np.astype(np.float64)
    y = np.exp(x64 - x64.max(-1, keepdims=True))
    y /= y.sum(-1, keepdims=True)
    assert_close(dx, y * (dout_np - (dout_np * y).sum(-1, keepdims=True)), rtol=1e-5,
                 what=f"{impl} softmax grad")


@pytest.mark.parametrize("impl", ["tga", "torch"])
@pytest.mark.parametrize("shape", CROSS_ENTROPY, ids=IDS)
def test_cross_entropy_fwd_bwd(benchmark, impl, shape):
    require(impl)
    N, C = shape
    x_np = rng_array(shape, seed=3, scale=3.0)
    t_np = np.random.default_rng(4).integers(0, C, N)
    x = convert(impl, x_np, requires_grad=True)
    t = tga.tensor(t_np) if impl == "tga" else torch.from_numpy(t_np)
    F = _functional(impl)
    benchmark.group = f"fused cross_entropy fwd+bwd {N}x{C}"
    benchmark.extra_info.update(impl=impl, bench="cross_entropy fwd+bwd", shape=IDS(shape))
    dx = benchmark(_step(x, (), lambda: F.cross_entropy(x, t).backward()))
    x64 = x_np.astype(np.float64)
    p = np.exp(x64 - x64.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    p[np.arange(N), t_np] -= 1.0
    assert_close(dx, p / N, rtol=1e-5, what=f"{impl} cross_entropy grad")


@pytest.mark.parametrize("impl", ["tga", "torch"])
@pytest.mark.parametrize("shape", LAYER_NORM, ids=IDS)
def test_layer_norm_fwd_bwd(benchmark, impl, shape):
    require(impl)
    N, C = shape
    x_np, dout_np = rng_array(shape, seed=5), rng_array(shape, seed=6)
    w_np, b_np = rng_array((C,), seed=7), rng_array((C,), seed=8)
    x = convert(impl, x_np, requires_grad=True)
    w, b = convert(impl, w_np, requires_grad=True), convert(impl, b_np, requires_grad=True)
    dout = convert(impl, dout_np)
    F = _functional(impl)
    benchmark.group = f"fused layer_norm fwd+bwd {N}x{C}"
    benchmark.extra_info.update(impl=impl, bench="layer_norm fwd+bwd", shape=IDS(shape))
    dx = benchmark(_step(x, (w, b), lambda: F.layer_norm(x, (C,), w, b).backward(dout)))
    x64 = x_np.astype(np.float64)
    xhat = (x64 - x64.mean(-1, keepdims=True)) / np.sqrt(x64.var(-1, keepdims=True) + 1e-5)
    g = dout_np * w_np
    want = (g - g.mean(-1, keepdims=True) - xhat * (g * xhat).mean(-1, keepdims=True)) \
        / np.sqrt(x64.var(-1, keepdims=True) + 1e-5)
    assert_close(dx, want, rtol=1e-4, what=f"{impl} layer_norm grad")
