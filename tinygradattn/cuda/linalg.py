"""Matmul and linear: one tiled GEMM kernel family with its epilogues, and a column sum.

GEMM: out[z, i, j] = post(bias[j] + sum_k a[z, i, k] * b[z, k, j])

    for (z, i0, j0) in batch x row tiles x column tiles:   one block each, a 1-D grid
        for k0 in range(0, K, TK):
            As[k, i] = a[z, i0 + i, k0 + k]; Bs[k, j] = ...     shared, zero-filled at edges
            for k in range(TK):                                  each thread: RM x RN outputs
                acc[r, c] += As[k, ty + r * TY] * Bs[k, tx + c * TX]   in registers
        out[...] = post(acc + bias)                              the epilogue, in registers

Tiles: TM x TN x TK = tune["gemm_tile_m" / "_n" / "_k"], each thread's register tile RM x RN
= tune["gemm_micro_m" / "_n"] (a `cuda.local.array` of compile-time size: the loops over it
unroll and it stays in registers). A thread's rows and columns are strided by TY = TM / RM and
TX = TN / RN, so neighbouring threads read neighbouring shared-memory words and write
neighbouring output columns. Operands are read in place through their strides: a transposed
operand (weight.T in linear_fwd, dout.T for dweight) costs no copy; the tile loads walk
whichever of a tile's axes has stride 1, so they coalesce for either layout. Batch dims
(broadcast: stride 0) reach the kernel merged (launch.merge) as dims tuples, turned into
each operand's offset once, before the main loop. Indices are cast to uint64 (`U`): numba
then emits no negative-index wraparound, which kept addresses (registers) live in the loop.
At GPU_TUNING (64x64x16, 4x4): 256 threads, 96 registers (float32) / 128 (float64), no
spills, 9 / 17 KiB shared memory.

Epilogue variants (the kernel's key beside the dtype): + bias (per column), then one of
"add" (a residual (M, N), any strides), "mul" (dx_mul, elementwise), "gelu:none" /
"gelu:tanh" (out = gelu(h) and grad = gelu'(h): two outputs). Order as the CPU's gemm:
(acc + bias) * mul + add.

Column sum (dbias = dout summed over rows): blocks of CX columns x CY row lanes; each lane
sums every CY-th row of its chunk, then a shared-memory tree adds the lanes. Long inputs are
cut into row chunks (grid y) whose partial sums a second pass of the same kernel adds: the
order is fixed, so the result is the same every run.
"""
import math

import numpy as np
from numba import cuda, types, uint64

from . import scalar_ops
from .array import contiguous_strides, empty, view
from .elementwise import astype, broadcast_shapes, broadcast_strides, strided_index
from .launch import (FLOATS, KernelSet, array_type, device_function, dims, dims_type, merge,
                     numba_type, tuning)

kernels = KernelSet("linalg")

_MAX_GRID_X = 2 ** 31 - 1   # CUDA's limit on gridDim.x

# the epilogues the primitives use: (bias?, post) for each dtype
_EPILOGUES = [(False, "none"), (True, "none"), (False, "add"), (True, "add"), (False, "mul"),
              (False, "gelu:none"), (True, "gelu:none"), (False, "gelu:tanh"),
              (True, "gelu:tanh")]
_POST_CODE = {"none": 0, "add": 1, "mul": 2, "gelu:none": 3, "gelu:tanh": 3}


def _gelu_pair(T, post):
    """(gelu, gelu') as device functions; the exact form where post is no GELU (unused)."""
    approximate = post.partition(":")[2] or "none"
    return (cuda.jit(device=True)(scalar_ops.gelu(T, approximate)),
            cuda.jit(device=True)(scalar_ops.gelu_grad(T, approximate)))


