/* GEMM micro-kernels for tinygradattn._core, one per (ISA, dtype), chosen at import.
 *
 * A micro-kernel multiplies one packed A micro-panel by one packed B micro-panel:
 *
 *     acc[i, j] = bias[j] + sum_p a[p*MR + i] * b[p*NR + j]    i < MR, j < NR, p < kc
 *     c[i*ldc + j] = acc[i, j]        (accumulate == 0)     for i < mr, j < nr only
 *     c[i*ldc + j] += acc[i, j]       (accumulate != 0)     (mr <= MR, nr <= NR: edge tiles)
 *
 * bias: NULL (0), or NR readable values (a Linear layer's bias; entries past nr are ignored,
 * so the caller pads the last panel's): the accumulators start from it, which costs two
 * vector loads per call where adding it to c afterwards would cost a pass over c.
 * a: packed (kc, MR), b: packed (kc, NR), both 64-byte aligned and zero-padded past the
 * matrix edge, so every tile runs the same full-width loop; only the store honours mr, nr.
 * The accumulator lives in registers: MR x NR/VL vector variables, fully unrolled.
 *
 *   ISA       float32 MRxNR   float64 MRxNR   registers
 *   avx512    12 x 32         12 x 16         24 zmm accumulators + 2 B vectors + 1 broadcast
 *   avx2       6 x 16          6 x 8          12 ymm accumulators + 2 B vectors + 1 broadcast
 *   generic    4 x 8           4 x 4          plain C, auto-vectorised for the baseline ISA
 *
 * The AVX2 / AVX-512 sets also have strided forms (ukr_sa_*): a(i, p) = a[i*rsa + p*csa] and
 * b(p, j) = b[p*ldb + j] read in place, so the caller may skip packing full panels; their
 * B loop runs one vector per row when nr <= VL (the N edge: half the FMAs). The transposing
 * pack of a K-contiguous operand (tga_pack_kcontig_*) is here too.
 *
 * Dispatch: tga_gemm_isa_for(level), the level chosen by _support.pyx from _cpu_features.h.
 * Each kernel is one body below #else, which this file includes once per (ISA, dtype) with
 * TGA_GEMM_BODY set (as _attention_kernel.h does); the generic body is plain C, the AVX2 and
 * AVX-512 sets share one body of intrinsics whose names come from TGA_GEMM_PFX / TGA_GEMM_TSFX.
 * The AVX bodies are compiled with __attribute__((target(...))), so the rest of the module
 * keeps the baseline ISA and the extension loads on any x86-64 CPU. Elsewhere (other
 * compilers or architectures) only the generic kernel exists.
 * No fast-math: results are the plain sum of products, FMA-contracted on the AVX paths.
 */
#ifndef TGA_GEMM_BODY
#ifndef TGA_GEMM_KERNEL_H
#define TGA_GEMM_KERNEL_H

#include <string.h>

#include "_cpu_features.h"

#define TGA_X86_DISPATCH TGA_CPU_X86
#if TGA_X86_DISPATCH
#include <immintrin.h>
#endif

#if defined(__GNUC__) || defined(__clang__)
#define TGA_RESTRICT __restrict__
#define TGA_STR(x) #x
#define TGA_UNROLL(n) _Pragma(TGA_STR(GCC unroll n))
#else
#define TGA_RESTRICT
#define TGA_UNROLL(n)
#endif

typedef void (*tga_ukr_f32_t)(Py_ssize_t kc, const float *a, const float *b,
                              float *c, Py_ssize_t ldc, Py_ssize_t mr, Py_ssize_t nr,
                              const float *bias, int accumulate);
typedef void (*tga_ukr_f64_t)(Py_ssize_t kc, const double *a, const double *b,
                              double *c, Py_ssize_t ldc, Py_ssize_t mr, Py_ssize_t nr,
                              const double *bias, int accumulate);

