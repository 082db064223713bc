"""CUDA matmul / linear_fwd / linear_bwd / linear_gelu_fwd against the CPU backend.

Runs in numba's CUDA simulator (tests/conftest.py) at SIM_TUNING's tiny tiles: 8x8 block
tiles, k-tiles of 4, 2x2 register tiles, 4-column x 4-lane column sums over 8-row chunks. So
the shapes below are 1, primes and non-multiples of every tile, exact tiles, K = 0 and empty
results; operands are contiguous, transposed (read through swapped strides), sliced
(an offset and a row step) and broadcast (batch stride 0).
"""
import numpy as np
import pytest

from helpers import close

from tinygradattn.backend import get_backend

TOL = {np.float32: {"rtol": 1e-5, "atol": 1e-6}, np.float64: {"rtol": 1e-12, "atol": 1e-13}}
DTYPES = [np.float32, np.float64]


@pytest.fixture(scope="module")
def cuda():
    return get_backend("cuda")


@pytest.fixture(scope="module")
def cpu():
    return get_backend("cpu")


def _tol(dtype, k):
    """Float rounding of a K-term sum grows with K: scale atol by it."""
    tol = TOL[np.dtype(dtype).type]
    return {"rtol": tol["rtol"], "atol": tol["atol"] * max(1, k)}


def _randn(shape, dtype, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _view_of(cuda, base, host_view):
    """The device view of cuda.from_host(base) that host_view (a numpy view of base) is."""
    from tinygradattn.cuda import array as A
    dev = cuda.from_host(base)
    item = base.itemsize
    offset = (host_view.__array_interface__["data"][0] - base.__array_interface__["data"][0])
    return A.view(dev, host_view.shape, tuple(s // item for s in host_view.strides),
                  offset // item)


def on_device(cuda, x, layout="contiguous"):
    """x (a host array) on the device, laid out as asked:
    contiguous; transposed (memory of swapaxes(x), read through swapped strides);
    sliced (every other row of a larger array, from its second column on)."""
    if layout == "contiguous":
        return cuda.from_host(x)
    if layout == "transposed":
        base = np.ascontiguousarray(np.swapaxes(x, -1, -2))
        return _view_of(cuda, base, np.swapaxes(base, -1, -2))
    assert layout == "sliced"
    base = np.zeros(x.shape[:-2] + (2 * x.shape[-2] + 1, x.shape[-1] + 3), x.dtype)
    view = base[..., 1::2, 2:2 + x.shape[-1]]
    view[...] = x
    return _view_of(cuda, base, view)


def _host(cuda, x):
    return None if x is None else cuda.to_host(x)


# ---- matmul ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("M,K,N", [(1, 1, 1), (7, 5, 3), (9, 17, 13), (16, 8, 4), (8, 4, 8),
                                   (3, 0, 4), (0, 3, 4), (3, 4, 0)])
def test_matmul_shapes(cuda, cpu, dtype, M, K, N):
    a, b = _randn((M, K), dtype, 1), _randn((K, N), dtype, 2)
    got = cuda.matmul(cuda.from_host(a), cuda.from_host(b))
    assert got.shape == (M, N) and got.dtype == np.dtype(dtype)
    close(cuda.to_host(got), cpu.matmul(a, b), _tol(dtype, K), f"matmul {M}x{K}x{N}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("a_shape,b_shape", [((2, 3, 5, 7), (7, 4)),
                                             ((2, 1, 5, 3), (1, 4, 3, 6)),
                                             ((4, 3), (2, 3, 5)),
                                             ((0, 5, 3), (3, 4))])
def test_matmul_batched(cuda, cpu, dtype, a_shape, b_shape):
    a, b = _randn(a_shape, dtype, 3), _randn(b_shape, dtype, 4)
    got = cuda.to_host(cuda.matmul(cuda.from_host(a), cuda.from_host(b)))
    want = cpu.matmul(a, b)
    assert got.shape == want.shape
    close(got, want, _tol(dtype, a_shape[-1]), f"matmul {a_shape} @ {b_shape}")


