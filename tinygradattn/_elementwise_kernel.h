/* float32 elementwise vector math of the "rows" kernel family: exp, and the GELU / erf / tanh
 * loops of _elementwise.pyx (GELU forward and backward) and of _core.pyx's GEMM epilogue
 * (GELU applied to each finished stripe). Flat arrays of n floats; the callers split them
 * into one contiguous slice per thread (nothing here is threaded).
 *
 *   tga_expf(x)                 exp in float32, ~1 ulp (Cephes polynomial on [-ln2/2, ln2/2]),
 *                               branch-free so loops over it vectorise; exp(-inf) = 0,
 *                               exp(+inf) = inf, NaN stays NaN, subnormal results kept
 *   tga_rm_gelu_for(isa)        the GELU / erf / tanh loops of set `isa`: the generic set in
 *                               plain C, AVX2 and AVX-512 in intrinsics (details below)
 *
 * The ISA is the "rows" family's (tga_rm.isa of _rows_kernel.h at the call: one switch).
 */
#ifndef TGA_EW_BODY
#ifndef TGA_ELEMENTWISE_KERNEL_H
#define TGA_ELEMENTWISE_KERNEL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <math.h>

#include "_cpu_features.h"

#define TGA_RM_X86 TGA_CPU_X86
#if TGA_RM_X86
#include <immintrin.h>
#endif

/* -fno-trapping-math for this header only: it changes no result (rounding, NaN and inf are
 * IEEE as before; only FP exception flags may differ), but without it gcc will not turn the
 * clamps of tga_expf into vector selects and the exp loops stay scalar. */
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
 * whole body per range (slower loops) */
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
 * every set (the bodies after #else below, included once per set here).
 * AVX2 and AVX-512 have their own GELU loops below. */



#define TGA_EW_CAT_(a, b) a##b
#define TGA_EW_CAT(a, b) TGA_EW_CAT_(a, b)
#define TGA_EW_BODY 1
#define TGA_EW_WITH_GELU 1
#define TGA_EW_TARGET
#define TGA_EW_FMA 0
#define TGA_EW_SFX _generic
#include "_elementwise_kernel.h"
#undef TGA_EW_WITH_GELU
#define TGA_EW_WITH_GELU 0
#if TGA_RM_X86
#define TGA_EW_TARGET __attribute__((target("avx2,fma")))
#define TGA_EW_FMA 1
#define TGA_EW_SFX _avx2
#include "_elementwise_kernel.h"
#define TGA_EW_TARGET __attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma")))
#define TGA_EW_FMA 1
#define TGA_EW_SFX _avx512
#include "_elementwise_kernel.h"

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
 * a^2 = h2 gains nothing here and is 0.4 ulp less accurate). */
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
#endif /* TGA_RM_X86 */
#undef TGA_EW_WITH_GELU
#undef TGA_EW_BODY

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

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

#endif /* TGA_ELEMENTWISE_KERNEL_H */

#else /* TGA_EW_BODY: one instantiation, for TGA_EW_TARGET, TGA_EW_FMA (1: the ISA has FMA),
       * TGA_EW_SFX (_generic, _avx2, _avx512) and TGA_EW_WITH_GELU (1: the GELU loops too) */

#define TGA_EW_FN(name) TGA_EW_CAT(name, TGA_EW_SFX)

#if TGA_EW_WITH_GELU
TGA_EW_TARGET
static void TGA_EW_FN(tga_rm_gelu_fwd)(float *y, float *grad, const float *x, int tanh_form,
                                       Py_ssize_t n) {
    Py_ssize_t j;
    float g_, y_;
    for (j = 0; j < n; j++) {
        y_ = tanh_form ? tga_rm_gelu_tanh(x[j], &g_) : tga_rm_gelu_exact(x[j], &g_, TGA_EW_FMA);
        y[j] = y_;
        if (grad != NULL) grad[j] = g_;
    }
}
TGA_EW_TARGET
static void TGA_EW_FN(tga_rm_gelu_bwd)(float *dx, const float *dout, const float *x, int tanh_form,
                                       Py_ssize_t n) {
    Py_ssize_t j;
    float g_;
    if (tanh_form)
        for (j = 0; j < n; j++) {
            tga_rm_gelu_tanh(x[j], &g_);
            dx[j] = dout[j] * g_;
        }
    else
        for (j = 0; j < n; j++) {
            tga_rm_gelu_exact(x[j], &g_, TGA_EW_FMA);
            dx[j] = dout[j] * g_;
        }
}
#endif /* TGA_EW_WITH_GELU */
TGA_EW_TARGET static void TGA_EW_FN(tga_rm_erf)(float *y, const float *x, Py_ssize_t n) {
    Py_ssize_t j;
    for (j = 0; j < n; j++) y[j] = tga_erff(x[j], TGA_EW_FMA);
}
TGA_EW_TARGET static void TGA_EW_FN(tga_rm_tanh)(float *y, const float *x, Py_ssize_t n) {
    Py_ssize_t j;
    for (j = 0; j < n; j++) y[j] = tga_tanhf(x[j]);
}

#undef TGA_EW_FN
#undef TGA_EW_TARGET
#undef TGA_EW_FMA
#undef TGA_EW_SFX
#endif /* TGA_EW_BODY */
