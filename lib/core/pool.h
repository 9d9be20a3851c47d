/* pool.h - the context's thread pool and scratch memory (internal). SPDX-License-Identifier: MIT
 *
 * A context owns at most one pool of (threads - 1) pthreads, started by
 * llmq_context_set_threads() and joined by llmq_context_destroy(). Work is a number of tasks;
 * the caller's thread takes part, and tasks are claimed one by one from an atomic counter, so
 * which thread runs a task is not fixed. Kernels therefore make every output element depend on
 * its task only, never on the thread that ran it: results are bit-identical for any thread
 * count. Waiting threads (workers for a job, the caller for the workers) spin on an atomic
 * for up to 0.3 ms before they sleep on a condition variable. */
#ifndef LLMQ_CORE_POOL_H
#define LLMQ_CORE_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "llmq/context.h"
#include "llmq/status.h"

typedef struct llmq_pool llmq_pool;

/* One task: `worker` is in [0, llmq_parallel_workers()) and is unique among the tasks that run
 * at the same time (for per-worker scratch). */
typedef void (*llmq_task_fn)(void *arg, int64_t task, int worker);

/* Start a pool of n - 1 threads (n >= 2). Fails with a message on ctx. */
llmq_status llmq_pool_create(llmq_context *ctx, int n, llmq_pool **out);
/* Join the threads and free the pool; NULL is a no-op. */
void llmq_pool_destroy(llmq_context *ctx, llmq_pool *pool);

/* Workers a job of `ntasks` tasks would use on ctx: min(threads, ntasks), at least 1. */
int llmq_parallel_workers(const llmq_context *ctx, int64_t ntasks);

/* Run fn(arg, t, worker) for t in [0, ntasks) on the context's threads; returns when all are
 * done. Never fails: without a pool the tasks run in order on the calling thread. */
void llmq_parallel_for(llmq_context *ctx, int64_t ntasks, llmq_task_fn fn, void *arg);

/* Context-owned scratch memory of at least `bytes` bytes, 64-byte aligned, kept between calls
 * (a context is used by one thread at a time). Valid until the next call or destroy. NULL on
 * failure (no message). */
void *llmq_scratch(llmq_context *ctx, size_t bytes);

#endif
