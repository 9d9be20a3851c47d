/* abi_check.c - validation of size-versioned structs. SPDX-License-Identifier: MIT */
#include "core/abi_check.h"

llmq_status llmq_abi_check(const void *p, size_t caller_size, size_t v1_size, size_t known)
{
    if (p == NULL || caller_size < v1_size || caller_size > 4096)
        return LLMQ_ERR_ABI;
    const unsigned char *b = p;
    for (size_t i = known; i < caller_size; i++)
        if (b[i] != 0)
            return LLMQ_ERR_ABI;
    return LLMQ_OK;
}
