"""Reductions: sum, mean, max/min (overall and along one dim), prod, cumsum, vector norms.

`axis` is None (all) or a tuple of non-negative dims, already checked by the Tensor layer.
Backward reshapes dout to the kept-dims shape and broadcasts it back over x.
"""
import math

from ..autograd.function import Function


def _kept_shape(shape, axis):
    """The reduced shape with keepdims=True."""
    if axis is None:
        return (1,) * len(shape)
    return tuple(1 if d in axis else n for d, n in enumerate(shape))


class Sum(Function):
    @staticmethod
    def forward(ctx, x, axis, keepdims):
        ctx.shape, ctx.axis = x.shape, axis
        return ctx.backend.sum(x, axis, keepdims)

    @staticmethod
    def backward(ctx, dout):
        be = ctx.backend
        dout = be.reshape(dout, _kept_shape(ctx.shape, ctx.axis))
        return be.broadcast_to(dout, ctx.shape), None, None


class Mean(Function):
    @staticmethod
    def forward(ctx, x, axis, keepdims):
        ctx.shape, ctx.axis = x.shape, axis
        total = ctx.backend.sum(x, axis, keepdims)
        ctx.count = x.size // max(total.size, 1) if x.size else 0
        return ctx.backend.div(total, ctx.count if ctx.count else float("nan"))

    @staticmethod
    def backward(ctx, dout):
        be = ctx.backend
        dout = be.div(be.reshape(dout, _kept_shape(ctx.shape, ctx.axis)), max(ctx.count, 1))
        return be.broadcast_to(dout, ctx.shape), None, None


class MaxMin(Function):
    """max or min over all elements or one dim.

    Over all elements the gradient is shared evenly by the tied extrema (torch's max());
    along a dim it goes to the index the forward chose (torch's max(dim), first occurrence).
    """

    @staticmethod
    def forward(ctx, x, axis, keepdims, is_max):
        be = ctx.backend
        out = (be.max if is_max else be.min)(x, axis, keepdims)
        ctx.shape, ctx.axis = x.shape, axis
        if axis is None:
            ctx.save_for_backward(x, out)
        else:
            arg = be.argmax if is_max else be.argmin
            ctx.save_for_backward(arg(x, axis[0], True))         # indices, kept dim
        return out

    @staticmethod
    def backward(ctx, dout):
        be = ctx.backend
        dout = be.reshape(dout, _kept_shape(ctx.shape, ctx.axis))
        if ctx.axis is None:
            x, out = ctx.saved_tensors
            hits = be.astype(be.eq(x, out), dout.dtype)
            return be.div(be.mul(hits, dout), be.sum(hits, None, False)), None, None, None
        indices, = ctx.saved_tensors
        dx = be.zeros(ctx.shape, dout.dtype)
        dim = ctx.axis[0]
        index = tuple(indices if d == dim else _axis_range(be, ctx.shape, d)
                      for d in range(len(ctx.shape)))
        be.index_add(dx, index, dout)
        return dx, None, None, None


class Prod(Function):
    """The product over axis (torch.prod). Its gradient is the product of the other elements,
    right with zeros in x: out / x in a slice without zeros, as torch computes it; in a slice
    with one zero, the product of the rest at that zero and 0 elsewhere; 0 with more."""

    @staticmethod
    def forward(ctx, x, axis, keepdims):
        out = ctx.backend.prod(x, axis, keepdims)
        ctx.shape, ctx.axis = x.shape, axis
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, dout):
        x, out = ctx.saved_tensors
        be = ctx.backend
        kept = _kept_shape(ctx.shape, ctx.axis)
        dout, out = be.reshape(dout, kept), be.reshape(out, kept)
        is_zero = be.eq(x, 0)
        n_zero = be.sum(be.astype(is_zero, "int64"), ctx.axis, True)          # kept shape
        x_or_1 = be.where(is_zero, 1, x)
        rest_of_one_zero = be.where(be.logical_and(is_zero, be.eq(n_zero, 1)),
                                    be.prod(x_or_1, ctx.axis, True), 0)
        others = be.where(be.eq(n_zero, 0), be.div(out, x_or_1), rest_of_one_zero)
        return be.mul(dout, others), None, None


