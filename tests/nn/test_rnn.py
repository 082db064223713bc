"""nn.RNN and nn.RNNCell (nn/rnn.py): parity with torch.nn.RNN / RNNCell with copied weights
(outputs, h_n, the gradients of the input, h_0 and every parameter; float32 and float64), over
tanh / relu, two layers, bidirectional, batch_first, a given h_0, no bias and unbatched input;
float64 gradcheck through a tiny one; parameter names, initialisation, repr; the errors torch
raises for bad inputs, with its messages; and backward stays linear in the sequence length.
"""
import math

import numpy as np
import pytest

import tinygradattn as tga
from tinygradattn import nn

from helpers import GRADCHECK, TOLS, assert_close

TORCH_REASON = "parity tests need PyTorch"
I, H, T, B = 3, 4, 5, 2

# (id, keyword arguments of both constructors, input shape, h_0 shape or None)
CONFIGS = [
    ("tanh", {}, (T, B, I), None),
    ("relu", dict(nonlinearity="relu"), (T, B, I), None),
    ("two_layers", dict(num_layers=2), (T, B, I), None),
    ("bidirectional", dict(bidirectional=True), (T, B, I), None),
    ("two_layers_bidirectional_h0", dict(num_layers=2, bidirectional=True), (T, B, I),
     (4, B, H)),
    ("batch_first_h0", dict(batch_first=True), (B, T, I), (1, B, H)),
    ("relu_two_layers_h0", dict(nonlinearity="relu", num_layers=2), (T, B, I), (2, B, H)),
    ("no_bias", dict(bias=False, num_layers=2), (T, B, I), None),
    ("unbatched", dict(num_layers=2), (T, I), (2, H)),
    ("unbatched_bidirectional", dict(bidirectional=True, batch_first=True), (T, I), None),
    ("dropout_eval", dict(num_layers=2, dropout=0.5), (T, B, I), None),   # eval: no dropout
    ("one_step", {}, (1, B, I), None),
]
IDS = [c[0] for c in CONFIGS]


def _copy_from_torch(ours, theirs):
    """Load torch's weights into ours through numpy: the names must be the same."""
    result = ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    assert result.missing_keys == [] and result.unexpected_keys == []


def _run_ours(module, x, h0, ups, x_grad=True):
    """Outputs, then gradients of x (when x_grad), h0 and the parameters (by name) for
    upstreams ups. An input without grad takes the unrecorded slicing path of nn.RNN."""
    x = tga.tensor(x, requires_grad=x_grad)
    h0 = None if h0 is None else tga.tensor(h0, requires_grad=True)
    out, h_n = module(x, h0)
    ((out * tga.tensor(ups[0])).sum() + (h_n * tga.tensor(ups[1])).sum()).backward()
    grads = {n: p.grad.numpy() for n, p in module.named_parameters()}
    if x_grad:
        grads["input"] = x.grad.numpy()
    if h0 is not None:
        grads["h_0"] = h0.grad.numpy()
    return out.detach().numpy(), h_n.detach().numpy(), grads


def _run_torch(torch, module, x, h0, ups):
    x = torch.from_numpy(x).requires_grad_(True)
    h0 = None if h0 is None else torch.from_numpy(h0).requires_grad_(True)
    out, h_n = module(x, h0)
    ((out * torch.from_numpy(ups[0])).sum() + (h_n * torch.from_numpy(ups[1])).sum()).backward()
    grads = {"input": x.grad.numpy(), **{n: p.grad.numpy() for n, p in module.named_parameters()}}
    if h0 is not None:
        grads["h_0"] = h0.grad.numpy()
    return out.detach().numpy(), h_n.detach().numpy(), grads


