"""Row kernels: softmax and log-softmax over the last axis of (..., C), layer norm over the
rows of (N, C), cross-entropy of logits (N, C) against int64 class indices; forward and
backward. The CUDA twins of _core's softmax family and of _rows (backend/cpu_kernels.py):
the same formulas in the same order, so the CPU backend is their test oracle.

Mapping: one block of tune["row_threads"] threads per row (grid = rows). Thread t reads the
entries t, t + threads, ... of its row (adjacent threads, adjacent addresses), keeps a
partial max or sum in a register, and the block combines the partials in _block_reduce, a
shared-memory tree (the simulator has no warp shuffles). A statistic costs one pass over
the row; passes after the first hit L1 / L2 for rows up to tens of thousands of entries.

    softmax      m = max_j x[i, j]; s = sum_j exp(x[i, j] - m)
                 y[i, j] = exp(x[i, j] - m) / s          log: (x[i, j] - m) - log(s)
                 dx = y * (dout - sum_j dout * y)        log: dout - exp(y) * sum_j dout
    layer norm   mean = sum_j x / C; var = sum_j (x - mean)^2 / C     (two-pass, population)
                 rstd = 1 / sqrt(var + eps); y = (x - mean) * rstd * w + b
                 dx = rstd * (g - mean_j g - xhat * mean_j(g * xhat)), g = dout * w
                 dw[j] = sum_i dout * xhat, db[j] = sum_i dout: column sums (below)
    cross-ent.   lse = m + log(s); loss = (1 - e) ((m - x[t]) + log s)
                                       + e (log s - mean_j (x[j] - m))   (0 if t ignored)
                 dx = dloss * (p - (1 - e) onehot(t) - e / C)             (0 if t ignored)

Layer norm's dweight / dbias sum columns over rows: a second kernel gives each thread one
column and each block row a chunk of rows (grid: column blocks x row chunks), and a third
adds the chunks' partial sums in order: deterministic, no atomics.

Rows are read in place when their entries are adjacent (last stride 1) and the leading dims
merge into one row stride (contiguous, row- or column-sliced, broadcast rows); any other
view is made contiguous first. Outputs are new contiguous arrays from the pool.

Precision: statistics accumulate in the input's dtype (float32 kernels are float32
throughout, as the compile report checks); the CPU sums float32 rows in double, so float32
results agree to float32 rounding times the depth of the sums. The max is subtracted before
every exp (no overflow for logits of 1e4 or 1e30); an all -inf row gives NaN (-inf - -inf),
as on the CPU and in PyTorch.

Bad targets: cross-entropy cannot raise from a kernel. A target outside [0, C) that is not
ignore_index sets the driver's error word (driver.check_word), and IndexError is raised at
the next host read, like a CUDA device-side assert: later, not at the call.
"""
import functools
import math

import numpy as np
from numba import cuda, types

from . import driver
from .array import CudaArray, empty
from .elementwise import astype, contiguous, full, scalar
from .launch import FLOATS, KernelSet, array_type, blocks_for, merge, numba_type, tuning

kernels = KernelSet("rows")

_INT = np.dtype(np.int64)
_I64 = types.int64


# ---- the block reduction every row kernel uses ---------------------------------------------
@functools.cache
def _block_reduce(op, threads):
    """A device function reduce(value, scratch) -> op ('sum' or 'max') of every thread's
    value, returned to every thread of the block.

    scratch: the calling kernel's shared array of threads + 1 entries of value's type (one
    per kernel, reused by every call). Every thread of the block must call it (it
    synchronises). A tree over a power-of-two block: log2(threads) steps, each halving the
    live entries; the last step writes the result into scratch[threads], which the next call
    writes only in its own last step, after every thread has passed that call's first
    barrier (and so has read this result): calls follow each other with no barrier between
    them. The max keeps the first operand when the other is NaN (a NaN still poisons the
    sum of exps that follows, so rows holding NaN come out NaN, as on the CPU)."""
    if threads < 1 or threads & (threads - 1):
        raise ValueError(f"row kernels need a power-of-two block, got row_threads={threads}")
    is_max = op == "max"

    def reduce(value, scratch):
        tid = cuda.threadIdx.x
        scratch[tid] = value
        cuda.syncthreads()
        step = threads // 2
        while step > 0:
            if tid < step:
                a = scratch[tid]
                b = scratch[tid + step]
                if is_max:
                    if b > a:
                        a = b
                else:
                    a = a + b
                scratch[threads if step == 1 else tid] = a
            cuda.syncthreads()
            step //= 2
        if threads == 1:
            return value
        return scratch[threads]
    return cuda.jit(device=True)(reduce)


