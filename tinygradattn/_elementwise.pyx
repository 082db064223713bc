# cython: language_level=3, cdivision=True
# NOTE: boundscheck / wraparound / initializedcheck are set by setup.py (off, or on with
# TGA_CYTHON_DEBUG=1); a file-level directive here would override the debug build.
"""Elementwise kernels of tinygradattn (ops/elementwise.py, GELU of ops/fused.py): GELU
forward and backward, erf, and the threaded same-shape add / sub / mul.

Flat 1-D C-contiguous buffers (the backend passes reshaped views); outputs first, then
inputs, then flags, then ``n_threads`` (< 1: ``effective_n_threads()``); below a work
threshold a kernel runs on one thread. Parallel axis: the elements, one contiguous slice per
thread. float64 uses the C library's erf / exp / tanh (exact to rounding: gradcheck);
float32 GELU uses the vectorised loops of _elementwise_kernel.h, whose ISA is the "rows" family's.

Sections:
    GELU         gelu_fwd / gelu_bwd (exact erf form and torch's tanh form), _vec_erf_tanh
    erf          erf (numpy has none; the C library's is exact to float64 rounding)
    binary       binary: out = a + b, a - b or a * b
"""

import numpy as np

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, sqrt, tanh
from libc.math cimport erf as c_erf
cimport numpy as cnp

cnp.import_array()

from ._rows_kernel cimport rows_isa_sync, tga_rm, tga_rm_gelu_for, tga_rm_gelu_t
from ._support cimport (cdiv as _cdiv, check_apart, check_arrays, check_dtypes, check_out,
                       check_same_or_apart, min_ssize as _min, resolve_threads,
                       round_up as _round_up, tuning_value)


cdef double MIN_ELEMS_PER_THREAD = 16384.0        # GELU (counted as GELU_WORK each) and erf
cdef double BINARY_MIN_ELEMS_PER_THREAD = 32768.0     # binary (add / sub / mul), see its section


def _set_tuning(min_elems_per_thread=None, binary_min_elems_per_thread=None):
    """Set the work thresholds (tests use 0 to force threads); returns the previous settings."""
    global MIN_ELEMS_PER_THREAD, BINARY_MIN_ELEMS_PER_THREAD
    saved = dict(min_elems_per_thread=MIN_ELEMS_PER_THREAD,
                 binary_min_elems_per_thread=BINARY_MIN_ELEMS_PER_THREAD)
    fn = "_elementwise._set_tuning"
    values = [None if v is None else tuning_value(fn, name, v, 0, 1e18, False)
              for name, v in (("min_elems_per_thread", min_elems_per_thread),
                              ("binary_min_elems_per_thread", binary_min_elems_per_thread))]
    if values[0] is not None:
        MIN_ELEMS_PER_THREAD = values[0]
    if values[1] is not None:
        BINARY_MIN_ELEMS_PER_THREAD = values[1]
    return saved


cdef inline int _threads(int n_threads, double work) noexcept nogil:
    return resolve_threads(n_threads, work, MIN_ELEMS_PER_THREAD)


# ==============================================================================================
# GELU, elementwise on flat buffers
#
#   for k in elements (parallel, static):
#     exact ("none"):  y = x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2))
#                      dy/dx = Phi(x) + x phi(x),  phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
#     tanh:            u = sqrt(2 / pi) (x + 0.044715 x^3),  y = 0.5 x (1 + tanh u)
#                      dy/dx = 0.5 (1 + tanh u)
#                              + 0.5 x (1 - tanh^2 u) sqrt(2 / pi) (1 + 3 * 0.044715 x^2)
#     dx = dout * dy/dx
# float64: in double with the C library's erf / exp / tanh (exact to rounding: gradcheck).
# float32: _elementwise_kernel.h's vectorised float32 loops (tga_rm_gelu_for(tga_rm.isa): the
# "rows" family's ISA), each element read once per pass, one contiguous slice per thread (a
# multiple of GELU_ALIGN elements): Phi(-|x|) = phi(x) M(|x|), Mills' ratio M rational, phi
# one exp (max error on a dense grid, every ISA: erf 1.3 ulp, y 3.6 ulp, dy/dx 4.2 ulp of its
# larger term; the tanh form in its sigmoid form x / (1 + exp(-2u)), 2.5 (1 + 2|u|) ulp: the
# rounding of u, amplified by exp). A GELU element costs about 4 row-kernel elements: the
# thread threshold counts it so (two threads from ~16K elements).
# Limits (float32): GELU(-inf) = -0, GELU(inf) = inf, dy/dx = 0 / 1 there, NaN stays NaN.
# ==============================================================================================

