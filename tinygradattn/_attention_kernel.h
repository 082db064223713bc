/* Fused scaled-dot-product attention for tinygradattn._attention: one C body per (dtype, ISA).
 *
 *   s[i, j] = scale * q[i, :] . k[j, :] + mask[i, j]      (-inf where causal and j > i)
 *   p[i, j] = exp(s[i, j] - lse[i]),  lse[i] = log sum_j exp(s[i, j])
 *   out[i, :] = sum_j p[i, j] v[j, :]
 *
 * Forward (FlashAttention-2): one call per (batch*head, query block of BQ rows); key tiles of
 * BK keys stream past with an online softmax (running max m and sum l per row), so only the
 * BQ x BK tile of scores ever exists. Causal: key tiles past the block's last row are never
 * visited, and a tile crossing the diagonal runs in pieces of SB query rows, each against the
 * keys up to its own last row only (jn): the masked part of that tile is never computed
 * except inside each piece's own SB x SB diagonal block, masked element by element. With
 * SB = 16, a 64 x 64 diagonal tile computes 16 * (16 + 32 + 48 + 64) = 62.5% of its scores,
 * exponentials and products (the lower triangle is 52%; SB = 32: 75%).
 *
 * Backward: one call per batch*head (it owns dq, dk, dv of that head). For each key tile, for
 * each query block that can see it (causal: the diagonal tile in the same pieces), p is
 * recomputed from q, k and lse, then
 *
 *   dp = dout @ v^T,   ds = scale * p * (dp - delta),   delta[i] = dout[i, :] . out[i, :]
 *   dv += p^T @ dout,  dk += ds^T @ q,  dq += ds @ k
 *
 * Every product goes through one small GEMM (tga_attn_gemm_*) whose B operand is read row by
 * row (contiguous), with A read through two strides (so A may be a transposed tile):
 *
 *   c[i*ldc + j] (+)= sum_p a[i*sai + p*sap] * b[p*ldb + j]
 *
 * The forward transposes its q block once and keeps the score tile transposed (keys x
 * queries), so the online-softmax statistics are elementwise over contiguous query columns;
 * the backward transposes each k and v tile once and reuses it for every query block.
 * The accumulator is a local MR x NR array with compile-time bounds (NR = 32 > 16: gcc's
 * complete peeling leaves the vectorisable j loop alone, see TOOLCHAIN.md); a remainder of 16
 * or more columns (a piece of SB = 16) gets an MR x 16 tile whose j loops carry "omp simd",
 * which keeps gcc from peeling them before vectorising (built without OpenMP: no such tile,
 * and SB = 32).
 *
 * Fully masked rows (every score -inf): out = 0, lse = -inf and zero gradients, which is what
 * torch 2.13 returns on the CPU (its math path uses a "safe" softmax; its flash path agrees).
 *
 * float32 exponentials: tga_attn_expf, a Cephes-style polynomial (about 1 ulp on [-87, 88]) in
 * plain C so that it vectorises; results below exp(-87) (~1.6e-38) flush to 0. float64 uses
 * the C library's exp, as every float64 kernel does.
 *
 * Dispatch: the body below is compiled once per (dtype, ISA) by including this file again with
 * TGA_ATTN_BODY defined; the AVX bodies carry __attribute__((target(...))), so the module keeps
 * the baseline ISA and loads on any x86-64 CPU. tga_attn_isa_for(level) gives the kernel set of
 * the level _support.pyx chose (_cpu_features.h), as _gemm_kernel.h does for GEMM.
 */
#ifndef TGA_ATTN_BODY
#ifndef TGA_ATTENTION_KERNEL_H
#define TGA_ATTENTION_KERNEL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "_cpu_features.h"

#define TGA_ATTN_X86 TGA_CPU_X86

#if defined(__GNUC__) || defined(__clang__)
#define TGA_ATTN_RESTRICT __restrict__
#else
#define TGA_ATTN_RESTRICT
#endif

#define TGA_ATTN_BQ 64   /* query rows per block */
#define TGA_ATTN_BK 64   /* keys per tile */

/* "omp simd" on a loop of 16 trips (the GEMM's half-width tile) keeps gcc from peeling it
 * completely before vectorising it (TOOLCHAIN.md). Without OpenMP that tile would run scalar,
 * so it is left out, and a causal piece (SB query rows of a
 * tile crossing the diagonal) is 32 rows, which full-width tiles cover, rather than 16. */
