"""Per-op overhead: the Python, dispatch and graph cost of tiny ops, where kernels are free.

- a 2x2 `a + b` forward (no grad);
- `(a @ b).sum().backward()` at 64x64 with requires_grad (grads reset each call, as
  zero_grad(set_to_none=True) does in a training loop).
"""
import numpy as np
import pytest

from .common import assert_close, convert, require, rng_array


@pytest.mark.parametrize("impl", ["tga", "torch"])
def test_add_2x2(benchmark, impl):
    require(impl)
    a_np, b_np = rng_array((2, 2), seed=1), rng_array((2, 2), seed=2)
    a, b = convert(impl, a_np), convert(impl, b_np)
    benchmark.group = "overhead add 2x2 fwd"
    benchmark.extra_info.update(impl=impl, bench="overhead: a + b fwd", shape="2x2")
    out = benchmark(lambda: a + b)
    assert_close(out, a_np.astype(np.float64) + b_np, rtol=1e-6, what=f"{impl} add")


@pytest.mark.parametrize("impl", ["tga", "torch"])
def test_matmul_sum_backward_64(benchmark, impl):
    require(impl)
    a_np, b_np = rng_array((64, 64), seed=1), rng_array((64, 64), seed=2)
    a, b = convert(impl, a_np, requires_grad=True), convert(impl, b_np, requires_grad=True)

    def step():
        a.grad = None
        b.grad = None
        (a @ b).sum().backward()
        return a.grad

    benchmark.group = "overhead (a@b).sum().backward() 64x64"
    benchmark.extra_info.update(impl=impl, bench="overhead: (a@b).sum().backward()",
                                shape="64x64")
    grad_a = benchmark(step)
    # d sum(a @ b) / da = ones @ b.T: every row is the row sums of b
    want = np.broadcast_to(b_np.astype(np.float64).sum(1), (64, 64))
    assert_close(grad_a, want, rtol=1e-5, what=f"{impl} grad a")
