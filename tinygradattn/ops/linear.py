"""A Linear layer's product, y = x @ weight.T + bias, as one op: one GEMM each way.

The composed form (MatMul through a transposed view, then Add) runs the bias as a separate
pass over y, reduces its gradient with a generic sum, and returns the weight gradient as a
transposed (in, out) view the engine then copies. Here the bias is added inside the forward
GEMM, the weight gradient is written as a contiguous (out, in) array by the GEMM itself, and
the bias gradient is one column-sum kernel. Its twin (the test oracle) is
nn.functional._linear_composed. Given a residual as well (F.linear_residual), it is added to
each finished stripe of the product in the GEMM, not in an Add node's pass.

GeluMLP is a transformer's MLP, Linear -> GELU -> Linear, as one op: GELU runs on each
finished stripe of the first GEMM's output while it is in cache (float32), and its
derivative multiplies the second one's dx GEMM the same way in the backward; as three nodes,
GELU would be a pass of its own over the (N, hidden) activations each way.
"""
import math

from ..autograd.function import Function


class Linear(Function):
    """y = x @ weight.T + bias (torch.nn.functional.linear); batch dims fold into GEMM rows.
    With a residual (*, out) as well: y = residual + x @ weight.T + bias, the residual added
    to each finished stripe of the product in cache (a transformer block's skip connection)."""

    @staticmethod
    def forward(ctx, x, weight, bias, residual=None):
        # x: (*, in), weight: (out, in), bias: (out,) or None, residual: (*, out) or None
        be = ctx.backend
        n_rows = math.prod(x.shape[:-1])
        x_rows = be.reshape(x, (n_rows, x.shape[-1]))          # (N, in): a view when possible
        ctx.x_shape = x.shape
        ctx.save_for_backward(x_rows, weight)
        if residual is not None:
            residual = be.reshape(residual, (n_rows, weight.shape[0]))          # (N, out)
        y = be.linear_fwd(x_rows, weight, bias, residual)       # (N, out)
        return be.reshape(y, x.shape[:-1] + (weight.shape[0],))    # (*, out)

    @staticmethod
    def backward(ctx, dout):                    # dout: (*, out)
        # fwd: y = x @ w.T + b (+ r)  =>  dx = dout @ w, dw = dout.T @ x, db = sum of dout's
        # rows (dr = dout)
        x_rows, weight = ctx.saved_tensors
        be = ctx.backend
        dout_rows = be.reshape(dout, (x_rows.shape[0], weight.shape[0]))   # (N, out)
        needs = ctx.needs_input_grad                            # 3 entries, or 4 with r
        dx, dweight, dbias = be.linear_bwd(dout_rows, x_rows, weight, *needs[:3])
        if dx is not None:                                      # (N, in), (out, in), (out,)
            dx = be.reshape(dx, ctx.x_shape)                    # (*, in)
        return dx, dweight, dbias, (dout if needs[3:] == (True,) else None)


class GeluMLP(Function):
    """y = linear(gelu(linear(x, w1, b1), approximate), w2, b2): a transformer's MLP. With a
    residual (*, out) as well, y = residual + that, added inside the second GEMM."""

    @staticmethod
    def forward(ctx, x, w1, b1, w2, b2, approximate, residual=None):
        # x: (*, in), w1: (hid, in), b1: (hid,), w2: (out, hid), b2: (out,), residual: (*, out)
        be = ctx.backend
        x_rows = be.reshape(x, (math.prod(x.shape[:-1]), x.shape[-1]))    # (N, in)
        if ctx.is_recording:
            a, grad = be.linear_gelu_fwd(x_rows, w1, b1, approximate)   # gelu(h), gelu'(h)
        else:                                                           # (N, hid)
            a, grad = be.gelu_fwd(be.linear_fwd(x_rows, w1, b1), approximate), None
        ctx.x_shape = x.shape
        ctx.save_for_backward(x_rows, w1, a, grad, w2)
        if residual is not None:
            residual = be.reshape(residual, (a.shape[0], w2.shape[0]))           # (N, out)
        y = be.linear_fwd(a, w2, b2, residual)                      # (N, out)
        return be.reshape(y, x.shape[:-1] + (w2.shape[0],))         # (*, out)

    @staticmethod
    def backward(ctx, dout):                    # dout: (*, out)
        # fwd: h = x @ w1.T + b1, a = gelu(h), y = a @ w2.T + b2  =>
        #   dw2 = dout.T @ a, db2 = sum of dout's rows, dh = (dout @ w2) * gelu'(h) (the
        #   product inside the GEMM), then dx = dh @ w1, dw1 = dh.T @ x, db1 = sum of dh's rows
        #   (dresidual = dout)
        x_rows, w1, a, grad, w2 = ctx.saved_tensors
        be = ctx.backend
        needs_x, needs_w1, needs_b1, needs_w2, needs_b2 = ctx.needs_input_grad[:5]
        needs_dh = needs_x or needs_w1 or needs_b1
        dout_rows = be.reshape(dout, (a.shape[0], w2.shape[0]))           # (N, out)
        dh, dw2, db2 = be.linear_bwd(dout_rows, a, w2, needs_dh, needs_w2, needs_b2,
                                     dx_mul=grad)                        # (N, hid)
        dx = dw1 = db1 = None
        if needs_dh:
            dx, dw1, db1 = be.linear_bwd(dh, x_rows, w1, needs_x, needs_w1, needs_b1)
        if dx is not None:
            dx = be.reshape(dx, ctx.x_shape)                              # (*, in)
        return dx, dw1, db1, dw2, db2, None, (dout if ctx.needs_input_grad[6:] == (True,)
                                               else None)



class GeluMLPOfParts(GeluMLP):
    """GeluMLP recorded from a Linear node and a Gelu node that already ran (ops/patterns.py:
    `c_proj(F.gelu(c_fc(x)))` as users write it): the forward takes their results, a =
    gelu(h) and gelu'(h), and runs only the second GEMM; the backward is GeluMLP's, which
    multiplies by gelu'(h) inside the dx GEMM (as three nodes, GELU's backward is a pass of
    its own over the hidden activations) and needs neither h nor the Gelu node, so the graph
    lets h go after the forward."""

    @staticmethod
    def forward(ctx, x, w1, b1, w2, b2, a, grad):
        # x: (*, in), w1: (hid, in), b1: (hid,) or None (only their gradients are wanted
        # here), w2: (out, hid), b2: (out,) or None; a = gelu(x @ w1.T + b1) and grad =
        # gelu'(that): (*, hid) arrays from the nodes that computed them
        be = ctx.backend
        n_rows = math.prod(x.shape[:-1])
        a_rows = be.reshape(a, (n_rows, a.shape[-1]))               # (N, hid)
        ctx.x_shape = x.shape
        ctx.save_for_backward(be.reshape(x, (n_rows, x.shape[-1])), w1, a_rows,
                              be.reshape(grad, a_rows.shape), w2)
        y = be.linear_fwd(a_rows, w2, b2)                           # (N, out)
        return be.reshape(y, x.shape[:-1] + (w2.shape[0],))         # (*, out)
