/* float32 row primitives for the softmax family (_core.pyx) and the fused row kernels
 * (_rows.pyx, _elementwise.pyx): vectorised exp, max, sums and the layer-norm row loops.
 *
 *   tga_expf(x)                 exp in float32, ~1 ulp (Cephes polynomial on [-ln2/2, ln2/2]),
 *                               branch-free so loops over it vectorise; exp(-inf) = 0,
 *                               exp(+inf) = inf, NaN stays NaN, subnormal results kept
 *   max(x, n)                   max_j x[j]                       (NaN entries are skipped)
 *   exp_sum(y, x, shift, n)     y[j] = expf(x[j] - shift) (y may be NULL); returns sum_j
 *                               (float lanes per 256-chunk, chunks added in double)
 *   sum(x, shift, n)            sum_j (x[j] - shift)             in double
 *   moments(x, n, &mean, &var)  a layer-norm row's statistics (rows over 128): float sums
 *                               around a rough mean, 4 x 16 lanes, shift taken back in double
 *   dot(a, b, n)                sum_j a[j] b[j]       float lanes per 256-chunk, chunks in double
 *   sqdev(x, mean, n)           sum_j (x[j] - mean)^2            in double
 *   axpb(y, s, o, n)            y[j] = y[j] s + o;   shift(y, x, a, b, n): y[j] = (x[j] - a) - b
 *   ... and the row bodies of softmax / log-softmax backward and layer norm fwd / bwd.
 *   softmax_rows, softmax_bwd_rows, exp_rows, ln_fwd_rows
 *                               whole rows (n_rows x n, row stride n): the row bodies above
 *                               a row at a time; on AVX-512, rows of up to 128 entries are
 *                               held in registers, two rows at a time (_rowmath_avx512.h)
 *
 * Sums run in 16 independent double lanes (a reduction in one accumulator does not
 * vectorise without -ffast-math, which we never use), combined pairwise at the end; exp_sum
 * sums each chunk of 256 in 16 float lanes (pairwise-reduced) and the chunks in double; the
 * layer-norm backward row is float32 throughout (as torch), its row sums an OpenMP simd
 * reduction. The max runs in 2 x 16 lanes (two independent vector chains).
 * Each function exists three times: the C bodies compiled for AVX2+FMA and for the baseline
 * ISA (__attribute__((target))), and an AVX-512 set in intrinsics (_rowmath_avx512.h: the
 * same polynomial, lanes and summation order); tga_rowmath_select(level) points tga_rm at the
 * set of the "rows" level _support.pyx chose (_cpu_features.h; tinygradattn.backend.isa and
 * $TGA_ISA_ROWS force one). FMA contraction, vector width (the lane order of the simd reductions) and, on
 * AVX-512, exp's scaling by 2^n in one vscalefps are the only differences between the sets.
 */
#ifndef TGA_ROWMATH_H
#define TGA_ROWMATH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <math.h>

#include "_cpu_features.h"

#define TGA_RM_X86 TGA_CPU_X86
#if TGA_RM_X86
#include <immintrin.h>
#endif

#define TGA_RM_LANES 16

/* -fno-trapping-math for this header only: it changes no result (rounding, NaN and inf are
 * IEEE as before; only FP exception flags may differ), but without it gcc will not turn the
 * clamps of tga_expf into vector selects and the exp loops stay scalar (4-10 ns an element). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("no-trapping-math")
#endif

static inline float tga_rm_bits_to_float(int32_t i) {
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
}

/* exp(x) in float32. Range reduction x = n ln2 + r, |r| <= ln2 / 2, exp(r) by the Cephes
 * polynomial, then two exact scalings by 2^(n/2) so that n down to -150 (subnormal results)
 * needs no special case. */
static inline float tga_expf(float x) {
    float xc = x < -104.0f ? -104.0f : x;          /* exp(-104) rounds to 0 */
    float v, n, r, p;
    int32_t ni, n1, vi;
    xc = xc > 89.0f ? 89.0f : xc;                  /* exp(89) overflows to inf */
    v = xc * 1.44269504088896341f + 12582912.0f;   /* 1.5 * 2^23: rounds to an integer */
    n = v - 12582912.0f;                           /* round(x / ln2) */
    r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    memcpy(&vi, &v, sizeof vi);
    ni = vi - 0x4B400000;                          /* the integer n, from v's mantissa */
    n1 = ni / 2;
    p = p * tga_rm_bits_to_float((n1 + 127) << 23) * tga_rm_bits_to_float((ni - n1 + 127) << 23);
    return x != x ? x : p;
}

/* a vectorised float sum into sum_g and sum_gx: OpenMP's simd reduction (lane-wise partial
 * sums, no -ffast-math); a plain serial loop when built without OpenMP */
#ifdef _OPENMP
#define TGA_RM_SIMD_SUM_G _Pragma("omp simd reduction(+:sum_g, sum_gx)")
#else
#define TGA_RM_SIMD_SUM_G
#endif

#define TGA_RM_REDUCE(acc, total)                                                            \
    do {                                                                                     \
        int k_, w_;                                                                          \
        for (w_ = TGA_RM_LANES / 2; w_ > 0; w_ /= 2)                                         \
            for (k_ = 0; k_ < w_; k_++) acc[k_] += acc[k_ + w_];                             \
        total = acc[0];                                                                      \
    } while (0)

/* moments(x, n, &mean, &var): the layer-norm statistics of a row over 128 entries.
 * sum's and sqdev's double lanes (two conversions and two double operations per 8 entries)
 * and their single chains of dependent adds made the forward pass compute-bound (16384 x
 * 384, 2 threads: 1054 us; with these moments 930, and 790 with plain float sums that
 * drop the shift below, which loses the mean's precision far from zero). Here the
 * sums run in float, in 4 accumulators of 16 lanes (entry j of each 64-block in accumulator
 * (j / 16) % 4, lane j % 16; leftover 16-blocks and the tail in accumulator 0), chunks of
 * 2048 entries (at most 32 terms a lane) added in double: a first pass for a rough mean mf
 * (a float), a second for C = sum (x - mf) and Q = sum (x - mf)^2, and then mean = mf + C/n
 * and var = Q/n - (C/n)^2 in double (shifted data: a mean far from zero costs no
 * precision; the float rounding is relative to the row's spread, ~1e-6 of it, as torch's
 * float Welford). A row whose float sums are not finite (NaN, inf, or |x| near FLT_MAX) is
 * redone by sum and sqdev. Accumulators are combined (0 + 1) + (2 + 3), lanes pairwise. */
#define TGA_RM_MOM_CHUNK 2048
#define TGA_RM_MOM_LOOP(x, j0, j1, BODY)                                                     \
    do {                                                                                     \
        Py_ssize_t j_ = (j0);                                                                \
        int u_, k_;                                                                          \
        float v_;                                                                            \
        for (; j_ + 4 * TGA_RM_LANES <= (j1); j_ += 4 * TGA_RM_LANES)                        \
            for (u_ = 0; u_ < 4; u_++)                                                       \
                for (k_ = 0; k_ < TGA_RM_LANES; k_++) {                                      \
                    v_ = (x)[j_ + u_ * TGA_RM_LANES + k_];                                   \
                    BODY;                                                                    \
                }                                                                            \
        u_ = 0;                                                                              \
        for (; j_ + TGA_RM_LANES <= (j1); j_ += TGA_RM_LANES)                                \
            for (k_ = 0; k_ < TGA_RM_LANES; k_++) {                                          \
                v_ = (x)[j_ + k_];                                                           \
                BODY;                                                                        \
            }                                                                                \
        for (k_ = 0; j_ < (j1); j_++, k_++) {                                                \
            v_ = (x)[j_];                                                                    \
            BODY;                                                                            \
        }                                                                                    \
    } while (0)
#define TGA_RM_MOM_ZERO(a)                                                                   \
    do {                                                                                     \
        int u0_, k0_;                                                                        \
        for (u0_ = 0; u0_ < 4; u0_++)                                                        \
            for (k0_ = 0; k0_ < TGA_RM_LANES; k0_++) a[u0_][k0_] = 0.0f;                     \
    } while (0)
/* (a0 + a1) + (a2 + a3), then the lanes pairwise, as a double */
#define TGA_RM_MOM_REDUCE(a, total)                                                          \
    do {                                                                                     \
        float f_[TGA_RM_LANES];                                                              \
        int k1_, w1_;                                                                        \
        for (k1_ = 0; k1_ < TGA_RM_LANES; k1_++)                                             \
            f_[k1_] = (a[0][k1_] + a[1][k1_]) + (a[2][k1_] + a[3][k1_]);                     \
        for (w1_ = TGA_RM_LANES / 2; w1_ > 0; w1_ /= 2)                                      \
            for (k1_ = 0; k1_ < w1_; k1_++) f_[k1_] += f_[k1_ + w1_];                        \
        total = (double)f_[0];                                                               \
    } while (0)
