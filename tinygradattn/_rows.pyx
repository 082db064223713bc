# cython: language_level=3, cdivision=True
# NOTE: boundscheck / wraparound / initializedcheck are set by setup.py (off, or on with
# TGA_CYTHON_DEBUG=1); a file-level directive here would override the debug build.
"""Row kernels of tinygradattn (layer norm and cross-entropy of ops/fused.py): layer norm
forward / backward and cross-entropy from logits, over the rows of (N, C) arrays.

Same conventions as ``_core``: every kernel writes into buffers it is given (outputs first,
then inputs, then sizes/scalars, then ``n_threads``); the ``def`` wrappers check shapes,
dtypes and contiguity under the GIL and name them in their errors; the ``noexcept nogil``
bodies trust their inputs. ``floating`` gives a float32 and a float64 build of every kernel.
Parallel axis: the rows (each thread owns whole rows; layer norm's dweight / dbias sum
per-thread partial rows serially afterwards). Row statistics (mean, variance, max, sum of
exps) accumulate in double; the transcendental
functions are the C library's (exact to float64 rounding), float32 kernels use the float32
exp of ``_elementwise_kernel.h`` where torch does too (ULP-level, vectorised).
``n_threads < 1`` means ``effective_n_threads()``; below a work threshold a kernel runs
on one thread whatever it is asked.

Sections:
    threads          _threads (work threshold), _set_tuning
    layer norm       layer_norm_fwd / layer_norm_bwd
    cross-entropy    cross_entropy_fwd / cross_entropy_bwd / cross_entropy_bwd_probs
                     (class-index targets)
"""

import numpy as np

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, log, sqrt
from libc.stdint cimport int64_t
cimport numpy as cnp

cnp.import_array()

from ._rows_kernel cimport rows_isa_sync, tga_rm
from ._support cimport check_apart, check_arrays, resolve_threads, tuning_value
from ._support cimport data_ptr as _ptr

# ==============================================================================================
# threads
#
#   n = n_threads                      if n_threads >= 1
#     = effective_n_threads()          otherwise (_support)
#   n = min(n, work / MIN_ELEMS_PER_THREAD), at least 1; 1 when built without OpenMP
#
# A row kernel moves ~4-12 bytes per element: below ~16K elements per thread the OpenMP
# fork/join costs more than the second core gives back.
# ==============================================================================================

cdef double MIN_ELEMS_PER_THREAD = 16384.0


def _set_tuning(min_elems_per_thread=None):
    """Set the work threshold (tests use 0 to force threads); returns the previous settings."""
    global MIN_ELEMS_PER_THREAD
    saved = dict(min_elems_per_thread=MIN_ELEMS_PER_THREAD)
    if min_elems_per_thread is not None:
        MIN_ELEMS_PER_THREAD = tuning_value("_rows._set_tuning", "min_elems_per_thread",
                                            min_elems_per_thread, 0, 1e18, False)
    return saved


cdef inline int _threads(int n_threads, double work) noexcept nogil:
    return resolve_threads(n_threads, work, MIN_ELEMS_PER_THREAD)


# ---------------------------------------------------------------------------------- checks

cdef object _F32 = np.dtype(np.float32), _F64 = np.dtype(np.float64), _I64 = np.dtype(np.int64)


cdef object _rows_cols(str fn, str name, object x):
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{fn}: {name} must be a numpy.ndarray, got {type(x).__name__}")
    if x.ndim != 2:
        raise ValueError(f"{fn}: {name} must be 2-D (N, C), got shape {x.shape}")
    return x.shape[0], x.shape[1]


# ==============================================================================================
# layer norm over the last axis of x (N, C)
#
#   for i in rows (parallel, static):
#     mean[i] = sum_j x[i, j] / C                                     (double)
#     var     = sum_j (x[i, j] - mean[i])^2 / C                       (two-pass, population)
#     rstd[i] = 1 / sqrt(var + eps)
#     y[i, j] = (x[i, j] - mean[i]) * rstd[i] * w[j] + b[j]           (w = 1, b = 0 if absent)
#   backward, xhat = (x - mean) * rstd, g = dout * w:
#     dx[i, j] = rstd[i] * (g[i, j] - mean_j g[i, :] - xhat[i, j] * mean_j (g * xhat)[i, :])
#     dw[j] = sum_i dout[i, j] * xhat[i, j],   db[j] = sum_i dout[i, j]
#   dw and db: the rows are cut into one contiguous block per thread; block t adds into its
#   own slot partial[t] (double), and the slots are summed serially, in order, afterwards.
#   float32 rows (_rows_kernel.h ln_bwd, as torch: float arithmetic, dx included) add into float32
#   rows part32[t] first, flushed into partial[t] every LN_FLUSH_ROWS rows; float64 rows add
#   into partial[t] directly. dweight / dbias are skipped when the caller passes None.
# ==============================================================================================

