"""nn.Module and nn.Parameter: registration, traversal names (as torch's), state_dict /
load_state_dict, train/eval, zero_grad, to(dtype), repr, tied parameters, buffers."""
from collections import OrderedDict

import numpy as np
import pytest

import tinygradattn as tga
from tinygradattn import nn

TORCH_REASON = "parity tests need PyTorch"


# ---- one nested model, built in either library ----------------------------------------------
def build(lib):
    """The same architecture from tinygradattn.nn or torch.nn (same attribute names)."""

    class Inner(lib.Module):
        def __init__(self):
            super().__init__()
            self.proj = lib.Linear(4, 6)
            self.norm = lib.LayerNorm(6)
            self.act = lib.GELU()

        def forward(self, x):
            return self.act(self.norm(self.proj(x)))

    class Outer(lib.Module):
        def __init__(self):
            super().__init__()
            self.emb = lib.Embedding(10, 4)
            self.blocks = lib.ModuleList([Inner(), Inner()])
            self.heads = lib.ModuleDict({"a": lib.Linear(6, 3), "b": lib.Linear(6, 2, bias=False)})
            self.mlp = lib.Sequential(lib.Linear(6, 5), lib.ReLU(), lib.Dropout(0.1),
                                      lib.Sequential(lib.Linear(5, 5), lib.Tanh()))

    return Outer()


@pytest.fixture
def ours():
    return build(nn)


def test_traversal_names_match_torch(ours):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    theirs = build(torch.nn)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    assert [type(m).__name__ for m in ours.modules()] == \
        [type(m).__name__ for m in theirs.modules()]
    assert [type(m).__name__ for m in ours.children()] == \
        [type(m).__name__ for m in theirs.children()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [tuple(p.shape) for p in ours.parameters()] == \
        [tuple(p.shape) for p in theirs.parameters()]
    assert [n for n, _ in ours.named_parameters(prefix="m")] == \
        [n for n, _ in theirs.named_parameters(prefix="m")]
    assert [n for n, _ in ours.blocks[1].named_parameters(recurse=False)] == []


def test_traversal_names_without_torch(ours):
    names = [n for n, _ in ours.named_parameters()]
    assert names[:4] == ["emb.weight", "blocks.0.proj.weight", "blocks.0.proj.bias",
                         "blocks.0.norm.weight"]
    assert "heads.b.bias" not in names and "mlp.3.0.weight" in names
    assert [n for n, _ in ours.named_modules()][:4] == ["", "emb", "blocks", "blocks.0"]
    assert ours.mlp[3][0] is dict(ours.named_modules())["mlp.3.0"]


def test_state_dict_moves_both_ways_through_numpy(ours):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    theirs = build(torch.nn)
    result = ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    assert result.missing_keys == [] and result.unexpected_keys == []
    for k, v in ours.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), theirs.state_dict()[k].numpy())
    # and back: torch loads ours through numpy
    state = {k: torch.from_numpy(v.numpy().copy()) for k, v in build(nn).state_dict().items()}
    theirs.load_state_dict(state)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    np.testing.assert_array_equal(ours.emb.weight.detach().numpy(), state["emb.weight"].numpy())


def test_state_dict_shares_memory_and_load_copies_in_place(ours):
    sd = ours.state_dict()
    assert not sd["emb.weight"].requires_grad
    weight = ours.emb.weight
    new = {k: np.full(tuple(v.shape), 0.5, dtype=np.float64) for k, v in sd.items()}
    ours.load_state_dict(new)
    assert ours.emb.weight is weight                        # same Parameter, new values
    assert ours.emb.weight.dtype == tga.float32             # cast to the parameter's dtype
    assert float(sd["emb.weight"][0, 0]) == 0.5             # the state_dict view saw it
    ours.load_state_dict(build(nn).state_dict())            # Tensors work as values too


def test_load_state_dict_strict_errors_name_every_key(ours):
    sd = OrderedDict((k, v.numpy()) for k, v in ours.state_dict().items())
    del sd["blocks.1.norm.bias"]
    sd["blocks.1.extra"] = np.zeros(3, np.float32)
    with pytest.raises(RuntimeError) as err:
        ours.load_state_dict(sd)
    msg = str(err.value)
    assert "Unexpected key(s)" in msg and "'blocks.1.extra'" in msg
    assert "Missing key(s)" in msg and "'blocks.1.norm.bias'" in msg
    result = ours.load_state_dict(sd, strict=False)
    assert result == (["blocks.1.norm.bias"], ["blocks.1.extra"])
    assert result.missing_keys == ["blocks.1.norm.bias"]
    assert result.unexpected_keys == ["blocks.1.extra"]


