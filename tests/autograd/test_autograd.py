"""The autograd engine: deep graphs, accumulation, diamonds, gradient=, retain_graph, hooks,
grad mode, detach, custom Functions, gradcheck itself, freeing saved arrays, mixed dtypes."""
import gc
import tracemalloc

import numpy as np
import pytest

import tinygradattn as tga
from tinygradattn.autograd import Function, gradcheck


def leaf(*shape, dtype=None):
    return tga.randn(*shape, dtype=dtype, requires_grad=True)


# ---- graph shapes -----------------------------------------------------------------------------
def test_chain_of_100000_ops_has_no_recursion_error():
    x = tga.tensor([0.5], requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y + 1.0
    y.backward()
    assert y.item() == pytest.approx(100_000.5)
    assert x.grad.tolist() == [1.0]


def test_deep_chain_of_multiplications_gradient():
    x = tga.tensor([1.0], dtype=tga.float64, requires_grad=True)
    y = x
    for _ in range(2000):
        y = y * 1.001
    y.backward()
    assert x.grad.item() == pytest.approx(1.001 ** 2000, rel=1e-9)


def test_grads_accumulate_into_leaves_across_backward_calls():
    x = leaf(3)
    (x * 2.0).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(3, 5.0))


def test_leaf_used_twice_in_one_op_and_in_several_ops():
    x = tga.tensor([1.5, -2.0], dtype=tga.float64, requires_grad=True)
    (x * x + x).sum().backward()          # d/dx (x^2 + x) = 2x + 1
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.detach().numpy() + 1)


def test_diamond_graph():
    x = tga.tensor([0.3, -0.7], dtype=tga.float64, requires_grad=True)
    a = x * 2.0
    b = a.exp()
    c = a.tanh()
    y = (b * c + a).sum()                # y = e^(2x) tanh(2x) + 2x
    y.backward()
    xv = x.detach().numpy()
    e, t = np.exp(2 * xv), np.tanh(2 * xv)
    expected = 2 * e * t + e * 2 * (1 - t ** 2) + 2
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-12)


def test_diamond_with_intermediate_used_by_many_consumers():
    x = leaf(4, dtype=tga.float64)
    h = x.sigmoid()
    y = h * h + h.exp() + h.log() - h
    y.sum().backward()
    s = 1 / (1 + np.exp(-x.detach().numpy()))
    np.testing.assert_allclose(x.grad.numpy(), (2 * s + np.exp(s) + 1 / s - 1) * s * (1 - s),
                               rtol=1e-10)
    x.grad = None
    assert gradcheck(lambda t: (lambda u: u * u + u.exp() + u.log() - u)(t.sigmoid()), (x,))


def test_input_not_requiring_grad_gets_no_grad():
    x, c = leaf(3), tga.randn(3)
    (x * c).sum().backward()
    assert c.grad is None and x.grad is not None


def test_is_leaf_and_grad_fn():
    x = leaf(2)
    y = x * 2.0
    assert x.is_leaf and x.grad_fn is None
    assert not y.is_leaf and y.grad_fn is not None and y.requires_grad
    assert tga.randn(2).is_leaf


# ---- gradient= -----------------------------------------------------------------------------------
def test_backward_with_gradient_for_non_scalar_output():
    x = leaf(2, 3)
    g = tga.randn(2, 3)
    (x * 3.0).backward(gradient=g)
    np.testing.assert_allclose(x.grad.numpy(), 3 * g.numpy(), rtol=1e-6)


def test_backward_without_gradient_on_non_scalar_raises():
    x = leaf(2, 3)
    with pytest.raises(RuntimeError, match="scalar"):
        (x * 3.0).backward()


def test_backward_gradient_wrong_shape_raises():
    x = leaf(2, 3)
    with pytest.raises(RuntimeError, match=r"\(3, 2\)"):
        (x * 3.0).backward(gradient=tga.ones(3, 2))


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        tga.randn(3).sum().backward()


def test_backward_on_leaf_itself():
    x = leaf(3)
    x.backward(gradient=tga.ones(3))
    np.testing.assert_array_equal(x.grad.numpy(), np.ones(3))


def test_backward_on_one_element_non_scalar_shape():
    x = leaf(1, 1)
    (x * 2.0).backward()
    assert x.grad.shape == (1, 1) and x.grad.item() == 2.0


# ---- retain_graph --------------------------------------------------------------------------------
def test_second_backward_without_retain_graph_raises():
    x = leaf(3)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_retain_graph_allows_second_backward_and_doubles_grads():
    x = leaf(3)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first, rtol=1e-6)


