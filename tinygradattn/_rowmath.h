/* float32 row primitives for the softmax family (_core.pyx) and the fused row kernels
 * (_fused.pyx): vectorised exp, max, sums and the layer-norm row loops.
 *
 *   tga_expf(x)                 exp in float32, ~1 ulp (Cephes polynomial on [-ln2/2, ln2/2]),
 *                               branch-free so loops over it vectorise; exp(-inf) = 0,
 *                               exp(+inf) = inf, NaN stays NaN, subnormal results kept
 *   max(x, n)                   max_j x[j]                       (NaN entries are skipped)
 *   exp_sum(y, x, shift, n)     y[j] = expf(x[j] - shift) (y may be NULL); returns sum_j
 *                               (float lanes per 256-chunk, chunks added in double)
 *   sum(x, shift, n)            sum_j (x[j] - shift)             in double
 *   dot(a, b, n)                sum_j a[j] b[j]       float lanes per 256-chunk, chunks in double
 *   sqdev(x, mean, n)           sum_j (x[j] - mean)^2            in double
 *   axpb(y, s, o, n)            y[j] = y[j] s + o;   shift(y, x, a, b, n): y[j] = (x[j] - a) - b
 *   ... and the row bodies of softmax / log-softmax backward and layer norm fwd / bwd.
 *
 * Sums run in 16 independent double lanes (a reduction in one accumulator does not
 * vectorise without -ffast-math, which we never use), combined pairwise at the end; exp_sum
 * sums each chunk of 256 in 16 float lanes (pairwise-reduced) and the chunks in double; the
 * layer-norm backward row is float32 throughout (as torch), its row sums an OpenMP simd
 * reduction. The max runs in 2 x 16 lanes (two independent vector chains).
 * Each function is compiled three times: AVX-512F, AVX2+FMA and the baseline ISA
 * (__attribute__((target))); tga_rowmath_init() picks one set with __builtin_cpu_supports,
 * as _gemm_kernel.h does ("auto"), or the named one (tga_rowmath_supported / _name list
 * them; _fused.set_rowmath_isa and $TGA_ROWMATH_ISA force one). FMA contraction and vector
 * width (the lane order of the simd reductions) are the only differences between the sets.
 */
#ifndef TGA_ROWMATH_H
#define TGA_ROWMATH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <math.h>

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

/* The bodies, one copy per ISA. PAD (AVX-512 only, where masked vector ops make it pay):
 * the max and exp_sum tails run as one more vector block padded with neutral values
 * instead of a scalar loop (C = 79: exp_sum 113 -> 55 ns a row); on AVX2 / baseline the
 * padded block was slower than the scalar tail. */
