/* version.c - run-time version and build information. SPDX-License-Identifier: MIT */
#include "build_config.h"
#include "llmq/version.h"

uint32_t llmq_version_number(void)
{
    return LLMQ_VERSION_NUMBER;
}

const char *llmq_version_string(void)
{
    return LLMQ_VERSION_STRING;
}

const char *llmq_build_info(void)
{
    return "version: " LLMQ_VERSION_STRING "\n"
           "backends: " LLMQ_BUILD_BACKENDS "\n"
           "cpu isas: " LLMQ_BUILD_CPU_ISAS "\n"
           "cuda archs: " LLMQ_BUILD_CUDA_ARCHS "\n"
           "compiler: " LLMQ_BUILD_COMPILER "\n";
}
