/* smooth.c - SmoothQuant from a recipe: activation maxima from a float pass over calibration
 * text, one smoothing factor per group of linear layers sharing an input, folded into the
 * producing RMSNorm weight or matmul rows. SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval.h"
#include "modes.h"

#define SEARCH_ROWS 1024 /* calibration rows kept for the alpha search of one group */

typedef struct group {
    char fold[256];
    int members[8], n;    /* linear layer indices sharing the input */
    llmq_recipe_smoothquant sq; /* of the first member */
    llmq_quantizer *absmax; /* per-channel min/max of the input */
    float *rows;          /* the first SEARCH_ROWS inputs (searching groups) */
    int64_t n_rows;
} group;

typedef struct smoothing {
    llama *m;
    group *groups;
    int n_groups;
    int *group_of; /* linear index -> group whose first member it is, or -1 */
} smoothing;

static int fail(llmq_context *ctx, const char *what)
{
    fprintf(stderr, "llmq-llama: %s: %s\n", what, llmq_context_last_error(ctx));
    return -1;
}

static int index_of(llama *m, const llama_linear *l)
{
    int i = 0;
    while (llama_linear_at(m, i) != l)
        i++;
    return i;
}

static int observe_input(void *user, llama_linear *l, const float *x, int64_t rows)
{
    smoothing *s = user;
    const int gi = s->group_of[index_of(s->m, l)];
    if (gi < 0)
        return 0;
    group *g = &s->groups[gi];
    const int64_t shape[2] = {rows, l->in};
    llmq_tensor *t = NULL;
    llmq_status st = llmq_tensor_wrap(s->m->ctx, LLMQ_DTYPE_F32, 2, shape, (void *)x, 0, &t);
    if (st == LLMQ_OK)
        st = llmq_quantizer_observe(s->m->ctx, g->absmax, t);
    llmq_tensor_destroy(t);
    if (st != LLMQ_OK)
        return fail(s->m->ctx, l->name);
    if (g->rows != NULL && g->n_rows < SEARCH_ROWS) {
        const int64_t take = rows < SEARCH_ROWS - g->n_rows ? rows : SEARCH_ROWS - g->n_rows;
        memcpy(g->rows + g->n_rows * l->in, x, (size_t)(take * l->in) * sizeof(float));
        g->n_rows += take;
    }
    return 0;
}

/* Replace a view of the checkpoint by an owned, writable copy. */
static int own(llama *m, llmq_tensor **t)
{
    int64_t shape[LLMQ_MAX_DIMS];
    const int32_t nd = llmq_tensor_ndim(*t);
    for (int32_t i = 0; i < nd; i++)
        shape[i] = llmq_tensor_dim(*t, i);
    llmq_tensor *copy = NULL;
    llmq_status st = llmq_tensor_create(m->ctx, LLMQ_DTYPE_F32, nd, shape, &copy);
    if (st == LLMQ_OK)
        st = llmq_tensor_copy(m->ctx, *t, copy);
    if (st != LLMQ_OK) {
        llmq_tensor_destroy(copy);
        return fail(m->ctx, "smoothquant copy");
    }
    llmq_tensor_destroy(*t);
    *t = copy;
    return 0;
}

/* The tensor the divisor folds into: an RMSNorm weight [K] or a linear layer's weight [K, *]
 * (its output rows). */
static llmq_tensor **fold_target(llama *m, const char *name, int64_t k, int *rows)
{
    char buf[96];
    *rows = 0;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        snprintf(buf, sizeof buf, "layers.%d.attention_norm.weight", l);
        if (strcmp(buf, name) == 0)
            return &m->layers[l].rms_att;
        snprintf(buf, sizeof buf, "layers.%d.ffn_norm.weight", l);
        if (strcmp(buf, name) == 0)
            return &m->layers[l].rms_ffn;
    }
    for (int i = 0; i < llama_linear_count(m); i++) {
        llama_linear *l = llama_linear_at(m, i);
        if (strcmp(l->name, name) == 0 && l->out == k) {
            *rows = 1;
            return &l->w;
        }
    }
    return NULL;
}

