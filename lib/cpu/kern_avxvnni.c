/* kern_avxvnni.c - the AVX-VNNI tier: AVX2 with the 256-bit VEX VPDPBUSD. Built with -mavx2
 * -mfma -mf16c -mavxvnni; selected only when CPUID reports AVX-VNNI (and AVX2, FMA, F16C with
 * the YMM state enabled). Same driver and kernels as the AVX2 tier; the matmul microkernel
 * multiplies u8 A by s8 B with VPDPBUSD. SPDX-License-Identifier: MIT */
#include <stdbool.h>

#include "cpu/x86_common.h"

#define XG_MR 6
#define XG_DPBUSD256(acc, a, b) _mm256_dpbusd_avx_epi32((acc), (a), (b))
#include "cpu/x86_v16_ymm.h"
#include "cpu/x86_ukr_v16.h"

#include "cpu/x86_tier.h"

LLMQ_X86_TIER_OPS(llmq_cpu_avxvnni_ops, "cpu-avxvnni", LLMQ_CPU_ISA_AVXVNNI);
