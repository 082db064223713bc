"""DLPack in both directions (issue 16, interop): tga.from_dlpack, Tensor.__dlpack__ /
__dlpack_device__, tga.utils.dlpack.to_dlpack, with numpy and PyTorch.

Zero-copy is proven by a write on one side read on the other; the refusals (requires grad,
an unsupported dtype, a non-DLPack object, a consumed capsule, cuda memory) are checked by
type and message. Torch parts skip without torch; the cuda parts run in numba's simulator.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygradattn as tga
from tinygradattn.utils import dlpack as tga_dlpack

from strategies import shapes, views

SUPPORTED = [np.float32, np.float64, np.int64, np.bool_]
REQUIRES_GRAD = "Can't export tensors that require gradient, use tensor.detach()"
TORCH_REASON = "torch is not installed: the PyTorch side of the DLPack exchange is skipped"


def _torch():
    return pytest.importorskip("torch", reason=TORCH_REASON)


def _sample(dtype, shape=(2, 3)):
    values = np.arange(int(np.prod(shape))).reshape(shape) % 3
    return np.asarray(values.astype(dtype))            # an array even for shape ()


class _Capsule:
    """Hands a capsule to np.from_dlpack, which wants an object with __dlpack__."""

    def __init__(self, capsule):
        self.capsule = capsule

    def __dlpack__(self, **kwargs):
        return self.capsule

    def __dlpack_device__(self):
        return (1, 0)


# ---- numpy -> tga -> numpy ----------------------------------------------------------------
@pytest.mark.parametrize("dtype", SUPPORTED, ids=lambda d: np.dtype(d).name)
def test_numpy_round_trip_keeps_values_dtype_and_memory(dtype):
    a = _sample(dtype)
    t = tga.from_dlpack(a)
    assert t.dtype == a.dtype and tuple(t.shape) == a.shape
    back = np.from_dlpack(t)
    assert back.dtype == a.dtype
    np.testing.assert_array_equal(back, a)
    assert np.shares_memory(back, a)


def test_a_write_on_either_side_is_seen_on_the_other_numpy():
    a = np.zeros((2, 3), np.float32)
    t = tga.from_dlpack(a)
    t[0, 1] = 5.                 # ours -> numpy
    assert a[0, 1] == 5.
    a[1, 2] = -3.                # numpy -> ours
    assert t[1, 2].item() == -3.
    exported = np.from_dlpack(t)
    exported[1, 0] = 7.          # a consumer of our export -> ours and the original
    assert t[1, 0].item() == 7. and a[1, 0] == 7.


def test_a_transposed_numpy_array_is_imported_without_a_copy():
    a = np.arange(12.).reshape(3, 4)
    t = tga.from_dlpack(a.T)                                        # (4, 3), strides (8, 32)
    assert tuple(t.shape) == (4, 3)
    np.testing.assert_array_equal(t.numpy(), a.T)
    np.testing.assert_allclose((t @ tga.ones(3, dtype=tga.float64)).numpy(), a.T.sum(1))
    t[3, 0] = 100.
    assert a[0, 3] == 100.


def test_negative_strides_import_but_are_not_exported_without_a_copy():
    a = np.arange(6.).reshape(2, 3)
    t = tga.from_dlpack(a[:, ::-1])
    np.testing.assert_array_equal(t.numpy(), a[:, ::-1])
    with pytest.raises(BufferError, match="negative strides"):    # torch would abort on them
        np.from_dlpack(t)
    copied = np.from_dlpack(_Capsule(t.__dlpack__(copy=True)))
    np.testing.assert_array_equal(copied, a[:, ::-1])
    assert not np.shares_memory(copied, a)


def test_a_producer_before_dlpack_1_0_is_asked_again_and_gives_writable_memory():
    a = np.arange(6.).reshape(2, 3)[:, ::2]

    class OldProducer:                    # no max_version: a pre-1.0 "dltensor" capsule
        def __dlpack__(self, stream=None):
            return a.__dlpack__()

        def __dlpack_device__(self):
            return (1, 0)
    t = tga.from_dlpack(OldProducer())
    np.testing.assert_array_equal(t.numpy(), a)
    t[1, 1] = -4.                         # numpy alone would import it read-only
    assert a[1, 1] == -4.


def test_a_read_only_producer_stays_read_only():
    a = np.arange(3.)
    a.flags.writeable = False             # a DLPack 1.0 capsule carries the flag
    t = tga.from_dlpack(a)
    np.testing.assert_array_equal(t.numpy(), a)
    with pytest.raises(RuntimeError, match="read-only"):
        t[0] = 1.


@st.composite
def _numpy_views(draw):
    """(base, view): a numpy base array of a supported dtype and a permuted / sliced with
    steps / expanded view of it (shapes with 1, primes and 0)."""
    shape = draw(shapes(max_dims=3, allow_zero=True))
    recipe = draw(views(shape))
    dtype = draw(st.sampled_from(SUPPORTED))
    base = _sample(dtype, recipe.base_shape)
    return base, recipe.apply(base)


@given(_numpy_views())
def test_any_numpy_view_round_trips_through_us_on_the_same_memory(case):
    base, view = case
    t = tga.from_dlpack(view)
    assert tuple(t.shape) == view.shape and t.dtype == view.dtype
    np.testing.assert_array_equal(t.numpy(), view)
    back = np.from_dlpack(t)
    assert back.strides == view.strides or view.size <= 1
    np.testing.assert_array_equal(back, view)
    if view.size:
        assert np.shares_memory(back, base)


@given(_numpy_views())
def test_any_numpy_view_reaches_torch_through_us_on_the_same_memory(case):
    torch = _torch()
    base, view = case
    x = torch.from_dlpack(tga.from_dlpack(view))
    assert tuple(x.shape) == view.shape
    np.testing.assert_array_equal(x.numpy(), view)
    if view.size:
        assert np.shares_memory(x.numpy(), base)


@pytest.mark.parametrize("shape", [(), (0,), (3, 0), (0, 2, 5)])
def test_zero_d_and_size_zero_numpy(shape):
    a = np.full(shape, 4., np.float32)
    t = tga.from_dlpack(a)
    assert tuple(t.shape) == shape and t.dtype == tga.float32
    back = np.from_dlpack(t)
    assert back.shape == shape
    np.testing.assert_array_equal(back, a)
    if shape == ():
        t.fill_(2.)
        assert a == 2.


@pytest.mark.parametrize("dtype", [np.float16, np.int32, np.int8, np.uint8, np.complex64])
def test_an_unsupported_numpy_dtype_is_a_type_error_naming_it(dtype):
    with pytest.raises(TypeError, match=f"unsupported dtype {np.dtype(dtype).name}"):
        tga.from_dlpack(np.zeros(3, dtype))


@pytest.mark.parametrize("obj", [[1., 2.], None, "abc", 3.5, object()],
                         ids=["list", "None", "str", "float", "object"])
def test_an_object_without_dlpack_is_a_type_error_naming_its_type(obj):
    with pytest.raises(TypeError, match=f"got {type(obj).__name__}$"):
        tga.from_dlpack(obj)


def test_a_tensor_that_requires_grad_is_refused():
    w = tga.ones(3, requires_grad=True)
    for consume in (np.from_dlpack, tga.from_dlpack):
        with pytest.raises(BufferError, match=REQUIRES_GRAD.replace("(", r"\(").replace(
                ")", r"\)")):
            consume(w)
    np.testing.assert_array_equal(np.from_dlpack(w.detach()), np.ones(3))


def test_to_dlpack_exports_a_tensor_that_requires_grad_as_torch_does():
    """torch.utils.dlpack.to_dlpack takes a tensor that requires grad (only __dlpack__
    refuses it): the capsule shares the data, without the graph."""
    w = tga.ones(3, requires_grad=True)
    t = tga.from_dlpack(tga_dlpack.to_dlpack(w))
    assert not t.requires_grad
    t[0] = 5.0
    assert w.tolist() == [5.0, 1.0, 1.0]
    torch = pytest.importorskip("torch")
    torch.utils.dlpack.to_dlpack(torch.ones(3, requires_grad=True))      # torch: no error


def test_gradient_flows_through_an_imported_tensor():
    a = np.array([[1., -2.], [3., 0.5]])
    t = tga.from_dlpack(a).requires_grad_()
    assert t.is_leaf and t.grad_fn is None
    (t * t * 3.).sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), 6. * a)


def test_our_own_tensor_comes_back_as_an_alias_sharing_the_version_counter():
    b = tga.tensor([1., 2., 3.])
    alias = tga.from_dlpack(b)
    assert np.shares_memory(alias.numpy(), b.numpy())
    x = tga.tensor([1., 1., 1.], requires_grad=True)
    y = (x * b).sum()
    alias[0] = 10.
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


def test_copy_and_device_arguments():
    a = np.arange(3.)
    copied = tga.from_dlpack(a, copy=True)
    copied[0] = 9.
    assert a[0] == 0.
    same = tga.from_dlpack(a, device="cpu", copy=False)
    same[1] = 9.
    assert a[1] == 9.


def test_numpy_consumer_arguments_copy_and_stream():
    t = tga.arange(3.)
    copied = np.from_dlpack(t, copy=True)               # numpy passes copy= to __dlpack__
    copied[0] = 9.
    assert t[0].item() == 0.
    shared = np.from_dlpack(t, copy=False, device="cpu")
    shared[0] = 9.
    assert t[0].item() == 9.
    assert t.__dlpack__(stream=-1) is not None            # torch's "no synchronization"
    with pytest.raises(BufferError, match="stream must be None on the cpu, got 5"):
        t.__dlpack__(stream=5)


def test_dlpack_device_of_a_cpu_tensor():
    device_type, index = tga.zeros(2).__dlpack_device__()
    assert (device_type, index) == (1, 0)
    assert device_type == tga_dlpack.DLDeviceType.kDLCPU


def test_an_unsupported_device_is_refused_before_export():
    class Rocm:
        def __dlpack__(self, **kwargs):
            raise AssertionError("the producer must not be asked to export")

        def __dlpack_device__(self):
            return (10, 1)
    with pytest.raises(BufferError, match=r"device type 10 \(kDLROCM, index 1\)"):
        tga.from_dlpack(Rocm())


# ---- torch -> tga -> torch ----------------------------------------------------------------
@pytest.mark.parametrize("dtype", SUPPORTED, ids=lambda d: np.dtype(d).name)
def test_torch_round_trip_shares_memory(dtype):
    torch = _torch()
    x = torch.from_numpy(_sample(dtype))
    t = tga.from_dlpack(x)
    assert t.dtype == np.dtype(dtype)
    back = torch.from_dlpack(t)
    assert back.dtype == x.dtype and back.data_ptr() == x.data_ptr()
    assert torch.equal(back, x)


def test_a_write_on_either_side_is_seen_on_the_other_torch():
    torch = _torch()
    x = torch.zeros(2, 3)
    t = tga.from_dlpack(x)
    t[0, 0] = 4.
    assert x[0, 0].item() == 4.
    x[1, 1] = -2.
    assert t[1, 1].item() == -2.
    y = torch.from_dlpack(t)
    y[0, 2] = 8.
    assert t[0, 2].item() == 8. and x[0, 2].item() == 8.


def test_a_sliced_torch_tensor_with_a_step():
    torch = _torch()
    base = torch.arange(24.).reshape(4, 6)
    x = base[::2, 1::3]                                              # (2, 2), strides (12, 3)
    t = tga.from_dlpack(x)
    np.testing.assert_array_equal(t.numpy(), x.numpy())
    assert t.sum().item() == x.sum().item()
    t[1, 1] = -1.
    assert base[2, 4].item() == -1.
    back = torch.from_dlpack(t)
    assert back.stride() == x.stride() and back.data_ptr() == x.data_ptr()


@pytest.mark.parametrize("shape", [(), (0,), (2, 0)])
def test_zero_d_and_size_zero_torch(shape):
    torch = _torch()
    x = torch.full(shape, 3.)
    t = tga.from_dlpack(x)
    assert tuple(t.shape) == shape
    back = torch.from_dlpack(t)
    assert tuple(back.shape) == shape and torch.equal(back, x)


@pytest.mark.parametrize("name", ["bfloat16", "float16", "int32", "uint8", "complex64"])
def test_an_unsupported_torch_dtype_is_a_type_error_naming_it(name):
    torch = _torch()
    with pytest.raises(TypeError, match=f"unsupported dtype {name}"):
        tga.from_dlpack(torch.zeros(2, dtype=getattr(torch, name)))


def test_requires_grad_refusal_matches_torch():
    torch = _torch()
    with pytest.raises(BufferError) as theirs:
        np.from_dlpack(torch.ones(2, requires_grad=True))
    with pytest.raises(BufferError) as ours:
        torch.from_dlpack(tga.ones(2, requires_grad=True))
    assert str(ours.value) == str(theirs.value) == REQUIRES_GRAD


def test_legacy_capsules_both_ways():
    torch = _torch()
    x = torch.arange(4.)
    t = tga.from_dlpack(torch.utils.dlpack.to_dlpack(x))
    t[0] = 10.
    assert x[0].item() == 10.
    capsule = tga_dlpack.to_dlpack(t)
    y = torch.utils.dlpack.from_dlpack(capsule)
    y[1] = 20.
    assert t[1].item() == 20.
    with pytest.raises(BufferError, match="imported only once"):
        tga.from_dlpack(capsule)


def test_a_legacy_capsule_of_a_strided_torch_tensor_is_writable():
    torch = _torch()
    base = torch.arange(12.).reshape(3, 4)
    t = tga.from_dlpack(torch.utils.dlpack.to_dlpack(base[::2, 1::2]))     # (2, 2)
    np.testing.assert_array_equal(t.numpy(), base[::2, 1::2].numpy())
    t[1, 0] = 50.
    assert base[2, 1].item() == 50.


def test_gradient_flows_through_a_tensor_imported_from_torch():
    torch = _torch()
    x = torch.arange(12.).reshape(3, 4)[:, ::2]                      # (3, 2), non-contiguous
    t = tga.from_dlpack(x).requires_grad_()
    (t.exp() * 2.).sum().backward()
    xt = x.clone().requires_grad_()
    (xt.exp() * 2.).sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), xt.grad.numpy(), rtol=1e-6)


def test_torch_names_reach_ours_through_the_compat_hook():
    from tinygradattn.compat.hook import torch_as_tinygradattn
    with torch_as_tinygradattn():
        import torch
        import torch.utils.dlpack
        assert torch.from_dlpack is tga.from_dlpack
        assert torch.utils.dlpack.to_dlpack is tga_dlpack.to_dlpack
        assert torch.utils.dlpack.from_dlpack is tga.from_dlpack


# ---- cuda (numba's simulator in CI) -------------------------------------------------------
def test_both_backends_implement_the_dlpack_primitives(cuda_device):
    from tinygradattn.backend import PRIMITIVES, get_backend
    for name in ("from_dlpack", "to_dlpack", "dlpack_device"):
        assert name in PRIMITIVES
        for device in ("cpu", cuda_device):
            assert callable(getattr(type(get_backend(device)), name, None)), (device, name)


def test_cuda_tensor_names_its_device_and_refuses_export(cuda_device):
    t = tga.ones(3, device=cuda_device)
    assert t.__dlpack_device__() == (2, 0)
    with pytest.raises(BufferError, match="DLPack export of cuda tensors is not supported"):
        np.from_dlpack(t)
    with pytest.raises(BufferError, match="DLPack export of cuda tensors is not supported"):
        tga_dlpack.to_dlpack(t)


def test_cuda_memory_import_is_refused_clearly(cuda_device):
    class CudaProducer:
        def __dlpack__(self, **kwargs):
            raise AssertionError("the producer must not be asked to export")

        def __dlpack_device__(self):
            return (2, 0)
    with pytest.raises(BufferError, match="importing cuda memory through DLPack is not "
                                          "supported yet"):
        tga.from_dlpack(CudaProducer())


def test_cuda_from_our_own_tensor_and_to_the_cuda_device(cuda_device):
    t = tga.arange(3., device=cuda_device)
    assert tga.from_dlpack(t).device == "cuda"
    moved = tga.from_dlpack(np.arange(3.), device=cuda_device)
    assert moved.device == "cuda"
    np.testing.assert_array_equal(moved.cpu().numpy(), np.arange(3.))
    with pytest.raises(ValueError, match="without copying"):
        tga.from_dlpack(np.arange(3.), device=cuda_device, copy=False)
