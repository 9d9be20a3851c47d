/* context_impl.h - the context's private layout and memory helpers (internal).
 * SPDX-License-Identifier: MIT */
#ifndef LLMQ_CORE_CONTEXT_IMPL_H
#define LLMQ_CORE_CONTEXT_IMPL_H

#include <stddef.h>

#include "backend/backend.h"
#include "core/fail.h"
#include "llmq/context.h"

#define LLMQ_ERROR_MESSAGE_SIZE 512
#define LLMQ_ALIGNMENT 64

struct llmq_pool;

struct llmq_context {
    llmq_allocator allocator;
    llmq_backend backend; /* the chosen backend: a CPU tier or the CUDA module */
    llmq_backend host;    /* the CPU tier that runs ops on host tensors (== backend on CPU) */
    void *module;         /* dlopen handle of libllmq-cuda.so, or NULL */
    llmq_cpu_isa host_isa;
    int threads;             /* llmq_context_set_threads(); 1 by default */
    struct llmq_pool *pool;  /* threads - 1 workers, NULL when threads == 1 */
    void *scratch;           /* llmq_scratch(): kernel workspace kept between calls */
    size_t scratch_size;
    char last_error[LLMQ_ERROR_MESSAGE_SIZE];
};

/* Aligned allocation through the context's allocator; NULL on failure (no message). */
void *llmq_mem_alloc(llmq_context *ctx, size_t size);
/* As llmq_mem_alloc, zero-filled. */
void *llmq_mem_calloc(llmq_context *ctx, size_t size);
/* Free memory from llmq_mem_alloc; NULL is a no-op. */
void llmq_mem_free(llmq_context *ctx, void *ptr);

/* Out-of-memory failure naming what could not be allocated. */
llmq_status llmq_fail_oom(llmq_context *ctx, const char *fn, const char *what, size_t bytes);

/* Entry-point check: ctx is non-NULL and was created successfully (a context returned by a
 * failed llmq_context_create only answers llmq_context_last_error). */
llmq_status llmq_context_check(llmq_context *ctx, const char *fn);
#define LLMQ_CHECK_CONTEXT(ctx) LLMQ_TRY(llmq_context_check((ctx), __func__))

#endif
