/* llmq_llama.c - `llmq-llama eval | generate`: a llama-style engine on llmq.
 * SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "eval.h"
#include "modes.h"
#include "tokenizer.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: llmq-llama eval MODEL TOKENIZER TEXT [--recipe R | --mode M] [--tokens N]\n"
            "                  [--no-fp32]\n"
            "       llmq-llama generate MODEL TOKENIZER [--recipe R | --mode M] [--prompt P]\n"
            "                  [--steps N] [--temperature T] [--seed S] [--calib TEXT]\n"
            "       llmq-llama record MODEL TOKENIZER TEXT -o CALIB.safetensors [--tokens N]\n"
            "static activations are calibrated on 2,000 tokens of the second half of TEXT (eval)\n"
            "or of the --calib text (generate); record saves the inputs of every linear layer over\n"
            "the second half of TEXT for `llmq quantize --calib`\n"
            "recipes with smoothquant sections smooth the model first, from the maxima of a float\n"
            "pass over the same calibration text\n"
            "common: [--backend auto|cpu|cuda] [--threads T] [--outliers T]\n"
            "--outliers T: layers with dynamic activations run through llmq_matmul_outlier\n"
            "(LLM.int8(): activation columns above T in float, the rest in INT8)\n");
}

typedef struct options {
    const char *mode, *recipe, *prompt, *backend, *calib, *output;
    int64_t tokens;
    int steps, no_fp32, threads;
    float temperature, outliers;
    unsigned long long seed;
} options;

static int parse(int argc, char **argv, int first, options *o)
{
    *o = (options){"fp32", NULL, "Once upon a time", NULL, NULL, NULL, 20000, 128, 0, 1, 0.0f,
                   0.0f, 1};
    int i = first;
    while (i < argc) { /* every option but --no-fp32 takes a value */
        if (strcmp(argv[i], "--no-fp32") == 0) {
            o->no_fp32 = 1;
            i++;
            continue;
        }
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        i += 2;
        if (v == NULL)
            return -1;
        if (strcmp(a, "--mode") == 0)
            o->mode = v;
        else if (strcmp(a, "--recipe") == 0)
            o->recipe = v;
        else if (strcmp(a, "--calib") == 0)
            o->calib = v;
        else if (strcmp(a, "-o") == 0)
            o->output = v;
        else if (strcmp(a, "--prompt") == 0)
            o->prompt = v;
        else if (strcmp(a, "--backend") == 0)
            o->backend = v;
        else if (strcmp(a, "--tokens") == 0)
            o->tokens = atoll(v);
        else if (strcmp(a, "--steps") == 0)
            o->steps = atoi(v);
        else if (strcmp(a, "--threads") == 0)
            o->threads = atoi(v);
        else if (strcmp(a, "--temperature") == 0)
            o->temperature = strtof(v, NULL);
        else if (strcmp(a, "--outliers") == 0) {
            o->outliers = strtof(v, NULL);
            if (!(o->outliers > 0.0f))
                return -1;
        }
        else if (strcmp(a, "--seed") == 0)
            o->seed = strtoull(v, NULL, 10);
        else
            return -1;
    }
    return 0;
}

typedef struct calib_source {
    const llmq_recipe *recipe;
    llmq_context *ctx;
} calib_source;

static llmq_quantizer *recipe_quantizer(void *user, llama_linear *l)
{
    const calib_source *c = user;
    llmq_quantizer *q = NULL;
    if (llmq_recipe_create_quantizer(c->ctx, c->recipe, l->name, &q) != LLMQ_OK)
        fprintf(stderr, "llmq-llama: %s\n", llmq_context_last_error(c->ctx));
    return q;
}

/* The calibration text: the second half of the evaluation text, from a paragraph start, so
 * that calibration never sees the paragraphs that are scored. */
static const char *calibration_text(const char *text)
{
    const char *mid = text + strlen(text) / 2, *p = strstr(mid, "\n\n");
    return p != NULL ? p + 2 : mid;
}

