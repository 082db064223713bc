"""Elementwise ops: arithmetic, unary math, clamp, maximum/minimum, where, casts.

Binary ops receive operands of one dtype (the Tensor layer promotes first) or an array and
a Python scalar. Gradients come back in the broadcast shape; the engine sums them down.
"""
import math

from ..autograd.function import Function


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        return ctx.backend.add(a, b)

    @staticmethod
    def backward(ctx, dout):
        return dout, dout


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        return ctx.backend.sub(a, b)

    @staticmethod
    def backward(ctx, dout):
        return dout, (ctx.backend.neg(dout) if ctx.needs_input_grad[1] else None)


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return ctx.backend.mul(a, b)

    @staticmethod
    def backward(ctx, dout):
        a, b = ctx.saved_tensors
        mul = ctx.backend.mul
        da = mul(dout, b) if ctx.needs_input_grad[0] else None
        db = mul(dout, a) if ctx.needs_input_grad[1] else None
        return da, db


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        out = ctx.backend.div(a, b)
        ctx.save_for_backward(b, out)
        return out

    @staticmethod
    def backward(ctx, dout):
        # fwd: y = a / b  =>  da = dout / b,  db = -dout * a / b^2 = -dout * y / b
        b, out = ctx.saved_tensors
        be = ctx.backend
        da = be.div(dout, b) if ctx.needs_input_grad[0] else None
        db = be.neg(be.div(be.mul(dout, out), b)) if ctx.needs_input_grad[1] else None
        return da, db


class Pow(Function):
    @staticmethod
    def forward(ctx, a, b):
        out = ctx.backend.pow(a, b)
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, dout):
        # fwd: y = a^b  =>  da = dout * b * a^(b-1),  db = dout * y * log(a)
        a, b, out = ctx.saved_tensors
        be = ctx.backend
        da = db = None
        if ctx.needs_input_grad[0]:
            da = be.mul(dout, be.mul(b, be.pow(a, be.sub(b, 1))))
        if ctx.needs_input_grad[1]:
            # torch defines d/db of 0^b as 0 where b >= 0 (log(0) would give nan)
            log_a = be.log(be.where(be.eq(a, 0), 1, a))
            db = be.mul(dout, be.mul(out, log_a))
        return da, db


class Neg(Function):
    @staticmethod
    def forward(ctx, x):
        return ctx.backend.neg(x)

    @staticmethod
    def backward(ctx, dout):
        return ctx.backend.neg(dout)


class Exp(Function):
    @staticmethod
    def forward(ctx, x):
        out = ctx.backend.exp(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, dout):
        out, = ctx.saved_tensors              # fwd: y = e^x  =>  dx = dout * y
        return ctx.backend.mul(dout, out)