@pytest.mark.parametrize("a_layout,b_layout", [("transposed", "contiguous"),
                                               ("contiguous", "transposed"),
                                               ("transposed", "transposed"),
                                               ("sliced", "sliced")])
def test_matmul_views(cuda, cpu, a_layout, b_layout):
    a, b = _randn((2, 9, 6), np.float32, 5), _randn((2, 6, 11), np.float32, 6)
    da, db = on_device(cuda, a, a_layout), on_device(cuda, b, b_layout)
    assert not (da.is_contiguous and db.is_contiguous)
    close(cuda.to_host(cuda.matmul(da, db)), cpu.matmul(a, b), _tol(np.float32, 6),
          f"matmul {a_layout} @ {b_layout}")


def test_matmul_broadcast_stride0(cuda, cpu):
    """b expanded over the batch (stride 0), a sliced from a larger batch."""
    from tinygradattn.cuda import array as A
    a, b = _randn((3, 5, 4), np.float64, 7), _randn((1, 4, 7), np.float64, 8)
    db = cuda.from_host(b)
    db = A.view(db, (3, 4, 7), (0,) + db.strides[1:])
    close(cuda.to_host(cuda.matmul(on_device(cuda, a, "sliced"), db)),
          cpu.matmul(a, np.broadcast_to(b, (3, 4, 7))), _tol(np.float64, 4), "expanded b")


@pytest.mark.parametrize("a,b,error", [
    (np.ones((2, 3)), np.ones((4, 5)), ValueError),                     # not aligned
    (np.ones((2, 2, 3)), np.ones((3, 3, 5)), ValueError),               # batch mismatch
    (np.ones((2, 3), np.float32), np.ones((3, 5)), TypeError),          # dtypes differ
    (np.ones((2, 3), np.int64), np.ones((3, 5), np.int64), TypeError),  # not a float
    (np.ones(3), np.ones((3, 5)), ValueError),                          # 1-D
])
def test_matmul_errors(cuda, cpu, a, b, error):
    with pytest.raises(error):
        cpu.matmul(a, b)
    with pytest.raises(error, match=r"matmul|broadcast"):
        cuda.matmul(cuda.from_host(a), cuda.from_host(b))


# ---- linear_fwd, linear_gelu_fwd ---------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("has_bias", [False, True])
@pytest.mark.parametrize("residual", [None, "contiguous", "transposed"])
def test_linear_fwd(cuda, cpu, dtype, has_bias, residual):
    x, w = _randn((9, 6), dtype, 10), _randn((10, 6), dtype, 11)
    bias = _randn((10,), dtype, 12) if has_bias else None
    res = _randn((9, 10), dtype, 13) if residual else None
    got = cuda.linear_fwd(cuda.from_host(x), cuda.from_host(w),
                          None if bias is None else cuda.from_host(bias),
                          None if res is None else on_device(cuda, res, residual))
    close(cuda.to_host(got), cpu.linear_fwd(x, w, bias, res), _tol(dtype, 6),
          f"linear_fwd bias={has_bias} residual={residual}")


@pytest.mark.parametrize("x_layout,w_layout", [("transposed", "contiguous"),
                                               ("sliced", "transposed"),
                                               ("contiguous", "sliced")])
def test_linear_fwd_views(cuda, cpu, x_layout, w_layout):
    x, w = _randn((11, 7), np.float32, 14), _randn((5, 7), np.float32, 15)
    bias = _randn((5,), np.float32, 16)
    got = cuda.linear_fwd(on_device(cuda, x, x_layout), on_device(cuda, w, w_layout),
                          cuda.from_host(bias))
    close(cuda.to_host(got), cpu.linear_fwd(x, w, bias), _tol(np.float32, 7),
          f"linear_fwd x {x_layout}, weight {w_layout}")