def test_shared_subgraph_second_backward_raises():
    x = leaf(3)
    h = x.exp()
    (h * 2.0).sum().backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        (h * 3.0).sum().backward()


# ---- hooks ---------------------------------------------------------------------------------------
def test_hook_on_leaf_sees_gradient():
    x = leaf(3)
    seen = []
    x.register_hook(lambda g: seen.append(g.numpy().copy()))
    (x * 4.0).sum().backward()
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], np.full(3, 4.0))
    np.testing.assert_allclose(x.grad.numpy(), np.full(3, 4.0))


def test_hook_on_leaf_replaces_gradient():
    x = leaf(3)
    x.register_hook(lambda g: g * 0.0 + 7.0)
    (x * 4.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(3, 7.0))


def test_hook_on_non_leaf_sees_and_replaces_gradient():
    x = leaf(3)
    y = x * 2.0
    seen = []

    def hook(g):
        seen.append(g.numpy().copy())
        return g * 10.0
    y.register_hook(hook)
    (y * 3.0).sum().backward()
    np.testing.assert_allclose(seen[0], np.full(3, 3.0))
    np.testing.assert_allclose(x.grad.numpy(), np.full(3, 60.0))


def test_hook_sees_total_gradient_once():
    x = leaf(2)
    y = x * 1.0
    calls = []
    y.register_hook(lambda g: calls.append(g.numpy().copy()))
    (y * 2.0 + y * 3.0).sum().backward()
    assert len(calls) == 1
    np.testing.assert_allclose(calls[0], np.full(2, 5.0))


def test_hook_returning_wrong_shape_raises():
    x = leaf(3)
    x.register_hook(lambda g: tga.ones(4))
    with pytest.raises(RuntimeError, match="shape"):
        (x * 1.0).sum().backward()


def test_register_hook_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError):
        tga.randn(3).register_hook(lambda g: g)


def test_retain_grad_on_non_leaf():
    x = leaf(3)
    y = x * 2.0
    y.retain_grad()
    (y * 5.0).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), np.full(3, 5.0))


# ---- grad mode -----------------------------------------------------------------------------------
def test_no_grad_records_nothing():
    x = leaf(3)
    with tga.no_grad():
        assert not tga.is_grad_enabled()
        y = x * 2.0
    assert tga.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None


def test_enable_grad_inside_no_grad_and_nesting():
    x = leaf(3)
    with tga.no_grad():
        with tga.enable_grad():
            assert tga.is_grad_enabled()
            y = x * 2.0
            with tga.no_grad():
                assert not tga.is_grad_enabled()
                z = x * 2.0
            assert tga.is_grad_enabled()
        assert not tga.is_grad_enabled()
    assert y.requires_grad and not z.requires_grad


def test_grad_mode_decorators():
    x = leaf(3)

    @tga.no_grad()
    def f(t):
        return t * 2.0, tga.is_grad_enabled()

    @tga.enable_grad()
    def g(t):
        return t * 2.0

    y, enabled = f(x)
    assert not y.requires_grad and not enabled
    with tga.no_grad():
        assert g(x).requires_grad
    assert tga.is_grad_enabled()


def test_grad_mode_restored_after_exception():
    with pytest.raises(ValueError):
        with tga.no_grad():
            raise ValueError("boom")
    assert tga.is_grad_enabled()


# ---- detach, requires_grad -----------------------------------------------------------------------
def test_detach_cuts_the_graph_and_shares_data():
    x = leaf(3)
    d = x.detach()
    assert not d.requires_grad and d.is_leaf
    np.testing.assert_array_equal(d.numpy(), x.detach().numpy())
    (d * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), d.numpy())


def test_requires_grad_on_int_tensor_raises():
    with pytest.raises(RuntimeError, match="floating point"):
        tga.tensor([1, 2, 3]).requires_grad_()
    with pytest.raises(RuntimeError):
        tga.tensor([1, 2], requires_grad=True)
    with pytest.raises(RuntimeError):
        tga.tensor([True]).requires_grad_(True)


def test_requires_grad_false_on_non_leaf_raises():
    y = leaf(2) * 2.0
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad_(False)


def test_ops_on_int_tensors_are_not_recorded():
    x = leaf(3)
    idx = x.argmax()
    assert not idx.requires_grad


# ---- custom Functions ----------------------------------------------------------------------------
class Cube(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, dout):
        x, = ctx.saved_tensors                # y = x^3  =>  dx = 3 x^2 dout
        return 3 * x * x * dout


