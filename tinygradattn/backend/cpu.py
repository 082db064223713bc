"""CPU backend: the primitive set of backend/base.py, in its order, for numpy arrays.

Plain elementwise, reduction and movement primitives are numpy calls; the primitives that run
our Cython kernels (matmul, linear, the row kernels, GELU, attention, optimizer steps, and
the threaded add / erf / scatter-add) are one line each here, their allocation and
contiguity glue in backend/cpu_kernels.py, which loads the extensions on first use.
"""
import math

import numpy as np

from . import cpu_kernels as K
from . import dlpack
from .base import Backend, check_arg_reduce
from .cpu_kernels import POOL

__all__ = ["CPUBackend", "POOL"]     # POOL: the buffer pool, where tests and tools reach it


class CPUGenerator:
    """A numpy Generator (PCG64) behind the methods tga.Generator calls."""

    def __init__(self, seed):
        self.manual_seed(seed)

    def manual_seed(self, seed):
        self.rng = np.random.default_rng(seed)

    def get_state(self):
        return self.rng.bit_generator.state

    def set_state(self, state):
        self.rng.bit_generator.state = state


def _stable_argsort(x, descending):
    """Column order of each row of x (N, C), stable, NaN last ascending and first descending
    (numpy's NaN-last sort, run on the reversed rows and read backwards when descending)."""
    if not descending:
        return np.argsort(x, axis=-1, kind="stable")
    C = x.shape[-1]
    return (C - 1 - np.argsort(x[:, ::-1], axis=-1, kind="stable")[:, ::-1]).astype(np.int64)


def _binary_ufunc(ufunc):
    """(a, b) -> ufunc(a, b) as a backend array (a or b may be a Python scalar).

    Operands of a pooled buffer's size or more go to K.pooled_binary (pooled output, threaded
    kernel when same shape and dtype); smaller ones straight to the ufunc, with nothing in
    between: at a few elements (a 2x2 add, a bias) each extra Python call is a sizeable share
    of the op's time.
    """
    def binary(a, b):
        if type(a) is np.ndarray and a.nbytes >= POOL.min_bytes:
            return K.pooled_binary(ufunc, a, b)
        out = ufunc(a, b)
        return out if type(out) is np.ndarray else np.asarray(out)    # 0-d: an array
    binary.__name__ = ufunc.__name__
    return binary


