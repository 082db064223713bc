"""Attention maps: the weights of every head of every attention layer, and a plot of them.

The fused attention ops (ops/attention.py: F.scaled_dot_product_attention, qkv_attention,
MultiheadAttention, GPT's attention) never form the (T, S) weights. Inside
`capture_attention()` they rebuild them for the heads asked for from the log-sum-exp they
save anyway (ops/attention_weights.py); outside it they pay one test of an empty list.

    capture_attention(heads=None, model=None)   context manager: the maps of the ops run in it
    scaled_dot_product_attention_with_weights   F.scaled_dot_product_attention + its weights
    attention_maps(model, *inputs)              {layer name: weights (B, H, T, S)}
    plot_attention_maps(maps, tokens=...)       a grid of heatmaps, layers x heads (matplotlib)

PyTorch's fused attention cannot return its weights; torch.nn.MultiheadAttention's
need_weights=True runs the unfused path instead. Here the fused path stays, and nothing
changes in the outputs.
"""
import math

from .. import dtypes
from ..autograd.grad_mode import no_grad
from ..creation import ones
from ..ops import attention_weights as _weights
from ..tensor import Tensor
from . import functional as F


class AttentionCapture:
    """What `capture_attention` yields: the maps of the fused attention ops run inside it.

    A sequence of Tensors (B, len(heads), T, S) in the order the ops ran (float, no graph);
    `names` holds each one's layer name (the innermost module of `model` running when it was
    made), or None when the capture was given no model; `named()` pairs them.
    """

    def __init__(self, heads=None, model=None):
        self.heads = heads
        self.model = model
        self._recorder = _weights.Recorder(heads)
        self._patched = []                     # (module, its own forward or None)

    def __enter__(self):
        if self.model is not None:
            self._label_modules(self.model)
        self._recorder.start()
        return self

    def __exit__(self, *exc):
        self._recorder.stop()
        for module, own in reversed(self._patched):
            if own is None:
                del module.__dict__["forward"]
            else:
                object.__setattr__(module, "forward", own)
        self._patched = []
        return False

    def _label_modules(self, model):
        """Wrap each module's forward (this instance only, undone on exit) so that the
        recorder's label names the innermost module running."""
        recorder = self._recorder
        for name, module in model.named_modules():
            own = module.__dict__.get("forward")
            forward = module.forward

            def labelled(*args, _forward=forward, _name=name, **kwargs):
                outer, recorder.label = recorder.label, _name
                try:
                    return _forward(*args, **kwargs)
                finally:
                    recorder.label = outer
            self._patched.append((module, own))
            object.__setattr__(module, "forward", labelled)

    # ---- the maps ---------------------------------------------------------------------------
    def __len__(self):
        return len(self._recorder.records)

    def __getitem__(self, i):
        backend, p, _ = self._recorder.records[i]
        return Tensor._wrap(p, backend)                  # no graph: the maps are observations

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    @property
    def names(self):
        return [label for _, _, label in self._recorder.records]

    def named(self):
        """[(layer name or None, weights (B, h, T, S))] in the order the ops ran."""
        return list(zip(self.names, self))


def capture_attention(heads=None, model=None):
    """Context manager: the fused attention ops run inside it also rebuild their weights.

    Args: heads None (every head) or a list of head indices: the (T, S) matrices of the other
    heads are never formed. model (optional): a Module whose submodules name the maps.
    Yields an AttentionCapture: maps (B, len(heads), T, S) in the order the ops ran. Only the
    fused ops record (dropout off: eval mode, or p = 0; no need_weights=True), and no output,
    gradient or random draw changes.

        >>> import tinygradattn as tga
        >>> q = k = v = tga.randn(1, 2, 3, 4)
        >>> with capture_attention(heads=[1]) as maps:
        ...     out = tga.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        >>> tuple(maps[0].shape), maps[0][0, 0, 0].tolist()
        ((1, 1, 3, 3), [1.0, 0.0, 0.0])
    """
    return AttentionCapture(heads, model)


