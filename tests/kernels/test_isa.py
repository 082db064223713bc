"""Every instruction-set variant of every CPU kernel family, forced one at a time.

The families and their one switch: tinygradattn.backend.isa (isas / isa / set_isa over
isa.FAMILIES), set at import by $TGA_ISA_<FAMILY> or $TGA_ISA:
    gemm        _core.gemm                       (more: test_gemm.py)
    rows        softmax family of _core, layer norm / cross-entropy of _rows, GELU of _elementwise
                (the float32 paths of _rows_kernel.h, _elementwise_kernel.h)
    attention   _attention.sdpa_fwd / sdpa_bwd
    optim       _optim.sgd_step / adam_step      (the kernels per ISA: test_optim_steps.py)

For each variant the CPU runs: the kernels against float64 numpy oracles at the tile edges
(tile-1, tile, tile+1 of that kernel's tiles), primes and 1, float32 and float64, n_threads 1
and 2 (work thresholds lowered so 2 threads really run). Fixtures restore "auto".
"""
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import tinygradattn as tga
from tinygradattn import _attention, _core, _elementwise, _rows, _support
from tinygradattn.backend import isa
from helpers import close, tuned


DTYPES = [np.float32, np.float64]


DT_IDS = ["f32", "f64"]


THREADS = [1, 2]


TOL = {np.float32: dict(rtol=3e-5, atol=3e-6), np.float64: dict(rtol=1e-11, atol=1e-12)}


BWD_TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-11)}


# ---- switches ------------------------------------------------------------------------------
def test_families_are_the_support_modules():
    assert isa.FAMILIES == _support.FAMILIES


@pytest.mark.parametrize("family", isa.FAMILIES)
def test_switch_lists_forces_and_refuses(family):
    names = isa.isas(family)
    assert names and names[-1] == "generic" and len(set(names)) == len(names)
    assert isa.isa(family) == names[0]                # the default is the fastest supported
    try:
        for name in names:
            assert isa.set_isa(family, name) == name
            assert isa.isa(family) == name
        with pytest.raises(ValueError, match=r"sse9.*supported: \[.*'generic'"):
            isa.set_isa(family, "sse9")
    finally:
        isa.set_isa(family, "auto")
    assert isa.isa(family) == names[0]


def test_unknown_family_is_refused():
    with pytest.raises(ValueError, match="unknown kernel family 'rowmath'"):
        isa.set_isa("rowmath", "generic")


def test_rows_switch_covers_core_rows_and_elementwise():
    x = np.random.default_rng(0).standard_normal((3, 37)).astype(np.float32)
    try:
        for name in isa.isas("rows"):
            isa.set_isa("rows", name)
            y = np.empty_like(x)
            _core.softmax_fwd(y, x)                   # _core's copy of the row math
            close(y, softmax64(x), TOL[np.float32], f"softmax [{name}]")
            mean, rstd = np.empty(3, np.float32), np.empty(3, np.float32)
            _rows.layer_norm_fwd(y, mean, rstd, x, None, None, 1e-5)   # _rows' copy
            close(mean, x.astype(np.float64).mean(-1), TOL[np.float32], f"ln mean [{name}]")
            assert isa.isa("rows") == name
    finally:
        isa.set_isa("rows", "auto")
    assert isa.isa("rows") == isa.isas("rows")[0]


def test_backend_info_reports_every_family():
    info = tga.backend_info()
    for family in isa.FAMILIES:
        assert info[f"{family}_isa"] == isa.isa(family)