/* Strided variants: a(i, p) = a[i*rsa + p*csa] and b(p, j) = b[p*ldb + j] read in place (no
 * packing; ldb = NR for a packed b). Only for full tiles of a and b (all MR rows and NR
 * columns exist; a partial c tile is fine). NULL where not provided (generic). */
typedef void (*tga_ukr_sa_f32_t)(Py_ssize_t kc, const float *a, Py_ssize_t rsa, Py_ssize_t csa,
                                 const float *b, Py_ssize_t ldb, float *c, Py_ssize_t ldc,
                                 Py_ssize_t mr, Py_ssize_t nr, const float *bias,
                                 int accumulate);
typedef void (*tga_ukr_sa_f64_t)(Py_ssize_t kc, const double *a, Py_ssize_t rsa,
                                 Py_ssize_t csa, const double *b, Py_ssize_t ldb, double *c,
                                 Py_ssize_t ldc, Py_ssize_t mr, Py_ssize_t nr,
                                 const double *bias, int accumulate);

/* One ISA's kernel set and the tile sizes its packing must use. */
typedef struct {
    const char *name;
    int mr_f32, nr_f32, mr_f64, nr_f64;
    tga_ukr_f32_t ukr_f32;
    tga_ukr_f64_t ukr_f64;
    tga_ukr_sa_f32_t ukr_sa_f32;
    tga_ukr_sa_f64_t ukr_sa_f64;
    /* The strided kernels at MR / 2 rows, for an edge panel of at most MR / 2 rows (M = 64 is
     * 5 x 12 + 4 rows: the last panel costs 6 rows, not 12); NULL where not provided. */
    tga_ukr_sa_f32_t ukr_sa_half_f32;
    tga_ukr_sa_f64_t ukr_sa_half_f64;
} tga_gemm_isa_t;

/* ---- the kernels (after #else below), one body per (ISA, dtype); the bodies #undef what
 * they are given. ------------------------------------------------------------------------- */
#define TGA_GEMM_CAT_(a, b) a##b
#define TGA_GEMM_CAT(a, b) TGA_GEMM_CAT_(a, b)

/* ------------------------------------------------------------------------------------------
 * generic: plain C; MR x NR accumulator as a local array with compile-time bounds.
 * NR <= 8 keeps gcc's complete peeling from scattering the vectorisable j loop.
 * ---------------------------------------------------------------------------------------- */
#define TGA_GEMM_BODY 1
#define TGA_GEMM_DT _f32
#define TGA_GEMM_SFX _f32_generic
#define T_ float
#define MR_ 4
#define NR_ 8
#include "_gemm_kernel.h"
#define TGA_GEMM_DT _f64
#define TGA_GEMM_SFX _f64_generic
#define T_ double
#define MR_ 4
#define NR_ 4
#include "_gemm_kernel.h"
#undef TGA_GEMM_BODY

#if TGA_X86_DISPATCH
/* Accumulators acc0[i], acc1[i] (MR rows of two VL vectors) start at the bias row, or 0. */
#define TGA_INIT_ACC(MR, VL, SETZERO, LOADU)                                                  \
    if (bias != NULL) {                                                                       \
        TGA_UNROLL(MR)                                                                        \
        for (i = 0; i < MR; i++) {                                                            \
            acc0[i] = LOADU(bias);                                                            \
            acc1[i] = LOADU(bias + VL);                                                       \
        }                                                                                     \
    } else {                                                                                  \
        TGA_UNROLL(MR)                                                                        \
        for (i = 0; i < MR; i++) {                                                            \
            acc0[i] = SETZERO();                                                              \
            acc1[i] = SETZERO();                                                              \
        }                                                                                     \
    }

/* ------------------------------------------------------------------------------------------
 * AVX2 + FMA: MR rows x 2 ymm vectors. Edge tiles go through a stack tile.
 * ---------------------------------------------------------------------------------------- */
/* With each (ISA, dtype) set come its strided-A forms, tga_ukr_sa_* and tga_ukr_sa_half_*
 * (MR / 2 rows): the same bodies, A broadcast from its rows in place, four row-triple pointers
 * advanced by csa. */
