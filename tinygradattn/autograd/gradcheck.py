"""gradcheck: compare backward() with float64 central differences, element by element."""
import numpy as np

from .grad_mode import enable_grad


def _numerical_jacobian_column(fn, inputs, t, flat_index, eps, douts):
    """d <douts, fn(inputs)> / d t[flat_index] by central differences."""
    data = t._data.reshape(-1)          # a view: perturb in place, then restore
    orig = float(data[flat_index])
    data[flat_index] = orig + eps
    plus = _weighted_sum(fn(*inputs), douts)
    data[flat_index] = orig - eps
    minus = _weighted_sum(fn(*inputs), douts)
    data[flat_index] = orig
    return (plus - minus) / (2 * eps)


def _outputs(out):
    return out if isinstance(out, (tuple, list)) else (out,)


def _weighted_sum(out, douts):
    return sum(float(np.sum(o.detach().numpy().astype(np.float64) * d))
               for o, d in zip(_outputs(out), douts) if d is not None)


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, seed=0):
    """Check fn's analytical gradients against central differences (torch.autograd.gradcheck).

    Every floating input that requires grad must be float64 and contiguous. Each output is
    contracted with a fixed random weight, so one backward checks the full vector-Jacobian
    product against one finite difference per input element.

    Args:
        fn: callable taking the tensors in `inputs`, returning a Tensor or a tuple of Tensors.
        inputs: a Tensor or a tuple of Tensors (and other values passed through).
    Returns True, or raises AssertionError naming the input, index and both values
    (returns False instead with raise_exception=False).
    """
    from ..tensor import Tensor
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    checked = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    for t in checked:
        if t.dtype != "float64":
            raise ValueError(f"gradcheck: inputs that require grad must be float64, got {t.dtype}")
    rng = np.random.default_rng(seed)
    saved_grads = [t.grad for t in checked]       # restored below: gradcheck leaves .grad alone
    with enable_grad():
        outs = _outputs(fn(*inputs))
        douts = [rng.standard_normal(o.shape) if o.requires_grad else None for o in outs]
        for t in checked:
            t.grad = None
        total = None
        for o, d in zip(outs, douts):
            if d is not None:
                term = (o * Tensor._wrap(d.astype(o._data.dtype), o._backend)).sum()
                total = term if total is None else total + term
        if total is not None:
            total.backward()
    analytics = [np.zeros(t.shape) if t.grad is None else t.grad.numpy() for t in checked]
    for t, g in zip(checked, saved_grads):
        t.grad = g
    for t, analytic in zip(checked, analytics):
        n = next(i for i, x in enumerate(inputs) if x is t)
        analytic = analytic.reshape(-1)
        for i in range(t.numel()):
            numeric = _numerical_jacobian_column(fn, inputs, t, i, eps, douts)
            if not abs(analytic[i] - numeric) <= atol + rtol * abs(numeric):
                msg = (f"gradcheck: input {n} {tuple(t.shape)}, flat index {i}: "
                       f"analytical {analytic[i]!r} vs numerical {numeric!r}")
                if raise_exception:
                    raise AssertionError(msg)
                return False
    return True
