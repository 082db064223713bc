"""The cuda kernels behind sin ... norm against the CPU backend, in numba's CUDA simulator
(tests/conftest.py): the scalar ops sin / cos / floor / ceil / round on NaN, inf, halves and
values past 2^23 (where every float32 is an integer), in float32 and float64, read through
strided views; cumsum (scan_) along every axis, both directions, every dtype, transposed and
sliced inputs; prod through the reduction kernel in one and two passes; and a few Tensor-level
calls with their gradients on the device. Tiny shapes: the simulator runs each thread in
Python. (The op table runs every entry on cuda too: tests/cuda/test_cuda_ops.py.)"""
import numpy as np
import pytest

import tinygradattn as tga
from tinygradattn.backend import get_backend
from tinygradattn.cuda import views

pytestmark = pytest.mark.usefixtures("cuda_device")

SPECIAL = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999997, -0.0, 1e30, -1e30, 2.0 ** 23 + 1,
           8388607.5, -3.7, 4503599627370495.5, float("inf"), float("-inf"), float("nan"), 7.0]


@pytest.fixture(scope="module")
def be():
    return get_backend("cuda")


@pytest.mark.parametrize("op", ["sin", "cos", "floor", "ceil", "round"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scalar_ops_special_values(be, op, dtype):
    cpu = get_backend("cpu")
    x = np.array(SPECIAL, dtype=dtype).reshape(3, 6)
    with np.errstate(invalid="ignore"):
        want = getattr(cpu, op)(x)
        got = be.to_host(getattr(be, op)(be.from_host(x)))
        got_t = be.to_host(getattr(be, op)(views.permute(be.from_host(
            np.ascontiguousarray(x.T)), (1, 0))))                # a transposed view, read in place
    assert got.dtype == want.dtype and got_t.dtype == want.dtype
    if op in ("sin", "cos"):      # the GPU's sinf / cosf are not numpy's to the last ulp
        np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == np.float32 else 1e-14,
                                   atol=1e-7, err_msg=op)
        np.testing.assert_allclose(got_t, want, rtol=1e-6, atol=1e-7, err_msg=op)
    else:                         # exact, NaN and inf included
        np.testing.assert_array_equal(got, want, err_msg=op)
        np.testing.assert_array_equal(got_t, want, err_msg=f"{op} transposed")


def _layouts(be, x):
    """(numpy view, cuda view) of x: contiguous, transposed, every other column."""
    out = [(x, be.from_host(x))]
    base = np.ascontiguousarray(np.transpose(x))
    out.append((np.transpose(base), views.permute(be.from_host(base), (2, 1, 0))))
    big = np.zeros(x.shape[:-1] + (2 * x.shape[-1],), x.dtype)
    big[..., ::2] = x
    out.append((big[..., ::2], views.basic_getitem(be.from_host(big),
                                                   (Ellipsis, slice(0, None, 2)))))
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_])
def test_cumsum_every_axis_both_ways(be, dtype):
    cpu = get_backend("cpu")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5))
    x = (x > 0) if dtype == np.bool_ else (x * 4).astype(dtype)
    for host, dev in _layouts(be, x):
        for axis in range(3):
            for reverse in (False, True):
                want = cpu.cumsum(host, axis, reverse)
                got = be.to_host(be.cumsum(dev, axis, reverse))
                assert got.dtype == want.dtype and got.shape == want.shape
                np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6,
                                           err_msg=f"axis {axis} reverse {reverse}")
    assert be.cumsum(be.from_host(np.zeros((0, 3), dtype)), 0, False).shape == (0, 3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_])
def test_prod_one_and_two_passes(be, dtype):
    cpu = get_backend("cpu")
    rng = np.random.default_rng(1)
    x = rng.uniform(0.5, 1.5, (3, 4, 9)) * rng.choice([-1, 1], (3, 4, 9))
    x = (x > -0.9) if dtype == np.bool_ else (np.sign(x) if dtype == np.int64 else x.astype(dtype))
    layouts = _layouts(be, x) if dtype == np.float32 else _layouts(be, x)[:1]
    for host, dev in layouts:
        for axis, keep in [(None, False), ((2,), True), ((0, 2), False), ((1,), False)]:
            want = cpu.prod(host, axis, keep)           # a lane folds 2: 9 cuts in chunks
            got = be.to_host(be.prod(dev, axis, keep))
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=f"axis {axis}")
    empty = be.prod(be.from_host(np.zeros((0, 2), dtype)), (0,), False)
    np.testing.assert_array_equal(be.to_host(empty), np.ones(2, cpu.prod(x, None, False).dtype))


def test_tensor_level_calls_and_gradients_on_cuda():
    values = np.array([[1.5, 0.0, -2.0], [0.25, -3.0, 0.75]], dtype=np.float32)
    for device in ("cpu", "cuda"):
        x = tga.tensor(values, device=device, requires_grad=True)
        outs = [x.prod(1), x.cumsum(0), x.norm(dim=1), x.norm(p=float("inf")),
                x.abs().rsqrt(), x.sin() * x.cos(), x.floor() + x.round(decimals=1)]
        total = sum(o.masked_fill(~o.isfinite(), 0.0).sum() for o in outs)
        total.backward()
        if device == "cpu":
            want_grad, want_outs = x.grad.numpy(), [o.detach().numpy() for o in outs]
        else:
            assert x.grad.device == "cuda"
            np.testing.assert_allclose(x.grad.cpu().numpy(), want_grad, rtol=1e-5, atol=1e-6)
            for o, w in zip(outs, want_outs):
                assert o.device == "cuda"
                np.testing.assert_allclose(o.detach().cpu().numpy(), w, rtol=1e-5, atol=1e-6)
    m = tga.tensor([[True, False], [True, True]], device="cuda")
    assert tga.all(m, 1).cpu().tolist() == [False, True] and m.cumsum(0).dtype == tga.int64
    x = tga.tensor([float("nan"), -float("inf"), 2.0, -0.5], device="cuda")
    assert x.isnan().cpu().tolist() == [True, False, False, False]
    assert x.isinf().cpu().tolist() == [False, True, False, False]
    assert x.isfinite().cpu().tolist() == [False, False, True, True]
    assert x.sign().cpu().tolist() == [0.0, -1.0, 1.0, -1.0]
