/* test_llama.c - the llama engine on the real models of ../shared/models (skipped when they
 * are absent): fp32 perplexity of the batched engine equals an independent token-by-token
 * forward written here, quantized modes stay within the bounds of docs/accuracy.md, greedy
 * generation does not depend on the thread count, and SmoothQuant keeps the float model.
 * SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "eval.h"
#include "modes.h"
#include "testing.h"
#include "tokenizer.h"

static const char *models_dir;

typedef struct model_files {
    const char *model, *tokenizer;
    double fp32_ppl_20k; /* the protocol's sanity value */
} model_files;

static const model_files models[] = {
    {"stories260K/stories260K.bin", "stories260K/tok512.bin", 4.201},
    {"babyllama-tok105/model5000.bin", "babyllama-tok105/tok105.vocab", 2.061},
};

static char *path(const char *rel)
{
    static char buf[4][512];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", models_dir, rel);
    return buf[i];
}

/* ---- the independent path: one token at a time, plain loops, no llmq_matmul ---- */

typedef struct naive {
    llama_config c;
    const float *emb, *norm, *cls;
    const float **rms_att, **rms_ffn, **w[7];
    float *kc, *vc;
} naive;

static void matvec(float *y, const float *w, const float *x, int out, int in)
{
    for (int o = 0; o < out; o++) {
        double s = 0.0; /* in double: a different rounding path from the engine */
        for (int i = 0; i < in; i++)
            s += (double)w[(size_t)o * in + i] * x[i];
        y[o] = (float)s;
    }
}

