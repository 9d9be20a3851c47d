/* tiers.h - one CMocka group per CPU tier for the kernel suites: the group's state names the
 * tier; each test makes a context capped at that tier and skips when the host lacks it. The
 * VNNI tiers also run with VPDPBUSD emulated in AVX2 (emu_vnni256.c, emu_vnni512.c), so their
 * microkernels and packing are exercised on hosts without VNNI. SPDX-License-Identifier: MIT */
#ifndef LLMQ_TEST_TIERS_H
#define LLMQ_TEST_TIERS_H

#include "testing.h"

typedef struct tier {
    const char *name;
    llmq_cpu_isa isa;  /* the tier to cap at */
    int emulated;      /* 1: AVX2 context running the emulated VNNI-256 kernels, 2: VNNI-512 */
} tier;

/* A context on `t`, or NULL when the host (or this build) lacks the tier. */
llmq_context *tier_context(const tier *t);

/* A context capped at the scalar reference. */
llmq_context *scalar_context(void);

/* A context on `t`, or skip() the test. */
#define TIER_CONTEXT_OR_SKIP(state, ctx)                                                       \
    do {                                                                                       \
        (ctx) = tier_context((const tier *)*(state));                                          \
        if ((ctx) == NULL) {                                                                   \
            print_message("[  SKIPPED ] host lacks tier %s\n", ((const tier *)*(state))->name); \
            skip();                                                                            \
        }                                                                                      \
    } while (0)

/* Run `tests` once per tier, each group with the tier as its state. */
int run_per_tier(const char *suite, const struct CMUnitTest *tests, size_t count);

#endif
