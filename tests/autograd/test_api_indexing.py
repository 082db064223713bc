"""gather, scatter(_), scatter_add(_), index_select, index_fill(_), masked_fill_, nonzero,
roll, flip, t, repeat, mm, bmm: errors with torch's exception types and the value or shapes at
fault, in-place behaviour (the in-place rules of copy_), results on both devices. Values and
gradients against torch live in tests/op_table.py."""
import numpy as np
import pytest

import tinygradattn as tga

from helpers import check_raises_like_torch


def _idx(L, rows):
    return L.tensor(rows)


# (id, call(L), expected type, message regex); each call gets tinygradattn, then torch
CASES = [
    ("gather_index_too_large", lambda L: L.zeros(3, 4).gather(1, _idx(L, [[4]])),
     RuntimeError, r"index 4 is out of bounds for dimension 1 with size 4"),
    ("gather_negative_index", lambda L: L.zeros(3, 4).gather(1, _idx(L, [[-1]])),
     RuntimeError, r"index -1 is out of bounds for dimension 1 with size 4"),
    ("gather_float_index", lambda L: L.zeros(3, 4).gather(1, L.zeros(3, 1)), RuntimeError,
     r"int32/int64 for index"),
    ("gather_rank_mismatch", lambda L: L.zeros(3, 4).gather(1, _idx(L, [1])), RuntimeError,
     r"same number of dimensions"),
    ("gather_index_larger", lambda L: L.zeros(3, 4).gather(1, L.zeros(4, 1, dtype=L.long)),
     RuntimeError, r"\[4, 1\].*\[3, 4\].*dimension 1"),
    ("gather_bad_dim", lambda L: L.zeros(3, 4).gather(2, _idx(L, [[0]])), IndexError,
     r"Dimension out of range"),
    ("scatter_index_too_large", lambda L: L.zeros(3, 4).scatter(0, _idx(L, [[3]]), 1.0),
     RuntimeError, r"index 3 is out of bounds for dimension 0 with size 3"),
    ("scatter_dtype_mismatch",
     lambda L: L.zeros(3, 4).scatter(1, _idx(L, [[1]]), L.ones(1, 1, dtype=L.float64)),
     RuntimeError, r"self.dtype to be equal to src.dtype"),
    ("scatter_src_smaller", lambda L: L.zeros(3, 4).scatter(1, _idx(L, [[1, 2]]), L.ones(1, 1)),
     RuntimeError, r"\[1, 2\].*\[3, 4\].*src \[1, 1\]"),
    ("scatter_add_index_too_large",
     lambda L: L.zeros(3, 4).scatter_add(1, _idx(L, [[0, 7]]), L.ones(1, 2)), RuntimeError,
     r"index 7 is out of bounds for dimension 1"),
    ("index_select_2d_index", lambda L: L.zeros(3, 4).index_select(1, _idx(L, [[1]])),
     IndexError, r"vector"),
    ("index_select_out_of_range", lambda L: L.zeros(3, 4).index_select(1, _idx(L, [4])),
     RuntimeError, r"4"),
    ("index_select_negative", lambda L: L.zeros(3, 4).index_select(1, _idx(L, [-1])),
     RuntimeError, r"-1"),
    ("index_fill_out_of_range", lambda L: L.zeros(3, 4).index_fill(1, _idx(L, [4]), 1.0),
     IndexError, r"index 4 is out of bounds for axis 1 with size 4"),
    ("index_fill__out_of_range", lambda L: L.zeros(3, 4).index_fill_(0, _idx(L, [-4]), 1.0),
     IndexError, r"index -4 is out of bounds for axis 0 with size 3"),
    ("index_fill_vector_value",
     lambda L: L.zeros(3, 4).index_fill_(1, _idx(L, [0]), L.tensor([7.0])), RuntimeError,
     r"0-dimensional value tensor"),
    ("masked_fill__bad_mask_dtype", lambda L: L.zeros(3, 4).masked_fill_(L.zeros(3, 4), 1.0),
     RuntimeError, r"boolean"),
    ("roll_shifts_dims_mismatch", lambda L: L.zeros(3, 4).roll(1, (0, 1)), RuntimeError,
     r"shifts: 1, dims:2"),
    ("flip_repeated_dim", lambda L: L.zeros(3, 4).flip((0, 0)), RuntimeError,
     r"appears multiple times"),
    ("t_3d", lambda L: L.zeros(2, 3, 4).t(), RuntimeError, r"<= 2 dimensions.*3D"),
    ("repeat_too_few_sizes", lambda L: L.zeros(3, 4).repeat(2), RuntimeError,
     r"can not be smaller"),
    ("repeat_negative", lambda L: L.zeros(3, 4).repeat(-1, 1), RuntimeError,
     r"negative dimension -3: \[-3, 4\]"),
    ("mm_vector", lambda L: L.mm(L.zeros(3, 4), L.zeros(4)), RuntimeError,
     r"mat2 must be a matrix"),
    ("mm_batched", lambda L: L.mm(L.zeros(2, 3, 4), L.zeros(4, 2)), RuntimeError,
     r"must be a matrix"),
    ("mm_misaligned", lambda L: L.mm(L.zeros(3, 4), L.zeros(3, 3)), RuntimeError,
     r"\(3x4 and 3x3\)"),
    ("mm_dtypes", lambda L: L.mm(L.zeros(3, 4), L.zeros(4, 2, dtype=L.float64)), RuntimeError,
     r"same dtype"),
    ("cat_0d", lambda L: L.cat([L.ones(2), L.tensor(1.0)]), RuntimeError,
     r"zero-dimensional tensor \(at position 1\)"),
    ("bmm_2d", lambda L: L.bmm(L.zeros(3, 4), L.zeros(4, 2)), RuntimeError,
     r"batch1 must be a 3D tensor"),
    ("bmm_batch_mismatch", lambda L: L.bmm(L.zeros(2, 3, 4), L.zeros(3, 4, 5)), RuntimeError,
     r"\[2, 4\] but got: \[3, 4\]"),
]


