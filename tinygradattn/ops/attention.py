"""Fused scaled-dot-product attention: softmax(q k^T * scale + mask) v in one op.

The forward keeps only out and the per-row log-sum-exp lse; the backward recomputes the
attention weights tile by tile from q, k and lse (FlashAttention-2), so memory stays linear
in the sequence length. Its composed twin (matmul, softmax, matmul) is
`nn.functional._sdpa_composed`: the test oracle and the path taken when dropout is on.

QKVAttention is the same op fed by one packed projection qkv (B, T, 3C) (GPT's c_attn,
MultiheadAttention's in_proj): the kernels read q, k, v as strided views of qkv and write
d(qkv) as one buffer, where split + view + transpose + sdpa would copy them. Its composed
twin is `nn.reference.qkv_attention`.

Both hand q, k and lse to ops/attention_weights.py when a capture of the attention maps is
open (`nn.attention_maps.capture_attention`), which rebuilds the weights from them.
"""
from ..autograd.function import Function
from . import attention_weights as weights


class ScaledDotProductAttention(Function):
    """out = softmax(q @ k^T * scale + mask) @ v, a float or bool (True = may attend) mask.

    Rows whose every score is masked give 0 (and no gradient), as torch 2.13 does on the CPU.
    """

    @staticmethod
    def forward(ctx, q, k, v, mask, is_causal, scale):
        # q: (B, H, T, D); k: (B, H, S, D); v: (B, H, S, Dv); mask: None or to (B, H, T, S)
        out, lse = ctx.backend.sdpa_fwd(q, k, v, mask, is_causal, scale)   # (B,H,T,Dv), (B,H,T)
        if weights.RECORDERS:                        # a capture is open: rebuild its maps
            weights.record(ctx.backend, q, k, lse, scale, mask, is_causal)
        ctx.is_causal, ctx.scale = is_causal, scale
        ctx.save_for_backward(q, k, v, out, lse, mask)
        return out

    @staticmethod
    def backward(ctx, dout):                                               # dout: (B, H, T, Dv)
        # fwd: s = q k^T * scale + mask, p = exp(s - lse), out = p v   =>
        #   dv = p^T dout,  ds = p * (dout v^T - rowsum(dout * out)),
        #   dq = scale * ds k,  dk = scale * ds^T q          (mask: not differentiated here)
        q, k, v, out, lse, mask = ctx.saved_tensors
        dq, dk, dv = ctx.backend.sdpa_bwd(dout, q, k, v, out, lse, mask, ctx.is_causal,
                                          ctx.scale)
        return dq, dk, dv, None, None, None


class QKVAttention(Function):
    """Self-attention of a packed projection: qkv (B, T, 3C) = q | k | v, n_head heads of
    D = C / n_head each -> y (B, T, C), the heads' outputs side by side.

    y[:, :, h*D:(h+1)*D] = softmax(q_h k_h^T * scale + mask) v_h with q_h = qkv[:, :, h*D:(h+1)*D],
    k_h and v_h at offsets C and 2C; causal or not; mask None, or as ScaledDotProductAttention's
    (bool, True = may attend, or float added; broadcastable to (B, H, T, T); not
    differentiated): MultiheadAttention's key padding mask.
    Composed twin: `nn.reference.qkv_attention`.
    """

    @staticmethod
    def forward(ctx, qkv, n_head, is_causal, scale, mask=None):            # qkv: (B, T, 3C)
        y, lse = ctx.backend.qkv_attention_fwd(qkv, n_head, is_causal, scale,
                                               mask)                       # (B,T,C), (B,H,T)
        if weights.RECORDERS:                        # a capture is open: rebuild its maps
            q, k = weights.packed_qk(ctx.backend, qkv, n_head)                # (B, H, T, D)
            weights.record(ctx.backend, q, k, lse, scale, mask, is_causal)
        ctx.n_head, ctx.is_causal, ctx.scale = n_head, is_causal, scale
        ctx.save_for_backward(qkv, y, lse, mask)
        return y

    @staticmethod
    def backward(ctx, dout):                                               # dout: (B, T, C)
        # fwd: q | k | v = qkv, y = ScaledDotProductAttention(q, k, v) per head  =>
        #   dqkv = dq | dk | dv, the same gradients, each written into its third of one buffer
        qkv, y, lse, mask = ctx.saved_tensors
        dqkv = ctx.backend.qkv_attention_bwd(dout, qkv, y, lse, ctx.n_head, ctx.is_causal,
                                             ctx.scale, mask)              # (B, T, 3C)
        return dqkv, None, None, None, None