def test_load_state_dict_shape_mismatch_names_key_and_shapes(ours):
    sd = {k: v.numpy() for k, v in ours.state_dict().items()}
    sd["heads.a.weight"] = np.zeros((2, 6), np.float32)
    for strict in (True, False):                            # a mismatch raises either way
        with pytest.raises(RuntimeError, match=r"heads\.a\.weight.*\(2, 6\).*\(3, 6\)"):
            ours.load_state_dict(sd, strict=strict)


def test_load_state_dict_error_text_like_torch(ours):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    theirs = build(torch.nn)
    sd = {k: v.numpy() for k, v in ours.state_dict().items()}
    del sd["emb.weight"]
    with pytest.raises(RuntimeError) as ours_err:
        ours.load_state_dict(sd)
    with pytest.raises(RuntimeError) as torch_err:
        theirs.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    assert "Missing key(s) in state_dict: \"emb.weight\"" in str(torch_err.value)
    assert "Missing key(s) in state_dict: 'emb.weight'" in str(ours_err.value)


def test_train_eval_propagate(ours):
    assert all(m.training for m in ours.modules())
    assert ours.eval() is ours
    assert not any(m.training for m in ours.modules())
    ours.blocks.train()
    assert ours.blocks[0].norm.training and not ours.mlp[2].training and not ours.training
    ours.train()
    assert all(m.training for m in ours.modules())
    with pytest.raises(ValueError, match="boolean"):
        ours.train("no")


def test_dropout_follows_mode(ours):
    x = tga.randn(64, 6)
    drop = ours.mlp[2]
    ours.eval()
    assert np.array_equal(drop(x).numpy(), x.numpy())
    ours.train()
    assert not np.array_equal(drop(x).numpy(), x.numpy())


def test_zero_grad(ours):
    x = tga.randn(3, 6)
    ours.heads["a"](x).sum().backward()
    w = ours.heads["a"].weight
    assert w.grad is not None
    grad = w.grad
    ours.zero_grad(set_to_none=False)
    assert w.grad is grad and np.all(grad.numpy() == 0)          # zeroed in place
    ours.zero_grad()
    assert w.grad is None and all(p.grad is None for p in ours.parameters())


@pytest.mark.parametrize("dtype", [tga.float64, "float64"])
def test_to_dtype_keeps_parameter_objects_and_int_buffers(ours, dtype):
    ours.register_buffer("steps", tga.tensor([1, 2, 3]))
    ours.register_buffer("scale", tga.ones(2))
    params = list(ours.parameters())
    before = ours.emb.weight.detach().numpy().copy()
    assert ours.to(dtype) is ours
    assert [id(p) for p in ours.parameters()] == [id(p) for p in params]
    assert all(p.dtype == tga.float64 and p.requires_grad for p in ours.parameters())
    assert ours.steps.dtype == tga.int64 and ours.scale.dtype == tga.float64
    np.testing.assert_array_equal(ours.emb.weight.detach().numpy(), before)
    out = ours.blocks[0](tga.randn(2, 4, dtype=tga.float64))
    assert out.dtype == tga.float64
    ours.float()
    assert all(p.dtype == tga.float32 for p in ours.parameters())
    with pytest.raises(TypeError, match="floating point"):
        ours.to(tga.int64)


def test_repr_matches_torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)

    def make(lib):
        return lib.Sequential(lib.Linear(3, 4), lib.ReLU(), lib.GELU(), lib.LayerNorm(4),
                              lib.Sequential(lib.Embedding(5, 4), lib.Linear(4, 2, bias=False)),
                              lib.Dropout(0.25))
    assert repr(make(nn)) == repr(make(torch.nn))


def test_repr_without_torch():
    model = nn.Sequential(nn.Linear(3, 4), nn.Sequential(nn.ReLU()))
    assert repr(model) == ("Sequential(\n  (0): Linear(in_features=3, out_features=4, "
                           "bias=True)\n  (1): Sequential(\n    (0): ReLU()\n  )\n)")
    assert repr(nn.Parameter(tga.zeros(2))).startswith("Parameter containing:\n")


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(7, 3)
        self.head = nn.Linear(3, 7, bias=False)
        self.head.weight = self.emb.weight


