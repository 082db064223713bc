/* The float32 FMA peak of one core, measured: 12 independent chains of 512-bit FMAs (more
 * than latency x ports, so the ports stay busy), no memory traffic.
 *
 *   gcc -O2 -mavx512f -mfma benchmarks/fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak
 *
 * The GEMM targets of issue 3 quote a 2-core peak of ~540 GFLOP/s; this VM measures less
 * (benchmarks/README.md), and a GEMM's GFLOP/s reads against what this program prints.
 */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(void) {
    const __m512 m = _mm512_set1_ps(0.9999999f), c = _mm512_set1_ps(1e-7f);
    __m512 x0 = m, x1 = m, x2 = m, x3 = m, x4 = m, x5 = m, x6 = m, x7 = m, x8 = m, x9 = m,
           x10 = m, x11 = m;
    const long n = 200000000;
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now(), t;
        for (long r = 0; r < n; r++) {
#define TGA_FMA(x) x = _mm512_fmadd_ps(x, m, c);
            TGA_FMA(x0) TGA_FMA(x1) TGA_FMA(x2) TGA_FMA(x3) TGA_FMA(x4) TGA_FMA(x5)
            TGA_FMA(x6) TGA_FMA(x7) TGA_FMA(x8) TGA_FMA(x9) TGA_FMA(x10) TGA_FMA(x11)
            /* keep every chain in its register and in the loop */
            __asm__ volatile("" : "+v"(x0), "+v"(x1), "+v"(x2), "+v"(x3), "+v"(x4), "+v"(x5),
                             "+v"(x6), "+v"(x7), "+v"(x8), "+v"(x9), "+v"(x10), "+v"(x11));
        }
        t = now() - t0;
        best = t < best ? t : best;
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(x0, x1), _mm512_add_ps(x2, x3)),
                             _mm512_add_ps(_mm512_add_ps(x4, x5), _mm512_add_ps(x6, x7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(x8, x9), _mm512_add_ps(x10, x11)));
    printf("float32 AVX-512 FMA peak, one core: %.1f GFLOP/s (checksum %g)\n",
           2.0 * 16 * 12 * n / best / 1e9, (double)_mm512_reduce_add_ps(s));
    return 0;
}