def test_linear_fwd_k0_and_empty(cuda, cpu):
    """C_in = 0: every row is the bias; no rows or no outputs: empty results."""
    bias = _randn((5,), np.float32, 17)
    x, w = np.zeros((3, 0), np.float32), np.zeros((5, 0), np.float32)
    got = cuda.linear_fwd(cuda.from_host(x), cuda.from_host(w), cuda.from_host(bias))
    close(cuda.to_host(got), np.broadcast_to(bias, (3, 5)), TOL[np.float32], "K = 0")
    for n, c_out in ((0, 5), (3, 0)):
        x, w = np.ones((n, 4), np.float32), np.ones((c_out, 4), np.float32)
        got = cuda.linear_fwd(cuda.from_host(x), cuda.from_host(w), None)
        assert cuda.to_host(got).shape == cpu.linear_fwd(x, w, None).shape == (n, c_out)


def test_linear_fwd_residual_cast(cuda, cpu):
    """A residual of another dtype is cast, as the CPU does."""
    x, w = _randn((4, 3), np.float32, 18), _randn((6, 3), np.float32, 19)
    res = _randn((4, 6), np.float64, 20)
    got = cuda.to_host(cuda.linear_fwd(cuda.from_host(x), cuda.from_host(w), None,
                                       cuda.from_host(res)))
    assert got.dtype == np.float32
    close(got, cpu.linear_fwd(x, w, None, res), _tol(np.float32, 3), "residual cast")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("has_bias", [False, True])
def test_linear_gelu_fwd(cuda, cpu, dtype, approximate, has_bias):
    x, w = _randn((9, 5), dtype, 21), _randn((11, 5), dtype, 22)
    bias = _randn((11,), dtype, 23) if has_bias else None
    y, dy = cuda.linear_gelu_fwd(on_device(cuda, x, "sliced"), cuda.from_host(w),
                                 None if bias is None else cuda.from_host(bias), approximate)
    want_y, want_dy = cpu.linear_gelu_fwd(x, w, bias, approximate)
    close(cuda.to_host(y), want_y, _tol(dtype, 5), f"gelu(h) {approximate}")
    close(cuda.to_host(dy), want_dy, _tol(dtype, 5), f"gelu'(h) {approximate}")


def test_linear_errors(cuda, cpu):
    x, w, b = np.ones((2, 3)), np.ones((4, 3)), np.ones(4)
    cases = [
        ("linear_fwd", (np.ones((2, 5)), w, b), ValueError),              # x, weight
        ("linear_fwd", (x, w, np.ones(5)), ValueError),                   # bias shape
        ("linear_fwd", (x, w, np.ones(4, np.float32)), TypeError),        # bias dtype
        ("linear_fwd", (x, w, None, np.ones((2, 5))), ValueError),        # residual shape
        ("linear_bwd", (np.ones((2, 5)), x, w, True, False, False), ValueError),   # dout
        ("linear_bwd", (np.ones((2, 5)), x, w, False, False, True), ValueError),
        ("linear_bwd", (np.ones((2, 4)), x, w, True, True, True, np.ones((2, 4))),
         ValueError),                                                     # dx_mul shape
        ("linear_bwd", (np.ones((2, 4)), x, w, True, False, False,
                        np.ones((2, 3), np.float32)), TypeError),         # dx_mul dtype
        ("linear_gelu_fwd", (x.astype(np.float32), w.astype(np.float32), None, "erf"),
         ValueError),                                                     # approximate
    ]
    for name, args, error in cases:
        with pytest.raises(error):
            getattr(cpu, name)(*args)
        dev = [cuda.from_host(v) if isinstance(v, np.ndarray) else v for v in args]
        with pytest.raises(error, match=name.split("_")[0]):
            getattr(cuda, name)(*dev)


# ---- linear_bwd --------------------------------------------------------------------------
@pytest.mark.parametrize("needs", [(dx, dw, db) for dx in (False, True) for dw in (False, True)
                                   for db in (False, True)])
