"""Fused attention (tinygradattn/_attention.pyx, ops/attention.py) against its oracles.

- the kernels directly, against a float64 numpy oracle: float32 and float64, causal or not,
  float masks (broadcast with stride 0), T != S, 1 and primes, tile-1 / tile / tile+1 for both
  tile sizes, D not a multiple of any vector width, large-outlier scores, 1 and 2 threads;
- causal tiles crossing the diagonal, computed in pieces of CAUSAL_PIECE query rows: T and S at
  the pieces' edges (S = T, S > T, S < T), D = 1 and odd, masks with dead rows, every kernel
  ISA, every output written (NaN-filled before), bitwise equal on 1 and 2 threads, against
  the oracle, the composed twin and torch;
- F.scaled_dot_product_attention (fused) against its composed twin `_sdpa_composed`, against
  torch (values and gradients), and float64 gradcheck through it;
- fully masked rows: 0 and zero gradients, as torch 2.13 on the CPU;
- strided operands: every (B, H, rows, D) array as a view (heads interleaved as in a
  (B, T, H, D) buffer, padded rows, reversed rows, broadcast inputs, q | k | v of one packed
  buffer and dq | dk | dv written into one): bitwise the contiguous results; stride errors;
- qkv_attention (ops/attention.py QKVAttention) against the float64 oracle, its composed twin
  and torch, gradcheck, odd shapes, every kernel ISA; no copies of q, k, v on either path;
- memory: forward + backward at T = S = 2048 allocate far less than one T x S matrix.
"""
import math
import tracemalloc

import numpy as np
import pytest

import tinygradattn as tga
from tinygradattn import _attention
from tinygradattn.backend import isa as backend_isa
from tinygradattn.nn import functional as F
from tinygradattn.nn import reference as twins
from tinygradattn.nn.attention import qkv_attention

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


def run_kernels(q, k, v, mask, causal, scale, dout, n_threads, fill=None):
    """The kernels' out, lse, dq, dk, dv; fill: a value every output starts as (else empty)."""
    B, H, T, _ = q.shape
    new = np.empty_like if fill is None else lambda a: np.full_like(a, fill)
    out = new(np.empty((B, H, T, v.shape[3]), dtype=q.dtype))
    lse = new(np.empty((B, H, T), dtype=q.dtype))
    _attention.sdpa_fwd(out, lse, q, k, v, mask, causal, scale, n_threads)
    dq, dk, dv = new(q), new(k), new(v)
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
    bad |= np.isnan(actual) != np.isnan(expected)                 # (nan > tol is False)
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
    (3, 2, 15, 10, 32, 32),               # the default task's rows: padded short tiles
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
    assert backend_isa.isa("attention") in ("avx512", "avx2", "generic")
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


# ---- causal: a tile crossing the diagonal runs in pieces of PIECE query rows -----------------
PIECE = _attention.CAUSAL_PIECE
PIECE_T = sorted({1, 2, PIECE - 1, PIECE, PIECE + 1, 2 * PIECE - 1, 2 * PIECE + 1, 3 * PIECE,
                  BQ - PIECE + 1, BQ - 1, BQ, BQ + 1, BQ + PIECE - 1, BQ + PIECE + 1,
                  2 * BQ + PIECE + 1})
PIECE_DIMS = [(1, 1), (3, 5), (17, 16), (32, 33), (16, 48)]    # (D, Dv): 1, odd, half/full NR


def piece_cases():
    """(T, S, D, Dv) at the pieces' edges: S = T; S > T (keys no query sees, inside the
    diagonal tile and past it); S < T (pieces that see every key of their tile)."""
    cases = []
    for n, T in enumerate(PIECE_T):
        for m, S in enumerate(sorted({T, T + 5, max(1, T - PIECE - 3)})):
            cases.append((T, S) + PIECE_DIMS[(n + m) % len(PIECE_DIMS)])
    return cases


