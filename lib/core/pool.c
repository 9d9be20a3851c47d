/* pool.c - the context's pthread pool and scratch memory. SPDX-License-Identifier: MIT */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "core/context_impl.h"
#include "core/fail.h"
#include "core/pool.h"

struct llmq_pool {
    pthread_mutex_t lock;
    pthread_cond_t wake; /* workers wait here for a new generation (or stop) */
    pthread_cond_t done; /* the caller waits here for the workers to finish a job */
    int nthreads;        /* worker threads, excluding the caller */
    int started;         /* threads actually created */
    pthread_t *threads;
    /* the current job, published under `lock` with a new generation */
    uint64_t generation;
    bool stop;
    llmq_task_fn fn;
    void *arg;
    int64_t ntasks;
    int active;          /* workers taking part in this job */
    int finished;        /* of those, how many are done */
    atomic_llong next;   /* next task to claim */
};

typedef struct worker_start {
    llmq_pool *pool;
    int index; /* worker number, 1.. (the caller is 0) */
} worker_start;

static void run_tasks(llmq_pool *p, int worker)
{
    for (;;) {
        const long long t = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (t >= p->ntasks)
            return;
        p->fn(p->arg, (int64_t)t, worker);
    }
}

static void *worker_main(void *arg)
{
    worker_start ws = *(worker_start *)arg;
    llmq_pool *p = ws.pool;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->stop && p->generation == seen)
            pthread_cond_wait(&p->wake, &p->lock);
        if (p->stop)
            break;
        seen = p->generation;
        if (ws.index >= p->active)
            continue; /* not needed for this job */
        pthread_mutex_unlock(&p->lock);
        run_tasks(p, ws.index);
        pthread_mutex_lock(&p->lock);
        if (++p->finished == p->active - 1)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static void stop_threads(llmq_pool *p)
{
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->started; i++)
        pthread_join(p->threads[i], NULL);
}

llmq_status llmq_pool_create(llmq_context *ctx, int n, llmq_pool **out)
{
    static const char fn[] = "llmq_context_set_threads";
    *out = NULL;
    llmq_pool *p = llmq_mem_calloc(ctx, sizeof *p);
    worker_start *starts = NULL;
    if (p == NULL)
        return llmq_fail_oom(ctx, fn, "pool", sizeof *p);
    p->nthreads = n - 1;
    p->threads = llmq_mem_calloc(ctx, sizeof(pthread_t) * (size_t)p->nthreads);
    starts = llmq_mem_calloc(ctx, sizeof(worker_start) * (size_t)p->nthreads);
    if (p->threads == NULL || starts == NULL) {
        llmq_mem_free(ctx, starts);
        llmq_mem_free(ctx, p->threads);
        llmq_mem_free(ctx, p);
        return llmq_fail_oom(ctx, fn, "threads", sizeof(pthread_t) * (size_t)(n - 1));
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->next, 0);
    int err = 0;
    for (int i = 0; i < p->nthreads; i++) {
        starts[i] = (worker_start){p, i + 1};
        err = pthread_create(&p->threads[i], NULL, worker_main, &starts[i]);
        if (err != 0)
            break;
        p->started++;
    }
    if (err != 0) {
        stop_threads(p);
        pthread_cond_destroy(&p->done);
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->lock);
        llmq_mem_free(ctx, starts);
        llmq_mem_free(ctx, p->threads);
        llmq_mem_free(ctx, p);
        return llmq_fail(ctx, LLMQ_ERR_OUT_OF_MEMORY, fn,
                         "threads=%d: pthread_create failed (%s); allocation failed", n,
                         strerror(err));
    }
    /* the start records must outlive the workers' first read: wait until each has read its
     * record by running one empty job over all of them */
    pthread_mutex_lock(&p->lock);
    p->fn = NULL;
    p->ntasks = 0;
    p->active = n;
    p->finished = 0;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    while (p->finished < p->active - 1)
        pthread_cond_wait(&p->done, &p->lock);
    pthread_mutex_unlock(&p->lock);
    llmq_mem_free(ctx, starts);
    *out = p;
    return LLMQ_OK;
}

void llmq_pool_destroy(llmq_context *ctx, llmq_pool *p)
{
    if (p == NULL)
        return;
    stop_threads(p);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    llmq_mem_free(ctx, p->threads);
    llmq_mem_free(ctx, p);
}

int llmq_parallel_workers(const llmq_context *ctx, int64_t ntasks)
{
    const int64_t t = ctx->pool != NULL ? ctx->threads : 1;
    const int64_t w = t < ntasks ? t : ntasks;
    return w < 1 ? 1 : (int)w;
}

void llmq_parallel_for(llmq_context *ctx, int64_t ntasks, llmq_task_fn fn, void *arg)
{
    const int workers = llmq_parallel_workers(ctx, ntasks);
    if (workers <= 1) {
        for (int64_t t = 0; t < ntasks; t++)
            fn(arg, t, 0);
        return;
    }
    llmq_pool *p = ctx->pool;
    pthread_mutex_lock(&p->lock);
    p->fn = fn;
    p->arg = arg;
    p->ntasks = ntasks;
    p->active = workers;
    p->finished = 0;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    run_tasks(p, 0);
    pthread_mutex_lock(&p->lock);
    while (p->finished < p->active - 1)
        pthread_cond_wait(&p->done, &p->lock);
    pthread_mutex_unlock(&p->lock);
}

void *llmq_scratch(llmq_context *ctx, size_t bytes)
{
    if (bytes <= ctx->scratch_size && ctx->scratch != NULL)
        return ctx->scratch;
    llmq_mem_free(ctx, ctx->scratch);
    ctx->scratch_size = 0;
    ctx->scratch = llmq_mem_alloc(ctx, bytes);
    if (ctx->scratch != NULL)
        ctx->scratch_size = bytes;
    return ctx->scratch;
}
