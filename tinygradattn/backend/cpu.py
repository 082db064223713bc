"""CPU backend: numpy for plain elementwise, reduction and movement primitives; our Cython
kernels (`tinygradattn._core`) for matmul and the fused row kernels.

Arrays are numpy arrays. Kernels take C-contiguous outputs allocated here.
"""
import math

import numpy as np

from .. import _core
from .base import Backend


def _is_basic_index(index):
    """True when numpy indexing with `index` is a view (no integer or bool arrays)."""
    items = index if isinstance(index, tuple) else (index,)
    return not any(isinstance(i, (np.ndarray, list)) for i in items)


class CPUBackend(Backend):
    name = "cpu"

    def __init__(self):
        self._rng = np.random.default_rng()

    # ---- creation and conversion ------------------------------------------------------
    asarray = staticmethod(lambda data, dtype: np.array(data, dtype=dtype))
    from_host = staticmethod(lambda array: array)
    to_host = staticmethod(lambda x: x)
    empty = staticmethod(lambda shape, dtype: np.empty(shape, dtype=dtype))
    zeros = staticmethod(lambda shape, dtype: np.zeros(shape, dtype=dtype))
    full = staticmethod(lambda shape, value, dtype: np.full(shape, value, dtype=dtype))
    arange = staticmethod(lambda start, end, step, dtype: np.arange(start, end, step, dtype=dtype))
    astype = staticmethod(lambda x, dtype: x.astype(dtype, copy=False))
    copy = staticmethod(lambda x: np.array(x, order="C", copy=True))

    @staticmethod
    def assign(dst, src):
        dst[...] = src

    # ---- random -----------------------------------------------------------------------
    def manual_seed(self, seed):
        self._rng = np.random.default_rng(seed)

    def rand(self, shape, dtype):
        return self._rng.random(shape, dtype=dtype)

    def randn(self, shape, dtype):
        return self._rng.standard_normal(shape, dtype=dtype)

    def randint(self, low, high, shape):
        return self._rng.integers(low, high, size=shape, dtype=np.int64)

    def get_rng_state(self):
        return self._rng.bit_generator.state

    def set_rng_state(self, state):
        self._rng.bit_generator.state = state

    # ---- elementwise --------------------------------------------------------------------
    add = staticmethod(np.add)
    sub = staticmethod(np.subtract)
    mul = staticmethod(np.multiply)
    div = staticmethod(np.true_divide)
    pow = staticmethod(np.power)
    maximum = staticmethod(np.maximum)
    minimum = staticmethod(np.minimum)
    eq = staticmethod(np.equal)
    ne = staticmethod(np.not_equal)
    lt = staticmethod(np.less)
    le = staticmethod(np.less_equal)
    gt = staticmethod(np.greater)
    ge = staticmethod(np.greater_equal)
    logical_not = staticmethod(np.logical_not)
    logical_and = staticmethod(np.logical_and)
    logical_or = staticmethod(np.logical_or)
    neg = staticmethod(np.negative)
    exp = staticmethod(np.exp)
    log = staticmethod(np.log)
    sqrt = staticmethod(np.sqrt)
    tanh = staticmethod(np.tanh)
    abs = staticmethod(np.abs)
    sign = staticmethod(np.sign)
    where = staticmethod(np.where)

    @staticmethod
    def sigmoid(x):
        # exp of a non-positive number only: no overflow for large |x|
        z = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + z), z / (1 + z)).astype(x.dtype, copy=False)

    @staticmethod
    def relu(x):
        return np.maximum(x, 0).astype(x.dtype, copy=False)

    @staticmethod
    def erf(x):
        out = np.empty(x.shape, dtype=x.dtype)
        _core.erf(out.reshape(-1), np.ascontiguousarray(x).reshape(-1))
        return out

    @staticmethod
    def clip(x, lo, hi):
        if lo is not None:
            x = np.maximum(x, np.asarray(lo, dtype=x.dtype))
        if hi is not None:
            x = np.minimum(x, np.asarray(hi, dtype=x.dtype))
        return x

    # ---- reductions -----------------------------------------------------------------------
    sum = staticmethod(lambda x, axis, keepdims: np.sum(x, axis=axis, keepdims=keepdims))
    max = staticmethod(lambda x, axis, keepdims: np.max(x, axis=axis, keepdims=keepdims))
    min = staticmethod(lambda x, axis, keepdims: np.min(x, axis=axis, keepdims=keepdims))
    argmax = staticmethod(lambda x, axis, keepdims: np.argmax(x, axis=axis, keepdims=keepdims))
    argmin = staticmethod(lambda x, axis, keepdims: np.argmin(x, axis=axis, keepdims=keepdims))

    @staticmethod
    def sum_to_shape(x, shape):
        n_lead = x.ndim - len(shape)
        axes = tuple(range(n_lead)) + tuple(
            n_lead + i for i, n in enumerate(shape) if n == 1 and x.shape[n_lead + i] != 1)
        if axes:
            x = np.sum(x, axis=axes, keepdims=True)
        return x.reshape(shape)

    # ---- movement -------------------------------------------------------------------------
    reshape = staticmethod(lambda x, shape: np.reshape(x, shape))
    permute = staticmethod(lambda x, axes: np.transpose(x, axes))
    broadcast_to = staticmethod(lambda x, shape: np.broadcast_to(x, shape))
    getitem = staticmethod(lambda x, index: x[index])
    concatenate = staticmethod(lambda xs, axis: np.concatenate(xs, axis=axis))
    contiguous = staticmethod(np.ascontiguousarray)

    @staticmethod
    def index_add(dst, index, src):
        if _is_basic_index(index):
            dst[index] += src            # a view: no repeated positions possible
        else:
            np.add.at(dst, index, src)   # repeated indices accumulate

    # ---- fused kernels ---------------------------------------------------------------------
    @staticmethod
    def matmul(a, b):
        """(*Ba, M, K) @ (*Bb, K, N) -> (*broadcast(Ba, Bb), M, N) with our GEMM."""
        M, K = a.shape[-2:]
        N = b.shape[-1]
        if a.ndim == 2 and b.ndim == 2:                     # the common case, no batch work
            out = np.empty((M, N), dtype=a.dtype)
            _core.gemm(out[None], a[None], b[None], _core.effective_n_threads())
            return out
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        n_batch = math.prod(batch)
        out = np.empty(batch + (M, N), dtype=a.dtype)
        # broadcast batch dims get stride 0; reshape copies only when dims cannot merge
        a3 = np.broadcast_to(a, batch + (M, K)).reshape(n_batch, M, K)   # (Bt, M, K)
        b3 = np.broadcast_to(b, batch + (K, N)).reshape(n_batch, K, N)   # (Bt, K, N)
        _core.gemm(out.reshape(n_batch, M, N), a3, b3, _core.effective_n_threads())
        return out

    @staticmethod
    def _rows(kernel, out_like, *arrays):
        """Run a last-axis row kernel on arrays viewed as (N, C); returns the output."""
        C = out_like.shape[-1] if out_like.ndim else 1
        rows = [np.ascontiguousarray(x).reshape(-1, C) for x in arrays]
        out = np.empty(out_like.shape, dtype=out_like.dtype)
        if out.size:
            kernel(out.reshape(-1, C), *rows, _core.effective_n_threads())
        return out

    def softmax_fwd(self, x):
        return self._rows(_core.softmax_fwd, x, x)

    def softmax_bwd(self, y, dout):
        return self._rows(_core.softmax_bwd, y, y, dout)

    def log_softmax_fwd(self, x):
        return self._rows(_core.log_softmax_fwd, x, x)

    def log_softmax_bwd(self, y, dout):
        return self._rows(_core.log_softmax_bwd, y, y, dout)
