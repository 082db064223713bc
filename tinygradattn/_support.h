/* C helpers of the kernel support layer (_support.pxd): OpenMP queries and aligned scratch.
 *
 * No `cimport openmp` in the .pyx files: every module must build without OpenMP, so the
 * queries are guarded by `#ifdef _OPENMP` here. Scratch is 64-byte aligned (one cache line,
 * one zmm register).
 */
#ifndef TGA_SUPPORT_H
#define TGA_SUPPORT_H

#include <stdint.h>
#include <stdlib.h>

#ifdef _OPENMP
#include <omp.h>
static inline int tga_openmp_enabled(void) { return 1; }
static inline int tga_omp_max_threads(void) { return omp_get_max_threads(); }
#else
static inline int tga_openmp_enabled(void) { return 0; }
static inline int tga_omp_max_threads(void) { return 1; }
#endif

/* 64-byte aligned malloc; the raw pointer is kept just below the aligned block. */
static inline void *tga_aligned_malloc(size_t n_bytes) {
    void *raw = malloc(n_bytes + 64 + sizeof(void *));
    uintptr_t p;
    if (raw == NULL) return NULL;
    p = ((uintptr_t)raw + sizeof(void *) + 63) & ~(uintptr_t)63;
    ((void **)p)[-1] = raw;
    return (void *)p;
}

static inline void tga_aligned_free(void *p) {
    if (p != NULL) free(((void **)p)[-1]);
}

#endif /* TGA_SUPPORT_H */
