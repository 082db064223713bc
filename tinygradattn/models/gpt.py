"""GPT: a decoder-only transformer language model in nanoGPT's shape (and parameter names).

    transformer.wte (V, C) + transformer.wpe (block_size, C)
    -> n_layer x Block: x + attn(ln_1(x)), x + mlp(ln_2(x))      (pre-LN)
    -> transformer.ln_f -> lm_head (tied to transformer.wte.weight) -> logits (B, T, V)

The names match nanoGPT's model.py, so a state_dict moves between the two through numpy.
Generation keeps a key/value cache per layer (see CausalSelfAttention) and falls back to
cropping the context and recomputing once it outgrows block_size: with learned absolute
positions a sliding cache would see every position shift, so it cannot be reused.
"""
import heapq
import math
import numbers
from dataclasses import dataclass

from .. import creation, dtypes
from ..autograd.grad_mode import no_grad
from ..tensor import Tensor, cat
from ..nn import functional as F
from ..nn import init
from ..nn.activation import GELU, Dropout
from ..nn.attention import qkv_attention
from ..nn.container import ModuleDict, ModuleList
from ..nn.embedding import Embedding
from ..nn.linear import Linear
from ..nn.module import Module
from ..nn.norm import LayerNorm
from ..optim import AdamW


def _passes_through(dropout):
    """A Dropout that returns its input (p = 0, or eval mode): a residual added after it may
    as well be added inside the GEMM before it."""
    return dropout.p == 0.0 or not dropout.training


@dataclass
class GPTConfig:
    """Sizes of a GPT (nanoGPT's GPTConfig; the defaults are GPT-2 small's).

    bias=False drops the biases of every Linear and LayerNorm (nanoGPT's option).
    """

    vocab_size: int = 50304
    block_size: int = 1024
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True

    def __post_init__(self):
        self.validate()

    def validate(self):
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(f"GPTConfig: {name} must be an int, got {type(value).__name__} "
                                f"{value!r}")
            if value <= 0:
                raise ValueError(f"GPTConfig: {name} must be positive, got {value}")
        if self.n_embd % self.n_head:
            raise ValueError(f"GPTConfig: n_embd ({self.n_embd}) must be divisible by n_head "
                             f"({self.n_head})")
        if not 0.0 <= self.dropout <= 1.0:
            raise ValueError(f"GPTConfig: dropout must be in [0, 1], got {self.dropout}")


def _check_idx(where, idx):
    """idx must be a (B, T) Tensor (its dtype and values are checked by the embedding)."""
    if not isinstance(idx, Tensor):
        raise TypeError(f"{where}: idx must be a (B, T) tensor of token ids, got "
                        f"{type(idx).__name__}")
    if idx.ndim != 2:
        raise ValueError(f"{where}: idx must be a (B, T) tensor of token ids, got "
                         f"{tuple(idx.shape)}")


