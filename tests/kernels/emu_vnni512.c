/* emu_vnni512.c - the AVX-512 tier's tile (XG_MR 12 rows x 2 panels of 16 columns) with
 * V16 as two ymm and VPDPBUSD emulated in AVX2: the AVX-512 driver and microkernel source,
 * run on an AVX2 host (kernel tests only, never part of libllmq). Only the five V16 operations
 * of kern_avx512.c (one intrinsic each) are not exercised. SPDX-License-Identifier: MIT */
#include <stdbool.h>

#include "cpu/x86_common.h"
#include "vnni_emu.h"

#define XG_MR 12
#define XG_NP 2 /* 12 rows x 2 panels: 24 accumulators of the 32 zmm */
#define XG_DPBUSD256(acc, a, b) emu_dpbusd((acc), (a), (b))
#include "cpu/x86_v16_ymm.h"
#include "cpu/x86_ukr_v16.h"

#include "cpu/x86_tier.h"
#include "emu_ops.h"

LLMQ_X86_TIER_OPS(llmq_test_emu_vnni512_ops, "cpu-avx512-emulated", LLMQ_CPU_ISA_AVX2);
