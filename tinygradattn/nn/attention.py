"""nn.MultiheadAttention (torch.nn.MultiheadAttention's parameters, masks and numerics) and
KVCache, the past keys and values of one attention layer for incremental decoding.

Shapes: B batch, T query length, S key length, E embed_dim, H heads, D = E // H.
Internally everything runs batch-first: (B, T, E) -> (B, H, T, D) -> (B, T, E).

qkv_attention: self-attention straight from a packed projection qkv (B, T, 3E), one fused op
(ops/attention.py QKVAttention) where split + view + transpose + sdpa would copy; used by
models/gpt.py and by MultiheadAttention's self-attention without weights or dropout (its
masks, a key padding mask included, go into the same op).
"""
import math

from .. import dtypes
from ..creation import empty, ones, zeros
from ..ops.attention import QKVAttention
from ..tensor import Tensor, cat
from . import functional as F
from . import init
from .linear import Linear
from .module import Module, Parameter


class KVCache:
    """Keys and values of the positions already decoded, for one attention layer.

    k, v: (B, H, S_past, D) or None while empty. Two uses:

    - self-attention (static=False): each call appends the new positions' keys and values
      and attends over all of them: ``k, v = cache.update(k_new, v_new)``;
    - cross-attention (static=True): the memory's keys and values are projected once, on
      the first call, and reused afterwards (the key/value arguments are then ignored).

    ``MultiheadAttention.forward(..., cache=c)`` does this itself; a model keeps one cache per
    layer (e.g. a list) and makes fresh ones for each new sequence. A hand-written attention
    (a GPT block) can call ``update`` directly on its (B, H, T, D) projections.

        >>> import tinygradattn as tga
        >>> c = tga.nn.KVCache()
        >>> k, v = c.update(tga.zeros(1, 2, 3, 4), tga.zeros(1, 2, 3, 4))
        >>> len(c), tuple(k.shape)
        (3, (1, 2, 3, 4))
    """

    def __init__(self, static=False):
        self.static = static
        self.k = None                                           # (B, H, S_past, D)
        self.v = None                                           # (B, H, S_past, Dv)

    def __len__(self):
        return 0 if self.k is None else self.k.shape[-2]

    @property
    def filled(self):
        return self.k is not None

    def update(self, k, v):
        """Append k, v (B, H, T_new, D) along the sequence axis; return the whole k, v."""
        for name, x in (("k", k), ("v", v)):
            if not isinstance(x, Tensor):
                raise TypeError(f"KVCache.update: {name} must be a Tensor (B, H, T, D), got "
                                f"{type(x).__name__}")
            if x.ndim != 4:
                raise ValueError(f"KVCache.update: {name} must be (B, H, T, D), got "
                                 f"{tuple(x.shape)}")
        if k.shape[:3] != v.shape[:3]:
            raise ValueError(f"KVCache.update: k {tuple(k.shape)} and v {tuple(v.shape)} must "
                             f"agree in (B, H, T)")
        if self.k is None:
            self.k, self.v = k, v
        else:
            self.k = cat([self.k, k], dim=-2)                   # (B, H, S_past + T_new, D)
            self.v = cat([self.v, v], dim=-2)
        return self.k, self.v

    def reorder(self, index):
        """Keep batch rows `index` (int64 (B',)): beam search reorders its hypotheses."""
        if self.k is not None:
            self.k, self.v = self.k[index], self.v[index]

    def reset(self):
        self.k = self.v = None


