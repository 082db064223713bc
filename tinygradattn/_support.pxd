# cython: language_level=3
"""The support layer every kernel module cimports (``from ._support cimport ...``).

Declared here, defined once in _support.pyx (the process-wide state lives there and nowhere
else): the thread count (set_num_threads, $OMP_NUM_THREADS, OpenMP's default), the ISA level
of each kernel family (tinygradattn.backend.isa, $TGA_ISA_<FAMILY>, $TGA_ISA), the array
checks (check_arrays and its error path, check_dtypes, check_out, check_same_or_apart,
check_apart, check_strided), the _set_tuning argument check (tuning_value). Inline here,
compiled into each module: the thread resolver, the byte-extent overlap test; C helpers come
from _support.h (OpenMP queries, aligned scratch) and _cpu_features.h (the CPU probe).
"""
cimport numpy as cnp

cdef extern from "_support.h" nogil:
    int tga_openmp_enabled() noexcept
    int tga_omp_max_threads() noexcept
    void *tga_aligned_malloc(size_t n_bytes) noexcept
    void tga_aligned_free(void *p) noexcept

cdef extern from "_cpu_features.h" nogil:
    int TGA_ISA_GENERIC
    int TGA_ISA_AVX2
    int TGA_ISA_AVX512
    int TGA_N_ISA_LEVELS
    const char *tga_isa_names[]
    int tga_cpu_supports_isa(int level) noexcept

# The kernel families, indices into _support's ISA state (names in _support.FAMILIES).
cdef enum:
    FAMILY_GEMM = 0
    FAMILY_ROWS = 1             # softmax family, layer norm, cross-entropy, GELU vector math
    FAMILY_ATTENTION = 2
    FAMILY_OPTIM = 3
    N_FAMILIES = 4

# ---- defined in _support.pyx --------------------------------------------------------------
cdef int default_n_threads() noexcept nogil         # effective_n_threads(), from C
cdef int isa_level(int family) noexcept nogil       # TGA_ISA_* level the family runs
cdef object check_dtypes(str fn, tuple names, tuple arrays)
cdef object check_out(str fn, str name, object out)
cdef object check_same_or_apart(str fn, str out_name, object out, str name, object arr)
cdef object check_apart(str fn, tuple out_names, tuple outs, tuple in_names, tuple ins,
                        tuple may_alias=*)
cdef object check_arrays(str fn, tuple names, tuple arrays, tuple shapes, int n_out)
cdef object tuning_value(str fn, str name, object value, double lo, double hi, bint integer)
cdef object check_strided(str fn, tuple names, tuple arrays, tuple shapes)
cdef object check_fail(str fn, tuple names, tuple arrays, tuple shapes, int n_out,
                       bint c_order=*)


# ---- inline -------------------------------------------------------------------------------
cdef inline int resolve_threads(int n_threads, double work,
                                double min_work_per_thread) noexcept nogil:
    """n_threads (or the default when < 1), capped so each thread gets min_work_per_thread.

    A threshold <= 0 (tests, to force threads on small work) caps nothing; 1 when built
    without OpenMP.
    """
    cdef int nt = n_threads if n_threads >= 1 else default_n_threads()
    cdef double by_work
    if not tga_openmp_enabled():
        return 1
    if min_work_per_thread > 0:
        # NOTE: compared as doubles: work / 0 was inf, and <int>inf is INT_MIN (one thread)
        by_work = work / min_work_per_thread
        if by_work < nt:
            nt = <int>by_work
    return nt if nt >= 1 else 1


cdef inline void byte_extent(const char *base, const Py_ssize_t *shape,
                             const Py_ssize_t *strides, int ndim, Py_ssize_t itemsize,
                             const char **lo, const char **hi) noexcept nogil:
    """[lo, hi): the bytes a strided array touches (lo == hi when it is empty)."""
    cdef Py_ssize_t below = 0, above = 0
    cdef int d
    for d in range(ndim):
        if shape[d] == 0:
            lo[0] = hi[0] = base
            return
        if strides[d] > 0:
            above += (shape[d] - 1) * strides[d]
        else:
            below += (shape[d] - 1) * strides[d]
    lo[0] = base + below
    hi[0] = base + above + itemsize


cdef inline bint bounds_meet(cnp.ndarray a, cnp.ndarray b) noexcept:
    """Whether the byte ranges a and b span intersect (np.may_share_memory, without its
    Python call overhead)."""
    cdef const char *a_lo
    cdef const char *a_hi
    cdef const char *b_lo
    cdef const char *b_hi
    byte_extent(<const char *>cnp.PyArray_DATA(a), <Py_ssize_t *>cnp.PyArray_DIMS(a),
                <Py_ssize_t *>cnp.PyArray_STRIDES(a), cnp.PyArray_NDIM(a),
                cnp.PyArray_ITEMSIZE(a), &a_lo, &a_hi)
    byte_extent(<const char *>cnp.PyArray_DATA(b), <Py_ssize_t *>cnp.PyArray_DIMS(b),
                <Py_ssize_t *>cnp.PyArray_STRIDES(b), cnp.PyArray_NDIM(b),
                cnp.PyArray_ITEMSIZE(b), &b_lo, &b_hi)
    return a_lo < b_hi and b_lo < a_hi


cdef inline void *data_ptr(object arr) noexcept:
    """The data of an array check_arrays accepted. Kernels take pointers: acquiring a typed
    memoryview per array costs more than a small row kernel."""
    return cnp.PyArray_DATA(<cnp.ndarray>arr)


cdef inline Py_ssize_t cdiv(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return (a + b - 1) // b


cdef inline Py_ssize_t round_up(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return cdiv(a, b) * b


cdef inline Py_ssize_t min_ssize(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return a if a < b else b