def scaled_dot_product_attention_with_weights(query, key, value, attn_mask=None, dropout_p=0.0,
                                              is_causal=False, scale=None, heads=None):
    """F.scaled_dot_product_attention, and its weights softmax(q k^T * scale + mask).

    Arguments as F.scaled_dot_product_attention (leading dims of query (..., H, T, D): the
    one before T is the head axis), plus heads: None (all) or a list of head indices.
    Returns (out (..., H, T, Dv), weights (..., len(heads), T, S); (T, S) for 2-D inputs and
    heads None). The fused kernel rebuilds the weights from its log-sum-exp; where the
    composed path runs (dropout_p > 0, mixed dtypes, a mask needing grad) the weights are
    composed too, before dropout. A fully masked row gives weights 0 (fused) as its output.
    PyTorch has no such function (its fused kernels cannot return weights).

        >>> import tinygradattn as tga
        >>> q = k = v = tga.randn(2, 4, 5, 8)
        >>> out, w = scaled_dot_product_attention_with_weights(q, k, v, heads=[0, 3])
        >>> tuple(out.shape), tuple(w.shape)
        ((2, 4, 5, 8), (2, 2, 5, 5))
    """
    with capture_attention(heads) as maps:
        out = F.scaled_dot_product_attention(query, key, value, attn_mask, dropout_p, is_causal,
                                             scale)
    batch = tuple(out.shape[:-2])
    T, S = query.shape[-2], key.shape[-2]
    if len(maps) == 1:
        weights = maps[0]                                              # (B, h, T, S)
    else:
        scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
        weights = _composed_weights(query, key, attn_mask, is_causal, scale, heads, batch)
    h = weights.shape[-3] if weights.ndim >= 3 else 1
    if not batch:
        shape = (T, S) if heads is None else (h, T, S)
    else:
        shape = batch[:-1] + (h, T, S)
    return out, weights.reshape(*shape)


def _composed_weights(query, key, attn_mask, is_causal, scale, heads, batch):
    """softmax(q k^T * scale + mask) of the chosen heads, composed: (*batch[:-1], h, T, S)."""
    with no_grad():
        scores = (query @ key.transpose(-2, -1)) * scale                      # (..., T, S)
        T, S = scores.shape[-2:]
        if is_causal:
            allowed = ones(T, S, dtype=dtypes.bool_, device=scores.device).tril()
            scores = scores.masked_fill(allowed.logical_not(), float("-inf"))
        elif attn_mask is not None and attn_mask.dtype.name == "bool":
            scores = scores.masked_fill(attn_mask.logical_not(), float("-inf"))
        elif attn_mask is not None:
            scores = scores + attn_mask
        scores = scores.expand(*batch, T, S) if batch else scores
        w = scores.softmax(-1)
        heads = _weights.check_heads(heads, batch[-1] if batch else 1)
        if heads is not None and batch:
            w = w[..., list(heads), :, :]                                  # (..., h, T, S)
        return w


def attention_maps(model, *inputs, heads=None, **kwargs):
    """The attention weights of every attention layer of model for one forward pass.

    Runs model(*inputs, **kwargs) once, in eval mode (restored afterwards) under no_grad, and
    returns {layer name: weights (B, len(heads), T, S)} in the order the layers ran, each
    named by the module that ran it: for a GPT, ``transformer.h.0.attn``...; for a
    Seq2SeqTransformer, ``encoder.layers.0.self_attn``, ``decoder.layers.0.self_attn`` and
    ``decoder.layers.0.multihead_attn`` (cross-attention: T target, S source positions).
    A layer run twice gets ``name#1`` for its second map. RuntimeError when no fused
    attention op ran.

        >>> import tinygradattn as tga
        >>> from tinygradattn.models import GPT, GPTConfig
        >>> gpt = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8))
        >>> maps = attention_maps(gpt, tga.zeros(1, 5, dtype=tga.int64))
        >>> {name: tuple(w.shape) for name, w in maps.items()}
        {'transformer.h.0.attn': (1, 2, 5, 5), 'transformer.h.1.attn': (1, 2, 5, 5)}
    """
    was_training = model.training
    model.eval()
    try:
        with no_grad(), capture_attention(heads, model) as maps:
            model(*inputs, **kwargs)
    finally:
        model.train(was_training)
    if not len(maps):
        raise RuntimeError(f"attention_maps: no fused attention op ran in "
                           f"{type(model).__name__}'s forward (need_weights=True and dropout "
                           f"run the composed path, which is not captured)")
    out = {}
    for name, w in maps.named():
        base = name or type(model).__name__       # a map made by the model's own forward
        key, n = base, 1
        while key in out:
            key, n = f"{base}#{n}", n + 1
        out[key] = w
    return out


