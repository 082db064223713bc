"""The Tensor surface a torch user expects: creation and dtypes, attributes, conversion,
type promotion, comparisons, repr, seeding, threads."""
import numpy as np
import pytest

import tinygradattn as tga


# ---- creation and dtypes --------------------------------------------------------------------
@pytest.mark.parametrize("data,dtype", [
    ([1.0, 2.0], tga.float32), (1.5, tga.float32), ([[1, 2], [3, 4]], tga.int64), (3, tga.int64),
    ([True, False], tga.bool), (True, tga.bool), ([1, 2.5], tga.float32),
    (np.array([1.0], dtype=np.float64), tga.float64),
    (np.array([1.0], dtype=np.float32), tga.float32),
    (np.array([1, 2], dtype=np.int64), tga.int64), (np.array([True]), tga.bool),
    (np.float64(2.0), tga.float64),
])
def test_tensor_infers_dtype_like_torch(data, dtype):
    t = tga.tensor(data)
    assert t.dtype == dtype, f"{data!r}: got {t.dtype}, expected {dtype}"
    np.testing.assert_array_equal(t.numpy(), np.asarray(data))


def test_tensor_dtype_argument():
    assert tga.tensor([1, 2], dtype=tga.float64).dtype == tga.float64
    assert tga.tensor([1.7, 2.2], dtype=tga.int64).tolist() == [1, 2]
    assert tga.tensor([1.0], dtype="float64").dtype == tga.float64
    assert tga.tensor([1.0], dtype=np.float64).dtype == tga.float64


def test_tensor_copies_and_from_numpy_shares_memory():
    a = np.arange(4, dtype=np.float32)
    copied, shared = tga.tensor(a), tga.from_numpy(a)
    a[0] = 100.0
    assert copied.tolist()[0] == 0.0
    assert shared.tolist()[0] == 100.0
    assert shared.dtype == tga.float32


def test_from_numpy_keeps_dtype_and_rejects_non_arrays():
    assert tga.from_numpy(np.zeros(2, dtype=np.float64)).dtype == tga.float64
    with pytest.raises(TypeError):
        tga.from_numpy([1.0, 2.0])


def test_tensor_from_tensor_list_and_nested():
    t = tga.tensor([tga.tensor([1.0, 2.0]), tga.tensor([3.0, 4.0])])
    assert t.shape == (2, 2) and t.dtype == tga.float32


@pytest.mark.parametrize("fn", ["zeros", "ones", "empty", "rand", "randn"])
def test_factories_shape_and_default_dtype(fn):
    f = getattr(tga, fn)
    for t in (f(2, 3), f((2, 3)), f([2, 3])):
        assert t.shape == (2, 3) and t.dtype == tga.float32 and not t.requires_grad
    assert f(2, dtype=tga.float64).dtype == tga.float64
    assert f(2, requires_grad=True).requires_grad
    assert f().shape == () if fn != "empty" else True


def test_factory_values():
    assert tga.zeros(3).tolist() == [0.0, 0.0, 0.0]
    assert tga.ones(2, 2).tolist() == [[1.0, 1.0], [1.0, 1.0]]
    assert tga.zeros(0, 3).shape == (0, 3)


def test_full_dtypes_follow_the_fill_value():
    assert tga.full((2,), 1).dtype == tga.int64
    assert tga.full((2,), 1.5).dtype == tga.float32
    assert tga.full((2,), True).dtype == tga.bool
    assert tga.full((2, 2), 7.0).tolist() == [[7.0, 7.0], [7.0, 7.0]]
    assert tga.full((2,), 1, dtype=tga.float64).dtype == tga.float64


def test_arange():
    assert tga.arange(5).tolist() == [0, 1, 2, 3, 4] and tga.arange(5).dtype == tga.int64
    assert tga.arange(2, 8, 3).tolist() == [2, 5]
    t = tga.arange(0, 1, 0.25)
    assert t.dtype == tga.float32 and t.tolist() == [0.0, 0.25, 0.5, 0.75]
    assert tga.arange(3, dtype=tga.float64).dtype == tga.float64
    with pytest.raises(RuntimeError):
        tga.arange(0, 3, 0)


def test_random_factories_ranges_and_statistics():
    r = tga.rand(10000).numpy()
    assert r.min() >= 0.0 and r.max() < 1.0 and abs(r.mean() - 0.5) < 0.02
    n = tga.randn(10000).numpy()
    assert abs(n.mean()) < 0.05 and abs(n.std() - 1.0) < 0.05
    i = tga.randint(3, 7, (1000,))
    assert i.dtype == tga.int64 and i.shape == (1000,)
    assert set(np.unique(i.numpy())) == {3, 4, 5, 6}
    assert set(np.unique(tga.randint(2, (100,)).numpy())) == {0, 1}


