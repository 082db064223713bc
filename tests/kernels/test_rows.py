"""Row kernels of tinygradattn._rows against float64 numpy oracles: layer norm forward and
backward, cross-entropy from logits (forward, backward, the probs path), float32 and float64,
n_threads 1 and 2; shapes carry 1, primes and large outliers, logits -inf entries and ignored
targets; errors name the arrays.
"""
import math

import numpy as np
import pytest

from tinygradattn import _elementwise, _rows
from helpers import close, rows_with_outliers, tuned


DTYPES = [np.float32, np.float64]


THREADS = [1, 2]


ROWS = [(1, 1), (1, 7), (3, 1), (5, 13), (17, 64), (31, 257)]


# float32: kernels compute in double and round once, the oracle is float64: a few ulps;
# backward sums C products whose terms cancel: relative to max(1, |result|)
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-11, atol=1e-12)}


BWD_TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-11)}


@pytest.fixture(autouse=True)
def threads_on_small_work():
    with tuned(_rows, min_elems_per_thread=0):
        yield


# ---- float64 oracles ---------------------------------------------------------------------------
def ref_layer_norm(x, w, b, eps):
    x = x.astype(np.float64)
    mean = x.mean(-1)
    rstd = 1.0 / np.sqrt(x.var(-1) + eps)
    y = (x - mean[:, None]) * rstd[:, None]
    if w is not None:
        y = y * w
    if b is not None:
        y = y + b
    return y, mean, rstd


def ref_layer_norm_bwd(dout, x, w, eps):
    x, dout = x.astype(np.float64), dout.astype(np.float64)
    mean = x.mean(-1, keepdims=True)
    rstd = 1.0 / np.sqrt(x.var(-1, keepdims=True) + eps)
    xhat = (x - mean) * rstd
    g = dout * (w if w is not None else 1.0)
    dx = rstd * (g - g.mean(-1, keepdims=True) - xhat * (g * xhat).mean(-1, keepdims=True))
    return dx, (dout * xhat).sum(0), dout.sum(0)


def ref_cross_entropy(x, t, ignore_index, e):
    x = x.astype(np.float64)
    N, C = x.shape
    m = x.max(-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        logp = x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))
        lse = m[:, 0] + np.log(np.exp(x - m).sum(-1))
        valid = t != ignore_index
        safe = np.where(valid, t, 0)
        q = (1 - e) * np.eye(C)[safe] + e / C
        terms = np.where(q > 0, -q * logp, 0.0)                  # 0 * -inf counts as 0
        loss = np.where(valid, terms.sum(-1), 0.0)
        p = np.exp(logp)
        dx = np.where(valid[:, None], p - q, 0.0)
    return loss, lse, dx


# ---- layer norm kernels ------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("shape", ROWS)
@pytest.mark.parametrize("affine", ["both", "weight", "none"])
def test_layer_norm_kernels(dtype, n_threads, shape, affine):
    N, C = shape
    x = rows_with_outliers(shape, 1, dtype) + 5.0                        # offset mean
    w = rows_with_outliers((C,), 2, dtype) if affine != "none" else None
    b = rows_with_outliers((C,), 3, dtype) if affine == "both" else None
    y, mean, rstd = np.empty_like(x), np.empty(N, dtype), np.empty(N, dtype)
    _rows.layer_norm_fwd(y, mean, rstd, x, w, b, 1e-5, n_threads)
    ry, rmean, rrstd = ref_layer_norm(x, w, b, 1e-5)
    close(y, ry, TOL[dtype], "layer_norm y")
    close(mean, rmean, TOL[dtype], "layer_norm mean")
    close(rstd, rrstd, {np.float32: dict(rtol=1e-4, atol=1e-6),     # var of a float32 input
                        np.float64: dict(rtol=1e-9, atol=1e-12)}[dtype], "layer_norm rstd")
    dout = rows_with_outliers(shape, 4, dtype, scale=1.0)
    dx, dw, db = np.empty_like(x), np.empty(C, dtype), np.empty(C, dtype)
    _rows.layer_norm_bwd(dx, dw, db, dout, x, w, mean, rstd, n_threads)
    rdx, rdw, rdb = ref_layer_norm_bwd(dout, x, w, 1e-5)
    close(dx, rdx, BWD_TOL[dtype], "layer_norm dx")
    close(dw, rdw, BWD_TOL[dtype], "layer_norm dweight")
    close(db, rdb, BWD_TOL[dtype], "layer_norm dbias")
    dx2 = np.empty_like(x)                                               # dx only
    _rows.layer_norm_bwd(dx2, None, None, dout, x, w, mean, rstd, n_threads)
    np.testing.assert_array_equal(dx2, dx)


