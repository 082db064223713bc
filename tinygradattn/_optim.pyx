# cython: language_level=3, cdivision=True
# distutils: extra_compile_args = -fno-math-errno -ffp-contract=off
# NOTE: the two flags above are not fast-math. -fno-math-errno only stops sqrt() from setting
# errno (so the sqrt in the Adam loop vectorises); -ffp-contract=off stops gcc from fusing a
# written `a * b + c` into one FMA: torch rounds those twice, and parity needs the same. Where
# torch does fuse (add with alpha, lerp), the kernels call fma() explicitly.
"""Fused optimizer steps (SGD with momentum, Adam / AdamW), in place, over LISTS of arrays.

One call updates every parameter of a parameter group: the Python wrapper checks the arrays
under the GIL and cuts them into chunks of CHUNK elements; the chunks run with `prange`
(many small tensors and a few large ones balance alike), each chunk one tight C loop.

Per element, the arithmetic is torch's single-tensor (foreach=False) CPU implementation, in
its order and with its roundings, so float32 trajectories match torch to the last bit where
torch's vector kernels run (scalars are cast to the parameter dtype first, as ATen does):

    SGD   (torch/optim/sgd.py _single_tensor_sgd)
        g = fma(p, wd, g)                             if wd != 0      (grad.add(p, alpha=wd))
        b = g                                         first step      (buf = grad.clone())
        b = fma(g, 1 - dampening, b * momentum)       later steps     (buf.mul_(m).add_(g, alpha))
        g = fma(b, momentum, g) if nesterov else b
        p = fma(g, -lr, p)                                            (p.add_(g, alpha=-lr))
    Adam / AdamW   (torch/optim/adam.py _single_tensor_adam)
        p = p * (1 - lr * wd)                         AdamW (decoupled), wd != 0
        g = fma(p, wd, g)                             Adam (L2), wd != 0
        m = fma(w, g - m, m)   w = 1 - beta1 < 0.5    (exp_avg.lerp_(g, 1 - beta1), torch's
        m = fma(w - 1, g - m, g)   otherwise           two-sided lerp)
        v = v * beta2 + ((1 - beta2) * g) * g         (mul_ then addcmul_)
        p = p + (-step_size * m) / (sqrt(v) / sqrt(bias_correction2) + eps)      (addcdiv_)

The bias corrections are computed once per call in double, with Python's `**` as torch does.

Dispatch: AVX-512 and AVX2+FMA builds of each loop (`__attribute__((target))`), the widest the
CPU runs picked at import with `__builtin_cpu_supports` (optim_isas() / set_optim_isa(name),
$TGA_OPTIM_ISA force one), else the baseline build (where fma() may be a library call: slow
but exact). The loops are memory-bound: 4 (SGD) or 7 (Adam) streams per element.
"""

import os

import numpy as np

cimport numpy as cnp
from cython.parallel cimport prange
from libc.stdlib cimport free, malloc

from . import _core

cnp.import_array()

cdef Py_ssize_t CHUNK = 16384            # elements per work item (64 KiB of float32 per stream)
cdef Py_ssize_t MIN_ELEMS_PER_THREAD = 65536   # below this a call runs on one thread


# ==============================================================================================
# the element loops, in C (so the FMA / no-FMA choice is explicit, see the module docstring)
#
#   for i < n:  sgd:  see above, over p[i], g[i], b[i]
#               adam: see above, over p[i], g[i], m[i], v[i]
#
# Loop-invariant flags (wd != 0, first step, nesterov, ...) are tested inside the loop; gcc's
# -O3 unswitching hoists them, so each variant is a branch-free vectorised loop.
# ==============================================================================================

