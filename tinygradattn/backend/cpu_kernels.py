"""The CPU backend's kernel calls: allocation from the buffer pool, contiguity and reshapes
around the Cython kernels (tinygradattn._core, _rows, _elementwise, _indexing, _attention,
_optim), one function per primitive that runs a kernel; backend/cpu.py lists them beside the
numpy primitives.

The extensions load on the first kernel call (_Extension), so that `import tinygradattn`
loads none. Kernels run with their default thread count (n_threads=0: _support's
effective_n_threads(), set by tga.set_num_threads).
"""
import importlib
import math
import sys

import numpy as np

from . import isa
from .pool import ALIGN, BufferPool


class _Extension:
    """A kernel module imported on first use; each attribute is looked up once, then cached.

    Dunder lookups (copy, pickle, inspect asking for __wrapped__) are not forwarded: they
    would import the extension for nothing.
    """

    def __init__(self, name):
        self._name = name

    def __getattr__(self, attr):
        if attr.startswith("__") or attr == "_name":
            raise AttributeError(attr)
        value = getattr(importlib.import_module(f"tinygradattn.{self._name}"), attr)
        setattr(self, attr, value)
        return value


_core = _Extension("_core")                  # GEMM, softmax family, column_sum
_rows = _Extension("_rows")                  # layer norm, cross-entropy
_elementwise = _Extension("_elementwise")    # GELU, erf, add / sub / mul
_indexing = _Extension("_indexing")          # row scatter-add
_attention = _Extension("_attention")
_optim = _Extension("_optim")
_support = _Extension("_support")            # threads, ISA state

# kernel outputs come from here: large buffers are reused, pages already touched
POOL = BufferPool()


# ---- runtime (tga.set_num_threads, backend_info, empty_cache) ----------------------------
def set_num_threads(n):
    _support.set_num_threads(n)


def get_num_threads():
    return _support.effective_n_threads()


def info():
    """OpenMP on or off, the default thread count, each kernel family's ISA, the pool."""
    info = {"openmp": _support.openmp_enabled(), "n_threads": _support.effective_n_threads()}
    for family in isa.FAMILIES:
        info[f"{family}_isa"] = isa.isa(family)
    info["buffer_pool"] = POOL.stats()
    return info


def empty_cache():
    POOL.clear()


def _is_basic_index(index):
    """True when numpy indexing with `index` is a view (no integer or bool arrays)."""
    items = index if isinstance(index, tuple) else (index,)
    return not any(isinstance(i, (np.ndarray, list)) for i in items)


def _is_row_gather(index):
    """index == (int_array,): rows of dst picked by an integer array (an embedding lookup)."""
    return (isinstance(index, tuple) and len(index) == 1 and isinstance(index[0], np.ndarray)
            and index[0].dtype.kind in "iu")


_FLOAT_KINDS = (np.dtype(np.float32), np.dtype(np.float64))


def _add_rows(dst, rows, src):
    """dst[rows[i]] += src[i] for every i, repeated rows accumulating, in src's order.

    Float arrays: _indexing.add_rows, one in-order pass (a tenth of np.add.at's time on the
    small GPT's embedding backwards). Otherwise (ints, strided dst): np.add.at would go one
    element at a time, so sort the rows (stably, so each row's terms keep their order), sum
    each run of equal rows with one reduceat, and add the sums once per distinct row.
    """
    rows = rows.reshape(-1)
    if rows.size == 0:
        return
    if (dst.dtype in _FLOAT_KINDS and src.dtype == dst.dtype and dst.flags.c_contiguous
            and dst.ndim >= 1 and dst.size):                  # our kernel: in order, one pass
        n_cols = dst.size // dst.shape[0]
        _indexing.add_rows(dst.reshape(dst.shape[0], n_cols),
                           np.ascontiguousarray(rows, dtype=np.int64),
                           np.ascontiguousarray(src).reshape(rows.size, n_cols))
        return
    rows = np.where(rows < 0, rows + dst.shape[0], rows)      # -1 and n-1 are one row
    src = src.reshape((rows.size,) + dst.shape[1:])
    order = np.argsort(rows, kind="stable")
    sorted_rows = rows[order]
    starts = np.flatnonzero(np.r_[True, sorted_rows[1:] != sorted_rows[:-1]])
    dst[sorted_rows[starts]] += np.add.reduceat(src[order], starts, axis=0)


