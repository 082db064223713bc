# cython: language_level=3, cdivision=True
# NOTE: boundscheck / wraparound / initializedcheck are set by setup.py (off, or on with
# TGA_CYTHON_DEBUG=1); a file-level directive here would override the debug build.
"""Fused scaled-dot-product attention, forward and backward (CPU, float32 and float64).

    sdpa_fwd(out, lse, q, k, v, mask, is_causal, scale, n_threads=0)
    sdpa_bwd(dq, dk, dv, dout, q, k, v, out, lse, mask, is_causal, scale, n_threads=0)
The ISA (avx512, avx2, generic) is the "attention" family's: tinygradattn.backend.isa,
$TGA_ISA_ATTENTION.

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
import numpy as np

cimport numpy as cnp
from cython.parallel cimport prange, threadid
from libc.stdlib cimport calloc, free

from ._support cimport (FAMILY_ATTENTION, bounds_meet, check_strided, data_ptr, isa_level,
                       resolve_threads)

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
    const tga_attn_isa_t *tga_attn_isa_for(int level) noexcept nogil

cnp.import_array()

BLOCK_Q = TGA_ATTN_BQ    # query rows per forward work item
BLOCK_K = TGA_ATTN_BK    # keys per tile
CAUSAL_PIECE = TGA_ATTN_SB   # causal: query rows per piece of a tile crossing the diagonal
MIN_FLOPS_PER_THREAD = 4194304.0   # as _core's GEMM: below this much work, threads lose


cdef int _threads(int n_threads, Py_ssize_t n_items, double flops):
    """n_threads (or the default when < 1), at most one per work item and per 4 MFLOP."""
    cdef int nt = resolve_threads(n_threads, flops, MIN_FLOPS_PER_THREAD)
    return <int>max(1, min(nt, n_items))


# ---------------------------------------------------------------------------------- checks

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
            if bounds_meet(arr, other) and _overlap(arr, other):
                raise ValueError(f"{fn}: output {name} {arr.shape} (strides {arr.strides}) "
                                 f"overlaps {other_name} {other.shape} (strides "
                                 f"{other.strides})")


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
    A.mask = <const void *>data_ptr(mask)
    A.ms0, A.ms1, A.ms2, A.ms3 = [st // item for st in mask.strides]


# ---------------------------------------------------------------------------------- forward

def sdpa_fwd(out, lse, q, k, v, mask, bint is_causal, double scale, int n_threads=0):
    """out (B, H, T, Dv), lse (B, H, T) <- attention of q (B, H, T, D), k, v; see module doc."""
    cdef tga_attn_args A
    cdef Py_ssize_t B, H, T, S, D, Dv, n_qblk, n_items, it, bh
    cdef int nt
    cdef void *scratch
    cdef size_t scratch_bytes
    cdef tga_attn_fwd_t kernel
    cdef const tga_attn_isa_t *isa
    if not (isinstance(q, np.ndarray) and q.ndim == 4 and isinstance(k, np.ndarray)
            and k.ndim == 4 and isinstance(v, np.ndarray) and v.ndim == 4):
        raise ValueError(f"sdpa_fwd: q, k, v must be 4-D numpy arrays (B, H, T, D), got "
                         f"{getattr(q, 'shape', q)}, {getattr(k, 'shape', k)}, "
                         f"{getattr(v, 'shape', v)}")
    B, H, T, D = q.shape
    S, Dv = k.shape[2], v.shape[3]
    dtype = check_strided("sdpa_fwd", ("out", "lse", "q", "k", "v"), (out, lse, q, k, v),
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
    A.q, A.k, A.v = <const void *>data_ptr(q), <const void *>data_ptr(k), <const void *>data_ptr(v)
    A.out_w, A.lse_w = <void *>data_ptr(out), <void *>data_ptr(lse)
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
    isa = tga_attn_isa_for(isa_level(FAMILY_ATTENTION))
    kernel = isa.fwd_f32 if dtype == np.float32 else isa.fwd_f64
    n_qblk = (T + TGA_ATTN_BQ - 1) // TGA_ATTN_BQ
    n_items = B * H * n_qblk
    nt = _threads(n_threads, n_items, 2.0 * B * H * T * S * (D + Dv) / (2 if is_causal else 1))
    scratch_bytes = tga_attn_fwd_scratch(D, Dv) * dtype.itemsize
    # one slot per thread, zeroed: the padded tile columns past a short row read finite values
    scratch = calloc(nt, scratch_bytes)
    if scratch == NULL:
        raise MemoryError(f"sdpa_fwd: cannot allocate {scratch_bytes * nt} bytes of scratch")
    try:
        if not is_causal or B * H >= 4 * nt:
            # contiguous chunks: each thread owns whole heads, so no cache line of out is
            # written by two threads when heads interleave in memory (a (B, T, H, Dv) out;
            # round-robin shares them); at most a quarter head of imbalance
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
             int n_threads=0):
    """dq, dk, dv <- gradients of attention given dout (B, H, T, Dv) and fwd's out, lse."""
    cdef tga_attn_args A
    cdef Py_ssize_t B, H, T, S, D, Dv, bh
    cdef int nt
    cdef void *scratch
    cdef size_t scratch_bytes
    cdef tga_attn_bwd_t kernel
    cdef const tga_attn_isa_t *isa
    if not (isinstance(q, np.ndarray) and q.ndim == 4 and isinstance(k, np.ndarray)
            and k.ndim == 4 and isinstance(v, np.ndarray) and v.ndim == 4):
        raise ValueError(f"sdpa_bwd: q, k, v must be 4-D numpy arrays (B, H, T, D), got "
                         f"{getattr(q, 'shape', q)}, {getattr(k, 'shape', k)}, "
                         f"{getattr(v, 'shape', v)}")
    B, H, T, D = q.shape
    S, Dv = k.shape[2], v.shape[3]
    names = ("dq", "dk", "dv", "dout", "q", "k", "v", "out", "lse")
    dtype = check_strided("sdpa_bwd", names, (dq, dk, dv, dout, q, k, v, out, lse),
                          ((B, H, T, D), (B, H, S, D), (B, H, S, Dv), (B, H, T, Dv),
                           (B, H, T, D), (B, H, S, D), (B, H, S, Dv), (B, H, T, Dv), (B, H, T)))
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
    A.q, A.k, A.v = <const void *>data_ptr(q), <const void *>data_ptr(k), <const void *>data_ptr(v)
    A.out, A.dout = <const void *>data_ptr(out), <const void *>data_ptr(dout)
    A.lse = <const void *>data_ptr(lse)
    A.dq, A.dk, A.dv = <void *>data_ptr(dq), <void *>data_ptr(dk), <void *>data_ptr(dv)
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
    isa = tga_attn_isa_for(isa_level(FAMILY_ATTENTION))
    kernel = isa.bwd_f32 if dtype == np.float32 else isa.bwd_f64
    nt = _threads(n_threads, B * H, 5.0 * B * H * T * S * (D + Dv) / (2 if is_causal else 1))
    scratch_bytes = tga_attn_bwd_scratch(T, D, Dv) * dtype.itemsize
    # one slot per thread, zeroed: the padded tile columns past a short row read finite values
    scratch = calloc(nt, scratch_bytes)
    if scratch == NULL:
        raise MemoryError(f"sdpa_bwd: cannot allocate {scratch_bytes * nt} bytes of scratch")
    try:
        for bh in prange(B * H, nogil=True, schedule="static", num_threads=nt):
            kernel(&A, bh, <char *>scratch + threadid() * scratch_bytes)
    finally:
        free(scratch)
