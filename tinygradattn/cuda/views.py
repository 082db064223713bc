"""Views without a copy: reshape (when the strides allow it), permute, basic indexing (ints,
slices, None, Ellipsis). Advanced indexing (integer / bool arrays) is indexing.py's."""
import math

import numpy as np

from .array import CudaArray, reshape_strides, view
from .elementwise import copy


def resolve_shape(shape, size):
    """shape with its one -1 filled in; ValueError when it cannot hold size elements."""
    shape = tuple(int(n) for n in shape)
    if shape.count(-1) > 1:
        raise ValueError(f"reshape: only one dimension can be inferred, got {shape}")
    if -1 in shape:
        known = math.prod(n for n in shape if n != -1)
        if known == 0 or size % known:
            raise ValueError(f"cannot reshape array of size {size} into shape {shape}")
        shape = tuple(size // known if n == -1 else n for n in shape)
    if math.prod(shape) != size:
        raise ValueError(f"cannot reshape array of size {size} into shape {shape}")
    return shape


def reshape(x, shape):
    """x as shape: a view when x's strides allow it (numpy's rule), else a copy."""
    shape = resolve_shape(shape, x.size)
    if shape == x.shape:
        return x
    strides = reshape_strides(x, shape)
    if strides is None:
        x = copy(x)
        strides = reshape_strides(x, shape)
    return view(x, shape, strides)


def permute(x, axes):
    axes = tuple(a % x.ndim for a in axes) if x.ndim else tuple(axes)
    if sorted(axes) != list(range(x.ndim)):
        raise ValueError(f"permute: axes {axes} are not a permutation of {x.ndim} dims")
    return view(x, tuple(x.shape[a] for a in axes), tuple(x.strides[a] for a in axes))


def is_basic(index):
    """True when x[index] is a view: ints, slices, None and Ellipsis only."""
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, (slice, int, np.integer))
               and not isinstance(i, (bool, np.bool_)) for i in items)


def basic_getitem(x, index):
    """x[index] for a basic index (is_basic): a view, numpy's semantics and errors."""
    items = list(index) if isinstance(index, tuple) else [index]
    n_real = sum(1 for i in items if i is not None and i is not Ellipsis)
    if items.count(Ellipsis) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if n_real > x.ndim:
        raise IndexError(f"too many indices for array: array is {x.ndim}-dimensional, but "
                         f"{n_real} were indexed")
    if Ellipsis in items:
        at = items.index(Ellipsis)
        items[at:at + 1] = [slice(None)] * (x.ndim - n_real)
    else:
        items += [slice(None)] * (x.ndim - n_real)
    shape, strides, offset, dim = [], [], x.offset, 0
    for item in items:
        if item is None:
            shape.append(1)
            strides.append(0)
            continue
        n, s = x.shape[dim], x.strides[dim]
        if isinstance(item, slice):
            start, stop, step = item.indices(n)
            count = len(range(start, stop, step))
            shape.append(count)
            strides.append(s * step)
            if count:
                offset += start * s
        else:
            i = int(item)
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of bounds for axis {dim} with size {n}")
            offset += (i % n) * s
        dim += 1
    return CudaArray(x.block, offset, tuple(shape), tuple(strides), x.dtype)