#if defined(_OPENMP) && (defined(__GNUC__) || defined(__clang__))
#define TGA_ATTN_SIMD _Pragma("omp simd")
#define TGA_ATTN_HALF_TILE 1
#define TGA_ATTN_SB 16
#define TGA_ATTN_PAD 16  /* columns of the narrowest vector tile (padded scratch GEMMs) */
#else
#define TGA_ATTN_HALF_TILE 0
#define TGA_ATTN_SB 32
#define TGA_ATTN_PAD 32
#endif
#if TGA_ATTN_BQ % TGA_ATTN_PAD != 0 || TGA_ATTN_SB % TGA_ATTN_PAD != 0
#error "padded scratch GEMMs assume PAD | SB and PAD | BQ = BK (columns i0 + round_up(n) <= BQ)"
#endif
#if TGA_ATTN_BQ != TGA_ATTN_BK || TGA_ATTN_BQ % TGA_ATTN_SB != 0
#error "the causal loops assume BQ == BK (a block's diagonal tile is its first) and SB | BQ"
#endif

/* Everything a kernel call needs; pointers are to element [0, 0, 0, 0] of the (B, H, rows, D)
 * views q (T, D), k (S, D), v (S, Dv), out/dout (T, Dv), dq (T, D), dk (S, D), dv (S, Dv),
 * each with its own element strides {batch, head, row} (any sign, 0 for a broadcast input)
 * and unit stride along the last dim: row i of head (b, h) of q is at
 * q + b*qs[0] + h*qs[1] + i*qs[2]. So the heads of a packed (B, T, 3, H, D) projection are
 * read, and their gradients written, in place. lse (B, H, T) is C-contiguous. The mask (or
 * NULL) is addressed mask[b*ms0 + h*ms1 + i*ms2 + j*ms3] (0 for a broadcast dim); bh = b*H + h.
 * out and out_w share the strides os (backward reads what the forward wrote). */
typedef struct {
    const void *q, *k, *v, *out, *dout, *lse, *mask;
    void *out_w, *lse_w, *dq, *dk, *dv;
    Py_ssize_t H, T, S, D, Dv;
    Py_ssize_t ms0, ms1, ms2, ms3;
    Py_ssize_t qs[3], ks[3], vs[3], os[3], dos[3], dqs[3], dks[3], dvs[3];
    int causal;
    double scale;
} tga_attn_args;

/* Element offset of head bh = b*H + h in a view with strides s = {batch, head, row}. */
static inline Py_ssize_t tga_attn_head(const Py_ssize_t *s, Py_ssize_t bh, Py_ssize_t H) {
    return (bh / H) * s[0] + (bh % H) * s[1];
}

/* Scratch elements (of the kernel's dtype) one thread needs. */
static Py_ssize_t tga_attn_fwd_scratch(Py_ssize_t D, Py_ssize_t Dv) {
    return D * TGA_ATTN_BQ + TGA_ATTN_BK * TGA_ATTN_BQ + TGA_ATTN_BQ * Dv + 5 * TGA_ATTN_BQ
           + 64;
}
static Py_ssize_t tga_attn_bwd_scratch(Py_ssize_t T, Py_ssize_t D, Py_ssize_t Dv) {
    return (D + Dv) * TGA_ATTN_BK + 2 * TGA_ATTN_BQ * TGA_ATTN_BK + T + 64;
}

/* exp for float32, vectorisable: x = n ln2 + r, |r| <= ln2/2, exp(r) by a degree-6 polynomial
 * (Cephes expf coefficients), 2^n built in the exponent bits. NaN propagates; x < -87 -> 0. */
static inline float tga_attn_expf(float x) {
    float xc = x < -87.0f ? -87.0f : x;
    float t, n, r, p, scale;
    int32_t ti, si;
    xc = xc > 88.0f ? 88.0f : xc;
    t = xc * 1.44269504088896341f + 12582912.0f;     /* 1.5 * 2^23: round to nearest */
    n = t - 12582912.0f;
    memcpy(&ti, &t, sizeof ti);
    r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    si = (ti - 0x4B400000 + 127) << 23;               /* ti - bits(1.5*2^23) == n */
    memcpy(&scale, &si, sizeof scale);
    return x < -87.0f ? 0.0f : p * scale;
}

#define TGA_ATTN_CAT_(a, b) a##b
#define TGA_ATTN_CAT(a, b) TGA_ATTN_CAT_(a, b)
#define TGA_ATTN_FN(name) TGA_ATTN_CAT(name, TGA_ATTN_SUF)

typedef void (*tga_attn_fwd_t)(const tga_attn_args *A, Py_ssize_t bh, Py_ssize_t q0,
                               void *scratch);
typedef void (*tga_attn_bwd_t)(const tga_attn_args *A, Py_ssize_t bh, void *scratch);

/* ---- the bodies: (float, double) x (avx512, avx2, generic) ------------------------------- */
#define TGA_ATTN_BODY 1
#if TGA_ATTN_X86
#define TGA_ATTN_TARGET __attribute__((target("avx512f")))
#define TGA_ATTN_MR 8
#define TGA_ATTN_T float
#define TGA_ATTN_EXP tga_attn_expf
#define TGA_ATTN_SUF _f32_avx512
#include "_attention_kernel.h"
#define TGA_ATTN_T double
#define TGA_ATTN_EXP exp
#define TGA_ATTN_SUF _f64_avx512
#include "_attention_kernel.h"
#undef TGA_ATTN_TARGET
#undef TGA_ATTN_MR

