"""The CUDA row kernels (tinygradattn/cuda/rows.py: softmax, log-softmax, layer norm,
cross-entropy, forward and backward) against the CPU backend, in numba's CUDA simulator.

Shapes are small and odd (rows of 1, primes, lengths that are no multiple of the simulator's
8-thread block); inputs carry outliers, -inf entries and large magnitudes; non-contiguous
views are read in place or copied. The simulator runs every thread in Python (~10 ms a
barrier here), so each test launches few row blocks.
"""
import numpy as np
import pytest

import tinygradattn as tga
import tinygradattn.nn.functional as F
from helpers import Tol, assert_close
from tinygradattn.backend import get_backend
from tinygradattn.cuda import array as A
from tinygradattn.cuda import driver, views
from tinygradattn.cuda import elementwise as E

cpu = get_backend("cpu")
cuda = get_backend("cuda")

FLOATS = (np.float32, np.float64)
# float32: the CPU sums rows in double, the kernels in float32 (a tree over the block):
# a few ulps of the largest term; float64: both near-exact
TOLS = {np.float32: Tol(2e-5, 2e-6), np.float64: Tol(1e-12, 1e-13)}


def dev(a):
    return cuda.from_host(np.asarray(a))


def host(x):
    return cuda.to_host(x)


def close(actual, expected, dtype, what):
    assert isinstance(actual, A.CudaArray), f"{what}: got {type(actual).__name__}"
    assert actual.dtype == np.dtype(dtype), f"{what}: dtype {actual.dtype}"
    assert_close(host(actual), expected, TOLS[dtype], what, dtype)


def rows_with_outliers(rng, shape, dtype):
    x = rng.standard_normal(shape) * 2
    x.reshape(-1)[:: 5] *= 8                     # rows far from uniform
    return x.astype(dtype)


# ---- softmax family ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(), (1,), (3, 7), (1, 2, 37)])
@pytest.mark.parametrize("is_log", [False, True])
def test_softmax_family_matches_cpu(dtype, shape, is_log):
    rng = np.random.default_rng(1)
    fwd, bwd = ("log_softmax_fwd", "log_softmax_bwd") if is_log else ("softmax_fwd",
                                                                       "softmax_bwd")
    x = rows_with_outliers(rng, shape, dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    y_ref = getattr(cpu, fwd)(x)
    y = getattr(cuda, fwd)(dev(x))
    assert y.shape == shape
    close(y, y_ref, dtype, fwd)
    close(getattr(cuda, bwd)(dev(y_ref), dev(dout)), getattr(cpu, bwd)(y_ref, dout), dtype, bwd)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")   # the simulator's numpy
@pytest.mark.parametrize("dtype", FLOATS)                              # scalars: -inf - -inf
def test_softmax_extremes_match_cpu(dtype):
    """An all -inf row (NaN, as the CPU and torch), a row with -inf entries, magnitudes of 1e4
    (the max is subtracted first), a row of one +inf (NaN where inf - inf)."""
    x = np.array([[-np.inf] * 9,
                  [0.5, -np.inf, 3, -np.inf, 1, 2, -1, 0, 4],
                  np.linspace(-1e4, 1e4, 9),
                  [1, 2, np.inf, 0, 0, 0, 0, 0, 1]], dtype=dtype)
    for fwd in ("softmax_fwd", "log_softmax_fwd"):
        close(getattr(cuda, fwd)(dev(x)), getattr(cpu, fwd)(x), dtype, fwd)


@pytest.mark.parametrize("is_log", [False, True])
def test_softmax_non_contiguous_views(is_log):
    """Transposed (copied), column-sliced and row-strided (in place), broadcast rows."""
    rng = np.random.default_rng(2)
    fwd = "log_softmax_fwd" if is_log else "softmax_fwd"
    bwd = "log_softmax_bwd" if is_log else "softmax_bwd"
    base = rows_with_outliers(rng, (5, 6), np.float32)
    xd = dev(base)
    cases = [
        (views.permute(xd, (1, 0)), base.T),                                   # (6, 5)
        (A.view(xd, (2, 3), (12, 1), offset=2),                               # in place
         np.stack([base.reshape(-1)[2:5], base.reshape(-1)[14:17]])),
        (E.broadcast_to(A.view(xd, (1, 6), (6, 1), offset=6), (3, 6)),
         np.broadcast_to(base[1:2], (3, 6))),
    ]
    for xv, ref in cases:
        ref = np.ascontiguousarray(ref)
        y_ref = getattr(cpu, fwd)(ref)
        close(getattr(cuda, fwd)(xv), y_ref, np.float32, f"{fwd} {xv.strides}")
        close(getattr(cuda, bwd)(dev(y_ref), xv), getattr(cpu, bwd)(y_ref, ref), np.float32,
              f"{bwd} dout {xv.strides}")


def test_grid_follows_each_launch():
    """One block per row: a launch of 3 rows after one of 2 runs 3 blocks (the simulator's
    kernel[grid, block] configures the kernel object itself; launch.py must not reuse it)."""
    rng = np.random.default_rng(10)
    for n_rows in (3, 2, 3):
        x = rng.standard_normal((n_rows, 5)).astype(np.float32)
        close(cuda.softmax_fwd(dev(x)), cpu.softmax_fwd(x), np.float32, f"{n_rows} rows")


def test_softmax_empty():
    for shape in [(0, 5), (3, 0), (2, 0, 4)]:
        x = np.ones(shape, np.float32)
        for fn in ("softmax_fwd", "log_softmax_fwd"):
            assert host(getattr(cuda, fn)(dev(x))).shape == shape
        assert host(cuda.softmax_bwd(dev(x), dev(x))).shape == shape


def test_softmax_bad_input():
    with pytest.raises(TypeError, match="float32 or float64"):
        cuda.softmax_fwd(dev(np.ones((2, 3), np.int64)))
    with pytest.raises(TypeError, match="same dtype"):
        cuda.softmax_bwd(dev(np.ones((2, 3), np.float32)), dev(np.ones((2, 3), np.float64)))
    with pytest.raises(ValueError, match=r"shapes differ: y \(2, 3\), dout \(3,\)"):
        cuda.log_softmax_bwd(dev(np.ones((2, 3), np.float32)), dev(np.ones(3, np.float32)))


# ---- layer norm --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("has_w,has_b", [(True, True), (False, False), (True, False),
                                         (False, True)])