_BINARY_OPS = {np.add: 0, np.subtract: 1, np.multiply: 2}      # _elementwise.binary's op codes


def pooled_binary(ufunc, a, b):
    """ufunc(a, b); a large same-shape, same-dtype result goes into a pooled buffer, computed
    on threads by _elementwise.binary when both are contiguous floats."""
    if (type(a) is np.ndarray and type(b) is np.ndarray and a.shape == b.shape
            and a.dtype is b.dtype and a.nbytes >= POOL.min_bytes):
        out = POOL.empty(a.shape, a.dtype)
        if a.dtype in _FLOAT_KINDS and a.flags.c_contiguous and b.flags.c_contiguous:
            _elementwise.binary(out.reshape(-1), a.reshape(-1), b.reshape(-1), _BINARY_OPS[ufunc])
            return out
        return ufunc(a, b, out=out)
    return ufunc(a, b)


# ---- creation, elementwise, indexing -------------------------------------------------------
def storage(x):
    """(key, n_bytes) of the allocation x's memory lies in: the last ndarray of its .base
    chain (a pooled buffer, an array a view was taken of), so views of it count once. A
    pooled buffer's size leaves out its alignment margin (the bytes handed out, as torch's
    storage nbytes)."""
    while isinstance(x.base, np.ndarray):
        x = x.base
    if x.nbytes >= POOL.min_bytes and POOL.holds(x):
        return id(x), x.nbytes - ALIGN
    return id(x), x.nbytes


def _own_memory(x):
    """x is contiguous, writable, and its memory is its own, or a base array only x (and
    the pool's list) refers to; views of views always point at the owning base. The
    caller checks x's own reference count, in its frame."""
    if type(x) is not np.ndarray or not x.flags.c_contiguous or not x.flags.writeable:
        return False
    base = x.base
    if base is None:
        return True
    return (type(base) is np.ndarray and base.base is None
            and sys.getrefcount(base) == 3 + POOL.holds(base))      # x.base, base, arg


def take_or_copy(box):
    x = box.pop()
    if sys.getrefcount(x) == 2 and _own_memory(x):   # x here + getrefcount's argument
        return x
    return np.array(x, order="C", copy=True)


def accumulate(box, b):
    """A gradient's running sum: added into a's memory in place when a is owned (saves a
    fresh output buffer and its cache misses), else a new array."""
    a = box.pop()
    if (sys.getrefcount(a) == 2 and type(b) is np.ndarray and a.shape == b.shape
            and a.dtype is b.dtype and a.dtype in _FLOAT_KINDS and b.flags.c_contiguous
            and _own_memory(a)):
        _elementwise.binary(a.reshape(-1), a.reshape(-1), b.reshape(-1), 0)
        return a
    return pooled_binary(np.add, a, b)


def erf(x):
    out = np.empty(x.shape, dtype=x.dtype)
    _elementwise.erf(out.reshape(-1), np.ascontiguousarray(x).reshape(-1))
    return out


def index_add(dst, index, src):
    if _is_basic_index(index):
        dst[index] += src            # a view: no repeated positions possible
    elif _is_row_gather(index):
        _add_rows(dst, index[0], src)
    else:
        np.add.at(dst, index, src)   # repeated indices accumulate


# ---- matmul, linear ---------------------------------------------------------------------
def matmul(a, b):
    """(*Ba, M, K) @ (*Bb, K, N) -> (*broadcast(Ba, Bb), M, N) with our GEMM."""
    M, K = a.shape[-2:]
    N = b.shape[-1]
    if a.ndim == 2 and b.ndim == 2:                     # the common case, no batch work
        out = POOL.empty((M, N), dtype=a.dtype)
        _core.gemm(out[None], a[None], b[None])
        return out
    batch = a.shape[:-2]
    n_batch = math.prod(batch)
    if a.ndim == 3 and batch == b.shape[:-2]:           # (Bt, M, K), (Bt, K, N) already
        a3, b3 = a, b
    elif batch == b.shape[:-2]:                         # same batch dims (attention's)
        a3 = a.reshape(n_batch, M, K)                   # a view: no np.broadcast_to
        b3 = b.reshape(n_batch, K, N)
    else:
        batch = np.broadcast_shapes(batch, b.shape[:-2])
        n_batch = math.prod(batch)
        # broadcast batch dims get stride 0; reshape copies only when dims cannot merge
        a3 = np.broadcast_to(a, batch + (M, K)).reshape(n_batch, M, K)
        b3 = np.broadcast_to(b, batch + (K, N)).reshape(n_batch, K, N)
    out = POOL.empty(batch + (M, N), dtype=a.dtype)
    _core.gemm(out if out.ndim == 3 else out.reshape(n_batch, M, N), a3, b3)
    return out