#define TGA_ATTN_TARGET __attribute__((target("avx2,fma")))
#define TGA_ATTN_MR 3
#define TGA_ATTN_T float
#define TGA_ATTN_EXP tga_attn_expf
#define TGA_ATTN_SUF _f32_avx2
#include "_attention_kernel.h"
#define TGA_ATTN_T double
#define TGA_ATTN_EXP exp
#define TGA_ATTN_SUF _f64_avx2
#include "_attention_kernel.h"
#undef TGA_ATTN_TARGET
#undef TGA_ATTN_MR
#endif /* TGA_ATTN_X86 */

#define TGA_ATTN_TARGET
#define TGA_ATTN_MR 1
#define TGA_ATTN_T float
#define TGA_ATTN_EXP tga_attn_expf
#define TGA_ATTN_SUF _f32_generic
#include "_attention_kernel.h"
#define TGA_ATTN_T double
#define TGA_ATTN_EXP exp
#define TGA_ATTN_SUF _f64_generic
#include "_attention_kernel.h"
#undef TGA_ATTN_TARGET
#undef TGA_ATTN_MR
#undef TGA_ATTN_BODY

/* ---- dispatch ------------------------------------------------------------------------------ */
typedef struct {
    const char *name;
    tga_attn_fwd_t fwd_f32, fwd_f64;
    tga_attn_bwd_t bwd_f32, bwd_f64;
} tga_attn_isa_t;

static const tga_attn_isa_t tga_attn_isas[] = {
#if TGA_ATTN_X86
    {"avx512", tga_attn_fwd_f32_avx512, tga_attn_fwd_f64_avx512, tga_attn_bwd_f32_avx512,
     tga_attn_bwd_f64_avx512},
    {"avx2", tga_attn_fwd_f32_avx2, tga_attn_fwd_f64_avx2, tga_attn_bwd_f32_avx2,
     tga_attn_bwd_f64_avx2},
#endif
    {"generic", tga_attn_fwd_f32_generic, tga_attn_fwd_f64_generic, tga_attn_bwd_f32_generic,
     tga_attn_bwd_f64_generic},
};
#define TGA_ATTN_N_ISAS ((int)(sizeof(tga_attn_isas) / sizeof(tga_attn_isas[0])))

/* The kernel set of ISA level `level`: the table runs from the widest level down to generic,
 * as _gemm_kernel.h's does. */
static const tga_attn_isa_t *tga_attn_isa_for(int level) {
    return &tga_attn_isas[TGA_ATTN_N_ISAS - 1 - level];
}

#endif /* TGA_ATTENTION_KERNEL_H */

#else /* TGA_ATTN_BODY: one instantiation, for TGA_ATTN_T / _SUF / _TARGET / _MR / _EXP */

#define T_ TGA_ATTN_T
#define NR_ 32
#define NH_ 16

/* c[i*ldc + j] (+)= sum_p a[i*sai + p*sap] * b[p*ldb + j]   for i < m, j < n, p < kk.
 * padded: b and c are scratch tiles whose rows have room (and finite values) up to n rounded
 * up to a whole vector tile (TGA_ATTN_PAD columns); those extra columns are computed as well
 * (and ignored by the caller), so a short row (10 or 15 queries or keys) runs the vector
 * tiles, not the scalar leftover loop (3x slower at T = 15 than at 16). */