/* mean and var from the first pass's total, the second pass's C and Q (doubles) */
#define TGA_RM_MOM_FINISH(c, q, mf, n, mean, var)                                            \
    do {                                                                                     \
        double c_ = (c) / (n), v_ = (q) / (n) - c_ * c_;                                     \
        *(mean) = (double)(mf) + c_;                                                         \
        *(var) = v_ > 0.0 ? v_ : 0.0;                                                        \
    } while (0)

/* The bodies, compiled once per ISA: the baseline set and AVX2 + FMA. The AVX-512 set is
 * written in intrinsics (_rowmath_avx512.h), where these loops vectorised poorly. */
#define TGA_RM_DEFINE(SFX, ATTR)                                                              \
    /* 2 x 16 lanes (two independent vector chains), reduced pairwise (vectorised) */      \
    ATTR static float tga_rm_max##SFX(const float *x, Py_ssize_t n) {                       \
        float m[2 * TGA_RM_LANES], best;                                                     \
        Py_ssize_t j = 0;                                                                    \
        int k, w;                                                                            \
        best = x[0];                                                                         \
        for (k = 0; k < 2 * TGA_RM_LANES; k++) m[k] = x[0];                                  \
        for (; j + 2 * TGA_RM_LANES <= n; j += 2 * TGA_RM_LANES)                             \
            for (k = 0; k < 2 * TGA_RM_LANES; k++) m[k] = x[j + k] > m[k] ? x[j + k] : m[k]; \
        for (; j < n; j++) best = x[j] > best ? x[j] : best;                                 \
        for (w = TGA_RM_LANES; w > 0; w /= 2)                                                \
            for (k = 0; k < w; k++) m[k] = m[k + w] > m[k] ? m[k + w] : m[k];                \
        return m[0] > best ? m[0] : best;                                                    \
    }                                                                                        \
    /* exp in chunks of 256: exp and a 16-lane float sum in one loop (each lane adds at    \
     * most 16 terms), the lanes reduced pairwise in float, the chunk sums added in double */\
    ATTR static double tga_rm_exp_sum##SFX(float *y, const float *x, float shift,           \
                                           Py_ssize_t n) {                                   \
        double total = 0.0;                                                                  \
        float buf[256], *dst, f[TGA_RM_LANES], e;                                            \
        Py_ssize_t j0, j, len;                                                               \
        int k, w;                                                                            \
        for (j0 = 0; j0 < n; j0 += 256) {                                                    \
            len = n - j0 < 256 ? n - j0 : 256;                                               \
            dst = y != NULL ? y + j0 : buf;                                                  \
            for (k = 0; k < TGA_RM_LANES; k++) f[k] = 0.0f;                                  \
            for (j = 0; j + TGA_RM_LANES <= len; j += TGA_RM_LANES)                          \
                for (k = 0; k < TGA_RM_LANES; k++) {                                         \
                    e = tga_expf(x[j0 + j + k] - shift);                                     \
                    dst[j + k] = e;                                                          \
                    f[k] += e;                                                               \
                }                                                                            \
            for (k = 0; j < len; j++, k++) {                                                 \
                e = tga_expf(x[j0 + j] - shift);                                             \
                dst[j] = e;                                                                  \
                f[k] += e;                                                                   \
            }                                                                                \
            for (w = TGA_RM_LANES / 2; w > 0; w /= 2)                                        \
                for (k = 0; k < w; k++) f[k] += f[k + w];                                    \
            total += (double)f[0];                                                           \
        }                                                                                    \
        return total;                                                                        \
    }                                                                                        \
    ATTR static double tga_rm_sum##SFX(const float *x, float shift, Py_ssize_t n) {         \
        double acc[TGA_RM_LANES] = {0}, total;                                               \
        Py_ssize_t j = 0;                                                                    \
        int k;                                                                               \
        for (; j + TGA_RM_LANES <= n; j += TGA_RM_LANES)                                     \
            for (k = 0; k < TGA_RM_LANES; k++) acc[k] += (double)x[j + k] - shift;           \
        for (k = 0; j < n; j++, k++) acc[k] += (double)x[j] - shift;                         \
        TGA_RM_REDUCE(acc, total);                                                           \
        return total;                                                                        \
    }                                                                                        \
    /* chunks of 256 summed in 16 float lanes (pairwise-reduced), chunks added in double */ \
    ATTR static double tga_rm_dot##SFX(const float *a, const float *b, Py_ssize_t n) {      \
        double total = 0.0;                                                                  \
        float f[TGA_RM_LANES];                                                               \
        Py_ssize_t j0, j, len;                                                               \
        int k, w;                                                                            \
        for (j0 = 0; j0 < n; j0 += 256) {                                                    \
            len = n - j0 < 256 ? n - j0 : 256;                                               \
            for (k = 0; k < TGA_RM_LANES; k++) f[k] = 0.0f;                                  \
            for (j = 0; j + TGA_RM_LANES <= len; j += TGA_RM_LANES)                          \
                for (k = 0; k < TGA_RM_LANES; k++) f[k] += a[j0 + j + k] * b[j0 + j + k];    \
            for (k = 0; j < len; j++, k++) f[k] += a[j0 + j] * b[j0 + j];                    \
            for (w = TGA_RM_LANES / 2; w > 0; w /= 2)                                        \
                for (k = 0; k < w; k++) f[k] += f[k + w];                                    \
            total += (double)f[0];                                                           \
        }                                                                                    \
        return total;                                                                        \
    }                                                                                        \
    ATTR static double tga_rm_sqdev##SFX(const float *x, double mean, Py_ssize_t n) {       \
        double acc[TGA_RM_LANES] = {0}, total, d;                                            \
        Py_ssize_t j = 0;                                                                    \
        int k;                                                                               \
        for (; j + TGA_RM_LANES <= n; j += TGA_RM_LANES)                                     \
            for (k = 0; k < TGA_RM_LANES; k++) {                                             \
                d = (double)x[j + k] - mean;                                                 \
                acc[k] += d * d;                                                             \
            }                                                                                \
        for (k = 0; j < n; j++, k++) {                                                       \
            d = (double)x[j] - mean;                                                         \
            acc[k] += d * d;                                                                 \
        }                                                                                    \
        TGA_RM_REDUCE(acc, total);                                                           \
        return total;                                                                        \
    }                                                                                        \
    /* a row's mean and population variance, float sums (see moments above TGA_RM_DEFINE) */ \
    ATTR static void tga_rm_moments##SFX(const float *x, Py_ssize_t n, double *mean,        \
                                         double *var) {                                      \
        float a[4][TGA_RM_LANES], b[4][TGA_RM_LANES], mf, d;                                 \
        double s = 0.0, c = 0.0, q = 0.0, t;                                                 \
        Py_ssize_t j0, j1;                                                                   \
        for (j0 = 0; j0 < n; j0 += TGA_RM_MOM_CHUNK) {                                       \
            j1 = n - j0 < TGA_RM_MOM_CHUNK ? n : j0 + TGA_RM_MOM_CHUNK;                      \
            TGA_RM_MOM_ZERO(a);                                                              \
            TGA_RM_MOM_LOOP(x, j0, j1, a[u_][k_] += v_);                                     \
            TGA_RM_MOM_REDUCE(a, t);                                                         \
            s += t;                                                                          \
        }                                                                                    \
        mf = (float)(s / n);                                                                 \
        if (isfinite(mf))                                                                    \
            for (j0 = 0; j0 < n; j0 += TGA_RM_MOM_CHUNK) {                                   \
                j1 = n - j0 < TGA_RM_MOM_CHUNK ? n : j0 + TGA_RM_MOM_CHUNK;                  \
                TGA_RM_MOM_ZERO(a);                                                          \
                TGA_RM_MOM_ZERO(b);                                                          \
                TGA_RM_MOM_LOOP(x, j0, j1, {                                                 \
                    d = v_ - mf;                                                             \
                    a[u_][k_] += d;                                                          \
                    b[u_][k_] += d * d;                                                      \
                });                                                                          \
                TGA_RM_MOM_REDUCE(a, t);                                                     \
                c += t;                                                                      \
                TGA_RM_MOM_REDUCE(b, t);                                                     \
                q += t;                                                                      \
            }                                                                                \
        if (!isfinite(mf) || !isfinite(c) || !isfinite(q)) {                                 \
            *mean = tga_rm_sum##SFX(x, 0.0f, n) / n;                                         \
            *var = tga_rm_sqdev##SFX(x, *mean, n) / n;                                       \
            return;                                                                          \
        }                                                                                    \
        TGA_RM_MOM_FINISH(c, q, mf, n, mean, var);                                           \
    }                                                                                        \
    /* y[j] = y[j] * scale + offset */                                                       \
    ATTR static void tga_rm_axpb##SFX(float *y, float scale, float offset, Py_ssize_t n) {  \
        Py_ssize_t j;                                                                        \
        for (j = 0; j < n; j++) y[j] = y[j] * scale + offset;                               \
    }                                                                                        \
    /* y[j] = (x[j] - a) - b: a the row max first, so huge rows keep b (log-softmax) */     \
    ATTR static void tga_rm_shift##SFX(float *y, const float *x, float a, float b,          \
                                       Py_ssize_t n) {                                       \
        Py_ssize_t j;                                                                        \
        for (j = 0; j < n; j++) y[j] = (x[j] - a) - b;                                       \
    }                                                                                        \
    /* softmax backward: dx = y (dout - dot) */                                              \
    ATTR static void tga_rm_softmax_bwd##SFX(float *dx, const float *y, const float *dout,  \
                                             float dot, Py_ssize_t n) {                      \
        Py_ssize_t j;                                                                        \
        for (j = 0; j < n; j++) dx[j] = y[j] * (dout[j] - dot);                              \
    }                                                                                        \
    /* log-softmax backward: dx = dout - exp(y) total */                                     \
    ATTR static void tga_rm_log_softmax_bwd##SFX(float *dx, const float *y, const float *dout,\
                                                 float total, Py_ssize_t n) {                \
        Py_ssize_t j;                                                                        \
        for (j = 0; j < n; j++) dx[j] = dout[j] - tga_expf(y[j]) * total;                    \
    }                                                                                        \
    /* layer norm forward: y = (x - mean) rstd w + b */                                      \
    ATTR static void tga_rm_ln_fwd##SFX(float *y, const float *x, const float *w,           \
                                        const float *b, float mean, float rstd,             \
                                        Py_ssize_t n) {                                      \
        Py_ssize_t j;                                                                        \
        for (j = 0; j < n; j++) y[j] = (x[j] - mean) * rstd * w[j] + b[j];                   \
    }                                                                                        \
    /* layer norm backward, one row, in float32 (as torch): dw_acc += dout xhat,          \
     * db_acc += dout (float partial rows, if dw_acc), then (if dx)                         \
     * dx = rstd (g - mean(g)) - xhat (rstd mean(g xhat)), g = dout w.                      \
     * g goes through dx (stored, then reloaded): the g summed and the g in dx are one       \
     * rounded value, so g - mean(g) cancels exactly where it should (C = 1), whatever       \
     * FMA contraction does. Row sums in float vector lanes (omp simd reduction). */        \
    ATTR static void tga_rm_ln_bwd##SFX(float *dx, float *dw_acc, float *db_acc,            \
                                        const float *dout, const float *x, const float *w,  \
                                        float mean, float rstd, Py_ssize_t n) {              \
        float sum_g, sum_gx, xh, c1, c2;                                                     \
        Py_ssize_t j = 0;                                                                    \
        if (dw_acc != NULL)                                                                  \
            for (j = 0; j < n; j++) {                                                        \
                dw_acc[j] += dout[j] * ((x[j] - mean) * rstd);                               \
                db_acc[j] += dout[j];                                                        \
            }                                                                                \
        if (dx == NULL) return;                                                              \
        for (j = 0; j < n; j++) dx[j] = dout[j] * w[j];                                      \
        sum_g = sum_gx = 0.0f;                                                               \
        TGA_RM_SIMD_SUM_G                                                                    \
        for (j = 0; j < n; j++) {                                                            \
            float g_ = dx[j];                                                                \
            sum_g += g_;                                                                     \
            sum_gx += g_ * ((x[j] - mean) * rstd);                                           \
        }                                                                                    \
        c1 = sum_g / (float)n;                                                               \
        c2 = rstd * (sum_gx / (float)n);                                                     \
        for (j = 0; j < n; j++) {                                                            \
            xh = (x[j] - mean) * rstd;                                                       \
            dx[j] = rstd * (dx[j] - c1) - xh * c2;                                           \
        }                                                                                    \
    }

