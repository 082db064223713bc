"""sin ... norm beyond the op table (tests/op_table.py has their torch parity and gradcheck):
dtype rules, NaN and inf, zero gradients, the free functions' argument forms, and errors with
torch's exception types."""
import math

import numpy as np
import pytest

import tinygradattn as tga

from helpers import TOLS, assert_close

torch = pytest.importorskip("torch")

F32 = TOLS["float32"]["elementwise"]


def _both(values, dtype=np.float32):
    a = np.asarray(values, dtype=dtype)
    return tga.tensor(a), torch.tensor(a)


def _same(ours, theirs, what):
    assert ours.dtype.name == str(theirs.dtype).replace("torch.", ""), (
        f"{what}: dtype {ours.dtype.name}, torch {theirs.dtype}")
    assert tuple(ours.shape) == tuple(theirs.shape), what
    if theirs.dtype.is_floating_point:
        assert_close(ours.detach().numpy(), theirs.detach().numpy(), F32, what)
    else:
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=what)


SPECIAL = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999997, -0.0, 0.0, 1e30, -1e30, 2.0 ** 23 + 1,
           float("inf"), float("-inf"), float("nan"), 8388607.5, -3.7]


@pytest.mark.parametrize("name", ["floor", "ceil", "round", "sign", "sin", "cos", "rsqrt",
                                  "isnan", "isinf", "isfinite"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_special_values_match_torch(name, dtype):
    ours, theirs = _both(SPECIAL, dtype)
    if name in ("sin", "cos"):        # torch and numpy differ by an ulp at 1e30: compare apart
        ours, theirs = ours[:9], theirs[:9]
    _same(getattr(tga, name)(ours), getattr(torch, name)(theirs), f"{name} {dtype.__name__}")


@pytest.mark.parametrize("name", ["floor", "ceil", "round", "sign", "sin", "cos", "rsqrt",
                                  "isnan", "isinf", "isfinite", "cumsum", "prod"])
@pytest.mark.parametrize("dtype", [np.int64, np.bool_])
def test_integer_and_bool_inputs_give_torch_dtypes(name, dtype):
    ours, theirs = _both([[3, 0, -2], [1, 4, 9]] if dtype == np.int64 else
                         [[True, False, True], [True, True, False]], dtype)
    args = (1,) if name == "cumsum" else ()
    try:
        want = getattr(torch, name)(theirs, *args)
    except NotImplementedError:          # torch: floor / ceil / round of bool
        with pytest.raises(NotImplementedError, match="Bool"):
            getattr(tga, name)(ours, *args)
        return
    _same(getattr(tga, name)(ours, *args), want, f"{name} {np.dtype(dtype).name}")


def test_floor_of_integers_is_a_copy():
    x = tga.tensor([1, 2, 3])
    y = x.floor()
    y[0] = 7
    assert x.tolist() == [1, 2, 3]


@pytest.mark.parametrize("name", ["floor", "ceil", "round", "sign"])
def test_stepwise_ops_have_zero_gradients(name):
    x = tga.tensor([[0.3, -1.7, 2.5], [0.0, 4.0, -0.5]], requires_grad=True)
    y = getattr(x, name)()
    assert y.requires_grad
    (y * 3.0).sum().backward()
    assert x.grad.tolist() == [[0.0] * 3] * 2


def test_round_decimals_matches_torch():
    values = np.random.default_rng(3).standard_normal(50).astype(np.float32) * 1000
    ours, theirs = _both(values)
    for d in (-3, -1, 0, 1, 2, 4):
        _same(ours.round(decimals=d), theirs.round(decimals=d), f"round decimals={d}")
        _same(tga.round(ours, decimals=d), torch.round(theirs, decimals=d), f"tga.round {d}")


def test_round_decimals_is_keyword_only():
    with pytest.raises(TypeError):
        tga.tensor([1.25]).round(1)
    with pytest.raises(TypeError, match="decimals"):
        tga.tensor([1.25]).round(decimals=1.5)


def test_rsqrt_edges_and_gradient():
    x = tga.tensor([4.0, 0.0, -1.0])
    assert x.rsqrt().tolist()[:2] == [0.5, math.inf] and math.isnan(x.rsqrt()[2].item())
    x = tga.tensor([0.25, 4.0], requires_grad=True)
    x.rsqrt().sum().backward()
    assert np.allclose(x.grad.numpy(), [-0.5 * 0.25 ** -1.5, -0.5 * 4.0 ** -1.5])


# ---- pow as a free function ---------------------------------------------------------------------
def test_pow_forms():
    a = tga.tensor([1.0, 2.0, 3.0])
    assert tga.pow(a, 2).tolist() == [1.0, 4.0, 9.0]
    assert tga.pow(2, a).tolist() == [2.0, 4.0, 8.0]
    assert tga.pow(a, a).tolist() == [1.0, 4.0, 27.0]
    i = tga.tensor([1, 2, 3])
    assert tga.pow(2, i).dtype == tga.int64 and tga.pow(2, i).tolist() == [2, 4, 8]
    assert tga.pow(i, 0.5).dtype == tga.float32
    with pytest.raises(TypeError, match="pow"):
        tga.pow(2, 3)
    with pytest.raises(TypeError, match="pow"):
        tga.pow([1.0], a)


def test_pow_shapes_must_broadcast():
    with pytest.raises(RuntimeError, match=r"\(3,\).*\(2,\)"):
        tga.pow(tga.ones(3), tga.ones(2))


# ---- max / min / all / any as free functions ---------------------------------------------------
def test_max_min_free_function_forms():
    x = tga.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]])
    assert tga.max(x).item() == 7.0 and tga.min(x).item() == 0.0
    r = tga.max(x, 1)
    assert r.values.tolist() == [5.0, 7.0] and r.indices.tolist() == [1, 0]
    r = tga.min(x, dim=0, keepdim=True)
    assert r.values.tolist() == [[1.0, 0.0, 2.0]] and r.indices.tolist() == [[0, 1, 0]]
    values, indices = tga.max(x, -1, True)
    assert values.shape == (2, 1) and indices.shape == (2, 1)
    assert tga.max(x, tga.full((3,), 4.0)).tolist() == [[4.0, 5.0, 4.0], [7.0, 4.0, 4.0]]
    assert tga.min(x, tga.full((3,), 4.0)).tolist() == [[1.0, 4.0, 2.0], [4.0, 0.0, 3.0]]
    with pytest.raises(RuntimeError, match="numel"):
        tga.max(tga.ones(0, 3))
    with pytest.raises(IndexError):
        tga.max(x, 2)
    with pytest.raises(TypeError, match="Tensor"):
        tga.max([1, 2])