@functools.cache
def _row_max_and_sum(threads, dtype):
    """A device function stats(x, src, C, scratch) -> (m, s): the max of the row
    x[src : src + C] and sum(exp(x - m)) over it, both returned to every thread (softmax's
    and cross-entropy's first two passes; every thread of the block must call it)."""
    T = np.dtype(dtype).type
    neg_inf, zero = T(-np.inf), T(0)
    block_max, block_sum = _block_reduce("max", threads), _block_reduce("sum", threads)

    def stats(x, src, C, scratch):
        tid = cuda.threadIdx.x
        m = neg_inf
        for j in range(tid, C, threads):
            v = x[src + j]
            if v > m:
                m = v
        m = block_max(m, scratch)
        s = zero
        for j in range(tid, C, threads):
            s += math.exp(x[src + j] - m)           # shifted by the max: <= 1, no overflow
        return m, block_sum(s, scratch)
    return cuda.jit(device=True)(stats)


# ---- softmax and log-softmax ---------------------------------------------------------------
_SOFTMAX_KEYS = [(dt, is_log) for dt in FLOATS for is_log in (False, True)]


@kernels.define(served=_SOFTMAX_KEYS)
def softmax_fwd_kernel(tune, dtype, is_log):
    threads = tune["row_threads"]
    n_scratch = threads + 1                         # _block_reduce's scratch
    NT = numba_type(dtype)
    row_stats = _row_max_and_sum(threads, np.dtype(dtype))

    def kernel(y, x, x_off, x_rs, C):
        # y (N, C) contiguous; x's row i at x_off + i * x_rs
        scratch = cuda.shared.array(n_scratch, NT)
        tid = cuda.threadIdx.x
        row = cuda.blockIdx.x
        src = x_off + row * x_rs
        dst = row * C
        m, s = row_stats(x, src, C, scratch)
        if is_log:
            log_s = math.log(s)
            for j in range(tid, C, threads):
                y[dst + j] = (x[src + j] - m) - log_s
        else:
            for j in range(tid, C, threads):
                y[dst + j] = math.exp(x[src + j] - m) / s
    A = array_type(dtype)
    return kernel, (A, A, _I64, _I64, _I64)


@kernels.define(served=_SOFTMAX_KEYS)
def softmax_bwd_kernel(tune, dtype, is_log):
    threads = tune["row_threads"]
    n_scratch = threads + 1                         # _block_reduce's scratch
    T, NT = np.dtype(dtype).type, numba_type(dtype)
    zero = T(0)
    block_sum = _block_reduce("sum", threads)

    def kernel(dx, y, y_off, y_rs, dout, d_off, d_rs, C):
        # dx (N, C) contiguous; y's row i at y_off + i * y_rs, dout's at d_off + i * d_rs
        scratch = cuda.shared.array(n_scratch, NT)
        tid = cuda.threadIdx.x
        row = cuda.blockIdx.x
        ys = y_off + row * y_rs
        ds = d_off + row * d_rs
        dst = row * C
        acc = zero
        for j in range(tid, C, threads):
            if is_log:
                acc += dout[ds + j]
            else:
                acc += dout[ds + j] * y[ys + j]
        acc = block_sum(acc, scratch)
        for j in range(tid, C, threads):
            if is_log:
                dx[dst + j] = dout[ds + j] - math.exp(y[ys + j]) * acc
            else:
                dx[dst + j] = y[ys + j] * (dout[ds + j] - acc)
    A = array_type(dtype)
    return kernel, (A, A, _I64, _I64, A, _I64, _I64, _I64)


# ---- layer norm ---------------------------------------------------------------------------
@kernels.define(served=[(dt, w, b) for dt in FLOATS for w in (False, True)
                        for b in (False, True)])
