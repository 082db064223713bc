"""Position information added to token embeddings: the fixed sinusoidal table of
"Attention Is All You Need" and a learned table. Both take batch-first x (B, T, C) and add the
rows for positions offset .. offset + T - 1 (offset > 0 when decoding step by step).
"""
import math

from ..creation import empty, tensor
from ..dtypes import float32, float64
from ..tensor import Tensor
from . import init
from .module import Module, Parameter


def _check_sizes(name, **sizes):
    for arg, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name}: {arg} must be a positive int, got {type(value).__name__}")
        if value <= 0:
            raise ValueError(f"{name}: {arg} must be a positive int, got {value}")


def _check_input(name, x):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: x must be a Tensor (B, T, d_model), got {type(x).__name__}")
    if x.ndim < 2:
        raise ValueError(f"{name}: x must be (B, T, d_model) or (T, d_model), got "
                         f"{tuple(x.shape)}")


def _check_length(T, offset, max_len, name):
    if offset < 0 or offset + T > max_len:
        raise ValueError(f"{name}: positions {offset}..{offset + T - 1} (sequence length {T}, "
                         f"offset {offset}) do not fit max_len {max_len}")


class SinusoidalPositionalEncoding(Module):
    """pe[pos, 2i] = sin(pos / 10000^(2i / d)), pe[pos, 2i + 1] = cos(pos / 10000^(2i / d)).

    The table pe (max_len, d_model) is a non-persistent buffer: it is not in state_dict.
    forward(x (B, T, d_model), offset=0) -> x + pe[offset:offset + T].
    """

    def __init__(self, d_model, max_len=5000, dtype=None, device="cpu"):
        super().__init__()
        _check_sizes("SinusoidalPositionalEncoding", d_model=d_model, max_len=max_len)
        self.d_model, self.max_len = d_model, max_len
        # NOTE: no sin/cos primitive: the table is built once, in float64, with the C
        # library's sin and cos (max_len * d_model calls; ~0.3 s for 5000 x 512)
        freqs = [math.exp(two_i * (-math.log(10000.0) / d_model))
                 for two_i in range(0, d_model, 2)]                               # 1/10000^(2i/d)
        rows = [[f(pos * w) for w in freqs for f in (math.sin, math.cos)][:d_model]
                for pos in range(max_len)]
        table = tensor(rows, dtype=float64).to(dtype or float32).to(device)       # (L, d)
        self.register_buffer("pe", table, persistent=False)

    def forward(self, x, offset=0):
        _check_input("SinusoidalPositionalEncoding", x)
        T = x.shape[-2]
        _check_length(T, offset, self.max_len, "SinusoidalPositionalEncoding")
        return x + self.pe[offset:offset + T].to(x.dtype)

    def extra_repr(self):
        return f"d_model={self.d_model}, max_len={self.max_len}"


class LearnedPositionalEmbedding(Module):
    """A learned table weight (max_len, d_model), initialised N(0, init_std^2) (0.02, as
    GPT-2; note nn.Embedding would use 1). forward(x (B, T, d), offset=0) -> x + rows."""

    def __init__(self, max_len, d_model, init_std=0.02, dtype=None, device="cpu"):
        super().__init__()
        _check_sizes("LearnedPositionalEmbedding", max_len=max_len, d_model=d_model)
        self.max_len, self.d_model = max_len, d_model
        self.weight = Parameter(empty(max_len, d_model, dtype=dtype, device=device))
        init.normal_(self.weight, 0.0, init_std)

    def forward(self, x, offset=0):
        _check_input("LearnedPositionalEmbedding", x)
        T = x.shape[-2]
        _check_length(T, offset, self.max_len, "LearnedPositionalEmbedding")
        return x + self.weight[offset:offset + T]

    def extra_repr(self):
        return f"{self.max_len}, {self.d_model}"


__all__ = ["LearnedPositionalEmbedding", "SinusoidalPositionalEncoding"]