def test_layer_norm_bwd_same_for_any_thread_count_up_to_rounding():
    x = rows_with_outliers((64, 33), 5, np.float64)
    dout = rows_with_outliers((64, 33), 6, np.float64)
    y, mean, rstd = np.empty_like(x), np.empty(64), np.empty(64)
    _rows.layer_norm_fwd(y, mean, rstd, x, None, None, 1e-5, 1)
    grads = []
    for nt in (1, 2, 3):
        dx, dw, db = np.empty_like(x), np.empty(33), np.empty(33)
        _rows.layer_norm_bwd(dx, dw, db, dout, x, None, mean, rstd, nt)
        grads.append((dx, dw, db))
    for dx, dw, db in grads[1:]:
        np.testing.assert_array_equal(dx, grads[0][0])
        np.testing.assert_allclose(dw, grads[0][1], rtol=1e-13)
        np.testing.assert_allclose(db, grads[0][2], rtol=1e-13)


# ---- cross-entropy kernels ---------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (7, 1), (13, 11), (29, 257)])
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 1.0])
def test_cross_entropy_kernels(dtype, n_threads, shape, smoothing):
    N, C = shape
    rng = np.random.default_rng(N * 1000 + C)
    x = rows_with_outliers(shape, 7, dtype)
    t = rng.integers(0, C, N).astype(np.int64)
    t[::3] = -100                                                        # ignored rows
    if C > 2:
        x[1::4, ::2] = -np.inf                                           # -inf entries...
        x[1::4, t[1::4] % C] = 0.5                                       # ...not at the target
        t[1::4] = np.where(t[1::4] == -100, -100, t[1::4] % C)
    loss, lse = np.empty(N, dtype), np.empty(N, dtype)
    n_valid = _rows.cross_entropy_fwd(loss, lse, x, t, -100, smoothing, n_threads)
    assert n_valid == int((t != -100).sum())                  # the divisor of a mean
    rloss, rlse, rdx = ref_cross_entropy(x, t, -100, smoothing)
    if smoothing > 0 and C > 2:            # -inf logits under smoothing: torch's loss is inf
        assert np.isinf(loss[1::4][t[1::4] != -100]).all()
        keep = np.isfinite(rloss)
        close(loss[keep], rloss[keep], TOL[dtype], "cross_entropy loss")
    else:
        close(loss, rloss, TOL[dtype], "cross_entropy loss")
    close(lse, rlse, TOL[dtype], "cross_entropy lse")
    dloss = rng.uniform(0.5, 2.0, N).astype(dtype)
    dx = np.empty_like(x)
    _rows.cross_entropy_bwd(dx, dloss, x, t, lse, -100, smoothing, n_threads)
    assert not np.isnan(dx).any()
    close(dx, rdx * dloss[:, None], BWD_TOL[dtype], "cross_entropy dlogits")
    assert (dx[t == -100] == 0).all()
    one = np.empty_like(x)                   # a 0-d dloss: the same value for every row
    _rows.cross_entropy_bwd(one, np.array(dloss[0]), x, t, lse, -100, smoothing, n_threads)
    every = np.empty_like(x)
    _rows.cross_entropy_bwd(every, np.full(N, dloss[0]), x, t, lse, -100, smoothing, n_threads)
    np.testing.assert_array_equal(one, every)
    # the autograd path: the forward keeps softmax, the backward reads it (no exponentials)
    probs, loss2 = np.full_like(x, np.nan), np.empty(N, dtype)
    assert _rows.cross_entropy_fwd(loss2, lse, x, t, -100, smoothing, n_threads, probs) == n_valid
    np.testing.assert_array_equal(loss2, loss)                  # the same loss either way
    x64 = x.astype(np.float64)
    with np.errstate(invalid="ignore"):
        p64 = np.exp(x64 - x64.max(-1, keepdims=True))
    close(probs, p64 / p64.sum(-1, keepdims=True), TOL[dtype], "cross_entropy probs")
    dxp = np.empty_like(x)
    _rows.cross_entropy_bwd_probs(dxp, dloss, probs, t, -100, smoothing, n_threads)
    close(dxp, rdx * dloss[:, None], BWD_TOL[dtype], "cross_entropy dlogits from probs")
    assert (dxp[t == -100] == 0).all()
    _rows.cross_entropy_bwd_probs(probs, np.array(dloss[0]), probs, t, -100, smoothing,
                                   n_threads)                   # in place, one dloss
    close(probs, rdx * dloss[0], BWD_TOL[dtype], "cross_entropy dlogits in place")
    exps, inv_sum = np.empty_like(x), np.empty(N, dtype)      # the unscaled form (autograd's)
    _rows.cross_entropy_fwd(loss2, lse, x, t, -100, smoothing, n_threads, exps, inv_sum)
    np.testing.assert_array_equal(loss2, loss)
    with np.errstate(invalid="ignore"):
        close(exps * inv_sum[:, None], p64 / p64.sum(-1, keepdims=True), TOL[dtype],
              "cross_entropy exps / sum")
    _rows.cross_entropy_bwd_probs(dxp, dloss, exps, t, -100, smoothing, n_threads, inv_sum)
    close(dxp, rdx * dloss[:, None], BWD_TOL[dtype], "cross_entropy dlogits from exps")
    assert (dxp[t == -100] == 0).all()


