"""A Linear layer's product, y = x @ weight.T + bias, as one op: one GEMM each way.

The composed form (MatMul through a transposed view, then Add) runs the bias as a separate
pass over y, reduces its gradient with a generic sum, and returns the weight gradient as a
transposed (in, out) view the engine then copies. Here the bias is added inside the forward
GEMM, the weight gradient is written as a contiguous (out, in) array by the GEMM itself, and
the bias gradient is one column-sum kernel. Its twin (the test oracle) is
nn.functional._linear_composed.

GeluLinear is GELU followed by a Linear (an MLP's second half) as one op: its backward
multiplies by GELU's derivative inside the dx GEMM, where a Gelu node would run a pass of
its own over the (N, in) gradient.
"""
import math

from ..autograd.function import Function


class Linear(Function):
    """y = x @ weight.T + bias (torch.nn.functional.linear); batch dims fold into GEMM rows."""

    @staticmethod
    def forward(ctx, x, weight, bias):          # x: (*, in), weight: (out, in), bias: (out,)
        be = ctx.backend
        n_rows = math.prod(x.shape[:-1])
        x_rows = be.reshape(x, (n_rows, x.shape[-1]))          # (N, in): a view when possible
        ctx.x_shape = x.shape
        ctx.save_for_backward(x_rows, weight)
        y = be.linear_fwd(x_rows, weight, bias)                 # (N, out)
        return be.reshape(y, x.shape[:-1] + (weight.shape[0],))    # (*, out)

    @staticmethod
    def backward(ctx, dout):                    # dout: (*, out)
        # fwd: y = x @ w.T + b  =>  dx = dout @ w, dw = dout.T @ x, db = sum of dout's rows
        x_rows, weight = ctx.saved_tensors
        be = ctx.backend
        dout_rows = be.reshape(dout, (x_rows.shape[0], weight.shape[0]))   # (N, out)
        needs_dx, needs_dweight, needs_dbias = ctx.needs_input_grad
        dx, dweight, dbias = be.linear_bwd(dout_rows, x_rows, weight, needs_dx, needs_dweight,
                                           needs_dbias)        # (N, in), (out, in), (out,)
        if dx is not None:
            dx = be.reshape(dx, ctx.x_shape)                    # (*, in)
        return dx, dweight, dbias


class GeluLinear(Function):
    """y = gelu(h) @ weight.T + bias (linear(gelu(h, approximate), weight, bias))."""

    @staticmethod
    def forward(ctx, h, weight, bias, approximate):   # h: (*, in), weight: (out, in)
        be = ctx.backend
        n_rows = math.prod(h.shape[:-1])
        h_rows = be.reshape(h, (n_rows, h.shape[-1]))           # (N, in)
        if ctx.is_recording and ctx.needs_input_grad[0]:
            a, grad = be.gelu_fwd_grad(h_rows, approximate)     # gelu(h), gelu'(h): (N, in)
        else:
            a, grad = be.gelu_fwd(h_rows, approximate), None
        ctx.h_shape = h.shape
        ctx.save_for_backward(a, weight, grad)
        y = be.linear_fwd(a, weight, bias)                      # (N, out)
        return be.reshape(y, h.shape[:-1] + (weight.shape[0],))     # (*, out)

    @staticmethod
    def backward(ctx, dout):                    # dout: (*, out)
        # fwd: a = gelu(h), y = a @ w.T + b  =>  dh = (dout @ w) * gelu'(h) (the product in
        # the GEMM), dw = dout.T @ a, db = sum of dout's rows
        a, weight, grad = ctx.saved_tensors
        be = ctx.backend
        dout_rows = be.reshape(dout, (a.shape[0], weight.shape[0]))       # (N, out)
        needs_dh, needs_dweight, needs_dbias, _ = ctx.needs_input_grad
        dh, dweight, dbias = be.linear_bwd(dout_rows, a, weight, needs_dh, needs_dweight,
                                           needs_dbias, dx_mul=grad)   # (N, in), (out, in)
        if dh is not None:
            dh = be.reshape(dh, ctx.h_shape)                    # (*, in)
        return dh, dweight, dbias, None
