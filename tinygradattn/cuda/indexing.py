"""Indexing: x[index] (getitem), x[index] = value (setitem), x[index] += src with repeats
accumulating (index_add), and concatenate, with numpy's semantics and errors.

A basic index (ints, slices, None, Ellipsis) is a view (views.basic_getitem): getitem returns
it, setitem assigns into it, index_add adds into it. An advanced index (integer or boolean
arrays, on the device or from the host) is planned on the host (`_plan`) as

    v = x[the index with every array replaced by ':']       # a view: ints, slices, None done
    out[p, b, q] = v[pre(p), idx_0[b], ..., idx_K-1[b], post(q)]

b runs over the arrays' broadcast shape B, p over the view's dims before the indexed ones and
q over those after them (numpy's placement: adjacent advanced indices keep their place,
separated ones go first and p is empty). The K index rows are packed as one (K, |B|) int64
array; kernels wrap negative indices and check bounds (`driver.check_word`: an IndexError at
the next host read). Index arrays from the host are checked on the host, with numpy's message.

A boolean mask becomes its coordinates (numpy's nonzero) on the device: sizing them needs the
count of True, the one device -> host read of this module (inherent: the output's shape
depends on the data; torch synchronises here too). Integer indices never read back.
"""
import math

import numpy as np
from numba import cuda, types

from . import driver
from .array import CudaArray, empty, view
from .transfer import from_host, to_host
from .elementwise import (assign, astype, binary, broadcast_strides, full, scalar,
                          strided_index)
from .launch import (DTYPES, FLOATS, MAX_DIMS, KernelSet, array_type, blocks_for,
                     device_function, dims, dims_type, merge, tuning)
from .views import basic_getitem, is_basic

kernels = KernelSet("indexing")

_INT, _BOOL, _I32 = np.dtype(np.int64), np.dtype(np.bool_), np.dtype(np.int32)
_ADDABLE = FLOATS + (_INT,)         # what the atomics serve (float32/64 on sm_60+, int64)


def _tail(values, fill):
    """values padded at the back to MAX_DIMS (the K index rows' sizes, strides, codes)."""
    values = tuple(int(v) for v in values)
    if len(values) > MAX_DIMS:
        raise RuntimeError(f"cuda indexing takes at most {MAX_DIMS} index arrays, got "
                           f"{len(values)}")
    return values + (fill,) * (MAX_DIMS - len(values))


# ---- kernels: the index rows ------------------------------------------------------------------
# _adv_offset(b): v's offset of index tuple b = sum_j wrap(idx[j, b]) * adv_strides[j], and its
# linear position in the indexed dims (for setitem's last-write-wins). An index out of range
# flags the error word (its code names the axis) and reads position 0 instead.
def _adv_offset(idx, idx_off, n_adv, n_b, b, sizes, strides, codes, err):
    off = 0
    lin = 0
    ok = True
    for j in range(n_adv):
        r = idx[idx_off + j * n_b + b]
        n = sizes[j]
        if r < 0:
            r += n
        if r < 0 or r >= n:
            if codes[j] != 0:
                err[0] = codes[j]
            ok = False
            r = 0
        off += r * strides[j]
        lin = lin * n + r
    return off, lin, ok


def _adv_types():
    """Types of (idx, idx_off, n_adv, n_b, sizes, strides, codes, err)."""
    I64, D = types.int64, dims_type()
    return (array_type(_INT), I64, I64, I64, D, D, D, array_type(_I32))


