"""The softmax family of tinygradattn._core (softmax_fwd / softmax_bwd, log_softmax_fwd /
log_softmax_bwd) against numpy oracles: float32 and float64, 1 and 2 threads, outliers, -inf
entries, all -inf rows, huge logits, in-place use, empty shapes, errors that name the arrays.
"""
import numpy as np
import pytest

from tinygradattn import _core
from helpers import close, rows_with_outliers


ROW_TOL = {np.float32: dict(rtol=2e-6, atol=1e-7), np.float64: dict(rtol=1e-13, atol=1e-15)}


# backward: dout - sum_j(dout * y) cancels, so the absolute error follows |dout| ~ 1, not |dx|
ROW_BWD_TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-14)}


# log_softmax_fwd: x - max - lse is a difference of O(|x|) ~ 50 numbers: abs error ~ eps * 50
LOG_FWD_TOL = {np.float32: dict(rtol=2e-6, atol=1e-5), np.float64: dict(rtol=1e-13, atol=1e-13)}


DTYPES = [np.float32, np.float64]


THREADS = [1, 2]


pytestmark = pytest.mark.usefixtures("core_threads_on_small_work")


def rng_for(*key):
    return np.random.default_rng(abs(hash(key)) % (2**32))


def np_softmax(x):
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    e = np.exp(x - m)
    return e / e.sum(axis=-1, keepdims=True)


def np_log_softmax(x):
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def make_logits(rng, n, c, dtype):
    """Rows far from uniform: a few large positive and negative outliers per row."""
    x = rng.standard_normal((n, c)) * 3
    idx = rng.integers(0, c, size=(n, 2))
    x[np.arange(n), idx[:, 0]] += 40.0
    x[np.arange(n), idx[:, 1]] -= 60.0
    return x.astype(dtype)


ROW_SHAPES = [(1, 1), (1, 7), (3, 1), (17, 33), (64, 1000), (300, 257)]