def test_layer_norm_matches_cpu(dtype, has_w, has_b):
    rng = np.random.default_rng(3)
    N, C = 5, 13            # 5 rows: the simulator's column sums run 3 chunks (2, 2, 1 rows)
    x = rows_with_outliers(rng, (N, C), dtype)
    w = rng.standard_normal(C).astype(dtype) if has_w else None
    b = rng.standard_normal(C).astype(dtype) if has_b else None
    dout = rng.standard_normal((N, C)).astype(dtype)
    ref = cpu.layer_norm_fwd(x, w, b, 1e-5)
    out = cuda.layer_norm_fwd(dev(x), None if w is None else dev(w),
                              None if b is None else dev(b), 1e-5)
    for name, a, r in zip(("y", "mean", "rstd"), out, ref):
        close(a, r, dtype, f"layer_norm_fwd {name}")
    ref_grads = cpu.layer_norm_bwd(dout, x, w, ref[1], ref[2])
    grads = cuda.layer_norm_bwd(dev(dout), dev(x), None if w is None else dev(w), out[1],
                                out[2])
    for name, g, r in zip(("dx", "dweight", "dbias"), grads, ref_grads):
        if r is None:
            assert g is None, name
        else:
            close(g, r, dtype, f"layer_norm_bwd {name}")


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("N,C", [(1, 1), (2, 37), (1, 7)])
def test_layer_norm_odd_shapes_large_magnitude(dtype, N, C):
    """Rows of 1 and primes, one chunk (N = 1) and several, values around 1e4 with a spread of
    1 (the two-pass variance keeps them)."""
    rng = np.random.default_rng(4)
    x = (1e4 + rng.standard_normal((N, C))).astype(dtype)
    w = rng.standard_normal(C).astype(dtype)
    b = rng.standard_normal(C).astype(dtype)
    dout = rng.standard_normal((N, C)).astype(dtype)
    ref = cpu.layer_norm_fwd(x, w, b, 1e-5)
    out = cuda.layer_norm_fwd(dev(x), dev(w), dev(b), 1e-5)
    # the spread is 1e-4 of the magnitude: rounding in the mean (~C ulps of 1e4) shows 1e4
    # times larger in x - mean than on unit inputs, on the CPU as here
    tol = Tol(1e-9, 1e-9) if dtype == np.float64 else Tol(1e-3, 1e-3)
    for name, a, r in zip(("y", "mean", "rstd"), out, ref):
        assert_close(host(a), r, tol, f"layer_norm_fwd {name}", dtype)
    ref_grads = cpu.layer_norm_bwd(dout, x, w, ref[1], ref[2])
    grads = cuda.layer_norm_bwd(dev(dout), dev(x), dev(w), dev(ref[1]), dev(ref[2]))
    for name, g, r in zip(("dx", "dweight", "dbias"), grads, ref_grads):
        assert_close(host(g), r, tol, f"layer_norm_bwd {name}", dtype)


