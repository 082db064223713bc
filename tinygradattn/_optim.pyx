# cython: language_level=3, cdivision=True
# distutils: extra_compile_args = -fno-math-errno -ffp-contract=off
# NOTE: the two flags above are not fast-math. -fno-math-errno only stops sqrt() from setting
# errno (so the sqrt in the Adam loop vectorises); -ffp-contract=off stops gcc from fusing a
# written `a * b + c` into one FMA: torch rounds those twice, and parity needs the same. Where
# torch does fuse (add with alpha, lerp), the kernels call fma() explicitly.
"""Fused optimizer steps (SGD with momentum, Adam / AdamW), in place, over LISTS of arrays.

One call updates every parameter of a parameter group: the Python wrapper checks the arrays
under the GIL (dtype, shape, contiguity, and the kernels' overlap rule: an array the step
writes, a param or a state buffer, shares no memory with any other array of the call; grads
may overlap each other) and cuts them into chunks of CHUNK elements; the chunks run with
`prange` (many small tensors and a few large ones balance alike), each chunk one tight C loop.

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

Dispatch: AVX-512 and AVX2+FMA builds of each loop (`__attribute__((target))`), the level the
"optim" family runs (_support; the widest the CPU runs unless tinygradattn.backend.isa or
$TGA_ISA_OPTIM force one), else the baseline build (where fma() may be a library call: slow
but exact). The loops are memory-bound: 4 (SGD) or 7 (Adam) streams per element.
"""

import numpy as np

cimport numpy as cnp
from cython.parallel cimport prange
from libc.stdlib cimport free, malloc, qsort

from ._support cimport FAMILY_OPTIM, isa_level, resolve_threads

cnp.import_array()

cdef Py_ssize_t CHUNK = 16384            # elements per work item (64 KiB of float32 per stream)
cdef Py_ssize_t MIN_ELEMS_PER_THREAD = 65536   # below this a call runs on one thread


# ==============================================================================================
# the element loops: _optim_kernel.h (in C, so the FMA / no-FMA choice is explicit)
# ==============================================================================================

cdef extern from "_optim_kernel.h":
    ctypedef struct tga_sgd_args:
        double wd, momentum, one_minus_dampening, neg_lr
        int nesterov, first_step, has_momentum
    ctypedef struct tga_adam_args:
        double decay, wd, w1, beta2, one_minus_beta2, bc2_sqrt, eps, neg_step_size
        int decoupled, has_wd, w1_small
    void tga_sgd_f32(float *p, const float *g, float *b, Py_ssize_t n,
                     const tga_sgd_args *a, int level) noexcept nogil
    void tga_sgd_f64(double *p, const double *g, double *b, Py_ssize_t n,
                     const tga_sgd_args *a, int level) noexcept nogil
    void tga_adam_f32(float *p, const float *g, float *m, float *v, Py_ssize_t n,
                      const tga_adam_args *a, int level) noexcept nogil
    void tga_adam_f64(double *p, const double *g, double *m, double *v, Py_ssize_t n,
                      const tga_adam_args *a, int level) noexcept nogil


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


cdef struct Span:
    char *lo                    # the bytes [lo, hi) of one array
    char *hi
    int list_index              # which list (names[j]) and which array of it
    Py_ssize_t array_index
    bint written


cdef int _span_order(const void *a, const void *b) noexcept nogil:
    cdef const Span *x = <const Span *>a
    cdef const Span *y = <const Span *>b
    if x.lo != y.lo:
        return -1 if x.lo < y.lo else 1
    if x.list_index != y.list_index:
        return x.list_index - y.list_index
    return -1 if x.array_index < y.array_index else (x.array_index > y.array_index)


cdef object _check_apart(str fn, names, lists, writable):
    """The kernels' overlap rule (_support.check_apart) over every array of a step: an array
    written (a param, a state buffer) may share no byte with any other array of the call;
    arrays only read (grads) may overlap each other. The byte ranges sorted (qsort), then one
    sweep that keeps the furthest-reaching range so far and the furthest-reaching written one.
    The arrays were checked by _data (C-contiguous ndarrays)."""
    cdef Py_ssize_t n = 0, i, k, total = sum(len(lst) for lst in lists)
    cdef Span *spans = <Span *>malloc(max(total, 1) * sizeof(Span))
    cdef Span *reach_any = NULL
    cdef Span *reach_out = NULL
    cdef Span *met
    cdef cnp.ndarray arr
    cdef int j
    if spans == NULL:
        raise MemoryError()
    try:
        for j in range(len(lists)):
            for i in range(len(lists[j])):
                arr = <cnp.ndarray>lists[j][i]
                if cnp.PyArray_NBYTES(arr) == 0:
                    continue
                spans[n].lo = <char *>cnp.PyArray_DATA(arr)
                spans[n].hi = spans[n].lo + cnp.PyArray_NBYTES(arr)
                spans[n].list_index, spans[n].array_index = j, i
                spans[n].written = writable[j]
                n += 1
        qsort(spans, n, sizeof(Span), _span_order)
        for k in range(n):
            met = NULL
            if spans[k].written and reach_any != NULL and spans[k].lo < reach_any.hi:
                met = reach_any
            elif reach_out != NULL and spans[k].lo < reach_out.hi:
                met = reach_out
            if met != NULL:
                _overlap_error(fn, names, lists, met, &spans[k])
            if reach_any == NULL or spans[k].hi > reach_any.hi:
                reach_any = &spans[k]
            if spans[k].written and (reach_out == NULL or spans[k].hi > reach_out.hi):
                reach_out = &spans[k]
    finally:
        free(spans)