cdef extern from *:
    """
    #include <math.h>
    #include <stddef.h>

    typedef struct {
        double wd, momentum, one_minus_dampening, neg_lr;
        int nesterov, first_step, has_momentum;
    } tga_sgd_args;

    typedef struct {
        double decay, wd, w1, beta2, one_minus_beta2, bc2_sqrt, eps, neg_step_size;
        int decoupled, has_wd, w1_small;
    } tga_adam_args;

    #define TGA_SGD_LOOP(T, FMA)                                                            \\
        const T wd = (T)a->wd, mom = (T)a->momentum, omd = (T)a->one_minus_dampening;       \\
        const T neg_lr = (T)a->neg_lr;                                                      \\
        const int has_wd = a->wd != 0, has_mom = a->has_momentum;                           \\
        const int first = a->first_step, nesterov = a->nesterov;                            \\
        for (ptrdiff_t i = 0; i < n; i++) {                                                 \\
            T gi = g[i];                                                                    \\
            if (has_wd) gi = FMA(p[i], wd, gi);                                             \\
            if (has_mom) {                                                                  \\
                T bi = first ? gi : FMA(gi, omd, b[i] * mom);                               \\
                b[i] = bi;                                                                  \\
                gi = nesterov ? FMA(bi, mom, gi) : bi;                                      \\
            }                                                                               \\
            p[i] = FMA(gi, neg_lr, p[i]);                                                   \\
        }

    #define TGA_ADAM_LOOP(T, FMA, SQRT)                                                     \\
        const T decay = (T)a->decay, wd = (T)a->wd, w1 = (T)a->w1;                            \\
        const T w1m1 = w1 - (T)1;        /* torch: weight - Vectorized(1), in T */         \\
        const T b2 = (T)a->beta2, omb2 = (T)a->one_minus_beta2, bc2s = (T)a->bc2_sqrt;      \\
        const T eps = (T)a->eps, nss = (T)a->neg_step_size;                                 \\
        const int decoupled = a->decoupled && a->has_wd, l2 = !a->decoupled && a->has_wd;   \\
        const int small = a->w1_small;                                                      \\
        for (ptrdiff_t i = 0; i < n; i++) {                                                 \\
            T gi = g[i], pi = p[i], mi = m[i];                                              \\
            if (decoupled) pi = pi * decay;                                                 \\
            if (l2) gi = FMA(pi, wd, gi);                                                   \\
            T d = gi - mi;                                                                  \\
            mi = small ? FMA(w1, d, mi) : FMA(w1m1, d, gi);                                 \\
            T vi = v[i] * b2 + (omb2 * gi) * gi;                                            \\
            T denom = SQRT(vi) / bc2s + eps;                                                \\
            p[i] = pi + (nss * mi) / denom;                                                 \\
            m[i] = mi;                                                                      \\
            v[i] = vi;                                                                      \\
        }

    #define TGA_SGD_SIG(NAME, T) static void NAME(T *__restrict__ p, const T *__restrict__ g, \\
        T *__restrict__ b, ptrdiff_t n, const tga_sgd_args *a)
    #define TGA_ADAM_SIG(NAME, T) static void NAME(T *__restrict__ p, const T *__restrict__ g, \\
        T *__restrict__ m, T *__restrict__ v, ptrdiff_t n, const tga_adam_args *a)

    TGA_SGD_SIG(tga_sgd_f32_base, float) { TGA_SGD_LOOP(float, fmaf) }
    TGA_SGD_SIG(tga_sgd_f64_base, double) { TGA_SGD_LOOP(double, fma) }
    TGA_ADAM_SIG(tga_adam_f32_base, float) { TGA_ADAM_LOOP(float, fmaf, sqrtf) }
    TGA_ADAM_SIG(tga_adam_f64_base, double) { TGA_ADAM_LOOP(double, fma, sqrt) }

    #if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
    #define TGA_OPTIM_X86 1
    #define TGA_AVX2 __attribute__((target("avx2,fma")))
    #define TGA_AVX512 __attribute__((target("avx512f,avx512vl,avx2,fma")))
    TGA_AVX2 TGA_SGD_SIG(tga_sgd_f32_avx2, float) { TGA_SGD_LOOP(float, fmaf) }
    TGA_AVX2 TGA_SGD_SIG(tga_sgd_f64_avx2, double) { TGA_SGD_LOOP(double, fma) }
    TGA_AVX2 TGA_ADAM_SIG(tga_adam_f32_avx2, float) { TGA_ADAM_LOOP(float, fmaf, sqrtf) }
    TGA_AVX2 TGA_ADAM_SIG(tga_adam_f64_avx2, double) { TGA_ADAM_LOOP(double, fma, sqrt) }
    TGA_AVX512 TGA_SGD_SIG(tga_sgd_f32_avx512, float) { TGA_SGD_LOOP(float, fmaf) }
    TGA_AVX512 TGA_SGD_SIG(tga_sgd_f64_avx512, double) { TGA_SGD_LOOP(double, fma) }
    TGA_AVX512 TGA_ADAM_SIG(tga_adam_f32_avx512, float) { TGA_ADAM_LOOP(float, fmaf, sqrtf) }
    TGA_AVX512 TGA_ADAM_SIG(tga_adam_f64_avx512, double) { TGA_ADAM_LOOP(double, fma, sqrt) }
    #else
    #define TGA_OPTIM_X86 0
    #endif

    /* The builds, widest first: 2 avx512, 1 avx2, 0 generic (baseline). */
    static int tga_optim_level = 0;

    static int tga_optim_supported(int level) {
        if (level == 0) return 1;
    #if TGA_OPTIM_X86
        __builtin_cpu_init();
        if (level == 1) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        if (level == 2)
            return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")
                   && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    #endif
        return 0;
    }

    /* level: 0..2, or -1 for the widest supported. Returns the level in use, -1 if refused. */
    static int tga_optim_select(int level) {
        if (level < 0) {
            level = 2;
            while (level > 0 && !tga_optim_supported(level)) level--;
        }
        if (!tga_optim_supported(level)) return -1;
        tga_optim_level = level;
        return level;
    }

    #if TGA_OPTIM_X86
    #define TGA_OPTIM_DISPATCH(NAME, ARGS)                                                  \
        if (tga_optim_level == 2) { NAME##_avx512 ARGS; return; }                           \
        if (tga_optim_level == 1) { NAME##_avx2 ARGS; return; }                             \
        NAME##_base ARGS;
    #else
    #define TGA_OPTIM_DISPATCH(NAME, ARGS) NAME##_base ARGS;
    #endif

    static void tga_sgd_f32(float *p, const float *g, float *b, ptrdiff_t n,
                            const tga_sgd_args *a) {
        TGA_OPTIM_DISPATCH(tga_sgd_f32, (p, g, b, n, a))
    }
    static void tga_sgd_f64(double *p, const double *g, double *b, ptrdiff_t n,
                            const tga_sgd_args *a) {
        TGA_OPTIM_DISPATCH(tga_sgd_f64, (p, g, b, n, a))
    }
    static void tga_adam_f32(float *p, const float *g, float *m, float *v, ptrdiff_t n,
                             const tga_adam_args *a) {
        TGA_OPTIM_DISPATCH(tga_adam_f32, (p, g, m, v, n, a))
    }
    static void tga_adam_f64(double *p, const double *g, double *m, double *v, ptrdiff_t n,
                             const tga_adam_args *a) {
        TGA_OPTIM_DISPATCH(tga_adam_f64, (p, g, m, v, n, a))
    }
    """
    ctypedef struct tga_sgd_args:
        double wd, momentum, one_minus_dampening, neg_lr
        int nesterov, first_step, has_momentum
    ctypedef struct tga_adam_args:
        double decay, wd, w1, beta2, one_minus_beta2, bc2_sqrt, eps, neg_step_size
        int decoupled, has_wd, w1_small
    int tga_optim_select(int level) noexcept nogil
    int tga_optim_supported(int level) noexcept nogil
    void tga_sgd_f32(float *p, const float *g, float *b, Py_ssize_t n,
                     const tga_sgd_args *a) noexcept nogil
    void tga_sgd_f64(double *p, const double *g, double *b, Py_ssize_t n,
                     const tga_sgd_args *a) noexcept nogil
    void tga_adam_f32(float *p, const float *g, float *m, float *v, Py_ssize_t n,
                      const tga_adam_args *a) noexcept nogil
    void tga_adam_f64(double *p, const double *g, double *m, double *v, Py_ssize_t n,
                      const tga_adam_args *a) noexcept nogil


