"""nn.RMSNorm / F.rms_norm, nn.SiLU / F.silu, nn.Sigmoid, F.tanh / F.sigmoid, nn.Flatten and
nn.Identity against torch's modules: values, gradients, parameters, repr and errors."""
import numpy as np
import pytest

import tinygradattn as tga
import tinygradattn.nn.functional as F
from tinygradattn import nn

from helpers import TOLS, assert_close

torch = pytest.importorskip("torch")


def _pair(shape, dtype=np.float32, seed=0):
    a = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return tga.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


@pytest.mark.parametrize("shape,normalized", [((2, 3, 4), 4), ((2, 3, 4), (3, 4)), ((5,), (5,)),
                                              ((3, 1), 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("eps", [None, 1e-2])
def test_rms_norm_module_matches_torch(shape, normalized, dtype, eps):
    ours = nn.RMSNorm(normalized, eps=eps, dtype=tga.float64 if dtype == np.float64 else None)
    theirs = torch.nn.RMSNorm(normalized, eps=eps,
                              dtype=torch.float64 if dtype == np.float64 else None)
    w = np.random.default_rng(1).standard_normal(theirs.weight.shape).astype(dtype)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(w))
    ours.load_state_dict({"weight": tga.tensor(w)})
    x, tx = _pair(shape, dtype)
    y, ty = ours(x), theirs(tx)
    tol = TOLS["float32" if dtype == np.float32 else "float64"]["composite"]
    assert y.dtype.name == str(ty.dtype).replace("torch.", "")
    assert_close(y.detach().numpy(), ty.detach().numpy(), tol, "rms_norm forward")
    up = np.random.default_rng(2).standard_normal(shape).astype(dtype)
    y.backward(tga.tensor(up))
    ty.backward(torch.tensor(up))
    assert_close(x.grad.numpy(), tx.grad.numpy(), tol, "rms_norm dx")
    assert_close(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), tol, "rms_norm dweight")


def test_rms_norm_parameters_and_repr():
    m = nn.RMSNorm([3, 4])
    assert list(m.state_dict()) == ["weight"] and m.weight.shape == (3, 4)
    assert m.weight.tolist() == [[1.0] * 4] * 3 and m.weight.requires_grad
    assert repr(m) == repr(torch.nn.RMSNorm([3, 4]))
    bare = nn.RMSNorm(4, elementwise_affine=False)
    assert bare.weight is None and list(bare.state_dict()) == []
    assert repr(bare) == repr(torch.nn.RMSNorm(4, elementwise_affine=False))


def test_rms_norm_default_eps_is_the_dtype_eps():
    # a zero row: the result is 0 * rsqrt(eps): finite, and the eps decides nothing else; a tiny
    # row shows the eps: x / sqrt(x^2 + eps) with x^2 ~ eps
    for dtype, tdtype in ((tga.float32, torch.float32), (tga.float64, torch.float64)):
        x = np.array([[1e-4, -2e-4]]) if dtype == tga.float32 else np.array([[1e-8, 3e-8]])
        ours = F.rms_norm(tga.tensor(x, dtype=dtype), (2,))
        theirs = torch.nn.functional.rms_norm(torch.tensor(x, dtype=tdtype), (2,))
        assert_close(ours.numpy(), theirs.numpy(), TOLS[dtype.name]["composite"], "default eps")


def test_rms_norm_errors():
    x = tga.ones(2, 3)
    with pytest.raises(RuntimeError, match=r"normalized_shape=\[4\].*\[2, 3\]"):
        F.rms_norm(x, (4,))
    with pytest.raises(RuntimeError, match=r"normalized_shape=\[2, 2, 3\]"):
        F.rms_norm(x, (2, 2, 3))
    with pytest.raises(RuntimeError, match=r"weight of shape \[4\]"):
        F.rms_norm(x, (3,), tga.ones(4))
    with pytest.raises(NotImplementedError, match="int64"):
        F.rms_norm(tga.tensor([[1, 2]]), (2,))
    with pytest.raises(TypeError, match="Tensor"):
        F.rms_norm([1.0, 2.0], (2,))


@pytest.mark.parametrize("ours,theirs", [(nn.SiLU(), torch.nn.SiLU()),
                                         (nn.Sigmoid(), torch.nn.Sigmoid()),
                                         (nn.Tanh(), torch.nn.Tanh()),
                                         (F.silu, torch.nn.functional.silu),
                                         (F.sigmoid, torch.nn.functional.sigmoid),
                                         (F.tanh, torch.nn.functional.tanh)])
def test_activations_match_torch(ours, theirs):
    x, tx = _pair((3, 7), np.float64)
    scale = 30.0                                    # saturated tails as well as the middle
    y, ty = ours(x * scale), theirs(tx * scale)
    assert_close(y.detach().numpy(), ty.detach().numpy(), TOLS["float64"]["elementwise"], "fwd")
    y.sum().backward()
    ty.sum().backward()
    assert_close(x.grad.numpy(), tx.grad.numpy(), TOLS["float64"]["elementwise"], "grad")


def test_silu_repr_and_errors():
    assert repr(nn.SiLU()) == "SiLU()" and repr(nn.SiLU(inplace=True)) == "SiLU(inplace=True)"
    assert repr(nn.Sigmoid()) == "Sigmoid()"
    with pytest.raises(NotImplementedError, match="int64"):
        F.silu(tga.tensor([1, 2]))
    with pytest.raises(TypeError, match="Tensor"):
        F.silu(1.0)
    x = tga.tensor([1.0, -2.0])
    assert F.silu(x, inplace=True).tolist() == F.silu(x).tolist()


@pytest.mark.parametrize("args", [(), (0,), (1, 2), (0, -2), (-2, -1)])
def test_flatten_matches_torch(args):
    x, tx = _pair((2, 3, 4, 5))
    y, ty = nn.Flatten(*args)(x), torch.nn.Flatten(*args)(tx)
    assert tuple(y.shape) == tuple(ty.shape)
    np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
    assert repr(nn.Flatten(*args)) == repr(torch.nn.Flatten(*args))


def test_flatten_errors_and_identity():
    with pytest.raises(RuntimeError, match="start_dim"):
        nn.Flatten(2, 1)(tga.ones(2, 3, 4))
    with pytest.raises(IndexError):
        nn.Flatten()(tga.ones(3))
    m = nn.Identity(54, unused_argument1=0.1)
    x = tga.ones(2)
    assert m(x) is x and list(m.parameters()) == [] and repr(m) == "Identity()"
