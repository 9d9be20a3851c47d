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

#include "cpu/x86_gemm.h"
#include "cpu/x86_quant.h"
#include "emu_ops.h"

const llmq_backend_ops llmq_test_emu_vnni256_ops = {
    .version = LLMQ_BACKEND_OPS_VERSION,
    .name = "cpu-avxvnni-emulated",
    .isa = LLMQ_CPU_ISA_AVX2,
    .quantize = xq_quantize,
    .dequantize = xq_dequantize,
    .range = xq_range,
    .pack = llmq_cpu_scalar_pack,
    .unpack = llmq_cpu_scalar_unpack,
    .matmul = xg_matmul,
};
