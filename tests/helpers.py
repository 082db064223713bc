"""check_op: one call that tells the whole story of an op.

    check_op("mul", lambda a, b: a * b, None, [(3, 4), (4,)])

1. builds inputs (float ones drawn from an input domain, see DOMAINS) in float32;
2. runs our function and torch's on the same values and compares outputs (value, shape,
   dtype) and the gradient of every float input for a random upstream gradient;
3. repeats the comparison in float64 (tight tolerances);
4. runs tga.autograd.gradcheck in float64 on the same function, every element.

The torch part calls pytest.importorskip; without torch the gradcheck part still runs and the
test is reported as skipped afterwards (with the reason). Failures print the max abs
difference, where it is, and the dtype.
"""
import contextlib
import math
from dataclasses import dataclass

import numpy as np
import pytest

import tinygradattn as tga

TORCH_REASON = "torch is not installed: PyTorch parity part skipped (gradcheck still ran)"


# ---- tolerances -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tol:
    rtol: float
    atol: float      # relative to max(1, max |reference|): a difference of O(eps * scale)


# Named per dtype and op family. float32 results of ours and torch's are two float32
# computations: elementwise ops agree to a few ulps, sums of n terms to ~n ulps in the worst
# case; float64 to ~1e-10 (DESIGN: "float64 to about 1e-9 relative").
TOLS = {
    "float32": {
        "elementwise": Tol(1e-5, 1e-6),
        "reduction": Tol(1e-5, 1e-5),
        # matmul: sums of K up to ~260 products, in a different order from torch's BLAS
        "matmul": Tol(1e-4, 2e-5),
        # composites (layer norm, attention, losses) chain several reductions
        "composite": Tol(1e-4, 1e-5),
    },
    "float64": {
        "elementwise": Tol(1e-10, 1e-12),
        "reduction": Tol(1e-10, 1e-12),
        "matmul": Tol(1e-10, 1e-11),
        "composite": Tol(1e-10, 1e-11),
    },
}

# tighter than the gradcheck defaults (atol 1e-5, rtol 1e-3): in float64 the central difference
# with eps 1e-6 is good to ~1e-8 (roundoff 1e-16 / eps times |output| ~ 100)
GRADCHECK = dict(eps=1e-6, atol=1e-6, rtol=1e-5)