def test_all_any_dims_and_empty():
    m = np.array([[True, False, True], [True, True, True]])
    ours, theirs = _both(m, np.bool_)
    for args in [(), (0,), (1,), (-1,), ((0, 1),)]:
        for keep in (False, True):
            kw = {"keepdim": keep} if args else {}
            _same(tga.all(ours, *args, **kw), torch.all(theirs, *args, **kw), f"all{args}")
            _same(tga.any(ours, *args, **kw), torch.any(theirs, *args, **kw), f"any{args}")
    empty = tga.zeros(0, 2)
    assert tga.all(empty).item() is True and tga.any(empty).item() is False
    assert tga.any(empty, 0).tolist() == [False, False]


# ---- cumsum ------------------------------------------------------------------------------------
def test_cumsum_errors_and_dtype_keyword():
    x = tga.ones(2, 3)
    with pytest.raises(IndexError, match="range"):
        x.cumsum(2)
    with pytest.raises(TypeError):
        x.cumsum()
    with pytest.raises(TypeError):
        x.cumsum(0, tga.float64)                      # dtype is keyword-only, as in torch
    assert x.cumsum(1, dtype=tga.float64).dtype == tga.float64
    assert tga.tensor([1, 2]).cumsum(0, dtype=tga.float32).dtype == tga.float32


def test_cumsum_long_rows_match_torch():
    values = np.random.default_rng(0).standard_normal((3, 301)).astype(np.float32)
    ours, theirs = _both(values)
    assert_close(ours.cumsum(1).numpy(), theirs.cumsum(1).numpy(), TOLS["float32"]["reduction"],
                 "cumsum (3, 301)")