cdef Py_ssize_t GELU_ALIGN = 64                     # a thread's slice starts on a cache line
cdef double GELU_WORK = 4.0                          # row-kernel elements per GELU element

cdef double SQRT1_2 = 0.70710678118654752440
cdef double SQRT_2_PI = 0.79788456080286535588       # sqrt(2 / pi)
cdef double INV_SQRT_2PI = 0.39894228040143267794    # 1 / sqrt(2 pi)
cdef double GELU_C = 0.044715


cdef inline double _gelu(double x, bint tanh_form) noexcept nogil:
    if tanh_form:
        return 0.5 * x * (1.0 + tanh(SQRT_2_PI * (x + GELU_C * x * x * x)))
    return 0.5 * x * (1.0 + c_erf(x * SQRT1_2))


cdef inline double _gelu_grad(double x, bint tanh_form) noexcept nogil:
    cdef double t
    if tanh_form:
        t = tanh(SQRT_2_PI * (x + GELU_C * x * x * x))
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * SQRT_2_PI * (1.0 + 3.0 * GELU_C * x * x)
    return 0.5 * (1.0 + c_erf(x * SQRT1_2)) + x * INV_SQRT_2PI * exp(-0.5 * x * x)


cdef inline Py_ssize_t _gelu_slice(Py_ssize_t n, int n_threads) noexcept nogil:
    """Elements per thread: n split evenly, rounded up to a multiple of GELU_ALIGN."""
    cdef Py_ssize_t per = (n + n_threads - 1) // n_threads
    return (per + GELU_ALIGN - 1) // GELU_ALIGN * GELU_ALIGN


cdef object _gelu_fwd(floating[::1] out, floating[::1] grad, bint with_grad,
                      const floating[::1] x, bint tanh_form, int n_threads):
    cdef Py_ssize_t k, n = x.shape[0], per, k0
    cdef const tga_rm_gelu_t *vec = tga_rm_gelu_for(tga_rm.isa)
    n_threads = _threads(n_threads, GELU_WORK * n)
    if floating is float:
        if n == 0:
            return
        if n_threads == 1:
            vec.gelu_fwd(&out[0], &grad[0] if with_grad else NULL, &x[0], tanh_form, n)
            return
        per = _gelu_slice(n, n_threads)
        for k in prange(n_threads, nogil=True, schedule="static", num_threads=n_threads):
            k0 = k * per
            if k0 < n:
                vec.gelu_fwd(&out[k0], &grad[k0] if with_grad else NULL, &x[k0], tanh_form,
                             min(per, n - k0))
    else:
        for k in prange(n, nogil=True, schedule="static", num_threads=n_threads):
            if with_grad:
                grad[k] = _gelu_grad(x[k], tanh_form)
            out[k] = _gelu(x[k], tanh_form)


cdef object _gelu_bwd(floating[::1] dx, const floating[::1] dout, const floating[::1] x,
                      bint tanh_form, int n_threads):
    cdef Py_ssize_t k, n = x.shape[0], per, k0
    cdef const tga_rm_gelu_t *vec = tga_rm_gelu_for(tga_rm.isa)
    n_threads = _threads(n_threads, GELU_WORK * n)
    if floating is float:
        if n == 0:
            return
        if n_threads == 1:
            vec.gelu_bwd(&dx[0], &dout[0], &x[0], tanh_form, n)
            return
        per = _gelu_slice(n, n_threads)
        for k in prange(n_threads, nogil=True, schedule="static", num_threads=n_threads):
            k0 = k * per
            if k0 < n:
                vec.gelu_bwd(&dx[k0], &dout[k0], &x[k0], tanh_form, min(per, n - k0))
    else:
        for k in prange(n, nogil=True, schedule="static", num_threads=n_threads):
            dx[k] = dout[k] * _gelu_grad(x[k], tanh_form)