/* Smooth one group: alpha (searched or fixed), weights scaled, divisor folded. */
static int smooth_group(llama *m, const llmq_recipe *r, group *g)
{
    llmq_context *ctx = m->ctx;
    llama_linear *first = llama_linear_at(m, g->members[0]);
    const int64_t k = first->in;
    int fold_rows;
    llmq_tensor **target = fold_target(m, g->fold, k, &fold_rows);
    if (target == NULL) {
        fprintf(stderr, "llmq-llama: %s: fold target %s is not a norm weight or a [%lld, *] "
                "linear weight of this model\n", first->name, g->fold, (long long)k);
        return -1;
    }
    llmq_tensor *ws[8];
    for (int i = 0; i < g->n; i++) {
        llama_linear *l = llama_linear_at(m, g->members[i]);
        if (l->in != k) {
            fprintf(stderr, "llmq-llama: %s and %s share fold %s but not their input size\n",
                    first->name, l->name, g->fold);
            return -1;
        }
        if (own(m, &l->w) != 0)
            return -1;
        ws[i] = l->w;
    }
    float alpha = g->sq.alpha;
    llmq_status st = LLMQ_OK;
    if (g->sq.search) { /* the error under the first member's schemes */
        llmq_recipe_choice c;
        st = llmq_recipe_choice_defaults(&c, sizeof c);
        if (st == LLMQ_OK)
            st = llmq_recipe_resolve(ctx, r, first->name, &c);
        llmq_tensor *x = NULL;
        const int64_t xs[2] = {g->n_rows, k};
        if (st == LLMQ_OK && c.weight != NULL)
            st = llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, 2, xs, g->rows, 0, &x);
        double err = 0.0;
        if (st == LLMQ_OK && c.weight != NULL)
            st = llmq_smoothquant_search(ctx, x, g->n, (const llmq_tensor *const *)ws, c.weight,
                                         c.activation, g->sq.grid, &alpha, &err, NULL);
        if (st == LLMQ_OK && c.weight != NULL)
            fprintf(stderr, "llmq-llama: smoothquant %s: alpha %.3f searched (error %.4g)\n",
                    g->fold, (double)alpha, err);
        llmq_tensor_destroy(x);
        llmq_recipe_choice_clear(&c);
        if (st != LLMQ_OK)
            return fail(ctx, first->name);
    }
    float *amax = malloc(2 * (size_t)k * sizeof(float)), *s = amax + k;
    llmq_tensor *at = NULL, *dt = NULL;
    st = amax != NULL ? llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, 1, &k, amax, 0, &at)
                      : LLMQ_ERR_OUT_OF_MEMORY;
    if (st == LLMQ_OK)
        st = llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, 1, &k, s, 0, &dt);
    if (st == LLMQ_OK)
        st = llmq_smoothquant_channel_absmax(ctx, g->absmax, at);
    if (st == LLMQ_OK)
        st = llmq_smoothquant_apply(ctx, at, alpha, g->n, ws, dt);
    llmq_tensor_destroy(at);
    llmq_tensor_destroy(dt);
    int rc = st == LLMQ_OK ? own(m, target) : fail(ctx, first->name);
    if (rc == 0) { /* X / s: the producer's output channel j divided by s_j */
        float *w = llmq_tensor_data(*target);
        const int64_t per = fold_rows ? llmq_tensor_dim(*target, 1) : 1;
        for (int64_t j = 0; j < k; j++)
            for (int64_t i = 0; i < per; i++)
                w[j * per + i] /= s[j];
    }
    free(amax);
    return rc;
}

static void smoothing_free(smoothing *s)
{
    for (int i = 0; i < s->n_groups; i++) {
        llmq_quantizer_destroy(s->groups[i].absmax);
        free(s->groups[i].rows);
    }
    free(s->groups);
    free(s->group_of);
}