def test_cross_entropy_probs_errors():
    x = np.zeros((3, 4), np.float32)
    t = np.array([0, 1, 2])
    loss, lse = np.empty(3, np.float32), np.empty(3, np.float32)
    with pytest.raises(ValueError, match=r"probs \(3, 3\)|probs.*\(3, 4\)"):
        _rows.cross_entropy_fwd(loss, lse, x, t, -100, 0.0, 1, np.empty((3, 3), np.float32))
    with pytest.raises(ValueError, match="output probs .* overlaps input logits"):
        _rows.cross_entropy_fwd(loss, lse, x, t, -100, 0.0, 1, x)
    probs = np.zeros((4, 4), np.float32)
    with pytest.raises(ValueError, match="partially overlaps"):
        _rows.cross_entropy_bwd_probs(probs[1:], np.ones(3, np.float32), probs[:3], t, -100,
                                       0.0, 1)
    with pytest.raises(ValueError, match="inv_sum needs probs"):
        _rows.cross_entropy_fwd(loss, lse, x, t, -100, 0.0, 1, None, np.empty(3, np.float32))
    with pytest.raises(ValueError, match=r"inv_sum"):
        _rows.cross_entropy_bwd_probs(np.empty((3, 4), np.float32), np.ones(3, np.float32),
                                       probs[:3], t, -100, 0.0, 1, np.empty(2, np.float32))
    with pytest.raises(IndexError, match="Target 7 is out of bounds"):
        _rows.cross_entropy_bwd_probs(np.empty((3, 4), np.float32), np.ones(3, np.float32),
                                       probs[:3], np.array([0, 7, 1]), -100, 0.0, 1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_kernel_huge_logits(dtype):
    x = np.array([[1e30, 1e30, -1e30], [0.0, -1e30, 1e30]], dtype=dtype)
    t = np.array([0, 1], dtype=np.int64)
    loss, lse = np.empty(2, dtype), np.empty(2, dtype)
    _rows.cross_entropy_fwd(loss, lse, x, t, -100, 0.0, 1)
    np.testing.assert_allclose(loss, [math.log(2.0), 2e30], rtol=1e-6)
    dx = np.empty_like(x)
    _rows.cross_entropy_bwd(dx, np.ones(2, dtype), x, t, lse, -100, 0.0, 1)
    np.testing.assert_allclose(dx, [[-0.5, 0.5, 0.0], [0.0, -1.0, 1.0]], atol=1e-6)
    probs = np.empty_like(x)
    _rows.cross_entropy_fwd(loss, lse, x, t, -100, 0.0, 1, probs)
    _rows.cross_entropy_bwd_probs(dx, np.ones(2, dtype), probs, t, -100, 0.0, 1)
    np.testing.assert_allclose(dx, [[-0.5, 0.5, 0.0], [0.0, -1.0, 1.0]], atol=1e-6)
    inv_sum = np.empty(2, dtype)
    _rows.cross_entropy_fwd(loss, lse, x, t, -100, 0.0, 1, probs, inv_sum)
    _rows.cross_entropy_bwd_probs(dx, np.ones(2, dtype), probs, t, -100, 0.0, 1, inv_sum)
    np.testing.assert_allclose(dx, [[-0.5, 0.5, 0.0], [0.0, -1.0, 1.0]], atol=1e-6)


# ---- wrapper errors ----------------------------------------------------------------------------
def test_kernel_errors_name_the_arrays():
    x = np.ones((3, 4), np.float32)
    v3 = np.empty(3, np.float32)
    with pytest.raises(ValueError, match=r"mean.*\(2,\)|\(2,\).*mean"):
        _rows.layer_norm_fwd(np.empty_like(x), np.empty(2, np.float32), v3, x, None, None,
                              1e-5, 1)
    with pytest.raises(TypeError, match=r"float64"):
        _rows.layer_norm_fwd(np.empty_like(x), v3, v3, x, np.ones(4), None, 1e-5, 1)
    with pytest.raises(ValueError, match=r"C-contiguous"):
        _rows.layer_norm_fwd(np.empty_like(x), v3, v3, np.ones((4, 3), np.float32).T,
                              None, None, 1e-5, 1)
    with pytest.raises(ValueError, match=r"2-D"):
        _rows.layer_norm_fwd(np.empty_like(x), v3, v3, np.ones(3, np.float32), None, None,
                              1e-5, 1)
    with pytest.raises(IndexError, match=r"Target 4 .*classes 4"):
        _rows.cross_entropy_fwd(v3, v3.copy(), x, np.array([0, 4, 1]), -100, 0.0, 1)
    with pytest.raises(IndexError, match=r"-2"):
        _rows.cross_entropy_bwd(np.empty_like(x), v3, x, np.array([0, -2, 1]), v3, -100, 0.0, 1)
    with pytest.raises(TypeError, match=r"int64"):
        _rows.cross_entropy_fwd(v3, v3.copy(), x, np.array([0, 1, 1], np.int32), -100, 0.0, 1)
    with pytest.raises(ValueError, match=r"read-only"):
        ro = np.empty(5, np.float32)
        ro.flags.writeable = False
        _elementwise.gelu_fwd(ro, np.ones(5, np.float32), False, 1)
    with pytest.raises(ValueError, match=r"dx has shape \(4,\), expected \(5,\)"):
        _elementwise.gelu_bwd(np.empty(4, np.float64), np.ones(5), np.ones(5), False, 1)
    with pytest.raises(TypeError, match=r"ndarray"):
        _elementwise.gelu_fwd(np.empty(2), [1.0, 2.0], False, 1)
