"""Issue 16, finding 5: zero-size inputs do what torch 2.13 does, on cpu and cuda (the
simulator): softmax / log_softmax over a size-0 dim, layer norm with C = 0 or N = 0,
scaled_dot_product_attention with B, H, T or S = 0 compute an empty (or zero) result with
gradients of the inputs' shapes; argmax / argmin with nothing to reduce raise torch's
IndexError; `cat` of 0-d tensors raises torch's RuntimeError. Before the fix each raised an
internal ValueError ("cannot reshape array of size 0", "needs unit stride", "empty sequence").
"""
import numpy as np
import pytest

import tinygradattn as tga
import tinygradattn.nn.functional as F


def _leaf(shape, device):
    return tga.randn(*shape).to(device).requires_grad_(True)


@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax])
@pytest.mark.parametrize("shape, dim", [((2, 0), -1), ((0, 3), 1), ((0, 3), 0), ((2, 0, 3), 1),
                                        ((0,), 0)])
def test_softmax_over_size_0(device, fn, shape, dim):
    x = _leaf(shape, device)
    y = fn(x, dim)
    assert y.shape == shape and y.device.type == device
    y.sum().backward()
    assert x.grad.shape == shape


@pytest.mark.parametrize("shape", [(2, 0), (0, 4), (2, 3, 0), (0, 0)])
def test_layer_norm_empty(device, shape):
    x = _leaf(shape, device)
    norm = tga.nn.LayerNorm(shape[-1]).to(device)
    y = norm(x)
    assert y.shape == shape
    y.sum().backward()
    assert x.grad.shape == shape
    assert norm.weight.grad.shape == (shape[-1],) and norm.bias.grad.shape == (shape[-1],)
    assert np.all(norm.weight.grad.cpu().numpy() == 0)        # no row: nothing accumulates
    assert F.layer_norm(x.detach(), (shape[-1],)).shape == shape


@pytest.mark.parametrize("q_shape, kv_shape", [
    ((1, 2, 0, 4), (1, 2, 3, 4)),         # T = 0
    ((1, 2, 3, 4), (1, 2, 0, 4)),         # S = 0: torch gives zeros (a row with no key)
    ((0, 2, 3, 4), (0, 2, 3, 4)),         # B = 0
    ((1, 0, 3, 4), (1, 0, 3, 4)),         # H = 0
])
def test_sdpa_size_0(device, q_shape, kv_shape):
    q, k, v = _leaf(q_shape, device), _leaf(kv_shape, device), _leaf(kv_shape, device)
    out = F.scaled_dot_product_attention(q, k, v)
    assert out.shape == q_shape[:3] + kv_shape[3:]
    assert np.all(out.detach().cpu().numpy() == 0)
    out.sum().backward()
    for leaf, shape in ((q, q_shape), (k, kv_shape), (v, kv_shape)):
        assert leaf.grad.shape == shape
        assert np.all(leaf.grad.cpu().numpy() == 0)


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@pytest.mark.parametrize("shape, dim, words", [
    ((0,), None, "reduction dim to be specified"),
    ((2, 0), None, "reduction dim to be specified"),
    ((2, 0), 1, "reduction dim 1 to have non-zero size"),
    ((2, 0), -1, "reduction dim 1 to have non-zero size"),
])
def test_arg_reduce_of_nothing_raises_index_error(device, name, shape, dim, words):
    x = tga.randn(*shape).to(device)
    with pytest.raises(IndexError, match=f"{name}\\(\\): Expected {words}"):
        getattr(x, name)() if dim is None else getattr(x, name)(dim)


def test_arg_reduce_over_a_nonempty_dim_of_an_empty_tensor(device):
    x = tga.randn(2, 0).to(device)
    assert x.argmax(0).shape == (0,) and x.argmin(0, keepdim=True).shape == (1, 0)


def test_cat_of_0d_tensors_raises_like_torch(device):
    with pytest.raises(RuntimeError, match="zero-dimensional tensor .*cannot be concatenated"):
        tga.cat([tga.tensor(1.).to(device), tga.tensor(2.).to(device)])


def test_empty_results_match_torch():
    """The same calls on torch: shapes, and argmax's exception type and message."""
    torch = pytest.importorskip("torch")
    assert torch.softmax(torch.randn(2, 0), -1).shape == F.softmax(tga.randn(2, 0), -1).shape
    out = torch.nn.functional.scaled_dot_product_attention(
        torch.randn(1, 2, 3, 4), torch.randn(1, 2, 0, 4), torch.randn(1, 2, 0, 4))
    assert torch.all(out == 0)
    with pytest.raises(IndexError, match="Expected reduction dim 1 to have non-zero size"):
        torch.randn(2, 0).argmax(1)


def test_cat_of_an_empty_1d_tensor_that_requires_grad_requires_grad():
    # found by the random graphs: the legacy skip of (0,) tensors dropped it from the graph
    x = tga.ones(3, requires_grad=True)
    c = tga.cat([x[0:0], tga.ones(1)])
    assert c.requires_grad and c.tolist() == [1.0]
    c.sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 0.0]
    assert tuple(tga.cat([tga.ones(0), tga.ones(2, 3)]).shape) == (2, 3)   # still skipped