def test_layer_norm_non_contiguous():
    rng = np.random.default_rng(5)
    base = rows_with_outliers(rng, (4, 9), np.float32)
    xd = dev(base)
    xv = A.view(xd, (3, 5), (9, 1), offset=2)                   # rows in place, stride 9
    xt = views.permute(dev(np.ascontiguousarray(base[:, :5].T)), (1, 0))     # copied
    w = np.linspace(0.5, 1.5, 10).astype(np.float32)
    wv = A.view(dev(w), (5,), (2,))                               # a strided weight
    dout = rng.standard_normal((4, 5)).astype(np.float32)
    for x, ref_x in ((xv, base[:3, 2:7]), (xt, base[:, :5])):
        ref_x = np.ascontiguousarray(ref_x)
        ref = cpu.layer_norm_fwd(ref_x, w[::2].copy(), None, 1e-5)
        out = cuda.layer_norm_fwd(x, wv, None, 1e-5)
        close(out[0], ref[0], np.float32, f"layer_norm_fwd {x.strides}")
        d = dout[: ref_x.shape[0]]
        ref_g = cpu.layer_norm_bwd(d, ref_x, w[::2].copy(), ref[1], ref[2])
        g = cuda.layer_norm_bwd(views.permute(dev(np.ascontiguousarray(d.T)), (1, 0)), x, wv,
                                out[1], out[2])
        for name, a, r in zip(("dx", "dweight", "dbias"), g, ref_g):
            close(a, r, np.float32, f"layer_norm_bwd {name} {x.strides}")


def test_layer_norm_empty_and_bad_input():
    y, mean, rstd = cuda.layer_norm_fwd(dev(np.ones((0, 3), np.float32)), None, None, 1e-5)
    assert host(y).shape == (0, 3) and host(mean).shape == (0,)
    y, mean, rstd = cuda.layer_norm_fwd(dev(np.ones((2, 0), np.float32)), None, None, 1e-5)
    assert host(y).shape == (2, 0) and np.isnan(host(mean)).all()
    dx, dw, db = cuda.layer_norm_bwd(dev(np.ones((0, 3))), dev(np.ones((0, 3))),
                                     dev(np.ones(3)), dev(np.ones(0)), dev(np.ones(0)))
    assert host(dx).shape == (0, 3) and (host(dw) == 0).all() and (host(db) == 0).all()
    x = dev(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"weight has shape \(4,\), expected \(3,\)"):
        cuda.layer_norm_fwd(x, dev(np.ones(4, np.float32)), None, 1e-5)
    with pytest.raises(TypeError, match="weight float64"):
        cuda.layer_norm_fwd(x, dev(np.ones(3)), None, 1e-5)
    with pytest.raises(ValueError, match=r"x must be 2-D \(N, C\), got shape \(3,\)"):
        cuda.layer_norm_fwd(dev(np.ones(3, np.float32)), None, None, 1e-5)
    with pytest.raises(ValueError, match=r"dout has shape \(2, 4\), expected \(2, 3\)"):
        cuda.layer_norm_bwd(dev(np.ones((2, 4), np.float32)), x, None,
                            dev(np.ones(2, np.float32)), dev(np.ones(2, np.float32)))


