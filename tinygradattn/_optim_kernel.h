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
 * vectorised loop. One build per (dtype, ISA level of _cpu_features.h): this file includes
 * itself with TGA_OPT_BODY set, the loops compiled under __attribute__((target(...))) for
 * AVX2+FMA and AVX-512 and for the baseline; the level comes with each call.
 */
#ifndef TGA_OPT_BODY
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

/* ---- the loops (after #else below), once per (dtype, ISA): float / double x baseline,
 * AVX2 + FMA, AVX-512; fma() is explicit, so the ISA changes only the speed. ------------- */
#define TGA_OPT_CAT_(a, b) a##b
#define TGA_OPT_CAT(a, b) TGA_OPT_CAT_(a, b)
#define TGA_OPT_BODY 1
#define TGA_OPT_TARGET
#define TGA_OPT_T float
#define TGA_OPT_FMA fmaf
#define TGA_OPT_SQRT sqrtf
#define TGA_OPT_SFX _f32_base
#include "_optim_kernel.h"
#define TGA_OPT_TARGET
#define TGA_OPT_T double
#define TGA_OPT_FMA fma
#define TGA_OPT_SQRT sqrt
#define TGA_OPT_SFX _f64_base
#include "_optim_kernel.h"
#if TGA_CPU_X86
#define TGA_OPT_TARGET __attribute__((target("avx2,fma")))
#define TGA_OPT_T float
#define TGA_OPT_FMA fmaf
#define TGA_OPT_SQRT sqrtf
#define TGA_OPT_SFX _f32_avx2
#include "_optim_kernel.h"
#define TGA_OPT_TARGET __attribute__((target("avx2,fma")))
#define TGA_OPT_T double
#define TGA_OPT_FMA fma
#define TGA_OPT_SQRT sqrt
#define TGA_OPT_SFX _f64_avx2
#include "_optim_kernel.h"
#define TGA_OPT_TARGET __attribute__((target("avx512f,avx512vl,avx2,fma")))
#define TGA_OPT_T float
#define TGA_OPT_FMA fmaf
#define TGA_OPT_SQRT sqrtf
#define TGA_OPT_SFX _f32_avx512
#include "_optim_kernel.h"
#define TGA_OPT_TARGET __attribute__((target("avx512f,avx512vl,avx2,fma")))
#define TGA_OPT_T double
#define TGA_OPT_FMA fma
#define TGA_OPT_SQRT sqrt
#define TGA_OPT_SFX _f64_avx512
#include "_optim_kernel.h"
#endif
#undef TGA_OPT_BODY

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

#else /* TGA_OPT_BODY: one instantiation, for TGA_OPT_T (float, double), TGA_OPT_FMA and
       * TGA_OPT_SQRT (its fma / sqrt), TGA_OPT_TARGET and TGA_OPT_SFX (_f32_avx2, ...) */

#define T_ TGA_OPT_T
#define FMA_ TGA_OPT_FMA

TGA_OPT_TARGET static void TGA_OPT_CAT(tga_sgd, TGA_OPT_SFX)(
    T_ *__restrict__ p, const T_ *__restrict__ g, T_ *__restrict__ b, ptrdiff_t n,
    const tga_sgd_args *a) {
    const T_ wd = (T_)a->wd, mom = (T_)a->momentum, omd = (T_)a->one_minus_dampening;
    const T_ neg_lr = (T_)a->neg_lr;
    const int has_wd = a->wd != 0, has_mom = a->has_momentum;
    const int first = a->first_step, nesterov = a->nesterov;
    for (ptrdiff_t i = 0; i < n; i++) {
        T_ gi = g[i];
        if (has_wd) gi = FMA_(p[i], wd, gi);
        if (has_mom) {
            T_ bi = first ? gi : FMA_(gi, omd, b[i] * mom);
            b[i] = bi;
            gi = nesterov ? FMA_(bi, mom, gi) : bi;
        }
        p[i] = FMA_(gi, neg_lr, p[i]);
    }
}

TGA_OPT_TARGET static void TGA_OPT_CAT(tga_adam, TGA_OPT_SFX)(
    T_ *__restrict__ p, const T_ *__restrict__ g, T_ *__restrict__ m, T_ *__restrict__ v,
    ptrdiff_t n, const tga_adam_args *a) {
    const T_ decay = (T_)a->decay, wd = (T_)a->wd, w1 = (T_)a->w1;
    const T_ w1m1 = w1 - (T_)1;        /* torch: weight - Vectorized(1), in T */
    const T_ b2 = (T_)a->beta2, omb2 = (T_)a->one_minus_beta2, bc2s = (T_)a->bc2_sqrt;
    const T_ eps = (T_)a->eps, nss = (T_)a->neg_step_size;
    const int decoupled = a->decoupled && a->has_wd, l2 = !a->decoupled && a->has_wd;
    const int small = a->w1_small;
    for (ptrdiff_t i = 0; i < n; i++) {
        T_ gi = g[i], pi = p[i], mi = m[i];
        if (decoupled) pi = pi * decay;
        if (l2) gi = FMA_(pi, wd, gi);
        T_ d = gi - mi;
        mi = small ? FMA_(w1, d, mi) : FMA_(w1m1, d, gi);
        T_ vi = v[i] * b2 + (omb2 * gi) * gi;
        T_ denom = TGA_OPT_SQRT(vi) / bc2s + eps;
        p[i] = pi + (nss * mi) / denom;
        m[i] = mi;
        v[i] = vi;
    }
}

#undef T_
#undef FMA_
#undef TGA_OPT_TARGET
#undef TGA_OPT_T
#undef TGA_OPT_FMA
#undef TGA_OPT_SQRT
#undef TGA_OPT_SFX
#endif /* TGA_OPT_BODY */
