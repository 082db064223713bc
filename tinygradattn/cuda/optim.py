"""Optimizer steps (SGD with momentum, Adam / AdamW) and foreach_mul_, in place over lists of
arrays, with torch's single-tensor arithmetic in the order the CPU kernels use
(tinygradattn/_optim_kernel.h; the formulas: _optim.pyx's docstring):

    SGD   g = fma(p, wd, g)                        wd != 0
          b = g (first step) | fma(g, 1 - dampening, b * momentum)
          g = fma(b, momentum, g) if nesterov else b
          p = fma(g, -lr, p)
    Adam  p = p * (1 - lr * wd)                    AdamW (decoupled), wd != 0
          g = fma(p, wd, g)                        Adam (L2), wd != 0
          m = fma(w, g - m, m) if |w| < 0.5 else fma(w - 1, g - m, g)     w = 1 - beta1
          v = v * beta2 + ((1 - beta2) * g) * g
          p = p + (-step_size * m) / (sqrt(v) / sqrt(bias_correction2) + eps)

Scalars reach the kernels in the parameters' dtype; the bias corrections are computed on the
host in float64 with Python's `**`, as the CPU (and torch) compute them. NOTE: NVVM contracts
a written `a * b + c` into one FMA (numba-cuda passes no -fmad=false; the CPU build has
-ffp-contract=off), so the one sum of products, Adam's `v * beta2 + ((1 - beta2) * g) * g`,
multiplies with libdevice's round-to-nearest products (__nv_fmul_rn / __nv_dmul_rn, never
contracted) on a GPU; the simulator, which has no libdevice, multiplies plainly.

Launches: numba cannot pass a Python list of arrays to a kernel, but it passes a TUPLE of
device arrays (each a kernel parameter; a runtime index into the tuple compiles to a switch,
no local memory, and the simulator runs it as Python). So one launch updates up to
`optim_arrays` parameters: their buffers, offsets and sizes travel as tuples of that fixed
length (unused slots repeat the first array with size 0), and the grid's blocks are dealt
out over the arrays by a prefix table of block counts, each block taking one chunk of
`optim_threads * optim_items` elements of one array (one thread per element, coalesced).
A step over n parameters is ceil(n / optim_arrays) launches per dtype; the tuple size keeps
the kernel's parameter space under 4 KiB (Adam: 4 tuples of 8 arrays of 56 bytes each).
"""
import builtins
import math

import numpy as np
from numba import config, cuda, types

from . import elementwise as E
from .array import CudaArray
from .launch import FLOATS, KernelSet, array_type, device_function, numba_type, tuning

kernels = KernelSet("optim")

_INT = np.dtype(np.int64)


def _arrays_type(dtype, n):
    return types.UniTuple(array_type(dtype), n)


def _ints_type(n):
    return types.UniTuple(types.int64, n)


def _find_array(vb, starts, n_arrays):
    """The array whose blocks hold virtual block vb (starts: each array's first block)."""
    j = 0
    while j + 1 < n_arrays and starts[j + 1] <= vb:
        j += 1
    return j




@kernels.define(served=[(dt,) for dt in FLOATS])
def sgd(tune, dtype):
    """One SGD step over up to K arrays: p, b (momentum buffers) in place, g read."""
    threads, chunk = tune["optim_threads"], tune["optim_threads"] * tune["optim_items"]
    find = device_function(_find_array)

    def kernel(ps, p_offs, gs, g_offs, bs, b_offs, sizes, starts, n_arrays, n_blocks, wd,
               momentum, one_minus_dampening, neg_lr, has_wd, has_momentum, first_step,
               nesterov):
        for vb in range(cuda.blockIdx.x, n_blocks, cuda.gridDim.x):
            j = find(vb, starts, n_arrays)
            p, g, b = ps[j], gs[j], bs[j]
            po, go, bo = p_offs[j], g_offs[j], b_offs[j]
            start = (vb - starts[j]) * chunk
            stop = start + chunk if start + chunk < sizes[j] else sizes[j]
            for i in range(start + cuda.threadIdx.x, stop, threads):
                gi = g[go + i]
                pi = p[po + i]
                if has_wd:
                    gi = cuda.fma(pi, wd, gi)
                if has_momentum:
                    bi = gi if first_step else cuda.fma(gi, one_minus_dampening,
                                                        b[bo + i] * momentum)
                    b[bo + i] = bi
                    gi = cuda.fma(bi, momentum, gi) if nesterov else bi
                p[po + i] = cuda.fma(gi, neg_lr, pi)
    K = tune["optim_arrays"]
    As, Is, I64, T = _arrays_type(dtype, K), _ints_type(K), types.int64, numba_type(dtype)
    return kernel, (As, Is, As, Is, As, Is, Is, Is, I64, I64, T, T, T, T, I64, I64, I64, I64)


def _mul_rn(dtype):
    """a * b rounded on its own: a product NVVM cannot fuse into a following add."""
    if config.ENABLE_CUDASIM:
        return cuda.jit(device=True)(lambda a, b: a * b)
    from numba.cuda import libdevice
    return libdevice.fmul_rn if np.dtype(dtype) == np.float32 else libdevice.dmul_rn


