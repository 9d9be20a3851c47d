/* hwcaps.h - host CPU feature detection (internal). SPDX-License-Identifier: MIT */
#ifndef LLMQ_BACKEND_HWCAPS_H
#define LLMQ_BACKEND_HWCAPS_H

#include "llmq/context.h"

/* Best tier the host can run: CPUID features and, through XGETBV, the register state the OS
 * saves (YMM for AVX2, opmask/ZMM for AVX-512). Called at context creation, never cached
 * in a global. */
llmq_cpu_isa llmq_hwcaps_detect(void);

#endif
