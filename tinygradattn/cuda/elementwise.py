"""Elementwise kernels: a strided map (one input), a broadcasting zip (two), a select
(where), each with a contiguous fast path, plus fill and arange. The scalar function each
one applies comes from scalar_ops.py; dtype casts are the map with the identity.

Every kernel is a grid-stride loop over the output's elements. The contiguous path indexes
buf[offset + i]; the strided path turns i into coordinates (the output's shape, at most
MAX_DIMS dims after launch.merge) and each operand's strides into its own position, so
broadcasting (stride 0), transposed and sliced views are read in place.
"""
import math

import numpy as np
from numba import cuda, types

from . import scalar_ops
from .array import CudaArray, contiguous_strides, empty, view
from .launch import (DTYPES, FLOATS, MAX_DIMS, KernelSet, array_type, blocks_for,
                     device_function, dims, dims_type, merge, numba_type, tuning)

kernels = KernelSet("elementwise")

_INT, _BOOL = np.dtype(np.int64), np.dtype(np.bool_)


def _op(name, T):
    """The device function of scalar op `name` ('gelu:tanh' carries its argument)."""
    base, _, arg = name.partition(":")
    factory = getattr(scalar_ops, base, None) if arg else None
    fn = factory(T, arg) if factory else (scalar_ops.UNARY.get(name) or
                                          scalar_ops.BINARY[name])(T)
    return cuda.jit(device=True)(fn)


def _unary_served():
    keys = []
    for name in scalar_ops.UNARY:
        if name in ("identity", "to_bool"):
            continue
        for dt in (FLOATS if name in scalar_ops.FLOAT_ONLY else
                   (_BOOL,) if name == "logical_not" else FLOATS + (_INT,)):
            out = _BOOL if name == "logical_not" else dt
            keys += [(name, dt, out, False), (name, dt, out, True)]
    for approx in ("none", "tanh"):
        for fn in ("gelu", "gelu_grad"):
            keys += [(f"{fn}:{approx}", dt, dt, s) for dt in FLOATS for s in (False, True)]
    for src in DTYPES:                              # casts and copies
        for dst in DTYPES:
            op = "to_bool" if dst == _BOOL and src != _BOOL else "identity"
            keys += [(op, src, dst, False), (op, src, dst, True)]
    return keys


def strided_index(i, shape, strides, ndim):
    """The position of output element i (C order over shape) in an operand with strides."""
    pos = 0
    for d in range(MAX_DIMS - 1, MAX_DIMS - 1 - ndim, -1):
        n = shape[d]
        pos += (i % n) * strides[d]
        i //= n
    return pos




@kernels.define(served=_unary_served())
def map_(tune, op, in_dtype, out_dtype, strided):
    f = _op(op, np.dtype(in_dtype).type)
    A, O, I64 = array_type(in_dtype), array_type(out_dtype), types.int64
    if not strided:
        def kernel(out, out_off, x, x_off, n):
            for i in range(cuda.grid(1), n, cuda.gridsize(1)):
                out[out_off + i] = f(x[x_off + i])
        return kernel, (O, I64, A, I64, I64)
    index = device_function(strided_index)

    def kernel(out, out_off, out_strides, x, x_off, x_strides, shape, ndim, n):
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            out[out_off + index(i, shape, out_strides, ndim)] = \
                f(x[x_off + index(i, shape, x_strides, ndim)])
    D = dims_type()
    return kernel, (O, I64, D, A, I64, D, D, I64, I64)


def _binary_served():
    keys = []
    for name in scalar_ops.BINARY:
        if name in ("logical_and", "logical_or"):
            dts = (_BOOL,)
        elif name in scalar_ops.COMPARISONS:
            dts = DTYPES
        elif name in scalar_ops.FLOAT_ONLY:
            dts = FLOATS
        elif name in ("add", "mul", "maximum", "minimum"):
            dts = DTYPES                        # bool too: or, and, or, and (as numpy)
        else:
            dts = FLOATS + (_INT,)
        for dt in dts:
            out = _BOOL if name in scalar_ops.COMPARISONS else dt
            keys += [(name, dt, out, False), (name, dt, out, True)]
    return keys


@kernels.define(served=_binary_served())
def zip_(tune, op, dtype, out_dtype, strided):
    f = _op(op, np.dtype(dtype).type)
    A, O, I64 = array_type(dtype), array_type(out_dtype), types.int64
    if not strided:
        def kernel(out, out_off, a, a_off, b, b_off, n):
            for i in range(cuda.grid(1), n, cuda.gridsize(1)):
                out[out_off + i] = f(a[a_off + i], b[b_off + i])
        return kernel, (O, I64, A, I64, A, I64, I64)
    index = device_function(strided_index)

    def kernel(out, out_off, a, a_off, a_strides, b, b_off, b_strides, shape, ndim, n):
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):        # out: contiguous
            out[out_off + i] = f(a[a_off + index(i, shape, a_strides, ndim)],
                                 b[b_off + index(i, shape, b_strides, ndim)])
    D = dims_type()
    return kernel, (O, I64, A, I64, D, A, I64, D, D, I64, I64)


