"""The basic layers (Linear, Embedding, LayerNorm, GELU, ReLU, Tanh, Dropout, Sequential):
parity with torch.nn (weights copied from torch's state_dict through numpy: same outputs and
gradients), float64 gradcheck, default initialisation statistics, errors."""
import math

import numpy as np
import pytest

import tinygradattn as tga
from tinygradattn import nn

from helpers import GRADCHECK, TOLS, assert_close, check_raises_like_torch

TORCH_REASON = "parity tests need PyTorch"

# (id, constructor taking a library's nn, input shape, input is token ids)
LAYERS = [
    ("linear", lambda lib: lib.Linear(5, 7), (3, 4, 5), False),
    ("linear_nobias", lambda lib: lib.Linear(5, 7, bias=False), (6, 5), False),
    ("linear_1d_input", lambda lib: lib.Linear(5, 3), (5,), False),
    ("embedding", lambda lib: lib.Embedding(11, 6), (3, 4), True),
    ("layernorm", lambda lib: lib.LayerNorm(6), (2, 3, 6), False),
    ("layernorm_2d_shape", lambda lib: lib.LayerNorm((3, 6), eps=1e-3), (2, 3, 6), False),
    ("layernorm_nobias", lambda lib: lib.LayerNorm(6, bias=False), (4, 6), False),
    ("layernorm_noaffine", lambda lib: lib.LayerNorm(6, elementwise_affine=False), (4, 6), False),
    ("gelu", lambda lib: lib.GELU(), (4, 9), False),
    ("gelu_tanh", lambda lib: lib.GELU(approximate="tanh"), (4, 9), False),
    ("relu", lambda lib: lib.ReLU(), (4, 9), False),
    ("tanh", lambda lib: lib.Tanh(), (4, 9), False),
    ("dropout_eval", lambda lib: lib.Dropout(0.3).eval(), (4, 9), False),
    ("sequential", lambda lib: lib.Sequential(lib.Linear(5, 8), lib.GELU(), lib.LayerNorm(8),
                                              lib.Dropout(0.2), lib.ReLU(), lib.Linear(8, 3))
     .eval(), (2, 3, 5), False),
    ("embedding_mlp", lambda lib: lib.Sequential(lib.Embedding(9, 4), lib.Linear(4, 4),
                                                 lib.Tanh()), (2, 5), True),
]
IDS = [layer[0] for layer in LAYERS]