@pytest.mark.parametrize("call,expected,match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_like_torch(call, expected, match):
    check_raises_like_torch(call, call, expected, match)


def test_scatter_reduce_multiply_is_refused():
    with pytest.raises(RuntimeError, match="multiply"):
        tga.zeros(3).scatter(0, tga.tensor([0]), tga.ones(1), reduce="multiply")


# ---- in place -------------------------------------------------------------------------------
# name -> call(L, x, device) with L tinygradattn or torch
INPLACE = {
    "scatter_": lambda L, x, d: x.scatter_(1, L.tensor([[1], [0]], device=d), 5.0),
    "scatter__src": lambda L, x, d: x.scatter_(1, L.tensor([[2, 0]], device=d),
                                               L.ones(1, 2, device=d)),
    "scatter_add_": lambda L, x, d: x.scatter_add_(1, L.tensor([[2, 2, 0]], device=d),
                                                   L.ones(1, 3, device=d)),
    "index_fill_": lambda L, x, d: x.index_fill_(1, L.tensor([0, -1], device=d), -1.0),
    "masked_fill_": lambda L, x, d: x.masked_fill_(L.tensor([True, False, True], device=d),
                                                   9.0),
}


@pytest.mark.parametrize("name", list(INPLACE))
def test_inplace_writes_self_and_views_and_returns_self(name, device):
    """The storage itself changes (a view of it sees the write), self comes back, and the
    values are torch's."""
    x = tga.arange(6.0, device=device).reshape(2, 3)
    alias = x[:]                                              # a view sharing x's storage
    assert INPLACE[name](tga, x, device) is x
    np.testing.assert_array_equal(alias.cpu().numpy(), x.cpu().numpy())
    torch = pytest.importorskip("torch")
    want = INPLACE[name](torch, torch.arange(6.0).reshape(2, 3), "cpu")
    np.testing.assert_array_equal(x.cpu().numpy(), want.numpy())


@pytest.mark.parametrize("name", list(INPLACE))
def test_inplace_on_leaf_requiring_grad_raises(name):
    x = tga.zeros(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        INPLACE[name](tga, x, "cpu")
    assert not x.detach().numpy().any()                 # nothing written
    with tga.no_grad():                                 # torch.nn.init's way: allowed
        INPLACE[name](tga, x, "cpu")
    assert x.detach().numpy().any()


# in place on a tensor without grad, an operand requiring grad: call(L, x, w)
JOINS = {
    "scatter_": lambda L, x, w: x.scatter_(0, L.tensor([1, 0]), (w * w)[:2]),
    "scatter_add_": lambda L, x, w: x.scatter_add_(0, L.tensor([1, 0, 1]), w * w),
    "masked_fill_": lambda L, x, w: x.masked_fill_(L.tensor([False, True]), w.sum()),
    "index_fill_": lambda L, x, w: x.index_fill_(0, L.tensor([1]), w[2] * 3.0),
}


@pytest.mark.parametrize("name", list(JOINS))
def test_inplace_with_an_operand_requiring_grad_joins_the_graph(name):
    """x (no grad) takes the values in place and becomes the op's output, as in torch: the
    gradient reaches the operand, and a view of x sees the values."""
    results = {}
    for L in (tga, pytest.importorskip("torch")):
        w = L.tensor([1.0, 2.0, 3.0], requires_grad=True)
        x = L.ones(2)
        view = x[:]
        assert JOINS[name](L, x, w) is x
        assert not x.is_leaf and x.requires_grad
        (x * L.tensor([10.0, 100.0])).sum().backward()
        results[L.__name__] = (w.grad.tolist(), view.tolist())
    assert results["tinygradattn"] == results["torch"]


def test_inplace_under_no_grad_stays_outside_the_graph():
    w = tga.tensor([1.0, 2.0], requires_grad=True)
    x = tga.zeros(2)
    with tga.no_grad():
        x.scatter_(0, tga.tensor([1, 0]), w)
        x.masked_fill_(tga.tensor([True, False]), w[0])
    assert x.is_leaf and not x.requires_grad and x.tolist() == [1.0, 1.0]


def test_inplace_does_not_touch_a_graph_built_before():
    """Out-of-place results own their storage: writing into one later leaves the gradient of
    what was computed from the input unchanged."""
    x = tga.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    y = x.scatter(1, tga.tensor([[0], [1]]), 0.0)         # a new tensor, x untouched
    z = x.gather(0, tga.tensor([[1, 0]]))
    (y.sum() + (z * z).sum()).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0.0, 1.0 + 2 * 2.0], [1.0 + 2 * 3.0, 0.0]])
    np.testing.assert_array_equal(x.detach().numpy(), [[1.0, 2.0], [3.0, 4.0]])


