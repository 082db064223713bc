"""Adam (L2 weight decay in the gradient) and AdamW (decoupled decay) (torch.optim.Adam/AdamW).

Per parameter, torch's single-tensor rule (torch/optim/adam.py), t counted from 1:

    p = p * (1 - lr * weight_decay)                AdamW: decay decoupled from the gradient
    g = g + weight_decay * p                       Adam:  L2 penalty in the gradient
    m = m + (1 - beta1) * (g - m)                  (exp_avg.lerp_(g, 1 - beta1))
    v = beta2 * v + (1 - beta2) * g * g
    p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

The step is the fused `adam_step_` foreach op: one call of the backend's `adam_step` primitive
per (group, step count, device); `_adam_composed` is its plain twin in Tensor arithmetic
(oracle and fallback).
"""
from ..creation import zeros_like
from ..ops import foreach
from .optimizer import Optimizer, check_hyper


class Adam(Optimizer):
    """Adam (torch.optim.Adam); weight_decay is an L2 penalty added to the gradient.

    Args:
        params: iterable of Tensors or of parameter-group dicts.
        lr: learning rate.
        betas: decay rates of the first and second moment averages.
        eps: added to the denominator, after the bias-corrected square root.
        weight_decay: L2 penalty (Adam) or decoupled decay rate (AdamW).
        fused: None or True use the backend's fused kernel; False the composed twin.

    Example:
        >>> import tinygradattn as tga
        >>> w = tga.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = Adam([w], lr=0.1)
        >>> (w * w).sum().backward()
        >>> opt.step()                     # the first Adam step moves each weight by ~lr
        >>> [round(x, 4) for x in w.detach().tolist()]
        [0.9, -1.9]
    """

    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, *,
                 fused=None):
        check_hyper("learning rate", lr, lambda v: v >= 0.0)
        check_hyper("epsilon value", eps, lambda v: v >= 0.0)
        if not isinstance(betas, (tuple, list)):
            raise TypeError(f"Invalid betas: expected a pair of numbers, got "
                            f"{type(betas).__name__}")
        if len(betas) != 2:
            raise IndexError(f"Invalid betas: expected 2 values (beta1, beta2), got "
                             f"{len(betas)}")
        for i in (0, 1):
            check_hyper(f"beta parameter at index {i}", betas[i], lambda v: 0.0 <= v < 1.0)
        check_hyper("weight_decay value", weight_decay, lambda v: v >= 0.0)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        fused=fused)
        super().__init__(params, defaults)

    def _step_group(self, group):
        buckets = {}                 # step -> [(p, g)]: one kernel call per device each
        for p, g in self._with_grads(group):
            st = self.state.setdefault(p, {})
            if not st:
                st["step"] = 0.0
                st["exp_avg"] = zeros_like(p)
                st["exp_avg_sq"] = zeros_like(p)
            st["step"] += 1
            buckets.setdefault(st["step"], []).append((p, g))
        beta1, beta2 = group["betas"]
        for step, items in buckets.items():
            params = [p for p, _ in items]
            grads = [g for _, g in items]
            m = [self.state[p]["exp_avg"] for p in params]
            v = [self.state[p]["exp_avg_sq"] for p in params]
            args = (step, group["lr"], beta1, beta2, group["eps"], group["weight_decay"],
                    self._decoupled)
            if group["fused"] is False:
                _adam_composed(params, grads, m, v, *args)
                continue
            try:
                foreach.adam_step_(params, grads, m, v, *args)
            except NotImplementedError:          # a backend without the fused primitive
                if group["fused"]:
                    raise
                _adam_composed(params, grads, m, v, *args)


class AdamW(Adam):
    """Adam with decoupled weight decay, p *= 1 - lr * weight_decay (torch.optim.AdamW).

    Same arguments as Adam; weight_decay defaults to 1e-2, as in torch.

    Example:
        >>> import tinygradattn as tga
        >>> w = tga.tensor([1.0], requires_grad=True)
        >>> opt = AdamW([w], lr=0.1, weight_decay=0.5)
        >>> w.sum().backward()
        >>> opt.step()                     # 1 * (1 - 0.1 * 0.5) - 0.1
        >>> round(w.item(), 4)
        0.85
    """

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, *,
                 fused=None):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         fused=fused)


def _adam_composed(params, grads, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps,
                   weight_decay, decoupled):
    """The plain twin of the adam_step primitive, in Tensor arithmetic (under no_grad).

    Same order as the fused kernel and torch; where those use one FMA (L2 decay, lerp) this
    rounds twice, so float32 agrees to rounding, not to the bit.
    """
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    step_size = lr / bias_correction1
    bias_correction2_sqrt = bias_correction2 ** 0.5
    w = 1 - beta1
    for p, g, m, v in zip(params, grads, exp_avgs, exp_avg_sqs):
        new_p = p
        if weight_decay != 0:
            if decoupled:
                new_p = p * (1 - lr * weight_decay)
            else:
                g = g + p * weight_decay
        d = g - m
        # torch's lerp: from the nearer end, so that weight 1 gives exactly g
        new_m = m + d * w if abs(w) < 0.5 else g + d * (w - 1)
        new_v = v * beta2 + (g * (1 - beta2)) * g
        denom = new_v.sqrt() / bias_correction2_sqrt + eps
        p[...] = new_p + (new_m * -step_size) / denom
        m[...] = new_m
        v[...] = new_v