def _vec_erf_tanh(out, x, bint tanh):
    """Test hook: out = erf(x) (or tanh(x)) by _elementwise_kernel.h's loops; 1-D float32."""
    rows_isa_sync()
    check_arrays("_vec_erf_tanh", ("out", "x"), (out, x), (x.shape, x.shape), 1)
    check_same_or_apart("_vec_erf_tanh", "out", out, "x", x)
    cdef float[::1] o = out
    cdef const float[::1] xv = x
    cdef const tga_rm_gelu_t *vec = tga_rm_gelu_for(tga_rm.isa)
    if x.shape[0] == 0:
        return
    if tanh:
        vec.tanh(&o[0], &xv[0], x.shape[0])
    else:
        vec.erf(&o[0], &xv[0], x.shape[0])


def gelu_fwd(out, x, bint approximate_tanh, int n_threads=0, grad=None):
    """out = gelu(x) elementwise; out, x 1-D C-contiguous (out may be x); tanh form if asked.

    grad: OUT, or None: gelu'(x) as well, the same values gelu_bwd multiplies dout by (an
    autograd forward keeps it, so that its backward is one multiply). Not x itself.
    """
    rows_isa_sync()
    if not isinstance(x, np.ndarray):
        raise TypeError(f"gelu_fwd: x must be a numpy.ndarray, got {type(x).__name__}")
    if x.ndim != 1:
        raise ValueError(f"gelu_fwd: x must be 1-D (a flat buffer), got shape {x.shape}")
    with_grad = grad is not None
    if with_grad:
        dtype = check_arrays("gelu_fwd", ("out", "grad", "x"), (out, grad, x), (x.shape,) * 3, 2)
    else:
        dtype = check_arrays("gelu_fwd", ("out", "x"), (out, x), (x.shape, x.shape), 1)
    check_apart("gelu_fwd", ("out", "grad"), (out, grad), ("x",), (x,), (("out", "x"),))
    if dtype == np.float32:
        _gelu_fwd[float](out, grad if with_grad else out, with_grad, x, approximate_tanh,
                         n_threads)
    else:
        _gelu_fwd[double](out, grad if with_grad else out, with_grad, x, approximate_tanh,
                          n_threads)


def gelu_bwd(dx, dout, x, bint approximate_tanh, int n_threads=0):
    """dx = dout * gelu'(x) elementwise; all 1-D C-contiguous of one length (dx may be dout
    or x itself: each element is read before it is written; a partial overlap raises)."""
    rows_isa_sync()
    if not isinstance(x, np.ndarray):
        raise TypeError(f"gelu_bwd: x must be a numpy.ndarray, got {type(x).__name__}")
    if x.ndim != 1:
        raise ValueError(f"gelu_bwd: x must be 1-D (a flat buffer), got shape {x.shape}")
    dtype = check_arrays("gelu_bwd", ("dx", "dout", "x"), (dx, dout, x), (x.shape,) * 3, 1)
    check_apart("gelu_bwd", ("dx",), (dx,), ("dout", "x"), (dout, x),
                (("dx", "dout"), ("dx", "x")))
    if dtype == np.float32:
        _gelu_bwd[float](dx, dout, x, approximate_tanh, n_threads)
    else:
        _gelu_bwd[double](dx, dout, x, approximate_tanh, n_threads)


# ==============================================================================================
# elementwise: erf
#
#   for i in elements (parallel, static):  out[i] = erf(x[i])      (libm erf in double)
#
# Used by the exact GELU. Flat 1-D buffers: the backend passes contiguous reshaped views.
# ==============================================================================================

