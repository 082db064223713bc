"""Foreach ops (tinygradattn.ops.foreach): one backend call over a list of tensors, outside
autograd. What nn.utils.clip_grad_norm_ and the optimizers build on; the optimizers'
numerics are tested against torch in test_optim.py."""
import math

import numpy as np
import pytest

import tinygradattn as tga
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


def test_tensors_on_two_devices_raise_runtime_error_naming_both():
    class OtherDevice:                  # a stand-in backend: the check comes before any call
        name = "other"
    stranger = tga.Tensor._wrap(np.zeros(2, np.float32), OtherDevice())
    with pytest.raises(RuntimeError, match="foreach_norm: .* found cpu and other"):
        foreach.foreach_norm([tga.zeros(2), stranger])
    with pytest.raises(RuntimeError, match="adam_step_: .* found cpu and other"):
        foreach.adam_step_([tga.zeros(2)], [stranger], [tga.zeros(2)], [tga.zeros(2)],
                           1, 0.1, 0.9, 0.999, 1e-8, 0.0, True)


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
