/* float32 row primitives of the "rows" kernel family: the softmax family (_core.pyx), layer
 * norm and cross-entropy (_rows.pyx): vectorised max, sums and the layer-norm row loops, over
 * rows of n contiguous floats (the callers run rows in parallel; nothing here is threaded).
 * The float32 exp and the GELU / erf / tanh loops are _elementwise_kernel.h's (included).
 *
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
 *                               held in registers, two rows at a time (_rows_kernel_avx512.h)
 *
 * Sums run in 16 independent double lanes (a reduction in one accumulator does not
 * vectorise without -ffast-math, which we never use), combined pairwise at the end; exp_sum
 * sums each chunk of 256 in 16 float lanes (pairwise-reduced) and the chunks in double; the
 * layer-norm backward row is float32 throughout (as torch), its row sums an OpenMP simd
 * reduction. The max runs in 2 x 16 lanes (two independent vector chains).
 * Each function exists three times: the C bodies compiled for AVX2+FMA and for the baseline
 * ISA (__attribute__((target))), and an AVX-512 set in intrinsics (_rows_kernel_avx512.h: the
 * same polynomial, lanes and summation order); tga_rowmath_select(level) points tga_rm at the
 * set of the "rows" level _support.pyx chose (_cpu_features.h; tinygradattn.backend.isa and
 * $TGA_ISA_ROWS force one). FMA contraction, vector width (the lane order of the simd
 * reductions) and, on AVX-512, exp's scaling by 2^n in one vscalefps are the only
 * differences between the sets.
 */
#ifndef TGA_RM_BODY
#ifndef TGA_ROWS_KERNEL_H
#define TGA_ROWS_KERNEL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <math.h>

#include "_cpu_features.h"
#include "_elementwise_kernel.h"     /* tga_expf, the AVX-512 helper macros, GELU */

#define TGA_RM_X86 TGA_CPU_X86
#if TGA_RM_X86
#include <immintrin.h>
#endif

#define TGA_RM_LANES 16

/* -fno-trapping-math for this header only: it changes no result (rounding, NaN and inf are
 * IEEE as before; only FP exception flags may differ), but without it gcc will not turn the
 * clamps of tga_expf into vector selects and the exp loops stay scalar. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("no-trapping-math")
#endif

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
 * and their single chains of dependent adds made the forward pass compute-bound; plain float
 * sums without the shift below would be faster still but lose the mean's precision far from
 * zero. Here the
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





/* ---- the bodies (after #else below), once per ISA: the baseline set and AVX2 + FMA; the
 * AVX-512 set of the primitives is written in intrinsics (_rows_kernel_avx512.h, where these
 * loops vectorised poorly), and instantiates the row functions only. ------------------- */
#define TGA_RM_CAT_(a, b) a##b
#define TGA_RM_CAT(a, b) TGA_RM_CAT_(a, b)
#define TGA_RM_BODY 1
#define TGA_RM_WITH_PRIMS 1
#define TGA_RM_TARGET
#define TGA_RM_PRIM _generic
#define TGA_RM_SFX _generic
#include "_rows_kernel.h"
#if TGA_RM_X86
#define TGA_RM_TARGET __attribute__((target("avx2,fma")))
#define TGA_RM_PRIM _avx2
#define TGA_RM_SFX _avx2
#include "_rows_kernel.h"
#endif
#undef TGA_RM_WITH_PRIMS
#undef TGA_RM_BODY

#if TGA_RM_X86
#include "_rows_kernel_avx512.h"      /* the row primitives' AVX-512 set */
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

#endif /* TGA_ROWS_KERNEL_H */

