/* float32 row primitives for the softmax family (_core.pyx) and the fused row kernels
 * (_fused.pyx): vectorised exp, max, sums and the layer-norm row loops.
 *
 *   tga_expf(x)                 exp in float32, ~1 ulp (Cephes polynomial on [-ln2/2, ln2/2]),
 *                               branch-free so loops over it vectorise; exp(-inf) = 0,
 *                               exp(+inf) = inf, NaN stays NaN, subnormal results kept
 *   max(x, n)                   max_j x[j]                       (NaN entries are skipped)
 *   exp_sum(y, x, shift, n)     y[j] = expf(x[j] - shift) (y may be NULL); returns sum_j in double
 *   sum(x, shift, n)            sum_j (x[j] - shift)             in double
 *   dot(a, b, n)                sum_j a[j] b[j]                  in double
 *   sqdev(x, mean, n)           sum_j (x[j] - mean)^2            in double
 *   axpb(y, s, o, n)            y[j] = y[j] s + o;   shift(y, x, a, b, n): y[j] = (x[j] - a) - b
 *   ... and the row bodies of softmax / log-softmax backward and layer norm fwd / bwd.
 *
 * Sums run in 16 independent double lanes (a reduction in one accumulator does not
 * vectorise without -ffast-math, which we never use), combined pairwise at the end.
 * Each function is compiled three times: AVX-512F, AVX2+FMA and the baseline ISA
 * (__attribute__((target))); tga_rowmath_init() picks one set with __builtin_cpu_supports,
 * as _gemm_kernel.h does. FMA contraction is the only difference between the sets.
 */
#ifndef TGA_ROWMATH_H
#define TGA_ROWMATH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define TGA_RM_X86 1
#else
#define TGA_RM_X86 0
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

#define TGA_RM_REDUCE(acc, total)                                                            \
    do {                                                                                     \
        int k_, w_;                                                                          \
        for (w_ = TGA_RM_LANES / 2; w_ > 0; w_ /= 2)                                         \
            for (k_ = 0; k_ < w_; k_++) acc[k_] += acc[k_ + w_];                             \
        total = acc[0];                                                                      \
    } while (0)

/* The bodies, one copy per ISA. */
#define TGA_RM_DEFINE(SFX, ATTR)                                                             \
    ATTR static float tga_rm_max##SFX(const float *x, Py_ssize_t n) {                       \
        float m[TGA_RM_LANES], best;                                                         \
        Py_ssize_t j = 0;                                                                    \
        int k;                                                                               \
        best = x[0];                                                                         \
        for (k = 0; k < TGA_RM_LANES; k++) m[k] = x[0];                                      \
        for (; j + TGA_RM_LANES <= n; j += TGA_RM_LANES)                                     \
            for (k = 0; k < TGA_RM_LANES; k++) m[k] = x[j + k] > m[k] ? x[j + k] : m[k];     \
        for (; j < n; j++) best = x[j] > best ? x[j] : best;                                 \
        for (k = 0; k < TGA_RM_LANES; k++) best = m[k] > best ? m[k] : best;                 \
        return best;                                                                         \
    }                                                                                        \
    /* exp in chunks of 256: a plain loop (vectorised), then the lane sum of the chunk */    \
    ATTR static double tga_rm_exp_sum##SFX(float *y, const float *x, float shift,           \
                                           Py_ssize_t n) {                                   \
        double acc[TGA_RM_LANES] = {0}, total;                                               \
        float buf[256], *dst;                                                                \
        Py_ssize_t j0, j, len;                                                               \
        int k;                                                                               \
        for (j0 = 0; j0 < n; j0 += 256) {                                                    \
            len = n - j0 < 256 ? n - j0 : 256;                                               \
            dst = y != NULL ? y + j0 : buf;                                                  \
            for (j = 0; j < len; j++) dst[j] = tga_expf(x[j0 + j] - shift);                  \
            for (j = 0; j + TGA_RM_LANES <= len; j += TGA_RM_LANES)                          \
                for (k = 0; k < TGA_RM_LANES; k++) acc[k] += (double)dst[j + k];             \
            for (k = 0; j < len; j++, k++) acc[k] += (double)dst[j];                         \
        }                                                                                    \
        TGA_RM_REDUCE(acc, total);                                                           \
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
    ATTR static double tga_rm_dot##SFX(const float *a, const float *b, Py_ssize_t n) {      \
        double acc[TGA_RM_LANES] = {0}, total;                                               \
        Py_ssize_t j = 0;                                                                    \
        int k;                                                                               \
        for (; j + TGA_RM_LANES <= n; j += TGA_RM_LANES)                                     \
            for (k = 0; k < TGA_RM_LANES; k++) acc[k] += (double)a[j + k] * b[j + k];        \
        for (k = 0; j < n; j++, k++) acc[k] += (double)a[j] * b[j];                          \
        TGA_RM_REDUCE(acc, total);                                                           \
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
    /* layer norm backward, one row: dw_acc += dout xhat, db_acc += dout (if dw_acc), and    \
     * dx = rstd (g - mean(g) - xhat mean(g xhat)), g = dout w (if dx) */                    \
    ATTR static void tga_rm_ln_bwd##SFX(float *dx, double *dw_acc, double *db_acc,          \
                                        const float *dout, const float *x, const float *w,  \
                                        float mean, float rstd, Py_ssize_t n) {              \
        double a1[TGA_RM_LANES] = {0}, a2[TGA_RM_LANES] = {0}, sum_g, sum_gx;                \
        float xh[TGA_RM_LANES], g[TGA_RM_LANES];                                             \
        double c1, c2;                                                                       \
        Py_ssize_t j = 0;                                                                    \
        int k;                                                                               \
        if (dw_acc != NULL)                                                                  \
            for (j = 0; j < n; j++) {                                                        \
                dw_acc[j] += (double)(dout[j] * ((x[j] - mean) * rstd));                     \
                db_acc[j] += (double)dout[j];                                                \
            }                                                                                \
        if (dx == NULL) return;                                                              \
        for (j = 0; j + TGA_RM_LANES <= n; j += TGA_RM_LANES)                                \
            for (k = 0; k < TGA_RM_LANES; k++) {                                             \
                xh[k] = (x[j + k] - mean) * rstd;                                            \
                g[k] = dout[j + k] * w[j + k];                                               \
                a1[k] += (double)g[k];                                                       \
                a2[k] += (double)(g[k] * xh[k]);                                             \
            }                                                                                \
        for (k = 0; j < n; j++, k++) {                                                       \
            xh[0] = (x[j] - mean) * rstd;                                                    \
            g[0] = dout[j] * w[j];                                                           \
            a1[k] += (double)g[0];                                                           \
            a2[k] += (double)(g[0] * xh[0]);                                                 \
        }                                                                                    \
        TGA_RM_REDUCE(a1, sum_g);                                                            \
        TGA_RM_REDUCE(a2, sum_gx);                                                           \
        /* g and xhat rounded as in the sums above (a contracted FMA would not round g, and  \
         * g - mean(g) would not cancel exactly where it should, e.g. C = 1) */              \
        c1 = sum_g / (double)n;                                                              \
        c2 = sum_gx / (double)n;                                                             \
        for (j = 0; j < n; j++)                                                              \
            dx[j] = (float)((double)rstd * ((double)(dout[j] * w[j]) - c1                   \
                                            - (double)((x[j] - mean) * rstd) * c2));         \
    }

