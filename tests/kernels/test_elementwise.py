"""Elementwise kernels of tinygradattn._elementwise against numpy oracles: GELU forward and
backward (exact and tanh forms, with and without the saved derivative) in float32 and float64
on 1 and 2 threads; add / sub / mul bit for bit on any thread count, NaN and inf included, in
place and overlap errors.
"""
import math

import numpy as np
import pytest

from tinygradattn import _elementwise
from helpers import close, rows_with_outliers, tuned


@pytest.fixture(autouse=True)
def threads_on_small_work():
    with tuned(_elementwise, min_elems_per_thread=0):
        yield


DTYPES = [np.float32, np.float64]
THREADS = [1, 2]


# float32: kernels compute in double and round once, the oracle is float64: a few ulps;
# backward sums C products whose terms cancel: relative to max(1, |result|)
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-11, atol=1e-12)}


def ref_gelu(x, tanh_form):
    x = x.astype(np.float64)
    if tanh_form:
        k = math.sqrt(2 / math.pi)
        t = np.tanh(k * (x + 0.044715 * x ** 3))
        return 0.5 * x * (1 + t), 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x)
    erf = np.vectorize(math.erf)(x / math.sqrt(2))
    return 0.5 * x * (1 + erf), 0.5 * (1 + erf) + x * np.exp(-x * x / 2) / math.sqrt(2 * math.pi)


# ---- GELU kernels ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("n", [1, 2, 97, 1031])
@pytest.mark.parametrize("tanh_form", [False, True])
def test_gelu_kernels(dtype, n_threads, n, tanh_form):
    x = rows_with_outliers((n,), n, dtype)
    out = np.empty_like(x)
    _elementwise.gelu_fwd(out, x, tanh_form, n_threads)
    ry, rd = ref_gelu(x, tanh_form)
    close(out, ry, TOL[dtype], "gelu")
    dout = rows_with_outliers((n,), n + 1, dtype, scale=1.0)
    dx = np.empty_like(x)
    _elementwise.gelu_bwd(dx, dout, x, tanh_form, n_threads)
    close(dx, rd * dout, TOL[dtype], "gelu dx")
    grad = np.full_like(x, np.nan)                      # forward + derivative in one pass
    out2 = np.empty_like(x)
    _elementwise.gelu_fwd(out2, x, tanh_form, n_threads, grad)
    np.testing.assert_array_equal(out2, out)
    close(grad, rd, TOL[dtype], "gelu derivative")
    np.testing.assert_array_equal(dout * grad, dx)      # gelu_bwd's bits
    xin = x.copy()
    _elementwise.gelu_fwd(xin, xin, tanh_form, n_threads, grad)   # out may be x, grad may not
    np.testing.assert_array_equal(xin, out)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gelu_kernels_empty(dtype):
    x = np.empty(0, dtype)
    for tanh_form in (False, True):
        _elementwise.gelu_fwd(np.empty(0, dtype), x, tanh_form, 2)
        _elementwise.gelu_fwd(np.empty(0, dtype), x, tanh_form, 2, np.empty(0, dtype))
        _elementwise.gelu_bwd(np.empty(0, dtype), x, x, tanh_form, 2)


def test_gelu_fwd_grad_errors():
    x = np.ones(8, np.float32)
    with pytest.raises(ValueError, match="output grad .* overlaps input x"):
        _elementwise.gelu_fwd(np.empty(8, np.float32), x, False, 1, x)
    with pytest.raises(ValueError, match="grad"):
        _elementwise.gelu_fwd(np.empty(8, np.float32), x, False, 1, np.empty(7, np.float32))


def rng_for(*key):
    return np.random.default_rng(abs(hash(key)) % (2**32))


BINARY_OPS = [(0, np.add), (1, np.subtract), (2, np.multiply)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op,ufunc", BINARY_OPS, ids=["add", "sub", "mul"])
@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 97, 4099])
def test_binary_matches_numpy_bit_for_bit(dtype, op, ufunc, n):
    """One rounding per element: numpy's bits, on 1, 2 and 3 threads (threshold lowered so the
    slices, cut at multiples of 16, really split), NaN and inf included."""
    r = rng_for(f"binary{op}", dtype, (n,))
    a, b = r.standard_normal(n).astype(dtype) * 100, r.standard_normal(n).astype(dtype)
    if n > 3:
        a[1], b[2], a[3] = np.nan, np.inf, -np.inf
    saved = _elementwise._set_tuning(binary_min_elems_per_thread=1)
    try:
        for n_threads in (1, 2, 3):
            out = np.full(n, 7.0, dtype)
            _elementwise.binary(out, a, b, op, n_threads)
            np.testing.assert_array_equal(out, ufunc(a, b))
    finally:
        _elementwise._set_tuning(**saved)


def test_binary_in_place_and_errors():
    a, b = np.arange(40, dtype=np.float32), np.ones(40, np.float32)
    _elementwise.binary(a, a, b, 0, 2)                                 # out is a: allowed
    np.testing.assert_array_equal(a, np.arange(40) + 1)
    with pytest.raises(ValueError, match="partially overlaps a"):
        _elementwise.binary(a[1:], a[:-1], b[1:], 0)
    with pytest.raises(ValueError, match=r"out \(40,\), a \(40,\) and b \(39,\)"):
        _elementwise.binary(a, a, b[1:], 0)
    with pytest.raises(ValueError, match="op must be 0"):
        _elementwise.binary(a, a, b, 3)
    with pytest.raises(TypeError, match="out float32, a float32, b float64"):
        _elementwise.binary(a, a, b.astype(np.float64), 0)
    with pytest.raises(ValueError, match="C-contiguous"):
        _elementwise.binary(np.empty(20, np.float32), a[::2], b[::2], 0)