/* Whole rows (n_rows rows of n entries, row stride n) from the primitives of set PRIM, named
 * tga_rm_*_rows##NAME: the sets' row functions for generic and AVX2; on AVX-512 the path for
 * rows over 128 entries (_rowmath_avx512.h holds shorter rows in registers). */
#define TGA_RM_DEFINE_ROWS(NAME, PRIM, ATTR)                                                 \
    /* softmax, forward and backward */                                                      \
    ATTR static void tga_rm_softmax_rows##NAME(float *y, const float *x, Py_ssize_t n_rows, \
                                               Py_ssize_t n) {                              \
        Py_ssize_t i;                                                                        \
        float m;                                                                             \
        for (i = 0; i < n_rows; i++, x += n, y += n) {                                       \
            m = tga_rm_max##PRIM(x, n);                                                      \
            tga_rm_axpb##PRIM(y, (float)(1.0 / tga_rm_exp_sum##PRIM(y, x, m, n)), 0.0f, n); \
        }                                                                                    \
    }                                                                                        \
    ATTR static void tga_rm_softmax_bwd_rows##NAME(float *dx, const float *y,               \
                                                   const float *dout, Py_ssize_t n_rows,    \
                                                   Py_ssize_t n) {                          \
        Py_ssize_t i;                                                                        \
        for (i = 0; i < n_rows; i++, dx += n, y += n, dout += n)                             \
            tga_rm_softmax_bwd##PRIM(dx, y, dout, (float)tga_rm_dot##PRIM(dout, y, n), n);  \
    }                                                                                        \
    /* y = exp(x - row max) (y may be NULL), each row's max and sum (exp_sum's) */          \
    ATTR static void tga_rm_exp_rows##NAME(float *y, float *row_max, double *row_sum,       \
                                           const float *x, Py_ssize_t n_rows,               \
                                           Py_ssize_t n) {                                  \
        Py_ssize_t i;                                                                        \
        for (i = 0; i < n_rows; i++, x += n) {                                               \
            row_max[i] = tga_rm_max##PRIM(x, n);                                             \
            row_sum[i] = tga_rm_exp_sum##PRIM(y == NULL ? NULL : y + i * n, x, row_max[i], n);\
        }                                                                                    \
    }                                                                                        \
    /* layer norm forward: mean and variance in double up to 128 entries (two passes, as  \
     * AVX-512's rows in registers), by moments above; y in float */                       \
    ATTR static void tga_rm_ln_fwd_rows##NAME(float *y, float *mean_out, float *rstd_out,   \
                                              const float *x, const float *w,               \
                                              const float *b, double eps,                   \
                                              Py_ssize_t n_rows, Py_ssize_t n) {            \
        Py_ssize_t i;                                                                        \
        double mean, var, rstd;                                                              \
        for (i = 0; i < n_rows; i++, x += n, y += n) {                                       \
            if (n > 128) {                                                                   \
                tga_rm_moments##PRIM(x, n, &mean, &var);                                     \
            } else {                                                                         \
                mean = tga_rm_sum##PRIM(x, 0.0f, n) / n;                                     \
                var = tga_rm_sqdev##PRIM(x, mean, n) / n;                                    \
            }                                                                                \
            rstd = 1.0 / sqrt(var + eps);                                                    \
            mean_out[i] = (float)mean;                                                       \
            rstd_out[i] = (float)rstd;                                                       \
            tga_rm_ln_fwd##PRIM(y, x, w, b, (float)mean, (float)rstd, n);                    \
        }                                                                                    \
    }

TGA_RM_DEFINE(_generic, )
TGA_RM_DEFINE_ROWS(_generic, _generic, )
#if TGA_RM_X86
TGA_RM_DEFINE(_avx2, __attribute__((target("avx2,fma"))))
TGA_RM_DEFINE_ROWS(_avx2, _avx2, __attribute__((target("avx2,fma"))))
#endif

