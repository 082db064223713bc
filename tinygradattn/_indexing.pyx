# cython: language_level=3, cdivision=True
# NOTE: boundscheck / wraparound / initializedcheck are set by setup.py (off, or on with
# TGA_CYTHON_DEBUG=1); a file-level directive here would override the debug build.
"""Indexing kernels of tinygradattn (ops/indexing.py): the row scatter-add behind an
embedding's backward, dst[rows[i]] += src[i].

Serial, in order: repeated rows accumulate in src's order, whatever the thread count.
"""

import numpy as np

from cython cimport floating

from ._support cimport check_apart, check_dtypes, check_out


# ==============================================================================================
# row scatter-add: dst[rows[i]] += src[i] (an embedding's backward)
#
# Serial over i, in order, so repeated rows accumulate in src's order and the result does not
# depend on threads; the inner loop runs along a row (C contiguous values, vectorised). Rows
# are checked (and negatives wrapped) before any write: a bad index leaves dst untouched.
# ==============================================================================================

cdef void _add_rows_typed(floating[:, ::1] dst, const long long[::1] rows,
                          const floating[:, ::1] src) noexcept nogil:
    cdef Py_ssize_t i, j, r, n_cols = dst.shape[1]
    cdef floating *d
    cdef const floating *s
    for i in range(rows.shape[0]):
        r = rows[i]
        if r < 0:
            r = r + dst.shape[0]
        d = &dst[r, 0]
        s = &src[i, 0]
        for j in range(n_cols):
            d[j] = d[j] + s[j]


def add_rows(dst, rows, src):
    """dst[rows[i]] += src[i] for every i, in order (repeated rows accumulate).

    Args:
        dst: IN/OUT (V, C) C-contiguous float32 or float64.
        rows: IN (N,) int64, C-contiguous, each in [-V, V) (negatives count from the end).
        src: IN (N, C) C-contiguous, dst's dtype. Neither rows nor src may overlap dst.
    """
    dtype = check_dtypes("add_rows", ("dst", "src"), (dst, src))
    if not isinstance(rows, np.ndarray) or rows.dtype != np.int64 or rows.ndim != 1:
        raise TypeError(f"add_rows: rows must be a 1-D int64 numpy.ndarray, got "
                        f"{getattr(rows, 'dtype', type(rows).__name__)} "
                        f"{getattr(rows, 'shape', '')}")
    if dst.ndim != 2 or src.ndim != 2:
        raise ValueError(f"add_rows: dst and src must be 2-D, got {dst.shape} and {src.shape}")
    if src.shape != (rows.shape[0], dst.shape[1]):
        raise ValueError(f"add_rows: src {src.shape} should be ({rows.shape[0]}, "
                         f"{dst.shape[1]}) for rows {rows.shape} and dst {dst.shape}")
    for name, arr in (("dst", dst), ("src", src), ("rows", rows)):
        if not arr.flags.c_contiguous:
            raise ValueError(f"add_rows: {name} {arr.shape} must be C-contiguous (strides "
                             f"{arr.strides})")
    check_out("add_rows", "dst", dst)
    check_apart("add_rows", ("dst",), (dst,), ("rows", "src"), (rows, src))
    if rows.shape[0] == 0 or dst.shape[1] == 0:
        return
    lo, hi = int(rows.min()), int(rows.max())
    if lo < -dst.shape[0] or hi >= dst.shape[0]:
        bad = lo if lo < -dst.shape[0] else hi
        raise IndexError(f"add_rows: row index {bad} is out of bounds for dst with "
                         f"{dst.shape[0]} rows")
    if dtype == np.float32:
        _add_rows_typed[float](dst, rows, src)
    else:
        _add_rows_typed[double](dst, rows, src)
