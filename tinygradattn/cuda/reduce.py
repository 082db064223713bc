"""Reductions: sum / prod / max / min over any axes, argmax / argmin, sum_to_shape, and the
vector norms of foreach_norm, all through one strided reduction kernel (and its argmax twin);
cumsum, a running sum along one axis, through its own scan kernel (at the end).

    out[o] = post(fold over r < n_red of pre(x[pos(o) + pos(r)]))      fold: +, *, max or min

The reduced axes go last (a view: nothing is copied), then the kept axes and the reduced axes
are each merged (launch.merge), so pos(o) and pos(r) come from x's own strides: transposed,
sliced and broadcast inputs are read in place. A single merged reduced dim (a contiguous last
axis: stride 1) skips the index arithmetic. pre / post are what the norms add (|x|, x*x,
|x|^p; sqrt, s^(1/p)); plain reductions use the identity.

Mapping: a block of `reduce_threads` threads is cut into groups of G lanes (G a power of two),
one group per output, a grid-stride loop over the outputs beyond the grid:
- lanes inner (group = t // G): a group's lanes read neighbouring reduced elements, coalesced
  when the reduced axis is the contiguous one (row sums);
- outputs inner (group = t % n_groups): neighbouring threads own neighbouring outputs,
  coalesced when a kept axis is the contiguous one (column sums: sum over axis 0).
Each lane folds its elements serially (float32 in float32, as the CPU kernels accumulate),
then the group's G partials fold in a shared-memory tree (log2 G steps, a syncthreads each).

Two passes: when a lane would fold more than `reduce_items` elements, or the outputs are too
few to fill `reduce_blocks` blocks (a full sum of 10^6 elements), each output's reduced range
is cut into n_split chunks; the first pass writes partials (n_split, n_out), the second
folds them (pre in the first pass only, post in the last). Sums thus add in a short serial
run per lane, then a tree: close to numpy's pairwise summation.

argmax / argmin carry (value, index) pairs through the same mapping: the first index of the
extreme wins ties, a NaN beats every number (numpy's rule: the first NaN is the argmax).
"""
import builtins
import math

import numpy as np
from numba import cuda, types

from .array import empty, view
from .elementwise import astype, full, strided_index
from .launch import (DTYPES, FLOATS, MAX_DIMS, KernelSet, array_type, blocks_for,
                     device_function, dims, dims_type, merge, numba_type, tuning)
from .views import reshape

kernels = KernelSet("reduce")

_max, _min = builtins.max, builtins.min     # this module's max / min are the primitives

_INT, _BOOL = np.dtype(np.int64), np.dtype(np.bool_)
_F64 = np.dtype(np.float64)


# ---- the scalar pieces: fold, pre (on load), post (on the result), as factories of T ------
def _fold_fn(op, T):
    if op == "sum":
        return lambda a, b: a + b
    if op == "prod":
        return lambda a, b: a * b
    if op == "max":
        return lambda a, b: a if (a > b or a != a) else b        # NaN wins, as numpy
    return lambda a, b: a if (a < b or a != a) else b


def _identity(op, T):
    """The fold's neutral element in T (what an empty lane contributes)."""
    if op == "sum":
        return T(0)
    if op == "prod":
        return T(1)
    if np.dtype(T).kind == "f":
        return T(-math.inf) if op == "max" else T(math.inf)
    if np.dtype(T).kind == "b":
        return T(op == "min")
    info = np.iinfo(T)
    return T(info.min) if op == "max" else T(info.max)


def _pre_fn(pre, T):
    """Applied to each element as it is loaded; p: the norm's order, as T."""
    one, zero = T(1), T(0)
    if pre == "abs":
        return lambda x, p: abs(x)
    if pre == "square":
        return lambda x, p: x * x
    if pre == "nonzero":
        return lambda x, p: one if x != zero else zero
    if pre == "pow":
        return lambda x, p: math.pow(abs(x), p)
    return lambda x, p: x


def _post_fn(post, T):
    """Applied to each finished result; inv_p: 1 / p, as T."""
    if post == "sqrt":
        return lambda s, inv_p: math.sqrt(s)
    if post == "root":
        return lambda s, inv_p: math.pow(s, inv_p)
    return lambda s, inv_p: s


def _better_fn(kind, T):
    """better(a, b): a strictly beats b (a NaN beats a number, numbers by > or <)."""
    if kind == "argmax":
        return lambda a, b: a > b or (a != a and b == b)
    return lambda a, b: a < b or (a != a and b == b)