/* ---- GELU (float32): erf, tanh, the normal CDF and the two GELU forms, elementwise ----------
 *
 * Exact form, y = x Phi(x) (Phi the normal CDF, phi its density), one identity for every x:
 *   Phi(-a) = phi(a) M(a),  a = |x|,  M Mills' ratio, M = N(a) / D(a), D = a N(a) + S(a) on
 *   [0, 16], N and S of degree 4, positive coefficients (Horner is stable; 0.5 ulp fitted):
 *     x <= 0:  y = -a M phi           dy/dx = Phi(x) + x phi(x) = (M - a) phi
 *     x >  0:  y = x - a M phi        dy/dx = 1 - (M - a) phi
 *   (a M phi = x Phi(-x) <= x / 2: no cancellation for x > 0. M = c / (a + c S / N): N's
 *   rounding cancels for large a; M - a = (N - a D) / D, one rounding before the division,
 *   cancels only near dy/dx's root, a = 0.75.)
 *   phi(a) = exp(-a^2 / 2 - ln sqrt(2 pi)) = 2^-n p, with a^2 / 2 split exactly into h + d (FMA:
 *   h rounded, d = fma(a/2, a, -h); baseline: h from a's top 12 bits, exact, d the rest),
 *   n = round((h + chi) / ln2), r = (n ln2hi - chi) - h - (d + clo) + n ln2lo (chi, ln2hi short:
 *   n ln2hi - chi exact; ln sqrt(2 pi) = chi + clo), p = exp(r) by a degree-6 polynomial (0.05
 *   ulp). 2^-n is applied last, in one rounding (tga_rm_scale), so y and dy/dx keep their
 *   accuracy down into the subnormals (x < -13.2): the tail needs no case of its own. One exp,
 *   one division, no select between fits, the same steps for every lane.
 * Tanh form, y = 0.5 x (1 + tanh u) = x s,  u = sqrt(2/pi) (x + 0.044715 x^3),
 *   s = 1 / (1 + exp(-2u)),  dy/dx = s + x s (1 - s) 2u';  b = |2u|, w = exp(-b) = 2^-n e,
 *   D = 1 / (1 + w):
 *     x >= 0:  s = D,    1 - s = w D:   y = x D,            dy/dx = D (1 + x 2u' w D)
 *     x <  0:  s = w D,  1 - s = D:     y = (x e D) 2^-n,   dy/dx = (e D (1 + x 2u' D)) 2^-n
 *   (the sigmoid form: no cancellation in 1 + tanh u for x < 0; 2^-n again applied last).
 *   b is clamped at 120 (y, dy/dx are 0 or x, 1 in float beyond), x at +-16 where it multiplies.
 *
 *   tga_erff(z)            erf in float32 (tests): |z| < 0.921875: z + z P(z^2) (P fitted to
 *                          erf(z)/z - 1); else sign(z) (1 - 2 Phi(-|z| sqrt 2)) as above
 *   tga_tanhf(u)           tanh in float32 (tests): |u| < 0.625: u + u^3 Q(u^2); else
 *                          sign(u) (1 - 2 / (1 + exp(2|u|))) with tga_expf
 * Coefficients fitted in float64 (mpmath reference, Lawson-weighted least squares in relative
 * error on Chebyshev nodes, rounded to float32 one at a time, the rest refitted).
 * Max errors on a dense grid (tests/test_isa_variants.py, every ISA): erf 1.1 ulp (baseline
 * 1.3), tanh 1.1, GELU 3.5 (3.6), dy/dx 3.9 (4.2) ulp of its larger term, 3.9 (4.3) of itself off
 * its root; tanh form 2.5 (1 + 2|u|) ulp (u's rounding, amplified by exp).
 * Scalar C, branch-free (both signs computed, then selected) so the loops vectorise: the
 * baseline set. The AVX2 and AVX-512 sets run the same steps in intrinsics (below the loops:
 * the compiler's vectorised C spent a third more instructions), with FMA (x^2 split exactly by
 * fma, Horner steps fused) and Estrin's scheme inside exp's polynomial.
 * Limits: GELU(-inf) = -0, GELU(inf) = inf, dy/dx(-inf) = 0, dy/dx(inf) = 1, NaN stays NaN,
 * GELU(-0) = -0. */

#define TGA_RM_LOG2E 1.44269504f
#define TGA_RM_MAGIC 12582912.0f                   /* 1.5 * 2^23: v + MAGIC rounds v to an integer */
#define TGA_RM_LN2HI 0.693359375f                  /* 9 bits: n LN2HI exact for n < 2^15 */
#define TGA_RM_LN2LO -2.12194440e-4f               /* ln 2 - LN2HI */
#define TGA_RM_LNS2PI_HI 0.9189453125f             /* ln sqrt(2 pi): 10 bits ... */
#define TGA_RM_LNS2PI_LO -6.7792953e-06f           /* ... and the rest */

/* exp(r), |r| <= ln2 / 2: 1 + r + r^2 (c2 + ... + c6 r^4), 0.05 ulp */
static inline float tga_rm_exp_poly(float r) {
    float p = 0.0013818939f;
    p = p * r + 0.008368704f;
    p = p * r + 0.04166829f;
    p = p * r + 0.16666521f;
    p = p * r + 0.49999994f;
    p = p * r + 1.0f;
    return p * r + 1.0f;
}

/* exp(-(b + c + b_lo)) = 2^-n E for b >= 0, c a constant of 10 bits (0 <= c < 1), |b_lo| small:
 * returns E = exp(r), r = n ln2 - c - b - b_lo (n ln2hi - c exact, then b: one rounding, none
 * for c = 0), and *v = n + MAGIC (n = round((b + c) / ln2) in [0, 252] sits in v's low bits) */
static inline float tga_rm_exp_neg(float b, float c, float b_lo, float *v) {
    float n, r;
    *v = (b + c) * TGA_RM_LOG2E + TGA_RM_MAGIC;
    n = *v - TGA_RM_MAGIC;
    r = (n * TGA_RM_LN2HI - c) - b;
    r = r - b_lo;
    r = r + n * TGA_RM_LN2LO;
    return tga_rm_exp_poly(r);
}

/* q 2^-n, n = v - MAGIC in [0, 252], rounded once (subnormal results keep their accuracy):
 * two exact scalings by about 2^-(n/2), q 2^-(n/2) normal for the |q| > 2^-30 that reach
 * n > 60 here; 2^-k from the bits (127 - k) << 23 */
static inline float tga_rm_scale(float q, float v) {
    int32_t vi, n, n1;
    memcpy(&vi, &v, sizeof vi);
    n = vi - 0x4B400000;
    n1 = n >> 1;
    return (q * tga_rm_bits_to_float((127 - n1) << 23)) * tga_rm_bits_to_float((127 - n + n1) << 23);
}

/* a^2 / 2 = h + *d, a >= 0: exact with FMA; else h = xh^2 / 2 exact (xh: a's top 12 bits)
 * and d = (a - xh)(a + xh) / 2 rounded (|d| < 2^-11 a^2: its rounding is below 2^-34 a^2) */
static inline float tga_rm_half_square(float a, float *d, int fma) {
    float hx, h, xh;
    int32_t bits;
    if (fma) {
        hx = 0.5f * a;
        h = hx * a;
        *d = fmaf(hx, a, -h);
        return h;
    }
    memcpy(&bits, &a, sizeof bits);
    bits &= (int32_t)0xfffff000;
    memcpy(&xh, &bits, sizeof xh);
    h = 0.5f * (xh * xh);
    *d = 0.5f * ((a - xh) * (a + xh));
    return h;
}

/* min(|x|, lim), lim > 0, on the bits (NaN -> lim): an integer min, where a float ternary
 * against a constant lets gcc thread the later sign tests through it and duplicate the
 * whole body per range (2-3x slower loops) */
static inline float tga_rm_abs_min(float x, float lim) {
    int32_t xi, li;
    memcpy(&xi, &x, sizeof xi);
    memcpy(&li, &lim, sizeof li);
    xi &= 0x7fffffff;
    xi = xi < li ? xi : li;
    return tga_rm_bits_to_float(xi);
}

/* |a| with x's sign */
static inline float tga_rm_copysign(float a, float x) {
    int32_t ai, xi;
    memcpy(&ai, &a, sizeof ai);
    memcpy(&xi, &x, sizeof xi);
    return tga_rm_bits_to_float((ai & 0x7fffffff) | (xi & (int32_t)0x80000000));
}

/* Mills' ratio M(a) = Phi(-a) / phi(a) = N(a) / D(a), D = a N(a) + S(a), 0 <= a <= 16; returns
 * M and *k = M - a = (N - a D) / D. N, S scaled so that N(0), S(0) sit high in their binade
 * (S(0) = 1.5: smaller relative rounding near a = 0, where dy/dx ~ 1/2 sits high in its own) */
