# cython: language_level=3, cdivision=True
# NOTE: boundscheck / wraparound / initializedcheck are set by setup.py (off, or on with
# TGA_CYTHON_DEBUG=1); a file-level directive here would override the debug build.
"""Fused scaled-dot-product attention, forward and backward (CPU, float32 and float64).

    sdpa_fwd(out, lse, q, k, v, mask, is_causal, scale, n_threads)
    sdpa_bwd(dq, dk, dv, dout, q, k, v, out, lse, mask, is_causal, scale, n_threads)
    kernel_name()        the ISA the kernels run with ("avx512", "avx2" or "generic")
    kernel_isas(), set_kernel_isa(name | "auto")   list / force the ISA ($TGA_ATTENTION_ISA)

q (B, H, T, D), k (B, H, S, D), v (B, H, S, Dv), out/dout (B, H, T, Dv), lse (B, H, T), and
dq, dk, dv shaped like q, k, v: one float dtype. The (B, H, rows, D) operands may be any views
with unit stride along the last dim (D): the heads of a packed (B, T, 3, H, D) projection,
viewed (B, H, T, D), are read and their gradients written in place, no copies. Inputs may
broadcast (stride 0); outputs must not overlap themselves, each other or an input. lse is
C-contiguous. mask: None, or an additive float mask of the same dtype viewed as
(B, H, T, S) with any strides (0 for a broadcast dim). The loops live in _attention_kernel.h
(FlashAttention-2 tiling, one body per ISA); this module checks arguments and runs them:

  forward:  parallel for (bh, query block) in B*H x T/BQ:   fwd(bh, q0)    # owns out/lse rows
            (contiguous chunks of whole heads; round-robin blocks if causal with few heads)
  backward: parallel for bh in B*H:                         bwd(bh)        # owns dq/dk/dv[bh]

NOTE: the backward runs at most B*H threads (one head per thread, whole dq/dk/dv rows owned,
no reduction); B*H = 1 runs on one thread.

Causal: a tile crossing the diagonal runs in pieces of CAUSAL_PIECE query rows, each against
the keys up to its own last row: with 16 rows, 37.5% of that tile's scores, exponentials and
products (of the 48% masked) are never computed (32 rows, built without OpenMP: 25%). At
T = BQ the whole sequence is one such tile.

Each thread has its own scratch (key tile transposed, score tile, accumulators), so nothing
shared is written inside the prange. Memory: O(threads * (BQ + D + Dv) * BK + T), never T x S.
"""
import os

import numpy as np

cimport numpy as cnp
from cython.parallel cimport prange, threadid
from libc.stdlib cimport free, malloc

from ._core import effective_n_threads

cdef extern from "_attention_kernel.h":
    ctypedef struct tga_attn_args:
        const void *q
        const void *k
        const void *v
        const void *out
        const void *dout
        const void *lse
        const void *mask
        void *out_w
        void *lse_w
        void *dq
        void *dk
        void *dv
        Py_ssize_t H, T, S, D, Dv
        Py_ssize_t ms0, ms1, ms2, ms3
        Py_ssize_t qs[3]
        Py_ssize_t ks[3]
        Py_ssize_t vs[3]
        Py_ssize_t os[3]
        Py_ssize_t dos[3]
        Py_ssize_t dqs[3]
        Py_ssize_t dks[3]
        Py_ssize_t dvs[3]
        int causal
        double scale
    ctypedef void (*tga_attn_fwd_t)(const tga_attn_args *A, Py_ssize_t bh, Py_ssize_t q0,
                                    void *scratch) noexcept nogil
    ctypedef void (*tga_attn_bwd_t)(const tga_attn_args *A, Py_ssize_t bh,
                                    void *scratch) noexcept nogil
    ctypedef struct tga_attn_isa_t:
        const char *name
        tga_attn_fwd_t fwd_f32
        tga_attn_fwd_t fwd_f64
        tga_attn_bwd_t bwd_f32
        tga_attn_bwd_t bwd_f64
    int TGA_ATTN_BQ
    int TGA_ATTN_BK
    int TGA_ATTN_SB
    Py_ssize_t tga_attn_fwd_scratch(Py_ssize_t D, Py_ssize_t Dv) noexcept nogil
    Py_ssize_t tga_attn_bwd_scratch(Py_ssize_t T, Py_ssize_t D, Py_ssize_t Dv) noexcept nogil
    int tga_attn_isa_best() noexcept nogil
    int tga_attn_isa_supported(int index) noexcept nogil
    const tga_attn_isa_t *tga_attn_isa_get(int index) noexcept nogil
    int TGA_ATTN_N_ISAS

