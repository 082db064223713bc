"""Matrix product of operands with at least 2 dims; batch dims broadcast."""
from ..autograd.function import Function


def _swap_last(backend, x):
    """x with its last two dims swapped (a view; the GEMM reads transposed operands in place)."""
    axes = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    return backend.permute(x, axes)


def _rows(backend, x):
    """(*, M, K) -> (prod(*) M, K): batch dims folded into the rows of one GEMM."""
    return backend.reshape(x, (-1, x.shape[-1]))


class MatMul(Function):
    """a @ b. When b is a plain matrix, a's batch dims fold into M: one large GEMM instead of
    many small ones, forward and backward. (F.linear has its own op, ops/linear.py.)"""

    @staticmethod
    def forward(ctx, a, b):                     # a: (*Ba, M, K), b: (*Bb, K, N)
        ctx.save_for_backward(a, b)
        be = ctx.backend
        if b.ndim == 2 and a.ndim > 2:
            out = be.matmul(_rows(be, a), b)                         # (prod(Ba) M, N)
            return be.reshape(out, a.shape[:-1] + (b.shape[1],))    # (*Ba, M, N)
        return be.matmul(a, b)                  # (*B, M, N)

    @staticmethod
    def backward(ctx, dout):                    # dout: (*B, M, N)
        # fwd: y = a @ b  =>  da = dout @ b^T, db = a^T @ dout (the engine sums batch dims)
        a, b = ctx.saved_tensors
        be = ctx.backend
        da = db = None
        if b.ndim == 2 and a.ndim > 2:
            dout_rows = _rows(be, dout)                                   # (prod(B) M, N)
            if ctx.needs_input_grad[0]:
                da = be.reshape(be.matmul(dout_rows, _swap_last(be, b)), a.shape)
            if ctx.needs_input_grad[1]:
                db = be.matmul(_swap_last(be, _rows(be, a)), dout_rows)  # (K, N)
            return da, db
        if ctx.needs_input_grad[0]:
            da = be.matmul(dout, _swap_last(be, b))
        if ctx.needs_input_grad[1]:
            db = be.matmul(_swap_last(be, a), dout)
        return da, db