class ScaledProduct(Function):
    """y = a * b * k with a plain (non-tensor) argument k."""

    calls = []

    @staticmethod
    def forward(ctx, a, b, k):
        ctx.save_for_backward(a, b)
        ctx.k = k
        return a * b * k

    @staticmethod
    def backward(ctx, dout):
        a, b = ctx.saved_tensors
        ScaledProduct.calls.append(ctx.needs_input_grad)
        da = dout * b * ctx.k if ctx.needs_input_grad[0] else None
        db = dout * a * ctx.k if ctx.needs_input_grad[1] else None
        return da, db, None


class WrongCube(Cube):
    @staticmethod
    def backward(ctx, dout):
        x, = ctx.saved_tensors
        return 2 * x * x * dout               # deliberately wrong: 2 instead of 3


def test_custom_function_forward_backward():
    x = tga.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = Cube.apply(x)
    assert y.tolist() == [1.0, -8.0, 27.0]
    y.sum().backward()
    assert x.grad.tolist() == [3.0, 12.0, 27.0]


def test_custom_function_passes_gradcheck():
    x = leaf(2, 3, dtype=tga.float64)
    assert gradcheck(lambda t: Cube.apply(t), (x,))
    a, b = leaf(3, dtype=tga.float64), leaf(3, dtype=tga.float64)
    assert gradcheck(lambda p, q: ScaledProduct.apply(p, q, 2.5), (a, b))


def test_custom_function_needs_input_grad():
    ScaledProduct.calls.clear()
    a, b = leaf(3), tga.randn(3)
    ScaledProduct.apply(a, b, 2.0).sum().backward()
    assert ScaledProduct.calls == [(True, False, False)]
    assert b.grad is None
    np.testing.assert_allclose(a.grad.numpy(), 2.0 * b.numpy(), rtol=1e-6)


def test_custom_function_with_broadcasting_inputs_gets_reduced_grads():
    a, b = leaf(3, 4), leaf(4)
    ScaledProduct.apply(a, b, 1.0).sum().backward()
    assert a.grad.shape == (3, 4) and b.grad.shape == (4,)
    np.testing.assert_allclose(b.grad.numpy(), a.detach().numpy().sum(0), rtol=1e-5)


def test_custom_function_applied_to_no_tensor_raises_type_error():
    # autograd recognises tensors by their protocol (it never imports Tensor): with none among
    # the arguments there is no device and no type to make the output with
    with pytest.raises(TypeError, match=r"Cube.apply\(\) needs at least one Tensor argument, "
                                        r"got \(float\)"):
        Cube.apply(2.0)
    with pytest.raises(TypeError, match=r"got \(list, int, float\)"):
        ScaledProduct.apply([1.0], 2, 3.0)


def test_ops_on_a_parameter_give_plain_tensors():
    # as in torch: an op's output (and a leaf's .grad) is a Tensor, not an nn.Parameter
    p = tga.nn.Parameter(tga.ones(3))
    y = Cube.apply(p)
    assert type(y) is tga.Tensor and type(p * 2) is tga.Tensor
    y.sum().backward()
    assert type(p.grad) is tga.Tensor and p.grad.tolist() == [3.0, 3.0, 3.0]


def test_gradcheck_perturbs_non_contiguous_inputs():
    # the perturbation goes through the tensor's own item writes, so a transposed input
    # (whose flat view would be a copy) is perturbed too
    x = tga.randn(3, 4, dtype=tga.float64).T.requires_grad_()            # (4, 3), strided
    assert gradcheck(lambda t: (t * t).sum(0), (x,))
    assert gradcheck(lambda t: WrongCube.apply(t), (x,), raise_exception=False) is False


def test_gradcheck_catches_wrong_backward():
    x = leaf(4, dtype=tga.float64)
    with pytest.raises(AssertionError, match="gradcheck"):
        gradcheck(lambda t: WrongCube.apply(t), (x,))
    assert gradcheck(lambda t: WrongCube.apply(t), (x,), raise_exception=False) is False


def test_gradcheck_leaves_existing_grads_alone():
    # torch.autograd.gradcheck uses autograd.grad and never touches .grad
    x = leaf(3, dtype=tga.float64)
    (x * 2.0).sum().backward()
    before = x.grad.numpy().copy()
    assert gradcheck(lambda t: t.exp(), (x,))
    np.testing.assert_array_equal(x.grad.numpy(), before)


def test_gradcheck_rejects_float32_inputs():
    with pytest.raises(ValueError, match="float64"):
        gradcheck(lambda t: t * 2.0, (leaf(3),))


