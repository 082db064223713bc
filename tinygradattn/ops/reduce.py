"""Reductions: sum, mean, max/min (overall and along one dim).

`axis` is None (all) or a tuple of non-negative dims, already checked by the Tensor layer.
Backward reshapes dout to the kept-dims shape and broadcasts it back over x.
"""
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


def _axis_range(be, shape, d):
    """arange(shape[d]) shaped to broadcast along dim d of a tensor of `shape`."""
    r = be.arange(0, shape[d], 1, "int64")
    return be.reshape(r, tuple(shape[d] if i == d else 1 for i in range(len(shape))))