def test_environment_variables_force_at_import():
    code = ("import tinygradattn as tga; i = tga.backend_info(); "
            "print(*(i[f + '_isa'] for f in ('gemm', 'rows', 'attention', 'optim')))")
    env = dict(os.environ, TGA_ISA="generic")
    env.pop("TGA_ISA_GEMM", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["generic"] * 4
    env = dict(os.environ, TGA_ISA="generic", TGA_ISA_OPTIM=isa.isas("optim")[0])
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["generic"] * 3 + [isa.isas("optim")[0]]   # per family wins
    env = dict(os.environ, TGA_ISA_GEMM="sse9")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode != 0 and "TGA_ISA_GEMM" in out.stderr and "sse9" in out.stderr


# ---- row math: softmax family (_core), layer norm, cross-entropy (_rows), GELU --------
LANES, EXP_CHUNK = 16, 256          # _rows_kernel.h: TGA_RM_LANES, the exp chunk of exp_sum


SHORT_ROW = 128                     # avx512: rows up to 128 held in registers, two at a time


COLS = sorted({1, 2, 13, 79, 97, LANES - 1, LANES, LANES + 1, 2 * LANES - 1, 2 * LANES + 1,
               4 * LANES - 1, 4 * LANES, 4 * LANES + 1, SHORT_ROW - 1, SHORT_ROW,
               SHORT_ROW + 1, EXP_CHUNK - 1, EXP_CHUNK, EXP_CHUNK + 1,
               2 * EXP_CHUNK + LANES + 3})


ROWS = [1, 5]


@pytest.fixture(params=isa.isas("rows"))
def rows_isa(request):
    with tuned(_rows, min_elems_per_thread=0), tuned(_elementwise, min_elems_per_thread=0), \
            tuned(_core, row_min_elems_per_thread=0):
        assert isa.set_isa("rows", request.param) == request.param
        yield request.param
        isa.set_isa("rows", "auto")


def row_data(n, c, seed, dtype):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c)) * 3.0
    x.flat[rng.integers(0, x.size, size=max(1, x.size // 7))] *= 10.0     # far from uniform
    return x.astype(dtype)


def softmax64(x):
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_softmax_family(rows_isa, dtype, n_threads):
    for n in (ROWS if n_threads == 1 else ROWS[-1:]):     # 1 row runs on 1 thread
        for c in COLS:
            x = row_data(n, c, c, dtype)
            dout = row_data(n, c, c + 1, dtype)
            what = f"[{rows_isa}] ({n}, {c})"
            p = softmax64(x)
            y = np.empty_like(x)
            _core.softmax_fwd(y, x, n_threads)
            close(y, p, TOL[dtype], "softmax " + what)
            ls = np.empty_like(x)
            _core.log_softmax_fwd(ls, x, n_threads)
            x64 = x.astype(np.float64)
            m = x64.max(-1, keepdims=True)
            close(ls, x64 - m - np.log(np.exp(x64 - m).sum(-1, keepdims=True)), TOL[dtype],
                  "log_softmax " + what)
            yd, d64 = y.astype(np.float64), dout.astype(np.float64)
            dx = np.empty_like(x)
            _core.softmax_bwd(dx, y, dout, n_threads)
            close(dx, yd * (d64 - (d64 * yd).sum(-1, keepdims=True)), BWD_TOL[dtype],
                  "softmax_bwd " + what)
            _core.log_softmax_bwd(dx, ls, dout, n_threads)
            close(dx, d64 - np.exp(ls.astype(np.float64)) * d64.sum(-1, keepdims=True),
                  BWD_TOL[dtype], "log_softmax_bwd " + what)


@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_layer_norm(rows_isa, dtype, n_threads):
    eps = 1e-5
    for n in (ROWS if n_threads == 1 else ROWS[-1:]):     # 1 row runs on 1 thread
        for c in COLS:
            rng = np.random.default_rng(c)
            x = (rng.standard_normal((n, c)) * 2.0 + 0.5).astype(dtype)
            w = rng.standard_normal(c).astype(dtype)
            b = rng.standard_normal(c).astype(dtype)
            dout = rng.standard_normal((n, c)).astype(dtype)
            what = f"[{rows_isa}] ({n}, {c})"
            x64, w64, b64, d64 = (a.astype(np.float64) for a in (x, w, b, dout))
            mu = x64.mean(-1)
            rs = 1.0 / np.sqrt(((x64 - mu[:, None]) ** 2).mean(-1) + eps)
            xhat = (x64 - mu[:, None]) * rs[:, None]
            y, mean, rstd = np.empty_like(x), np.empty(n, dtype), np.empty(n, dtype)
            _rows.layer_norm_fwd(y, mean, rstd, x, w, b, eps, n_threads)
            close(mean, mu, TOL[dtype], "ln mean " + what)
            close(rstd, rs, TOL[dtype], "ln rstd " + what)
            close(y, xhat * w64 + b64, TOL[dtype], "ln y " + what)
            # backward from the kernel's own saved statistics (as autograd uses them)
            m64, r64 = mean.astype(np.float64), rstd.astype(np.float64)
            xh = (x64 - m64[:, None]) * r64[:, None]
            g = d64 * w64
            want_dx = r64[:, None] * (g - g.mean(-1, keepdims=True)
                                      - xh * (g * xh).mean(-1, keepdims=True))
            dx, dw, db = np.empty_like(x), np.empty(c, dtype), np.empty(c, dtype)
            _rows.layer_norm_bwd(dx, dw, db, dout, x, w, mean, rstd, n_threads)
            close(dx, want_dx, BWD_TOL[dtype], "ln dx " + what)
            close(dw, (d64 * xh).sum(0), BWD_TOL[dtype], "ln dweight " + what)
            close(db, d64.sum(0), BWD_TOL[dtype], "ln dbias " + what)
            dx2 = np.empty_like(x)                         # dx only, no weight
            _rows.layer_norm_bwd(dx2, None, None, dout, x, None, mean, rstd, n_threads)
            want2 = r64[:, None] * (d64 - d64.mean(-1, keepdims=True)
                                    - xh * (d64 * xh).mean(-1, keepdims=True))
            close(dx2, want2, BWD_TOL[dtype], "ln dx (no weight) " + what)


MOM_CHUNK = 2048                    # _rows_kernel.h: TGA_RM_MOM_CHUNK (moments, rows over 128)


@pytest.mark.parametrize("offset", [0.0, 60.0, -3e3])
def test_layer_norm_long_row_moments(rows_isa, offset):
    """float32 rows over 128 entries take their mean and variance from float sums around a
    rough mean (4 x 16 lanes, 2048-entry chunks in double): still within ~1e-6 of the spread,
    however far the mean sits from zero; blocks of 64, leftover 16-blocks and tails."""
    cols = [SHORT_ROW + 1, 4 * LANES * 3 + LANES + 5, 384, MOM_CHUNK - 1, MOM_CHUNK,
            MOM_CHUNK + 4 * LANES + 1, 2 * MOM_CHUNK + 67]
    for c in cols:
        rng = np.random.default_rng(c)
        x = (rng.standard_normal((3, c)) * [[1.0], [0.01], [40.0]] + offset).astype(np.float32)
        x64 = x.astype(np.float64)
        mu, sd = x64.mean(-1), x64.std(-1)
        y, mean, rstd = np.empty_like(x), np.empty(3, np.float32), np.empty(3, np.float32)
        _rows.layer_norm_fwd(y, mean, rstd, x, None, None, 1e-12, 1)
        what = f"[{rows_isa}] C={c} offset={offset}"
        ulp = np.spacing(np.abs(mu).astype(np.float32)).astype(np.float64)
        assert np.all(np.abs(mean - mu) <= 1e-6 * sd + ulp), f"mean {what}: {mean} vs {mu}"
        np.testing.assert_allclose(rstd, 1.0 / sd, rtol=1e-5, err_msg=f"rstd {what}")
        want = (x64 - mean.astype(np.float64)[:, None]) * rstd.astype(np.float64)[:, None]
        np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5, err_msg=f"y {what}")


def test_layer_norm_long_rows_beyond_float_sums(rows_isa):
    """Rows whose float sums overflow or are not finite are redone in double: a finite row
    near FLT_MAX keeps finite statistics; inf / NaN entries give the double path's values."""
    c = 300
    big = np.where(np.arange(c) % 2 == 0, 3e38, -3e38).astype(np.float32)
    rows = np.stack([big, np.full(c, 1.0, np.float32), np.full(c, 1.0, np.float32)])
    rows[1, 7] = np.inf
    rows[2, 100] = np.nan
    y, mean, rstd = np.empty_like(rows), np.empty(3, np.float32), np.empty(3, np.float32)
    _rows.layer_norm_fwd(y, mean, rstd, rows, None, None, 1e-5, 1)
    assert abs(mean[0]) < 1e33 and np.isfinite(rstd[0])    # mean ~ 0 (+-1e36 of double rounding)
    np.testing.assert_allclose(rstd[0], 1.0 / 3e38, rtol=1e-6)
    np.testing.assert_allclose(y[0], np.where(np.arange(c) % 2 == 0, 1.0, -1.0), rtol=1e-5)
    assert mean[1] == np.inf and np.isnan(mean[2])


@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_cross_entropy(rows_isa, dtype, n_threads):
    for n in (ROWS if n_threads == 1 else ROWS[-1:]):     # 1 row runs on 1 thread
        for c in COLS:
            x = row_data(n, c, c, dtype)
            rng = np.random.default_rng(c + 5)
            t = rng.integers(0, c, size=n).astype(np.int64)
            if n > 1:
                t[1] = -100                                        # ignored row
            dloss = rng.standard_normal(n).astype(dtype)
            x64 = x.astype(np.float64)
            m = x64.max(-1)
            lse64 = m + np.log(np.exp(x64 - m[:, None]).sum(-1))
            live = t != -100
            for smoothing in (0.0, 0.1):
                what = f"[{rows_isa}] ({n}, {c}) smoothing={smoothing}"
                nll = lse64 - x64[np.arange(n), np.where(live, t, 0)]
                want = (1 - smoothing) * nll + smoothing * (lse64 - x64.mean(-1))
                want = np.where(live, want, 0.0)
                loss, lse = np.empty(n, dtype), np.empty(n, dtype)
                _rows.cross_entropy_fwd(loss, lse, x, t, -100, smoothing, n_threads)
                close(loss, want, TOL[dtype], "ce loss " + what)
                close(lse, lse64, TOL[dtype], "ce lse " + what)
                onehot = np.zeros((n, c))
                onehot[np.arange(n), np.where(live, t, 0)] = 1.0
                target = (1 - smoothing) * onehot + smoothing / c
                want_dx = dloss.astype(np.float64)[:, None] * (softmax64(x) - target)
                want_dx[~live] = 0.0
                dx = np.empty_like(x)
                _rows.cross_entropy_bwd(dx, dloss, x, t, lse, -100, smoothing, n_threads)
                close(dx, want_dx, BWD_TOL[dtype], "ce dlogits " + what)
                probs = np.empty_like(x)                     # the autograd path: via softmax
                _rows.cross_entropy_fwd(loss, lse, x, t, -100, smoothing, n_threads, probs)
                close(probs, softmax64(x), TOL[dtype], "ce probs " + what)
                _rows.cross_entropy_bwd_probs(dx, dloss, probs, t, -100, smoothing, n_threads)
                close(dx, want_dx, BWD_TOL[dtype], "ce dlogits from probs " + what)
                inv_sum = np.empty(n, dtype)                 # unscaled: exp(x - max), 1 / sum
                _rows.cross_entropy_fwd(loss, lse, x, t, -100, smoothing, n_threads, probs,
                                         inv_sum)
                _rows.cross_entropy_bwd_probs(dx, dloss, probs, t, -100, smoothing, n_threads,
                                               inv_sum)
                close(dx, want_dx, BWD_TOL[dtype], "ce dlogits from exps " + what)


# ---- attention ------------------------------------------------------------------------------
BQ, BK = _attention.BLOCK_Q, _attention.BLOCK_K


ATTN_SHAPES = [  # (B, H, T, S, D, Dv): query/key tiles at -1 / 0 / +1, D around 32 (NR), 1, primes
    (1, 1, 1, 1, 1, 1),
    (1, 2, BQ - 1, BK + 1, 31, 33),
    (2, 1, BQ, BK, 32, 32),
    (1, 2, BQ + 1, BK - 1, 33, 7),
    (1, 1, 13, 2 * BK + 1, 5, 3),
    (1, 1, 2 * BQ + 1, 11, 9, 17),
]


def attention64(q, k, v, causal, scale, dout):
    q, k, v, dout = (np.asarray(a, dtype=np.float64) for a in (q, k, v, dout))
    s = q @ np.swapaxes(k, -1, -2) * scale
    T, S = s.shape[-2:]
    if causal:
        s = np.where(np.tril(np.ones((T, S), dtype=bool)), s, -np.inf)
    m = s.max(-1, keepdims=True)
    p = np.exp(s - m)
    total = p.sum(-1, keepdims=True)
    p = p / total
    out = p @ v
    lse = (m + np.log(total))[..., 0]
    ds = p * (dout @ np.swapaxes(v, -1, -2) - (dout * out).sum(-1, keepdims=True)) * scale
    return out, lse, ds @ k, np.swapaxes(ds, -1, -2) @ q, np.swapaxes(p, -1, -2) @ dout


@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_attention(attention_isa, causal, dtype, n_threads):
    tol = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: TOL[np.float64]}[dtype]
    for B, H, T, S, D, Dv in ATTN_SHAPES:
        rng = np.random.default_rng(T * 31 + S)
        q, k, dout = (rng.standard_normal(s).astype(dtype) for s in
                      ((B, H, T, D), (B, H, S, D), (B, H, T, Dv)))
        v = rng.standard_normal((B, H, S, Dv)).astype(dtype)
        scale = 1.0 / math.sqrt(D)
        out, lse = np.empty((B, H, T, Dv), dtype), np.empty((B, H, T), dtype)
        _attention.sdpa_fwd(out, lse, q, k, v, None, causal, scale, n_threads)
        dq, dk, dv = np.empty_like(q), np.empty_like(k), np.empty_like(v)
        _attention.sdpa_bwd(dq, dk, dv, dout, q, k, v, out, lse, None, causal, scale, n_threads)
        want = attention64(q, k, v, causal, scale, dout)
        for name, got, ref in zip(("out", "lse", "dq", "dk", "dv"), (out, lse, dq, dk, dv), want):
            close(got, ref, tol, f"attention {name} [{attention_isa}] {(B, H, T, S, D, Dv)}")


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_rows_with_infinities_in_the_tails(rows_isa, dtype):
    """-inf entries (also in the vector tails, where the AVX-512 set pads), a row whose max is
    in the tail, and an all -inf row (NaN, as torch)."""
    for c in (LANES + 3, 2 * LANES + 15, 79):
        x = row_data(4, c, c, dtype)
        x[0, -2:] = -np.inf
        x[1, ::3] = -np.inf
        x[2, -1] = 50.0                                  # the max in the tail
        x[3, :] = -np.inf
        with np.errstate(invalid="ignore"):
            want = softmax64(x)
        y = np.empty_like(x)
        _core.softmax_fwd(y, x, 1)
        close(y, want, TOL[dtype], f"softmax with -inf [{rows_isa}] C={c}")
        t = np.array([0, 1, c - 1, 0], dtype=np.int64)
        loss, lse = np.empty(3, dtype), np.empty(3, dtype)
        _rows.cross_entropy_fwd(loss, lse, x[:3], t[:3], -100, 0.0, 1)
        x64 = x[:3].astype(np.float64)
        m = x64.max(-1)
        lse64 = m + np.log(np.exp(x64 - m[:, None]).sum(-1))
        close(lse, lse64, TOL[dtype], f"ce lse with -inf [{rows_isa}] C={c}")
        close(loss, lse64 - x64[np.arange(3), t[:3]], TOL[dtype],
              f"ce loss with -inf [{rows_isa}] C={c}")


# ---- GELU (float32 erf / tanh / GELU of _elementwise_kernel.h), ulp errors on a dense grid
def _gelu_grid():
    """A dense grid over [-20, 20] (linear and log-spaced), the switch points (0.5 of Phi,
    0.921875 of erf, 0.625 of tanh, 2.25 / 5 of the tail, 16 of the clamp) with their float
    neighbours, +-0, tiny and subnormal values."""
    lin = np.linspace(-20, 20, 60001)
    geo = np.geomspace(1e-30, 20, 30001)
    pts = [0.0, -0.0, 1e-45, -1e-45, 1e-3, -1e-3, 4.0, -4.0, 10.0, -10.0]
    x = np.concatenate([lin, geo, -geo, pts]).astype(np.float32)
    for s in (0.5, 0.921875, 0.625, 2.25, 5.0, 16.0):
        for v in (np.float32(s), np.float32(-s)):
            x = np.concatenate([x, [np.nextafter(v, np.float32(0)), v,
                                    np.nextafter(v, np.float32(np.sign(v) * 100))]])
    return x.astype(np.float32)


def _ulps(got, want, scale=None):
    """|got - want| in float32 ulps of |scale| (default |want|; subnormal ulp at least)."""
    s = np.abs(want if scale is None else scale).astype(np.float32)
    s = np.maximum(np.spacing(s).astype(np.float64), 2.0 ** -149)
    return np.abs(got.astype(np.float64) - want) / s


def _vec(fn, x, *args):
    out = np.empty_like(x)
    fn(out, x, *args)
    return out


def test_gelu_float32_ulp_errors(rows_isa):
    erf = np.frompyfunc(math.erf, 1, 1)
    erfc = np.frompyfunc(math.erfc, 1, 1)
    x = _gelu_grid()
    x64 = x.astype(np.float64)
    assert _ulps(_vec(_elementwise._vec_erf_tanh, x, False), erf(x64).astype(np.float64)).max() <= 2
    assert _ulps(_vec(_elementwise._vec_erf_tanh, x, True), np.tanh(x64)).max() <= 2
    # exact form: Phi by erfc (no cancellation for x < 0); dy/dx also in ulps of its larger
    # term (it has a root near x = -0.75); down into the underflow (x < -13.2: subnormal ulps)
    # measured (FMA sets / baseline): y 3.5 / 3.6, dy/dx 3.9 / 4.2 (of the larger term),
    # 3.9 / 4.3 (of itself, x off [-1, -0.6])
    cdf = 0.5 * erfc(-x64 / math.sqrt(2)).astype(np.float64)
    pdf_x = x64 * np.exp(-0.5 * x64 * x64) / math.sqrt(2 * math.pi)
    ones = np.ones_like(x)
    y = _vec(_elementwise.gelu_fwd, x, False, 2)
    g = np.empty_like(x)
    _elementwise.gelu_bwd(g, ones, x, False, 2)
    assert _ulps(y, x64 * cdf).max() <= 5
    assert _ulps(g, cdf + pdf_x, np.maximum(cdf, np.abs(pdf_x))).max() <= 5
    assert _ulps(g, cdf + pdf_x)[(x64 > -0.6) | (x64 < -1.0)].max() <= 6
    # tanh form, in its sigmoid form: the rounding of u (relative, a few ulps) moves
    # exp(-2u) by |2u| times that, so the bound scales with 1 + 2|u|
    u = math.sqrt(2 / math.pi) * (x64 + 0.044715 * x64 ** 3)
    with np.errstate(over="ignore"):
        m = np.exp(-2 * u)
    s = 1 / (1 + m)
    du = math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * x64 ** 2)
    term = np.where(np.isfinite(m), 2 * x64 * s * (m * s) * du, 0.0)
    y = _vec(_elementwise.gelu_fwd, x, True, 2)
    _elementwise.gelu_bwd(g, ones, x, True, 2)
    assert (_ulps(y, x64 * s) / (1 + 2 * np.abs(u))).max() <= 3
    assert (_ulps(g, s + term, np.maximum(s, np.abs(term))) / (1 + 2 * np.abs(u))).max() <= 3