cdef void _ln_fwd_rows(floating *y, floating *mean_out, floating *rstd_out,
                       const floating *x, const floating *w, const floating *b, double eps,
                       Py_ssize_t n_rows, Py_ssize_t n, bint has_w, bint has_b) noexcept nogil:
    """n_rows consecutive rows (stride n)."""
    cdef Py_ssize_t i, j
    cdef double total, sq, mean, rstd, d
    if floating is float:   # vectorised, same arithmetic (_rows_kernel.h; short in registers,
        # in pairs); w, b: ones / zeros if absent
        tga_rm.ln_fwd_rows(y, mean_out, rstd_out, x, w, b, eps, n_rows, n)
        return
    for i in range(n_rows):
        total = 0.0
        sq = 0.0
        for j in range(n):
            total += x[j]
        mean = total / n
        for j in range(n):
            d = x[j] - mean
            sq += d * d
        rstd = 1.0 / sqrt(sq / n + eps)
        mean_out[i] = <floating>mean
        rstd_out[i] = <floating>rstd
        if has_w and has_b:
            for j in range(n):
                y[j] = <floating>((x[j] - mean) * rstd * w[j] + b[j])
        elif has_w:
            for j in range(n):
                y[j] = <floating>((x[j] - mean) * rstd * w[j])
        elif has_b:
            for j in range(n):
                y[j] = <floating>((x[j] - mean) * rstd + b[j])
        else:
            for j in range(n):
                y[j] = <floating>((x[j] - mean) * rstd)
        x += n
        y += n