def test_tied_parameters_counted_once_and_saved_under_both_names():
    model = Tied()
    assert [n for n, _ in model.named_parameters()] == ["emb.weight"]
    assert sum(p.numel() for p in model.parameters()) == 21
    assert [n for n, _ in model.named_parameters(remove_duplicate=False)] == \
        ["emb.weight", "head.weight"]
    assert list(model.state_dict()) == ["emb.weight", "head.weight"]
    model.load_state_dict({"emb.weight": np.ones((7, 3)), "head.weight": np.ones((7, 3))})
    model.double()
    assert model.head.weight is model.emb.weight and model.emb.weight.dtype == tga.float64
    # the gradient of a tied weight sums both uses
    idx = tga.tensor([1, 2])
    model.head(model.emb(idx)).sum().backward()
    assert model.emb.weight.grad is model.head.weight.grad


def test_tied_parameters_like_torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)

    class TorchTied(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(7, 3)
            self.head = torch.nn.Linear(3, 7, bias=False)
            self.head.weight = self.emb.weight

    theirs, ours = TorchTied(), Tied()
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_buffers_persistent_and_not():
    m = nn.Linear(2, 2)
    m.register_buffer("running", tga.zeros(2))
    m.register_buffer("cache", tga.ones(3), persistent=False)
    m.register_buffer("empty", None)
    assert [n for n, _ in m.named_buffers()] == ["running", "cache"]
    assert list(m.state_dict()) == ["weight", "bias", "running"]
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias"]
    m.running = tga.full((2,), 3.0)                 # assigning a Tensor keeps it a buffer
    assert float(m.state_dict()["running"][0]) == 3.0
    m.register_buffer("cache", tga.ones(3))         # re-registered as persistent
    assert "cache" in m.state_dict()
    m.load_state_dict({k: v.numpy() * 0 for k, v in m.state_dict().items()})
    assert float(m.running[1]) == 0.0
    outer = nn.Sequential(m)
    assert [n for n, _ in outer.named_buffers()] == ["0.running", "0.cache"]


def test_buffers_like_torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    results = []
    for lib, make in ((nn, tga.zeros), (torch.nn, torch.zeros)):
        m = lib.Sequential(lib.Linear(2, 2))
        m[0].register_buffer("a", make(2))
        m[0].register_buffer("b", make(2), persistent=False)
        results.append(([n for n, _ in m.named_buffers()], list(m.state_dict())))
    assert results[0] == results[1]


def test_registration_rules():
    m = nn.Linear(2, 3)
    with pytest.raises(TypeError, match="parameter 'weight'"):
        m.weight = tga.zeros(3, 2)                  # a plain Tensor is not a Parameter
    m.weight = nn.Parameter(tga.zeros(3, 2))
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias"]
    m.bias = None
    assert [n for n, _ in m.named_parameters()] == ["weight"] and m.bias is None
    m.extra = 5                                     # plain attributes stay plain
    assert m.extra == 5 and "extra" not in m.state_dict()
    del m.weight
    assert list(m.state_dict()) == []
    with pytest.raises(AttributeError, match="weight"):
        m.weight
    with pytest.raises(KeyError, match="must not contain a dot"):
        m.register_buffer("a.b", tga.zeros(1))
    with pytest.raises(TypeError):
        m.register_parameter("w", tga.zeros(1))
    with pytest.raises(TypeError):
        m.add_module("sub", 3)

    class NoInit(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(tga.zeros(1))
    with pytest.raises(AttributeError, match="Module.__init__"):
        NoInit()


def test_parameter_basics():
    p = nn.Parameter(tga.ones(2, 3))
    assert p.requires_grad and p.is_leaf and isinstance(p, tga.Tensor)
    frozen = nn.Parameter(tga.ones(2), requires_grad=False)
    assert not frozen.requires_grad
    with pytest.raises(TypeError):
        nn.Parameter([1.0, 2.0])


def test_requires_grad_and_apply(ours):
    ours.requires_grad_(False)
    assert not any(p.requires_grad for p in ours.parameters())
    seen = []
    assert ours.apply(lambda m: seen.append(type(m).__name__)) is ours
    assert seen[-1] == "Outer" and seen.count("Inner") == 2


def test_forward_missing_and_call():
    with pytest.raises(NotImplementedError):
        nn.Module()(tga.zeros(1))