def _linear_gemm(x, weight, bias, **epilogue):
    """x (N, in) @ weight (out, in).T + bias (out,) -> (N, out), bias added in the GEMM;
    epilogue: gemm's add= / gelu=, grad= (arrays (1, N, out))."""
    out = POOL.empty((x.shape[0], weight.shape[0]), dtype=x.dtype)
    if bias is not None:
        bias = np.ascontiguousarray(bias)
    _core.gemm(out[None], x[None], weight.T[None], bias=bias, **epilogue)
    return out


def linear_fwd(x, weight, bias, residual=None):
    """x (N, in) @ weight (out, in).T + bias (out,) [+ residual (N, out)] -> (N, out);
    bias and residual added in the GEMM."""
    if residual is not None:
        residual = np.ascontiguousarray(residual, dtype=x.dtype)[None]
    return _linear_gemm(x, weight, bias, add=residual)


def linear_gelu_fwd(x, weight, bias, approximate):
    """-> gelu(h) and gelu'(h) (N, out), h = x @ weight.T + bias: float32 applies GELU to
    each finished stripe of h inside the GEMM, float64 after it."""
    if x.dtype != np.float32:
        return gelu_fwd_grad(linear_fwd(x, weight, bias), approximate)
    grad = POOL.empty((x.shape[0], weight.shape[0]), dtype=x.dtype)
    return _linear_gemm(x, weight, bias, gelu=approximate, grad=grad[None]), grad


def linear_bwd(dout, x, weight, needs_dx, needs_dweight, needs_dbias, dx_mul=None):
    """-> dx (N, in), dweight (out, in), dbias (out,); None where not needed. dx_mul
    (N, in): dx = (dout @ w) * dx_mul, the factor applied inside the GEMM."""
    dout = dout.astype(x.dtype, copy=False)
    dx = dweight = dbias = None
    if needs_dx:
        dx = POOL.empty(x.shape, dtype=x.dtype)
        _core.gemm(dx[None], dout[None], weight[None],                     # dout @ w
                   mul=None if dx_mul is None else np.ascontiguousarray(dx_mul)[None])
    if needs_dweight:
        # dout.T is read in place (the GEMM takes strided operands): dweight comes out
        # contiguous (out, in), no transposed copy (measured faster than x.T @ dout + copy)
        dweight = POOL.empty(weight.shape, dtype=x.dtype)
        _core.gemm(dweight[None], dout.T[None], x[None])
    if needs_dbias:
        dbias = POOL.empty(weight.shape[:1], dtype=x.dtype)
        _core.column_sum(dbias, np.ascontiguousarray(dout))
    return dx, dweight, dbias


# ---- row kernels -------------------------------------------------------------------------
def _row_kernel(kernel, out_like, *arrays):
    """Run a last-axis row kernel on arrays viewed as (N, C); returns the output."""
    C = out_like.shape[-1] if out_like.ndim else 1
    out = POOL.empty(out_like.shape, dtype=out_like.dtype)
    if out.size == 0:                     # a size-0 dim: nothing to compute (and -1 is ambiguous)
        return out
    rows = [np.ascontiguousarray(x).reshape(-1, C) for x in arrays]
    kernel(out.reshape(-1, C), *rows)
    return out


def softmax_fwd(x):
    return _row_kernel(_core.softmax_fwd, x, x)


def softmax_bwd(y, dout):
    return _row_kernel(_core.softmax_bwd, y, y, dout)


def log_softmax_fwd(x):
    return _row_kernel(_core.log_softmax_fwd, x, x)