def test_like_factories():
    x = tga.randn(2, 3, dtype=tga.float64)
    for fn in (tga.zeros_like, tga.ones_like, tga.empty_like, tga.rand_like, tga.randn_like):
        y = fn(x)
        assert y.shape == (2, 3) and y.dtype == tga.float64
    assert tga.zeros_like(x, dtype=tga.float32).dtype == tga.float32
    assert tga.full_like(x, 2.0).tolist() == [[2.0] * 3] * 2
    assert tga.zeros_like(tga.tensor([1, 2])).dtype == tga.int64


def test_manual_seed_reproducibility():
    tga.manual_seed(3)
    a = (tga.randn(5).numpy(), tga.rand(3).numpy(), tga.randint(0, 100, (4,)).numpy())
    tga.manual_seed(3)
    b = (tga.randn(5).numpy(), tga.rand(3).numpy(), tga.randint(0, 100, (4,)).numpy())
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    tga.manual_seed(4)
    assert not np.array_equal(tga.randn(5).numpy(), a[0])


def test_dtype_aliases_and_equality():
    assert tga.float is tga.float32 and tga.double is tga.float64 and tga.long is tga.int64
    x = tga.zeros(2)
    assert x.dtype == tga.float32 and x.dtype == "float32" and x.dtype == np.float32
    assert x.dtype != tga.float64
    assert repr(tga.float32) == "tinygradattn.float32"


# ---- attributes ---------------------------------------------------------------------------------
def test_attributes():
    x = tga.zeros(2, 3, 4)
    assert tuple(x.shape) == (2, 3, 4) and x.ndim == 3 and x.dim() == 3
    assert x.device == "cpu" and x.numel() == 24 and len(x) == 2
    assert x.size() == (2, 3, 4) and x.size(1) == 3 and x.size(-1) == 4
    assert tga.tensor(1.0).shape == () and tga.tensor(1.0).ndim == 0
    assert x.is_floating_point() and not tga.tensor([1]).is_floating_point()


def test_iteration_and_index_protocol():
    x = tga.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert [r.tolist() for r in x] == [[1.0, 2.0], [3.0, 4.0]]
    assert [10, 20, 30][tga.tensor(1)] == 20


# ---- conversion ----------------------------------------------------------------------------------
def test_numpy_item_tolist():
    x = tga.tensor([[1.5, 2.0]])
    arr = x.numpy()
    assert isinstance(arr, np.ndarray) and arr.dtype == np.float32
    assert x.tolist() == [[1.5, 2.0]]
    assert tga.tensor([2.5]).item() == 2.5 and isinstance(tga.tensor([2.5]).item(), float)
    assert isinstance(tga.tensor(3).item(), int)
    assert isinstance(tga.tensor(True).item(), bool)


def test_python_number_conversions():
    assert float(tga.tensor([[2.5]])) == 2.5
    assert int(tga.tensor(7.9)) == 7
    assert bool(tga.tensor([0.0])) is False and bool(tga.tensor(3)) is True


def test_to_and_casts():
    x = tga.tensor([1.5, -2.5])
    assert x.to(tga.float64).dtype == tga.float64
    assert x.to("cpu") is x
    assert x.to(dtype=tga.float64).dtype == tga.float64
    assert x.to("cpu", tga.float64).dtype == tga.float64
    assert x.double().dtype == tga.float64 and x.double().float().dtype == tga.float32
    assert x.float() is x
    assert x.long().tolist() == [1, -2]
    assert x.cpu() is x
    assert (x > 0).float().tolist() == [1.0, 0.0]


def test_cast_keeps_graph():
    x = tga.tensor([1.0, 2.0], requires_grad=True)
    y = x.double()
    assert y.requires_grad and y.dtype == tga.float64


