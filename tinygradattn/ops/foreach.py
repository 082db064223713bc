"""Foreach ops: one backend call over a list of tensors, outside autograd (torch._foreach_norm,
torch._foreach_mul_, the fused SGD and Adam steps of torch.optim).

Sits in ops/, where tensors meet the backend: nn.utils and optim call these instead of reaching
into a tensor's array, so a second device changes nothing above this file. Nothing here is
recorded in a graph and no result requires grad, as under torch.no_grad; the in-place ones
write through the tensors' storage (the optimizers call them under no_grad).
"""


def _arrays(tensors, backend, name):
    """The tensors' backend arrays; RuntimeError when one sits on another device."""
    arrays = []
    for t in tensors:
        if t._backend is not backend:
            raise RuntimeError(f"{name}: expected all tensors on the same device, found "
                               f"{backend.name} and {t._backend.name}")
        arrays.append(t._data)
    return arrays


def foreach_norm(tensors, norm_type=2.0):
    """The vector norm of each tensor over all its elements (torch._foreach_norm).

    Args:
        tensors: a list of Tensors on one device.
        norm_type: 2.0, 1, inf, -inf, 0 or any p > 0.
    Returns a list of 0-d Tensors, each in its tensor's dtype.

        >>> import tinygradattn as tga
        >>> [n.item() for n in foreach_norm([tga.tensor([3., 4.]), tga.tensor([-2.])])]
        [5.0, 2.0]
    """
    if not tensors:
        return []
    backend = tensors[0]._backend
    norms = backend.foreach_norm(_arrays(tensors, backend, "foreach_norm"), float(norm_type))
    return [tensors[0]._wrap(n, backend) for n in norms]


def total_norm(tensors, norm_type=2.0):
    """The norm of the per-tensor norms, stacked in tensors[0]'s dtype: what clip_grad_norm_
    reports (torch.nn.utils.get_total_norm). A 0-d Tensor; tensors must not be empty.

        >>> import tinygradattn as tga
        >>> total_norm([tga.tensor([3.]), tga.tensor([4.])]).item()
        5.0
    """
    backend = tensors[0]._backend
    norm_type = float(norm_type)
    norms = backend.foreach_norm(_arrays(tensors, backend, "total_norm"), norm_type)  # 0-d each
    dtype = tensors[0]._data.dtype               # torch stacks the norms in tensors[0]'s dtype
    per_tensor = backend.concatenate([backend.reshape(backend.astype(n, dtype), (1,))
                                      for n in norms], 0)                   # (n_tensors,)
    return tensors[0]._wrap(backend.foreach_norm([per_tensor], norm_type)[0], backend)


def foreach_mul_(tensors, scalar):
    """Every tensor *= scalar, in place (torch._foreach_mul_).

    Args:
        tensors: a list of Tensors on one device.
        scalar: a 0-d Tensor on that device, cast to each tensor's dtype.
    """
    if not tensors:
        return
    backend = tensors[0]._backend
    scale = _arrays([scalar], backend, "foreach_mul_")[0]
    backend.foreach_mul_(_arrays(tensors, backend, "foreach_mul_"), scale)
    _bump(tensors)


def _bump(tensors):
    """Count an in-place write in each tensor's version counter (see autograd/function.py):
    a step between forward and backward makes backward refuse the stale saved weights."""
    for t in tensors:
        t._version[0] += 1


# ---- optimizer steps: one fused kernel call per device ------------------------------------------
def _by_device(name, params, grads, *states):
    """[(backend, param arrays, grad arrays, *state arrays)], one entry per device of params:
    a single pass when they share one (the usual case), as torch's foreach ops group tensors.

    states: lists parallel to params, or None. RuntimeError when a list's length differs,
    a grad or state sits on another device than its param, or a grad has another shape.
    """
    for other in (grads, *states):
        if other is not None and len(other) != len(params):
            raise RuntimeError(f"{name}: {len(params)} params but a list of {len(other)}")
    backend = params[0]._backend
    ps = []
    for p in params:
        if p._backend is not backend:
            return _split_by_device(name, params, grads, *states)
        ps.append(p._data)
    gs = []
    for p, g in zip(ps, grads):
        if g._backend is not backend or g._data.shape != p.shape:
            _arrays([g], backend, name)                  # raises for the device
            raise RuntimeError(f"{name}: grad of shape {tuple(g.shape)} for a parameter of "
                               f"shape {tuple(p.shape)}")
        gs.append(g._data)
    return [(backend, ps, gs, *[None if st is None else _arrays(st, backend, name)
                                for st in states])]


def _split_by_device(name, params, grads, *states):
    rows = {}                                    # backend -> indices of its params
    for i, p in enumerate(params):
        rows.setdefault(p._backend, []).append(i)
    groups = []
    for idx in rows.values():
        def pick(ts):
            return None if ts is None else [ts[i] for i in idx]
        groups += _by_device(name, pick(params), pick(grads), *map(pick, states))
    return groups


def sgd_step_(params, grads, momentum_bufs, lr, momentum, dampening, weight_decay, nesterov,
              first_step):
    """One SGD step in place, one call of the backend's fused `sgd_step` per device
    (torch.optim.SGD's single-tensor rule; see optim/sgd.py).

    momentum_bufs: a list parallel to params, or None without momentum; first_step: the
    buffers are filled with the gradients instead of updated. NotImplementedError, before
    any tensor changes, when a device has no fused step (the caller falls back to the
    composed twin).
    """
    if not params:
        return
    groups = _by_device("sgd_step_", params, grads, momentum_bufs)
    kernels = [backend.sgd_step for backend, *_ in groups]     # NotImplementedError here
    for kernel, (_, ps, gs, bufs) in zip(kernels, groups):
        kernel(ps, gs, bufs, lr, momentum, dampening, weight_decay, nesterov, first_step)
    _bump(params)


def adam_step_(params, grads, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps,
               weight_decay, decoupled):
    """One Adam / AdamW step in place, one call of the backend's fused `adam_step` per device
    (torch.optim.Adam's single-tensor rule; see optim/adam.py).

    step counts from 1 (after its increment); decoupled: AdamW's p *= 1 - lr * weight_decay,
    else Adam's L2 term in the gradient. NotImplementedError, before any tensor changes, when
    a device has no fused step (the caller falls back to the composed twin).
    """
    if not params:
        return
    groups = _by_device("adam_step_", params, grads, exp_avgs, exp_avg_sqs)
    kernels = [backend.adam_step for backend, *_ in groups]    # NotImplementedError here
    for kernel, (_, ps, gs, ms, vs) in zip(kernels, groups):
        kernel(ps, gs, ms, vs, step, lr, beta1, beta2, eps, weight_decay, decoupled)
    _bump(params)
