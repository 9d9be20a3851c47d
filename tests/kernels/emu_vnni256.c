/* emu_vnni256.c - the AVX-VNNI tier's kernels (XG_MR 6, V16 = two ymm) with VPDPBUSD emulated
 * in AVX2: built with the AVX2 flags for the kernel tests only, never part of libllmq.
 * SPDX-License-Identifier: MIT */
#include <stdbool.h>

#include "cpu/x86_common.h"
#include "vnni_emu.h"

#define XG_MR 6
#define XG_DPBUSD256(acc, a, b) emu_dpbusd((acc), (a), (b))
#include "cpu/x86_v16_ymm.h"
#include "cpu/x86_ukr_v16.h"

#include "cpu/x86_tier.h"
#include "emu_ops.h"

LLMQ_X86_TIER_OPS(llmq_test_emu_vnni256_ops, "cpu-avxvnni-emulated", LLMQ_CPU_ISA_AVX2);
