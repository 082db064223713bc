"""F.linear as one fused op (ops/linear.py: bias inside the GEMM, contiguous weight gradient,
column-sum bias gradient) against its composed twin (matmul + add, the oracle) and PyTorch;
likewise F.gelu_mlp (Linear, GELU, Linear: GELU inside the first GEMM, its derivative inside
the second one's dx GEMM).

Shapes: 1, primes, 0-size, GEMM tile edges, 3-D and 1-D inputs, non-contiguous inputs
(transposed, sliced, broadcast batch); float32 and float64; every GEMM ISA with 1 and 2
threads; float64 gradcheck; which gradients the backward computes (needs_input_grad); the
inputs the fused op leaves to the composed form (broadcast biases, mixed dtypes).
"""
import numpy as np
import pytest

import tinygradattn as tga
from tinygradattn import _core, nn
from tinygradattn.backend import isa as backend_isa
from tinygradattn.nn import functional as F
from tinygradattn.nn import reference
from tinygradattn.ops.linear import GeluMLP, Linear

from helpers import GRADCHECK, TOLS, assert_close

DTYPES = [np.float32, np.float64]
TORCH_REASON = "parity tests need PyTorch"
# (x shape, out_features): rows M = prod(x.shape[:-1]), K = x.shape[-1], N = out_features
SHAPES = [((1, 1), 1), ((1, 7), 1), ((7, 1), 5), ((13, 17), 11), ((2, 3, 5), 7), ((5,), 3),
          ((0, 4), 3), ((3, 0), 4), ((2, 0, 5), 3), ((25, 33), 65), ((2, 7, 31), 37)]
SHAPE_IDS = [f"{x}->{n}" for x, n in SHAPES]


@pytest.fixture(params=backend_isa.isas("gemm"))
def isa(request):
    backend_isa.set_isa("gemm", request.param)
    yield request.param
    backend_isa.set_isa("gemm", "auto")


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def n_threads(request):
    """Kernels on n threads, thresholds lowered so that 2 really run on test sizes."""
    saved = _core._set_tuning(min_flops_per_thread=0, row_min_elems_per_thread=0,
                              colsum_min_elems_per_thread=0)
    tga.set_num_threads(request.param)
    yield request.param
    tga.set_num_threads(None)
    _core._set_tuning(**saved)


def _leaves(arrays):
    return [tga.tensor(a, requires_grad=True) for a in arrays]


def _run(fn, arrays, upstream):
    """Output and gradients of every input for one upstream gradient."""
    leaves = _leaves(arrays)
    y = fn(*leaves)
    y.backward(tga.tensor(upstream))
    return y.detach().numpy(), [t.grad.numpy() for t in leaves]


def _operands(x_shape, n_out, dtype, seed=0, bias=True):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal((n_out, x_shape[-1])).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    upstream = rng.standard_normal(x_shape[:-1] + (n_out,)).astype(dtype)
    return ([x, w, b] if bias else [x, w]), upstream


def _assert_same(got, want, dtype, what):
    tol = TOLS[np.dtype(dtype).name]["matmul"]
    for name, g, w in zip(("y", "dx", "dweight", "dbias"), got, want):
        assert_close(g, w, tol, f"{what} {name}", dtype=np.dtype(dtype).name)


