# cython: language_level=3, cdivision=True
# NOTE: boundscheck / wraparound / initializedcheck are set by setup.py (off, or on with
# TGA_CYTHON_DEBUG=1); a file-level directive here would override the debug build.
"""CPU kernels of tinygradattn: GEMM (ops/matmul.py, ops/linear.py) and the softmax family
(ops/fused.py), the bottom of the stack (backend/cpu_kernels.py calls these).

Every kernel writes into buffers it is given: outputs first, then inputs, then scalars.
Python wrappers check shapes, dtypes and contiguity under the GIL and name them in their
errors; the ``noexcept nogil`` bodies trust their inputs. ``floating`` gives a float32 and a
float64 build of every kernel. ``n_threads < 1`` means ``effective_n_threads()``; below a
work threshold a kernel runs on one thread whatever it is asked.

Sections:
    GEMM         gemm (packed, blocked, register-tiled, OpenMP), gemm_naive (the oracle)
    softmax      softmax_fwd / softmax_bwd, log_softmax_fwd / log_softmax_bwd
    column sum   column_sum (a Linear layer's bias gradient; threaded, thread-count invariant)

Beside it, one module per kernel family, all on the support layer of _support.pxd: _rows
(layer norm, cross-entropy), _elementwise (GELU, erf, add / sub / mul), _indexing (row
scatter-add), _attention, _optim.
"""

import os

import numpy as np

from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport exp, log
from libc.string cimport memcpy, memset


from ._support cimport (FAMILY_GEMM, TGA_ISA_GENERIC, byte_extent, check_apart, check_dtypes,
                       check_out, check_same_or_apart, isa_level, resolve_threads,
                       tga_aligned_free, tga_aligned_malloc, tuning_value)
from ._support cimport cdiv as _cdiv, min_ssize as _min, round_up as _round_up
from ._rows_kernel cimport rows_isa_sync, tga_rm, tga_rm_gelu_for, tga_rm_gelu_t


# ---------------------------------------------------------------------------------- checks

cdef object _gemm_check_views(str fn, floating[:, :, ::1] out, const floating[:, :, :] a,
                              const floating[:, :, :] w):
    """Strides in whole items, and out overlapping neither input (cheap C arithmetic)."""
    cdef const char *out_lo
    cdef const char *out_hi
    cdef const char *lo
    cdef const char *hi
    cdef Py_ssize_t item = sizeof(floating)
    cdef int d
    for d in range(3):
        if a.strides[d] % item or w.strides[d] % item:
            a_strides = (a.strides[0], a.strides[1], a.strides[2])
            w_strides = (w.strides[0], w.strides[1], w.strides[2])
            raise ValueError(f"{fn}: strides a {a_strides} / b {w_strides} are not multiples "
                             f"of the item size {item}")
    if out.size == 0:
        return
    out_shape = (out.shape[0], out.shape[1], out.shape[2])
    byte_extent(<const char *>&out[0, 0, 0], out.shape, out.strides, 3, item, &out_lo, &out_hi)
    if a.size:
        byte_extent(<const char *>&a[0, 0, 0], a.shape, a.strides, 3, item, &lo, &hi)
        if lo < out_hi and out_lo < hi:
            raise ValueError(f"{fn}: out {out_shape} overlaps a; gemm cannot run in place")
    if w.size:
        byte_extent(<const char *>&w[0, 0, 0], w.shape, w.strides, 3, item, &lo, &hi)
        if lo < out_hi and out_lo < hi:
            raise ValueError(f"{fn}: out {out_shape} overlaps b; gemm cannot run in place")


# ==============================================================================================
# GEMM
#
#   out[b, i, j] = bias[j] + sum_k a[b, i, k] * w[b, k, j]     a: (Bt, M, K), w: (Bt, K, N) any
#                                                              strides; bias (N,) or none (0)
#
# Goto/BLIS blocking, row-major form (vectors run along N; A values are broadcast):
#
#   parallel for (bi, it, jt) in Bt x M/MT x N/NT:          # tasks: independent output tiles
#     for p0 in 0..K step KC:
#       pack a[bi, it*MT : +MT, p0 : +KC]   -> abuf (MT, KC) as MT/MR panels of (KC, MR)
#       for jc in jt*NT .. +NT step NC:
#         pack w[bi, p0 : +KC, jc : +NC]    -> bbuf (KC, NC) as NC/NR panels of (KC, NR)  L2
#         for ir in 0..MT step MR:                            # A micro-panel (KC, MR) in L1
#           for jr in 0..NC step NR:                          # B micro-panels stream from L2
#             out[bi, it*MT+ir : +MR, jc+jr : +NR] (+)= abuf[ir] @ bbuf[jr]    # micro-kernel
#
# Parallel axis: (batch, M-tile, N-tile) tasks, schedule static. Each task owns its output
# tile, so no two threads write the same element; each thread packs into its own buffers.
# Tasks split M first (a task then packs only its rows of A, the transposing and costlier
# copy; B packing is a plain row copy), N only when M is too short; their count is rounded
# to a multiple of n_threads when there are few, so the static schedule balances.
# Packing reads through the strides (transposed views, broadcast batch with stride 0), pads
# the edge panels with zeros, and stores each micro-panel contiguously and 64-byte aligned.
# A K-contiguous operand (row-major a, or w given as a transposed view) is packed by 8x8 / 4x4
# register transposes (_gemm_kernel.h tga_pack_kcontig_*), not an element-wise scatter.
# Skipping the packing (AVX2 / AVX-512 strided kernels, ukr_sa_*): packing a costs about as
# much per element as 32 / N of the products, so for N <= DIRECT_A_MAX_N and a with a unit
# stride along K or M (row-major or transposed) the full MR-row panels of a are read in place
# and only the edge panel is packed ("direct_a"). When M is small as well (<= DIRECT_B_MAX_M,
# N <= 256: batched attention-sized products, where packing w is not amortised over many
# rows) a row-major w is read in place too ("direct_b"), its edge panel packed.
# MR x NR depends on the ISA kernel chosen at import (_gemm_kernel.h): avx512 12x32 / 12x16,
# avx2 6x16 / 6x8, generic 4x8 / 4x4 (float32 / float64).
# Blocks: KC x MR of A (12 KiB) in L1d (48 KiB); KC x NC of B (512 KiB) in L2; MT x KC of A
# (<= 1 MiB) in L2/L3 (32 MiB). Below GEMM_MIN_FLOPS_PER_THREAD of work per thread, fewer
# threads (down to one: small products never pay for a thread team).
# Accumulation is in the input dtype (float32 stays float32, as in BLAS and PyTorch).
# Bias (a Linear layer's): in the first K block the micro-kernels start their accumulators
# from the bias row (two vector loads per tile; the last, partial NR panel reads a zero-padded
# copy), so adding it costs no pass over out. Rounding: bias + a0 w0 + a1 w1 + ... in order.
# Epilogue, once a task's MR-row stripe of out is final (the last K block), while it is in
# L1, instead of in a pass of its own over out: mul (an array shaped like out; GELU's
# derivative in an MLP's backward) multiplies it; add (shaped like out: a residual stream)
# is added to it; gelu (float32: _elementwise_kernel.h's loops) replaces it by gelu(out) and
# writes gelu'(out) to grad (an MLP's forward).
# gemm() recognises the common call (aligned native float arrays, matching shapes, no overlap,
# nothing empty) with the numpy C API (_gemm_fast_plan); anything else goes through
# the checked memoryview path, which raises the descriptive errors.
# ==============================================================================================

cimport numpy as cnp
cnp.import_array()

cdef extern from "_gemm_kernel.h" nogil:
    ctypedef void (*tga_ukr_f32_t)(Py_ssize_t kc, const float *a, const float *b, float *c,
                                   Py_ssize_t ldc, Py_ssize_t mr, Py_ssize_t nr,
                                   const float *bias, int accumulate) noexcept nogil
    ctypedef void (*tga_ukr_f64_t)(Py_ssize_t kc, const double *a, const double *b, double *c,
                                   Py_ssize_t ldc, Py_ssize_t mr, Py_ssize_t nr,
                                   const double *bias, int accumulate) noexcept nogil
    ctypedef void (*tga_ukr_sa_f32_t)(Py_ssize_t kc, const float *a, Py_ssize_t rsa,
                                      Py_ssize_t csa, const float *b, Py_ssize_t ldb, float *c,
                                      Py_ssize_t ldc, Py_ssize_t mr, Py_ssize_t nr,
                                      const float *bias, int accumulate) noexcept nogil
    ctypedef void (*tga_ukr_sa_f64_t)(Py_ssize_t kc, const double *a, Py_ssize_t rsa,
                                      Py_ssize_t csa, const double *b, Py_ssize_t ldb,
                                      double *c, Py_ssize_t ldc, Py_ssize_t mr, Py_ssize_t nr,
                                      const double *bias, int accumulate) noexcept nogil
    ctypedef struct tga_gemm_isa_t:
        const char *name
        int mr_f32
        int nr_f32
        int mr_f64
        int nr_f64
        tga_ukr_f32_t ukr_f32
        tga_ukr_f64_t ukr_f64
        tga_ukr_sa_f32_t ukr_sa_f32         # NULL: no strided-A kernel (generic)
        tga_ukr_sa_f64_t ukr_sa_f64
        tga_ukr_sa_f32_t ukr_sa_half_f32    # the same at MR / 2 rows (edge panels); or NULL
        tga_ukr_sa_f64_t ukr_sa_half_f64
    const tga_gemm_isa_t *tga_gemm_isa_for(int level)
    void tga_gemm_pack_init(int allow_simd)
    void tga_pack_kcontig_f32(float *dst, const float *src, Py_ssize_t rows, Py_ssize_t k,
                              Py_ssize_t s_row, Py_ssize_t R)
    void tga_pack_kcontig_f64(double *dst, const double *src, Py_ssize_t rows, Py_ssize_t k,
                              Py_ssize_t s_row, Py_ssize_t R)