#define TGA_RM_DEFINE(SFX, ATTR, PAD)                                                             \
    /* 2 x 16 lanes (two independent vector chains), reduced pairwise (vectorised) */      \
    ATTR static float tga_rm_max##SFX(const float *x, Py_ssize_t n) {                       \
        float m[2 * TGA_RM_LANES], best;                                                     \
        Py_ssize_t j = 0;                                                                    \
        int k, w;                                                                            \
        best = x[0];                                                                         \
        for (k = 0; k < 2 * TGA_RM_LANES; k++) m[k] = x[0];                                  \
        for (; j + 2 * TGA_RM_LANES <= n; j += 2 * TGA_RM_LANES)                             \
            for (k = 0; k < 2 * TGA_RM_LANES; k++) m[k] = x[j + k] > m[k] ? x[j + k] : m[k]; \
        if (PAD && j < n) {      /* the tail as one more block, padded with x[0] */          \
            Py_ssize_t r_ = n - j;                                                           \
            for (k = 0; k < 2 * TGA_RM_LANES; k++) {                                         \
                float v_ = k < r_ ? x[j + k] : x[0];                                         \
                m[k] = v_ > m[k] ? v_ : m[k];                                                \
            }                                                                                \
        }                                                                                    \
        for (; !PAD && j < n; j++) best = x[j] > best ? x[j] : best;                         \
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
            if (PAD && j < len) {  /* the tail as one more block, padded with -inf (exp 0) */\
                float t_[TGA_RM_LANES];                                                      \
                Py_ssize_t r_ = len - j;                                                     \
                for (k = 0; k < TGA_RM_LANES; k++) {                                         \
                    e = tga_expf((k < r_ ? x[j0 + j + k] : -INFINITY) - shift);              \
                    t_[k] = e;                                                               \
                    f[k] += e;                                                               \
                }                                                                            \
                for (k = 0; k < r_; k++) dst[j + k] = t_[k];                                 \
            }                                                                                \
            for (k = 0; !PAD && j < len; j++, k++) {                                         \
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

TGA_RM_DEFINE(_generic, , 0)
#if TGA_RM_X86
TGA_RM_DEFINE(_avx2, __attribute__((target("avx2,fma"))), 0)
TGA_RM_DEFINE(_avx512, __attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma"))), 1)
#endif

/* ---- GELU (float32): erf, tanh, the normal CDF and the two GELU forms, elementwise ----------
 *
 *   tga_erff(z)            erf in float32: |z| < 0.921875: z + z P(z^2) (P fitted to erf(z)/z - 1);
 *                          else sign(z) (1 - 2 Phi(-|z| sqrt 2)) with Phi's tail below
 *   tga_tanhf(u)           tanh in float32: |u| < 0.625: u + u^3 Q(u^2); else
 *                          sign(u) (1 - 2 / (1 + exp(2|u|))) with tga_expf
 *   tga_rm_ncdf(x, &e, &f, &es, &sc)
 *                          Phi(x) = P(X <= x), X ~ N(0, 1), and e = exp(-x^2 / 2):
 *                          |x| < 0.5: 0.5 + x R(x^2) (R fitted to (Phi(x) - 0.5) / x);
 *                          else Phi(-|x|) = e F(|x|), F(a) = Phi(-a) exp(a^2 / 2) fitted by
 *                          polynomials in a - 1.375 on [0.5, 2.25), in a - 3.625 on [2.25, 5),
 *                          and as G(1 / a^2) / a on [5, 16] (no division inside the fitted
 *                          variable: its rounding is not amplified); Phi(x) = 1 - Phi(-x), x > 0.
 *                          x^2 / 2 is split as h + d, h = xh^2 / 2 exact (xh: x's top 12 bits),
 *                          exp(-x^2/2) = exp(-h) exp(-d) (a quartic in d, |d| < 1/16), so
 *                          the tail keeps its relative accuracy down to the underflow;
 *                          f = F(|x|) (Phi(-|x|) = e f for |x| >= 0.5); e = es sc,
 *                          sc = exp(-16) where x^2 / 2 > 64 (es stays normal), else 1.
 * All coefficients fitted in float64 (mpmath reference, Lawson-weighted least squares in
 * relative error on Chebyshev nodes, rounded to float32 one at a time, the rest refitted).
 * Max errors on a dense grid (tests/test_isa_variants.py, every ISA): erf 1.1 ulp, tanh 1.2,
 * GELU 3.9, dy/dx 3.8 ulp of its larger term; tanh form 2.7 (1 + 2|u|) ulp (u's rounding).
 * Branch-free (both sides computed, then selected) so the loops vectorise.
 * The GELU loops: exact  y = x Phi(x),  dy/dx = Phi(x) + x phi(x), phi = e / sqrt(2 pi);
 * tanh  y = 0.5 x (1 + tanh u) = x / (1 + exp(-2u)),  u = sqrt(2/pi) (x + 0.044715 x^3),
 * dy/dx = s (1 + 2 x (1 - s) u'),  s = 1 / (1 + exp(-2u)),  1 - s = exp(-2u) s  (the sigmoid
 * form: no cancellation in 1 + tanh u for x < 0). Limits: GELU(-inf) = -0, GELU(inf) = inf,
 * dy/dx(-inf) = 0, dy/dx(inf) = 1, NaN stays NaN. */
static inline float tga_rm_ncdf(float x, float *e_out, float *f_out, float *es_out,
                                 float *sc_out) {
    float a = x < 0.0f ? -x : x, ac, xh, xl, h, d, e, es, sc, ed, t, w, ia, p1, p2, p3, tail;
    float z2, r, small;
    int32_t bits;
    ac = a < 16.0f ? a : 16.0f;                    /* Phi(-16) = 0 in float; inf, NaN -> 16 */
    memcpy(&bits, &ac, sizeof bits);
    bits &= (int32_t)0xfffff000;
    memcpy(&xh, &bits, sizeof xh);                 /* 12 significant bits: xh * xh exact */
    xl = ac - xh;
    h = 0.5f * (xh * xh);
    d = 0.5f * (xl * (ac + xh));                   /* x^2 / 2 = h + d, 0 <= d < 1/16 */
    ed = 1.0f - d * (1.0f - d * (0.5f - d * (0.166666672f - d * 0.0416666679f)));
    sc = h > 64.0f ? 1.12535176e-07f : 1.0f;       /* exp(-16): es normal where e is not */
    es = tga_expf(h > 64.0f ? 16.0f - h : -h) * ed;   /* (16 - h exact for h > 64) */
    e = es * sc;
    w = ac - 1.375f;                               /* a in [0.5, 2.25) */
    p1 = -9.675408e-06f;
    p1 = p1 * w + 3.887397e-05f;
    p1 = p1 * w - 0.00013351029f;
    p1 = p1 * w + 0.00047029508f;
    p1 = p1 * w - 0.0015789879f;
    p1 = p1 * w + 0.00499508f;
    p1 = p1 * w - 0.014765375f;
    p1 = p1 * w + 0.040284883f;
    p1 = p1 * w - 0.099687524f;
    p1 = p1 * w + 0.21763982f;
    w = ac - 3.625f;                               /* a in [2.25, 5) */
    p2 = -8.645595e-08f;
    p2 = p2 * w + 4.803918e-07f;
    p2 = p2 * w - 2.2698136e-06f;
    p2 = p2 * w + 1.1630504e-05f;
    p2 = p2 * w - 5.8168458e-05f;
    p2 = p2 * w + 0.00028086847f;
    p2 = p2 * w - 0.0013091457f;
    p2 = p2 * w + 0.005869236f;
    p2 = p2 * w - 0.025203306f;
    p2 = p2 * w + 0.103100404f;
    ia = 1.0f / (ac > 5.0f ? ac : 5.0f);           /* a >= 5: G(1 / a^2) / a */
    w = ia * ia;
    p3 = -124.702286f;
    p3 = p3 * w + 32.57111f;
    p3 = p3 * w - 5.791416f;
    p3 = p3 * w + 1.1947287f;
    p3 = p3 * w - 0.39893165f;
    p3 = p3 * w + 0.39894226f;
    t = ac < 2.25f ? p1 : (ac < 5.0f ? p2 : ia * p3);
    tail = e * t;                                  /* Phi(-|x|) */
    z2 = x * x;
    r = 0.0004673573f;
    r = r * z2 - 0.0013655273f;
    r = r * z2 + 0.010001626f;
    r = r * z2 - 0.0664918f;
    r = r * z2 + 0.3989423f;
    small = 0.5f + x * r;
    *e_out = e;
    *f_out = t;
    *es_out = es;
    *sc_out = sc;
    return a < 0.5f ? small : (x < 0.0f ? tail : 1.0f - tail);
}

static inline float tga_erff(float z) {
    float a = z < 0.0f ? -z : z, z2 = z * z, p, e, f, es, sc, tail, big;
    p = 8.418867e-05f;
    p = p * z2 - 0.00081506034f;
    p = p * z2 + 0.005201247f;
    p = p * z2 - 0.026859187f;
    p = p * z2 + 0.11283683f;
    p = p * z2 - 0.37612632f;
    p = p * z2 + 0.12837917f;
    tail = tga_rm_ncdf(-(a > 0.921875f ? a : 0.921875f) * 1.41421356f, &e, &f, &es, &sc);
    big = 1.0f - 2.0f * tail;
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

/* GELU and its derivative at x, exact (erf) form. For x <= -0.5 (Phi = e f):
 * y = (x f) e, dy/dx = e (f + x / sqrt(2 pi)), e = es sc applied last (only y / dy/dx
 * round to subnormal, not e). */
static inline float tga_rm_gelu_exact(float x, float *grad) {
    float e, f, es, sc, phi = tga_rm_ncdf(x, &e, &f, &es, &sc), xc, y, g;
    xc = x < -16.0f ? -16.0f : (x > 16.0f ? 16.0f : x);   /* +-inf -> +-16: the limits */
    y = x <= -0.5f ? ((xc * f) * es) * sc : x * phi;
    g = x <= -0.5f ? (es * (f + xc * 0.398942280f)) * sc : phi + xc * (e * 0.398942280f);
    *grad = x != x ? x : g;
    return x != x ? x : y;
}

/* GELU and its derivative at x, tanh form, through s = 1 / (1 + exp(-2u)) */
static inline float tga_rm_gelu_tanh(float x, float *grad) {
    float xc = x < -16.0f ? -16.0f : (x > 16.0f ? 16.0f : x), x2 = xc * xc, v, c, m, den, es, y, g;
    v = -xc * (1.59576912f + 0.0713548162f * x2);               /* -2u */
    c = v > 64.0f ? 1.12535176e-07f : 1.0f;        /* exp(-16): keeps exp(-2u) finite where */
    m = tga_expf(v > 64.0f ? v - 16.0f : v);       /* y is not 0 (v - 16 exact for v > 64) */
    den = c + m;                                   /* c / s; inf for x << 0 */
    es = m < 3.0e38f ? m / den : 1.0f;             /* 1 - s */
    y = x > 16.0f ? x : (xc * c) / den;            /* divisions: s may be subnormal, y not */
    g = ((1.0f + xc * es * (1.59576912f + 0.214064449f * x2)) * c) / den;
    *grad = x != x ? x : g;
    return x != x ? x : y;
}

/* The loops, one copy per ISA: y = gelu(x) (y may be x); dx = dout gelu'(x) (dx may be dout);
 * y = erf(x) and y = tanh(x) (for the tests). */
#define TGA_RM_DEFINE_GELU(SFX, ATTR)                                                        \
    ATTR static void tga_rm_gelu_fwd##SFX(float *y, const float *x, int tanh_form,          \
                                          Py_ssize_t n) {                                    \
        Py_ssize_t j;                                                                        \
        float g_;                                                                            \
        if (tanh_form)                                                                       \
            for (j = 0; j < n; j++) y[j] = tga_rm_gelu_tanh(x[j], &g_);                      \
        else                                                                                 \
            for (j = 0; j < n; j++) y[j] = tga_rm_gelu_exact(x[j], &g_);                     \
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
                tga_rm_gelu_exact(x[j], &g_);                                                \
                dx[j] = dout[j] * g_;                                                        \
            }                                                                                \
    }                                                                                        \
    ATTR static void tga_rm_erf##SFX(float *y, const float *x, Py_ssize_t n) {              \
        Py_ssize_t j;                                                                        \
        for (j = 0; j < n; j++) y[j] = tga_erff(x[j]);                                       \
    }                                                                                        \
    ATTR static void tga_rm_tanh##SFX(float *y, const float *x, Py_ssize_t n) {             \
        Py_ssize_t j;                                                                        \
        for (j = 0; j < n; j++) y[j] = tga_tanhf(x[j]);                                      \
    }