# ---- cross-entropy -----------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")   # inf - inf in the check
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 1.0])
def test_cross_entropy_matches_cpu(dtype, smoothing):
    rng = np.random.default_rng(6)
    N, C = 5, 11
    x = rows_with_outliers(rng, (N, C), dtype)
    x[1, 3] = -np.inf                                   # a -inf logit (not the target)
    target = np.array([0, 10, -100, 3, 7])
    ref = cpu.cross_entropy_fwd(x, target, -100, smoothing, True)
    loss, lse, count, probs = cuda.cross_entropy_fwd(dev(x), dev(target), -100, smoothing,
                                                     True)
    close(loss, ref[0], dtype, "cross_entropy_fwd loss")
    close(lse, ref[1], dtype, "cross_entropy_fwd lse")
    assert count.shape == () and count.dtype == np.dtype(dtype) and host(count) == ref[2] == 4
    exps, inv_sum = ref[3]
    close(probs, exps * inv_sum[:, None], dtype, "cross_entropy_fwd probs")
    for dloss in (rng.standard_normal(N).astype(dtype), np.asarray(0.25, dtype)):
        close(cuda.cross_entropy_bwd(dev(dloss), probs, dev(target), -100, smoothing),
              cpu.cross_entropy_bwd(dloss, ref[3], target, -100, smoothing), dtype,
              f"cross_entropy_bwd dloss {dloss.shape}")


def test_cross_entropy_views_and_extremes():
    """Strided logits and target, a broadcast dloss (a sum's gradient), a number as dloss,
    magnitudes of 1e4, rows of one class, no probs."""
    rng = np.random.default_rng(7)
    base = (rng.standard_normal((3, 14)) * 1e4).astype(np.float32)
    xv = A.view(dev(base), (3, 13), (14, 1), offset=1)
    t_full = np.array([12, 0, 0, 7, 5, 9])
    tv = A.view(dev(t_full), (3,), (2,))                              # [12, 0, 5]
    ref_x, ref_t = np.ascontiguousarray(base[:, 1:]), t_full[::2].copy()
    ref = cpu.cross_entropy_fwd(ref_x, ref_t, 5, 0.2, True)
    loss, lse, count, probs = cuda.cross_entropy_fwd(xv, tv, 5, 0.2, True)
    close(loss, ref[0], np.float32, "loss")
    close(lse, ref[1], np.float32, "lse")
    assert host(count) == ref[2] == 2
    dl = E.broadcast_to(dev(np.asarray(0.5, np.float32)), (3,))
    ref_dx = cpu.cross_entropy_bwd(np.float32(0.5), ref[3], ref_t, 5, 0.2)
    close(cuda.cross_entropy_bwd(dl, probs, tv, 5, 0.2), ref_dx, np.float32, "dx broadcast")
    close(cuda.cross_entropy_bwd(0.5, probs, tv, 5, 0.2), ref_dx, np.float32, "dx number")
    one = np.array([[3.0], [-2.0]])                                     # C = 1
    ref = cpu.cross_entropy_fwd(one, np.array([0, 0]), -100, 0.0)
    out = cuda.cross_entropy_fwd(dev(one), dev(np.array([0, 0])), -100, 0.0)
    assert out[3] is None
    close(out[0], ref[0], np.float64, "loss C=1")
    close(out[1], ref[1], np.float64, "lse C=1")


def test_cross_entropy_bad_target_raises_at_next_host_read():
    x = dev(np.zeros((2, 3), np.float32))
    loss, lse, count, probs = cuda.cross_entropy_fwd(x, dev(np.array([0, 3])), -100, 0.0, True)
    with pytest.raises(IndexError, match=r"out of bounds \(number of classes 3\)"):
        host(loss)                                      # a device-side check, raised here
    assert host(loss)[0] == pytest.approx(np.log(3))   # cleared: the next read works
    cuda.cross_entropy_fwd(x, dev(np.array([-1, -100])), -100, 0.0)
    with pytest.raises(IndexError, match="out of bounds"):
        host(count)
    dx = cuda.cross_entropy_bwd(1.0, probs, dev(np.array([1, 4])), -100, 0.0)
    with pytest.raises(IndexError, match="out of bounds"):
        host(dx)
    host(dx)


