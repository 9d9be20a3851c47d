/* kern_avx2.c - the AVX2 tier (with FMA and F16C): quantize, dequantize, range and matmul
 * kernels. Built with -mavx2 -mfma -mf16c only; selected at run time when CPUID and XGETBV
 * say the host runs AVX2 (backend/hwcaps_x86.c). SPDX-License-Identifier: MIT
 *
 * AVX2 has no VPDPBUSD. Its microkernel widens both operands to int16 (A when packed, B with
 * vpmovsxbw in registers) and multiplies with vpmaddwd, whose pairs of int16 products are exact
 * in int32; it never uses vpmaddubsw, whose int16 sums saturate. */
#include <stdbool.h>

#include "cpu/x86_common.h"

#define XG_MR 6
#define XG_NRV 8
#define XG_A_BYTES 2

/* c[r][0..8) (+)= sum over q of A16[q][r][0..4) . B[q][column][0..4). Each accumulator lane
 * holds, for one column, the sum of k = 0, 1 or of k = 2, 3 (vpmaddwd pairs); vphaddd folds
 * the two at the end. Exact: |a'| <= 255, |b'| <= 128. */
/* The full 6-row tile, its loop in inline assembly: 12 accumulators in ymm0..11 (chosen by
 * the compiler), the two widened B vectors, the broadcast A and one product in ymm12..15. The
 * compilers' own allocation of this loop spills or copies registers (GCC 12), which costs a
 * third of the speed. Per k4 block: 2 vpmovsxbw, 6 vpbroadcastq, 12 vpmaddwd, 12 vpaddd. */
static inline void xg_ukr_avx2_6(const uint8_t *ap, const int8_t *b, int64_t k4n, int32_t *c,
                                 int64_t ldc, bool add)
{
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256i c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    if (k4n > 0) {
#define XG_ROW(OFF, C0, C1)                                                                    \
    "vpbroadcastq " #OFF "(%[a]), %%ymm14\n\t"                                                 \
    "vpmaddwd %%ymm14, %%ymm12, %%ymm15\n\t"                                                   \
    "vpaddd %%ymm15, %[" #C0 "], %[" #C0 "]\n\t"                                               \
    "vpmaddwd %%ymm14, %%ymm13, %%ymm15\n\t"                                                   \
    "vpaddd %%ymm15, %[" #C1 "], %[" #C1 "]\n\t"
        __asm__("1:\n\t"
                "vpmovsxbw (%[b]), %%ymm12\n\t"
                "vpmovsxbw 16(%[b]), %%ymm13\n\t"
                XG_ROW(0, c00, c01) XG_ROW(8, c10, c11) XG_ROW(16, c20, c21)
                XG_ROW(24, c30, c31) XG_ROW(32, c40, c41) XG_ROW(40, c50, c51)
                "add $64, %[b]\n\t"
                "add $48, %[a]\n\t"
                "dec %[n]\n\t"
                "jnz 1b\n\t"
                : [c00] "+x"(c00), [c01] "+x"(c01), [c10] "+x"(c10), [c11] "+x"(c11),
                  [c20] "+x"(c20), [c21] "+x"(c21), [c30] "+x"(c30), [c31] "+x"(c31),
                  [c40] "+x"(c40), [c41] "+x"(c41), [c50] "+x"(c50), [c51] "+x"(c51),
                  [a] "+r"(ap), [b] "+r"(b), [n] "+r"(k4n)
                :
                : "xmm12", "xmm13", "xmm14", "xmm15", "cc", "memory");
#undef XG_ROW
    }
    const __m256i s[6] = {_mm256_hadd_epi32(c00, c01), _mm256_hadd_epi32(c10, c11),
                          _mm256_hadd_epi32(c20, c21), _mm256_hadd_epi32(c30, c31),
                          _mm256_hadd_epi32(c40, c41), _mm256_hadd_epi32(c50, c51)};
    for (int r = 0; r < 6; r++) {
        __m256i v = _mm256_permute4x64_epi64(s[r], 0xd8);
        int32_t *cr = c + r * ldc;
        if (add)
            v = _mm256_add_epi32(v, _mm256_loadu_si256((const __m256i *)cr));
        _mm256_storeu_si256((__m256i *)cr, v);
    }
}

static LLMQ_ALWAYS_INLINE void xg_ukr_body(int mr, const void *a, const int8_t *b, int64_t k4n,
                                           int32_t *c, int64_t ldc, bool add)
{
    const uint8_t *ap = a;
    if (mr == XG_MR) {
        xg_ukr_avx2_6(ap, b, k4n, c, ldc, add);
        return;
    }
    __m256i acc0[XG_MR], acc1[XG_MR];
    LLMQ_UNROLL
    for (int r = 0; r < XG_MR; r++)
        acc0[r] = acc1[r] = _mm256_setzero_si256();
    for (int64_t q = 0; q < k4n; q++) {
        /* columns 0..3 and 4..7, 4 codes each, as int16 */
        const __m256i b0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + q * 64)));
        const __m256i b1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + q * 64 + 16)));
        LLMQ_UNROLL
        for (int r = 0; r < mr; r++) {
            int64_t x;
            memcpy(&x, ap + ((size_t)q * XG_MR + (size_t)r) * 8, 8);
            const __m256i av = _mm256_set1_epi64x(x); /* a'0..a'3 as int16, repeated */
            acc0[r] = _mm256_add_epi32(acc0[r], _mm256_madd_epi16(b0, av));
            acc1[r] = _mm256_add_epi32(acc1[r], _mm256_madd_epi16(b1, av));
        }
    }
    LLMQ_UNROLL
    for (int r = 0; r < mr; r++) {
        /* hadd: [c0 c1 c4 c5 | c2 c3 c6 c7]; the permute puts the columns in order */
        __m256i s = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc0[r], acc1[r]), 0xd8);
        int32_t *cr = c + r * ldc;
        if (add)
            s = _mm256_add_epi32(s, _mm256_loadu_si256((const __m256i *)cr));
        _mm256_storeu_si256((__m256i *)cr, s);
    }
}

#include "cpu/x86_tier.h"

LLMQ_X86_TIER_OPS(llmq_cpu_avx2_ops, "cpu-avx2", LLMQ_CPU_ISA_AVX2);