cdef tuple _LEVELS = ("generic", "avx2", "avx512")      # tga_optim_select's levels 0, 1, 2
cdef int _level = tga_optim_select(-1)


def optim_isas():
    """The loop builds this CPU runs, fastest first ("avx512", "avx2", "generic")."""
    return [_LEVELS[lv] for lv in (2, 1, 0) if tga_optim_supported(lv)]


def optim_isa():
    """The loop build in use."""
    return _LEVELS[_level]


def set_optim_isa(name="auto"):
    """Force the loop build ("avx512", "avx2", "generic") or pick the widest ("auto").

    All builds give the same bits (fma() is exact either way, no other contraction); only
    the speed differs. Raises ValueError for a build this CPU cannot run. Returns the build.
    """
    global _level
    if name == "auto":
        _level = tga_optim_select(-1)
        return optim_isa()
    if name not in _LEVELS or not tga_optim_supported(_LEVELS.index(name)):
        raise ValueError(f"set_optim_isa: this CPU cannot run {name!r}; supported: "
                         f"{optim_isas()} or 'auto'")
    _level = tga_optim_select(_LEVELS.index(name))
    return optim_isa()


def set_isa(name="auto"):
    """Older name of set_optim_isa, lenient: a build this CPU lacks gives "auto"'s instead."""
    if name in _LEVELS and name not in optim_isas():
        name = "auto"
    return set_optim_isa(name)