def make_input(shape, is_ids, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if is_ids:
        return rng.integers(0, 9, size=shape)
    x = rng.standard_normal(shape) * 1.5
    return x.astype(dtype)


def copy_from_torch(ours, theirs):
    """Load torch's weights into ours through numpy (the way a checkpoint moves)."""
    result = ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    assert result.missing_keys == [] and result.unexpected_keys == []


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make,shape,is_ids", [layer[1:] for layer in LAYERS], ids=IDS)
def test_layer_matches_torch(make, shape, is_ids, dtype):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    theirs = make(torch.nn).to(getattr(torch, np.dtype(dtype).name))
    ours = make(nn).to(np.dtype(dtype).name)
    copy_from_torch(ours, theirs)
    x = make_input(shape, is_ids, dtype)
    upstream = None

    t_x = torch.from_numpy(x.copy()).requires_grad_(not is_ids)
    t_out = theirs(t_x)
    upstream = np.random.default_rng(1).standard_normal(tuple(t_out.shape)).astype(dtype)
    (t_out * torch.from_numpy(upstream)).sum().backward()

    o_x = tga.tensor(x, requires_grad=not is_ids)
    o_out = ours(o_x)
    (o_out * tga.tensor(upstream)).sum().backward()

    tol = TOLS[np.dtype(dtype).name]["composite"]
    assert o_out.dtype == np.dtype(dtype).name and tuple(o_out.shape) == tuple(t_out.shape)
    assert_close(o_out.detach().numpy(), t_out.detach().numpy(), tol, "output")
    if not is_ids:
        assert_close(o_x.grad.numpy(), t_x.grad.numpy(), tol, "grad of input")
    t_params = dict(theirs.named_parameters())
    assert [n for n, _ in ours.named_parameters()] == list(t_params)
    for name, p in ours.named_parameters():
        assert p.grad is not None and p.grad.dtype == p.dtype, name
        assert_close(p.grad.numpy(), t_params[name].grad.numpy(), tol, f"grad of {name}")


@pytest.mark.parametrize("make,shape,is_ids", [layer[1:] for layer in LAYERS if not layer[3]],
                         ids=[layer[0] for layer in LAYERS if not layer[3]])
def test_layer_gradcheck(make, shape, is_ids):
    """float64 central differences through the input and every parameter."""
    module = make(nn).double()
    x = tga.tensor(make_input(shape, False, np.float64), requires_grad=True)
    params = list(module.parameters())
    # gradcheck perturbs its inputs in place, so the parameters themselves are inputs here
    assert tga.autograd.gradcheck(lambda x, *ps: module(x), (x, *params), **GRADCHECK)


def test_embedding_gradient_accumulates_repeated_rows():
    emb = nn.Embedding(4, 3)
    idx = tga.tensor([[1, 1, 2], [1, 0, 1]])
    emb(idx).sum().backward()
    counts = np.array([1, 4, 1, 0])[:, None] * np.ones((1, 3))
    np.testing.assert_array_equal(emb.weight.grad.numpy(), counts)


# ---- initialisation -------------------------------------------------------------------------
def test_linear_init_like_torch():
    lin = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    w, b = lin.weight.detach().numpy(), lin.bias.detach().numpy()
    assert w.shape == (300, 400) and b.shape == (300,) and w.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.02 * bound         # U(-a, a): std a/sqrt3
    assert abs(w.mean()) < 0.01 * bound
    assert np.abs(w).max() > 0.99 * bound
    assert abs(b.std() - bound / math.sqrt(3)) < 0.15 * bound


def test_linear_init_statistics_match_torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    torch.manual_seed(0)
    t_w = torch.nn.Linear(128, 64).weight.detach().numpy()
    o_w = nn.Linear(128, 64).weight.detach().numpy()
    assert abs(o_w.std() - t_w.std()) < 0.05 * t_w.std()
    assert abs(np.abs(o_w).max() - np.abs(t_w).max()) < 0.01 / math.sqrt(128)


def test_embedding_init_standard_normal():
    w = nn.Embedding(1000, 64).weight.detach().numpy()
    assert abs(w.mean()) < 0.01 and abs(w.std() - 1.0) < 0.01


def test_layernorm_init_ones_zeros():
    ln = nn.LayerNorm((2, 5))
    assert np.all(ln.weight.detach().numpy() == 1) and np.all(ln.bias.detach().numpy() == 0)
    assert ln.weight.shape == (2, 5)
    assert nn.LayerNorm(4, elementwise_affine=False).weight is None
    assert list(nn.LayerNorm(4, bias=False).state_dict()) == ["weight"]


def test_init_draws_follow_the_seed():
    tga.manual_seed(5)
    a = nn.Linear(3, 4).weight.detach().numpy().copy()
    tga.manual_seed(5)
    b = nn.Linear(3, 4).weight.detach().numpy()
    np.testing.assert_array_equal(a, b)


def test_dtype_argument():
    lin = nn.Linear(3, 2, dtype=tga.float64)
    assert lin.weight.dtype == tga.float64 and lin.bias.dtype == tga.float64
    assert nn.Embedding(3, 2, dtype=tga.float64).weight.dtype == tga.float64
    assert nn.LayerNorm(3, dtype=tga.float64).weight.dtype == tga.float64
    empty = nn.Linear(0, 2)                          # zero fan-in: no division by zero
    assert empty.weight.shape == (2, 0)


# ---- dropout --------------------------------------------------------------------------------
def test_dropout_training_statistics():
    drop = nn.Dropout(0.25)
    x = tga.ones(200, 100, requires_grad=True)
    y = drop(x)
    kept = y.detach().numpy() != 0
    assert abs(kept.mean() - 0.75) < 0.02
    np.testing.assert_allclose(y.detach().numpy()[kept], 1 / 0.75, rtol=1e-6)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy() != 0, kept)     # same mask backwards
    assert np.all(nn.Dropout(1.0)(x).detach().numpy() == 0)
    assert np.array_equal(nn.Dropout(0.0)(x).detach().numpy(), x.detach().numpy())


def test_dropout_bad_probability():
    check_raises_like_torch(lambda t: t.nn.Dropout(1.5), lambda t: t.nn.Dropout(1.5),
                            ValueError, match="1.5")


# ---- errors ---------------------------------------------------------------------------------
def test_linear_shape_error():
    check_raises_like_torch(lambda t: t.nn.Linear(4, 2)(t.zeros(3, 5)),
                            lambda t: t.nn.Linear(4, 2)(t.zeros(3, 5)),
                            RuntimeError, match=r"\(3, 5\)")


def test_embedding_index_error():
    check_raises_like_torch(lambda t: t.nn.Embedding(4, 2)(t.tensor([1, 4])),
                            lambda t: t.nn.Embedding(4, 2)(t.tensor([1, 4])),
                            IndexError, match="out of range")


def test_layernorm_shape_error():
    check_raises_like_torch(lambda t: t.nn.LayerNorm(4)(t.zeros(3, 5)),
                            lambda t: t.nn.LayerNorm(4)(t.zeros(3, 5)),
                            RuntimeError, match=r"\(3, 5\)")


# ---- containers -----------------------------------------------------------------------------
def test_sequential_indexing_and_modulelist():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert isinstance(seq[-1], nn.Linear) and len(seq) == 3
    head = seq[1:]
    assert isinstance(head, nn.Sequential) and list(head.state_dict()) == ["2.weight", "2.bias"]
    seq.append(nn.Tanh())
    assert [n for n, _ in seq.named_children()] == ["0", "1", "2", "3"]
    ml = nn.ModuleList([nn.ReLU()]).extend([nn.Tanh(), nn.Tanh()])
    assert len(ml) == 3 and isinstance(ml[1:], nn.ModuleList)
    md = nn.ModuleDict({"a": nn.ReLU()})
    md["b"] = nn.Linear(1, 1)
    assert "b" in md and list(md.keys()) == ["a", "b"]
    assert [n for n, _ in md.named_parameters()] == ["b.weight", "b.bias"]
