/* context.c - context creation, options and queries. SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/hwcaps.h"
#include "core/abi_check.h"
#include "core/context_impl.h"
#include "core/fail.h"
#include "core/pool.h"

/* First version of the options struct: everything up to and including `reserved`. */
#define OPTIONS_V1_SIZE sizeof(llmq_context_options)

static void options_init(llmq_context_options *o)
{
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
}

llmq_status llmq_context_options_defaults(llmq_context_options *options, size_t size)
{
    if (options == NULL)
        return LLMQ_ERR_INVALID_ARG;
    if (size < OPTIONS_V1_SIZE || size > 4096)
        return LLMQ_ERR_ABI;
    memset(options, 0, size);
    options->size = size;
    return LLMQ_OK;
}

static const char *const isa_names[] = {
    [LLMQ_CPU_ISA_DEFAULT] = "default", [LLMQ_CPU_ISA_SCALAR] = "scalar",
    [LLMQ_CPU_ISA_AVX2] = "avx2",       [LLMQ_CPU_ISA_AVXVNNI] = "avxvnni",
    [LLMQ_CPU_ISA_AVX512] = "avx512",
};

const char *llmq_cpu_isa_name(llmq_cpu_isa isa)
{
    if ((unsigned)isa < sizeof isa_names / sizeof isa_names[0])
        return isa_names[isa];
    return "unknown";
}

/* Resolve the tier cap: the option wins, then $LLMQ_CPU_ISA, else none. */
static llmq_status resolve_cap(llmq_context *ctx, llmq_cpu_isa option, llmq_cpu_isa *cap)
{
    static const char fn[] = "llmq_context_create";
    if ((unsigned)option > LLMQ_CPU_ISA_AVX512)
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn, "max_isa=%d: unknown CPU tier",
                         (int)option);
    *cap = option;
    if (option != LLMQ_CPU_ISA_DEFAULT)
        return LLMQ_OK;
    const char *env = getenv("LLMQ_CPU_ISA");
    if (env == NULL || env[0] == '\0')
        return LLMQ_OK;
    for (unsigned i = LLMQ_CPU_ISA_SCALAR; i <= LLMQ_CPU_ISA_AVX512; i++) {
        if (strcmp(env, isa_names[i]) == 0) {
            *cap = (llmq_cpu_isa)i;
            return LLMQ_OK;
        }
    }
    return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                     "LLMQ_CPU_ISA=%s: expected scalar, avx2, avxvnni or avx512", env);
}

static llmq_status init_context(llmq_context *ctx, const llmq_context_options *o)
{
    static const char fn[] = "llmq_context_create";
    ctx->host_isa = llmq_hwcaps_detect();
    ctx->backend.ops = NULL;
    const char *backend = o->backend;
    if (backend == NULL) {
        backend = getenv("LLMQ_BACKEND");
        if (backend == NULL || backend[0] == '\0')
            backend = "auto";
    }
    if (strcmp(backend, "auto") != 0 && strcmp(backend, "cpu") != 0 &&
        strcmp(backend, "cuda") != 0)
        return llmq_fail(ctx, LLMQ_ERR_INVALID_ARG, fn,
                         "backend=%s: expected \"auto\", \"cpu\" or \"cuda\"", backend);
    llmq_cpu_isa cap;
    LLMQ_TRY(resolve_cap(ctx, o->max_isa, &cap));
    return llmq_backend_select(ctx, backend, cap);
}

/* Default-allocator context used when the caller's allocator itself cannot be trusted. */
static llmq_status create(llmq_context **out, const llmq_context_options *o, llmq_status early)
{
    llmq_allocator al = {0};
    if (early == LLMQ_OK)
        al = o->allocator;
    llmq_context *ctx = al.alloc != NULL ? al.alloc(al.user, sizeof *ctx, LLMQ_ALIGNMENT)
                                         : calloc(1, sizeof *ctx);
    *out = ctx;
    if (ctx == NULL)
        return LLMQ_ERR_OUT_OF_MEMORY;
    memset(ctx, 0, sizeof *ctx);
    ctx->allocator = al;
    ctx->threads = 1;
    if (early != LLMQ_OK) {
        /* report the options problem on a usable context */
        ctx->host_isa = llmq_hwcaps_detect();
        ctx->backend.ops = NULL;
        return early;
    }
    return init_context(ctx, o);
}

llmq_status llmq_context_create_with_options(llmq_context **out,
                                             const llmq_context_options *options)
{
    static const char fn[] = "llmq_context_create_with_options";
    if (out == NULL)
        return LLMQ_ERR_INVALID_ARG;
    *out = NULL;
    llmq_context_options o;
    llmq_status early = LLMQ_OK;
    const char *why = NULL;
    options_init(&o);
    if (options != NULL) {
        early = llmq_abi_check(options, options->size, OPTIONS_V1_SIZE,
                               offsetof(llmq_context_options, reserved));
        if (early == LLMQ_OK && options->reserved0_ != 0)
            early = LLMQ_ERR_ABI;
        if (early == LLMQ_OK) {
            memcpy(&o, options, sizeof o);
            if ((o.allocator.alloc == NULL) != (o.allocator.free == NULL)) {
                early = LLMQ_ERR_INVALID_ARG;
                why = "allocator: alloc and free must both be set or both be NULL";
            }
        } else {
            why = "options: size must be sizeof(llmq_context_options) and reserved fields 0";
        }
    }
    llmq_status st = create(out, &o, early);
    if (early != LLMQ_OK && *out != NULL)
        llmq_fail(*out, early, fn, "%s (size=%zu)", why, options->size);
    return st;
}