# ---- plotting --------------------------------------------------------------------------------
def plot_attention_maps(maps, tokens=None, key_tokens=None, batch_index=0, path=None,
                        title=None, cmap="viridis", cell_inches=2.2):
    """A grid of heatmaps, one row per layer and one column per head (matplotlib).

    Args: maps {name: weights (B, H, T, S) or (H, T, S)} (attention_maps' result, or any
    subset); tokens: labels of the query positions (rows), a list of T strings used for
    every map, or {name: (query labels, key labels)} per map; key_tokens: labels of the key
    positions (default: tokens); batch_index: which sample; path: where to save (PNG, SVG,
    ... by the suffix); title: the figure's. Returns the matplotlib Figure (shown inline
    in Jupyter).
    matplotlib is imported here only; ImportError naming it when it is absent.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plot_attention_maps needs matplotlib: pip install matplotlib") \
            from None
    grids = {name: _host_grid(name, w, batch_index) for name, w in maps.items()}
    if not grids:
        raise ValueError("plot_attention_maps: maps is empty")
    n_rows, n_cols = len(grids), max(len(g) for g in grids.values())
    fig = Figure(figsize=(cell_inches * n_cols + 1.0, cell_inches * n_rows + 0.5),
                 layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for r, (name, heads) in enumerate(grids.items()):
        rows, cols = _labels(name, heads[0], tokens, key_tokens)
        for c in range(n_cols):
            ax = axes[r][c]
            if c >= len(heads):
                ax.set_axis_off()
                continue
            image = ax.imshow(heads[c], cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto",
                              interpolation="nearest")
            _ticks(ax, rows, cols, show_rows=c == 0)
            if r == 0:
                ax.set_title(f"head {c}", fontsize=8)
            if c == 0:
                ax.set_ylabel(name, fontsize=8)
    fig.colorbar(image, ax=axes, shrink=0.6, label="attention weight")
    if title:
        fig.suptitle(title)
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def _host_grid(name, w, batch_index):
    """weights (B, H, T, S) or (H, T, S) -> list of H nested lists (T, S) on the host."""
    if not isinstance(w, Tensor) or w.ndim not in (3, 4):
        raise ValueError(f"plot_attention_maps: map {name!r} must be a Tensor (B, H, T, S) or "
                         f"(H, T, S), got {getattr(w, 'shape', type(w).__name__)}")
    if w.ndim == 4:
        if not -w.shape[0] <= batch_index < w.shape[0]:
            raise IndexError(f"plot_attention_maps: batch_index {batch_index} is out of range "
                             f"for map {name!r} of batch {w.shape[0]}")
        w = w[batch_index]                                                   # (H, T, S)
    return w.detach().float().cpu().tolist()


def _labels(name, head, tokens, key_tokens):
    """(row labels, column labels) of one map (head: T rows of S); None where not given."""
    T, S = len(head), len(head[0]) if head else 0
    if isinstance(tokens, dict):
        rows, cols = tokens.get(name, (None, None))
    else:
        rows, cols = tokens, key_tokens if key_tokens is not None else tokens
    for what, labels, n in (("query", rows, T), ("key", cols, S)):
        if labels is not None and len(labels) != n:
            raise ValueError(f"plot_attention_maps: {len(labels)} {what} labels for map "
                             f"{name!r} with {n} {what} positions")
    return rows, cols


def _ticks(ax, rows, cols, show_rows):
    if cols is not None:
        ax.set_xticks(range(len(cols)), [str(t) for t in cols], rotation=90, fontsize=7)
    else:
        ax.set_xticks([])
    if rows is not None and show_rows:
        ax.set_yticks(range(len(rows)), [str(t) for t in rows], fontsize=7)
    else:
        ax.set_yticks([])


__all__ = ["AttentionCapture", "capture_attention", "scaled_dot_product_attention_with_weights",
           "attention_maps", "plot_attention_maps"]
