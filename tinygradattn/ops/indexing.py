"""x[index]: ints, slices, None, Ellipsis, integer or boolean arrays (numpy's rules)."""
from ..autograd.function import Function


class Index(Function):
    @staticmethod
    def forward(ctx, x, index):
        ctx.shape, ctx.index = x.shape, index
        return ctx.backend.getitem(x, index)

    @staticmethod
    def backward(ctx, dout):
        # fwd: y = x[index]  =>  dx = zeros, dx[index] += dout (repeated indices accumulate)
        dx = ctx.backend.zeros(ctx.shape, dout.dtype)
        ctx.backend.index_add(dx, ctx.index, dout)
        return dx, None
