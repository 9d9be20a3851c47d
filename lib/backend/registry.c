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

llmq_status llmq_backend_select(llmq_context *ctx, const char *name, llmq_cpu_isa cap)
{
    static const char fn[] = "llmq_context_create";
    if (strcmp(name, "cuda") == 0)
        return llmq_fail(ctx, LLMQ_ERR_UNSUPPORTED, fn,
                         "backend=cuda: this build of llmq has no CUDA backend");
    /* "auto" and "cpu": no CUDA backend exists yet, so both mean the CPU. */
    llmq_cpu_isa limit = ctx->host_isa;
    if (cap != LLMQ_CPU_ISA_DEFAULT && cap < limit)
        limit = cap;
    const size_t n = sizeof cpu_backends / sizeof cpu_backends[0];
    for (size_t i = 0; i < n; i++) {
        const llmq_backend_ops *ops = cpu_backends[i];
        if (ops->version != LLMQ_BACKEND_OPS_VERSION)
            continue;
        if (ops->isa <= limit || i + 1 == n) {
            ctx->backend.ops = ops;
            ctx->backend.state = NULL;
            ctx->backend.ctx = ctx;
            return LLMQ_OK;
        }
    }
    return llmq_fail(ctx, LLMQ_ERR_INTERNAL, fn, "backend=%s: no CPU backend registered", name);
}
