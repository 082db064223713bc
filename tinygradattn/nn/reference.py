"""The composed twins of the fused ops: each written in plain Tensor ops, as a reader would.

The library never calls these. Each fused Function (ops/fused.py, ops/attention.py) runs one
kernel forward and one backward; its twin here computes the same thing from ops whose
gradients autograd already knows, so it is both the oracle the tests hold the kernels to
(values and gradients, float32 and float64) and the shortest statement of what the kernel
computes. The other twins live beside their op because the library takes them on some inputs:
`nn.functional._linear_composed` (a broadcast bias), `nn.functional._sdpa_composed` (dropout),
`optim.sgd._sgd_composed` and `optim.adam._adam_composed` (a device without the fused step).

    >>> import tinygradattn as tga
    >>> from tinygradattn.nn import functional as F, reference
    >>> x = tga.randn(4, 8)
    >>> bool(((F.gelu(x) - reference.gelu(x)).abs().max() < 1e-6).item())
    True
"""
import math

from . import functional as F


def gelu(input, approximate="none"):
    """F.gelu from Tensor ops (erf form, or PyTorch's tanh form)."""
    F._check_tensor("gelu", "input", input)
    if approximate == "none":
        return 0.5 * input * (1.0 + (input * (1.0 / math.sqrt(2.0))).erf())
    if approximate == "tanh":
        inner = math.sqrt(2.0 / math.pi) * (input + 0.044715 * input * input * input)
        return 0.5 * input * (1.0 + inner.tanh())
    raise RuntimeError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """F.layer_norm: mean, population variance, normalise, scale and shift."""
    normalized_shape = F._layer_norm_check(input, normalized_shape, weight, bias)
    n = len(normalized_shape)
    dims = tuple(range(input.ndim - n, input.ndim))
    mean = input.mean(dims, keepdim=True)
    diff = input - mean
    var = (diff * diff).mean(dims, keepdim=True)            # population variance, as torch
    out = diff / (var + eps).sqrt()
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def cross_entropy(input, target, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """F.cross_entropy (class-index targets): log_softmax, pick, smooth, reduce."""
    logits, flat_target = F._classes_last(input, target, "cross_entropy")
    logp = logits.log_softmax(-1)                                          # (N, C)
    picked, valid = F._pick(logp, flat_target, ignore_index, "cross_entropy")
    loss = -picked
    if label_smoothing > 0:
        C = logp.shape[1]
        smooth = -logp.sum(-1) * valid.to(logp.dtype)                     # (N,)
        loss = (1 - label_smoothing) * loss + (label_smoothing / C) * smooth
    if reduction == "mean":
        return loss.sum() / valid.sum().to(loss.dtype)
    loss = loss.reshape(F._target_shape(input, flat_target))
    return F._reduce(loss, reduction, "cross_entropy")


def qkv_attention(qkv, num_heads, is_causal=False, scale=None):
    """nn.attention.qkv_attention: split, heads, F.scaled_dot_product_attention, merge."""
    B, T, E3 = qkv.shape
    E = E3 // 3
    q, k, v = (t.view(B, T, num_heads, E // num_heads).transpose(1, 2)        # (B, H, T, D)
               for t in qkv.split(E, dim=2))
    y = F.scaled_dot_product_attention(q, k, v, is_causal=is_causal, scale=scale)
    return y.transpose(1, 2).reshape(B, T, E)                                 # (B, T, E)