# ---- prod --------------------------------------------------------------------------------------
def test_prod_gradient_with_zeros_matches_torch():
    rng = np.random.default_rng(5)
    values = rng.standard_normal((4, 5, 3))
    values[rng.random(values.shape) < 0.3] = 0.0               # zeros: none, one, several
    for dim in (None, 0, 1, 2):
        ours = tga.tensor(values, requires_grad=True)
        theirs = torch.tensor(values, requires_grad=True)
        up = rng.standard_normal(() if dim is None else
                                 tuple(n for i, n in enumerate(values.shape) if i != dim))
        (ours.prod() if dim is None else ours.prod(dim)).backward(tga.tensor(up))
        (theirs.prod() if dim is None else theirs.prod(dim)).backward(torch.tensor(up))
        assert_close(ours.grad.numpy(), theirs.grad.numpy(), TOLS["float64"]["reduction"],
                     f"prod grad dim={dim}")


def test_prod_errors():
    x = tga.ones(2, 3)
    with pytest.raises(TypeError, match="dim"):
        x.prod((0, 1))
    with pytest.raises(IndexError, match="range"):
        x.prod(2)
    assert x.prod(dtype=tga.float64).dtype == tga.float64


# ---- norm --------------------------------------------------------------------------------------
@pytest.mark.parametrize("p", ["fro", None, 2, 1, 3, 0.5, 0, math.inf, -math.inf, -1])
@pytest.mark.parametrize("dim", [None, 1, (0, 1)])
def test_norm_forms_match_torch(p, dim):
    values = np.random.default_rng(2).standard_normal((3, 4, 2)).astype(np.float32)
    values[0, 0, 0] = 0.0
    ours, theirs = _both(values)
    for keep in (False, True):
        _same(ours.norm(p, dim, keep), theirs.norm(p, dim, keep), f"norm p={p} dim={dim}")
        _same(tga.norm(ours, p=p, dim=dim, keepdim=keep),
              torch.norm(theirs, p=p, dim=dim, keepdim=keep), f"tga.norm p={p} dim={dim}")


@pytest.mark.parametrize("p", [2, 1, 3, 0.5, math.inf])
def test_norm_gradient_of_an_all_zero_input_is_zero(p):
    x = tga.zeros(2, 3, requires_grad=True)
    x.norm(p).backward()
    assert x.grad.tolist() == [[0.0] * 3] * 2


def test_norm_errors():
    with pytest.raises(RuntimeError, match="floating point"):
        tga.tensor([1, 2]).norm()
    with pytest.raises(RuntimeError, match="empty"):
        tga.zeros(0, 3).norm(p=math.inf)
    with pytest.raises(NotImplementedError, match="nuc"):
        tga.ones(2, 2).norm("nuc")
    with pytest.raises(RuntimeError, match="fro"):
        tga.ones(2, 2, 2).norm("fro", dim=(0, 1, 2))
    assert tga.zeros(0, 3).norm(p=math.inf, dim=1).shape == (0,)
    assert tga.zeros(0, 3).norm().item() == 0.0
    assert tga.ones(2, 2).norm(dtype=tga.float64).dtype == tga.float64


def test_linalg_vector_norm():
    values = np.random.default_rng(4).standard_normal((3, 5)).astype(np.float32)
    ours, theirs = _both(values)
    for ord in (2, 1, 0, 3.5, math.inf, -math.inf):
        for dim in (None, 0, (0, 1)):
            _same(tga.linalg.vector_norm(ours, ord, dim),
                  torch.linalg.vector_norm(theirs, ord, dim), f"vector_norm ord={ord} dim={dim}")
    _same(tga.linalg.vector_norm(ours, dim=1, keepdim=True, dtype=tga.float64),
          torch.linalg.vector_norm(theirs, dim=1, keepdim=True, dtype=torch.float64), "dtype")
    with pytest.raises(TypeError, match="Tensor"):
        tga.linalg.vector_norm([1.0, 2.0])
    with pytest.raises(TypeError, match="order"):
        tga.linalg.vector_norm(ours, "fro")
    with pytest.raises(RuntimeError, match="floating point"):
        tga.linalg.vector_norm(tga.tensor([1, 2]))
