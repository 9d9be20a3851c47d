/* registry.c - the ordered list of backends and the choice for a context.
 * SPDX-License-Identifier: MIT */
#include <string.h>

#include "backend/backend.h"
#include "core/context_impl.h"
#include "core/fail.h"
#include "cpu/cpu_backends.h"

/* CPU tiers, most specialised first; the scalar reference is always last and never capped.
 * A tier is taken when it is at most min(host tier, cap): the host tier comes from CPUID and
 * XGETBV at context creation, so no instruction of a tier runs on a host without it. */
static const llmq_backend_ops *const cpu_backends[] = {
#if defined(LLMQ_HAVE_CPU_AVX512)
    &llmq_cpu_avx512_ops,
#endif
#if defined(LLMQ_HAVE_CPU_AVXVNNI)
    &llmq_cpu_avxvnni_ops,
#endif
#if defined(LLMQ_HAVE_CPU_AVX2)
    &llmq_cpu_avx2_ops,
#endif
    &llmq_cpu_scalar_ops,
};

static llmq_status select_cpu(llmq_context *ctx, const char *name, llmq_cpu_isa cap,
                              llmq_backend *out)
{
    llmq_cpu_isa limit = ctx->host_isa;
    if (cap != LLMQ_CPU_ISA_DEFAULT && cap < limit)
        limit = cap;
    const size_t n = sizeof cpu_backends / sizeof cpu_backends[0];
    for (size_t i = 0; i < n; i++) {
        const llmq_backend_ops *ops = cpu_backends[i];
        if (ops->version != LLMQ_BACKEND_OPS_VERSION)
            continue;
        if (ops->isa <= limit || i + 1 == n) {
            out->ops = ops;
            out->state = NULL;
            out->ctx = ctx; /* CPU kernels reach the context's thread pool through it */
            return LLMQ_OK;
        }
    }
    return llmq_fail(ctx, LLMQ_ERR_INTERNAL, "llmq_context_create",
                     "backend=%s: no CPU backend registered", name);
}

llmq_status llmq_backend_select(llmq_context *ctx, const char *name, llmq_cpu_isa cap)
{
    static const char fn[] = "llmq_context_create";
    llmq_backend cpu;
    LLMQ_TRY(select_cpu(ctx, name, cap, &cpu));
    ctx->host = cpu;
    if (strcmp(name, "cpu") != 0) {
        /* "cuda" and "auto": the CUDA module when it loads and finds a device */
        char why[LLMQ_ERROR_MESSAGE_SIZE - 64];
        llmq_backend dev;
        const llmq_status st = llmq_cuda_load(&dev, &ctx->module, why, sizeof why);
        if (st == LLMQ_OK) {
            dev.ctx = ctx;
            ctx->backend = dev;
            return LLMQ_OK;
        }
        if (strcmp(name, "cuda") == 0)
            return llmq_fail(ctx, st, fn, "backend=cuda: %s", why);
    }
    ctx->backend = cpu;
    return LLMQ_OK;
}

llmq_backend *llmq_backend_for(llmq_context *ctx, bool device)
{
    if (ctx->backend.ops->device == device)
        return &ctx->backend;
    return device ? NULL : &ctx->host;
}

llmq_status llmq_backend_status(llmq_context *ctx, const llmq_backend *be, const char *fn,
                                llmq_status st)
{
    if (st == LLMQ_OK)
        return LLMQ_OK;
    if (!be->ops->device) /* CPU kernels write their message on the context themselves */
        return st;
    const char *m = be->ops->message != NULL ? be->ops->message(be) : NULL;
    return llmq_fail(ctx, st, fn, "%s", m != NULL && m[0] != '\0' ? m : "backend failure");
}

const llmq_backend_ops *llmq_backend_fallback(const llmq_backend *be)
{
    const size_t n = sizeof cpu_backends / sizeof cpu_backends[0];
    for (size_t i = 0; i < n; i++)
        if (be->ops == cpu_backends[i])
            return &llmq_cpu_scalar_ops;
    return NULL;
}
