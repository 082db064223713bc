/* The AVX-512 set of _rows_kernel.h's row primitives, in intrinsics (included by
 * _rows_kernel.h inside its x86 section; TGA_RM_ATTR512 / TGA_RM_V / TGA_RM_TAIL16 come from
 * _elementwise_kernel.h).
 *
 * Same contracts and the same summation structure as the C bodies of _rows_kernel.h:
 *   max       2 x 16 lanes, NaN entries skipped (vmaxps returns its second operand)
 *   exp_sum   chunks of 256, 16 float lanes a chunk, chunk sums in double
 *   sum/sqdev 16 double lanes (two zmm)         dot  as exp_sum
 *   moments   4 accumulators of 16 float lanes (one zmm each), as _rows_kernel.h
 * The compiler's vectorised C spent more here (scalar tails in double for C = 65): exp
 * uses vrndscaleps for n and vscalefps for 2^n (one rounding, the
 * subnormal range included, so no clamp below), and every tail is one masked block. Lanes
 * are reduced pairwise (halves added: 8, 4, 2, 1) as TGA_RM_REDUCE does. */
#ifndef TGA_RM_SHORT_BODY
#ifndef TGA_ROWS_KERNEL_AVX512_H
#define TGA_ROWS_KERNEL_AVX512_H

#define TGA_RM_VD(c) _mm512_set1_pd(c)

/* exp(x) in float32, the Cephes polynomial of tga_expf: n = round(x / ln2), r = x - n ln2 in
 * two steps, 2^n by vscalefps. x > 89 is clamped there (inf; NaN stays: vminps returns its
 * second operand); lanes with x < -104 (exp rounds to 0) are zeroed instead of computed, so
 * -inf entries (masks, padded tails) cost no subnormal-result microcode assist. */
TGA_RM_ATTR512 static inline __m512 tga_rm_exp16(__m512 x) {
    __mmask16 keep = _mm512_cmp_ps_mask(x, TGA_RM_V(-104.0f), _CMP_NLT_UQ);  /* NaN kept */
    __m512 xc = _mm512_maskz_mov_ps(keep, _mm512_min_ps(TGA_RM_V(89.0f), x));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, TGA_RM_V(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, TGA_RM_V(0.693359375f), xc);
    __m512 p;
    r = _mm512_fnmadd_ps(n, TGA_RM_V(-2.12194440e-4f), r);
    p = _mm512_fmadd_ps(TGA_RM_V(1.9875691500e-4f), r, TGA_RM_V(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, TGA_RM_V(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, TGA_RM_V(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, TGA_RM_V(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, TGA_RM_V(5.0000001201e-1f));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, TGA_RM_V(1.0f)));
    return _mm512_maskz_scalef_ps(keep, p, n);
}

/* sum of 16 float lanes, pairwise */
TGA_RM_ATTR512 static inline float tga_rm_hsum16(__m512 v) {
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
}

/* sum of 16 double lanes (lo: lanes 0-7, hi: 8-15), pairwise */
TGA_RM_ATTR512 static inline double tga_rm_hsum16d(__m512d lo, __m512d hi) {
    __m512d v = _mm512_add_pd(lo, hi);
    __m256d h = _mm256_add_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1));
    __m128d q = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
    return _mm_cvtsd_f64(_mm_add_sd(q, _mm_unpackhi_pd(q, q)));
}

TGA_RM_ATTR512 static float tga_rm_max_avx512(const float *x, Py_ssize_t n) {
    __m512 m0 = TGA_RM_V(x[0]), m1 = m0;
    __m256 h;
    __m128 q;
    Py_ssize_t j = 0;
    for (; j + 32 <= n; j += 32) {
        m0 = _mm512_max_ps(_mm512_loadu_ps(x + j), m0);
        m1 = _mm512_max_ps(_mm512_loadu_ps(x + j + 16), m1);
    }
    if (j + 16 <= n) {
        m0 = _mm512_max_ps(_mm512_loadu_ps(x + j), m0);
        j += 16;
    }
    if (j < n)   /* padded with x[0] */
        m1 = _mm512_max_ps(_mm512_mask_loadu_ps(TGA_RM_V(x[0]), TGA_RM_TAIL16(n - j), x + j), m1);
    m0 = _mm512_max_ps(m1, m0);
    h = _mm256_max_ps(_mm512_extractf32x8_ps(m0, 1), _mm512_castps512_ps256(m0));
    q = _mm_max_ps(_mm256_extractf128_ps(h, 1), _mm256_castps256_ps128(h));
    q = _mm_max_ps(_mm_movehl_ps(q, q), q);
    q = _mm_max_ss(_mm_movehdup_ps(q), q);
    return _mm_cvtss_f32(q);
}