#define TGA_GEMM_BODY 2
#define TGA_GEMM_TARGET __attribute__((target("avx2,fma")))
#define TGA_GEMM_AVX512 0
#define TGA_GEMM_DT _f32
#define TGA_GEMM_SFX _f32_avx2
#define TGA_GEMM_PFX _mm256_
#define TGA_GEMM_TSFX _ps
#define T_ float
#define VEC_ __m256
#define VL_ 8
#define MR_ 6
#define MR_HALF_ 3
#include "_gemm_kernel.h"
#define TGA_GEMM_TARGET __attribute__((target("avx2,fma")))
#define TGA_GEMM_AVX512 0
#define TGA_GEMM_DT _f64
#define TGA_GEMM_SFX _f64_avx2
#define TGA_GEMM_PFX _mm256_
#define TGA_GEMM_TSFX _pd
#define T_ double
#define VEC_ __m256d
#define VL_ 4
#define MR_ 6
#define MR_HALF_ 3
#include "_gemm_kernel.h"

/* ------------------------------------------------------------------------------------------
 * AVX-512F: MR rows x 2 zmm vectors. Edge tiles use masked loads and stores.
 * ---------------------------------------------------------------------------------------- */
#define TGA_GEMM_TARGET __attribute__((target("avx512f")))
#define TGA_GEMM_AVX512 1
#define TGA_GEMM_DT _f32
#define TGA_GEMM_SFX _f32_avx512
#define TGA_GEMM_PFX _mm512_
#define TGA_GEMM_TSFX _ps
#define T_ float
#define VEC_ __m512
#define MASK_ __mmask16
#define VL_ 16
#define MR_ 12
#define MR_HALF_ 6
#include "_gemm_kernel.h"
#define TGA_GEMM_TARGET __attribute__((target("avx512f")))
#define TGA_GEMM_AVX512 1
#define TGA_GEMM_DT _f64
#define TGA_GEMM_SFX _f64_avx512
#define TGA_GEMM_PFX _mm512_
#define TGA_GEMM_TSFX _pd
#define T_ double
#define VEC_ __m512d
#define MASK_ __mmask8
#define VL_ 8
#define MR_ 12
#define MR_HALF_ 6
#include "_gemm_kernel.h"
#undef TGA_GEMM_BODY
#endif /* TGA_X86_DISPATCH */

/* ------------------------------------------------------------------------------------------
 * Packing a K-contiguous operand (row-major A, or B given as a transposed view):
 *
 *     dst[p*R + i] = src[i*s_row + p]     i < rows, p < k;     dst[p*R + i] = 0   rows <= i < R
 *
 * i.e. a transpose of the (rows, k) block into one (k, R) micro-panel. The scalar loop either
 * scatters its stores (stride R) or gathers its loads (stride s_row), which costs about as
 * much as the micro-kernel's own time for K ~ 64..128. The AVX2 path transposes 8 x 8
 * (float32) / 4 x 4 (float64) blocks in registers; partial row groups load a clamped (valid)
 * row and store through a lane mask. Any R works (it is the ISA's MR or NR, not the
 * register width), so the packing is independent of the micro-kernel set in use.
 * ---------------------------------------------------------------------------------------- */
static void tga_pack_kcontig_f32_scalar(float *TGA_RESTRICT dst, const float *TGA_RESTRICT src,
                                        Py_ssize_t rows, Py_ssize_t k, Py_ssize_t s_row,
                                        Py_ssize_t R) {
    Py_ssize_t i, p;
    for (p = 0; p < k; p++) {
        for (i = 0; i < rows; i++) dst[p * R + i] = src[i * s_row + p];
        for (; i < R; i++) dst[p * R + i] = 0;
    }
}
static void tga_pack_kcontig_f64_scalar(double *TGA_RESTRICT dst, const double *TGA_RESTRICT src,
                                        Py_ssize_t rows, Py_ssize_t k, Py_ssize_t s_row,
                                        Py_ssize_t R) {
    Py_ssize_t i, p;
    for (p = 0; p < k; p++) {
        for (i = 0; i < rows; i++) dst[p * R + i] = src[i * s_row + p];
        for (; i < R; i++) dst[p * R + i] = 0;
    }
}