#define TGA_RM_MILLS_N0 1.8799712658f
#define TGA_RM_MILLS_N1 1.7628188133f
#define TGA_RM_MILLS_N2 0.7771578431f
#define TGA_RM_MILLS_N3 0.1833664775f
#define TGA_RM_MILLS_N4 0.0202393699f
#define TGA_RM_MILLS_S0 1.5f
#define TGA_RM_MILLS_S1 0.7233844995f
#define TGA_RM_MILLS_S2 0.1844105273f
#define TGA_RM_MILLS_S3 0.0201955251f
#define TGA_RM_MILLS_S4 7.171939842e-07f
static inline float tga_rm_mills(float a, float *k) {
    float n = TGA_RM_MILLS_N4, s = TGA_RM_MILLS_S4, d;
    n = n * a + TGA_RM_MILLS_N3;
    n = n * a + TGA_RM_MILLS_N2;
    n = n * a + TGA_RM_MILLS_N1;
    n = n * a + TGA_RM_MILLS_N0;
    s = s * a + TGA_RM_MILLS_S3;
    s = s * a + TGA_RM_MILLS_S2;
    s = s * a + TGA_RM_MILLS_S1;
    s = s * a + TGA_RM_MILLS_S0;
    d = a * n + s;
    *k = (n - a * d) / d;
    return n / d;
}

/* phi(a) = 2^-n *p (exp(-a^2 / 2 - ln sqrt(2 pi)), see tga_rm_exp_neg), 0 <= a <= 16 */
static inline float tga_rm_npdf(float a, float *v, int fma) {
    float d, h = tga_rm_half_square(a, &d, fma);
    return tga_rm_exp_neg(h, TGA_RM_LNS2PI_HI, d + TGA_RM_LNS2PI_LO, v);
}

static inline float tga_erff(float z, int fma) {
    float a = z < 0.0f ? -z : z, z2 = z * z, p, b, v, k, big;
    p = 8.418867e-05f;
    p = p * z2 - 0.00081506034f;
    p = p * z2 + 0.005201247f;
    p = p * z2 - 0.026859187f;
    p = p * z2 + 0.11283683f;
    p = p * z2 - 0.37612632f;
    p = p * z2 + 0.12837917f;
    b = tga_rm_abs_min(z, 8.0f) * 1.41421356f;    /* erf(8) = 1 in float; inf, NaN -> 8 */
    big = tga_rm_npdf(b, &v, fma);
    big = 1.0f - 2.0f * tga_rm_scale(big * tga_rm_mills(b, &k), v);   /* 1 - 2 Phi(-b) */
    big = z < 0.0f ? -big : big;
    return z != z ? z : (a < 0.921875f ? z + z * p : big);
}

static inline float tga_tanhf(float u) {
    float a = u < 0.0f ? -u : u, u2 = u * u, q, big;
    q = 0.002785748f;
    q = q * u2 - 0.008836968f;
    q = q * u2 + 0.02194277f;
    q = q * u2 - 0.05398458f;
    q = q * u2 + 0.13333435f;
    q = q * u2 - 0.33333334f;
    big = 1.0f - 2.0f / (1.0f + tga_expf(2.0f * a));
    big = u < 0.0f ? -big : big;
    big = a < 0.625f ? u + u * (u2 * q) : big;
    return u != u || u == 0.0f ? u : big;       /* tanh(-0) = -0 */
}

/* GELU and its derivative at x, exact (erf) form (the identities above) */
static inline float tga_rm_gelu_exact(float x, float *grad, int fma) {
    float a = tga_rm_abs_min(x, 16.0f), v, p, m, k, s, sg, g;  /* inf -> 16: the limits */
    p = tga_rm_npdf(a, &v, fma);                   /* phi(x) = 2^-n p */
    m = tga_rm_mills(a, &k);
    s = tga_rm_scale((tga_rm_copysign(a, x) * m) * p, v);     /* x Phi(-|x|) */
    sg = tga_rm_scale(k * p, v);                   /* Phi(-|x|) - |x| phi(x) */
    g = x <= 0.0f ? sg : 1.0f - sg;
    *grad = x != x ? x : g;
    return x <= 0.0f ? s : x - s;                  /* NaN: x - s */
}

/* GELU and its derivative at x, tanh form (the sigmoid form above) */
static inline float tga_rm_gelu_tanh(float x, float *grad) {
    float xc = tga_rm_copysign(tga_rm_abs_min(x, 16.0f), x), x2, b, v, e, w, dd, du, m, t, g;
    int32_t vi;
    x2 = xc * xc;
    b = tga_rm_abs_min(xc * (1.59576912f + 0.0713548162f * x2), 120.0f);   /* |2u| */
    e = tga_rm_exp_neg(b, 0.0f, 0.0f, &v);         /* exp(-b) = 2^-n e */
    memcpy(&vi, &v, sizeof vi);
    vi = vi < 0x4B400000 + 127 ? vi : 0x4B400000 + 127;
    w = e * tga_rm_bits_to_float(0x3F800000 - (vi << 23));   /* 2^-n (0 for n >= 127) */
    dd = 1.0f / (1.0f + w);
    du = 1.59576912f + 0.214064449f * x2;          /* 2u' */
    m = x < 0.0f ? dd : w * dd;
    t = dd * (1.0f + xc * du * m);
    g = x < 0.0f ? tga_rm_scale(e * t, v) : t;
    *grad = x != x ? x : g;
    return x < 0.0f ? tga_rm_scale((xc * e) * dd, v) : x * dd;   /* NaN: x dd */
}

/* The loops: y = gelu(x) (y may be x), and grad = gelu'(x) unless grad is NULL (the autograd
 * forward, so that the backward is one multiply); dx = dout gelu'(x) (dx may be dout) for the
 * baseline set (FMA: whether the ISA has it); y = erf(x) and y = tanh(x) (for the tests) for
 * every set.
 * AVX2 and AVX-512 have their own GELU loops below. */
#define TGA_RM_DEFINE_GELU(SFX, ATTR, FMA)                                                   \
    ATTR static void tga_rm_gelu_fwd##SFX(float *y, float *grad, const float *x,            \
                                          int tanh_form, Py_ssize_t n) {                     \
        Py_ssize_t j;                                                                        \
        float g_, y_;                                                                        \
        for (j = 0; j < n; j++) {                                                            \
            y_ = tanh_form ? tga_rm_gelu_tanh(x[j], &g_) : tga_rm_gelu_exact(x[j], &g_, FMA);\
            y[j] = y_;                                                                       \
            if (grad != NULL) grad[j] = g_;                                                  \
        }                                                                                    \
    }                                                                                        \
    ATTR static void tga_rm_gelu_bwd##SFX(float *dx, const float *dout, const float *x,     \
                                          int tanh_form, Py_ssize_t n) {                     \
        Py_ssize_t j;                                                                        \
        float g_;                                                                            \
        if (tanh_form)                                                                       \
            for (j = 0; j < n; j++) {                                                        \
                tga_rm_gelu_tanh(x[j], &g_);                                                 \
                dx[j] = dout[j] * g_;                                                        \
            }                                                                                \
        else                                                                                 \
            for (j = 0; j < n; j++) {                                                        \
                tga_rm_gelu_exact(x[j], &g_, FMA);                                           \
                dx[j] = dout[j] * g_;                                                        \
            }                                                                                \
    }
#define TGA_RM_DEFINE_ERF_TANH(SFX, ATTR, FMA)                                               \
    ATTR static void tga_rm_erf##SFX(float *y, const float *x, Py_ssize_t n) {              \
        Py_ssize_t j;                                                                        \
        for (j = 0; j < n; j++) y[j] = tga_erff(x[j], FMA);                                  \
    }                                                                                        \
    ATTR static void tga_rm_tanh##SFX(float *y, const float *x, Py_ssize_t n) {             \
        Py_ssize_t j;                                                                        \
        for (j = 0; j < n; j++) y[j] = tga_tanhf(x[j]);                                      \
    }