def assert_rows_close(got, want, dtype, what):
    if "bwd" in what:
        tol = ROW_BWD_TOL[dtype]
    elif "log_softmax" in what:
        tol = LOG_FWD_TOL[dtype]
    else:
        tol = ROW_TOL[dtype]
    np.testing.assert_allclose(got, want, err_msg=f"{what} {np.dtype(dtype).name}", **tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("shape", ROW_SHAPES)
def test_softmax_fwd_bwd(dtype, n_threads, shape):
    rng = rng_for("softmax", dtype, n_threads, shape)
    x = make_logits(rng, *shape, dtype)
    y = np.empty_like(x)
    _core.softmax_fwd(y, x, n_threads)
    assert_rows_close(y, np_softmax(x), dtype, "softmax_fwd")
    dout = rng.standard_normal(shape).astype(dtype)
    dx = np.empty_like(x)
    _core.softmax_bwd(dx, y, dout, n_threads)
    y64, d64 = y.astype(np.float64), dout.astype(np.float64)
    want = y64 * (d64 - (d64 * y64).sum(-1, keepdims=True))
    assert_rows_close(dx, want, dtype, "softmax_bwd")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("shape", ROW_SHAPES)
def test_log_softmax_fwd_bwd(dtype, n_threads, shape):
    rng = rng_for("log_softmax", dtype, n_threads, shape)
    x = make_logits(rng, *shape, dtype)
    y = np.empty_like(x)
    _core.log_softmax_fwd(y, x, n_threads)
    assert_rows_close(y, np_log_softmax(x), dtype, "log_softmax_fwd")
    dout = rng.standard_normal(shape).astype(dtype)
    dx = np.empty_like(x)
    _core.log_softmax_bwd(dx, y, dout, n_threads)
    y64, d64 = y.astype(np.float64), dout.astype(np.float64)
    want = d64 - np.exp(y64) * d64.sum(-1, keepdims=True)
    assert_rows_close(dx, want, dtype, "log_softmax_bwd")


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_neg_inf_and_huge(dtype):
    x = np.array([[0.0, -np.inf, 1.0, -np.inf],          # some -inf: zeros there, no NaN
                  [1e30, -1e30, 1e30, 0.0],               # huge finite logits: no overflow
                  [-np.inf, -np.inf, -np.inf, -np.inf],   # all -inf: NaN, as in PyTorch
                  [-1e30, -1e30, -1e30, -1e30]], dtype=dtype)
    y = np.empty_like(x)
    _core.softmax_fwd(y, x, 1)
    np.testing.assert_allclose(y[0], [1 / (1 + np.e), 0, np.e / (1 + np.e), 0], rtol=1e-6)
    np.testing.assert_array_equal(y[1], [0.5, 0, 0.5, 0])
    assert np.isnan(y[2]).all()
    np.testing.assert_array_equal(y[3], 0.25)
    ly = np.empty_like(x)
    _core.log_softmax_fwd(ly, x, 1)
    lse0 = np.log(1 + np.e)
    np.testing.assert_allclose(ly[0], [-lse0, -np.inf, 1 - lse0, -np.inf], rtol=1e-6)
    np.testing.assert_allclose(ly[1], [-np.log(2), -2e30, -np.log(2), -1e30], rtol=1e-6)
    assert np.isnan(ly[2]).all()
    np.testing.assert_allclose(ly[3], -np.log(4), rtol=1e-6)
    # backward through the -inf row stays finite
    dout = np.ones_like(x)
    dx = np.empty_like(x)
    _core.softmax_bwd(dx, y, dout, 1)
    assert np.isfinite(dx[[0, 1, 3]]).all()
    _core.log_softmax_bwd(dx, ly, dout, 1)
    assert np.isfinite(dx[[0, 1, 3]]).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_matches_torch(dtype):
    torch = pytest.importorskip("torch")
    rng = rng_for("torch", dtype)
    x = make_logits(rng, 50, 129, dtype)
    x[3, 5] = -np.inf
    y = np.empty_like(x)
    ly = np.empty_like(x)
    _core.softmax_fwd(y, x, 2)
    _core.log_softmax_fwd(ly, x, 2)
    tx = torch.from_numpy(x)
    assert_rows_close(y, torch.softmax(tx, -1).numpy(), dtype, "softmax vs torch")
    assert_rows_close(ly, torch.log_softmax(tx, -1).numpy(), dtype, "log_softmax vs torch")


def test_softmax_in_place():
    x = make_logits(rng_for("inplace"), 8, 16, np.float64)
    want = np_softmax(x)
    _core.softmax_fwd(x, x, 1)
    np.testing.assert_allclose(x, want, rtol=1e-14)


def test_softmax_empty():
    for shape in [(0, 5), (4, 0)]:
        x = np.empty(shape, np.float32)
        _core.softmax_fwd(np.empty_like(x), x, 2)
        _core.log_softmax_bwd(np.empty_like(x), x, x, 2)


@pytest.mark.parametrize("fn,n_arrays", [(_core.softmax_fwd, 2), (_core.log_softmax_fwd, 2),
                                         (_core.softmax_bwd, 3), (_core.log_softmax_bwd, 3)])
def test_softmax_errors(fn, n_arrays):
    def call(*arrays):
        fn(*arrays[:n_arrays], 1)

    ok = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"\(3, 5\).*\(3, 4\)|\(3, 4\).*\(3, 5\)"):
        call(np.empty((3, 5), np.float32), ok, ok)
    with pytest.raises(TypeError, match="float64"):
        call(np.empty((3, 4)), ok, ok)
    with pytest.raises(TypeError, match="float32 or float64"):
        call(np.empty((3, 4), np.int32), np.ones((3, 4), np.int32), np.ones((3, 4), np.int32))
    with pytest.raises(ValueError, match="2-D"):
        call(np.empty((2, 3, 4), np.float32), np.ones((2, 3, 4), np.float32),
             np.ones((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        call(np.empty((3, 4), np.float32), np.ones((4, 3), np.float32).T, ok)
    with pytest.raises(ValueError, match="C-contiguous"):
        call(np.empty((4, 3), np.float32).T, ok, ok)
    big = np.ones((4, 4), np.float32)
    with pytest.raises(ValueError, match="overlaps"):
        call(big[1:], big[:3], big[:3].copy())


# float32: kernels compute in double and round once, the oracle is float64: a few ulps;
# backward sums C products whose terms cancel: relative to max(1, |result|)
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-11, atol=1e-12)}


BWD_TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-11)}


# ---- softmax / log-softmax (the _core float32 fast path) -----------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("shape", [(1, 1), (3, 15), (5, 16), (7, 17), (4, 257), (2, 1000)])
def test_softmax_family_kernels(dtype, n_threads, shape):
    x = rows_with_outliers(shape, 11, dtype, scale=8.0)
    if shape[1] > 3:
        x[0, ::3] = -np.inf
        x[-1, 1] = -200.0                                   # exp underflows to 0 / subnormal
    x64 = x.astype(np.float64)
    m = x64.max(-1, keepdims=True)
    ref = np.exp(x64 - m) / np.exp(x64 - m).sum(-1, keepdims=True)
    y = np.empty_like(x)
    _core.softmax_fwd(y, x, n_threads)
    close(y, ref, TOL[dtype], "softmax")
    ly = np.empty_like(x)
    _core.log_softmax_fwd(ly, x, n_threads)
    with np.errstate(divide="ignore"):
        close(ly, np.log(ref), {np.float32: dict(rtol=2e-6, atol=2e-5),
                                np.float64: dict(rtol=1e-12, atol=1e-12)}[dtype], "log_softmax")
    dout = rows_with_outliers(shape, 12, dtype, scale=1.0)
    dx = np.empty_like(x)
    _core.softmax_bwd(dx, y, dout, n_threads)
    close(dx, ref * (dout - (dout * ref).sum(-1, keepdims=True)), BWD_TOL[dtype], "softmax dx")
    _core.log_softmax_bwd(dx, ly, dout, n_threads)
    close(dx, dout - ref * dout.astype(np.float64).sum(-1, keepdims=True), BWD_TOL[dtype],
          "log_softmax dx")
