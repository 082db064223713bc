"""Property tests: binary ops over random broadcastable shape pairs and non-contiguous views,
reductions over random dims; forward against numpy, gradients against numpy formulas (summed
back to each input's shape, then through the view to the leaf)."""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import tinygradattn as tga

from helpers import TOLS, assert_close
from strategies import broadcastable_pairs, reduction_dims, shapes, sum_to_shape, views

# op: (forward, d/da, d/db, domain of b)
BINARY = {
    "add": (np.add, lambda a, b: np.ones_like(a * b), lambda a, b: np.ones_like(a * b)),
    "sub": (np.subtract, lambda a, b: np.ones_like(a * b), lambda a, b: -np.ones_like(a * b)),
    "mul": (np.multiply, lambda a, b: b + 0 * a, lambda a, b: a + 0 * b),
    "div": (np.divide, lambda a, b: 1 / b + 0 * a, lambda a, b: -a / b ** 2),
    "pow": (np.power, lambda a, b: b * a ** (b - 1), lambda a, b: a ** b * np.log(a)),
    "maximum": (np.maximum, lambda a, b: (a > b) + 0.0 * b, lambda a, b: (b > a) + 0.0 * a),
}
TGA = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
       "div": lambda a, b: a / b, "pow": lambda a, b: a ** b,
       "maximum": lambda a, b: tga.maximum(a, b)}
F32 = TOLS["float32"]


def _data(rng, shape, op, slot):
    x = rng.standard_normal(shape)
    if op == "pow" and slot == 0:
        x = np.abs(x) + 0.5                          # positive bases
    if op == "pow" and slot == 1:
        x = np.clip(x, -2, 2)
    if op == "div" and slot == 1:
        x = np.sign(x + 1e-12) * (np.abs(x) + 0.5)   # denominators away from 0
    return x.astype(np.float32)


@given(pair=broadcastable_pairs(), op=st.sampled_from(sorted(BINARY)), data=st.data(),
       seed=st.integers(0, 2**16))
def test_binary_op_broadcast_views(pair, op, data, seed):
    rng = np.random.default_rng(seed)
    kinds = ("plain", "permute", "slice", "expand")
    va, vb = data.draw(views(pair[0], kinds)), data.draw(views(pair[1], kinds))
    base_a = _data(rng, va.base_shape, op, 0)
    base_b = _data(rng, vb.base_shape, op, 1)
    ta = tga.tensor(base_a, requires_grad=True)
    tb = tga.tensor(base_b, requires_grad=True)
    out = TGA[op](va.apply(ta), vb.apply(tb))

    a, b = va.apply(base_a).astype(np.float64), vb.apply(base_b).astype(np.float64)
    fwd, da, db = BINARY[op]
    expected = fwd(a, b)
    label = f"{op} {pair} views {va.kind}/{vb.kind}"
    assert out.dtype == tga.float32
    assert_close(out.detach().numpy(), expected, F32["elementwise"], label + " forward")

    g = rng.standard_normal(expected.shape)
    out.backward(gradient=tga.tensor(g.astype(np.float32)))
    ga = va.vjp(sum_to_shape(g * da(a, b), a.shape))
    gb = vb.vjp(sum_to_shape(g * db(a, b), b.shape))
    assert ta.grad.shape == base_a.shape and tb.grad.shape == base_b.shape
    assert_close(ta.grad.numpy(), ga, F32["reduction"], label + " grad a")
    assert_close(tb.grad.numpy(), gb, F32["reduction"], label + " grad b")


@given(pair=broadcastable_pairs(allow_zero=False), data=st.data(), seed=st.integers(0, 2**16))
def test_binary_ops_against_torch_on_views(pair, data, seed):
    """Same as above, with torch as the oracle (skipped without torch): the chained
    expression a * b - a / (b*b + 1) exercises several ops on views at once."""
    import pytest
    torch = pytest.importorskip("torch", reason="torch parity of broadcasting on views")
    rng = np.random.default_rng(seed)
    va, vb = data.draw(views(pair[0])), data.draw(views(pair[1]))
    base_a = rng.standard_normal(va.base_shape).astype(np.float32)
    base_b = rng.standard_normal(vb.base_shape).astype(np.float32)

    def expr(x, y):
        return x * y - x / (y * y + 1.0)
    ta, tb = (tga.tensor(x, requires_grad=True) for x in (base_a, base_b))
    pa, pb = (torch.tensor(x, requires_grad=True) for x in (base_a, base_b))
    out, ref = expr(va.apply(ta), vb.apply(tb)), expr(va.apply(pa), vb.apply(pb))
    g = rng.standard_normal(tuple(ref.shape)).astype(np.float32)
    out.backward(gradient=tga.tensor(g))
    ref.backward(torch.tensor(g))
    label = f"{pair} views {va.kind}/{vb.kind}"
    assert_close(out.detach().numpy(), ref.detach().numpy(), F32["elementwise"], label)
    assert_close(ta.grad.numpy(), pa.grad.numpy(), F32["reduction"], label + " grad a")
    assert_close(tb.grad.numpy(), pb.grad.numpy(), F32["reduction"], label + " grad b")