/* y[j] = exp(x[j] - shift) (y may be NULL, or x itself); returns the sum */
TGA_RM_ATTR512 static double tga_rm_exp_sum_avx512(float *y, const float *x, float shift,
                                                    Py_ssize_t n) {
    const __m512 s = TGA_RM_V(shift);
    double total = 0.0;
    Py_ssize_t j0, j, len;
    __m512 f, e;
    __mmask16 k;
    for (j0 = 0; j0 < n; j0 += 256) {
        len = n - j0 < 256 ? n - j0 : 256;
        f = _mm512_setzero_ps();
        for (j = j0; j + 16 <= j0 + len; j += 16) {
            e = tga_rm_exp16(_mm512_sub_ps(_mm512_loadu_ps(x + j), s));
            if (y != NULL) _mm512_storeu_ps(y + j, e);
            f = _mm512_add_ps(f, e);
        }
        if (j < j0 + len) {        /* padded with -inf: exp 0 */
            k = TGA_RM_TAIL16(j0 + len - j);
            e = tga_rm_exp16(_mm512_sub_ps(_mm512_mask_loadu_ps(TGA_RM_V(-INFINITY), k, x + j), s));
            if (y != NULL) _mm512_mask_storeu_ps(y + j, k, e);
            f = _mm512_add_ps(f, e);
        }
        total += (double)tga_rm_hsum16(f);
    }
    return total;
}

/* sum_j (x[j] - shift) in double */
TGA_RM_ATTR512 static double tga_rm_sum_avx512(const float *x, float shift, Py_ssize_t n) {
    const __m512d s = TGA_RM_VD((double)shift);
    __m512d lo = _mm512_setzero_pd(), hi = lo;
    __m512 v;
    Py_ssize_t j = 0;
    for (; j < n; j += 16) {
        v = j + 16 <= n ? _mm512_loadu_ps(x + j)
                        : _mm512_mask_loadu_ps(TGA_RM_V(shift), TGA_RM_TAIL16(n - j), x + j);
        lo = _mm512_add_pd(lo, _mm512_sub_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(v)), s));
        hi = _mm512_add_pd(hi, _mm512_sub_pd(_mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)), s));
    }
    return tga_rm_hsum16d(lo, hi);
}

TGA_RM_ATTR512 static double tga_rm_dot_avx512(const float *a, const float *b, Py_ssize_t n) {
    double total = 0.0;
    Py_ssize_t j0, j, len;
    __m512 f;
    __mmask16 k;
    for (j0 = 0; j0 < n; j0 += 256) {
        len = n - j0 < 256 ? n - j0 : 256;
        f = _mm512_setzero_ps();
        for (j = j0; j + 16 <= j0 + len; j += 16)
            f = _mm512_fmadd_ps(_mm512_loadu_ps(a + j), _mm512_loadu_ps(b + j), f);
        if (j < j0 + len) {
            k = TGA_RM_TAIL16(j0 + len - j);
            f = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, a + j), _mm512_maskz_loadu_ps(k, b + j), f);
        }
        total += (double)tga_rm_hsum16(f);
    }
    return total;
}

/* sum_j (x[j] - mean)^2 in double */
TGA_RM_ATTR512 static double tga_rm_sqdev_avx512(const float *x, double mean, Py_ssize_t n) {
    const __m512d m = TGA_RM_VD(mean);
    __m512d lo = _mm512_setzero_pd(), hi = lo, d;
    __m512 v;
    __mmask16 k = 0xffff;
    Py_ssize_t j = 0;
    for (; j < n; j += 16) {
        if (j + 16 > n) k = TGA_RM_TAIL16(n - j);
        v = _mm512_maskz_loadu_ps(k, x + j);
        d = _mm512_maskz_sub_pd((__mmask8)k, _mm512_cvtps_pd(_mm512_castps512_ps256(v)), m);
        lo = _mm512_fmadd_pd(d, d, lo);
        d = _mm512_maskz_sub_pd((__mmask8)(k >> 8), _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)), m);
        hi = _mm512_fmadd_pd(d, d, hi);
    }
    return tga_rm_hsum16d(lo, hi);
}

/* _rows_kernel.h's moments: the same blocks, accumulators, lanes and order (the tail's masked
 * lanes add zeros) */