ctypedef struct GemmPlan:
    Py_ssize_t n_batch, m, n, k              # out (n_batch, m, n), a (.., m, k), w (.., k, n)
    Py_ssize_t sa_b, sa_m, sa_k              # element strides of a (any sign, 0 for broadcast)
    Py_ssize_t sw_b, sw_k, sw_n              # element strides of w
    Py_ssize_t mr, nr                        # micro-tile (from the ISA)
    Py_ssize_t kc, nc                        # cache blocks (nc % nr == 0)
    Py_ssize_t mt, nt                        # task tile (mt % mr == 0, nt % nr == 0, nc <= nt)
    Py_ssize_t n_mt, n_nt                    # tasks along M and N per matrix
    bint direct_a                            # read a in place (strided kernel), no packing
    bint direct_b                            # also read row-major w in place (full panels)
    const void *bias                         # (n,) of the dtype, added to every row; or NULL
    const void *mul                          # (n_batch, m, n) like out: out *= mul; or NULL
    const void *add                          # (n_batch, m, n) like out: out += add (after mul)
    int gelu                                 # 1 exact, 2 tanh: out = gelu(out), grad = gelu'
    void *grad                               # with gelu: (n_batch, m, n) float32 like out
    const void *gelu_vec                     # with gelu: the tga_rm_gelu_t of the row math

# Cache blocks (module globals so that _set_tuning can tune them in a benchmark)
cdef Py_ssize_t KC_F32 = 256            # K block: A micro-panel 12 x 256 x 4 B = 12 KiB in L1d
cdef Py_ssize_t KC_F64 = 128            #          12 x 128 x 8 B = 12 KiB
cdef Py_ssize_t NC_MAX_BYTES = 524288   # KC x NC block of B: 512 KiB, half of a 1 MiB L2
cdef Py_ssize_t MT_MAX_BYTES = 1048576  # MT x KC of packed A per task: 1 MiB, in L2/L3
cdef double GEMM_MIN_FLOPS_PER_THREAD = 2097152.0   # below this much work a thread costs more
# With OMP_WAIT_POLICY=PASSIVE (tinygradattn's default, _openmp_env.py) idle OpenMP threads
# sleep right after each parallel region and waking one costs more than small products gain,
# so threads pay only from 16 MFLOP per thread; a bounded spin (GOMP_SPINCOUNT, overriding
# PASSIVE's 0) removes that cost (figures: benchmarks/README.md, "Why the kernels are shaped
# as they are"). The policy libgomp read at load is not queryable; the environment is the
# best guess.
if (os.environ.get("OMP_WAIT_POLICY", "").strip().upper() == "PASSIVE"
        and os.environ.get("GOMP_SPINCOUNT", "0").strip() in ("", "0")):
    GEMM_MIN_FLOPS_PER_THREAD = 16777216.0
cdef double ROW_MIN_ELEMS_PER_THREAD = 16384.0        # softmax family, see its section
cdef double COLSUM_MIN_ELEMS_PER_THREAD = 65536.0     # column_sum, see its section
cdef Py_ssize_t DIRECT_A_MAX_N = 512    # N <= this: a read in place, not packed (_gemm_task)
cdef Py_ssize_t DIRECT_B_MAX_M = 128    # and M <= this, N <= 256, row-major w: w in place too
DEF GEMM_MAX_NR = 32                    # the widest micro-tile (avx512 float32)


def _set_tuning(kc_f32=None, kc_f64=None, nc_max_bytes=None, mt_max_bytes=None,
                min_flops_per_thread=None, row_min_elems_per_thread=None, direct_a_max_n=None,
                direct_b_max_m=None, colsum_min_elems_per_thread=None):
    """Tuning hook for tests and benchmarks: block sizes and the one-thread thresholds.

    Returns the current values as a dict (pass it back as keywords to restore them). Every
    value is checked before any is set (ValueError naming the argument): block sizes are
    integers, kc_* in [1, MAX_KC], the byte budgets at least one K block of float64
    (8 * kc_f64) and float32 (4 * kc_f32) and at most MAX_BLOCK_BYTES, the direct-read limits
    integers >= 0, the thresholds finite numbers >= 0 (0: threads on any work). So no setting
    can give the GEMM a zero-sized tile.
    """
    global KC_F32, KC_F64, NC_MAX_BYTES, MT_MAX_BYTES, GEMM_MIN_FLOPS_PER_THREAD
    global ROW_MIN_ELEMS_PER_THREAD, DIRECT_A_MAX_N, DIRECT_B_MAX_M, COLSUM_MIN_ELEMS_PER_THREAD
    new = _checked_tuning(dict(
        kc_f32=kc_f32, kc_f64=kc_f64, nc_max_bytes=nc_max_bytes, mt_max_bytes=mt_max_bytes,
        min_flops_per_thread=min_flops_per_thread,
        row_min_elems_per_thread=row_min_elems_per_thread, direct_a_max_n=direct_a_max_n,
        direct_b_max_m=direct_b_max_m, colsum_min_elems_per_thread=colsum_min_elems_per_thread))
    KC_F32, KC_F64 = new["kc_f32"], new["kc_f64"]
    NC_MAX_BYTES, MT_MAX_BYTES = new["nc_max_bytes"], new["mt_max_bytes"]
    GEMM_MIN_FLOPS_PER_THREAD = new["min_flops_per_thread"]
    ROW_MIN_ELEMS_PER_THREAD = new["row_min_elems_per_thread"]
    DIRECT_A_MAX_N, DIRECT_B_MAX_M = new["direct_a_max_n"], new["direct_b_max_m"]
    COLSUM_MIN_ELEMS_PER_THREAD = new["colsum_min_elems_per_thread"]
    return _tuning()


MAX_KC = 65536                          # K block limit of _set_tuning
MAX_BLOCK_BYTES = 1 << 30               # nc_max_bytes / mt_max_bytes limit of _set_tuning


def _tuning():
    return dict(kc_f32=KC_F32, kc_f64=KC_F64, nc_max_bytes=NC_MAX_BYTES, mt_max_bytes=MT_MAX_BYTES,
                min_flops_per_thread=GEMM_MIN_FLOPS_PER_THREAD,
                row_min_elems_per_thread=ROW_MIN_ELEMS_PER_THREAD, direct_a_max_n=DIRECT_A_MAX_N,
                direct_b_max_m=DIRECT_B_MAX_M,
                colsum_min_elems_per_thread=COLSUM_MIN_ELEMS_PER_THREAD)


def _checked_tuning(given):
    """The current settings with the given (non-None) ones checked and merged in."""
    fn = "_core._set_tuning"
    limits = dict(kc_f32=(1, MAX_KC, True), kc_f64=(1, MAX_KC, True),
                  nc_max_bytes=(1, MAX_BLOCK_BYTES, True), mt_max_bytes=(1, MAX_BLOCK_BYTES, True),
                  direct_a_max_n=(0, 1 << 62, True), direct_b_max_m=(0, 1 << 62, True))
    new = _tuning()
    for name, value in given.items():
        if value is not None:
            lo, hi, integer = limits.get(name, (0, 1e18, False))
            new[name] = tuning_value(fn, name, value, lo, hi, integer)
    k_block = max(4 * new["kc_f32"], 8 * new["kc_f64"])     # one K row of the widest block
    for name in ("nc_max_bytes", "mt_max_bytes"):
        if new[name] < k_block:
            raise ValueError(f"{fn}: {name} = {new[name]} is below one K block (max(4 * kc_f32, "
                             f"8 * kc_f64) = {k_block} bytes): the GEMM tile would be empty")
    return new

cdef tga_gemm_isa_t _isa                 # the micro-kernel set of level _gemm_level
cdef int _gemm_level = -1


cdef inline void _gemm_isa_sync() noexcept nogil:
    """Point _isa (and the packing) at the GEMM level _support holds, if it changed."""
    global _isa, _gemm_level
    cdef int level = isa_level(FAMILY_GEMM)
    if level != _gemm_level:
        _isa = tga_gemm_isa_for(level)[0]
        tga_gemm_pack_init(level != TGA_ISA_GENERIC)    # generic: the scalar packing too
        _gemm_level = level