/* Quantize the layers as the recipe (if any) or the named mode says; calibrate static
 * activations on calib_text. */
static int configure(llama *m, const tokenizer *t, const char *mode, const char *recipe_path,
                     const char *calib_text, int64_t calib_tokens)
{
    if (recipe_path == NULL)
        return llama_apply_mode(m, mode);
    llmq_recipe *r = NULL;
    const llmq_status st = llmq_recipe_load(m->ctx, recipe_path, &r);
    if (st != LLMQ_OK) {
        fprintf(stderr, "llmq-llama: %s\n", llmq_context_last_error(m->ctx));
        return -1;
    }
    int rc = llama_smooth(m, t, r, calib_text, calib_tokens);
    if (rc == 0)
        rc = llama_apply_recipe(m, r);
    calib_source src = {r, m->ctx};
    for (int i = 0; rc == 0 && calib_text == NULL && i < llama_linear_count(m); i++)
        if (llama_linear_at(m, i)->act_static) {
            fprintf(stderr, "llmq-llama: %s has static activations: give a --calib text\n",
                    recipe_path);
            rc = -1;
        }
    if (rc == 0 && calib_text != NULL)
        rc = llama_calibrate(m, t, calib_text, calib_tokens, recipe_quantizer, &src);
    llmq_recipe_destroy(r);
    return rc;
}

/* Perplexity under a mode or recipe, and the evaluation speed. */
static int eval_mode(llama *m, const tokenizer *t, const char *text, const char *mode,
                     const char *recipe, int64_t budget, double *ppl, double *tps)
{
    if (configure(m, t, mode, recipe, calibration_text(text), 2000) != 0)
        return -1;
    double nll;
    int64_t count;
    m->outlier_columns = m->columns = 0;
    const double t0 = now();
    if (llama_eval(m, t, text, budget, &nll, &count) != 0)
        return -1;
    *tps = (double)count / (now() - t0);
    *ppl = exp(nll / (double)count);
    return 0;
}

static int cmd_eval(llama *m, const tokenizer *t, const char *text_path, const options *o)
{
    char *text = llama_read_file(text_path);
    if (text == NULL)
        return 1;
    double ppl32 = 0.0, tps32 = 0.0, ppl, tps;
    int rc = o->no_fp32 ? 0 : eval_mode(m, t, text, "fp32", NULL, o->tokens, &ppl32, &tps32);
    const double bytes32 = llama_weight_bytes(m);
    if (rc == 0)
        rc = eval_mode(m, t, text, o->mode, o->recipe, o->tokens, &ppl, &tps);
    char outliers[128] = "";
    if (rc == 0 && m->outlier_threshold > 0.0f)
        snprintf(outliers, sizeof outliers, ", outliers > %g: %lld of %lld columns (%.3f%%)",
                 (double)m->outlier_threshold, (long long)m->outlier_columns,
                 (long long)m->columns,
                 m->columns ? 100.0 * (double)m->outlier_columns / (double)m->columns : 0.0);
    if (rc == 0 && o->no_fp32)
        printf("%s %s: perplexity %.4f, linear weights %.0f bytes, %.0f tokens/s, backend %s, "
               "%d threads%s\n", o->recipe ? "recipe" : "mode", o->recipe ? o->recipe : o->mode,
               ppl, llama_weight_bytes(m), tps, llmq_context_backend_name(m->ctx),
               (int)llmq_context_threads(m->ctx), outliers);
    else if (rc == 0)
        printf("%s %s: perplexity %.4f (fp32 %.4f, %+.2f%%), linear weights %.0f bytes "
               "(fp32 %.0f), %.0f tokens/s (fp32 %.0f), backend %s%s\n",
               o->recipe ? "recipe" : "mode", o->recipe ? o->recipe : o->mode, ppl, ppl32,
               100.0 * (ppl / ppl32 - 1.0), llama_weight_bytes(m), bytes32, tps, tps32,
               llmq_context_backend_name(m->ctx), outliers);
    free(text);
    return rc == 0 ? 0 : 1;
}