def layer_norm_fwd_kernel(tune, dtype, has_w, has_b):
    threads = tune["row_threads"]
    n_scratch = threads + 1                         # _block_reduce's scratch
    T, NT = np.dtype(dtype).type, numba_type(dtype)
    zero, one = T(0), T(1)
    block_sum = _block_reduce("sum", threads)

    def kernel(y, mean, rstd, x, x_off, x_rs, w, w_off, b, b_off, eps, C):
        # y (N, C), mean, rstd (N,) contiguous; w, b (C,) at w_off, b_off (read if has_*)
        scratch = cuda.shared.array(n_scratch, NT)
        tid = cuda.threadIdx.x
        row = cuda.blockIdx.x
        src = x_off + row * x_rs
        dst = row * C
        n = T(C)
        total = zero
        for j in range(tid, C, threads):
            total += x[src + j]
        mu = block_sum(total, scratch) / n
        sq = zero
        for j in range(tid, C, threads):
            d = x[src + j] - mu                     # two-pass: no cancellation far from 0
            sq += d * d
        r = one / math.sqrt(block_sum(sq, scratch) / n + eps)
        if tid == 0:
            mean[row] = mu
            rstd[row] = r
        for j in range(tid, C, threads):
            v = (x[src + j] - mu) * r
            if has_w:
                v = v * w[w_off + j]
            if has_b:
                v = v + b[b_off + j]
            y[dst + j] = v
    A, NTs = array_type(dtype), numba_type(dtype)
    return kernel, (A, A, A, A, _I64, _I64, A, _I64, A, _I64, NTs, _I64)


@kernels.define(served=[(dt, w) for dt in FLOATS for w in (False, True)])
def layer_norm_bwd_kernel(tune, dtype, has_w):
    threads = tune["row_threads"]
    n_scratch = threads + 1                         # _block_reduce's scratch
    T, NT = np.dtype(dtype).type, numba_type(dtype)
    zero = T(0)
    block_sum = _block_reduce("sum", threads)

    def kernel(dx, dout, d_off, d_rs, x, x_off, x_rs, w, w_off, mean, m_off, rstd, r_off, C):
        # dx (N, C) contiguous; dout, x rows at *_off + i * *_rs; mean, rstd (N,), w (C,)
        scratch = cuda.shared.array(n_scratch, NT)
        tid = cuda.threadIdx.x
        row = cuda.blockIdx.x
        ds = d_off + row * d_rs
        xs = x_off + row * x_rs
        dst = row * C
        n = T(C)
        mu = mean[m_off + row]
        r = rstd[r_off + row]
        sum_g = zero
        sum_gx = zero
        for j in range(tid, C, threads):
            g = dout[ds + j]
            if has_w:
                g = g * w[w_off + j]
            sum_g += g
            sum_gx += g * ((x[xs + j] - mu) * r)
        c1 = block_sum(sum_g, scratch) / n
        c2 = block_sum(sum_gx, scratch) / n
        for j in range(tid, C, threads):
            g = dout[ds + j]
            if has_w:
                g = g * w[w_off + j]
            dx[dst + j] = r * (g - c1 - (x[xs + j] - mu) * r * c2)
    A = array_type(dtype)
    return kernel, (A, A, _I64, _I64, A, _I64, _I64, A, _I64, A, _I64, A, _I64, _I64)


@kernels.define(served=[(dt,) for dt in FLOATS])
def layer_norm_colsum_kernel(tune, dtype):
    """Column partial sums: block (bx, chunk), thread column j = bx * threads + t adds rows
    [chunk * chunk_rows, ...) of dout * xhat and dout (reads along j are coalesced)."""
    threads = tune["row_threads"]
    zero = np.dtype(dtype).type(0)

    def kernel(dw, db, dout, d_off, d_rs, x, x_off, x_rs, mean, m_off, rstd, r_off, N, C,
               chunk_rows):
        # dw, db (n_chunks, C): this chunk's partial sums
        j = cuda.blockIdx.x * threads + cuda.threadIdx.x
        chunk = cuda.blockIdx.y
        if j < C:
            acc_w = zero
            acc_b = zero
            for i in range(chunk * chunk_rows, min(N, (chunk + 1) * chunk_rows)):
                g = dout[d_off + i * d_rs + j]
                acc_w += g * ((x[x_off + i * x_rs + j] - mean[m_off + i]) * rstd[r_off + i])
                acc_b += g
            dw[chunk * C + j] = acc_w
            db[chunk * C + j] = acc_b
    A = array_type(dtype)
    return kernel, (A, A, A, _I64, _I64, A, _I64, _I64, A, _I64, A, _I64, _I64, _I64, _I64)