static void norm(float *o, const float *x, const float *w, int n)
{
    double ss = 0.0;
    for (int i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    const double k = 1.0 / sqrt(ss / n + 1e-5);
    for (int i = 0; i < n; i++)
        o[i] = (float)(w[i] * (k * x[i]));
}

static void naive_step(naive *nv, int token, int pos, float *logits)
{
    const llama_config *c = &nv->c;
    float x[512], xb[512], q[512], k[512], v[512], att[512], hb[1024], hb2[1024], sc[512];
    memcpy(x, nv->emb + (size_t)token * c->dim, (size_t)c->dim * sizeof(float));
    for (int l = 0; l < c->n_layers; l++) {
        norm(xb, x, nv->rms_att[l], c->dim);
        matvec(q, nv->w[0][l], xb, c->dim, c->dim);
        matvec(k, nv->w[1][l], xb, c->kv_dim, c->dim);
        matvec(v, nv->w[2][l], xb, c->kv_dim, c->dim);
        for (int i = 0; i < c->dim; i += 2) { /* rotate pairs; k only within kv_dim */
            const double f = pow(10000.0, -(double)(i % c->head_size) / c->head_size) * pos;
            const float cs = (float)cos(f), sn = (float)sin(f);
            float a = q[i], b = q[i + 1];
            q[i] = a * cs - b * sn;
            q[i + 1] = a * sn + b * cs;
            if (i < c->kv_dim) {
                a = k[i];
                b = k[i + 1];
                k[i] = a * cs - b * sn;
                k[i + 1] = a * sn + b * cs;
            }
        }
        float *kc = nv->kc + (size_t)l * 512 * c->kv_dim, *vc = nv->vc + (size_t)l * 512 * c->kv_dim;
        memcpy(kc + (size_t)pos * c->kv_dim, k, (size_t)c->kv_dim * sizeof(float));
        memcpy(vc + (size_t)pos * c->kv_dim, v, (size_t)c->kv_dim * sizeof(float));
        for (int h = 0; h < c->n_heads; h++) {
            const int off = h / (c->n_heads / c->n_kv_heads) * c->head_size;
            double mx = -1e300, sum = 0.0;
            for (int t = 0; t <= pos; t++) {
                double s = 0.0;
                for (int i = 0; i < c->head_size; i++)
                    s += (double)q[h * c->head_size + i] * kc[(size_t)t * c->kv_dim + off + i];
                sc[t] = (float)(s / sqrt((double)c->head_size));
                mx = sc[t] > mx ? sc[t] : mx;
            }
            for (int t = 0; t <= pos; t++)
                sum += exp(sc[t] - mx);
            for (int i = 0; i < c->head_size; i++) {
                double o = 0.0;
                for (int t = 0; t <= pos; t++)
                    o += exp(sc[t] - mx) / sum * vc[(size_t)t * c->kv_dim + off + i];
                att[h * c->head_size + i] = (float)o;
            }
        }
        matvec(xb, nv->w[3][l], att, c->dim, c->dim);
        for (int i = 0; i < c->dim; i++)
            x[i] += xb[i];
        norm(xb, x, nv->rms_ffn[l], c->dim);
        matvec(hb, nv->w[4][l], xb, c->hidden_dim, c->dim);
        matvec(hb2, nv->w[6][l], xb, c->hidden_dim, c->dim);
        for (int i = 0; i < c->hidden_dim; i++)
            hb[i] = (float)(hb[i] / (1.0 + exp(-(double)hb[i])) * hb2[i]);
        matvec(xb, nv->w[5][l], hb, c->dim, c->hidden_dim);
        for (int i = 0; i < c->dim; i++)
            x[i] += xb[i];
    }
    norm(xb, x, nv->norm, c->dim);
    matvec(logits, nv->cls, xb, c->vocab_size, c->dim);
}

/* The same protocol, token by token through naive_step. */
static double naive_ppl(llama *m, const tokenizer *t, const char *text, int64_t budget)
{
    naive nv = {.c = m->cfg};
    const llama_config *c = &m->cfg;
    nv.emb = llmq_tensor_data(m->emb_t);
    nv.norm = llmq_tensor_data(m->norm_t);
    nv.cls = llmq_tensor_data(m->cls.w);
    nv.rms_att = calloc((size_t)c->n_layers, sizeof(float *));
    nv.rms_ffn = calloc((size_t)c->n_layers, sizeof(float *));
    for (int j = 0; j < 7; j++)
        nv.w[j] = calloc((size_t)c->n_layers, sizeof(float *));
    for (int l = 0; l < c->n_layers; l++) {
        nv.rms_att[l] = llmq_tensor_data(m->layers[l].rms_att);
        nv.rms_ffn[l] = llmq_tensor_data(m->layers[l].rms_ffn);
        for (int j = 0; j < 7; j++)
            nv.w[j][l] = llmq_tensor_data(llama_linear_at(m, l * 7 + j)->w);
    }
    nv.kc = calloc((size_t)c->n_layers * 512 * c->kv_dim, sizeof(float));
    nv.vc = calloc((size_t)c->n_layers * 512 * c->kv_dim, sizeof(float));
    float *logits = malloc((size_t)c->vocab_size * sizeof(float));
    int32_t *tokens = malloc((strlen(text) + 3) * sizeof(int32_t));
    char *para = malloc(strlen(text) + 1);
    double nll = 0.0;
    int64_t count = 0;
    /* paragraphs by the protocol, rewritten here independently of eval.c */
    const char *p = text;
    while (*p && count < budget) {
        const char *e = strstr(p, "\n\n");
        size_t len = e ? (size_t)(e - p) : strlen(p);
        memcpy(para, p, len);
        para[len] = '\0';
        p = e ? e + 2 : p + len;
        char *s = para;
        while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')
            s++;
        size_t sl = strlen(s);
        while (sl > 0 && (s[sl - 1] == ' ' || s[sl - 1] == '\n' || s[sl - 1] == '\t' || s[sl - 1] == '\r'))
            s[--sl] = '\0';
        if (sl == 0)
            continue;
        int n = tokenizer_encode(t, s, 1, tokens);
        n = n < 257 ? n : 257;
        if (n < 8)
            continue;
        for (int i = 0; i + 1 < n; i++) {
            naive_step(&nv, tokens[i], i, logits);
            double mx = logits[0], sum = 0.0;
            for (int j = 1; j < c->vocab_size; j++)
                mx = logits[j] > mx ? logits[j] : mx;
            for (int j = 0; j < c->vocab_size; j++)
                sum += exp(logits[j] - mx);
            nll += log(sum) - (logits[tokens[i + 1]] - mx);
        }
        count += n - 1;
    }
    free(nv.rms_att);
    free(nv.rms_ffn);
    for (int j = 0; j < 7; j++)
        free(nv.w[j]);
    free(nv.kc);
    free(nv.vc);
    free(logits);
    free(tokens);
    free(para);
    return exp(nll / (double)count);
}

static int have_models(void)
{
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
        if (access(path(models[i].model), R_OK) != 0 || access(path(models[i].tokenizer), R_OK) != 0)
            return 0;
    return access(path("heldout-text/tinystories-val/tinystories_val.txt"), R_OK) == 0;
}

static void fp32_matches_independent_forward(void **state)
{
    (void)state;
    llmq_context *ctx = test_context();
    char *text = llama_read_file(path("heldout-text/tinystories-val/tinystories_val.txt"));
    assert_non_null(text);
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        llama m;
        tokenizer t;
        assert_int_equal(llama_open(&m, ctx, path(models[i].model), 257), 0);
        assert_int_equal(tokenizer_load(&t, path(models[i].tokenizer), m.cfg.vocab_size), 0);
        double nll;
        int64_t count;
        assert_int_equal(llama_eval(&m, &t, text, 2000, &nll, &count), 0);
        assert_true(count >= 2000);
        const double ppl = exp(nll / (double)count), ref = naive_ppl(&m, &t, text, 2000);
        if (fabs(ppl / ref - 1.0) > 1e-4)
            fail_msg("%s: engine %.6f, independent forward %.6f", models[i].model, ppl, ref);
        tokenizer_free(&t);
        llama_close(&m);
    }
    free(text);
    llmq_context_destroy(ctx);
}

