"""Random numbers on the device: a counter-based generator, Philox4x32-10 (Salmon et al.,
"Parallel random numbers: as easy as 1, 2, 3", SC 2011; Random123's philox4x32 with 10
rounds, checked against its known-answer vectors in the tests).

Philox maps a 128-bit counter and a 64-bit key to 128 random bits; nothing is carried from
one block to the next, so every thread computes its own blocks:

    block t of a call = philox(counter = (offset + t) as (lo32, hi32, 0, 0), key = seed)

The generator's whole state is (seed, offset): each call takes the next `n_blocks` counters
and advances offset by that many, so results depend only on (seed, offset), the state is two
ints (JSON-able), and restoring it reproduces the next draws exactly.

From each block's four 32-bit words:
  rand float32:  4 values, 24 bits each:  (w >> 8) * 2^-24 in [0, 1)
  rand float64:  2 values, 53 bits each from two words: u53 * 2^-53 in [0, 1)
  randn:         Box-Muller on pairs of uniforms (u1 in (0, 1], so log(u1) is finite):
                 r = sqrt(-2 log u1), z = r cos(2 pi u2), r sin(2 pi u2); float32 math in
                 float32 kernels (4 values per block), float64 in float64 (2 per block);
                 u1 >= 2^-24 (2^-53) bounds |z| by 5.8 in float32 (8.6 in float64)
  randint:       2 values from 64-bit draws: low + u64 % (high - low); the modulo bias is at
                 most (high - low) / 2^64 (negligible for any range a model draws from)
  multinomial:   one uniform per block (its first word, or first two for float64), per row of
                 weights w (N, C), one block of threads per row (multinomial_kernel):
                 with replacement: cdf = cumsum(w) (each thread scans a contiguous chunk, a
                   block scan of the chunk totals shifts them), then per sample s (block
                   row * S + s) the first column with cdf > u * cdf[C - 1] (binary search);
                 without: torch's exponential race, key_j = w_j / E_j with E_j = -log(1 - u)
                   exponential(1) (block row * C + j), then the columns of the S largest keys
                   (sorting.sort, descending and stable); zero weights get key 0 (last).
                 Invalid weights (negative, inf, NaN) or a row summing to 0 set the device
                 error word: RuntimeError at the next host read, as a CUDA device assert.
"""
import functools
import math
import os

import numpy as np
from numba import cuda, types

from . import driver, sorting
from .array import empty
from .elementwise import contiguous
from .launch import (FLOATS, KernelSet, array_type, blocks_for, device_function, numba_type,
                     tuning)
from .views import basic_getitem

kernels = KernelSet("random")

_U64 = np.uint64
_MASK = _U64(0xFFFFFFFF)
_M0, _M1 = _U64(0xD2511F53), _U64(0xCD9E8D57)          # round multipliers
_W0, _W1 = _U64(0x9E3779B9), _U64(0xBB67AE85)          # key bumps (golden ratio, sqrt(3)-1)
_S32 = _U64(32)


