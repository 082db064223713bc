"""Fused row kernels: softmax and log-softmax over one dim; layer norm, cross-entropy from
logits and GELU over (N, C) rows or flat buffers.

The kernels work on the last axis; another dim is moved there and back (a permuted view
that the backend makes contiguous once).
"""
import math

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


def _rows_fwd(ctx, kernel, x, dim):
    """kernel over rows along `dim` (moved last and back); the output is saved for backward."""
    be = ctx.backend
    y = kernel(_to_last(be, x, dim))                      # (..., C): dim is the last axis
    ctx.dim = dim
    ctx.save_for_backward(y)
    return _from_last(be, y, dim)


def _rows_bwd(ctx, kernel, dout):
    """kernel(y, dout) over the same rows as _rows_fwd; no gradient for dim."""
    y, = ctx.saved_tensors
    be, dim = ctx.backend, ctx.dim
    return _from_last(be, kernel(y, _to_last(be, dout, dim)), dim), None


class Softmax(Function):
    """y = e^x / sum e^x along dim (torch.softmax); saves y, from which its derivative comes."""

    @staticmethod
    def forward(ctx, x, dim):
        return _rows_fwd(ctx, ctx.backend.softmax_fwd, x, dim)

    @staticmethod
    def backward(ctx, dout):
        # fwd: y = e^x / sum e^x  =>  dx = y * (dout - sum(dout * y))
        return _rows_bwd(ctx, ctx.backend.softmax_bwd, dout)


class LogSoftmax(Function):
    """y = x - logsumexp(x) along dim (torch.log_softmax); saves y."""

    @staticmethod
    def forward(ctx, x, dim):
        return _rows_fwd(ctx, ctx.backend.log_softmax_fwd, x, dim)

    @staticmethod
    def backward(ctx, dout):
        # fwd: y = x - logsumexp(x)  =>  dx = dout - softmax(x) * sum(dout) = dout - e^y sum(dout)
        return _rows_bwd(ctx, ctx.backend.log_softmax_bwd, dout)


class LayerNorm(Function):
    """Normalize the last dim, then scale and shift (torch.nn.functional.layer_norm over the
    last dim). Leading dims fold into the rows of the kernel: no Reshape nodes in the graph.

    Composed twin: `nn.reference.layer_norm`."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps):                   # x: (*, C); weight, bias: (C,)|None
        be = ctx.backend
        C = x.shape[-1]
        rows = be.reshape(x, (math.prod(x.shape[:-1]), C))      # (N, C); not -1: C may be 0
        y, mean, rstd = be.layer_norm_fwd(rows, weight, bias, eps)    # (N, C), (N,), (N,)
        ctx.save_for_backward(rows, weight, mean, rstd)
        return be.reshape(y, x.shape)                                               # (*, C)

    @staticmethod
    def backward(ctx, dout):                                   # dout: (*, C)
        # fwd: y = xhat * w + b, xhat = (x - mean) * rstd  =>  dw = sum_N dout * xhat,
        # db = sum_N dout, dx = rstd * (g - mean_C g - xhat * mean_C(g * xhat)), g = dout * w
        x, weight, mean, rstd = ctx.saved_tensors              # x: (N, C)
        be = ctx.backend
        dx, dweight, dbias = be.layer_norm_bwd(be.reshape(dout, x.shape), x, weight, mean,
                                               rstd)
        dx = be.reshape(dx, dout.shape)                                             # (*, C)
        need = ctx.needs_input_grad
        return (dx if need[0] else None, dweight if need[1] else None,
                dbias if need[2] else None, None)                 # eps is not differentiable


def _wants_grad(ctx):
    """The first input will need a gradient: the forward keeps what the backward reads
    (cross-entropy's softmax, GELU's derivative) instead of recomputing it there."""
    return ctx.is_recording and ctx.needs_input_grad[0]


class CrossEntropy(Function):
    """Per-row cross-entropy of logits (N, C) against int64 class indices (N,).

    Rows whose target is ignore_index give 0; the reduction is left to the caller.
    Composed twin: `nn.reference.cross_entropy`.
    """

    @staticmethod
    def forward(ctx, logits, target, ignore_index, label_smoothing):   # (N, C), (N,)
        loss, _, n_valid, probs = ctx.backend.cross_entropy_fwd(
            logits, target, ignore_index, label_smoothing, _wants_grad(ctx))   # (N,), (N, C)
        # rows not ignored: a mean's n. A host int on the CPU (0 -> NaN: torch's mean over no
        # rows); a 0-d device array on cuda (no host read; 0 / 0 is NaN there by itself)
        ctx.count = (n_valid or float("nan")) if isinstance(n_valid, int) else n_valid
        ctx.ignore_index, ctx.label_smoothing = ignore_index, label_smoothing
        ctx.save_for_backward(target, probs)
        return loss

    @staticmethod
    def backward(ctx, dloss):                                  # dloss: (N,), or () every row
        # fwd: loss = lse(x) - sum_j q_j x_j, q = (1 - e) onehot(t) + e / C
        #   =>  dx = dloss * (softmax(x) - q), softmax(x) kept by the forward
        target, probs = ctx.saved_tensors
        dlogits = ctx.backend.cross_entropy_bwd(dloss, probs, target, ctx.ignore_index,
                                                ctx.label_smoothing)
        return dlogits, None, None, None


class CrossEntropyMean(CrossEntropy):
    """CrossEntropy's rows averaged over those whose target is not ignore_index (torch's
    reduction="mean"; NaN when every row is ignored), in one node instead of three."""

    @staticmethod
    def forward(ctx, logits, target, ignore_index, label_smoothing):   # (N, C), (N,)
        be = ctx.backend
        loss = CrossEntropy.forward(ctx, logits, target, ignore_index, label_smoothing)
        return be.div(be.sum(loss, None, False), ctx.count)                # ()

    @staticmethod
    def backward(ctx, dout):                                   # dout: ()
        # fwd: mean = sum_i loss_i / n  =>  dloss_i = dout / n, then CrossEntropy's backward
        return CrossEntropy.backward(ctx, ctx.backend.div(dout, ctx.count))


class Gelu(Function):
    """x * Phi(x), exact (erf) or torch's tanh approximation (approximate="tanh").

    Composed twin: `nn.reference.gelu`."""

    @staticmethod
    def forward(ctx, x, approximate):
        if not _wants_grad(ctx):
            return ctx.backend.gelu_fwd(x, approximate)
        y, grad = ctx.backend.gelu_fwd_grad(x, approximate)   # gelu'(x) while x is at hand
        ctx.save_for_backward(grad)
        return y

    @staticmethod
    def backward(ctx, dout):
        # fwd: y = x Phi(x)  =>  dx = dout * (Phi(x) + x phi(x))  (tanh form: nn.reference.gelu),
        # the factor computed by the forward
        grad, = ctx.saved_tensors
        return ctx.backend.mul(dout, grad), None