@kernels.define(served=[(dt,) for dt in FLOATS])
def adam(tune, dtype):
    """One Adam / AdamW step over up to K arrays: p, m, v in place, g read."""
    threads, chunk = tune["optim_threads"], tune["optim_threads"] * tune["optim_items"]
    find = device_function(_find_array)
    mul_rn = _mul_rn(dtype)

    def kernel(ps, p_offs, gs, g_offs, ms, m_offs, vs, v_offs, sizes, starts, n_arrays,
               n_blocks, decay, wd, w1, w1m1, beta2, one_minus_beta2, bc2_sqrt, eps,
               neg_step_size, decoupled, l2, w1_small):
        for vb in range(cuda.blockIdx.x, n_blocks, cuda.gridDim.x):
            j = find(vb, starts, n_arrays)
            p, g, m, v = ps[j], gs[j], ms[j], vs[j]
            po, go, mo, vo = p_offs[j], g_offs[j], m_offs[j], v_offs[j]
            start = (vb - starts[j]) * chunk
            stop = start + chunk if start + chunk < sizes[j] else sizes[j]
            for i in range(start + cuda.threadIdx.x, stop, threads):
                gi = g[go + i]
                pi = p[po + i]
                mi = m[mo + i]
                if decoupled:
                    pi = pi * decay
                if l2:
                    gi = cuda.fma(pi, wd, gi)
                d = gi - mi
                mi = cuda.fma(w1, d, mi) if w1_small else cuda.fma(w1m1, d, gi)   # torch's lerp
                vi = mul_rn(v[vo + i], beta2) + mul_rn(one_minus_beta2 * gi, gi)
                denom = math.sqrt(vi) / bc2_sqrt + eps
                p[po + i] = pi + (neg_step_size * mi) / denom
                m[mo + i] = mi
                v[vo + i] = vi
    K = tune["optim_arrays"]
    As, Is, I64, T = _arrays_type(dtype, K), _ints_type(K), types.int64, numba_type(dtype)
    return kernel, (As, Is, As, Is, As, Is, As, Is, Is, Is, I64, I64, T, T, T, T, T, T, T, T,
                    T, I64, I64, I64)


def _mul_served():
    return [(dt, st) for dt in FLOATS + (_INT,) for st in FLOATS + (_INT,)]


@kernels.define(served=_mul_served())
def mul_(tune, dtype, scale_dtype):
    """x *= scale (a 0-d device array, read on the device, cast to x's dtype) over up to K
    contiguous arrays."""
    threads, chunk = tune["optim_threads"], tune["optim_threads"] * tune["optim_items"]
    find = device_function(_find_array)
    T = np.dtype(dtype).type

    def kernel(xs, x_offs, sizes, starts, n_arrays, n_blocks, scale, scale_off):
        s = T(scale[scale_off])
        for vb in range(cuda.blockIdx.x, n_blocks, cuda.gridDim.x):
            j = find(vb, starts, n_arrays)
            x, xo = xs[j], x_offs[j]
            start = (vb - starts[j]) * chunk
            stop = start + chunk if start + chunk < sizes[j] else sizes[j]
            for i in range(start + cuda.threadIdx.x, stop, threads):
                x[xo + i] = x[xo + i] * s
    K = tune["optim_arrays"]
    I64 = types.int64
    return kernel, (_arrays_type(dtype, K), _ints_type(K), _ints_type(K), _ints_type(K), I64,
                    I64, array_type(scale_dtype), I64)


# ---- host side -------------------------------------------------------------------------------
def _batches(n):
    """Index ranges of at most optim_arrays arrays: one launch each."""
    k = tuning()["optim_arrays"]
    return [range(i, builtins.min(i + k, n)) for i in range(0, n, k)]