def test_gradcheck_multiple_outputs():
    x = leaf(3, 4, dtype=tga.float64)
    assert gradcheck(lambda t: t.split(2, dim=1), (x,))


# ---- memory: saved arrays are released -----------------------------------------------------------
def test_saved_arrays_released_after_backward():
    x = leaf(5)
    h = x.exp()
    y = (h * h).sum()
    ctxs = [h._ctx, y._ctx]
    assert h._ctx.saved, "Exp should save its output for backward"
    y.backward()
    for ctx in ctxs:
        assert ctx.saved == () and ctx.is_freed


def test_saved_arrays_kept_with_retain_graph():
    x = leaf(5)
    h = x.exp()
    h.sum().backward(retain_graph=True)
    assert h._ctx.saved and not h._ctx.is_freed


def test_no_grad_saves_nothing():
    x = leaf(5)
    with tga.no_grad():
        y = x.exp()
    assert y._ctx is None


def test_memory_does_not_grow_over_training_steps():
    w = tga.randn(16, 16, requires_grad=True)
    x = tga.randn(8, 16)

    def step():
        loss = ((x @ w).relu() ** 2).mean() + w.abs().sum() * 1e-3
        loss.backward()
        with tga.no_grad():
            w._data -= 1e-3 * w.grad._data
        w.grad = None

    for _ in range(100):
        step()
    gc.collect()
    tracemalloc.start()
    try:
        for _ in range(300):
            step()
        gc.collect()
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(1700):
            step()
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 64 * 1024, f"memory grew by {after - before} bytes over 1700 steps"


# ---- dtypes of gradients -------------------------------------------------------------------------
def test_mixed_dtype_ops_give_grads_in_each_inputs_dtype():
    a = tga.randn(3, requires_grad=True)                     # float32
    b = tga.randn(3, dtype=tga.float64, requires_grad=True)
    y = (a * b).sum()
    assert y.dtype == tga.float64
    y.backward()
    assert a.grad.dtype == tga.float32 and b.grad.dtype == tga.float64
    np.testing.assert_allclose(a.grad.numpy(), b.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(b.grad.numpy(), a.detach().numpy().astype(np.float64))


def test_int_tensor_times_float_leaf_gives_float_grad():
    a = tga.randn(3, requires_grad=True)
    n = tga.tensor([1, 2, 3])
    (a * n).sum().backward()
    assert a.grad.dtype == tga.float32
    np.testing.assert_allclose(a.grad.numpy(), [1.0, 2.0, 3.0])


def test_grad_dtype_matches_leaf_after_cast():
    a = tga.randn(4, requires_grad=True)
    a.double().sum().backward()
    assert a.grad.dtype == tga.float32


def test_leaf_grads_are_not_aliased():
    a, b = leaf(3), leaf(3)
    (a + b).sum().backward()
    a.grad._data[0] = 100.0         # a gradient shared between a and b would leak here
    assert b.grad.tolist() == [1.0, 1.0, 1.0]


def test_leaf_hook_called_once_per_backward_for_a_leaf_used_many_times():
    x = leaf(2)
    calls = []
    x.register_hook(lambda g: calls.append(g.numpy().copy()))
    (x * 2.0 + x * 3.0 + x).sum().backward()
    assert len(calls) == 1
    np.testing.assert_allclose(calls[0], np.full(2, 6.0))


def test_grad_of_expanded_leaf_is_summed_to_its_shape():
    x = leaf(3, 1)
    x.expand(3, 4).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full((3, 1), 4.0))


def test_backward_through_detached_branch_only_reaches_live_branch():
    x = leaf(3)
    y = (x.detach() * 5.0 + x * 2.0).sum()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(3, 2.0))


# ---- leaf gradients: a fresh gradient becomes .grad as it is, a shared one is copied ----------
class _FreshGrad(Function):
    """y = 2 x; backward returns a new array and records its id (not the array: a reference
    would make it shared)."""
    last_id = None

    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, dout):
        g = dout * 2
        _FreshGrad.last_id = id(g)
        return g


class _SameGradTwice(Function):
    """y = a + b; backward returns the very same dout array for both inputs."""

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, dout):
        return dout, dout


def test_fresh_leaf_gradient_is_kept_without_a_copy():
    x = tga.ones(3, 4, requires_grad=True)
    _FreshGrad.apply(x).sum().backward()
    assert id(x.grad._data) == _FreshGrad.last_id
    np.testing.assert_array_equal(x.grad.numpy(), np.full((3, 4), 2.0, np.float32))