def piece_mask(T, S, dtype, seed):
    """(1, 2, T, S) float mask broadcast over the batch, some -inf entries, and rows 0 and
    PIECE (the first rows of two pieces) fully masked."""
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((1, 2, T, S)) * 2.0
    m[rng.random(m.shape) < 0.2] = -np.inf
    m[:, :, [0, min(PIECE, T - 1)]] = -np.inf
    return np.broadcast_to(m.astype(dtype), (2, 2, T, S))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_pieces_match_oracle_every_isa(attention_isa, causal, dtype):
    for n, (T, S, D, Dv) in enumerate(piece_cases()):
        q, k, v, dout = make((2, 2, T, D), S, Dv, dtype, seed=n, outliers=n % 3 == 0)
        mask = piece_mask(T, S, dtype, n) if n % 2 else None
        scale = 1.0 / math.sqrt(D)
        got = run_kernels(q, k, v, mask, causal, scale, dout, 2, fill=np.nan)  # all written
        want = reference(q, k, v, mask, causal, scale, dout)
        for name, a, b in zip(("out", "lse", "dq", "dk", "dv"), got, want):
            assert_close(a, b, dtype, f"{name} [{attention_isa}] T={T} S={S} D={D} Dv={Dv} "
                                      f"causal={causal} mask={mask is not None}")
        if causal and mask is None and S > T:      # keys past the last query: zero gradients
            assert (got[3][:, :, T:] == 0).all() and (got[4][:, :, T:] == 0).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_pieces_deterministic_on_1_and_2_threads_every_isa(attention_isa, dtype):
    for T, S, D, Dv in [(BQ + PIECE + 1, BQ + PIECE + 1, 17, 16), (2 * PIECE + 1, 3 * BK, 5, 3)]:
        q, k, v, dout = make((2, 3, T, D), S, Dv, dtype, seed=T)
        one = run_kernels(q, k, v, None, True, 0.3, dout, 1)
        two = run_kernels(q, k, v, None, True, 0.3, dout, 2)
        again = run_kernels(q, k, v, None, True, 0.3, dout, 2)
        for name, a, b, c in zip(("out", "lse", "dq", "dk", "dv"), one, two, again):
            np.testing.assert_array_equal(a, b, err_msg=f"{name} 1 vs 2 threads T={T}")
            np.testing.assert_array_equal(b, c, err_msg=f"{name} twice T={T}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("T,S,D", [(PIECE + 1, PIECE + 1, 1), (2 * PIECE - 1, 2 * PIECE + 4, 3),
                                   (BQ, BQ, 32), (BQ + PIECE + 1, BQ + PIECE - 1, 17)])
def test_pieces_functional_matches_composed_and_torch(T, S, D, dtype):
    torch = pytest.importorskip("torch", reason="parity tests need PyTorch")
    npdt = np.float32 if dtype == "float32" else np.float64
    q, k, v, dout = make((2, 2, T, D), S, D + 2, npdt, seed=T + S)
    fused, composed = _sdpa_both([q, k, v, dout], None, True, dtype=getattr(tga, dtype))
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    tout = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=True)
    tout.backward(torch.tensor(dout))
    theirs = [tout.detach().numpy(), tq.grad.numpy(), tk.grad.numpy(), tv.grad.numpy()]
    tol = dict(rtol=1e-4, atol=2e-5) if npdt == np.float32 else TOL[np.float64]
    for name, a, b, c in zip(("out", "dq", "dk", "dv"), fused, composed, theirs):
        assert_close(a, b, npdt, f"F.sdpa {name} vs composed T={T} S={S} D={D}")
        np.testing.assert_allclose(a, c, err_msg=f"{name} vs torch T={T} S={S} D={D}", **tol)


# ---- strided operands ------------------------------------------------------------------------
def as_layout(a, layout):
    """A view equal to a (B, H, R, D) in another memory layout (unit stride kept along D)."""
    return fill(empty_layout(a.shape, a.dtype, layout), a)