@kernels.define(served=[(dt, s) for dt in DTYPES for s in (False, True)])
def where_(tune, dtype, strided):
    A, C, I64 = array_type(dtype), array_type(_BOOL), types.int64
    if not strided:
        def kernel(out, c, c_off, a, a_off, b, b_off, n):
            for i in range(cuda.grid(1), n, cuda.gridsize(1)):
                out[i] = a[a_off + i] if c[c_off + i] else b[b_off + i]
        return kernel, (A, C, I64, A, I64, A, I64, I64)
    index = device_function(strided_index)

    def kernel(out, c, c_off, c_strides, a, a_off, a_strides, b, b_off, b_strides, shape,
               ndim, n):
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            if c[c_off + index(i, shape, c_strides, ndim)]:
                out[i] = a[a_off + index(i, shape, a_strides, ndim)]
            else:
                out[i] = b[b_off + index(i, shape, b_strides, ndim)]
    D = dims_type()
    return kernel, (A, C, I64, D, A, I64, D, A, I64, D, D, I64, I64)


@kernels.define(served=[(dt,) for dt in DTYPES])
def fill(tune, dtype):
    A, T, I64 = array_type(dtype), numba_type(dtype), types.int64

    def kernel(out, off, value, n):
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            out[off + i] = value
    return kernel, (A, I64, T, I64)


@kernels.define(served=[(np.dtype(np.float64),), (_INT,)])
def arange_(tune, dtype):
    A, T, I64 = array_type(dtype), numba_type(dtype), types.int64

    def kernel(out, start, step, n):
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            out[i] = start + i * step
    return kernel, (A, T, T, I64)


# ---- host side: shapes, broadcasting, launches ---------------------------------------------
def _launch(name, key, n, *args):
    threads = tuning()["threads"]
    kernels.launch(name, key, blocks_for(n, threads), threads, *args)


def broadcast_strides(x, shape):
    """x's strides as seen from an output of `shape` (0 on broadcast dims)."""
    lead = len(shape) - x.ndim
    return (0,) * lead + tuple(0 if n == 1 and m != 1 else s
                               for n, m, s in zip(x.shape, shape[lead:], x.strides))


def broadcast_shapes(*shapes):
    nd = max(len(s) for s in shapes)
    out = []
    for i in range(nd):
        sizes = {s[i - nd + len(s)] for s in shapes if i - nd + len(s) >= 0} - {1}
        if len(sizes) > 1:
            raise ValueError(f"shapes {' and '.join(str(tuple(s)) for s in shapes)} do not "
                             "broadcast together")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def _dense(x, shape):
    """True when x can be read as buf[offset + i] for output element i of shape."""
    return x.shape == shape and x.is_contiguous


def full(shape, value, dtype):
    out = empty(shape, dtype)
    if out.size:
        _launch("fill", (out.dtype,), out.size, out.buf, 0, out.dtype.type(value), out.size)
    return out


def scalar(value, dtype):
    """A 0-d device array holding value (a fill kernel: no host copy)."""
    return full((), value, dtype)


def arange(start, end, step, dtype):
    dtype = np.dtype(dtype)
    n = max(0, math.ceil((end - start) / step))
    work = _INT if dtype.kind in "iub" and all(
        float(v).is_integer() for v in (start, step)) else np.dtype(np.float64)
    out = empty((n,), work)
    if n:
        _launch("arange_", (work,), n, out.buf, work.type(start), work.type(step), n)
    return out if work == dtype else astype(out, dtype)


def unary(op, x, out_dtype=None):
    """op applied to every element of x; a new contiguous array."""
    if not isinstance(x, CudaArray):        # a host number (a scalar operand's derivative)
        x = scalar(x, np.result_type(x))
    out_dtype = np.dtype(out_dtype or x.dtype)
    out = empty(x.shape, out_dtype)
    _map_into(op, out, x)
    return out


def _map_into(op, out, x):
    """out[...] = op(x) elementwise; x broadcast to out's shape, out any strides."""
    n = out.size
    if not n:
        return
    if out.is_contiguous and _dense(x, out.shape):
        _launch("map_", (op, x.dtype, out.dtype, False), n, out.buf, out.offset, x.buf,
                x.offset, n)
        return
    shape, (so, sx) = merge(out.shape, out.strides, broadcast_strides(x, out.shape))
    _launch("map_", (op, x.dtype, out.dtype, True), n, out.buf, out.offset,
            dims(so, 0), x.buf, x.offset, dims(sx, 0), dims(shape, 1), len(shape), n)


_NUMPY_NAMES = {"add": "add", "sub": "subtract", "mul": "multiply", "div": "true_divide",
                "pow": "power", "eq": "equal", "ne": "not_equal", "lt": "less",
                "le": "less_equal", "gt": "greater", "ge": "greater_equal"}


