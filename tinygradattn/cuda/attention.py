"""Fused scaled-dot-product attention (FlashAttention-2 tiling), forward and backward, float32
and float64: backend/base.py's sdpa_fwd / sdpa_bwd / qkv_attention_fwd / qkv_attention_bwd
with the CPU kernels' semantics (_attention.pyx): a mask None, additive float or bool (True =
may attend) broadcast to (B, H, T, S); causal top-left aligned (query i sees keys j <= i, also
when T != S); a fully masked row gives out 0, lse -inf and no gradient. No T x S matrix is
ever stored: the forward keeps lse per row, the backward recomputes p tile by tile from it.

  forward   sdpa_fwd_kernel: one block per (b*h, query tile of BQ rows)
      for each key tile of BK keys (causal: only tiles with a key j <= the tile's last row)
          s = q k^T * scale + mask             (-inf where masked, causal or out of range)
          m' = max(m, rowmax(s));  p = exp(s - m');  a = exp(m - m')
          l = a * l + rowsum(p);  acc = a * acc + p v;  m = m'
      out = acc / l;  lse = m + log(l)         (l == 0, a fully masked row: 0 and -inf)
  backward  attn_delta_kernel: delta[i] = dout[i] . out[i]            (one thread per row)
      sdpa_bwd_dkdv_kernel: one block per (b*h, key tile of BK keys)
          for each query tile (causal: those holding a row i >= the tile's first key)
              p = exp(s - lse);  ds = scale * p * (dout v^T - delta)
              dv += p^T dout;  dk += ds^T q     (the block owns its key rows: no atomics)
      sdpa_bwd_dq_kernel: one block per (b*h, query tile), over the key tiles as the forward
              dq += ds k                        (s, p, ds recomputed: no atomics either)

Threads: every row a block owns (a query row; a key row in dkdv) has L lanes. Lane c scores
the tile rows c, c + L, ... and accumulates the output columns c, c + L, ... in registers:
the head-dim bucket DM (16, 32, 64 or 128, the largest of D and Dv rounded up) is part of
the kernel key, so those arrays have a compile-time size of DM / L. A row's max and sum are
combined through shared memory. The q, k, v, dout tiles and the score tile live in shared
memory, rows padded by one element so that lanes reading one column of different rows hit
different banks.

Sizes: tune's attn_block_q / attn_block_k / attn_threads are upper bounds; `tiles` halves
the tiles (the larger first) until a kernel's shared memory fits 48 KiB. At the GPU sizes,
D = 64 float32 runs 64 x 32 forward tiles and 32 x 32 backward ones; D = 128 float64 runs
16 x 16 forward and 8 x 8 backward.

Operands are read in place through their strides (the heads of a (B, T, H, D) buffer, the
thirds of a packed qkv, a mask broadcast with stride 0); out is a (B, T, H, Dv) buffer viewed
(B, H, T, Dv) as on the CPU, so merging the heads is a view, and the gradients are written
through views (dq | dk | dv: the thirds of one dqkv buffer).
"""
import functools
import math

import numpy as np
from numba import cuda, types

from .array import CudaArray, empty, view
from .elementwise import astype, broadcast_shapes, broadcast_strides, contiguous
from .launch import (FLOATS, KernelSet, array_type, blocks_for, dims, dims_type, numba_type,
                     tuning)

kernels = KernelSet("attention")

HEAD_DIMS = (16, 32, 64, 128)       # head-dim buckets; a larger D or Dv is not served
MASKS = ("none", "add", "bool")     # no mask, an additive float mask, a bool mask
SMEM_LIMIT = 48 * 1024              # bytes of static shared memory per block
_BOOL = np.dtype(np.bool_)
_SERVED = [(dt, kind, dm) for dt in FLOATS for kind in MASKS for dm in HEAD_DIMS]


# ---- tile sizes ------------------------------------------------------------------------------
def smem_elements(kernel, outer, inner, dm, lanes):
    """Shared-memory elements of `kernel` for `outer` owned rows and `inner`-row tiles."""
    ld = dm + 1
    if kernel == "fwd":     # q tile, k-then-v tile, p, per-lane row max and row sum
        return (outer + inner) * ld + outer * (inner + 1) + 2 * outer * lanes
    if kernel == "dkdv":    # k, v tiles; q, dout tiles; p, ds; lse, delta
        return 2 * (outer + inner) * ld + 2 * outer * (inner + 1) + 2 * inner
    return 2 * (outer + inner) * ld + outer * (inner + 1)           # dq: q, dout; k, v; ds