@pytest.mark.parametrize("with_mul", [False, True])
def test_linear_bwd_needs(cuda, cpu, needs, with_mul):
    dtype = np.float32
    dout, x = _randn((19, 6), dtype, 30), _randn((19, 5), dtype, 31)
    w = _randn((6, 5), dtype, 32)
    mul = _randn((19, 5), dtype, 33) if with_mul else None
    got = cuda.linear_bwd(cuda.from_host(dout), cuda.from_host(x), cuda.from_host(w), *needs,
                          None if mul is None else cuda.from_host(mul))
    want = cpu.linear_bwd(dout, x, w, *needs, mul)
    for name, g, ref, k in zip(("dx", "dweight", "dbias"), got, want, (6, 19, 19)):
        assert (g is None) == (ref is None), name
        if ref is not None:
            close(cuda.to_host(g), ref, _tol(dtype, k), f"{name} needs={needs} mul={with_mul}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dout_layout,x_layout", [("contiguous", "contiguous"),
                                                  ("transposed", "sliced"),
                                                  ("sliced", "transposed")])
def test_linear_bwd(cuda, cpu, dtype, dout_layout, x_layout):
    """All three gradients, dx_mul sliced; dout's rows span three column-sum chunks."""
    dout, x = _randn((21, 7), dtype, 40), _randn((21, 9), dtype, 41)
    w, mul = _randn((7, 9), dtype, 42), _randn((21, 9), dtype, 43)
    got = cuda.linear_bwd(on_device(cuda, dout, dout_layout), on_device(cuda, x, x_layout),
                          cuda.from_host(w), True, True, True, on_device(cuda, mul, "sliced"))
    want = cpu.linear_bwd(dout, x, w, True, True, True, mul)
    for name, g, ref, k in zip(("dx", "dweight", "dbias"), got, want, (7, 21, 21)):
        close(cuda.to_host(g), ref, _tol(dtype, k), f"{name} dout {dout_layout}, x {x_layout}")


def test_linear_bwd_no_rows(cuda, cpu):
    """N = 0: dweight and dbias are zeros (an empty sum), dx is empty."""
    dout, x, w = (np.zeros((0, 4), np.float64), np.zeros((0, 3), np.float64),
                  _randn((4, 3), np.float64, 50))
    got = cuda.linear_bwd(cuda.from_host(dout), cuda.from_host(x), cuda.from_host(w),
                          True, True, True)
    for g, ref in zip(got, cpu.linear_bwd(dout, x, w, True, True, True)):
        close(cuda.to_host(g), ref, TOL[np.float64], "no rows")


def test_linear_bwd_dout_cast(cuda, cpu):
    """dout of another dtype is cast to x's, as the CPU does."""
    dout, x = _randn((5, 4), np.float64, 51), _randn((5, 3), np.float32, 52)
    w = _randn((4, 3), np.float32, 53)
    got = cuda.linear_bwd(cuda.from_host(dout), cuda.from_host(x), cuda.from_host(w),
                          True, True, True)
    for g, ref in zip(got, cpu.linear_bwd(dout, x, w, True, True, True)):
        assert g.dtype == np.float32
        close(cuda.to_host(g), ref, _tol(np.float32, 5), "dout cast")


def test_stays_on_device(cuda):
    """No host copy inside the primitives (only the uploads and reads the test makes)."""
    from tinygradattn.cuda import driver
    dout, x = cuda.from_host(_randn((9, 4), np.float32, 60)), \
        cuda.from_host(_randn((9, 3), np.float32, 61))
    w, b = cuda.from_host(_randn((4, 3), np.float32, 62)), cuda.from_host(np.ones(4, np.float32))
    before = dict(driver.COPIES)
    cuda.linear_fwd(x, w, b, dout)
    cuda.linear_gelu_fwd(x, w, b, "tanh")
    cuda.linear_bwd(dout, x, w, True, True, True, x)
    cuda.matmul(x, cuda.from_host(np.ones((3, 2), np.float32)))
    after = dict(driver.COPIES)
    assert after["device_to_host"] == before["device_to_host"]
    assert after["host_to_device"] == before["host_to_device"] + 1
