/* cmd_quantize.c - `llmq quantize --recipe R.yaml IN -o OUT [--report REPORT.yaml]`: stream a
 * model tensor by tensor through a recipe into a safetensors file that appears only when
 * complete. SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

typedef struct plan_entry {
    const char *name;
    llmq_dtype dtype;     /* of the input */
    int32_t ndim;
    int64_t shape[LLMQ_MAX_DIMS];
    llmq_scheme *scheme;  /* NULL: copied as it is */
    llmq_scheme *act;     /* static activations: calibrated from <name>.input of --calib */
    double sqnr, max_err, bytes_in, bytes_out;
} plan_entry;

typedef struct job {
    llmq_context *ctx;
    llmq_model *in, *calib;
    llmq_recipe *recipe;
    llmq_model_writer *out;
    plan_entry *plan;
    int64_t n;
    float *back;      /* dequantized copy for the summary, reused: no fresh pages per tensor */
    size_t back_size; /* floats */
} job;

static int fail(job *j, const char *what, llmq_status st)
{
    return cli_fail(j->ctx, what, st);
}

/* Static activations are stored as `<weight>.input`: a one-row quantized tensor whose scheme and
 * parameters are the calibrated ones (its codes are zero), so any llmq reader gets them with
 * llmq_model_tensor() and applies them to its activations. */
static void input_name(const plan_entry *p, char *buf, size_t size)
{
    snprintf(buf, size, "%s.input", p->name);
}

static int declare_activation(job *j, plan_entry *p)
{
    char name[600];
    input_name(p, name, sizeof name);
    if (j->calib == NULL) {
        fprintf(stderr, "llmq: %s: the recipe makes its activations static: give --calib with "
                        "a tensor %s of recorded inputs\n", p->name, name);
        return 1;
    }
    const int64_t shape[2] = {1, p->shape[p->ndim - 1]};
    const llmq_status st = llmq_model_writer_declare(j->ctx, j->out, name,
                                                     llmq_scheme_dtype(p->act), 2, shape, p->act);
    return st == LLMQ_OK ? 0 : fail(j, name, st);
}

/* Observe the recorded inputs in batches of rows, finalize, and write the parameters. */
static int calibrate_activation(job *j, plan_entry *p)
{
    char name[600];
    input_name(p, name, sizeof name);
    llmq_tensor *x = NULL, *batch = NULL, *q = NULL;
    llmq_quantizer *qz = NULL;
    llmq_status st = llmq_model_tensor(j->ctx, j->calib, name, &x);
    const int64_t cols = p->shape[p->ndim - 1];
    if (st == LLMQ_OK && (llmq_tensor_dim(x, -1) != cols || llmq_tensor_ndim(x) != 2)) {
        fprintf(stderr, "llmq: %s: recorded inputs must be [tokens, %lld]\n", name,
                (long long)cols);
        llmq_tensor_destroy(x);
        return 1;
    }
    if (st == LLMQ_OK)
        st = llmq_recipe_create_quantizer(j->ctx, j->recipe, p->name, &qz);
    const int64_t rows = st == LLMQ_OK ? llmq_tensor_dim(x, 0) : 0, step = 512;
    for (int64_t r = 0; st == LLMQ_OK && r < rows; r += step) {
        const int64_t n = rows - r < step ? rows - r : step, shape[2] = {n, cols};
        st = llmq_tensor_wrap(j->ctx, llmq_tensor_dtype(x), 2, shape,
                              (char *)llmq_tensor_data(x) + (size_t)r * llmq_tensor_row_stride(x),
                              llmq_tensor_row_stride(x), &batch);
        if (st == LLMQ_OK)
            st = llmq_quantizer_observe(j->ctx, qz, batch);
        llmq_tensor_destroy(batch);
        batch = NULL;
    }
    const int64_t one[2] = {1, cols};
    if (st == LLMQ_OK)
        st = llmq_quantizer_finalize(j->ctx, qz);
    if (st == LLMQ_OK)
        st = llmq_tensor_create_quantized(j->ctx, p->act, 2, one, &q);
    if (st == LLMQ_OK)
        st = llmq_quantizer_apply(j->ctx, qz, q);
    if (st == LLMQ_OK)
        st = llmq_model_writer_write(j->ctx, j->out, name, q);
    llmq_tensor_destroy(q);
    llmq_quantizer_destroy(qz);
    llmq_tensor_destroy(x);
    return st == LLMQ_OK ? 0 : fail(j, name, st);
}

