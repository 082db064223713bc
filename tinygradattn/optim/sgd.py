"""SGD with momentum, dampening, Nesterov and L2 weight decay (torch.optim.SGD).

Per parameter, torch's single-tensor rule (torch/optim/sgd.py):

    g = g + weight_decay * p                       if weight_decay != 0
    b = g                                          on the first step (no dampening)
    b = momentum * b + (1 - dampening) * g         afterwards
    g = g + momentum * b if nesterov else b        if momentum != 0
    p = p - lr * g

The step is the fused `sgd_step_` foreach op (the backend's `sgd_step` primitive: one call per
group and device); `_sgd_composed` is its plain twin, in Tensor arithmetic: the test oracle,
and the path for a backend without the primitive (or `fused=False`).
"""
from ..creation import zeros_like
from ..ops import foreach
from .optimizer import Optimizer, check_hyper


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum (torch.optim.SGD).

    Args:
        params: iterable of Tensors or of parameter-group dicts.
        lr: learning rate (torch's default 1e-3).
        momentum: momentum factor; 0 keeps no state.
        dampening: dampening of the momentum (not applied on the first step, as in torch).
        weight_decay: L2 penalty added to the gradient.
        nesterov: Nesterov momentum (needs momentum > 0 and dampening 0).
        fused: None or True use the backend's fused kernel; False the composed twin.

    Example:
        >>> import tinygradattn as tga
        >>> w = tga.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = SGD([w], lr=0.1, momentum=0.9)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> w.detach().tolist()
        [0.800000011920929, -1.600000023841858]
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, *, fused=None):
        check_hyper("learning rate", lr, lambda v: v >= 0.0)
        check_hyper("momentum value", momentum, lambda v: v >= 0.0)
        check_hyper("dampening value", dampening, lambda v: v == v)
        check_hyper("weight_decay value", weight_decay, lambda v: v >= 0.0)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, fused=fused)
        super().__init__(params, defaults)

    def _step_group(self, group):
        pairs = self._with_grads(group)
        momentum = group["momentum"]
        # buckets: first step? -> params; a bucket is one kernel call per device
        buckets = {}
        for p, g in pairs:
            first = False
            if momentum != 0:
                st = self.state.setdefault(p, {})
                if st.get("momentum_buffer") is None:
                    st["momentum_buffer"] = zeros_like(p)
                    first = True
            buckets.setdefault(first, []).append((p, g))
        for first, items in buckets.items():
            params = [p for p, _ in items]
            grads = [g for _, g in items]
            bufs = [self.state[p]["momentum_buffer"] for p in params] if momentum != 0 else None
            args = (group["lr"], momentum, group["dampening"], group["weight_decay"],
                    group["nesterov"], first)
            if group["fused"] is False:
                _sgd_composed(params, grads, bufs, *args)
                continue
            try:
                foreach.sgd_step_(params, grads, bufs, *args)
            except NotImplementedError:          # a backend without the fused primitive
                if group["fused"]:
                    raise
                _sgd_composed(params, grads, bufs, *args)


def _sgd_composed(params, grads, bufs, lr, momentum, dampening, weight_decay, nesterov,
                  first_step):
    """The plain twin of the sgd_step primitive, in Tensor arithmetic (called under no_grad).

    Same order as the fused kernel; torch's `add(x, alpha=a)` is one FMA there and a
    multiply-then-add here, so float32 results agree to rounding, not to the bit.
    """
    for i, (p, g) in enumerate(zip(params, grads)):
        if weight_decay != 0:
            g = g + p * weight_decay
        if momentum != 0:
            b = g if first_step else bufs[i] * momentum + g * (1 - dampening)
            bufs[i][...] = b
            g = g + b * momentum if nesterov else b
        p[...] = p + g * (-lr)
