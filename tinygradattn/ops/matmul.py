"""Matrix product of operands with at least 2 dims; batch dims broadcast."""
from ..autograd.function import Function


def _swap_last(backend, x):
    """x with its last two dims swapped (a view; the GEMM reads transposed operands in place)."""
    axes = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    return backend.permute(x, axes)


class MatMul(Function):
    @staticmethod
    def forward(ctx, a, b):                     # a: (*Ba, M, K), b: (*Bb, K, N)
        ctx.save_for_backward(a, b)
        return ctx.backend.matmul(a, b)         # (*B, M, N)

    @staticmethod
    def backward(ctx, dout):                    # dout: (*B, M, N)
        # fwd: y = a @ b  =>  da = dout @ b^T, db = a^T @ dout (the engine sums batch dims)
        a, b = ctx.saved_tensors
        be = ctx.backend
        da = be.matmul(dout, _swap_last(be, b)) if ctx.needs_input_grad[0] else None
        db = be.matmul(_swap_last(be, a), dout) if ctx.needs_input_grad[1] else None
        return da, db
