/* modes.c - the engine's built-in quantization modes. SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>

#include "modes.h"

typedef struct mode {
    const char *name;
    llmq_dtype wdtype; /* F32: keep float */
    llmq_symmetry wsym;
    llmq_granularity wgran;
    int64_t group;
    llmq_dtype adtype; /* F32: float activations */
    llmq_symmetry asym;
} mode;

static const mode modes[] = {
    {"fp32", LLMQ_DTYPE_F32, 0, 0, 0, LLMQ_DTYPE_F32, 0},
    {"w8a8", LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_CHANNEL, 0,
     LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC},
    {"w8a16", LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_CHANNEL, 0,
     LLMQ_DTYPE_F32, 0},
    {"w4a16-g32", LLMQ_DTYPE_U4, LLMQ_SYMMETRY_ASYMMETRIC, LLMQ_GRANULARITY_PER_GROUP, 32,
     LLMQ_DTYPE_F32, 0},
    {"w4a16-g128", LLMQ_DTYPE_U4, LLMQ_SYMMETRY_ASYMMETRIC, LLMQ_GRANULARITY_PER_GROUP, 128,
     LLMQ_DTYPE_F32, 0},
    {"w4a16-g32-sym", LLMQ_DTYPE_S4, LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_GROUP, 32,
     LLMQ_DTYPE_F32, 0},
    {"w4a16-g128-sym", LLMQ_DTYPE_S4, LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_GROUP, 128,
     LLMQ_DTYPE_F32, 0},
    {"w4a8-g32", LLMQ_DTYPE_S4, LLMQ_SYMMETRY_SYMMETRIC, LLMQ_GRANULARITY_PER_GROUP, 32,
     LLMQ_DTYPE_S8, LLMQ_SYMMETRY_SYMMETRIC},
    {"w2a16-g32", LLMQ_DTYPE_U2, LLMQ_SYMMETRY_ASYMMETRIC, LLMQ_GRANULARITY_PER_GROUP, 32,
     LLMQ_DTYPE_F32, 0},
};


const char *const llama_mode_names[] = {"fp32", "w8a8", "w8a16", "w4a16-g32", "w4a16-g128",
                                        "w4a16-g32-sym", "w4a16-g128-sym", "w4a8-g32",
                                        "w2a16-g32", NULL};

int llama_apply_mode(llama *m, const char *name)
{
    const mode *md = NULL;
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        if (strcmp(modes[i].name, name) == 0)
            md = &modes[i];
    if (md == NULL) {
        fprintf(stderr, "llmq-llama: unknown mode '%s'; modes:", name);
        for (int i = 0; llama_mode_names[i] != NULL; i++)
            fprintf(stderr, " %s", llama_mode_names[i]);
        fputc('\n', stderr);
        return -1;
    }
    llmq_scheme *w = NULL, *a = NULL;
    llmq_status st = LLMQ_OK;
    if (md->wdtype != LLMQ_DTYPE_F32) {
        st = llmq_scheme_create(m->ctx, md->wdtype, &w);
        if (st == LLMQ_OK)
            st = llmq_scheme_set_symmetry(w, md->wsym);
        if (st == LLMQ_OK)
            st = llmq_scheme_set_granularity(w, md->wgran);
        if (st == LLMQ_OK && md->group)
            st = llmq_scheme_set_group_size(w, md->group);
    }
    if (st == LLMQ_OK && md->adtype != LLMQ_DTYPE_F32) {
        st = llmq_scheme_create(m->ctx, md->adtype, &a);
        if (st == LLMQ_OK)
            st = llmq_scheme_set_symmetry(a, md->asym);
        if (st == LLMQ_OK) /* dynamic, one scale per token */
            st = llmq_scheme_set_granularity(a, LLMQ_GRANULARITY_PER_TOKEN);
    }
    int rc = st == LLMQ_OK ? 0 : -1;
    if (rc != 0)
        fprintf(stderr, "llmq-llama: mode %s: %s\n", name, llmq_context_last_error(m->ctx));
    /* the classifier and the embedding stay in float */
    for (int i = 0; rc == 0 && i < llama_linear_count(m) - 1; i++)
        rc = llama_linear_configure(m, llama_linear_at(m, i), w, a);
    llmq_scheme_destroy(w);
    llmq_scheme_destroy(a);
    return rc;
}

int llama_apply_recipe(llama *m, const llmq_recipe *recipe)
{
    for (int i = 0; i < llama_linear_count(m); i++) {
        llama_linear *l = llama_linear_at(m, i);
        llmq_recipe_choice c;
        llmq_status st = llmq_recipe_choice_defaults(&c, sizeof c);
        if (st == LLMQ_OK)
            st = llmq_recipe_resolve(m->ctx, recipe, l->name, &c);
        if (st != LLMQ_OK) {
            fprintf(stderr, "llmq-llama: %s: %s\n", l->name, llmq_context_last_error(m->ctx));
            return -1;
        }
        const int rc = llama_linear_configure(m, l, c.skip ? NULL : c.weight,
                                              c.skip || c.weight == NULL ? NULL : c.activation);
        if (rc == 0)
            l->act_static = !c.skip && c.weight != NULL && c.activation != NULL &&
                            c.activation_mode == LLMQ_ACTIVATION_STATIC;
        llmq_recipe_choice_clear(&c);
        if (rc != 0)
            return -1;
    }
    return 0;
}