def log_softmax_bwd(y, dout):
    return _row_kernel(_core.log_softmax_bwd, y, y, dout)


def layer_norm_fwd(x, weight, bias, eps):
    """x (N, C) -> y (N, C), mean (N,), rstd (N,). N = 0 or C = 0: an empty y, zero stats."""
    if x.size == 0:
        return (POOL.empty(x.shape, dtype=x.dtype), np.zeros(x.shape[:1], x.dtype),
                np.zeros(x.shape[:1], x.dtype))
    x = np.ascontiguousarray(x)
    w = None if weight is None else np.ascontiguousarray(weight)
    b = None if bias is None else np.ascontiguousarray(bias)
    y = POOL.empty(x.shape, dtype=x.dtype)
    mean = POOL.empty(x.shape[:1], dtype=x.dtype)
    rstd = POOL.empty(x.shape[:1], dtype=x.dtype)
    _rows.layer_norm_fwd(y, mean, rstd, x, w, b, eps)
    return y, mean, rstd


def layer_norm_bwd(dout, x, weight, mean, rstd):
    """-> dx (N, C), dweight (C,) or None without weight, dbias (C,) (zeros when N = 0)."""
    C = x.shape[1]
    if x.size == 0:
        dweight = np.zeros(C, x.dtype) if weight is not None else None
        return np.empty(x.shape, x.dtype), dweight, np.zeros(C, x.dtype)
    w = None if weight is None else np.ascontiguousarray(weight)
    dx = POOL.empty(x.shape, dtype=x.dtype)
    dweight = POOL.empty(C, dtype=x.dtype)
    dbias = POOL.empty(C, dtype=x.dtype)
    _rows.layer_norm_bwd(dx, dweight, dbias, np.ascontiguousarray(dout),
                         np.ascontiguousarray(x), w, mean, rstd)
    return dx, (dweight if weight is not None else None), dbias


def cross_entropy_fwd(logits, target, ignore_index, label_smoothing, with_probs=False):
    """logits (N, C), target (N,) int64 -> loss (N,), lse (N,), rows not ignored, and
    softmax(logits) for cross_entropy_bwd when with_probs (else None): here the pair
    (exp(logits - row max) (N, C), 1 / row sums (N,)), the kernel's unscaled form."""
    logits = np.ascontiguousarray(logits)
    loss = POOL.empty(logits.shape[:1], dtype=logits.dtype)
    lse = POOL.empty(logits.shape[:1], dtype=logits.dtype)
    exps = inv_sum = None
    if with_probs:
        exps = POOL.empty(logits.shape, dtype=logits.dtype)
        inv_sum = POOL.empty(logits.shape[:1], dtype=logits.dtype)
    n_valid = _rows.cross_entropy_fwd(loss, lse, logits, np.ascontiguousarray(target),
                                      ignore_index, label_smoothing, probs=exps,
                                      inv_sum=inv_sum)
    return loss, lse, n_valid, ((exps, inv_sum) if with_probs else None)


def cross_entropy_bwd(dloss, probs, target, ignore_index, label_smoothing):
    """-> dlogits (N, C) from the forward's softmax (probs as cross_entropy_fwd returned
    it); dloss (N,) or a scalar for every row."""
    exps, inv_sum = probs
    dlogits = POOL.empty(exps.shape, dtype=exps.dtype)
    dloss = np.asarray(dloss, dtype=exps.dtype)
    if dloss.ndim:
        dloss = np.ascontiguousarray(dloss)
    _rows.cross_entropy_bwd_probs(dlogits, dloss, exps, np.ascontiguousarray(target),
                                  ignore_index, label_smoothing, inv_sum=inv_sum)
    return dlogits


def gelu_fwd(x, approximate):
    out = POOL.empty(x.shape, dtype=x.dtype)
    _elementwise.gelu_fwd(out.reshape(-1), np.ascontiguousarray(x).reshape(-1),
                          approximate == "tanh")
    return out


def gelu_fwd_grad(x, approximate):
    """-> gelu(x) and gelu'(x), one pass."""
    out = POOL.empty(x.shape, dtype=x.dtype)
    grad = POOL.empty(x.shape, dtype=x.dtype)
    _elementwise.gelu_fwd(out.reshape(-1), np.ascontiguousarray(x).reshape(-1),
                          approximate == "tanh", grad=grad.reshape(-1))
    return out, grad


