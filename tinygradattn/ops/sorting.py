"""Sorting along one dim (sort, argsort, topk): the backend's row sort, and the Function that
makes the sorted values differentiable.

The order is the backend's `sort`: stable (equal values keep their order: torch's
stable=True), NaN above every number. topk is the first k of that order (descending for the
largest), so among equal values the lower index comes first.
"""
from ..autograd.function import Function
from .reduce import _axis_range


def sort_along(be, x, dim, descending, k=None):
    """(values, indices) of x sorted along dim, only the first k along it when k is given;
    backend arrays, indices int64, both shaped like x with dim cut to k."""
    nd = len(x.shape)
    if nd == 0:                                     # a 0-d tensor is its own sort
        return be.copy(x), be.zeros((), "int64")
    is_bool = x.dtype.kind == "b"
    if is_bool:
        x = be.astype(x, "int64")                   # sorted as 0 / 1
    axes = [a for a in range(nd) if a != dim] + [dim]
    xt = be.permute(x, tuple(axes)) if dim != nd - 1 else x                # (..., C)
    lead, C = xt.shape[:-1], xt.shape[-1]
    N = 1
    for n in lead:
        N *= n
    values, indices = be.sort(be.reshape(be.contiguous(xt), (N, C)), descending)   # (N, C)
    if k is not None and k < C:
        keep = (slice(None), slice(0, k))
        values, indices = be.getitem(values, keep), be.getitem(indices, keep)      # (N, k)
        C = k
    values = be.reshape(be.contiguous(values), lead + (C,))                # (..., k)
    indices = be.reshape(be.contiguous(indices), lead + (C,))
    if dim != nd - 1:
        back = tuple(axes.index(a) for a in range(nd))
        values, indices = be.permute(values, back), be.permute(indices, back)
    if is_bool:
        values = be.astype(values, "bool")
    return values, indices


class SortedValues(Function):
    """The values of sort / topk, x's entries at `indices` along dim. The forward is handed
    both arrays (sort_along found them) and records the op; backward scatters dout back to
    the chosen positions (torch's sort / topk backward: the rest of x gets 0)."""

    @staticmethod
    def forward(ctx, x, values, indices, dim):      # values, indices: x's shape, dim cut to k
        ctx.shape, ctx.dim = x.shape, dim
        ctx.save_for_backward(indices)
        return values

    @staticmethod
    def backward(ctx, dout):
        # fwd: y[..., i, ...] = x[..., indices[..., i, ...], ...] along dim
        #   =>  dx = zeros, dx[..., indices, ...] += dout (indices are distinct along dim)
        be = ctx.backend
        indices, = ctx.saved_tensors
        if not ctx.shape:
            return dout, None, None, None
        dx = be.zeros(ctx.shape, dout.dtype)
        index = tuple(indices if d == ctx.dim else _axis_range(be, ctx.shape, d)
                      for d in range(len(ctx.shape)))
        be.index_add(dx, index, dout)
        return dx, None, None, None