#define TGA_RM_MOM_LOOP512(x, j0, j1, BODY)                                                  \
    do {                                                                                     \
        Py_ssize_t j_ = (j0);                                                                \
        __m512 v0_, v1_, v2_, v3_;                                                           \
        for (; j_ + 64 <= (j1); j_ += 64) {                                                  \
            v0_ = _mm512_loadu_ps((x) + j_);                                                 \
            v1_ = _mm512_loadu_ps((x) + j_ + 16);                                            \
            v2_ = _mm512_loadu_ps((x) + j_ + 32);                                            \
            v3_ = _mm512_loadu_ps((x) + j_ + 48);                                            \
            BODY(0, v0_, 0xffff);                                                            \
            BODY(1, v1_, 0xffff);                                                            \
            BODY(2, v2_, 0xffff);                                                            \
            BODY(3, v3_, 0xffff);                                                            \
        }                                                                                    \
        for (; j_ + 16 <= (j1); j_ += 16) {                                                  \
            v0_ = _mm512_loadu_ps((x) + j_);                                                 \
            BODY(0, v0_, 0xffff);                                                            \
        }                                                                                    \
        if (j_ < (j1)) {                                                                     \
            v0_ = _mm512_maskz_loadu_ps(TGA_RM_TAIL16((j1) - j_), (x) + j_);                 \
            BODY(0, v0_, TGA_RM_TAIL16((j1) - j_));                                          \
        }                                                                                    \
    } while (0)
/* (a0 + a1) + (a2 + a3), lanes pairwise (hsum16), as a double */
#define TGA_RM_MOM_HSUM512(a)                                                                \
    ((double)tga_rm_hsum16(_mm512_add_ps(_mm512_add_ps(a[0], a[1]),                          \
                                         _mm512_add_ps(a[2], a[3]))))

TGA_RM_ATTR512 static void tga_rm_moments_avx512(const float *x, Py_ssize_t n, double *mean,
                                                  double *var) {
    __m512 a[4], b[4], negm;
    float mf;
    double s = 0.0, c = 0.0, q = 0.0;
    Py_ssize_t j0, j1;
    int u;
#define TGA_RM_MOM_SUM(U, V, K) a[U] = _mm512_add_ps(a[U], V)
#define TGA_RM_MOM_DEV(U, V, K)                                                              \
    do {                                                                                     \
        __m512 d_ = _mm512_maskz_add_ps(K, V, negm);         /* x - mf; 0 past the tail */   \
        a[U] = _mm512_add_ps(a[U], d_);                                                      \
        b[U] = _mm512_fmadd_ps(d_, d_, b[U]);                                                \
    } while (0)
    for (j0 = 0; j0 < n; j0 += TGA_RM_MOM_CHUNK) {
        j1 = n - j0 < TGA_RM_MOM_CHUNK ? n : j0 + TGA_RM_MOM_CHUNK;
        for (u = 0; u < 4; u++) a[u] = _mm512_setzero_ps();
        TGA_RM_MOM_LOOP512(x, j0, j1, TGA_RM_MOM_SUM);
        s += TGA_RM_MOM_HSUM512(a);
    }
    mf = (float)(s / n);
    negm = TGA_RM_V(-mf);
    if (isfinite(mf))
        for (j0 = 0; j0 < n; j0 += TGA_RM_MOM_CHUNK) {
            j1 = n - j0 < TGA_RM_MOM_CHUNK ? n : j0 + TGA_RM_MOM_CHUNK;
            for (u = 0; u < 4; u++) a[u] = b[u] = _mm512_setzero_ps();
            TGA_RM_MOM_LOOP512(x, j0, j1, TGA_RM_MOM_DEV);
            c += TGA_RM_MOM_HSUM512(a);
            q += TGA_RM_MOM_HSUM512(b);
        }
#undef TGA_RM_MOM_SUM
#undef TGA_RM_MOM_DEV
    if (!isfinite(mf) || !isfinite(c) || !isfinite(q)) {
        *mean = tga_rm_sum_avx512(x, 0.0f, n) / n;
        *var = tga_rm_sqdev_avx512(x, *mean, n) / n;
        return;
    }
    TGA_RM_MOM_FINISH(c, q, mf, n, mean, var);
}
#undef TGA_RM_MOM_LOOP512
#undef TGA_RM_MOM_HSUM512

/* The elementwise bodies: one 16-lane step per block, the tail masked. BODY(j, k) with k the
 * lane mask (all ones but in the tail); LOAD(p) loads p + j under k. */