class CPUBackend(Backend):
    name = "cpu"

    def __init__(self):
        self._rng = np.random.default_rng()

    # ---- creation and conversion ------------------------------------------------------
    asarray = staticmethod(lambda data, dtype: np.array(data, dtype=dtype))
    from_host = staticmethod(lambda array: array)
    to_host = staticmethod(np.asarray)      # a 0-d result may be a numpy scalar: an array here
    empty = staticmethod(lambda shape, dtype: np.empty(shape, dtype=dtype))
    zeros = staticmethod(POOL.zeros)        # large ones reuse pooled pages
    full = staticmethod(lambda shape, value, dtype: np.full(shape, value, dtype=dtype))
    arange = staticmethod(lambda start, end, step, dtype: np.arange(start, end, step, dtype=dtype))
    astype = staticmethod(lambda x, dtype: x.astype(dtype, copy=False))
    copy = staticmethod(lambda x: np.array(x, order="C", copy=True))
    take_or_copy = staticmethod(K.take_or_copy)
    accumulate = staticmethod(K.accumulate)
    from_dlpack = staticmethod(dlpack.cpu_from_dlpack)
    to_dlpack = staticmethod(dlpack.cpu_to_dlpack)
    dlpack_device = staticmethod(lambda x: (dlpack.DLDeviceType.kDLCPU, 0))

    @staticmethod
    def assign(dst, src):
        _writable(dst)[...] = src

    # ---- random -----------------------------------------------------------------------
    def manual_seed(self, seed):
        self._rng = np.random.default_rng(seed)

    def _gen(self, generator):
        return self._rng if generator is None else generator.rng

    def rand(self, shape, dtype, generator=None):
        return self._gen(generator).random(shape, dtype=dtype)

    def randn(self, shape, dtype, generator=None):
        return self._gen(generator).standard_normal(shape, dtype=dtype)

    def randint(self, low, high, shape, generator=None):
        return self._gen(generator).integers(low, high, size=shape, dtype=np.int64)

    def get_rng_state(self):
        return self._rng.bit_generator.state

    def set_rng_state(self, state):
        self._rng.bit_generator.state = state

    new_generator = staticmethod(lambda seed: CPUGenerator(seed))

    def multinomial(self, probs, num_samples, replacement, generator=None):
        """cdf + searchsorted with replacement; torch's exponential race without it."""
        rng = self._gen(generator)
        N, C = probs.shape
        if N == 0 or num_samples == 0:
            return np.empty((N, num_samples), np.int64)
        if not np.isfinite(probs).all() or (probs < 0).any():
            raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
        if C == 0 or (probs.sum(-1) <= 0).any():
            raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
        if replacement:
            cdf = np.cumsum(probs, axis=-1, dtype=np.float64)                  # (N, C)
            target = rng.random((N, num_samples)) * cdf[:, -1:]                # (N, S)
            out = np.stack([np.searchsorted(c, t, side="right") for c, t in zip(cdf, target)])
            last = C - 1 - np.argmax(probs[:, ::-1] > 0, axis=-1)              # (N,)
            return np.minimum(out, last[:, None]).astype(np.int64)   # u * total rounded up
        e = rng.exponential(size=(N, C))                                       # (N, C)
        with np.errstate(divide="ignore", invalid="ignore"):
            keys = np.where(probs > 0, probs / e, 0)
        return np.ascontiguousarray(_stable_argsort(keys, True)[:, :num_samples])

    # ---- elementwise --------------------------------------------------------------------
    add = staticmethod(_binary_ufunc(np.add))       # big ones: pooled output, threaded
    sub = staticmethod(_binary_ufunc(np.subtract))
    mul = staticmethod(_binary_ufunc(np.multiply))
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
    sin = staticmethod(np.sin)
    cos = staticmethod(np.cos)
    floor = staticmethod(np.floor)
    ceil = staticmethod(np.ceil)
    round = staticmethod(np.rint)                 # halves to even, as torch.round
    where = staticmethod(np.where)

    @staticmethod
    def sigmoid(x):
        # exp of a non-positive number only: no overflow for large |x|
        z = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + z), z / (1 + z)).astype(x.dtype, copy=False)

    @staticmethod
    def relu(x):
        return np.maximum(x, 0).astype(x.dtype, copy=False)

    erf = staticmethod(K.erf)

    @staticmethod
    def clip(x, lo, hi):
        if lo is not None:
            x = np.maximum(x, np.asarray(lo, dtype=x.dtype))
        if hi is not None:
            x = np.minimum(x, np.asarray(hi, dtype=x.dtype))
        return x

    # ---- reductions -----------------------------------------------------------------------
    # the ufuncs' reduce directly: np.sum / np.max add argument handling to every call
    # (a reduction to one value gives a numpy scalar: np.asarray makes it the 0-d array every
    # backend array must be, so that in-place ops on it work: `total = x.sum(); total += y`)
    sum = staticmethod(lambda x, axis, keepdims: np.asarray(
        np.add.reduce(x, axis=axis, keepdims=keepdims)))
    max = staticmethod(lambda x, axis, keepdims: np.asarray(
        np.maximum.reduce(x, axis=axis, keepdims=keepdims)))
    min = staticmethod(lambda x, axis, keepdims: np.asarray(
        np.minimum.reduce(x, axis=axis, keepdims=keepdims)))
    prod = staticmethod(lambda x, axis, keepdims: np.asarray(np.multiply.reduce(
        x, axis=axis, keepdims=keepdims, dtype=np.int64 if x.dtype == np.bool_ else None)))

    @staticmethod
    def cumsum(x, axis, reverse):
        if not reverse:
            return np.cumsum(x, axis=axis)
        return np.ascontiguousarray(np.flip(np.cumsum(np.flip(x, axis), axis=axis), axis))

    @staticmethod
    def argmax(x, axis, keepdims):
        check_arg_reduce("argmax", x.shape, axis)
        return np.argmax(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def argmin(x, axis, keepdims):
        check_arg_reduce("argmin", x.shape, axis)
        return np.argmin(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def sort(x, descending):
        indices = _stable_argsort(x, descending)                               # (N, C)
        return np.take_along_axis(x, indices, axis=-1), indices

    @staticmethod
    def sum_to_shape(x, shape):
        n_lead = x.ndim - len(shape)
        axes = tuple(range(n_lead)) + tuple(
            n_lead + i for i, n in enumerate(shape) if n == 1 and x.shape[n_lead + i] != 1)
        if axes:
            x = np.sum(x, axis=axes, keepdims=True)
        return x.reshape(shape)

    # ---- movement -------------------------------------------------------------------------
    reshape = staticmethod(lambda x, shape: x.reshape(shape))       # backend arrays: ndarrays
    permute = staticmethod(lambda x, axes: np.transpose(x, axes))
    broadcast_to = staticmethod(lambda x, shape: np.broadcast_to(x, shape))
    getitem = staticmethod(lambda x, index: _getitem_view(x, index))
    concatenate = staticmethod(lambda xs, axis: np.concatenate(xs, axis=axis))
    # np.ascontiguousarray makes a 0-d array 1-d: reshape back
    contiguous = staticmethod(lambda x: x if x.flags.c_contiguous else
                              np.ascontiguousarray(x).reshape(x.shape))
    same_storage = staticmethod(np.may_share_memory)

    @staticmethod
    def view_layout(view, base):
        if (view.dtype != base.dtype or not base.flags.c_contiguous
                or not np.may_share_memory(view, base)):
            return None
        size = base.itemsize
        delta = view.__array_interface__["data"][0] - base.__array_interface__["data"][0]
        if delta % size or any(s % size for s in view.strides):
            return None
        return delta // size, tuple(s // size for s in view.strides)
    storage = staticmethod(K.storage)
    index_add = staticmethod(K.index_add)

    @staticmethod
    def copy_index(index):
        for i in index:
            if isinstance(i, np.ndarray):
                return tuple([j.copy() if isinstance(j, np.ndarray) else j for j in index])
        return index                    # ints, slices, None, Ellipsis only: nothing to copy

    @staticmethod
    def setitem(dst, index, value):
        if not dst.flags.writeable:       # an expanded tensor: write into the region, if a view
            region = dst[index]
            if isinstance(region, np.ndarray) and np.may_share_memory(region, dst):
                _writable(region)[...] = value
                return
        _writable(dst)[index] = value

    @staticmethod
    def gather(x, dim, index):
        return x[_along_dim(x, dim, index)]

    @staticmethod
    def scatter(dst, dim, index, src, reduce):
        at = _along_dim(dst, dim, index)
        if isinstance(src, np.ndarray):
            src = src[tuple(slice(0, n) for n in index.shape)]      # read at index's coordinates
        if reduce == "add":
            np.add.at(dst, at, src)         # repeated targets accumulate
        else:
            dst[at] = src

    @staticmethod
    def nonzero(x):
        return np.stack(np.nonzero(x)).astype(np.int64, copy=False)   # (ndim, count)

    # ---- fused kernels (backend/cpu_kernels.py) ---------------------------------------------
    matmul = staticmethod(K.matmul)
    linear_fwd = staticmethod(K.linear_fwd)
    linear_bwd = staticmethod(K.linear_bwd)
    linear_gelu_fwd = staticmethod(K.linear_gelu_fwd)
    softmax_fwd = staticmethod(K.softmax_fwd)
    softmax_bwd = staticmethod(K.softmax_bwd)
    log_softmax_fwd = staticmethod(K.log_softmax_fwd)
    log_softmax_bwd = staticmethod(K.log_softmax_bwd)
    layer_norm_fwd = staticmethod(K.layer_norm_fwd)
    layer_norm_bwd = staticmethod(K.layer_norm_bwd)
    cross_entropy_fwd = staticmethod(K.cross_entropy_fwd)
    cross_entropy_bwd = staticmethod(K.cross_entropy_bwd)
    gelu_fwd = staticmethod(K.gelu_fwd)
    gelu_fwd_grad = staticmethod(K.gelu_fwd_grad)
    gelu_bwd = staticmethod(K.gelu_bwd)
    sdpa_fwd = staticmethod(K.sdpa_fwd)
    sdpa_bwd = staticmethod(K.sdpa_bwd)
    qkv_attention_fwd = staticmethod(K.qkv_attention_fwd)
    qkv_attention_bwd = staticmethod(K.qkv_attention_bwd)

    # ---- over lists of arrays (gradient clipping) -------------------------------------------
    @staticmethod
    def foreach_norm(xs, ord):
        """Each array's vector norm; ord 2 as sqrt(x . x) (one BLAS dot, no squared copy)."""
        norms = []
        for x in xs:
            if ord == 2 and x.size:
                flat = x.reshape(-1)                        # a view when x is contiguous
                norms.append(np.sqrt(np.asarray(np.dot(flat, flat), dtype=x.dtype)))
            elif x.size == 0 and math.isinf(ord):
                raise RuntimeError(f"vector_norm cannot compute the {ord} norm of an empty "
                                   f"array of shape {x.shape}: a max or min over no elements")
            else:
                norms.append(np.asarray(np.linalg.vector_norm(x, ord=ord), dtype=x.dtype))
        return norms

    @staticmethod
    def foreach_mul_(xs, scale):
        if scale == 1:                  # x * 1 == x bit for bit (NaN, inf and -0 included)
            return
        for x in xs:
            np.multiply(x, scale.astype(x.dtype), out=x)

    # ---- optimizer steps (in place) ----------------------------------------------------------
    sgd_step = staticmethod(K.sgd_step)
    adam_step = staticmethod(K.adam_step)

    # ---- runtime (tga.set_num_threads, get_num_threads, backend_info, empty_cache) ------------
    set_num_threads = staticmethod(K.set_num_threads)
    get_num_threads = staticmethod(K.get_num_threads)
    info = staticmethod(K.info)
    empty_cache = staticmethod(K.empty_cache)


def _writable(dst):
    """dst, or a writable alias of it where it is a view of an expanded tensor (numpy's
    broadcast_to views are read-only) whose own elements do not overlap (torch writes there:
    x.expand(2, 3)[0].add_(1)); torch's RuntimeError where they do."""
    if dst.flags.writeable:
        return dst
    if any(step == 0 and n > 1 for step, n in zip(dst.strides, dst.shape)):
        raise RuntimeError("unsupported operation: more than one element of the written-to "
                           "tensor refers to a single memory location. Please clone() the "
                           "tensor before performing the operation.")
    root = dst
    while isinstance(root.base, np.ndarray):
        root = root.base
    if root.flags.writeable and root.flags.owndata:
        offset = dst.__array_interface__["data"][0] - root.__array_interface__["data"][0]
        return np.ndarray(dst.shape, dst.dtype, buffer=root, offset=offset,
                          strides=dst.strides)
    raise RuntimeError(f"in-place write into a read-only tensor of shape {list(dst.shape)} "
                       "(its memory is a read-only buffer): clone() it first")


def _getitem_view(x, index):
    """x[index], an ndarray: where numpy gives a scalar (every dim indexed by an int or a 0-d
    integer array, which torch takes as an int too), the 0-d view of that element instead, so
    that in-place writes into it reach x."""
    items = tuple(int(i) if isinstance(i, np.ndarray) and i.ndim == 0 and i.dtype.kind in "iu"
                  else i for i in (index if isinstance(index, tuple) else (index,)))
    out = x[items]
    if isinstance(out, np.ndarray):
        return out
    return x[items + (None,)].reshape(())


def _along_dim(x, dim, index):
    """The advanced index that reads x at index's coordinates with the dim-th one replaced
    by index's values (gather / scatter); RuntimeError for a value outside [0, x.shape[dim]),
    as torch (no wrapping of negative values)."""
    n = x.shape[dim]
    bad = (index < 0) | (index >= n)
    if bad.any():
        raise RuntimeError(f"index {int(index[bad].flat[0])} is out of bounds for dimension "
                           f"{dim} with size {n}")
    at = [np.arange(m).reshape((-1,) + (1,) * (index.ndim - d - 1))
          for d, m in enumerate(index.shape)]
    at[dim] = index
    return tuple(at)


def _array_result(fn):
    """fn with a numpy scalar result made a 0-d array: numpy's ufuncs give scalars for 0-d
    inputs, and a backend array must be an array (in-place ops write into it)."""
    def wrapped(*args):
        out = fn(*args)
        return out if type(out) is np.ndarray else np.asarray(out)
    wrapped.__name__ = getattr(fn, "__name__", "op")
    return wrapped


for _name in ("div", "pow", "maximum", "minimum", "eq", "ne", "lt", "le",
              "gt", "ge", "logical_not", "logical_and", "logical_or", "neg", "exp", "log",
              "sqrt", "tanh", "abs", "sign", "sin", "cos", "floor", "ceil", "round", "where",
              "erf", "clip", "relu", "sigmoid"):
    setattr(CPUBackend, _name, staticmethod(_array_result(getattr(CPUBackend, _name))))
