"""x[index]: ints, slices, None, Ellipsis, integer or boolean arrays (numpy's rules); gather and
scatter along one dim (torch.gather, torch.scatter, torch.scatter_add)."""
from ..autograd.function import Function


def _kept(ctx, index):
    """The index array backward will use: a copy when recording, so that an in-place write
    into the caller's index tensor cannot change the gradient (torch raises there, through
    its version counter; a copy keeps the gradient right)."""
    return ctx.backend.copy(index) if ctx.is_recording else index


class Index(Function):
    is_view = True                  # basic indexing gives a view, advanced a copy

    @staticmethod
    def forward(ctx, x, index):
        # the arrays in index copied when recording, as _kept does (it may mix host and device
        # arrays on a GPU, which copy_index keeps apart)
        ctx.shape = x.shape
        ctx.index = ctx.backend.copy_index(index) if ctx.is_recording else index
        return ctx.backend.getitem(x, index)

    @staticmethod
    def backward(ctx, dout):
        # fwd: y = x[index]  =>  dx = zeros, dx[index] += dout (repeated indices accumulate)
        dx = ctx.backend.zeros(ctx.shape, dout.dtype)
        ctx.backend.index_add(dx, ctx.index, dout)
        return dx, None


class Gather(Function):
    """torch.gather: out[i] = x[i with its dim-th coordinate replaced by index[i]]."""

    @staticmethod
    def forward(ctx, x, dim, index):                # index: int64, x's rank; out: index.shape
        ctx.shape, ctx.dim, ctx.index = x.shape, dim, _kept(ctx, index)
        return ctx.backend.gather(x, dim, index)

    @staticmethod
    def backward(ctx, dout):                        # dout: index.shape
        # fwd: y[i] = x[.., index[i], ..]  =>  dx = zeros, dx[.., index[i], ..] += dout[i]
        dx = ctx.backend.zeros(ctx.shape, dout.dtype)
        ctx.backend.scatter(dx, ctx.dim, ctx.index, dout, "add")
        return dx, None, None


class Scatter(Function):
    """Tensor.scatter / scatter_add out of place: a copy of x with x[.., index[i], ..] set to
    (reduce None) or increased by (reduce 'add') src[i]; src an array or a number."""

    @staticmethod
    def forward(ctx, x, dim, index, src, reduce):   # x: (...); index, src: x's rank
        ctx.dim, ctx.index, ctx.reduce = dim, _kept(ctx, index), reduce
        ctx.src_shape = getattr(src, "shape", None)
        out = ctx.backend.copy(x)
        ctx.backend.scatter(out, dim, index, src, reduce)
        return out

    @staticmethod
    def backward(ctx, dout):                        # dout: x.shape
        # fwd: y = x; y[.., index[i], ..] = src[i] (or += src[i])
        #   =>  dx = dout, zeroed where written (not for 'add');  dsrc[i] = dout[.., index[i], ..]
        be, dx, dsrc = ctx.backend, None, None
        if ctx.needs_input_grad[0]:
            dx = dout
            if ctx.reduce is None:
                dx = be.copy(dout)
                be.scatter(dx, ctx.dim, ctx.index, 0, None)
        if ctx.needs_input_grad[3]:
            dsrc = be.gather(dout, ctx.dim, ctx.index)          # index.shape
            if tuple(dsrc.shape) != tuple(ctx.src_shape):       # src larger than index: 0 there
                full = be.zeros(ctx.src_shape, dout.dtype)
                be.setitem(full, tuple(slice(0, n) for n in dsrc.shape), dsrc)
                dsrc = full
        return dx, None, None, dsrc, None