def empty_layout(shape, dtype, layout):
    B, H, R, D = shape
    if layout == "bthd":        # heads interleaved: (B, R, H, D) buffer, as a transposed view
        return np.empty((B, R, H, D), dtype).transpose(0, 2, 1, 3)
    if layout == "hbrd":
        return np.empty((H, B, R, D), dtype).transpose(1, 0, 2, 3)
    if layout == "padded":      # row stride D + 3: no vector-width alignment
        return np.empty((B, H, R, D + 3), dtype)[..., :D]
    if layout == "reversed":    # negative row stride
        return np.empty((B, H, R, D), dtype)[:, :, ::-1]
    raise ValueError(layout)


def fill(view, a):
    view[...] = a
    return view


def run_kernels_into(outs, q, k, v, mask, causal, scale, dout, n_threads):
    """run_kernels, writing into the given out, lse, dq, dk, dv (any layout)."""
    out, lse, dq, dk, dv = outs
    _attention.sdpa_fwd(out, lse, q, k, v, mask, causal, scale, n_threads)
    _attention.sdpa_bwd(dq, dk, dv, dout, q, k, v, out, lse, mask, causal, scale, n_threads)
    return outs


LAYOUTS = ["bthd", "hbrd", "padded", "reversed"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_strided_operands_equal_contiguous(shape, layout, causal, dtype):
    B, H, T, S, D, Dv = shape
    q, k, v, dout = make((B, H, T, D), S, Dv, dtype, seed=T * 7 + S, outliers=True)
    mask = np.broadcast_to(np.linspace(-3, 3, S).astype(dtype), (B, H, T, S))   # stride 0 x3
    want = run_kernels(q, k, v, mask, causal, 0.3, dout, 2)
    outs = [empty_layout((B, H, T, Dv), dtype, layout), np.empty((B, H, T), dtype),
            empty_layout(q.shape, dtype, layout), empty_layout(k.shape, dtype, layout),
            empty_layout(v.shape, dtype, layout)]
    got = run_kernels_into(outs, *(as_layout(a, layout) for a in (q, k, v)), mask, causal, 0.3,
                           as_layout(dout, layout), 2)
    for name, a, b in zip(("out", "lse", "dq", "dk", "dv"), got, want):
        np.testing.assert_array_equal(a, b, err_msg=f"{name} {layout} {shape} causal={causal}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("T", [1, 2, 13, BQ - 1, BQ, BQ + 1, 2 * BQ + 1])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_packed_qkv_views_equal_contiguous(T, causal, dtype, n_threads):
    """q | k | v read from one (B, T, 3, H, D) buffer, out written as (B, T, H, D), and
    dq | dk | dv written into one (B, T, 3, H, D) buffer, as qkv_attention does."""
    B, H, D = 2, 3, 5
    rng = np.random.default_rng(T)
    qkv = rng.standard_normal((B, T, 3, H, D)).astype(dtype)
    q, k, v = qkv.transpose(2, 0, 3, 1, 4)                                    # (B, H, T, D)
    dout = rng.standard_normal((B, T, H, D)).astype(dtype).transpose(0, 2, 1, 3)
    want = run_kernels(*(np.ascontiguousarray(a) for a in (q, k, v)), None, causal, 0.5,
                       np.ascontiguousarray(dout), n_threads)
    dqkv = np.full((B, T, 3, H, D), np.nan, dtype)       # every element must be written
    out = np.full((B, T, H, D), np.nan, dtype).transpose(0, 2, 1, 3)
    got = run_kernels_into([out, np.empty((B, H, T), dtype), *dqkv.transpose(2, 0, 3, 1, 4)],
                           q, k, v, None, causal, 0.5, dout, n_threads)
    for name, a, b in zip(("out", "lse", "dq", "dk", "dv"), got, want):
        np.testing.assert_array_equal(a, b, err_msg=f"packed {name} T={T} causal={causal}")


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_broadcast_inputs_and_keys_past_the_queries(causal):
    """k, v broadcast over batch and heads (stride 0); S > T, so causal leaves keys unseen:
    their dk, dv rows are written as 0 (the kernel zeroes nothing up front)."""
    q, k, v, dout = make((2, 3, 5, 4), 2 * BK + 3, 6, np.float64, seed=9)
    kb, vb = (np.broadcast_to(a[:1, :1], a.shape) for a in (k, v))
    want = run_kernels(q, np.ascontiguousarray(kb), np.ascontiguousarray(vb), None, causal, 0.5,
                       dout, 2)
    outs = [np.empty(q.shape[:3] + (6,)), np.empty(q.shape[:3]), np.full(q.shape, np.nan),
            np.full(k.shape, np.nan), np.full(v.shape, np.nan)]
    got = run_kernels_into(outs, q, kb, vb, None, causal, 0.5, dout, 2)
    for name, a, b in zip(("out", "lse", "dq", "dk", "dv"), got, want):
        np.testing.assert_array_equal(a, b, err_msg=f"broadcast {name} causal={causal}")
    if causal:
        assert (got[3][:, :, 5:] == 0).all() and (got[4][:, :, 5:] == 0).all()


def test_value_dim_zero_still_gives_lse():
    q, k, v, dout = make((1, 2, 5, 3), 7, 0, np.float64)
    out, lse, dq, dk, dv = run_kernels(q, k, v, None, True, 0.5, dout, 1)
    want = reference(q, k, v, None, True, 0.5, dout)
    assert_close(lse, want[1], np.float64, "lse with Dv = 0")
    assert (dq == 0).all() and (dk == 0).all() and out.shape == (1, 2, 5, 0)


def test_stride_and_overlap_errors():
    q, k, v, dout = make((2, 2, 4, 3), 4, 3, np.float32)
    out, lse = np.empty((2, 2, 4, 3), np.float32), np.empty((2, 2, 4), np.float32)
    fwd, bwd = _attention.sdpa_fwd, _attention.sdpa_bwd
    q_cols = np.ascontiguousarray(q.swapaxes(2, 3)).swapaxes(2, 3)        # D stride 16 bytes
    with pytest.raises(ValueError, match=r"q \(2, 2, 4, 3\) needs unit stride along its last "
                                         r"dim.*strides \(96, 48, 4, 16\)"):
        fwd(out, lse, q_cols, k, v, None, False, 1.0, 1)
    with pytest.raises(ValueError, match=r"out \(2, 2, 4, 3\) needs unit stride"):
        fwd(np.empty((2, 2, 3, 4), np.float32).swapaxes(2, 3), lse, q, k, v, None, False, 1.0, 1)
    with pytest.raises(ValueError, match=r"lse \(2, 2, 4\) must be C-contiguous"):
        fwd(out, np.empty((2, 2, 8), np.float32)[..., ::2], q, k, v, None, False, 1.0, 1)
    with pytest.raises(ValueError, match=r"output out \(2, 2, 4, 3\) .* overlaps q"):
        fwd(q, lse, q, k, v, None, False, 1.0, 1)
    buf = np.empty(48, np.float32)
    with pytest.raises(ValueError, match="output out .* overlaps lse"):
        fwd(buf.reshape(2, 2, 4, 3), buf[:16].reshape(2, 2, 4), q, k, v, None, False, 1.0, 1)
    shared = np.lib.stride_tricks.as_strided(out, (2, 2, 4, 3), (0, 48, 12, 4))   # batch: 0
    with pytest.raises(ValueError, match="out .* has elements shared by several indices"):
        fwd(shared, lse, q, k, v, None, False, 1.0, 1)
    read_only = out.copy()
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="out is read-only"):
        fwd(read_only, lse, q, k, v, None, False, 1.0, 1)
    fwd(out, lse, q, k, v, None, False, 1.0, 1)
    g = np.empty((2, 4, 2, 2, 3), np.float32)
    third = g[:, :, 0].transpose(0, 2, 1, 3)                              # (2, 2, 4, 3)
    with pytest.raises(ValueError, match="output dq .* overlaps dk"):
        bwd(third, third, np.empty_like(v), dout, q, k, v, out, lse, None, False, 1.0, 1)
    with pytest.raises(ValueError, match="output dv .* overlaps dout"):
        bwd(np.empty_like(q), np.empty_like(k), dout, dout, q, k, v, out, lse, None, False, 1.0,
            1)
    interleaved = g.transpose(2, 0, 3, 1, 4)                              # dq | dk: no overlap
    bwd(interleaved[0], interleaved[1], np.empty_like(v), dout, q, k, v, out, lse, None, False,
        1.0, 1)


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


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_functional_non_contiguous_inputs_equal_contiguous(causal):
    """Heads transposed out of (B, T, H, D) buffers, and a q whose D is strided (copied by
    the backend): the same outputs and gradients as contiguous inputs, bit for bit."""
    q, k, v, dout = make((2, 3, BQ + 2, 5), BQ + 2, 5, np.float32, seed=8)
    results = []
    for layout in ("contiguous", "bthd", "d-strided"):
        leaves, views = [], []
        for a in (q, k, v):
            if layout == "contiguous":
                leaf = tga.tensor(a, requires_grad=True)
                view = leaf
            elif layout == "bthd" or a is not q:
                leaf = tga.tensor(np.ascontiguousarray(a.transpose(0, 2, 1, 3)),
                                  requires_grad=True)
                view = leaf.transpose(1, 2)                               # (B, H, T, D)
            else:
                leaf = tga.tensor(np.ascontiguousarray(a.swapaxes(2, 3)), requires_grad=True)
                view = leaf.transpose(2, 3)                               # D stride T
            leaves.append(leaf)
            views.append(view)
        out = F.scaled_dot_product_attention(*views, is_causal=causal)
        out.backward(tga.tensor(dout))
        grads = [leaf.grad.numpy() for leaf in leaves]
        if layout == "bthd":
            grads = [g.transpose(0, 2, 1, 3) for g in grads]
        elif layout == "d-strided":
            grads = [grads[0].swapaxes(2, 3)] + [g.transpose(0, 2, 1, 3) for g in grads[1:]]
        results.append([out.detach().numpy()] + grads)
    for layout, got in zip(("bthd", "d-strided"), results[1:]):
        for name, a, b in zip(("out", "dq", "dk", "dv"), got, results[0]):
            np.testing.assert_array_equal(a, b, err_msg=f"{layout} {name}")


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


# ---- qkv_attention: one op from a packed projection -------------------------------------------
QKV_SHAPES = [  # (B, T, H, D)
    (1, 1, 1, 1),
    (2, 7, 3, 5),
    (1, 13, 2, 1),                        # D = 1
    (3, BQ - 1, 1, 8),                    # H = 1, tile-1
    (1, BQ, 2, 4),
    (2, BQ + 1, 2, 3),                    # tile+1
    (1, 2 * BQ + 3, 2, 33),               # several query blocks and key tiles, D past NR
]


def qkv_reference(qkv, H, causal, scale, dy):
    """float64 y (B, T, C) and dqkv (B, T, 3C) through the (B, H, T, D) oracle."""
    B, T, C3 = qkv.shape
    C = C3 // 3
    q, k, v = qkv.reshape(B, T, 3, H, C // H).transpose(2, 0, 3, 1, 4)
    dout = dy.reshape(B, T, H, C // H).transpose(0, 2, 1, 3)
    out, _, dq, dk, dv = reference(q, k, v, None, causal, scale, dout)
    y = out.transpose(0, 2, 1, 3).reshape(B, T, C)
    dqkv = np.stack([dq, dk, dv]).transpose(1, 3, 0, 2, 4).reshape(B, T, C3)
    return y, dqkv


def _qkv_data(B, T, H, D, npdt, seed=0):
    rng = np.random.default_rng(seed)
    qkv = rng.standard_normal((B, T, 3 * H * D))
    qkv[:, ::3, :H * D] *= 8.0                              # some peaked rows
    return qkv.astype(npdt), rng.standard_normal((B, T, H * D)).astype(npdt)


def _run_qkv(fn, qkv, dy, H, causal, dtype):
    x = tga.tensor(qkv, dtype=dtype, requires_grad=True)
    y = fn(x, H, is_causal=causal)
    y.backward(tga.tensor(dy, dtype=dtype))
    return y.detach().numpy(), x.grad.numpy()


@pytest.mark.parametrize("dtype", [tga.float32, tga.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("shape", QKV_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_qkv_attention_matches_oracle_and_composed(shape, causal, dtype):
    B, T, H, D = shape
    npdt = np.float32 if dtype == tga.float32 else np.float64
    qkv, dy = _qkv_data(B, T, H, D, npdt, seed=T)
    y, dqkv = _run_qkv(qkv_attention, qkv, dy, H, causal, dtype)
    assert y.shape == (B, T, H * D) and dqkv.shape == qkv.shape and y.dtype == npdt
    want = qkv_reference(qkv, H, causal, 1.0 / math.sqrt(D), dy)
    for name, a, b in zip(("y", "dqkv"), (y, dqkv), want):
        assert_close(a, b, npdt, f"qkv_attention {name} {shape} causal={causal}")
    composed = _run_qkv(twins.qkv_attention, qkv, dy, H, causal, dtype)
    for name, a, b in zip(("y", "dqkv"), (y, dqkv), composed):
        assert_close(a, b, npdt, f"qkv_attention vs composed {name} {shape}")


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_qkv_attention_non_contiguous_input_and_scale(causal):
    qkv, dy = _qkv_data(2, 9, 2, 3, np.float64, seed=1)
    want = qkv_reference(qkv, 2, causal, 0.7, dy)
    wide = np.zeros((2, 9, 2 * qkv.shape[2]))
    wide[..., ::2] = qkv                                            # last-axis stride 2: copied
    for given in (np.ascontiguousarray(qkv.transpose(1, 0, 2)).transpose(1, 0, 2), wide):
        x = tga.tensor(given, requires_grad=True)
        xs = x if given is not wide else x[..., ::2]
        y = qkv_attention(xs, 2, is_causal=causal, scale=0.7)
        y.backward(tga.tensor(dy))
        grad = x.grad.numpy() if given is not wide else x.grad.numpy()[..., ::2]
        assert_close(y.detach().numpy(), want[0], np.float64, "y of a strided qkv")
        assert_close(grad, want[1], np.float64, "dqkv of a strided qkv")


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_qkv_attention_gradcheck_float64(causal):
    rng = np.random.default_rng(3)
    qkv = tga.tensor(rng.standard_normal((2, 5, 3 * 2 * 3)), requires_grad=True)   # H 2, D 3
    assert tga.autograd.gradcheck(lambda x: qkv_attention(x, 2, is_causal=causal), (qkv,),
                                  eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("shape", [(2, 7, 3, 5), (3, BQ + 1, 4, 32)], ids=["small", "gpt-like"])
def test_qkv_attention_matches_torch(shape, causal, dtype):
    torch = pytest.importorskip("torch", reason="parity tests need PyTorch")
    B, T, H, D = shape
    npdt = np.float32 if dtype == "float32" else np.float64
    qkv, dy = _qkv_data(B, T, H, D, npdt, seed=5)
    y, dqkv = _run_qkv(qkv_attention, qkv, dy, H, causal, getattr(tga, dtype))
    x = torch.tensor(qkv, requires_grad=True)
    q, k, v = (t.view(B, T, H, D).transpose(1, 2) for t in x.split(H * D, dim=2))
    ty = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)
    ty = ty.transpose(1, 2).reshape(B, T, H * D)
    ty.backward(torch.tensor(dy))
    tol = dict(rtol=1e-4, atol=2e-5) if npdt == np.float32 else TOL[np.float64]
    np.testing.assert_allclose(y, ty.detach().numpy(), err_msg="y vs torch", **tol)
    np.testing.assert_allclose(dqkv, x.grad.numpy(), err_msg="dqkv vs torch", **tol)


@pytest.mark.parametrize("dtype", [tga.float32, tga.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_qkv_attention_every_isa(attention_isa, causal, dtype):
    npdt = np.float32 if dtype == tga.float32 else np.float64
    for B, T, H, D in [(1, 1, 1, 1), (2, BQ + 1, 3, 33), (1, BQ - 1, 2, 7)]:
        qkv, dy = _qkv_data(B, T, H, D, npdt, seed=T + D)
        got = _run_qkv(qkv_attention, qkv, dy, H, causal, dtype)
        want = qkv_reference(qkv, H, causal, 1.0 / math.sqrt(D), dy)
        for name, a, b in zip(("y", "dqkv"), got, want):
            assert_close(a, b, npdt, f"qkv_attention {name} [{attention_isa}] {(B, T, H, D)}")


def test_qkv_attention_errors():
    with pytest.raises(TypeError, match="'qkv' must be Tensor"):
        qkv_attention(np.zeros((1, 2, 6)), 2)
    with pytest.raises(RuntimeError, match=r"\(B, T, 3 \* E\) with E divisible by num_heads = 2, "
                                           r"got \(1, 2, 9\)"):
        qkv_attention(tga.zeros(1, 2, 9), 2)
    with pytest.raises(RuntimeError, match=r"got \(2, 6\)"):
        qkv_attention(tga.zeros(2, 6), 1)
    with pytest.raises(RuntimeError, match="num_heads = 0"):
        qkv_attention(tga.zeros(1, 2, 6), 0)
    with pytest.raises(RuntimeError, match="float32 or float64, got int64"):
        qkv_attention(tga.zeros(1, 2, 6, dtype=tga.int64), 1)


# ---- no copies of q, k, v, out, dout ---------------------------------------------------------
def _traced_peak(fn):
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_transposed_views_are_not_copied():
    """F.sdpa on (B, T, H, D) buffers viewed (B, H, T, D): the forward allocates out and lse
    only (out laid out (B, T, H, D), so merging the heads back is a view), the backward
    dq, dk, dv only; qkv_attention's forward y and lse, its backward one d(qkv). (The engine
    copies each leaf's gradient into .grad: 3 more (B, T, C) in either backward.)"""
    B, T, H, D = 1, 512, 4, 32
    nbytes = B * T * H * D * 4                                    # one (B, T, C) float32
    q, k, v = (tga.randn(B, T, H, D, requires_grad=True) for _ in range(3))
    views = [t.transpose(1, 2) for t in (q, k, v)]                 # (B, H, T, D)
    dy = tga.randn(B, T, H * D)
    box = {}
    fwd = _traced_peak(lambda: box.update(out=F.scaled_dot_product_attention(*views,
                                                                            is_causal=True)))
    merged = box["out"].transpose(1, 2).reshape(B, T, H * D)       # (B, T, C): no copy
    assert np.shares_memory(merged.detach().numpy(), box["out"].detach().numpy())
    bwd = _traced_peak(lambda: merged.backward(dy))
    assert fwd < 1.5 * nbytes, f"sdpa forward traced {fwd} bytes, out is {nbytes}"
    assert bwd < 6.5 * nbytes, f"sdpa backward traced {bwd} bytes, dq, dk, dv {3 * nbytes}"
    qkv = tga.randn(B, T, 3 * H * D, requires_grad=True)
    fwd = _traced_peak(lambda: box.update(y=qkv_attention(qkv, H, is_causal=True)))
    bwd = _traced_peak(lambda: box["y"].backward(dy))
    assert fwd < 1.5 * nbytes, f"qkv_attention forward traced {fwd} bytes, y is {nbytes}"
    assert bwd < 6.5 * nbytes, f"qkv_attention backward traced {bwd}, d(qkv) {3 * nbytes}"


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