llmq_status llmq_context_create(llmq_context **out, const char *backend)
{
    if (out == NULL)
        return LLMQ_ERR_INVALID_ARG;
    llmq_context_options o;
    options_init(&o);
    o.backend = backend;
    return llmq_context_create_with_options(out, &o);
}

void llmq_context_destroy(llmq_context *ctx)
{
    if (ctx == NULL)
        return;
    if (ctx->backend.ops != NULL && ctx->backend.ops->device)
        llmq_cuda_unload(&ctx->backend, ctx->module);
    llmq_pool_destroy(ctx, ctx->pool);
    llmq_mem_free(ctx, ctx->scratch);
    if (ctx->allocator.free != NULL)
        ctx->allocator.free(ctx->allocator.user, ctx);
    else
        free(ctx);
}

llmq_status llmq_context_check(llmq_context *ctx, const char *fn)
{
    if (ctx == NULL)
        return LLMQ_ERR_INVALID_ARG;
    if (ctx->backend.ops == NULL)
        return llmq_fail(ctx, LLMQ_ERR_STATE, fn,
                         "ctx=%p: its creation failed; only llmq_context_last_error() and "
                         "llmq_context_destroy() may be called", (void *)ctx);
    return LLMQ_OK;
}

const char *llmq_context_last_error(const llmq_context *ctx)
{
    return ctx != NULL ? ctx->last_error : "";
}

const char *llmq_context_backend_name(const llmq_context *ctx)
{
    if (ctx == NULL || ctx->backend.ops == NULL)
        return "";
    if (ctx->backend.ops->instance_name != NULL)
        return ctx->backend.ops->instance_name(&ctx->backend);
    return ctx->backend.ops->name;
}

llmq_cpu_isa llmq_context_cpu_isa(const llmq_context *ctx)
{
    if (ctx == NULL || ctx->backend.ops == NULL)
        return LLMQ_CPU_ISA_DEFAULT;
    return ctx->host.ops->isa; /* the tier of host tensors, also on a CUDA context */
}

llmq_status llmq_context_set_stream(llmq_context *ctx, void *stream)
{
    LLMQ_CHECK_CONTEXT(ctx);
    const llmq_backend_ops *ops = ctx->backend.ops;
    if (ops->set_stream == NULL) {
        if (stream == NULL)
            return LLMQ_OK;
        return llmq_fail(ctx, LLMQ_ERR_UNSUPPORTED, __func__,
                         "stream=%p: backend %s has no streams (only NULL is accepted)", stream,
                         llmq_context_backend_name(ctx));
    }
    return llmq_backend_status(ctx, &ctx->backend, __func__,
                               ops->set_stream(&ctx->backend, stream));
}

llmq_status llmq_context_sync(llmq_context *ctx)
{
    LLMQ_CHECK_CONTEXT(ctx);
    const llmq_backend_ops *ops = ctx->backend.ops;
    if (ops->sync == NULL)
        return LLMQ_OK;
    int64_t bad = -1;
    const llmq_status st = ops->sync(&ctx->backend, &bad);
    if (st == LLMQ_ERR_NON_FINITE)
        return llmq_fail(ctx, st, __func__,
                         "src[%lld]=nan: NaN cannot be quantized (flat index; found on the "
                         "device by a quantize call since the last sync)", (long long)bad);
    return llmq_backend_status(ctx, &ctx->backend, __func__, st);
}

llmq_cpu_isa llmq_context_host_isa(const llmq_context *ctx)
{
    return ctx != NULL ? ctx->host_isa : LLMQ_CPU_ISA_DEFAULT;
}

llmq_status llmq_context_set_threads(llmq_context *ctx, int32_t threads)
{
    LLMQ_CHECK_CONTEXT(ctx);
    LLMQ_REQUIRE(ctx, threads >= 0 && threads <= LLMQ_MAX_THREADS,
                 "threads=%d: must be 0 (one per online CPU) to %d", (int)threads,
                 LLMQ_MAX_THREADS);
    int n = threads;
    if (n == 0) {
        const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        n = cpus < 1 ? 1 : cpus > LLMQ_MAX_THREADS ? LLMQ_MAX_THREADS : (int)cpus;
    }
    if (n == ctx->threads)
        return LLMQ_OK;
    llmq_pool *pool = NULL;
    if (n > 1)
        LLMQ_TRY(llmq_pool_create(ctx, n, &pool)); /* the old pool keeps running on failure */
    llmq_pool_destroy(ctx, ctx->pool);
    ctx->pool = pool;
    ctx->threads = n;
    return LLMQ_OK;
}

int32_t llmq_context_threads(const llmq_context *ctx)
{
    return ctx != NULL && ctx->backend.ops != NULL ? ctx->threads : 0;
}