TGA_RM_DEFINE_GELU(_generic, , 0)
TGA_RM_DEFINE_ERF_TANH(_generic, , 0)
#if TGA_RM_X86
TGA_RM_DEFINE_ERF_TANH(_avx2, __attribute__((target("avx2,fma"))), 1)
TGA_RM_DEFINE_ERF_TANH(_avx512, __attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma"))), 1)

/* AVX-512, 16 lanes: the steps of tga_rm_gelu_exact / tga_rm_gelu_tanh with the ISA's own
 * instructions, where the compiler's vectorised C spends a third more: vrndscaleps for n,
 * vscalefps for 2^-n (q 2^-n in one rounding, no integer steps), a float min that keeps NaN
 * (vminps returns its second operand), masked ops for the selects and for the tail. */
#define TGA_RM_ATTR512 __attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma")))
#define TGA_RM_V(c) _mm512_set1_ps(c)

/* exp(r), |r| <= ln2 / 2: tga_rm_exp_poly's polynomial, its inner part c2 + ... + c6 r^4 by
 * Estrin's scheme (the loops are partly latency-bound), the last two steps as Horner's (one
 * rounding each: the accuracy of tga_rm_exp_poly) */
TGA_RM_ATTR512 static inline __m512 tga_rm_exp_poly16(__m512 r) {
    __m512 r2 = _mm512_mul_ps(r, r);
    __m512 p = _mm512_fmadd_ps(TGA_RM_V(0.0013818939f), r2,
                               _mm512_fmadd_ps(TGA_RM_V(0.008368704f), r, TGA_RM_V(0.04166829f)));
    p = _mm512_fmadd_ps(p, r2, _mm512_fmadd_ps(TGA_RM_V(0.16666521f), r, TGA_RM_V(0.49999994f)));
    p = _mm512_fmadd_ps(p, r, TGA_RM_V(1.0f));
    return _mm512_fmadd_ps(p, r, TGA_RM_V(1.0f));
}

/* y = gelu(x), *grad = dy/dx, exact form: tga_rm_gelu_exact. x^2 = h2 + d2 exactly (FMA),
 * phi(x) = 2^nm p, Mills' ratio N / den (N, S by Horner in a: Estrin's scheme in the rounded
 * a^2 = h2 measured no faster and 0.4 ulp less accurate). */
TGA_RM_ATTR512 static inline __m512 tga_rm_gelu_exact16(__m512 x, __m512 *grad) {
    __m512 a = _mm512_min_ps(TGA_RM_V(16.0f), _mm512_abs_ps(x));   /* NaN stays */
    __m512 h2 = _mm512_mul_ps(a, a), d2 = _mm512_fmsub_ps(a, a, h2);
    __m512 nm, r, w, p, n, s, den, y, g;
    __mmask16 pos = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ);
    /* -n = -round((x^2 / 2 + ln sqrt(2 pi)) / ln 2); r = n ln2 - c - x^2 / 2, c = ln sqrt(2 pi):
     * (n ln2hi - chi) exact, - h2 / 2 one rounding, + (n ln2lo - clo - d2 / 2) alongside */
    nm = _mm512_roundscale_ps(_mm512_fmadd_ps(h2, TGA_RM_V(-0.5f * TGA_RM_LOG2E),
                                              TGA_RM_V(-TGA_RM_LNS2PI_HI * TGA_RM_LOG2E)),
                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    r = _mm512_fnmsub_ps(nm, TGA_RM_V(TGA_RM_LN2HI), TGA_RM_V(TGA_RM_LNS2PI_HI));
    r = _mm512_fnmadd_ps(h2, TGA_RM_V(0.5f), r);
    w = _mm512_fmadd_ps(d2, TGA_RM_V(-0.5f), TGA_RM_V(-TGA_RM_LNS2PI_LO));
    r = _mm512_add_ps(r, _mm512_fnmadd_ps(nm, TGA_RM_V(TGA_RM_LN2LO), w));
    p = tga_rm_exp_poly16(r);
    n = _mm512_fmadd_ps(TGA_RM_V(TGA_RM_MILLS_N4), a, TGA_RM_V(TGA_RM_MILLS_N3));
    n = _mm512_fmadd_ps(n, a, TGA_RM_V(TGA_RM_MILLS_N2));
    n = _mm512_fmadd_ps(n, a, TGA_RM_V(TGA_RM_MILLS_N1));
    n = _mm512_fmadd_ps(n, a, TGA_RM_V(TGA_RM_MILLS_N0));
    s = _mm512_fmadd_ps(TGA_RM_V(TGA_RM_MILLS_S4), a, TGA_RM_V(TGA_RM_MILLS_S3));
    s = _mm512_fmadd_ps(s, a, TGA_RM_V(TGA_RM_MILLS_S2));
    s = _mm512_fmadd_ps(s, a, TGA_RM_V(TGA_RM_MILLS_S1));
    s = _mm512_fmadd_ps(s, a, TGA_RM_V(TGA_RM_MILLS_S0));
    den = _mm512_fmadd_ps(a, n, s);
    y = _mm512_mul_ps(_mm512_mul_ps(a, _mm512_div_ps(n, den)), p);
    y = _mm512_scalef_ps(y, nm);                   /* |x| Phi(-|x|) */
    g = _mm512_mul_ps(_mm512_div_ps(_mm512_fnmadd_ps(a, den, n), den), p);
    g = _mm512_scalef_ps(g, nm);                   /* Phi(-|x|) - |x| phi(x) */
    *grad = _mm512_mask_sub_ps(g, pos, TGA_RM_V(1.0f), g);
    /* y = x - |x| Phi(-|x|) (x > 0), -|x| Phi(-|x|) (x <= 0, the sign kept: -0 for -0, -inf):
     * max(-0, x) is x for x > 0, -0 for x < 0, and x itself for +-0 and NaN (vmaxps returns
     * its second operand for equal zeros and for NaN) */
    return _mm512_sub_ps(_mm512_max_ps(TGA_RM_V(-0.0f), x), y);
}

/* y = gelu(x), *grad = dy/dx, tanh form: tga_rm_gelu_tanh */
TGA_RM_ATTR512 static inline __m512 tga_rm_gelu_tanh16(__m512 x, __m512 *grad) {
    __m512 xc = _mm512_max_ps(TGA_RM_V(-16.0f), _mm512_min_ps(TGA_RM_V(16.0f), x));   /* NaN stays */
    __m512 x2 = _mm512_mul_ps(xc, xc), b, nm, e, w, dd, y, m, t;
    __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    b = _mm512_mul_ps(xc, _mm512_fmadd_ps(x2, TGA_RM_V(0.0713548162f), TGA_RM_V(1.59576912f)));
    b = _mm512_min_ps(TGA_RM_V(120.0f), _mm512_abs_ps(b));                             /* |2u| */
    nm = _mm512_roundscale_ps(_mm512_mul_ps(b, TGA_RM_V(-TGA_RM_LOG2E)),
                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);       /* -n */
    e = _mm512_fnmsub_ps(nm, TGA_RM_V(TGA_RM_LN2HI), b);                             /* exact */
    e = tga_rm_exp_poly16(_mm512_fnmadd_ps(nm, TGA_RM_V(TGA_RM_LN2LO), e));          /* exp(-b) 2^n */
    w = _mm512_scalef_ps(e, nm);                   /* exp(-b) */
    dd = _mm512_div_ps(TGA_RM_V(1.0f), _mm512_add_ps(TGA_RM_V(1.0f), w));
    y = _mm512_mul_ps(_mm512_mask_mul_ps(x, neg, xc, e), dd);
    m = _mm512_mask_mov_ps(_mm512_mul_ps(w, dd), neg, dd);
    t = _mm512_mul_ps(xc, _mm512_fmadd_ps(x2, TGA_RM_V(0.214064449f), TGA_RM_V(1.59576912f)));
    t = _mm512_mul_ps(dd, _mm512_fmadd_ps(t, m, TGA_RM_V(1.0f)));
    t = _mm512_mask_mul_ps(t, neg, t, e);
    *grad = _mm512_mask_scalef_ps(t, neg, t, nm);
    return _mm512_mask_scalef_ps(y, neg, y, nm);
}

/* the tail: lanes [0, r) of a 16-lane block */
#define TGA_RM_TAIL16(r) ((__mmask16)((1u << (r)) - 1u))

TGA_RM_ATTR512 static void tga_rm_gelu_fwd_avx512(float *y, float *grad, const float *x,
                                                  int tanh_form, Py_ssize_t n) {
    Py_ssize_t j = 0;
    __m512 g, v;
    __mmask16 k;
    if (tanh_form) {
        for (; j + 16 <= n; j += 16) {
            v = tga_rm_gelu_tanh16(_mm512_loadu_ps(x + j), &g);
            _mm512_storeu_ps(y + j, v);
            if (grad != NULL) _mm512_storeu_ps(grad + j, g);
        }
    } else {
        for (; j + 16 <= n; j += 16) {
            v = tga_rm_gelu_exact16(_mm512_loadu_ps(x + j), &g);
            _mm512_storeu_ps(y + j, v);
            if (grad != NULL) _mm512_storeu_ps(grad + j, g);
        }
    }
    if (j == n) return;
    k = TGA_RM_TAIL16(n - j);
    v = tanh_form ? tga_rm_gelu_tanh16(_mm512_maskz_loadu_ps(k, x + j), &g)
                  : tga_rm_gelu_exact16(_mm512_maskz_loadu_ps(k, x + j), &g);
    _mm512_mask_storeu_ps(y + j, k, v);
    if (grad != NULL) _mm512_mask_storeu_ps(grad + j, k, g);
}

TGA_RM_ATTR512 static void tga_rm_gelu_bwd_avx512(float *dx, const float *dout, const float *x,
                                                  int tanh_form, Py_ssize_t n) {
    Py_ssize_t j = 0;
    __m512 g;
    __mmask16 k;
    if (tanh_form) {
        for (; j + 16 <= n; j += 16) {
            tga_rm_gelu_tanh16(_mm512_loadu_ps(x + j), &g);
            _mm512_storeu_ps(dx + j, _mm512_mul_ps(_mm512_loadu_ps(dout + j), g));
        }
    } else {
        for (; j + 16 <= n; j += 16) {
            tga_rm_gelu_exact16(_mm512_loadu_ps(x + j), &g);
            _mm512_storeu_ps(dx + j, _mm512_mul_ps(_mm512_loadu_ps(dout + j), g));
        }
    }
    if (j == n) return;
    k = TGA_RM_TAIL16(n - j);
    if (tanh_form)
        tga_rm_gelu_tanh16(_mm512_maskz_loadu_ps(k, x + j), &g);
    else
        tga_rm_gelu_exact16(_mm512_maskz_loadu_ps(k, x + j), &g);
    _mm512_mask_storeu_ps(dx + j, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, dout + j), g));
}
/* AVX2 + FMA, 8 lanes: the same steps as the AVX-512 loops where AVX2 has them; 2^-n from
 * the exponent bits (one scaling, exact while n <= 126; a vector with a lane beyond, |x| > 13.2
 * exact form, takes two scalings), blends for the selects, a scalar-copied tail. */