/* Resolve every tensor and declare it in the output. */
static int plan(job *j)
{
    j->n = llmq_model_tensor_count(j->in);
    j->plan = calloc((size_t)(j->n ? j->n : 1), sizeof *j->plan);
    if (j->plan == NULL)
        return fail(j, "plan", LLMQ_ERR_OUT_OF_MEMORY);
    for (int64_t i = 0; i < j->n; i++) {
        plan_entry *p = &j->plan[i];
        p->name = llmq_model_tensor_name(j->in, i);
        llmq_tensor *t = NULL;
        llmq_status st = llmq_model_tensor(j->ctx, j->in, p->name, &t);
        if (st != LLMQ_OK)
            return fail(j, p->name, st);
        p->dtype = llmq_tensor_dtype(t);
        p->ndim = llmq_tensor_ndim(t);
        for (int32_t k = 0; k < p->ndim; k++)
            p->shape[k] = llmq_tensor_dim(t, k);
        llmq_tensor_destroy(t);
        llmq_recipe_choice c;
        st = llmq_recipe_choice_defaults(&c, sizeof c);
        if (st == LLMQ_OK)
            st = llmq_recipe_resolve(j->ctx, j->recipe, p->name, &c);
        if (st != LLMQ_OK)
            return fail(j, p->name, st);
        if (!c.skip && c.weight != NULL) {
            if (p->dtype != LLMQ_DTYPE_F32 && p->dtype != LLMQ_DTYPE_F16 &&
                p->dtype != LLMQ_DTYPE_BF16) {
                fprintf(stderr, "llmq: %s: a %s tensor cannot be quantized; skip it in the "
                                "recipe\n", p->name, llmq_dtype_name(p->dtype));
                llmq_recipe_choice_clear(&c);
                return 1;
            }
            p->scheme = c.weight;
            c.weight = NULL;
            if (c.activation_mode == LLMQ_ACTIVATION_STATIC) {
                p->act = c.activation;
                c.activation = NULL;
            }
        }
        llmq_recipe_choice_clear(&c);
        st = llmq_model_writer_declare(j->ctx, j->out, p->name,
                                       p->scheme ? llmq_scheme_dtype(p->scheme) : p->dtype,
                                       p->ndim, p->shape, p->scheme);
        if (st != LLMQ_OK)
            return fail(j, p->name, st);
        if (p->act != NULL && declare_activation(j, p) != 0)
            return 1;
    }
    return 0;
}

/* SQNR and largest error of the dequantized tensor against the input. */
static llmq_status measure(job *j, const llmq_tensor *src, const llmq_tensor *q, plan_entry *p)
{
    llmq_context *ctx = j->ctx;
    llmq_tensor *ref = NULL, *back = NULL;
    const int64_t n = llmq_tensor_numel(src);
    if ((size_t)n > j->back_size) {
        free(j->back);
        j->back_size = 0;
        if ((j->back = malloc((size_t)n * sizeof(float))) == NULL) {
            fprintf(stderr, "llmq quantize: out of memory for %lld floats\n", (long long)n);
            return LLMQ_ERR_OUT_OF_MEMORY;
        }
        j->back_size = (size_t)n;
    }
    llmq_status st = llmq_tensor_wrap(ctx, LLMQ_DTYPE_F32, p->ndim, p->shape, j->back, 0, &back);
    if (st == LLMQ_OK)
        st = llmq_dequantize(ctx, q, back);
    if (st == LLMQ_OK && llmq_tensor_dtype(src) != LLMQ_DTYPE_F32) {
        st = llmq_tensor_create(ctx, LLMQ_DTYPE_F32, p->ndim, p->shape, &ref);
        if (st == LLMQ_OK)
            st = llmq_convert(ctx, src, ref);
    }
    if (st == LLMQ_OK) {
        const float *x = llmq_tensor_data(ref != NULL ? ref : src), *y = llmq_tensor_data(back);
        double sig = 0.0, err = 0.0, mx = 0.0;
        for (int64_t i = 0; i < n; i++) {
            const double d = (double)x[i] - y[i];
            sig += (double)x[i] * x[i];
            err += d * d;
            mx = fabs(d) > mx ? fabs(d) : mx;
        }
        p->sqnr = err > 0.0 ? 10.0 * log10(sig / err) : INFINITY;
        p->max_err = mx;
    }
    llmq_tensor_destroy(ref);
    llmq_tensor_destroy(back);
    return st;
}

