"""gradcheck: compare backward() with float64 central differences, element by element.

Sits in autograd/, below tensor.py: it never imports Tensor (nor numpy). It works through the
methods of the tensors it is given: `new_tensor` for the random weights, item writes through
a `detach()`ed alias for the perturbations, `tolist` to read gradients back.
"""
import random

from .. import dtypes
from .function import is_tensor
from .grad_mode import enable_grad


def _unravel(flat_index, shape):
    """The index tuple of element flat_index of a C-ordered array of this shape."""
    index = []
    for n in reversed(shape):
        flat_index, i = divmod(flat_index, n)
        index.append(i)
    return tuple(reversed(index))


def _numerical_jacobian_column(fn, inputs, t, flat_index, eps, douts):
    """d <douts, fn(inputs)> / d t[flat_index] by central differences."""
    alias = t.detach()                  # shares t's storage: perturb in place, then restore
    index = _unravel(flat_index, t.shape)
    orig = alias[index].item()
    alias[index] = orig + eps
    plus = _weighted_sum(fn(*inputs), douts)
    alias[index] = orig - eps
    minus = _weighted_sum(fn(*inputs), douts)
    alias[index] = orig
    return (plus - minus) / (2 * eps)


def _outputs(out):
    return out if isinstance(out, (tuple, list)) else (out,)


def _weighted_sum(out, douts):
    """sum over outputs of <o, d>, in float64 on the host."""
    return sum((o.detach().double() * d).sum().item()
               for o, d in zip(_outputs(out), douts) if d is not None)


def _random_weights(o, rng):
    """A float64 tensor shaped like o, standard normal from rng (on o's device)."""
    values = [rng.gauss(0.0, 1.0) for _ in range(o.numel())]
    return o.new_tensor(values, dtype=dtypes.float64).reshape(o.shape)


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, seed=0):
    """Check fn's analytical gradients against central differences (torch.autograd.gradcheck).

    Every floating input that requires grad must be float64. Each output is contracted with
    a fixed random weight, so one backward checks the full vector-Jacobian product against
    one finite difference per input element.

    Args:
        fn: callable taking the tensors in `inputs`, returning a Tensor or a tuple of Tensors.
        inputs: a Tensor or a tuple of Tensors (and other values passed through).
    Returns True, or raises AssertionError naming the input, index and both values
    (returns False instead with raise_exception=False).
    """
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    checked = [t for t in inputs if is_tensor(t) and t.requires_grad]
    for t in checked:
        if t.dtype != "float64":
            raise ValueError(f"gradcheck: inputs that require grad must be float64, got {t.dtype}")
    rng = random.Random(seed)
    saved_grads = [t.grad for t in checked]       # restored below: gradcheck leaves .grad alone
    with enable_grad():
        outs = _outputs(fn(*inputs))
        douts = [_random_weights(o, rng) if o.requires_grad else None for o in outs]
        for t in checked:
            t.grad = None
        total = None
        for o, d in zip(outs, douts):
            if d is not None:
                term = (o * d.to(o.dtype)).sum()
                total = term if total is None else total + term
        if total is not None:
            total.backward()
    analytics = [[0.0] * t.numel() if t.grad is None else t.grad.flatten().tolist()
                 for t in checked]
    for t, g in zip(checked, saved_grads):
        t.grad = g
    for t, analytic in zip(checked, analytics):
        n = next(i for i, x in enumerate(inputs) if x is t)
        for i in range(t.numel()):
            numeric = _numerical_jacobian_column(fn, inputs, t, i, eps, douts)
            if not abs(analytic[i] - numeric) <= atol + rtol * abs(numeric):
                msg = (f"gradcheck: input {n} {tuple(t.shape)}, flat index {i}: "
                       f"analytical {analytic[i]!r} vs numerical {numeric!r}")
                if raise_exception:
                    raise AssertionError(msg)
                return False
    return True