@kernels.define(served=[(dt, has_bias, post) for dt in FLOATS for has_bias, post in _EPILOGUES])
def gemm(tune, dtype, has_bias, post):
    T, NT = np.dtype(dtype).type, numba_type(dtype)
    TM, TN, TK = tune["gemm_tile_m"], tune["gemm_tile_n"], tune["gemm_tile_k"]
    RM, RN = tune["gemm_micro_m"], tune["gemm_micro_n"]
    TY, TX = TM // RM, TN // RN                 # threads along a tile's rows, columns
    n_threads = TY * TX
    if (TY * RM != TM or TX * RN != TN or (TM * TK) % n_threads or (TK * TN) % n_threads
            or n_threads % TK or n_threads % TM or n_threads % TN):
        raise ValueError(f"gemm tiles {TM}x{TN}x{TK} / micro {RM}x{RN}: the micro tile must "
                         "divide the block tile, the thread count each shared tile, and "
                         "TM, TN and TK the thread count")
    A_LOADS, B_LOADS = TM * TK // n_threads, TK * TN // n_threads   # loads per thread
    AP, BP = TM + 1, TN + 1                 # shared row pitches, padded: see the kernel
    A_SIZE, B_SIZE = TK * AP, TK * BP       # (numba wants a constant, not an expression)
    POST = _POST_CODE[post]
    HAS_BIAS = bool(has_bias)
    act, act_grad = _gelu_pair(T, post)
    index = device_function(strided_index)
    zero = T(0)
    U = uint64                              # an index known >= 0: no negative-index code

    def kernel(out, grad,                                   # OUT (n_batch, M, N) contiguous
               a, a_off, a_batch, a_sm, a_sk,               # IN  (*batch, M, K)
               b, b_off, b_batch, b_sk, b_sn,               # IN  (*batch, K, N)
               bias, bias_off, bias_s,                      # IN  (N,) (has_bias)
               e, e_off, e_sm, e_sn,                        # IN  (M, N) residual or dx_mul
               batch_shape, batch_ndim, M, N, K):
        # shared tiles, k-major and padded by one: a store along k hits distinct banks
        As = cuda.shared.array(A_SIZE, NT)      # As[k * AP + i] = a[z, i0 + i, k0 + k]
        Bs = cuda.shared.array(B_SIZE, NT)      # Bs[k * BP + j] = b[z, k0 + k, j0 + j]
        acc = cuda.local.array((RM, RN), NT)    # registers: every index below is constant
        ra = cuda.local.array(RM, NT)
        rb = cuda.local.array(RN, NT)
        tid = cuda.threadIdx.x
        ty = tid // TX
        tx = tid % TX
        # one block per (batch, row tile, column tile), column tiles fastest: a 1-D grid
        # (gridDim.x goes to 2**31 - 1; y and z stop at 65535). Computed once, so the batch
        # dims tuples are dead before the main loop and hold no registers there.
        n_tiles_n = (N + TN - 1) // TN
        n_tiles = n_tiles_n * ((M + TM - 1) // TM)
        z = cuda.blockIdx.x // n_tiles
        tile = cuda.blockIdx.x % n_tiles
        i0 = (tile // n_tiles_n) * TM
        j0 = (tile % n_tiles_n) * TN
        # the tile elements this thread loads: (ai, ak) first, then every (adi, adk) further;
        # consecutive threads walk the operand's contiguous axis (k for a row-major a)
        if a_sk == 1:
            ai, ak, adi, adk = tid // TK, tid % TK, n_threads // TK, 0
        else:
            ai, ak, adi, adk = tid % TM, tid // TM, 0, n_threads // TM
        if b_sk == 1 and b_sn != 1:
            bj, bk, bdj, bdk = tid // TK, tid % TK, n_threads // TK, 0
        else:
            bj, bk, bdj, bdk = tid % TN, tid // TN, 0, n_threads // TN
        a_step = adi * a_sm + adk * a_sk            # one load step further: in a, in As
        as_step = adk * AP + adi
        b_step = bdk * b_sk + bdj * b_sn
        bs_step = bdk * BP + bdj
        a_pos = a_off + index(z, batch_shape, a_batch, batch_ndim) + (i0 + ai) * a_sm \
            + ak * a_sk                             # at a[z, i0 + ai, k0 + ak]
        b_pos = b_off + index(z, batch_shape, b_batch, batch_ndim) + bk * b_sk \
            + (j0 + bj) * b_sn                      # at b[z, k0 + bk, j0 + bj]
        for r in range(RM):
            for c in range(RN):
                acc[r, c] = zero
        for k0 in range(0, K, TK):
            for step in range(A_LOADS):             # zero-filled outside a
                v = zero
                if i0 + ai + step * adi < M and k0 + ak + step * adk < K:
                    v = a[U(a_pos + step * a_step)]
                As[U(ak * AP + ai + step * as_step)] = v
            for step in range(B_LOADS):
                v = zero
                if j0 + bj + step * bdj < N and k0 + bk + step * bdk < K:
                    v = b[U(b_pos + step * b_step)]
                Bs[U(bk * BP + bj + step * bs_step)] = v
            a_pos += TK * a_sk
            b_pos += TK * b_sk
            cuda.syncthreads()
            for kk in range(TK):
                for r in range(RM):
                    ra[r] = As[U(kk * AP + ty + r * TY)]
                for c in range(RN):
                    rb[c] = Bs[U(kk * BP + tx + c * TX)]
                for r in range(RM):
                    for c in range(RN):
                        acc[r, c] += ra[r] * rb[c]
            cuda.syncthreads()                      # read before the next load overwrites
        o_base = z * M * N
        for r in range(RM):
            i = i0 + ty + r * TY
            for c in range(RN):
                j = j0 + tx + c * TX
                if i < M and j < N:
                    h = acc[r, c]
                    if HAS_BIAS:
                        h += bias[U(bias_off + j * bias_s)]
                    if POST == 1:
                        h += e[U(e_off + i * e_sm + j * e_sn)]
                    elif POST == 2:
                        h *= e[U(e_off + i * e_sm + j * e_sn)]
                    if POST == 3:
                        out[U(o_base + i * N + j)] = act(h)
                        grad[U(o_base + i * N + j)] = act_grad(h)
                    else:
                        out[U(o_base + i * N + j)] = h

    A, I64, D = array_type(dtype), types.int64, dims_type()
    return kernel, (A, A, A, I64, D, I64, I64, A, I64, D, I64, I64, A, I64, I64,
                    A, I64, I64, I64, D, I64, I64, I64, I64)


@kernels.define(served=[(dt,) for dt in FLOATS])
def column_sum(tune, dtype):
    T, NT = np.dtype(dtype).type, numba_type(dtype)
    CX, CY = tune["linalg_sum_cols"], tune["linalg_sum_rows"]
    if CY & (CY - 1):
        raise ValueError(f"linalg_sum_rows must be a power of two, got {CY}")
    zero = T(0)

    def kernel(out,                                 # OUT (n_chunks, n_cols) contiguous
               x, x_off, x_sr, x_sc,                # IN  (n_rows, n_cols) any strides
               n_rows, n_cols, rows_per_chunk):
        part = cuda.shared.array((CY, CX), NT)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        j = cuda.blockIdx.x * CX + tx
        chunk = cuda.blockIdx.y
        stop = min(chunk * rows_per_chunk + rows_per_chunk, n_rows)
        s = zero
        if j < n_cols:
            for i in range(chunk * rows_per_chunk + ty, stop, CY):
                s += x[x_off + i * x_sr + j * x_sc]
        part[ty, tx] = s
        cuda.syncthreads()
        half = CY // 2
        while half > 0:                     # the same trip count in every thread
            if ty < half:
                part[ty, tx] += part[ty + half, tx]
            cuda.syncthreads()
            half //= 2
        if ty == 0 and j < n_cols:
            out[chunk * n_cols + j] = part[0, tx]

    A, I64 = array_type(dtype), types.int64
    return kernel, (A, A, I64, I64, I64, I64, I64, I64)


# ---- host side: checks, operand strides, launches ------------------------------------------
def _cdiv(n, d):
    return -(-n // d)


def _check_dtypes(fn, names, arrays):
    """The one float dtype of arrays (None entries skipped); TypeError naming them else."""
    given = [(n, x) for n, x in zip(names, arrays) if x is not None]
    dtype = given[0][1].dtype
    if dtype not in FLOATS or any(x.dtype != dtype for _, x in given):
        listed = ", ".join(f"{n} {x.dtype}" for n, x in given)
        raise TypeError(f"{fn}: all arrays must have the same dtype, float32 or float64; "
                        f"got {listed}")
    return dtype


def _check_2d(fn, names, arrays):
    for name, x in zip(names, arrays):
        if x.ndim != 2:
            raise ValueError(f"{fn}: {name} must be 2-D, got shape {x.shape}")


def _check_like(fn, name, x, shape, what):
    if x is not None and x.shape != shape:
        raise ValueError(f"{fn}: {name} {x.shape} should be {shape} for {what}")


def _gemm(out, a, a_strides, b, b_strides, M, N, K, batch=(), a_batch=(), b_batch=(),
          bias=None, post="none", e=None, grad=None):
    """out (*batch, M, N) = post(a @ b + bias); a_strides (row, col) of a (M, K), b_strides of
    b (K, N), a_batch / b_batch: their strides over batch (0 where broadcast)."""
    n_batch = math.prod(batch)
    if not (M and N and n_batch):
        return out
    tune = tuning()
    TM, TN = tune["gemm_tile_m"], tune["gemm_tile_n"]
    n_threads = (TM // tune["gemm_micro_m"]) * (TN // tune["gemm_micro_n"])
    n_blocks = n_batch * _cdiv(M, TM) * _cdiv(N, TN)
    if n_blocks > _MAX_GRID_X:
        raise ValueError(f"gemm: {n_batch} products of ({M}, {K}) @ ({K}, {N}) need "
                         f"{n_blocks} blocks, more than a grid holds ({_MAX_GRID_X})")
    shape, (sa, sb, _) = merge(batch, a_batch, b_batch, contiguous_strides(batch))
    bias_args = (bias.buf, bias.offset, bias.strides[0]) if bias is not None else (out.buf, 0, 0)
    e_args = (e.buf, e.offset, e.strides[0], e.strides[1]) if e is not None else (out.buf, 0,
                                                                                   0, 0)
    kernels.launch("gemm", (out.dtype, bias is not None, post), n_blocks, n_threads,
                   out.buf, out.buf if grad is None else grad.buf,
                   a.buf, a.offset, dims(sa, 0), a_strides[0], a_strides[1],
                   b.buf, b.offset, dims(sb, 0), b_strides[0], b_strides[1],
                   *bias_args, *e_args, dims(shape, 1), len(shape), M, N, K)
    return out


def _column_sum(x):
    """x (n_rows, n_cols) any strides -> (n_cols,) sums over rows; two passes when long."""
    n_rows, n_cols = x.shape
    out = empty((n_cols,), x.dtype)
    if not n_cols:
        return out
    tune = tuning()
    CX, CY = tune["linalg_sum_cols"], tune["linalg_sum_rows"]
    n_chunks = max(1, min(_cdiv(n_rows, tune["linalg_sum_chunk_rows"]),
                          tune["linalg_sum_max_chunks"]))
    key, grid_x = (x.dtype,), _cdiv(n_cols, CX)
    if n_chunks == 1:
        kernels.launch("column_sum", key, (grid_x, 1), (CX, CY), out.buf, x.buf, x.offset,
                       x.strides[0], x.strides[1], n_rows, n_cols, max(n_rows, 1))
        return out
    partial = empty((n_chunks, n_cols), x.dtype)            # one row of sums per chunk
    kernels.launch("column_sum", key, (grid_x, n_chunks), (CX, CY), partial.buf, x.buf,
                   x.offset, x.strides[0], x.strides[1], n_rows, n_cols,
                   _cdiv(n_rows, n_chunks))
    kernels.launch("column_sum", key, (grid_x, 1), (CX, CY), out.buf, partial.buf, 0, n_cols,
                   1, n_chunks, n_cols, n_chunks)
    return out


def _batch_view(x):
    """x's batch dims (all but the last two) as an array-like for broadcast_strides."""
    return view(x, x.shape[:-2], x.strides[:-2])


def matmul(a, b):
    """a (*Ba, M, K) @ b (*Bb, K, N) -> (*broadcast(Ba, Bb), M, N), contiguous."""
    for name, x in (("a", a), ("b", b)):
        if x.ndim < 2:
            raise ValueError(f"matmul: {name} must have at least 2 dims (*batch, rows, cols), "
                             f"got shape {x.shape}")
    dtype = _check_dtypes("matmul", ("a", "b"), (a, b))
    M, K = a.shape[-2:]
    N = b.shape[-1]
    if b.shape[-2] != K:
        raise ValueError(f"matmul: a {a.shape} and b {b.shape} are not aligned "
                         f"({K} != {b.shape[-2]})")
    batch = broadcast_shapes(a.shape[:-2], b.shape[:-2])
    out = empty(batch + (M, N), dtype)                     # K == 0: the kernel writes 0s
    return _gemm(out, a, a.strides[-2:], b, b.strides[-2:], M, N, K, batch,
                 broadcast_strides(_batch_view(a), batch),
                 broadcast_strides(_batch_view(b), batch))


def _check_linear(fn, x, weight, bias):
    _check_2d(fn, ("x", "weight"), (x, weight))
    dtype = _check_dtypes(fn, ("x", "weight", "bias"), (x, weight, bias))
    if x.shape[1] != weight.shape[1]:
        raise ValueError(f"{fn}: x {x.shape} and weight {weight.shape} are not aligned "
                         f"({x.shape[1]} != {weight.shape[1]})")
    _check_like(fn, "bias", bias, weight.shape[:1], f"weight {weight.shape}")
    return dtype


def _linear(x, weight, bias, post="none", e=None, grad=None):
    """x (N, C_in) @ weight (C_out, C_in).T (read in place) + bias, post epilogue."""
    (M, K), N = x.shape, weight.shape[0]
    out = empty((M, N), x.dtype)
    return _gemm(out, x, x.strides, weight, weight.strides[::-1], M, N, K, bias=bias,
                 post=post, e=e, grad=grad)


def linear_fwd(x, weight, bias, residual=None):
    """y (N, C_out) = x (N, C_in) @ weight (C_out, C_in).T + bias (C_out,) [+ residual],
    bias and residual added in the GEMM's epilogue."""
    dtype = _check_linear("linear_fwd", x, weight, bias)
    shape = (x.shape[0], weight.shape[0])
    if residual is not None:
        _check_like("linear_fwd", "residual", residual, shape, f"out {shape}")
        residual = astype(residual, dtype)                  # as the CPU's: cast, not refused
    return _linear(x, weight, bias, "none" if residual is None else "add", residual)


def linear_gelu_fwd(x, weight, bias, approximate):
    """-> gelu(h), gelu'(h) (N, C_out), h = x @ weight.T + bias, both from the GEMM's
    epilogue (h never reaches memory)."""
    dtype = _check_linear("linear_gelu_fwd", x, weight, bias)
    if approximate not in ("none", "tanh"):
        raise ValueError(f"linear_gelu_fwd: approximate must be 'none' or 'tanh', got "
                         f"{approximate!r}")
    grad = empty((x.shape[0], weight.shape[0]), dtype)
    return _linear(x, weight, bias, f"gelu:{approximate}", grad=grad), grad


def linear_bwd(dout, x, weight, needs_dx, needs_dweight, needs_dbias, dx_mul=None):
    """fwd: y = x @ weight.T + bias  =>  dx = dout @ weight (* dx_mul), dweight = dout.T @ x,
    dbias = dout summed over rows; None where not needed."""
    fn = "linear_bwd"
    _check_2d(fn, ("dout", "x", "weight"), (dout, x, weight))
    dtype = _check_dtypes(fn, ("x", "weight"), (x, weight))
    dout = astype(dout, dtype)
    (n_rows, c_in), c_out = x.shape, weight.shape[0]
    if weight.shape[1] != c_in or dout.shape != (n_rows, c_out):
        raise ValueError(f"{fn}: dout {dout.shape}, x {x.shape} and weight {weight.shape} do "
                         f"not match (dout should be {(n_rows, c_out)}, weight (*, {c_in}))")
    dx = dweight = dbias = None
    if needs_dx:
        if dx_mul is not None:
            _check_like(fn, "dx_mul", dx_mul, x.shape, f"x {x.shape}")
            _check_dtypes(fn, ("x", "dx_mul"), (x, dx_mul))
        dx = _gemm(empty(x.shape, dtype), dout, dout.strides, weight, weight.strides, n_rows,
                   c_in, c_out, post="none" if dx_mul is None else "mul", e=dx_mul)
    if needs_dweight:
        dweight = _gemm(empty(weight.shape, dtype), dout, dout.strides[::-1], x,   # dout.T
                        x.strides, c_out, c_in, n_rows)                            # in place
    if needs_dbias:
        dbias = _column_sum(dout)
    return dx, dweight, dbias


__all__ = ["kernels", "matmul", "linear_fwd", "linear_bwd", "linear_gelu_fwd"]