/* `record`: the inputs every linear layer sees in fp32 over the text, as a calibration file
 * for `llmq quantize --calib` (tensors `<weight name>.input`, [tokens, in]). */
typedef struct recording {
    llama *m;
    float **data;
    int64_t *rows, *cap;
} recording;

static int record_input(void *user, llama_linear *l, const float *x, int64_t rows)
{
    recording *r = user;
    int i = 0;
    while (llama_linear_at(r->m, i) != l)
        i++;
    if (r->rows[i] + rows > r->cap[i]) {
        const int64_t cap = 2 * (r->rows[i] + rows);
        float *d = realloc(r->data[i], (size_t)(cap * l->in) * sizeof(float));
        if (d == NULL)
            return -1;
        r->data[i] = d;
        r->cap[i] = cap;
    }
    memcpy(r->data[i] + r->rows[i] * l->in, x, (size_t)(rows * l->in) * sizeof(float));
    r->rows[i] += rows;
    return 0;
}

static int cmd_record(llama *m, const tokenizer *t, const char *text_path, const char *out,
                      int64_t tokens)
{
    char *text = llama_read_file(text_path);
    const int n = llama_linear_count(m);
    recording r = {m, calloc((size_t)n, sizeof(float *)), calloc((size_t)n, sizeof(int64_t)),
                   calloc((size_t)n, sizeof(int64_t))};
    int rc = text != NULL && r.data && r.rows && r.cap ? 0 : 1;
    double nll;
    int64_t count;
    m->observe = record_input;
    m->observe_user = &r;
    if (rc == 0)
        rc = llama_eval(m, t, calibration_text(text), tokens, &nll, &count) != 0;
    m->observe = NULL;
    llmq_model_writer *w = NULL;
    llmq_status st = rc == 0 ? llmq_model_writer_create(m->ctx, out, &w) : LLMQ_OK;
    char name[128];
    for (int i = 0; rc == 0 && st == LLMQ_OK && i < n; i++) {
        const int64_t shape[2] = {r.rows[i], llama_linear_at(m, i)->in};
        snprintf(name, sizeof name, "%s.input", llama_linear_at(m, i)->name);
        st = llmq_model_writer_declare(m->ctx, w, name, LLMQ_DTYPE_F32, 2, shape, NULL);
    }
    for (int i = 0; rc == 0 && st == LLMQ_OK && i < n; i++) {
        const int64_t shape[2] = {r.rows[i], llama_linear_at(m, i)->in};
        llmq_tensor *x = NULL;
        snprintf(name, sizeof name, "%s.input", llama_linear_at(m, i)->name);
        st = llmq_tensor_wrap(m->ctx, LLMQ_DTYPE_F32, 2, shape, r.data[i], 0, &x);
        if (st == LLMQ_OK)
            st = llmq_model_writer_write(m->ctx, w, name, x);
        llmq_tensor_destroy(x);
    }
    if (rc == 0 && st == LLMQ_OK)
        st = llmq_model_writer_finish(m->ctx, w);
    if (st != LLMQ_OK) {
        fprintf(stderr, "llmq-llama: %s\n", llmq_context_last_error(m->ctx));
        rc = 1;
    }
    if (rc == 0)
        printf("recorded the inputs of %d linear layers over %lld tokens into %s\n", n,
               (long long)count, out);
    llmq_model_writer_destroy(w);
    for (int i = 0; r.data != NULL && i < n; i++)
        free(r.data[i]);
    free(r.data);
    free(r.rows);
    free(r.cap);
    free(text);
    return rc;
}

static int sample(const float *logits, int vocab, float temperature, unsigned long long *rng)
{
    int best = 0;
    for (int i = 1; i < vocab; i++)
        best = logits[i] > logits[best] ? i : best;
    if (temperature <= 0.0f)
        return best;
    double sum = 0.0;
    for (int i = 0; i < vocab; i++)
        sum += exp((double)(logits[i] - logits[best]) / temperature);
    *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
    double u = (double)(*rng >> 11) * 0x1p-53 * sum;
    for (int i = 0; i < vocab; i++) {
        u -= exp((double)(logits[i] - logits[best]) / temperature);
        if (u <= 0.0)
            return i;
    }
    return best;
}