#define TGA_RM_LOAD(p) _mm512_maskz_loadu_ps(k, (p) + j)
#define TGA_RM_ROWLOOP(BODY)                                                                 \
    do {                                                                                     \
        __mmask16 k = 0xffff;                                                                \
        Py_ssize_t j = 0;                                                                    \
        for (; j < n; j += 16) {                                                             \
            if (j + 16 > n) k = TGA_RM_TAIL16(n - j);                                        \
            BODY;                                                                            \
        }                                                                                    \
    } while (0)

TGA_RM_ATTR512 static void tga_rm_axpb_avx512(float *y, float scale, float offset, Py_ssize_t n) {
    const __m512 s = TGA_RM_V(scale), o = TGA_RM_V(offset);
    TGA_RM_ROWLOOP(_mm512_mask_storeu_ps(y + j, k, _mm512_fmadd_ps(TGA_RM_LOAD(y), s, o)));
}

TGA_RM_ATTR512 static void tga_rm_shift_avx512(float *y, const float *x, float a, float b,
                                                Py_ssize_t n) {
    const __m512 va = TGA_RM_V(a), vb = TGA_RM_V(b);
    TGA_RM_ROWLOOP(_mm512_mask_storeu_ps(y + j, k,
                                         _mm512_sub_ps(_mm512_sub_ps(TGA_RM_LOAD(x), va), vb)));
}

TGA_RM_ATTR512 static void tga_rm_softmax_bwd_avx512(float *dx, const float *y, const float *dout,
                                                      float dot, Py_ssize_t n) {
    const __m512 d = TGA_RM_V(dot);
    TGA_RM_ROWLOOP(_mm512_mask_storeu_ps(
        dx + j, k, _mm512_mul_ps(TGA_RM_LOAD(y), _mm512_sub_ps(TGA_RM_LOAD(dout), d))));
}

TGA_RM_ATTR512 static void tga_rm_log_softmax_bwd_avx512(float *dx, const float *y,
                                                          const float *dout, float total,
                                                          Py_ssize_t n) {
    const __m512 t = TGA_RM_V(total);
    TGA_RM_ROWLOOP(_mm512_mask_storeu_ps(
        dx + j, k, _mm512_fnmadd_ps(tga_rm_exp16(TGA_RM_LOAD(y)), t, TGA_RM_LOAD(dout))));
}

TGA_RM_ATTR512 static void tga_rm_ln_fwd_avx512(float *y, const float *x, const float *w,
                                                 const float *b, float mean, float rstd,
                                                 Py_ssize_t n) {
    const __m512 m = TGA_RM_V(mean), r = TGA_RM_V(rstd);
    TGA_RM_ROWLOOP(_mm512_mask_storeu_ps(
        y + j, k, _mm512_fmadd_ps(_mm512_mul_ps(_mm512_sub_ps(TGA_RM_LOAD(x), m), r),
                                  TGA_RM_LOAD(w), TGA_RM_LOAD(b))));
}

/* tga_rm_ln_bwd's steps: g = dout w stored in dx and reloaded (one rounded g, see there) */
TGA_RM_ATTR512 static void tga_rm_ln_bwd_avx512(float *dx, float *dw_acc, float *db_acc,
                                                 const float *dout, const float *x,
                                                 const float *w, float mean, float rstd,
                                                 Py_ssize_t n) {
    const __m512 m = TGA_RM_V(mean), r = TGA_RM_V(rstd);
    __m512 sg = _mm512_setzero_ps(), sgx = sg, c1, c2;
    if (dx == NULL) {
        if (dw_acc != NULL)
            TGA_RM_ROWLOOP({
                __m512 go = TGA_RM_LOAD(dout);
                __m512 xh = _mm512_mul_ps(_mm512_sub_ps(TGA_RM_LOAD(x), m), r);
                _mm512_mask_storeu_ps(dw_acc + j, k, _mm512_fmadd_ps(go, xh, TGA_RM_LOAD(dw_acc)));
                _mm512_mask_storeu_ps(db_acc + j, k, _mm512_add_ps(TGA_RM_LOAD(db_acc), go));
            });
        return;
    }
    TGA_RM_ROWLOOP({          /* one pass: dw, db partial rows; g into dx; the row sums */
        __m512 go = TGA_RM_LOAD(dout);
        __m512 xh = _mm512_mul_ps(_mm512_sub_ps(TGA_RM_LOAD(x), m), r);
        __m512 g = _mm512_mul_ps(go, TGA_RM_LOAD(w));
        if (dw_acc != NULL) {
            _mm512_mask_storeu_ps(dw_acc + j, k, _mm512_fmadd_ps(go, xh, TGA_RM_LOAD(dw_acc)));
            _mm512_mask_storeu_ps(db_acc + j, k, _mm512_add_ps(TGA_RM_LOAD(db_acc), go));
        }
        _mm512_mask_storeu_ps(dx + j, k, g);
        sg = _mm512_add_ps(sg, g);
        sgx = _mm512_fmadd_ps(g, xh, sgx);
    });
    c1 = TGA_RM_V(tga_rm_hsum16(sg) / (float)n);
    c2 = TGA_RM_V(rstd * (tga_rm_hsum16(sgx) / (float)n));
    TGA_RM_ROWLOOP({
        __m512 xh = _mm512_mul_ps(_mm512_sub_ps(TGA_RM_LOAD(x), m), r);
        _mm512_mask_storeu_ps(dx + j, k, _mm512_fnmadd_ps(
            xh, c2, _mm512_mul_ps(r, _mm512_sub_ps(TGA_RM_LOAD(dx), c1))));
    });
}