TGA_ATTN_TARGET static void TGA_ATTN_FN(tga_attn_gemm)(
    Py_ssize_t m, Py_ssize_t n, Py_ssize_t kk, const T_ *TGA_ATTN_RESTRICT a, Py_ssize_t sai,
    Py_ssize_t sap, const T_ *TGA_ATTN_RESTRICT b, Py_ssize_t ldb, T_ *TGA_ATTN_RESTRICT c,
    Py_ssize_t ldc, int accumulate, int padded) {
    Py_ssize_t i0, j0, p;
    int i, j;
    if (padded)
        n = (n + TGA_ATTN_PAD - 1) / TGA_ATTN_PAD * TGA_ATTN_PAD;
    for (j0 = 0; j0 + NR_ <= n; j0 += NR_) {
        for (i0 = 0; i0 + TGA_ATTN_MR <= m; i0 += TGA_ATTN_MR) {     /* full MR x NR tiles */
            T_ acc[TGA_ATTN_MR][NR_];
            for (i = 0; i < TGA_ATTN_MR; i++)
                for (j = 0; j < NR_; j++)
                    acc[i][j] = accumulate ? c[(i0 + i) * ldc + j0 + j] : (T_)0;
            for (p = 0; p < kk; p++) {
                const T_ *bp = b + p * ldb + j0;
                const T_ *ap = a + i0 * sai + p * sap;
                for (i = 0; i < TGA_ATTN_MR; i++) {
                    T_ ai = ap[i * sai];
                    for (j = 0; j < NR_; j++) acc[i][j] += ai * bp[j];
                }
            }
            for (i = 0; i < TGA_ATTN_MR; i++)
                for (j = 0; j < NR_; j++) c[(i0 + i) * ldc + j0 + j] = acc[i][j];
        }
        for (; i0 < m; i0++) {                                         /* leftover rows */
            T_ acc[NR_];
            for (j = 0; j < NR_; j++) acc[j] = accumulate ? c[i0 * ldc + j0 + j] : (T_)0;
            for (p = 0; p < kk; p++) {
                const T_ *bp = b + p * ldb + j0;
                T_ ai = a[i0 * sai + p * sap];
                for (j = 0; j < NR_; j++) acc[j] += ai * bp[j];
            }
            for (j = 0; j < NR_; j++) c[i0 * ldc + j0 + j] = acc[j];
        }
    }
#if TGA_ATTN_HALF_TILE
    if (n - j0 >= NH_) {                                               /* MR x NH tiles */
        for (i0 = 0; i0 + TGA_ATTN_MR <= m; i0 += TGA_ATTN_MR) {
            T_ acc[TGA_ATTN_MR][NH_];
            for (i = 0; i < TGA_ATTN_MR; i++)
                TGA_ATTN_SIMD for (j = 0; j < NH_; j++)
                    acc[i][j] = accumulate ? c[(i0 + i) * ldc + j0 + j] : (T_)0;
            for (p = 0; p < kk; p++) {
                const T_ *bp = b + p * ldb + j0;
                const T_ *ap = a + i0 * sai + p * sap;
                for (i = 0; i < TGA_ATTN_MR; i++) {
                    T_ ai = ap[i * sai];
                    TGA_ATTN_SIMD for (j = 0; j < NH_; j++) acc[i][j] += ai * bp[j];
                }
            }
            for (i = 0; i < TGA_ATTN_MR; i++)
                TGA_ATTN_SIMD for (j = 0; j < NH_; j++) c[(i0 + i) * ldc + j0 + j] = acc[i][j];
        }
        for (; i0 < m; i0++) {
            T_ acc[NH_];
            TGA_ATTN_SIMD for (j = 0; j < NH_; j++)
                acc[j] = accumulate ? c[i0 * ldc + j0 + j] : (T_)0;
            for (p = 0; p < kk; p++) {
                const T_ *bp = b + p * ldb + j0;
                T_ ai = a[i0 * sai + p * sap];
                TGA_ATTN_SIMD for (j = 0; j < NH_; j++) acc[j] += ai * bp[j];
            }
            TGA_ATTN_SIMD for (j = 0; j < NH_; j++) c[i0 * ldc + j0 + j] = acc[j];
        }
        j0 += NH_;
    }
#endif
    if (j0 < n) {                                                      /* leftover columns */
        Py_ssize_t jj, nj = n - j0;
        for (i0 = 0; i0 < m; i0++) {
            T_ *ci = c + i0 * ldc + j0;
            if (!accumulate)
                for (jj = 0; jj < nj; jj++) ci[jj] = 0;
            for (p = 0; p < kk; p++) {
                const T_ *bp = b + p * ldb + j0;
                T_ ai = a[i0 * sai + p * sap];
                for (jj = 0; jj < nj; jj++) ci[jj] += ai * bp[jj];
            }
        }
    }
}

/* dst[d*ld + j] = src[j*lds + d]: n rows of d_len (row stride lds) transposed into (d_len, ld). */
TGA_ATTN_TARGET static void TGA_ATTN_FN(tga_attn_transpose)(T_ *TGA_ATTN_RESTRICT dst,
                                                           const T_ *TGA_ATTN_RESTRICT src,
                                                           Py_ssize_t n, Py_ssize_t d_len,
                                                           Py_ssize_t lds, Py_ssize_t ld) {
    Py_ssize_t j, d;
    for (j = 0; j < n; j++)
        for (d = 0; d < d_len; d++) dst[d * ld + j] = src[j * lds + d];
}

/* rows[i*ld + d] = 0 for i < n, d < d_len: zero n strided rows (one memset when packed). */
static inline void TGA_ATTN_FN(tga_attn_zero_rows)(T_ *rows, Py_ssize_t n, Py_ssize_t d_len,
                                                   Py_ssize_t ld) {
    Py_ssize_t i;
    if (ld == d_len || n <= 1) {
        memset(rows, 0, sizeof(T_) * n * d_len);
        return;
    }
    for (i = 0; i < n; i++) memset(rows + i * ld, 0, sizeof(T_) * d_len);
}

