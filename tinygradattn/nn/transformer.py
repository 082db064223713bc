"""Transformer blocks as torch.nn: TransformerEncoderLayer, TransformerDecoderLayer and the
TransformerEncoder / TransformerDecoder stacks (same submodule names, signatures, numerics).

Ours, beyond torch: the decoder layer takes a `cache` (DecoderLayerCache) for incremental
decoding and can keep its cross-attention weights (`keep_cross_attention`) for plotting; a
layer whose `gradient_checkpointing` is True (HuggingFace's attribute) recomputes its
activations in backward while training (tga.utils.checkpoint).

Residual branches run fused where the result is the same: x + the feed-forward block is one
GeluMLP op (F.gelu_mlp: GELU inside the first GEMM, the residual inside the second), or
linear, relu, linear_residual; x + the attention block adds x inside out_proj's GEMM
(MultiheadAttention.forward_add). This holds while the modules skipped are plain (exact
classes, no forward replaced on the instance, no forward hook registered anywhere: every
observer still sees every call) and their dropouts are the identity (p = 0 or eval mode);
otherwise the blocks run as torch writes them (_sa_block, _ff_block, then +).
"""
import copy
import numbers

from . import functional as F
from . import module as _module
from .activation import Dropout
from .attention import KVCache, MultiheadAttention
from .container import ModuleList
from .linear import Linear
from .module import Module
from .norm import LayerNorm
from ..autograd.grad_mode import is_grad_enabled
from ..tensor import Tensor
from ..utils.checkpoint import checkpoint


def _get_activation(activation):
    if activation == "relu":
        return F.relu
    if activation == "gelu":
        return F.gelu
    if callable(activation):
        return activation
    raise RuntimeError(f"activation should be relu/gelu, not {activation}")


def _recomputes(layer):
    """True when layer's forward runs under activation checkpointing now."""
    return layer.gradient_checkpointing and layer.training and is_grad_enabled()


def _skippable(*modules):
    """True when a fused op may stand in for these modules' forwards: no forward hook is
    registered on any module (one global count) and none of these has its forward replaced
    on the instance (capture_attention labels modules that way)."""
    if _module._n_forward_hooks:
        return False
    return all("forward" not in m.__dict__ for m in modules)


def _idle(dropout):
    """dropout is a plain nn.Dropout that is the identity now (p = 0, or eval mode)."""
    return type(dropout) is Dropout and (dropout.p == 0.0 or not dropout.training)


def _ff_add(layer, x, h, last_dropout):
    """x + layer._ff_block(h): h (*, d_model) -> linear1 -> activation -> dropout -> linear2 ->
    last_dropout, plus the residual x (h's shape). As one GeluMLP op for GELU, or linear,
    relu, linear_residual for ReLU, when the modules are plain and the dropouts idle."""
    l1, l2 = layer.linear1, layer.linear2
    if (layer.activation in (F.gelu, F.relu) and type(l1) is Linear and type(l2) is Linear
            and _idle(layer.dropout) and _idle(last_dropout)
            and _skippable(l1, l2, layer.dropout, last_dropout)):
        if layer.activation is F.gelu:
            return F.gelu_mlp(h, l1.weight, l1.bias, l2.weight, l2.bias, residual=x)
        hidden = F.relu(F.linear(h, l1.weight, l1.bias))                    # (*, ff)
        return F.linear_residual(hidden, l2.weight, l2.bias, x)
    return x + layer._ff_block(h)


def _attention_adds(attn, dropout, x):
    """x + dropout(attn(...)[0]) may run as attn.forward_add: batch-first 3-d x, a plain
    MultiheadAttention and out_proj, dropout idle."""
    return (isinstance(x, Tensor) and x.ndim == 3 and type(attn) is MultiheadAttention
            and attn.batch_first and type(attn.out_proj) is Linear and _idle(dropout)
            and _skippable(attn, attn.out_proj, dropout))