cnp.import_array()

cdef const tga_attn_isa_t *_isa = tga_attn_isa_get(tga_attn_isa_best())

BLOCK_Q = TGA_ATTN_BQ    # query rows per forward work item
BLOCK_K = TGA_ATTN_BK    # keys per tile
CAUSAL_PIECE = TGA_ATTN_SB   # causal: query rows per piece of a tile crossing the diagonal
MIN_FLOPS_PER_THREAD = 4194304.0   # as _core's GEMM: below ~30 us of one core, threads lose


cdef int _threads(int n_threads, Py_ssize_t n_items, double flops):
    """n_threads (or the default when < 1), at most one per work item and per 4 MFLOP."""
    cdef int nt = n_threads if n_threads >= 1 else effective_n_threads()
    return <int>max(1, min(nt, n_items, flops / MIN_FLOPS_PER_THREAD))


def kernel_name():
    """The instruction set the attention kernels run with ("avx512", "avx2" or "generic")."""
    return _isa.name.decode()


kernel_isa = kernel_name


def kernel_isas():
    """The kernel sets this CPU runs, fastest first."""
    return [tga_attn_isa_get(i).name.decode() for i in range(TGA_ATTN_N_ISAS)
            if tga_attn_isa_supported(i)]


def set_kernel_isa(name="auto"):
    """Force the attention kernels' set ("avx512", "avx2", "generic") or pick it ("auto").

    Raises ValueError for a set this CPU cannot run. Returns the set in use.
    """
    global _isa
    if name == "auto":
        _isa = tga_attn_isa_get(tga_attn_isa_best())
        return kernel_name()
    for i in range(TGA_ATTN_N_ISAS):
        if tga_attn_isa_supported(i) and tga_attn_isa_get(i).name.decode() == name:
            _isa = tga_attn_isa_get(i)
            return kernel_name()
    raise ValueError(f"set_kernel_isa: this CPU cannot run {name!r}; supported: "
                     f"{kernel_isas()} or 'auto'")


if os.environ.get("TGA_ATTENTION_ISA", "auto") not in ("", "auto"):
    set_kernel_isa(os.environ["TGA_ATTENTION_ISA"])


# ---------------------------------------------------------------------------------- checks

cdef tuple _FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


cdef object _check(str fn, tuple names, tuple arrays, tuple shapes):
    """numpy arrays of one float dtype and the given shapes; returns the dtype."""
    for name, arr in zip(names, arrays):
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"{fn}: {name} must be a numpy.ndarray, got {type(arr).__name__}")
    dtype = arrays[0].dtype
    if dtype not in _FLOAT_DTYPES or any(a.dtype != dtype for a in arrays):
        listed = ", ".join(f"{n} {a.dtype}" for n, a in zip(names, arrays))
        raise TypeError(f"{fn}: all arrays must have one dtype, float32 or float64; got "
                        f"{listed}")
    for name, arr, shape in zip(names, arrays, shapes):
        if arr.shape != shape:
            listed = ", ".join(f"{n} {a.shape}" for n, a in zip(names, arrays))
            raise ValueError(f"{fn}: {name} has shape {arr.shape}, expected {shape} ({listed})")
    return dtype


cdef void _head_strides(str fn, str name, object arr, Py_ssize_t *s) except *:
    """s = arr's element strides {batch, head, row}; arr (B, H, rows, D) needs unit stride on D."""
    cdef Py_ssize_t item = arr.itemsize
    strides = arr.strides
    if (strides[0] % item or strides[1] % item or strides[2] % item
            or (arr.shape[3] > 1 and strides[3] != item)):
        raise ValueError(f"{fn}: {name} {arr.shape} needs unit stride along its last dim and "
                         f"strides in whole elements; got strides {strides} (bytes, itemsize "
                         f"{item})")
    s[0], s[1], s[2] = strides[0] // item, strides[1] // item, strides[2] // item


