"""The per-op fast paths of issue 19 give what the general paths give.

- Tensor's + - * / ** (tensor.py _arithmetic, then _binary): a float tensor with a
  same-dtype, same-shape tensor or a Python number skips promotion and broadcasting; when
  nothing is recorded and no instrument watches, the operator calls the backend primitive
  directly instead of Function.apply.
- CPUBackend.add / sub / mul: small operands straight to the ufunc, large ones pooled.
- grad mode: a class default read per thread; Context: class defaults; saved-array version
  owners built once per op; _shape_arg: plain ints first.
"""
import threading

import numpy as np
import pytest

import tinygradattn as tga
from tinygradattn.autograd import instruments
from tinygradattn.backend import get_backend
from tinygradattn.tensor_args import _shape_arg

OPS = {"add": (lambda a, b: a + b, np.add), "sub": (lambda a, b: a - b, np.subtract),
       "mul": (lambda a, b: a * b, np.multiply), "div": (lambda a, b: a / b, np.true_divide),
       "pow": (lambda a, b: a ** b, np.power)}
SHAPES = [(), (1,), (2, 2), (7, 13), (3, 5, 129)]          # 0-d, primes, past a tile size


def _arrays(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 2.0, shape).astype(dtype)         # positive: pow and div are tame
    b = rng.uniform(0.5, 2.0, shape).astype(dtype)
    return a, b


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unrecorded_tensor_op_tensor_equals_numpy(name, shape, dtype):
    op, ufunc = OPS[name]
    a, b = _arrays(shape, dtype)
    out = op(tga.tensor(a), tga.tensor(b))
    assert type(out) is tga.Tensor and out.grad_fn is None and not out.requires_grad
    assert out.numpy().dtype == dtype and out.shape == tuple(shape)
    np.testing.assert_array_equal(out.numpy(), ufunc(a, b))


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("scalar", [3.0, 2, 0.5])
def test_unrecorded_scalar_ops_both_ways_equal_numpy(name, scalar):
    op, ufunc = OPS[name]
    a, _ = _arrays((3, 4), np.float32)
    t = tga.tensor(a)
    np.testing.assert_array_equal(op(t, scalar).numpy(), ufunc(a, scalar))
    np.testing.assert_array_equal(op(scalar, t).numpy(), ufunc(scalar, a))
    assert op(t, scalar).numpy().dtype == np.float32


def test_fast_path_leaves_promotion_and_broadcasting_to_the_general_path():
    a32 = tga.tensor([[1.0, 2.0, 3.0]])
    a64 = tga.tensor([[1.0, 2.0, 3.0]], dtype=tga.float64)
    assert (a32 + a64).dtype == tga.float64                      # promoted
    assert (a32 + tga.tensor([1.0, 2.0, 3.0], dtype=tga.float64)).dtype == tga.float64
    i = tga.tensor([[1, 2, 3]])
    assert (i + 1).dtype == tga.int64 and (i + 0.5).dtype == tga.float32
    assert (i / 2).dtype == tga.float32                          # true division of ints
    np.testing.assert_array_equal((a32 + tga.ones(2, 1)).numpy(), [[2, 3, 4], [2, 3, 4]])
    with pytest.raises(RuntimeError, match="cannot be broadcast"):
        a32 + tga.ones(2)
    with pytest.raises(RuntimeError, match="bool"):
        tga.tensor([True]) - tga.tensor([False])
    assert (a32 + True).dtype == tga.float32                     # bool: not the int fast path


@pytest.mark.parametrize("name", sorted(OPS))
def test_recorded_ops_still_take_the_graph_and_match_no_grad(name):
    op, _ = OPS[name]
    a, b = _arrays((3, 5), np.float64)
    x, y = tga.tensor(a, requires_grad=True), tga.tensor(b, requires_grad=True)
    out = op(x, y)
    assert out.requires_grad and out.grad_fn is not None
    with tga.no_grad():
        plain = op(x, y)
    assert plain.grad_fn is None and not plain.requires_grad
    np.testing.assert_array_equal(out.detach().numpy(), plain.numpy())
    out.sum().backward()
    assert x.grad is not None and y.grad is not None
    assert tga.autograd.gradcheck(lambda p, q: op(p, q),
                                  (tga.tensor(a, requires_grad=True),
                                   tga.tensor(b, requires_grad=True)))


def test_one_operand_requiring_grad_records_either_side():
    x = tga.ones(2, 2, requires_grad=True)
    c = tga.ones(2, 2)
    for out in (x + c, c + x, x * 2.0, 2.0 * x, c - x):
        assert out.grad_fn is not None


def test_instruments_still_see_unrecorded_ops():
    seen = []

    def observer(event):
        seen.append(event.name)
    a, b = tga.ones(2, 2), tga.ones(2, 2)
    instruments.attach(observer)
    try:
        a + b
        a * 3.0
    finally:
        instruments.detach(observer)
    assert seen == ["Add", "Mul"]


