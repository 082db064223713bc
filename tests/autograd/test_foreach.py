"""Foreach ops (tinygradattn.ops.foreach): one backend call over a list of tensors, outside
autograd. What nn.utils.clip_grad_norm_ and the optimizers build on; the optimizers'
numerics are tested against torch in test_optim.py."""
import math

import numpy as np
import pytest

import tinygradattn as tga
from tinygradattn.backend import Backend
from tinygradattn.ops import foreach


def _tensors():
    return [tga.tensor([3.0, -4.0]), tga.tensor([[1.0, 2.0], [2.0, 4.0]], dtype=tga.float64),
            tga.zeros(0)]


@pytest.mark.parametrize("norm_type", [2.0, 1, math.inf, 3.0])
def test_foreach_norm_matches_numpy_per_tensor(norm_type):
    tensors = _tensors()
    norms = foreach.foreach_norm(tensors, norm_type) if norm_type != math.inf else \
        foreach.foreach_norm(tensors[:2], norm_type)       # inf of no elements: an error
    for t, n in zip(tensors, norms):
        assert n.shape == () and n.dtype == t.dtype and not n.requires_grad
        expected = np.linalg.vector_norm(t.numpy(), ord=norm_type)
        np.testing.assert_allclose(n.item(), expected, rtol=1e-6)
    assert foreach.foreach_norm([], 2.0) == []


def test_total_norm_is_the_norm_of_the_norms_in_the_first_dtype():
    tensors = _tensors()[:2]
    total = foreach.total_norm(tensors, 2.0)
    assert total.shape == () and total.dtype == tga.float32
    np.testing.assert_allclose(total.item(), math.sqrt(25.0 + 25.0), rtol=1e-6)


def test_foreach_mul_scales_in_place_without_recording():
    w = tga.tensor([1.0, 2.0], requires_grad=True)
    (w * 3.0).sum().backward()
    grads = [w.grad, tga.tensor([2.0], dtype=tga.float64)]
    alias = grads[0].detach()
    foreach.foreach_mul_(grads, tga.tensor(0.5))
    assert alias.tolist() == [1.5, 1.5] and grads[1].tolist() == [1.0]
    assert grads[1].dtype == tga.float64 and w.grad.grad_fn is None
    foreach.foreach_mul_([], tga.tensor(0.5))                           # nothing to do


class OtherDevice(Backend):
    """A stand-in second device with no primitive at all (each raises NotImplementedError)."""
    name = "other"


OTHER = OtherDevice()                   # one object per device, as backend.get_backend keeps


def _stranger(*values):
    return tga.Tensor._wrap(np.array(values, np.float32), OTHER)


def test_tensors_on_two_devices_raise_runtime_error_naming_both():
    stranger = _stranger(0.0, 0.0)
    with pytest.raises(RuntimeError, match="foreach_norm: .* found cpu and other"):
        foreach.foreach_norm([tga.zeros(2), stranger])
    with pytest.raises(RuntimeError, match="adam_step_: .* found cpu and other"):
        foreach.adam_step_([tga.zeros(2)], [stranger], [tga.zeros(2)], [tga.zeros(2)],
                           1, 0.1, 0.9, 0.999, 1e-8, 0.0, True)


def test_optimizer_steps_group_params_by_device_one_call_each():
    here, there = tga.zeros(2), _stranger(1.0, 2.0)
    g_here, g_there = tga.ones(2), _stranger(3.0, 4.0)
    groups = foreach._by_device("adam_step_", [here, there, here], [g_here, g_there, g_here])
    assert [(b.name, len(ps), len(gs)) for b, ps, gs in groups] == [("cpu", 2, 2),
                                                                    ("other", 1, 1)]
    assert groups[1][1][0] is there._data and groups[1][2][0] is g_there._data
    # a device without the fused step: NotImplementedError before any tensor changes
    with pytest.raises(NotImplementedError, match="other"):
        foreach.adam_step_([here, there], [g_here, g_there], [tga.zeros(2), _stranger(0., 0.)],
                           [tga.zeros(2), _stranger(0., 0.)], 1, 0.1, 0.9, 0.999, 1e-8, 0.0, True)
    assert here.tolist() == [0.0, 0.0]


def test_optimizer_steps_check_grad_shapes():
    with pytest.raises(RuntimeError, match=r"sgd_step_: grad of shape \(3,\) for a parameter "
                                           r"of shape \(2,\)"):
        foreach.sgd_step_([tga.zeros(2)], [tga.zeros(3)], None, 0.1, 0.0, 0.0, 0.0, False, True)
    with pytest.raises(RuntimeError, match="2 params but a list of 1"):
        foreach.adam_step_([tga.zeros(2)] * 2, [tga.zeros(2)], [tga.zeros(2)] * 2,
                           [tga.zeros(2)] * 2, 1, 0.1, 0.9, 0.999, 1e-8, 0.0, True)


@pytest.mark.parametrize("fused", [None, False])
@pytest.mark.parametrize("make", [tga.optim.SGD, tga.optim.AdamW])
def test_optimizers_reject_a_grad_shaped_unlike_its_param(make, fused):
    p = tga.zeros(2, requires_grad=True)
    p.grad = tga.zeros(1)                 # would broadcast in the composed step
    opt = make([p], lr=0.1, fused=fused)
    with pytest.raises(RuntimeError, match=r"grad of shape \(1,\) for a parameter of shape"):
        opt.step()


@pytest.mark.parametrize("fused", [None, False])
@pytest.mark.parametrize("make", [tga.optim.SGD, tga.optim.AdamW])
def test_a_refused_step_changes_no_state(make, fused):
    """The bad gradient is the second parameter's: the first one's step count, moments and
    values must not move, so that fixing the gradient and stepping again gives exactly the
    step of an optimizer that never saw the bad one."""
    def run(bad_first):
        a = tga.tensor([1.0, 2.0], requires_grad=True)
        b = tga.tensor([3.0], requires_grad=True)
        opt = make([a, b], lr=0.1, fused=fused, **({"momentum": 0.9} if make is tga.optim.SGD
                                                   else {}))
        a.grad, b.grad = tga.tensor([0.5, -0.5]), tga.tensor([0.25])
        if bad_first:
            b.grad = tga.zeros(2)
            with pytest.raises(RuntimeError, match="grad of shape"):
                opt.step()
            assert a.tolist() == [1.0, 2.0] and opt.state_dict()["state"] == {}
            b.grad = tga.tensor([0.25])
        opt.step()
        opt.step()
        return a.tolist() + b.tolist()

    assert run(bad_first=True) == run(bad_first=False)


def test_optimizer_steps_update_the_lists_in_place():
    p = tga.tensor([1.0, -1.0])
    g = tga.tensor([0.5, 0.5])
    buf = tga.zeros(2)
    foreach.sgd_step_([p], [g], [buf], 0.1, 0.9, 0.0, 0.0, False, True)
    np.testing.assert_allclose(p.tolist(), [0.95, -1.05], rtol=1e-6)
    assert buf.tolist() == [0.5, 0.5]                                   # first step: b = g
    m, v = tga.zeros(2), tga.zeros(2)
    foreach.adam_step_([p], [g], [m], [v], 1, 0.1, 0.9, 0.999, 1e-8, 0.0, True)
    np.testing.assert_allclose(p.tolist(), [0.85, -1.15], rtol=1e-5)   # first Adam step: ~lr
    np.testing.assert_allclose(m.tolist(), [0.05, 0.05], rtol=1e-6)