/* s[j] = scale * s[j] + mask[i, k0 + j] for one row; -inf past the causal diagonal (j > jmax). */
TGA_ATTN_TARGET static inline void TGA_ATTN_FN(tga_attn_scores_row)(
    T_ *TGA_ATTN_RESTRICT s, Py_ssize_t n, T_ scale, const T_ *TGA_ATTN_RESTRICT mrow,
    Py_ssize_t ms3, Py_ssize_t jmax) {
    Py_ssize_t j;
    if (mrow == NULL) {
        for (j = 0; j < n; j++) s[j] *= scale;
    } else if (ms3 == 1) {
        for (j = 0; j < n; j++) s[j] = s[j] * scale + mrow[j];
    } else {
        for (j = 0; j < n; j++) s[j] = s[j] * scale + mrow[j * ms3];
    }
    for (j = jmax + 1 < 0 ? 0 : jmax + 1; j < n; j++) s[j] = -INFINITY;
}

/* Forward, R rows st[r*BQ + i] (keys j + r) of the transposed score tile, columns [i0, i1):
 * s = scale * s + mask (mr[r*ms3 + i*ms2], or none), -inf where the query cannot see the key
 * (i < i_vis + r*causal), and m[i] = max(m[i], s). R rows a pass, so m is loaded and stored
 * once per R rows rather than once per row (a chain through memory). */
TGA_ATTN_TARGET static inline void TGA_ATTN_FN(tga_attn_fwd_scores)(
    T_ *TGA_ATTN_RESTRICT st, const int R, Py_ssize_t i0, Py_ssize_t i1, T_ scale,
    const T_ *TGA_ATTN_RESTRICT mr, Py_ssize_t ms2, Py_ssize_t ms3, Py_ssize_t i_vis,
    int causal, T_ *TGA_ATTN_RESTRICT m) {
    Py_ssize_t i;
    int r;
    if (mr == NULL) {
        for (i = i0; i < i1; i++) {
            T_ mx = m[i];
            for (r = 0; r < R; r++) {
                T_ x = i < i_vis + r * causal ? (T_)-INFINITY : st[r * TGA_ATTN_BQ + i] * scale;
                st[r * TGA_ATTN_BQ + i] = x;
                mx = x > mx ? x : mx;
            }
            m[i] = mx;
        }
    } else {
        for (i = i0; i < i1; i++) {
            T_ mx = m[i];
            for (r = 0; r < R; r++) {
                T_ x = st[r * TGA_ATTN_BQ + i] * scale + mr[r * ms3 + i * ms2];
                x = i < i_vis + r * causal ? (T_)-INFINITY : x;
                st[r * TGA_ATTN_BQ + i] = x;
                mx = x > mx ? x : mx;
            }
            m[i] = mx;
        }
    }
}

/* Forward, R rows of the score tile, columns [i0, i1): p = exp(s - shift[i]) in place and
 * l[i] += p, row after row (the same order of additions whatever R). */
TGA_ATTN_TARGET static inline void TGA_ATTN_FN(tga_attn_fwd_exp)(
    T_ *TGA_ATTN_RESTRICT st, const int R, Py_ssize_t i0, Py_ssize_t i1,
    const T_ *TGA_ATTN_RESTRICT shift, T_ *TGA_ATTN_RESTRICT l) {
    Py_ssize_t i;
    int r;
    for (i = i0; i < i1; i++) {
        T_ total = l[i];
        for (r = 0; r < R; r++) {
            T_ e = TGA_ATTN_EXP(st[r * TGA_ATTN_BQ + i] - shift[i]);
            st[r * TGA_ATTN_BQ + i] = e;
            total += e;
        }
        l[i] = total;
    }
}

/* Forward for query rows [q0, q0 + BQ) of head bh: out, lse.
 * Scores are kept transposed, st[j][i] = k[j] . q[i] (q block transposed once into qt), so the
 * per-row statistics (max, exp, sum) run along i: contiguous, vectorised, no per-tile
 * transpose of k. */
