"""Hypothesis strategies: shapes (sizes 1, primes, and 0 where meaningful), broadcastable shape
pairs, and non-contiguous views (permuted, sliced with steps, expanded) with a numpy oracle
for their backward.

A `View` recipe turns a base array (the leaf) into a view of a target shape the same way for
numpy and for tinygradattn, and maps an upstream gradient of the view back to the base.
"""
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

SIZES = [1, 2, 3, 5, 7]
SIZES_WITH_ZERO = SIZES + [0]


@st.composite
def shapes(draw, min_dims=0, max_dims=4, allow_zero=False):
    n = draw(st.integers(min_dims, max_dims))
    sizes = SIZES_WITH_ZERO if allow_zero else SIZES
    return tuple(draw(st.sampled_from(sizes)) for _ in range(n))


@st.composite
def broadcastable_pairs(draw, max_dims=4, allow_zero=True):
    """(shape_a, shape_b) that broadcast: a common shape, each side dropping leading dims and
    setting some dims to 1."""
    full = draw(shapes(min_dims=0, max_dims=max_dims, allow_zero=allow_zero))
    out = []
    for _ in range(2):
        drop = draw(st.integers(0, len(full)))
        s = list(full[drop:])
        for i in range(len(s)):
            if draw(st.booleans()):
                s[i] = 1
        out.append(tuple(s))
    if draw(st.booleans()):
        out.reverse()
    return tuple(out)


@dataclass(frozen=True)
class View:
    """How a view of `shape` is made from a base array: kind in plain / permute / slice /
    expand; `perm` (view = base.permute(perm)), `starts`/`steps` (view = base[start::step]
    per dim), `expand_dims` (base has 1 there, the view expands it)."""

    kind: str
    shape: tuple
    base_shape: tuple
    perm: tuple = ()
    starts: tuple = ()
    steps: tuple = ()
    expand_dims: tuple = ()

    def apply(self, x):
        """The view of x (a numpy array or a tinygradattn Tensor)."""
        if self.kind == "permute":
            return x.permute(*self.perm) if not isinstance(x, np.ndarray) else \
                np.transpose(x, self.perm)
        if self.kind == "slice":
            idx = tuple(slice(s, s + n * k, k) if n else slice(s, s)
                        for s, k, n in zip(self.starts, self.steps, self.shape))
            return x[idx]
        if self.kind == "expand":
            return np.broadcast_to(x, self.shape) if isinstance(x, np.ndarray) else \
                x.expand(*self.shape)
        return x

    def vjp(self, g):
        """The gradient of the base from the gradient g of the view (numpy)."""
        if self.kind == "permute":
            return np.transpose(g, np.argsort(self.perm))
        if self.kind == "slice":
            out = np.zeros(self.base_shape, dtype=g.dtype)
            out[tuple(slice(s, s + n * k, k) if n else slice(s, s)
                      for s, k, n in zip(self.starts, self.steps, self.shape))] = g
            return out
        if self.kind == "expand":
            return g.sum(axis=self.expand_dims, keepdims=True) if self.expand_dims else g
        return g


@st.composite
def views(draw, shape, kinds=("plain", "permute", "slice", "expand")):
    kind = draw(st.sampled_from(kinds))
    if kind == "permute" and len(shape) >= 2:
        perm = tuple(draw(st.permutations(range(len(shape)))))
        base = [0] * len(shape)
        for i, p in enumerate(perm):
            base[p] = shape[i]
        return View("permute", shape, tuple(base), perm=perm)
    if kind == "slice" and shape:
        steps = tuple(draw(st.integers(1, 3)) for _ in shape)
        starts = tuple(draw(st.integers(0, 2)) for _ in shape)
        base = tuple(s + max(n * k, 1) for s, k, n in zip(starts, steps, shape))
        return View("slice", shape, base, starts=starts, steps=steps)
    if kind == "expand" and any(n != 1 for n in shape):
        dims = tuple(i for i, n in enumerate(shape) if n != 1 and draw(st.booleans()))
        if dims:
            base = tuple(1 if i in dims else n for i, n in enumerate(shape))
            return View("expand", shape, base, expand_dims=dims)
    return View("plain", shape, shape)


def sum_to_shape(g, shape):
    """Undo broadcasting: sum g down to shape (the numpy oracle of the engine's reduction)."""
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead))) if lead else g
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


@st.composite
def reduction_dims(draw, ndim):
    """None, an int (maybe negative) or a tuple of distinct dims (maybe negative)."""
    if ndim == 0:
        return None
    choice = draw(st.sampled_from(["none", "int", "tuple"]))
    if choice == "none":
        return None
    if choice == "int":
        d = draw(st.integers(0, ndim - 1))
        return d - ndim if draw(st.booleans()) else d
    dims = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    return tuple(d - ndim if draw(st.booleans()) else d for d in dims)