def test_cross_entropy_empty_and_bad_input():
    loss, lse, count, probs = cuda.cross_entropy_fwd(dev(np.ones((0, 4))),
                                                     dev(np.zeros(0, np.int64)), -100, 0.0,
                                                     True)
    assert host(loss).shape == (0,) and host(count) == 0 and host(probs).shape == (0, 4)
    assert host(cuda.cross_entropy_bwd(1.0, probs, dev(np.zeros(0, np.int64)), -100,
                                       0.0)).shape == (0, 4)
    x = dev(np.ones((2, 3), np.float32))
    with pytest.raises(TypeError, match="target must be int64 class indices, got int32"):
        cuda.cross_entropy_fwd(x, dev(np.array([0, 1], np.int32)), -100, 0.0)
    with pytest.raises(ValueError, match=r"target \(3,\) must be \(2,\)"):
        cuda.cross_entropy_fwd(x, dev(np.array([0, 1, 1])), -100, 0.0)
    with pytest.raises(ValueError, match="have no classes"):
        cuda.cross_entropy_fwd(dev(np.ones((2, 0))), dev(np.array([0, 1])), -100, 0.0)
    with pytest.raises(ValueError, match=r"logits must be 2-D \(N, C\)"):
        cuda.cross_entropy_fwd(dev(np.ones(3)), dev(np.array([0, 1, 1])), -100, 0.0)
    with pytest.raises(TypeError, match="float32 or float64"):
        cuda.cross_entropy_fwd(dev(np.ones((2, 3), np.int64)), dev(np.array([0, 1])), -100,
                               0.0)
    with pytest.raises(ValueError, match=r"dloss has shape \(3,\), expected \(2,\)"):
        cuda.cross_entropy_bwd(dev(np.ones(3, np.float32)), x, dev(np.array([0, 1])), -100,
                               0.0)


# ---- data stays on the device --------------------------------------------------------------------
def test_no_host_copies():
    rng = np.random.default_rng(8)
    x = dev(rows_with_outliers(rng, (2, 5), np.float32))
    t = dev(np.array([1, -100]))
    w = dev(np.ones(5, np.float32))
    driver.raise_pending()
    before = dict(driver.COPIES)
    y = cuda.softmax_bwd(cuda.softmax_fwd(x), x)
    y = cuda.log_softmax_bwd(cuda.log_softmax_fwd(y), y)
    y, mean, rstd = cuda.layer_norm_fwd(y, w, w, 1e-5)
    dx, dw, db = cuda.layer_norm_bwd(y, x, w, mean, rstd)
    loss, lse, count, probs = cuda.cross_entropy_fwd(dx, t, -100, 0.1, True)
    dloss = cuda.div(cuda.full((), 1.0, np.float32), count)     # a mean's dloss, on the device
    dlogits = cuda.cross_entropy_bwd(dloss, probs, t, -100, 0.1)
    assert driver.COPIES == before
    ref = cpu.cross_entropy_fwd(host(dx), np.array([1, -100]), -100, 0.1, True)
    close(dlogits, cpu.cross_entropy_bwd(np.float32(1.0), ref[3], np.array([1, -100]), -100,
                                         0.1), np.float32, "dlogits from 1 / count")


# ---- through the autograd layer (ops/fused.py) ---------------------------------------------------
def _cross_entropy_grads(device, x, t, reduction, dout=None):
    xt = tga.tensor(x, device=device, requires_grad=True)
    loss = F.cross_entropy(xt, tga.tensor(t, device=device), reduction=reduction,
                           label_smoothing=0.1)
    loss.backward(None if dout is None else tga.tensor(dout, device=device))
    return loss.detach().numpy(), xt.grad.numpy()


def test_fused_ops_use_the_device_count():
    """CrossEntropy keeps the cuda count (a 0-d device array) without reading it; the mean
    divides by it on the device (NaN when every row is ignored, as torch). LayerNorm and
    Softmax through the same layer."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((3, 5)).astype(np.float32)
    t = np.array([1, -100, 4])
    dout = rng.standard_normal(3).astype(np.float32)
    for got, ref in zip(_cross_entropy_grads("cuda", x, t, "none", dout),
                        _cross_entropy_grads("cpu", x, t, "none", dout)):
        assert_close(got, ref, TOLS[np.float32], "cross_entropy none")
    for device in ("cpu", "cuda"):
        xt = tga.tensor(x, device=device, requires_grad=True)
        F.layer_norm(xt, (5,)).backward(tga.tensor(np.tile(dout, (5, 1)).T, device=device))
        out = (xt.grad.numpy(), xt.detach().softmax(-1).numpy())
        if device == "cpu":
            ref = out
    for got, r in zip(out, ref):
        assert_close(got, r, TOLS[np.float32], "layer_norm dx, softmax")
    got = _cross_entropy_grads("cuda", x, t, "mean")
    for g, r in zip(got, _cross_entropy_grads("cpu", x, t, "mean")):
        assert_close(g, r, TOLS[np.float32], "cross_entropy mean")
    loss, grad = _cross_entropy_grads("cuda", x, np.full(3, -100), "mean")
    assert np.isnan(loss) and (grad == 0).all()
