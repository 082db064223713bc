"""The fused Functions of ops/fused.py (layer norm, cross-entropy, GELU) over their kernels.

The public functions (F.layer_norm / cross_entropy / gelu) against their composed twins
(nn/reference.py) and PyTorch; gradcheck of the Functions in float64. The kernels
themselves, called directly: tests/kernels/test_rows.py, test_elementwise.py, test_softmax.py.
"""
import numpy as np
import pytest

import tinygradattn as tga
import tinygradattn.nn.functional as F
from tinygradattn import _core, _elementwise, _rows
from tinygradattn.nn import reference
from tinygradattn.ops.fused import CrossEntropy, Gelu, LayerNorm
from helpers import close, tuned


DTYPES = [np.float32, np.float64]


# float32: kernels compute in double and round once, the oracle is float64: a few ulps;
# backward sums C products whose terms cancel: relative to max(1, |result|)
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-11, atol=1e-12)}


GRADCHECK = dict(eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.fixture(autouse=True)
def threads_on_small_work():
    with tuned(_rows, min_elems_per_thread=0), tuned(_elementwise, min_elems_per_thread=0), \
            tuned(_core, row_min_elems_per_thread=0):
        yield


# ---- public functions vs composed twins, torch, gradcheck ----------------------------------------
def _t(a, grad=True):
    return tga.tensor(a, requires_grad=grad)


def _grads(fn, arrays, dout):
    ts = [_t(a) for a in arrays]
    out = fn(*ts)
    out.backward(_t(dout, False))
    return out.detach().numpy(), [t.grad.numpy() for t in ts]


@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_norm_fused_vs_composed(dtype):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((2, 5, 3, 7)) * 4 + 10).astype(dtype)
    w, b = rng.standard_normal((3, 7)).astype(dtype), rng.standard_normal((3, 7)).astype(dtype)
    dout = rng.standard_normal(x.shape).astype(dtype)
    got = _grads(lambda x, w, b: F.layer_norm(x, (3, 7), w, b), [x, w, b], dout)
    want = _grads(lambda x, w, b: reference.layer_norm(x, (3, 7), w, b), [x, w, b], dout)
    tol = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-11)}
    close(got[0], want[0], tol[dtype], "layer_norm")
    for g, r, name in zip(got[1], want[1], ["dx", "dweight", "dbias"]):
        close(g, r, tol[dtype], f"layer_norm {name}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_fused_vs_composed(dtype, smoothing, reduction):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((3, 5, 2)) * 5).astype(dtype)                # (N, C, d)
    t = np.array([[0, 4], [-100, 2], [3, -100]], dtype=np.int64)
    kw = dict(reduction=reduction, label_smoothing=smoothing)
    dout = rng.standard_normal((3, 2) if reduction == "none" else ()).astype(dtype)
    ours, theirs = _t(x), _t(x)
    a = F.cross_entropy(ours, tga.tensor(t), **kw)
    b = reference.cross_entropy(theirs, tga.tensor(t), **kw)
    a.backward(_t(dout, False))
    b.backward(_t(dout, False))
    tol = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-11, atol=1e-12)}
    close(a.detach().numpy(), b.detach().numpy(), tol[dtype], "cross_entropy")
    close(ours.grad.numpy(), theirs.grad.numpy(), tol[dtype], "cross_entropy grad")


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_fused_vs_composed(approximate):
    x = np.linspace(-9, 9, 61)
    dout = np.cos(x)
    got = _grads(lambda x: F.gelu(x, approximate), [x], dout)
    want = _grads(lambda x: reference.gelu(x, approximate), [x], dout)
    close(got[0], want[0], TOL[np.float64], "gelu")
    close(got[1][0], want[1][0], TOL[np.float64], "gelu dx")


