/* x86_tier.h - a tier's kernels and backend table, made from the shared x86 sources (internal).
 * SPDX-License-Identifier: MIT
 *
 * A tier's translation unit defines its microkernel (XG_MR, XG_NRV, XG_A_BYTES,
 * xg_ukr_body: x86_gemm.h), includes this file and names its table with LLMQ_X86_TIER_OPS.
 * Pack and unpack are the reference's (no tier accelerates them). */
#ifndef LLMQ_CPU_X86_TIER_H
#define LLMQ_CPU_X86_TIER_H

#include "cpu/x86_gemm.h"
#include "cpu/x86_qat.h"
#include "cpu/x86_quant.h"

#define LLMQ_X86_TIER_OPS(symbol, tier_name, tier_isa)                                         \
    const llmq_backend_ops symbol = {                                                          \
        .version = LLMQ_BACKEND_OPS_VERSION,                                                   \
        .name = (tier_name),                                                                   \
        .isa = (tier_isa),                                                                     \
        .quantize = xq_quantize,                                                               \
        .dequantize = xq_dequantize,                                                           \
        .range = xq_range,                                                                     \
        .histogram = llmq_cpu_scalar_histogram,                                                \
        .pack = llmq_cpu_scalar_pack,                                                          \
        .unpack = llmq_cpu_scalar_unpack,                                                      \
        .matmul = xg_matmul,                                                                   \
        .fake_quantize = xf_fake_quantize,                                                     \
        .fake_quantize_backward = xf_fake_quantize_backward,                                   \
    }

#endif
