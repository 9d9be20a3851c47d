/* tiers.c - per-tier contexts and groups for the kernel suites. SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/context_impl.h"
#include "emu_ops.h"
#include "tiers.h"

static llmq_context *capped(llmq_cpu_isa isa)
{
    llmq_context_options o;
    llmq_context *ctx = NULL;
    if (llmq_context_options_defaults(&o, sizeof o) != LLMQ_OK)
        return NULL;
    o.backend = "cpu";
    o.max_isa = isa;
    if (llmq_context_create_with_options(&ctx, &o) != LLMQ_OK) {
        fail_msg("context capped at %s: %s", llmq_cpu_isa_name(isa), llmq_context_last_error(ctx));
        llmq_context_destroy(ctx);
        return NULL;
    }
    return ctx;
}

llmq_context *tier_context(const tier *t)
{
    llmq_context *ctx = capped(t->isa);
    if (ctx != NULL && llmq_context_cpu_isa(ctx) != t->isa) {
        llmq_context_destroy(ctx);
        return NULL;
    }
    if (ctx != NULL && t->emulated) /* internal: swap in the emulated kernels' table */
        ctx->backend.ops = t->emulated == 1 ? &llmq_test_emu_vnni256_ops : &llmq_test_emu_vnni512_ops;
    return ctx;
}

llmq_context *scalar_context(void)
{
    return capped(LLMQ_CPU_ISA_SCALAR);
}

static const tier tiers[] = {
    {"avx512", LLMQ_CPU_ISA_AVX512, 0},
    {"avxvnni", LLMQ_CPU_ISA_AVXVNNI, 0},
    {"avx2", LLMQ_CPU_ISA_AVX2, 0},
    {"avxvnni-emulated", LLMQ_CPU_ISA_AVX2, 1},
    {"avx512-emulated", LLMQ_CPU_ISA_AVX2, 2},
};

int run_per_tier(const char *suite, const struct CMUnitTest *tests, size_t count)
{
    int failed = 0;
    struct CMUnitTest *copy = calloc(count, sizeof *copy);
    if (copy == NULL)
        return 1;
    for (size_t i = 0; i < sizeof tiers / sizeof tiers[0]; i++) {
        memcpy(copy, tests, count * sizeof *copy);
        for (size_t j = 0; j < count; j++)
            copy[j].initial_state = (void *)&tiers[i];
        char name[128];
        snprintf(name, sizeof name, "%s/%s", suite, tiers[i].name);
        failed += _cmocka_run_group_tests(name, copy, count, NULL, NULL);
    }
    free(copy);
    return failed;
}