/* Quantized modes on the first 2,000 tokens, within docs/accuracy.md's bounds (relative
 * perplexity increase over fp32). */
static void quantized_modes_within_bounds(void **state)
{
    (void)state;
    static const struct {
        const char *mode;
        double bound;
    } bounds[] = {
        {"w8a8", 0.01}, {"w8a16", 0.01}, {"w4a16-g32", 0.15}, {"w4a8-g32", 0.20},
    };
    llmq_context *ctx = test_context();
    char *text = llama_read_file(path("heldout-text/tinystories-val/tinystories_val.txt"));
    llama m;
    tokenizer t;
    assert_int_equal(llama_open(&m, ctx, path(models[0].model), 257), 0);
    assert_int_equal(tokenizer_load(&t, path(models[0].tokenizer), m.cfg.vocab_size), 0);
    double nll32, nll;
    int64_t count;
    assert_int_equal(llama_eval(&m, &t, text, 2000, &nll32, &count), 0);
    const double ppl32 = exp(nll32 / (double)count);
    for (size_t i = 0; i < sizeof bounds / sizeof bounds[0]; i++) {
        assert_int_equal(llama_apply_mode(&m, bounds[i].mode), 0);
        assert_int_equal(llama_eval(&m, &t, text, 2000, &nll, &count), 0);
        const double rel = exp(nll / (double)count) / ppl32 - 1.0;
        if (!(rel < bounds[i].bound) || rel < -0.02)
            fail_msg("%s: perplexity %+.2f%% against fp32, bound %.0f%%", bounds[i].mode,
                     100.0 * rel, 100.0 * bounds[i].bound);
    }
    tokenizer_free(&t);
    llama_close(&m);
    free(text);
    llmq_context_destroy(ctx);
}

/* Greedy generation does not depend on the thread count: every llmq result is bit-identical
 * for any number of threads. */
static void greedy_deterministic_across_threads(void **state)
{
    (void)state;
    static const char *const modes[] = {"fp32", "w8a8", "w4a16-g32", "w4a8-g32"};
    int32_t first[64], again[64], prompt[64];
    for (size_t k = 0; k < sizeof modes / sizeof modes[0]; k++) {
        int produced[2] = {0, 0};
        for (int threads = 1; threads <= 2; threads++) {
            llmq_context *ctx = test_context();
            ASSERT_OK(ctx, llmq_context_set_threads(ctx, threads));
            llama m;
            tokenizer t;
            assert_int_equal(llama_open(&m, ctx, path(models[0].model), 257), 0);
            assert_int_equal(tokenizer_load(&t, path(models[0].tokenizer), m.cfg.vocab_size), 0);
            assert_int_equal(llama_apply_mode(&m, modes[k]), 0);
            const int n = tokenizer_encode(&t, "Once upon a time, a little dog", 1, prompt);
            float *logits = malloc((size_t)m.max_batch * m.cfg.vocab_size * sizeof(float));
            produced[threads - 1] = llama_greedy(&m, prompt, n, 48, threads == 1 ? first : again,
                                                 logits);
            free(logits);
            tokenizer_free(&t);
            llama_close(&m);
            llmq_context_destroy(ctx);
        }
        assert_true(produced[0] > 10);
        assert_int_equal(produced[0], produced[1]);
        assert_memory_equal(first, again, (size_t)produced[0] * sizeof(int32_t));
    }
}

