/* cmd_plan.c - `llmq plan --model M [--calib C] --budget BITS --candidates LIST -o R.yaml`:
 * measure every weight matrix of a model under candidate schemes, choose one per matrix under
 * an average bit budget, and write the choice as a recipe. SPDX-License-Identifier: MIT */
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* The engine keeps the token embedding and the output classifier in float. */
#define DEFAULT_KEEP_FLOAT "tok_embeddings.weight,output.weight,*embed_tokens.weight,lm_head.weight"

static void usage(void)
{
    fprintf(stderr,
            "usage: llmq plan --model M [--calib CALIB.safetensors] --budget BITS\n"
            "                 --candidates LIST -o RECIPE.yaml [--keep-float GLOBS]\n"
            "                 [--objective sum|size]\n"
            "  LIST: comma-separated w<bits>[g<group>][s|a], e.g. w8,w4g32,w4g128\n"
            "  BITS: average bits per weight over the planned matrices, scales and zero\n"
            "        points included (0 < BITS <= 32)\n"
            "  CALIB: inputs of each layer, tensors <weight name>.input [tokens, in]\n"
            "         (llmq-llama record); without it, or for a matrix it lacks, the error\n"
            "         is the relative weight error\n"
            "  GLOBS: comma-separated names kept in float and outside the budget\n"
            "         (default " DEFAULT_KEEP_FLOAT "; \"\" plans every matrix)\n");
}

static int kept_float(const char *globs, const char *name)
{
    char pat[256];
    for (const char *s = globs; *s != '\0';) {
        const char *end = strchr(s, ',');
        const size_t n = end != NULL ? (size_t)(end - s) : strlen(s);
        snprintf(pat, sizeof pat, "%.*s", (int)(n < sizeof pat ? n : sizeof pat - 1), s);
        if (n > 0 && fnmatch(pat, name, 0) == 0)
            return 1;
        if (end == NULL)
            break;
        s = end + 1;
    }
    return 0;
}

static int is_float_matrix(const llmq_model *m, int64_t i)
{
    const char *d = llmq_model_tensor_file_dtype(m, i);
    int32_t ndim = 0;
    return llmq_model_tensor_shape(m, i, &ndim, NULL, 0) == LLMQ_OK && ndim == 2 &&
           (strcmp(d, "F32") == 0 || strcmp(d, "F16") == 0 || strcmp(d, "BF16") == 0);
}

static int has_tensor(const llmq_model *m, const char *name)
{
    for (int64_t i = 0; m != NULL && i < llmq_model_tensor_count(m); i++)
        if (strcmp(llmq_model_tensor_name(m, i), name) == 0)
            return 1;
    return 0;
}

/* Measure one matrix, with its recorded inputs when the calibration file has them. */
static llmq_status add_matrix(llmq_context *ctx, llmq_plan *p, const llmq_model *m,
                              const llmq_model *calib, const char *name)
{
    char input[600];
    snprintf(input, sizeof input, "%s.input", name);
    llmq_tensor *w = NULL, *x = NULL;
    llmq_status st = llmq_model_tensor(ctx, m, name, &w);
    if (st == LLMQ_OK && has_tensor(calib, input))
        st = llmq_model_tensor(ctx, calib, input, &x);
    if (st == LLMQ_OK)
        st = llmq_plan_add_tensor(ctx, p, name, w, x);
    llmq_tensor_destroy(x);
    llmq_tensor_destroy(w);
    if (st == LLMQ_OK && calib != NULL && has_tensor(calib, input))
        st = llmq_model_evict(ctx, calib, input);
    if (st == LLMQ_OK) /* streaming: the matrix is no longer needed */
        st = llmq_model_evict(ctx, m, name);
    return st;
}

static void print_plan(const llmq_plan *p, double budget)
{
    printf("%-40s %-8s %12s %9s %7s %s\n", "tensor", "scheme", "rel. error", "SQNR dB", "bits",
           "error from");
    for (int64_t t = 0; t < llmq_plan_tensor_count(p); t++) {
        const int32_t c = llmq_plan_choice(p, t);
        double err = 0.0, sqnr = 0.0, bits = 0.0;
        int32_t calibrated = 0;
        if (llmq_plan_sensitivity(p, t, c, &err, &sqnr, &bits, &calibrated) != LLMQ_OK)
            continue;
        printf("%-40s %-8s %12.4e %9.2f %7.3f %s\n", llmq_plan_tensor_name(p, t),
               llmq_plan_candidate_name(p, c), err, sqnr, bits,
               calibrated ? "inputs" : "weights");
    }
    double objective = 0.0, bits = 0.0;
    int32_t exact = 0;
    if (llmq_plan_result(p, &objective, &bits, &exact) != LLMQ_OK)
        return;
    printf("%lld tensors; uses:", (long long)llmq_plan_tensor_count(p));
    for (int32_t c = 0; c < llmq_plan_candidate_count(p); c++) {
        int64_t n = 0;
        for (int64_t t = 0; t < llmq_plan_tensor_count(p); t++)
            n += llmq_plan_choice(p, t) == c;
        printf(" %s %lld", llmq_plan_candidate_name(p, c), (long long)n);
    }
    printf("\nbits per weight: %.4f of a budget of %.4f; objective %.6e (%s)\n", bits, budget,
           objective, exact ? "exact" : "costs rounded up");
}