# ---- kernels: gather (getitem) ------------------------------------------------------------------
# out[p, b, q] = v[pre(p) + adv(b) + post(q)]: a grid-stride loop over out's elements (C order,
# out contiguous); pre / post positions from their merged shapes and strides.
@kernels.define(served=[(dt,) for dt in DTYPES])
def gather(tune, dtype):
    adv, index = device_function(_adv_offset), device_function(strided_index)
    A, I64, D = array_type(dtype), types.int64, dims_type()

    def kernel(out, x, x_off, idx, idx_off, n_adv, n_b, sizes, strides, codes, err,
               pre_shape, pre_strides, pre_ndim, post_shape, post_strides, post_ndim, n_post,
               n):
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            q = i % n_post
            t = i // n_post
            b = t % n_b
            off, lin, ok = adv(idx, idx_off, n_adv, n_b, b, sizes, strides, codes, err)
            pos = (x_off + off + index(t // n_b, pre_shape, pre_strides, pre_ndim)
                   + index(q, post_shape, post_strides, post_ndim))
            out[i] = x[pos]
    return kernel, ((A, A, I64) + _adv_types() + (D, D, I64, D, D, I64, I64, I64))


# The embedding lookup: out[b, c] = v[idx[b] * row_stride + c * col_stride], one index array,
# nothing before it, the rest one (merged) dim. One thread per output element: the index is
# read once per element (it sits in cache across a row's threads).
@kernels.define(served=[(dt,) for dt in DTYPES])
def gather_rows(tune, dtype):
    A, I, E, I64 = array_type(dtype), array_type(_INT), array_type(_I32), types.int64

    def kernel(out, x, x_off, row_stride, col_stride, idx, idx_off, n_src_rows, code, err,
               n_cols, n):
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            b = i // n_cols
            r = idx[idx_off + b]
            if r < 0:
                r += n_src_rows
            if r < 0 or r >= n_src_rows:
                if code != 0:
                    err[0] = code
                r = 0
            out[i] = x[x_off + r * row_stride + (i - b * n_cols) * col_stride]
    return kernel, (A, A, I64, I64, I64, I, I64, I64, I64, E, I64, I64)


# ---- kernels: scatter (setitem) and scatter-add (index_add) -------------------------------------
# setitem: numpy assigns in C order, so of repeated index tuples the last (largest b) wins.
# A GPU's threads race, so with possible repeats one pass first takes, per indexed position,
# winner[lin] = max b (atomic max), and the write pass writes only the winner's values.
@kernels.define(served=[()])
def adv_winner(tune):
    adv = device_function(_adv_offset)
    I = array_type(_INT)

    def kernel(winner, use_winner, idx, idx_off, n_adv, n_b, sizes, strides, codes, err):
        for b in range(cuda.grid(1), n_b, cuda.gridsize(1)):
            off, lin, ok = adv(idx, idx_off, n_adv, n_b, b, sizes, strides, codes, err)
            if ok and use_winner:
                cuda.atomic.max(winner, lin, b)
    return kernel, (I, types.boolean) + _adv_types()


@kernels.define(served=[(dt, w) for dt in DTYPES for w in (False, True)])
def scatter(tune, dtype, use_winner):
    adv, index = device_function(_adv_offset), device_function(strided_index)
    A, I, I64, D = array_type(dtype), array_type(_INT), types.int64, dims_type()

    def kernel(dst, dst_off, value, value_off, value_step, winner, idx, idx_off, n_adv, n_b,
               sizes, strides, codes, err, pre_shape, pre_strides, pre_ndim, post_shape,
               post_strides, post_ndim, n_post, n):
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            q = i % n_post
            t = i // n_post
            b = t % n_b
            off, lin, ok = adv(idx, idx_off, n_adv, n_b, b, sizes, strides, codes, err)
            if ok and (not use_winner or winner[lin] == b):
                pos = (dst_off + off + index(t // n_b, pre_shape, pre_strides, pre_ndim)
                       + index(q, post_shape, post_strides, post_ndim))
                dst[pos] = value[value_off + i * value_step]
    return kernel, ((A, I64, A, I64, I64, I) + _adv_types()
                    + (D, D, I64, D, D, I64, I64, I64))


# index_add: dst[pre(p) + adv(b) + post(q)] += src[p, b, q], atomically (repeats accumulate;
# their order, and so float rounding, is the hardware's).
@kernels.define(served=[(dt,) for dt in _ADDABLE])
def scatter_add(tune, dtype):
    adv, index = device_function(_adv_offset), device_function(strided_index)
    A, I64, D = array_type(dtype), types.int64, dims_type()

    def kernel(dst, dst_off, src, src_off, src_step, idx, idx_off, n_adv, n_b, sizes, strides,
               codes, err, pre_shape, pre_strides, pre_ndim, post_shape, post_strides,
               post_ndim, n_post, n):
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            q = i % n_post
            t = i // n_post
            b = t % n_b
            off, lin, ok = adv(idx, idx_off, n_adv, n_b, b, sizes, strides, codes, err)
            if ok:
                pos = (dst_off + off + index(t // n_b, pre_shape, pre_strides, pre_ndim)
                       + index(q, post_shape, post_strides, post_ndim))
                cuda.atomic.add(dst, pos, src[src_off + i * src_step])
    return kernel, ((A, I64, A, I64, I64) + _adv_types() + (D, D, I64, D, D, I64, I64, I64))


# The embedding backward: dst[idx[b] * row_stride + c * col_stride] += src[b, c], one thread
# per (index, column), atomics for repeated rows.
@kernels.define(served=[(dt,) for dt in _ADDABLE])
def add_rows(tune, dtype):
    A, I, E, I64 = array_type(dtype), array_type(_INT), array_type(_I32), types.int64

    def kernel(dst, dst_off, row_stride, col_stride, src, src_off, src_step, idx, idx_off,
               n_dst_rows, code, err, n_cols, n):
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            b = i // n_cols
            r = idx[idx_off + b]
            if r < 0:
                r += n_dst_rows
            if r < 0 or r >= n_dst_rows:
                if code != 0:
                    err[0] = code
            else:
                cuda.atomic.add(dst, dst_off + r * row_stride + (i - b * n_cols) * col_stride,
                                src[src_off + i * src_step])
    return kernel, (A, I64, I64, I64, A, I64, I64, I, I64, I64, I64, E, I64, I64)


# A basic index_add into a strided view: out[pos(i)] += src[pos'(i)] (distinct positions: no
# atomics). elementwise.binary(out=...) writes contiguous outputs only.
@kernels.define(served=[(dt,) for dt in _ADDABLE])
def add_strided(tune, dtype):
    index = device_function(strided_index)
    A, I64, D = array_type(dtype), types.int64, dims_type()

    def kernel(out, out_off, out_strides, src, src_off, src_strides, shape, ndim, n):
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            out[out_off + index(i, shape, out_strides, ndim)] += \
                src[src_off + index(i, shape, src_strides, ndim)]
    return kernel, (A, I64, D, A, I64, D, D, I64, I64)


# ---- kernels: a boolean mask's coordinates (nonzero) ------------------------------------
# Three passes over chunks of `indexing_mask_chunk` mask elements (C order), one thread each:
#   mask_count:  counts[c] = number of True in chunk c
#   mask_scan:   counts -> exclusive prefix sums, total[0] = their sum (one block: each thread
#                sums a run of chunks, a Hillis-Steele scan over the threads in shared memory)
#   mask_coords: chunk c writes the coordinates of its True elements at counts[c], counts[c]+1..
# so coordinates come out in C order, as numpy's nonzero.
@kernels.define(served=[()])
def mask_count(tune):
    index, CHUNK = device_function(strided_index), tune["indexing_mask_chunk"]
    I, M, I64, D = array_type(_INT), array_type(_BOOL), types.int64, dims_type()

    def kernel(counts, mask, m_off, m_shape, m_strides, ndim, n, n_chunks):
        for c in range(cuda.grid(1), n_chunks, cuda.gridsize(1)):
            s = 0
            for f in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
                if mask[m_off + index(f, m_shape, m_strides, ndim)]:
                    s += 1
            counts[c] = s
    return kernel, (I, M, I64, D, D, I64, I64, I64)


@kernels.define(served=[()])
def mask_scan(tune):
    THREADS = tune["threads"]
    I, I64 = array_type(_INT), types.int64

    def kernel(counts, total, n_chunks):                 # one block of THREADS threads
        t = cuda.threadIdx.x
        partial = cuda.shared.array(THREADS, types.int64)
        per = (n_chunks + THREADS - 1) // THREADS
        lo = min(t * per, n_chunks)
        hi = min(lo + per, n_chunks)
        own = 0
        for c in range(lo, hi):
            own += counts[c]
        partial[t] = own
        cuda.syncthreads()
        step = 1
        while step < THREADS:                            # uniform: every thread loops alike
            left = partial[t - step] if t >= step else 0
            cuda.syncthreads()
            partial[t] += left
            cuda.syncthreads()
            step *= 2
        run = partial[t] - own                           # inclusive -> exclusive
        for c in range(lo, hi):
            k = counts[c]
            counts[c] = run
            run += k
        if t == THREADS - 1:
            total[0] = partial[t]
    return kernel, (I, I, I64)


@kernels.define(served=[()])
def mask_coords(tune):
    index, CHUNK = device_function(strided_index), tune["indexing_mask_chunk"]
    I, M, I64, D = array_type(_INT), array_type(_BOOL), types.int64, dims_type()

    def kernel(coords, count, starts, mask, m_off, m_shape, m_strides, ndim, n, n_chunks):
        first = MAX_DIMS - ndim
        for c in range(cuda.grid(1), n_chunks, cuda.gridsize(1)):
            o = starts[c]
            for f in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
                if mask[m_off + index(f, m_shape, m_strides, ndim)]:
                    g = f
                    for d in range(MAX_DIMS - 1, first - 1, -1):
                        coords[(d - first) * count + o] = g % m_shape[d]
                        g //= m_shape[d]
                    o += 1
    return kernel, (I, I64, I, M, I64, D, D, I64, I64, I64)


# ---- host side: launches ------------------------------------------------------------------------
def _launch(name, key, n, *args):
    threads = tuning()["threads"]
    kernels.launch(name, key, blocks_for(n, threads), threads, *args)


def _nonzero(mask):
    """The coordinates of mask's True elements, C order: a (mask.ndim, count) int64 array.
    One device -> host read (the count)."""
    n, ndim = mask.size, mask.ndim
    chunk = tuning()["indexing_mask_chunk"]
    n_chunks = -(-n // chunk)
    shape, strides = dims(mask.shape, 1), dims(mask.strides, 0)
    starts = empty((n_chunks,), _INT)                     # counts, then their prefix sums
    total = empty((1,), _INT)
    _launch("mask_count", (), n_chunks, starts.buf, mask.buf, mask.offset, shape, strides,
            ndim, n, n_chunks)
    kernels.launch("mask_scan", (), 1, tuning()["threads"], starts.buf, total.buf, n_chunks)
    count = int(to_host(total)[0])                        # NOTE: the one sync (see the top)
    coords = empty((ndim, count), _INT)
    if count:
        _launch("mask_coords", (), n_chunks, coords.buf, count, starts.buf, mask.buf,
                mask.offset, shape, strides, ndim, n, n_chunks)
    return coords


_SPARE = {}             # dtype -> a 1-element array for kernel arguments a launch ignores


def _spare(dtype):
    """A 1-element device array of dtype: the error word of index rows checked on the host,
    the winner table of a setitem without repeats."""
    dtype = np.dtype(dtype)
    if dtype not in _SPARE:
        _SPARE[dtype] = empty((1,), dtype)
    return _SPARE[dtype].buf


# ---- host side: the plan of an advanced index ---------------------------------------------------
class _Plan:
    """x[index] for an advanced index, as the kernels take it (see the module docstring)."""

    __slots__ = ("v", "idx", "idx_off", "n_adv", "n_b", "sizes", "strides", "codes", "err",
                 "pre", "post", "shape", "unique", "rows")

    def adv_args(self):
        return (self.idx.buf, self.idx_off, self.n_adv, self.n_b, self.sizes, self.strides,
                self.codes, self.err)

    def outer_args(self):
        (pre_shape, pre_strides), (post_shape, post_strides) = self.pre, self.post
        return (dims(pre_shape, 1), dims(pre_strides, 0), len(pre_shape), dims(post_shape, 1),
                dims(post_strides, 0), len(post_shape), max(1, math.prod(post_shape)))


def _classify(item):
    """(kind, item): kind None | 'ellipsis' | 'slice' | 'int' | 'array' | 'mask'; host
    sequences become numpy arrays."""
    if item is None:
        return None, item
    if item is Ellipsis:
        return "ellipsis", item
    if isinstance(item, slice):
        return "slice", item
    if isinstance(item, (bool, np.bool_)):
        return "mask", np.asarray(item)
    if isinstance(item, (int, np.integer)):
        return "int", int(item)
    if not isinstance(item, CudaArray):
        item = np.asarray(item)
        if item.size == 0 and item.dtype.kind == "f":       # x[[]]: numpy takes it as ints
            item = item.astype(np.int64)
    kind = item.dtype.kind
    if kind == "b":
        return "mask", item
    if kind not in "iu":
        raise IndexError("arrays used as indices must be of integer (or boolean) type, got "
                         f"{item.dtype}")
    return "array", item


class _Row:
    """One index row: the array (host or device, any int dtype) indexing dim `vdim` of the
    view, which is x's `axis` (None for a 0-d mask's new axis); `checked` when its values are
    known to be in range (from the host, checked there, or a mask's coordinates)."""

    __slots__ = ("vdim", "array", "axis", "checked")

    def __init__(self, vdim, array, axis, checked):
        self.vdim, self.array, self.axis, self.checked = vdim, array, axis, checked


def _plan(x, index):
    items = [_classify(i) for i in (index if isinstance(index, tuple) else (index,))]
    kinds = [k for k, _ in items]
    if kinds.count("ellipsis") > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    n_real = sum(item.ndim if k == "mask" else k not in (None, "ellipsis")
                 for k, item in items)
    if n_real > x.ndim:
        raise IndexError(f"too many indices for array: array is {x.ndim}-dimensional, but "
                         f"{n_real} were indexed")
    # numpy: ints count as advanced beside arrays; any other item (None, '...') separates
    adv_at = [i for i, k in enumerate(kinds) if k in ("int", "array", "mask")]
    adjacent = adv_at == list(range(adv_at[0], adv_at[-1] + 1))
    at = kinds.index("ellipsis") if "ellipsis" in kinds else len(items)
    items[at:at + 1] = [("slice", slice(None))] * (x.ndim - n_real)
    v, rows = _split(x, items)
    # one mask and no other arrays: its coordinates are distinct (ints beside it are fine)
    unique = kinds.count("mask") == 1 and "array" not in kinds
    return _rows_plan(v, rows, adjacent, unique)


def _split(x, items):
    """x[items] (Ellipsis expanded) as (v, rows): v the view of x[items with every array
    replaced by ':'], rows the index rows (a k-d mask gives k: its coordinates)."""
    basic, rows = [], []
    vdim = xdim = 0
    for kind, item in items:
        if kind in (None, "slice", "int"):
            basic.append(item)
            vdim += kind != "int"
            xdim += kind is not None
        elif kind == "array":
            basic.append(slice(None))
            rows.append(_Row(vdim, item, xdim, not isinstance(item, CudaArray)))
            vdim, xdim = vdim + 1, xdim + 1
        elif item.ndim == 0:            # x[True]: a new axis of length 1 (or 0), indexed
            on_device = isinstance(item, CudaArray)
            count = int(to_host(item)) if on_device else int(item)   # NOTE: a device read
            basic.append(None)
            rows.append(_Row(vdim, np.zeros(count, np.int64), None, True))
            vdim += 1
        else:
            for d, m in enumerate(item.shape):
                if m != x.shape[xdim + d]:
                    raise IndexError(
                        f"boolean index did not match indexed array along axis {xdim + d}; "
                        f"size of axis is {x.shape[xdim + d]} but size of corresponding "
                        f"boolean axis is {m}")
            on_device = isinstance(item, CudaArray)
            coords = _nonzero(item) if on_device else np.stack(np.nonzero(item))  # (k, count)
            for d in range(item.ndim):
                basic.append(slice(None))
                row = basic_getitem(coords, d) if on_device else coords[d]
                rows.append(_Row(vdim, row, xdim, True))
                vdim, xdim = vdim + 1, xdim + 1
    return basic_getitem(x, tuple(basic)), rows


def _rows_plan(v, rows, adjacent, unique):
    try:
        B = np.broadcast_shapes(*(tuple(r.array.shape) for r in rows))
    except ValueError:
        raise IndexError("shape mismatch: indexing arrays could not be broadcast together with "
                         "shapes " + " ".join(str(tuple(r.array.shape)) for r in rows)) from None
    vdims = [r.vdim for r in rows]
    sizes = [v.shape[d] for d in vdims]
    p = _Plan()
    p.v, p.n_adv, p.n_b = v, len(rows), math.prod(B)
    p.unique = unique or p.n_b <= 1
    p.sizes, p.strides = _tail(sizes, 1), _tail((v.strides[d] for d in vdims), 0)
    p.idx, p.idx_off = _pack(rows, sizes, B)
    codes, p.err = [], _spare(_I32)
    for r, n in zip(rows, sizes):       # device int arrays: checked by the kernels
        if r.checked:
            codes.append(0)
            continue
        p.err, code = driver.check_word(
            IndexError, f"index out of bounds for axis {r.axis} with size {n} (an index "
                        "array on the device held it)")
        codes.append(code)
    p.codes = _tail(codes, 0)
    rest = [d for d in range(v.ndim) if d not in vdims]
    pre = [d for d in rest if adjacent and d < vdims[0]]
    post = [d for d in rest if d not in pre]
    p.shape = tuple(v.shape[d] for d in pre) + B + tuple(v.shape[d] for d in post)
    pre_shape, (pre_strides,) = merge([v.shape[d] for d in pre], [v.strides[d] for d in pre])
    post_shape, (post_strides,) = merge([v.shape[d] for d in post],
                                        [v.strides[d] for d in post])
    p.pre, p.post = (pre_shape, pre_strides), (post_shape, post_strides)
    p.rows = p.n_adv == 1 and not pre_shape and len(post_shape) <= 1   # an embedding lookup
    return p


def _pack(rows, sizes, B):
    """The index rows as one (K, |B|) int64 device array: (that array, its offset). Host
    rows are checked here (numpy's IndexError), wrapped, and sent in one upload."""
    arrays = [r.array for r in rows]
    if all(isinstance(a, np.ndarray) for a in arrays):
        packed = np.empty((len(rows),) + B, np.int64)
        for j, (r, n) in enumerate(zip(rows, sizes)):
            packed[j] = _host_checked(r.array, r.axis, n)
        return from_host(packed), 0
    if len(arrays) == 1 and arrays[0].dtype == _INT and tuple(arrays[0].shape) == B \
            and arrays[0].is_contiguous:
        return arrays[0], arrays[0].offset                    # as given: no copy
    packed = empty((len(rows),) + B, _INT)
    for j, (r, n) in enumerate(zip(rows, sizes)):
        a = r.array
        if isinstance(a, np.ndarray):
            a = from_host(_host_checked(a, r.axis, n))
        assign(basic_getitem(packed, j), a)                   # broadcast, cast to int64
    return packed, 0


def _host_checked(a, axis, n):
    """A host index array in range [-n, n) (else numpy's IndexError), wrapped to [0, n)."""
    bad = (a < -n) | (a >= n)
    if bad.any():
        raise IndexError(f"index {int(a[bad].flat[0])} is out of bounds for axis {axis} with "
                         f"size {n}")
    return np.where(a < 0, a + n, a).astype(np.int64)


# ---- host side: the primitives ------------------------------------------------------------------
def getitem(x, index):
    """x[index] with numpy's semantics: a view for a basic index, else a new array."""
    if is_basic(index):
        return basic_getitem(x, index)
    p = _plan(x, index)
    out = empty(p.shape, x.dtype)
    n = out.size
    if not n:
        _check_only(p)
        return out
    v = p.v
    if p.rows:
        n_cols = n // p.n_b
        col_stride = p.post[1][0] if p.post[0] else 1
        _launch("gather_rows", (x.dtype,), n, out.buf, v.buf, v.offset, p.strides[0],
                col_stride, p.idx.buf, p.idx_off, p.sizes[0], p.codes[0], p.err, n_cols, n)
        return out
    _launch("gather", (x.dtype,), n, out.buf, v.buf, v.offset, *p.adv_args(),
            *p.outer_args(), n)
    return out



def nonzero(x):
    """The coordinates of x's nonzero elements (x.ndim >= 1), C order: (x.ndim, count) int64.
    One device -> host read (the count)."""
    return _nonzero(x if x.dtype == _BOOL else binary("ne", x, 0))

def _check_only(p):
    """An empty result still checks its device index rows (numpy raises for x[[5]] with x of
    shape (3, 0)); host rows were checked on the host."""
    if p.n_b and any(p.codes):
        _launch("adv_winner", (), p.n_b, _spare(_INT), False, *p.adv_args())


def _operand(src, shape, dtype, what, same_kind):
    """src (a CudaArray or a number) as read by a scatter: (array, offset, step) where element
    i of the indexed result reads array[offset + i * step]; step 0 for one value. Cast to
    dtype (same_kind: only as numpy's ufuncs allow, as np.add.at)."""
    if not isinstance(src, CudaArray):
        return scalar(src, dtype), 0, 0
    src_shape = tuple(src.shape)
    while len(src_shape) > len(shape) and src_shape[0] == 1:     # numpy drops leading 1s
        src_shape = src_shape[1:]
    try:
        ok = np.broadcast_shapes(src_shape, shape) == shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"shape mismatch: {what} array of shape {tuple(src.shape)} could not "
                         f"be broadcast to indexing result of shape {shape}")
    if same_kind and not np.can_cast(src.dtype, dtype, "same_kind"):
        raise TypeError(f"cannot cast {what} of dtype {src.dtype} to {dtype} (numpy's "
                        "same_kind rule)")
    if src.size == 1:
        src = astype(src, dtype)
        return src, src.offset, 0
    if src_shape == shape and src.dtype == dtype and src.is_contiguous:
        return src, src.offset, 1
    dense = empty(shape, dtype)
    assign(dense, view(src, src_shape, src.strides[src.ndim - len(src_shape):]))
    return dense, 0, 1


def setitem(dst, index, value):
    """dst[index] = value in place (value a CudaArray or a number, broadcast, cast to dst's
    dtype); of repeated indices the last one's value stays, as numpy."""
    if is_basic(index):
        assign(basic_getitem(dst, index), value)
        return
    p = _plan(dst, index)
    n = math.prod(p.shape)
    src, src_off, step = _operand(value, p.shape, dst.dtype, "value", False)
    if not n:
        _check_only(p)
        return
    v = p.v
    use_winner = not p.unique
    if use_winner:               # winner[lin] = the last b writing indexed position lin
        winner = full((math.prod(p.sizes[:p.n_adv]),), -1, _INT)
        _launch("adv_winner", (), p.n_b, winner.buf, True, *p.adv_args())
    _launch("scatter", (dst.dtype, use_winner), n, v.buf, v.offset, src.buf, src_off, step,
            winner.buf if use_winner else _spare(_INT), *p.adv_args(), *p.outer_args(), n)


def index_add(dst, index, src):
    """dst[index] += src in place; repeated indices accumulate (atomics)."""
    if dst.dtype not in _ADDABLE:
        raise TypeError(f"cuda index_add: dst of dtype {dst.dtype} (float32, float64 or int64)")
    if is_basic(index):
        _add_basic(basic_getitem(dst, index), src)
        return
    p = _plan(dst, index)
    n = math.prod(p.shape)
    src, src_off, step = _operand(src, p.shape, dst.dtype, "src", True)
    if not n:
        _check_only(p)
        return
    v = p.v
    if p.rows:
        col_stride = p.post[1][0] if p.post[0] else 1
        _launch("add_rows", (dst.dtype,), n, v.buf, v.offset, p.strides[0], col_stride,
                src.buf, src_off, step, p.idx.buf, p.idx_off, p.sizes[0], p.codes[0], p.err,
                n // p.n_b, n)
        return
    _launch("scatter_add", (dst.dtype,), n, v.buf, v.offset, src.buf, src_off, step,
            *p.adv_args(), *p.outer_args(), n)


def _add_basic(out, src):
    """out[...] += src for a view out (src broadcast to its shape, cast to its dtype)."""
    if not isinstance(src, CudaArray):
        src = scalar(src, out.dtype)
    shape = out.shape
    if np.broadcast_shapes(out.shape, src.shape) != shape:
        raise ValueError(f"non-broadcastable output operand with shape {shape} doesn't match "
                         f"the broadcast shape {np.broadcast_shapes(out.shape, src.shape)}")
    if src.dtype != out.dtype:
        if not np.can_cast(src.dtype, out.dtype, "same_kind"):
            raise TypeError(f"cannot add src of dtype {src.dtype} into {out.dtype} (numpy's "
                            "same_kind rule)")
        src = astype(src, out.dtype)
    if not out.size:
        return
    if out.is_contiguous:
        binary("add", out, src, out=out)
        return
    mshape, (so, ss) = merge(shape, out.strides, broadcast_strides(src, shape))
    _launch("add_strided", (out.dtype,), out.size, out.buf, out.offset, dims(so, 0), src.buf,
            src.offset, dims(ss, 0), dims(mshape, 1), len(mshape), out.size)


def concatenate(xs, axis):
    """xs joined along axis (None: flattened first), numpy's dtype promotion and errors."""
    xs = list(xs)
    if not xs:
        raise ValueError("need at least one array to concatenate")
    if axis is None:
        from .views import reshape
        xs, axis = [reshape(x, (-1,)) for x in xs], 0
    nd = xs[0].ndim
    if nd == 0:
        raise ValueError("zero-dimensional arrays cannot be concatenated")
    if not -nd <= axis < nd:
        raise np.exceptions.AxisError(axis, nd)
    axis %= nd
    for i, x in enumerate(xs[1:], 1):
        if x.ndim != nd:
            raise ValueError(f"all the input arrays must have same number of dimensions, but "
                             f"the array at index 0 has {nd} dimension(s) and the array at "
                             f"index {i} has {x.ndim} dimension(s)")
        for d in range(nd):
            if d != axis and x.shape[d] != xs[0].shape[d]:
                raise ValueError(
                    "all the input array dimensions except for the concatenation axis must "
                    f"match exactly, but along dimension {d}, the array at index 0 has size "
                    f"{xs[0].shape[d]} and the array at index {i} has size {x.shape[d]}")
    dtype = np.result_type(*(x.dtype for x in xs))
    shape = list(xs[0].shape)
    shape[axis] = sum(x.shape[axis] for x in xs)
    out = empty(shape, dtype)
    start, lead = 0, (slice(None),) * axis
    for x in xs:                         # one assign (a strided copy) per input, into its slice
        n = x.shape[axis]
        if x.size:
            assign(basic_getitem(out, lead + (slice(start, start + n),)), x)
        start += n
    return out
