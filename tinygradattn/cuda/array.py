"""CudaArray: the CUDA backend's array. A view (offset, shape, strides in elements) on a
Block of device memory, so reshape, permute, broadcast_to and basic slicing never copy.

Kernels receive the block's flat buffer, the offset and the shape / strides as fixed-length
int tuples (launch.py), never an array object per view. Converting a CudaArray to numpy
implicitly (np.asarray, arithmetic with numpy) raises: every host copy is asked for by name
(Tensor.numpy(), .item(), .tolist(), .cpu(), printing), through `to_host`.
"""
import math

import numpy as np

from . import driver
from .allocator import POOL


def contiguous_strides(shape):
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


class CudaArray:
    __slots__ = ("block", "offset", "shape", "strides", "dtype", "__weakref__")

    def __init__(self, block, offset, shape, strides, dtype):
        self.block = block          # allocator.Block: the memory, shared by views
        self.offset = offset        # elements from the block's start to element [0, ..., 0]
        self.shape = shape          # tuple of ints
        self.strides = strides      # tuple of ints, in elements (0 where broadcast)
        self.dtype = dtype          # numpy dtype

    @property
    def buf(self):
        """The flat device buffer kernels index: element i of the view is at
        buf[offset + sum(index * strides)]."""
        return self.block.buf

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return math.prod(self.shape)

    @property
    def nbytes(self):
        return self.size * self.dtype.itemsize

    @property
    def itemsize(self):
        return self.dtype.itemsize

    @property
    def is_contiguous(self):
        """C-contiguous: the elements lie at offset, offset + 1, ... in order."""
        return self.size <= 1 or all(
            s == c for n, s, c in zip(self.shape, self.strides, contiguous_strides(self.shape))
            if n != 1)

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    def __repr__(self):
        return f"CudaArray(shape={self.shape}, dtype={self.dtype}, strides={self.strides})"

    def __array__(self, dtype=None, copy=None):
        raise TypeError("a cuda array cannot become a numpy array implicitly (that would be a "
                        "hidden device -> host copy): call .cpu() or .numpy() on the tensor")

    def __setitem__(self, index, value):
        from .indexing import setitem             # x[index] = value, Tensor.__setitem__'s way
        setitem(self, index, value)


def empty(shape, dtype):
    """A new C-contiguous array from the caching pool (uninitialised)."""
    shape = tuple(int(n) for n in shape)
    dtype = np.dtype(dtype)
    return CudaArray(POOL.allocate(math.prod(shape), dtype), 0, shape,
                     contiguous_strides(shape), dtype)


def from_host(host):
    """A numpy array -> a new contiguous CudaArray (one counted host -> device copy)."""
    host = np.asarray(host, order="C")        # (np.ascontiguousarray makes 0-d arrays 1-d)
    out = empty(host.shape, host.dtype)
    driver.copy_to_device(out.buf, host)
    return out


def to_host(x):
    """A CudaArray -> a new numpy array (one counted device -> host copy; a strided view is
    gathered into a contiguous array on the device first)."""
    if not x.is_contiguous:
        from .elementwise import copy
        x = copy(x)
    out = np.empty(x.size, dtype=x.dtype)
    driver.copy_to_host(x.buf[x.offset:], x.size, out)
    return out.reshape(x.shape)


def view(x, shape, strides, offset=None):
    """Another view on x's memory."""
    return CudaArray(x.block, x.offset if offset is None else offset, tuple(shape),
                     tuple(strides), x.dtype)


def reshape_strides(x, shape):
    """Strides that show x (any strides) as `shape` without a copy, or None when its memory
    cannot be read that way (numpy's rule: dims merge only where they are contiguous among
    themselves; a dim may also split). shape has no -1."""
    if x.is_contiguous or x.size == 0:
        return contiguous_strides(shape)
    old = [(n, s) for n, s in zip(x.shape, x.strides) if n != 1]
    old_n = [n for n, _ in old]
    old_s = [s for _, s in old]
    new_n = list(shape)
    new_s = [0] * len(new_n)
    oi, oj, ni, nj = 0, 1, 0, 1
    while ni < len(new_n) and oi < len(old_n):
        np_, op = new_n[ni], old_n[oi]
        while np_ != op:                    # grow the smaller side until both spans agree
            if np_ < op:
                np_ *= new_n[nj]
                nj += 1
            else:
                op *= old_n[oj]
                oj += 1
        for k in range(oi, oj - 1):         # the old dims of the span must merge
            if old_s[k] != old_n[k + 1] * old_s[k + 1]:
                return None
        new_s[nj - 1] = old_s[oj - 1]
        for k in range(nj - 1, ni, -1):
            new_s[k - 1] = new_s[k] * new_n[k]
        ni, nj, oi, oj = nj, nj + 1, oj, oj + 1
    return tuple(new_s)