cdef object _overlap_error(str fn, names, lists, const Span *a, const Span *b):
    """ValueError naming both arrays, the written one first."""
    if b.written and not a.written:
        a, b = b, a
    first = lists[a.list_index][a.array_index]
    second = lists[b.list_index][b.array_index]
    raise ValueError(f"{fn}: {names[a.list_index]}[{a.array_index}] {first.shape} overlaps "
                     f"{names[b.list_index]}[{b.array_index}] {second.shape}; an array the "
                     f"step writes may share no memory with another array, pass separate arrays")


cdef Chunk *_work_list(str fn, names, lists, writable, Py_ssize_t *n_chunks,
                       Py_ssize_t *n_total, int *typenum) except NULL:
    """Check the arrays (lists[0] are the params; none overlapping where one is written) and
    build the chunk list (caller frees)."""
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
        _check_apart(fn, names, lists, writable)        # every array passed _data above
    except BaseException:
        free(chunks)
        raise
    n_chunks[0] = count
    n_total[0] = total
    return chunks


cdef inline int _threads(int n_threads, Py_ssize_t total) noexcept nogil:
    """One thread below 2 * MIN_ELEMS_PER_THREAD elements, else one per MIN_ELEMS_PER_THREAD."""
    return resolve_threads(n_threads, <double>total, <double>MIN_ELEMS_PER_THREAD)


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
        n_threads: OpenMP threads over chunks; < 1 means effective_n_threads().
    """
    cdef tga_sgd_args a
    cdef Py_ssize_t n_chunks, total, c
    cdef int typenum, nt
    cdef int level = isa_level(FAMILY_OPTIM)     # the loop build, read once per step
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
        chunks = _work_list("sgd_step", ("params", "grads", "momentum_bufs"),
                            (params, grads, momentum_bufs), (True, False, True),
                            &n_chunks, &total, &typenum)
    else:
        chunks = _work_list("sgd_step", ("params", "grads"), (params, grads), (True, False),
                            &n_chunks, &total, &typenum)
    nt = _threads(n_threads, total)
    try:
        if typenum == cnp.NPY_FLOAT32:
            for c in prange(n_chunks, nogil=True, schedule="dynamic", num_threads=nt):
                tga_sgd_f32(<float *>chunks[c].s0, <const float *>chunks[c].s1,
                            <float *>chunks[c].s2, chunks[c].n, &a, level)
        else:
            for c in prange(n_chunks, nogil=True, schedule="dynamic", num_threads=nt):
                tga_sgd_f64(<double *>chunks[c].s0, <const double *>chunks[c].s1,
                            <double *>chunks[c].s2, chunks[c].n, &a, level)
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
        n_threads: OpenMP threads over chunks; < 1 means effective_n_threads().
    """
    cdef tga_adam_args a
    cdef Py_ssize_t n_chunks, total, c
    cdef int typenum, nt
    cdef int level = isa_level(FAMILY_OPTIM)     # the loop build, read once per step
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
    chunks = _work_list("adam_step", ("params", "grads", "exp_avgs", "exp_avg_sqs"),
                        (params, grads, exp_avgs, exp_avg_sqs), (True, False, True, True),
                        &n_chunks, &total, &typenum)
    nt = _threads(n_threads, total)
    try:
        if typenum == cnp.NPY_FLOAT32:
            for c in prange(n_chunks, nogil=True, schedule="dynamic", num_threads=nt):
                tga_adam_f32(<float *>chunks[c].s0, <const float *>chunks[c].s1,
                             <float *>chunks[c].s2, <float *>chunks[c].s3, chunks[c].n, &a, level)
        else:
            for c in prange(n_chunks, nogil=True, schedule="dynamic", num_threads=nt):
                tga_adam_f64(<double *>chunks[c].s0, <const double *>chunks[c].s1,
                             <double *>chunks[c].s2, <double *>chunks[c].s3, chunks[c].n, &a, level)
    finally:
        free(chunks)
