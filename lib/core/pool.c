/* pool.c - the context's pthread pool and scratch memory. SPDX-License-Identifier: MIT */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "core/context_impl.h"
#include "core/fail.h"
#include "core/pool.h"

/* How long a thread spins on an atomic before sleeping on a condition variable, both when a
 * worker waits for the next job and when the caller waits for the last worker. Waking a
 * sleeping thread took 40 - 80 us on the build host (a VM), a fifth of an M = 1 matmul of
 * 4096 x 4096 on two threads; the consecutive matmuls of a decode step come well within it. */
#define POOL_SPIN_NS 300000

/* A job word: generation << 16 | threads taking part (LLMQ_MAX_THREADS < 1 << 16), published
 * in one atomic store so that no worker pairs a generation with another job's thread count. */
#define JOB_ACTIVE(w) ((int)((w) & 0xffff))

struct llmq_pool {
    pthread_mutex_t lock;
    pthread_cond_t wake; /* workers sleep here for a new job word (or stop) */
    pthread_cond_t done; /* the caller sleeps here for the workers to finish a job */
    int nthreads;        /* worker threads, excluding the caller */
    int started;         /* threads actually created */
    pthread_t *threads;
    /* the current job: fields written by the caller before it publishes `job` */
    llmq_task_fn fn;
    void *arg;
    int64_t ntasks;
    atomic_uint_fast64_t job; /* generation << 16 | active */
    atomic_bool stop;
    atomic_int finished;      /* active workers (not the caller) done with the job */
    atomic_llong next;        /* next task to claim */
};

typedef struct worker_start {
    llmq_pool *pool;
    int index; /* worker number, 1.. (the caller is 0) */
} worker_start;

static void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Spin for up to POOL_SPIN_NS while pred(p, v) is false; true when it became true. */
static bool spin_until(const llmq_pool *p, bool (*pred)(const llmq_pool *, uint64_t), uint64_t v)
{
    const int64_t t0 = now_ns();
    for (unsigned i = 1;; i++) {
        if (pred(p, v))
            return true;
        relax();
        if (i % 64 == 0 && now_ns() - t0 > POOL_SPIN_NS)
            return false;
    }
}

static bool new_job(const llmq_pool *p, uint64_t seen)
{
    return atomic_load_explicit(&p->stop, memory_order_relaxed) ||
           atomic_load_explicit(&p->job, memory_order_acquire) != seen;
}

static bool all_done(const llmq_pool *p, uint64_t workers)
{
    return (uint64_t)atomic_load_explicit(&p->finished, memory_order_acquire) == workers;
}

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
    for (;;) {
        if (!spin_until(p, new_job, seen)) {
            /* the caller publishes, then broadcasts under the lock: checked under the lock,
             * no job is missed */
            pthread_mutex_lock(&p->lock);
            while (!new_job(p, seen))
                pthread_cond_wait(&p->wake, &p->lock);
            pthread_mutex_unlock(&p->lock);
        }
        if (atomic_load_explicit(&p->stop, memory_order_relaxed))
            break;
        seen = atomic_load_explicit(&p->job, memory_order_acquire);
        const int active = JOB_ACTIVE(seen);
        if (ws.index >= active)
            continue; /* not needed for this job */
        run_tasks(p, ws.index);
        if (atomic_fetch_add_explicit(&p->finished, 1, memory_order_acq_rel) + 1 == active - 1) {
            pthread_mutex_lock(&p->lock);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->lock);
        }
    }
    return NULL;
}

/* Publish a job for `active` threads (the caller included) and wake sleeping workers. */
static void publish(llmq_pool *p, llmq_task_fn fn, void *arg, int64_t ntasks, int active)
{
    p->fn = fn;
    p->arg = arg;
    p->ntasks = ntasks;
    atomic_store_explicit(&p->finished, 0, memory_order_relaxed);
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    const uint64_t old = atomic_load_explicit(&p->job, memory_order_relaxed);
    pthread_mutex_lock(&p->lock);
    atomic_store_explicit(&p->job, ((old >> 16) + 1) << 16 | (uint64_t)active,
                          memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
}

/* Wait until the active - 1 workers of the current job are done. */
static void wait_workers(llmq_pool *p, int active)
{
    const uint64_t workers = (uint64_t)(active - 1);
    if (spin_until(p, all_done, workers))
        return;
    pthread_mutex_lock(&p->lock);
    while (!all_done(p, workers))
        pthread_cond_wait(&p->done, &p->lock);
    pthread_mutex_unlock(&p->lock);
}

static void stop_threads(llmq_pool *p)
{
    pthread_mutex_lock(&p->lock);
    atomic_store_explicit(&p->stop, true, memory_order_relaxed);
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
    atomic_init(&p->job, 0);
    atomic_init(&p->stop, false);
    atomic_init(&p->finished, 0);
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
    publish(p, NULL, NULL, 0, n);
    wait_workers(p, n);
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
    publish(p, fn, arg, ntasks, workers);
    run_tasks(p, 0);
    wait_workers(p, workers);
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