def test_gelu_float32_any_offset_length_and_split(rows_isa):
    """An element's result depends on its input only: the same bits in the vector body, the
    masked AVX-512 tail or the C epilogue, at any alignment, on either side of a thread split."""
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(160) * 5).astype(np.float32)
    x[::11] = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-42, -1e-42, -14.0, 20.0, -9.5, 3.0,
               -0.75, 0.5, -13.3, 15.9]
    d = rng.standard_normal(x.size).astype(np.float32)
    for form in (False, True):
        y = _vec(_elementwise.gelu_fwd, x, form, 1)
        g = np.empty_like(x)
        _elementwise.gelu_bwd(g, d, x, form, 1)
        for k in (0, 1, 3, 15, 16, 17):
            for n in (1, 2, 7, 15, 16, 17, 31, 33, 63, 64, 65, 143 - k):
                xs, ds = x[k:k + n], d[k:k + n]
                for nt in (1, 2):
                    ys, gs = _vec(_elementwise.gelu_fwd, xs, form, nt), np.empty_like(xs)
                    _elementwise.gelu_bwd(gs, ds, xs, form, nt)
                    where = f"[{rows_isa}] tanh={form} offset {k} length {n} threads {nt}"
                    assert np.array_equal(ys, y[k:k + n], equal_nan=True), where
                    assert np.array_equal(gs, g[k:k + n], equal_nan=True), where
                    assert np.array_equal(np.signbit(ys), np.signbit(y[k:k + n])), where
                    # forward + derivative in one pass: the same y, and dout * grad gives
                    # gelu_bwd's bits (what the autograd backward computes from it)
                    yg, gr = np.empty_like(xs), np.empty_like(xs)
                    _elementwise.gelu_fwd(yg, xs, form, nt, gr)
                    assert np.array_equal(yg, y[k:k + n], equal_nan=True), where
                    assert np.array_equal(ds * gr, g[k:k + n], equal_nan=True), where