cdef object _ln_fwd(floating *y, floating *mean, floating *rstd, const floating *x,
                    const floating *w, const floating *b, double eps, bint has_w, bint has_b,
                    Py_ssize_t n_rows, Py_ssize_t n_cols, int n_threads):
    """y, x (N, C); mean, rstd (N,); w, b (C,): all C-contiguous."""
    cdef Py_ssize_t i, p
    if n_rows == 0 or n_cols == 0:
        return
    n_threads = _threads(n_threads, <double>n_rows * n_cols)
    for p in prange((n_rows + 1) // 2, nogil=True, schedule="static", num_threads=n_threads):
        i = 2 * p                                       # rows in pairs (see _ln_fwd_rows)
        _ln_fwd_rows(y + i * n_cols, mean + i, rstd + i, x + i * n_cols, w, b, eps,
                     min(2, n_rows - i), n_cols, has_w, has_b)


cdef void _ln_bwd_row(floating *dx, double *dw_acc, double *db_acc, const floating *dout,
                      const floating *x, const floating *w, double mean, double rstd,
                      Py_ssize_t n, bint has_w, bint need_dx, bint need_wb) noexcept nogil:
    """float64 rows (float32 rows go to _rows_kernel.h's ln_bwd, see _ln_bwd)."""
    cdef Py_ssize_t j
    cdef double sum_g = 0.0, sum_gx = 0.0, xhat, g, c1, c2
    if need_wb:
        for j in range(n):
            xhat = (x[j] - mean) * rstd
            dw_acc[j] += dout[j] * xhat
            db_acc[j] += dout[j]
    if not need_dx:
        return
    for j in range(n):
        g = dout[j] * w[j] if has_w else <double>dout[j]
        sum_g += g
        sum_gx += g * ((x[j] - mean) * rstd)
    c1 = sum_g / n
    c2 = sum_gx / n
    for j in range(n):
        g = dout[j] * w[j] if has_w else <double>dout[j]
        dx[j] = <floating>(rstd * (g - c1 - (x[j] - mean) * rstd * c2))


cdef Py_ssize_t LN_FLUSH_ROWS = 32      # float32 dw/db partial rows go into double this often


cdef void _ln_flush(double *acc, float *part, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(n):
        acc[j] += part[j]
        part[j] = 0.0


cdef object _ln_bwd(floating *dx, double *partial, float *part32, const floating *dout,
                    const floating *x, const floating *w, const floating *mean,
                    const floating *rstd, bint has_w, bint need_dx, bint need_wb,
                    Py_ssize_t n_rows, Py_ssize_t C, Py_ssize_t C2, int n_blocks):
    """Block t of rows adds its dw / db into partial[t] (double). float32 rows: into the
    float32 rows part32[t] first (torch's float accumulation), flushed into partial[t] every
    LN_FLUSH_ROWS rows, so the long sums over N stay double. dx, dout, x (N, C); partial,
    part32 (n_blocks, 2, C2): [t, 0] dw, [t, 1] db."""
    cdef Py_ssize_t t, i, r0, r1
    for t in prange(n_blocks, nogil=True, schedule="static", num_threads=n_blocks):
        r0 = t * n_rows // n_blocks
        r1 = (t + 1) * n_rows // n_blocks
        for i in range(r0, r1):
            if floating is float:
                tga_rm.ln_bwd(dx + i * C if need_dx else NULL,
                              part32 + 2 * t * C2 if need_wb else NULL,
                              part32 + (2 * t + 1) * C2, dout + i * C, x + i * C, w, mean[i],
                              rstd[i], C)
                if need_wb and ((i - r0) % LN_FLUSH_ROWS == LN_FLUSH_ROWS - 1 or i == r1 - 1):
                    _ln_flush(partial + 2 * t * C2, part32 + 2 * t * C2, C2)
                    _ln_flush(partial + (2 * t + 1) * C2, part32 + (2 * t + 1) * C2, C2)
            else:
                _ln_bwd_row(dx + i * C if need_dx else NULL, partial + 2 * t * C2,
                            partial + (2 * t + 1) * C2, dout + i * C, x + i * C, w, mean[i],
                            rstd[i], C, has_w, need_dx, need_wb)


def layer_norm_fwd(y, mean, rstd, x, weight, bias, double eps, int n_threads=0):
    """y = (x - mean) * rstd * weight + bias over the last axis (torch's layer_norm on (N, C)).

    Args:
        y: OUT (N, C); mean, rstd: OUT (N,) the row mean and 1 / sqrt(var + eps).
        x: IN (N, C). weight, bias: IN (C,) or None. All C-contiguous, one float dtype.
        eps: added to the population variance. n_threads: OpenMP threads over rows.
    """
    rows_isa_sync()
    N, C = _rows_cols("layer_norm_fwd", "x", x)
    has_w, has_b = weight is not None, bias is not None
    dt = getattr(x, "dtype", np.float32)
    w = weight if has_w else np.ones(C, dtype=dt)         # the float32 path reads them
    b = bias if has_b else np.zeros(C, dtype=dt)
    dtype = check_arrays("layer_norm_fwd", ("y", "mean", "rstd", "x", "weight", "bias"),
                   (y, mean, rstd, x, w, b), ((N, C), (N,), (N,), (N, C), (C,), (C,)), 3)
    check_apart("layer_norm_fwd", ("y", "mean", "rstd"), (y, mean, rstd),
                ("x", "weight", "bias"), (x, weight, bias))
    if dtype == np.float32:
        _ln_fwd[float](<float *>_ptr(y), <float *>_ptr(mean), <float *>_ptr(rstd),
                       <const float *>_ptr(x), <const float *>_ptr(w), <const float *>_ptr(b), eps,
                       has_w, has_b, N, C, n_threads)
    else:
        _ln_fwd[double](<double *>_ptr(y), <double *>_ptr(mean), <double *>_ptr(rstd),
                        <const double *>_ptr(x), <const double *>_ptr(w), <const double *>_ptr(b),
                        eps, has_w, has_b, N, C, n_threads)


def layer_norm_bwd(dx, dweight, dbias, dout, x, weight, mean, rstd, int n_threads=0):
    """Gradients of layer_norm_fwd from its saved mean and rstd.

    Args:
        dx: OUT (N, C) or None (not needed). dweight, dbias: OUT (C,), both or neither None.
        dout, x: IN (N, C). weight: IN (C,) or None. mean, rstd: IN (N,) from layer_norm_fwd.
        n_threads: OpenMP threads, one contiguous block of rows each.
    """
    rows_isa_sync()
    N, C = _rows_cols("layer_norm_bwd", "x", x)
    if (dweight is None) != (dbias is None):
        raise ValueError("layer_norm_bwd: pass dweight and dbias both or neither")
    has_w, need_dx, need_wb = weight is not None, dx is not None, dweight is not None
    outs = ((("dx", dx, (N, C)),) if need_dx else ()) + (
        (("dweight", dweight, (C,)), ("dbias", dbias, (C,))) if need_wb else ())
    ins = (("dout", dout, (N, C)), ("x", x, (N, C))) + (
        (("weight", weight, (C,)),) if has_w else ()) + (("mean", mean, (N,)), ("rstd", rstd, (N,)))
    names, arrays, shapes = zip(*(outs + ins))
    dtype = check_arrays("layer_norm_bwd", names, arrays, shapes, len(outs))
    check_apart("layer_norm_bwd", names[:len(outs)], arrays[:len(outs)], names[len(outs):],
                arrays[len(outs):])
    w = weight if has_w else np.ones(C, dtype=dtype)
    if N == 0 or C == 0:
        if need_wb:
            dweight[...] = 0
            dbias[...] = 0
        return
    n_blocks = _threads(n_threads, <double>N * C)
    # a block's partial rows, padded so that no two blocks write one cache line (false
    # sharing would make two threads slower than one)
    C2 = (C + 15) // 16 * 16 + 16 if need_wb else 1
    partial = np.zeros((n_blocks, 2, C2), dtype=np.float64)
    cdef double *part = <double *>_ptr(partial)
    if dtype == np.float32:
        part32 = np.zeros((n_blocks, 2, C2), dtype=np.float32)
        _ln_bwd[float](<float *>(_ptr(dx) if need_dx else NULL), part, <float *>_ptr(part32),
                       <const float *>_ptr(dout), <const float *>_ptr(x), <const float *>_ptr(w),
                       <const float *>_ptr(mean), <const float *>_ptr(rstd), has_w, need_dx,
                       need_wb, N, C, C2, n_blocks)
        if need_wb:
            _ln_sum_blocks[float](<float *>_ptr(dweight), <float *>_ptr(dbias), part, n_blocks, C,
                                  C2)
    else:
        _ln_bwd[double](<double *>(_ptr(dx) if need_dx else NULL), part, <float *>NULL,
                        <const double *>_ptr(dout), <const double *>_ptr(x),
                        <const double *>_ptr(w), <const double *>_ptr(mean),
                        <const double *>_ptr(rstd), has_w, need_dx, need_wb, N, C, C2, n_blocks)
        if need_wb:
            _ln_sum_blocks[double](<double *>_ptr(dweight), <double *>_ptr(dbias), part, n_blocks,
                                   C, C2)


cdef void _ln_sum_blocks(floating *dweight, floating *dbias, const double *partial,
                         Py_ssize_t n_blocks, Py_ssize_t C, Py_ssize_t C2) noexcept nogil:
    """dweight, dbias (C,) = the blocks' partial rows (n_blocks, 2, C2) added in block order
    (double)."""
    cdef Py_ssize_t t, j
    cdef double dw, db
    for j in range(C):
        dw = partial[j]
        db = partial[C2 + j]
        for t in range(1, n_blocks):
            dw = dw + partial[2 * t * C2 + j]
            db = db + partial[(2 * t + 1) * C2 + j]
        dweight[j] = <floating>dw
        dbias[j] = <floating>db


# ==============================================================================================
# cross-entropy from logits (N, C) against class indices target (N,)
#
#   for i in rows (parallel, static):
#     m = max_j x[i, j];  ls = log sum_j exp(x[i, j] - m)                        (double)
#     lse[i] = m + ls
#     loss[i] = 0                                                  if target[i] == ignore_index
#             = (1 - e) (lse - x[i, t]) + e / C (C lse - sum_j x[i, j])           otherwise
#             = (1 - e) ((m - x[i, t]) + ls) + e (ls - mean_j (x[i, j] - m))  (as computed)
#   backward:
#     p[j] = exp(x[i, j] - lse[i]) / sum_j exp(x[i, j] - lse[i])     (= softmax; see below)
#     dx[i, j] = 0                                                 if target[i] == ignore_index
#              = dloss[i] * (p[j] - (1 - e) [j == t] - e / C)                     otherwise
#
# e = label_smoothing (torch's definition: the target is (1 - e) one-hot + e / C). A term whose
# factor is 0 is skipped, so -inf logits give no 0 * inf = NaN. Differences are taken against
# the row max before anything is added, so logits of 1e30 keep their log(2)-sized losses. In
# backward the saved lse is rounded to the dtype: lse >= m still holds (no overflow), and
# dividing by the sum of exp(x - lse) (1 up to that rounding) undoes its error exactly.
# The forward may also write p = exp(x - m) / s, the row's softmax (probs): then
# cross_entropy_bwd_probs takes dx from p in one pass with no exponentials (the autograd path:
# the row's exp pass is paid once, in the forward). Given inv_sum (N,) as well, probs keeps
# exp(x - m) and inv_sum[i] = 1 / s: the forward skips its scaling pass and the backward
# folds 1 / s into dloss[i] (p dloss = e (dloss / s), one rounding more).
# Targets are range-checked in the wrapper (IndexError) before the nogil loop.
# ==============================================================================================

cdef void _ce_fwd_rows(floating *loss, floating *lse_out, floating *probs, floating *inv_sum,
                       const floating *x, const int64_t *target, int64_t ignore_index,
                       double smoothing, Py_ssize_t n_rows, Py_ssize_t n) noexcept nogil:
    """n_rows (1 or 2) consecutive rows (stride n). probs: NULL, or the rows' softmax is
    written there; with inv_sum (not NULL), probs gets exp(x - max) and inv_sum 1 / its sum."""
    cdef Py_ssize_t r, j
    cdef float m32[2]
    cdef double m[2]
    cdef double s[2]
    cdef double e
    cdef const floating *xr
    if floating is float:                       # float32 exp, vectorised (_rows_kernel.h);
        tga_rm.exp_rows(probs, m32, s, x, n_rows, n)    # short rows in registers, in pairs
        for r in range(n_rows):
            m[r] = m32[r]
    else:
        for r in range(n_rows):
            xr = x + r * n
            m[r] = xr[0]
            s[r] = 0.0
            for j in range(1, n):
                if xr[j] > m[r]:
                    m[r] = xr[j]
            for j in range(n):
                e = exp(xr[j] - m[r])
                s[r] += e
                if probs != NULL:
                    probs[r * n + j] = e
    for r in range(n_rows):
        _ce_fwd_finish(loss + r, lse_out + r, probs + r * n if probs != NULL else NULL,
                       inv_sum + r if inv_sum != NULL else NULL, x + r * n, target[r],
                       ignore_index, smoothing, n, m[r], s[r])


cdef void _ce_fwd_finish(floating *loss, floating *lse_out, floating *probs, floating *inv_sum,
                         const floating *x, int64_t t, int64_t ignore_index, double smoothing,
                         Py_ssize_t n, double m, double s) noexcept nogil:
    """One row from its max m and s = sum exp(x - m) (probs holds exp(x - m) if not NULL)."""
    cdef Py_ssize_t j
    cdef double sxm = 0.0, ls, value = 0.0
    if probs != NULL and inv_sum == NULL:       # normalise: probs = softmax
        if floating is float:
            tga_rm.axpb(probs, <float>(1.0 / s), 0.0, n)
        else:
            for j in range(n):
                probs[j] = probs[j] / s
    if inv_sum != NULL:
        inv_sum[0] = <floating>(1.0 / s)
    ls = log(s)
    lse_out[0] = <floating>(m + ls)
    if t == ignore_index:
        loss[0] = 0
        return
    if smoothing != 1.0:
        value = (1.0 - smoothing) * ((m - x[t]) + ls)
    if smoothing != 0.0:
        if floating is float:
            sxm = tga_rm.sum(x, <float>m, n)
        else:
            for j in range(n):
                sxm += x[j] - m
        value = value + smoothing * (ls - sxm / n)
    loss[0] = <floating>value


cdef void _ce_bwd_row(floating *dx, double dloss, const floating *x, int64_t t,
                      int64_t ignore_index, double smoothing, double lse,
                      Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    cdef double off = smoothing / n, total = 0.0, e, scale
    if t == ignore_index:
        for j in range(n):
            dx[j] = 0
        return
    if floating is float:
        total = tga_rm.exp_sum(dx, x, <float>lse, n)
        tga_rm.axpb(dx, <float>(dloss / total), <float>(-dloss * off), n)
    else:
        for j in range(n):
            e = exp(x[j] - lse)
            dx[j] = e
            total += e
        scale = dloss / total
        for j in range(n):
            dx[j] = dx[j] * scale - dloss * off
    dx[t] = <floating>(dx[t] - dloss * (1.0 - smoothing))


cdef object _ce_fwd(floating *loss, floating *lse, floating *probs, floating *inv_sum,
                    const floating *x, const int64_t *target, int64_t ignore_index,
                    double smoothing, Py_ssize_t n_rows, Py_ssize_t n_cols, int n_threads):
    """loss, lse, inv_sum, target (N,); probs, x (N, C); probs, inv_sum may be NULL."""
    cdef Py_ssize_t i, p
    n_threads = _threads(n_threads, <double>n_rows * n_cols)
    for p in prange((n_rows + 1) // 2, nogil=True, schedule="static", num_threads=n_threads):
        i = 2 * p                                       # rows in pairs (see _ce_fwd_rows)
        _ce_fwd_rows(loss + i, lse + i, probs + i * n_cols if probs != NULL else NULL,
                     inv_sum + i if inv_sum != NULL else NULL, x + i * n_cols, target + i,
                     ignore_index, smoothing, min(2, n_rows - i), n_cols)


cdef void _ce_bwd_probs_row(floating *dx, double dloss, double inv_sum, const floating *p,
                            int64_t t, int64_t ignore_index, double smoothing,
                            Py_ssize_t n) noexcept nogil:
    """dx = dloss (p inv_sum - q): p the softmax (inv_sum 1) or exp(x - max) (inv_sum 1 / s)."""
    cdef Py_ssize_t j
    cdef floating scale = <floating>(dloss * inv_sum)
    cdef floating offset = <floating>(-dloss * smoothing / n)
    if t == ignore_index:
        for j in range(n):
            dx[j] = 0
        return
    for j in range(n):
        dx[j] = p[j] * scale + offset
    dx[t] = <floating>(dx[t] - dloss * (1.0 - smoothing))


cdef object _ce_bwd_probs(floating *dx, const floating *dloss, Py_ssize_t dloss_step,
                          const floating *probs, const floating *inv_sum,
                          const int64_t *target, int64_t ignore_index, double smoothing,
                          Py_ssize_t n_rows, Py_ssize_t n_cols, int n_threads):
    """dx, probs (N, C); dloss (N,) (dloss_step 1) or one value (0); inv_sum (N,) or NULL."""
    cdef Py_ssize_t i
    n_threads = _threads(n_threads, <double>n_rows * n_cols)
    for i in prange(n_rows, nogil=True, schedule="static", num_threads=n_threads):
        _ce_bwd_probs_row(dx + i * n_cols, dloss[i * dloss_step],
                          inv_sum[i] if inv_sum != NULL else 1.0, probs + i * n_cols,
                          target[i], ignore_index, smoothing, n_cols)


cdef object _ce_bwd(floating[:, ::1] dx, const floating[::1] dloss, Py_ssize_t dloss_step,
                    const floating[:, ::1] x, const int64_t[::1] target,
                    const floating[::1] lse, int64_t ignore_index, double smoothing,
                    int n_threads):
    """dloss_step 1: dloss (N,); 0: one dloss (1,) for every row (a mean's backward)."""
    cdef Py_ssize_t i, n_rows = x.shape[0], n_cols = x.shape[1]
    n_threads = _threads(n_threads, <double>n_rows * n_cols)
    for i in prange(n_rows, nogil=True, schedule="static", num_threads=n_threads):
        _ce_bwd_row(&dx[i, 0], dloss[i * dloss_step], &x[i, 0], target[i], ignore_index,
                    smoothing, lse[i], n_cols)


cdef Py_ssize_t _check_target(str fn, object target, Py_ssize_t N, Py_ssize_t C,
                              long long ignore_index) except -1:
    """Raises for a bad target; returns the number of rows whose target is not ignore_index."""
    if not isinstance(target, np.ndarray):
        raise TypeError(f"{fn}: target must be a numpy.ndarray, got {type(target).__name__}")
    if target.dtype is not _I64 and target.dtype != _I64:
        raise TypeError(f"{fn}: target must be int64 class indices, got {target.dtype}")
    if target.shape != (N,) or not target.flags.c_contiguous:
        raise ValueError(f"{fn}: target {target.shape} must be C-contiguous ({N},) for logits "
                         f"({N}, {C})")
    cdef const int64_t[::1] t = target
    cdef Py_ssize_t i, bad = -1, n_valid = 0
    cdef int64_t ti
    with nogil:                                  # one C pass, no temporaries
        for i in range(N):
            ti = t[i]
            if ti == ignore_index:
                continue
            if ti < 0 or ti >= C:
                bad = i
                break
            n_valid += 1
    if bad >= 0:
        raise IndexError(f"Target {int(t[bad])} is out of bounds (number of classes {C}).")
    return n_valid


def cross_entropy_fwd(loss, lse, logits, target, long long ignore_index,
                      double label_smoothing, int n_threads=0, probs=None, inv_sum=None):
    """Per-row cross-entropy of logits against class indices, and each row's log-sum-exp.

    Args:
        loss, lse: OUT (N,). logits: IN (N, C). target: IN (N,) int64 in [0, C) or ignore_index.
        label_smoothing: e in [0, 1]. n_threads: OpenMP threads over rows.
        probs: OUT (N, C) for softmax(logits) (cross_entropy_bwd_probs's input), or None.
        inv_sum: OUT (N,) with probs, or None: probs then gets exp(logits - row max), not
        normalised, and inv_sum each row's 1 / sum of it (pass both to the backward).
    Returns the number of rows whose target is not ignore_index (a mean's divisor).
    Raises IndexError for a target out of range (that is not ignore_index).
    """
    rows_isa_sync()
    N, C = _rows_cols("cross_entropy_fwd", "logits", logits)
    with_probs, with_inv = probs is not None, inv_sum is not None
    if with_inv and not with_probs:
        raise ValueError("cross_entropy_fwd: inv_sum needs probs")
    if with_inv:
        dtype = check_arrays("cross_entropy_fwd", ("loss", "lse", "probs", "inv_sum", "logits"),
                       (loss, lse, probs, inv_sum, logits), ((N,), (N,), (N, C), (N,), (N, C)),
                       4)
    elif with_probs:
        dtype = check_arrays("cross_entropy_fwd", ("loss", "lse", "probs", "logits"),
                       (loss, lse, probs, logits), ((N,), (N,), (N, C), (N, C)), 3)
    else:
        dtype = check_arrays("cross_entropy_fwd", ("loss", "lse", "logits"), (loss, lse, logits),
                       ((N,), (N,), (N, C)), 2)
    n_valid = _check_target("cross_entropy_fwd", target, N, C, ignore_index)
    check_apart("cross_entropy_fwd", ("loss", "lse", "probs", "inv_sum"),
                (loss, lse, probs, inv_sum), ("logits", "target"), (logits, target))
    if N == 0:
        return 0
    if C == 0:
        raise ValueError(f"cross_entropy_fwd: logits ({N}, 0) have no classes")
    if dtype == np.float32:
        _ce_fwd[float](<float *>_ptr(loss), <float *>_ptr(lse),
                       <float *>(_ptr(probs) if with_probs else NULL),
                       <float *>(_ptr(inv_sum) if with_inv else NULL), <const float *>_ptr(logits),
                       <const int64_t *>_ptr(target), ignore_index, label_smoothing, N, C,
                       n_threads)
    else:
        _ce_fwd[double](<double *>_ptr(loss), <double *>_ptr(lse),
                        <double *>(_ptr(probs) if with_probs else NULL),
                        <double *>(_ptr(inv_sum) if with_inv else NULL),
                        <const double *>_ptr(logits), <const int64_t *>_ptr(target), ignore_index,
                        label_smoothing, N, C, n_threads)
    return n_valid


def cross_entropy_bwd_probs(dlogits, dloss, probs, target, long long ignore_index,
                            double label_smoothing, int n_threads=0, inv_sum=None):
    """dlogits = dloss[i] * (probs - smoothed one-hot), 0 rows for ignored targets: the
    backward from the softmax cross_entropy_fwd wrote (one pass, no exponentials).

    Args:
        dlogits: OUT (N, C) (may be probs itself). dloss: IN (N,), or () for one value for
        every row. probs: IN (N, C) from cross_entropy_fwd. target: IN (N,) int64.
        inv_sum: IN (N,) when the forward wrote it (probs then unnormalised), else None.
    """
    rows_isa_sync()
    N, C = _rows_cols("cross_entropy_bwd_probs", "probs", probs)
    scalar = getattr(dloss, "ndim", None) == 0
    with_inv = inv_sum is not None
    names, arrays = ("dlogits", "dloss", "probs"), (dlogits, dloss, probs)
    shapes = ((N, C), () if scalar else (N,), (N, C))
    if with_inv:
        names, arrays, shapes = names + ("inv_sum",), arrays + (inv_sum,), shapes + ((N,),)
    dtype = check_arrays("cross_entropy_bwd_probs", names, arrays, shapes, 1)
    _check_target("cross_entropy_bwd_probs", target, N, C, ignore_index)
    check_apart("cross_entropy_bwd_probs", ("dlogits",), (dlogits,),
                ("dloss", "probs", "inv_sum", "target"), (dloss, probs, inv_sum, target),
                (("dlogits", "probs"),))
    if N == 0 or C == 0:
        return
    if scalar:
        dloss = dloss.reshape(1)
    if dtype == np.float32:
        _ce_bwd_probs[float](<float *>_ptr(dlogits), <const float *>_ptr(dloss),
                             0 if scalar else 1, <const float *>_ptr(probs),
                             <const float *>(_ptr(inv_sum) if with_inv else NULL),
                             <const int64_t *>_ptr(target), ignore_index, label_smoothing, N, C,
                             n_threads)
    else:
        _ce_bwd_probs[double](<double *>_ptr(dlogits), <const double *>_ptr(dloss),
                              0 if scalar else 1, <const double *>_ptr(probs),
                              <const double *>(_ptr(inv_sum) if with_inv else NULL),
                              <const int64_t *>_ptr(target), ignore_index, label_smoothing, N, C,
                              n_threads)


def cross_entropy_bwd(dlogits, dloss, logits, target, lse, long long ignore_index,
                      double label_smoothing, int n_threads=0):
    """dlogits = dloss[i] * (softmax(logits) - smoothed one-hot); 0 rows for ignored targets.

    Args:
        dlogits: OUT (N, C) (may be logits itself). dloss: IN (N,), or () for one value for
        every row (a mean's backward). logits: IN (N, C). target: IN (N,) int64.
        lse: IN (N,) from cross_entropy_fwd.
    """
    rows_isa_sync()
    N, C = _rows_cols("cross_entropy_bwd", "logits", logits)
    scalar = getattr(dloss, "ndim", None) == 0
    dtype = check_arrays("cross_entropy_bwd", ("dlogits", "dloss", "logits", "lse"),
                   (dlogits, dloss, logits, lse), ((N, C), () if scalar else (N,), (N, C), (N,)),
                   1)
    _check_target("cross_entropy_bwd", target, N, C, ignore_index)
    check_apart("cross_entropy_bwd", ("dlogits",), (dlogits,),
                ("dloss", "logits", "lse", "target"), (dloss, logits, lse, target),
                (("dlogits", "logits"),))
    if N == 0 or C == 0:
        return
    if scalar:
        dloss = dloss.reshape(1)
    if dtype == np.float32:
        _ce_bwd[float](dlogits, dloss, 0 if scalar else 1, logits, target, lse, ignore_index,
                       label_smoothing, n_threads)
    else:
        _ce_bwd[double](dlogits, dloss, 0 if scalar else 1, logits, target, lse, ignore_index,
                        label_smoothing, n_threads)