def _get_clones(module, n):
    """n deep copies (torch starts every layer of a stack from the same weights); each tensor
    copies its storage onto the same device (Tensor.__deepcopy__). n must be positive (torch
    builds an empty stack and fails at the first forward)."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):     # (numpy ints too)
        raise TypeError(f"num_layers must be a positive int, got {type(n).__name__} {n!r}")
    if n <= 0:
        raise ValueError(f"num_layers must be a positive int, got {n}")
    if not isinstance(module, Module):
        raise TypeError(f"the layer to stack must be a Module, got {type(module).__name__}")
    return ModuleList([copy.deepcopy(module) for _ in range(n)])


def _add_sublayers(layer, n_sublayers, d_model, nhead, dim_feedforward, dropout, activation,
                   layer_norm_eps, batch_first, bias, kw):
    """The modules of an encoder layer (2 sublayers) or a decoder layer (3), under torch's
    names and in its order: self_attn (and multihead_attn, the decoder's cross-attention); the
    feed-forward linear1 -> activation -> dropout -> linear2; per sublayer a LayerNorm normK
    and a residual-branch Dropout dropoutK."""
    for name in ("self_attn", "multihead_attn")[:n_sublayers - 1]:
        setattr(layer, name, MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                                batch_first=batch_first, **kw))
    layer.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
    layer.dropout = Dropout(dropout)
    layer.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
    for k in range(1, n_sublayers + 1):
        setattr(layer, f"norm{k}", LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw))
    for k in range(1, n_sublayers + 1):
        setattr(layer, f"dropout{k}", Dropout(dropout))
    layer.activation = _get_activation(activation)


class TransformerEncoderLayer(Module):
    """Self-attention then a feed-forward block, each with a residual and a LayerNorm
    (post-norm by default, pre-norm with norm_first=True), as torch.nn.TransformerEncoderLayer.

    src: (S, B, E), or (B, S, E) with batch_first=True.
    """

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu",
                 layer_norm_eps=1e-5, batch_first=False, norm_first=False, bias=True,
                 device="cpu", dtype=None):
        super().__init__()
        _add_sublayers(self, 2, d_model, nhead, dim_feedforward, dropout, activation,
                       layer_norm_eps, batch_first, bias, dict(device=device, dtype=dtype))
        self.norm_first = norm_first
        self.gradient_checkpointing = False

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        if _recomputes(self):
            return checkpoint(self._forward, src, src_mask, src_key_padding_mask, is_causal,
                              use_reentrant=False)
        return self._forward(src, src_mask, src_key_padding_mask, is_causal)

    def _forward(self, src, src_mask, src_key_padding_mask, is_causal):
        x = src
        masks = (src_mask, src_key_padding_mask, is_causal)
        if self.norm_first:
            x = self._sa_add(x, self.norm1(x), *masks)
            x = _ff_add(self, x, self.norm2(x), self.dropout2)
        else:
            x = self.norm1(self._sa_add(x, x, *masks))
            x = self.norm2(_ff_add(self, x, x, self.dropout2))
        return x

    def _sa_add(self, x, h, attn_mask, key_padding_mask, is_causal):
        """x + self._sa_block(h, ...), x added inside out_proj's GEMM when it can be."""
        if _attention_adds(self.self_attn, self.dropout1, x):
            return self.self_attn.forward_add(x, h, h, h, attn_mask=attn_mask,
                                              key_padding_mask=key_padding_mask,
                                              need_weights=False, is_causal=is_causal)[0]
        return x + self._sa_block(h, attn_mask, key_padding_mask, is_causal)

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           need_weights=False, is_causal=is_causal)[0]
        return self.dropout1(x)

    def _ff_block(self, x):
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.dropout2(x)


class DecoderLayerCache:
    """The caches of one decoder layer: `self_attn` grows by the new target positions each
    step, `cross_attn` (static) holds the memory's projected keys and values."""

    def __init__(self):
        self.self_attn = KVCache()
        self.cross_attn = KVCache(static=True)

    def __len__(self):
        return len(self.self_attn)

    def reorder(self, index):
        self.self_attn.reorder(index)
        self.cross_attn.reorder(index)