cdef Py_ssize_t _busiest_thread_tiles(Py_ssize_t n_batch, Py_ssize_t m, Py_ssize_t n,
                                       Py_ssize_t mt, Py_ssize_t nt, Py_ssize_t mr,
                                       Py_ssize_t nr, int n_threads) noexcept nogil:
    """Micro-tiles of the busiest thread when (n_batch, M/mt, N/nt) tasks are split statically.

    An edge panel costs a full one (the micro-kernel computes MR x NR either way), so
    M = 128 split as 72 + 56 rows is 6 + 5 panels, not 64 + 64 rows."""
    cdef Py_ssize_t n_mt = _cdiv(m, mt), n_nt = _cdiv(n, nt)
    cdef Py_ssize_t n_tasks = n_batch * n_mt * n_nt
    cdef Py_ssize_t t, task, first, last, tiles, busiest = 0
    cdef Py_ssize_t chunk = n_tasks // n_threads, extra = n_tasks % n_threads
    for t in range(n_threads):                          # OpenMP static: contiguous chunks,
        first = t * chunk + _min(t, extra)              # the first `extra` one task longer
        last = first + chunk + (1 if t < extra else 0)
        tiles = 0
        for task in range(first, last):
            tiles += (_cdiv(_min(mt, m - (task % (n_mt * n_nt)) // n_nt * mt), mr)
                      * _cdiv(_min(nt, n - task % n_nt * nt), nr))
        if tiles > busiest:
            busiest = tiles
    return busiest


cdef inline Py_ssize_t _max1(Py_ssize_t a) noexcept nogil:
    return a if a > 1 else 1


cdef int _plan_blocks(GemmPlan *plan, Py_ssize_t itemsize, int n_threads) noexcept nogil:
    """Choose KC, NC, the task tile MT x NT, and the task grid."""
    cdef Py_ssize_t kc_max = KC_F32 if itemsize == 4 else KC_F64
    # NOTE: at least one micro-tile each (_set_tuning refuses smaller budgets; this keeps a
    # zero tile, a division by zero below, out of reach whatever the globals hold)
    cdef Py_ssize_t nc_max = _round_up(_max1(NC_MAX_BYTES // (kc_max * itemsize)), plan.nr)
    cdef Py_ssize_t mt_max = _round_up(_max1(MT_MAX_BYTES // (kc_max * itemsize)), plan.mr)
    cdef Py_ssize_t n_mt = _cdiv(plan.m, mt_max)
    cdef Py_ssize_t n_nt = 1
    cdef Py_ssize_t want, mt_m, mt_n, nt_n
    plan.kc = _min(kc_max, plan.k)
    if n_threads > 1 and plan.n_batch * n_mt < 4 * n_threads:
        # few tasks: make their count a multiple of n_threads so the static schedule balances.
        # Split M (a task packs only its rows of A, the costly transposing copy) unless
        # splitting N instead leaves the busiest thread fewer micro-tiles while each A
        # micro-panel still meets >= 4 NR panels (fewer: A's reads dominate).
        # dW of a 512 -> 128 Linear, (128, 768) @ (768, 512): M = 128 with MR = 12 is 11
        # panels, 6 + 5 for two threads, while N = 512 is 8 + 8 NR panels: the N split
        # balances better.
        want = _cdiv(_round_up(plan.n_batch * n_mt, n_threads), plan.n_batch)
        mt_m = _round_up(_cdiv(plan.m, want), plan.mr)          # M split in `want`
        mt_n = _round_up(_cdiv(plan.m, n_mt), plan.mr)          # or N split
        nt_n = _round_up(_cdiv(plan.n, _cdiv(want, n_mt)), plan.nr)
        if (_cdiv(plan.m, plan.mr) >= 2 * want
                and (nt_n < 4 * plan.nr
                     or _busiest_thread_tiles(plan.n_batch, plan.m, plan.n, mt_m, plan.n,
                                              plan.mr, plan.nr, n_threads)
                     <= _busiest_thread_tiles(plan.n_batch, plan.m, plan.n, mt_n, nt_n,
                                              plan.mr, plan.nr, n_threads))):
            n_mt = want
        else:
            n_nt = _cdiv(want, n_mt)
    plan.mt = _round_up(_cdiv(plan.m, n_mt), plan.mr)
    plan.n_mt = _cdiv(plan.m, plan.mt)
    plan.nt = _round_up(_cdiv(plan.n, n_nt), plan.nr)
    plan.n_nt = _cdiv(plan.n, plan.nt)
    plan.nc = _min(plan.nt, nc_max)
    return 0


def _gemm_task_grid(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, int n_threads,
                    Py_ssize_t n_batch=1, Py_ssize_t itemsize=4):
    """(MT, NT, tasks along M, tasks along N) that _plan_blocks picks with the current kernel
    set (for tests and tuning; the thread count is taken as given)."""
    cdef GemmPlan plan
    _gemm_isa_sync()
    memset(&plan, 0, sizeof(plan))
    plan.n_batch, plan.m, plan.n, plan.k = n_batch, m, n, k
    plan.mr = _isa.mr_f32 if itemsize == 4 else _isa.mr_f64
    plan.nr = _isa.nr_f32 if itemsize == 4 else _isa.nr_f64
    _plan_blocks(&plan, itemsize, n_threads)
    return plan.mt, plan.nt, plan.n_mt, plan.n_nt


cdef void _pack_a(floating *dst, const floating *src, Py_ssize_t m_blk, Py_ssize_t k_blk,
                  Py_ssize_t s_m, Py_ssize_t s_k, Py_ssize_t mr) noexcept nogil:
    """dst (round_up(m_blk, mr) / mr panels of (k_blk, mr))  <-  src (m_blk, k_blk) strided."""
    cdef Py_ssize_t ip, i0, i, p, rows
    cdef floating *panel
    cdef const floating *row
    for ip in range(_cdiv(m_blk, mr)):
        i0 = ip * mr
        rows = _min(mr, m_blk - i0)
        panel = dst + i0 * k_blk                            # (k_blk, mr)
        if s_k == 1:                                        # row-major a: transpose blocks
            if floating is float:
                tga_pack_kcontig_f32(panel, src + i0 * s_m, rows, k_blk, s_m, mr)
            else:
                tga_pack_kcontig_f64(panel, src + i0 * s_m, rows, k_blk, s_m, mr)
            continue                                        # (zero-pads rows past the edge)
        else:                                               # transposed or strided a
            for p in range(k_blk):
                for i in range(rows):
                    panel[p * mr + i] = src[(i0 + i) * s_m + p * s_k]
        if rows < mr:                                       # zero rows past the edge
            for p in range(k_blk):
                for i in range(rows, mr):
                    panel[p * mr + i] = 0


cdef void _pack_b(floating *dst, const floating *src, Py_ssize_t k_blk, Py_ssize_t n_blk,
                  Py_ssize_t s_k, Py_ssize_t s_n, Py_ssize_t nr) noexcept nogil:
    """dst (round_up(n_blk, nr) / nr panels of (k_blk, nr))  <-  src (k_blk, n_blk) strided."""
    cdef Py_ssize_t jp, j0, j, p, cols
    cdef floating *panel
    cdef const floating *col
    for jp in range(_cdiv(n_blk, nr)):
        j0 = jp * nr
        cols = _min(nr, n_blk - j0)
        panel = dst + j0 * k_blk                            # (k_blk, nr)
        if s_n == 1:                                        # row-major w: copy row pieces
            for p in range(k_blk):
                for j in range(cols):
                    panel[p * nr + j] = src[p * s_k + j0 + j]
        elif s_k == 1:                                      # transposed w: transpose blocks
            if floating is float:
                tga_pack_kcontig_f32(panel, src + j0 * s_n, cols, k_blk, s_n, nr)
            else:
                tga_pack_kcontig_f64(panel, src + j0 * s_n, cols, k_blk, s_n, nr)
            continue                                        # (zero-pads columns past the edge)
        else:                                               # transposed or strided w
            for j in range(cols):
                col = src + (j0 + j) * s_n
                for p in range(k_blk):
                    panel[p * nr + j] = col[p * s_k]
        if cols < nr:                                       # zero columns past the edge
            for p in range(k_blk):
                for j in range(cols, nr):
                    panel[p * nr + j] = 0


cdef void _gemm_task(floating *c, const floating *a, const floating *w, Py_ssize_t task,
                     const GemmPlan *plan, const tga_gemm_isa_t *isa,
                     floating *abuf, floating *bbuf) noexcept nogil:
    """One output tile out[bi, i0 : i0+MT, j0 : j0+NT], all of K."""
    cdef Py_ssize_t per_matrix = plan.n_mt * plan.n_nt
    cdef Py_ssize_t bi = task // per_matrix
    cdef Py_ssize_t i0 = (task % per_matrix) // plan.n_nt * plan.mt
    cdef Py_ssize_t j0 = (task % per_matrix) % plan.n_nt * plan.nt
    cdef Py_ssize_t m_blk = _min(plan.mt, plan.m - i0)
    cdef Py_ssize_t n_task = _min(plan.nt, plan.n - j0)
    cdef Py_ssize_t mr = plan.mr, nr = plan.nr, ldc = plan.n
    cdef Py_ssize_t kp, p0, k_blk, jb, jc, n_blk, ip, jp, ir, jr
    cdef floating *c_blk
    cdef const floating *a_blk
    cdef const floating *a_pan
    cdef const floating *w_blk
    cdef const floating *b_pan
    cdef Py_ssize_t n_full, ldb
    cdef int accumulate
    cdef Py_ssize_t rows
    cdef bint half_kernel = (isa.ukr_sa_half_f32 != NULL if floating is float
                             else isa.ukr_sa_half_f64 != NULL)
    cdef Py_ssize_t m_full = m_blk // mr * mr if plan.direct_a else 0
    cdef Py_ssize_t edge_h = 0                      # height of an in-place edge panel, or 0
    cdef Py_ssize_t n_pan = _cdiv(m_blk, mr)        # MR-row panels of the task
    cdef const floating *bias = <const floating *>plan.bias    # (N,) or NULL
    cdef const floating *bias_k                     # bias in this K block (the first) or NULL
    cdef const floating *bp                         # bias of one NR-column panel
    cdef floating bias_edge[GEMM_MAX_NR]            # the last panel's, zero-padded to NR
    cdef bint epilogue = _has_epilogue(plan)
    if bias != NULL:
        _bias_edge(bias_edge, bias, plan.n, nr)
    # direct_a's edge panel (the last m_blk % MR rows) is read in place as well when one K
    # block covers K: its kernel (MR / 2 rows for a short edge, else MR) is moved up to end
    # at row m_blk, so it also recomputes a few rows of the panel above, to the same bits,
    # where packing it would copy and zero-pad. A second K block would add those rows
    # twice: then the edge is packed.
    if m_full < m_blk and plan.direct_a and plan.k <= plan.kc:
        rows = m_blk - m_full
        if 2 * rows <= mr and half_kernel and 2 * m_blk >= mr:
            edge_h = mr // 2
        elif m_blk >= mr:
            edge_h = mr
        if edge_h:
            m_full = m_blk
    for kp in range(_cdiv(plan.k, plan.kc)):
        p0 = kp * plan.kc
        k_blk = _min(plan.kc, plan.k - p0)
        accumulate = p0 > 0                                 # first K block overwrites out
        bias_k = bias if p0 == 0 else NULL                  # ... starting from the bias
        a_blk = a + bi * plan.sa_b + i0 * plan.sa_m + p0 * plan.sa_k
        # Pack (m_blk, k_blk) of a once. direct_a (row-major a, small N: the transposing copy
        # would cost as much as the products): full-height panels are read in place by the
        # strided-A kernel, only the edge panel (rows m_full..m_blk) is packed, at abuf.
        if m_full < m_blk:
            _pack_a(abuf, a_blk + m_full * plan.sa_m, m_blk - m_full, k_blk, plan.sa_m,
                    plan.sa_k, mr)
        for jb in range(_cdiv(n_task, plan.nc)):
            jc = j0 + jb * plan.nc
            n_blk = _min(plan.nc, j0 + n_task - jc)
            w_blk = w + bi * plan.sw_b + p0 * plan.sw_k + jc * plan.sw_n
            if plan.direct_b:           # small M: packing w would cost more than it saves
                n_full = n_blk // nr * nr                   # full panels read in place,
                if n_full < n_blk:                          # the edge one packed at bbuf
                    _pack_b(bbuf, w_blk + n_full, k_blk, n_blk - n_full, plan.sw_k, 1, nr)
            else:
                n_full = 0
                _pack_b(bbuf, w_blk, k_blk, n_blk, plan.sw_k, plan.sw_n,
                        nr)                                 # (k_blk, n_blk): in L2
            c_blk = c + (bi * plan.m + i0) * ldc + jc       # (m_blk, n_blk), row stride N
            for ip in range(n_pan):                         # A micro-panel stays in L1
                ir = ip * mr
                if epilogue and p0 + k_blk == plan.k and ip > 0:   # the stripe above is
                    _epilogue(c, c_blk + (ir - mr) * ldc, mr, n_blk, plan)     # final
                if ir < m_full:                             # direct_a: a in place
                    rows = mr
                    if edge_h and ip == n_pan - 1:          # the edge panel, moved up
                        rows = edge_h
                        ir = m_blk - edge_h
                    a_pan = a_blk + ir * plan.sa_m
                    for jp in range(_cdiv(n_blk, nr)):
                        jr = jp * nr
                        bp = _panel_bias(bias_k, bias_edge, jc + jr, plan.n, nr)
                        b_pan = _b_panel(w_blk, bbuf, jr, n_full, k_blk, plan.sw_k, nr, &ldb)
                        if floating is float:
                            (isa.ukr_sa_f32 if rows == mr else isa.ukr_sa_half_f32)(
                                k_blk, a_pan, plan.sa_m, plan.sa_k, b_pan, ldb,
                                c_blk + ir * ldc + jr, ldc, rows, _min(nr, n_blk - jr), bp,
                                accumulate)
                        else:
                            (isa.ukr_sa_f64 if rows == mr else isa.ukr_sa_half_f64)(
                                k_blk, a_pan, plan.sa_m, plan.sa_k, b_pan, ldb,
                                c_blk + ir * ldc + jr, ldc, rows, _min(nr, n_blk - jr), bp,
                                accumulate)
                    continue
                rows = _min(mr, m_blk - ir)
                for jp in range(_cdiv(n_blk, nr)):          # B micro-panels stream from L2
                    jr = jp * nr
                    bp = _panel_bias(bias_k, bias_edge, jc + jr, plan.n, nr)
                    if 2 * rows <= mr and half_kernel:      # short edge panel: MR/2 kernel
                        b_pan = _b_panel(w_blk, bbuf, jr, n_full, k_blk, plan.sw_k, nr, &ldb)
                        if floating is float:
                            isa.ukr_sa_half_f32(k_blk, abuf + (ir - m_full) * k_blk, 1, mr,
                                                b_pan, ldb, c_blk + ir * ldc + jr, ldc, rows,
                                                _min(nr, n_blk - jr), bp, accumulate)
                        else:
                            isa.ukr_sa_half_f64(k_blk, abuf + (ir - m_full) * k_blk, 1, mr,
                                                b_pan, ldb, c_blk + ir * ldc + jr, ldc, rows,
                                                _min(nr, n_blk - jr), bp, accumulate)
                        continue
                    if jr < n_full:                         # direct_b, a's edge panel
                        if floating is float:
                            isa.ukr_sa_f32(k_blk, abuf + (ir - m_full) * k_blk, 1, mr,
                                           w_blk + jr, plan.sw_k, c_blk + ir * ldc + jr, ldc,
                                           _min(mr, m_blk - ir), nr, bp, accumulate)
                        else:
                            isa.ukr_sa_f64(k_blk, abuf + (ir - m_full) * k_blk, 1, mr,
                                           w_blk + jr, plan.sw_k, c_blk + ir * ldc + jr, ldc,
                                           _min(mr, m_blk - ir), nr, bp, accumulate)
                        continue
                    if floating is float:
                        isa.ukr_f32(k_blk, abuf + (ir - m_full) * k_blk,
                                    bbuf + (jr - n_full) * k_blk,
                                    c_blk + ir * ldc + jr, ldc,
                                    _min(mr, m_blk - ir), _min(nr, n_blk - jr), bp, accumulate)
                    else:
                        isa.ukr_f64(k_blk, abuf + (ir - m_full) * k_blk,
                                    bbuf + (jr - n_full) * k_blk,
                                    c_blk + ir * ldc + jr, ldc,
                                    _min(mr, m_blk - ir), _min(nr, n_blk - jr), bp, accumulate)
            if epilogue and p0 + k_blk == plan.k:           # the last stripe
                ir = m_blk - edge_h if edge_h else (n_pan - 1) * mr
                _epilogue(c, c_blk + ir * ldc, m_blk - ir, n_blk, plan)


cdef inline bint _has_epilogue(const GemmPlan *plan) noexcept nogil:
    return plan.mul != NULL or plan.add != NULL or plan.gelu != 0


cdef void _epilogue(floating *c, floating *c_rows, Py_ssize_t rows, Py_ssize_t cols,
                    const GemmPlan *plan) noexcept nogil:
    """The plan's epilogue on c_rows[i, 0 : cols], i < rows (row stride N; c: out's start:
    mul, add and grad are read at c_rows' offset from it). gelu comes alone (gemm checks)."""
    cdef Py_ssize_t i, j, ldc = plan.n, off = c_rows - c
    cdef const floating *mul
    cdef const floating *add
    cdef float *grad
    cdef const tga_rm_gelu_t *vec
    if plan.mul != NULL:
        mul = <const floating *>plan.mul + off
        for i in range(rows):
            for j in range(cols):
                c_rows[i * ldc + j] = c_rows[i * ldc + j] * mul[i * ldc + j]
    if plan.add != NULL:
        add = <const floating *>plan.add + off
        for i in range(rows):
            for j in range(cols):
                c_rows[i * ldc + j] = c_rows[i * ldc + j] + add[i * ldc + j]
    if floating is float:
        if plan.gelu != 0:
            grad = <float *>plan.grad + off
            vec = <const tga_rm_gelu_t *>plan.gelu_vec
            for i in range(rows):
                vec.gelu_fwd(c_rows + i * ldc, grad + i * ldc, c_rows + i * ldc,
                             plan.gelu == 2, cols)


cdef inline const floating *_b_panel(const floating *w_blk, const floating *bbuf,
                                     Py_ssize_t jr, Py_ssize_t n_full, Py_ssize_t k_blk,
                                     Py_ssize_t sw_k, Py_ssize_t nr,
                                     Py_ssize_t *ldb) noexcept nogil:
    """The B micro-panel at column jr of the block: w in place (direct_b's full panels, row
    stride sw_k) or its packed copy in bbuf (row stride NR); its row stride goes to ldb."""
    if jr < n_full:
        ldb[0] = sw_k
        return w_blk + jr
    ldb[0] = nr
    return bbuf + (jr - n_full) * k_blk


cdef inline void _bias_edge(floating *edge, const floating *bias, Py_ssize_t n,
                            Py_ssize_t nr) noexcept nogil:
    """edge[0 : nr] = bias of the last NR-column panel, zero past column n."""
    cdef Py_ssize_t j, j0 = (n - 1) // nr * nr
    for j in range(nr):
        edge[j] = bias[j0 + j] if j0 + j < n else 0


cdef inline const floating *_panel_bias(const floating *bias, const floating *edge,
                                        Py_ssize_t col, Py_ssize_t n,
                                        Py_ssize_t nr) noexcept nogil:
    """The micro-kernel's bias for columns col : col+NR: NR readable values, or NULL."""
    if bias == NULL:
        return NULL
    return bias + col if col + nr <= n else edge


cdef inline void _fill_rows(floating *c, Py_ssize_t ldc, const floating *row, Py_ssize_t rows,
                            Py_ssize_t cols) noexcept nogil:
    """c[i, 0 : cols] = row[0 : cols] for i < rows (row stride ldc)."""
    cdef Py_ssize_t i
    for i in range(rows):
        memcpy(c + i * ldc, row, cols * sizeof(floating))


cdef int _gemm_blocked(floating *c, const floating *a, const floating *w, GemmPlan *plan,
                       const tga_gemm_isa_t *isa, int n_threads) noexcept nogil:
    """Run every task; returns the number of threads that could not allocate scratch."""
    cdef Py_ssize_t n_tasks = plan.n_batch * plan.n_mt * plan.n_nt
    cdef Py_ssize_t task
    cdef floating *abuf = NULL      # thread-private, set inside the parallel block
    cdef floating *bbuf = NULL
    cdef int n_failed = 0
    if n_tasks < n_threads:
        n_threads = <int>n_tasks
    with parallel(num_threads=n_threads):
        # per-thread packing buffers: (MT, KC) of A and (KC, NC) of B
        abuf = <floating *>tga_aligned_malloc(plan.mt * plan.kc * sizeof(floating))
        bbuf = <floating *>tga_aligned_malloc(plan.kc * plan.nc * sizeof(floating))
        for task in prange(n_tasks, schedule="static"):
            if abuf != NULL and bbuf != NULL:
                _gemm_task(c, a, w, task, plan, isa, abuf, bbuf)
            else:
                n_failed += 1
        tga_aligned_free(abuf)
        tga_aligned_free(bbuf)
    return n_failed


cdef object _gemm_run(floating *c, const floating *a, const floating *w, GemmPlan *plan,
                      int n_threads):
    """c (Bt, M, N) contiguous  <-  a @ w, from a plan with its shape and strides filled in."""
    cdef tga_gemm_isa_t isa = _isa
    cdef Py_ssize_t item = sizeof(floating)
    cdef Py_ssize_t i
    cdef int n_failed
    if plan.n_batch == 0 or plan.m == 0 or plan.n == 0:
        return
    if plan.k == 0:                                     # empty sum: bias (or 0) alone
        with nogil:
            if plan.bias != NULL:
                _fill_rows(c, plan.n, <const floating *>plan.bias, plan.n_batch * plan.m,
                           plan.n)
            else:
                for i in range(plan.n_batch * plan.m * plan.n):
                    c[i] = 0
            if _has_epilogue(plan):
                _epilogue(c, c, plan.n_batch * plan.m, plan.n, plan)
        return
    plan.mr = isa.mr_f32 if floating is float else isa.mr_f64
    plan.nr = isa.nr_f32 if floating is float else isa.nr_f64
    n_threads = resolve_threads(n_threads, 2.0 * plan.n_batch * plan.m * plan.n * plan.k,
                                 GEMM_MIN_FLOPS_PER_THREAD)
    _plan_blocks(plan, item, n_threads)
    with nogil:
        plan.direct_a = ((plan.sa_k == 1 or plan.sa_m == 1) and plan.n <= DIRECT_A_MAX_N
                         and plan.m >= plan.mr
                         and (isa.ukr_sa_f32 != NULL if floating is float
                              else isa.ukr_sa_f64 != NULL))
        plan.direct_b = (plan.direct_a and plan.sw_n == 1 and plan.m <= DIRECT_B_MAX_M
                         and plan.n <= 256)
        n_failed = _gemm_blocked(c, a, w, plan, &isa, n_threads)
    if n_failed:
        raise MemoryError(f"gemm: could not allocate packing buffers "
                          f"({plan.mt}x{plan.kc} and {plan.kc}x{plan.nc} per thread)")


cdef object _gemm_typed(floating[:, :, ::1] out,          # OUT (Bt, M, N)
                        const floating[:, :, :] a,        # IN  (Bt, M, K)
                        const floating[:, :, :] w,        # IN  (Bt, K, N)
                        const floating[::1] bias,         # IN  (N,) or None
                        const floating[:, :, ::1] mul,    # IN  (Bt, M, N) or None
                        const floating[:, :, ::1] add,    # IN  (Bt, M, N) or None
                        int n_threads,
                        float[:, :, ::1] grad=None,       # OUT (Bt, M, N), with gelu
                        int gelu=0):
    cdef GemmPlan plan
    cdef Py_ssize_t item = sizeof(floating)
    _gemm_check_views("gemm", out, a, w)
    plan.n_batch = out.shape[0]
    plan.m = out.shape[1]
    plan.n = out.shape[2]
    plan.k = a.shape[2]
    if plan.n_batch == 0 or plan.m == 0 or plan.n == 0:
        return
    plan.bias = NULL
    if bias is not None:
        plan.bias = &bias[0]
    plan.mul = NULL
    if mul is not None:
        plan.mul = &mul[0, 0, 0]
    plan.add = NULL
    if add is not None:
        plan.add = &add[0, 0, 0]
    plan.gelu = gelu
    if gelu:
        plan.grad = &grad[0, 0, 0]
        rows_isa_sync()
        plan.gelu_vec = tga_rm_gelu_for(tga_rm.isa)
    plan.sa_b = a.strides[0] // item
    plan.sa_m = a.strides[1] // item
    plan.sa_k = a.strides[2] // item
    plan.sw_b = w.strides[0] // item
    plan.sw_k = w.strides[1] // item
    plan.sw_n = w.strides[2] // item
    _gemm_run(&out[0, 0, 0], &a[0, 0, 0] if plan.k else <const floating *>NULL,
              &w[0, 0, 0] if plan.k else <const floating *>NULL, &plan, n_threads)


# Fast path of gemm(): the common case (three aligned native-order float arrays, 3-D, matching
# shapes, C-contiguous writeable out, no overlap, nothing empty) is recognised with the numpy
# C API, without acquiring typed memoryviews; anything else takes the checked path (typed
# memoryviews, Python-level checks with the error messages), which costs more.
cdef bint _gemm_fast_plan(cnp.ndarray out, cnp.ndarray a, cnp.ndarray b,
                          GemmPlan *plan) noexcept:
    cdef int t = cnp.PyArray_TYPE(out)
    cdef Py_ssize_t item
    cdef cnp.npy_intp *so
    cdef cnp.npy_intp *sa
    cdef cnp.npy_intp *sb
    cdef cnp.npy_intp *da
    cdef cnp.npy_intp *db
    cdef cnp.npy_intp *do
    cdef const char *out_lo
    cdef const char *out_hi
    cdef const char *lo
    cdef const char *hi
    cdef int d
    if t != cnp.NPY_FLOAT and t != cnp.NPY_DOUBLE:
        return False
    if cnp.PyArray_TYPE(a) != t or cnp.PyArray_TYPE(b) != t:
        return False
    if cnp.PyArray_NDIM(out) != 3 or cnp.PyArray_NDIM(a) != 3 or cnp.PyArray_NDIM(b) != 3:
        return False
    if not (cnp.PyArray_ISNOTSWAPPED(out) and cnp.PyArray_ISNOTSWAPPED(a)
            and cnp.PyArray_ISNOTSWAPPED(b) and cnp.PyArray_ISALIGNED(a)
            and cnp.PyArray_ISALIGNED(b) and cnp.PyArray_ISALIGNED(out)
            and cnp.PyArray_IS_C_CONTIGUOUS(out) and cnp.PyArray_ISWRITEABLE(out)):
        return False
    do = cnp.PyArray_DIMS(out)
    da = cnp.PyArray_DIMS(a)
    db = cnp.PyArray_DIMS(b)
    if (da[2] != db[1] or da[0] != db[0] or do[0] != da[0] or do[1] != da[1]
            or do[2] != db[2]):
        return False
    if do[0] == 0 or do[1] == 0 or do[2] == 0 or da[2] == 0:
        return False
    item = 4 if t == cnp.NPY_FLOAT else 8
    sa = cnp.PyArray_STRIDES(a)
    sb = cnp.PyArray_STRIDES(b)
    so = cnp.PyArray_STRIDES(out)
    for d in range(3):
        if sa[d] % item or sb[d] % item:
            return False
    byte_extent(<const char *>cnp.PyArray_DATA(out), <Py_ssize_t *>do, <Py_ssize_t *>so, 3, item,
            &out_lo, &out_hi)
    byte_extent(<const char *>cnp.PyArray_DATA(a), <Py_ssize_t *>da, <Py_ssize_t *>sa, 3, item,
            &lo, &hi)
    if lo < out_hi and out_lo < hi:
        return False
    byte_extent(<const char *>cnp.PyArray_DATA(b), <Py_ssize_t *>db, <Py_ssize_t *>sb, 3, item,
            &lo, &hi)
    if lo < out_hi and out_lo < hi:
        return False
    plan.n_batch = do[0]
    plan.m = do[1]
    plan.n = do[2]
    plan.k = da[2]
    plan.sa_b = sa[0] // item
    plan.sa_m = sa[1] // item
    plan.sa_k = sa[2] // item
    plan.sw_b = sb[0] // item
    plan.sw_k = sb[1] // item
    plan.sw_n = sb[2] // item
    plan.bias = NULL
    plan.mul = NULL
    plan.add = NULL
    plan.gelu = 0
    return True


cdef object _gemm_gelu(out, a, b, int n_threads, bias, mul, add, gelu, grad):
    """gemm with its GELU epilogue: checked, then run (the typed path)."""
    dtype = _check_gemm("gemm", out, a, b)
    _check_operand("gemm", "bias", bias, (out.shape[2],), out, dtype)
    if gelu not in ("none", "tanh"):
        raise ValueError(f"gemm: gelu must be None, 'none' or 'tanh', got {gelu!r}")
    if dtype != np.float32:
        raise TypeError(f"gemm: the gelu epilogue is float32 only, got {dtype} (run "
                        f"_elementwise.gelu_fwd on the product instead)")
    if mul is not None or add is not None:
        raise ValueError("gemm: pass mul / add or gelu, not both")
    if grad is None:
        raise ValueError("gemm: gelu needs grad, an output shaped like out")
    _check_operand("gemm", "grad", grad, out.shape, out, dtype)
    check_out("gemm", "grad", grad)
    for name, arr in (("a", a), ("b", b)):            # written while a and b are read
        if np.may_share_memory(grad, arr):
            raise ValueError(f"gemm: grad {grad.shape} overlaps {name} {arr.shape}")
    _gemm_typed[float](out, a, b, bias, None, None, n_threads, grad, 2 if gelu == "tanh" else 1)


cdef bint _gemm_fast_operand(object arr, cnp.ndarray out, const GemmPlan *plan,
                             bint like_out, const void **data) noexcept:
    """The fast path's test of bias (like_out False: shaped (N,)) or mul / add (like_out:
    out's shape): an exact ndarray, aligned native C-contiguous, out's dtype, apart from out;
    its data goes to *data."""
    cdef cnp.ndarray x
    cdef cnp.npy_intp *dims
    cdef const char *lo
    cdef const char *out_lo = <const char *>cnp.PyArray_DATA(out)
    cdef Py_ssize_t item = cnp.PyArray_ITEMSIZE(out)
    cdef Py_ssize_t out_bytes = plan.n_batch * plan.m * plan.n * item   # out is C-contiguous
    cdef Py_ssize_t n_bytes = out_bytes if like_out else plan.n * item
    cdef int ndim = 3 if like_out else 1
    if type(arr) is not np.ndarray:
        return False
    x = <cnp.ndarray>arr
    dims = cnp.PyArray_DIMS(x)
    if (cnp.PyArray_TYPE(x) != cnp.PyArray_TYPE(out) or cnp.PyArray_NDIM(x) != ndim
            or dims[ndim - 1] != plan.n
            or (like_out and (dims[0] != plan.n_batch or dims[1] != plan.m))
            or not cnp.PyArray_IS_C_CONTIGUOUS(x) or not cnp.PyArray_ISALIGNED(x)
            or not cnp.PyArray_ISNOTSWAPPED(x)):
        return False
    lo = <const char *>cnp.PyArray_DATA(x)
    if lo < out_lo + out_bytes and out_lo < lo + n_bytes:
        return False
    data[0] = <const void *>lo
    return True


cdef object _check_operand(str fn, str name, object arr, tuple shape, object out,
                           object dtype):
    """arr (bias, mul, add, grad): None, or a C-contiguous array of out's dtype, shaped
    `shape`, apart from out."""
    if arr is None:
        return
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{fn}: {name} must be a numpy.ndarray or None, got "
                        f"{type(arr).__name__}")
    if arr.dtype != dtype:
        raise TypeError(f"{fn}: {name} dtype {arr.dtype} differs from out's {dtype}")
    if arr.shape != shape:
        raise ValueError(f"{fn}: {name} {arr.shape} should be {shape} for out {out.shape}")
    if not arr.flags.c_contiguous:
        raise ValueError(f"{fn}: {name} {arr.shape} must be C-contiguous (strides "
                         f"{arr.strides})")
    if np.may_share_memory(arr, out):
        raise ValueError(f"{fn}: {name} {arr.shape} overlaps out {out.shape}")


cdef object _check_gemm(str fn, object out, object a, object b):
    dtype = check_dtypes(fn, ("out", "a", "b"), (out, a, b))
    for name, arr in (("out", out), ("a", a), ("b", b)):
        if arr.ndim != 3:
            raise ValueError(f"{fn}: {name} must be 3-D (batch, rows, cols), got shape "
                             f"{arr.shape}")
    if a.shape[2] != b.shape[1]:
        raise ValueError(f"{fn}: a {a.shape} and b {b.shape} are not aligned "
                         f"({a.shape[2]} != {b.shape[1]})")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"{fn}: a {a.shape} and b {b.shape} have different batch sizes "
                         f"({a.shape[0]} != {b.shape[0]})")
    expected = (a.shape[0], a.shape[1], b.shape[2])
    if out.shape != expected:
        raise ValueError(f"{fn}: out {out.shape} should be {expected} for a {a.shape} "
                         f"@ b {b.shape}")
    check_out(fn, "out", out)
    return dtype                # strides and overlap: checked in C by _gemm_check_views


def gemm(out, a, b, int n_threads=0, bias=None, mul=None, add=None, gelu=None, grad=None):
    """out[b, i, j] = (bias[j] + sum_k a[b, i, k] * b[b, k, j]) * mul[b, i, j] + add[b, i, j];
    overwrites out.

    Args:
        out: OUT (Bt, M, N), C-contiguous, same dtype as a and b (float32 or float64).
        a: IN (Bt, M, K), any strides (transposed views, broadcast batch with stride 0).
        b: IN (Bt, K, N), any strides.
        n_threads: OpenMP threads; < 1 means effective_n_threads(). Small products use one.
        bias: IN None (no bias: 0) or (N,) C-contiguous, same dtype, not overlapping out;
            added inside the GEMM (a Linear layer's bias), K == 0 gives bias in every row.
        mul: IN None (no factor) or (Bt, M, N) C-contiguous like out, not overlapping it:
            multiplies each finished stripe of out in cache (GELU's derivative, for one).
        add: IN None or (Bt, M, N) like mul: added to each finished stripe (after mul; a
            residual stream).
        gelu: None, or "none" (exact) / "tanh": out = gelu(h), h the product (+ bias), and
            grad = gelu'(h), each stripe in cache (float32 only; not with mul or add).
        grad: OUT with gelu: (Bt, M, N) C-contiguous like out, apart from out, a and b.
    """
    cdef GemmPlan plan
    _gemm_isa_sync()
    if gelu is not None or grad is not None:
        _gemm_gelu(out, a, b, n_threads, bias, mul, add, gelu, grad)
        return
    if (type(out) is np.ndarray and type(a) is np.ndarray and type(b) is np.ndarray
            and _gemm_fast_plan(out, a, b, &plan)
            and (bias is None or _gemm_fast_operand(bias, out, &plan, False, &plan.bias))
            and (mul is None or _gemm_fast_operand(mul, out, &plan, True, &plan.mul))
            and (add is None or _gemm_fast_operand(add, out, &plan, True, &plan.add))):
        if cnp.PyArray_TYPE(out) == cnp.NPY_FLOAT:
            _gemm_run(<float *>cnp.PyArray_DATA(out), <const float *>cnp.PyArray_DATA(a),
                      <const float *>cnp.PyArray_DATA(b), &plan, n_threads)
        else:
            _gemm_run(<double *>cnp.PyArray_DATA(out), <const double *>cnp.PyArray_DATA(a),
                      <const double *>cnp.PyArray_DATA(b), &plan, n_threads)
        return
    dtype = _check_gemm("gemm", out, a, b)
    _check_operand("gemm", "bias", bias, (out.shape[2],), out, dtype)
    _check_operand("gemm", "mul", mul, out.shape, out, dtype)
    _check_operand("gemm", "add", add, out.shape, out, dtype)
    if dtype == np.float32:
        _gemm_typed[float](out, a, b, bias, mul, add, n_threads)
    else:
        _gemm_typed[double](out, a, b, bias, mul, add, n_threads)


cdef void _gemm_naive_typed(floating[:, :, ::1] out,      # OUT (Bt, M, N)
                            const floating[:, :, :] a,    # IN  (Bt, M, K)
                            const floating[:, :, :] w,    # IN  (Bt, K, N)
                            const floating *bias          # IN  (N,) or NULL
                            ) noexcept nogil:
    # out[b, i, j] = bias[j] + sum_k a[b, i, k] * w[b, k, j], one dot product per element
    cdef Py_ssize_t b, i, j, p
    cdef floating acc
    for b in range(out.shape[0]):
        for i in range(out.shape[1]):
            for j in range(out.shape[2]):
                acc = 0
                for p in range(a.shape[2]):
                    acc = acc + a[b, i, p] * w[b, p, j]
                out[b, i, j] = acc if bias == NULL else bias[j] + acc


def gemm_naive(out, a, b, bias=None):
    """The triple loop: same contract as gemm, single-threaded; the reference and oracle."""
    dtype = _check_gemm("gemm_naive", out, a, b)
    _check_operand("gemm_naive", "bias", bias, (out.shape[2],), out, dtype)
    if dtype == np.float32:
        _gemm_naive_call[float](out, a, b, bias)
    else:
        _gemm_naive_call[double](out, a, b, bias)


cdef object _gemm_naive_call(floating[:, :, ::1] out, const floating[:, :, :] a,
                             const floating[:, :, :] w, const floating[::1] bias):
    cdef const floating *bias_ptr = NULL
    _gemm_check_views("gemm_naive", out, a, w)
    if bias is not None and bias.shape[0] > 0:
        bias_ptr = &bias[0]
    with nogil:
        _gemm_naive_typed(out, a, w, bias_ptr)


# ==============================================================================================
# softmax and log-softmax over the last axis
#
#   for i in rows (parallel, static: each thread owns whole rows):
#     m     = max_j x[i, j]                                  (double)
#     s     = sum_j exp(x[i, j] - m)                         (double)
#     softmax:      out[i, j] = exp(x[i, j] - m) / s
#     log_softmax:  out[i, j] = x[i, j] - m - log(s)
#   backward, from the saved output y:
#     softmax:      dx[i, j] = y[i, j] * (dout[i, j] - sum_j dout[i, j] * y[i, j])
#     log_softmax:  dx[i, j] = dout[i, j] - exp(y[i, j]) * sum_j dout[i, j]
#
# Shifting by the row max keeps exp() <= 1: huge logits (1e30) cannot overflow; -inf entries
# give exp(-inf) = 0, and an all -inf row gives NaN (-inf - -inf), as in PyTorch.
# Row statistics accumulate in double for either dtype. float64 rows use the C library's exp
# and log (exact to float64 rounding); float32 rows use the vectorised float32 exp of
# _elementwise_kernel.h (~1 ulp, as torch's Sleef exp), the max and sums in 16 lanes, the
# row primitives of _rows_kernel.h, in the "rows" family's ISA. The row is read twice (max,
# then exp + sum); the second read hits L1 for rows up to a few thousand entries. Two threads
# from 16K elements a thread (below, the fork/join costs more than the second core gives).
# out may be the same array as an input (each element is read before it is written).
# ==============================================================================================

cdef void _softmax_rows(floating *y, const floating *x, Py_ssize_t n_rows,
                        Py_ssize_t n) noexcept nogil:
    """n_rows consecutive rows of n entries (row stride n)."""
    cdef Py_ssize_t i, j
    cdef double row_max, total, e
    if floating is float:
        tga_rm.softmax_rows(y, x, n_rows, n)    # short rows: in pairs, in registers
        return
    for i in range(n_rows):
        row_max = x[0]
        total = 0.0
        for j in range(1, n):
            if x[j] > row_max:
                row_max = x[j]
        for j in range(n):
            e = exp(<double>x[j] - row_max)     # shifted by the max: cannot overflow
            y[j] = <floating>e
            total += e
        for j in range(n):
            y[j] = <floating>(y[j] / total)
        x += n
        y += n


cdef void _log_softmax_row(floating *y, const floating *x, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    cdef double row_max = x[0], total = 0.0, log_total
    cdef float m32
    if floating is float:
        m32 = tga_rm.max(x, n)
        total = tga_rm.exp_sum(NULL, x, m32, n)
        tga_rm.shift(y, x, m32, <float>log(total), n)     # y = (x - max) - log(total)
        return
    for j in range(1, n):
        if x[j] > row_max:
            row_max = x[j]
    for j in range(n):
        total += exp(<double>x[j] - row_max)
    log_total = log(total)                      # row log-sum-exp = row_max + log_total
    for j in range(n):
        y[j] = <floating>((<double>x[j] - row_max) - log_total)


cdef void _softmax_bwd_rows(floating *dx, const floating *y, const floating *dout,
                            Py_ssize_t n_rows, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef double dot
    if floating is float:
        tga_rm.softmax_bwd_rows(dx, y, dout, n_rows, n)
        return
    for i in range(n_rows):
        dot = 0.0
        for j in range(n):
            dot += <double>dout[j] * y[j]
        for j in range(n):
            dx[j] = <floating>(y[j] * (dout[j] - dot))
        dx += n
        y += n
        dout += n


cdef void _log_softmax_bwd_row(floating *dx, const floating *y, const floating *dout,
                               Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    cdef double total = 0.0
    if floating is float:
        tga_rm.log_softmax_bwd(dx, y, dout, <float>tga_rm.sum(dout, 0.0, n), n)
        return
    for j in range(n):
        total += dout[j]
    for j in range(n):
        dx[j] = <floating>(dout[j] - exp(<double>y[j]) * total)


cdef object _check_rows(str fn, tuple names, tuple arrays):
    """2-D, same shape, same float dtype, C-contiguous; out (first) writable; exact aliasing."""
    dtype = check_dtypes(fn, names, arrays)
    shape = arrays[0].shape
    for name, arr in zip(names, arrays):
        if arr.ndim != 2:
            raise ValueError(f"{fn}: {name} must be 2-D (rows, cols), got shape {arr.shape}")
        if arr.shape != shape:
            listed = ", ".join(f"{n} {x.shape}" for n, x in zip(names, arrays))
            raise ValueError(f"{fn}: shapes differ: {listed}")
        if not arr.flags.c_contiguous:
            raise ValueError(f"{fn}: {name} {arr.shape} must be C-contiguous (strides "
                             f"{arr.strides})")
    check_out(fn, names[0], arrays[0])
    for name, arr in zip(names[1:], arrays[1:]):
        check_same_or_apart(fn, names[0], arrays[0], name, arr)
    return dtype


cdef int _rows_fast(object out, object a, object b) noexcept:
    """The common call of the softmax family, tested with the numpy C API (no typed memoryview
    to acquire): exact ndarrays of one native float type, 2-D, one shape, C-contiguous, aligned,
    out writeable, each input the very memory of out or apart from it. Returns the numpy
    type number, or -1: then _check_rows decides (and raises its descriptive errors)."""
    cdef cnp.ndarray o, x
    cdef object arr
    cdef int t
    cdef Py_ssize_t n_bytes
    cdef const char *lo
    cdef const char *out_lo
    if type(out) is not np.ndarray:
        return -1
    o = <cnp.ndarray>out
    t = cnp.PyArray_TYPE(o)
    if ((t != cnp.NPY_FLOAT and t != cnp.NPY_DOUBLE) or cnp.PyArray_NDIM(o) != 2
            or not cnp.PyArray_IS_C_CONTIGUOUS(o) or not cnp.PyArray_ISWRITEABLE(o)
            or not cnp.PyArray_ISALIGNED(o) or not cnp.PyArray_ISNOTSWAPPED(o)):
        return -1
    out_lo = <const char *>cnp.PyArray_DATA(o)
    n_bytes = cnp.PyArray_NBYTES(o)
    for arr in (a, b):
        if arr is None:
            continue
        if type(arr) is not np.ndarray:
            return -1
        x = <cnp.ndarray>arr
        if (cnp.PyArray_TYPE(x) != t or cnp.PyArray_NDIM(x) != 2
                or cnp.PyArray_DIMS(x)[0] != cnp.PyArray_DIMS(o)[0]
                or cnp.PyArray_DIMS(x)[1] != cnp.PyArray_DIMS(o)[1]
                or not cnp.PyArray_IS_C_CONTIGUOUS(x) or not cnp.PyArray_ISALIGNED(x)
                or not cnp.PyArray_ISNOTSWAPPED(x)):
            return -1
        lo = <const char *>cnp.PyArray_DATA(x)
        if lo != out_lo and lo < out_lo + n_bytes and out_lo < lo + n_bytes:
            return -1                                   # partial overlap: the error path
    return t


cdef object _rows(str fn, tuple names, int kind, object out, object a, object b,
                  int n_threads):
    """Check, then run the softmax family over rows: kind 0 softmax, 1 log-softmax; b None:
    the forward (out, x), else the backward (dx, y, dout)."""
    cdef int t = _rows_fast(out, a, b)
    if t < 0:
        dtype = _check_rows(fn, names, (out, a) if b is None else (out, a, b))
        t = cnp.NPY_FLOAT if dtype == np.float32 else cnp.NPY_DOUBLE
    cdef Py_ssize_t n_rows = cnp.PyArray_DIMS(<cnp.ndarray>out)[0]
    cdef Py_ssize_t n_cols = cnp.PyArray_DIMS(<cnp.ndarray>out)[1]
    if n_rows == 0 or n_cols == 0:
        return
    rows_isa_sync()
    n_threads = resolve_threads(n_threads, <double>n_rows * n_cols, ROW_MIN_ELEMS_PER_THREAD)
    if t == cnp.NPY_FLOAT:
        _rows_run(kind, <float *>cnp.PyArray_DATA(<cnp.ndarray>out),
                  <const float *>cnp.PyArray_DATA(<cnp.ndarray>a),
                  <const float *>(NULL if b is None else cnp.PyArray_DATA(<cnp.ndarray>b)),
                  n_rows, n_cols, n_threads)
    else:
        _rows_run(kind, <double *>cnp.PyArray_DATA(<cnp.ndarray>out),
                  <const double *>cnp.PyArray_DATA(<cnp.ndarray>a),
                  <const double *>(NULL if b is None else cnp.PyArray_DATA(<cnp.ndarray>b)),
                  n_rows, n_cols, n_threads)


cdef void _rows_run(int kind, floating *out, const floating *a, const floating *b,
                    Py_ssize_t n_rows, Py_ssize_t n_cols, int n_threads) noexcept nogil:
    """(N, C) row-major arrays: forward out <- a when b is NULL, else dx (out) <- y (a),
    dout (b); softmax rows two at a time (see _softmax_rows)."""
    cdef Py_ssize_t i, p, o
    if kind == 0 and b == NULL:
        for p in prange((n_rows + 1) // 2, schedule="static", num_threads=n_threads):
            o = 2 * p * n_cols
            _softmax_rows(out + o, a + o, min(2, n_rows - 2 * p), n_cols)
    elif kind == 0:
        for p in prange((n_rows + 1) // 2, schedule="static", num_threads=n_threads):
            o = 2 * p * n_cols
            _softmax_bwd_rows(out + o, a + o, b + o, min(2, n_rows - 2 * p), n_cols)
    elif b == NULL:
        for i in prange(n_rows, schedule="static", num_threads=n_threads):
            _log_softmax_row(out + i * n_cols, a + i * n_cols, n_cols)
    else:
        for i in prange(n_rows, schedule="static", num_threads=n_threads):
            _log_softmax_bwd_row(out + i * n_cols, a + i * n_cols, b + i * n_cols, n_cols)


def softmax_fwd(out, x, int n_threads=0):
    """out = softmax(x) over the last axis (torch.softmax(x, -1)).

    Args:
        out: OUT (N, C) C-contiguous (may be x itself).
        x: IN (N, C) C-contiguous, float32 or float64.
        n_threads: OpenMP threads over rows; < 1 means effective_n_threads().
    """
    _rows("softmax_fwd", ("out", "x"), 0, out, x, None, n_threads)


def softmax_bwd(dx, y, dout, int n_threads=0):
    """dx = y * (dout - sum_j dout * y), y = softmax output; all (N, C) C-contiguous."""
    _rows("softmax_bwd", ("dx", "y", "dout"), 0, dx, y, dout, n_threads)


def log_softmax_fwd(out, x, int n_threads=0):
    """out = x - max - log(sum exp(x - max)) over the last axis (torch.log_softmax(x, -1))."""
    _rows("log_softmax_fwd", ("out", "x"), 1, out, x, None, n_threads)


def log_softmax_bwd(dx, y, dout, int n_threads=0):
    """dx = dout - exp(y) * sum_j dout, y = log_softmax output; all (N, C) C-contiguous."""
    _rows("log_softmax_bwd", ("dx", "y", "dout"), 1, dx, y, dout, n_threads)


# ==============================================================================================
# column sum (a Linear layer's bias gradient)
#
#   for c in row chunks of COLSUM_ROWS (parallel, static):     # chunking depends on M only
#     part[c, j] = sum_{i in chunk c, in order} x[i, j]
#   out[j] = sum_c part[c, j]   (chunks in order)
#
# Parallel axis: fixed row chunks, each thread reading whole contiguous rows (numpy's
# np.add.reduce(x, axis=0) is the same row-by-row sum on one thread). Chunks are fixed by M
# alone and combined in chunk order, so the result is the same bit for bit on any thread
# count. Two-level sums also round better than one running sum over all M rows (error
# ~ (COLSUM_ROWS + M / COLSUM_ROWS) ulps, not M). Within a chunk the sums run over column
# blocks of COLSUM_COLS kept in a local accumulator (the compiler vectorises the j loop),
# the input dtype throughout (float32 stays float32, as GEMM).
# Threads from COLSUM_MIN_ELEMS_PER_THREAD (64 Ki elements) each: below that a second thread
# does not pay for its start.
# ==============================================================================================

DEF COLSUM_COLS = 64
cdef Py_ssize_t COLSUM_ROWS = 64


cdef void _colsum_chunk(floating *part, const floating *x, Py_ssize_t rows,
                        Py_ssize_t n) noexcept nogil:
    """part[j] = sum_{i < rows} x[i * n + j], rows in order; rows >= 1."""
    cdef Py_ssize_t i, j, j0
    cdef floating acc[COLSUM_COLS]
    cdef const floating *row
    for j0 in range(0, n - COLSUM_COLS + 1, COLSUM_COLS):     # full blocks: constant width
        row = x + j0
        for j in range(COLSUM_COLS):
            acc[j] = row[j]
        for i in range(1, rows):
            row = x + i * n + j0
            for j in range(COLSUM_COLS):
                acc[j] = acc[j] + row[j]
        for j in range(COLSUM_COLS):
            part[j0 + j] = acc[j]
    j0 = n // COLSUM_COLS * COLSUM_COLS                         # the narrow right edge
    if j0 < n:
        for j in range(j0, n):
            part[j] = x[j]
        for i in range(1, rows):
            row = x + i * n
            for j in range(j0, n):
                part[j] = part[j] + row[j]


cdef object _colsum_typed(floating[::1] out, const floating[:, ::1] x, int n_threads):
    cdef Py_ssize_t m = x.shape[0], n = x.shape[1]
    cdef Py_ssize_t n_chunks = _cdiv(m, COLSUM_ROWS)
    cdef Py_ssize_t c, j, i0
    cdef floating *part
    cdef floating total
    if n == 0:
        return
    if m == 0:
        out[:] = 0
        return
    if n_chunks == 1:
        with nogil:
            _colsum_chunk(&out[0], &x[0, 0], m, n)
        return
    part = <floating *>tga_aligned_malloc(n_chunks * n * sizeof(floating))   # (n_chunks, N)
    if part == NULL:
        raise MemoryError(f"column_sum: could not allocate {n_chunks}x{n} partial sums")
    n_threads = resolve_threads(n_threads, <double>m * n, COLSUM_MIN_ELEMS_PER_THREAD)
    try:
        for c in prange(n_chunks, nogil=True, schedule="static", num_threads=n_threads):
            i0 = c * COLSUM_ROWS
            _colsum_chunk(part + c * n, &x[i0, 0], _min(COLSUM_ROWS, m - i0), n)
        with nogil:
            for j in range(n):
                out[j] = part[j]
            for c in range(1, n_chunks):            # chunk order: any thread count agrees
                for j in range(n):
                    out[j] = out[j] + part[c * n + j]
    finally:
        tga_aligned_free(part)


def column_sum(out, x, int n_threads=0):
    """out[j] = sum_i x[i, j] (np.sum(x, axis=0)); same result for any n_threads.

    Args:
        out: OUT (N,) C-contiguous, same dtype as x (float32 or float64).
        x: IN (M, N) C-contiguous. M == 0 gives zeros.
        n_threads: OpenMP threads over row chunks; < 1 means effective_n_threads().
    """
    dtype = check_dtypes("column_sum", ("out", "x"), (out, x))
    if x.ndim != 2:
        raise ValueError(f"column_sum: x must be 2-D (rows, cols), got shape {x.shape}")
    if out.shape != (x.shape[1],):
        raise ValueError(f"column_sum: out {out.shape} should be ({x.shape[1]},) for x {x.shape}")
    if not x.flags.c_contiguous:
        raise ValueError(f"column_sum: x {x.shape} must be C-contiguous (strides {x.strides})")
    check_out("column_sum", "out", out)
    check_apart("column_sum", ("out",), (out,), ("x",), (x,))
    if dtype == np.float32:
        _colsum_typed[float](out, x, n_threads)
    else:
        _colsum_typed[double](out, x, n_threads)