def test_gelu_float32_specials_and_chunks(rows_isa):
    sp = np.array([-np.inf, np.inf, np.nan, 0.0, -0.0, -20.0, 20.0], np.float32)
    for form in (False, True):
        y = _vec(_elementwise.gelu_fwd, sp, form, 1)
        g = np.empty_like(sp)
        _elementwise.gelu_bwd(g, np.ones_like(sp), sp, form, 1)
        assert np.array_equal(y, [-0.0, np.inf, np.nan, 0.0, -0.0, -0.0, 20.0], equal_nan=True)
        assert np.signbit(y[[0, 4, 5]]).all() and not np.signbit(y[3])
        assert np.array_equal(g, [0.0, 1.0, np.nan, 0.5, 0.5, 0.0, 1.0], equal_nan=True)
    e = _vec(_elementwise._vec_erf_tanh, sp, False)
    assert np.array_equal(e, [-1, 1, np.nan, 0, 0, -1, 1], equal_nan=True) and np.signbit(e[4])
    t = _vec(_elementwise._vec_erf_tanh, sp, True)
    assert np.array_equal(t, [-1, 1, np.nan, 0, 0, -1, 1], equal_nan=True) and np.signbit(t[4])
    # chunked over threads: any thread count, the same bits; in place works
    x = (np.random.default_rng(0).standard_normal(3 * 4096 + 5) * 4).astype(np.float32)
    d = np.random.default_rng(1).standard_normal(x.size).astype(np.float32)
    for form in (False, True):
        y1, y2 = _vec(_elementwise.gelu_fwd, x, form, 1), _vec(_elementwise.gelu_fwd, x, form, 2)
        g1, g2 = np.empty_like(x), np.empty_like(x)
        _elementwise.gelu_bwd(g1, d, x, form, 1)
        _elementwise.gelu_bwd(g2, d, x, form, 2)
        assert np.array_equal(y1, y2) and np.array_equal(g1, g2)
        xi, di = x.copy(), d.copy()
        _elementwise.gelu_fwd(xi, xi, form, 2)
        _elementwise.gelu_bwd(di, di, x, form, 2)
        assert np.array_equal(xi, y1) and np.array_equal(di, g1)