class Log(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.backend.log(x)

    @staticmethod
    def backward(ctx, dout):
        x, = ctx.saved_tensors                # fwd: y = log x  =>  dx = dout / x
        return ctx.backend.div(dout, x)


class Sqrt(Function):
    @staticmethod
    def forward(ctx, x):
        out = ctx.backend.sqrt(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, dout):
        out, = ctx.saved_tensors              # fwd: y = sqrt x  =>  dx = dout / (2 y)
        return ctx.backend.div(dout, ctx.backend.mul(out, 2))


class Tanh(Function):
    @staticmethod
    def forward(ctx, x):
        out = ctx.backend.tanh(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, dout):
        out, = ctx.saved_tensors              # fwd: y = tanh x  =>  dx = dout * (1 - y^2)
        be = ctx.backend
        return be.mul(dout, be.sub(1, be.mul(out, out)))


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        out = ctx.backend.sigmoid(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, dout):
        out, = ctx.saved_tensors              # fwd: y = 1/(1+e^-x)  =>  dx = dout * y (1 - y)
        be = ctx.backend
        return be.mul(dout, be.mul(out, be.sub(1, out)))


class Relu(Function):
    @staticmethod
    def forward(ctx, x):
        out = ctx.backend.relu(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, dout):
        out, = ctx.saved_tensors              # gradient flows where the output is positive
        be = ctx.backend
        return be.where(be.gt(out, 0), dout, be.zeros((), dout.dtype))


class Abs(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.backend.abs(x)

    @staticmethod
    def backward(ctx, dout):
        x, = ctx.saved_tensors                # torch: d|x|/dx = sign(x), 0 at x = 0
        return ctx.backend.mul(dout, ctx.backend.sign(x))


class Erf(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.backend.erf(x)

    @staticmethod
    def backward(ctx, dout):
        x, = ctx.saved_tensors                # d erf(x)/dx = 2/sqrt(pi) * exp(-x^2)
        be = ctx.backend
        return be.mul(dout, be.mul(be.exp(be.neg(be.mul(x, x))), 2.0 / math.sqrt(math.pi)))


class Sin(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.backend.sin(x)

    @staticmethod
    def backward(ctx, dout):
        x, = ctx.saved_tensors                # fwd: y = sin x  =>  dx = dout * cos x
        return ctx.backend.mul(dout, ctx.backend.cos(x))


class Cos(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.backend.cos(x)

    @staticmethod
    def backward(ctx, dout):
        x, = ctx.saved_tensors                # fwd: y = cos x  =>  dx = -dout * sin x
        be = ctx.backend
        return be.mul(dout, be.neg(be.sin(x)))


class Rsqrt(Function):
    """1 / sqrt(x) (torch.rsqrt): NaN below 0, inf at 0."""

    @staticmethod
    def forward(ctx, x):
        be = ctx.backend
        out = be.div(1.0, be.sqrt(x))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, dout):
        out, = ctx.saved_tensors              # fwd: y = x^(-1/2)  =>  dx = -dout * y^3 / 2
        be = ctx.backend
        return be.mul(dout, be.mul(be.mul(out, be.mul(out, out)), -0.5))


class Silu(Function):
    """x * sigmoid(x) (torch.nn.functional.silu)."""

    @staticmethod
    def forward(ctx, x):
        be = ctx.backend
        s = be.sigmoid(x)
        ctx.save_for_backward(x, s)
        return be.mul(x, s)

    @staticmethod
    def backward(ctx, dout):
        # fwd: y = x s, s = sigmoid(x)  =>  dx = dout * s * (1 + x (1 - s))  (torch's form)
        x, s = ctx.saved_tensors
        be = ctx.backend
        return be.mul(dout, be.mul(s, be.add(1, be.mul(x, be.sub(1, s)))))


class _Stepwise(Function):
    """floor / ceil / round / sign: piecewise constant, so a zero gradient (as torch gives)."""

    pick = None   # the backend primitive name

    @classmethod
    def forward(cls, ctx, x):
        return getattr(ctx.backend, cls.pick)(x)

    @staticmethod
    def backward(ctx, dout):
        return ctx.backend.zeros(dout.shape, dout.dtype)


class Floor(_Stepwise):
    pick = "floor"


class Ceil(_Stepwise):
    pick = "ceil"


class Sign(_Stepwise):
    pick = "sign"

    @classmethod
    def forward(cls, ctx, x):
        out = ctx.backend.sign(x)
        if x.dtype.kind != "f":
            return out
        return ctx.backend.where(ctx.backend.ne(x, x), 0, out)     # torch: sign(NaN) = 0


class Round(Function):
    """Round half to even (torch.round); with decimals as torch computes it: round(x * 10^d)
    / 10^d, or round(x / 10^-d) * 10^-d for negative d. A zero gradient, as torch gives."""

    @staticmethod
    def forward(ctx, x, decimals):
        be = ctx.backend
        if decimals == 0:
            return be.round(x)
        scale = float(10 ** abs(decimals))
        if decimals > 0:
            return be.div(be.round(be.mul(x, scale)), scale)
        return be.mul(be.round(be.div(x, scale)), scale)

    @staticmethod
    def backward(ctx, dout):
        return ctx.backend.zeros(dout.shape, dout.dtype), None


class Clamp(Function):
    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.save_for_backward(x)
        ctx.lo, ctx.hi = lo, hi
        return ctx.backend.clip(x, lo, hi)

    @staticmethod
    def backward(ctx, dout):
        x, = ctx.saved_tensors                # torch: gradient passes where lo <= x <= hi
        be = ctx.backend
        keep = None
        if ctx.lo is not None:
            keep = be.ge(x, ctx.lo)
        if ctx.hi is not None:
            below = be.le(x, ctx.hi)
            keep = below if keep is None else be.mul(keep, below)
        dx = dout if keep is None else be.where(keep, dout, be.zeros((), dout.dtype))
        return dx, None, None


class _MaxMin(Function):
    """maximum / minimum; at ties each side gets half the gradient, as in PyTorch."""

    pick = None   # the backend primitive name

    @classmethod
    def forward(cls, ctx, a, b):
        ctx.save_for_backward(a, b)
        return getattr(ctx.backend, cls.pick)(a, b)

    @classmethod
    def backward(cls, ctx, dout):
        a, b = ctx.saved_tensors
        be = ctx.backend
        a_wins = be.gt(a, b) if cls.pick == "maximum" else be.lt(a, b)
        half = be.mul(dout, 0.5)
        zero = be.zeros((), dout.dtype)
        tie = be.eq(a, b)
        da = be.where(a_wins, dout, be.where(tie, half, zero))
        db = be.where(a_wins, zero, be.where(tie, half, dout))
        return da, db


class Maximum(_MaxMin):
    pick = "maximum"


class Minimum(_MaxMin):
    pick = "minimum"


class Where(Function):
    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.save_for_backward(cond)
        return ctx.backend.where(cond, a, b)

    @staticmethod
    def backward(ctx, dout):
        cond, = ctx.saved_tensors
        be = ctx.backend
        zero = be.zeros((), dout.dtype)
        da = be.where(cond, dout, zero) if ctx.needs_input_grad[1] else None
        db = be.where(cond, zero, dout) if ctx.needs_input_grad[2] else None
        return None, da, db


class Cast(Function):
    """Change dtype; the gradient goes back in the input's dtype (the engine casts it)."""

    @staticmethod
    def forward(ctx, x, dtype):
        return ctx.backend.astype(x, dtype)

    @staticmethod
    def backward(ctx, dout):
        return dout, None