/* SmoothQuant from a recipe leaves the float model's perplexity unchanged (X W^T = (X/s)(W s)^T
 * with s folded into the norms and w3), and the smoothed W8A8 model stays within the W8A8
 * bound; --outliers finds the stories260K outliers and stays within it too. */
static void smoothquant_and_outliers(void **state)
{
    (void)state;
    static const char recipe[] =
        "version: 1\n"
        "defaults:\n"
        "  weight: {dtype: s8, granularity: per_channel}\n"
        "  activation: {dtype: s8, granularity: per_token, mode: dynamic}\n"
        "  smoothquant: {alpha: 0.5}\n"
        "rules:\n"
        "  - match: [\"tok_embeddings.weight\", \"output.weight\", \"*norm.weight\"]\n"
        "    skip: true\n"
        "  - match: \"layers.*.feed_forward.w2.weight\"\n"
        "    smoothquant: {fold: \"layers.{2}.feed_forward.w3.weight\"}\n";
    llmq_context *ctx = test_context();
    char *text = llama_read_file(path("heldout-text/tinystories-val/tinystories_val.txt"));
    const char *calib = strstr(text + strlen(text) / 2, "\n\n") + 2;
    llmq_recipe *r = NULL;
    ASSERT_OK(ctx, llmq_recipe_parse(ctx, recipe, strlen(recipe), "sq.yaml", &r));
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        llama m;
        tokenizer t;
        assert_int_equal(llama_open(&m, ctx, path(models[i].model), 257), 0);
        assert_int_equal(tokenizer_load(&t, path(models[i].tokenizer), m.cfg.vocab_size), 0);
        double nll;
        int64_t count;
        assert_int_equal(llama_eval(&m, &t, text, 2000, &nll, &count), 0);
        const double ppl32 = exp(nll / (double)count);
        assert_int_equal(llama_smooth(&m, &t, r, calib, 2000), 0);
        assert_int_equal(llama_eval(&m, &t, text, 2000, &nll, &count), 0);
        const double smoothed = exp(nll / (double)count);
        if (fabs(smoothed / ppl32 - 1.0) > 1e-4)
            fail_msg("%s: smoothed fp32 %.6f, fp32 %.6f", models[i].model, smoothed, ppl32);
        assert_int_equal(llama_apply_recipe(&m, r), 0);
        assert_int_equal(llama_eval(&m, &t, text, 2000, &nll, &count), 0);
        const double rel = exp(nll / (double)count) / ppl32 - 1.0;
        if (!(rel < 0.01) || rel < -0.02)
            fail_msg("%s: smoothed w8a8 %+.2f%% against fp32", models[i].model, 100.0 * rel);
        tokenizer_free(&t);
        llama_close(&m);
    }
    llama m;
    tokenizer t;
    assert_int_equal(llama_open(&m, ctx, path(models[0].model), 257), 0);
    assert_int_equal(tokenizer_load(&t, path(models[0].tokenizer), m.cfg.vocab_size), 0);
    double nll32, nll;
    int64_t count;
    assert_int_equal(llama_eval(&m, &t, text, 2000, &nll32, &count), 0);
    assert_int_equal(llama_apply_mode(&m, "w8a8"), 0);
    m.outlier_threshold = 6.0f;
    assert_int_equal(llama_eval(&m, &t, text, 2000, &nll, &count), 0);
    assert_true(m.outlier_columns > 0 && m.outlier_columns < m.columns / 10);
    const double rel = exp((nll - nll32) / (double)count) - 1.0;
    if (!(rel < 0.01) || rel < -0.02)
        fail_msg("w8a8 --outliers 6: %+.2f%% against fp32", 100.0 * rel);
    tokenizer_free(&t);
    llama_close(&m);
    llmq_recipe_destroy(r);
    free(text);
    llmq_context_destroy(ctx);
}

int main(int argc, char **argv)
{
    models_dir = argc > 1 ? argv[1] : "../shared/models";
    if (!have_models()) {
        printf("%s: the models of ../shared/models are absent: skipping\n", argv[0]);
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fp32_matches_independent_forward),
        cmocka_unit_test(quantized_modes_within_bounds),
        cmocka_unit_test(greedy_deterministic_across_threads),
        cmocka_unit_test(smoothquant_and_outliers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