def _np_reduce(op, x, dims, keepdim, correction):
    axis = None if dims is None else tuple(d % x.ndim for d in np.atleast_1d(dims))
    n = x.size if axis is None else int(np.prod([x.shape[d] for d in axis]))
    m = x.mean(axis=axis, keepdims=True)
    if op == "sum":
        return x.sum(axis=axis, keepdims=keepdim), lambda g: np.broadcast_to(g, x.shape)
    if op == "mean":
        return x.mean(axis=axis, keepdims=keepdim), lambda g: np.broadcast_to(g / n, x.shape)
    var = ((x - m) ** 2).sum(axis=axis, keepdims=True) / (n - correction)
    if op == "var":
        return (np.squeeze(var, axis) if not keepdim and axis is not None else
                (var if keepdim else var.reshape(()))), \
            lambda g: g * 2 * (x - m) / (n - correction)
    std = np.sqrt(var)
    out = np.squeeze(std, axis) if not keepdim and axis is not None else \
        (std if keepdim else std.reshape(()))
    return out, lambda g: g * (x - m) / ((n - correction) * std)


@given(shape=shapes(min_dims=1, max_dims=4), data=st.data(),
       op=st.sampled_from(["sum", "mean", "var", "std"]), keepdim=st.booleans(),
       correction=st.sampled_from([0, 1]), seed=st.integers(0, 2**16))
def test_reduction_gradients_over_random_dims(shape, data, op, keepdim, correction, seed):
    dims = data.draw(reduction_dims(len(shape)))
    view = data.draw(views(shape))
    rng = np.random.default_rng(seed)
    base = rng.standard_normal(view.base_shape).astype(np.float32)
    x = view.apply(base).astype(np.float64)
    axis = None if dims is None else tuple(d % len(shape) for d in np.atleast_1d(dims))
    n = x.size if axis is None else int(np.prod([shape[d] for d in axis]))
    if op in ("var", "std") and n - correction <= 0:
        return        # undefined
    if op == "std" and (n == 1 or view.kind == "expand"):
        return        # std of equal values is 0: an infinite gradient
    t = tga.tensor(base, requires_grad=True)
    tv = view.apply(t)
    kw = {} if op in ("sum", "mean") else {"correction": correction}
    out = getattr(tv, op)(dims, keepdim, **kw) if dims is not None else \
        getattr(tv, op)(**kw) if not keepdim else getattr(tv, op)(None, True, **kw)
    expected, vjp = _np_reduce(op, x, dims, keepdim, correction)
    label = f"{op}{shape} dims={dims} keepdim={keepdim} view {view.kind}"
    assert tuple(out.shape) == np.shape(expected), label
    assert_close(out.detach().numpy(), expected, F32["reduction"], label)
    g = rng.standard_normal(np.shape(expected))
    out.backward(gradient=tga.tensor(g.astype(np.float32)))
    g_kept = g if keepdim or axis is None else np.expand_dims(g, axis)
    assert_close(t.grad.numpy(), view.vjp(vjp(np.reshape(g_kept, np.shape(g_kept)))),
                 F32["reduction"], label + " grad")


@given(shape=shapes(min_dims=1, max_dims=3), data=st.data(), is_max=st.booleans(),
       keepdim=st.booleans(), seed=st.integers(0, 2**16))
def test_max_min_along_random_dim(shape, data, is_max, keepdim, seed):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    rng = np.random.default_rng(seed)
    x = rng.permutation(int(np.prod(shape))).reshape(shape).astype(np.float32)  # no ties
    t = tga.tensor(x, requires_grad=True)
    values, indices = (t.max if is_max else t.min)(dim, keepdim)
    arg = (np.argmax if is_max else np.argmin)(x, axis=dim, keepdims=True)
    np.testing.assert_array_equal(indices.numpy(), arg if keepdim else np.squeeze(arg, dim))
    np.testing.assert_array_equal(values.detach().numpy(),
                                  np.take_along_axis(x, arg, dim).reshape(values.shape))
    g = rng.standard_normal(values.shape).astype(np.float32)
    values.backward(gradient=tga.tensor(g))
    expected = np.zeros_like(x)
    np.put_along_axis(expected, arg, g.reshape(arg.shape), dim)
    np.testing.assert_array_equal(t.grad.numpy(), expected)
