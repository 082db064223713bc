"""Sorting along the rows of (N, C): values and the int64 column each came from, stable
(equal values keep their order), NaN above every number (torch's order: last ascending,
first descending). The CUDA twin of the CPU backend's numpy stable argsort.

Two stages, both ordering pairs (value, column) by one strict total order (`_before`): by
value, then by column. With the column as tiebreak no two pairs are equal, so any correct
sorting network or merge gives the one stable result.

    tiles   sort_tile_kernel: one block per (row, tile of TILE columns); the tile is loaded
            into shared memory (columns past C padded with pairs that rank after every real
            one) and sorted by a bitonic network: for k = 2, 4, .., TILE, for j = k/2 .. 1,
            every thread compare-exchanges pairs (p, p + j) (TILE / 2 per step, a block-wide
            barrier after each step). TILE = tune["sort_tile"] (1024 on a GPU: 16 KiB of
            shared memory for float64 or int64 values with their int64 columns).
    merges  merge_kernel, only for rows longer than a tile: log2(C / TILE) passes, each
            merging neighbouring sorted runs of `width` into runs of 2 * width. One thread per
            element: its place in the merged run is its place in its own run plus the number
            of pairs of the partner run ranked before it (a binary search, since the partner
            run is sorted). Each pass reads one buffer and writes the other (ping-pong).

Rows are made contiguous first; outputs are new contiguous (N, C) arrays. float32, float64
and int64 values.
"""
import numpy as np
from numba import cuda, types

from .array import empty
from .elementwise import contiguous
from .launch import FLOATS, KernelSet, array_type, blocks_for, numba_type, tuning

kernels = KernelSet("sorting")

_INT = np.dtype(np.int64)
_I64 = types.int64
SORT_DTYPES = FLOATS + (_INT,)
_KEYS = [(dt, desc) for dt in SORT_DTYPES for desc in (False, True)]


def _before(dtype, descending):
    """A device function before(a, ia, b, ib, C) -> True when the pair (a, column ia) comes
    strictly before (b, ib) in the output. Columns >= C mark padding: after every real pair."""
    is_float = np.dtype(dtype).kind == "f"

    def before(a, ia, b, ib, C):
        if ia >= C or ib >= C:
            return ia < ib
        if is_float:
            a_nan = a != a
            b_nan = b != b
            if a_nan or b_nan:
                if a_nan and b_nan:
                    return ia < ib
                return a_nan if descending else b_nan   # NaN ranks above every number
        if a == b:
            return ia < ib
        if descending:
            return a > b
        return a < b
    return cuda.jit(device=True)(before)


@kernels.define(served=_KEYS)
def sort_tile_kernel(tune, dtype, descending):
    TILE, threads = tune["sort_tile"], tune["sort_threads"]
    if TILE & (TILE - 1) or TILE < 2 * threads:
        raise ValueError(f"sort tiles are a power of two of at least 2 * sort_threads, got "
                         f"sort_tile={TILE}, sort_threads={threads}")
    NT = numba_type(dtype)
    T = np.dtype(dtype).type
    before = _before(dtype, descending)
    HALF = TILE // 2

    def kernel(values, indices, x, x_off, C, n_tiles):
        # values, indices (N, C); x (N, C) contiguous from x_off; block b: one row's tile
        sv = cuda.shared.array(TILE, NT)
        si = cuda.shared.array(TILE, _I64)
        tid = cuda.threadIdx.x
        row = cuda.blockIdx.x // n_tiles
        start = (cuda.blockIdx.x % n_tiles) * TILE
        base = row * C
        for p in range(tid, TILE, threads):
            j = start + p
            if j < C:
                sv[p] = x[x_off + base + j]
                si[p] = j
            else:
                sv[p] = T(0)
                si[p] = C + p                       # padding: unique, after every column
        cuda.syncthreads()
        k = 2
        while k <= TILE:                            # bitonic network (uniform loop bounds)
            j = k // 2
            while j > 0:
                for p in range(tid, HALF, threads):
                    lo = 2 * j * (p // j) + p % j
                    hi = lo + j
                    a = sv[lo]
                    ia = si[lo]
                    b = sv[hi]
                    ib = si[hi]
                    if (lo & k) == 0:               # this k-block runs in output order
                        swap = before(b, ib, a, ia, C)
                    else:
                        swap = before(a, ia, b, ib, C)
                    if swap:
                        sv[lo] = b
                        si[lo] = ib
                        sv[hi] = a
                        si[hi] = ia
                cuda.syncthreads()
                j //= 2
            k *= 2
        for p in range(tid, TILE, threads):
            j = start + p
            if j < C:
                values[base + j] = sv[p]
                indices[base + j] = si[p]
    A = array_type(dtype)
    return kernel, (A, array_type(_INT), A, _I64, _I64, _I64)


@kernels.define(served=_KEYS)
def merge_kernel(tune, dtype, descending):
    before = _before(dtype, descending)

    def kernel(out_v, out_i, in_v, in_i, total, C, width):
        # out_*, in_* (N, C) contiguous; in_* rows hold sorted runs of width columns
        for t in range(cuda.grid(1), total, cuda.gridsize(1)):
            row = t // C
            p = t - row * C
            base = row * C
            left = (p // (2 * width)) * 2 * width   # the pair of runs: [left, mid), [mid, end)
            mid = min(left + width, C)
            end = min(left + 2 * width, C)
            v = in_v[t]
            iv = in_i[t]
            if p < mid:
                lo, hi, own = mid, end, p - left
            else:
                lo, hi, own = left, mid, p - mid
            first = lo
            while lo < hi:                          # partner pairs ranked before (v, iv)
                m = (lo + hi) // 2
                if before(in_v[base + m], in_i[base + m], v, iv, C):
                    lo = m + 1
                else:
                    hi = m
            dst = base + left + own + (lo - first)
            out_v[dst] = v
            out_i[dst] = iv
    A, I = array_type(dtype), array_type(_INT)
    return kernel, (A, I, A, I, _I64, _I64, _I64)


def sort(x, descending=False):
    """(values, indices) of x (N, C) sorted along each row, stable, NaN above every number;
    indices int64 (the column each value came from). float32, float64 or int64."""
    if x.ndim != 2:
        raise ValueError(f"sort: expected a (N, C) array, got shape {x.shape}")
    dtype = np.dtype(x.dtype)
    if dtype not in SORT_DTYPES:
        raise TypeError(f"sort: unsupported dtype {dtype} (float32, float64 or int64)")
    N, C = x.shape
    values, indices = empty((N, C), dtype), empty((N, C), _INT)            # (N, C) each
    if N == 0 or C == 0:
        return values, indices
    x = contiguous(x)
    tune = tuning()
    TILE = tune["sort_tile"]
    n_tiles = -(-C // TILE)
    key = (dtype, bool(descending))
    # one block per (row, tile)
    kernels.launch("sort_tile_kernel", key, N * n_tiles, tune["sort_threads"], values.buf,
                   indices.buf, x.buf, x.offset, C, n_tiles)
    width = TILE
    if width < C:
        spare_v, spare_i = empty((N, C), dtype), empty((N, C), _INT)
        threads = tune["threads"]
        while width < C:                            # one thread per element, ping-pong
            kernels.launch("merge_kernel", key, blocks_for(N * C, threads), threads,
                           spare_v.buf, spare_i.buf, values.buf, indices.buf, N * C, C, width)
            values, spare_v = spare_v, values
            indices, spare_i = spare_i, indices
            width *= 2
    return values, indices