# ---- the fused op against its composed twin --------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape,n_out", SHAPES, ids=SHAPE_IDS)
def test_matches_composed_twin(isa, n_threads, x_shape, n_out, dtype):
    for bias in (True, False):
        arrays, upstream = _operands(x_shape, n_out, dtype, bias=bias)
        y, grads = _run(F.linear, arrays, upstream)
        y_ref, grads_ref = _run(F._linear_composed, arrays, upstream)
        assert y.dtype == dtype and y.shape == x_shape[:-1] + (n_out,)
        assert [g.shape for g in grads] == [a.shape for a in arrays]
        assert grads[1].flags.c_contiguous                  # dweight written as (out, in)
        _assert_same([y] + grads, [y_ref] + grads_ref, dtype, f"{isa} bias={bias}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_tile_edges(isa, dtype):
    """Rows, in and out features around every ISA's micro-tile (MR, NR up to 12 x 32)."""
    for m, k, n in [(11, 31, 33), (12, 32, 32), (13, 257, 31), (25, 3, 65), (1, 129, 17)]:
        arrays, upstream = _operands((m, k), n, dtype, seed=m * n)
        y, grads = _run(F.linear, arrays, upstream)
        y_ref, grads_ref = _run(F._linear_composed, arrays, upstream)
        _assert_same([y] + grads, [y_ref] + grads_ref, dtype, f"{isa} {(m, k, n)}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_noncontiguous_inputs(dtype):
    """Transposed, sliced and broadcast x, transposed weight, strided bias: no copies needed
    by the GEMM (strided operands); same numbers as the twin."""
    rng = np.random.default_rng(3)
    cases = {
        "x.mT": lambda x, w, b: (x.mT, w, b),
        "x[:, ::2]": lambda x, w, b: (x[:, ::2], w, b),
        "x expanded": lambda x, w, b: (x[:1].expand(4, 6, 9), w, b),
        "weight.T.T": lambda x, w, b: (x, w.T.contiguous().T, b),
        "bias[::2]": lambda x, w, b: (x, w, b),
    }
    shapes = {"x.mT": (4, 9, 6), "x[:, ::2]": (4, 12, 9), "x expanded": (4, 6, 9),
              "weight.T.T": (4, 6, 9), "bias[::2]": (4, 6, 9)}
    for name, view in cases.items():
        x = rng.standard_normal(shapes[name]).astype(dtype)
        w = rng.standard_normal((5, 9)).astype(dtype)
        b = rng.standard_normal(10 if name == "bias[::2]" else 5).astype(dtype)
        up = rng.standard_normal((4, 6, 5)).astype(dtype)
        results = []
        for fn in (F.linear, F._linear_composed):
            leaves = _leaves([x, w, b])
            vx, vw, vb = view(*leaves)
            if name == "bias[::2]":
                vb = vb[::2]
            y = fn(vx, vw, vb)
            y.backward(tga.tensor(up))
            results.append([y.detach().numpy()] + [t.grad.numpy() for t in leaves])
        _assert_same(results[0], results[1], dtype, name)


def test_dbias_same_bits_for_any_thread_count():
    """The bias gradient (column sums in fixed row chunks) does not depend on n_threads."""
    arrays, upstream = _operands((300, 7), 50, np.float32, seed=5)
    saved = _core._set_tuning(min_flops_per_thread=0, row_min_elems_per_thread=0,
                              colsum_min_elems_per_thread=0)
    try:
        got = []
        for n in (1, 2, 3):
            tga.set_num_threads(n)
            got.append(_run(F.linear, arrays, upstream)[1][2])
    finally:
        tga.set_num_threads(None)
        _core._set_tuning(**saved)
    for g in got[1:]:
        np.testing.assert_array_equal(g, got[0])


# ---- gradcheck and PyTorch parity ------------------------------------------------------------

@pytest.mark.parametrize("x_shape,n_out,bias", [((3, 4), 5, True), ((2, 3, 4), 2, True),
                                                ((4,), 3, True), ((5, 3), 4, False),
                                                ((1, 1), 1, True)])
def test_gradcheck(x_shape, n_out, bias):
    arrays, _ = _operands(x_shape, n_out, np.float64, seed=1, bias=bias)
    assert tga.autograd.gradcheck(F.linear, tuple(_leaves(arrays)), **GRADCHECK)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape,n_out", [((96, 128), 384), ((2, 48, 128), 65),
                                           ((96, 512), 128), ((3, 5, 7), 2), ((1,), 1)])
