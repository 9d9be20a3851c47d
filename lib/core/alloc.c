/* alloc.c - aligned allocation through the context's allocator. SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "core/context_impl.h"

void *llmq_mem_alloc(llmq_context *ctx, size_t size)
{
    if (size == 0)
        size = 1;
    if (ctx->allocator.alloc != NULL)
        return ctx->allocator.alloc(ctx->allocator.user, size, LLMQ_ALIGNMENT);
    /* aligned_alloc wants a multiple of the alignment */
    if (size > SIZE_MAX - LLMQ_ALIGNMENT)
        return NULL;
    size_t rounded = (size + LLMQ_ALIGNMENT - 1) & ~(size_t)(LLMQ_ALIGNMENT - 1);
    return aligned_alloc(LLMQ_ALIGNMENT, rounded);
}

void *llmq_mem_calloc(llmq_context *ctx, size_t size)
{
    void *p = llmq_mem_alloc(ctx, size);
    if (p != NULL)
        memset(p, 0, size);
    return p;
}

void llmq_mem_free(llmq_context *ctx, void *ptr)
{
    if (ptr == NULL)
        return;
    if (ctx->allocator.free != NULL)
        ctx->allocator.free(ctx->allocator.user, ptr);
    else
        free(ptr);
}