/* All-lane reductions: the butterfly pairs lanes i and i^8, i^4, i^2, i^1 (the pairs and the
 * order of tga_rm_hsum16, so the same sum), and leaves the result in every lane. */
#define TGA_RM_BUTTERFLY16(OP, v)                                                            \
    do {                                                                                     \
        v = OP(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(1, 0, 3, 2)));                      \
        v = OP(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(2, 3, 0, 1)));                      \
        v = OP(v, _mm512_permute_ps(v, _MM_SHUFFLE(1, 0, 3, 2)));                            \
        v = OP(v, _mm512_permute_ps(v, _MM_SHUFFLE(2, 3, 0, 1)));                            \
    } while (0)

/* The first steps of a softmax over R rows (R = 1, 2; stride n) of at most NV x 16 floats
 * (NV = 1..8), held in registers: v[r][i] = exp(x - max) (the tail lanes 0), m[r] = the row
 * max and f[r] = the sum of v[r], each in every lane. Short rows (attention's C = 64, a char
 * vocabulary's 65) spent most of their time in the max / exp_sum / axpb calls, on the
 * latency of their horizontal reductions and the scalar round trips between them; here x is
 * read once, with no calls, and two rows side by side overlap those chains. The sum is
 * exp_sum's (16 float lanes in index order, pairwise-reduced). */
#define TGA_RM_EXP_STAGE(R, NV, x, n, t, v, m, f)                                           \
    do {                                                                                     \
        int i_, r_;                                                                          \
        for (r_ = 0; r_ < R; r_++) {                                                         \
            for (i_ = 0; i_ < NV - 1; i_++) v[r_][i_] = _mm512_loadu_ps(x + r_ * n + 16 * i_);\
            v[r_][NV - 1] = _mm512_mask_loadu_ps(TGA_RM_V(-INFINITY), t,                     \
                                                 x + r_ * n + 16 * (NV - 1));                \
            m[r_] = v[r_][0];                                                                \
            for (i_ = 1; i_ < NV; i_++) m[r_] = _mm512_max_ps(v[r_][i_], m[r_]); /* NaN skip */\
        }                                                                                    \
        for (r_ = 0; r_ < R; r_++) TGA_RM_BUTTERFLY16(_mm512_max_ps, m[r_]);                 \
        for (r_ = 0; r_ < R; r_++) {                                                         \
            f[r_] = _mm512_setzero_ps();                                                     \
            for (i_ = 0; i_ < NV; i_++) {                                                    \
                v[r_][i_] = tga_rm_exp16(_mm512_sub_ps(v[r_][i_], m[r_])); /* tail: 0 */     \
                f[r_] = _mm512_add_ps(f[r_], v[r_][i_]);                                     \
            }                                                                                \
        }                                                                                    \
        for (r_ = 0; r_ < R; r_++) TGA_RM_BUTTERFLY16(_mm512_add_ps, f[r_]);                 \
    } while (0)


/* The short-row functions (after #else below), once per (R, NV): R = 1, 2 rows at a time,
 * NV = 1..8 vectors of 16 floats a row; named tga_rm_<fn>_short<R>x<NV>. */