def test_matches_torch(x_shape, n_out, dtype):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    for bias in (True, False):
        arrays, upstream = _operands(x_shape, n_out, dtype, seed=2, bias=bias)
        y, grads = _run(F.linear, arrays, upstream)
        leaves = [torch.tensor(a, requires_grad=True) for a in arrays]
        y_t = torch.nn.functional.linear(*leaves)
        y_t.backward(torch.tensor(upstream))
        want = [y_t.detach().numpy()] + [t.grad.numpy() for t in leaves]
        _assert_same([y] + grads, want, dtype, f"torch bias={bias}")


# ---- the graph: which gradients run, shared weights, no_grad ---------------------------------

def test_backward_computes_only_needed_gradients(monkeypatch):
    backend = tga.ones(1)._backend
    asked = []
    original = backend.linear_bwd

    def spy(dout, x, weight, needs_dx, needs_dweight, needs_dbias):
        asked.append((needs_dx, needs_dweight, needs_dbias))
        return original(dout, x, weight, needs_dx, needs_dweight, needs_dbias)

    monkeypatch.setattr(backend, "linear_bwd", spy)
    x = tga.randn(4, 3)
    w = tga.randn(2, 3, requires_grad=True)
    b = tga.randn(2)
    F.linear(x, w, b).sum().backward()
    assert asked == [(False, True, False)] and x.grad is None and b.grad is None
    np.testing.assert_allclose(w.grad.numpy(), np.tile(x.numpy().sum(0), (2, 1)), rtol=1e-6)
    x.requires_grad_(True)
    F.linear(x, w.detach(), b.requires_grad_(True)).sum().backward()
    assert asked[-1] == (True, False, True)
    np.testing.assert_array_equal(b.grad.numpy(), [4.0, 4.0])


def test_shared_weight_gradients_accumulate():
    """A weight used by two linears (tied weights) gets the sum of both gradients."""
    rng = np.random.default_rng(4)
    x1, x2 = rng.standard_normal((3, 4)), rng.standard_normal((2, 5, 4))
    w = tga.tensor(rng.standard_normal((6, 4)), requires_grad=True)
    (F.linear(tga.tensor(x1), w).sum() + F.linear(tga.tensor(x2), w).sum()).backward()
    want = np.tile(x1.sum(0) + x2.reshape(-1, 4).sum(0), (6, 1))
    np.testing.assert_allclose(w.grad.numpy(), want, rtol=1e-12)


def test_uses_fused_op_and_records_nothing_under_no_grad():
    layer = nn.Linear(4, 3)
    y = layer(tga.randn(2, 4))
    assert y._ctx is not None and y._ctx.fn is Linear
    assert F.linear(tga.randn(2, 4), layer.weight)._ctx.fn is Linear
    with tga.no_grad():
        y = layer(tga.randn(2, 4))
    assert y._ctx is None and not y.requires_grad


# ---- what the fused op leaves to the composed form -------------------------------------------

def test_broadcast_bias_takes_composed_form():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal((3, 4)), rng.standard_normal((5, 4))
    for b in (rng.standard_normal(1), rng.standard_normal((3, 5)), np.array(2.0)):
        y = F.linear(tga.tensor(x), tga.tensor(w), tga.tensor(b))
        assert y._ctx is None or y._ctx.fn is not Linear
        want = torch.nn.functional.linear(*map(torch.tensor, (x, w, b))).numpy()
        np.testing.assert_allclose(y.numpy(), want, rtol=1e-12)


def test_errors():
    x, w = tga.randn(3, 4), tga.randn(5, 4)
    with pytest.raises(RuntimeError, match=r"input \(3, 4\) and weight \(5, 3\) do not match"):
        F.linear(x, tga.randn(5, 3))
    with pytest.raises(RuntimeError, match="same dtype"):
        F.linear(x.double(), w)
    with pytest.raises(TypeError, match="argument 'weight' must be Tensor"):
        F.linear(x, np.ones((5, 4)))