def tiles(tune, kernel, dtype, dm):
    """(outer, inner, lanes) of kernel "fwd", "dkdv" or "dq": rows a block owns (query rows;
    key rows for dkdv), rows of the tiles it loops over, lanes per owned row. tune's sizes
    (powers of two), halved the larger first until the shared memory fits SMEM_LIMIT."""
    outer, inner = tune["attn_block_q"], tune["attn_block_k"]
    if kernel == "dkdv":
        outer, inner = inner, outer
    itemsize = np.dtype(dtype).itemsize
    while True:
        lanes = max(1, min(tune["attn_threads"] // outer, inner, HEAD_DIMS[0]))
        fits = smem_elements(kernel, outer, inner, dm, lanes) * itemsize <= SMEM_LIMIT
        if fits or outer == inner == 1:
            return outer, inner, lanes
        if inner >= outer:
            inner //= 2
        else:
            outer //= 2


# ---- device helpers --------------------------------------------------------------------------
def _load_rows(dst, src, base, row0, n_rows, row_stride, col_stride, n_cols, width, tid,
               n_threads):
    """dst[r, d] = src[base + (row0 + r) * row_stride + d * col_stride] for d < n_cols; the
    columns n_cols <= d < width and the rows row0 + r >= n_rows as 0, so that edge tiles run
    the same code and the accumulation loops, which run over all `width` (DM) columns, add
    zeros. The whole block stages the tile, consecutive threads on consecutive columns
    (coalesced where col_stride is 1)."""
    for e in range(tid, dst.shape[0] * width, n_threads):
        r = e // width
        d = e - r * width
        if row0 + r < n_rows and d < n_cols:
            dst[r, d] = src[base + (row0 + r) * row_stride + d * col_stride]
        else:
            dst[r, d] = 0


@functools.cache
def _loader():
    return cuda.jit(device=True)(_load_rows)


@functools.cache
def _scorer(mask_kind, dtype):
    """score(dot, scale, visible, mask, at): the masked score of one (query, key) pair,
    -inf where not visible (causal, out of range) or where the bool mask says False."""
    NEG_INF = np.dtype(dtype).type(-math.inf)
    if mask_kind == "add":
        def score(dot, scale, visible, mask, at):
            return dot * scale + mask[at] if visible else NEG_INF
    elif mask_kind == "bool":
        def score(dot, scale, visible, mask, at):
            return dot * scale if visible and mask[at] else NEG_INF
    else:
        def score(dot, scale, visible, mask, at):
            return dot * scale if visible else NEG_INF
    return cuda.jit(device=True)(score)


def _types(dtype, mask_kind):
    """The numba types a kernel signature is written with: (buffer, mask buffer, int,
    strides, scalar)."""
    A, I64, D = array_type(dtype), types.int64, dims_type()
    M = array_type(_BOOL if mask_kind == "bool" else dtype)
    return A, M, I64, D, numba_type(dtype)


# ---- forward ---------------------------------------------------------------------------------
@kernels.define(served=_SERVED)
def sdpa_fwd_kernel(tune, dtype, mask_kind, dm):
    BQ, BK, L = tiles(tune, "fwd", dtype, dm)
    NS, NA, NT, LD = BK // L, dm // L, BQ * L, dm + 1
    Q_TILE, K_TILE, P_TILE, LANES = (BQ, LD), (BK, LD), (BQ, BK + 1), (BQ, L)   # constants
    nb, T = numba_type(dtype), np.dtype(dtype).type
    ZERO, ONE, NEG_INF = T(0), T(1), T(-math.inf)
    load, score = _loader(), _scorer(mask_kind, np.dtype(dtype))

    def kernel(out, out_off, out_st, lse, q, q_off, q_st, k, k_off, k_st, v, v_off, v_st,
               mask, mask_off, mask_st, H, n_q, n_k, D, Dv, causal, scale):
        q_sh = cuda.shared.array(Q_TILE, nb)
        kv_sh = cuda.shared.array(K_TILE, nb)               # the k tile, then the v tile
        p_sh = cuda.shared.array(P_TILE, nb)
        max_sh = cuda.shared.array(LANES, nb)               # per-lane row max
        sum_sh = cuda.shared.array(LANES, nb)               # per-lane row sum
        s = cuda.local.array(NS, nb)
        acc = cuda.local.array(NA, nb)
        tid = cuda.threadIdx.x
        r = tid // L
        c = tid - r * L
        bh = cuda.blockIdx.x
        b = bh // H
        h = bh - b * H
        q0 = (cuda.gridDim.y - 1 - cuda.blockIdx.y) * BQ    # last tiles (causal's largest) first
        i = q0 + r
        q_base = q_off + b * q_st[2] + h * q_st[3]
        k_base = k_off + b * k_st[2] + h * k_st[3]
        v_base = v_off + b * v_st[2] + h * v_st[3]
        m_row = mask_off + b * mask_st[2] + h * mask_st[3] + i * mask_st[4]
        load(q_sh, q, q_base, q0, n_q, q_st[4], q_st[5], D, dm, tid, NT)
        k_end = n_k
        if causal != 0:                                     # keys j <= the tile's last row
            k_end = min(n_k, min(n_q, q0 + BQ))
        m = NEG_INF
        l = ZERO
        for a in range(NA):
            acc[a] = ZERO
        for k0 in range(0, k_end, BK):
            cuda.syncthreads()                  # the last tile's reads of kv_sh, p_sh are done
            load(kv_sh, k, k_base, k0, k_end, k_st[4], k_st[5], D, dm, tid, NT)
            cuda.syncthreads()
            for u in range(NS):
                s[u] = ZERO
            for d in range(D):                              # s[u] = q[i] . k[k0 + c + u*L]
                qd = q_sh[r, d]
                for u in range(NS):
                    s[u] += qd * kv_sh[c + u * L, d]
            row_max = NEG_INF
            for u in range(NS):
                j = k0 + c + u * L
                visible = i < n_q and j < k_end and (causal == 0 or j <= i)
                s[u] = score(s[u], scale, visible, mask, m_row + j * mask_st[5])
                row_max = max(row_max, s[u])
            max_sh[r, c] = row_max
            cuda.syncthreads()                  # every read of the k tile is done
            load(kv_sh, v, v_base, k0, k_end, v_st[4], v_st[5], Dv, dm, tid, NT)
            m_new = m
            for cc in range(L):
                m_new = max(m_new, max_sh[r, cc])
            # nothing visible yet: shift 0 keeps exp(-inf - shift) = 0 (never -inf - -inf);
            # m = -inf: every p so far was 0, so l and acc are 0 and need no rescaling
            shift = ZERO if m_new == NEG_INF else m_new
            alpha = ONE if m == NEG_INF else math.exp(m - shift)
            part = ZERO
            for u in range(NS):
                p = math.exp(s[u] - shift)
                p_sh[r, c + u * L] = p
                part += p
            sum_sh[r, c] = part
            cuda.syncthreads()
            total = ZERO
            for cc in range(L):
                total += sum_sh[r, cc]
            l = l * alpha + total
            m = m_new
            for a in range(NA):
                acc[a] *= alpha
            for jj in range(min(BK, k_end - k0)):          # acc += p v, own columns
                p = p_sh[r, jj]
                for a in range(NA):
                    acc[a] += p * kv_sh[jj, c + a * L]
        if i < n_q:
            o_base = out_off + b * out_st[2] + h * out_st[3] + i * out_st[4]
            inv = ONE / l if l != ZERO else ZERO
            for a in range(NA):
                if c + a * L < Dv:                          # l == 0: fully masked, out 0
                    out[o_base + (c + a * L) * out_st[5]] = acc[a] * inv if l != ZERO else ZERO
            if c == 0:
                lse[bh * n_q + i] = m + math.log(l) if l != ZERO else NEG_INF

    A, M, I64, Dm, Tn = _types(dtype, mask_kind)
    return kernel, (A, I64, Dm, A, A, I64, Dm, A, I64, Dm, A, I64, Dm, M, I64, Dm,
                    I64, I64, I64, I64, I64, I64, Tn)


# ---- backward --------------------------------------------------------------------------------
@kernels.define(served=[(dt,) for dt in FLOATS])
def attn_delta_kernel(tune, dtype):
    ZERO = np.dtype(dtype).type(0)

    def kernel(delta, dout, do_off, do_st, out, out_off, out_st, H, n_q, Dv, n):
        for row in range(cuda.grid(1), n, cuda.gridsize(1)):        # row = bh * n_q + i
            bh = row // n_q
            i = row - bh * n_q
            b = bh // H
            h = bh - b * H
            at_do = do_off + b * do_st[2] + h * do_st[3] + i * do_st[4]
            at_out = out_off + b * out_st[2] + h * out_st[3] + i * out_st[4]
            total = ZERO
            for d in range(Dv):
                total += dout[at_do + d * do_st[5]] * out[at_out + d * out_st[5]]
            delta[row] = total

    A, I64, Dm = array_type(dtype), types.int64, dims_type()
    return kernel, (A, A, I64, Dm, A, I64, Dm, I64, I64, I64, I64)


@kernels.define(served=_SERVED)
def sdpa_bwd_dkdv_kernel(tune, dtype, mask_kind, dm):
    BK, BQ, L = tiles(tune, "dkdv", dtype, dm)
    NS, NA, NT, LD = BQ // L, dm // L, BK * L, dm + 1
    Q_TILE, K_TILE, P_TILE = (BQ, LD), (BK, LD), (BK, BQ + 1)        # shapes: constants
    nb, T = numba_type(dtype), np.dtype(dtype).type
    ZERO, NEG_INF = T(0), T(-math.inf)
    load, score = _loader(), _scorer(mask_kind, np.dtype(dtype))

    def kernel(dk, dk_off, dk_st, dv, dv_off, dv_st, dout, do_off, do_st, q, q_off, q_st,
               k, k_off, k_st, v, v_off, v_st, lse, lse_off, delta, mask, mask_off, mask_st,
               H, n_q, n_k, D, Dv, causal, scale):
        k_sh = cuda.shared.array(K_TILE, nb)
        v_sh = cuda.shared.array(K_TILE, nb)
        q_sh = cuda.shared.array(Q_TILE, nb)
        do_sh = cuda.shared.array(Q_TILE, nb)
        p_sh = cuda.shared.array(P_TILE, nb)                # p^T: key row, query column
        ds_sh = cuda.shared.array(P_TILE, nb)
        lse_sh = cuda.shared.array(BQ, nb)
        delta_sh = cuda.shared.array(BQ, nb)
        s = cuda.local.array(NS, nb)
        dp = cuda.local.array(NS, nb)
        dk_acc = cuda.local.array(NA, nb)
        dv_acc = cuda.local.array(NA, nb)
        tid = cuda.threadIdx.x
        r = tid // L
        c = tid - r * L
        bh = cuda.blockIdx.x
        b = bh // H
        h = bh - b * H
        k0 = cuda.blockIdx.y * BK
        j = k0 + r
        q_base = q_off + b * q_st[2] + h * q_st[3]
        k_base = k_off + b * k_st[2] + h * k_st[3]
        v_base = v_off + b * v_st[2] + h * v_st[3]
        do_base = do_off + b * do_st[2] + h * do_st[3]
        m_col = mask_off + b * mask_st[2] + h * mask_st[3] + j * mask_st[5]
        load(k_sh, k, k_base, k0, n_k, k_st[4], k_st[5], D, dm, tid, NT)
        load(v_sh, v, v_base, k0, n_k, v_st[4], v_st[5], Dv, dm, tid, NT)
        for a in range(NA):
            dk_acc[a] = ZERO
            dv_acc[a] = ZERO
        q_first = (k0 // BQ) * BQ if causal != 0 else 0     # rows i < k0 see none of the keys
        for q0 in range(q_first, n_q, BQ):
            cuda.syncthreads()                  # the last tile's reads of q_sh ... ds_sh done
            load(q_sh, q, q_base, q0, n_q, q_st[4], q_st[5], D, dm, tid, NT)
            load(do_sh, dout, do_base, q0, n_q, do_st[4], do_st[5], Dv, dm, tid, NT)
            for e in range(tid, BQ, NT):
                inside = q0 + e < n_q
                lse_sh[e] = lse[lse_off + bh * n_q + q0 + e] if inside else NEG_INF
                delta_sh[e] = delta[bh * n_q + q0 + e] if inside else ZERO
            cuda.syncthreads()
            for u in range(NS):
                s[u] = ZERO
                dp[u] = ZERO
            for d in range(D):                              # s[u] = q[q0 + c + u*L] . k[j]
                kd = k_sh[r, d]
                for u in range(NS):
                    s[u] += q_sh[c + u * L, d] * kd
            for d in range(Dv):                             # dp[u] = dout[...] . v[j]
                vd = v_sh[r, d]
                for u in range(NS):
                    dp[u] += do_sh[c + u * L, d] * vd
            for u in range(NS):
                ii = c + u * L
                i = q0 + ii
                visible = i < n_q and j < n_k and (causal == 0 or j <= i)
                x = score(s[u], scale, visible, mask, m_col + i * mask_st[4])
                lse_i = lse_sh[ii]
                p = ZERO if lse_i == NEG_INF else math.exp(x - lse_i)   # dead row: no grad
                p_sh[r, ii] = p
                ds_sh[r, ii] = scale * p * (dp[u] - delta_sh[ii])
            cuda.syncthreads()
            for ii in range(min(BQ, n_q - q0)):            # dv += p^T dout, dk += ds^T q
                p = p_sh[r, ii]
                g = ds_sh[r, ii]
                for a in range(NA):
                    dv_acc[a] += p * do_sh[ii, c + a * L]
                    dk_acc[a] += g * q_sh[ii, c + a * L]
        if j < n_k:                             # keys no query sees (causal, S > T) get 0
            at_dk = dk_off + b * dk_st[2] + h * dk_st[3] + j * dk_st[4]
            at_dv = dv_off + b * dv_st[2] + h * dv_st[3] + j * dv_st[4]
            for a in range(NA):
                if c + a * L < D:
                    dk[at_dk + (c + a * L) * dk_st[5]] = dk_acc[a]
                if c + a * L < Dv:
                    dv[at_dv + (c + a * L) * dv_st[5]] = dv_acc[a]

    A, M, I64, Dm, Tn = _types(dtype, mask_kind)
    return kernel, (A, I64, Dm, A, I64, Dm, A, I64, Dm, A, I64, Dm, A, I64, Dm, A, I64, Dm,
                    A, I64, A, M, I64, Dm, I64, I64, I64, I64, I64, I64, Tn)


@kernels.define(served=_SERVED)
def sdpa_bwd_dq_kernel(tune, dtype, mask_kind, dm):
    BQ, BK, L = tiles(tune, "dq", dtype, dm)
    NS, NA, NT, LD = BK // L, dm // L, BQ * L, dm + 1
    Q_TILE, K_TILE, DS_TILE = (BQ, LD), (BK, LD), (BQ, BK + 1)       # shapes: constants
    nb, T = numba_type(dtype), np.dtype(dtype).type
    ZERO, NEG_INF = T(0), T(-math.inf)
    load, score = _loader(), _scorer(mask_kind, np.dtype(dtype))

    def kernel(dq, dq_off, dq_st, dout, do_off, do_st, q, q_off, q_st, k, k_off, k_st,
               v, v_off, v_st, lse, lse_off, delta, mask, mask_off, mask_st,
               H, n_q, n_k, D, Dv, causal, scale):
        q_sh = cuda.shared.array(Q_TILE, nb)
        do_sh = cuda.shared.array(Q_TILE, nb)
        k_sh = cuda.shared.array(K_TILE, nb)
        v_sh = cuda.shared.array(K_TILE, nb)
        ds_sh = cuda.shared.array(DS_TILE, nb)
        s = cuda.local.array(NS, nb)
        dp = cuda.local.array(NS, nb)
        dq_acc = cuda.local.array(NA, nb)
        tid = cuda.threadIdx.x
        r = tid // L
        c = tid - r * L
        bh = cuda.blockIdx.x
        b = bh // H
        h = bh - b * H
        q0 = (cuda.gridDim.y - 1 - cuda.blockIdx.y) * BQ    # last tiles (causal's largest) first
        i = q0 + r
        q_base = q_off + b * q_st[2] + h * q_st[3]
        k_base = k_off + b * k_st[2] + h * k_st[3]
        v_base = v_off + b * v_st[2] + h * v_st[3]
        do_base = do_off + b * do_st[2] + h * do_st[3]
        m_row = mask_off + b * mask_st[2] + h * mask_st[3] + i * mask_st[4]
        load(q_sh, q, q_base, q0, n_q, q_st[4], q_st[5], D, dm, tid, NT)
        load(do_sh, dout, do_base, q0, n_q, do_st[4], do_st[5], Dv, dm, tid, NT)
        lse_i = lse[lse_off + bh * n_q + i] if i < n_q else NEG_INF
        delta_i = delta[bh * n_q + i] if i < n_q else ZERO
        for a in range(NA):
            dq_acc[a] = ZERO
        k_end = n_k
        if causal != 0:                                     # keys j <= the tile's last row
            k_end = min(n_k, min(n_q, q0 + BQ))
        for k0 in range(0, k_end, BK):
            cuda.syncthreads()                  # the last tile's reads of k_sh, ds_sh are done
            load(k_sh, k, k_base, k0, k_end, k_st[4], k_st[5], D, dm, tid, NT)
            load(v_sh, v, v_base, k0, k_end, v_st[4], v_st[5], Dv, dm, tid, NT)
            cuda.syncthreads()
            for u in range(NS):
                s[u] = ZERO
                dp[u] = ZERO
            for d in range(D):                              # s[u] = q[i] . k[k0 + c + u*L]
                qd = q_sh[r, d]
                for u in range(NS):
                    s[u] += qd * k_sh[c + u * L, d]
            for d in range(Dv):                             # dp[u] = dout[i] . v[...]
                g = do_sh[r, d]
                for u in range(NS):
                    dp[u] += g * v_sh[c + u * L, d]
            for u in range(NS):
                j = k0 + c + u * L
                visible = i < n_q and j < k_end and (causal == 0 or j <= i)
                x = score(s[u], scale, visible, mask, m_row + j * mask_st[5])
                p = ZERO if lse_i == NEG_INF else math.exp(x - lse_i)   # dead row: no grad
                ds_sh[r, c + u * L] = scale * p * (dp[u] - delta_i)
            cuda.syncthreads()
            for jj in range(min(BK, k_end - k0)):          # dq += ds k, own columns
                g = ds_sh[r, jj]
                for a in range(NA):
                    dq_acc[a] += g * k_sh[jj, c + a * L]
        if i < n_q:
            at = dq_off + b * dq_st[2] + h * dq_st[3] + i * dq_st[4]
            for a in range(NA):
                if c + a * L < D:
                    dq[at + (c + a * L) * dq_st[5]] = dq_acc[a]

    A, M, I64, Dm, Tn = _types(dtype, mask_kind)
    return kernel, (A, I64, Dm, A, I64, Dm, A, I64, Dm, A, I64, Dm, A, I64, Dm,
                    A, I64, A, M, I64, Dm, I64, I64, I64, I64, I64, I64, Tn)


# ---- host side: checks, views, launches ------------------------------------------------------
def sdpa_fwd(q, k, v, mask, is_causal, scale):
    """q (B, H, T, D), k (B, H, S, D), v (B, H, S, Dv) -> out (B, H, T, Dv), lse (B, H, T)."""
    dtype = _check("sdpa_fwd", ("q", "k", "v"), (q, k, v))
    B, H, T, _ = q.shape
    out = empty((B, T, H, v.shape[3]), dtype)                           # as torch's flash
    out = view(out, (B, H, T, v.shape[3]), _swap12(out.strides))        # (B, H, T, Dv)
    lse = empty((B, H, T), dtype)
    _forward(out, lse, q, k, v, mask, is_causal, scale)
    return out, lse


def sdpa_bwd(dout, q, k, v, out, lse, mask, is_causal, scale):
    """-> dq, dk, dv shaped (and laid out) like q (B, H, T, D), k (B, H, S, D), v."""
    _check("sdpa_bwd", ("dout", "q", "k", "v", "out", "lse"), (dout, q, k, v, out, lse))
    dq, dk, dv = _empty_heads_like(q), _empty_heads_like(k), _empty_heads_like(v)
    _backward(dq, dk, dv, dout, q, k, v, out, lse, mask, is_causal, scale)
    return dq, dk, dv


def qkv_attention_fwd(qkv, n_head, is_causal, scale, mask=None):
    """qkv (B, T, 3C) -> y (B, T, C), lse (B, H, T); q, k, v: qkv's thirds, H heads each;
    mask as sdpa_fwd's."""
    q, k, v = _qkv_heads("qkv_attention_fwd", qkv, n_head)               # 3 x (B, H, T, D)
    B, T, C3 = qkv.shape
    _check("sdpa_fwd", ("q", "k", "v"), (q, k, v))
    y = empty((B, T, C3 // 3), qkv.dtype)                                # (B, T, C)
    lse = empty((B, n_head, T), qkv.dtype)
    _forward(_merged_heads(y, n_head), lse, q, k, v, mask, is_causal, scale)
    return y, lse


def qkv_attention_bwd(dout, qkv, y, lse, n_head, is_causal, scale, mask=None):
    """dout (B, T, C) -> dqkv (B, T, 3C), written by the kernels through dq | dk | dv views."""
    q, k, v = _qkv_heads("qkv_attention_bwd", qkv, n_head)               # 3 x (B, H, T, D)
    for name, a in (("dout", dout), ("y", y)):
        if not isinstance(a, CudaArray) or a.shape != qkv.shape[:2] + (qkv.shape[2] // 3,):
            raise ValueError(f"qkv_attention_bwd: {name} has shape {getattr(a, 'shape', a)}, "
                             f"expected {qkv.shape[:2] + (qkv.shape[2] // 3,)} (qkv "
                             f"{qkv.shape}, n_head {n_head})")
    dout, y = _merged_heads(dout, n_head), _merged_heads(y, n_head)      # (B, H, T, D)
    _check("sdpa_bwd", ("dout", "q", "k", "v", "out", "lse"), (dout, q, k, v, y, lse))
    dqkv = empty(qkv.shape, qkv.dtype)                                   # (B, T, 3C)
    dq, dk, dv = _qkv_heads("qkv_attention_bwd", dqkv, n_head)
    _backward(dq, dk, dv, dout, q, k, v, y, lse, mask, is_causal, scale)
    return dqkv


def _forward(out, lse, q, k, v, mask, is_causal, scale):
    """Launch the forward: out (B, H, T, Dv) any strides, lse (B, H, T) new (offset 0)."""
    B, H, T, D = q.shape
    S, Dv = k.shape[2], v.shape[3]
    mask, kind, mask_args = _mask_operand(mask, q, k)     # mask: alive until launched
    if B * H * T == 0:
        return
    dm = _bucket("sdpa_fwd", D, Dv)
    BQ, _, L = tiles(tuning(), "fwd", q.dtype, dm)
    kernels.launch("sdpa_fwd_kernel", (q.dtype, kind, dm), (B * H, -(-T // BQ)), BQ * L,
                   *_operand(out), lse.buf, *_operand(q), *_operand(k), *_operand(v),
                   *mask_args, H, T, S, D, Dv, int(bool(is_causal)), q.dtype.type(scale))


def _backward(dq, dk, dv, dout, q, k, v, out, lse, mask, is_causal, scale):
    """Launch delta, then dq (one block per query tile), then dk, dv (one per key tile)."""
    B, H, T, D = q.shape
    S, Dv = k.shape[2], v.shape[3]
    mask, kind, mask_args = _mask_operand(mask, q, k)     # mask: alive until launched
    if B * H == 0 or T + S == 0:
        return
    dm = _bucket("sdpa_bwd", D, Dv)
    dtype = q.dtype
    lse = contiguous(lse)
    delta = empty((B, H, T), dtype)                                     # rowsum(dout * out)
    sizes = (H, T, S, D, Dv, int(bool(is_causal)), dtype.type(scale))
    common = (*_operand(dout), *_operand(q), *_operand(k), *_operand(v), lse.buf, lse.offset,
              delta.buf, *mask_args, *sizes)
    if T:
        threads = tuning()["threads"]
        kernels.launch("attn_delta_kernel", (dtype,), blocks_for(B * H * T, threads), threads,
                       delta.buf, *_operand(dout), *_operand(out), H, T, Dv, B * H * T)
        BQ, _, L = tiles(tuning(), "dq", dtype, dm)
        kernels.launch("sdpa_bwd_dq_kernel", (dtype, kind, dm), (B * H, -(-T // BQ)), BQ * L,
                       *_operand(dq), *common)
    if S:                                   # T == 0: dk, dv written as 0
        BK, _, L = tiles(tuning(), "dkdv", dtype, dm)
        kernels.launch("sdpa_bwd_dkdv_kernel", (dtype, kind, dm), (B * H, -(-S // BK)),
                       BK * L, *_operand(dk), *_operand(dv), *common)


def _check(fn, names, arrays):
    """The CPU kernels' checks: 4-D q, k, v; one float dtype (TypeError); the shapes that
    q (B, H, T, D), k (B, H, S, D), v (B, H, S, Dv) imply for every array (ValueError)."""
    for name, a in zip(names, arrays):
        if not isinstance(a, CudaArray):
            raise TypeError(f"{fn}: {name} must be a CudaArray, got {type(a).__name__}")
    q, k, v = arrays[names.index("q")], arrays[names.index("k")], arrays[names.index("v")]
    if not q.ndim == k.ndim == v.ndim == 4:
        raise ValueError(f"{fn}: q, k, v must be 4-D arrays (B, H, T, D), got {q.shape}, "
                         f"{k.shape}, {v.shape}")
    dtype = q.dtype
    if dtype not in FLOATS or any(a.dtype != dtype for a in arrays):
        listed = ", ".join(f"{n} {a.dtype}" for n, a in zip(names, arrays))
        raise TypeError(f"{fn}: all arrays must have the same dtype, float32 or float64; got "
                        f"{listed}")
    B, H, T, D = q.shape
    S, Dv = k.shape[2], v.shape[3]
    expected = {"q": (B, H, T, D), "k": (B, H, S, D), "v": (B, H, S, Dv),
                "out": (B, H, T, Dv), "dout": (B, H, T, Dv), "lse": (B, H, T)}
    for name, a in zip(names, arrays):
        if a.shape != expected[name]:
            listed = ", ".join(f"{n} {x.shape}" for n, x in zip(names, arrays))
            raise ValueError(f"{fn}: {name} has shape {a.shape}, expected {expected[name]} "
                             f"({listed})")
    return dtype


def _bucket(fn, D, Dv):
    """The head-dim bucket of D and Dv: the kernels' compile-time DM."""
    for dm in HEAD_DIMS:
        if max(D, Dv) <= dm:
            return dm
    raise NotImplementedError(f"cuda {fn}: head dims D={D}, Dv={Dv}; the attention kernels "
                              f"serve D, Dv <= {HEAD_DIMS[-1]}")


def _operand(x):
    """(buffer, offset, strides) of a (B, H, rows, D) array, read or written in place."""
    return x.buf, x.offset, dims(x.strides, 0)


def _mask_operand(mask, q, k):
    """(mask, kind, (buffer, offset, strides)): the mask read as (B, H, T, S) in place, stride
    0 where it broadcasts; a non-bool mask in q's dtype (as the CPU backend). The caller holds
    the returned mask (a cast is a new array) until its kernels are launched: dropped earlier,
    its block could be handed out again first. No mask: a dummy buffer the "none" kernels
    never read."""
    if mask is None:
        return None, "none", (q.buf, 0, dims((), 0))
    shape = q.shape[:3] + (k.shape[2],)
    if mask.ndim > 4 or broadcast_shapes(mask.shape, shape) != shape:
        raise ValueError(f"sdpa: mask of shape {mask.shape} cannot broadcast to the scores "
                         f"{shape}")
    if mask.dtype != _BOOL:
        mask = astype(mask, q.dtype)
    kind = "bool" if mask.dtype == _BOOL else "add"
    return mask, kind, (mask.buf, mask.offset, dims(broadcast_strides(mask, shape), 0))


def _merged_heads(x, n_head):
    """x (B, T, H*D) viewed (B, H, T, D) (any strides: splitting its last dim is a view)."""
    B, T, C = x.shape
    D = C // n_head
    sb, st, sc = x.strides
    return view(x, (B, n_head, T, D), (sb, D * sc, st, sc))


def _qkv_heads(fn, qkv, n_head):
    """q, k, v (B, H, T, D): views of the thirds of a packed projection qkv (B, T, 3*H*D)."""
    if not isinstance(qkv, CudaArray) or qkv.ndim != 3:
        raise ValueError(f"{fn}: qkv must be a 3-D array (B, T, 3C), got "
                         f"{getattr(qkv, 'shape', type(qkv).__name__)}")
    B, T, C3 = qkv.shape
    if n_head < 1 or C3 % (3 * n_head):
        raise ValueError(f"{fn}: qkv {qkv.shape} cannot split into q | k | v of {n_head} "
                         f"heads each")
    C, D = C3 // 3, C3 // (3 * n_head)
    sb, st, sc = qkv.strides
    return tuple(view(qkv, (B, n_head, T, D), (sb, D * sc, st, sc), qkv.offset + part * C * sc)
                 for part in range(3))


def _swap12(strides):
    """(B, T, H, D) strides as (B, H, T, D)'s."""
    return (strides[0], strides[2], strides[1], strides[3])


def _empty_heads_like(a):
    """A new (B, H, rows, D) array whose B, H, rows axes nest in a's stride order (D last),
    as the CPU backend: the gradient of a (B, T, H, D) buffer's view is one such buffer."""
    order = sorted(range(3), key=lambda i: -abs(a.strides[i])) + [3]
    buf = empty(tuple(a.shape[i] for i in order), a.dtype)
    back = np.argsort(order)
    return view(buf, tuple(buf.shape[i] for i in back), tuple(buf.strides[i] for i in back))


__all__ = ["kernels", "sdpa_fwd", "sdpa_bwd", "qkv_attention_fwd", "qkv_attention_bwd",
           "tiles", "HEAD_DIMS"]
