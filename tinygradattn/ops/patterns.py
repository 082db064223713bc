"""Patterns of public ops, written as torch users write them, that one of our fused ops
computes: recognised while the graph is recorded, so such code reaches the fused kernel by
itself. Each match is exact (the fused op does the same arithmetic on the same values), and
every view or intermediate the fused node goes around is marked (autograd/folding.py) so that
a hook added to it afterwards raises instead of missing its share of the gradient.

1. packed_qkv: q, k, v cut out of one packed projection (nanoGPT's
   `q, k, v = self.c_attn(x).split(C, dim=2)`, each then `.view(B, T, H, D).transpose(1, 2)`,
   into `F.scaled_dot_product_attention`) -> QKVAttention on the projection itself.

   Unfused, the values are the same (the sdpa kernel reads the views through their strides),
   but the gradient takes the long way back: the attention's dq, dk, dv each pass a
   transpose, a reshape that copies, and the slice's backward, which writes them into a zero
   buffer as large as the projection, three such buffers then summed. QKVAttention writes
   d(qkv) as one buffer. q, k and v must each be reached from one tensor qkv through at most
   MAX_DEPTH view ops (slicing, reshape/view, transpose/permute) that share its storage, with
   no hook on the way, and their elements must sit at exactly qkv's layout (B, T, 3, H, D):
   offsets 0, C, 2C and strides (T*3C, D, 3C, 1).

2. gelu_mlp_of_parts: a Linear whose input is the output of a Gelu node whose input is the
   output of a Linear node (`c_proj(F.gelu(c_fc(x)))`, or nn.GELU between two nn.Linear) ->
   GeluMLPOfParts on x and the four parameters: the forward is the second Linear's on the
   values already computed; the backward is GeluMLP's, which multiplies by gelu'(h) (kept by
   the Gelu node) inside its dx GEMM where the Gelu node's backward would be a pass of its
   own, and which needs neither h nor the two nodes: the graph no longer keeps h alive.

tests/autograd/test_patterns.py compares each with the ops as written.
"""
from ..autograd import folding
from .fused import Gelu
from .indexing import Index
from .linear import GeluMLPOfParts, Linear
from .movement import Permute, Reshape

MAX_DEPTH = 4           # split's slice, view, transpose, and one spare
_VIEW_OPS = (Index, Reshape, Permute)


def _chain_to(t, root_of):
    """(root, chain): the first tensor satisfying root_of that t is a view of, through view
    ops only, and the tensors on the way (t included); None when t is no such view or a hook
    sits on the way."""
    chain = []
    for _ in range(MAX_DEPTH):
        ctx = t._ctx
        if ctx is None or ctx.fn not in _VIEW_OPS or t._hooks or t._retains_grad:
            return None
        src = ctx.inputs[0]
        if src is None or not ctx.backend.same_storage(t._data, src._data):
            return None
        chain.append(t)
        t = src
        if root_of(t):
            return t, chain
    return None


def _dense_strides(shape, strides):
    """strides with those of size-1 dims dropped (they never move)."""
    return tuple(s for n, s in zip(shape, strides) if n != 1)


def packed_qkv(query, key, value):
    """qkv (B, T, 3C) when query, key, value (B, H, T, D) are its thirds split into heads (as
    above), else None. Only tensors in a recorded graph can match."""
    if query._ctx is None or query.ndim != 4 or not \
            tuple(query.shape) == tuple(key.shape) == tuple(value.shape):
        return None
    B, H, T, D = query.shape
    C = H * D
    be = query._backend

    def is_root(t):
        return t._backend is be and tuple(t.shape) == (B, T, 3 * C)

    found = _chain_to(query, is_root)
    if found is None:
        return None
    qkv, chain = found
    want = _dense_strides((B, H, T, D), (T * 3 * C, D, 3 * C, 1))
    for part, t in enumerate((query, key, value)):
        if part:
            other = _chain_to(t, lambda r: r is qkv)
            if other is None:
                return None
            chain += other[1]
        layout = be.view_layout(t._data, qkv._data)
        if layout is None or layout[0] != part * C or \
                _dense_strides((B, H, T, D), layout[1]) != want:
            return None
    folding.fold(chain)
    return qkv


def _linear_input(h):
    """(x, w1, b1) of the Linear node that made h, each the graph's tensor where it needs a
    gradient, else the array the node kept (None for a bias); None when h is not a plain
    Linear's output (no residual) or has a hook."""
    ctx = h._ctx
    if ctx is None or ctx.fn is not Linear or len(ctx.inputs) != 3 or h._hooks or \
            h._retains_grad or not ctx.saved:
        return None
    x_rows, w1 = ctx.saved                                   # (N, in), (hid, in)
    x, w, b = ctx.inputs
    return (x if x is not None else ctx.backend.reshape(x_rows, ctx.x_shape),
            w if w is not None else w1, b)


def gelu_mlp_of_parts(input, weight, bias):
    """linear(input, weight, bias) as GeluMLPOfParts when input = gelu(linear(x, w1, b1)),
    each made by its own node (as above); else None. weight, bias: as the fused Linear takes
    them (checked by the caller)."""
    ctx = input._ctx
    if ctx is None or ctx.fn is not Gelu or input._hooks or input._retains_grad or \
            not ctx.saved or ctx.inputs[0] is None:
        return None
    h, (grad,) = ctx.inputs[0], ctx.saved                   # gelu's input, gelu'(h)
    parts = _linear_input(h)
    if parts is None:
        return None
    folding.fold([input, h])
    return GeluMLPOfParts.apply(*parts, weight, bias, input._data, grad)