def isa():
    """The loop build in use (older name of optim_isa)."""
    return optim_isa()


if os.environ.get("TGA_OPTIM_ISA", "auto") not in ("", "auto"):
    set_optim_isa(os.environ["TGA_OPTIM_ISA"])


# ==============================================================================================
# work lists: every array of a call cut into chunks of CHUNK elements
#
#   chunk c = (pointers into stream 0..3 at the same offset, length)
#   prange over chunks, schedule dynamic: chunk lengths differ at each tensor's end.
# ==============================================================================================

cdef struct Chunk:
    char *s0
    char *s1
    char *s2
    char *s3
    Py_ssize_t n


cdef char *_data(name, Py_ssize_t i, obj, int typenum, bint writable, ref) except NULL:
    """Pointer to a C-contiguous array of this dtype shaped like ref (errors name the slot)."""
    if not isinstance(obj, np.ndarray):
        raise TypeError(f"{name}[{i}]: expected a numpy array, got {type(obj).__name__}")
    cdef cnp.ndarray arr = <cnp.ndarray>obj
    if cnp.PyArray_TYPE(arr) != typenum:
        want = "float32" if typenum == cnp.NPY_FLOAT32 else "float64"
        raise TypeError(f"{name}[{i}]: dtype {obj.dtype}, expected {want}")
    if not cnp.PyArray_IS_C_CONTIGUOUS(arr):
        raise ValueError(f"{name}[{i}]: array of shape {obj.shape} is not C-contiguous")
    if writable and not cnp.PyArray_ISWRITEABLE(arr):
        raise ValueError(f"{name}[{i}]: array is read-only")
    if ref is not None and obj.shape != ref.shape:
        raise ValueError(f"{name}[{i}]: shape {obj.shape}, params[{i}] has shape {ref.shape}")
    return <char *>cnp.PyArray_DATA(arr)