def _launch(name, dtype, lists, sizes, *scalars, key=None):
    """Launch kernel `name` over one batch: lists of same-length array lists (each a tuple
    of buffers + a tuple of offsets), their sizes, then scalars."""
    tune = tuning()
    k, threads = tune["optim_arrays"], tune["optim_threads"]
    chunk = threads * tune["optim_items"]
    n = len(sizes)
    counts = [-(-size // chunk) for size in sizes]
    starts, total = [], 0
    for c in counts:
        starts.append(total)
        total += c
    if total == 0:
        return
    pad = k - n
    args = []
    for arrays in lists:
        args.append(tuple(a.buf for a in arrays) + (arrays[0].buf,) * pad)
        args.append(tuple(a.offset for a in arrays) + (0,) * pad)
    args += [tuple(sizes) + (0,) * pad, tuple(starts) + (total,) * pad, n, total]
    n_blocks = builtins.min(total, tune["max_blocks"])
    kernels.launch(name, key or (dtype,), n_blocks, threads, *args, *scalars)


def _check(name, i, a, dtype, ref):
    if not isinstance(a, CudaArray):
        raise TypeError(f"{name}[{i}]: expected a cuda array, got {type(a).__name__}")
    if a.dtype != dtype:
        raise TypeError(f"{name}[{i}]: dtype {a.dtype}, expected {dtype}")
    if a.shape != ref.shape:
        raise ValueError(f"{name}[{i}]: shape {a.shape}, params[{i}] has shape {ref.shape}")


def _step(kernel, names, params, grads, states, scalars_of, n_stand_ins=0):
    """Run an in-place step kernel per dtype present in params, optim_arrays per launch;
    n_stand_ins: unused state slots of the kernel, given the params (never touched).

    Grads are cast to the param dtype and made contiguous (a copy only when needed); a
    non-contiguous param or state is updated through a contiguous copy written back after,
    so the caller's arrays change in place either way (the CPU backend's _optim_call).
    """
    for j, st in enumerate([grads] + states):
        if len(st) != len(params):
            raise ValueError(f"{names[j + 1]} holds {len(st)} arrays, params {len(params)}")
    by_dtype = {}
    for i, p in enumerate(params):
        if not isinstance(p, CudaArray) or p.dtype not in FLOATS:
            raise TypeError(f"params[{i}]: expected a float32 or float64 cuda array, got "
                            f"{getattr(p, 'dtype', type(p).__name__)}")
        by_dtype.setdefault(p.dtype, []).append(i)
    for dtype, idx in by_dtype.items():
        for i in idx:
            if grads[i].shape != params[i].shape:
                raise ValueError(f"grads[{i}]: shape {grads[i].shape}, params[{i}] has shape "
                                 f"{params[i].shape}")
            for name, st in zip(names[2:], states):
                _check(name, i, st[i], dtype, params[i])
        write_back = []

        def inplace(a):
            if a.is_contiguous:
                return a
            c = E.copy(a)
            write_back.append((a, c))
            return c

        ps = [inplace(params[i]) for i in idx]
        gs = [E.contiguous(E.astype(grads[i], dtype)) for i in idx]
        sts = [[inplace(st[i]) for i in idx] for st in states]
        scalars = scalars_of(dtype.type)
        for batch in _batches(len(idx)):
            lists = [[ps[k] for k in batch], [gs[k] for k in batch]]
            lists += [[st[k] for k in batch] for st in sts]
            lists += [lists[0]] * n_stand_ins
            _launch(kernel, dtype, lists, [ps[k].size for k in batch], *scalars)
        for dst, src in write_back:
            E.assign(dst, src)


def sgd_step(params, grads, momentum_bufs, lr, momentum, dampening, weight_decay, nesterov,
             first_step):
    """One torch SGD step in place (params, momentum_bufs), one launch per optim_arrays
    params of a dtype."""
    has_momentum = momentum != 0
    if has_momentum and momentum_bufs is None:
        raise ValueError("sgd_step: momentum != 0 needs momentum_bufs")
    if not params:
        return
    names = ("params", "grads", "momentum_bufs")

    def scalars(T):
        return (T(weight_decay), T(momentum), T(1 - dampening), T(-lr), int(weight_decay != 0),
                int(has_momentum), int(bool(first_step)), int(bool(nesterov)))

    if has_momentum:
        _step("sgd", names, params, grads, [momentum_bufs], scalars)
    else:                               # no buffers: the params stand in (never touched)
        _step("sgd", names, params, grads, [], scalars, n_stand_ins=1)


def adam_step(params, grads, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps, weight_decay,
              decoupled):
    """One torch Adam (decoupled=False) or AdamW (decoupled=True) step in place."""
    step = float(step)
    if step < 1:
        raise ValueError(f"adam_step: step must be >= 1 (counted after the increment), "
                         f"got {step}")
    if not params:
        return
    # Python floats and `**` exactly as torch/optim/adam.py (and the CPU kernels) compute them
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    step_size = lr / bias_correction1
    bc2_sqrt = bias_correction2 ** 0.5
    has_wd = weight_decay != 0
    w1_small = abs(np.float32(1 - beta1)) < 0.5     # torch's lerp tests the weight in float

    def scalars(T):
        w1 = T(1 - beta1)
        return (T(1 - lr * weight_decay), T(weight_decay), w1, w1 - T(1), T(beta2),
                T(1 - beta2), T(bc2_sqrt), T(eps), T(-step_size),
                int(bool(decoupled) and has_wd), int(not decoupled and has_wd), int(w1_small))

    _step("adam", ("params", "grads", "exp_avgs", "exp_avg_sqs"), params, grads,
          [exp_avgs, exp_avg_sqs], scalars)


def foreach_mul_(xs, scale):
    """Every x *= scale in place; scale a 0-d cuda array read by the kernel (no host copy,
    so no host test for scale == 1: x * 1 == x anyway). One launch per optim_arrays
    contiguous arrays of a dtype; a non-contiguous x goes through a product written back."""
    by_dtype = {}
    for x in xs:
        if x.is_contiguous:
            by_dtype.setdefault(x.dtype, []).append(x)
        else:
            E.assign(x, E.binary("mul", x, E.astype(scale, x.dtype)))
    for dtype, arrays in by_dtype.items():
        for batch in _batches(len(arrays)):
            group = [arrays[k] for k in batch]
            _launch("mul_", dtype, [group], [x.size for x in group], scale.buf, scale.offset,
                    key=(dtype, scale.dtype))