#if TGA_X86_DISPATCH
static const int tga_lane_mask_i32[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
static const long long tga_lane_mask_i64[8] = {-1, -1, -1, -1, 0, 0, 0, 0};

__attribute__((target("avx2,fma"))) static void tga_pack_kcontig_f32_avx2(
    float *TGA_RESTRICT dst, const float *TGA_RESTRICT src, Py_ssize_t rows, Py_ssize_t k,
    Py_ssize_t s_row, Py_ssize_t R) {
    Py_ssize_t g, p, i;
    int q;
    for (g = 0; g < rows; g += 8) {
        Py_ssize_t n = rows - g < 8 ? rows - g : 8;
        const float *r[8];
        __m256i mask = _mm256_loadu_si256((const __m256i *)(tga_lane_mask_i32 + 8 - n));
        float *d = dst + g;
        for (q = 0; q < 8; q++) r[q] = src + (g + (q < n ? q : n - 1)) * s_row;
        for (p = 0; p + 8 <= k; p += 8) {
            __m256 a0 = _mm256_loadu_ps(r[0] + p), a1 = _mm256_loadu_ps(r[1] + p);
            __m256 a2 = _mm256_loadu_ps(r[2] + p), a3 = _mm256_loadu_ps(r[3] + p);
            __m256 a4 = _mm256_loadu_ps(r[4] + p), a5 = _mm256_loadu_ps(r[5] + p);
            __m256 a6 = _mm256_loadu_ps(r[6] + p), a7 = _mm256_loadu_ps(r[7] + p);
            __m256 t0 = _mm256_unpacklo_ps(a0, a1), t1 = _mm256_unpackhi_ps(a0, a1);
            __m256 t2 = _mm256_unpacklo_ps(a2, a3), t3 = _mm256_unpackhi_ps(a2, a3);
            __m256 t4 = _mm256_unpacklo_ps(a4, a5), t5 = _mm256_unpackhi_ps(a4, a5);
            __m256 t6 = _mm256_unpacklo_ps(a6, a7), t7 = _mm256_unpackhi_ps(a6, a7);
            __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
            __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
            __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
            __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
            __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
            __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
            __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
            __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
            __m256 c[8];
            c[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
            c[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
            c[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
            c[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
            c[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
            c[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
            c[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
            c[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
            if (n == 8) {
                TGA_UNROLL(8)
                for (q = 0; q < 8; q++) _mm256_storeu_ps(d + (p + q) * R, c[q]);
            } else {
                TGA_UNROLL(8)
                for (q = 0; q < 8; q++) _mm256_maskstore_ps(d + (p + q) * R, mask, c[q]);
            }
        }
        for (; p < k; p++)
            for (i = 0; i < n; i++) d[p * R + i] = r[i][p];
    }
    if (rows < R)
        for (p = 0; p < k; p++)
            for (i = rows; i < R; i++) dst[p * R + i] = 0;
}

__attribute__((target("avx2,fma"))) static void tga_pack_kcontig_f64_avx2(
    double *TGA_RESTRICT dst, const double *TGA_RESTRICT src, Py_ssize_t rows, Py_ssize_t k,
    Py_ssize_t s_row, Py_ssize_t R) {
    Py_ssize_t g, p, i;
    int q;
    for (g = 0; g < rows; g += 4) {
        Py_ssize_t n = rows - g < 4 ? rows - g : 4;
        const double *r[4];
        __m256i mask = _mm256_loadu_si256((const __m256i *)(tga_lane_mask_i64 + 4 - n));
        double *d = dst + g;
        for (q = 0; q < 4; q++) r[q] = src + (g + (q < n ? q : n - 1)) * s_row;
        for (p = 0; p + 4 <= k; p += 4) {
            __m256d a0 = _mm256_loadu_pd(r[0] + p), a1 = _mm256_loadu_pd(r[1] + p);
            __m256d a2 = _mm256_loadu_pd(r[2] + p), a3 = _mm256_loadu_pd(r[3] + p);
            __m256d t0 = _mm256_unpacklo_pd(a0, a1), t1 = _mm256_unpackhi_pd(a0, a1);
            __m256d t2 = _mm256_unpacklo_pd(a2, a3), t3 = _mm256_unpackhi_pd(a2, a3);
            __m256d c[4];
            c[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
            c[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
            c[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
            c[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
            if (n == 4) {
                TGA_UNROLL(4)
                for (q = 0; q < 4; q++) _mm256_storeu_pd(d + (p + q) * R, c[q]);
            } else {
                TGA_UNROLL(4)
                for (q = 0; q < 4; q++) _mm256_maskstore_pd(d + (p + q) * R, mask, c[q]);
            }
        }
        for (; p < k; p++)
            for (i = 0; i < n; i++) d[p * R + i] = r[i][p];
    }
    if (rows < R)
        for (p = 0; p < k; p++)
            for (i = rows; i < R; i++) dst[p * R + i] = 0;
}
#endif /* TGA_X86_DISPATCH */

/* 1: use the AVX2 transposing pack (set at import by tga_gemm_pack_init; 0 forces scalar). */
static int tga_pack_use_avx2 = 0;

static void tga_gemm_pack_init(int allow_simd) {
    tga_pack_use_avx2 = allow_simd && tga_cpu_supports_isa(TGA_ISA_AVX2) ? 1 : 0;
}

static void tga_pack_kcontig_f32(float *dst, const float *src, Py_ssize_t rows, Py_ssize_t k,
                                 Py_ssize_t s_row, Py_ssize_t R) {
#if TGA_X86_DISPATCH
    if (tga_pack_use_avx2) {
        tga_pack_kcontig_f32_avx2(dst, src, rows, k, s_row, R);
        return;
    }
#endif
    tga_pack_kcontig_f32_scalar(dst, src, rows, k, s_row, R);
}

static void tga_pack_kcontig_f64(double *dst, const double *src, Py_ssize_t rows, Py_ssize_t k,
                                 Py_ssize_t s_row, Py_ssize_t R) {
#if TGA_X86_DISPATCH
    if (tga_pack_use_avx2) {
        tga_pack_kcontig_f64_avx2(dst, src, rows, k, s_row, R);
        return;
    }
#endif
    tga_pack_kcontig_f64_scalar(dst, src, rows, k, s_row, R);
}

/* ------------------------------------------------------------------------------------------
 * Dispatch table and selection.
 * ---------------------------------------------------------------------------------------- */
static const tga_gemm_isa_t tga_gemm_isas[] = {
#if TGA_X86_DISPATCH
    {"avx512", 12, 32, 12, 16, tga_ukr_f32_avx512, tga_ukr_f64_avx512, tga_ukr_sa_f32_avx512,
     tga_ukr_sa_f64_avx512, tga_ukr_sa_half_f32_avx512, tga_ukr_sa_half_f64_avx512},
    {"avx2", 6, 16, 6, 8, tga_ukr_f32_avx2, tga_ukr_f64_avx2, tga_ukr_sa_f32_avx2,
     tga_ukr_sa_f64_avx2, tga_ukr_sa_half_f32_avx2, tga_ukr_sa_half_f64_avx2},
#endif
    {"generic", 4, 8, 4, 4, tga_ukr_f32_generic, tga_ukr_f64_generic, NULL, NULL, NULL, NULL},
};
#define TGA_N_GEMM_ISAS ((int)(sizeof(tga_gemm_isas) / sizeof(tga_gemm_isas[0])))

/* The kernel set of ISA level `level` (_cpu_features.h): the table runs from the widest level
 * down to generic, and holds exactly the levels this build compiled, which are the levels
 * _support offers (generic alone off x86). */
static const tga_gemm_isa_t *tga_gemm_isa_for(int level) {
    return &tga_gemm_isas[TGA_N_GEMM_ISAS - 1 - level];
}

#endif /* TGA_GEMM_KERNEL_H */

#elif TGA_GEMM_BODY == 1 /* generic, for TGA_GEMM_DT (_f32, _f64), TGA_GEMM_SFX, T_, MR_, NR_ */

#define STORE_EDGE_ TGA_GEMM_CAT(tga_store_edge, TGA_GEMM_DT)

/* Store (or add) the first mr x nr entries of a full MR x NR tile kept in `t` (row stride NR). */
static inline void TGA_GEMM_CAT(tga_store_edge, TGA_GEMM_DT)(const T_ *t, Py_ssize_t NR, T_ *c,
                                                             Py_ssize_t ldc, Py_ssize_t mr,
                                                             Py_ssize_t nr, int accumulate) {
    Py_ssize_t i, j;
    for (i = 0; i < mr; i++) {
        if (accumulate) {
            for (j = 0; j < nr; j++) c[i * ldc + j] += t[i * NR + j];
        } else {
            for (j = 0; j < nr; j++) c[i * ldc + j] = t[i * NR + j];
        }
    }
}

static void TGA_GEMM_CAT(tga_ukr, TGA_GEMM_SFX)(
    Py_ssize_t kc, const T_ *TGA_RESTRICT a, const T_ *TGA_RESTRICT b, T_ *TGA_RESTRICT c,
    Py_ssize_t ldc, Py_ssize_t mr, Py_ssize_t nr, const T_ *TGA_RESTRICT bias, int accumulate) {
    T_ acc[MR_][NR_];
    Py_ssize_t p;
    int i, j;
    for (i = 0; i < MR_; i++)
        for (j = 0; j < NR_; j++) acc[i][j] = bias != NULL ? bias[j] : 0;
    for (p = 0; p < kc; p++) {
        const T_ *ap = a + p * MR_;
        const T_ *bp = b + p * NR_;
        for (i = 0; i < MR_; i++) {
            T_ ai = ap[i];
            for (j = 0; j < NR_; j++) acc[i][j] += ai * bp[j];
        }
    }
    if (mr == MR_ && nr == NR_) {
        for (i = 0; i < MR_; i++) {
            T_ *ci = c + i * ldc;
            if (accumulate) {
                for (j = 0; j < NR_; j++) ci[j] += acc[i][j];
            } else {
                for (j = 0; j < NR_; j++) ci[j] = acc[i][j];
            }
        }
    } else {
        STORE_EDGE_(&acc[0][0], NR_, c, ldc, mr, nr, accumulate);
    }
}

#undef TGA_GEMM_DT
#undef TGA_GEMM_SFX
#undef T_
#undef MR_
#undef NR_
#undef STORE_EDGE_

#elif TGA_GEMM_BODY == 2 /* one SIMD set: TGA_GEMM_TARGET, TGA_GEMM_AVX512 (1: masked edges and
                          * A prefetch; 0: AVX2, edges through a stack tile), TGA_GEMM_DT,
                          * TGA_GEMM_SFX, the intrinsics' TGA_GEMM_PFX / TGA_GEMM_TSFX (_mm512_,
                          * _ps ...), T_, VEC_, MASK_ (AVX-512), VL_, MR_, MR_HALF_ */

#define TGA_GEMM_CAT3(a, b, c) TGA_GEMM_CAT(TGA_GEMM_CAT(a, b), c)
#define TGA_GEMM_OP(op) TGA_GEMM_CAT3(TGA_GEMM_PFX, op, TGA_GEMM_TSFX)
#define SETZERO_ TGA_GEMM_OP(setzero)
#define LOAD_ TGA_GEMM_OP(load)
#define LOADU_ TGA_GEMM_OP(loadu)
#define STOREU_ TGA_GEMM_OP(storeu)
#define MLOADU_ TGA_GEMM_OP(mask_loadu)
#define MSTOREU_ TGA_GEMM_OP(mask_storeu)
#define SET1_ TGA_GEMM_OP(set1)
#define FMADD_ TGA_GEMM_OP(fmadd)
#define ADD_ TGA_GEMM_OP(add)
#define STORE_EDGE_ TGA_GEMM_CAT(tga_store_edge, TGA_GEMM_DT)

#undef TGA_GEMM_BODY
#define TGA_GEMM_BODY 3
#define TGA_GEMM_UKR_NAME tga_ukr
#define TGA_GEMM_STRIDED 0
#define UKR_MR_ MR_
#include "_gemm_kernel.h"
#define TGA_GEMM_UKR_NAME tga_ukr_sa
#define TGA_GEMM_STRIDED 1
#define UKR_MR_ MR_
#include "_gemm_kernel.h"
#define TGA_GEMM_UKR_NAME tga_ukr_sa_half
#define TGA_GEMM_STRIDED 1
#define UKR_MR_ MR_HALF_
#include "_gemm_kernel.h"
#undef TGA_GEMM_BODY
#define TGA_GEMM_BODY 2

#undef TGA_GEMM_CAT3
#undef TGA_GEMM_OP
#undef SETZERO_
#undef LOAD_
#undef LOADU_
#undef STOREU_
#undef MLOADU_
#undef MSTOREU_
#undef SET1_
#undef FMADD_
#undef ADD_
#undef STORE_EDGE_
#undef TGA_GEMM_TARGET
#undef TGA_GEMM_AVX512
#undef TGA_GEMM_DT
#undef TGA_GEMM_SFX
#undef TGA_GEMM_PFX
#undef TGA_GEMM_TSFX
#undef T_
#undef VEC_
#undef MASK_
#undef VL_
#undef MR_
#undef MR_HALF_

#else /* TGA_GEMM_BODY == 3: one micro-kernel of set 2's, TGA_GEMM_UKR_NAME at UKR_MR_ rows:
       * packed A and B (TGA_GEMM_STRIDED 0), or A read in place through its strides (1) */

#if TGA_GEMM_STRIDED
TGA_GEMM_TARGET static void TGA_GEMM_CAT(TGA_GEMM_UKR_NAME, TGA_GEMM_SFX)(
    Py_ssize_t kc, const T_ *TGA_RESTRICT a, Py_ssize_t rsa, Py_ssize_t csa,
    const T_ *TGA_RESTRICT b, Py_ssize_t ldb, T_ *TGA_RESTRICT c,
    Py_ssize_t ldc, Py_ssize_t mr, Py_ssize_t nr, const T_ *TGA_RESTRICT bias,
    int accumulate) {
#else
TGA_GEMM_TARGET static void TGA_GEMM_CAT(TGA_GEMM_UKR_NAME, TGA_GEMM_SFX)(
    Py_ssize_t kc, const T_ *TGA_RESTRICT a, const T_ *TGA_RESTRICT b, T_ *TGA_RESTRICT c,
    Py_ssize_t ldc, Py_ssize_t mr, Py_ssize_t nr, const T_ *TGA_RESTRICT bias,
    int accumulate) {
#endif
    VEC_ acc0[UKR_MR_], acc1[UKR_MR_];
    Py_ssize_t p;
    int i;
#if TGA_GEMM_STRIDED
    const T_ *ab[UKR_MR_ / 3];   /* rows 3q, 3q+1, 3q+2 at ab[q], ab[q]+rsa, ab[q]+2*rsa */
    TGA_UNROLL(4)
    for (i = 0; i < UKR_MR_ / 3; i++) ab[i] = a + 3 * i * rsa;
#endif
    TGA_INIT_ACC(UKR_MR_, VL_, SETZERO_, LOADU_)
#if TGA_GEMM_STRIDED
    if (nr <= VL_) {        /* edge of N: half the FMAs (second vector is all padding) */
        for (p = 0; p < kc; p++) {
            VEC_ b0 = LOADU_(b + p * ldb);
            TGA_UNROLL(UKR_MR_)
            for (i = 0; i < UKR_MR_; i++)
                acc0[i] = FMADD_(SET1_(ab[i / 3][(i % 3) * rsa]), b0, acc0[i]);
            TGA_UNROLL(4)
            for (i = 0; i < UKR_MR_ / 3; i++) ab[i] += csa;
        }
    } else {
        for (p = 0; p < kc; p++) {
            VEC_ b0 = LOADU_(b + p * ldb);
            VEC_ b1 = LOADU_(b + p * ldb + VL_);
#if TGA_GEMM_AVX512
            /* A's values 16 K-steps ahead: a transposed A (dout.T_ of a Linear's dW) is
             * one cache line per K-step, too scattered for the hardware prefetcher. */
            _mm_prefetch((const char *)(ab[0] + 16 * csa), _MM_HINT_T0);
            _mm_prefetch((const char *)(ab[UKR_MR_ / 3 - 1] + 16 * csa + 2 * rsa), _MM_HINT_T0);
#endif
            TGA_UNROLL(UKR_MR_)
            for (i = 0; i < UKR_MR_; i++) {
                VEC_ ai = SET1_(ab[i / 3][(i % 3) * rsa]);
                acc0[i] = FMADD_(ai, b0, acc0[i]);
                acc1[i] = FMADD_(ai, b1, acc1[i]);
            }
            TGA_UNROLL(4)
            for (i = 0; i < UKR_MR_ / 3; i++) ab[i] += csa;
        }
    }
#else
    for (p = 0; p < kc; p++) {
        VEC_ b0 = LOAD_(b + p * 2 * VL_);
        VEC_ b1 = LOAD_(b + p * 2 * VL_ + VL_);
        TGA_UNROLL(UKR_MR_)
        for (i = 0; i < UKR_MR_; i++) {
            VEC_ ai = SET1_(a[p * UKR_MR_ + i]);
            acc0[i] = FMADD_(ai, b0, acc0[i]);
            acc1[i] = FMADD_(ai, b1, acc1[i]);
        }
    }
#endif
    if (mr == UKR_MR_ && nr == 2 * VL_) {
        TGA_UNROLL(UKR_MR_)
        for (i = 0; i < UKR_MR_; i++) {
            T_ *ci = c + i * ldc;
            if (accumulate) {
                acc0[i] = ADD_(acc0[i], LOADU_(ci));
                acc1[i] = ADD_(acc1[i], LOADU_(ci + VL_));
            }
            STOREU_(ci, acc0[i]);
            STOREU_(ci + VL_, acc1[i]);
        }
    } else {
#if TGA_GEMM_AVX512
        Py_ssize_t n0 = nr < VL_ ? nr : VL_;
        Py_ssize_t n1 = nr - n0;
        MASK_ m0 = (MASK_)((1u << n0) - 1u);
        MASK_ m1 = (MASK_)((1u << n1) - 1u);
#else
        T_ tile[UKR_MR_ * 2 * VL_];
#endif
        TGA_UNROLL(UKR_MR_)
        for (i = 0; i < UKR_MR_; i++) {
#if TGA_GEMM_AVX512
            T_ *ci = c + i * ldc;
            if (i >= mr) break;
            if (accumulate) {
                acc0[i] = ADD_(acc0[i], MLOADU_(SETZERO_(), m0, ci));
                acc1[i] = ADD_(acc1[i], MLOADU_(SETZERO_(), m1, ci + VL_));
            }
            MSTOREU_(ci, m0, acc0[i]);
            MSTOREU_(ci + VL_, m1, acc1[i]);
#else
            STOREU_(tile + i * 2 * VL_, acc0[i]);
            STOREU_(tile + i * 2 * VL_ + VL_, acc1[i]);
#endif
        }
#if !TGA_GEMM_AVX512
        STORE_EDGE_(tile, 2 * VL_, c, ldc, mr, nr, accumulate);
#endif
    }
}

#undef TGA_GEMM_UKR_NAME
#undef TGA_GEMM_STRIDED
#undef UKR_MR_
#endif /* TGA_GEMM_BODY */