TGA_ATTN_TARGET static void TGA_ATTN_FN(tga_attn_fwd)(const tga_attn_args *A, Py_ssize_t bh,
                                                     Py_ssize_t q0, void *scratch) {
    const Py_ssize_t T = A->T, S = A->S, D = A->D, Dv = A->Dv, BQ = TGA_ATTN_BQ;
    const Py_ssize_t bq = T - q0 < BQ ? T - q0 : BQ;
    const Py_ssize_t ldq = A->qs[2], ldk = A->ks[2], ldv = A->vs[2], ldo = A->os[2];
    const T_ *q = (const T_ *)A->q + tga_attn_head(A->qs, bh, A->H) + q0 * ldq;   /* (bq, D) */
    const T_ *k = (const T_ *)A->k + tga_attn_head(A->ks, bh, A->H);              /* (S, D) */
    const T_ *v = (const T_ *)A->v + tga_attn_head(A->vs, bh, A->H);              /* (S, Dv) */
    const T_ *mask = NULL;
    T_ *out = (T_ *)A->out_w + tga_attn_head(A->os, bh, A->H) + q0 * ldo;         /* (bq, Dv) */
    T_ *lse = (T_ *)A->lse_w + bh * T + q0;                            /* (bq,) */
    T_ *qt = (T_ *)scratch;                                            /* (D, BQ) */
    T_ *st = qt + D * BQ;                                              /* (BK, BQ) */
    T_ *acc = st + TGA_ATTN_BK * BQ;                                   /* (BQ, Dv) */
    T_ *m = acc + BQ * Dv;                                             /* (BQ,) running max */
    T_ *l = m + BQ;                                                    /* (BQ,) running sum */
    T_ *m_new = l + BQ;                                                /* (BQ,) this tile's */
    T_ *shift = m_new + BQ;                                            /* (BQ,) m_new or 0 */
    T_ *alpha = shift + BQ;                                            /* (BQ,) rescale acc */
    const T_ scale = (T_)A->scale;
    Py_ssize_t k_end = S, k0, i0, i, j, nr;
    if (A->mask != NULL)
        mask = (const T_ *)A->mask + (bh / A->H) * A->ms0 + (bh % A->H) * A->ms1
               + q0 * A->ms2;
    if (A->causal && q0 + bq < S) k_end = q0 + bq;                     /* keys j <= i only */
    for (i = 0; i < bq; i++) {
        m[i] = -INFINITY;
        l[i] = 0;
    }
    memset(acc, 0, sizeof(T_) * bq * Dv);
    TGA_ATTN_FN(tga_attn_transpose)(qt, q, bq, D, ldq, BQ);
    for (k0 = 0; k0 < k_end; k0 += TGA_ATTN_BK) {
        const Py_ssize_t bk = k_end - k0 < TGA_ATTN_BK ? k_end - k0 : TGA_ATTN_BK;
        /* causal tile crossing the diagonal: query columns in pieces of SB, each against the
         * keys up to its own last row only (jn >= i1 >= 1, as k0 <= q0); any other tile:
         * one piece, all of it */
        const Py_ssize_t step = A->causal && k0 + bk - 1 > q0 ? TGA_ATTN_SB : bq;
        for (i0 = 0; i0 < bq; i0 += step) {
            const Py_ssize_t i1 = bq - i0 < step ? bq : i0 + step;
            const Py_ssize_t jn = A->causal && q0 + i1 - k0 < bk ? q0 + i1 - k0 : bk;
            TGA_ATTN_FN(tga_attn_gemm)(jn, i1 - i0, D, k + k0 * ldk, ldk, 1, qt + i0, BQ,
                                       st + i0, BQ, 0, 1);     /* qt, st: scratch, padded */
            for (i = i0; i < i1; i++) m_new[i] = m[i];
            for (j = 0; j < jn; j += nr) {             /* s = scale * q k^T + mask; max */
                const T_ *mr = mask ? mask + (k0 + j) * A->ms3 : NULL;
                const Py_ssize_t i_vis = A->causal ? k0 + j - q0 : 0;  /* rows i < i_vis: -inf */
                nr = jn - j >= 4 ? 4 : 1;
                if (nr == 4)
                    TGA_ATTN_FN(tga_attn_fwd_scores)(st + j * BQ, 4, i0, i1, scale, mr, A->ms2,
                                                     A->ms3, i_vis, A->causal, m_new);
                else
                    TGA_ATTN_FN(tga_attn_fwd_scores)(st + j * BQ, 1, i0, i1, scale, mr, A->ms2,
                                                     A->ms3, i_vis, A->causal, m_new);
            }
            for (i = i0; i < i1; i++) {                /* -inf max: nothing visible yet */
                shift[i] = m_new[i] == -INFINITY ? (T_)0 : m_new[i];
                /* old max -inf: every p so far was exp(-inf) = 0, so l and acc hold 0 (or
                 * nan from 0 * inf in v), which a factor 1 leaves as exp(-inf) = 0 would */
                alpha[i] = m[i] == -INFINITY ? (T_)1 : TGA_ATTN_EXP(m[i] - shift[i]);
                l[i] *= alpha[i];
                m[i] = m_new[i];
            }
            for (j = 0; j < jn; j += nr) {             /* p = exp(s - max); row sums */
                nr = jn - j >= 4 ? 4 : 1;
                if (nr == 4)
                    TGA_ATTN_FN(tga_attn_fwd_exp)(st + j * BQ, 4, i0, i1, shift, l);
                else
                    TGA_ATTN_FN(tga_attn_fwd_exp)(st + j * BQ, 1, i0, i1, shift, l);
            }
            for (i = i0; i < i1; i++) {
                if (alpha[i] != (T_)1) {
                    T_ *ai = acc + i * Dv;
                    for (j = 0; j < Dv; j++) ai[j] *= alpha[i];
                }
            }
            TGA_ATTN_FN(tga_attn_gemm)(i1 - i0, Dv, jn, st + i0, 1, BQ, v + k0 * ldv, ldv,
                                       acc + i0 * Dv, Dv, 1, 0);
        }
    }
    for (i = 0; i < bq; i++) {
        T_ *oi = out + i * ldo;
        const T_ *ai = acc + i * Dv;
        if (l[i] == 0) {                               /* fully masked row: 0, as torch */
            for (j = 0; j < Dv; j++) oi[j] = 0;
            lse[i] = -INFINITY;
        } else {
            T_ inv = (T_)1 / l[i];
            for (j = 0; j < Dv; j++) oi[j] = ai[j] * inv;
            lse[i] = (T_)(m[i] + log((double)l[i]));
        }
    }
}

