"""Shape ops: reshape, permute, expand, concatenate, contiguous. Views where possible."""
from ..autograd.function import Function


class Reshape(Function):
    is_view = True
    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return ctx.backend.reshape(x, shape)

    @staticmethod
    def backward(ctx, dout):
        return ctx.backend.reshape(dout, ctx.shape), None


class Permute(Function):
    is_view = True
    @staticmethod
    def forward(ctx, x, axes):
        ctx.axes = axes
        return ctx.backend.permute(x, axes)

    @staticmethod
    def backward(ctx, dout):
        inverse = [0] * len(ctx.axes)
        for i, a in enumerate(ctx.axes):
            inverse[a] = i
        return ctx.backend.permute(dout, tuple(inverse)), None


class Expand(Function):
    is_view = True
    """Broadcast to a larger shape (a view); the engine sums the gradient back down."""

    @staticmethod
    def forward(ctx, x, shape):
        return ctx.backend.broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, dout):
        return dout, None


class Contiguous(Function):
    is_view = True
    @staticmethod
    def forward(ctx, x):
        return ctx.backend.contiguous(x)

    @staticmethod
    def backward(ctx, dout):
        return dout


class Clone(Function):
    @staticmethod
    def forward(ctx, x):
        return ctx.backend.copy(x)

    @staticmethod
    def backward(ctx, dout):
        return dout


class Cat(Function):
    """cat(axis, x0, x1, ...): the tensors come after the axis so each gets a gradient slot."""

    @staticmethod
    def forward(ctx, axis, *xs):
        ctx.axis = axis
        ctx.sizes = [x.shape[axis] for x in xs]
        return ctx.backend.concatenate(xs, axis)

    @staticmethod
    def backward(ctx, dout):
        grads, start = [None], 0
        lead = (slice(None),) * ctx.axis
        for n in ctx.sizes:
            grads.append(ctx.backend.getitem(dout, lead + (slice(start, start + n),)))
            start += n
        return tuple(grads)


class ToDevice(Function):
    """x copied to another device (Tensor.to, .cuda(), .cpu()); its gradient is copied back,
    as in torch. The two copies go through the host: the only ones the user asked for."""

    @staticmethod
    def forward(ctx, x, target):
        ctx.output_backend = target
        return target.from_host(ctx.backend.to_host(x))

    @staticmethod
    def backward(ctx, dout):
        # fwd: y = x on another device  =>  dx = dout, back on x's device
        return ctx.backend.from_host(ctx.output_backend.to_host(dout)), None