int llmq_cmd_plan(int argc, char **argv)
{
    const char *model = NULL, *calib = NULL, *cands = NULL, *out = NULL, *budget_s = NULL;
    const char *keep = DEFAULT_KEEP_FLOAT, *objective = "sum";
    for (int i = 0; i < argc; i += 2) { /* every option takes a value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **slot = strcmp(a, "--model") == 0        ? &model
                            : strcmp(a, "--calib") == 0      ? &calib
                            : strcmp(a, "--candidates") == 0 ? &cands
                            : strcmp(a, "-o") == 0           ? &out
                            : strcmp(a, "--budget") == 0     ? &budget_s
                            : strcmp(a, "--keep-float") == 0 ? &keep
                            : strcmp(a, "--objective") == 0  ? &objective
                                                             : NULL;
        if (slot == NULL || v == NULL) {
            fprintf(stderr, "llmq plan: %s: %s\n", a, slot == NULL ? "unknown option"
                                                                   : "needs a value");
            usage();
            return 2;
        }
        *slot = v;
    }
    if (model == NULL || cands == NULL || out == NULL || budget_s == NULL) {
        fprintf(stderr, "llmq plan: --model, --budget, --candidates and -o are required\n");
        usage();
        return 2;
    }
    char *end;
    const double budget = strtod(budget_s, &end);
    if (*budget_s == '\0' || *end != '\0' || !(budget > 0.0 && budget <= 32.0)) {
        fprintf(stderr, "llmq plan: --budget %s: must be a number of bits per weight in "
                        "(0, 32]\n", budget_s);
        return 2;
    }
    const int size_weighted = strcmp(objective, "size") == 0;
    if (!size_weighted && strcmp(objective, "sum") != 0) {
        fprintf(stderr, "llmq plan: --objective %s: must be sum or size\n", objective);
        return 2;
    }
    llmq_context *ctx = NULL;
    llmq_model *m = NULL, *c = NULL;
    llmq_plan *p = NULL;
    const char *what = "context";
    llmq_status st = llmq_context_create(&ctx, "cpu");
    if (st == LLMQ_OK) {
        what = model;
        st = llmq_model_open(ctx, model, &m);
    }
    if (st == LLMQ_OK && calib != NULL) {
        what = calib;
        st = llmq_model_open(ctx, calib, &c);
    }
    if (st == LLMQ_OK) {
        what = "--candidates";
        st = llmq_plan_create(ctx, &p);
    }
    if (st == LLMQ_OK)
        st = llmq_plan_add_candidates(ctx, p, cands);
    if (st == LLMQ_OK && size_weighted)
        st = llmq_plan_set_objective(p, LLMQ_PLAN_OBJECTIVE_SIZE_WEIGHTED);
    int64_t kept = 0;
    for (int64_t i = 0; st == LLMQ_OK && i < llmq_model_tensor_count(m); i++) {
        what = llmq_model_tensor_name(m, i);
        if (!is_float_matrix(m, i))
            continue;
        if (kept_float(keep, what))
            kept++;
        else
            st = add_matrix(ctx, p, m, c, what);
    }
    if (st == LLMQ_OK) {
        what = "--budget";
        st = llmq_plan_solve(ctx, p, budget);
    }
    if (st == LLMQ_OK) {
        print_plan(p, budget);
        what = out;
        st = llmq_plan_write_recipe(ctx, p, out);
    }
    if (st == LLMQ_OK)
        printf("%lld matrices kept in float (--keep-float); wrote %s\n", (long long)kept, out);
    const int rc = st == LLMQ_OK ? 0 : cli_fail(ctx, what, st);
    llmq_plan_destroy(p);
    llmq_model_destroy(c);
    llmq_model_destroy(m);
    llmq_context_destroy(ctx);
    return rc;
}
