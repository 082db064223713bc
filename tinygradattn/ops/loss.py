"""Binary cross-entropy, from probabilities and from logits: elementwise losses whose composed
forms would lose their gradient at the edges (log(0), |x| at 0), so each is one Function here,
made of existing elementwise primitives (no kernel of its own).

Both give the unreduced, unweighted loss shaped like input; nn.functional multiplies by
`weight` and reduces with Tensor ops. Inputs: one float dtype, target shaped like input;
pos_weight broadcasts against input (the engine sums its gradient back to its shape).
"""
from ..autograd.function import Function

_LOG_MIN = -100.0           # torch clamps each log term of binary_cross_entropy here,
_TINY = 1e-44               # (so log(max(x, 1e-44)) clamps the same without taking log 0)
_EPS = 9.999999960041972e-13    # and the denominator of its input gradient at float32(1e-12)


class BinaryCrossEntropy(Function):
    """-(t log x + (1 - t) log(1 - x)), each log clamped at -100 (torch's binary_cross_entropy).

    The input gradient is torch's (x - t) / max(x (1 - x), 1e-12): finite at x = 0 or 1 (a
    saturated sigmoid), where differentiating the clamped logs would give NaN. The target
    gradient log(1 - x) - log(x) uses the clamped logs (finite; torch's is +-inf there).
    """

    @staticmethod
    def forward(ctx, x, t):                                        # x, t: (*), x in [0, 1]
        be = ctx.backend
        log_x = be.clip(be.log(be.clip(x, _TINY, None)), _LOG_MIN, None)              # (*)
        log_1mx = be.clip(be.log(be.clip(be.sub(1, x), _TINY, None)), _LOG_MIN, None)  # (*)
        ctx.save_for_backward(x, t, log_x, log_1mx)
        # loss = -(t log x + (1 - t) log(1 - x)) = (t - 1) log(1 - x) - t log x
        return be.sub(be.mul(be.sub(t, 1), log_1mx), be.mul(t, log_x))

    @staticmethod
    def backward(ctx, dout):
        # dx = dout (x - t) / max(x (1 - x), eps);  dt = dout (log(1 - x) - log x)
        x, t, log_x, log_1mx = ctx.saved_tensors
        be = ctx.backend
        dx = dt = None
        if ctx.needs_input_grad[0]:
            denom = be.clip(be.mul(x, be.sub(1, x)), _EPS, None)
            dx = be.div(be.mul(dout, be.sub(x, t)), denom)
        if ctx.needs_input_grad[1]:
            dt = be.mul(dout, be.sub(log_1mx, log_x))
        return dx, dt


class BinaryCrossEntropyWithLogits(Function):
    """(1 - t) x + l softplus(-x), l = 1 + (pos_weight - 1) t (1 without pos_weight): torch's
    binary_cross_entropy_with_logits, with softplus(-x) = max(-x, 0) + log(1 + e^-|x|) so that
    no exp overflows; the gradient is the closed form (1 - t) - l sigmoid(-x), exact at x = 0.
    """

    @staticmethod
    def forward(ctx, x, t, pos_weight):                 # x, t: (*); pos_weight: (C,) | None
        be = ctx.backend
        soft = be.add(be.relu(be.neg(x)), be.log(be.add(be.exp(be.neg(be.abs(x))), 1)))
        lw = None if pos_weight is None else be.add(be.mul(be.sub(pos_weight, 1), t), 1)
        ctx.save_for_backward(x, t, pos_weight, soft, lw)
        weighted = soft if lw is None else be.mul(lw, soft)
        return be.add(be.mul(be.sub(1, t), x), weighted)                           # (*)

    @staticmethod
    def backward(ctx, dout):
        # dx = dout ((1 - t) - l sigmoid(-x));  dt = dout ((pos_weight - 1) softplus(-x) - x);
        # dpos_weight = dout t softplus(-x)
        x, t, pos_weight, soft, lw = ctx.saved_tensors
        be = ctx.backend
        dx = dt = dpw = None
        if ctx.needs_input_grad[0]:
            sig_neg = be.sigmoid(be.neg(x))
            dx = be.mul(dout, be.sub(be.sub(1, t), sig_neg if lw is None else be.mul(lw, sig_neg)))
        if ctx.needs_input_grad[1]:
            dt = be.neg(x) if pos_weight is None else \
                be.sub(be.mul(be.sub(pos_weight, 1), soft), x)
            dt = be.mul(dout, dt)
        if ctx.needs_input_grad[2]:
            dpw = be.mul(dout, be.mul(t, soft))
        return dx, dt, dpw