#define TGA_RM_SHORT_FN(name) TGA_RM_CAT(name, TGA_RM_CAT(TGA_RM_CAT(R_, x), NV_))
#define TGA_RM_SHORT_BODY 1
#define NV_ 1
#define R_ 1
#include "_rows_kernel_avx512.h"
#define R_ 2
#include "_rows_kernel_avx512.h"
#undef NV_
#define NV_ 2
#define R_ 1
#include "_rows_kernel_avx512.h"
#define R_ 2
#include "_rows_kernel_avx512.h"
#undef NV_
#define NV_ 3
#define R_ 1
#include "_rows_kernel_avx512.h"
#define R_ 2
#include "_rows_kernel_avx512.h"
#undef NV_
#define NV_ 4
#define R_ 1
#include "_rows_kernel_avx512.h"
#define R_ 2
#include "_rows_kernel_avx512.h"
#undef NV_
#define NV_ 5
#define R_ 1
#include "_rows_kernel_avx512.h"
#define R_ 2
#include "_rows_kernel_avx512.h"
#undef NV_
#define NV_ 6
#define R_ 1
#include "_rows_kernel_avx512.h"
#define R_ 2
#include "_rows_kernel_avx512.h"
#undef NV_
#define NV_ 7
#define R_ 1
#include "_rows_kernel_avx512.h"
#define R_ 2
#include "_rows_kernel_avx512.h"
#undef NV_
#define NV_ 8
#define R_ 1
#include "_rows_kernel_avx512.h"
#define R_ 2
#include "_rows_kernel_avx512.h"
#undef NV_
#undef TGA_RM_SHORT_BODY

/* Run FN##R##x##NV(args) over the rows (args in terms of the row index i_): in pairs, then a
 * last odd row alone; returns. Falls through for rows over 128 entries. Pairs pay at every
 * NV <= 8 (two rows' reduction chains overlap). */
#define TGA_RM_SHORT_CASE(FN, NV, ...)                                                       \
    case NV:                                                                                 \
        for (; i_ + 2 <= n_rows; i_ += 2) FN##2x##NV(__VA_ARGS__);                           \
        if (i_ < n_rows) FN##1x##NV(__VA_ARGS__);                                            \
        return;
#define TGA_RM_SHORT_ROWS(FN, ...)                                                           \
    do {                                                                                     \
        Py_ssize_t i_ = 0;                                                                   \
        switch ((n + 15) >> 4) {                                                             \
        TGA_RM_SHORT_CASE(FN, 1, __VA_ARGS__)                                                \
        TGA_RM_SHORT_CASE(FN, 2, __VA_ARGS__)                                                \
        TGA_RM_SHORT_CASE(FN, 3, __VA_ARGS__)                                                \
        TGA_RM_SHORT_CASE(FN, 4, __VA_ARGS__)                                                \
        TGA_RM_SHORT_CASE(FN, 5, __VA_ARGS__)                                                \
        TGA_RM_SHORT_CASE(FN, 6, __VA_ARGS__)                                                \
        TGA_RM_SHORT_CASE(FN, 7, __VA_ARGS__)                                                \
        TGA_RM_SHORT_CASE(FN, 8, __VA_ARGS__)                                                \
        }                                                                                    \
    } while (0)

/* rows over 128 entries: the row functions of _rows_kernel.h's body on this set's primitives */
#define TGA_RM_BODY 1
#define TGA_RM_WITH_PRIMS 0
#define TGA_RM_TARGET TGA_RM_ATTR512
#define TGA_RM_PRIM _avx512
#define TGA_RM_SFX _long_avx512
#include "_rows_kernel.h"
#undef TGA_RM_WITH_PRIMS
#undef TGA_RM_BODY

/* The AVX-512 row functions: rows up to 128 entries in registers (above), longer ones by the
 * primitives (_long_avx512). */
TGA_RM_ATTR512 static void tga_rm_softmax_rows_avx512(float *y, const float *x,
                                                       Py_ssize_t n_rows, Py_ssize_t n) {
    TGA_RM_SHORT_ROWS(tga_rm_softmax_short, y + i_ * n, x + i_ * n, n);
    tga_rm_softmax_rows_long_avx512(y, x, n_rows, n);
}

TGA_RM_ATTR512 static void tga_rm_softmax_bwd_rows_avx512(float *dx, const float *y,
                                                           const float *dout,
                                                           Py_ssize_t n_rows, Py_ssize_t n) {
    TGA_RM_SHORT_ROWS(tga_rm_softmax_bwd_short, dx + i_ * n, y + i_ * n, dout + i_ * n, n);
    tga_rm_softmax_bwd_rows_long_avx512(dx, y, dout, n_rows, n);
}

