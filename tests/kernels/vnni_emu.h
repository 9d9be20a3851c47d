/* vnni_emu.h - VPDPBUSD emulated exactly with AVX2, so that the VNNI tiers' microkernel and
 * packing run on hosts without VNNI (tests only). SPDX-License-Identifier: MIT */
#ifndef LLMQ_TEST_VNNI_EMU_H
#define LLMQ_TEST_VNNI_EMU_H

#include <immintrin.h>

/* acc + per int32 lane sum of 4 products u8(a) * s8(b): bytes at even and odd positions
 * widened to int16 and paired by vpmaddwd, each pair sum exact in int32. */
static inline __m256i emu_dpbusd(__m256i acc, __m256i a, __m256i b)
{
    const __m256i a_even = _mm256_and_si256(a, _mm256_set1_epi16(0x00ff));
    const __m256i a_odd = _mm256_srli_epi16(a, 8);
    const __m256i b_even = _mm256_srai_epi16(_mm256_slli_epi16(b, 8), 8);
    const __m256i b_odd = _mm256_srai_epi16(b, 8);
    const __m256i p = _mm256_add_epi32(_mm256_madd_epi16(a_even, b_even),
                                       _mm256_madd_epi16(a_odd, b_odd));
    return _mm256_add_epi32(acc, p);
}

#endif
