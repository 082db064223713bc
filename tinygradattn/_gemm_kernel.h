/* GEMM micro-kernels for tinygradattn._core, one per (ISA, dtype), chosen at import.
 *
 * A micro-kernel multiplies one packed A micro-panel by one packed B micro-panel:
 *
 *     acc[i, j] = sum_p a[p*MR + i] * b[p*NR + j]      i < MR, j < NR, p < kc
 *     c[i*ldc + j] = acc[i, j]        (accumulate == 0)     for i < mr, j < nr only
 *     c[i*ldc + j] += acc[i, j]       (accumulate != 0)     (mr <= MR, nr <= NR: edge tiles)
 *
 * a: packed (kc, MR), b: packed (kc, NR), both 64-byte aligned and zero-padded past the
 * matrix edge, so every tile runs the same full-width loop; only the store honours mr, nr.
 * The accumulator lives in registers: MR x NR/VL vector variables, fully unrolled.
 *
 *   ISA       float32 MRxNR   float64 MRxNR   registers
 *   avx512    12 x 32         12 x 16         24 zmm accumulators + 2 B vectors + 1 broadcast
 *   avx2       6 x 16          6 x 8          12 ymm accumulators + 2 B vectors + 1 broadcast
 *   generic    4 x 8           4 x 4          plain C, auto-vectorised for the baseline ISA
 *
 * Dispatch: __builtin_cpu_supports (gcc/clang on x86) at the first tga_gemm_select() call;
 * the AVX bodies are compiled with __attribute__((target(...))), so the rest of the module
 * keeps the baseline ISA and the extension loads on any x86-64 CPU. Elsewhere (other
 * compilers or architectures) only the generic kernel exists.
 * No fast-math: results are the plain sum of products, FMA-contracted on the AVX paths.
 */
#ifndef TGA_GEMM_KERNEL_H
#define TGA_GEMM_KERNEL_H

#include <string.h>

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define TGA_X86_DISPATCH 1
#include <immintrin.h>
#else
#define TGA_X86_DISPATCH 0
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
                              int accumulate);
typedef void (*tga_ukr_f64_t)(Py_ssize_t kc, const double *a, const double *b,
                              double *c, Py_ssize_t ldc, Py_ssize_t mr, Py_ssize_t nr,
                              int accumulate);

/* One ISA's kernel set and the tile sizes its packing must use. */
typedef struct {
    const char *name;
    int mr_f32, nr_f32, mr_f64, nr_f64;
    tga_ukr_f32_t ukr_f32;
    tga_ukr_f64_t ukr_f64;
} tga_gemm_isa_t;

/* Store (or add) the first mr x nr entries of a full MR x NR tile kept in `t` (row stride NR). */
#define TGA_DEFINE_STORE_EDGE(NAME, T)                                                        \
    static inline void NAME(const T *t, Py_ssize_t NR, T *c, Py_ssize_t ldc, Py_ssize_t mr,   \
                            Py_ssize_t nr, int accumulate) {                                  \
        Py_ssize_t i, j;                                                                      \
        for (i = 0; i < mr; i++) {                                                            \
            if (accumulate) {                                                                 \
                for (j = 0; j < nr; j++) c[i * ldc + j] += t[i * NR + j];                     \
            } else {                                                                          \
                for (j = 0; j < nr; j++) c[i * ldc + j] = t[i * NR + j];                      \
            }                                                                                 \
        }                                                                                     \
    }
TGA_DEFINE_STORE_EDGE(tga_store_edge_f32, float)
TGA_DEFINE_STORE_EDGE(tga_store_edge_f64, double)

/* ------------------------------------------------------------------------------------------
 * generic: plain C; MR x NR accumulator as a local array with compile-time bounds.
 * NR <= 8 keeps gcc's complete peeling from scattering the vectorisable j loop.
 * ---------------------------------------------------------------------------------------- */
#define TGA_DEFINE_GENERIC(NAME, T, MR, NR, STORE_EDGE)                                       \
    static void NAME(Py_ssize_t kc, const T *TGA_RESTRICT a, const T *TGA_RESTRICT b,         \
                     T *TGA_RESTRICT c, Py_ssize_t ldc, Py_ssize_t mr, Py_ssize_t nr,         \
                     int accumulate) {                                                        \
        T acc[MR][NR];                                                                        \
        Py_ssize_t p;                                                                         \
        int i, j;                                                                             \
        for (i = 0; i < MR; i++)                                                              \
            for (j = 0; j < NR; j++) acc[i][j] = 0;                                           \
        for (p = 0; p < kc; p++) {                                                            \
            const T *ap = a + p * MR;                                                         \
            const T *bp = b + p * NR;                                                         \
            for (i = 0; i < MR; i++) {                                                        \
                T ai = ap[i];                                                                 \
                for (j = 0; j < NR; j++) acc[i][j] += ai * bp[j];                             \
            }                                                                                 \
        }                                                                                     \
        if (mr == MR && nr == NR) {                                                           \
            for (i = 0; i < MR; i++) {                                                        \
                T *ci = c + i * ldc;                                                          \
                if (accumulate) {                                                             \
                    for (j = 0; j < NR; j++) ci[j] += acc[i][j];                              \
                } else {                                                                      \
                    for (j = 0; j < NR; j++) ci[j] = acc[i][j];                               \
                }                                                                             \
            }                                                                                 \
        } else {                                                                              \
            STORE_EDGE(&acc[0][0], NR, c, ldc, mr, nr, accumulate);                           \
        }                                                                                     \
    }