/* Group the linear layers the recipe smooths by fold target, with their calibration state. */
static int smoothing_plan(llama *m, const llmq_recipe *r, smoothing *s)
{
    const int n = llama_linear_count(m);
    s->groups = calloc((size_t)n, sizeof *s->groups);
    s->group_of = malloc((size_t)n * sizeof *s->group_of);
    if (s->groups == NULL || s->group_of == NULL)
        return -1;
    llmq_scheme *channels = NULL; /* per input channel of [tokens, K] */
    llmq_status st = llmq_scheme_create(m->ctx, LLMQ_DTYPE_S8, &channels);
    if (st == LLMQ_OK)
        st = llmq_scheme_set_granularity(channels, LLMQ_GRANULARITY_PER_CHANNEL);
    if (st == LLMQ_OK)
        st = llmq_scheme_set_axis(channels, 1);
    for (int i = 0; st == LLMQ_OK && i < n; i++) {
        llama_linear *l = llama_linear_at(m, i);
        llmq_recipe_smoothquant sq;
        sq.size = sizeof sq;
        s->group_of[i] = -1;
        st = llmq_recipe_resolve_smoothquant(m->ctx, r, l->name, &sq);
        if (st != LLMQ_OK || !sq.enabled)
            continue;
        int gi = 0;
        while (gi < s->n_groups && strcmp(s->groups[gi].fold, sq.fold) != 0)
            gi++;
        group *g = &s->groups[gi];
        if (gi == s->n_groups) {
            s->n_groups++;
            s->group_of[i] = gi;
            snprintf(g->fold, sizeof g->fold, "%s", sq.fold);
            g->sq = sq;
            st = llmq_quantizer_create(m->ctx, channels, LLMQ_OBSERVER_MINMAX, &g->absmax);
            if (st == LLMQ_OK && sq.search &&
                (g->rows = malloc((size_t)(SEARCH_ROWS * l->in) * sizeof(float))) == NULL)
                st = LLMQ_ERR_OUT_OF_MEMORY;
        }
        if (g->n == (int)(sizeof g->members / sizeof g->members[0])) {
            fprintf(stderr, "llmq-llama: fold %s: too many layers\n", g->fold);
            llmq_scheme_destroy(channels);
            return -1;
        }
        g->members[g->n++] = i;
    }
    llmq_scheme_destroy(channels);
    return st == LLMQ_OK ? 0 : fail(m->ctx, "smoothquant");
}

int llama_smooth(llama *m, const struct tokenizer *t, const llmq_recipe *r, const char *text,
                 int64_t max_tokens)
{
    smoothing s = {m, NULL, 0, NULL};
    int rc = smoothing_plan(m, r, &s);
    if (rc == 0 && s.n_groups > 0 && text == NULL) {
        fprintf(stderr, "llmq-llama: the recipe asks for SmoothQuant: give a --calib text\n");
        rc = -1;
    }
    if (rc == 0 && s.n_groups > 0) { /* the maxima of the float model */
        for (int i = 0; i < llama_linear_count(m) && rc == 0; i++)
            rc = llama_linear_configure(m, llama_linear_at(m, i), NULL, NULL);
        double nll;
        int64_t count;
        m->observe = observe_input;
        m->observe_user = &s;
        if (rc == 0)
            rc = llama_eval(m, t, text, max_tokens, &nll, &count);
        m->observe = NULL;
        for (int i = 0; rc == 0 && i < s.n_groups; i++) {
            const llmq_status st = llmq_quantizer_finalize(m->ctx, s.groups[i].absmax);
            rc = st == LLMQ_OK ? smooth_group(m, r, &s.groups[i]) : fail(m->ctx, "smoothquant");
        }
        if (rc == 0)
            fprintf(stderr, "llmq-llama: smoothquant: %d groups smoothed\n", s.n_groups);
    }
    smoothing_free(&s);
    return rc;
}
