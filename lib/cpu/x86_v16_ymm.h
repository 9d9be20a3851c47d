/* x86_v16_ymm.h - V16 as two ymm registers, for 256-bit VPDPBUSD (AVX-VNNI) and its AVX2
 * emulation in the tests (internal). The includer defines XG_DPBUSD256(acc, a, b).
 * SPDX-License-Identifier: MIT */
#ifndef LLMQ_CPU_X86_V16_YMM_H
#define LLMQ_CPU_X86_V16_YMM_H

#include "cpu/x86_common.h"

typedef struct {
    __m256i lo, hi; /* columns 0..7, 8..15 */
} V16;

static LLMQ_ALWAYS_INLINE V16 V16_ZERO(void)
{
    return (V16){_mm256_setzero_si256(), _mm256_setzero_si256()};
}

static LLMQ_ALWAYS_INLINE V16 V16_LOADB(const int8_t *p)
{
    return (V16){_mm256_loadu_si256((const __m256i *)p),
                 _mm256_loadu_si256((const __m256i *)(p + 32))};
}

static LLMQ_ALWAYS_INLINE V16 V16_BCAST(int32_t x)
{
    const __m256i v = _mm256_set1_epi32(x);
    return (V16){v, v};
}

static LLMQ_ALWAYS_INLINE V16 V16_DP(V16 acc, V16 a, V16 b)
{
    return (V16){XG_DPBUSD256(acc.lo, a.lo, b.lo), XG_DPBUSD256(acc.hi, a.hi, b.hi)};
}

static LLMQ_ALWAYS_INLINE void V16_STORE(int32_t *c, V16 v, bool add)
{
    if (add) {
        v.lo = _mm256_add_epi32(v.lo, _mm256_loadu_si256((const __m256i *)c));
        v.hi = _mm256_add_epi32(v.hi, _mm256_loadu_si256((const __m256i *)(c + 8)));
    }
    _mm256_storeu_si256((__m256i *)c, v.lo);
    _mm256_storeu_si256((__m256i *)(c + 8), v.hi);
}

#endif