def qkv_attention(qkv, num_heads, is_causal=False, scale=None):
    """Multi-head self-attention of a packed projection qkv = q | k | v, without splitting it.

    Args: qkv (B, T, 3E), the q, k, v projections side by side (GPT's c_attn output,
    MultiheadAttention's in_proj); num_heads H (E % H == 0), heads of D = E / H; is_causal;
    scale (default 1 / sqrt(D)). Returns (B, T, E): the heads' outputs side by side, equal to
    ``F.scaled_dot_product_attention`` of q, k, v each viewed (B, T, H, D).transpose(1, 2),
    merged back with ``.transpose(1, 2).reshape(B, T, E)`` (PyTorch has no single op for
    this; that composition, `nn.reference.qkv_attention`, is the twin and the torch spelling).
    One fused kernel reads q, k, v in place and writes d(qkv) as one buffer.

        >>> import tinygradattn as tga
        >>> y = qkv_attention(tga.randn(2, 5, 3 * 8), num_heads=2, is_causal=True)
        >>> tuple(y.shape)
        (2, 5, 8)
    """
    if not isinstance(qkv, Tensor):
        raise TypeError(f"qkv_attention(): argument 'qkv' must be Tensor, not "
                        f"{type(qkv).__name__}")
    if qkv.ndim != 3 or num_heads <= 0 or qkv.shape[2] % (3 * num_heads):
        raise RuntimeError(f"qkv_attention: qkv must be (B, T, 3 * E) with E divisible by "
                           f"num_heads = {num_heads}, got {tuple(qkv.shape)}")
    if qkv.dtype not in (dtypes.float32, dtypes.float64):
        raise RuntimeError(f"qkv_attention: qkv must be float32 or float64, got "
                           f"{qkv.dtype.name}")
    D = qkv.shape[2] // (3 * num_heads)
    scale = 1.0 / math.sqrt(D) if scale is None else float(scale)
    return QKVAttention.apply(qkv, int(num_heads), bool(is_causal), scale)


def _check_mask_dtype(mask, name):
    """A mask is None, bool or floating (torch's AssertionError otherwise)."""
    if mask is not None and mask.dtype != dtypes.bool_ and not mask.is_floating_point():
        raise AssertionError(f"only bool and floating types of {name} are supported, got "
                             f"{mask.dtype.name}")


def _canonical_mask(mask, name, dtype):
    """bool (True = masked out) -> float with -inf there; float masks are returned as is."""
    if mask is None:
        return None
    _check_mask_dtype(mask, name)
    if mask.dtype == dtypes.bool_:
        return zeros(*mask.shape, dtype=dtype, device=mask.device).masked_fill(
            mask, float("-inf"))
    return mask


