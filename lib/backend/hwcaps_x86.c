/* hwcaps_x86.c - CPUID/XGETBV feature detection. SPDX-License-Identifier: MIT */
#include <stdint.h>

#include "backend/hwcaps.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

llmq_cpu_isa llmq_hwcaps_detect(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return LLMQ_CPU_ISA_SCALAR;
    const int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1,
              f16c = (c >> 29) & 1;
    if (!osxsave || !avx)
        return LLMQ_CPU_ISA_SCALAR;
    const uint64_t xcr0 = xgetbv0();
    const int ymm_state = (xcr0 & 0x6) == 0x6;    /* SSE | AVX */
    const int zmm_state = (xcr0 & 0xe6) == 0xe6;  /* + opmask | ZMM_Hi256 | Hi16_ZMM */
    if (!ymm_state || __get_cpuid_max(0, NULL) < 7)
        return LLMQ_CPU_ISA_SCALAR;
    unsigned a7, b7, c7, d7, a71, b71, c71, d71;
    __cpuid_count(7, 0, a7, b7, c7, d7);
    __cpuid_count(7, 1, a71, b71, c71, d71);
    (void)a7; (void)d7; (void)b71; (void)c71; (void)d71;
    const int avx2 = (b7 >> 5) & 1;
    const int avx512f = (b7 >> 16) & 1, avx512bw = (b7 >> 30) & 1, avx512vl = (b7 >> 31) & 1;
    const int avx512vnni = (c7 >> 11) & 1;
    const int avxvnni = (a71 >> 4) & 1;
    if (!(avx2 && fma && f16c))
        return LLMQ_CPU_ISA_SCALAR;
    if (zmm_state && avx512f && avx512bw && avx512vl && avx512vnni)
        return LLMQ_CPU_ISA_AVX512;
    if (avxvnni)
        return LLMQ_CPU_ISA_AVXVNNI;
    return LLMQ_CPU_ISA_AVX2;
}
#else
llmq_cpu_isa llmq_hwcaps_detect(void)
{
    return LLMQ_CPU_ISA_SCALAR;
}
#endif