def gelu_bwd(dout, x, approximate):
    dx = POOL.empty(x.shape, dtype=x.dtype)
    _elementwise.gelu_bwd(dx.reshape(-1), np.ascontiguousarray(dout).reshape(-1),
                          np.ascontiguousarray(x).reshape(-1), approximate == "tanh")
    return dx


# ---- attention (tinygradattn._attention) -------------------------------------------------
# The kernels read every (B, H, rows, D) operand through its strides and write outputs
# through strided views: no q, k, v, out or dout is copied. out is a (B, T, H, Dv) buffer
# viewed (B, H, T, Dv), as torch's flash kernel lays it out, so merging the heads back
# (out.transpose(1, 2).reshape(B, T, H * Dv)) and its gradient are views too.
def sdpa_fwd(q, k, v, mask, is_causal, scale):
    """q (B, H, T, D), k (B, H, S, D), v (B, H, S, Dv) -> out (B, H, T, Dv), lse (B, H, T)."""
    if _attention_is_empty(q, k, v):
        return empty_sdpa_fwd(q, v)
    q, k, v = _heads(q), _heads(k), _heads(v)
    B, H, T, _ = q.shape
    out = POOL.empty((B, T, H, v.shape[3]), q.dtype).transpose(0, 2, 1, 3)  # (B, H, T, Dv)
    lse = POOL.empty((B, H, T), q.dtype)
    _attention.sdpa_fwd(out, lse, q, k, v, _additive_mask(mask, q, k), bool(is_causal),
                        float(scale))
    return out, lse


def sdpa_bwd(dout, q, k, v, out, lse, mask, is_causal, scale):
    """-> dq, dk, dv shaped (and laid out) like q (B, H, T, D), k (B, H, S, D), v."""
    if _attention_is_empty(q, k, v):
        return np.zeros(q.shape, q.dtype), np.zeros(k.shape, k.dtype), np.zeros(v.shape, v.dtype)
    q, k, v, out, dout = (_heads(a) for a in (q, k, v, out, dout))
    dq, dk, dv = _empty_heads_like(q), _empty_heads_like(k), _empty_heads_like(v)
    _attention.sdpa_bwd(dq, dk, dv, dout, q, k, v, out, np.ascontiguousarray(lse),
                        _additive_mask(mask, q, k), bool(is_causal), float(scale))
    return dq, dk, dv


def _attention_is_empty(q, k, v):
    """B, H, T, S or Dv is 0: nothing to compute (the kernels do not take such shapes)."""
    return 0 in q.shape[:3] or k.shape[2] == 0 or v.shape[3] == 0


def empty_sdpa_fwd(q, v):
    """sdpa with a size-0 dim, as torch 2.13 computes it: out (B, H, T, Dv) zeros (a row with
    no key attends to nothing), lse (B, H, T) -inf."""
    B, H, T = q.shape[:3]
    out = np.zeros((B, H, T, v.shape[3]), q.dtype)
    lse = np.full((B, H, T), -np.inf, q.dtype)
    return out, lse