TGA_RM_DEFINE_GELU(_generic, )
#if TGA_RM_X86
TGA_RM_DEFINE_GELU(_avx2, __attribute__((target("avx2,fma"))))
TGA_RM_DEFINE_GELU(_avx512, __attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma"))))
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
    void (*ln_bwd)(float *, float *, float *, const float *, const float *, const float *,
                   float, float, Py_ssize_t);
} tga_rowmath_t;

#define TGA_RM_TABLE(NAME, SFX)                                                              \
    {NAME, tga_rm_max##SFX, tga_rm_exp_sum##SFX, tga_rm_sum##SFX, tga_rm_dot##SFX,           \
     tga_rm_sqdev##SFX, tga_rm_axpb##SFX, tga_rm_shift##SFX, tga_rm_softmax_bwd##SFX,        \
     tga_rm_log_softmax_bwd##SFX, tga_rm_ln_fwd##SFX, tga_rm_ln_bwd##SFX}

static tga_rowmath_t tga_rm = TGA_RM_TABLE("generic", _generic);

/* The sets compiled in, widest first, and whether this CPU runs set `index` (0 past the end). */
#if TGA_RM_X86
static const char *const tga_rowmath_names[] = {"avx512", "avx2", "generic"};
#define TGA_RM_N_ISAS 3
#else
static const char *const tga_rowmath_names[] = {"generic"};
#define TGA_RM_N_ISAS 1
#endif

static inline int tga_rowmath_supported(int index) {
    const char *name;
    if (index < 0 || index >= TGA_RM_N_ISAS) return 0;
    name = tga_rowmath_names[index];
#if TGA_RM_X86
    __builtin_cpu_init();
    if (strcmp(name, "avx512") == 0)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")
               && __builtin_cpu_supports("avx512vl");
    if (strcmp(name, "avx2") == 0)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return strcmp(name, "generic") == 0;
}

/* The GELU loops of the set named `isa` (tga_rm.isa at the call: one switch for all). */
typedef struct {
    void (*gelu_fwd)(float *, const float *, int, Py_ssize_t);
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

static inline const char *tga_rowmath_name(int index) { return tga_rowmath_names[index]; }

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
