"""Gather and scatter along one dim (torch.gather, Tensor.scatter_, Tensor.scatter_add_).

With `dim` = k and an int64 index of x's rank (any strides, broadcast ones included):

    gather:       out[i] = x[i_0, .., i_k-1, index[i], i_k+1, ..]         (out shaped like index)
    scatter:      dst[i_0, .., index[i], ..] = src[i]                     (src read at index's i)
    scatter_add:  dst[i_0, .., index[i], ..] += src[i]                    (atomics: repeats add)

One thread per index element (a grid-stride loop over index's shape, C order). The operand's
position is its strides dotted with i, dim k's stride replaced by 0, plus index[i] times the
stride of dim k. An index outside [0, size of dim k) flags the device error word
(driver.check_word: a RuntimeError at the next host read, torch's type) and is skipped
(gather reads position 0 instead). Shapes are not merged: dim k must stay a dim of its own,
and a tensor of up to MAX_DIMS dims passes as is.

Of repeated indices in `scatter`, which write lands is the hardware's (torch leaves it
undefined too); `scatter_add` accumulates them in the hardware's order.
"""
import numpy as np
from numba import cuda, types

from . import driver
from .array import CudaArray, empty
from .elementwise import astype, scalar, strided_index
from .launch import (DTYPES, FLOATS, KernelSet, array_type, blocks_for, device_function, dims,
                     dims_type, tuning)

kernels = KernelSet("scatter")

_INT, _I32 = np.dtype(np.int64), np.dtype(np.int32)
_ADDABLE = FLOATS + (_INT,)         # what cuda.atomic.add serves (float32/64 on sm_60+, int64)


def _types(dtype):
    """(operand array type, index array type, error word type, int64, dims tuple type)."""
    return (array_type(dtype), array_type(_INT), array_type(_I32), types.int64, dims_type())


# ---- kernels ----------------------------------------------------------------------------------
# _dim_index: (the index at idx[pos], ok). Out of range sets the error word; the caller skips.
def _dim_index(idx, pos, n_dim, code, err):
    r = idx[pos]
    if r < 0 or r >= n_dim:
        err[0] = code
        return 0, False
    return r, True


@kernels.define(served=[(dt,) for dt in DTYPES])
def gather_dim(tune, dtype):
    at = device_function(_dim_index)
    index = device_function(strided_index)
    A, I, E, I64, D = _types(dtype)

    def kernel(out, x, x_off, x_strides, dim_stride, n_dim, idx, idx_off, idx_strides, shape,
               ndim, code, err, n):
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            r, ok = at(idx, idx_off + index(i, shape, idx_strides, ndim), n_dim, code, err)
            out[i] = x[x_off + index(i, shape, x_strides, ndim) + r * dim_stride]
    return kernel, (A, A, I64, D, I64, I64, I, I64, D, D, I64, I64, E, I64)


@kernels.define(served=[(dt,) for dt in DTYPES])
def scatter_dim(tune, dtype):
    at = device_function(_dim_index)
    index = device_function(strided_index)
    A, I, E, I64, D = _types(dtype)

    def kernel(dst, dst_off, dst_strides, dim_stride, n_dim, src, src_off, src_strides, idx,
               idx_off, idx_strides, shape, ndim, code, err, n):
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            r, ok = at(idx, idx_off + index(i, shape, idx_strides, ndim), n_dim, code, err)
            if ok:
                dst[dst_off + index(i, shape, dst_strides, ndim) + r * dim_stride] = \
                    src[src_off + index(i, shape, src_strides, ndim)]
    return kernel, (A, I64, D, I64, I64, A, I64, D, I, I64, D, D, I64, I64, E, I64)