TGA_RM_ATTR512 static void tga_rm_exp_rows_avx512(float *y, float *row_max, double *row_sum,
                                                   const float *x, Py_ssize_t n_rows,
                                                   Py_ssize_t n) {
    TGA_RM_SHORT_ROWS(tga_rm_exp_short, y == NULL ? NULL : y + i_ * n, row_max + i_,
                      row_sum + i_, x + i_ * n, n);
    tga_rm_exp_rows_long_avx512(y, row_max, row_sum, x, n_rows, n);
}

TGA_RM_ATTR512 static void tga_rm_ln_fwd_rows_avx512(float *y, float *mean_out, float *rstd_out,
                                                      const float *x, const float *w,
                                                      const float *b, double eps,
                                                      Py_ssize_t n_rows, Py_ssize_t n) {
    TGA_RM_SHORT_ROWS(tga_rm_ln_fwd_short, y + i_ * n, mean_out + i_, rstd_out + i_,
                      x + i_ * n, w, b, eps, n);
    tga_rm_ln_fwd_rows_long_avx512(y, mean_out, rstd_out, x, w, b, eps, n_rows, n);
}

#undef TGA_RM_SHORT_ROWS
#undef TGA_RM_SHORT_CASE
#undef TGA_RM_SHORT_FN
#undef TGA_RM_EXP_STAGE

#undef TGA_RM_LOAD
#undef TGA_RM_ROWLOOP
#undef TGA_RM_BUTTERFLY16
#endif /* TGA_ROWS_KERNEL_AVX512_H */

#else /* TGA_RM_SHORT_BODY: the functions for R_ rows of at most NV_ x 16 floats */

/* Softmax and its backward over R rows of at most NV x 16 floats, and exp_rows's steps */
TGA_RM_ATTR512 static void TGA_RM_SHORT_FN(tga_rm_softmax_short)(float *y, const float *x,
                                                         Py_ssize_t n) {
    const __mmask16 t = TGA_RM_TAIL16(n - 16 * (NV_ - 1));
    __m512 v[R_][NV_], m[R_], f[R_];
    int i, r;
    TGA_RM_EXP_STAGE(R_, NV_, x, n, t, v, m, f);
    for (r = 0; r < R_; r++) f[r] = _mm512_div_ps(TGA_RM_V(1.0f), f[r]);
    for (r = 0; r < R_; r++) {
        for (i = 0; i < NV_ - 1; i++)
            _mm512_storeu_ps(y + r * n + 16 * i, _mm512_mul_ps(v[r][i], f[r]));
        _mm512_mask_storeu_ps(y + r * n + 16 * (NV_ - 1), t,
                              _mm512_mul_ps(v[r][NV_ - 1], f[r]));
    }
}
/* y = exp(x - max) (y may be NULL); row_max, row_sum: one value a row */
TGA_RM_ATTR512 static void TGA_RM_SHORT_FN(tga_rm_exp_short)(
        float *y, float *row_max, double *row_sum, const float *x, Py_ssize_t n) {
    const __mmask16 t = TGA_RM_TAIL16(n - 16 * (NV_ - 1));
    __m512 v[R_][NV_], m[R_], f[R_];
    int i, r;
    TGA_RM_EXP_STAGE(R_, NV_, x, n, t, v, m, f);
    for (r = 0; r < R_; r++) {
        row_max[r] = _mm512_cvtss_f32(m[r]);
        row_sum[r] = (double)_mm512_cvtss_f32(f[r]);
        if (y == NULL) continue;
        for (i = 0; i < NV_ - 1; i++) _mm512_storeu_ps(y + r * n + 16 * i, v[r][i]);
        _mm512_mask_storeu_ps(y + r * n + 16 * (NV_ - 1), t, v[r][NV_ - 1]);
    }
}
/* dx = y (dout - sum_j dout y) */
TGA_RM_ATTR512 static void TGA_RM_SHORT_FN(tga_rm_softmax_bwd_short)(
        float *dx, const float *y, const float *dout, Py_ssize_t n) {
    const __mmask16 t = TGA_RM_TAIL16(n - 16 * (NV_ - 1));
    __m512 a[R_][NV_], b[R_][NV_], f[R_];
    int i, r;
    for (r = 0; r < R_; r++) {
        for (i = 0; i < NV_ - 1; i++) {
            a[r][i] = _mm512_loadu_ps(dout + r * n + 16 * i);
            b[r][i] = _mm512_loadu_ps(y + r * n + 16 * i);
        }
        a[r][NV_ - 1] = _mm512_maskz_loadu_ps(t, dout + r * n + 16 * (NV_ - 1));
        b[r][NV_ - 1] = _mm512_maskz_loadu_ps(t, y + r * n + 16 * (NV_ - 1));
        f[r] = _mm512_setzero_ps();
        for (i = 0; i < NV_; i++) f[r] = _mm512_fmadd_ps(a[r][i], b[r][i], f[r]);
    }
    for (r = 0; r < R_; r++) TGA_RM_BUTTERFLY16(_mm512_add_ps, f[r]);
    for (r = 0; r < R_; r++) {
        for (i = 0; i < NV_ - 1; i++)
            _mm512_storeu_ps(dx + r * n + 16 * i,
                             _mm512_mul_ps(b[r][i], _mm512_sub_ps(a[r][i], f[r])));
        _mm512_mask_storeu_ps(dx + r * n + 16 * (NV_ - 1), t,
                              _mm512_mul_ps(b[r][NV_ - 1],
                                            _mm512_sub_ps(a[r][NV_ - 1], f[r])));
    }
}

