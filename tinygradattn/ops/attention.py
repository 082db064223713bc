"""Fused scaled-dot-product attention: softmax(q k^T * scale + mask) v in one op.

The forward keeps only out and the per-row log-sum-exp lse; the backward recomputes the
attention weights tile by tile from q, k and lse (FlashAttention-2), so memory stays linear
in the sequence length. Its composed twin (matmul, softmax, matmul) is
`nn.functional._sdpa_composed`: the test oracle and the path taken when dropout is on.
"""
from ..autograd.function import Function


class ScaledDotProductAttention(Function):
    """out = softmax(q @ k^T * scale + mask) @ v, a float or bool (True = may attend) mask.

    Rows whose every score is masked give 0 (and no gradient), as torch 2.13 does on the CPU.
    """

    @staticmethod
    def forward(ctx, q, k, v, mask, is_causal, scale):
        # q: (B, H, T, D); k: (B, H, S, D); v: (B, H, S, Dv); mask: None or to (B, H, T, S)
        out, lse = ctx.backend.sdpa_fwd(q, k, v, mask, is_causal, scale)   # (B,H,T,Dv), (B,H,T)
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