# ---- dtype promotion (torch.result_type) ---------------------------------------------------------
PROMOTION = [
    ("int_tensor + 0.5", lambda L: L.tensor([1, 2]) + 0.5, "float32"),
    ("0.5 + int_tensor", lambda L: 0.5 + L.tensor([1, 2]), "float32"),
    ("int_tensor * 2", lambda L: L.tensor([1, 2]) * 2, "int64"),
    ("f32 + f64 tensor", lambda L: L.ones(2) + L.ones(2, dtype=L.float64), "float64"),
    ("f64 + f32 tensor", lambda L: L.ones(2, dtype=L.float64) + L.ones(2), "float64"),
    ("f32 + f64 0-d", lambda L: L.ones(2) + L.tensor(1.0, dtype=L.float64), "float32"),
    ("int / int", lambda L: L.tensor([1, 3]) / L.tensor([2, 2]), "float32"),
    ("int / 2", lambda L: L.tensor([1, 3]) / 2, "float32"),
    ("2 / int", lambda L: 2 / L.tensor([1, 4]), "float32"),
    ("int + f64 tensor", lambda L: L.tensor([1]) + L.ones(1, dtype=L.float64), "float64"),
    ("int + f32 0-d", lambda L: L.tensor([1, 2]) + L.tensor(0.5), "float32"),
    ("bool + int", lambda L: L.tensor([True]) + L.tensor([2]), "int64"),
    ("bool + 1", lambda L: L.tensor([True, False]) + 1, "int64"),
    ("f64 * 2.0", lambda L: L.ones(2, dtype=L.float64) * 2.0, "float64"),
    ("int ** 2", lambda L: L.tensor([2, 3]) ** 2, "int64"),
    ("int.exp()", lambda L: L.tensor([0, 1]).exp(), "float32"),
    ("int.sum()", lambda L: L.tensor([1, 2]).sum(), "int64"),
    ("bool.sum()", lambda L: L.tensor([True, True]).sum(), "int64"),
    ("where f32/f64", lambda L: L.where(L.tensor([True, False]), L.ones(2),
                                        L.zeros(2, dtype=L.float64)), "float64"),
    ("cat f32/f64", lambda L: L.cat([L.ones(2), L.ones(2, dtype=L.float64)]), "float64"),
    ("maximum int/float", lambda L: L.maximum(L.tensor([1, 5]), L.tensor([2.5, 0.5])),
     "float32"),
]


@pytest.mark.parametrize("fn,expected", [p[1:] for p in PROMOTION], ids=[p[0] for p in PROMOTION])
def test_dtype_promotion_like_torch(fn, expected):
    out = fn(tga)
    assert out.dtype == expected, f"got {out.dtype.name}, expected {expected}"
    try:
        import torch
    except ImportError:
        return
    ref = fn(torch)
    assert str(ref.dtype) == f"torch.{expected}", "the expectation itself disagrees with torch"
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-6)


def test_int_division_values():
    assert (tga.tensor([1, 3]) / tga.tensor([2, 2])).tolist() == [0.5, 1.5]


# ---- comparisons ---------------------------------------------------------------------------------
def test_comparisons_give_bool_without_grad():
    x = tga.tensor([1.0, -1.0, 2.0], requires_grad=True)
    for c in (x > 0, x >= 1.0, x < x * 2.0, x <= 0, x == 2.0, x != -1.0):
        assert c.dtype == tga.bool and not c.requires_grad and c.grad_fn is None
    assert (x > 0).tolist() == [True, False, True]
    assert (x == 2.0).tolist() == [False, False, True]


def test_comparison_broadcasts_and_promotes():
    out = tga.tensor([[1], [3]]) < tga.tensor([2.5, 0.5])
    assert out.tolist() == [[True, False], [False, False]]


def test_logical_ops_on_bool_tensors():
    a, b = tga.tensor([True, False, True]), tga.tensor([True, True, False])
    assert (a & b).tolist() == [True, False, False]
    assert (a | b).tolist() == [True, True, True]
    assert (~a).tolist() == [False, True, False]
    assert a.any().item() is True and a.all().item() is False


def test_ndarray_op_tensor_gives_tensor():
    out = np.ones(2, dtype=np.float32) * tga.tensor([2.0, 3.0])
    assert isinstance(out, tga.Tensor) and out.tolist() == [2.0, 3.0]


# ---- repr ----------------------------------------------------------------------------------------
def test_repr_is_readable():
    r = repr(tga.tensor([[1.0, 2.5], [3.0, 4.0]]))
    assert r.startswith("tensor(") and "2.5" in r and r.endswith(")")
    assert "requires_grad=True" in repr(tga.tensor([1.0], requires_grad=True))
    y = tga.tensor([1.0], requires_grad=True) * 2.0
    assert "grad_fn=<" in repr(y)
    assert "float64" in repr(tga.tensor([1.0], dtype=tga.float64))
    assert "float" not in repr(tga.tensor([1.0]))
    assert repr(tga.tensor(3)) == "tensor(3)"


# ---- setitem -------------------------------------------------------------------------------------
def test_setitem_on_plain_tensor_and_error_on_leaf_requiring_grad():
    x = tga.zeros(2, 3)
    x[0, 1] = 5.0
    x[1] = tga.tensor([1.0, 2.0, 3.0])
    assert x.tolist() == [[0.0, 5.0, 0.0], [1.0, 2.0, 3.0]]
    w = tga.zeros(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="in-place"):
        w[0] = 1.0
    with tga.no_grad():
        w[0] = 1.0
    assert w.tolist() == [1.0, 0.0]


