"""Fused attention (tinygradattn/_attention.pyx, ops/attention.py) against its oracles.

- the kernels directly, against a float64 numpy oracle: float32 and float64, causal or not,
  float masks (broadcast with stride 0), T != S, 1 and primes, tile-1 / tile / tile+1 for both
  tile sizes, D not a multiple of any vector width, large-outlier scores, 1 and 2 threads;
- F.scaled_dot_product_attention (fused) against its composed twin `_sdpa_composed`, against
  torch (values and gradients), and float64 gradcheck through it;
- fully masked rows: 0 and zero gradients, as torch 2.13 on the CPU;
- memory: forward + backward at T = S = 2048 allocate far less than one T x S matrix.
"""
import math
import tracemalloc

import numpy as np
import pytest

import tinygradattn as tga
from tinygradattn import _attention
from tinygradattn.nn import functional as F

BQ, BK = _attention.BLOCK_Q, _attention.BLOCK_K
TOL = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-11, atol=1e-12)}


# ---- oracle ----------------------------------------------------------------------------------
def reference(q, k, v, mask, causal, scale, dout):
    """float64 attention and its gradients; mask additive (or None); fully masked rows -> 0."""
    q, k, v, dout = (np.asarray(a, dtype=np.float64) for a in (q, k, v, dout))
    s = q @ np.swapaxes(k, -1, -2) * scale                                    # (B, H, T, S)
    if mask is not None:
        s = s + mask
    T, S = s.shape[-2:]
    if causal:
        s = np.where(np.tril(np.ones((T, S), dtype=bool)), s, -np.inf)
    m = s.max(-1, keepdims=True)
    dead = ~np.isfinite(m)                                                    # fully masked
    p = np.where(dead, 0.0, np.exp(s - np.where(dead, 0.0, m)))
    total = p.sum(-1, keepdims=True)
    p = p / np.where(dead, 1.0, total)
    out = p @ v
    lse = np.where(dead, -np.inf, m + np.log(np.where(dead, 1.0, total)))[..., 0]
    dp = dout @ np.swapaxes(v, -1, -2)
    ds = p * (dp - (dout * out).sum(-1, keepdims=True)) * scale
    return out, lse, ds @ k, np.swapaxes(ds, -1, -2) @ q, np.swapaxes(p, -1, -2) @ dout


def run_kernels(q, k, v, mask, causal, scale, dout, n_threads):
    B, H, T, _ = q.shape
    out = np.empty((B, H, T, v.shape[3]), dtype=q.dtype)
    lse = np.empty((B, H, T), dtype=q.dtype)
    _attention.sdpa_fwd(out, lse, q, k, v, mask, causal, scale, n_threads)
    dq, dk, dv = np.empty_like(q), np.empty_like(k), np.empty_like(v)
    _attention.sdpa_bwd(dq, dk, dv, dout, q, k, v, out, lse, mask, causal, scale, n_threads)
    return out, lse, dq, dk, dv


def assert_close(actual, expected, dtype, what):
    tol = TOL[dtype]
    expected = np.asarray(expected, dtype=np.float64)
    scale = max(1.0, float(np.abs(expected[np.isfinite(expected)]).max(initial=0.0)))
    with np.errstate(invalid="ignore"):                           # inf - inf
        diff = np.abs(actual.astype(np.float64) - expected)
    diff = np.where(actual == expected, 0.0, diff)                # equal infinities
    bad = diff > tol["atol"] * scale + tol["rtol"] * np.abs(expected)
    if bad.any():
        where = np.unravel_index(np.argmax(np.where(bad, diff, -1)), diff.shape)
        pytest.fail(f"{what} ({np.dtype(dtype).name}): max abs diff {diff.max():.3g} at {where}: "
                    f"{actual[where]!r} vs {expected[where]!r}")


def make(shape_q, S, Dv, dtype, seed=0, outliers=False):
    rng = np.random.default_rng(seed)
    B, H, T, D = shape_q
    q = rng.standard_normal((B, H, T, D))
    if outliers:                  # a few huge scores: rows far from uniform, big max shifts
        q[..., ::3, :] *= 25.0
    k = rng.standard_normal((B, H, S, D))
    v = rng.standard_normal((B, H, S, Dv))
    dout = rng.standard_normal((B, H, T, Dv))
    return [a.astype(dtype) for a in (q, k, v, dout)]


