"""CUDA attention (tinygradattn/cuda/attention.py) against the CPU backend, in numba's CUDA
simulator with SIM_TUNING's 4 x 4 tiles (tests/conftest.py turns the simulator on).

- sdpa_fwd / sdpa_bwd: out, lse, dq, dk, dv equal the CPU backend's in float32 and float64:
  T, S, D, Dv of 1, primes, tile - 1 / tile / tile + 1, T != S both ways, D past a head-dim
  bucket, causal or not, a scale given; inputs carry large outliers so rows are far from
  uniform;
- masks: bool and float, broadcast from (T, S) and (B, 1, T, S) (read with stride 0), a
  float64 mask on float32 inputs (cast as on the CPU), fully masked rows (out 0, lse -inf,
  no gradient), a mask with causal;
- non-contiguous q, k, v, dout (heads of a (B, T, H, D) buffer, a sliced buffer) read in
  place, and no host copy during forward and backward;
- qkv_attention_fwd / _bwd with n_head 1 and 2, causal or not, a transposed qkv, a key
  padding mask (bool (B, 1, 1, T), or float);
- empty shapes (B, T or S of 0), bad input (the CPU backend's exception types);
- the tile sizes at the GPU's tuning fit 48 KiB of shared memory for every served key.
"""

import numpy as np
import pytest

from helpers import Tol, assert_close
from tinygradattn.backend import get_backend

cpu = get_backend("cpu")
cuda = get_backend("cuda")

from tinygradattn.cuda import attention, driver, views  # noqa: E402  (after the backend loads)
from tinygradattn.cuda.launch import GPU_TUNING  # noqa: E402

# float32: the simulator computes float32 math in float64, the CPU kernels in float32, and
# the two sum in different orders: a few ulps of the largest value per reduction step
TOL = {np.float32: Tol(rtol=2e-5, atol=2e-5), np.float64: Tol(rtol=1e-11, atol=1e-12)}
DTYPES = (np.float32, np.float64)


