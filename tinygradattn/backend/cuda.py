"""CUDA backend: the primitive set of backend/base.py, in its order, for CudaArrays.

Every primitive runs our own Numba-CUDA kernels (tinygradattn/cuda/, one module per family);
this file only says which kernel serves which primitive. Data stays on the device: the only
host copies are from_host / to_host (and asarray of host data), which the Tensor layer calls
where the user asks for one (tensor(..., device="cuda"), .numpy(), .item(), .cpu(), printing).

Importing this module imports numba (tinygradattn.backend.get_backend("cuda") does it once a
cuda tensor is asked for, after checking that numba-cuda can run here).
"""
import sys

import numpy as np

from ..cuda import driver
from ..cuda import array as A
from ..cuda import (attention, indexing, linalg, optim, random, reduce, rows, sorting, transfer,
                    views)
from ..cuda import elementwise as E
from ..cuda import scatter as S
from ..cuda.allocator import POOL
from . import dlpack
from .base import Backend, check_arg_reduce


def _sole_owner(x):
    """True when the caller's reference is x's only one and no other view shares its
    memory (take_or_copy's rule): x's block then is x's alone to overwrite."""
    # references to x: the caller's popped local, this argument, getrefcount's argument
    return (sys.getrefcount(x) <= 3 and sys.getrefcount(x.block) <= 2 and x.is_contiguous)


