"""Gradient utilities: clip_grad_norm_ (torch.nn.utils.clip_grad_norm_).

Works on any iterable of Tensors (or one Tensor) whose .grad is set; it runs under no_grad
and rescales the gradients in place, so the next optimizer.step() sees the clipped ones.
Sits in nn/, above ops/: the norms and the rescaling are foreach ops (one backend call per
list of gradients), never a tensor's array.
"""
import math

from ..autograd.grad_mode import no_grad
from ..creation import tensor
from ..ops import foreach
from ..tensor import Tensor


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale the gradients so that their joint norm is at most max_norm; return that norm.

    torch's formula: total = norm(stack([norm(g) for g in grads])) of order norm_type
    (inf: the largest |g|), then every g *= min(1, max_norm / (total + 1e-6)).

    Args:
        parameters: a Tensor or an iterable of Tensors; those without .grad are skipped.
        max_norm: the largest norm allowed.
        norm_type: order of the norm: 2.0 (default), 1, inf, or any p > 0.
        error_if_nonfinite: raise RuntimeError when the total norm is nan or inf (else the
            gradients are scaled by the non-finite coefficient, as torch does).

    Returns:
        the total norm of the gradients before clipping, a 0-d Tensor.

    Example:
        >>> import tinygradattn as tga
        >>> w = tga.tensor([3.0, 4.0], requires_grad=True)
        >>> w.backward(tga.tensor([3.0, 4.0]))
        >>> round(clip_grad_norm_([w], max_norm=1.0).item(), 4)
        5.0
        >>> [round(g, 4) for g in w.grad.tolist()]
        [0.6, 0.8]
    """
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    max_norm = _as_float("max_norm", max_norm)
    norm_type = _as_float("norm_type", norm_type)
    try:
        parameters = list(parameters)
    except TypeError:
        raise TypeError(f"clip_grad_norm_: parameters must be a Tensor or an iterable of "
                        f"Tensors, got {type(parameters).__name__}") from None
    for p in parameters:
        if not isinstance(p, Tensor):
            raise TypeError(f"clip_grad_norm_: parameters must hold Tensors, got "
                            f"{type(p).__name__}")
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return tensor(0.0)
    with no_grad():
        # one backend call per list, not a few Tensor ops per gradient (53 in a small GPT)
        total_norm = foreach.total_norm(grads, norm_type)                       # 0-d
        if error_if_nonfinite and not math.isfinite(total_norm.item()):
            raise RuntimeError(f"The total norm of order {norm_type} for gradients from "
                               "`parameters` is non-finite, so it cannot be clipped. To disable "
                               "this error and scale the gradients by the non-finite norm "
                               "anyway, set `error_if_nonfinite=False`")
        clip_coef = (max_norm / (total_norm + 1e-6)).clamp(max=1.0)
        foreach.foreach_mul_(grads, clip_coef)
    return total_norm


def _as_float(name, value):
    """float(value), with the argument named when it is not a number (torch's classes:
    TypeError for None, ValueError for a string)."""
    try:
        return float(value)
    except (TypeError, ValueError) as e:
        raise type(e)(f"clip_grad_norm_: {name} must be a number, got {value!r}") from None