def test_gradcheck_functions():
    rng = np.random.default_rng(2)
    x = _t(rng.standard_normal((4, 6)) * 2)
    w, b = _t(rng.standard_normal(6)), _t(rng.standard_normal(6))
    assert tga.autograd.gradcheck(lambda x, w, b: LayerNorm.apply(x, w, b, 1e-5), (x, w, b),
                                  **GRADCHECK)
    assert tga.autograd.gradcheck(lambda x: LayerNorm.apply(x, None, None, 1e-5), (x,),
                                  **GRADCHECK)
    t = tga.tensor(np.array([1, -100, 5, 0]))
    for e in (0.0, 0.2):
        assert tga.autograd.gradcheck(lambda x: CrossEntropy.apply(x, t, -100, e), (x,),
                                      **GRADCHECK)
    for form in ("none", "tanh"):
        assert tga.autograd.gradcheck(lambda x: Gelu.apply(x, form), (x,), **GRADCHECK)
    assert tga.autograd.gradcheck(
        lambda x, w: F.layer_norm(x.reshape(2, 2, 6), (2, 6), w.reshape(2, 6)),
        (_t(rng.standard_normal(24)), _t(rng.standard_normal(12))), **GRADCHECK)
    assert tga.autograd.gradcheck(
        lambda x: F.cross_entropy(x.reshape(2, 3, 4), tga.tensor([[0, 1, 2, -100], [2, 2, 0, 1]]),
                                  label_smoothing=0.1), (_t(rng.standard_normal(24)),), **GRADCHECK)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_functions_match_torch(dtype):
    torch = pytest.importorskip("torch", reason="parity tests need PyTorch")
    tF = torch.nn.functional
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((6, 11)) * 3).astype(dtype)
    x[2, 3] = -np.inf
    t = np.array([0, 10, 4, -100, 7, 7], dtype=np.int64)
    w, b = rng.standard_normal(11).astype(dtype), rng.standard_normal(11).astype(dtype)
    tol = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-10, atol=1e-12)}
    cases = [
        ("cross_entropy", lambda L, x: L(x, t, ignore_index=-100)),
        ("cross_entropy_ls", lambda L, x: L(x, t, label_smoothing=0.15, reduction="sum")),
    ]
    for name, call in cases:
        ours, theirs = _t(x), torch.tensor(x, requires_grad=True)
        got = call(lambda x, t, **k: F.cross_entropy(x, tga.tensor(t), **k), ours)
        want = call(lambda x, t, **k: tF.cross_entropy(x, torch.tensor(t), **k), theirs)
        got.backward()
        want.backward()
        if name == "cross_entropy":
            close(got.detach().numpy(), want.detach().numpy(), tol[dtype], name)
        else:                                              # -inf logit under smoothing
            assert np.isinf(got.item()) and np.isinf(want.item())
        assert not np.isnan(ours.grad.numpy()).any()
        close(ours.grad.numpy(), theirs.grad.numpy(), tol[dtype], f"{name} grad")
    xl = x.copy()
    xl[2, 3] = 1e3                                                       # an outlier, finite
    arrays = (xl, w, b)
    ours = [_t(arr) for arr in arrays]
    theirs = [torch.tensor(arr, requires_grad=True) for arr in arrays]
    a = F.layer_norm(*ours[:1], (11,), *ours[1:])
    bb = tF.layer_norm(theirs[0], (11,), theirs[1], theirs[2])
    dout = rng.standard_normal(x.shape).astype(dtype)
    a.backward(_t(dout, False))
    bb.backward(torch.tensor(dout))
    ln_tol = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-11)}
    close(a.detach().numpy(), bb.detach().numpy(), ln_tol[dtype], "layer_norm")
    for o, th, name in zip(ours, theirs, ["dx", "dweight", "dbias"]):
        close(o.grad.numpy(), th.grad.numpy(), ln_tol[dtype], f"layer_norm {name}")
    for form in ("none", "tanh"):
        ours, theirs = _t(x[:, 4:]), torch.tensor(x[:, 4:], requires_grad=True)
        F.gelu(ours, approximate=form).sum().backward()
        tF.gelu(theirs, approximate=form).sum().backward()
        close(ours.grad.numpy(), theirs.grad.numpy(), tol[dtype], f"gelu {form} grad")
        close(F.gelu(ours, approximate=form).detach().numpy(),
              tF.gelu(theirs, approximate=form).detach().numpy(), tol[dtype], f"gelu {form}")


@pytest.mark.parametrize("form", ["none", "tanh"])
def test_gelu_float32_matches_torch_to_rounding(form):
    """float32 F.gelu forward and backward vs torch over [-12, 12]: rtol 1e-6, plus an
    absolute slack for torch's own cancellation (0.5 x (1 + erf) and 1 - tanh^2 for x < 0,
    ~2^-24 |x| and 2^-24 |x| u'(x) |dout|; ours is accurate there, see test_isa_variants)."""
    torch = pytest.importorskip("torch", reason="parity tests need PyTorch")
    rng = np.random.default_rng(5)
    x = np.concatenate([np.linspace(-12, 12, 4001), rng.standard_normal(2000) * 3])
    x = x.astype(np.float32)
    dout = rng.standard_normal(x.size).astype(np.float32)
    ours = tga.tensor(x, requires_grad=True)
    y = F.gelu(ours, approximate=form)
    y.backward(tga.tensor(dout))
    theirs = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.gelu(theirs, approximate=form)
    yt.backward(torch.tensor(dout))
    ax = np.abs(x.astype(np.float64))
    for got, want, slack in ((y.detach().numpy(), yt.detach().numpy(), 2.0 ** -22 * (1 + ax)),
                             (ours.grad.numpy(), theirs.grad.numpy(),
                              2.0 ** -21 * (1 + ax ** 3) * np.abs(dout))):
        assert got.dtype == np.float32
        err = np.abs(got.astype(np.float64) - want)
        assert (err <= 1e-6 * np.abs(want) + slack).all(), (form, err.max(), x[err.argmax()])