cdef Chunk *_work_list(names, lists, writable, Py_ssize_t *n_chunks, Py_ssize_t *n_total,
                       int *typenum) except NULL:
    """Check the arrays (lists[0] are the params) and build the chunk list (caller frees)."""
    cdef list params = list(lists[0])
    cdef Py_ssize_t n_arrays = len(params), i, j, k, off, size, itemsize, total = 0, count = 0
    cdef Chunk *chunks
    cdef char *ptrs[4]
    for j in range(1, len(lists)):
        if len(lists[j]) != n_arrays:
            raise ValueError(f"{names[j]} holds {len(lists[j])} arrays, params {n_arrays}")
    if n_arrays == 0:
        typenum[0] = cnp.NPY_FLOAT32
        n_chunks[0] = 0
        n_total[0] = 0
        return <Chunk *>malloc(sizeof(Chunk))
    first = params[0]
    if not isinstance(first, np.ndarray) or first.dtype not in (np.float32, np.float64):
        raise TypeError(f"params[0]: expected a float32 or float64 numpy array, got "
                        f"{getattr(first, 'dtype', type(first).__name__)}")
    typenum[0] = cnp.PyArray_TYPE(<cnp.ndarray>first)
    itemsize = first.itemsize
    for i in range(n_arrays):
        _data(names[0], i, params[i], typenum[0], True, None)
        size = (<cnp.ndarray>params[i]).size
        count += (size + CHUNK - 1) // CHUNK
    chunks = <Chunk *>malloc(max(count, 1) * sizeof(Chunk))
    if chunks == NULL:
        raise MemoryError()
    try:
        k = 0
        ptrs[1] = ptrs[2] = ptrs[3] = NULL
        for i in range(n_arrays):
            p = params[i]
            ptrs[0] = _data(names[0], i, p, typenum[0], True, None)
            for j in range(1, len(lists)):
                ptrs[j] = _data(names[j], i, lists[j][i], typenum[0], writable[j], p)
            size = p.size
            total += size
            off = 0
            while off < size:
                chunks[k].s0 = ptrs[0] + off * itemsize
                chunks[k].s1 = ptrs[1] + off * itemsize if ptrs[1] != NULL else NULL
                chunks[k].s2 = ptrs[2] + off * itemsize if ptrs[2] != NULL else NULL
                chunks[k].s3 = ptrs[3] + off * itemsize if ptrs[3] != NULL else NULL
                chunks[k].n = min(CHUNK, size - off)
                off += CHUNK
                k += 1
    except BaseException:
        free(chunks)
        raise
    n_chunks[0] = count
    n_total[0] = total
    return chunks


