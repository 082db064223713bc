/* Fused optimizer steps (tinygradattn._optim): the element loops of SGD with momentum and
 * Adam / AdamW over one chunk of a flat buffer, in place.
 *
 *   for i < n:  sgd:  over p[i], g[i], b[i]         (the formulas: _optim.pyx's docstring)
 *               adam: over p[i], g[i], m[i], v[i]
 *
 * In C, not Cython, so that the FMA / no-FMA choice is explicit: the module is compiled with
 * -ffp-contract=off, and fma() is called where torch fuses. No parallelism here: the caller
 * runs chunks in a prange. Loop-invariant flags (wd != 0, first step, nesterov, ...) are tested
 * inside the loop; gcc's -O3 unswitching hoists them, so each variant is a branch-free
 * vectorised loop. One build per ISA level (_cpu_features.h): the loop macros are expanded
 * under __attribute__((target(...))) for AVX2+FMA and AVX-512 and for the baseline; the level
 * comes with each call.
 */
#ifndef TGA_OPTIM_KERNEL_H
#define TGA_OPTIM_KERNEL_H

#include <math.h>
#include <stddef.h>

#include "_cpu_features.h"

typedef struct {
    double wd, momentum, one_minus_dampening, neg_lr;
    int nesterov, first_step, has_momentum;
} tga_sgd_args;

typedef struct {
    double decay, wd, w1, beta2, one_minus_beta2, bc2_sqrt, eps, neg_step_size;
    int decoupled, has_wd, w1_small;
} tga_adam_args;

#define TGA_SGD_LOOP(T, FMA)                                                            \
    const T wd = (T)a->wd, mom = (T)a->momentum, omd = (T)a->one_minus_dampening;       \
    const T neg_lr = (T)a->neg_lr;                                                      \
    const int has_wd = a->wd != 0, has_mom = a->has_momentum;                           \
    const int first = a->first_step, nesterov = a->nesterov;                            \
    for (ptrdiff_t i = 0; i < n; i++) {                                                 \
        T gi = g[i];                                                                    \
        if (has_wd) gi = FMA(p[i], wd, gi);                                             \
        if (has_mom) {                                                                  \
            T bi = first ? gi : FMA(gi, omd, b[i] * mom);                               \
            b[i] = bi;                                                                  \
            gi = nesterov ? FMA(bi, mom, gi) : bi;                                      \
        }                                                                               \
        p[i] = FMA(gi, neg_lr, p[i]);                                                   \
    }

#define TGA_ADAM_LOOP(T, FMA, SQRT)                                                     \
    const T decay = (T)a->decay, wd = (T)a->wd, w1 = (T)a->w1;                            \
    const T w1m1 = w1 - (T)1;        /* torch: weight - Vectorized(1), in T */         \
    const T b2 = (T)a->beta2, omb2 = (T)a->one_minus_beta2, bc2s = (T)a->bc2_sqrt;      \
    const T eps = (T)a->eps, nss = (T)a->neg_step_size;                                 \
    const int decoupled = a->decoupled && a->has_wd, l2 = !a->decoupled && a->has_wd;   \
    const int small = a->w1_small;                                                      \
    for (ptrdiff_t i = 0; i < n; i++) {                                                 \
        T gi = g[i], pi = p[i], mi = m[i];                                              \
        if (decoupled) pi = pi * decay;                                                 \
        if (l2) gi = FMA(pi, wd, gi);                                                   \
        T d = gi - mi;                                                                  \
        mi = small ? FMA(w1, d, mi) : FMA(w1m1, d, gi);                                 \
        T vi = v[i] * b2 + (omb2 * gi) * gi;                                            \
        T denom = SQRT(vi) / bc2s + eps;                                                \
        p[i] = pi + (nss * mi) / denom;                                                 \
        m[i] = mi;                                                                      \
        v[i] = vi;                                                                      \
    }

#define TGA_SGD_SIG(NAME, T) static void NAME(T *__restrict__ p, const T *__restrict__ g, \
    T *__restrict__ b, ptrdiff_t n, const tga_sgd_args *a)
