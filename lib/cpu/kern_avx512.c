/* kern_avx512.c - the AVX-512 tier: F, BW, VL and VNNI. Built with -mavx2 -mfma -mf16c
 * -mavx512f -mavx512bw -mavx512vl -mavx512vnni; selected only when CPUID reports all of them
 * and XGETBV shows the opmask and ZMM state enabled. Same driver and kernels as the AVX2 tier;
 * the matmul microkernel is the VNNI one of the AVX-VNNI tier (x86_ukr_v16.h) with V16 one zmm
 * register: 12 rows x 32 columns (two panels) per tile, two 64-byte B loads, 12 broadcasts of
 * A and 24 VPDPBUSD per k4 block.
 * SPDX-License-Identifier: MIT */
#include <stdbool.h>

#include "cpu/x86_common.h"

#define XG_MR 12
#define XG_DPBUSD256(acc, a, b) _mm256_dpbusd_epi32((acc), (a), (b)) /* GEMV */
#define XG_GEMV_ZMM /* the VNNI GEMV 64 k at a time */
#define XG_WO_ZMM /* weight-only products with 512-bit vectors */
#define XG_NP 2 /* 12 rows x 2 panels: 24 accumulators of the 32 zmm */

typedef __m512i V16;

static LLMQ_ALWAYS_INLINE V16 V16_ZERO(void)
{
    return _mm512_setzero_si512();
}

static LLMQ_ALWAYS_INLINE V16 V16_LOADB(const int8_t *p)
{
    return _mm512_loadu_si512((const void *)p);
}

static LLMQ_ALWAYS_INLINE V16 V16_BCAST(int32_t x)
{
    return _mm512_set1_epi32(x);
}

static LLMQ_ALWAYS_INLINE V16 V16_DP(V16 acc, V16 a, V16 b)
{
    return _mm512_dpbusd_epi32(acc, a, b);
}

static LLMQ_ALWAYS_INLINE void V16_STORE(int32_t *c, V16 v, bool add)
{
    if (add)
        v = _mm512_add_epi32(v, _mm512_loadu_si512((const void *)c));
    _mm512_storeu_si512((void *)c, v);
}

#include "cpu/x86_ukr_v16.h"

#include "cpu/x86_tier.h"

LLMQ_X86_TIER_OPS(llmq_cpu_avx512_ops, "cpu-avx512", LLMQ_CPU_ISA_AVX512);