def test_gradient_shared_by_two_leaves_is_copied_for_each():
    a, b = tga.zeros(5, requires_grad=True), tga.zeros(5, requires_grad=True)
    _SameGradTwice.apply(a, b).sum().backward()
    assert not np.shares_memory(a.grad.numpy(), b.grad.numpy())
    a.grad.numpy()[...] = 7.0                       # clipping / user edits stay per tensor
    np.testing.assert_array_equal(b.grad.numpy(), np.ones(5, np.float32))


def test_gradient_kept_by_a_hook_or_given_by_the_caller_is_copied():
    kept = []
    w = tga.ones(4, requires_grad=True)
    w.register_hook(lambda g: kept.append(g))
    (w * 3).sum().backward()
    assert not np.shares_memory(w.grad.numpy(), kept[0].numpy())
    v = tga.zeros(2, 3, requires_grad=True)
    given = tga.ones(2, 3)
    v.backward(given)                               # the root is the leaf itself
    assert not np.shares_memory(v.grad.numpy(), given.numpy())


def test_view_of_a_retained_gradient_is_copied():
    x = tga.ones(2, 6, requires_grad=True)
    y = x * 1.0
    y.retain_grad()
    y.reshape(3, 4).sum().backward()                # x's gradient is a view of y's
    assert not np.shares_memory(x.grad.numpy(), y.grad.numpy())


def test_large_pooled_gradients_stay_valid_when_kept():
    """Kernel outputs come from the buffer pool: a taken gradient keeps its buffer in use, so
    the pool never hands it out again while .grad lives."""
    x = tga.randn(300, 200, requires_grad=True)
    w = tga.randn(200, 150, requires_grad=True)
    (x @ w).sum().backward()
    want = w.grad.numpy().copy()
    for _ in range(3):                              # more kernel outputs of the same sizes
        (x.detach() @ w.detach()).sum()
        (x.detach() @ w.detach()).sum()
    np.testing.assert_array_equal(w.grad.numpy(), want)
    np.testing.assert_allclose(want, np.broadcast_to(x.detach().numpy().sum(0)[:, None], (200, 150)),
                               rtol=1e-5, atol=1e-4)


# ---- accumulating gradients in place (backend.accumulate) ------------------------------------

class _KeepGrad(tga.autograd.Function):
    """Identity whose backward also keeps the gradient it returns (as a hook might)."""
    kept = []

    @staticmethod
    def forward(ctx, a):
        return a + 0

    @staticmethod
    def backward(ctx, dout):
        g = dout * 1.0
        _KeepGrad.kept.append(g)
        return g


def test_gradients_meeting_at_a_tensor_are_summed_into_an_owned_buffer():
    """x feeds two branches: the second branch's gradient is added into the first's array in
    place (no new buffer) when nothing else refers to it."""
    be = tga.ones(1)._backend
    a = np.ones((200, 300), np.float32)
    b = np.full((200, 300), 2.0, np.float32)
    a_id = id(a)
    box = [a]
    del a
    out = be.accumulate(box, b)
    assert id(out) == a_id
    np.testing.assert_array_equal(out, 3.0)
    shared = np.ones(4, np.float32)
    out = be.accumulate([shared], np.ones(4, np.float32))     # the caller still holds it
    assert out is not shared
    np.testing.assert_array_equal(shared, 1.0)
    np.testing.assert_array_equal(out, 2.0)
    base = np.ones((2, 6), np.float32)
    view = base.reshape(3, 4)                                   # its base is referred to
    out = be.accumulate([view], np.ones((3, 4), np.float32))
    np.testing.assert_array_equal(base, 1.0)
    out = be.accumulate([np.ones((3, 1), np.float32)], np.ones((3, 4), np.float32))  # broadcast
    np.testing.assert_array_equal(out, np.full((3, 4), 2.0))


def test_in_place_accumulation_never_touches_a_kept_gradient():
    _KeepGrad.kept.clear()
    x = tga.randn(64, 70, requires_grad=True)
    h = x * 2.0
    h.retain_grad()
    y = _KeepGrad.apply(h) + _KeepGrad.apply(h) + h * 3.0      # three gradients meet at h
    y.sum().backward()
    np.testing.assert_array_equal(h.grad.numpy(), np.full((64, 70), 5.0, np.float32))
    for kept in _KeepGrad.kept:                                   # each branch's own: still 1
        np.testing.assert_array_equal(kept, np.ones((64, 70), np.float32))
    np.testing.assert_array_equal(x.grad.numpy(), np.full((64, 70), 10.0, np.float32))