/* sum_j a[j] * b[j] in double: 8 partial sums (j % 8: one vector, no chain of dependent
 * adds), added in a fixed order whatever the vector width. */
TGA_ATTN_TARGET static inline T_ TGA_ATTN_FN(tga_attn_dot)(const T_ *TGA_ATTN_RESTRICT a,
                                                           const T_ *TGA_ATTN_RESTRICT b,
                                                           Py_ssize_t n) {
    double part[8] = {0, 0, 0, 0, 0, 0, 0, 0}, total;
    Py_ssize_t j;
    int r;
    for (j = 0; j + 8 <= n; j += 8)
        for (r = 0; r < 8; r++) part[r] += (double)a[j + r] * b[j + r];
    for (r = 0; j < n; j++, r++) part[r] += (double)a[j] * b[j];
    total = (part[0] + part[1]) + (part[2] + part[3]);
    total += (part[4] + part[5]) + (part[6] + part[7]);
    return (T_)total;
}

/* Backward for head bh: dq, dk, dv, accumulated tile by tile in place (through their
 * strides): each tile's first product is written, not added, so nothing is zeroed first. The
 * first key tile meets every query block, so every dq row is written there. */
TGA_ATTN_TARGET static void TGA_ATTN_FN(tga_attn_bwd)(const tga_attn_args *A, Py_ssize_t bh,
                                                     void *scratch) {
    const Py_ssize_t T = A->T, S = A->S, D = A->D, Dv = A->Dv, BK = TGA_ATTN_BK;
    const Py_ssize_t H = A->H, ldq = A->qs[2], ldk = A->ks[2], ldv = A->vs[2];
    const Py_ssize_t ldo = A->os[2], lddo = A->dos[2];
    const Py_ssize_t lddq = A->dqs[2], lddk = A->dks[2], lddv = A->dvs[2];
    const T_ *q = (const T_ *)A->q + tga_attn_head(A->qs, bh, H);              /* (T, D) */
    const T_ *k = (const T_ *)A->k + tga_attn_head(A->ks, bh, H);              /* (S, D) */
    const T_ *v = (const T_ *)A->v + tga_attn_head(A->vs, bh, H);              /* (S, Dv) */
    const T_ *out = (const T_ *)A->out + tga_attn_head(A->os, bh, H);          /* (T, Dv) */
    const T_ *dout = (const T_ *)A->dout + tga_attn_head(A->dos, bh, H);       /* (T, Dv) */
    const T_ *lse = (const T_ *)A->lse + bh * T;                               /* (T,) */
    const T_ *mask = NULL;
    T_ *dq = (T_ *)A->dq + tga_attn_head(A->dqs, bh, H);                       /* (T, D) */
    T_ *dk = (T_ *)A->dk + tga_attn_head(A->dks, bh, H);                       /* (S, D) */
    T_ *dv = (T_ *)A->dv + tga_attn_head(A->dvs, bh, H);                       /* (S, Dv) */
    T_ *kt = (T_ *)scratch;                                            /* (D, BK) */
    T_ *vt = kt + D * BK;                                              /* (Dv, BK) */
    T_ *p = vt + Dv * BK;                                              /* (BQ, BK) */
    T_ *ds = p + TGA_ATTN_BQ * BK;                                     /* (BQ, BK) */
    T_ *delta = ds + TGA_ATTN_BQ * BK;                                 /* (T,) */
    const T_ scale = (T_)A->scale;
    Py_ssize_t k0, q0, q_first, i, j;
    if (A->mask != NULL)
        mask = (const T_ *)A->mask + (bh / A->H) * A->ms0 + (bh % A->H) * A->ms1;
    for (i = 0; i < T; i++)                            /* delta[i] = dout[i] . out[i] */
        delta[i] = TGA_ATTN_FN(tga_attn_dot)(dout + i * lddo, out + i * ldo, Dv);
    for (k0 = 0; k0 < S; k0 += BK) {
        const Py_ssize_t bk = S - k0 < BK ? S - k0 : BK;
        if (A->causal && k0 >= T) break;               /* no query row reaches these keys */
        TGA_ATTN_FN(tga_attn_transpose)(kt, k + k0 * ldk, bk, D, ldk, BK);
        TGA_ATTN_FN(tga_attn_transpose)(vt, v + k0 * ldv, bk, Dv, ldv, BK);
        q_first = A->causal ? (k0 / TGA_ATTN_BQ) * TGA_ATTN_BQ : 0;  /* rows i >= k0 only */
        for (q0 = q_first; q0 < T; q0 += TGA_ATTN_BQ) {
            const Py_ssize_t bq = T - q0 < TGA_ATTN_BQ ? T - q0 : TGA_ATTN_BQ;
            /* causal tile crossing the diagonal: query rows in pieces of SB, each against the
             * keys up to its own last row only (jn >= 1), last piece first: it sees the most keys,
             * so it writes dk, dv rows [k0, k0 + jn) and the smaller pieces add to them.
             * Any other tile: one piece, all of it. */
            const Py_ssize_t step = A->causal && k0 + bk - 1 > q0 ? TGA_ATTN_SB : bq;
            const int first = q0 == q_first;           /* dk, dv rows of the tile not written */
            Py_ssize_t i0, jn_first = 0;
            for (i0 = ((bq - 1) / step) * step; i0 >= 0; i0 -= step) {
                const Py_ssize_t i1 = bq - i0 < step ? bq : i0 + step, ni = i1 - i0;
                const Py_ssize_t jn = A->causal && q0 + i1 - k0 < bk ? q0 + i1 - k0 : bk;
                const int add_kv = !first || jn_first > 0;
                TGA_ATTN_FN(tga_attn_gemm)(ni, jn, D, q + (q0 + i0) * ldq, ldq, 1, kt, BK,
                                           p + i0 * BK, BK, 0, 1);     /* kt, p: scratch */
                TGA_ATTN_FN(tga_attn_gemm)(ni, jn, Dv, dout + (q0 + i0) * lddo, lddo, 1, vt, BK,
                                           ds + i0 * BK, BK, 0, 1);    /* vt, ds: scratch */
                for (i = i0; i < i1; i++) {            /* p = exp(s - lse); ds = p (dp - delta) */
                    T_ *pi = p + i * BK;
                    T_ *dsi = ds + i * BK;
                    const T_ lse_i = lse[q0 + i];
                    const T_ delta_i = delta[q0 + i];
                    Py_ssize_t jmax = A->causal ? q0 + i - k0 : jn;
                    if (lse_i == -INFINITY) {          /* fully masked row: no gradient */
                        for (j = 0; j < jn; j++) pi[j] = 0;
                    } else {
                        TGA_ATTN_FN(tga_attn_scores_row)(
                            pi, jn, scale,
                            mask ? mask + (q0 + i) * A->ms2 + k0 * A->ms3 : NULL, A->ms3, jmax);
                        for (j = 0; j < jn; j++) pi[j] = TGA_ATTN_EXP(pi[j] - lse_i);
                    }
                    for (j = 0; j < jn; j++) dsi[j] = scale * pi[j] * (dsi[j] - delta_i);
                }
                /* dv += p^T dout, dk += ds^T q, dq += ds k */
                TGA_ATTN_FN(tga_attn_gemm)(jn, Dv, ni, p + i0 * BK, 1, BK, dout + (q0 + i0) * lddo,
                                           lddo, dv + k0 * lddv, lddv, add_kv, 0);
                TGA_ATTN_FN(tga_attn_gemm)(jn, D, ni, ds + i0 * BK, 1, BK, q + (q0 + i0) * ldq,
                                           ldq, dk + k0 * lddk, lddk, add_kv, 0);
                TGA_ATTN_FN(tga_attn_gemm)(ni, D, jn, ds + i0 * BK, BK, 1, k + k0 * ldk, ldk,
                                           dq + (q0 + i0) * lddq, lddq, k0 > 0, 0);
                if (jn_first == 0) jn_first = jn;
            }
            if (first && jn_first < bk) {              /* causal, S > T: keys no row sees */
                TGA_ATTN_FN(tga_attn_zero_rows)(dk + (k0 + jn_first) * lddk, bk - jn_first, D,
                                                lddk);
                TGA_ATTN_FN(tga_attn_zero_rows)(dv + (k0 + jn_first) * lddv, bk - jn_first, Dv,
                                                lddv);
            }
        }
    }
    if (k0 < S) {                                      /* causal, S > T: keys no row sees */
        TGA_ATTN_FN(tga_attn_zero_rows)(dk + k0 * lddk, S - k0, D, lddk);
        TGA_ATTN_FN(tga_attn_zero_rows)(dv + k0 * lddv, S - k0, Dv, lddv);
    }
}

#undef T_
#undef NR_
#undef NH_
#undef TGA_ATTN_T
#undef TGA_ATTN_EXP
#undef TGA_ATTN_SUF
#endif /* TGA_ATTN_BODY */
