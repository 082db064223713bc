"""Names PyTorch's basic tutorials use that tinygradattn lacked: torch.eye, torch.add / sub /
mul (alpha=, out=), torch.matmul(out=), nn.Softmax and nn.LogSoftmax. Parity with PyTorch,
gradients, errors, on every device."""
import warnings

import numpy as np
import pytest
import torch

import tinygradattn as tga
from tinygradattn import nn
from tinygradattn.autograd import gradcheck


@pytest.mark.parametrize("n,m", [(3, None), (1, 1), (4, 7), (5, 2), (0, 3), (3, 0)])
def test_eye_matches_torch(n, m, device):
    ours = tga.eye(n, m, device=device) if m is not None else tga.eye(n, device=device)
    theirs = torch.eye(n, m) if m is not None else torch.eye(n)
    assert ours.dtype == tga.float32 and ours.device == device
    np.testing.assert_array_equal(ours.cpu().numpy(), theirs.numpy())
    assert tga.eye(3, dtype=tga.int64, device=device).tolist() == torch.eye(3, dtype=torch.int64).tolist()
    assert tga.eye(2, dtype=tga.bool).tolist() == [[True, False], [False, True]]
    assert tga.eye(2, requires_grad=True).requires_grad


def test_eye_errors():
    with pytest.raises(RuntimeError, match="n must be greater or equal to 0, got -1"):
        tga.eye(-1)
    with pytest.raises(RuntimeError, match="m must be greater or equal to 0, got -2"):
        tga.eye(2, -2)
    with pytest.raises(TypeError):
        tga.eye(2.5)


def test_add_sub_mul_free_functions(device):
    a = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((5,)).astype(np.float32)
    x, y = tga.tensor(a, device=device), tga.tensor(b, device=device)
    tx, ty = torch.tensor(a), torch.tensor(b)
    for ours, theirs in [(tga.add(x, y), torch.add(tx, ty)),
                         (tga.add(x, y, alpha=-2.5), torch.add(tx, ty, alpha=-2.5)),
                         (tga.sub(x, 3, alpha=2), torch.sub(tx, 3, alpha=2)),
                         (tga.mul(x, y), torch.mul(tx, ty)), (tga.multiply(x, 2), tx * 2)]:
        np.testing.assert_allclose(ours.cpu().numpy(), theirs.numpy(), rtol=1e-6, atol=1e-6)
    with pytest.raises(TypeError, match="must be Tensor"):
        tga.mul(2, x)


def test_add_sub_mul_gradients():
    x = tga.randn(2, 3, dtype=tga.float64, requires_grad=True)
    y = tga.randn(3, dtype=tga.float64, requires_grad=True)
    assert gradcheck(lambda a, b: tga.add(a, b, alpha=0.5), (x, y))
    assert gradcheck(lambda a, b: tga.sub(a, b, alpha=3), (x, y))
    assert gradcheck(lambda a, b: tga.mul(a, b), (x, y))


def test_out_argument(device):
    x = tga.ones(4, 4, device=device)
    x[:, 1] = 0
    y3 = tga.rand(4, 4, device=device)
    got = tga.matmul(x, x.T, out=y3)
    t = torch.ones(4, 4)
    t[:, 1] = 0
    assert got is y3 and y3.tolist() == (t @ t.T).tolist()
    z3 = tga.rand(4, 4, device=device)
    assert tga.mul(x, x, out=z3) is z3 and z3.tolist() == (t * t).tolist()
    empty = tga.empty(0, device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tga.add(x, 1, out=empty)                       # an empty out is resized silently
    assert empty.shape == (4, 4) and empty.tolist() == (t + 1).tolist()
    wrong = tga.zeros(2, device=device)
    with pytest.warns(UserWarning, match=r"resized since it had shape \[2\]"):
        tga.sub(x, 1, out=wrong)
    assert wrong.shape == (4, 4)
    w = tga.ones(2, 2, requires_grad=True)
    with pytest.raises(RuntimeError, match="don't support automatic differentiation"):
        tga.mul(w, 2, out=tga.empty(2, 2))
    with tga.no_grad():
        o = tga.empty(2, 2)
        assert tga.mul(w, 2, out=o).tolist() == [[2, 2], [2, 2]]


@pytest.mark.parametrize("module,fn", [("Softmax", "softmax"), ("LogSoftmax", "log_softmax")])
def test_softmax_modules(module, fn, device):
    a = np.random.default_rng(2).standard_normal((2, 3, 5)).astype(np.float32)
    for dim in (0, 1, -1):
        ours = getattr(nn, module)(dim=dim)(tga.tensor(a, device=device))
        theirs = getattr(torch.nn, module)(dim=dim)(torch.tensor(a))
        np.testing.assert_allclose(ours.cpu().numpy(), theirs.numpy(), rtol=1e-5, atol=1e-6)
    assert repr(getattr(nn, module)(dim=1)) == repr(getattr(torch.nn, module)(dim=1))
    for shape in [(4,), (2, 3), (2, 3, 4), (2, 3, 4, 5)]:          # torch's legacy implicit dim
        b = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
        with pytest.warns(UserWarning, match="Implicit dimension choice"):
            ours = getattr(nn, module)()(tga.tensor(b))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = getattr(torch.nn, module)()(torch.tensor(b))
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-6)
    x = tga.randn(3, 4, dtype=tga.float64, requires_grad=True)
    assert gradcheck(lambda t: getattr(nn, module)(dim=1)(t), (x,))