@kernels.define(served=[(dt,) for dt in FLOATS])
def layer_norm_colsum_finish_kernel(tune, dtype):
    """dweight, dbias (C,) = the chunks' partial rows (n_chunks, C) added in chunk order."""

    def kernel(dweight, dbias, dw, db, n_chunks, C):
        for j in range(cuda.grid(1), C, cuda.gridsize(1)):
            acc_w = dw[j]
            acc_b = db[j]
            for c in range(1, n_chunks):
                acc_w += dw[c * C + j]
                acc_b += db[c * C + j]
            dweight[j] = acc_w
            dbias[j] = acc_b
    A = array_type(dtype)
    return kernel, (A, A, A, A, _I64, _I64)


# ---- cross-entropy -------------------------------------------------------------------------
@kernels.define(served=[(dt, p) for dt in FLOATS for p in (False, True)])
def cross_entropy_fwd_kernel(tune, dtype, with_probs):
    threads = tune["row_threads"]
    n_scratch = threads + 1                         # _block_reduce's scratch
    T, NT = np.dtype(dtype).type, numba_type(dtype)
    zero, one = T(0), T(1)
    block_sum = _block_reduce("sum", threads)
    row_stats = _row_max_and_sum(threads, np.dtype(dtype))

    def kernel(loss, lse, probs, count, x, x_off, x_rs, target, t_off, t_rs, ignore_index,
               smoothing, err, code, N, C):
        # loss, lse (N,), probs (N, C) (if with_probs), count () contiguous; x's row i at
        # x_off + i * x_rs, target[i] at t_off + i * t_rs; err[0] = code flags a bad target
        scratch = cuda.shared.array(n_scratch, NT)
        counts = cuda.shared.array(n_scratch, types.int64)
        tid = cuda.threadIdx.x
        row = cuda.blockIdx.x
        src = x_off + row * x_rs
        t = target[t_off + row * t_rs]
        m, s = row_stats(x, src, C, scratch)
        sxm = zero
        if smoothing != zero:                       # uniform: every thread reduces, or none
            for j in range(tid, C, threads):
                sxm += x[src + j] - m
            sxm = block_sum(sxm, scratch)
        if with_probs:
            for j in range(tid, C, threads):
                probs[row * C + j] = math.exp(x[src + j] - m) / s
        if tid == 0:
            log_s = math.log(s)
            lse[row] = m + log_s
            value = zero
            if t != ignore_index:
                if t < 0 or t >= C:
                    err[0] = code                   # IndexError at the next host read
                else:
                    if smoothing != one:            # a term whose factor is 0 is skipped:
                        value = (one - smoothing) * ((m - x[src + t]) + log_s)   # no 0 * inf
                    if smoothing != zero:
                        value = value + smoothing * (log_s - sxm / T(C))
            loss[row] = value
        if row == 0:                                # block 0 also counts the rows not ignored
            valid = 0
            for i in range(tid, N, threads):
                if target[t_off + i * t_rs] != ignore_index:
                    valid += 1
            valid = block_sum(valid, counts)        # exact: int64 partials
            if tid == 0:
                count[0] = T(valid)
    A, I, E = array_type(dtype), array_type(_INT), array_type(np.int32)
    return kernel, (A, A, A, A, A, _I64, _I64, I, _I64, _I64, _I64, NT, E, types.int32,
                    _I64, _I64)


@kernels.define(served=[(dt,) for dt in FLOATS])
def cross_entropy_bwd_kernel(tune, dtype):
    """No reduction: each thread scales its entries of the row's softmax."""
    threads = tune["row_threads"]
    T, NT = np.dtype(dtype).type, numba_type(dtype)
    zero, one = T(0), T(1)

    def kernel(dx, dloss, dl_off, dl_rs, probs, p_off, p_rs, target, t_off, t_rs,
               ignore_index, smoothing, err, code, C):
        # dx (N, C) contiguous; dloss[i] at dl_off + i * dl_rs (dl_rs 0: one for every row)
        tid = cuda.threadIdx.x
        row = cuda.blockIdx.x
        src = p_off + row * p_rs
        dst = row * C
        t = target[t_off + row * t_rs]
        if t == ignore_index or t < 0 or t >= C:
            if t != ignore_index and tid == 0:
                err[0] = code
            for j in range(tid, C, threads):
                dx[dst + j] = zero
        else:
            d = dloss[dl_off + row * dl_rs]
            offset = -d * smoothing / T(C)
            hot = d * (one - smoothing)
            for j in range(tid, C, threads):
                v = probs[src + j] * d + offset
                if j == t:
                    v = v - hot
                dx[dst + j] = v
    A, I, E = array_type(dtype), array_type(_INT), array_type(np.int32)
    return kernel, (A, A, _I64, _I64, A, _I64, _I64, I, _I64, _I64, _I64, NT, E,
                    types.int32, _I64)