/* Layer norm forward over R rows (R = 1, 2; stride n) of at most NV x 16 floats (NV = 1..8),
 * x held in registers between the passes: the steps and sums of sum / sqdev / ln_fwd
 * (statistics in double, 16 lanes in index order, reduced by tga_rm_hsum16d), so the same
 * results as the primitives' path, with no calls between the passes. The same treatment of
 * the backward gains nothing (its partial dw / db rows go through memory every row), so that
 * stays on ln_bwd. */
TGA_RM_ATTR512 static void TGA_RM_SHORT_FN(tga_rm_ln_fwd_short)(
        float *y, float *mean_out, float *rstd_out, const float *x, const float *w,
        const float *b, double eps, Py_ssize_t n) {
    const __mmask16 t = TGA_RM_TAIL16(n - 16 * (NV_ - 1));
    __m512 v[R_][NV_], mf, rf;
    __m512d lo[R_], hi[R_], m, d;
    double mean[R_], rstd[R_];
    __mmask16 k;
    int i, r;
    for (r = 0; r < R_; r++) {                    /* sum */
        lo[r] = hi[r] = _mm512_setzero_pd();
        for (i = 0; i < NV_; i++) {
            v[r][i] = _mm512_maskz_loadu_ps(i < NV_ - 1 ? 0xffff : t, x + r * n + 16 * i);
            lo[r] = _mm512_add_pd(lo[r], _mm512_cvtps_pd(_mm512_castps512_ps256(v[r][i])));
            hi[r] = _mm512_add_pd(hi[r], _mm512_cvtps_pd(_mm512_extractf32x8_ps(v[r][i], 1)));
        }
    }
    for (r = 0; r < R_; r++) mean[r] = tga_rm_hsum16d(lo[r], hi[r]) / n;
    for (r = 0; r < R_; r++) {                    /* sqdev */
        m = TGA_RM_VD(mean[r]);
        lo[r] = hi[r] = _mm512_setzero_pd();
        for (i = 0; i < NV_; i++) {
            k = i < NV_ - 1 ? 0xffff : t;
            d = _mm512_maskz_sub_pd((__mmask8)k,
                                    _mm512_cvtps_pd(_mm512_castps512_ps256(v[r][i])), m);
            lo[r] = _mm512_fmadd_pd(d, d, lo[r]);
            d = _mm512_maskz_sub_pd((__mmask8)(k >> 8),
                                    _mm512_cvtps_pd(_mm512_extractf32x8_ps(v[r][i], 1)), m);
            hi[r] = _mm512_fmadd_pd(d, d, hi[r]);
        }
    }
    for (r = 0; r < R_; r++) rstd[r] = 1.0 / sqrt(tga_rm_hsum16d(lo[r], hi[r]) / n + eps);
    for (r = 0; r < R_; r++) {                    /* y = (x - mean) rstd w + b */
        mean_out[r] = (float)mean[r];
        rstd_out[r] = (float)rstd[r];
        mf = TGA_RM_V((float)mean[r]);
        rf = TGA_RM_V((float)rstd[r]);
        for (i = 0; i < NV_; i++) {
            k = i < NV_ - 1 ? 0xffff : t;
            _mm512_mask_storeu_ps(y + r * n + 16 * i, k, _mm512_fmadd_ps(
                _mm512_mul_ps(_mm512_sub_ps(v[r][i], mf), rf),
                _mm512_maskz_loadu_ps(k, w + 16 * i), _mm512_maskz_loadu_ps(k, b + 16 * i)));
        }
    }
}

#undef R_
#endif /* TGA_RM_SHORT_BODY */
