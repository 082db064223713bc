"""The attention weights of the fused attention ops, rebuilt from their saved log-sum-exp.

The fused forward (ops/attention.py) never forms the T x S weights: it keeps out and lse
(B, H, T), the log of each score row's softmax denominator. From q, k and lse the weights of
any head come back in one product and one exp, with no second pass over the row:

    p[b, h, t, s] = exp(q[b, h, t] . k[b, h, s] * scale + mask[t, s] - lse[b, h, t])

`attention_weights` does this over backend primitives (getitem, matmul, mul, add, where, sub,
exp), so it runs on every device; it builds the (T, S) matrix of the heads asked for only.

Recording: while a Recorder is active (`nn.attention_maps.capture_attention` opens one), the
fused ops hand it their q, k, lse and mask as they run, and it keeps the rebuilt weights of
its heads. The ops test `RECORDERS` (an empty list when nothing is recorded) and do nothing
else: the hot path gains one truth test of a module-level list.
"""
import math

# The active recorders, innermost last. Empty unless a capture is open: the fused ops test
# `if RECORDERS:` and nothing more.
RECORDERS = []


def attention_weights(backend, q, k, lse, scale, mask=None, is_causal=False, heads=None):
    """p = exp(q k^T * scale + mask - lse) for the heads asked for, as the fused forward had it.

    Args (backend arrays): q (B, H, T, D), k (B, H, S, D), lse (B, H, T) from sdpa_fwd;
    scale a float; mask None | bool (True = may attend) | float (added), broadcastable to
    (B, H, T, S); is_causal (query t sees keys 0..t); heads None (all) or a sequence of head
    indices. Returns p (B, len(heads), T, S) in q's dtype: softmax rows that sum to 1, and 0
    for a row whose every key is masked (lse = -inf), as the fused output is 0 there.
    """
    B, H, T, _ = q.shape
    S = k.shape[2]
    heads = check_heads(heads, H)
    if heads is not None:
        q, k, lse = (_pick_heads(backend, a, heads) for a in (q, k, lse))  # (B, h, ...)
    scores = backend.matmul(q, backend.permute(k, (0, 1, 3, 2)))           # (B, h, T, S)
    scores = backend.mul(scores, backend.full((), scale, scores.dtype))
    neg_inf = backend.full((), -math.inf, scores.dtype)
    if mask is not None:
        mask = _mask_heads(backend, mask, heads)                           # (B|1, h|1, T|1, S|1)
        if mask.dtype == bool:
            scores = backend.where(mask, scores, neg_inf)
        else:
            scores = backend.add(scores, mask)
    if is_causal:
        rows = backend.reshape(backend.arange(0, T, 1, lse.dtype), (T, 1))
        cols = backend.reshape(backend.arange(0, S, 1, lse.dtype), (1, S))
        scores = backend.where(backend.ge(rows, cols), scores, neg_inf)    # top-left aligned
    # a fully masked row has lse = -inf and every score -inf: with lse 0 there it gives
    # exp(-inf) = 0, as the fused output is 0, where exp(-inf - -inf) would be NaN
    lse = backend.where(backend.eq(lse, neg_inf), backend.full((), 0.0, lse.dtype), lse)
    lse = backend.reshape(lse, lse.shape + (1,))                           # (B, h, T, 1)
    return backend.exp(backend.sub(scores, lse))                           # (B, h, T, S)


def packed_qk(backend, qkv, n_head):
    """q, k (B, H, T, D) as strided views of a packed projection qkv (B, T, 3C) = q | k | v."""
    B, T, C3 = qkv.shape
    D = C3 // (3 * n_head)
    parts = backend.reshape(qkv, (B, T, 3, n_head, D))                      # (B, T, 3, H, D)
    q = backend.permute(backend.getitem(parts, (slice(None), slice(None), 0)), (0, 2, 1, 3))
    k = backend.permute(backend.getitem(parts, (slice(None), slice(None), 1)), (0, 2, 1, 3))
    return q, k                                                             # (B, H, T, D) each


def check_heads(heads, n_head):
    """heads as a tuple of indices in [0, n_head), or None for all; IndexError naming a bad
    one, TypeError for a non-integer."""
    if heads is None:
        return None
    if isinstance(heads, int):
        heads = (heads,)
    out = []
    for h in heads:
        if isinstance(h, bool) or not isinstance(h, int):
            raise TypeError(f"attention_weights: heads must be integers, got "
                            f"{type(h).__name__} {h!r}")
        if not -n_head <= h < n_head:
            raise IndexError(f"attention_weights: head {h} is out of range for {n_head} heads")
        out.append(h % n_head)
    return tuple(out)


def _pick_heads(backend, x, heads):
    """x (B, H, ...) -> (B, len(heads), ...): the heads in order, one slice each (no copy of
    a head that is not asked for)."""
    if heads == tuple(range(heads[0], heads[0] + len(heads))):             # a run: one view
        return backend.getitem(x, (slice(None), slice(heads[0], heads[0] + len(heads))))
    return backend.concatenate([backend.getitem(x, (slice(None), slice(h, h + 1)))
                                for h in heads], 1)


def _mask_heads(backend, mask, heads):
    """mask broadcastable to (B, H, T, S) -> 4-d, its head axis cut to heads when it has one."""
    mask = backend.reshape(mask, (1,) * (4 - mask.ndim) + tuple(mask.shape))   # (., ., ., .)
    if heads is None or mask.shape[1] == 1:
        return mask
    return _pick_heads(backend, mask, heads)


class Recorder:
    """Keeps the weights (B, len(heads), T, S) of every fused attention op run while active.

    `records` lists (backend, weights array, label) in the order the ops ran; `label` is
    whatever the `label` attribute held then (nn.attention_maps sets it to the running
    module's name). start() / stop() push and pop it on RECORDERS.
    """

    def __init__(self, heads=None):
        self.heads = heads
        self.records = []
        self.label = None

    def start(self):
        RECORDERS.append(self)
        return self

    def stop(self):
        if self in RECORDERS:
            RECORDERS.remove(self)

    def record(self, backend, q, k, lse, scale, mask=None, is_causal=False):
        """Rebuild and keep the weights of this op: arguments as attention_weights."""
        p = attention_weights(backend, q, k, lse, scale, mask, is_causal, self.heads)
        self.records.append((backend, p, self.label))


def record(backend, q, k, lse, scale, mask=None, is_causal=False):
    """Hand one op's q, k, lse to every active recorder (called by the fused ops)."""
    for recorder in RECORDERS:
        recorder.record(backend, q, k, lse, scale, mask, is_causal)