def test_hooks_and_version_checks_still_run_on_recorded_binary_ops():
    x = tga.tensor([1.0, 2.0], requires_grad=True)
    calls = []
    y = x * x
    y.register_hook(lambda g: calls.append(g.tolist()))
    z = y + 1.0
    z.sum().backward()
    assert calls == [[1.0, 1.0]] and x.grad.tolist() == [2.0, 4.0]

    w = tga.tensor([1.0, 2.0], requires_grad=True)
    v = w * 1.0                          # a non-leaf input, saved by the Mul below
    out = v * v
    version = v._version[0]
    with tga.no_grad():
        v.add_(1.0)                      # the in-place write bumps the shared counter
    assert v._version[0] == version + 1
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


def test_saved_view_of_the_output_is_still_version_checked():
    # softmax saves its output (a view of it, dim moved back): a write into y before
    # backward must be caught through the storage test, not only identity
    x = tga.randn(3, 4, requires_grad=True)
    y = x.softmax(dim=0)
    with tga.no_grad():
        y.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


@pytest.mark.parametrize("prim,ufunc", [("add", np.add), ("sub", np.subtract),
                                        ("mul", np.multiply)])
@pytest.mark.parametrize("shape", [(), (2, 2), (129, 131), (300, 300)])  # below / above pool
def test_backend_binary_small_and_pooled_equal_the_ufunc(prim, ufunc, shape):
    be = get_backend("cpu")
    a, b = _arrays(shape, np.float32, seed=3)
    for x, y in ((a, b), (a, 2.5), (2.5, b), (a, b[..., :1] if b.ndim else b)):
        out = getattr(be, prim)(x, y)
        assert type(out) is np.ndarray                  # 0-d results too: in-place ops work
        np.testing.assert_array_equal(out, ufunc(x, y))


def test_grad_mode_is_per_thread_and_starts_enabled():
    seen = []
    with tga.no_grad():
        assert not tga.is_grad_enabled()
        t = threading.Thread(target=lambda: seen.append(tga.is_grad_enabled()))
        t.start()
        t.join()
    assert seen == [True] and tga.is_grad_enabled()


def test_shape_arg_takes_ints_numpy_ints_and_0d_tensors_and_refuses_bools():
    assert _shape_arg((2, 3)) == (2, 3)
    assert _shape_arg(((2, np.int64(3)),)) == (2, 3)
    assert _shape_arg((tga.tensor(4), 1)) == (4, 1)
    with pytest.raises(TypeError, match="sizes must be ints"):
        _shape_arg((2, True))
    with pytest.raises(TypeError, match="sizes must be ints"):
        _shape_arg((2.0,))


def test_context_release_keeps_its_defaults_and_drops_forward_attributes():
    x = tga.randn(2, 3, requires_grad=True)
    y = x.reshape(3, 2)                  # Reshape's forward sets ctx.shape
    ctx = y._ctx
    assert ctx.shape == (2, 3) and ctx.inputs[0] is x
    y.sum().backward()
    assert ctx.is_freed and ctx.saved == () and not hasattr(ctx, "shape")
    assert ctx.output_backend is None and ctx.inputs[0] is x


def test_dtype_lookup_by_identity_agrees_with_the_general_lookup():
    from tinygradattn import dtypes
    for np_type, want in ((np.float32, tga.float32), (np.float64, tga.float64),
                          (np.int64, tga.int64), (np.bool_, tga.bool)):
        assert dtypes.from_numpy_dtype(np.dtype(np_type)) is want     # the builtin object
        assert dtypes.from_numpy_dtype(np_type) is want                # a type, not a dtype
        assert dtypes.from_numpy_dtype(np.dtype(np_type).name) is want
    assert tga.tensor(np.arange(3, dtype=np.int32)).dtype is tga.int64     # widened on copy
    with pytest.raises(TypeError, match="unsupported dtype"):
        dtypes.from_numpy_dtype(np.dtype(np.float16))


@pytest.mark.parametrize("shape", [(2, 3, 5), (1, 7), (4,)])
def test_transpose_equals_permute_and_its_gradient_flows(shape):
    x = tga.randn(*shape, requires_grad=True)
    n = len(shape)
    for d0 in range(-n, n):
        for d1 in range(-n, n):
            axes = list(range(n))
            axes[d0 % n], axes[d1 % n] = axes[d1 % n], axes[d0 % n]
            out = x.transpose(d0, d1)
            np.testing.assert_array_equal(out.detach().numpy(), x.detach().numpy().transpose(axes))
            assert (out is x) == (d0 % n == d1 % n)
    x.transpose(0, -1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones(shape, np.float32))
    with pytest.raises(IndexError, match="Dimension out of range"):
        x.transpose(0, n)


def test_transpose_of_a_0d_tensor_is_itself_as_in_torch():
    s = tga.tensor(3.0)
    assert s.transpose(0, -1) is s