class TransformerDecoderLayer(Module):
    """Self-attention, cross-attention over memory, feed-forward; each with a residual and a
    LayerNorm, as torch.nn.TransformerDecoderLayer.

    tgt: (T, B, E), memory (S, B, E); batch-first with batch_first=True.
    keep_cross_attention (attribute, ours): when True, forward runs the cross-attention with
    need_weights=True and stores its per-head weights (B, H, T, S) in `cross_attn_weights`.
    """

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu",
                 layer_norm_eps=1e-5, batch_first=False, norm_first=False, bias=True,
                 device="cpu", dtype=None):
        super().__init__()
        _add_sublayers(self, 3, d_model, nhead, dim_feedforward, dropout, activation,
                       layer_norm_eps, batch_first, bias, dict(device=device, dtype=dtype))
        self.norm_first = norm_first
        self.keep_cross_attention = False
        self.cross_attn_weights = None
        self.gradient_checkpointing = False

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False,
                cache=None):
        """cache (ours): a DecoderLayerCache; tgt then holds only the new positions, and
        tgt_is_causal=True without tgt_mask masks them causally after the cached ones."""
        args = (tgt, memory, tgt_mask, memory_mask, tgt_key_padding_mask,
                memory_key_padding_mask, tgt_is_causal, memory_is_causal, cache)
        if cache is None and not self.keep_cross_attention and _recomputes(self):
            return checkpoint(self._forward, *args, use_reentrant=False)
        return self._forward(*args)

    def _forward(self, tgt, memory, tgt_mask, memory_mask, tgt_key_padding_mask,
                 memory_key_padding_mask, tgt_is_causal, memory_is_causal, cache):
        x = tgt
        sa = (tgt_mask, tgt_key_padding_mask, tgt_is_causal, cache)
        ca = (memory, memory_mask, memory_key_padding_mask, memory_is_causal, cache)
        if self.norm_first:
            x = self._sa_add(x, self.norm1(x), *sa)
            x = self._mha_add(x, self.norm2(x), *ca)
            x = _ff_add(self, x, self.norm3(x), self.dropout3)
        else:
            x = self.norm1(self._sa_add(x, x, *sa))
            x = self.norm2(self._mha_add(x, x, *ca))
            x = self.norm3(_ff_add(self, x, x, self.dropout3))
        return x

    def _sa_add(self, x, h, attn_mask, key_padding_mask, is_causal, cache):
        """x + self._sa_block(h, ...), x added inside out_proj's GEMM when it can be."""
        if _attention_adds(self.self_attn, self.dropout1, x):
            return self.self_attn.forward_add(
                x, h, h, h, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                is_causal=is_causal, need_weights=False,
                cache=None if cache is None else cache.self_attn)[0]
        return x + self._sa_block(h, attn_mask, key_padding_mask, is_causal, cache)

    def _mha_add(self, x, h, mem, attn_mask, key_padding_mask, is_causal, cache):
        """x + self._mha_block(h, mem, ...), x added inside out_proj's GEMM when it can be."""
        if not _attention_adds(self.multihead_attn, self.dropout2, x):
            return x + self._mha_block(h, mem, attn_mask, key_padding_mask, is_causal, cache)
        y, w = self.multihead_attn.forward_add(
            x, h, mem, mem, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
            is_causal=is_causal, need_weights=self.keep_cross_attention,
            average_attn_weights=False, cache=None if cache is None else cache.cross_attn)
        if w is not None:
            self.cross_attn_weights = w.detach()                          # (B, H, T, S)
        return y

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal, cache):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           is_causal=is_causal, need_weights=False,
                           cache=None if cache is None else cache.self_attn)[0]
        return self.dropout1(x)

    def _mha_block(self, x, mem, attn_mask, key_padding_mask, is_causal, cache):
        x, w = self.multihead_attn(x, mem, mem, attn_mask=attn_mask,
                                   key_padding_mask=key_padding_mask, is_causal=is_causal,
                                   need_weights=self.keep_cross_attention,
                                   average_attn_weights=False,
                                   cache=None if cache is None else cache.cross_attn)
        if w is not None:
            self.cross_attn_weights = w.detach()                          # (B, H, T, S)
        return self.dropout2(x)

    def _ff_block(self, x):
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.dropout3(x)


def _detect_is_causal_mask(mask, is_causal, size):
    """torch's rule: an explicit is_causal wins; otherwise a mask equal to the causal one."""
    if is_causal is not None:
        return bool(is_causal)
    if mask is None or mask.ndim != 2 or tuple(mask.shape) != (size, size):
        return False
    from .attention import generate_square_subsequent_mask
    causal = generate_square_subsequent_mask(size, device=mask.device,
                                             dtype=None if mask.dtype.name == "bool"
                                             else mask.dtype)
    if mask.dtype.name == "bool":
        causal = causal != 0
    return bool((mask == causal).all())


class TransformerEncoder(Module):
    """num_layers copies of encoder_layer (same initial weights, as torch), then an optional
    final norm. forward(src, mask=None, src_key_padding_mask=None, is_causal=None)."""

    def __init__(self, encoder_layer, num_layers, norm=None, enable_nested_tensor=True,
                 mask_check=True):
        super().__init__()
        self.layers = _get_clones(encoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        seq_len = src.shape[1 if self.layers[0].self_attn.batch_first else 0] \
            if src.ndim == 3 else src.shape[0]
        is_causal = _detect_is_causal_mask(mask, is_causal, seq_len)
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, is_causal=is_causal,
                      src_key_padding_mask=src_key_padding_mask)
        return x if self.norm is None else self.norm(x)


class TransformerDecoder(Module):
    """num_layers copies of decoder_layer, then an optional final norm (torch's signature,
    plus `caches`: one DecoderLayerCache per layer, for incremental decoding)."""

    def __init__(self, decoder_layer, num_layers, norm=None):
        super().__init__()
        self.layers = _get_clones(decoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm

    def new_caches(self):
        return [DecoderLayerCache() for _ in self.layers]

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=None, memory_is_causal=False,
                caches=None):
        seq_len = tgt.shape[1 if self.layers[0].self_attn.batch_first else 0] \
            if tgt.ndim == 3 else tgt.shape[0]
        if caches is None or tgt_mask is not None:
            tgt_is_causal = _detect_is_causal_mask(tgt_mask, tgt_is_causal, seq_len)
        x = tgt
        for i, layer in enumerate(self.layers):
            x = layer(x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                      tgt_key_padding_mask=tgt_key_padding_mask,
                      memory_key_padding_mask=memory_key_padding_mask,
                      tgt_is_causal=bool(tgt_is_causal), memory_is_causal=memory_is_causal,
                      cache=None if caches is None else caches[i])
        return x if self.norm is None else self.norm(x)