def philox4x32_10(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 of counter (c0, c1, c2, c3) and key (k0, k1): four words, each a uint64
    holding 32 bits. Plain arithmetic: a numba device function on the GPU, and on the host the
    same code over numpy uint64 scalars or arrays (the tests' reference)."""
    for r in range(10):
        if r:                                           # the key schedule: bumped between rounds
            k0 = (k0 + _W0) & _MASK
            k1 = (k1 + _W1) & _MASK
        p0 = _M0 * c0                                   # 32 x 32 -> 64 bits: hi and lo halves
        p1 = _M1 * c2
        c0, c1, c2, c3 = ((p1 >> _S32) ^ c1 ^ k0, p1 & _MASK,
                          (p0 >> _S32) ^ c3 ^ k1, p0 & _MASK)
    return c0, c1, c2, c3




def _sincos_turn(T):
    """A device function (cos 2 pi u, sin 2 pi u) for u in [0, 1) in dtype T, in T's own
    arithmetic. math.sin / cos would do, but libdevice's sinf / cosf carry a float64 path
    (Payne-Hanek reduction for huge arguments) that a float32 kernel must not hold; the
    argument here is a turn, so the reduction is exact: x = 4u, q = round(x), r = x - q in
    [-1/2, 1/2], a = r pi/2 in [-pi/4, pi/4], then Taylor polynomials in a^2 (to a^9 / a^10
    for float32, a^17 / a^16 for float64: truncation far below an ulp) and the quadrant q's
    rotation."""
    n_sin, n_cos = (5, 6) if T is np.float32 else (9, 9)
    SIN = tuple(T((-1) ** k / math.factorial(2 * k + 1)) for k in reversed(range(n_sin)))
    COS = tuple(T((-1) ** k / math.factorial(2 * k)) for k in reversed(range(n_cos)))
    FOUR, HALF, HALF_PI = T(4.0), T(0.5), T(math.pi / 2)

    def sincos(u):
        x = FOUR * u
        q = math.floor(x + HALF)
        a = (x - q) * HALF_PI
        z = a * a
        s = SIN[0]
        for k in range(1, n_sin):
            s = s * z + SIN[k]
        s = s * a
        c = COS[0]
        for k in range(1, n_cos):
            c = c * z + COS[k]
        quadrant = int(q) & 3
        if quadrant == 0:
            return c, s
        if quadrant == 1:
            return -s, c
        if quadrant == 2:
            return -c, -s
        return s, -c
    return cuda.jit(device=True)(sincos)


# ---- kernels: one thread per 128-bit block, a grid-stride loop over the call's blocks --------
# out[t * PER + k] = value k of block t (k < PER, t * PER + k < n); blocks are counters
# offset + t (uint64, wrapping), split into the low and high 32 bits of the counter.
@kernels.define(served=[(dt, dist) for dt in FLOATS for dist in ("uniform", "normal")])
def floats(tune, dtype, dist):
    philox = device_function(philox4x32_10)
    T = np.dtype(dtype).type
    U64, I64 = types.uint64, types.int64
    PER = 4 if T is np.float32 else 2                   # values per block
    MINUS_TWO = T(-2.0)

    if T is np.float32:
        SCALE = T(2.0 ** -24)
        ONE = T(1.0)

        def uniforms(k0, k1, ctr):                      # 4 in [0, 1), multiples of 2^-24
            w0, w1, w2, w3 = philox(ctr & _MASK, ctr >> _S32, _U64(0), _U64(0), k0, k1)
            return (T(w0 >> _U64(8)) * SCALE, T(w1 >> _U64(8)) * SCALE,
                    T(w2 >> _U64(8)) * SCALE, T(w3 >> _U64(8)) * SCALE)
    else:
        SCALE = T(2.0 ** -53)
        ONE = T(1.0)

        def uniforms(k0, k1, ctr):                      # 2 in [0, 1), multiples of 2^-53
            w0, w1, w2, w3 = philox(ctr & _MASK, ctr >> _S32, _U64(0), _U64(0), k0, k1)
            a = ((w0 >> _U64(5)) << _U64(26)) | (w1 >> _U64(6))
            b = ((w2 >> _U64(5)) << _U64(26)) | (w3 >> _U64(6))
            return T(a) * SCALE, T(b) * SCALE, T(0), T(0)
    uniforms = cuda.jit(device=True)(uniforms)

    sincos = _sincos_turn(T)

    def box_muller(u1, u2):
        # u1 in (0, 1]: 1 - u for u in [0, 1); log(u1) <= 0 and finite
        r = math.sqrt(MINUS_TWO * math.log(ONE - u1))
        c, s = sincos(u2)
        return r * c, r * s
    box_muller = cuda.jit(device=True)(box_muller)
    normal = dist == "normal"

    def kernel(out, n, k0, k1, offset):
        n_blocks = (n + PER - 1) // PER
        for t in range(cuda.grid(1), n_blocks, cuda.gridsize(1)):
            v0, v1, v2, v3 = uniforms(k0, k1, offset + U64(t))
            if normal:
                v0, v1 = box_muller(v0, v1)
                if PER == 4:
                    v2, v3 = box_muller(v2, v3)
            i = t * PER
            out[i] = v0
            if i + 1 < n:
                out[i + 1] = v1
            if PER == 4:
                if i + 2 < n:
                    out[i + 2] = v2
                if i + 3 < n:
                    out[i + 3] = v3
    return kernel, (array_type(dtype), I64, U64, U64, U64)


@kernels.define(served=[()])
def integers(tune):
    philox = device_function(philox4x32_10)
    U64, I64 = types.uint64, types.int64

    def kernel(out, n, low, span, k0, k1, offset):      # out[i] = low + u64 % span
        n_blocks = (n + 1) // 2
        for t in range(cuda.grid(1), n_blocks, cuda.gridsize(1)):
            ctr = offset + U64(t)
            w0, w1, w2, w3 = philox(ctr & _MASK, ctr >> _S32, _U64(0), _U64(0), k0, k1)
            i = t * 2
            out[i] = low + I64(((w0 << _S32) | w1) % span)
            if i + 1 < n:
                out[i + 1] = low + I64(((w2 << _S32) | w3) % span)
    return kernel, (array_type(np.int64), I64, I64, U64, U64, U64, U64)


@functools.cache
def _one_uniform(dtype):
    """A device function u(k0, k1, ctr) -> one uniform in [0, 1) of dtype from block ctr: 24
    bits of its first word (float32) or 53 of its first two (float64), as `floats` makes."""
    philox = device_function(philox4x32_10)
    T = np.dtype(dtype).type

    def uniform(k0, k1, ctr):
        w0, w1, w2, w3 = philox(ctr & _MASK, ctr >> _S32, _U64(0), _U64(0), k0, k1)
        if T is np.float32:
            return T(w0 >> _U64(8)) * T(2.0 ** -24)
        return T(((w0 >> _U64(5)) << _U64(26)) | (w1 >> _U64(6))) * T(2.0 ** -53)
    return cuda.jit(device=True)(uniform)


@kernels.define(served=[(dt, rep) for dt in FLOATS for rep in (False, True)])
def multinomial_kernel(tune, dtype, replacement):
    threads = tune["row_threads"]
    T, NT = np.dtype(dtype).type, numba_type(dtype)
    zero, one, inf = T(0), T(1), T(np.inf)
    uniform = _one_uniform(np.dtype(dtype))
    U64, I64, I32 = types.uint64, types.int64, types.int32
    n_partial = threads + 1                         # chunk totals, then the row's total

    def kernel(samples, scratch, w, w_off, C, S, err, code_bad, code_zero, k0, k1, offset):
        # w (N, C) contiguous from w_off; scratch (N, C): the cdf (replacement) or the keys;
        # samples (N, S) int64 (replacement only)
        partial = cuda.shared.array(n_partial, NT)
        flag = cuda.shared.array(1, I32)    # 1: a bad weight somewhere in the row
        tid = cuda.threadIdx.x
        row = cuda.blockIdx.x
        if tid == 0:
            flag[0] = 0
        cuda.syncthreads()
        src = w_off + row * C
        dst = row * C
        chunk = (C + threads - 1) // threads
        lo = min(tid * chunk, C)
        hi = min(lo + chunk, C)
        acc = zero
        for j in range(lo, hi):                     # this thread's chunk: running sums
            v = w[src + j]
            if not (v >= zero and v < inf):         # negative, inf or NaN
                flag[0] = 1                         # (every writer writes the same value)
            acc += v
            if replacement:
                scratch[dst + j] = acc
        partial[tid] = acc
        cuda.syncthreads()
        if tid == 0:                                # exclusive scan of the chunk totals
            run = zero
            for t in range(threads):
                v = partial[t]
                partial[t] = run
                run += v
            partial[threads] = run
        cuda.syncthreads()
        if tid == 0:                                # torch's order: bad weights first
            if flag[0]:
                err[0] = code_bad
            elif not partial[threads] > zero:
                err[0] = code_zero
        if replacement:
            shift = partial[tid]
            for j in range(lo, hi):
                scratch[dst + j] += shift
            cuda.syncthreads()
            last = scratch[dst + C - 1]
            for s in range(tid, S, threads):
                target = uniform(k0, k1, offset + U64(row * S + s)) * last
                a = 0
                b = C
                while a < b:                        # the first column with cdf > target
                    m = (a + b) // 2
                    if scratch[dst + m] > target:
                        b = m
                    else:
                        a = m + 1
                if a == C:                          # u * last rounded up to last: the last
                    a = 0                           # column of positive weight instead
                    b = C
                    while a < b:
                        m = (a + b) // 2
                        if scratch[dst + m] >= last:
                            b = m
                        else:
                            a = m + 1
                samples[row * S + s] = a
        else:
            for j in range(tid, C, threads):
                v = w[src + j]
                e = -math.log(one - uniform(k0, k1, offset + U64(dst + j)))   # exponential(1)
                key = zero
                if v > zero:
                    key = v / e if e > zero else inf
                scratch[dst + j] = key
    A = array_type(dtype)
    return kernel, (array_type(np.int64), A, A, I64, I64, I64, array_type(np.int32), I32, I32,
                    U64, U64, U64)


# ---- host side ------------------------------------------------------------------------------
_PER_BLOCK = {("uniform", np.dtype(np.float32)): 4, ("normal", np.dtype(np.float32)): 4,
              ("uniform", np.dtype(np.float64)): 2, ("normal", np.dtype(np.float64)): 2}
_TWO64 = 1 << 64


class Philox:
    """The CUDA backend's generator: state {"seed", "offset"} (ints; seed taken mod 2^64)."""

    def __init__(self, seed=None):
        self.seed(int.from_bytes(os.urandom(8), "little") if seed is None else seed)

    def seed(self, seed):
        self._seed = int(seed) % _TWO64
        self._offset = 0

    manual_seed = seed              # the name tga.Generator calls

    def get_state(self):
        return {"seed": self._seed, "offset": self._offset}

    def set_state(self, state):
        try:
            seed, offset = state["seed"], state["offset"]
        except (TypeError, KeyError):
            raise ValueError(f"a cuda generator state is a dict with 'seed' and 'offset', got "
                             f"{state!r}") from None
        if not all(isinstance(v, (int, np.integer)) and 0 <= v < _TWO64 for v in (seed, offset)):
            raise ValueError(f"cuda generator state: seed and offset are ints in [0, 2^64), got "
                             f"{state!r}")
        self._seed, self._offset = int(seed), int(offset)

    def _take(self, n_blocks):
        """(k0, k1, offset) of the next n_blocks counters; the state moves past them."""
        key = (_U64(self._seed & 0xFFFFFFFF), _U64(self._seed >> 32))
        offset = self._offset
        self._offset = (offset + n_blocks) % _TWO64
        return key + (_U64(offset),)

    def _floats(self, shape, dtype, dist, what):
        shape, dtype = _shape(shape), np.dtype(dtype)
        if dtype not in FLOATS:
            raise TypeError(f"{what}: unsupported dtype {dtype} (float32 or float64)")
        out = empty(shape, dtype)
        n = out.size
        if n:
            n_blocks = -(-n // _PER_BLOCK[(dist, dtype)])
            _launch("floats", (dtype, dist), n_blocks, out.buf, n, *self._take(n_blocks))
        return out

    def rand(self, shape, dtype):
        """Uniform in [0, 1)."""
        return self._floats(shape, dtype, "uniform", "rand")

    def randn(self, shape, dtype):
        """Standard normal."""
        return self._floats(shape, dtype, "normal", "randn")

    def randint(self, low, high, shape):
        """int64 uniform in [low, high)."""
        low, high = int(low), int(high)
        if low >= high:
            raise ValueError(f"randint: low >= high ({low} >= {high})")
        if low < -2 ** 63 or high > 2 ** 63 or high - low >= _TWO64:
            raise ValueError(f"randint: [{low}, {high}) is outside int64 (or all of it)")
        out = empty(_shape(shape), np.int64)
        n = out.size
        if n:
            n_blocks = -(-n // 2)
            _launch("integers", (), n_blocks, out.buf, n, low, _U64(high - low),
                    *self._take(n_blocks))
        return out


    def multinomial(self, probs, num_samples, replacement):
        """(N, num_samples) int64: column draws from each row of weights probs (N, C), float32
        or float64, with or without replacement (see the module's docstring). Bad weights or
        a row summing to 0 raise RuntimeError at the next host read."""
        N, C = probs.shape
        dtype = np.dtype(probs.dtype)
        if dtype not in FLOATS:
            raise TypeError(f"multinomial: unsupported dtype {dtype} (float32 or float64)")
        S = int(num_samples)
        samples = empty((N, S), np.int64)                           # (N, S)
        if N == 0 or S == 0:
            return samples
        if C == 0:
            raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
        w = contiguous(probs)
        err, code_bad = driver.check_word(
            RuntimeError, "probability tensor contains either `inf`, `nan` or element < 0 "
            "(flagged by a cuda kernel, raised at the next host read)")
        _, code_zero = driver.check_word(
            RuntimeError, "invalid multinomial distribution (sum of probabilities <= 0) "
            "(flagged by a cuda kernel, raised at the next host read)")
        scratch = empty((N, C), dtype)                              # (N, C) cdf or keys
        n_blocks = N * (S if replacement else C)
        kernels.launch("multinomial_kernel", (dtype, bool(replacement)), N,
                       tuning()["row_threads"], samples.buf, scratch.buf, w.buf, w.offset,
                       C, S, err, code_bad, code_zero, *self._take(n_blocks))   # a block/row
        if replacement:
            return samples
        _, order = sorting.sort(scratch, descending=True)          # (N, C) keys' columns
        return contiguous(basic_getitem(order, (slice(None), slice(0, S))))


def _shape(shape):
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)


def _launch(name, key, n_blocks, *args):
    threads = tuning()["threads"]
    kernels.launch(name, key, blocks_for(n_blocks, threads), threads, *args)


def host_blocks(seed, offset, n_blocks):
    """The words the device draws for blocks offset .. offset + n_blocks - 1 under seed:
    (n_blocks, 4) uint32 on the host (the tests' reference; slow-ish, small n only)."""
    ctr = (np.arange(n_blocks, dtype=np.uint64) + _U64(offset))
    k0, k1 = _U64(seed & 0xFFFFFFFF), _U64((seed % _TWO64) >> 32)
    zero = np.zeros(n_blocks, np.uint64)
    words = philox4x32_10(ctr & _MASK, ctr >> _S32, zero, zero, k0 + zero, k1 + zero)
    return np.stack(words, axis=1).astype(np.uint32)


_DEFAULT = []


def default_generator():
    """The process's device generator: what the cuda backend and tga.cuda.manual_seed use."""
    if not _DEFAULT:
        _DEFAULT.append(Philox())
    return _DEFAULT[0]
