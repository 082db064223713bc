"""Softmax over the last axis, forward only: our fused kernel vs torch.

(3072, 64): attention-like rows (many short rows); (16384, 256); (8192, 1024): long rows
(vocab-like), where the 32 MiB output's allocation and first touch dominate. Inputs carry
large logits so rows are far from uniform. Forward + backward: bench_fused.py.
"""
import numpy as np
import pytest

from .common import assert_close, convert, require, rng_array

SHAPES = [(3072, 64), (16384, 256), (8192, 1024)]


def reference(x_np, dout_np):
    x = x_np.astype(np.float64)
    y = np.exp(x - x.max(-1, keepdims=True))
    y /= y.sum(-1, keepdims=True)
    dx = y * (dout_np - (dout_np * y).sum(-1, keepdims=True))   # fwd: y = softmax(x)
    return y, dx


@pytest.mark.parametrize("impl", ["tga", "torch"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_softmax_fwd(benchmark, impl, shape):
    require(impl)
    x_np = rng_array(shape, seed=1, scale=4.0)
    x = convert(impl, x_np)
    benchmark.group = f"softmax fwd {shape[0]}x{shape[1]}"
    benchmark.extra_info.update(impl=impl, bench="softmax fwd", shape=f"{shape[0]}x{shape[1]}")
    y = benchmark(lambda: x.softmax(-1))
    assert_close(y, reference(x_np, x_np)[0], rtol=1e-5, what=f"{impl} softmax")