def _dev(fn):
    return cuda.jit(device=True)(fn)


# ---- the kernels ----------------------------------------------------------------------------
# the norms' (op, pre, post), one per kind of ord (see _norm_key)
_NORMS = [("sum", "square", "sqrt"), ("sum", "abs", "identity"), ("max", "abs", "identity"),
          ("min", "abs", "identity"), ("sum", "nonzero", "identity"), ("sum", "pow", "root")]


def _reduce_served():
    keys = [(op, "identity", "identity", dt, dt) for op in ("sum", "prod")
            for dt in FLOATS + (_INT,)]
    keys += [(op, "identity", "identity", _BOOL, _INT)                  # numpy sums bools as int64
             for op in ("sum", "prod")]
    keys += [(op, "identity", "identity", dt, dt) for op in ("max", "min") for dt in DTYPES]
    for op, pre, post in _NORMS:       # one pass, and the first and last of two passes
        for key in ((op, pre, post), (op, pre, "identity"), (op, "identity", post)):
            keys += [key + (dt, dt) for dt in FLOATS]
    return list(dict.fromkeys(keys))


@kernels.define(served=_reduce_served())
def reduce_(tune, op, pre, post, dtype, acc_dtype):
    """out[out_off + v] = post(fold of pre(x[...]) over output o's chunk s of the reduced range),
    v = s * n_out + o (chunk-major: neighbouring v are neighbouring outputs)."""
    A = np.dtype(acc_dtype).type
    fold, pre_f, post_f = _dev(_fold_fn(op, A)), _dev(_pre_fn(pre, A)), _dev(_post_fn(post, A))
    identity = _identity(op, A)
    load = _dev((lambda v: v) if np.dtype(dtype) == np.dtype(acc_dtype) else (lambda v: A(v)))
    threads = tune["reduce_threads"]
    acc_type = numba_type(acc_dtype)
    index = device_function(strided_index)
    last = MAX_DIMS - 1

    def kernel(out, out_off, x, x_off, out_shape, out_strides, out_ndim, red_shape, red_strides,
               red_ndim, n_virt, n_out, n_red, chunk, group, lane_step, p, inv_p):
        partial = cuda.shared.array(threads, acc_type)
        t = cuda.threadIdx.x
        lane = (t // lane_step) % group
        g = t // group if lane_step == 1 else t % lane_step
        per_block = threads // group
        for base in range(cuda.blockIdx.x * per_block, n_virt, cuda.gridDim.x * per_block):
            v = base + g                            # uniform loop: every thread syncs below
            acc = identity
            if v < n_virt:
                s = v // n_out
                o = v - s * n_out
                start = s * chunk
                stop = start + chunk if start + chunk < n_red else n_red
                xo = x_off + index(o, out_shape, out_strides, out_ndim)
                if red_ndim <= 1:                   # one reduced dim: no index arithmetic
                    step = red_strides[last]
                    for r in range(start + lane, stop, group):
                        acc = fold(acc, pre_f(load(x[xo + r * step]), p))
                else:
                    for r in range(start + lane, stop, group):
                        pos = index(r, red_shape, red_strides, red_ndim)
                        acc = fold(acc, pre_f(load(x[xo + pos]), p))
            partial[t] = acc
            cuda.syncthreads()
            half = group // 2
            while half > 0:                         # the group's tree, in shared memory
                if lane < half:
                    partial[t] = fold(partial[t], partial[t + half * lane_step])
                cuda.syncthreads()
                half //= 2
            if lane == 0 and v < n_virt:
                out[out_off + v] = post_f(partial[t], inv_p)
    D, I64, S = dims_type(), types.int64, numba_type(acc_dtype)
    return kernel, (array_type(acc_dtype), I64, array_type(dtype), I64, D, D, I64, D, D, I64,
                    I64, I64, I64, I64, I64, I64, S, S)


@kernels.define(served=[(kind, dt) for kind in ("argmax", "argmin") for dt in DTYPES])
def arg_reduce(tune, kind, dtype):
    """out_index, out_value[v] = the best (value, index) of output o's chunk s (v as reduce_).
    indexed: x holds a first pass's values and `index` its indices (same layout), else an
    element's index is its position r in the reduced range (C order)."""
    T = np.dtype(dtype).type
    better = _dev(_better_fn(kind, T))
    threads = tune["reduce_threads"]
    val_type = numba_type(dtype)
    index = device_function(strided_index)
    last = MAX_DIMS - 1
    zero = T(0)

    def kernel(out_index, out_value, x, x_off, idx, indexed, out_shape, out_strides, out_ndim,
               red_shape, red_strides, red_ndim, n_virt, n_out, n_red, chunk, group, lane_step):
        best_v = cuda.shared.array(threads, val_type)
        best_i = cuda.shared.array(threads, types.int64)
        t = cuda.threadIdx.x
        lane = (t // lane_step) % group
        g = t // group if lane_step == 1 else t % lane_step
        per_block = threads // group
        for base in range(cuda.blockIdx.x * per_block, n_virt, cuda.gridDim.x * per_block):
            v = base + g
            bv = zero
            bi = -1                                 # -1: no element seen
            if v < n_virt:
                s = v // n_out
                o = v - s * n_out
                start = s * chunk
                stop = start + chunk if start + chunk < n_red else n_red
                xo = index(o, out_shape, out_strides, out_ndim)
                for r in range(start + lane, stop, group):      # r rising: ties keep the first
                    if red_ndim <= 1:
                        pos = xo + r * red_strides[last]
                    else:
                        pos = xo + index(r, red_shape, red_strides, red_ndim)
                    value = x[x_off + pos]
                    if bi < 0 or better(value, bv):
                        bv = value
                        bi = idx[pos] if indexed else r
            best_v[t] = bv
            best_i[t] = bi
            cuda.syncthreads()
            half = group // 2
            while half > 0:
                if lane < half:
                    j = t + half * lane_step
                    oi = best_i[j]
                    if oi >= 0:
                        mi, mv, ov = best_i[t], best_v[t], best_v[j]
                        if mi < 0 or better(ov, mv) or (not better(mv, ov) and oi < mi):
                            best_v[t] = ov
                            best_i[t] = oi
                cuda.syncthreads()
                half //= 2
            if lane == 0 and v < n_virt:
                out_index[v] = best_i[t]
                out_value[v] = best_v[t]
    D, I64 = dims_type(), types.int64
    A, IA = array_type(dtype), array_type(_INT)
    return kernel, (IA, A, A, I64, IA, I64, D, D, I64, D, D, I64, I64, I64, I64, I64, I64, I64)


# ---- host side: layouts, plans, launches --------------------------------------------------
class _Layout:
    """x's reduction as the kernels read it: the kept dims (outputs, C order) and the reduced
    dims, each merged; n_out / n_red their sizes."""

    def __init__(self, out_shape, out_strides, red_shape, red_strides):
        self.out_shape, (self.out_strides,) = merge(out_shape, out_strides)
        self.red_shape, (self.red_strides,) = merge(red_shape, red_strides)
        self.n_out = math.prod(out_shape)
        self.n_red = math.prod(red_shape)

    @classmethod
    def of(cls, x, axes, ordered):
        """ordered: keep the reduced dims in C order (argmax's index); else sort them by
        stride, largest first, so the contiguous dim is innermost (and dims merge)."""
        kept = [d for d in range(x.ndim) if d not in axes]
        red = sorted(axes)
        if not ordered:
            red.sort(key=lambda d: -abs(x.strides[d]))
        return cls([x.shape[d] for d in kept], [x.strides[d] for d in kept],
                   [x.shape[d] for d in red], [x.strides[d] for d in red])

    def outputs_inner(self):
        """True when neighbouring outputs lie closer in memory than neighbouring reduced
        elements: then neighbouring threads take neighbouring outputs."""
        if len(self.out_shape) == 0:
            return False
        o = abs(self.out_strides[-1])
        r = abs(self.red_strides[-1]) if self.red_shape else 0
        return 0 < o < r or (o > 0 and r == 0 and self.n_red > 1)

    def args(self):
        o, r = self.out_shape, self.red_shape
        return (dims(o, 1), dims(self.out_strides, 0), len(o), dims(r, 1),
                dims(self.red_strides, 0), len(r))


def _pow2_at_least(n):
    return 1 << _max(int(n) - 1, 0).bit_length()


class _Plan:
    """Threads per group (G) and per block, the lane layout, the chunks and the grid."""

    def __init__(self, n_out, n_red, outputs_inner):
        tune = tuning()
        threads = tune["reduce_threads"]
        if outputs_inner:
            per_block = _min(threads, tune["reduce_outputs"], _pow2_at_least(n_out))
            self.group, self.lane_step = threads // per_block, per_block
        else:
            self.group = _min(threads, _pow2_at_least(n_red))
            per_block, self.lane_step = threads // self.group, 1
        per_lane = -(-n_red // self.group)
        n_split = _max(1, -(-per_lane // tune["reduce_items"]))   # a lane folds few elements
        if -(-n_out * n_split // per_block) < tune["reduce_blocks"]:  # too few blocks: cut more
            wanted = -(-tune["reduce_blocks"] * per_block // _max(n_out, 1))
            n_split = _max(n_split, _min(wanted, per_lane // tune["reduce_min_items"]))
        # chunks of whole lane rounds (a multiple of G elements)
        self.chunk = -(-_max(-(-n_red // n_split), 1) // self.group) * self.group
        self.n_split = _max(1, -(-n_red // self.chunk))
        self.n_virt = n_out * self.n_split
        self.threads = threads
        self.n_blocks = _max(1, _min(-(-self.n_virt // per_block), tune["reduce_grid"]))


def _partials_layout(n_out, n_split):
    """A first pass's partials (n_split, n_out), folded over their first axis."""
    return _Layout([n_out], [1], [n_split], [n_out])


def _fold_into(key, out, out_off, x_buf, x_off, layout, p=0, inv_p=0):
    """Run reduce_ for key = (op, pre, post, dtype, acc) over layout, writing its n_out
    results at out.buf[out_off:]; two passes when the plan cuts the reduced range."""
    op, pre, post, dtype, acc = key
    plan = _Plan(layout.n_out, layout.n_red, layout.outputs_inner())
    A = np.dtype(acc).type
    if plan.n_split > 1:
        partials = empty((plan.n_split, layout.n_out), acc)
        _launch_reduce((op, pre, "identity", dtype, acc), partials, 0, x_buf, x_off, layout,
                       plan, A(p), A(inv_p))
        _fold_into((op, "identity", post, acc, acc), out, out_off, partials.buf, 0,
                   _partials_layout(layout.n_out, plan.n_split), p, inv_p)
        return
    _launch_reduce(key, out, out_off, x_buf, x_off, layout, plan, A(p), A(inv_p))


def _launch_reduce(key, out, out_off, x_buf, x_off, layout, plan, p, inv_p):
    kernels.launch("reduce_", key, plan.n_blocks, plan.threads, out.buf, out_off, x_buf, x_off,
                   *layout.args(), plan.n_virt, layout.n_out, layout.n_red, plan.chunk,
                   plan.group, plan.lane_step, p, inv_p)


def _axes(axis, ndim):
    """axis (None, an int or a tuple) -> a sorted tuple of dims; numpy's errors."""
    if axis is None:
        return tuple(range(ndim))
    items = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in items:
        a = int(a)
        if not -ndim <= a < ndim:
            raise np.exceptions.AxisError(f"axis {a} is out of bounds for array of dimension "
                                          f"{ndim}")
        out.append(a % ndim if ndim else a)
    if len(set(out)) != len(out):
        raise ValueError("duplicate value in 'axis'")
    return tuple(sorted(out))


def _out_shape(shape, axes, keepdims):
    if keepdims:
        return tuple(1 if d in axes else n for d, n in enumerate(shape))
    return tuple(n for d, n in enumerate(shape) if d not in axes)


def _check_dtype(name, x):
    if x.dtype not in DTYPES:
        raise TypeError(f"cuda {name}: dtype {x.dtype} is not supported (float32, float64, "
                        "int64, bool)")


def _reduce(op, x, axis, keepdims):
    """sum / max / min of x over axis (None or a tuple); numpy's result dtype and errors."""
    _check_dtype(op, x)
    axes = _axes(axis, x.ndim)
    acc = _INT if op in ("sum", "prod") and x.dtype == _BOOL else x.dtype
    layout = _Layout.of(x, axes, ordered=False)
    if layout.n_red == 0 and op not in ("sum", "prod"):
        name = "maximum" if op == "max" else "minimum"
        raise ValueError(f"zero-size array to reduction operation {name} which has no "
                         "identity")
    out = empty(_out_shape(x.shape, axes, keepdims), acc)
    if layout.n_out:
        _fold_into((op, "identity", "identity", x.dtype, acc), out, 0, x.buf, x.offset,
                   layout)
    return out


def sum(x, axis, keepdims):
    return _reduce("sum", x, axis, keepdims)


def max(x, axis, keepdims):
    return _reduce("max", x, axis, keepdims)


def min(x, axis, keepdims):
    return _reduce("min", x, axis, keepdims)


def prod(x, axis, keepdims):
    return _reduce("prod", x, axis, keepdims)


def _arg(kind, x, axis, keepdims):
    """argmax / argmin: int64, axis an int or None (the flattened array, C order)."""
    _check_dtype(kind, x)
    axes = _axes(axis, x.ndim)
    layout = _Layout.of(x, axes, ordered=True)
    if layout.n_red == 0:
        raise ValueError(f"attempt to get {kind} of an empty sequence")
    shape = _out_shape(x.shape, axes, keepdims) if (keepdims or axis is not None) else ()
    out = empty(shape, _INT)
    if layout.n_out:
        _arg_into(kind, out, x.buf, x.offset, layout, None)
    return out


def _arg_into(kind, out, x_buf, x_off, layout, idx):
    """argmax / argmin indices of layout's n_out outputs into out (contiguous, offset 0);
    idx: None, or the index buffer of a first pass's partials (x_buf holding their values)."""
    plan = _Plan(layout.n_out, layout.n_red, layout.outputs_inner())
    dtype = x_buf.dtype
    values = empty((plan.n_virt,), dtype)
    index_out = out if plan.n_split == 1 else empty((plan.n_virt,), _INT)
    kernels.launch("arg_reduce", (kind, dtype), plan.n_blocks, plan.threads, index_out.buf,
                   values.buf, x_buf, x_off, out.buf if idx is None else idx,
                   int(idx is not None), *layout.args(), plan.n_virt, layout.n_out,
                   layout.n_red, plan.chunk, plan.group, plan.lane_step)
    if plan.n_split > 1:                    # second pass over the (n_split, n_out) partials
        _arg_into(kind, out, values.buf, 0, _partials_layout(layout.n_out, plan.n_split),
                  index_out.buf)


def argmax(x, axis, keepdims):
    return _arg("argmax", x, axis, keepdims)


def argmin(x, axis, keepdims):
    return _arg("argmin", x, axis, keepdims)


def sum_to_shape(x, shape):
    """x summed over the axes broadcasting added to reach x.shape from shape (the CPU's
    rule: np.sum, so bools sum to int64), as shape."""
    shape = tuple(shape)
    n_lead = x.ndim - len(shape)
    axes = tuple(range(n_lead)) + tuple(
        n_lead + i for i, n in enumerate(shape) if n == 1 and x.shape[n_lead + i] != 1)
    if axes:
        x = sum(x, axes, True)
    return reshape(x, shape)


# ---- cumsum: a running sum along one axis ----------------------------------------------------
@kernels.define(served=[(dt, dt) for dt in FLOATS + (_INT,)] + [(_BOOL, _INT)])
def scan_(tune, dtype, out_dtype):
    """out[line, r] = sum of x[line, :r + 1] (of x[line, r:] when reverse), a line being one
    position of the kept dims: one thread per line, a serial sum along it (float32 in float32).

        for line (parallel):
            acc = 0;  for r along the axis:  acc += x[line, r];  out[line, r] = acc
    """
    A = np.dtype(out_dtype).type
    load = _dev((lambda v: v) if np.dtype(dtype) == np.dtype(out_dtype) else (lambda v: A(v)))
    index = device_function(strided_index)
    zero = A(0)

    def kernel(out, x, x_off, shape, x_strides, out_strides, ndim, x_step, out_step, n_lines,
               n, reverse):
        for line in range(cuda.grid(1), n_lines, cuda.gridsize(1)):
            xo = x_off + index(line, shape, x_strides, ndim)
            oo = index(line, shape, out_strides, ndim)
            acc = zero
            for k in range(n):
                r = n - 1 - k if reverse else k
                acc += load(x[xo + r * x_step])
                out[oo + r * out_step] = acc
    D, I64 = dims_type(), types.int64
    return kernel, (array_type(out_dtype), array_type(dtype), I64, D, D, D, I64, I64, I64, I64,
                    I64, I64)


def cumsum(x, axis, reverse):
    """Running sums of x along axis (an int), a new contiguous array; bool sums as int64."""
    _check_dtype("cumsum", x)
    axis, = _axes(axis, x.ndim)
    out = empty(x.shape, _INT if x.dtype == _BOOL else x.dtype)
    if out.size == 0:
        return out
    kept = [d for d in range(x.ndim) if d != axis]
    shape, (x_strides, out_strides) = merge([x.shape[d] for d in kept],
                                            [x.strides[d] for d in kept],
                                            [out.strides[d] for d in kept])
    n_lines = math.prod(shape)
    threads = tuning()["threads"]
    kernels.launch("scan_", (x.dtype, out.dtype), blocks_for(n_lines, threads), threads, out.buf,
                   x.buf, x.offset, dims(shape, 1), dims(x_strides, 0), dims(out_strides, 0),
                   len(shape), x.strides[axis], out.strides[axis], n_lines, x.shape[axis],
                   int(bool(reverse)))
    return out


# ---- foreach_norm ----------------------------------------------------------------------------
def _norm_key(ord):
    """(op, pre, post) of the vector norm of order ord."""
    if ord == 2:
        return "sum", "square", "sqrt"
    if ord == 1:
        return "sum", "abs", "identity"
    if ord == math.inf:
        return "max", "abs", "identity"
    if ord == -math.inf:
        return "min", "abs", "identity"
    if ord == 0:
        return "sum", "nonzero", "identity"
    return "sum", "pow", "root"


def foreach_norm(xs, ord):
    """Each array's vector norm over all its elements, a 0-d array in its dtype.

    int64 arrays are normed in float64 and cast back, except ord 2 of a non-empty one, which
    stays float64: the CPU backend's results (sqrt of an integer dot product, else numpy's
    vector_norm cast to the array's dtype). bool arrays raise TypeError (the CPU's ord 2
    gives float16, a dtype this device lacks).

    Per dtype: one launch per array writes its partials into one (n_arrays, P) buffer (P the
    most chunks any array is cut into, the rest filled with the fold's identity first), then
    one launch folds every row (post applied): n + 2 launches, or n when no array needs a
    second pass. The results are 0-d views on one (n_arrays,) array.
    """
    for x in xs:
        if x.size == 0 and math.isinf(ord):
            raise RuntimeError(f"vector_norm cannot compute the {ord} norm of an empty "
                               f"array of shape {x.shape}: a max or min over no elements")
    groups = {}                             # (compute dtype, result dtype) -> [index, ...]
    for i, x in enumerate(xs):
        if x.dtype not in FLOATS + (_INT,):
            raise TypeError(f"cuda foreach_norm: expected float32, float64 or int64 arrays, "
                            f"got {x.dtype} (array {i} of shape {x.shape})")
        if x.dtype in FLOATS:
            work = result = x.dtype
        else:
            work, result = _F64, (_F64 if ord == 2 and x.size else x.dtype)
        groups.setdefault((work, result), []).append(i)
    norms = [None] * len(xs)
    for (work, result), idx in groups.items():
        out = astype(_norms([astype(xs[i], work) for i in idx], ord, work), result)
        for k, i in enumerate(idx):
            norms[i] = view(out, (), (), offset=out.offset + k)
    return norms


def _norms(arrays, ord, dtype):
    """(n_arrays,) norms of same-dtype arrays."""
    op, pre, post = _norm_key(ord)
    T = dtype.type
    p = T(ord) if pre == "pow" else T(0)
    inv_p = np.reciprocal(p, dtype=T) if pre == "pow" else T(0)  # numpy's 1/ord, in dtype
    layouts = [_Layout.of(x, tuple(range(x.ndim)), ordered=False) for x in arrays]
    plans = [_Plan(1, lay.n_red, False) for lay in layouts]
    n_chunks = _max(plan.n_split for plan in plans)
    out = empty((len(arrays),), dtype)
    if n_chunks == 1:                       # every array in one pass, straight into out
        for k, (x, lay, plan) in enumerate(zip(arrays, layouts, plans)):
            _launch_reduce((op, pre, post, dtype, dtype), out, k, x.buf, x.offset, lay, plan,
                           p, inv_p)
        return out
    partials = full((len(arrays), n_chunks), _identity(op, T), dtype)    # (n_arrays, P)
    for k, (x, lay, plan) in enumerate(zip(arrays, layouts, plans)):
        _launch_reduce((op, pre, "identity", dtype, dtype), partials, k * n_chunks, x.buf,
                       x.offset, lay, plan, p, inv_p)
    rows = _Layout([len(arrays)], [n_chunks], [n_chunks], [1])
    _fold_into((op, "identity", post, dtype, dtype), out, 0, partials.buf, 0, rows, p, inv_p)
    return out