# ---- host side: checks, row views, launches --------------------------------------------------
def _launch_rows(name, key, n_rows, *args):
    """One block of row_threads threads per row."""
    kernels.launch(name, key, n_rows, tuning()["row_threads"], *args)


def _float_dtype(fn, names, arrays):
    """The one float dtype of arrays; TypeError naming each dtype otherwise (the CPU's)."""
    dtypes = {a.dtype for a in arrays}
    if len(dtypes) != 1 or arrays[0].dtype not in FLOATS:
        listed = ", ".join(f"{n} {a.dtype}" for n, a in zip(names, arrays))
        raise TypeError(f"{fn}: all arrays must have the same dtype, float32 or float64; "
                        f"got {listed}")
    return arrays[0].dtype


def _check_array(fn, name, x):
    if not isinstance(x, CudaArray):
        raise TypeError(f"{fn}: {name} must be a cuda array, got {type(x).__name__}")


def _rows(x):
    """(x or a contiguous copy of it, row stride): x (..., C) read as rows of C adjacent
    entries, row i at x.offset + i * stride. In place when the last stride is 1 and the
    leading dims merge into one; else copied."""
    if x.ndim == 0:
        return x, 1
    C = x.shape[-1]
    if C > 1 and x.strides[-1] != 1:
        x = contiguous(x)
    lead, (strides,) = merge(x.shape[:-1], x.strides[:-1])
    if len(lead) > 1:
        x = contiguous(x)
        return x, C
    return x, (strides[0] if lead else C)


def _softmax(fn, x, is_log):
    _check_array(fn, "x", x)
    dtype = _float_dtype(fn, ("x",), (x,))
    y = empty(x.shape, dtype)                                       # (..., C)
    C = x.shape[-1] if x.ndim else 1
    n_rows = y.size // C if C else 0
    if n_rows:
        x, x_rs = _rows(x)
        _launch_rows("softmax_fwd_kernel", (dtype, is_log), n_rows, y.buf, x.buf, x.offset,
                     x_rs, C)
    return y


def _softmax_grad(fn, y, dout, is_log):
    _check_array(fn, "y", y)
    _check_array(fn, "dout", dout)
    dtype = _float_dtype(fn, ("y", "dout"), (y, dout))
    if y.shape != dout.shape:
        raise ValueError(f"{fn}: shapes differ: y {y.shape}, dout {dout.shape}")
    dx = empty(y.shape, dtype)                                      # (..., C)
    C = y.shape[-1] if y.ndim else 1
    n_rows = dx.size // C if C else 0
    if n_rows:
        y, y_rs = _rows(y)
        dout, d_rs = _rows(dout)
        _launch_rows("softmax_bwd_kernel", (dtype, is_log), n_rows, dx.buf, y.buf, y.offset,
                     y_rs, dout.buf, dout.offset, d_rs, C)
    return dx


def softmax_fwd(x):
    """y = softmax(x) over the last axis; x (..., C) any strides -> y (..., C) contiguous."""
    return _softmax("softmax_fwd", x, False)


def softmax_bwd(y, dout):
    """dx = y * (dout - sum(dout * y, -1)); y, dout (..., C) -> dx (..., C)."""
    return _softmax_grad("softmax_bwd", y, dout, False)


def log_softmax_fwd(x):
    """y = x - logsumexp(x, -1) = (x - max) - log(sum exp(x - max)); x (..., C)."""
    return _softmax("log_softmax_fwd", x, True)


def log_softmax_bwd(y, dout):
    """dx = dout - exp(y) * sum(dout, -1); y, dout (..., C) -> dx (..., C)."""
    return _softmax_grad("log_softmax_bwd", y, dout, True)


def _check_shapes(fn, named):
    """named: (name, array, expected shape), the first the reference (2-D)."""
    for name, a, shape in named:
        if a is not None and a.shape != shape:
            listed = ", ".join(f"{n} {x.shape}" for n, x, _ in named if x is not None)
            raise ValueError(f"{fn}: {name} has shape {a.shape}, expected {shape} ({listed})")