TGA_DEFINE_GENERIC(tga_ukr_f32_generic, float, 4, 8, tga_store_edge_f32)
TGA_DEFINE_GENERIC(tga_ukr_f64_generic, double, 4, 4, tga_store_edge_f64)

#if TGA_X86_DISPATCH
/* ------------------------------------------------------------------------------------------
 * AVX2 + FMA: MR rows x 2 ymm vectors. Edge tiles go through a stack tile.
 * ---------------------------------------------------------------------------------------- */
#define TGA_DEFINE_AVX2(NAME, T, VEC, VL, MR, SETZERO, LOAD, LOADU, STOREU, SET1, FMADD, ADD, \
                        STORE_EDGE)                                                           \
    __attribute__((target("avx2,fma"))) static void NAME(                                     \
        Py_ssize_t kc, const T *TGA_RESTRICT a, const T *TGA_RESTRICT b, T *TGA_RESTRICT c,   \
        Py_ssize_t ldc, Py_ssize_t mr, Py_ssize_t nr, int accumulate) {                       \
        VEC acc0[MR], acc1[MR];                                                               \
        Py_ssize_t p;                                                                         \
        int i;                                                                                \
        TGA_UNROLL(MR)                                                                        \
        for (i = 0; i < MR; i++) {                                                            \
            acc0[i] = SETZERO();                                                              \
            acc1[i] = SETZERO();                                                              \
        }                                                                                     \
        for (p = 0; p < kc; p++) {                                                            \
            VEC b0 = LOAD(b + p * 2 * VL);                                                    \
            VEC b1 = LOAD(b + p * 2 * VL + VL);                                               \
            TGA_UNROLL(MR)                                                                    \
            for (i = 0; i < MR; i++) {                                                        \
                VEC ai = SET1(a[p * MR + i]);                                                 \
                acc0[i] = FMADD(ai, b0, acc0[i]);                                             \
                acc1[i] = FMADD(ai, b1, acc1[i]);                                             \
            }                                                                                 \
        }                                                                                     \
        if (mr == MR && nr == 2 * VL) {                                                       \
            TGA_UNROLL(MR)                                                                    \
            for (i = 0; i < MR; i++) {                                                        \
                T *ci = c + i * ldc;                                                          \
                if (accumulate) {                                                             \
                    acc0[i] = ADD(acc0[i], LOADU(ci));                                        \
                    acc1[i] = ADD(acc1[i], LOADU(ci + VL));                                   \
                }                                                                             \
                STOREU(ci, acc0[i]);                                                          \
                STOREU(ci + VL, acc1[i]);                                                     \
            }                                                                                 \
        } else {                                                                              \
            T tile[MR * 2 * VL];                                                              \
            TGA_UNROLL(MR)                                                                    \
            for (i = 0; i < MR; i++) {                                                        \
                STOREU(tile + i * 2 * VL, acc0[i]);                                           \
                STOREU(tile + i * 2 * VL + VL, acc1[i]);                                      \
            }                                                                                 \
            STORE_EDGE(tile, 2 * VL, c, ldc, mr, nr, accumulate);                             \
        }                                                                                     \
    }
TGA_DEFINE_AVX2(tga_ukr_f32_avx2, float, __m256, 8, 6, _mm256_setzero_ps, _mm256_load_ps,
                _mm256_loadu_ps, _mm256_storeu_ps, _mm256_set1_ps, _mm256_fmadd_ps,
                _mm256_add_ps, tga_store_edge_f32)
TGA_DEFINE_AVX2(tga_ukr_f64_avx2, double, __m256d, 4, 6, _mm256_setzero_pd, _mm256_load_pd,
                _mm256_loadu_pd, _mm256_storeu_pd, _mm256_set1_pd, _mm256_fmadd_pd,
                _mm256_add_pd, tga_store_edge_f64)

/* ------------------------------------------------------------------------------------------
 * AVX-512F: MR rows x 2 zmm vectors. Edge tiles use masked loads and stores.
 * ---------------------------------------------------------------------------------------- */