cdef object _erf_typed(floating[::1] out, const floating[::1] x, int n_threads):
    cdef Py_ssize_t i, n = x.shape[0]
    n_threads = resolve_threads(n_threads, <double>n, MIN_ELEMS_PER_THREAD)
    if n_threads == 1:
        with nogil:
            for i in range(n):
                out[i] = <floating>c_erf(<double>x[i])
    else:
        for i in prange(n, nogil=True, schedule="static", num_threads=n_threads):
            out[i] = <floating>c_erf(<double>x[i])


def erf(out, x, int n_threads=0):
    """out = erf(x) elementwise; out and x 1-D C-contiguous, same length and float dtype
    (out may be x itself; a partial overlap raises ValueError)."""
    dtype = check_dtypes("erf", ("out", "x"), (out, x))
    if out.ndim != 1 or x.ndim != 1 or out.shape != x.shape:
        raise ValueError(f"erf: out {out.shape} and x {x.shape} must be 1-D of the same length")
    check_out("erf", "out", out)
    check_same_or_apart("erf", "out", out, "x", x)
    if dtype == np.float32:
        _erf_typed[float](out, x, n_threads)
    else:
        _erf_typed[double](out, x, n_threads)


# ==============================================================================================
# elementwise: out = a + b, a - b or a * b (op 0, 1, 2)
#
#   for t in threads (parallel): for i in t's contiguous slice:  out[i] = a[i] op b[i]
#
# Same-shape operands flattened by the backend (residual adds, gradient accumulation). numpy
# runs these on one core, bound by that core's L2/L3 bandwidth; two threads halve it. One
# rounding per element: the same bits as numpy. Threads from BINARY_MIN_ELEMS_PER_THREAD
# (32 Ki elements, 128 KiB of float32).
# ==============================================================================================

cdef void _binary_slice(floating *out, const floating *a, const floating *b, Py_ssize_t n,
                        int op) noexcept nogil:
    cdef Py_ssize_t i
    if op == 0:
        for i in range(n):
            out[i] = a[i] + b[i]
    elif op == 1:
        for i in range(n):
            out[i] = a[i] - b[i]
    else:
        for i in range(n):
            out[i] = a[i] * b[i]


cdef object _binary_typed(floating[::1] out, const floating[::1] a, const floating[::1] b,
                          int op, int n_threads):
    cdef Py_ssize_t t, n = out.shape[0], per, i0
    if n == 0:
        return
    n_threads = resolve_threads(n_threads, <double>n, BINARY_MIN_ELEMS_PER_THREAD)
    per = _round_up(_cdiv(n, n_threads), 16)           # slices start on a cache line
    if n_threads == 1:
        with nogil:
            _binary_slice(&out[0], &a[0], &b[0], n, op)
        return
    for t in prange(n_threads, nogil=True, schedule="static", num_threads=n_threads):
        i0 = t * per
        if i0 < n:
            _binary_slice(&out[i0], &a[i0], &b[i0], _min(per, n - i0), op)


def binary(out, a, b, int op, int n_threads=0):
    """out = a + b (op 0), a - b (op 1) or a * b (op 2); 1-D C-contiguous, one length and
    float dtype. out may be a or b itself (each element is read before it is written)."""
    dtype = check_dtypes("binary", ("out", "a", "b"), (out, a, b))
    if not (out.ndim == a.ndim == b.ndim == 1) or not (out.shape == a.shape == b.shape):
        raise ValueError(f"binary: out {out.shape}, a {a.shape} and b {b.shape} must be 1-D "
                         f"of the same length")
    if not 0 <= op <= 2:
        raise ValueError(f"binary: op must be 0 (add), 1 (sub) or 2 (mul), got {op}")
    check_out("binary", "out", out)
    check_same_or_apart("binary", "out", out, "a", a)
    check_same_or_apart("binary", "out", out, "b", b)
    if dtype == np.float32:
        _binary_typed[float](out, a, b, op, n_threads)
    else:
        _binary_typed[double](out, a, b, op, n_threads)