# ---- in place, outside the graph: copy_, fill_, zero_, data; new_tensor, deepcopy ----------------
def test_copy_casts_broadcasts_and_takes_host_data():
    x = tga.zeros(2, 3)
    assert x.copy_(tga.tensor([1, 2, 3])) is x                        # int64 -> x's float32
    assert x.dtype == tga.float32 and x.tolist() == [[1.0, 2.0, 3.0]] * 2
    alias = x.detach()
    x.copy_(np.arange(6, dtype=np.float64).reshape(2, 3))              # a host array
    assert alias.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]        # written in place
    x.copy_([[1.5, 1.5, 1.5], [2.0, 2.0, 2.0]])
    assert x.tolist() == [[1.5] * 3, [2.0] * 3]
    with pytest.raises(RuntimeError, match=r"shapes \(2, 3\) and \(4,\)"):
        x.copy_(tga.zeros(4))                                          # does not broadcast
    with pytest.raises(RuntimeError, match="does not broadcast"):
        x.copy_(tga.zeros(5, 2, 3))


def test_fill_and_zero_in_place():
    x = tga.ones(2, 2, dtype=tga.float64)
    alias = x.detach()
    assert x.fill_(2.5) is x and alias.tolist() == [[2.5, 2.5], [2.5, 2.5]]
    x.fill_(tga.tensor(7.0))
    assert x.tolist() == [[7.0, 7.0], [7.0, 7.0]]
    assert x.zero_() is x and alias.tolist() == [[0.0, 0.0], [0.0, 0.0]]
    assert x.dtype == tga.float64


@pytest.mark.parametrize("write", [lambda w: w.copy_(tga.ones(2)), lambda w: w.fill_(1.0),
                                   lambda w: w.zero_()])
def test_in_place_writes_need_no_grad_on_a_tensor_requiring_grad(write):
    w = tga.zeros(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="in-place"):
        write(w)
    with tga.no_grad():
        write(w)
    assert w.requires_grad and w.is_leaf


def test_data_shares_storage_and_its_setter_rebinds_it():
    w = tga.tensor([1.0, 2.0], requires_grad=True)
    d = w.data
    assert not d.requires_grad and d.is_leaf
    d[0] = 5.0                                                         # torch: .data aliases
    assert w.tolist() == [5.0, 2.0]
    w.data = tga.tensor([[1.0, 2.0, 3.0]], dtype=tga.float64)
    assert w.shape == (1, 3) and w.dtype == tga.float64 and w.requires_grad
    with pytest.raises(TypeError):
        w.data = [1.0]


def test_new_tensor_takes_dtype_and_device_from_self():
    x = tga.zeros(1, dtype=tga.float64)
    y = x.new_tensor([1, 2])
    assert y.dtype == tga.float64 and y.device == x.device and y.tolist() == [1.0, 2.0]
    assert x.new_tensor([1, 2], dtype=tga.int64).dtype == tga.int64
    assert x.new_tensor([1.0], requires_grad=True).requires_grad


def test_deepcopy_copies_storage_and_keeps_the_class():
    import copy
    p = tga.nn.Parameter(tga.tensor([1.0, 2.0]))
    p.grad = tga.tensor([0.5, 0.5])
    q = copy.deepcopy(p)
    assert type(q) is tga.nn.Parameter and q.requires_grad and q.device == p.device
    assert q.tolist() == [1.0, 2.0] and q.grad.tolist() == [0.5, 0.5]
    with tga.no_grad():
        q.fill_(0.0)
    assert p.tolist() == [1.0, 2.0]                                    # its own storage
    with pytest.raises(RuntimeError, match="graph leaves"):
        copy.deepcopy(p * 2)


# ---- threads / backend info ----------------------------------------------------------------------
def test_backend_info_and_set_num_threads():
    info = tga.backend_info()
    assert {"openmp", "n_threads"} <= set(info)
    before = tga.get_num_threads()
    try:
        tga.set_num_threads(1)
        assert tga.backend_info()["n_threads"] == 1
        a = tga.randn(40, 30)
        one = (a @ a.T).numpy()
        tga.set_num_threads(2)
        np.testing.assert_allclose((a @ a.T).numpy(), one, rtol=1e-5, atol=1e-5)
    finally:
        tga.set_num_threads(None)
    assert tga.get_num_threads() == before
    with pytest.raises(ValueError):
        tga.set_num_threads(0)


def test_cuda_device_unavailable_raises_clearly():
    try:
        tga.zeros(1, device="cuda")
    except RuntimeError as e:
        assert "cuda" in str(e)
    with pytest.raises(RuntimeError, match="unknown device"):
        tga.zeros(1, device="tpu")