cdef int _threads(int n_threads, Py_ssize_t total):
    cdef int nt = n_threads if n_threads >= 1 else _core.effective_n_threads()
    if not _core.openmp_enabled() or total < 2 * MIN_ELEMS_PER_THREAD:
        return 1
    return max(1, min(nt, <int>(total // MIN_ELEMS_PER_THREAD)))


# ==============================================================================================
# SGD
# ==============================================================================================

def sgd_step(params, grads, momentum_bufs, double lr, double momentum, double dampening,
             double weight_decay, bint nesterov, bint first_step, int n_threads=0):
    """One torch SGD step over lists of same-dtype arrays, in place (see the module docstring).

    Args:
        params: list of C-contiguous float32/float64 arrays, updated in place (OUT).
        grads: list of arrays shaped like params (IN).
        momentum_bufs: list of arrays shaped like params (OUT; IN too unless first_step),
            or None when momentum == 0.
        first_step: the buffers are empty: they become the (decayed) gradient, as in torch.
        n_threads: OpenMP threads over chunks; < 1 means _core.effective_n_threads().
    """
    cdef tga_sgd_args a
    cdef Py_ssize_t n_chunks, total, c
    cdef int typenum, nt
    cdef Chunk *chunks
    a.wd = weight_decay
    a.momentum = momentum
    a.one_minus_dampening = 1 - dampening
    a.neg_lr = -lr
    a.nesterov = nesterov
    a.first_step = first_step
    a.has_momentum = momentum != 0
    if a.has_momentum and momentum_bufs is None:
        raise ValueError("sgd_step: momentum != 0 needs momentum_bufs")
    if a.has_momentum:
        chunks = _work_list(("params", "grads", "momentum_bufs"),
                            (params, grads, momentum_bufs), (True, False, True),
                            &n_chunks, &total, &typenum)
    else:
        chunks = _work_list(("params", "grads"), (params, grads), (True, False),
                            &n_chunks, &total, &typenum)
    nt = _threads(n_threads, total)
    try:
        if typenum == cnp.NPY_FLOAT32:
            for c in prange(n_chunks, nogil=True, schedule="dynamic", num_threads=nt):
                tga_sgd_f32(<float *>chunks[c].s0, <const float *>chunks[c].s1,
                            <float *>chunks[c].s2, chunks[c].n, &a)
        else:
            for c in prange(n_chunks, nogil=True, schedule="dynamic", num_threads=nt):
                tga_sgd_f64(<double *>chunks[c].s0, <const double *>chunks[c].s1,
                            <double *>chunks[c].s2, chunks[c].n, &a)
    finally:
        free(chunks)


# ==============================================================================================
# Adam / AdamW
# ==============================================================================================

def adam_step(params, grads, exp_avgs, exp_avg_sqs, step, double lr, double beta1,
              double beta2, double eps, double weight_decay, bint decoupled, int n_threads=0):
    """One torch Adam (decoupled=False) or AdamW (decoupled=True) step, in place.

    Args:
        params: list of C-contiguous float32/float64 arrays, updated in place (OUT).
        grads: list of arrays shaped like params (IN).
        exp_avgs, exp_avg_sqs: the moment buffers, shaped like params (IN/OUT).
        step: the step count after this step's increment (1 on the first step), the same for
            every array of the call.
        n_threads: OpenMP threads over chunks; < 1 means _core.effective_n_threads().
    """
    cdef tga_adam_args a
    cdef Py_ssize_t n_chunks, total, c
    cdef int typenum, nt
    cdef Chunk *chunks
    step = float(step)
    if step < 1:
        raise ValueError(f"adam_step: step must be >= 1 (counted after the increment), "
                         f"got {step}")
    # Python floats and `**` exactly as torch/optim/adam.py computes them
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    step_size = lr / bias_correction1
    a.bc2_sqrt = bias_correction2 ** 0.5
    a.neg_step_size = -step_size
    a.decay = 1 - lr * weight_decay
    a.wd = weight_decay
    a.w1 = 1 - beta1
    a.w1_small = abs(<float>a.w1) < 0.5    # torch's lerp tests the weight in the tensor dtype
    a.beta2 = beta2
    a.one_minus_beta2 = 1 - beta2
    a.eps = eps
    a.decoupled = decoupled
    a.has_wd = weight_decay != 0
    chunks = _work_list(("params", "grads", "exp_avgs", "exp_avg_sqs"),
                        (params, grads, exp_avgs, exp_avg_sqs), (True, False, True, True),
                        &n_chunks, &total, &typenum)
    nt = _threads(n_threads, total)
    try:
        if typenum == cnp.NPY_FLOAT32:
            for c in prange(n_chunks, nogil=True, schedule="dynamic", num_threads=nt):
                tga_adam_f32(<float *>chunks[c].s0, <const float *>chunks[c].s1,
                             <float *>chunks[c].s2, <float *>chunks[c].s3, chunks[c].n, &a)
        else:
            for c in prange(n_chunks, nogil=True, schedule="dynamic", num_threads=nt):
                tga_adam_f64(<double *>chunks[c].s0, <const double *>chunks[c].s1,
                             <double *>chunks[c].s2, <double *>chunks[c].s3, chunks[c].n, &a)
    finally:
        free(chunks)