#define TGA_ADAM_SIG(NAME, T) static void NAME(T *__restrict__ p, const T *__restrict__ g, \
    T *__restrict__ m, T *__restrict__ v, ptrdiff_t n, const tga_adam_args *a)

TGA_SGD_SIG(tga_sgd_f32_base, float) { TGA_SGD_LOOP(float, fmaf) }
TGA_SGD_SIG(tga_sgd_f64_base, double) { TGA_SGD_LOOP(double, fma) }
TGA_ADAM_SIG(tga_adam_f32_base, float) { TGA_ADAM_LOOP(float, fmaf, sqrtf) }
TGA_ADAM_SIG(tga_adam_f64_base, double) { TGA_ADAM_LOOP(double, fma, sqrt) }

#if TGA_CPU_X86
#define TGA_AVX2 __attribute__((target("avx2,fma")))
#define TGA_AVX512 __attribute__((target("avx512f,avx512vl,avx2,fma")))
TGA_AVX2 TGA_SGD_SIG(tga_sgd_f32_avx2, float) { TGA_SGD_LOOP(float, fmaf) }
TGA_AVX2 TGA_SGD_SIG(tga_sgd_f64_avx2, double) { TGA_SGD_LOOP(double, fma) }
TGA_AVX2 TGA_ADAM_SIG(tga_adam_f32_avx2, float) { TGA_ADAM_LOOP(float, fmaf, sqrtf) }
TGA_AVX2 TGA_ADAM_SIG(tga_adam_f64_avx2, double) { TGA_ADAM_LOOP(double, fma, sqrt) }
TGA_AVX512 TGA_SGD_SIG(tga_sgd_f32_avx512, float) { TGA_SGD_LOOP(float, fmaf) }
TGA_AVX512 TGA_SGD_SIG(tga_sgd_f64_avx512, double) { TGA_SGD_LOOP(double, fma) }
TGA_AVX512 TGA_ADAM_SIG(tga_adam_f32_avx512, float) { TGA_ADAM_LOOP(float, fmaf, sqrtf) }
TGA_AVX512 TGA_ADAM_SIG(tga_adam_f64_avx512, double) { TGA_ADAM_LOOP(double, fma, sqrt) }
#endif

/* The build of each call: the TGA_ISA_* level of _cpu_features.h, 2 avx512, 1 avx2,
   0 generic (baseline); the caller passes the "optim" level _support holds. */
#if TGA_CPU_X86
#define TGA_OPTIM_DISPATCH(NAME, ARGS)                                                  \
    if (level == 2) { NAME##_avx512 ARGS; return; }                                     \
    if (level == 1) { NAME##_avx2 ARGS; return; }                                       \
    NAME##_base ARGS;
#else
#define TGA_OPTIM_DISPATCH(NAME, ARGS) (void)level; NAME##_base ARGS;
#endif

static void tga_sgd_f32(float *p, const float *g, float *b, ptrdiff_t n,
                        const tga_sgd_args *a, int level) {
    TGA_OPTIM_DISPATCH(tga_sgd_f32, (p, g, b, n, a))
}
static void tga_sgd_f64(double *p, const double *g, double *b, ptrdiff_t n,
                        const tga_sgd_args *a, int level) {
    TGA_OPTIM_DISPATCH(tga_sgd_f64, (p, g, b, n, a))
}
static void tga_adam_f32(float *p, const float *g, float *m, float *v, ptrdiff_t n,
                         const tga_adam_args *a, int level) {
    TGA_OPTIM_DISPATCH(tga_adam_f32, (p, g, m, v, n, a))
}
static void tga_adam_f64(double *p, const double *g, double *m, double *v, ptrdiff_t n,
                         const tga_adam_args *a, int level) {
    TGA_OPTIM_DISPATCH(tga_adam_f64, (p, g, m, v, n, a))
}

#endif /* TGA_OPTIM_KERNEL_H */