cdef object _self_overlapping(object arr):
    """True when two indices of arr may share an element. Sufficient test: sorted by |stride|,
    each dim's stride reaches past all the smaller dims span (size-1 dims ignored). Permuted,
    sliced or reversed views of one buffer pass; stride 0 and other overlaps fail."""
    if arr.flags.c_contiguous:
        return False
    dims = sorted((abs(st), n) for st, n in zip(arr.strides, arr.shape) if n > 1)
    extent = arr.itemsize                  # bytes spanned by the dims already seen
    for st, n in dims:
        if st < extent:
            return True
        extent = st * (n - 1) + extent
    return False


cdef void _check_outputs(str fn, tuple out_names, tuple outs, tuple in_names,
                         tuple ins) except *:
    """Outputs writable, not overlapping themselves, each other or any input."""
    for i, (name, arr) in enumerate(zip(out_names, outs)):
        if not arr.flags.writeable:
            raise ValueError(f"{fn}: {name} is read-only")
        if _self_overlapping(arr):
            raise ValueError(f"{fn}: {name} {arr.shape} with strides {arr.strides} has "
                             f"elements shared by several indices (several threads would "
                             f"write them)")
        for other_name, other in zip(out_names[i + 1:] + in_names, outs[i + 1:] + ins):
            if _bounds_meet(arr, other) and _overlap(arr, other):
                raise ValueError(f"{fn}: output {name} {arr.shape} (strides {arr.strides}) "
                                 f"overlaps {other_name} {other.shape} (strides "
                                 f"{other.strides})")


cdef bint _bounds_meet(cnp.ndarray a, cnp.ndarray b) noexcept:
    """Whether the byte ranges a and b span intersect (np.may_share_memory, without its ~0.5 us
    of call overhead)."""
    cdef const char *a_lo
    cdef const char *a_hi
    cdef const char *b_lo
    cdef const char *b_hi
    _extent(a, &a_lo, &a_hi)
    _extent(b, &b_lo, &b_hi)
    return a_lo < b_hi and b_lo < a_hi


cdef void _extent(cnp.ndarray a, const char **lo, const char **hi) noexcept:
    """[lo, hi): the bytes a's elements span (lo == hi when a is empty)."""
    cdef const char *first = <const char *>cnp.PyArray_DATA(a)
    cdef cnp.npy_intp *dims = cnp.PyArray_DIMS(a)
    cdef cnp.npy_intp *strides = cnp.PyArray_STRIDES(a)
    cdef Py_ssize_t below = 0, above = 0
    cdef int d
    for d in range(cnp.PyArray_NDIM(a)):
        if dims[d] == 0:
            lo[0] = hi[0] = first
            return
        if strides[d] > 0:
            above += (dims[d] - 1) * strides[d]
        else:
            below += (dims[d] - 1) * strides[d]
    lo[0] = first + below
    hi[0] = first + above + cnp.PyArray_ITEMSIZE(a)


cdef object _overlap(object a, object b):
    try:
        return np.shares_memory(a, b, max_work=100000)
    except np.exceptions.TooHardError:     # undecided in budget: treat as overlapping
        return True