def assert_close(actual, expected, tol, what="", dtype=None):
    """np.allclose with a message naming the max abs diff, its index and the dtype."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, (
        f"{what}: shape {actual.shape} != expected {expected.shape}")
    if actual.size == 0:
        return
    a64 = actual.astype(np.float64)
    e64 = expected.astype(np.float64)
    finite = np.isfinite(e64)
    same_nonfinite = np.array_equal(np.isnan(a64), np.isnan(e64)) and np.array_equal(
        a64[np.isinf(e64)], e64[np.isinf(e64)])
    scale = max(1.0, float(np.max(np.abs(e64[finite]), initial=0.0)))
    diff = np.where(finite, np.abs(a64 - e64), 0.0)
    bad = diff > tol.atol * scale + tol.rtol * np.abs(np.where(finite, e64, 0.0))
    bad |= finite & ~np.isfinite(a64)
    if bad.any() or not same_nonfinite:
        where = np.unravel_index(int(np.argmax(np.where(bad, diff, -1.0))), diff.shape)
        raise AssertionError(
            f"{what}: max abs diff {float(diff.max()):.3e} at index {tuple(map(int, where))} "
            f"(got {float(a64[where])!r}, expected {float(e64[where])!r}); "
            f"dtype {dtype or actual.dtype}, "
            f"rtol {tol.rtol}, atol {tol.atol} x scale {scale:.3g}; {int(bad.sum())} of "
            f"{bad.size} elements off; nan/inf pattern equal: {same_nonfinite}")


# ---- input domains -----------------------------------------------------------------------------
def _grid(rng, shape, slot, spacing=0.1):
    """Distinct values on a grid, at least 0.03 from 0 and from the grid of another slot."""
    n = int(np.prod(shape)) if shape else 1
    k = rng.permutation(np.arange(-max(n, 4), max(n, 4)))[:n]
    vals = (k + 0.5) * spacing + (slot % 3) * 0.03
    vals = np.where(np.abs(vals) < 0.03, vals + 0.06, vals)
    return vals.reshape(shape)


DOMAINS = {
    # standard normal: smooth ops
    "real": lambda rng, shape, slot: rng.standard_normal(shape),
    # log, sqrt, pow base: away from 0
    "positive": lambda rng, shape, slot: rng.uniform(0.5, 2.0, shape),
    # division denominators: |x| in [0.5, 2], either sign
    "nonzero": lambda rng, shape, slot: rng.uniform(0.5, 2.0, shape) * rng.choice([-1, 1], shape),
    # kinks (relu, abs, clamp edges) and ties (max, min, maximum): distinct values, none near 0,
    # different slots never equal
    "distinct": lambda rng, shape, slot: _grid(rng, shape, slot),
    # small magnitudes (pow exponents, tanh saturation avoided)
    "small": lambda rng, shape, slot: rng.uniform(-1.0, 1.0, shape),
}


def make_inputs(inputs, domain="real", seed=0):
    """float64 numpy arrays for each input spec: a shape tuple (drawn from the domain) or an
    array (used as given; float arrays are differentiable, int and bool ones are not)."""
    rng = np.random.default_rng(seed)
    domains = domain if isinstance(domain, (list, tuple)) else [domain] * len(inputs)
    out = []
    for slot, (spec, dom) in enumerate(zip(inputs, domains)):
        if isinstance(spec, np.ndarray):
            out.append(spec.copy())
        else:
            draw = DOMAINS[dom] if isinstance(dom, str) else dom
            out.append(np.asarray(draw(rng, tuple(spec), slot), dtype=np.float64))
    return out


def _is_float(a):
    return a.dtype.kind == "f"


# ---- running both libraries ---------------------------------------------------------------------
def _outputs(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _to_np(t):
    if isinstance(t, tga.Tensor):
        return t.detach().numpy()
    return t.detach().cpu().numpy()


def _dtype_name(t):
    if isinstance(t, tga.Tensor):
        return t.dtype.name
    return str(t.dtype).replace("torch.", "")


def run_tga(fn, arrays, dtype, upstream, grad, device="cpu"):
    """Our outputs and the gradient of <outputs, upstream> w.r.t. each float input."""
    tensors = [tga.tensor(a.astype(dtype) if _is_float(a) else a, device=device,
                          requires_grad=grad and _is_float(a)) for a in arrays]
    outs = _outputs(fn(*tensors))
    diff_outs = [(o, u) for o, u in zip(outs, upstream) if u is not None and o.requires_grad]
    if grad and diff_outs:
        if len(diff_outs) == 1:
            o, u = diff_outs[0]
            o.backward(gradient=tga.tensor(u.astype(dtype), device=o.device))
        else:
            total = sum((o * tga.tensor(u.astype(dtype), device=o.device)).sum()
                        for o, u in diff_outs)
            total.backward()
    return outs, [t.grad for t in tensors]


def run_torch(torch, fn, arrays, dtype, upstream, grad):
    tdt = {np.float32: torch.float32, np.float64: torch.float64}[dtype]
    tensors = []
    for a in arrays:
        t = torch.tensor(a).to(tdt) if _is_float(a) else torch.tensor(a)
        tensors.append(t.requires_grad_(grad and _is_float(a)))
    outs = _outputs(fn(*tensors))
    pairs = [(o, torch.tensor(u).to(o.dtype)) for o, u in zip(outs, upstream)
             if u is not None and o.requires_grad]
    if grad and pairs:
        torch.autograd.backward([o for o, _ in pairs], [u for _, u in pairs])
    return outs, [t.grad for t in tensors]


def _upstream_for(outs, rng):
    """A random upstream gradient per floating output (None for int / bool outputs)."""
    ups = []
    for o in outs:
        arr = _to_np(o)
        ups.append(rng.standard_normal(arr.shape) if arr.dtype.kind == "f" else None)
    return ups


def compare_with_torch(name, tga_fn, torch_fn, arrays, dtype, tol_family, grad):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    dname = np.dtype(dtype).name
    tol = TOLS[dname][tol_family]
    t_outs, _ = run_torch(torch, torch_fn, arrays, dtype, [None] * 16, grad=False)
    upstream = _upstream_for(t_outs, np.random.default_rng(1))
    outs, grads = run_tga(tga_fn, arrays, dtype, upstream, grad)
    t_outs, t_grads = run_torch(torch, torch_fn, arrays, dtype, upstream, grad)
    assert len(outs) == len(t_outs), f"{name}: {len(outs)} outputs, torch gives {len(t_outs)}"
    for i, (o, t) in enumerate(zip(outs, t_outs)):
        label = f"{name} [{dname}] output {i}"
        assert _dtype_name(o) == _dtype_name(t), (
            f"{label}: dtype {_dtype_name(o)}, torch gives {_dtype_name(t)}")
        assert tuple(o.shape) == tuple(t.shape), (
            f"{label}: shape {tuple(o.shape)}, torch gives {tuple(t.shape)}")
        if _to_np(t).dtype.kind == "f":
            assert_close(_to_np(o), _to_np(t), tol, label, dname)
        else:
            np.testing.assert_array_equal(_to_np(o), _to_np(t), err_msg=label)
    if not grad:
        return
    for i, (g, tg, a) in enumerate(zip(grads, t_grads, arrays)):
        if not _is_float(a):
            continue
        label = f"{name} [{dname}] grad of input {i} {a.shape}"
        if tg is None:
            tg_np = np.zeros(a.shape)
        else:
            tg_np = _to_np(tg)
        assert g is not None or not np.any(tg_np), f"{label}: no gradient, torch has one"
        g_np = np.zeros(a.shape, dtype) if g is None else _to_np(g)
        assert g_np.dtype == np.dtype(dtype), f"{label}: grad dtype {g_np.dtype}, input {dname}"
        assert_close(g_np, tg_np, tol, label, dname)


def run_gradcheck(name, fn, arrays):
    """tga.autograd.gradcheck in float64 on every element of every float input."""
    tensors = [tga.tensor(a.astype(np.float64), requires_grad=True) if _is_float(a)
               else tga.tensor(a) for a in arrays]
    try:
        ok = tga.autograd.gradcheck(fn, tuple(tensors), **GRADCHECK)
    except AssertionError as e:
        raise AssertionError(f"{name}: gradcheck failed: {e}") from None
    assert ok, f"{name}: gradcheck returned False"


def check_op(name, tga_fn, torch_fn, inputs, *, domain="real", grad=True, gradcheck=None,
             tol="elementwise", dtypes=(np.float32, np.float64), seed=0):
    """Forward and backward against PyTorch (float32 and float64), then gradcheck in float64.

    Args:
        name: shown in failure messages.
        tga_fn, torch_fn: the same computation for each library; torch_fn=None reuses tga_fn
            (for expressions both APIs share, e.g. lambda a, b: a @ b.T).
        inputs: per input a shape tuple (a float input drawn from `domain`) or an array
            (as given; int / bool arrays are never differentiated).
        domain: a DOMAINS key (or callable(rng, shape, slot)), or one per input.
        grad: False for ops without a gradient (argmax, comparisons).
        gradcheck: run gradcheck (default: when grad and the inputs are small).
        tol: the tolerance family in TOLS.
    """
    arrays = make_inputs(inputs, domain, seed)
    torch_fn = tga_fn if torch_fn is None else torch_fn
    if gradcheck is None:
        gradcheck = grad and sum(a.size for a in arrays if _is_float(a)) <= 400
    skipped = None
    try:
        for dtype in dtypes:
            compare_with_torch(name, tga_fn, torch_fn, arrays, dtype, tol, grad)
    except pytest.skip.Exception as e:     # no torch: still run gradcheck, skip afterwards
        skipped = e
    if gradcheck:
        run_gradcheck(name, tga_fn, arrays)
    if skipped is not None:
        raise skipped


# ---- exceptions ---------------------------------------------------------------------------------
def torch_exception_type(torch_call):
    """The exception type torch raises for the same bad input (None without torch)."""
    try:
        import torch
    except ImportError:
        return None
    try:
        torch_call(torch)
    except Exception as e:     # noqa: BLE001 - we want whatever torch raises
        return type(e)
    raise AssertionError("torch accepted the input this test calls bad")


def check_raises_like_torch(tga_call, torch_call, expected, match=None):
    """Our call raises `expected` (and, with torch installed, torch raises the same type or a
    subclass of it); the message matches `match` (a regex, e.g. the shapes at fault)."""
    with pytest.raises(expected, match=match) as info:
        tga_call(tga)
    ttype = torch_exception_type(torch_call)
    if ttype is not None:
        assert issubclass(ttype, expected) or issubclass(expected, ttype), (
            f"we raise {type(info.value).__name__}, torch raises {ttype.__name__}")
    return info.value



# ---- kernel tests: float64 oracles, tolerances per dtype, thread thresholds off ------------
def close(got, want, tol, what):
    """|got - want| <= atol * max(1, max|want|) + rtol * |want|, NaN/inf patterns equal.

    tol: {"rtol": ..., "atol": ...}, named per dtype in each kernel test file.
    """
    got64 = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got64.shape == want.shape, f"{what}: shape {got64.shape} vs {want.shape}"
    ok = np.isfinite(want)
    assert np.array_equal(got64[~ok], want[~ok], equal_nan=True), f"{what}: non-finite differ"
    scale = max(1.0, float(np.abs(want[ok]).max(initial=0.0)))
    err = np.where(ok, np.abs(got64 - np.where(ok, want, 0.0)), 0.0)
    limit = tol["atol"] * scale + tol["rtol"] * np.abs(np.where(ok, want, 0.0))
    assert (err <= limit).all(), (
        f"{what}: max abs diff {err.max():.3e} at {np.unravel_index(err.argmax(), err.shape)}, "
        f"dtype {np.asarray(got).dtype}")


def rows_with_outliers(shape, seed, dtype, scale=3.0):
    """Normal rows with one entry in 11 scaled by 10: softmax-like rows far from uniform."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * scale
    if x.size:
        x.flat[rng.integers(0, x.size, size=max(1, x.size // 11))] *= 10.0
    return x.astype(dtype)


@contextlib.contextmanager
def tuned(module, **thresholds):
    """module._set_tuning(**thresholds) inside the block, the previous values restored after
    (0 lets n_threads=2 really use two threads on test-sized problems)."""
    saved = module._set_tuning(**thresholds)
    try:
        yield
    finally:
        module._set_tuning(**saved)


def numel(shape):
    return math.prod(shape)