def test_flip_and_roll_return_copies():
    x = tga.arange(6.0).reshape(2, 3)
    for y in (x.flip(0), x.flip(), x.roll(3, 1), x.roll(0)):
        y.fill_(-1.0)
    np.testing.assert_array_equal(x.numpy(), np.arange(6.0).reshape(2, 3))


# ---- results on both devices (the op table covers values and gradients on float inputs) -----
def test_gather_scatter_int64_and_bool(device):
    x = tga.tensor([[1, 2, 3], [4, 5, 6]], device=device)
    i = tga.tensor([[2, 2], [0, 1]], device=device)
    assert x.gather(1, i).tolist() == [[3, 3], [4, 5]]
    assert x.scatter(1, i[:, :1], 0).tolist() == [[1, 2, 0], [0, 5, 6]]
    assert x.scatter_add(0, i[1:], x[:1, :2]).tolist() == [[2, 2, 3], [4, 7, 6]]
    m = tga.tensor([[True, False, True]], device=device)
    assert m.gather(1, tga.tensor([[1, 2]], device=device)).tolist() == [[False, True]]


def test_nonzero_shapes(device):
    x = tga.tensor([[0.0, 1.5, 0.0], [2.0, 0.0, -1.0]], device=device)
    nz = x.nonzero()
    assert nz.dtype == tga.int64 and nz.tolist() == [[0, 1], [1, 0], [1, 2]]
    rows, cols = x.nonzero(as_tuple=True)
    assert rows.tolist() == [0, 1, 1] and cols.tolist() == [1, 0, 2]
    assert tuple(tga.zeros(2, 3, device=device).nonzero().shape) == (0, 2)
    assert tuple(tga.tensor(3.0, device=device).nonzero().shape) == (1, 0)   # torch's 0-d rule
    assert tuple(tga.tensor(0.0, device=device).nonzero().shape) == (0, 0)
    (only,) = tga.tensor(3.0, device=device).nonzero(as_tuple=True)
    assert only.tolist() == [0]


def test_empty_and_zero_d(device):
    x = tga.ones(3, 0, device=device)
    assert tuple(x.gather(0, tga.zeros(2, 0, dtype=tga.int64, device=device)).shape) == (2, 0)
    assert tuple(x.index_select(1, tga.zeros(0, dtype=tga.int64, device=device)).shape) == (3, 0)
    s = tga.tensor(5.0, device=device)
    assert s.gather(0, tga.tensor(0, device=device)).item() == 5.0
    assert s.index_select(0, tga.tensor([0], device=device)).item() == 5.0
    assert tga.tensor(2.0, device=device).scatter(0, tga.tensor(0, device=device), 7.0).item() \
        == 7.0


@pytest.mark.usefixtures("cuda_device")
def test_cuda_out_of_range_raises_at_the_next_read():
    x = tga.zeros(3, 4, device="cuda")
    bad = tga.tensor([[0, 4]], device="cuda")
    for fn in (lambda: x.gather(1, bad), lambda: x.scatter(1, bad, 1.0),
               lambda: x.scatter_add(1, bad, tga.ones(1, 2, device="cuda")),
               lambda: x.index_select(1, tga.tensor([-1], device="cuda"))):
        y = fn()
        with pytest.raises(RuntimeError, match="out of bounds for dimension 1 with size 4"):
            y.tolist()
        assert x.tolist() == np.zeros((3, 4)).tolist()          # the word was cleared
    with pytest.raises(IndexError, match="out of bounds for axis 1 with size 4"):
        x.index_fill_(1, tga.tensor([4], device="cuda"), 1.0).tolist()


def test_index_on_another_device_raises(device):
    if device == "cpu":
        pytest.skip("needs a second device")
    x = tga.zeros(2, 2, device=device)
    with pytest.raises(RuntimeError, match="same device"):
        x.gather(0, tga.tensor([[0]]))