def _matrix(fn, name, x):
    _check_array(fn, name, x)
    if x.ndim != 2:
        raise ValueError(f"{fn}: {name} must be 2-D (N, C), got shape {x.shape}")
    return x.shape


def layer_norm_fwd(x, weight, bias, eps):
    """y = (x - mean) * rstd * weight + bias over the rows of x (N, C).

    Returns y (N, C), mean (N,), rstd (N,) = 1 / sqrt(population var + eps), in x's dtype.
    weight, bias: (C,) or None. A (N, 0) x gives NaN mean and rstd (the mean of nothing)."""
    N, C = _matrix("layer_norm_fwd", "x", x)
    named = [("x", x, (N, C)), ("weight", weight, (C,)), ("bias", bias, (C,))]
    _check_shapes("layer_norm_fwd", named)
    present = [(n, a) for n, a, _ in named if a is not None]
    dtype = _float_dtype("layer_norm_fwd", *zip(*present))
    y = empty((N, C), dtype)                                        # (N, C)
    if C == 0:
        return y, full((N,), np.nan, dtype), full((N,), np.nan, dtype)
    mean = empty((N,), dtype)                                       # (N,)
    rstd = empty((N,), dtype)                                       # (N,)
    if N == 0:
        return y, mean, rstd
    x, x_rs = _rows(x)
    w = x if weight is None else contiguous(weight)      # x: a placeholder never read
    b = x if bias is None else contiguous(bias)
    _launch_rows("layer_norm_fwd_kernel", (dtype, weight is not None, bias is not None), N,
                 y.buf, mean.buf, rstd.buf, x.buf, x.offset, x_rs, w.buf, w.offset, b.buf,
                 b.offset, dtype.type(eps), C)
    return y, mean, rstd