static int cmd_generate(llama *m, const tokenizer *t, const options *o)
{
    char *calib = o->calib != NULL ? llama_read_file(o->calib) : NULL;
    const int rc0 = configure(m, t, o->mode, o->recipe, calib != NULL ? calibration_text(calib) : NULL,
                              2000);
    free(calib);
    if (rc0 != 0)
        return 1;
    const int vocab = m->cfg.vocab_size;
    int32_t *tokens = malloc((strlen(o->prompt) + 3 + (size_t)o->steps) * sizeof *tokens);
    float *logits = malloc((size_t)m->max_batch * vocab * sizeof *logits);
    if (tokens == NULL || logits == NULL)
        return 1;
    int n = tokenizer_encode(t, o->prompt, 1, tokens);
    if (n > m->max_batch)
        n = m->max_batch;
    unsigned long long rng = o->seed;
    char buf[8];
    for (int i = 1; i < n; i++)
        fputs(tokenizer_decode(t, tokens[i - 1], tokens[i], buf), stdout);
    const double t0 = now();
    int rc = llama_forward(m, tokens, n, 0, logits); /* the prompt in one batch */
    const double t1 = now();
    int pos = n, produced = 0;
    const float *last = logits + (size_t)(n - 1) * vocab;
    while (rc == 0 && produced < o->steps && pos < m->cfg.seq_len && pos < m->max_pos) {
        const int next = sample(last, vocab, o->temperature, &rng);
        if (next == TOKEN_BOS || next == TOKEN_EOS)
            break;
        fputs(tokenizer_decode(t, tokens[pos - 1], next, buf), stdout);
        fflush(stdout);
        tokens[pos] = next;
        rc = llama_forward(m, &tokens[pos], 1, pos, logits);
        last = logits;
        pos++;
        produced++;
    }
    const double t2 = now();
    printf("\n[%s] prompt %d tokens at %.0f tokens/s, generated %d tokens at %.0f tokens/s\n",
           o->recipe ? o->recipe : o->mode, n, n / (t1 - t0), produced, produced / (t2 - t1));
    free(tokens);
    free(logits);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        usage();
        return 2;
    }
    const int is_eval = strcmp(argv[1], "eval") == 0, is_record = strcmp(argv[1], "record") == 0;
    if (!is_eval && !is_record && strcmp(argv[1], "generate") != 0) {
        usage();
        return 2;
    }
    options o;
    if (parse(argc, argv, is_eval || is_record ? 5 : 4, &o) != 0 ||
        ((is_eval || is_record) && argc < 5) || (is_record && o.output == NULL)) {
        usage();
        return 2;
    }
    llmq_context *ctx = NULL;
    llmq_status st = llmq_context_create(&ctx, o.backend);
    if (st == LLMQ_OK)
        st = llmq_context_set_threads(ctx, o.threads);
    if (st != LLMQ_OK) {
        fprintf(stderr, "llmq-llama: %s\n", llmq_context_last_error(ctx));
        llmq_context_destroy(ctx);
        return 1;
    }
    llama m;
    tokenizer t;
    int rc = 1;
    if (llama_open(&m, ctx, argv[2], 257) == 0 && tokenizer_load(&t, argv[3], m.cfg.vocab_size) == 0) {
        m.outlier_threshold = o.outliers;
        rc = is_eval     ? cmd_eval(&m, &t, argv[4], &o)
             : is_record ? cmd_record(&m, &t, argv[4], o.output, o.tokens)
                         : cmd_generate(&m, &t, &o);
        tokenizer_free(&t);
    }
    llama_close(&m);
    llmq_context_destroy(ctx);
    return rc;
}