static int process(job *j, int64_t i)
{
    plan_entry *p = &j->plan[i];
    llmq_tensor *src = NULL, *q = NULL;
    llmq_status st = llmq_model_tensor(j->ctx, j->in, p->name, &src);
    if (st == LLMQ_OK)
        p->bytes_in = (double)llmq_tensor_nbytes(src);
    if (st == LLMQ_OK && p->scheme == NULL) {
        st = llmq_model_writer_write(j->ctx, j->out, p->name, src);
        p->bytes_out = p->bytes_in;
    } else if (st == LLMQ_OK) {
        st = llmq_tensor_create_quantized(j->ctx, p->scheme, p->ndim, p->shape, &q);
        if (st == LLMQ_OK)
            st = llmq_quantize_dynamic(j->ctx, src, q);
        if (st == LLMQ_OK)
            st = measure(j, src, q, p);
        if (st == LLMQ_OK)
            st = llmq_model_writer_write(j->ctx, j->out, p->name, q);
        if (st == LLMQ_OK)
            p->bytes_out = (double)(llmq_tensor_nbytes(q) +
                                    llmq_tensor_nbytes(llmq_tensor_scale(q)) +
                                    llmq_tensor_nbytes(llmq_tensor_zero_point(q)));
    }
    llmq_tensor_destroy(q);
    llmq_tensor_destroy(src);
    if (st == LLMQ_OK) /* streaming: the input's pages are no longer needed */
        st = llmq_model_evict(j->ctx, j->in, p->name);
    if (st != LLMQ_OK)
        return fail(j, p->name, st);
    return p->act != NULL ? calibrate_activation(j, p) : 0;
}

static void progress(int tty, int64_t i, int64_t n, const char *name, double done, double total,
                     double elapsed)
{
    const double rate = elapsed > 0 ? done / elapsed : 0.0;
    const double eta = rate > 0 ? (total - done) / rate : 0.0;
    if (tty)
        fprintf(stderr, "\r\033[K[%lld/%lld] %-40.40s %8.1f MB/s  ETA %5.1f s", (long long)(i + 1),
                (long long)n, name, rate / 1e6, eta);
    else
        fprintf(stderr, "[%lld/%lld] %s %.1f MB/s\n", (long long)(i + 1), (long long)n, name,
                rate / 1e6);
}

static void summary(const job *j, FILE *f)
{
    char buf[64];
    double in = 0.0, out = 0.0;
    fprintf(f, "%-44s %-22s %9s %11s %21s\n", "tensor", "scheme", "SQNR dB", "max |err|",
            "bytes before -> after");
    for (int64_t i = 0; i < j->n; i++) {
        const plan_entry *p = &j->plan[i];
        in += p->bytes_in;
        out += p->bytes_out;
        if (p->scheme != NULL)
            fprintf(f, "%-44s %-22s %9.2f %11.4g %10.0f -> %-10.0f\n", p->name,
                    cli_scheme_text(p->scheme, buf, sizeof buf), p->sqnr, p->max_err, p->bytes_in,
                    p->bytes_out);
        else
            fprintf(f, "%-44s %-22s %9s %11s %10.0f -> %-10.0f\n", p->name, "copy", "-", "-",
                    p->bytes_in, p->bytes_out);
    }
    fprintf(f, "total: %lld tensors, %.0f -> %.0f bytes (%.2fx smaller)\n", (long long)j->n, in,
            out, out > 0 ? in / out : 0.0);
}

/* The summary as YAML, written by hand: names are quoted JSON-style strings. */
static int report(const job *j, const char *path)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        return 1;
    }
    char buf[64];
    fprintf(f, "version: 1\ntensors:\n");
    for (int64_t i = 0; i < j->n; i++) {
        const plan_entry *p = &j->plan[i];
        fprintf(f, "  - name: \"");
        for (const char *c = p->name; *c; c++)
            fprintf(f, *c == '"' || *c == '\\' ? "\\%c" : "%c", *c);
        fprintf(f, "\"\n    scheme: \"%s\"\n", cli_scheme_text(p->scheme, buf, sizeof buf));
        if (p->scheme != NULL)
            fprintf(f, "    sqnr_db: %.4f\n    max_abs_error: %.9g\n", p->sqnr, p->max_err);
        fprintf(f, "    bytes_before: %.0f\n    bytes_after: %.0f\n", p->bytes_in, p->bytes_out);
    }
    return fclose(f) == 0 ? 0 : 1;
}