def _as_array(v, dtype):
    return v if isinstance(v, CudaArray) else scalar(v, dtype)


def binary(op, a, b, out=None):
    """op(a, b) with numpy broadcasting; a or b may be a Python number (the other's dtype).
    out: a contiguous array of the result's shape and dtype to write into (it may be a or
    b: each element is read before it is written)."""
    if not isinstance(a, CudaArray) and not isinstance(b, CudaArray):
        return getattr(np, _NUMPY_NAMES.get(op, op))(a, b)      # two host numbers
    dtype = a.dtype if isinstance(a, CudaArray) else b.dtype
    a, b = _as_array(a, dtype), _as_array(b, dtype)
    if a.dtype != b.dtype:                  # numpy's promotion, as the CPU backend's
        dtype = np.result_type(a.dtype, b.dtype)
        a, b = astype(a, dtype), astype(b, dtype)
    out_dtype = _BOOL if op in scalar_ops.COMPARISONS else dtype
    shape = a.shape if a.shape == b.shape else broadcast_shapes(a.shape, b.shape)
    if out is None:
        out = empty(shape, out_dtype)
    n = out.size
    if not n:
        return out
    if op in ("logical_and", "logical_or") and dtype != _BOOL:
        return binary(op, astype(a, _BOOL), astype(b, _BOOL))
    if _dense(a, shape) and _dense(b, shape):
        _launch("zip_", (op, dtype, out_dtype, False), n, out.buf, out.offset, a.buf, a.offset,
                b.buf, b.offset, n)
        return out
    mshape, (sa, sb) = merge(shape, broadcast_strides(a, shape), broadcast_strides(b, shape))
    _launch("zip_", (op, dtype, out_dtype, True), n, out.buf, out.offset, a.buf, a.offset,
            dims(sa, 0), b.buf, b.offset, dims(sb, 0), dims(mshape, 1), len(mshape), n)
    return out


def where(cond, a, b):
    if not any(isinstance(v, CudaArray) for v in (cond, a, b)):
        return np.where(cond, a, b)                             # host numbers
    if not isinstance(cond, CudaArray):
        cond = scalar(bool(cond), _BOOL)
    if not isinstance(a, CudaArray) and not isinstance(b, CudaArray):
        a = scalar(a, np.result_type(a, b))
    dtype = a.dtype if isinstance(a, CudaArray) else b.dtype
    a, b = _as_array(a, dtype), _as_array(b, dtype)
    if cond.dtype != _BOOL:
        cond = astype(cond, _BOOL)
    shape = broadcast_shapes(cond.shape, a.shape, b.shape)
    out = empty(shape, dtype)
    n = out.size
    if not n:
        return out
    if _dense(cond, shape) and _dense(a, shape) and _dense(b, shape):
        _launch("where_", (dtype, False), n, out.buf, cond.buf, cond.offset, a.buf, a.offset,
                b.buf, b.offset, n)
        return out
    mshape, (sc, sa, sb) = merge(shape, broadcast_strides(cond, shape),
                                 broadcast_strides(a, shape), broadcast_strides(b, shape))
    _launch("where_", (dtype, True), n, out.buf, cond.buf, cond.offset, dims(sc, 0), a.buf,
            a.offset, dims(sa, 0), b.buf, b.offset, dims(sb, 0), dims(mshape, 1),
            len(mshape), n)
    return out


def _cast_op(src, dst):
    return "to_bool" if dst == _BOOL and src != _BOOL else "identity"


def astype(x, dtype):
    """x in dtype: x itself when it already is."""
    dtype = np.dtype(dtype)
    if x.dtype == dtype:
        return x
    return unary(_cast_op(x.dtype, dtype), x, dtype)


def copy(x):
    """A new contiguous array equal to x."""
    return unary("identity", x)


def contiguous(x):
    return x if x.is_contiguous else copy(x)


def assign(dst, src):
    """dst[...] = src in place (src broadcast to dst's shape, cast to its dtype); dst may be
    any view."""
    if not isinstance(src, CudaArray):
        src = scalar(src, dst.dtype)
    if broadcast_shapes(dst.shape, src.shape) != dst.shape:
        raise ValueError(f"could not broadcast input array from shape {src.shape} into shape "
                         f"{dst.shape}")
    _map_into(_cast_op(src.dtype, dst.dtype), dst, src)


def broadcast_to(x, shape):
    shape = tuple(shape)
    if broadcast_shapes(x.shape, shape) != shape:
        raise ValueError(f"cannot broadcast an array of shape {x.shape} to {shape}")
    return view(x, shape, broadcast_strides(x, shape))


__all__ = ["kernels", "unary", "binary", "where", "astype", "copy", "contiguous", "assign",
           "full", "scalar", "arange", "broadcast_to", "broadcast_strides", "broadcast_shapes",
           "contiguous_strides"]