@pytest.mark.parametrize("x_grad", [True, False], ids=["input_grad", "input_no_grad"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kwargs,x_shape,h0_shape", [c[1:] for c in CONFIGS], ids=IDS)
def test_rnn_matches_torch(kwargs, x_shape, h0_shape, dtype, x_grad):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    torch.manual_seed(0)
    theirs = torch.nn.RNN(I, H, **kwargs).to(getattr(torch, np.dtype(dtype).name)).eval()
    ours = nn.RNN(I, H, **kwargs).to(np.dtype(dtype).name).eval()
    _copy_from_torch(ours, theirs)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    rng = np.random.default_rng(1)
    x = rng.standard_normal(x_shape).astype(dtype)
    h0 = None if h0_shape is None else rng.standard_normal(h0_shape).astype(dtype)
    ups = [rng.standard_normal(s).astype(dtype) for s in _output_shapes(theirs, x, h0)]
    t_out, t_hn, t_grads = _run_torch(torch, theirs, x.copy(),
                                      None if h0 is None else h0.copy(), ups)
    o_out, o_hn, o_grads = _run_ours(ours, x, h0, ups, x_grad)
    if not x_grad:
        del t_grads["input"]
    tol = TOLS[np.dtype(dtype).name]["composite"]
    assert o_out.dtype == dtype and o_out.shape == t_out.shape and o_hn.shape == t_hn.shape
    assert_close(o_out, t_out, tol, "output", dtype=np.dtype(dtype).name)
    assert_close(o_hn, t_hn, tol, "h_n", dtype=np.dtype(dtype).name)
    assert sorted(o_grads) == sorted(t_grads)
    for name in t_grads:
        assert_close(o_grads[name], t_grads[name], tol, f"grad of {name}",
                     dtype=np.dtype(dtype).name)


def _output_shapes(module, x, h0):
    """torch's output and h_n shapes for this input (a no-grad forward)."""
    import torch
    with torch.no_grad():
        out, h_n = module(torch.from_numpy(x), None if h0 is None else torch.from_numpy(h0))
    return tuple(out.shape), tuple(h_n.shape)


@pytest.mark.parametrize("kwargs", [dict(num_layers=2, nonlinearity="tanh"),
                                    dict(bidirectional=True, nonlinearity="relu"),
                                    dict(bias=False, batch_first=True)],
                         ids=["two_layers_tanh", "bidirectional_relu", "no_bias_batch_first"])
def test_rnn_gradcheck(kwargs):
    """float64 central differences through the input, h_0 and every parameter."""
    tga.manual_seed(0)
    rnn = nn.RNN(2, 3, **kwargs).double()
    n_dirs = 2 if kwargs.get("bidirectional") else 1
    x_shape = (2, 3, 2) if kwargs.get("batch_first") else (3, 2, 2)       # T 3, B 2, I 2
    x = tga.randn(*x_shape, dtype=tga.float64, requires_grad=True)
    h0 = tga.randn(kwargs.get("num_layers", 1) * n_dirs, 2, 3, dtype=tga.float64,
                   requires_grad=True)
    if kwargs.get("nonlinearity") == "relu":      # away from relu's kink at 0
        x, h0 = (x.detach() * 3).requires_grad_(), (h0.detach() * 3).requires_grad_()
    params = list(rnn.parameters())
    # gradcheck perturbs its inputs in place, so the parameters themselves are inputs here
    assert tga.autograd.gradcheck(lambda x, h0, *ps: rnn(x, h0), (x, h0, *params), **GRADCHECK)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("batched,with_h", [(True, True), (True, False), (False, True)],
                         ids=["batched", "no_h", "unbatched"])
def test_rnn_cell_matches_torch(nonlinearity, batched, with_h):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    theirs = torch.nn.RNNCell(I, H, nonlinearity=nonlinearity).double()
    ours = nn.RNNCell(I, H, nonlinearity=nonlinearity).double()
    _copy_from_torch(ours, theirs)
    rng = np.random.default_rng(2)
    lead = (B,) if batched else ()
    x, h = rng.standard_normal(lead + (I,)), rng.standard_normal(lead + (H,))
    up = rng.standard_normal(lead + (H,))
    t_x, t_h = torch.from_numpy(x).requires_grad_(), torch.from_numpy(h).requires_grad_()
    t_y = theirs(t_x, t_h if with_h else None)
    (t_y * torch.from_numpy(up)).sum().backward()
    o_x, o_h = tga.tensor(x, requires_grad=True), tga.tensor(h, requires_grad=True)
    o_y = ours(o_x, o_h if with_h else None)
    (o_y * tga.tensor(up)).sum().backward()
    tol = TOLS["float64"]["composite"]
    assert_close(o_y.detach().numpy(), t_y.detach().numpy(), tol, "h'")
    assert_close(o_x.grad.numpy(), t_x.grad.numpy(), tol, "grad of input")
    if with_h:
        assert_close(o_h.grad.numpy(), t_h.grad.numpy(), tol, "grad of hx")
    t_params = dict(theirs.named_parameters())
    assert [n for n, _ in ours.named_parameters()] == list(t_params)
    for name, p in ours.named_parameters():
        assert_close(p.grad.numpy(), t_params[name].grad.numpy(), tol, f"grad of {name}")


def test_rnn_cell_unrolled_equals_rnn():
    """An RNNCell looped over time gives nn.RNN's output with the same weights."""
    tga.manual_seed(0)
    rnn, cell = nn.RNN(I, H), nn.RNNCell(I, H)
    cell.load_state_dict({k[:-3]: v for k, v in rnn.state_dict().items()})   # drop "_l0"
    x = tga.randn(T, B, I)
    with tga.no_grad():
        out, h_n = rnn(x)
    h = None
    for t in range(T):
        with tga.no_grad():
            h = cell(x[t], h)
        assert_close(h.numpy(), out[t].numpy(), TOLS["float32"]["composite"], f"step {t}")
    assert_close(h.numpy(), h_n[0].numpy(), TOLS["float32"]["composite"], "h_n")


# ---- parameters, initialisation, repr --------------------------------------------------------
def test_parameter_names_and_shapes():
    rnn = nn.RNN(3, 4, num_layers=2, bidirectional=True)
    shapes = {n: tuple(p.shape) for n, p in rnn.named_parameters()}
    assert list(shapes) == [f"{w}_l{k}{s}" for k in (0, 1) for s in ("", "_reverse")
                            for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    assert shapes["weight_ih_l0"] == (4, 3) and shapes["weight_ih_l1_reverse"] == (4, 8)
    assert shapes["weight_hh_l1"] == (4, 4) and shapes["bias_hh_l0_reverse"] == (4,)
    assert [len(ws) for ws in rnn.all_weights] == [4, 4, 4, 4]
    assert [n for n, _ in nn.RNN(3, 4, bias=False).named_parameters()] == [
        "weight_ih_l0", "weight_hh_l0"]
    cell = nn.RNNCell(3, 4, bias=False)
    assert [n for n, _ in cell.named_parameters()] == ["weight_ih", "weight_hh"]
    assert cell.bias_ih is None


def test_init_uniform_in_one_over_sqrt_hidden():
    tga.manual_seed(0)
    hidden = 64
    for module in (nn.RNN(16, hidden, num_layers=2), nn.RNNCell(16, hidden)):
        values = np.concatenate([p.detach().numpy().ravel() for p in module.parameters()])
        bound = 1 / math.sqrt(hidden)
        assert values.min() >= -bound and values.max() <= bound
        assert values.min() < -0.95 * bound and values.max() > 0.95 * bound   # fills the range
        assert abs(values.mean()) < 0.01 and abs(values.std() - bound / math.sqrt(3)) < 0.005


def test_repr_like_torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    for kwargs in ({}, dict(num_layers=2, bidirectional=True, nonlinearity="relu"),
                   dict(bias=False, batch_first=True, dropout=0.25, num_layers=3)):
        assert repr(nn.RNN(3, 4, **kwargs)) == repr(torch.nn.RNN(3, 4, **kwargs))
    for kwargs in ({}, dict(bias=False, nonlinearity="relu")):
        assert repr(nn.RNNCell(3, 4, **kwargs)) == repr(torch.nn.RNNCell(3, 4, **kwargs))


def test_dropout_between_layers_in_training_only():
    tga.manual_seed(0)
    rnn = nn.RNN(I, H, num_layers=2, dropout=0.5)
    x = tga.randn(T, B, I)
    with tga.no_grad():
        train_out = rnn(x)[0].numpy()
        rnn.eval()
        eval_a, eval_b = rnn(x)[0].numpy(), rnn(x)[0].numpy()
    assert np.array_equal(eval_a, eval_b) and not np.allclose(train_out, eval_a)


# ---- errors ---------------------------------------------------------------------------------
BAD_CALLS = [
    ("input_size", lambda lib: lib.randn(5, 2, 7), None, RuntimeError,
     "input.size(-1) must be equal to input_size. Expected 3, got 7"),
    ("h0_batch", lambda lib: lib.randn(5, 2, 3), lambda lib: lib.randn(2, 3, 4), RuntimeError,
     "Expected hidden size (2, 2, 4), got [2, 3, 4]"),
    ("h0_layers", lambda lib: lib.randn(5, 2, 3), lambda lib: lib.randn(1, 2, 4), RuntimeError,
     "Expected hidden size (2, 2, 4), got [1, 2, 4]"),
    ("h0_2d_for_batched", lambda lib: lib.randn(5, 2, 3), lambda lib: lib.randn(2, 4),
     RuntimeError, "For batched 3-D input, hx should also be 3-D but got 2-D tensor"),
    ("h0_3d_for_unbatched", lambda lib: lib.randn(5, 3), lambda lib: lib.randn(2, 1, 4),
     RuntimeError, "For unbatched 2-D input, hx should also be 2-D but got 3-D tensor"),
    ("input_4d", lambda lib: lib.randn(2, 5, 2, 3), None, ValueError,
     "RNN: Expected input to be 2D or 3D, got 4D tensor instead"),
]


@pytest.mark.parametrize("make_x,make_h,expected,message", [c[1:] for c in BAD_CALLS],
                         ids=[c[0] for c in BAD_CALLS])
def test_rnn_bad_inputs_raise_like_torch(make_x, make_h, expected, message):
    rnn = nn.RNN(3, 4, num_layers=2)
    with pytest.raises(expected) as info:
        rnn(make_x(tga), None if make_h is None else make_h(tga))
    assert str(info.value) == message
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    with pytest.raises(expected) as theirs:
        torch.nn.RNN(3, 4, num_layers=2)(make_x(torch), None if make_h is None else make_h(torch))
    assert str(theirs.value) == message


def test_rnn_dtype_mismatch_names_both_dtypes():
    with pytest.raises(ValueError, match=r"RNN input dtype \(.*float64\) does not match weight "
                                         r"dtype \(.*float32\)"):
        nn.RNN(3, 4)(tga.randn(5, 2, 3, dtype=tga.float64))


BAD_CELL_CALLS = [
    ("input_size", (2, 7), None, RuntimeError,
     "input has inconsistent input_size: got 7 expected 3"),
    ("batch", (2, 3), (3, 4), RuntimeError, "Input batch size 2 doesn't match hidden0 batch "
                                            "size 3"),
    ("hidden_size", (2, 3), (2, 5), RuntimeError,
     "hidden0 has inconsistent hidden_size: got 5, expected 4"),
    ("input_3d", (2, 2, 3), None, ValueError, "RNNCell: Expected input to be 1D or 2D, got 3D "
                                              "instead"),
    ("hidden_3d", (2, 3), (1, 2, 4), ValueError, "RNNCell: Expected hidden to be 1D or 2D, got "
                                                 "3D instead"),
]


@pytest.mark.parametrize("x_shape,h_shape,expected,message", [c[1:] for c in BAD_CELL_CALLS],
                         ids=[c[0] for c in BAD_CELL_CALLS])
def test_rnn_cell_bad_inputs_raise_like_torch(x_shape, h_shape, expected, message):
    with pytest.raises(expected) as info:
        nn.RNNCell(3, 4)(tga.randn(*x_shape), None if h_shape is None else tga.randn(*h_shape))
    assert str(info.value) == message
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    with pytest.raises(expected) as theirs:
        torch.nn.RNNCell(3, 4)(torch.randn(*x_shape),
                               None if h_shape is None else torch.randn(*h_shape))
    assert str(theirs.value) == message


@pytest.mark.parametrize("kwargs,expected,match", [
    (dict(nonlinearity="sigmoid"), ValueError, "Unknown nonlinearity 'sigmoid'"),
    (dict(hidden_size=0), ValueError, "hidden_size must be greater than zero"),
    (dict(hidden_size=2.0), TypeError, "hidden_size should be of type int, got: float"),
    (dict(num_layers=0), ValueError, "num_layers must be greater than zero"),
    (dict(dropout=1.5), ValueError, "dropout should be a number in range"),
    (dict(bias=1), TypeError, "bias should be of type bool, got: int"),
    (dict(batch_first=None), TypeError, "batch_first should be of type bool"),
], ids=["nonlinearity", "hidden0", "hidden_float", "layers0", "dropout", "bias", "batch_first"])
def test_rnn_bad_constructor_arguments(kwargs, expected, match):
    args = {"input_size": 3, "hidden_size": 4, **kwargs}
    with pytest.raises(expected, match=match):
        nn.RNN(**args)
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    with pytest.raises(expected, match=match):
        torch.nn.RNN(**args)


def test_dropout_with_one_layer_warns_like_torch():
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        nn.RNN(3, 4, dropout=0.2)


# ---- cost ----------------------------------------------------------------------------------
def _backward_nodes_of_size(loss, size):
    """How many gradients of `size` elements backward makes: counted as nodes in the graph
    whose inputs include a tensor of that many elements."""
    seen, stack, count = set(), [loss], 0
    while stack:
        t = stack.pop()
        ctx = t._ctx
        if ctx is None or id(ctx) in seen:
            continue
        seen.add(id(ctx))
        for inp in ctx.inputs:
            if inp is not None:
                count += inp.numel() == size
                stack.append(inp)
    return count


def test_no_full_sequence_gradient_per_step():
    """With an input that takes no gradient, no op in the unrolled graph takes the whole
    (T, B, .) sequence as an input that needs a gradient: a slice of a recorded sequence would
    make a full-size gradient per step, and backward O(T^2)."""
    tga.manual_seed(0)
    steps = 40
    rnn = nn.RNN(3, 4, num_layers=2)
    out, h_n = rnn(tga.randn(steps, 2, 3))
    loss = out.sum() + h_n.sum()
    assert _backward_nodes_of_size(loss, steps * 2 * 4) <= 2     # the stack's output, its sum


def _graph_input_elements(loss):
    """Elements of every recorded op input in loss's graph: what backward makes gradients of."""
    seen, stack, total = set(), [loss], 0
    while stack:
        ctx = stack.pop()._ctx
        if ctx is None or id(ctx) in seen:
            continue
        seen.add(id(ctx))
        for inp in ctx.inputs:
            if inp is not None:
                total += inp.numel()
                stack.append(inp)
    return total


def test_input_with_grad_costs_t_log_t():
    """An input that requires grad (an embedding's output) is cut in halves recursively: the
    gradients backward makes grow as T log T; T slices of the whole input would grow as T^2
    (from T = 32 to 128 on these sizes: 12 times the elements that way, 4.6 times halved)."""
    tga.manual_seed(0)
    rnn = nn.RNN(3, 4)
    sizes = []
    for steps in (32, 128):
        out, _ = rnn(tga.randn(steps, 2, 3, requires_grad=True))
        sizes.append(_graph_input_elements(out.sum()))
    assert sizes[1] < 8 * sizes[0], sizes