int llmq_cmd_quantize(int argc, char **argv)
{
    const char *recipe = NULL, *in = NULL, *out = NULL, *report_path = NULL, *calib = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--recipe") == 0 && i + 1 < argc)
            recipe = argv[++i];
        else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
            out = argv[++i];
        else if (strcmp(argv[i], "--report") == 0 && i + 1 < argc)
            report_path = argv[++i];
        else if (strcmp(argv[i], "--calib") == 0 && i + 1 < argc)
            calib = argv[++i];
        else if (argv[i][0] != '-' && in == NULL)
            in = argv[i];
        else
            in = NULL, recipe = NULL, i = argc;
    }
    if (recipe == NULL || in == NULL || out == NULL) {
        fprintf(stderr, "usage: llmq quantize --recipe R.yaml IN -o OUT [--calib CALIB.safetensors]"
                        " [--report REPORT.yaml]\n");
        return 2;
    }
    job j = {0};
    int rc = 1;
    llmq_status st = llmq_context_create(&j.ctx, "cpu");
    if (st != LLMQ_OK) {
        rc = fail(&j, "context", st);
        goto done;
    }
    if ((st = llmq_recipe_load(j.ctx, recipe, &j.recipe)) != LLMQ_OK ||
        (st = llmq_model_open(j.ctx, in, &j.in)) != LLMQ_OK ||
        (calib != NULL && (st = llmq_model_open(j.ctx, calib, &j.calib)) != LLMQ_OK) ||
        (st = llmq_model_writer_create(j.ctx, out, &j.out)) != LLMQ_OK) {
        rc = fail(&j, "open", st);
        goto done;
    }
    if (llmq_model_metadata(j.in, "llmq.format") != NULL) {
        fprintf(stderr, "llmq: %s: already quantized by llmq\n", in);
        goto done;
    }
    for (int64_t i = 0; i < llmq_model_metadata_count(j.in); i++) { /* keep the model's own */
        const char *k = llmq_model_metadata_key(j.in, i);
        if (strncmp(k, "llmq.", 5) != 0 &&
            (st = llmq_model_writer_set_metadata(j.ctx, j.out, k,
                                                 llmq_model_metadata_value(j.in, i))) != LLMQ_OK) {
            rc = fail(&j, k, st);
            goto done;
        }
    }
    if (plan(&j) != 0)
        goto done;
    double total = 0.0, done_bytes = 0.0;
    for (int64_t i = 0; i < j.n; i++) {
        double b = llmq_dtype_bits(j.plan[i].dtype) / 8.0;
        for (int32_t k = 0; k < j.plan[i].ndim; k++)
            b *= (double)j.plan[i].shape[k];
        total += b;
    }
    const int tty = isatty(2);
    const double t0 = cli_now();
    for (int64_t i = 0; i < j.n; i++) {
        if (process(&j, i) != 0)
            goto done;
        done_bytes += j.plan[i].bytes_in;
        progress(tty, i, j.n, j.plan[i].name, done_bytes, total, cli_now() - t0);
    }
    if (tty)
        fputc('\n', stderr);
    if ((st = llmq_model_writer_finish(j.ctx, j.out)) != LLMQ_OK) {
        rc = fail(&j, out, st);
        goto done;
    }
    summary(&j, stdout);
    printf("wrote %s in %.2f s (%.1f MB/s)\n", out, cli_now() - t0,
           done_bytes / (cli_now() - t0) / 1e6);
    rc = report_path != NULL ? report(&j, report_path) : 0;
done:
    for (int64_t i = 0; j.plan != NULL && i < j.n; i++) {
        llmq_scheme_destroy(j.plan[i].scheme);
        llmq_scheme_destroy(j.plan[i].act);
    }
    free(j.plan);
    free(j.back);
    llmq_model_writer_destroy(j.out); /* unfinished: the partial output is removed */
    llmq_model_destroy(j.in);
    llmq_model_destroy(j.calib);
    llmq_recipe_destroy(j.recipe);
    llmq_context_destroy(j.ctx);
    return rc;
}