def _chunks(N):
    """(n_chunks, rows per chunk) for the column sums: enough blocks to fill the device,
    chunks of at least rows_colsum_min_rows rows."""
    tune = tuning()
    n_chunks = max(1, min(tune["rows_colsum_chunks"], -(-N // tune["rows_colsum_min_rows"])))
    chunk_rows = -(-N // n_chunks)
    return -(-N // chunk_rows), chunk_rows


def layer_norm_bwd(dout, x, weight, mean, rstd):
    """Gradients of layer_norm_fwd from its mean and rstd: dx (N, C), dweight (C,) (None when
    weight is None), dbias (C,). dweight and dbias sum over rows in row chunks, the chunks
    added in order (deterministic)."""
    fn = "layer_norm_bwd"
    N, C = _matrix(fn, "x", x)
    for name, a in (("dout", dout), ("mean", mean), ("rstd", rstd)):
        _check_array(fn, name, a)
    named = [("dout", dout, (N, C)), ("x", x, (N, C)), ("weight", weight, (C,)),
             ("mean", mean, (N,)), ("rstd", rstd, (N,))]
    _check_shapes(fn, named)
    present = [(n, a) for n, a, _ in named if a is not None]
    dtype = _float_dtype(fn, *zip(*present))
    has_w = weight is not None
    dx = empty((N, C), dtype)                                       # (N, C)
    if N == 0 or C == 0:
        dbias = full((C,), 0, dtype)
        return dx, (full((C,), 0, dtype) if has_w else None), dbias
    dout, d_rs = _rows(dout)
    x, x_rs = _rows(x)
    mean, rstd = contiguous(mean), contiguous(rstd)
    w = contiguous(weight) if has_w else x               # x: a placeholder never read
    _launch_rows("layer_norm_bwd_kernel", (dtype, has_w), N, dx.buf, dout.buf, dout.offset,
                 d_rs, x.buf, x.offset, x_rs, w.buf, w.offset, mean.buf, mean.offset,
                 rstd.buf, rstd.offset, C)
    dweight = empty((C,), dtype)                                    # (C,)
    dbias = empty((C,), dtype)                                      # (C,)
    n_chunks, chunk_rows = _chunks(N)
    if n_chunks == 1:                       # one chunk: its sums are the result
        dw, db = dweight, dbias
    else:
        dw, db = empty((n_chunks, C), dtype), empty((n_chunks, C), dtype)
    threads = tuning()["row_threads"]
    kernels.launch("layer_norm_colsum_kernel", (dtype,), (-(-C // threads), n_chunks),
                   threads, dw.buf, db.buf, dout.buf, dout.offset, d_rs, x.buf, x.offset,
                   x_rs, mean.buf, mean.offset, rstd.buf, rstd.offset, N, C, chunk_rows)
    if n_chunks > 1:
        threads = tuning()["threads"]
        kernels.launch("layer_norm_colsum_finish_kernel", (dtype,), blocks_for(C, threads),
                       threads, dweight.buf, dbias.buf, dw.buf, db.buf, n_chunks, C)
    return dx, (dweight if has_w else None), dbias


def _check_target(fn, target, N, C):
    _check_array(fn, "target", target)
    if target.dtype != _INT:
        raise TypeError(f"{fn}: target must be int64 class indices, got {target.dtype}")
    if target.shape != (N,):
        raise ValueError(f"{fn}: target {target.shape} must be ({N},) for logits ({N}, {C})")


def _bad_target(C):
    """The device error word and code for a target outside [0, C)."""
    return driver.check_word(IndexError, f"Target out of bounds (number of classes {C}): a "
                             f"target outside [0, {C}) that is not ignore_index (flagged by "
                             f"a cuda kernel, raised at the next host read)")


def cross_entropy_fwd(logits, target, ignore_index, label_smoothing, with_probs=False):
    """Per-row cross-entropy of logits (N, C) against target (N,) int64 class indices.

    Returns loss (N,) (0 where target == ignore_index), lse (N,) = logsumexp(logits, -1),
    the number of rows not ignored as a 0-d array of logits' dtype (on the device: no host
    copy; exact below 2**24 rows in float32; divide by it for a mean, 0 / 0 giving NaN when
    every row is ignored), and softmax(logits) (N, C) when with_probs, else None.

    A target outside [0, C) that is not ignore_index raises IndexError at the next host read
    (a device-side check, as a CUDA device assert), not here; its row's loss is 0.
    """
    fn = "cross_entropy_fwd"
    N, C = _matrix(fn, "logits", logits)
    dtype = _float_dtype(fn, ("logits",), (logits,))
    _check_target(fn, target, N, C)
    if N and C == 0:
        raise ValueError(f"{fn}: logits ({N}, 0) have no classes")
    loss = empty((N,), dtype)                                       # (N,)
    lse = empty((N,), dtype)                                        # (N,)
    probs = empty((N, C), dtype) if with_probs else None            # (N, C)
    if N == 0:
        return loss, lse, full((), 0, dtype), probs
    count = empty((), dtype)                                        # ()
    x, x_rs = _rows(logits)
    err, code = _bad_target(C)
    _launch_rows("cross_entropy_fwd_kernel", (dtype, with_probs), N, loss.buf, lse.buf,
                 (probs if with_probs else loss).buf, count.buf, x.buf, x.offset, x_rs,
                 target.buf, target.offset, target.strides[0], int(ignore_index),
                 dtype.type(label_smoothing), err, code, N, C)
    return loss, lse, count, probs


def cross_entropy_bwd(dloss, probs, target, ignore_index, label_smoothing):
    """dlogits (N, C) = dloss * (probs - (1 - e) onehot(target) - e / C), 0 rows where
    target == ignore_index; probs the softmax cross_entropy_fwd returned, dloss (N,), a 0-d
    array or a number (one value for every row). A bad target raises IndexError at the next
    host read, as in the forward."""
    fn = "cross_entropy_bwd"
    N, C = _matrix(fn, "probs", probs)
    dtype = _float_dtype(fn, ("probs",), (probs,))
    _check_target(fn, target, N, C)
    if not isinstance(dloss, CudaArray):
        dloss = scalar(dloss, dtype)
    dloss = astype(dloss, dtype)
    if dloss.shape not in ((), (N,)):
        raise ValueError(f"{fn}: dloss has shape {dloss.shape}, expected ({N},) or ()")
    dx = empty((N, C), dtype)                                       # (N, C)
    if N == 0 or C == 0:
        return dx
    p, p_rs = _rows(probs)
    dl_stride = dloss.strides[0] if dloss.ndim else 0
    err, code = _bad_target(C)
    _launch_rows("cross_entropy_bwd_kernel", (dtype,), N, dx.buf, dloss.buf, dloss.offset,
                 dl_stride, p.buf, p.offset, p_rs, target.buf, target.offset,
                 target.strides[0],
                 int(ignore_index), dtype.type(label_smoothing), err, code, C)
    return dx