def _check_sampling(max_new_tokens, temperature, top_k):
    """generate's arguments: an int count >= 0, a temperature > 0 (not NaN), top_k None or
    an int >= 1."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, numbers.Integral):
        raise TypeError(f"GPT.generate: max_new_tokens must be an int, got "
                        f"{type(max_new_tokens).__name__} {max_new_tokens!r}")
    if max_new_tokens < 0:
        raise ValueError(f"GPT.generate: max_new_tokens must be >= 0, got {max_new_tokens}")
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real):
        raise TypeError(f"GPT.generate: temperature must be a number, got "
                        f"{type(temperature).__name__} {temperature!r}")
    if not temperature > 0:
        raise ValueError(f"GPT.generate: temperature must be positive, got {temperature}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral)):
        raise TypeError(f"GPT.generate: top_k must be an int or None, got "
                        f"{type(top_k).__name__} {top_k!r}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"GPT.generate: top_k must be at least 1, got {top_k}")


class CausalSelfAttention(Module):
    """Multi-head causal self-attention with one fused q/k/v projection (nanoGPT's).

    Without a cache and without attention dropout (eval, or dropout 0) the packed projection
    goes straight into qkv_attention: one op, no split or head transposes to copy. With
    use_cache=True the keys and values of this call are appended to the layer's cache and
    the queries attend to everything cached (the new tokens sit after the cached ones).
    """

    def __init__(self, config):
        super().__init__()
        C = config.n_embd
        self.c_attn = Linear(C, 3 * C, bias=config.bias)
        self.c_proj = Linear(C, C, bias=config.bias)
        self.resid_dropout = Dropout(config.dropout)
        self.n_head, self.n_embd, self.dropout = config.n_head, C, config.dropout
        self.kv_cache = None                     # (k, v), each (B, H, S, D), or None

    def clear_cache(self):
        self.kv_cache = None

    def cache_length(self):
        return 0 if self.kv_cache is None else self.kv_cache[0].shape[2]

    def forward(self, x, use_cache=False, residual=None):                    # x: (B, T, C)
        """Self-attention of x; plus residual (B, T, C) when given (the block's skip
        connection, added inside c_proj's GEMM while resid_dropout is off)."""
        B, T, C = x.shape
        H = self.n_head
        D = C // H
        qkv = self.c_attn(x)                                                 # (B, T, 3C)
        p = self.dropout if self.training else 0.0
        if not use_cache and p == 0.0:
            y = qkv_attention(qkv, H, is_causal=True)                        # (B, T, C)
            return self._project(y, residual)
        q, k, v = qkv.split(C, dim=2)                                        # 3 x (B, T, C)
        q = q.view(B, T, H, D).transpose(1, 2)                               # (B, H, T, D)
        k = k.view(B, T, H, D).transpose(1, 2)                               # (B, H, T, D)
        v = v.view(B, T, H, D).transpose(1, 2)                               # (B, H, T, D)
        past = self.cache_length() if use_cache else 0
        if past:
            k = cat([self.kv_cache[0], k], dim=2)                           # (B, H, S, D)
            v = cat([self.kv_cache[1], v], dim=2)                           # (B, H, S, D)
        if use_cache:
            self.kv_cache = (k.detach(), v.detach())
        if past == 0:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        elif T == 1:        # one new token sees the whole cache: no mask needed
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        else:               # query i sits at position past + i: it sees keys 0 .. past + i
            mask = creation.ones(T, past + T, dtype=dtypes.bool_, device=x.device).tril(past)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        y = y.transpose(1, 2).reshape(B, T, C)                               # (B, T, C)
        return self._project(y, residual)

    def _project(self, y, residual):
        """resid_dropout(c_proj(y)) (+ residual)."""
        if residual is None:
            return self.resid_dropout(self.c_proj(y))
        if _passes_through(self.resid_dropout):
            return F.linear_residual(y, self.c_proj.weight, self.c_proj.bias, residual)
        return residual + self.resid_dropout(self.c_proj(y))


class MLP(Module):
    """c_fc (C -> 4C), exact GELU, c_proj (4C -> C), dropout."""

    def __init__(self, config):
        super().__init__()
        C = config.n_embd
        self.c_fc = Linear(C, 4 * C, bias=config.bias)
        self.gelu = GELU()
        self.c_proj = Linear(4 * C, C, bias=config.bias)
        self.dropout = Dropout(config.dropout)

    def forward(self, x, residual=None):                                     # (B, T, C)
        """dropout(c_proj(gelu(c_fc(x)))) (+ residual) as one op: GELU and its derivative
        run inside the GEMMs, and the residual is added in c_proj's (while dropout is off)."""
        fused_residual = residual is not None and _passes_through(self.dropout)
        y = F.gelu_mlp(x, self.c_fc.weight, self.c_fc.bias, self.c_proj.weight,
                       self.c_proj.bias, self.gelu.approximate,
                       residual=residual if fused_residual else None)
        if fused_residual:
            return y
        y = self.dropout(y)                                                  # (B, T, C)
        return y if residual is None else residual + y


class Block(Module):
    """Pre-LN transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, config):
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x, use_cache=False):
        x = self.attn(self.ln_1(x), use_cache=use_cache, residual=x)        # x + attn(...)
        return self.mlp(self.ln_2(x), residual=x)                            # x + mlp(...)


class GPT(Module):
    """Decoder-only transformer language model (nanoGPT's GPT, same parameter names).

    Args: config, a GPTConfig. forward(idx (B, T) int64, targets (B, T) int64 or None)
    -> (logits (B, T, V), loss or None); targets equal to -1 are ignored, as in nanoGPT.

        >>> import tinygradattn as tga
        >>> from tinygradattn.models import GPT, GPTConfig
        >>> model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8))
        >>> logits, loss = model(tga.zeros(2, 5, dtype=tga.int64))
        >>> tuple(logits.shape), loss
        ((2, 5, 11), None)
    """

    def __init__(self, config):
        super().__init__()
        config.validate()
        self.config = config
        self.transformer = ModuleDict(dict(
            wte=Embedding(config.vocab_size, config.n_embd),
            wpe=Embedding(config.block_size, config.n_embd),
            drop=Dropout(config.dropout),
            h=ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=LayerNorm(config.n_embd, bias=config.bias),
        ))
        self.lm_head = Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer["wte"].weight = self.lm_head.weight      # weight tying
        self.apply(self._init_weights)
        # GPT-2's scaled init of the residual projections: std 0.02 / sqrt(2 n_layer)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, Linear):
            init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, Embedding):
            init.normal_(module.weight, mean=0.0, std=0.02)

    def num_parameters(self, non_embedding=True):
        """Parameter count, tied weights once; non_embedding leaves out the position
        embeddings (the token embeddings count: they are lm_head's weight), as nanoGPT."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.transformer["wpe"].weight.numel()
        return n

    # ---- forward --------------------------------------------------------------------------
    def forward(self, idx, targets=None, use_cache=False):
        """idx (B, T) int64 -> (logits (B, T, V), loss); with use_cache the tokens continue
        the cached ones (positions start after them) and the cache grows by T."""
        _check_idx("GPT", idx)
        B, T = idx.shape
        past = self.transformer["h"][0].attn.cache_length() if use_cache else 0
        if past + T > self.config.block_size:
            what = f"{past} cached + {T} new tokens" if past else f"sequence of length {T}"
            raise ValueError(f"GPT: cannot forward a {what}: longer than block_size "
                             f"{self.config.block_size}")
        pos = creation.arange(past, past + T, device=idx.device)            # (T,)
        tr = self.transformer
        x = tr["drop"](tr["wte"](idx) + tr["wpe"](pos))                     # (B, T, C)
        for block in tr["h"]:
            x = block(x, use_cache=use_cache)                               # (B, T, C)
        logits = self.lm_head(tr["ln_f"](x))                                # (B, T, V)
        if targets is None:
            return logits, None
        if tuple(targets.shape) != (B, T):
            raise ValueError(f"GPT: targets {tuple(targets.shape)} must match idx {(B, T)}")
        loss = F.cross_entropy(logits.view(B * T, -1), targets.view(B * T), ignore_index=-1)
        return logits, loss

    # ---- generation -----------------------------------------------------------------------
    def clear_cache(self):
        for block in self.transformer["h"]:
            block.attn.clear_cache()

    @no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, use_cache=True):
        """Append max_new_tokens sampled tokens to idx (B, T0) and return (B, T0 + new).

        Samples from softmax(logits / temperature), restricted to the top_k most likely
        tokens when given (top_k=1 is greedy). Draws use the global generator
        (tga.manual_seed): one uniform (B, V) draw per token (Gumbel-max sampling), so
        cached and uncached generation consume the same random numbers.
        """
        _check_idx("GPT.generate", idx)
        _check_sampling(max_new_tokens, temperature, top_k)
        block_size = self.config.block_size
        if idx.shape[1] > block_size:
            raise ValueError(f"GPT.generate: prompt of length {idx.shape[1]} is longer than "
                             f"block_size {block_size}")
        if idx.shape[1] == 0:
            raise ValueError("GPT.generate: the prompt must hold at least one token")
        self.clear_cache()
        try:
            fed = 0                     # tokens of idx whose keys/values are in the cache
            for _ in range(max_new_tokens):
                T = idx.shape[1]
                if use_cache and T <= block_size:
                    logits, _ = self(idx[:, fed:], use_cache=True)
                    fed = T
                else:                   # context too long for the positions: crop, recompute
                    self.clear_cache()
                    logits, _ = self(idx[:, max(0, T - block_size):])
                next_id = self._sample(logits[:, -1, :], temperature, top_k)    # (B, 1)
                idx = cat([idx, next_id], dim=1)
        finally:
            self.clear_cache()
        return idx

    @staticmethod
    def _sample(logits, temperature, top_k):                                 # (B, V) -> (B, 1)
        if temperature <= 0:
            raise ValueError(f"GPT.generate: temperature must be positive, got {temperature}")
        logits = logits / temperature
        V = logits.shape[-1]
        if top_k is not None:
            k = min(int(top_k), V)
            if k < 1:
                raise ValueError(f"GPT.generate: top_k must be at least 1, got {top_k}")
            # k-th largest logit of each row; the vocabulary row is short, so on the host
            kth = [[heapq.nlargest(k, row)[-1]] for row in logits.tolist()]
            kth = creation.tensor(kth, dtype=logits.dtype, device=logits.device)   # (B, 1)
            logits = logits.masked_fill(logits < kth, float("-inf"))
        # Gumbel-max: argmax(logits + g), g = -log(-log u), samples softmax(logits) exactly
        u = creation.rand(*logits.shape, dtype=logits.dtype, device=logits.device)  # (B, V)
        gumbel = -(-(u.clamp(min=1e-20)).log()).log()
        return (logits + gumbel).argmax(-1, keepdim=True)                    # (B, 1)

    # ---- training -------------------------------------------------------------------------
    def configure_optimizers(self, weight_decay, learning_rate, betas=(0.9, 0.999), eps=1e-8):
        """AdamW with two groups: 2-D weights (matmuls, embeddings) decayed, biases and
        LayerNorm parameters not (nanoGPT's configure_optimizers)."""
        if not weight_decay >= 0.0:          # a group's decay is not checked by AdamW
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        params = list(self.named_parameters())
        decay = [p for _, p in params if p.ndim >= 2]
        no_decay = [p for _, p in params if p.ndim < 2]
        groups = [{"params": decay, "weight_decay": weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        return AdamW(groups, lr=learning_rate, betas=betas, eps=eps)