@kernels.define(served=[(dt,) for dt in _ADDABLE])
def scatter_add_dim(tune, dtype):
    at = device_function(_dim_index)
    index = device_function(strided_index)
    A, I, E, I64, D = _types(dtype)

    def kernel(dst, dst_off, dst_strides, dim_stride, n_dim, src, src_off, src_strides, idx,
               idx_off, idx_strides, shape, ndim, code, err, n):
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            r, ok = at(idx, idx_off + index(i, shape, idx_strides, ndim), n_dim, code, err)
            if ok:
                cuda.atomic.add(dst, dst_off + index(i, shape, dst_strides, ndim) + r * dim_stride,
                                src[src_off + index(i, shape, src_strides, ndim)])
    return kernel, (A, I64, D, I64, I64, A, I64, D, I, I64, D, D, I64, I64, E, I64)


# ---- host side ----------------------------------------------------------------------------------
def _launch(name, key, n, *args):
    threads = tuning()["threads"]
    kernels.launch(name, key, blocks_for(n, threads), threads, *args)


def _check(x, dim, index, what):
    """The shared checks (the Tensor layer has made them with torch's messages already):
    index int64 of x's rank, no larger than x apart from dim. Returns (dims of index's shape,
    x's strides with dim's zeroed, the error word, its code)."""
    if index.dtype != _INT:
        raise TypeError(f"cuda {what}: index of dtype {index.dtype}, expected int64")
    if index.ndim != x.ndim or x.ndim == 0:
        raise ValueError(f"cuda {what}: index of shape {index.shape} for an operand of shape "
                         f"{x.shape} (one rank, at least 1)")
    if any(m > n for d, (m, n) in enumerate(zip(index.shape, x.shape)) if d != dim):
        raise ValueError(f"cuda {what}: index of shape {index.shape} is larger than the operand "
                         f"{x.shape} apart from dim {dim}")
    strides = list(x.strides)
    strides[dim] = 0
    err, code = driver.check_word(
        RuntimeError, f"index out of bounds for dimension {dim} with size {x.shape[dim]} "
                      "(an index on the device held it)")
    return dims(index.shape, 1), dims(strides, 0), err, code


def gather(x, dim, index):
    """out (index's shape) = x[.., index[i], ..] along dim; see the module docstring."""
    shape, x_strides, err, code = _check(x, dim, index, "gather")
    out = empty(index.shape, x.dtype)
    if out.size:
        _launch("gather_dim", (x.dtype,), out.size, out.buf, x.buf, x.offset, x_strides,
                x.strides[dim], x.shape[dim], index.buf, index.offset, dims(index.strides, 0),
                shape, index.ndim, code, err, out.size)
    return out


def scatter(dst, dim, index, src, reduce):
    """dst[.., index[i], ..] = src[i] (reduce None) or += src[i] (reduce 'add') in place; src
    a CudaArray at least index's shape (cast to dst's dtype) or a number."""
    shape, dst_strides, err, code = _check(dst, dim, index, "scatter")
    if reduce not in (None, "add"):
        raise ValueError(f"cuda scatter: reduce {reduce!r}, expected None or 'add'")
    if reduce == "add" and dst.dtype not in _ADDABLE:
        raise TypeError(f"cuda scatter_add: dst of dtype {dst.dtype} (float32, float64 or int64)")
    if not isinstance(src, CudaArray):
        src, src_strides = scalar(src, dst.dtype), dims((), 0)     # one value: strides 0
    else:
        if src.ndim != index.ndim or any(m > n for m, n in zip(index.shape, src.shape)):
            raise ValueError(f"cuda scatter: src of shape {src.shape} is smaller than index "
                             f"{index.shape}")
        src = astype(src, dst.dtype)
        src_strides = dims(src.strides, 0)
    n = index.size
    if not n:
        return
    name = "scatter_add_dim" if reduce == "add" else "scatter_dim"
    _launch(name, (dst.dtype,), n, dst.buf, dst.offset, dst_strides, dst.strides[dim],
            dst.shape[dim], src.buf, src.offset, src_strides, index.buf, index.offset,
            dims(index.strides, 0), shape, index.ndim, code, err, n)