#define TGA_DEFINE_AVX512(NAME, T, VEC, MASK, VL, MR, SETZERO, LOAD, LOADU, STOREU, MLOADU,   \
                          MSTOREU, SET1, FMADD, ADD)                                          \
    __attribute__((target("avx512f"))) static void NAME(                                      \
        Py_ssize_t kc, const T *TGA_RESTRICT a, const T *TGA_RESTRICT b, T *TGA_RESTRICT c,   \
        Py_ssize_t ldc, Py_ssize_t mr, Py_ssize_t nr, int accumulate) {                       \
        VEC acc0[MR], acc1[MR];                                                               \
        Py_ssize_t p;                                                                         \
        int i;                                                                                \
        TGA_UNROLL(MR)                                                                        \
        for (i = 0; i < MR; i++) {                                                            \
            acc0[i] = SETZERO();                                                              \
            acc1[i] = SETZERO();                                                              \
        }                                                                                     \
        for (p = 0; p < kc; p++) {                                                            \
            VEC b0 = LOAD(b + p * 2 * VL);                                                    \
            VEC b1 = LOAD(b + p * 2 * VL + VL);                                               \
            TGA_UNROLL(MR)                                                                    \
            for (i = 0; i < MR; i++) {                                                        \
                VEC ai = SET1(a[p * MR + i]);                                                 \
                acc0[i] = FMADD(ai, b0, acc0[i]);                                             \
                acc1[i] = FMADD(ai, b1, acc1[i]);                                             \
            }                                                                                 \
        }                                                                                     \
        if (mr == MR && nr == 2 * VL) {                                                       \
            TGA_UNROLL(MR)                                                                    \
            for (i = 0; i < MR; i++) {                                                        \
                T *ci = c + i * ldc;                                                          \
                if (accumulate) {                                                             \
                    acc0[i] = ADD(acc0[i], LOADU(ci));                                        \
                    acc1[i] = ADD(acc1[i], LOADU(ci + VL));                                   \
                }                                                                             \
                STOREU(ci, acc0[i]);                                                          \
                STOREU(ci + VL, acc1[i]);                                                     \
            }                                                                                 \
        } else {                                                                              \
            Py_ssize_t n0 = nr < VL ? nr : VL;                                                \
            Py_ssize_t n1 = nr - n0;                                                          \
            MASK m0 = (MASK)((1u << n0) - 1u);                                                \
            MASK m1 = (MASK)((1u << n1) - 1u);                                                \
            TGA_UNROLL(MR)                                                                    \
            for (i = 0; i < MR; i++) {                                                        \
                T *ci = c + i * ldc;                                                          \
                if (i >= mr) break;                                                           \
                if (accumulate) {                                                             \
                    acc0[i] = ADD(acc0[i], MLOADU(SETZERO(), m0, ci));                        \
                    acc1[i] = ADD(acc1[i], MLOADU(SETZERO(), m1, ci + VL));                   \
                }                                                                             \
                MSTOREU(ci, m0, acc0[i]);                                                     \
                MSTOREU(ci + VL, m1, acc1[i]);                                                \
            }                                                                                 \
        }                                                                                     \
    }
TGA_DEFINE_AVX512(tga_ukr_f32_avx512, float, __m512, __mmask16, 16, 12, _mm512_setzero_ps,
                  _mm512_load_ps, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_mask_loadu_ps,
                  _mm512_mask_storeu_ps, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps)
TGA_DEFINE_AVX512(tga_ukr_f64_avx512, double, __m512d, __mmask8, 8, 12, _mm512_setzero_pd,
                  _mm512_load_pd, _mm512_loadu_pd, _mm512_storeu_pd, _mm512_mask_loadu_pd,
                  _mm512_mask_storeu_pd, _mm512_set1_pd, _mm512_fmadd_pd, _mm512_add_pd)
#endif /* TGA_X86_DISPATCH */

/* ------------------------------------------------------------------------------------------
 * Dispatch table and selection.
 * ---------------------------------------------------------------------------------------- */
static const tga_gemm_isa_t tga_gemm_isas[] = {
#if TGA_X86_DISPATCH
    {"avx512", 12, 32, 12, 16, tga_ukr_f32_avx512, tga_ukr_f64_avx512},
    {"avx2", 6, 16, 6, 8, tga_ukr_f32_avx2, tga_ukr_f64_avx2},
#endif
    {"generic", 4, 8, 4, 4, tga_ukr_f32_generic, tga_ukr_f64_generic},
};
#define TGA_N_GEMM_ISAS ((int)(sizeof(tga_gemm_isas) / sizeof(tga_gemm_isas[0])))

/* Kernel set `index` (0 <= index < TGA_N_GEMM_ISAS). */
static const tga_gemm_isa_t *tga_gemm_isa_get(int index) { return &tga_gemm_isas[index]; }

/* Can this CPU (and OS) run kernel set `index`? */
static int tga_gemm_isa_supported(int index) {
    const char *name;
    if (index < 0 || index >= TGA_N_GEMM_ISAS) return 0;
    name = tga_gemm_isas[index].name;
#if TGA_X86_DISPATCH
    __builtin_cpu_init();
    if (strcmp(name, "avx512") == 0) return __builtin_cpu_supports("avx512f") ? 1 : 0;
    if (strcmp(name, "avx2") == 0)
        return (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? 1 : 0;
#endif
    return strcmp(name, "generic") == 0;
}

/* Index of the fastest supported kernel set (the table is ordered fastest first). */
static int tga_gemm_isa_best(void) {
    int i;
    for (i = 0; i < TGA_N_GEMM_ISAS; i++)
        if (tga_gemm_isa_supported(i)) return i;
    return TGA_N_GEMM_ISAS - 1;
}

#endif /* TGA_GEMM_KERNEL_H */