#else /* TGA_RM_BODY: one instantiation, for TGA_RM_TARGET, TGA_RM_PRIM (the primitives' suffix:
       * _generic, _avx2, _avx512), TGA_RM_SFX (the row functions' suffix) and
       * TGA_RM_WITH_PRIMS (1: define the primitives too; 0: row functions only) */

#define TGA_RM_P(name) TGA_RM_CAT(name, TGA_RM_PRIM)
#define TGA_RM_FN(name) TGA_RM_CAT(name, TGA_RM_SFX)

#if TGA_RM_WITH_PRIMS
/* 2 x 16 lanes (two independent vector chains), reduced pairwise (vectorised) */
TGA_RM_TARGET static float TGA_RM_P(tga_rm_max)(const float *x, Py_ssize_t n) {
    float m[2 * TGA_RM_LANES], best;
    Py_ssize_t j = 0;
    int k, w;
    best = x[0];
    for (k = 0; k < 2 * TGA_RM_LANES; k++) m[k] = x[0];
    for (; j + 2 * TGA_RM_LANES <= n; j += 2 * TGA_RM_LANES)
        for (k = 0; k < 2 * TGA_RM_LANES; k++) m[k] = x[j + k] > m[k] ? x[j + k] : m[k];
    for (; j < n; j++) best = x[j] > best ? x[j] : best;
    for (w = TGA_RM_LANES; w > 0; w /= 2)
        for (k = 0; k < w; k++) m[k] = m[k + w] > m[k] ? m[k + w] : m[k];
    return m[0] > best ? m[0] : best;
}
/* exp in chunks of 256: exp and a 16-lane float sum in one loop (each lane adds at
 * most 16 terms), the lanes reduced pairwise in float, the chunk sums added in double */
TGA_RM_TARGET
static double TGA_RM_P(tga_rm_exp_sum)(float *y, const float *x, float shift, Py_ssize_t n) {
    double total = 0.0;
    float buf[256], *dst, f[TGA_RM_LANES], e;
    Py_ssize_t j0, j, len;
    int k, w;
    for (j0 = 0; j0 < n; j0 += 256) {
        len = n - j0 < 256 ? n - j0 : 256;
        dst = y != NULL ? y + j0 : buf;
        for (k = 0; k < TGA_RM_LANES; k++) f[k] = 0.0f;
        for (j = 0; j + TGA_RM_LANES <= len; j += TGA_RM_LANES)
            for (k = 0; k < TGA_RM_LANES; k++) {
                e = tga_expf(x[j0 + j + k] - shift);
                dst[j + k] = e;
                f[k] += e;
            }
        for (k = 0; j < len; j++, k++) {
            e = tga_expf(x[j0 + j] - shift);
            dst[j] = e;
            f[k] += e;
        }
        for (w = TGA_RM_LANES / 2; w > 0; w /= 2)
            for (k = 0; k < w; k++) f[k] += f[k + w];
        total += (double)f[0];
    }
    return total;
}
TGA_RM_TARGET static double TGA_RM_P(tga_rm_sum)(const float *x, float shift, Py_ssize_t n) {
    double acc[TGA_RM_LANES] = {0}, total;
    Py_ssize_t j = 0;
    int k;
    for (; j + TGA_RM_LANES <= n; j += TGA_RM_LANES)
        for (k = 0; k < TGA_RM_LANES; k++) acc[k] += (double)x[j + k] - shift;
    for (k = 0; j < n; j++, k++) acc[k] += (double)x[j] - shift;
    TGA_RM_REDUCE(acc, total);
    return total;
}
/* chunks of 256 summed in 16 float lanes (pairwise-reduced), chunks added in double */
TGA_RM_TARGET static double TGA_RM_P(tga_rm_dot)(const float *a, const float *b, Py_ssize_t n) {
    double total = 0.0;
    float f[TGA_RM_LANES];
    Py_ssize_t j0, j, len;
    int k, w;
    for (j0 = 0; j0 < n; j0 += 256) {
        len = n - j0 < 256 ? n - j0 : 256;
        for (k = 0; k < TGA_RM_LANES; k++) f[k] = 0.0f;
        for (j = 0; j + TGA_RM_LANES <= len; j += TGA_RM_LANES)
            for (k = 0; k < TGA_RM_LANES; k++) f[k] += a[j0 + j + k] * b[j0 + j + k];
        for (k = 0; j < len; j++, k++) f[k] += a[j0 + j] * b[j0 + j];
        for (w = TGA_RM_LANES / 2; w > 0; w /= 2)
            for (k = 0; k < w; k++) f[k] += f[k + w];
        total += (double)f[0];
    }
    return total;
}
TGA_RM_TARGET static double TGA_RM_P(tga_rm_sqdev)(const float *x, double mean, Py_ssize_t n) {
    double acc[TGA_RM_LANES] = {0}, total, d;
    Py_ssize_t j = 0;
    int k;
    for (; j + TGA_RM_LANES <= n; j += TGA_RM_LANES)
        for (k = 0; k < TGA_RM_LANES; k++) {
            d = (double)x[j + k] - mean;
            acc[k] += d * d;
        }
    for (k = 0; j < n; j++, k++) {
        d = (double)x[j] - mean;
        acc[k] += d * d;
    }
    TGA_RM_REDUCE(acc, total);
    return total;
}
/* a row's mean and population variance, float sums (see moments above the bodies) */
TGA_RM_TARGET
static void TGA_RM_P(tga_rm_moments)(const float *x, Py_ssize_t n, double *mean, double *var) {
    float a[4][TGA_RM_LANES], b[4][TGA_RM_LANES], mf, d;
    double s = 0.0, c = 0.0, q = 0.0, t;
    Py_ssize_t j0, j1;
    for (j0 = 0; j0 < n; j0 += TGA_RM_MOM_CHUNK) {
        j1 = n - j0 < TGA_RM_MOM_CHUNK ? n : j0 + TGA_RM_MOM_CHUNK;
        TGA_RM_MOM_ZERO(a);
        TGA_RM_MOM_LOOP(x, j0, j1, a[u_][k_] += v_);
        TGA_RM_MOM_REDUCE(a, t);
        s += t;
    }
    mf = (float)(s / n);
    if (isfinite(mf))
        for (j0 = 0; j0 < n; j0 += TGA_RM_MOM_CHUNK) {
            j1 = n - j0 < TGA_RM_MOM_CHUNK ? n : j0 + TGA_RM_MOM_CHUNK;
            TGA_RM_MOM_ZERO(a);
            TGA_RM_MOM_ZERO(b);
            TGA_RM_MOM_LOOP(x, j0, j1, {
                d = v_ - mf;
                a[u_][k_] += d;
                b[u_][k_] += d * d;
            });
            TGA_RM_MOM_REDUCE(a, t);
            c += t;
            TGA_RM_MOM_REDUCE(b, t);
            q += t;
        }
    if (!isfinite(mf) || !isfinite(c) || !isfinite(q)) {
        *mean = TGA_RM_P(tga_rm_sum)(x, 0.0f, n) / n;
        *var = TGA_RM_P(tga_rm_sqdev)(x, *mean, n) / n;
        return;
    }
    TGA_RM_MOM_FINISH(c, q, mf, n, mean, var);
}
/* y[j] = y[j] * scale + offset */
TGA_RM_TARGET static void TGA_RM_P(tga_rm_axpb)(float *y, float scale, float offset, Py_ssize_t n) {
    Py_ssize_t j;
    for (j = 0; j < n; j++) y[j] = y[j] * scale + offset;
}
/* y[j] = (x[j] - a) - b: a the row max first, so huge rows keep b (log-softmax) */
TGA_RM_TARGET
static void TGA_RM_P(tga_rm_shift)(float *y, const float *x, float a, float b, Py_ssize_t n) {
    Py_ssize_t j;
    for (j = 0; j < n; j++) y[j] = (x[j] - a) - b;
}
/* softmax backward: dx = y (dout - dot) */
TGA_RM_TARGET
static void TGA_RM_P(tga_rm_softmax_bwd)(float *dx, const float *y, const float *dout, float dot,
                                         Py_ssize_t n) {
    Py_ssize_t j;
    for (j = 0; j < n; j++) dx[j] = y[j] * (dout[j] - dot);
}
/* log-softmax backward: dx = dout - exp(y) total */
TGA_RM_TARGET
static void TGA_RM_P(tga_rm_log_softmax_bwd)(float *dx, const float *y, const float *dout,
                                             float total, Py_ssize_t n) {
    Py_ssize_t j;
    for (j = 0; j < n; j++) dx[j] = dout[j] - tga_expf(y[j]) * total;
}
/* layer norm forward: y = (x - mean) rstd w + b */
TGA_RM_TARGET
static void TGA_RM_P(tga_rm_ln_fwd)(float *y, const float *x, const float *w, const float *b,
                                    float mean, float rstd, Py_ssize_t n) {
    Py_ssize_t j;
    for (j = 0; j < n; j++) y[j] = (x[j] - mean) * rstd * w[j] + b[j];
}
/* layer norm backward, one row, in float32 (as torch): dw_acc += dout xhat,
 * db_acc += dout (float partial rows, if dw_acc), then (if dx)
 * dx = rstd (g - mean(g)) - xhat (rstd mean(g xhat)), g = dout w.
 * g goes through dx (stored, then reloaded): the g summed and the g in dx are one
 * rounded value, so g - mean(g) cancels exactly where it should (C = 1), whatever
 * FMA contraction does. Row sums in float vector lanes (omp simd reduction). */
TGA_RM_TARGET
static void TGA_RM_P(tga_rm_ln_bwd)(float *dx, float *dw_acc, float *db_acc, const float *dout,
                                    const float *x, const float *w, float mean, float rstd,
                                    Py_ssize_t n) {
    float sum_g, sum_gx, xh, c1, c2;
    Py_ssize_t j = 0;
    if (dw_acc != NULL)
        for (j = 0; j < n; j++) {
            dw_acc[j] += dout[j] * ((x[j] - mean) * rstd);
            db_acc[j] += dout[j];
        }
    if (dx == NULL) return;
    for (j = 0; j < n; j++) dx[j] = dout[j] * w[j];
    sum_g = sum_gx = 0.0f;
    TGA_RM_SIMD_SUM_G
    for (j = 0; j < n; j++) {
        float g_ = dx[j];
        sum_g += g_;
        sum_gx += g_ * ((x[j] - mean) * rstd);
    }
    c1 = sum_g / (float)n;
    c2 = rstd * (sum_gx / (float)n);
    for (j = 0; j < n; j++) {
        xh = (x[j] - mean) * rstd;
        dx[j] = rstd * (dx[j] - c1) - xh * c2;
    }
}
#endif /* TGA_RM_WITH_PRIMS */

/* Whole rows (n_rows rows of n entries, row stride n) from the primitives of set TGA_RM_PRIM,
 * named tga_rm_*_rows<TGA_RM_SFX>: the sets' row functions for generic and AVX2; on AVX-512
 * the path for rows over 128 entries (_rows_kernel_avx512.h holds shorter rows in registers). */
/* softmax, forward and backward */
TGA_RM_TARGET
static void TGA_RM_FN(tga_rm_softmax_rows)(float *y, const float *x, Py_ssize_t n_rows,
                                           Py_ssize_t n) {
    Py_ssize_t i;
    float m;
    for (i = 0; i < n_rows; i++, x += n, y += n) {
        m = TGA_RM_P(tga_rm_max)(x, n);
        TGA_RM_P(tga_rm_axpb)(y, (float)(1.0 / TGA_RM_P(tga_rm_exp_sum)(y, x, m, n)), 0.0f, n);
    }
}
TGA_RM_TARGET
static void TGA_RM_FN(tga_rm_softmax_bwd_rows)(float *dx, const float *y, const float *dout,
                                               Py_ssize_t n_rows, Py_ssize_t n) {
    Py_ssize_t i;
    for (i = 0; i < n_rows; i++, dx += n, y += n, dout += n)
        TGA_RM_P(tga_rm_softmax_bwd)(dx, y, dout, (float)TGA_RM_P(tga_rm_dot)(dout, y, n), n);
}
/* y = exp(x - row max) (y may be NULL), each row's max and sum (exp_sum's) */
TGA_RM_TARGET
static void TGA_RM_FN(tga_rm_exp_rows)(float *y, float *row_max, double *row_sum, const float *x,
                                       Py_ssize_t n_rows, Py_ssize_t n) {
    Py_ssize_t i;
    for (i = 0; i < n_rows; i++, x += n) {
        row_max[i] = TGA_RM_P(tga_rm_max)(x, n);
        row_sum[i] = TGA_RM_P(tga_rm_exp_sum)(y == NULL ? NULL : y + i * n, x, row_max[i], n);
    }
}
/* layer norm forward: mean and variance in double up to 128 entries (two passes, as
 * AVX-512's rows in registers), by moments above; y in float */
TGA_RM_TARGET
static void TGA_RM_FN(tga_rm_ln_fwd_rows)(float *y, float *mean_out, float *rstd_out,
                                          const float *x, const float *w, const float *b,
                                          double eps, Py_ssize_t n_rows, Py_ssize_t n) {
    Py_ssize_t i;
    double mean, var, rstd;
    for (i = 0; i < n_rows; i++, x += n, y += n) {
        if (n > 128) {
            TGA_RM_P(tga_rm_moments)(x, n, &mean, &var);
        } else {
            mean = TGA_RM_P(tga_rm_sum)(x, 0.0f, n) / n;
            var = TGA_RM_P(tga_rm_sqdev)(x, mean, n) / n;
        }
        rstd = 1.0 / sqrt(var + eps);
        mean_out[i] = (float)mean;
        rstd_out[i] = (float)rstd;
        TGA_RM_P(tga_rm_ln_fwd)(y, x, w, b, (float)mean, (float)rstd, n);
    }
}

#undef TGA_RM_P
#undef TGA_RM_FN
#undef TGA_RM_TARGET
#undef TGA_RM_PRIM
#undef TGA_RM_SFX
#endif /* TGA_RM_BODY */