class Cumsum(Function):
    """Running sums along one axis (torch.cumsum)."""

    @staticmethod
    def forward(ctx, x, axis):
        ctx.axis = axis
        return ctx.backend.cumsum(x, axis, False)

    @staticmethod
    def backward(ctx, dout):
        # fwd: y[i] = sum_{j <= i} x[j]  =>  dx[j] = sum_{i >= j} dout[i], a reversed cumsum
        return ctx.backend.cumsum(dout, ctx.axis, True), None


class VectorNorm(Function):
    """The vector norm of order ord over axis (torch.linalg.vector_norm): sum(|x|^ord)^(1/ord);
    2, 1, inf (max |x|), -inf (min |x|) and 0 (the count of non-zeros) in their own forms.
    The gradient is torch's: 0 where the norm is 0 (ord 2 and ord > 1), shared evenly by the
    tied extrema for +-inf, zero for ord 0."""

    @staticmethod
    def forward(ctx, x, ord, axis, keepdims):
        be = ctx.backend
        ctx.shape, ctx.axis, ctx.ord = x.shape, axis, ord
        if ord == 2:
            out = be.sqrt(be.sum(be.mul(x, x), axis, keepdims))
        elif ord == 1:
            out = be.sum(be.abs(x), axis, keepdims)
        elif ord == math.inf:
            out = be.max(be.abs(x), axis, keepdims)
        elif ord == -math.inf:
            out = be.min(be.abs(x), axis, keepdims)
        elif ord == 0:
            out = be.sum(be.astype(be.ne(x, 0), x.dtype), axis, keepdims)
        else:
            out = be.pow(be.sum(be.pow(be.abs(x), float(ord)), axis, keepdims), 1.0 / ord)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, dout):
        x, out = ctx.saved_tensors
        be, p = ctx.backend, ctx.ord
        kept = _kept_shape(ctx.shape, ctx.axis)
        dout, out = be.reshape(dout, kept), be.reshape(out, kept)
        if p == 0:
            return be.zeros(ctx.shape, dout.dtype), None, None, None
        if p == 1:                                    # d|x| = sign(x)
            return be.mul(dout, be.sign(x)), None, None, None
        if math.isinf(p):                             # the extrema share dout evenly
            hits = be.astype(be.eq(be.abs(x), out), dout.dtype)
            share = be.div(dout, be.sum(hits, ctx.axis, True))
            return be.mul(be.mul(be.sign(x), hits), share), None, None, None
        zero_norm = be.eq(out, 0)
        out_or_1 = be.where(zero_norm, 1, out)
        if p == 2:                                    # fwd: y = sqrt(sum x^2)  =>  dx = x dout / y
            scale = be.where(zero_norm, 0, be.div(dout, out_or_1))
            return be.mul(x, scale), None, None, None
        # fwd: y = (sum |x|^p)^(1/p)  =>  dx = sign(x) |x|^(p-1) dout / y^(p-1)
        a = be.abs(x)
        if p < 1:                                     # |x|^(p-1) is inf at 0: torch puts 0
            scaled = be.where(be.eq(x, 0), 0, be.mul(be.sign(x),
                                                     be.pow(be.where(be.eq(x, 0), 1, a), p - 1)))
            return be.mul(scaled, be.mul(dout, be.pow(out, 1.0 - p))), None, None, None
        scaled = be.mul(be.sign(x), be.pow(a, p - 1))
        scale = be.where(zero_norm, 0, be.div(dout, be.pow(out_or_1, p - 1)))
        return be.mul(scaled, scale), None, None, None


def _axis_range(be, shape, d):
    """arange(shape[d]) shaped to broadcast along dim d of a tensor of `shape`."""
    r = be.arange(0, shape[d], 1, "int64")
    return be.reshape(r, tuple(shape[d] if i == d else 1 for i in range(len(shape))))