class MultiheadAttention(Module):
    """Multi-head attention, as torch.nn.MultiheadAttention.

    Args: embed_dim E, num_heads H (E % H == 0), dropout (on the attention weights while
    training), bias, batch_first (inputs (B, T, E) instead of (T, B, E)), kdim, vdim
    (feature sizes of key and value; default E).

    Parameters, with torch's names and init: in_proj_weight (3E, E) xavier-uniform, or
    q_proj_weight (E, E), k_proj_weight (E, kdim), v_proj_weight (E, vdim) when kdim or vdim
    differ from E; in_proj_bias (3E,) zeros; out_proj (Linear E -> E, bias zeros).
    add_bias_kv / add_zero_attn are not supported.
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, batch_first=False,
                 kdim=None, vdim=None, device="cpu", dtype=None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"embed_dim and num_heads must be greater than 0, got "
                             f"embed_dim={embed_dim} and num_heads={num_heads} instead")
        if embed_dim % num_heads:
            raise AssertionError(f"embed_dim must be divisible by num_heads, got embed_dim="
                                 f"{embed_dim} and num_heads={num_heads}")
        self.embed_dim = embed_dim
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        E = embed_dim

        def new(*shape):
            return Parameter(empty(*shape, device=device, dtype=dtype))
        # registration order as torch's, so state_dict lists keys in the same order
        if self._qkv_same_embed_dim:
            self.in_proj_weight = new(3 * E, E)
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.q_proj_weight = new(E, E)
            self.k_proj_weight = new(E, self.kdim)
            self.v_proj_weight = new(E, self.vdim)
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = new(3 * E)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(E, E, bias=bias, device=device, dtype=dtype)
        self._reset_parameters()

    def _reset_parameters(self):
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)

    def extra_repr(self):
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
                f"dropout={self.dropout}, batch_first={self.batch_first}")

    # ---- projections --------------------------------------------------------------------
    def _bias(self, i):
        b = self.in_proj_bias
        return None if b is None else b[i * self.embed_dim:(i + 1) * self.embed_dim]

    def _weight(self, i):
        if not self._qkv_same_embed_dim:
            return (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)[i]
        return self.in_proj_weight[i * self.embed_dim:(i + 1) * self.embed_dim]

    def _in_projection(self, query, key, value, need_kv):
        """q, k, v (B, *, E); packed into one GEMM when query is key is value (self-attn)."""
        if not need_kv:
            return F.linear(query, self._weight(0), self._bias(0)), None, None
        if self._qkv_same_embed_dim and query is key and key is value:
            qkv = F.linear(query, self.in_proj_weight, self.in_proj_bias)     # (B, T, 3E)
            return qkv.chunk(3, dim=-1)
        q = F.linear(query, self._weight(0), self._bias(0))                   # (B, T, E)
        k = F.linear(key, self._weight(1), self._bias(1))                     # (B, S, E)
        v = F.linear(value, self._weight(2), self._bias(2))                   # (B, S, E)
        return q, k, v

    def _heads(self, x):
        B, L, _ = x.shape
        return x.reshape(B, L, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, L, D)

    # ---- forward ------------------------------------------------------------------------
    def forward(self, query, key, value, key_padding_mask=None, need_weights=True,
                attn_mask=None, average_attn_weights=True, is_causal=False, cache=None):
        """Returns (attn_output, attn_weights or None), as torch.

        query (T, B, E) or (B, T, E) if batch_first (or unbatched (T, E)); key (S, B, kdim),
        value (S, B, vdim). key_padding_mask (B, S); attn_mask (T, S) or (B * H, T, S). Bool
        masks: True = masked out; float masks are added to the scores. is_causal is a hint
        that attn_mask is the causal mask (torch requires the mask to be given too), used to
        take the fast path. attn_weights: (B, T, S) averaged over heads, or (B, H, T, S)
        when average_attn_weights=False.

        cache (ours, not torch's): a KVCache. Self-attention appends the new positions'
        keys and values and attends over all cached ones; a static cache (cross-attention)
        projects key/value once and reuses them. With a cache, is_causal=True and no
        attn_mask means: query i (absolute position S_past + i) sees keys 0..S_past + i.
        """
        out, weights, batched = self._attend(query, key, value, key_padding_mask, need_weights,
                                             attn_mask, average_attn_weights, is_causal, cache)
        return self._output(self.out_proj(out), weights, batched)

    def forward_add(self, residual, query, key, value, key_padding_mask=None,
                    need_weights=True, attn_mask=None, average_attn_weights=True,
                    is_causal=False, cache=None):
        """(residual + forward(...)[0], attn_weights) with batch-first 3-d inputs (ours: a
        transformer layer's skip connection), residual added inside out_proj's GEMM
        (F.linear_residual) rather than in a pass of its own; out_proj's own forward (and
        any hook on it) is not called. residual: (B, T, E), query's shape."""
        if not (self.batch_first and query.ndim == 3):
            raise ValueError(f"MultiheadAttention.forward_add: batch_first 3-d inputs only, "
                             f"got batch_first={self.batch_first}, query "
                             f"{tuple(query.shape)}")
        out, weights, _ = self._attend(query, key, value, key_padding_mask, need_weights,
                                       attn_mask, average_attn_weights, is_causal, cache)
        proj = self.out_proj
        return F.linear_residual(out, proj.weight, proj.bias, residual), weights

    def _attend(self, query, key, value, key_padding_mask, need_weights, attn_mask,
                average_attn_weights, is_causal, cache):
        """forward's attention before out_proj: (heads merged (B, T, E), weights or None,
        batched)."""
        reused = cache is not None and cache.static and cache.filled     # key, value unused
        for name, x in (("query", query), ("key", key), ("value", value)):
            if not isinstance(x, Tensor) and not (reused and name != "query" and x is None):
                raise TypeError(f"MultiheadAttention: {name} must be a Tensor, got "
                                f"{type(x).__name__}")
        batched = query.ndim == 3
        query, key, value, key_padding_mask, attn_mask = self._batch_inputs(
            batched, query, key, value, key_padding_mask, attn_mask)
        B, T, E = query.shape
        if E != self.embed_dim:
            raise AssertionError(f"was expecting embedding dimension of {self.embed_dim}, but "
                                 f"got {E} (query {tuple(query.shape)})")
        reuse_kv = cache is not None and cache.static and cache.filled
        if not reuse_kv and (key.shape[0] != B or key.shape[1] != value.shape[1]):
            raise AssertionError(f"key {tuple(key.shape)} and value {tuple(value.shape)} do "
                                 f"not match query {tuple(query.shape)} (batch-first shapes)")
        dropout_p = self.dropout if self.training else 0.0
        if (cache is None and not need_weights and dropout_p == 0.0 and query is key
                and key is value and self._qkv_same_embed_dim):
            mask, causal = self._merge_masks(attn_mask, key_padding_mask, is_causal, False,
                                             B, T, T, query.dtype)
            if mask is None or not mask.requires_grad:     # the fused op takes no mask grad
                return self._packed_self_attention(query, mask, causal), None, batched
        q, k, v = self._in_projection(query, key, value, need_kv=not reuse_kv)
        q = self._heads(q)                                                    # (B, H, T, D)
        past = 0
        if reuse_kv:
            k, v = cache.k, cache.v                                           # (B, H, S, D)
        else:
            k, v = self._heads(k), self._heads(v)                             # (B, H, S_new, D)
            if cache is not None:
                past = len(cache)
                k, v = cache.update(k, v)                                     # (B, H, S, D)
        S = k.shape[-2]
        if cache is not None and is_causal and attn_mask is None:
            # causal with an offset: query i sits at absolute position past + i
            is_causal = False
            if T > 1:
                attn_mask = ones(T, S, dtype=dtypes.bool_, device=q.device).triu(past + 1)
        mask, causal = self._merge_masks(attn_mask, key_padding_mask, is_causal, need_weights,
                                         B, T, S, q.dtype)
        if need_weights:
            out, weights = self._explicit_attention(q, k, v, mask, dropout_p)
            if average_attn_weights:
                weights = weights.mean(1)                                     # (B, T, S)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p,
                                                 is_causal=causal)            # (B, H, T, D)
            weights = None
        return out.transpose(1, 2).reshape(B, T, E), weights, batched         # (B, T, E)

    def _output(self, out, weights, batched):
        """out (B, T, E), out_proj's already, in the caller's layout."""
        if not batched:
            out = out.squeeze(0)                                              # (T, E)
            weights = None if weights is None else weights.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)                                         # (T, B, E)
        return out, weights

    def _packed_self_attention(self, x, mask, causal):
        """Self-attention as one op on the packed projection: qkv_attention reads q, k, v in
        place (no chunk, no head transposes, and one d(qkv) buffer back). x: (B, T, E); mask:
        None or _merge_masks's (a key padding mask's, say), causal its flag."""
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)               # (B, T, 3E)
        if mask is None:
            return qkv_attention(qkv, self.num_heads, is_causal=causal)          # (B, T, E)
        scale = 1.0 / math.sqrt(self.head_dim)
        return QKVAttention.apply(qkv, self.num_heads, causal, scale, mask)      # (B, T, E)

    def _batch_inputs(self, batched, query, key, value, key_padding_mask, attn_mask):
        """Bring inputs to batch-first 3-d form (and unbatched masks to batched ones)."""
        if not batched:
            if query.ndim != 2:
                raise AssertionError(f"query should be unbatched 2D or batched 3D tensor but "
                                     f"received {query.ndim}-D query tensor")
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)              # (1, S)
            return query, key, value, key_padding_mask, attn_mask
        if query.ndim != 3:
            raise AssertionError(f"query should be unbatched 2D or batched 3D tensor but "
                                 f"received {query.ndim}-D query tensor")
        if not self.batch_first:
            if query is key and key is value:            # keep self-attention's packed GEMM
                query = key = value = query.transpose(0, 1)
            else:
                query, key, value = (x.transpose(0, 1) for x in (query, key, value))
        return query, key, value, key_padding_mask, attn_mask

    def _merge_masks(self, attn_mask, key_padding_mask, is_causal, need_weights, B, T, S,
                     dtype):
        """One mask broadcastable to (B, H, T, S), or None; and the causal flag for
        scaled_dot_product_attention (torch's rules: the hint is used only when no padding
        mask and no weights are needed). Without weights, bool masks stay bool in sdpa's
        convention (True = may attend): one logical_not, no float mask built each call;
        otherwise (weights, or a float mask among them) a float mask, -inf where masked."""
        if is_causal and attn_mask is None:
            raise RuntimeError("Need attn_mask if specifying the is_causal hint. You may use "
                               "the Transformer module method `generate_square_subsequent_mask`"
                               " to create this mask.")
        if is_causal and key_padding_mask is None and not need_weights:
            return None, True
        _check_mask_dtype(attn_mask, "attn_mask")
        _check_mask_dtype(key_padding_mask, "key_padding_mask")
        mask = self._attn_mask_4d(attn_mask, B, T, S)                         # (B|1, H|1, T, S)
        kpm = None
        if key_padding_mask is not None:
            if tuple(key_padding_mask.shape) != (B, S):
                raise AssertionError(f"expecting key_padding_mask shape of {(B, S)}, but got "
                                     f"{tuple(key_padding_mask.shape)}")
            kpm = key_padding_mask.reshape(B, 1, 1, S)                         # (B, 1, 1, S)
        if not need_weights and all(m is None or m.dtype == dtypes.bool_ for m in (mask, kpm)):
            blocked = kpm if mask is None else mask if kpm is None else mask | kpm
            return (None if blocked is None else blocked.logical_not()), False
        mask = _canonical_mask(mask, "attn_mask", dtype)
        kpm = _canonical_mask(kpm, "key_padding_mask", dtype)
        if kpm is not None:
            mask = kpm if mask is None else mask + kpm                        # (B, H|1, T, S)
        return mask, False

    def _attn_mask_4d(self, attn_mask, B, T, S):
        """attn_mask (T, S) or (B * H, T, S) viewed (1, 1, T, S) / (B, H, T, S); torch's errors."""
        if attn_mask is None:
            return None
        H = self.num_heads
        if attn_mask.ndim == 2:
            if tuple(attn_mask.shape) != (T, S):
                raise RuntimeError(f"The shape of the 2D attn_mask is "
                                   f"{tuple(attn_mask.shape)}, but should be {(T, S)}.")
            return attn_mask.reshape(1, 1, T, S)
        if attn_mask.ndim == 3:
            if tuple(attn_mask.shape) != (B * H, T, S):
                raise RuntimeError(f"The shape of the 3D attn_mask is "
                                   f"{tuple(attn_mask.shape)}, but should be {(B * H, T, S)}.")
            return attn_mask.reshape(B, H, T, S)
        raise AssertionError(f"expected attn_mask to be None, 2-D or 3-D but found "
                             f"{attn_mask.ndim}-D tensor instead")      # torch's class for this

    def _explicit_attention(self, q, k, v, mask, dropout_p):
        """softmax(q k^T / sqrt(D) + mask) v, keeping the weights (B, H, T, S)."""
        q = q * math.sqrt(1.0 / self.head_dim)           # torch scales q before the GEMM
        scores = q @ k.transpose(-2, -1)                                      # (B, H, T, S)
        if mask is not None:
            scores = scores + mask
        weights = scores.softmax(-1)
        if dropout_p > 0.0:
            weights = F.dropout(weights, dropout_p)      # torch returns the dropped weights
        return weights @ v, weights                                           # (B, H, T, D)


def generate_square_subsequent_mask(sz, device="cpu", dtype=None):
    """(sz, sz) float mask: -inf above the diagonal, 0 elsewhere (torch's helper)."""
    blocked = ones(sz, sz, dtype=dtypes.bool_, device=device).triu(1)
    return zeros(sz, sz, dtype=dtype, device=device).masked_fill(blocked, float("-inf"))


__all__ = ["KVCache", "MultiheadAttention", "generate_square_subsequent_mask"]