def test_backend_primitives_direct():
    """linear_fwd / linear_bwd on raw arrays, with a broadcast (stride 0) upstream gradient."""
    be = tga.ones(1)._backend
    rng = np.random.default_rng(8)
    x = rng.standard_normal((7, 3)).astype(np.float32)
    w = rng.standard_normal((4, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    np.testing.assert_allclose(be.linear_fwd(x, w, b), x @ w.T + b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(be.linear_fwd(x, w, None), x @ w.T, rtol=1e-5, atol=1e-6)
    dout = np.broadcast_to(np.float32(0.5), (7, 4))
    dx, dw, db = be.linear_bwd(dout, x, w, True, True, True)
    np.testing.assert_allclose(dx, dout @ w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dw, dout.T @ x, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(db, np.full(4, 3.5), rtol=1e-6)
    assert be.linear_bwd(dout, x, w, False, False, False) == (None, None, None)


# ---- gelu_mlp: Linear -> GELU -> Linear as one op (a transformer's MLP) ------------------

def _mlp_operands(x_shape, hidden, n_out, dtype, seed=0, bias=True):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w1 = rng.standard_normal((hidden, x_shape[-1])).astype(dtype)
    w2 = rng.standard_normal((n_out, hidden)).astype(dtype)
    b1, b2 = rng.standard_normal(hidden).astype(dtype), rng.standard_normal(n_out).astype(dtype)
    upstream = rng.standard_normal(x_shape[:-1] + (n_out,)).astype(dtype)
    return ([x, w1, b1, w2, b2] if bias else [x, w1, w2]), upstream


def _mlp(approximate, bias, fn=None):
    """gelu_mlp (or the composed oracle) over leaves [x, w1, b1, w2, b2] or [x, w1, w2]."""
    def run(*t):
        x, w1, b1, w2, b2 = t if bias else (t[0], t[1], None, t[2], None)
        if fn is None:
            return F.gelu_mlp(x, w1, b1, w2, b2, approximate)
        return F._linear_composed(reference.gelu(F._linear_composed(x, w1, b1),
                                                   approximate), w2, b2)
    return run


def _assert_same_mlp(got, want, dtype, what):
    tol = TOLS[np.dtype(dtype).name]["matmul"]
    names = ("y", "dx", "dw1", "db1", "dw2", "db2") if len(got) == 6 else ("y", "dx", "dw1",
                                                                            "dw2")
    for name, g, w in zip(names, got, want):
        assert_close(g, w, tol, f"{what} {name}", dtype=np.dtype(dtype).name)


# (x shape, hidden, out): the first GEMM's rows x hidden around the micro-tiles (its GELU
# epilogue, stripe by stripe), K across KC, 1, empty rows
MLP_SHAPES = [((1, 1), 1, 1), ((13, 17), 11, 5), ((2, 3, 5), 33, 7), ((5,), 3, 2),
              ((0, 4), 3, 2), ((25, 33), 65, 13), ((37, 257), 31, 3), ((12, 32), 32, 12),
              ((96, 128), 512, 128)]
MLP_IDS = [f"{x}-{h}-{n}" for x, h, n in MLP_SHAPES]


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape,hidden,n_out", MLP_SHAPES, ids=MLP_IDS)
def test_gelu_mlp_matches_composed(isa, n_threads, x_shape, hidden, n_out, dtype,
                                   approximate):
    """GELU inside the first GEMM and its derivative inside the second one's dx GEMM: the
    same numbers as Linear, Gelu, Linear composed from Tensor ops."""
    for bias in (True, False):
        arrays, upstream = _mlp_operands(x_shape, hidden, n_out, dtype, seed=11, bias=bias)
        y, grads = _run(_mlp(approximate, bias), arrays, upstream)
        y_ref, grads_ref = _run(_mlp(approximate, bias, "composed"), arrays, upstream)
        assert y.dtype == dtype and y.shape == x_shape[:-1] + (n_out,)
        _assert_same_mlp([y] + grads, [y_ref] + grads_ref, dtype, f"{isa} bias={bias}")


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("x_shape,hidden,n_out,bias", [((3, 4), 5, 2, True),
                                                       ((2, 3, 4), 2, 3, False),
                                                       ((4,), 3, 1, True), ((1, 1), 1, 1, True)])
def test_gelu_mlp_gradcheck(x_shape, hidden, n_out, bias, approximate):
    arrays, _ = _mlp_operands(x_shape, hidden, n_out, np.float64, seed=12, bias=bias)
    assert tga.autograd.gradcheck(_mlp(approximate, bias), tuple(_leaves(arrays)), **GRADCHECK)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_gelu_mlp_matches_torch(dtype, approximate):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    tF = torch.nn.functional
    for x_shape, hidden, n_out in [((96, 128), 512, 128), ((2, 7, 31), 37, 5), ((5,), 3, 2)]:
        arrays, upstream = _mlp_operands(x_shape, hidden, n_out, dtype, seed=13)
        y, grads = _run(_mlp(approximate, True), arrays, upstream)
        x, w1, b1, w2, b2 = leaves = [torch.tensor(a, requires_grad=True) for a in arrays]
        y_t = tF.linear(tF.gelu(tF.linear(x, w1, b1), approximate=approximate), w2, b2)
        y_t.backward(torch.tensor(upstream))
        want = [y_t.detach().numpy()] + [t.grad.numpy() for t in leaves]
        _assert_same_mlp([y] + grads, want, dtype, f"torch {x_shape}")


def test_gelu_mlp_graph():
    """One node; gradients for the second layer alone; nothing kept under no_grad; what the
    fused op does not take runs as three ops; errors as linear's and gelu's."""
    arrays, up = _mlp_operands((4, 6), 5, 3, np.float32, seed=14)
    x, w1, b1, w2, b2 = (tga.tensor(a) for a in arrays)
    y = F.gelu_mlp(x.requires_grad_(True), w1, b1, w2, b2)
    assert y._ctx.fn is GeluMLP
    w2g = tga.tensor(arrays[3], requires_grad=True)
    F.gelu_mlp(x.detach(), w1, b1, w2g, b2).backward(tga.tensor(up))
    a = F.gelu(F.linear(x.detach(), w1, b1)).numpy()
    np.testing.assert_allclose(w2g.grad.numpy(), up.T @ a, rtol=1e-5)
    with tga.no_grad():
        y = F.gelu_mlp(x, w1, b1, w2, b2)
    assert y._ctx is None
    np.testing.assert_allclose(y.numpy(), _mlp("none", True, "composed")(x, w1, b1, w2, b2)
                               .detach().numpy(), rtol=1e-5)
    y = F.gelu_mlp(x, w1, b1, w2, tga.tensor(arrays[4][:1]))           # broadcast bias
    assert y._ctx.fn is not GeluMLP
    with pytest.raises(RuntimeError, match=r"input \(4, 6\) and weight \(5, 7\) do not match"):
        F.gelu_mlp(x, tga.randn(5, 7), None, w2, None)
    with pytest.raises(RuntimeError, match="approximate must be 'none' or 'tanh'"):
        F.gelu_mlp(x, w1, b1, w2, b2, approximate="erf")
    with pytest.raises(TypeError, match="argument 'proj_weight' must be Tensor"):
        F.gelu_mlp(x, w1, b1, arrays[3], b2)


# ---- residuals added inside the GEMM (linear_residual, gelu_mlp(residual=)) ------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape,n_out", SHAPES, ids=SHAPE_IDS)
def test_linear_residual_matches_composed(isa, n_threads, x_shape, n_out, dtype):
    """residual + linear(...) with the residual added to each finished stripe in the GEMM:
    the same numbers as Linear, then Add; the residual's gradient is the upstream one."""
    for bias in (True, False):
        arrays, upstream = _operands(x_shape, n_out, dtype, seed=21, bias=bias)
        arrays.append(np.random.default_rng(22).standard_normal(upstream.shape).astype(dtype))
        fused = lambda x, w, *rest: F.linear_residual(         # noqa: E731
            x, w, rest[0] if bias else None, rest[-1])
        composed = lambda x, w, *rest: rest[-1] + F._linear_composed(   # noqa: E731
            x, w, rest[0] if bias else None)
        y, grads = _run(fused, arrays, upstream)
        y_ref, grads_ref = _run(composed, arrays, upstream)
        names = ("y", "dx", "dweight") + (("dbias",) if bias else ()) + ("dresidual",)
        tol = TOLS[np.dtype(dtype).name]["matmul"]
        for name, g, w in zip(names, [y] + grads, [y_ref] + grads_ref):
            assert_close(g, w, tol, f"{isa} bias={bias} {name}", dtype=np.dtype(dtype).name)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape,hidden,n_out", MLP_SHAPES, ids=MLP_IDS)
def test_gelu_mlp_residual_matches_composed(isa, x_shape, hidden, n_out, dtype, approximate):
    arrays, upstream = _mlp_operands(x_shape, hidden, n_out, dtype, seed=23)
    arrays.append(np.random.default_rng(24).standard_normal(upstream.shape).astype(dtype))
    fused = lambda x, w1, b1, w2, b2, r: F.gelu_mlp(x, w1, b1, w2, b2, approximate,  # noqa
                                                    residual=r)
    y, grads = _run(fused, arrays, upstream)
    y_ref, grads_ref = _run(lambda *t: t[-1] + _mlp(approximate, True, "composed")(*t[:-1]),
                            arrays, upstream)
    tol = TOLS[np.dtype(dtype).name]["matmul"]
    for name, g, w in zip(("y", "dx", "dw1", "db1", "dw2", "db2", "dresidual"),
                          [y] + grads, [y_ref] + grads_ref):
        assert_close(g, w, tol, f"{isa} {name}", dtype=np.dtype(dtype).name)


def test_residual_gradcheck_and_graph():
    """float64 gradcheck of both; one node each; residuals of another shape or dtype run as
    the op, then +; errors name the argument."""
    arrays, _ = _operands((3, 4), 5, np.float64, seed=25)
    r = np.random.default_rng(26).standard_normal((3, 5))
    assert tga.autograd.gradcheck(F.linear_residual, tuple(_leaves(arrays + [r])), **GRADCHECK)
    mlp_arrays, _ = _mlp_operands((2, 3, 4), 6, 2, np.float64, seed=27)
    r2 = np.random.default_rng(28).standard_normal((2, 3, 2))
    fn = lambda x, w1, b1, w2, b2, r: F.gelu_mlp(x, w1, b1, w2, b2, residual=r)  # noqa: E731
    assert tga.autograd.gradcheck(fn, tuple(_leaves(mlp_arrays + [r2])), **GRADCHECK)
    x, w, b = (tga.tensor(a.astype(np.float32), requires_grad=True) for a in arrays)
    rt = tga.tensor(r.astype(np.float32))
    assert F.linear_residual(x, w, b, rt)._ctx.fn is Linear
    t = [tga.tensor(a.astype(np.float32), requires_grad=True) for a in mlp_arrays]
    assert F.gelu_mlp(*t, residual=tga.tensor(r2.astype(np.float32)))._ctx.fn is GeluMLP
    for other in (tga.tensor(r[:1].astype(np.float32)), rt.double()):     # broadcast, dtype
        y = F.linear_residual(x, w, b, other)
        assert y._ctx is None or y._ctx.fn is not Linear
        np.testing.assert_allclose(y.detach().numpy(), (other + F.linear(x, w, b)).detach()
                                   .numpy(), rtol=1e-6)
    with pytest.raises(TypeError, match="argument 'residual' must be Tensor"):
        F.linear_residual(x, w, b, r)
    with pytest.raises(TypeError, match="argument 'residual' must be Tensor"):
        F.gelu_mlp(*t, residual=r2)