#define TGA_RM_ATTR2 __attribute__((target("avx2,fma")))
#define TGA_RM_V8(c) _mm256_set1_ps(c)

/* 2^k for integer-valued k in [-126, 127] */
TGA_RM_ATTR2 static inline __m256 tga_rm_exp2i8(__m256 k) {
    return _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_cvtps_epi32(_mm256_add_ps(k, TGA_RM_V8(127.0f))), 23));
}

/* q 2^k, k integer-valued in [-252, 0], rounded once (tga_rm_scale); two: some lane has k < -126 */
TGA_RM_ATTR2 static inline __m256 tga_rm_scale8(__m256 q, __m256 k, int two) {
    __m256 k1;
    if (!two) return _mm256_mul_ps(q, tga_rm_exp2i8(k));
    k1 = _mm256_round_ps(_mm256_mul_ps(k, TGA_RM_V8(0.5f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    return _mm256_mul_ps(_mm256_mul_ps(q, tga_rm_exp2i8(k1)), tga_rm_exp2i8(_mm256_sub_ps(k, k1)));
}

/* tga_rm_exp_poly16 on 8 lanes */
TGA_RM_ATTR2 static inline __m256 tga_rm_exp_poly8(__m256 r) {
    __m256 r2 = _mm256_mul_ps(r, r);
    __m256 p = _mm256_fmadd_ps(TGA_RM_V8(0.0013818939f), r2,
                               _mm256_fmadd_ps(TGA_RM_V8(0.008368704f), r, TGA_RM_V8(0.04166829f)));
    p = _mm256_fmadd_ps(p, r2, _mm256_fmadd_ps(TGA_RM_V8(0.16666521f), r, TGA_RM_V8(0.49999994f)));
    p = _mm256_fmadd_ps(p, r, TGA_RM_V8(1.0f));
    return _mm256_fmadd_ps(p, r, TGA_RM_V8(1.0f));
}

/* tga_rm_gelu_exact16 on 8 lanes; want_y / want_g: which outputs are used */
TGA_RM_ATTR2 static inline __m256 tga_rm_gelu_exact8(__m256 x, __m256 *grad) {
    __m256 a = _mm256_min_ps(TGA_RM_V8(16.0f), _mm256_andnot_ps(TGA_RM_V8(-0.0f), x));   /* NaN stays */
    __m256 h2 = _mm256_mul_ps(a, a), d2 = _mm256_fmsub_ps(a, a, h2);
    __m256 nm, r, w, p, n, s, den, y, g;
    int two;
    nm = _mm256_round_ps(_mm256_fmadd_ps(h2, TGA_RM_V8(-0.5f * TGA_RM_LOG2E),
                                         TGA_RM_V8(-TGA_RM_LNS2PI_HI * TGA_RM_LOG2E)),
                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    two = _mm256_movemask_ps(_mm256_cmp_ps(nm, TGA_RM_V8(-126.0f), _CMP_LT_OQ));
    r = _mm256_fnmsub_ps(nm, TGA_RM_V8(TGA_RM_LN2HI), TGA_RM_V8(TGA_RM_LNS2PI_HI));
    r = _mm256_fnmadd_ps(h2, TGA_RM_V8(0.5f), r);
    w = _mm256_fmadd_ps(d2, TGA_RM_V8(-0.5f), TGA_RM_V8(-TGA_RM_LNS2PI_LO));
    r = _mm256_add_ps(r, _mm256_fnmadd_ps(nm, TGA_RM_V8(TGA_RM_LN2LO), w));
    p = tga_rm_exp_poly8(r);
    n = _mm256_fmadd_ps(TGA_RM_V8(TGA_RM_MILLS_N4), a, TGA_RM_V8(TGA_RM_MILLS_N3));
    n = _mm256_fmadd_ps(n, a, TGA_RM_V8(TGA_RM_MILLS_N2));
    n = _mm256_fmadd_ps(n, a, TGA_RM_V8(TGA_RM_MILLS_N1));
    n = _mm256_fmadd_ps(n, a, TGA_RM_V8(TGA_RM_MILLS_N0));
    s = _mm256_fmadd_ps(TGA_RM_V8(TGA_RM_MILLS_S4), a, TGA_RM_V8(TGA_RM_MILLS_S3));
    s = _mm256_fmadd_ps(s, a, TGA_RM_V8(TGA_RM_MILLS_S2));
    s = _mm256_fmadd_ps(s, a, TGA_RM_V8(TGA_RM_MILLS_S1));
    s = _mm256_fmadd_ps(s, a, TGA_RM_V8(TGA_RM_MILLS_S0));
    den = _mm256_fmadd_ps(a, n, s);
    y = _mm256_mul_ps(_mm256_mul_ps(a, _mm256_div_ps(n, den)), p);
    y = tga_rm_scale8(y, nm, two);                 /* |x| Phi(-|x|) */
    g = _mm256_mul_ps(_mm256_div_ps(_mm256_fnmadd_ps(a, den, n), den), p);
    g = tga_rm_scale8(g, nm, two);                 /* Phi(-|x|) - |x| phi(x) */
    *grad = _mm256_blendv_ps(g, _mm256_sub_ps(TGA_RM_V8(1.0f), g),
                             _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ));
    return _mm256_sub_ps(_mm256_max_ps(TGA_RM_V8(-0.0f), x), y);   /* as tga_rm_gelu_exact16 */
}

/* tga_rm_gelu_tanh16 on 8 lanes */
TGA_RM_ATTR2 static inline __m256 tga_rm_gelu_tanh8(__m256 x, __m256 *grad) {
    __m256 xc = _mm256_max_ps(TGA_RM_V8(-16.0f), _mm256_min_ps(TGA_RM_V8(16.0f), x));   /* NaN stays */
    __m256 x2 = _mm256_mul_ps(xc, xc), b, nm, e, w, dd, y, m, t, neg;
    int two;
    neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
    b = _mm256_mul_ps(xc, _mm256_fmadd_ps(x2, TGA_RM_V8(0.0713548162f), TGA_RM_V8(1.59576912f)));
    b = _mm256_min_ps(TGA_RM_V8(120.0f), _mm256_andnot_ps(TGA_RM_V8(-0.0f), b));        /* |2u| */
    nm = _mm256_round_ps(_mm256_mul_ps(b, TGA_RM_V8(-TGA_RM_LOG2E)),
                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);               /* -n */
    e = _mm256_fnmsub_ps(nm, TGA_RM_V8(TGA_RM_LN2HI), b);                               /* exact */
    e = tga_rm_exp_poly8(_mm256_fnmadd_ps(nm, TGA_RM_V8(TGA_RM_LN2LO), e));            /* exp(-b) 2^n */
    w = _mm256_mul_ps(e, tga_rm_exp2i8(_mm256_max_ps(nm, TGA_RM_V8(-126.0f))));   /* exp(-b), or a
                                                                  value below 2^-125 as good */
    dd = _mm256_div_ps(TGA_RM_V8(1.0f), _mm256_add_ps(TGA_RM_V8(1.0f), w));
    nm = _mm256_and_ps(nm, neg);                   /* the scaling for x < 0 only */
    two = _mm256_movemask_ps(_mm256_cmp_ps(nm, TGA_RM_V8(-126.0f), _CMP_LT_OQ));
    y = _mm256_mul_ps(_mm256_blendv_ps(x, _mm256_mul_ps(xc, e), neg), dd);
    m = _mm256_blendv_ps(_mm256_mul_ps(w, dd), dd, neg);
    t = _mm256_mul_ps(xc, _mm256_fmadd_ps(x2, TGA_RM_V8(0.214064449f), TGA_RM_V8(1.59576912f)));
    t = _mm256_mul_ps(dd, _mm256_fmadd_ps(t, m, TGA_RM_V8(1.0f)));
    *grad = tga_rm_scale8(_mm256_blendv_ps(t, _mm256_mul_ps(t, e), neg), nm, two);
    return tga_rm_scale8(y, nm, two);
}

/* the loops: 8 lanes at a time, the tail (< 8) through a zero-padded block */
TGA_RM_ATTR2 static void tga_rm_gelu_fwd_avx2(float *y, float *grad, const float *x,
                                              int tanh_form, Py_ssize_t n) {
    Py_ssize_t j = 0;
    float buf[8], gbuf[8];
    __m256 g, v;
    for (; j + 8 <= n; j += 8) {
        v = tanh_form ? tga_rm_gelu_tanh8(_mm256_loadu_ps(x + j), &g)
                      : tga_rm_gelu_exact8(_mm256_loadu_ps(x + j), &g);
        _mm256_storeu_ps(y + j, v);
        if (grad != NULL) _mm256_storeu_ps(grad + j, g);
    }
    if (j == n) return;
    memset(buf, 0, sizeof buf);
    memcpy(buf, x + j, (size_t)(n - j) * sizeof(float));
    v = tanh_form ? tga_rm_gelu_tanh8(_mm256_loadu_ps(buf), &g)
                  : tga_rm_gelu_exact8(_mm256_loadu_ps(buf), &g);
    _mm256_storeu_ps(buf, v);
    _mm256_storeu_ps(gbuf, g);
    memcpy(y + j, buf, (size_t)(n - j) * sizeof(float));
    if (grad != NULL) memcpy(grad + j, gbuf, (size_t)(n - j) * sizeof(float));
}

TGA_RM_ATTR2 static void tga_rm_gelu_bwd_avx2(float *dx, const float *dout, const float *x,
                                              int tanh_form, Py_ssize_t n) {
    Py_ssize_t j = 0;
    float buf[8], dbuf[8];
    __m256 g;
    if (tanh_form)
        for (; j + 8 <= n; j += 8) {
            tga_rm_gelu_tanh8(_mm256_loadu_ps(x + j), &g);
            _mm256_storeu_ps(dx + j, _mm256_mul_ps(_mm256_loadu_ps(dout + j), g));
        }
    else
        for (; j + 8 <= n; j += 8) {
            tga_rm_gelu_exact8(_mm256_loadu_ps(x + j), &g);
            _mm256_storeu_ps(dx + j, _mm256_mul_ps(_mm256_loadu_ps(dout + j), g));
        }
    if (j == n) return;
    memset(buf, 0, sizeof buf);
    memset(dbuf, 0, sizeof dbuf);
    memcpy(buf, x + j, (size_t)(n - j) * sizeof(float));
    memcpy(dbuf, dout + j, (size_t)(n - j) * sizeof(float));
    if (tanh_form)
        tga_rm_gelu_tanh8(_mm256_loadu_ps(buf), &g);
    else
        tga_rm_gelu_exact8(_mm256_loadu_ps(buf), &g);
    _mm256_storeu_ps(buf, _mm256_mul_ps(_mm256_loadu_ps(dbuf), g));
    memcpy(dx + j, buf, (size_t)(n - j) * sizeof(float));
}

#include "_rowmath_avx512.h"      /* the row primitives' AVX-512 set */
#endif

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

/* The selected set: function pointers named like the bodies without the ISA suffix. */
typedef struct {
    const char *isa;
    float (*max)(const float *, Py_ssize_t);
    double (*exp_sum)(float *, const float *, float, Py_ssize_t);
    double (*sum)(const float *, float, Py_ssize_t);
    double (*dot)(const float *, const float *, Py_ssize_t);
    double (*sqdev)(const float *, double, Py_ssize_t);
    void (*axpb)(float *, float, float, Py_ssize_t);
    void (*shift)(float *, const float *, float, float, Py_ssize_t);
    void (*softmax_bwd)(float *, const float *, const float *, float, Py_ssize_t);
    void (*log_softmax_bwd)(float *, const float *, const float *, float, Py_ssize_t);
    void (*softmax_rows)(float *, const float *, Py_ssize_t, Py_ssize_t);
    void (*softmax_bwd_rows)(float *, const float *, const float *, Py_ssize_t, Py_ssize_t);
    void (*exp_rows)(float *, float *, double *, const float *, Py_ssize_t, Py_ssize_t);
    void (*ln_fwd_rows)(float *, float *, float *, const float *, const float *, const float *,
                        double, Py_ssize_t, Py_ssize_t);
    void (*ln_fwd)(float *, const float *, const float *, const float *, float, float,
                   Py_ssize_t);
    void (*ln_bwd)(float *, float *, float *, const float *, const float *, const float *,
                   float, float, Py_ssize_t);
} tga_rowmath_t;

#define TGA_RM_TABLE(NAME, SFX)                                                              \
    {NAME, tga_rm_max##SFX, tga_rm_exp_sum##SFX, tga_rm_sum##SFX, tga_rm_dot##SFX,           \
     tga_rm_sqdev##SFX, tga_rm_axpb##SFX, tga_rm_shift##SFX, tga_rm_softmax_bwd##SFX,        \
     tga_rm_log_softmax_bwd##SFX, tga_rm_softmax_rows##SFX, tga_rm_softmax_bwd_rows##SFX,     \
     tga_rm_exp_rows##SFX, tga_rm_ln_fwd_rows##SFX, tga_rm_ln_fwd##SFX, tga_rm_ln_bwd##SFX}

static tga_rowmath_t tga_rm = TGA_RM_TABLE("generic", _generic);

/* The GELU loops of the set named `isa` (tga_rm.isa at the call: one switch for all). */
typedef struct {
    void (*gelu_fwd)(float *, float *, const float *, int, Py_ssize_t);
    void (*gelu_bwd)(float *, const float *, const float *, int, Py_ssize_t);
    void (*erf)(float *, const float *, Py_ssize_t);
    void (*tanh)(float *, const float *, Py_ssize_t);
} tga_rm_gelu_t;

#define TGA_RM_GELU_TABLE(SFX)                                                               \
    {tga_rm_gelu_fwd##SFX, tga_rm_gelu_bwd##SFX, tga_rm_erf##SFX, tga_rm_tanh##SFX}

static inline const tga_rm_gelu_t *tga_rm_gelu_for(const char *isa) {
    static const tga_rm_gelu_t generic = TGA_RM_GELU_TABLE(_generic);
#if TGA_RM_X86
    static const tga_rm_gelu_t avx2 = TGA_RM_GELU_TABLE(_avx2);
    static const tga_rm_gelu_t avx512 = TGA_RM_GELU_TABLE(_avx512);
    if (strcmp(isa, "avx512") == 0) return &avx512;
    if (strcmp(isa, "avx2") == 0) return &avx2;
#endif
    return &generic;
}

/* Point tga_rm at the set of ISA level `level` (_cpu_features.h); generic off x86. */
static int tga_rm_level = -1;            /* the level tga_rm holds (-1: none yet) */

static void tga_rowmath_select(int level) {
    tga_rm_level = level;
    static const tga_rowmath_t generic = TGA_RM_TABLE("generic", _generic);
#if TGA_RM_X86
    static const tga_rowmath_t avx2 = TGA_RM_TABLE("avx2", _avx2);
    static const tga_rowmath_t avx512 = TGA_RM_TABLE("avx512", _avx512);
    if (level == TGA_ISA_AVX512) {
        tga_rm = avx512;
        return;
    }
    if (level == TGA_ISA_AVX2) {
        tga_rm = avx2;
        return;
    }
#endif
    tga_rm = generic;
}

/* Called at each kernel entry with the level _support holds: re-points tga_rm if it changed. */
static inline void tga_rowmath_sync(int level) {
    if (level != tga_rm_level) tga_rowmath_select(level);
}

#endif /* TGA_ROWMATH_H */