def qkv_attention_fwd(qkv, n_head, is_causal, scale, mask=None):
    """qkv (B, T, 3C) -> y (B, T, C), lse (B, H, T); q, k, v: qkv's thirds, H heads each;
    mask as sdpa_fwd's (None, bool or float, broadcastable to (B, H, T, T))."""
    B, T, C3 = qkv.shape
    q, k, v = _qkv_heads(qkv, n_head)                                   # 3 x (B, H, T, D)
    y = POOL.empty((B, T, C3 // 3), qkv.dtype)                          # (B, T, C)
    lse = POOL.empty((B, n_head, T), qkv.dtype)
    _attention.sdpa_fwd(_split_heads(y, n_head), lse, q, k, v, _additive_mask(mask, q, k),
                        bool(is_causal), float(scale))
    return y, lse


def qkv_attention_bwd(dout, qkv, y, lse, n_head, is_causal, scale, mask=None):
    """dout (B, T, C) -> dqkv (B, T, 3C), written by the kernel through dq | dk | dv views."""
    q, k, v = _qkv_heads(qkv, n_head)                                   # 3 x (B, H, T, D)
    dqkv = POOL.empty(qkv.shape, qkv.dtype)                             # (B, T, 3C)
    dq, dk, dv = _qkv_heads(dqkv, n_head)
    _attention.sdpa_bwd(dq, dk, dv, _split_heads(dout, n_head), q, k, v,
                        _split_heads(y, n_head), np.ascontiguousarray(lse),
                        _additive_mask(mask, q, k), bool(is_causal), float(scale))
    return dqkv


# ---- optimizer steps (in place, tinygradattn._optim) --------------------------------------
def sgd_step(params, grads, momentum_bufs, lr, momentum, dampening, weight_decay, nesterov,
             first_step):
    _optim_call(_optim.sgd_step, params, grads, [momentum_bufs],
                (lr, momentum, dampening, weight_decay, nesterov, first_step))


def adam_step(params, grads, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps,
              weight_decay, decoupled):
    _optim_call(_optim.adam_step, params, grads, [exp_avgs, exp_avg_sqs],
                (step, lr, beta1, beta2, eps, weight_decay, decoupled))


def _heads(a):
    """a (B, H, rows, D) as the attention kernels read it: itself when D has unit stride
    (any other strides), else a contiguous copy."""
    item = a.itemsize
    if (a.shape[3] <= 1 or a.strides[3] == item) and not any(st % item for st in a.strides):
        return a
    return np.ascontiguousarray(a)


def _empty_heads_like(a):
    """An uninitialised (B, H, rows, D) buffer whose B, H, rows axes nest in a's stride order
    (D last): the gradient of a transposed (B, T, H, D) view is one (B, T, H, D) buffer."""
    order = sorted(range(3), key=lambda i: -abs(a.strides[i])) + [3]
    buf = POOL.empty(tuple(a.shape[i] for i in order), a.dtype)
    return buf.transpose(np.argsort(order))


def _split_heads(x, n_head):
    """x (B, T, H*D) viewed (B, H, T, D) (a copy only if the last axis cannot split)."""
    B, T, C = x.shape
    return _heads(x.reshape(B, T, n_head, C // n_head).transpose(0, 2, 1, 3))


def _qkv_heads(qkv, n_head):
    """q, k, v (B, H, T, D): views of the thirds of a packed projection qkv (B, T, 3*H*D)."""
    B, T, C3 = qkv.shape
    heads = qkv.reshape(B, T, 3, n_head, C3 // (3 * n_head)).transpose(2, 0, 3, 1, 4)
    return _heads(heads[0]), _heads(heads[1]), _heads(heads[2])


def _additive_mask(mask, q, k):
    """None, or the mask as q's float dtype viewed (B, H, T, S) with stride 0 on broadcast dims.

    A bool mask (True = may attend) becomes 0 / -inf at its own size, never expanded.
    """
    if mask is None:
        return None
    if mask.dtype == np.bool_:
        mask = np.where(mask, q.dtype.type(0), q.dtype.type(-np.inf))
    else:
        mask = mask.astype(q.dtype, copy=False)
    return np.broadcast_to(mask, q.shape[:3] + (k.shape[2],))


def _optim_call(kernel, params, grads, states, scalars):
    """Run an in-place optimizer kernel once per dtype present in params.

    The kernels take C-contiguous arrays of one dtype: grads are made so (a copy only when
    needed); a non-contiguous param or state is updated through a contiguous copy written
    back afterwards, so the caller's arrays change in place either way. `states` holds
    lists parallel to params (None for an unused one, e.g. SGD without momentum).
    """
    by_dtype = {}
    for i, p in enumerate(params):
        by_dtype.setdefault(p.dtype, []).append(i)
    for dtype, idx in by_dtype.items():
        write_back = []

        def inplace(a):
            if a.flags.c_contiguous:
                return a
            c = np.ascontiguousarray(a)
            write_back.append((a, c))
            return c

        ps = [inplace(params[i]) for i in idx]
        gs = [np.ascontiguousarray(grads[i], dtype=dtype) for i in idx]
        sts = [None if st is None else [inplace(st[i]) for i in idx] for st in states]
        kernel(ps, gs, *sts, *scalars)
        for dst, src in write_back:
            dst[...] = src