cdef object _set_mask(str fn, tga_attn_args *A, object mask, object dtype, tuple shape):
    """Point A at the additive mask (B, H, T, S) with element strides; None: no mask."""
    A.mask = NULL
    A.ms0 = A.ms1 = A.ms2 = A.ms3 = 0
    if mask is None:
        return
    if not isinstance(mask, np.ndarray) or mask.dtype != dtype or mask.shape != shape:
        desc = (f"{mask.dtype} {mask.shape}" if isinstance(mask, np.ndarray)
                else type(mask).__name__)
        raise TypeError(f"{fn}: mask must be a {dtype} numpy.ndarray of shape {shape} (any "
                        f"strides), got {desc}")
    item = dtype.itemsize
    if any(st % item for st in mask.strides):
        raise ValueError(f"{fn}: mask strides {mask.strides} are not multiples of {item}")
    if mask.size == 0:
        return
    A.mask = <const void *>_ptr(mask)
    A.ms0, A.ms1, A.ms2, A.ms3 = [st // item for st in mask.strides]


cdef inline size_t _ptr(cnp.ndarray arr) noexcept:
    return <size_t>cnp.PyArray_DATA(arr)


# ---------------------------------------------------------------------------------- forward

def sdpa_fwd(out, lse, q, k, v, mask, bint is_causal, double scale, int n_threads):
    """out (B, H, T, Dv), lse (B, H, T) <- attention of q (B, H, T, D), k, v; see module doc."""
    cdef tga_attn_args A
    cdef Py_ssize_t B, H, T, S, D, Dv, n_qblk, n_items, it, bh
    cdef int nt
    cdef void *scratch
    cdef size_t scratch_bytes
    cdef tga_attn_fwd_t kernel
    if not (isinstance(q, np.ndarray) and q.ndim == 4 and isinstance(k, np.ndarray)
            and k.ndim == 4 and isinstance(v, np.ndarray) and v.ndim == 4):
        raise ValueError(f"sdpa_fwd: q, k, v must be 4-D numpy arrays (B, H, T, D), got "
                         f"{getattr(q, 'shape', q)}, {getattr(k, 'shape', k)}, "
                         f"{getattr(v, 'shape', v)}")
    B, H, T, D = q.shape
    S, Dv = k.shape[2], v.shape[3]
    dtype = _check("sdpa_fwd", ("out", "lse", "q", "k", "v"), (out, lse, q, k, v),
                   ((B, H, T, Dv), (B, H, T), (B, H, T, D), (B, H, S, D), (B, H, S, Dv)))
    if not lse.flags.c_contiguous:
        raise ValueError(f"sdpa_fwd: lse {lse.shape} must be C-contiguous (strides "
                         f"{lse.strides})")
    _head_strides("sdpa_fwd", "q", q, A.qs)
    _head_strides("sdpa_fwd", "k", k, A.ks)
    _head_strides("sdpa_fwd", "v", v, A.vs)
    _head_strides("sdpa_fwd", "out", out, A.os)
    _set_mask("sdpa_fwd", &A, mask, dtype, (B, H, T, S))
    _check_outputs("sdpa_fwd", ("out", "lse"), (out, lse),
                   ("q", "k", "v", "mask")[:3 + (mask is not None)], (q, k, v, mask))
    A.q, A.k, A.v = <const void *>_ptr(q), <const void *>_ptr(k), <const void *>_ptr(v)
    A.out_w, A.lse_w = <void *>_ptr(out), <void *>_ptr(lse)
    A.out = A.dout = A.lse = NULL
    A.dq = A.dk = A.dv = NULL
    A.H, A.T, A.S, A.D, A.Dv = H, T, S, D, Dv
    A.causal, A.scale = is_causal, scale
    if B * H * T == 0:                                 # (Dv == 0 still computes lse)
        return
    if S == 0:                                         # nothing to attend to: torch gives 0
        out[...] = 0
        lse[...] = -np.inf
        return
    kernel = _isa.fwd_f32 if dtype == np.float32 else _isa.fwd_f64
    n_qblk = (T + TGA_ATTN_BQ - 1) // TGA_ATTN_BQ
    n_items = B * H * n_qblk
    nt = _threads(n_threads, n_items, 2.0 * B * H * T * S * (D + Dv) / (2 if is_causal else 1))
    scratch_bytes = tga_attn_fwd_scratch(D, Dv) * dtype.itemsize
    scratch = malloc(scratch_bytes * nt)               # one slot per thread
    if scratch == NULL:
        raise MemoryError(f"sdpa_fwd: cannot allocate {scratch_bytes * nt} bytes of scratch")
    try:
        if not is_causal or B * H >= 4 * nt:
            # contiguous chunks: each thread owns whole heads, so no cache line of out is
            # written by two threads when heads interleave in memory (a (B, T, H, Dv) out:
            # round-robin made that 15% slower); at most a quarter head of imbalance
            for it in prange(n_items, nogil=True, schedule="static", num_threads=nt):
                kernel(&A, it // n_qblk, (it % n_qblk) * TGA_ATTN_BQ,
                       <char *>scratch + threadid() * scratch_bytes)
        else:
            # causal, few heads: round-robin over query blocks, since causal blocks grow in
            # cost along T and contiguous chunks would give the last thread the most
            for it in prange(n_items, nogil=True, schedule="static", chunksize=1,
                             num_threads=nt):
                kernel(&A, it // n_qblk, (it % n_qblk) * TGA_ATTN_BQ,
                       <char *>scratch + threadid() * scratch_bytes)
    finally:
        free(scratch)


# --------------------------------------------------------------------------------- backward

def sdpa_bwd(dq, dk, dv, dout, q, k, v, out, lse, mask, bint is_causal, double scale,
             int n_threads):
    """dq, dk, dv <- gradients of attention given dout (B, H, T, Dv) and fwd's out, lse."""
    cdef tga_attn_args A
    cdef Py_ssize_t B, H, T, S, D, Dv, bh
    cdef int nt
    cdef void *scratch
    cdef size_t scratch_bytes
    cdef tga_attn_bwd_t kernel
    if not (isinstance(q, np.ndarray) and q.ndim == 4 and isinstance(k, np.ndarray)
            and k.ndim == 4 and isinstance(v, np.ndarray) and v.ndim == 4):
        raise ValueError(f"sdpa_bwd: q, k, v must be 4-D numpy arrays (B, H, T, D), got "
                         f"{getattr(q, 'shape', q)}, {getattr(k, 'shape', k)}, "
                         f"{getattr(v, 'shape', v)}")
    B, H, T, D = q.shape
    S, Dv = k.shape[2], v.shape[3]
    names = ("dq", "dk", "dv", "dout", "q", "k", "v", "out", "lse")
    dtype = _check("sdpa_bwd", names, (dq, dk, dv, dout, q, k, v, out, lse),
                   ((B, H, T, D), (B, H, S, D), (B, H, S, Dv), (B, H, T, Dv), (B, H, T, D),
                    (B, H, S, D), (B, H, S, Dv), (B, H, T, Dv), (B, H, T)))
    if not lse.flags.c_contiguous:
        raise ValueError(f"sdpa_bwd: lse {lse.shape} must be C-contiguous (strides "
                         f"{lse.strides})")
    _head_strides("sdpa_bwd", "dq", dq, A.dqs)
    _head_strides("sdpa_bwd", "dk", dk, A.dks)
    _head_strides("sdpa_bwd", "dv", dv, A.dvs)
    _head_strides("sdpa_bwd", "dout", dout, A.dos)
    _head_strides("sdpa_bwd", "q", q, A.qs)
    _head_strides("sdpa_bwd", "k", k, A.ks)
    _head_strides("sdpa_bwd", "v", v, A.vs)
    _head_strides("sdpa_bwd", "out", out, A.os)
    _set_mask("sdpa_bwd", &A, mask, dtype, (B, H, T, S))
    _check_outputs("sdpa_bwd", ("dq", "dk", "dv"), (dq, dk, dv),
                   ("dout", "q", "k", "v", "out", "lse", "mask")[:6 + (mask is not None)],
                   (dout, q, k, v, out, lse, mask))
    A.q, A.k, A.v = <const void *>_ptr(q), <const void *>_ptr(k), <const void *>_ptr(v)
    A.out, A.dout = <const void *>_ptr(out), <const void *>_ptr(dout)
    A.lse = <const void *>_ptr(lse)
    A.dq, A.dk, A.dv = <void *>_ptr(dq), <void *>_ptr(dk), <void *>_ptr(dv)
    A.out_w = A.lse_w = NULL
    A.H, A.T, A.S, A.D, A.Dv = H, T, S, D, Dv
    A.causal, A.scale = is_causal, scale
    if B * H == 0:
        return
    if T == 0 or S == 0:
        dq[...] = 0
        dk[...] = 0
        dv[...] = 0
        return
    kernel = _isa.bwd_f32 if dtype == np.float32 else _isa.bwd_f64
    nt = _threads(n_threads, B * H, 5.0 * B * H * T * S * (D + Dv) / (2 if is_causal else 1))
    scratch_bytes = tga_attn_bwd_scratch(T, D, Dv) * dtype.itemsize
    scratch = malloc(scratch_bytes * nt)               # one slot per thread
    if scratch == NULL:
        raise MemoryError(f"sdpa_bwd: cannot allocate {scratch_bytes * nt} bytes of scratch")
    try:
        for bh in prange(B * H, nogil=True, schedule="static", num_threads=nt):
            kernel(&A, bh, <char *>scratch + threadid() * scratch_bytes)
    finally:
        free(scratch)