TGA_RM_DEFINE(_generic, )
#if TGA_RM_X86
TGA_RM_DEFINE(_avx2, __attribute__((target("avx2,fma"))))
TGA_RM_DEFINE(_avx512, __attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma"))))
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
    void (*ln_fwd)(float *, const float *, const float *, const float *, float, float,
                   Py_ssize_t);
    void (*ln_bwd)(float *, double *, double *, const float *, const float *, const float *,
                   float, float, Py_ssize_t);
} tga_rowmath_t;

#define TGA_RM_TABLE(NAME, SFX)                                                              \
    {NAME, tga_rm_max##SFX, tga_rm_exp_sum##SFX, tga_rm_sum##SFX, tga_rm_dot##SFX,           \
     tga_rm_sqdev##SFX, tga_rm_axpb##SFX, tga_rm_shift##SFX, tga_rm_softmax_bwd##SFX,        \
     tga_rm_log_softmax_bwd##SFX, tga_rm_ln_fwd##SFX, tga_rm_ln_bwd##SFX}

static tga_rowmath_t tga_rm = TGA_RM_TABLE("generic", _generic);

/* Pick the widest set this CPU runs ("auto"), or a named one; returns 0 if unavailable. */
static int tga_rowmath_init(const char *want) {
    static const tga_rowmath_t generic = TGA_RM_TABLE("generic", _generic);
#if TGA_RM_X86
    static const tga_rowmath_t avx2 = TGA_RM_TABLE("avx2", _avx2);
    static const tga_rowmath_t avx512 = TGA_RM_TABLE("avx512", _avx512);
    int has512, has2;
    __builtin_cpu_init();
    has512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")
             && __builtin_cpu_supports("avx512vl");
    has2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (strcmp(want, "avx512") == 0 || (strcmp(want, "auto") == 0 && has512)) {
        if (!has512) return 0;
        tga_rm = avx512;
        return 1;
    }
    if (strcmp(want, "avx2") == 0 || (strcmp(want, "auto") == 0 && has2)) {
        if (!has2) return 0;
        tga_rm = avx2;
        return 1;
    }
#endif
    if (strcmp(want, "generic") != 0 && strcmp(want, "auto") != 0) return 0;
    tga_rm = generic;
    return 1;
}

#endif /* TGA_ROWMATH_H */