class CUDABackend(Backend):
    name = "cuda"

    def __init__(self):
        # (backend.get_backend checked that numba-cuda runs here before importing this)
        self._rng = random.default_generator()     # the one tga.cuda.manual_seed seeds

    # ---- creation and conversion ------------------------------------------------------
    @staticmethod
    def asarray(data, dtype):
        if isinstance(data, A.CudaArray):
            same = data.dtype == np.dtype(dtype)
            return E.copy(data) if same else E.astype(data, dtype)   # a new array either way
        if isinstance(data, (int, float, bool, np.generic)):
            return E.full((), data, dtype)              # a fill kernel: no host copy
        return transfer.from_host(np.asarray(data, dtype=dtype))

    from_host = staticmethod(transfer.from_host)
    to_host = staticmethod(transfer.to_host)
    empty = staticmethod(A.empty)

    @staticmethod
    def zeros(shape, dtype):
        return E.full(shape, 0, dtype)

    full = staticmethod(E.full)
    arange = staticmethod(E.arange)
    astype = staticmethod(E.astype)
    copy = staticmethod(E.copy)
    assign = staticmethod(E.assign)

    @staticmethod
    def take_or_copy(box):
        x = box.pop()
        return x if _sole_owner(x) else E.copy(x)

    @staticmethod
    def accumulate(box, b):
        a = box.pop()
        if _sole_owner(a) and a.shape == E.broadcast_shapes(a.shape, b.shape) \
                and a.dtype == b.dtype:
            return E.binary("add", a, b, out=a)
        return E.binary("add", a, b)

    # ---- DLPack: the device is named honestly; the exchange itself is not implemented --
    @staticmethod
    def from_dlpack(obj):
        raise BufferError("from_dlpack: importing cuda memory through DLPack is not supported "
                          "yet: bring it to the cpu on the producer's side (torch: x.cpu()), "
                          "import that, then .to('cuda')")

    @staticmethod
    def to_dlpack(x, stream=None, max_version=None, dl_device=None, copy=None):
        raise BufferError("__dlpack__: DLPack export of cuda tensors is not supported yet: "
                          "export t.cpu() instead")

    @staticmethod
    def dlpack_device(x):
        return dlpack.DLDeviceType.kDLCUDA, 0      # one GPU: tga.cuda.current_device() is 0

    # ---- random (a counter-based generator on the device) -----------------------------
    def manual_seed(self, seed):
        self._rng.seed(seed)

    def rand(self, shape, dtype, generator=None):
        return (generator or self._rng).rand(shape, dtype)

    def randn(self, shape, dtype, generator=None):
        return (generator or self._rng).randn(shape, dtype)

    def randint(self, low, high, shape, generator=None):
        return (generator or self._rng).randint(low, high, shape)

    def get_rng_state(self):
        return self._rng.get_state()

    def set_rng_state(self, state):
        self._rng.set_state(state)

    new_generator = staticmethod(lambda seed: random.Philox(seed))

    def multinomial(self, probs, num_samples, replacement, generator=None):
        return (generator or self._rng).multinomial(probs, num_samples, replacement)

    # ---- elementwise --------------------------------------------------------------------
    add = staticmethod(lambda a, b: E.binary("add", a, b))
    sub = staticmethod(lambda a, b: E.binary("sub", a, b))
    mul = staticmethod(lambda a, b: E.binary("mul", a, b))
    div = staticmethod(lambda a, b: E.binary("div", a, b))
    pow = staticmethod(lambda a, b: E.binary("pow", a, b))
    maximum = staticmethod(lambda a, b: E.binary("maximum", a, b))
    minimum = staticmethod(lambda a, b: E.binary("minimum", a, b))
    eq = staticmethod(lambda a, b: E.binary("eq", a, b))
    ne = staticmethod(lambda a, b: E.binary("ne", a, b))
    lt = staticmethod(lambda a, b: E.binary("lt", a, b))
    le = staticmethod(lambda a, b: E.binary("le", a, b))
    gt = staticmethod(lambda a, b: E.binary("gt", a, b))
    ge = staticmethod(lambda a, b: E.binary("ge", a, b))
    logical_not = staticmethod(lambda x: E.unary("logical_not", E.astype(x, np.bool_)))
    logical_and = staticmethod(lambda a, b: E.binary("logical_and", a, b))
    logical_or = staticmethod(lambda a, b: E.binary("logical_or", a, b))
    neg = staticmethod(lambda x: E.unary("neg", x))
    exp = staticmethod(lambda x: E.unary("exp", x))
    log = staticmethod(lambda x: E.unary("log", x))
    sqrt = staticmethod(lambda x: E.unary("sqrt", x))
    tanh = staticmethod(lambda x: E.unary("tanh", x))
    sigmoid = staticmethod(lambda x: E.unary("sigmoid", x))
    relu = staticmethod(lambda x: E.unary("relu", x))
    abs = staticmethod(lambda x: E.unary("abs", x))
    sign = staticmethod(lambda x: E.unary("sign", x))
    erf = staticmethod(lambda x: E.unary("erf", x))
    sin = staticmethod(lambda x: E.unary("sin", x))
    cos = staticmethod(lambda x: E.unary("cos", x))
    floor = staticmethod(lambda x: E.unary("floor", x))
    ceil = staticmethod(lambda x: E.unary("ceil", x))
    round = staticmethod(lambda x: E.unary("round", x))
    where = staticmethod(E.where)

    @staticmethod
    def clip(x, lo, hi):
        if lo is not None:
            x = E.binary("maximum", x, lo)
        if hi is not None:
            x = E.binary("minimum", x, hi)
        return x

    # ---- reductions -----------------------------------------------------------------------
    sum = staticmethod(reduce.sum)
    max = staticmethod(reduce.max)
    min = staticmethod(reduce.min)
    prod = staticmethod(reduce.prod)
    cumsum = staticmethod(reduce.cumsum)
    @staticmethod
    def argmax(x, axis, keepdims):
        check_arg_reduce("argmax", x.shape, axis)
        return reduce.argmax(x, axis, keepdims)

    @staticmethod
    def argmin(x, axis, keepdims):
        check_arg_reduce("argmin", x.shape, axis)
        return reduce.argmin(x, axis, keepdims)
    sort = staticmethod(sorting.sort)
    sum_to_shape = staticmethod(reduce.sum_to_shape)

    # ---- movement (views where the strides allow) ---------------------------------------
    reshape = staticmethod(views.reshape)
    permute = staticmethod(views.permute)
    broadcast_to = staticmethod(E.broadcast_to)
    getitem = staticmethod(indexing.getitem)
    index_add = staticmethod(indexing.index_add)

    @staticmethod
    def copy_index(index):
        for i in index:
            if isinstance(i, (A.CudaArray, np.ndarray)):
                return tuple([E.copy(j) if isinstance(j, A.CudaArray) else
                              np.array(j, copy=True) if isinstance(j, np.ndarray) else j
                              for j in index])
        return index                    # ints, slices, None, Ellipsis only: nothing to copy

    setitem = staticmethod(indexing.setitem)
    concatenate = staticmethod(indexing.concatenate)
    gather = staticmethod(S.gather)
    scatter = staticmethod(S.scatter)
    nonzero = staticmethod(indexing.nonzero)
    contiguous = staticmethod(E.contiguous)
    same_storage = staticmethod(lambda a, b: a.block is b.block)

    @staticmethod
    def view_layout(view, base):
        if view.block is not base.block or view.dtype != base.dtype or not base.is_contiguous:
            return None
        return view.offset - base.offset, tuple(view.strides)   # CudaArray counts in elements
    storage = staticmethod(lambda a: (id(a.block), a.block.n * a.block.dtype.itemsize))

    # ---- fused kernels ----------------------------------------------------------------------
    matmul = staticmethod(linalg.matmul)
    linear_fwd = staticmethod(linalg.linear_fwd)
    linear_bwd = staticmethod(linalg.linear_bwd)
    linear_gelu_fwd = staticmethod(linalg.linear_gelu_fwd)
    softmax_fwd = staticmethod(rows.softmax_fwd)
    softmax_bwd = staticmethod(rows.softmax_bwd)
    log_softmax_fwd = staticmethod(rows.log_softmax_fwd)
    log_softmax_bwd = staticmethod(rows.log_softmax_bwd)
    layer_norm_fwd = staticmethod(rows.layer_norm_fwd)
    layer_norm_bwd = staticmethod(rows.layer_norm_bwd)
    cross_entropy_fwd = staticmethod(rows.cross_entropy_fwd)
    cross_entropy_bwd = staticmethod(rows.cross_entropy_bwd)

    @staticmethod
    def gelu_fwd(x, approximate):
        return E.unary(f"gelu:{approximate}", x)

    @staticmethod
    def gelu_fwd_grad(x, approximate):
        return E.unary(f"gelu:{approximate}", x), E.unary(f"gelu_grad:{approximate}", x)

    @staticmethod
    def gelu_bwd(dout, x, approximate):
        return E.binary("mul", dout, E.unary(f"gelu_grad:{approximate}", x))

    sdpa_fwd = staticmethod(attention.sdpa_fwd)
    sdpa_bwd = staticmethod(attention.sdpa_bwd)
    qkv_attention_fwd = staticmethod(attention.qkv_attention_fwd)
    qkv_attention_bwd = staticmethod(attention.qkv_attention_bwd)

    # ---- over lists of arrays ------------------------------------------------------------------
    foreach_norm = staticmethod(reduce.foreach_norm)
    foreach_mul_ = staticmethod(optim.foreach_mul_)

    # ---- optimizer steps (in place) ------------------------------------------------------------
    sgd_step = staticmethod(optim.sgd_step)
    adam_step = staticmethod(optim.adam_step)

    # ---- runtime ----------------------------------------------------------------------------
    @staticmethod
    def info():
        return {"device": driver.device_name(), "simulated": driver.simulated(),
                "allocator": POOL.stats(), "copies": dict(driver.COPIES)}

    empty_cache = staticmethod(POOL.empty_cache)
    synchronize = staticmethod(driver.synchronize)
