"""Fused row kernels: softmax and log-softmax over one dim.

The kernels work on the last axis; another dim is moved there and back (a permuted view
that the backend makes contiguous once).
"""
from ..autograd.function import Function


def _to_last(backend, x, dim):
    if dim == x.ndim - 1 or x.ndim == 0:
        return x
    axes = tuple(d for d in range(x.ndim) if d != dim) + (dim,)
    return backend.permute(x, axes)


def _from_last(backend, y, dim):
    if dim == y.ndim - 1 or y.ndim == 0:
        return y
    axes = list(range(y.ndim - 1))
    axes.insert(dim, y.ndim - 1)
    return backend.permute(y, tuple(axes))


class Softmax(Function):
    @staticmethod
    def forward(ctx, x, dim):
        be = ctx.backend
        y = be.softmax_fwd(_to_last(be, x, dim))
        ctx.dim = dim
        ctx.save_for_backward(y)
        return _from_last(be, y, dim)

    @staticmethod
    def backward(ctx, dout):
        # fwd: y = e^x / sum e^x  =>  dx = y * (dout - sum(dout * y))
        y, = ctx.saved_tensors
        be, dim = ctx.backend, ctx.dim
        return _from_last(be, be.softmax_bwd(y, _to_last(be, dout, dim)), dim), None


class LogSoftmax(Function):
    @staticmethod
    def forward(ctx, x, dim):
        be = ctx.backend
        y = be.log_softmax_fwd(_to_last(be, x, dim))
        ctx.dim = dim
        ctx.save_for_backward(y)
        return _from_last(be, y, dim)

    @staticmethod
    def backward(ctx, dout):
        # fwd: y = x - logsumexp(x)  =>  dx = dout - softmax(x) * sum(dout)
        y, = ctx.saved_tensors
        be, dim = ctx.backend, ctx.dim
        return _from_last(be, be.log_softmax_bwd(y, _to_last(be, dout, dim)), dim), None
