/* CPU feature probe shared by every kernel family (GEMM, rows, attention, optim).
 *
 * Every family compiles its inner loops once per ISA level, with
 * __attribute__((target(...))) on the AVX bodies, so a module built without -march loads on
 * any x86-64 CPU; the level a family runs is chosen at run time (tinygradattn.backend.isa,
 * the state in _support.pyx) among the levels this probe says the CPU runs:
 *
 *   level  name      needs (__builtin_cpu_supports)
 *   2      avx512    avx512f, avx512dq, avx512vl, avx2, fma (the union the families use)
 *   1      avx2      avx2, fma
 *   0      generic   nothing: plain C for the baseline ISA (the only level off x86 / gcc-clang)
 */
#ifndef TGA_CPU_FEATURES_H
#define TGA_CPU_FEATURES_H

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define TGA_CPU_X86 1
#else
#define TGA_CPU_X86 0
#endif

#define TGA_ISA_GENERIC 0
#define TGA_ISA_AVX2 1
#define TGA_ISA_AVX512 2
#define TGA_N_ISA_LEVELS 3

static const char *const tga_isa_names[TGA_N_ISA_LEVELS] = {"generic", "avx2", "avx512"};

/* Can this CPU (and OS) run ISA level `level`? 0 for a level out of range. */
static inline int tga_cpu_supports_isa(int level) {
    if (level == TGA_ISA_GENERIC) return 1;
#if TGA_CPU_X86
    __builtin_cpu_init();
    if (level == TGA_ISA_AVX2)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (level == TGA_ISA_AVX512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")
               && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx2")
               && __builtin_cpu_supports("fma");
#endif
    return 0;
}

#endif /* TGA_CPU_FEATURES_H */