# ---- kernels against the float64 oracle ------------------------------------------------------
SIZES = sorted({1, 2, 7, BK - 1, BK, BK + 1, BQ - 1, BQ, BQ + 1, 2 * BQ + 1})
SHAPES = [  # (B, H, T, S, D, Dv)
    (2, 3, 5, 7, 4, 6),                   # T != S, Dv != D
    (1, 1, 1, 1, 1, 1),
    (1, 2, 1, 13, 5, 3),                  # one query
    (1, 2, 13, 1, 3, 5),                  # one key
    (1, 1, BQ, BK, 32, 32),               # exactly one tile
    (1, 1, BQ - 1, BK + 1, 33, 31),       # tile-1 / tile+1, D past a vector width
    (1, 2, BQ + 1, BK - 1, 17, 64),
    (2, 1, 2 * BQ + 1, 3 * BK + 5, 64, 64),
    (1, 1, 131, 67, 9, 11),               # primes
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_kernels_match_oracle(shape, masked, causal, dtype):
    B, H, T, S, D, Dv = shape
    q, k, v, dout = make((B, H, T, D), S, Dv, dtype, seed=T * 31 + S)
    mask = None
    if masked:    # (1, H, T, S) broadcast over batch: stride 0 on dim 0; some -inf entries
        rng = np.random.default_rng(1)
        m = rng.standard_normal((1, H, T, S)) * 2.0
        m[rng.random(m.shape) < 0.2] = -np.inf
        mask = np.broadcast_to(m.astype(dtype), (B, H, T, S))
    scale = 1.0 / math.sqrt(D)
    got = run_kernels(q, k, v, mask, causal, scale, dout, 2)
    want = reference(q, k, v, mask, causal, scale, dout)
    for name, a, b in zip(("out", "lse", "dq", "dk", "dv"), got, want):
        assert_close(a, b, dtype, f"{name} {shape} causal={causal} mask={masked}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("T,S", [(t, s) for t in (BQ - 1, BQ, BQ + 1) for s in (BK - 1, BK + 1)]
                         + [(s, s) for s in SIZES])
def test_kernels_tile_edges(T, S, causal, dtype):
    q, k, v, dout = make((1, 2, T, 8), S, 8, dtype, seed=T + 7 * S)
    got = run_kernels(q, k, v, None, causal, 0.4, dout, 1)
    want = reference(q, k, v, None, causal, 0.4, dout)
    for name, a, b in zip(("out", "lse", "dq", "dk", "dv"), got, want):
        assert_close(a, b, dtype, f"{name} T={T} S={S} causal={causal}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_kernels_large_outliers(causal, dtype):
    q, k, v, dout = make((2, 2, 150, 24), 150, 20, dtype, seed=3, outliers=True)
    mask = np.broadcast_to(np.linspace(-30, 30, 150).astype(dtype), (2, 2, 150, 150))  # stride 0
    got = run_kernels(q, k, v, mask, causal, 1.0, dout, 2)
    want = reference(q, k, v, mask, causal, 1.0, dout)
    for name, a, b in zip(("out", "lse", "dq", "dk", "dv"), got, want):
        assert_close(a, b, dtype, f"{name} with outliers")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_kernels_same_result_on_1_and_2_threads(dtype):
    # big enough to pass the kernels' MIN_FLOPS_PER_THREAD, so 2 threads really run
    q, k, v, dout = make((2, 2, 2 * BQ + 9, 32), 4 * BK + 3, 32, dtype, seed=5)
    assert 2.0 * 4 * (2 * BQ + 9) * (4 * BK + 3) * 64 / 2 > 2 * _attention.MIN_FLOPS_PER_THREAD
    one = run_kernels(q, k, v, None, True, 0.25, dout, 1)
    two = run_kernels(q, k, v, None, True, 0.25, dout, 2)
    for a, b in zip(one, two):                    # every output element has one owner
        np.testing.assert_array_equal(a, b)


def test_kernels_fully_masked_rows_give_zero():
    q, k, v, dout = make((1, 2, 6, 4), 5, 3, np.float64)
    m = np.zeros((6, 5))
    m[[1, 4]] = -np.inf
    mask = np.broadcast_to(m, (1, 2, 6, 5))
    out, lse, dq, dk, dv = run_kernels(q, k, v, mask, False, 0.5, dout, 2)
    assert (out[:, :, [1, 4]] == 0).all() and (lse[:, :, [1, 4]] == -np.inf).all()
    assert (dq[:, :, [1, 4]] == 0).all()
    want = reference(q, k, v, mask, False, 0.5, dout)
    for name, a, b in zip(("out", "lse", "dq", "dk", "dv"), (out, lse, dq, dk, dv), want):
        assert_close(a, b, np.float64, name)


def test_kernel_name_and_wrapper_errors():
    assert _attention.kernel_name() in ("avx512", "avx2", "generic")
    q, k, v, dout = make((1, 1, 4, 3), 5, 2, np.float32)
    out, lse = np.empty((1, 1, 4, 2), np.float32), np.empty((1, 1, 4), np.float32)
    with pytest.raises(ValueError, match=r"out has shape \(1, 1, 4, 3\), expected \(1, 1, 4, 2\)"):
        _attention.sdpa_fwd(np.empty((1, 1, 4, 3), np.float32), lse, q, k, v, None, False, 1.0,
                            1)
    with pytest.raises(TypeError, match="k float64"):
        _attention.sdpa_fwd(out, lse, q, k.astype(np.float64), v, None, False, 1.0, 1)
    with pytest.raises(ValueError, match=r"k \(1, 1, 5, 3\) needs unit stride along its last "
                                         r"dim.*strides \(4, 4, 4, 20\)"):
        _attention.sdpa_fwd(out, lse, q, np.asfortranarray(k), v, None, False, 1.0, 1)
    with pytest.raises(TypeError, match=r"mask must be a float32 .* shape \(1, 1, 4, 5\)"):
        _attention.sdpa_fwd(out, lse, q, k, v, np.zeros((4, 5), np.float32), False, 1.0, 1)
    with pytest.raises(ValueError, match="dq has shape"):
        _attention.sdpa_bwd(np.empty((1, 1, 4, 2), np.float32), np.empty_like(k),
                            np.empty_like(v), dout, q, k, v, out, lse, None, False, 1.0, 1)


# ---- F.scaled_dot_product_attention: fused vs composed twin ----------------------------------
def _sdpa_both(arrays, mask, is_causal, scale=None, dtype=tga.float64):
    """(fused out, grads) and (composed out, grads) for the same inputs and upstream gradient."""
    results = []
    for fn in (F.scaled_dot_product_attention, _composed):
        q, k, v = (tga.tensor(a, dtype=dtype, requires_grad=True) for a in arrays[:3])
        out = fn(q, k, v, attn_mask=mask, is_causal=is_causal, scale=scale)
        out.backward(tga.tensor(arrays[3], dtype=dtype))
        results.append([out.detach().numpy(), q.grad.numpy(), k.grad.numpy(), v.grad.numpy()])
    return results


def _composed(q, k, v, attn_mask=None, is_causal=False, scale=None):
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    return F._sdpa_composed(q, k, v, attn_mask, 0.0, is_causal, scale)


@pytest.mark.parametrize("dtype", [tga.float32, tga.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("mask_kind", ["none", "causal", "float", "bool"])
def test_functional_fused_matches_composed(mask_kind, dtype):
    npdt = np.float32 if dtype == tga.float32 else np.float64
    q, k, v, dout = make((2, 3, 19, 12), 23, 10, npdt, seed=11)
    rng = np.random.default_rng(2)
    mask = None
    if mask_kind == "float":
        mask = tga.tensor(rng.standard_normal((3, 1, 23)).astype(npdt))      # broadcast T
    elif mask_kind == "bool":
        m = rng.random((19, 23)) < 0.7
        m[:, 0] = True                                                        # no empty row
        mask = tga.tensor(m)
    fused, composed = _sdpa_both([q, k, v, dout], mask, mask_kind == "causal", dtype=dtype)
    for name, a, b in zip(("out", "dq", "dk", "dv"), fused, composed):
        assert_close(a, b, npdt, f"F.sdpa {name} ({mask_kind})")


def test_functional_broadcast_batch_dims_and_3d():
    q, k, v, dout = make((2, 3, 5, 4), 6, 4, np.float64, seed=4)
    arrays = [q[:, :, None], k[:1, :, None], v[:, :1, None], dout[:, :, None]]   # 5-D, broadcast
    arrays[1] = np.broadcast_to(arrays[1], (1, 3, 2, 6, 4)).copy()
    arrays[3] = np.broadcast_to(arrays[3], (2, 3, 2, 5, 4)).copy()
    mask = tga.tensor(np.random.default_rng(0).standard_normal((2, 1, 2, 5, 6)))  # merged dims
    fused, composed = _sdpa_both(arrays, mask, False)
    for name, a, b in zip(("out", "dq", "dk", "dv"), fused, composed):
        assert a.shape == b.shape
        assert_close(a, b, np.float64, f"broadcast {name}")
    fused, composed = _sdpa_both([q[0], k[0], v[0], dout[0]], None, True)         # 3-D
    for name, a, b in zip(("out", "dq", "dk", "dv"), fused, composed):
        assert_close(a, b, np.float64, f"3-D {name}")


def test_functional_dropout_takes_the_composed_path():
    q = tga.randn(1, 2, 4, 3)
    out = F.scaled_dot_product_attention(q, q, q, dropout_p=1.0)     # every weight dropped
    assert (out.numpy() == 0).all()


@pytest.mark.parametrize("mask_kind", ["causal", "float", "bool"])
def test_functional_gradcheck_float64(mask_kind):
    rng = np.random.default_rng(7)
    q, k, v = (tga.tensor(rng.standard_normal(s), dtype=tga.float64, requires_grad=True)
               for s in ((2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 3)))
    if mask_kind == "causal":
        fn = lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True)  # noqa
    elif mask_kind == "float":
        m = tga.tensor(rng.standard_normal((2, 1, 3, 5)), dtype=tga.float64)
        fn = lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=m)  # noqa
    else:
        m = tga.tensor(np.array([[1, 0, 1, 1, 0], [0, 0, 0, 1, 1], [1, 1, 1, 1, 1]], bool))
        fn = lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=m, scale=0.7)  # noqa
    assert tga.autograd.gradcheck(fn, (q, k, v))


# ---- against torch ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("mask_kind", ["none", "causal", "float", "bool", "dead_rows"])
@pytest.mark.parametrize("T,S", [(BQ + 1, BK - 1), (7, 7)])
def test_functional_matches_torch(T, S, mask_kind, dtype):
    torch = pytest.importorskip("torch", reason="parity tests need PyTorch")
    npdt = np.float32 if dtype == "float32" else np.float64
    q, k, v, dout = make((2, 2, T, 16), S, 8, npdt, seed=T + S, outliers=True)
    rng = np.random.default_rng(3)
    mask = None
    if mask_kind == "float":
        mask = rng.standard_normal((2, 1, T, S)).astype(npdt)
    elif mask_kind in ("bool", "dead_rows"):
        mask = rng.random((T, S)) < 0.6
        mask[:, 1] = True
        if mask_kind == "dead_rows":
            mask[[0, T // 2]] = False            # torch 2.13 CPU: 0 out, 0 grads there
    causal = mask_kind == "causal"
    ours = []
    q_t, k_t, v_t = (tga.tensor(a, requires_grad=True) for a in (q, k, v))
    out = F.scaled_dot_product_attention(q_t, k_t, v_t, attn_mask=None if mask is None
                                         else tga.tensor(mask), is_causal=causal)
    out.backward(tga.tensor(dout))
    ours = [out.detach().numpy(), q_t.grad.numpy(), k_t.grad.numpy(), v_t.grad.numpy()]
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    tout = torch.nn.functional.scaled_dot_product_attention(
        tq, tk, tv, attn_mask=None if mask is None else torch.tensor(mask), is_causal=causal)
    tout.backward(torch.tensor(dout))
    theirs = [tout.detach().numpy(), tq.grad.numpy(), tk.grad.numpy(), tv.grad.numpy()]
    for name, a, b in zip(("out", "dq", "dk", "dv"), ours, theirs):
        assert a.dtype == b.dtype and a.shape == b.shape
        # float32: torch's CPU flash kernel sums in another order and with its own exp
        tol = dict(rtol=1e-4, atol=2e-5) if npdt == np.float32 else TOL[np.float64]
        np.testing.assert_allclose(a, b, err_msg=f"{name} {mask_kind} {dtype}", **tol)


# ---- memory ----------------------------------------------------------------------------------
def test_memory_is_linear_in_sequence_length():
    """fwd + bwd at T = S = 2048: one T x S float32 matrix would be 16 MiB; we stay < 2 MiB.

    tracemalloc sees numpy's allocations (every array the op creates); the kernels' per-thread
    scratch is O((BQ + D + Dv) * BK + T) elements and not traced.
    """
    T, D = 2048, 16
    q, k, v = (tga.randn(1, 1, T, D, requires_grad=True) for _ in range(3))
    dout = tga.randn(1, 1, T, D)
    tracemalloc.start()
    try:
        out = F.scaled_dot_product_attention(q, k, v)
        out.backward(dout)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert q.grad is not None
    assert peak < T * T * 4 / 8, f"peak {peak / 2**20:.1f} MiB traced for T = S = {T}"