# ---- helpers -----------------------------------------------------------------------------------
def _normal(rng, shape, dtype):
    """Standard normal with a few large outliers (rows far from uniform)."""
    x = rng.standard_normal(shape)
    if x.size:
        flat = x.reshape(-1)
        flat[rng.integers(0, x.size, max(1, x.size // 7))] *= 6.0
    return x.astype(dtype)


def _heads(x_bthd):
    """A (B, T, H, D) host array as (B, H, T, D): on the host and as a strided device view."""
    dev = views.permute(cuda.from_host(x_bthd), (0, 2, 1, 3))
    return x_bthd.transpose(0, 2, 1, 3), dev


def _close(actual, expected, dtype, what):
    with np.errstate(invalid="ignore"):                     # -inf - -inf in lse's diff
        assert_close(cuda.to_host(actual), expected, TOL[dtype], what=what, dtype=dtype)


def _run_sdpa(q, k, v, dout, mask, causal, scale, dev=None):
    """Forward and backward on both backends, compared. dev: device views of q, k, v,
    dout, mask to use instead of contiguous copies."""
    dtype = q.dtype.type
    out, lse = cpu.sdpa_fwd(q, k, v, mask, causal, scale)
    grads = cpu.sdpa_bwd(dout, q, k, v, out, lse, mask, causal, scale)
    if dev is None:
        dev = [None if a is None else cuda.from_host(a) for a in (q, k, v, dout, mask)]
    dq_, dk_, dv_, ddout, dmask = dev
    copies = dict(driver.COPIES)
    d_out, d_lse = cuda.sdpa_fwd(dq_, dk_, dv_, dmask, causal, scale)
    d_grads = cuda.sdpa_bwd(ddout, dq_, dk_, dv_, d_out, d_lse, dmask, causal, scale)
    assert driver.COPIES == copies, "host copies during attention"
    assert d_out.shape == out.shape and d_lse.shape == lse.shape
    _close(d_out, out, dtype, "out")
    _close(d_lse, lse, dtype, "lse")
    for name, got, want in zip(("dq", "dk", "dv"), d_grads, grads):
        assert got.shape == want.shape, name
        _close(got, want, dtype, name)
    return cuda.to_host(d_out), cuda.to_host(d_lse), [cuda.to_host(g) for g in d_grads]


def _sdpa_inputs(B, H, T, S, D, Dv, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return (_normal(rng, (B, H, T, D), dtype), _normal(rng, (B, H, S, D), dtype),
            _normal(rng, (B, H, S, Dv), dtype), _normal(rng, (B, H, T, Dv), dtype))


# ---- sdpa ---------------------------------------------------------------------------------------
SHAPES = [  # B, H, T, S, D, Dv (tiles are 4 x 4 here)
    (1, 1, 1, 1, 1, 1),
    (2, 3, 5, 5, 4, 4),
    (1, 2, 5, 7, 4, 3),     # T < S
    (2, 1, 7, 3, 5, 2),     # T > S
    (1, 1, 8, 9, 3, 5),     # a whole tile, a tile + 1
    (1, 1, 3, 4, 17, 3),    # D past the first head-dim bucket (16)
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_sdpa_matches_cpu(shape, causal, dtype):
    B, H, T, S, D, Dv = shape
    q, k, v, dout = _sdpa_inputs(*shape, dtype)
    _run_sdpa(q, k, v, dout, None, causal, 1.0 / np.sqrt(D))


@pytest.mark.parametrize("dtype", DTYPES)
def test_sdpa_scale_given(dtype):
    q, k, v, dout = _sdpa_inputs(1, 2, 6, 5, 3, 4, dtype, seed=1)
    _run_sdpa(q, k, v, dout, None, False, 0.37)


def _masks(kind, B, T, S, dtype, mshape):
    """A bool (True = may attend) or float mask of shape mshape with row 1 fully masked."""
    rng = np.random.default_rng(2)
    allowed = rng.random(mshape) < 0.6
    allowed[..., 0, 0] = True                     # row 0 sees at least key 0
    allowed[..., 1, :] = False                    # row 1 sees nothing
    if kind == "bool":
        return allowed
    return np.where(allowed, rng.standard_normal(mshape), -np.inf).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["bool", "float"])
@pytest.mark.parametrize("mshape", ["TS", "B1TS"])
def test_sdpa_masks_broadcast_and_fully_masked_rows(mshape, kind, dtype):
    B, H, T, S = 2, 2, 5, 6
    q, k, v, dout = _sdpa_inputs(B, H, T, S, 3, 3, dtype, seed=3)
    mask = _masks(kind, B, T, S, dtype, (T, S) if mshape == "TS" else (B, 1, T, S))
    out, lse, (dq, dk, dv) = _run_sdpa(q, k, v, dout, mask, False, 0.5)
    assert np.all(out[:, :, 1] == 0) and np.all(lse[:, :, 1] == -np.inf)
    assert np.all(dq[:, :, 1] == 0)


def test_sdpa_float64_mask_on_float32_and_mask_with_causal():
    q, k, v, dout = _sdpa_inputs(1, 2, 7, 5, 4, 2, np.float32, seed=4)
    mask = _masks("float", 1, 7, 5, np.float64, (7, 5))            # cast to float32
    _run_sdpa(q, k, v, dout, mask, False, 0.5)
    _run_sdpa(q, k, v, dout, _masks("bool", 1, 7, 5, None, (1, 1, 7, 5)), True, 0.5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [False, True])
def test_sdpa_strided_operands_read_in_place(causal, dtype):
    B, H, T, S, D = 2, 2, 5, 6, 3
    rng = np.random.default_rng(5)
    q, dq_ = _heads(_normal(rng, (B, T, H, D), dtype))
    k, dk_ = _heads(_normal(rng, (B, S, H, D), dtype))
    v, dv_ = _heads(_normal(rng, (B, S, H, D + 1), dtype))
    wide = _normal(rng, (B, H, T, D + 4), dtype)                  # dout: a slice of a buffer
    dout = wide[..., 1:D + 2]
    ddout = views.basic_getitem(cuda.from_host(wide), (Ellipsis, slice(1, D + 2)))
    mask = rng.random((T, S)) < 0.7
    mask[:, 0] = True
    mask_t = views.permute(cuda.from_host(np.ascontiguousarray(mask.T)), (1, 0))  # (T, S) view
    assert not dq_.is_contiguous and not ddout.is_contiguous and not mask_t.is_contiguous
    _run_sdpa(q, k, v, dout, mask, causal, 0.6, dev=[dq_, dk_, dv_, ddout, mask_t])


def test_sdpa_output_layout_and_gradient_layout():
    """out is a (B, T, H, Dv) buffer viewed (B, H, T, Dv) (heads merge without a copy); the
    gradient of a (B, T, H, D) view is laid out the same way, as on the CPU."""
    x = np.zeros((2, 3, 4, 2), np.float32)                        # (B, T, H, D)
    _, q = _heads(x)
    out, _ = cuda.sdpa_fwd(q, q, q, None, False, 1.0)
    assert out.strides == (24, 2, 8, 1)
    dq, _, _ = cuda.sdpa_bwd(out, q, q, q, out, cuda.zeros((2, 4, 3), np.float32), None, False,
                             1.0)
    assert dq.strides == q.strides


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("dims", [(0, 1, 3, 4), (1, 1, 0, 4), (2, 1, 3, 0)],
                         ids=["B=0", "T=0", "S=0"])
def test_sdpa_empty(dims, causal):
    """torch's semantics (the CPU backend rejects empty operands: their numpy strides are 0):
    no key gives out 0 and lse -inf, every gradient of nothing is 0."""
    B, H, T, S = dims
    q, k, v, dout = (cuda.from_host(a) for a in _sdpa_inputs(B, H, T, S, 2, 3, np.float64))
    out, lse = cuda.sdpa_fwd(q, k, v, None, causal, 1.0)
    dq, dk, dv = cuda.sdpa_bwd(dout, q, k, v, out, lse, None, causal, 1.0)
    assert np.array_equal(cuda.to_host(out), np.zeros((B, H, T, 3)))
    assert np.array_equal(cuda.to_host(lse), np.full((B, H, T), -np.inf))
    for got, shape in zip((dq, dk, dv), ((B, H, T, 2), (B, H, S, 2), (B, H, S, 3))):
        assert np.array_equal(cuda.to_host(got), np.zeros(shape))


# ---- qkv_attention ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("n_head", [1, 2])
def test_qkv_attention_matches_cpu(n_head, causal, dtype):
    B, T, C = 2, 5, 3 * n_head
    rng = np.random.default_rng(7)
    qkv, dout = _normal(rng, (B, T, 3 * C), dtype), _normal(rng, (B, T, C), dtype)
    scale = 1.0 / np.sqrt(C // n_head)
    y, lse = cpu.qkv_attention_fwd(qkv, n_head, causal, scale)
    dqkv = cpu.qkv_attention_bwd(dout, qkv, y, lse, n_head, causal, scale)
    d_qkv = cuda.from_host(qkv)
    d_y, d_lse = cuda.qkv_attention_fwd(d_qkv, n_head, causal, scale)
    d_dqkv = cuda.qkv_attention_bwd(cuda.from_host(dout), d_qkv, d_y, d_lse, n_head, causal,
                                    scale)
    _close(d_y, y, dtype, "y")
    _close(d_lse, lse, dtype, "lse")
    _close(d_dqkv, dqkv, dtype, "dqkv")


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_qkv_attention_with_mask_matches_cpu(kind):
    B, T, C, n_head = 2, 5, 4, 2
    rng = np.random.default_rng(9)
    qkv, dout = _normal(rng, (B, T, 3 * C), np.float64), _normal(rng, (B, T, C), np.float64)
    may_attend = np.ones((B, 1, 1, T), bool)
    may_attend[0, 0, 0, 3:] = False                               # a padded batch row
    mask = may_attend if kind == "bool" else np.where(may_attend, 0.0, -np.inf)
    y, lse = cpu.qkv_attention_fwd(qkv, n_head, False, 0.5, mask)
    dqkv = cpu.qkv_attention_bwd(dout, qkv, y, lse, n_head, False, 0.5, mask)
    d_qkv, d_mask = cuda.from_host(qkv), cuda.from_host(mask)
    d_y, d_lse = cuda.qkv_attention_fwd(d_qkv, n_head, False, 0.5, d_mask)
    d_dqkv = cuda.qkv_attention_bwd(cuda.from_host(dout), d_qkv, d_y, d_lse, n_head, False,
                                    0.5, d_mask)
    _close(d_y, y, np.float64, "y")
    _close(d_lse, lse, np.float64, "lse")
    _close(d_dqkv, dqkv, np.float64, "dqkv")


def test_qkv_attention_transposed_qkv():
    T, B, C, n_head = 6, 2, 4, 2
    rng = np.random.default_rng(8)
    tb = _normal(rng, (T, B, 3 * C), np.float64)                  # qkv = tb viewed (B, T, 3C)
    qkv, dout = tb.transpose(1, 0, 2), _normal(rng, (B, T, C), np.float64)
    y, lse = cpu.qkv_attention_fwd(qkv, n_head, True, 0.5)
    dqkv = cpu.qkv_attention_bwd(dout, qkv, y, lse, n_head, True, 0.5)
    d_qkv = views.permute(cuda.from_host(tb), (1, 0, 2))
    d_y, d_lse = cuda.qkv_attention_fwd(d_qkv, n_head, True, 0.5)
    d_dqkv = cuda.qkv_attention_bwd(cuda.from_host(dout), d_qkv, d_y, d_lse, n_head, True, 0.5)
    _close(d_y, y, np.float64, "y")
    _close(d_dqkv, dqkv, np.float64, "dqkv")


# ---- bad input ----------------------------------------------------------------------------------
def _raises_like_cpu(fn, *args):
    """fn on both backends raises the same exception type."""
    with pytest.raises(Exception) as on_cpu:
        getattr(cpu, fn)(*args)
    dev = [cuda.from_host(a) if isinstance(a, np.ndarray) else a for a in args]
    with pytest.raises(on_cpu.type):
        getattr(cuda, fn)(*dev)


def test_bad_input_raises_as_cpu():
    q, k, v, dout = _sdpa_inputs(1, 2, 3, 4, 2, 2, np.float32)
    _raises_like_cpu("sdpa_fwd", q, k.astype(np.float64), v, None, False, 1.0)     # TypeError
    _raises_like_cpu("sdpa_fwd", q, k[:, :1], v, None, False, 1.0)                 # ValueError
    _raises_like_cpu("sdpa_fwd", q, k, v[:, :, :3], None, False, 1.0)
    _raises_like_cpu("sdpa_fwd", q, k[..., :1], v, None, False, 1.0)
    _raises_like_cpu("sdpa_fwd", q, k, v, np.zeros((5, 4), bool), False, 1.0)
    out, lse = cpu.sdpa_fwd(q, k, v, None, False, 1.0)
    _raises_like_cpu("sdpa_bwd", dout, q, k, v, out, lse[:, :1], None, False, 1.0)
    _raises_like_cpu("sdpa_bwd", dout[..., :1], q, k, v, out, lse, None, False, 1.0)
    qkv = np.zeros((2, 3, 12), np.float32)
    _raises_like_cpu("qkv_attention_fwd", qkv, 5, False, 1.0)
    _raises_like_cpu("qkv_attention_fwd", qkv.astype(np.int64), 2, False, 1.0)


def test_head_dim_past_the_largest_bucket_is_refused():
    big = cuda.zeros((1, 1, 2, attention.HEAD_DIMS[-1] + 1), np.float32)
    with pytest.raises(NotImplementedError, match="D, Dv <= 128"):
        cuda.sdpa_fwd(big, big, big, None, False, 1.0)


# ---- tiles at the GPU sizes ---------------------------------------------------------------------
@pytest.mark.parametrize("kernel", ["fwd", "dkdv", "dq"])
def test_gpu_tiles_fit_shared_memory(kernel):
    for dtype in DTYPES:
        for dm in attention.HEAD_DIMS:
            outer, inner, lanes = attention.tiles(GPU_TUNING, kernel, dtype, dm)
            size = attention.smem_elements(kernel, outer, inner, dm, lanes)
            assert size * np.dtype(dtype).itemsize <= attention.SMEM_LIMIT
            assert inner % lanes == 0 and dm % lanes == 0
            assert outer * lanes <= GPU_TUNING["attn_threads"]
    # D = 64 float32, the GPT case, keeps large tiles
    assert attention.tiles(GPU_TUNING, "fwd", np.float32, 64)[:2] == (64, 32)
